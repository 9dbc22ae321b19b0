"""Shared set-up for the lifecycle tests (no tests here): an engine with its own cgroup parent, the
busybox image, a `dockui` runner, and a teardown that fails the test if anything is left behind
(a container, a mount under the root, a cgroup, a process).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.config import EngineConfig

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Engine:
    config: EngineConfig
    env: dict[str, str]

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "tui.launcher", "--root", str(self.config.root), *args]

    def cli(self, *args: str, input: bytes | None = None, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess:
        result = subprocess.run(self.argv(*args), input=input, capture_output=True, timeout=timeout, env=self.env, cwd=REPO)
        if check and result.returncode != 0:
            raise AssertionError(f"dockui {' '.join(args)} -> {result.returncode}\n{result.stdout!r}\n{result.stderr!r}")
        return result

    def out(self, *args: str, timeout: float = 60) -> str:
        return self.cli(*args, timeout=timeout, check=True).stdout.decode()

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:  # noqa: ANN003
        return subprocess.Popen(self.argv(*args), env=self.env, cwd=REPO, **kwargs)

    def inspect(self, ref: str) -> dict:
        return json.loads(self.out("inspect", "--type", "container", ref))[0]


def mounts_under(root: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(root))]


def _is_test_runner(cmdline: str) -> bool:
    """pytest itself (and its xdist workers), whose arguments may name a test's root."""
    argv = cmdline.split()
    return any(part.endswith(("pytest", "py.test")) for part in argv[:3]) or argv[1:3] == ["-m", "pytest"]


def engine_processes(root: Path) -> list[str]:
    """Command lines of live processes that mention this engine root (monitors carry it)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue
        except OSError:
            continue
        # Roots live under /tmp/pytest-of-root/...: the test runner is told apart by its argv, not by "pytest".
        if str(root) in cmdline and not _is_test_runner(cmdline):
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def cgroup_dirs(config: EngineConfig) -> list[str]:
    from engine.sandbox.cgroups import parent_dirs

    found = []
    for parent in parent_dirs(config).values():
        if parent.is_dir():
            found += [str(p) for p in parent.iterdir() if p.is_dir()]
    return found


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@pytest.fixture(name="engine")
def engine_fixture(engine_config: EngineConfig, busybox_imported, tmp_path: Path):  # noqa: ANN001, ARG001
    """busybox in a fresh root, a unique cgroup parent, and a strict no-leftovers teardown."""
    suffix = secrets.token_hex(3)
    engine_config.cgroup_parent = f"dockui-lc-{suffix}"
    engine_config.bridge_name = f"dklc{suffix}"
    config_file = tmp_path / "dockui-config.json"
    config_file.write_text(json.dumps({"cgroup_parent": engine_config.cgroup_parent, "bridge_name": engine_config.bridge_name}))
    env = dict(os.environ, DOCKUI_CONFIG=str(config_file), PYTHONPATH=str(REPO))
    previous = os.environ.get("DOCKUI_CONFIG")  # the run's own (conftest's suite_cgroup_parent)
    os.environ["DOCKUI_CONFIG"] = str(config_file)  # for runtime calls made in-process
    eng = Engine(engine_config, env)
    try:
        yield eng
    finally:
        if previous is None:
            os.environ.pop("DOCKUI_CONFIG", None)
        else:
            os.environ["DOCKUI_CONFIG"] = previous
        _teardown(eng)


def remove_root_bridges(config: EngineConfig) -> list[str]:
    """Drop the bridges of a root whose test used a bridge network; those still there after it."""
    if not config.network_dir.exists():
        return []
    from engine.network import endpoints as network

    # A dead namespace's veth pair is deleted by the kernel's deferred netns clean-up, which a
    # loaded machine can run seconds after the container went: wait for the bridge's ports.
    brif = Path("/sys/class/net", config.bridge_name, "brif")
    wait_until(lambda: not brif.is_dir() or not any(brif.iterdir()), timeout=10)
    network.remove_bridges(config)
    return [b for b in (config.bridge_name,) if Path("/sys/class/net", b).exists()]


def _teardown(eng: Engine) -> None:
    from engine.container import runtime, state
    from engine.sandbox.cgroups import remove_parent

    config = eng.config
    leftovers = [r.id for r in state.list_containers(config)]
    for cid in leftovers:
        try:
            runtime.remove(config, cid, force=True, volumes=True)
        except Exception:  # noqa: BLE001 - still clean as much as we can
            pass
    runtime.reconcile(config)
    monitors = wait_until(lambda: not engine_processes(config.root), timeout=10) or engine_processes(config.root)
    mounts = mounts_under(config.root)
    groups = cgroup_dirs(config)
    for point in mounts:
        subprocess.run(["umount", "-l", point], check=False)
    from engine.sandbox.cgroups import open_cgroup

    for group in groups:
        try:
            open_cgroup(config, Path(group).name).destroy()
        except Exception:  # noqa: BLE001
            pass
    remove_parent(config)
    bridges = remove_root_bridges(config)
    assert monitors is True, f"processes left behind: {monitors}"
    assert mounts == [], f"mounts left behind: {mounts}"
    assert groups == [], f"cgroups left behind: {groups}"
    assert bridges == [], f"bridges left behind: {bridges}"
