"""Named volumes: `<root>/volumes/<name>/_data`, with Docker's `local` driver semantics.

A volume is a directory that outlives containers; `rm -v` and `volume prune` remove the anonymous
ones. Metadata (creation time, labels, anonymous flag, driver options) sits next to `_data` in
`volume.json`. A volume with options (`type`, `device`, `o`: tmpfs, a bind of a host directory, a
block device) is mounted on `_data` only while a container uses it: how (`mount_volume`, with the
option words moby/sys/mount reads) is here, when (its users) in engine.container.volume_mounts. A
removal unmounts it first and never deletes through a mount.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine import events
from engine.config import EngineConfig
from engine.errors import Conflict, DockuiError, InvalidArgument, NotFound
from engine.util import mountinfo
from engine.util.fsutil import atomic_write_json, file_lock, read_json

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any

VOLUME_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

# The local driver's options (moby volume/local): each key that needs others, and the keys known.
OPTION_NEEDS = {"device": ("type",), "type": ("device",), "o": ("device", "type")}
OPTION_KEYS = ("type", "o", "device", "size")


@dataclass(frozen=True)
class Volume:
    """A named or anonymous volume: `<root>/volumes/<name>/_data` and its metadata."""

    name: str
    mountpoint: Path
    created_at: str
    labels: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False
    options: dict[str, str] = field(default_factory=dict)  # the local driver's type/device/o

    @property
    def needs_mount(self) -> bool:
        """Mounted on `_data` while in use."""
        return _mounts_device(self.options)

    def inspect(self) -> dict[str, Any]:
        return {
            "CreatedAt": self.created_at,
            "Driver": "local",
            "Labels": self.labels or None,
            "Mountpoint": str(self.mountpoint),
            "Name": self.name,
            "Options": dict(self.options) or None,
            "Scope": "local",
        }


def check_options(options: dict[str, str]) -> None:
    """The local driver's rules for `-o`/DriverOpts, with its messages."""
    for key in options:
        if key not in OPTION_KEYS:
            raise InvalidArgument(f'invalid option: "{key}"')
    if "size" in options:  # a quota needs xfs project quotas, which this store does not set up
        from engine.util.units import parse_size

        if parse_size(options["size"]) > 0:
            raise InvalidArgument("quota size requested but no quota support")
    for key, needed in OPTION_NEEDS.items():
        if key in options:
            for other in needed:
                if other not in options:
                    raise InvalidArgument(f'missing required option: "{other}"')


def volumes_lock(config: EngineConfig) -> Path:
    """Held while volumes are made, removed, mounted or unmounted."""
    return config.volumes_dir / ".lock"


def _load(config: EngineConfig, name: str) -> Volume | None:
    meta = read_json(config.volumes_dir / name / "volume.json")
    if meta is None:
        return None
    return Volume(
        name=name,
        mountpoint=config.volumes_dir / name / "_data",
        created_at=meta.get("CreatedAt", ""),
        labels=meta.get("Labels") or {},
        anonymous=meta.get("Anonymous", False),
        options=meta.get("Options") or {},
    )


def mounted_when_used(mountpoint: Path) -> bool:
    """Whether the volume whose `_data` is `mountpoint` has driver options that mount it in use."""
    meta = read_json(mountpoint.parent / "volume.json") or {}
    return _mounts_device(meta.get("Options") or {})


def _mounts_device(options: dict[str, str]) -> bool:
    """Docker's local driver mounts a volume given a device or a type."""
    return bool(options.get("device") or options.get("type"))


def create_volume(
    config: EngineConfig, name: str | None = None, labels: dict[str, str] | None = None, anonymous: bool = False,
    options: dict[str, str] | None = None,
) -> Volume:
    """Create a volume (idempotent for an existing name, as Docker's local driver is: the existing
    volume keeps its labels and options)."""
    from engine.container.state import now_rfc3339

    if name is None:
        name = os.urandom(32).hex()  # secrets.token_hex(32), without loading OpenSSL (docs/lifecycle.md)
        anonymous = True
    if not VOLUME_NAME_RE.match(name):
        raise InvalidArgument(f'"{name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed')
    check_options(options or {})
    with file_lock(volumes_lock(config)):
        existing = _load(config, name)
        if existing is not None:
            return existing
        d = config.volumes_dir / name
        (d / "_data").mkdir(parents=True, exist_ok=True)
        meta = {"CreatedAt": now_rfc3339(), "Labels": labels or {}, "Anonymous": anonymous, "Options": options or {}}
        atomic_write_json(d / "volume.json", meta)
        events.volume(config, "create", name)
    volume = _load(config, name)
    assert volume is not None
    return volume


def get_volume(config: EngineConfig, name: str) -> Volume:
    volume = _load(config, name) if VOLUME_NAME_RE.match(name) else None
    if volume is None:
        raise NotFound(f"get {name}: no such volume")
    return volume


def list_volumes(config: EngineConfig) -> list[Volume]:
    try:
        names = sorted(p.name for p in config.volumes_dir.iterdir() if p.is_dir())
    except FileNotFoundError:
        return []
    return [v for v in (_load(config, n) for n in names) if v is not None]


def volumes_in_use(config: EngineConfig) -> dict[str, list[str]]:
    """Volume name -> IDs of the containers that mount it."""
    from engine.container.state import list_containers

    users: dict[str, list[str]] = {}
    for record in list_containers(config):
        for mount in record.mounts:
            if mount.get("Type") == "volume":
                users.setdefault(mount["Name"], []).append(record.id)
    return users


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
    return _real(path) in mountinfo.mount_points()


def mounts_under(path: os.PathLike[str] | str) -> list[str]:
    """The mount points at or below `path`, by its real path (mountinfo names them resolved: a root
    reached through a symlink would otherwise never look mounted), parents first."""
    return mountinfo.mounts_under(_real(path))


def _real(path: os.PathLike[str] | str) -> str:
    """`path` with its parents resolved, not its last component (a link there is not followed)."""
    head, tail = os.path.split(os.fsdecode(path))
    return os.path.join(os.path.realpath(head), tail)


def mount_volume(volume: Volume) -> None:
    """Mount the volume's device on `_data` (Docker's error words when the kernel refuses)."""
    from engine.kernel import syscalls

    kind, device = volume.options.get("type", ""), volume.options.get("device", "")
    flags, data = mount_options(volume.options.get("o", ""))
    target = volume.mountpoint
    try:
        if not device:
            raise OSError(errno.EINVAL, "missing device in volume options")
        if os.path.islink(target):  # mount(2) would follow it: a volume mounts on its own `_data` only
            raise OSError(errno.ENOTDIR, "its _data is a symbolic link")
        plain = flags & ~_PROPAGATION
        syscalls.mount(device, target, kind or None, plain, data or None)
        if flags & _PROPAGATION:
            syscalls.mount(None, target, None, flags & (_PROPAGATION | MS_REC))
        if plain & (MS_BIND | MS_RDONLY) == MS_BIND | MS_RDONLY:  # a bind is read-only only by a remount
            syscalls.mount(None, target, None, plain | MS_REMOUNT)
    except OSError as exc:
        if is_mounted(target):
            unmount_path(target)
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise DockuiError(f"error while mounting volume '{target}': failed to mount local volume: mount "
                          f"{device}:{target}, flags: {hex(flags)}, data: {data}: {reason.lower()}") from None


def unmount_path(target: os.PathLike[str] | str) -> None:
    from engine.kernel import syscalls

    try:
        syscalls.umount2(target)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            syscalls.umount2(target, syscalls.MNT_DETACH)
        elif exc.errno != errno.EINVAL:  # EINVAL: not mounted (any more)
            raise


def unmount_volume(volume: Volume) -> None:
    """A removal's first step (under the volumes lock): `_data` unmounted, or a refusal."""
    if volume.needs_mount and is_mounted(volume.mountpoint):
        unmount_path(volume.mountpoint)
        if is_mounted(volume.mountpoint):
            raise DockuiError(f"remove {volume.name}: its mount on {volume.mountpoint} could not be undone")


def remove_volume(config: EngineConfig, name: str, force: bool = False, leaving: str = "",
                  before_delete: Callable[[Volume], None] | None = None) -> None:
    """Remove a volume no container mounts (`leaving`: a container being removed, not counted), as
    Docker: `force` only makes a missing volume no error, a volume in use is never removed. A
    mounted `_data` is unmounted first; while anything under the volume is still a mount point
    nothing is deleted (never the files of a bound directory). `before_delete`: called with the
    volume once nothing stops its removal, before its files go (prune measures what it frees)."""
    import shutil

    try:
        volume = get_volume(config, name)
    except NotFound:
        if force:
            return
        raise
    with file_lock(volumes_lock(config)), mountinfo.session():
        users = [cid for cid in volumes_in_use(config).get(name, ()) if cid != leaving]
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        unmount_volume(volume)
        held = mounts_under(config.volumes_dir / name)
        if held:  # (a mount that propagated below `_data`): its files are not the volume's
            raise Conflict(f"remove {name}: {held[0]} is a mount point inside it: unmount it first")
        if before_delete is not None:
            before_delete(volume)
        shutil.rmtree(config.volumes_dir / name, ignore_errors=True)
    events.volume(config, "destroy", name)


def prune_volumes(config: EngineConfig, all_volumes: bool = False,
                  selected: Callable[[Volume], bool] | None = None,
                  before_delete: Callable[[Volume], None] | None = None) -> list[str]:
    """Remove unused anonymous volumes (all unused ones with `all_volumes`; those `selected` lets
    go: prune's filters), like `docker volume prune`. `before_delete`: remove_volume's, for each
    volume removed (and only those)."""
    removed = []
    in_use = volumes_in_use(config)
    for volume in list_volumes(config):
        if volume.name in in_use or not (volume.anonymous or all_volumes):
            continue
        if selected is not None and not selected(volume):
            continue
        try:
            remove_volume(config, volume.name, before_delete=before_delete)
            removed.append(volume.name)
        except (Conflict, NotFound):
            continue
    return removed
