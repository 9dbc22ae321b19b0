"""When a volume with driver options is mounted (how is engine.container.volumes'): Docker's
`local` driver with `type`/`device`/`o` (`volume create -o type=tmpfs -o device=tmpfs -o
o=size=64m`, a bind of a host directory with `-o type=none -o o=bind -o device=/srv/data`,
Compose's `driver_opts`).

Such a volume's `_data` is a mount point only while a container uses it: the monitor mounts it as
the container starts (stage 1, before the sandbox binds `_data` into the container), and the last
user's stop unmounts it, as Docker's driver counts its users. dockui has no daemon to count them, so
each user says so on disk: `<volume>/users/<container id>` holds the pid and start time of the
monitor that mounted it, written after the mount and deleted by that container's release. A user
is a file whose monitor is alive; one whose monitor died (SIGKILLed between mount and release) is
stale and is dropped by the next count. (Counting live monitors from the records alone was not
enough: two containers stopping at once each saw the other's monitor still alive, finishing, and
neither unmounted.)

Invariant: every mount, unmount and users file change happens under the volumes lock
(`<root>/volumes/.lock`); `_data` is unmounted exactly when its last live user releases it (or a
reconciling command finds it mounted with none: `release_unused`); a removal unmounts before
deleting and deletes nothing while anything under the volume is a mount point.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.config import EngineConfig
from engine.container.volumes import Volume, get_volume, is_mounted, mount_volume, unmount_path, volumes_lock
from engine.errors import NotFound
from engine.util import mountinfo
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
    """Stage 1, before the sandbox: mount the container's option volumes that are not mounted yet,
    and note the container as a user of each."""
    volumes = _option_volumes(config, record)
    if not volumes:
        return
    with file_lock(volumes_lock(config)), mountinfo.session():
        for volume in volumes:
            if not is_mounted(volume.mountpoint):
                mount_volume(volume)
            users = _users_dir(volume)
            users.mkdir(exist_ok=True)
            (users / record.id).write_text(f"{record.monitor_pid} {record.monitor_start}")


def release_for(config: EngineConfig, record: ContainerRecord) -> None:
    """The container stopped: it is no longer a user of its option volumes; each one left with no
    live user is unmounted."""
    volumes = _option_volumes(config, record)
    if not volumes:
        return
    with file_lock(volumes_lock(config)), mountinfo.session():
        for volume in volumes:
            (_users_dir(volume) / record.id).unlink(missing_ok=True)
            if not _live_users(volume) and is_mounted(volume.mountpoint):
                unmount_path(volume.mountpoint)


def release_unused(config: EngineConfig, names: list[str]) -> None:
    """A reconciling command found these volumes' `_data` mounted: unmount those with no live user
    (a monitor killed between its mount and its release, or before it wrote its users file)."""
    with file_lock(volumes_lock(config)), mountinfo.session():
        for name in names:
            try:
                volume = get_volume(config, name)
            except NotFound:
                continue
            if volume.needs_mount and not _live_users(volume) and is_mounted(volume.mountpoint):
                unmount_path(volume.mountpoint)


def _users_dir(volume: Volume) -> Path:
    return volume.mountpoint.parent / "users"


def _live_users(volume: Volume) -> list[str]:
    """IDs of the containers whose users file names a live monitor (stale files are deleted)."""
    from engine.container import state

    live = []
    users = _users_dir(volume)
    for entry in os.listdir(users) if users.is_dir() else ():
        try:
            pid, start = (int(word) for word in (users / entry).read_text().split())
        except (OSError, ValueError):
            pid = start = 0
        if state.process_alive(pid, start):
            live.append(entry)
        else:
            (users / entry).unlink(missing_ok=True)
    return live
