"""When a volume with driver options is mounted: Docker's `local` driver with `type`/`device`/`o`
(`volume create -o type=tmpfs -o device=tmpfs -o o=size=64m`, a bind of a host directory with
`-o type=none -o o=bind -o device=/srv/data`, Compose's `driver_opts`).

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

import errno
import os

from engine.config import EngineConfig
from engine.container.volumes import Volume, get_volume, volumes_lock
from engine.errors import DockuiError, NotFound
from engine.util.fsutil import file_lock

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from engine.container.state import ContainerRecord

# moby/sys/mount's option words: word -> (clears the flag?, flag). The rest of `o` is the data.
_MS = {"ro": 1, "nosuid": 2, "nodev": 4, "noexec": 8, "sync": 16, "remount": 32, "mand": 64, "dirsync": 128,
       "noatime": 1024, "nodiratime": 2048, "bind": 4096, "rbind": 4096 | 16384, "unbindable": 1 << 17,
       "runbindable": 1 << 17 | 16384, "private": 1 << 18, "rprivate": 1 << 18 | 16384, "slave": 1 << 19,
       "rslave": 1 << 19 | 16384, "shared": 1 << 20, "rshared": 1 << 20 | 16384, "relatime": 1 << 21,
       "strictatime": 1 << 24}
_CLEARS = {"rw": "ro", "suid": "nosuid", "dev": "nodev", "exec": "noexec", "async": "sync", "nomand": "mand",
           "atime": "noatime", "diratime": "nodiratime", "norelatime": "relatime", "nostrictatime": "strictatime"}
_PROPAGATION = _MS["unbindable"] | _MS["private"] | _MS["slave"] | _MS["shared"]
MS_BIND, MS_RDONLY, MS_REMOUNT, MS_REC = _MS["bind"], _MS["ro"], _MS["remount"], 16384


def mount_options(text: str) -> tuple[int, str]:
    """`o=...` as the flags and data of mount(2), as moby/sys/mount reads it (`defaults` is nothing)."""
    flags, data = 0, []
    for word in (w for w in text.split(",") if w):
        if word in _MS:
            flags |= _MS[word]
        elif word in _CLEARS:
            flags &= ~_MS[_CLEARS[word]]
        elif word != "defaults":
            data.append(word)
    return flags, ",".join(data)


def is_mounted(path: os.PathLike[str] | str) -> bool:
    """A mount point (its own mount, also over a directory of the same filesystem)."""
    target = os.fsdecode(path)
    with open("/proc/self/mountinfo", "rb") as f:
        return any(line.split()[4].decode().replace("\\040", " ") == target for line in f)


def _mount(volume: Volume) -> None:
    """Mount the volume's device on `_data` (Docker's error words when the kernel refuses)."""
    from engine.kernel import syscalls

    kind, device = volume.options.get("type", ""), volume.options.get("device", "")
    flags, data = mount_options(volume.options.get("o", ""))
    target = volume.mountpoint
    try:
        if not device:
            raise OSError(errno.EINVAL, "missing device in volume options")
        plain = flags & ~_PROPAGATION
        syscalls.mount(device, target, kind or None, plain, data or None)
        if flags & _PROPAGATION:
            syscalls.mount(None, target, None, flags & (_PROPAGATION | MS_REC))
        if plain & (MS_BIND | MS_RDONLY) == MS_BIND | MS_RDONLY:  # a bind is read-only only by a remount
            syscalls.mount(None, target, None, plain | MS_REMOUNT)
    except OSError as exc:
        if is_mounted(target):
            _unmount_path(target)
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise DockuiError(f"error while mounting volume '{target}': failed to mount local volume: mount "
                          f"{device}:{target}, flags: {hex(flags)}, data: {data}: {reason.lower()}") from None


def _unmount_path(target: os.PathLike[str] | str) -> None:
    from engine.kernel import syscalls

    try:
        syscalls.umount2(target)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            syscalls.umount2(target, syscalls.MNT_DETACH)
        elif exc.errno != errno.EINVAL:  # EINVAL: not mounted (any more)
            raise


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
                _mount(volume)


def release_for(config: EngineConfig, record: ContainerRecord) -> None:
    """The container stopped: unmount each of its option volumes no other live container uses."""
    volumes = _option_volumes(config, record)
    if not volumes:
        return
    with file_lock(volumes_lock(config)):
        used = _used_by_others(config, record.id)
        for volume in volumes:
            if volume.name not in used and is_mounted(volume.mountpoint):
                _unmount_path(volume.mountpoint)


def _used_by_others(config: EngineConfig, cid: str) -> set[str]:
    """Names of the volumes mounted by containers, other than `cid`, whose monitor is alive."""
    from engine.container import state

    names: set[str] = set()
    for other in state.list_containers(config):
        if other.id != cid and state.process_alive(other.monitor_pid, other.monitor_start):
            names.update(m["Name"] for m in other.mounts if m.get("Type") == "volume")
    return names


def unmount(volume: Volume) -> None:
    """A removal's first step (under the volumes lock): `_data` unmounted, or a refusal."""
    if volume.needs_mount and is_mounted(volume.mountpoint):
        _unmount_path(volume.mountpoint)
        if is_mounted(volume.mountpoint):
            raise DockuiError(f"remove {volume.name}: its mount on {volume.mountpoint} could not be undone")

