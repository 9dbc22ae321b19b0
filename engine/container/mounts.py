"""What a container mounts besides its root: `-v`, `--mount` and `--tmpfs`, as Docker MountPoints.

Each spec becomes one dict in the record's `Mounts` (Docker's `MountPoints` shape): `Type` "bind"
(an absolute host path), "volume" (named, or anonymous: a 64-hex name, removed with `rm -v`/`--rm`)
or "tmpfs" (an empty tmpfs made in the container's mount namespace; `Options` is its mount data).
The container's first process mounts them (engine.sandbox.rootfs) after its root is pivoted.

`--mount` and the API's `HostConfig.Mounts` are one typed value, engine.container.mountspec's
`MountSpec` (Docker's mount.Mount, kept as given in the record's HostConfig); it is checked with the
daemon's rules and made here. A volume it names is created with its `VolumeOptions` (labels and the
local driver's options) when it does not exist, as Docker's daemon creates it.

Docker's rules kept: `-v` creates a missing bind source, `--mount type=bind` refuses one (unless
`bind-create-src`); a destination must be absolute and not `/`; two mounts may not share a
destination. A bind has a propagation (`-v SRC:DST:rshared`, `--mount ...,bind-propagation=rslave`;
rprivate by default): a shared or slave one needs its source on a shared (or slave) mount, as Docker
requires. `mount_points` is what inspect and the container list show, as Docker's MountPoint.

A read-only bind is read-only down its whole tree (a host mount below its source too), as Docker's
since API 1.44, unless its record says otherwise with moby's container.Mount fields, each kept only
when true: `ReadOnlyNonRecursive` (its top mount only: `bind-recursive=writable`, and every
read-only bind a client of API < 1.44 makes, moby's defaultReadOnlyNonRecursive),
`ReadOnlyForceRecursive` (`bind-recursive=readonly`: no start where the kernel cannot) and
`NonRecursive` (`bind-recursive=disabled`: the mounts below the source do not come along).
`sandbox_bind` turns a record's mount into what engine.sandbox.rootfs mounts.
"""

from __future__ import annotations

import os

from engine.config import EngineConfig
from engine.errors import InvalidArgument

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from engine.container.mountspec import BindOptions, MountSpec, VolumeOptions
    from engine.container.options import RunOptions
    from engine.container.state import ContainerRecord
    from engine.sandbox.rootfs import BindMount

# Docker's --tmpfs defaults (rw, noexec, nosuid), plus nodev as runc sets it. No size unless asked
# for: Docker's daemon passes none, so the kernel's default (half the RAM) is the only limit.
TMPFS_FLAGS = ("nosuid", "nodev", "noexec")
TMPFS_DEFAULT_SIZE = ""
# Docker's bind propagation modes (engine.sandbox.rootfs.PROPAGATIONS has their mount flags) and its
# default for a bind; a volume has none ("" in inspect, rprivate in effect).
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
DEFAULT_PROPAGATION = "rprivate"
# moby's setBindModeIfNull: a volume of the local driver shows Mode "z" when none was given.
VOLUME_DEFAULT_MODE = "z"
MOUNT_TYPES = ("bind", "volume", "tmpfs")
_TMPFS_FLAG_WORDS = {"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev"}
_TMPFS_DATA_KEYS = {"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"}
_TMPFS_API_OPTIONS = ("exec", "noexec")  # moby's validTmpfsOptions for TmpfsOptions.Options
# The kinds of word a `-v` or `--volumes-from` mode holds (moby's linuxValidMountMode): at most one
# of each. z/Z (SELinux relabel) and the consistency words (Docker Desktop's) are accepted and
# change nothing, as Docker on Linux without SELinux does.
MODE_KINDS = (("rw", "ro"), ("z", "Z"), PROPAGATIONS, ("nocopy",), ("consistent", "cached", "delegated"))


def valid_mode(mode: str) -> bool:
    """moby's linuxValidMountMode: every word known, no two of one kind ("" is valid)."""
    if not mode:
        return True
    words = mode.split(",")
    if not all(any(w in kind for kind in MODE_KINDS) for w in words):
        return False
    return all(sum(w in kind for w in words) <= 1 for kind in MODE_KINDS)


def volumes_from_mode(item: str) -> tuple[str, str]:
    """`--volumes-from CONTAINER[:MODE]` as moby's ParseVolumesFrom reads it: the container and its
    mode ("rw" without one); a mode may hold rw/ro, z/Z and a consistency word, never a propagation
    or nocopy (those stay the source container's). InvalidArgument in moby's words."""
    if not item:
        raise InvalidArgument("volumes-from specification cannot be an empty string")
    ref, _, mode = item.partition(":")
    if not mode:
        return ref, "rw"
    words = mode.split(",")
    if not valid_mode(mode) or any(w in PROPAGATIONS or w == "nocopy" for w in words):
        raise InvalidArgument(f"invalid mode: {mode}")
    return ref, mode


# ------------------------------------------------------------------------------------------ record mounts


def prepare_mounts(
    config: EngineConfig,
    volumes: Sequence[str],
    image_volumes: dict[str, Any],
    mounts: Sequence[MountSpec] = (),
    tmpfs_flags: Sequence[str] = (),
    legacy_read_only: bool = False,
) -> list[dict[str, Any]]:
    """`-v` specs, `--mount` specs, `--tmpfs` specs and the image's `Volumes`, in that order.
    `legacy_read_only`: the create came through API < 1.44, where a read-only bind is read-only
    at its top mount only (moby's defaultReadOnlyNonRecursive) and ReadOnlyForceRecursive is refused."""
    made: list[dict[str, Any]] = []
    if not (volumes or image_volumes or mounts or tmpfs_flags):
        return made
    for spec in volumes:
        made.append(_volume_flag(config, spec, legacy_read_only))
    for mount in mounts:
        made.append(_spec_mount(config, mount, legacy_read_only))
    for spec in tmpfs_flags:
        dest, _, options = spec.partition(":")
        made.append(_tmpfs(dest, tmpfs_options(options), spec))
    seen: set[str] = set()
    for mount in made:
        if mount["Destination"] in seen:
            raise InvalidArgument(f"Duplicate mount point: {mount['Destination']}")
        seen.add(mount["Destination"])
    for dest in image_volumes:
        if _clean(dest) not in seen:
            made.append(_volume(config, "", dest, True, ""))
    return made


def _check_destination(dest: str, spec: str) -> None:
    if not dest.startswith("/"):
        raise InvalidArgument(f"invalid mount specification: '{spec}': destination must be an absolute path")
    if os.path.normpath(dest) in ("/", "//"):  # POSIX normpath keeps a leading "//"
        raise InvalidArgument(f"invalid mount specification: '{spec}': destination can't be '/'")


def _volume_flag(config: EngineConfig, spec: str, legacy_read_only: bool = False) -> dict[str, Any]:
    """`-v [SOURCE:]DEST[:MODE]`: SOURCE absolute -> bind (made if missing), else a named volume.
    `Mode` is the mode as given ("" without one), as moby's ParseMountRaw keeps it."""
    parts = spec.split(":")
    mode = ""
    if len(parts) == 3:
        source, dest, mode = parts
    elif len(parts) == 2 and not valid_mode(parts[1]):  # moby: `/dst:ro` is a mode without a source
        source, dest = parts
    elif len(parts) == 1:
        source, dest = "", parts[0]
    else:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    if not valid_mode(mode):
        raise InvalidArgument(f"invalid mode: {mode}")
    words = mode.split(",") if mode else []
    propagation = [w for w in words if w in PROPAGATIONS]
    _check_destination(dest, spec)
    rw = "ro" not in words
    if propagation and not source.startswith("/"):  # Docker: BindOptions on a volume
        raise InvalidArgument(f"invalid volume specification: '{spec}': invalid mount config for type \"volume\": "
                              "field BindOptions must not be specified")
    if "nocopy" in words:  # no copy-up of the image's content (engine.container.copyup)
        if source.startswith("/"):
            raise InvalidArgument(f"invalid mode: {mode}: nocopy is for volumes, not binds")
        return _volume(config, source, dest, rw, mode, copy=False)
    if source.startswith("/"):
        _check_propagation(source, propagation[0] if propagation else DEFAULT_PROPAGATION)
        if not os.path.exists(source):
            os.makedirs(source, exist_ok=True)  # Docker creates a missing -v bind source
        bind = _bind(source, dest, rw, mode, propagation[0] if propagation else DEFAULT_PROPAGATION)
        return bind | ({"ReadOnlyNonRecursive": True} if legacy_read_only and not rw else {})
    # `-v NAME:DEST` is a bind of the named volume (moby: setBindModeIfNull); `-v DEST` the docker
    # CLI sends as Config.Volumes, an anonymous volume without a mode.
    return _volume(config, source, dest, rw, mode or (VOLUME_DEFAULT_MODE if source else ""))


def _clean(path: str) -> str:
    """Go's path.Clean of an absolute path, as moby cleans a mount's Source and Destination."""
    cleaned = os.path.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def _bind(source: str, dest: str, rw: bool, mode: str, propagation: str) -> dict[str, Any]:
    return {"Type": "bind", "Source": _clean(source), "Destination": _clean(dest), "RW": rw, "Mode": mode,
            "Name": "", "Propagation": propagation}


def _check_propagation(source: str, propagation: str) -> None:
    """Docker's rule for a shared or slave bind: its source must be on a shared (or slave) mount
    (checked again when the container starts: engine.sandbox.rootfs)."""
    if propagation in ("shared", "rshared", "slave", "rslave"):
        from engine.sandbox.rootfs import propagation_error

        error = propagation_error(source, propagation)
        if error is not None:
            raise InvalidArgument(error)


def _volume(config: EngineConfig, name: str, dest: str, rw: bool, mode: str, copy: bool = True,
            options: VolumeOptions | None = None) -> dict[str, Any]:
    """A named volume (made on first use, with `options`' labels and driver options, as Docker's
    daemon makes it) or, without a name, an anonymous one. `copy`: filled with the image's content
    at `dest` when empty (Docker's MountPoint.CopyData; engine.container.copyup)."""
    from engine.container.volumes import create_volume

    labels = dict((options.labels or ()) if options else ())
    driver = dict(((options.driver.options or ()) if options.driver else ()) if options else ())
    volume = create_volume(config, name or None, labels=labels or None, options=driver or None)
    mount = {
        "Type": "volume",
        "Name": volume.name,
        "Source": str(volume.mountpoint),
        "Destination": _clean(dest),
        "Driver": "local",
        "RW": rw,
        "Mode": mode,
        "Anonymous": volume.anonymous,
        "CopyData": copy,
    }
    if volume.anonymous and volume.needs_mount:  # engine.container.volume_mounts mounts it at each start
        mount["DriverOptions"] = True
    return mount


def _spec_mount(config: EngineConfig, spec: MountSpec, legacy_read_only: bool = False) -> dict[str, Any]:
    """One `--mount`/HostConfig.Mounts entry, checked with the daemon's rules (moby's
    validateMountConfig, in its words where dockui's tests do not pin older ones)."""
    kind, dest = spec.type, spec.target
    if kind not in MOUNT_TYPES:
        raise InvalidArgument(f'invalid mount config for type "{kind}": mount type unknown '
                              "(type must be bind, volume or tmpfs)")
    for given, name in ((spec.bind, "BindOptions"), (spec.volume, "VolumeOptions"), (spec.tmpfs, "TmpfsOptions")):
        if given is not None and name.lower() != kind + "options":  # moby's validateExclusiveOptions
            raise InvalidArgument(f'invalid mount config for type "{kind}": field {name} must not be specified')
    if not dest:
        raise InvalidArgument(f'invalid mount config for type "{kind}": field Target must not be empty')
    _check_destination(dest, f"type={kind},target={dest}")
    if kind == "bind":
        return _bind_spec(spec, legacy_read_only)
    if kind == "volume":
        return _volume_spec(config, spec)
    if spec.source:
        raise InvalidArgument('invalid mount config for type "tmpfs": field Source must not be specified')
    return _tmpfs(_clean(dest), tmpfs_options(_tmpfs_words(spec), default_size=""), dest)


def _bind_spec(spec: MountSpec, legacy_read_only: bool = False) -> dict[str, Any]:
    from engine.container.mountspec import BindOptions  # loaded already: the spec is one of its values

    options = spec.bind or BindOptions()
    propagation = options.propagation
    if propagation and propagation not in PROPAGATIONS:
        raise InvalidArgument(f"invalid mount config for type \"bind\": invalid propagation mode: {propagation}")
    depth = _read_only_depth(spec, options, legacy_read_only)
    source = spec.source
    if not source:
        raise InvalidArgument('invalid mount config for type "bind": field Source must not be empty')
    if not source.startswith("/"):
        raise InvalidArgument(f"invalid mount config for type \"bind\": invalid mount path: '{source}' "
                              "(a bind source must be an absolute path)")
    source = _clean(source)
    if not os.path.exists(source):
        if not options.create_mountpoint:  # unlike -v, --mount does not create it (Docker's rule)
            raise InvalidArgument(f"invalid mount config for type \"bind\": bind source path does not exist: {source}")
        os.makedirs(source, exist_ok=True)
    _check_propagation(source, propagation or DEFAULT_PROPAGATION)
    bind = _bind(source, spec.target, not spec.read_only, "", propagation or DEFAULT_PROPAGATION)
    return bind | depth | ({"NonRecursive": True} if options.non_recursive else {})


def _read_only_depth(spec: MountSpec, options: BindOptions, legacy_read_only: bool) -> dict[str, bool]:
    """The record's ReadOnlyNonRecursive/ReadOnlyForceRecursive of a bind spec, with moby's checks
    in its words (the API route's for API < 1.44, daemon/volumes_unix.go's conflicts)."""
    force, top = options.read_only_force_recursive, options.read_only_non_recursive
    if legacy_read_only and force:
        raise InvalidArgument("BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer")
    for given, flag in ((top, "ReadOnlyNonRecursive"), (force, "ReadOnlyForceRecursive")):
        if given and not spec.read_only:
            raise InvalidArgument(f"mount options conflict: !ReadOnly && BindOptions.{flag}")
    if top and force:
        raise InvalidArgument("mount options conflict: ReadOnlyNonRecursive && BindOptions.ReadOnlyForceRecursive")
    if top or (legacy_read_only and spec.read_only):
        return {"ReadOnlyNonRecursive": True}
    return {"ReadOnlyForceRecursive": True} if force else {}


def _volume_spec(config: EngineConfig, spec: MountSpec) -> dict[str, Any]:
    from engine.container.mountspec import VolumeOptions

    options = spec.volume or VolumeOptions()
    if spec.source.startswith("/"):
        raise InvalidArgument(f"invalid mount config for type \"volume\": a volume source is a name, not a path: "
                              f"'{spec.source}'")
    if options.subpath:
        raise InvalidArgument("VolumeOptions.Subpath (--mount volume-subpath) is not supported by dockui")
    driver = options.driver.name if options.driver else ""
    if driver not in ("", "local"):  # moby's volume store finds no such plugin
        raise InvalidArgument(f'error looking up volume plugin {driver}: plugin "{driver}" not found')
    return _volume(config, spec.source, spec.target, not spec.read_only, VOLUME_DEFAULT_MODE,
                   copy=not options.no_copy, options=options)


def _tmpfs_words(spec: MountSpec) -> str:
    """moby's ConvertTmpfsOptions: ro, mode=, size= (in the largest unit that divides it), exec words."""
    from engine.container.mountspec import TmpfsOptions

    options = spec.tmpfs or TmpfsOptions()
    words = ["ro"] if spec.read_only else []
    if options.mode:
        words.append(f"mode={options.mode:o}")
    if options.size_bytes:
        size, suffix = options.size_bytes, ""
        for unit, divisor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
            if size % divisor == 0:
                size, suffix = size // divisor, unit
                break
        words.append(f"size={size}{suffix}")
    for option in options.options:
        if len(option) not in (1, 2):
            raise InvalidArgument('invalid mount config for type "tmpfs": invalid option array length')
        if option[0] not in _TMPFS_API_OPTIONS:
            raise InvalidArgument(f'invalid mount config for type "tmpfs": invalid option: {option[0]}')
        words.append("=".join(option))
    return ",".join(words)


def tmpfs_options(text: str, default_size: str = TMPFS_DEFAULT_SIZE) -> str:
    """`--tmpfs DEST:OPTIONS` options -> the mount's option string (flags and tmpfs data).

    Docker's defaults (nosuid, nodev, noexec; no size) unless overridden.
    """
    flags = dict.fromkeys(TMPFS_FLAGS)
    readonly = False
    data: dict[str, str] = {"size": default_size} if default_size else {}
    for word in filter(None, (w.strip() for w in text.split(","))):
        key, eq, value = word.partition("=")
        if not eq and key in _TMPFS_FLAG_WORDS:
            if key in ("ro", "rw"):
                readonly = key == "ro"
                continue
            opposite = key[2:] if key.startswith("no") else "no" + key
            flags.pop(opposite, None)
            flags[key] = None
        elif eq and key in _TMPFS_DATA_KEYS and value:
            data[key] = value
        else:
            raise InvalidArgument(f"invalid tmpfs option {word!r}")
    words = ["ro" if readonly else "rw", *flags, *(f"{k}={v}" for k, v in data.items())]
    return ",".join(words)


def _tmpfs(dest: str, options: str, spec: str) -> dict[str, Any]:
    if not dest.startswith("/"):  # --tmpfs and HostConfig.Tmpfs: moby's ValidateTmpfsMountDestination words
        raise InvalidArgument(f"invalid mount path: '{dest}' mount path must be absolute")
    _check_destination(dest, spec)
    rw = options.split(",")[0] != "ro"
    return {"Type": "tmpfs", "Source": "", "Destination": dest, "RW": rw, "Mode": "", "Name": "", "Options": options}


def for_api_before_1_44(opts: RunOptions) -> None:
    """What moby's create route and registerMountPoints do for a client of API < 1.44: every
    read-only bind is read-only at its top mount only, and a `HostConfig.Mounts` bind given with
    BindOptions shows it (moby sets ReadOnlyNonRecursive on the options the create's HostConfig
    holds, so inspect has it; one given without keeps none)."""
    from dataclasses import replace

    opts.legacy_read_only_binds = True
    opts.mounts = [replace(m, bind=replace(m.bind, read_only_non_recursive=True))
                   if m.type == "bind" and m.read_only and m.bind is not None and not m.bind.read_only_force_recursive
                   else m for m in opts.mounts]


def sandbox_bind(mount: dict[str, Any]) -> BindMount:
    """A record's bind or volume mount as engine.sandbox.rootfs mounts it (see the module's doc)."""
    from pathlib import Path

    from engine.sandbox import rootfs

    depth = (rootfs.READONLY_TOP if mount.get("ReadOnlyNonRecursive") else
             rootfs.READONLY_FORCE_RECURSIVE if mount.get("ReadOnlyForceRecursive") else rootfs.READONLY_RECURSIVE)
    return rootfs.BindMount(Path(mount["Source"]), mount["Destination"], not mount.get("RW", True),
                            mount.get("Propagation") or DEFAULT_PROPAGATION, recursive=not mount.get("NonRecursive"),
                            readonly_depth=depth)


# ------------------------------------------------------------------------------------------ as shown


def mount_points(record: ContainerRecord) -> list[dict[str, Any]]:
    """The record's mounts as Docker's inspect and container list show them (api MountPoint:
    Type, Name and Driver left out when empty; Propagation a bind's, "" otherwise). A `--tmpfs`
    mount (HostConfig.Tmpfs) is no MountPoint in Docker and is not shown; a `--mount type=tmpfs` is."""
    flag_tmpfs = record.host_config.get("Tmpfs") or {}
    shown = []
    for m in record.mounts:
        if m.get("Type") == "tmpfs" and m.get("Destination") in flag_tmpfs:
            continue
        point = {"Type": m.get("Type"), "Name": m.get("Name"), "Source": m.get("Source", ""),
                 "Destination": m.get("Destination"), "Driver": m.get("Driver"), "Mode": m.get("Mode") or "",
                 "RW": m.get("RW", True),
                 "Propagation": (m.get("Propagation") or DEFAULT_PROPAGATION) if m.get("Type") == "bind" else ""}
        shown.append({k: v for k, v in point.items() if v or k not in ("Type", "Name", "Driver")})
    return shown
