"""The TUI on the real engine: real containers, a real registry, the real bridge and veths, and the
real `dockui` entry point in tmux. Everything here needs root."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.container import state
from engine.errors import NotFound
from engine.image.store import ImageStore
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - fixture
from tests.tui_helpers import run_async, settle, until
from tui.app import DockuiApp
from tui.widgets.containers_table import ContainersTable

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parent.parent
# stops on SIGTERM within ~0.2 s (a shell as PID 1 ignores signals it has no trap for)
STOPPABLE = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]


@pytest.fixture
def drop_bridge(engine_config: EngineConfig):  # noqa: ANN201
    """Set up before `engine`, so this runs after its teardown (whose reconcile may re-create the bridge)."""
    yield
    subprocess.run(["ip", "link", "del", engine_config.bridge_name], capture_output=True)


def _status(eng: Engine, name: str) -> str:
    return state.find_container(eng.config, name).status


def _select(app: DockuiApp, name: str) -> bool:
    table = app.screen.query_one(ContainersTable)
    names = [c.name for c in table.visible_rows]
    if name not in names:
        return False
    table.move_cursor(row=names.index(name))
    return table.selected is not None and table.selected.name == name


@run_async
async def test_keys_stop_start_pause_and_remove_a_real_container(engine: Engine) -> None:
    engine.out("run", "-d", "--network", "none", "--name", "tui-a", "busybox", *STOPPABLE)
    app = DockuiApp(engine.config, refresh_interval=0.2)
    async with app.run_test(size=(120, 30)) as pilot:
        assert await until(pilot, lambda: _select(app, "tui-a"))
        await pilot.pause()
        await pilot.press("x")
        assert await until(pilot, lambda: _status(engine, "tui-a") == "exited", timeout=15)
        assert await until(pilot, lambda: app.screen.query_one(ContainersTable).selected.status == "exited")
        await pilot.pause(0.1)
        await pilot.press("s")
        assert await until(pilot, lambda: _status(engine, "tui-a") == "running", timeout=15)
        assert await until(pilot, lambda: app.screen.query_one(ContainersTable).selected.status == "running")
        await pilot.press("P")  # pause (freezer), then P again to unpause
        assert await until(pilot, lambda: _status(engine, "tui-a") == "paused", timeout=15)
        assert await until(pilot, lambda: app.screen.query_one(ContainersTable).selected.status == "paused")
        await pilot.press("P")
        assert await until(pilot, lambda: _status(engine, "tui-a") == "running", timeout=15)
        assert await until(pilot, lambda: app.screen.query_one(ContainersTable).selected.status == "running")
        await pilot.press("d")
        await pilot.pause(0.1)
        assert type(app.screen).__name__ == "ConfirmDialog"
        assert _status(engine, "tui-a") == "running"  # nothing happens before the answer
        await pilot.press("y")

        def gone() -> bool:
            try:
                state.find_container(engine.config, "tui-a")
            except NotFound:
                return True
            return False

        assert await until(pilot, gone, timeout=15)
        assert await until(pilot, lambda: not app.screen.query_one(ContainersTable).views)


@run_async
async def test_pull_dialog_pulls_from_the_test_registry(engine_config: EngineConfig, busybox_in_registry: str) -> None:
    """An empty store (so the layer is really downloaded), the session's registry on loopback."""
    # own names: the app's start-up reconcile looks at its cgroup parent and bridge only
    engine_config.cgroup_parent = f"dockui-tuip-{uuid.uuid4().hex[:6]}"
    engine_config.bridge_name = f"dktp{uuid.uuid4().hex[:6]}"
    app = DockuiApp(engine_config, refresh_interval=0.5)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("p")
        await pilot.pause()
        dialog = app.screen
        dialog.query_one("#pull-ref").value = busybox_in_registry
        await pilot.press("enter")
        assert await until(pilot, lambda: dialog.result_id is not None or "✗" in str(
            dialog.query_one("#pull-status").render()), timeout=30)
        assert dialog.result_id is not None, dialog.query_one("#pull-status").render()
        seen = dialog.progress_seen
        assert len(seen) >= 2 and seen[0][0] < seen[-1][0] == seen[-1][1] > 0  # the bars moved to the end
        assert all(row.query_one("ProgressBar").percentage == 1.0 for row in dialog.rows.values())
    record = ImageStore(engine_config).resolve(busybox_in_registry)
    assert record.id == dialog.result_id


@run_async
async def test_network_tree_shows_the_real_veth(drop_bridge: None, engine: Engine) -> None:
    cid = engine.out("run", "-d", "--name", "tui-net", "busybox", *STOPPABLE).strip()
    links = json.loads(subprocess.run(["ip", "-j", "link", "show", "master", engine.config.bridge_name],
                                      capture_output=True, text=True, check=True).stdout)
    veths = [link["ifname"] for link in links]
    assert len(veths) == 1 and veths[0].startswith("veth")
    address = engine.inspect(cid)["NetworkSettings"]["IPAddress"]
    try:
        app = DockuiApp(engine.config, refresh_interval=0.2)
        async with app.run_test(size=(140, 30)) as pilot:
            await settle(pilot)
            await pilot.press("3")

            def labels() -> list[str]:
                tree = app.screen.query_one("#net-tree")
                out, stack = [], list(tree.root.children)
                while stack:
                    node = stack.pop()
                    out.append(str(node.label))
                    stack.extend(node.children)
                return out

            assert await until(pilot, lambda: any(veths[0] in label for label in labels()), timeout=10)
            text = "\n".join(labels())
            assert engine.config.bridge_name in text
            assert f"tui-net  eth0 {address}" in text
            assert "02:42:" in text
    finally:
        engine.cli("rm", "-f", cid)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_real_dockui_in_tmux(engine: Engine) -> None:
    """The console entry point, terminal set-up, `e` (exec shell) and quit, end to end in a real terminal."""
    engine.out("run", "-d", "--network", "none", "--name", "tui-tmux", "busybox", *STOPPABLE)
    session = f"dockui-test-{uuid.uuid4().hex[:8]}"
    dockui = REPO / ".venv" / "bin" / "dockui"
    command = [str(dockui)] if dockui.exists() else [sys.executable, "-m", "tui.launcher"]
    shell = " ".join([*command, "--root", str(engine.config.root)]) + "; echo EXITED=$?; sleep 30"
    env = ["-e", f"DOCKUI_CONFIG={engine.env['DOCKUI_CONFIG']}", "-e", f"PYTHONPATH={REPO}"]
    subprocess.run(["tmux", "new-session", "-d", "-x", "120", "-y", "40", "-s", session, *env, shell],
                   check=True, cwd=REPO)
    try:
        def screen() -> str:
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                  text=True).stdout

        assert wait_until(lambda: "tui-tmux" in screen() and "Up" in screen(), timeout=20), screen()
        text = screen()
        assert "1 Containers" in text and "CPU % is of one core" in text
        # e: the app suspends into a real pty shell inside the container, and comes back after exit
        subprocess.run(["tmux", "send-keys", "-t", session, "e"], check=True)
        assert wait_until(lambda: "shell in tui-tmux" in screen() and "/ #" in screen(), timeout=15), screen()
        subprocess.run(["tmux", "send-keys", "-t", session, "echo INSIDE-$((6*7)) $(hostname)", "Enter"], check=True)
        cid = state.find_container(engine.config, "tui-tmux").id
        assert wait_until(lambda: f"INSIDE-42 {cid[:12]}" in screen(), timeout=10), screen()
        subprocess.run(["tmux", "send-keys", "-t", session, "exit", "Enter"], check=True)
        assert wait_until(lambda: "1 Containers" in screen() and "tui-tmux" in screen(), timeout=10), screen()
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        assert wait_until(lambda: "EXITED=0" in screen(), timeout=10), screen()
        time.sleep(0.1)
        assert "1 Containers" not in screen()  # the alternate screen is gone: the terminal is restored
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)


@run_async
async def test_run_dialog_starts_a_real_container_and_shows_engine_errors_inline(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dialog creates and starts through engine.api in the app's process (no `dockui run`
    subprocess), and the start path sees the app's threads: the monitor is a fresh interpreter."""
    from engine.container import start as starting

    decisions: list[bool] = []

    def may_fork(real=starting._may_fork) -> bool:  # noqa: ANN001 - the real check, its answers recorded
        decisions.append(real())
        return decisions[-1]

    monkeypatch.setattr(starting, "_may_fork", may_fork)
    runs = []
    real_popen = subprocess.Popen

    def popen(args, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202 - every child the app starts, recorded
        runs.append([str(x) for x in args])
        return real_popen(args, *a, **kw)

    monkeypatch.setattr(subprocess, "Popen", popen)
    app = DockuiApp(engine.config, refresh_interval=0.3)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)

        async def submit(name: str) -> None:
            await pilot.press("n")
            await pilot.pause(0.2)
            dialog = app.screen
            dialog.query_one("#run-image").value = "busybox"
            dialog.query_one("#run-name").value = name
            dialog.query_one("#run-command").value = " ".join(
                ["sh", "-c", "'trap \"exit 0\" TERM; while :; do sleep 0.2; done'"])
            dialog.query_one("#run-network").value = "none"
            dialog.query_one("#run-memory").value = "32m"
            await pilot.press("ctrl+r")

        await submit("tui-run")
        assert await until(pilot, lambda: type(app.screen).__name__ == "ContainersScreen", timeout=30)
        record = state.find_container(engine.config, "tui-run")
        assert record.status == "running"
        assert decisions == [False]  # threaded: no fork of the app
        assert not any("run" in argv for argv in runs)  # no `dockui run` child
        assert [argv[1:4] for argv in runs if "engine.container.monitor" in argv] == [["-S", "-m", "engine.container.monitor"]]
        assert record.host_config.get("Memory") == 32 * 1024 * 1024
        assert await until(pilot, lambda: "tui-run" in [c.name for c in app.screen.query_one(ContainersTable).views])
        await submit("tui-run")  # the name is taken: the engine refuses, the dialog says why and stays
        form_error = app.screen.query_one("#run-form-error")
        assert await until(pilot, lambda: form_error.display, timeout=30)
        assert "tui-run" in str(form_error.render()) and type(app.screen).__name__ == "RunDialog"
        await pilot.press("escape")
