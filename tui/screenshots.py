"""Regenerate screenshots/*.svg from a real session: `sudo .venv/bin/python -m tui.screenshots`.

Builds a throw-away engine root (own bridge and cgroup parent), shoots the first-run screen on the
empty store, imports the host's busybox-static the way the first-run screen offers, starts several
live containers (a web server with a published port and traffic to it, a chatty logger, a CPU-
limited busy loop, a memory holder, a stopped and a created one), drives the app headless through
every screen, and removes everything again. `--recorded` shoots the recorded backend instead (no
root needed; the SVG titles then say so).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import TabbedContent

from engine.config import EngineConfig
from tui.app import DockuiApp

REPO = Path(__file__).resolve().parent.parent
SIZE = (160, 48)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _wait(pilot: Pilot, seconds: float) -> None:
    await pilot.pause(seconds)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.1)


async def shoot_all(app: DockuiApp, out: Path, label: str, warmup: float, select: str | None = None) -> list[Path]:
    """Drive `app` through every screen and save one SVG each."""
    saved: list[Path] = []
    async with app.run_test(size=SIZE) as pilot:

        async def shot(name: str, pause: float = 1.2) -> None:
            await _wait(pilot, pause)
            (out / f"{name}.svg").write_text(app.export_screenshot(title=f"dockui — {name} — {label}"))
            saved.append(out / f"{name}.svg")

        await _wait(pilot, warmup)
        await shot("containers")
        if select is not None:
            from tui.widgets.containers_table import ContainersTable

            table = app.screen.query_one(ContainersTable)
            names = [c.name for c in table.visible_rows]
            if select in names:
                table.move_cursor(row=names.index(select))
                await _wait(pilot, 0.3)
        await pilot.press("enter")
        await shot("detail-stats", 2.5)
        for tab in ("logs", "config", "top", "inspect"):
            app.screen.query_one(TabbedContent).active = tab
            await shot(f"detail-{tab}", 1.5)
        await pilot.press("2")
        await shot("images")
        await pilot.press("3")
        await shot("network", 2.2)
        await pilot.press("5")
        await shot("volumes", 1.5)
        await pilot.press("6")
        await shot("events", 1.5)
        await pilot.press("1")
        await _wait(pilot, 0.5)
        await pilot.press("p")
        await pilot.press(*"busybox:latest")
        await shot("pull-dialog", 0.5)
        await pilot.press("escape")
        await pilot.press("n")
        await shot("run-dialog", 0.5)
        await pilot.press("escape")
        await pilot.press("question_mark")
        await shot("help", 0.5)
        await pilot.press("escape")
    return saved


async def shoot_first_run(app: DockuiApp, out: Path, label: str) -> Path:
    async with app.run_test(size=SIZE) as pilot:
        await _wait(pilot, 1.5)
        path = out / "first-run.svg"
        path.write_text(app.export_screenshot(title=f"dockui — first run — {label}"))
    return path


class LiveSession:
    """A throw-away engine with live containers; everything it makes is removed in `close()`."""

    def __init__(self) -> None:
        suffix = secrets.token_hex(3)
        self.dir = Path(tempfile.mkdtemp(prefix="dockui-shots-"))
        self.config_file = self.dir / "config.json"
        self.config_file.write_text(json.dumps({"bridge_name": f"dkshot{suffix}",
                                                "cgroup_parent": f"dockui-shots-{suffix}"}))
        os.environ["DOCKUI_CONFIG"] = str(self.config_file)
        self.config = EngineConfig.load(root=self.dir / "root")
        self.port = _free_port()
        self._stop = threading.Event()
        self._traffic: threading.Thread | None = None

    def cli(self, *args: str) -> str:
        argv = [sys.executable, "-m", "tui.launcher", "--root", str(self.config.root), *args]
        result = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"dockui {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout.strip()

    def start_containers(self) -> None:
        site = self.dir / "site"
        site.mkdir()
        (site / "index.html").write_text("<h1>dockui</h1>\n")
        site_project = ("--label", "com.docker.compose.project=site")  # web and its client: one compose project
        self.cli("run", "-d", "--name", "web", "-p", f"127.0.0.1:{self.port}:80", "-e", "SITE=demo",
                 *site_project, "--label", "com.docker.compose.service=web",
                 "--health-cmd", "wget -q -O /dev/null http://127.0.0.1/", "--health-interval", "2s",
                 "-v", f"{site}:/www:ro", "-v", "webdata:/data",
                 "-m", "64m", "--cpus", "0.5", "busybox", "sh", "-c",  # the Stats tab draws both limits
                 "exec httpd -f -v -p 80 -h /www")
        self.cli("run", "-d", "--name", "logger", "busybox", "sh", "-c",
                 "i=0; while :; do i=$((i+1)); echo \"tick $i: all good\"; "
                 "[ $((i % 3)) = 0 ] && echo \"warning: slow tick $i\" >&2; sleep 0.5; done")
        self.cli("run", "-d", "--name", "spinner", "--cpus", "0.5", "--network", "none", "busybox", "sh", "-c",
                 "while :; do :; done")
        self.cli("run", "-d", "--name", "cache", "-m", "128m", "--pids-limit", "50", "busybox", "sh", "-c",
                 "head -c 31457280 /dev/zero > /dev/shm/blob; exec sleep 3600")
        self.cli("run", "-d", "--name", "link-client", "--link", "web:frontend", *site_project,
                 "--label", "com.docker.compose.service=client", "busybox", "sh", "-c",
                 "while :; do wget -q -O /dev/null http://frontend/ ; sleep 1; done")
        self.cli("run", "-d", "--name", "batch-job", "--network", "none", "busybox", "sh", "-c", "echo done; exit 3")
        self.cli("create", "--name", "fresh", "--network", "none", "busybox", "true")
        self.cli("volume", "create", "spare")
        self.cli("network", "create", "backend")
        self.cli("network", "connect", "backend", "cache")  # a second network: eth1 in the tree
        self._traffic = threading.Thread(target=self._requests, daemon=True)
        self._traffic.start()

    def _requests(self) -> None:
        """Loopback requests to the published port, so the rx/tx rates are alive."""
        while not self._stop.wait(0.2):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=1).read()

    def close(self) -> None:
        self._stop.set()
        from engine.container import state
        from engine.container.reconcile import reconcile
        from engine.container.removal import remove
        from engine.sandbox.cgroups import remove_parent

        for record in state.list_containers(self.config):
            with contextlib.suppress(Exception):
                remove(self.config, record.id, force=True, volumes=True)
        with contextlib.suppress(Exception):
            reconcile(self.config)
        with contextlib.suppress(Exception):
            self.cli("network", "rm", "backend")
        subprocess.run(["ip", "link", "del", self.config.bridge_name], capture_output=True)
        with contextlib.suppress(Exception):
            remove_parent(self.config)
        os.environ.pop("DOCKUI_CONFIG", None)
        shutil.rmtree(self.dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tui.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "screenshots"))
    parser.add_argument("--recorded", action="store_true", help="use the recorded backend (no root, no kernel)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.recorded:
        from tui.recorded import RecordedBackend

        config = EngineConfig(root=Path(tempfile.mkdtemp(prefix="dockui-rec-")))
        label = "recorded engine state (not a live session)"
        asyncio.run(shoot_first_run(DockuiApp(config, RecordedBackend(empty=True), clock=False), out, label))
        saved = asyncio.run(shoot_all(DockuiApp(config, RecordedBackend(), clock=False), out, label, 0.5, "web"))
        shutil.rmtree(config.root, ignore_errors=True)
        print("\n".join(str(p) for p in saved))
        return 0
    if os.geteuid() != 0:
        print("tui.screenshots: a live session needs root (use --recorded otherwise)", file=sys.stderr)
        return 1
    session = LiveSession()
    label = "live session"
    try:
        asyncio.run(shoot_first_run(DockuiApp(session.config), out, label))
        from tui.backend import EngineBackend

        EngineBackend(session.config).import_host_busybox()  # what the first-run screen's button does
        session.start_containers()
        time.sleep(1.0)
        saved = asyncio.run(shoot_all(DockuiApp(session.config), out, label, warmup=12.0, select="web"))
    finally:
        session.close()
    print("\n".join(str(p) for p in saved))
    return 0


if __name__ == "__main__":
    sys.exit(main())
