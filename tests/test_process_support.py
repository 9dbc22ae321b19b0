"""Shared helpers for the isolation tests (no tests here): run a real container on busybox.

The session-wide `busybox_rootfs` tree is only ever an overlay *lower* layer, so no test can write
into it; each container gets its own upper/work/merged dirs under the test's tmp_path.
"""

from __future__ import annotations

import os
import select
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.sandbox.process import OverlayLayers, ProcessSpec, spawn_container, wait_status


@dataclass
class Finished:
    code: int
    out: str
    err: str


def overlay_for(tmp_path: Path, lower: Path, name: str = "c") -> tuple[Path, OverlayLayers]:
    """upper/work/merged for one container, with `lower` as the only (read-only) layer."""
    base = tmp_path / name
    for sub in ("diff", "work", "merged"):
        (base / sub).mkdir(parents=True)
    overlay = OverlayLayers(layers_dir=lower.parent, lowerdir=lower.name, upperdir=base / "diff", workdir=base / "work")
    return base / "merged", overlay


def make_spec(tmp_path: Path, lower: Path, argv: list[str], name: str = "c", **kw: object) -> ProcessSpec:
    merged, overlay = overlay_for(tmp_path, lower, name)
    kw.setdefault("env", ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=test"])
    return ProcessSpec(argv=argv, rootfs=merged, overlay=overlay, **kw)  # type: ignore[arg-type]


def _drain(fds: dict[int, bytearray], timeout: float) -> None:
    open_fds = list(fds)
    while open_fds:
        ready, _, _ = select.select(open_fds, [], [], timeout)
        if not ready:
            raise TimeoutError("container output did not finish in time")
        for fd in ready:
            chunk = os.read(fd, 65536)
            if chunk:
                fds[fd] += chunk
            else:
                open_fds.remove(fd)


def run_spec(spec: ProcessSpec, on_ready=None, timeout: float = 20.0) -> Finished:
    """Spawn, collect stdout/stderr apart, wait; kills the container if anything goes wrong."""
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = None
    try:
        pid = spawn_container(spec, (None, out_w, err_w), on_ready)
        os.close(out_w)
        os.close(err_w)
        out_w = err_w = -1
        buffers = {out_r: bytearray(), err_r: bytearray()}
        _drain(buffers, timeout)
        _, status = os.waitpid(pid, 0)
        pid = None
        return Finished(wait_status(status), buffers[out_r].decode(), buffers[err_r].decode())
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        for fd in (out_r, out_w, err_r, err_w):
            if fd >= 0:
                os.close(fd)


def run(tmp_path: Path, lower: Path, script: str, name: str = "c", **kw: object) -> Finished:
    return run_spec(make_spec(tmp_path, lower, ["sh", "-c", script], name, **kw))


def host_mounts_under(path: Path) -> list[str]:
    """Mount points of the host (our mount namespace) under `path`: must stay empty."""
    prefix = str(path)
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]


def status_field(text: str, key: str) -> str:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{key} not in {text!r}")


def processes_rooted_under(path: Path) -> list[int]:
    """Host pids whose root directory is inside `path` (a container left running)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            root = os.readlink(f"/proc/{entry}/root")
        except OSError:
            continue
        # A pivot_root'ed process shows its root as the overlay's mount point on the host side.
        if root.startswith(str(path)):
            found.append(int(entry))
    return found


def v1_pids_cgroup(name: str) -> Path | None:
    """A fresh v1 `pids` group (the hybrid CI host has one); None where there is no v1 pids hierarchy."""
    root = Path("/sys/fs/cgroup/pids")
    if not (root / "cgroup.procs").exists() or (root / "cgroup.subtree_control").exists():
        return None
    path = root / name
    path.mkdir()
    return path


def remove_cgroup(path: Path) -> None:
    deadline = time.monotonic() + 5
    while True:
        try:
            path.rmdir()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@pytest.fixture
def nothing_left(tmp_path: Path):
    """No host mount and no process rooted under the test's directory is left behind, whatever happened."""
    yield
    assert host_mounts_under(tmp_path) == []
    deadline = time.monotonic() + 2
    while processes_rooted_under(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_rooted_under(tmp_path) == []
