"""Helpers shared by the cgroup and stats tests: a throw-away cgroup parent, a process started inside a group."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

from engine.config import EngineConfig
from engine.sandbox.cgroups import CGROUP_ROOT, Cgroup, cleanup_orphans, parent_dirs, remove_parent


def throwaway_cgroup_config(tmp_path: Path, fs_root: Path = CGROUP_ROOT) -> Iterator[EngineConfig]:
    """A config with a unique cgroup parent; afterwards everything inside is killed and the parent must be gone."""
    config = EngineConfig(root=tmp_path / "root", cgroup_parent=f"dockui-test-{uuid.uuid4().hex[:10]}")
    yield config
    cleanup_orphans(config, set(), fs_root=fs_root)  # kills what is left inside
    remove_parent(config, fs_root=fs_root)
    leftovers = [p for p in parent_dirs(config, fs_root).values() if p.exists()]
    assert not leftovers, f"cgroup parents left behind: {leftovers}"


def parent_left_behind(config: EngineConfig, fs_root: Path = CGROUP_ROOT) -> list[str]:
    """The directories of `config`'s cgroup parent that still exist, each with the groups inside.

    What is found is then removed (processes inside killed), so that a failing check leaves nothing on the host.
    """
    found = []
    for path in parent_dirs(config, fs_root).values():
        if path.is_dir():
            inside = sorted(e.name[:12] for e in path.iterdir() if e.is_dir())
            found.append(f"{path} {inside}" if inside else str(path))
    if found:
        cleanup_orphans(config, set(), fs_root=fs_root)
        remove_parent(config, fs_root=fs_root)
    return found


def spawn_in(cg: Cgroup, argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    """Start `argv` inside the group: the shell waits on stdin until it has been moved in, then execs."""
    proc = subprocess.Popen(["/bin/sh", "-c", 'read _; exec "$@"', "sh", *argv], stdin=subprocess.PIPE, **kwargs)  # type: ignore[call-overload]
    cg.add_process(proc.pid)
    assert proc.stdin is not None
    proc.stdin.write(b"go\n")
    proc.stdin.close()
    proc.stdin = None
    return proc
