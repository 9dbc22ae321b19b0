"""What a container leaves on the host, and how it goes: its cgroup, its network plumbing, host-side
rootfs mounts, its writable layer, anonymous volumes and finally its record.

Every step is best-effort (`best_effort` swallows and logs engine and OS errors), so clean-up after
a crash always gets as far as it can; removal, reconcile and the monitor's last stage share it. The
rootfs is mounted inside the container's own mount namespace (engine.sandbox.rootfs) and needs no
unmounting; `unmount_rootfs` only removes host-side leftovers under the layers dir.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine import events
from engine.config import EngineConfig
from engine.container import state
from engine.container.state import ACTIVE_STATUSES, ContainerRecord
from engine.errors import Conflict, DockuiError, NotFound
from engine.util import trace
from engine.util.mountinfo import mount_points as mountpoints  # the one reader of the mount table
from engine.util.mountinfo import session as mount_table_session

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class best_effort:
    """Swallow engine and OS errors during best-effort clean-up (logged at debug level)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        if exc is not None and isinstance(exc, OSError | DockuiError | ImportError):
            import logging

            logging.getLogger(__name__).debug("clean-up step failed: %s", exc)
            return True
        return False


def _is_mountpoint(path: Path) -> bool:
    return str(path) in mountpoints()


def unmount_rootfs(record: ContainerRecord) -> None:
    """Lazily unmount the overlay and everything bound below it (idempotent)."""
    from engine.kernel import syscalls

    if not record.rw_layer:
        return
    merged = Path(record.rw_layer) / "merged"
    for _ in range(64):
        if not _is_mountpoint(merged):
            return
        try:
            syscalls.umount2(merged, syscalls.MNT_DETACH)
        except OSError:
            return


def uses_named_volumes(record: ContainerRecord) -> bool:
    return any(m.get("Type") == "volume" and (not m.get("Anonymous") or m.get("DriverOptions")) for m in record.mounts)


def release_volumes(config: EngineConfig, record: ContainerRecord) -> None:
    """The container stopped: its volumes with driver options that no other live container uses
    are unmounted (engine.container.volume_mounts; its module only for containers with a volume)."""
    if uses_named_volumes(record):
        from engine.container import volume_mounts

        with best_effort():
            volume_mounts.release_for(config, record)


def monitor_done(record: ContainerRecord) -> bool:
    return record.status not in ACTIVE_STATUSES and not state.process_alive(record.monitor_pid, record.monitor_start)


def wait_monitor_exit(pid: int, start: int, timeout: float = 2.0) -> None:
    """Wait (bounded) until the monitor process `pid` has exited: its finish stage writes `die`
    after the record says exited, so a verb that logs an event after the run (stop, rm -f) waits
    for this to keep moby's order (kill, die, stop or destroy)."""
    import time

    deadline = time.monotonic() + timeout
    while pid and state.process_alive(pid, start) and time.monotonic() < deadline:
        time.sleep(0.005)


def signal_container(record: ContainerRecord, sig: int) -> None:
    if not state.process_alive(record.pid, record.pid_start):
        return
    try:
        os.kill(record.pid, sig)
    except ProcessLookupError:
        pass


def container_cgroup(config: EngineConfig, record: ContainerRecord) -> Any:
    from engine.sandbox.cgroups import Cgroup, open_cgroup

    if record.cgroup_paths:
        return Cgroup.from_paths(record.cgroup_paths)
    return open_cgroup(config, record.id)


def remove_stopped(
    config: EngineConfig,
    container_id: str,
    remove_volumes: bool,
    only_if: Callable[[ContainerRecord], bool] | None = None,
) -> ContainerRecord | None:
    """The end of every removal (`rm`, --rm after a dead monitor): the removal lock, "removing",
    then the files (remove_files); Conflict when another live process is removing it. A removal a
    killed process left half done ("removing", its lock free) is taken over and finished.

    only_if: checked on the fresh record under its lock; when it is false nothing is done (None).
    Reconcile decides from a snapshot (the index) taken earlier: by now the container it judged
    half-created may have been created and started by its (since exited) `run -d`.
    """
    with state.removal(config, container_id):
        with state.locked(config, container_id) as locked:
            if only_if is not None and not only_if(locked):
                return None
            locked.status = "removing"
        remove_files(config, locked, remove_volumes=remove_volumes)
    return locked


def remove_files(
    config: EngineConfig, record: ContainerRecord, remove_volumes: bool, host_side_done: bool = False,
    empty_later: list[Path] | None = None,
) -> None:
    """Everything of the container, record last; nothing when another process is removing it.

    `host_side_done`: the caller (the monitor's last stage, after the exit) has just destroyed the
    container's cgroup and unmounted its rootfs, so they are not looked for again. `empty_later`:
    what the caller deletes later, gone from the store and the containers already: the writable
    layer's directories (ImageStore.remove_rw_layer) and the record's (state.delete_record)."""
    import contextlib

    with contextlib.ExitStack() as held:
        try:
            held.enter_context(state.removal(config, record.id))
        except (Conflict, NotFound):
            return  # someone else is at it (or was done first)
        held.enter_context(mount_table_session())  # the rootfs's and the volumes' mount questions: one read
        _remove_files(config, record, remove_volumes, host_side_done, empty_later)


def _remove_files(
    config: EngineConfig, record: ContainerRecord, remove_volumes: bool, host_side_done: bool,
    empty_later: list[Path] | None,
) -> None:
    from engine.image.store import ImageStore

    if not host_side_done:
        with best_effort():
            container_cgroup(config, record).destroy()
    from engine.container.options import network_kind  # on use: see "Import costs" in docs/lifecycle.md

    if network_kind(record.host_config.get("NetworkMode", "none")) == "bridge":
        with best_effort():
            from engine.network import endpoint as network

            network.release(config, record.id)
    if not host_side_done:
        unmount_rootfs(record)
    with best_effort():  # (with empty_later: renamed away now, its files deleted by the caller later)
        ImageStore(config).remove_rw_layer(record.id, record.image_id, empty_later=empty_later)
    trace.mark("removal: layer")
    anonymous = [m for m in record.mounts if m.get("Type") == "volume" and m.get("Anonymous")]
    if remove_volumes and anonymous:
        from engine.container.volumes import remove_volume  # only then: its import is ~2 ms of every --rm

        for mount in anonymous:
            with best_effort():
                remove_volume(config, mount["Name"], force=True, leaving=record.id)  # kept if another uses it
    state.delete_record(config, record.id, empty_later)
    trace.mark("removal: record")
    events.container(config, "destroy", record)
