"""The clean-up half of `reconcile` (engine.container.reconcile adds the restart policies): containers
whose monitor died are marked exited and cleaned up (an --rm one removed), what a SIGKILLed verb left
is finished, and stale cgroups and rootfs mounts are removed. It starts nothing, so the start path
itself (the monitor forked ahead, removal inside the monitor) can run it.

Cheap when nothing died: one /proc read per active container, plus a cgroup directory scan.
A container being started concurrently is never taken for an orphan (see _remove_orphan_cgroups).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from engine.config import EngineConfig
from engine.container import state
from engine.container.cleanup import (
    best_effort,
    container_cgroup,
    mountpoints,
    release_volumes,
    remove_stopped,
    signal_container,
    unmount_rootfs,
)
from engine.container.index import container_dirs
from engine.container.state import ACTIVE_STATUSES, ContainerRecord, now_rfc3339
from engine.errors import NotFound

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from engine.container.index import Entry


def sweep(config: EngineConfig) -> list[str]:
    """Mark containers whose monitor died as exited and clean up after them; their IDs.

    An --rm container found so is removed, as Docker's daemon removes them when it restarts (its
    restart policy is reconcile's). What a SIGKILLed verb left is finished (_finish_interrupted).
    Cheap when nothing died: one /proc read per active container, plus a cgroup directory scan.
    """
    cleaned = []
    auto_remove = []
    # The index's entries of what may need a hand: statuses and process identities, no whole records.
    records = state.list_entries(config, (*ACTIVE_STATUSES, "removing"), processes=True)
    for record in records:
        busy = record.status in ACTIVE_STATUSES or record.status == "created" and record.monitor_pid
        if not busy or state.process_alive(record.monitor_pid, record.monitor_start):
            continue
        try:
            with state.locked(config, record.id) as locked:
                still_busy = locked.status in ACTIVE_STATUSES or locked.status == "created" and locked.monitor_pid
                if not still_busy or state.process_alive(locked.monitor_pid, locked.monitor_start):
                    continue
                _cleanup_unwatched(config, locked)
                cleaned.append(locked.id)
                if locked.host_config.get("AutoRemove"):
                    auto_remove.append(locked.id)
        except NotFound:
            continue
    for container_id in auto_remove:
        with best_effort():
            remove_stopped(config, container_id, remove_volumes=True)
    interrupted = _finish_interrupted(config, records)
    _remove_orphan_cgroups(config)
    _remove_stale_mounts(config)
    if cleaned or interrupted:
        with best_effort():
            from engine.network import reconcile as network

            live = {r.id for r in state.list_containers(config) if r.running}
            network.reconcile(config, live)
    return cleaned


def policy_restarts(record: ContainerRecord) -> bool:
    """Whether the restart policy brings back a container whose monitor died (as its monitor would
    have for an exit: always, unless-stopped, on-failure below its retry count; never after stop)."""
    policy = record.host_config.get("RestartPolicy") or {}
    name, retries = policy.get("Name") or "", int(policy.get("MaximumRetryCount") or 0)
    if record.stop_requested:
        return False
    if name in ("always", "unless-stopped"):
        return True
    return name == "on-failure" and record.exit_code != 0 and (retries == 0 or record.restart_count < retries)


def _finish_interrupted(config: EngineConfig, records: list[Entry]) -> bool:
    """What a SIGKILLed verb left: a removal half done ("removing", its lock free) is finished; a
    container whose create died before its record was complete is removed; a directory without a
    record, or one a killed removal left in the trash, is deleted (with the rw layer it may own).
    True when anything was done."""
    done = False
    for record in records:
        if record.status == "removing" and not state.process_alive(record.monitor_pid, record.monitor_start):
            if state.removal_abandoned(config, record.id):
                with best_effort():
                    auto_remove = bool(state.load(config, record.id).host_config.get("AutoRemove"))
                    remove_stopped(config, record.id, remove_volumes=auto_remove)
                    done = True
        elif record.status == "created" and record.creator_pid > 0 and not state.process_alive(
            record.creator_pid, record.creator_start
        ):  # ContainerRecord.half_created, from the index
            with best_effort():
                removed = remove_stopped(config, record.id, remove_volumes=True,
                                         only_if=lambda fresh: fresh.half_created)
                done = done or removed is not None
    try:  # network records of containers that are gone (a removal on a full disk could not drop them)
        stale = {n.removesuffix(".json") for n in os.listdir(config.network_dir / "endpoints")}
        stale -= set(container_dirs(config.containers_dir))
        done = done or any(state.ID_RE.match(name) for name in stale)
    except FileNotFoundError:
        pass
    trashed = state.empty_trash(config)  # what a removal killed after its rename left
    orphans = state.orphan_dirs(config)
    if orphans or trashed:
        import shutil

        from engine.container.usage import container_uses
        from engine.image.store import ImageStore

        for directory in orphans:
            shutil.rmtree(directory, ignore_errors=True)
        with best_effort():
            ImageStore(config, containers=container_uses).collect_orphan_rw_layers()
        done = True
    return done


def _remove_stale_mounts(config: EngineConfig) -> None:
    """Unmount `<layers>/<id>/merged` of containers that have no live monitor (a crash left it), and
    the `_data` of volumes with driver options that no live container uses (engine.container.volume_mounts)."""
    points = mountpoints()
    volumes = str(config.volumes_dir) + "/"
    held = [p[len(volumes):-len("/_data")] for p in points if p.startswith(volumes) and p.endswith("/_data")]
    if held:
        from engine.container import volume_mounts

        with best_effort():
            volume_mounts.release_unused(config, held)
    prefix = str(config.layers_dir) + "/"
    stale = [p for p in points if p.startswith(prefix) and p.endswith("/merged")]
    if not stale:
        return
    from engine.kernel import syscalls  # ctypes: ~5 ms, so only when there is something to unmount
    owners = {str(Path(r.rw_layer) / "merged"): r for r in state.list_containers(config) if r.rw_layer}
    for point in stale:
        record = owners.get(point)
        if record is not None and state.process_alive(record.monitor_pid, record.monitor_start):
            continue
        with best_effort():
            syscalls.umount2(point, syscalls.MNT_DETACH)


ORPHAN_MIN_AGE = 10.0  # seconds
CGROUP_ROOT = "/sys/fs/cgroup"  # engine.sandbox.cgroups.CGROUP_ROOT (tests/test_cli_import_costs.py)


def _remove_orphan_cgroups(config: EngineConfig) -> None:
    """Destroy container groups under our parent whose container no longer exists.

    The groups are listed BEFORE the container directories: a directory exists before its monitor
    makes the group, so a container being started concurrently is never taken for an orphan
    (cgroups.cleanup_orphans takes the keep-list first, which would race with a concurrent start).
    """
    if not _may_have_groups(config):
        return
    with best_effort():
        from engine.sandbox.cgroups import open_cgroup, parent_dirs

        groups: set[str] = set()
        young: set[str] = set()
        now = time.time()
        for parent in parent_dirs(config).values():
            try:
                entries = [e for e in os.scandir(parent) if e.is_dir(follow_symlinks=False)]
            except FileNotFoundError:
                continue
            groups |= {e.name for e in entries}
            with best_effort():
                young |= {e.name for e in entries if now - e.stat(follow_symlinks=False).st_mtime < ORPHAN_MIN_AGE}
        # A group made in the last seconds may be another engine root's container being started
        # (same cgroup parent, still empty until its first process joins): a later reconcile sees it.
        groups -= young
        if not groups:
            return
        try:
            existing = set(container_dirs(config.containers_dir))
        except FileNotFoundError:
            existing = set()
        for name in groups - existing:
            if state.ID_RE.match(name):
                group = open_cgroup(config, name)
                # A populated group may belong to another engine root sharing this cgroup parent:
                # only empty leftovers are ours to remove (ours with processes are killed by rm and
                # by _cleanup_unwatched, which know the container).
                if group.pids():
                    continue
                with best_effort():
                    group.destroy()


def _may_have_groups(config: EngineConfig) -> bool:
    """Whether a directory named after the cgroup parent holds any group, under the cgroup root
    or any hierarchy mounted below it: a superset of `cgroups.parent_dirs`, looked at without
    importing engine.sandbox.cgroups (with `signal`: ~1 ms of every verb; see "Import costs" in
    docs/lifecycle.md). True for a parent name it cannot judge (the full scan then says why)."""
    parts = [p for p in config.cgroup_parent.strip("/").split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        return True
    try:
        roots = ["", *os.listdir(CGROUP_ROOT)]
    except OSError:
        return True
    for root in roots:
        try:
            with os.scandir(os.path.join(CGROUP_ROOT, root, *parts)) as entries:
                if any(e.is_dir(follow_symlinks=False) for e in entries):
                    return True
        except OSError:  # no such group here (or not a directory)
            continue
    return False


def _cleanup_unwatched(config: EngineConfig, record: ContainerRecord) -> None:
    """The monitor is gone: kill what is left of the container and record it as exited."""
    import signal

    was_active = record.status in ACTIVE_STATUSES
    killed = False
    cg = container_cgroup(config, record)
    with best_effort():
        if cg.pids():
            killed = True
            if cg.frozen:
                cg.thaw()
            cg.kill_all(signal.SIGKILL)
    if state.process_alive(record.pid, record.pid_start):
        killed = True
        signal_container(record, signal.SIGKILL)
    with best_effort():
        cg.destroy()
    unmount_rootfs(record)
    release_volumes(config, record)
    from engine.container.options import network_kind  # on use: see "Import costs" in docs/lifecycle.md

    if network_kind(record.host_config.get("NetworkMode", "none")) == "bridge":
        with best_effort():
            from engine.network import endpoint as network

            network.detach(config, record.id)
    if was_active:
        record.status = "exited"
        record.exit_code = 137 if killed else 255
        record.finished_at = now_rfc3339()
        record.error = "the container's monitor exited unexpectedly"
    record.pid = 0
    record.pid_start = 0
    record.monitor_pid = 0
    record.monitor_start = 0
