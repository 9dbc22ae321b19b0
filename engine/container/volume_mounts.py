"""When a volume with driver options is mounted (how is engine.container.volumes'): Docker's
`local` driver with `type`/`device`/`o` (`volume create -o type=tmpfs -o device=tmpfs -o
o=size=64m`, a bind of a host directory with `-o type=none -o o=bind -o device=/srv/data`,
Compose's `driver_opts`).

Such a volume's `_data` is a mount point only while a container uses it: the monitor mounts it as
the container starts (stage 1, before the sandbox binds `_data` into the container), and the last
user's stop unmounts it, as Docker's driver counts its users. dockui has no daemon to count them, so
the count is read from the records: a user is a container that mounts the volume and whose monitor is
alive (a starting container's monitor has claimed it before it mounts; a stopping one's is still alive
when it releases, and is left out of its own count).

Invariant: every mount and unmount happens under the volumes lock (`<root>/volumes/.lock`), after
the users were counted under it; a removal unmounts before deleting and deletes nothing while
`_data` is still a mount point.
"""

from __future__ import annotations

from engine.config import EngineConfig
from engine.container.volumes import Volume, get_volume, is_mounted, mount_volume, unmount_path, volumes_lock
from engine.errors import NotFound
from engine.util.fsutil import file_lock

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from engine.container.state import ContainerRecord


def _option_volumes(config: EngineConfig, record: ContainerRecord) -> list[Volume]:
    """The volumes with options that the container mounts (one small read per named volume)."""
    found = []
    for m in record.mounts:
        if m.get("Type") == "volume" and (not m.get("Anonymous") or m.get("DriverOptions")):  # mounts.py marks those
            try:
                volume = get_volume(config, m["Name"])
            except NotFound:
                continue
            if volume.needs_mount:
                found.append(volume)
    return found


def mount_for(config: EngineConfig, record: ContainerRecord) -> None:
    """Stage 1, before the sandbox: mount the container's option volumes that are not mounted yet."""
    volumes = _option_volumes(config, record)
    if not volumes:
        return
    with file_lock(volumes_lock(config)):
        for volume in volumes:
            if not is_mounted(volume.mountpoint):
                mount_volume(volume)


def release_for(config: EngineConfig, record: ContainerRecord) -> None:
    """The container stopped: unmount each of its option volumes no other live container uses."""
    volumes = _option_volumes(config, record)
    if not volumes:
        return
    with file_lock(volumes_lock(config)):
        used = _used_by_others(config, record.id)
        for volume in volumes:
            if volume.name not in used and is_mounted(volume.mountpoint):
                unmount_path(volume.mountpoint)


def _used_by_others(config: EngineConfig, cid: str) -> set[str]:
    """Names of the volumes mounted by containers, other than `cid`, whose monitor is alive."""
    from engine.container import state

    names: set[str] = set()
    for other in state.list_containers(config):
        if other.id != cid and state.process_alive(other.monitor_pid, other.monitor_start):
            names.update(m["Name"] for m in other.mounts if m.get("Type") == "volume")
    return names
