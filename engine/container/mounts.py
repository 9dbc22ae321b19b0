"""What a container mounts besides its root: `-v`, `--mount` and `--tmpfs`, as Docker MountPoints.

Each spec becomes one dict in the record's `Mounts` (Docker's `MountPoints` shape): `Type` "bind"
(an absolute host path), "volume" (named, or anonymous: a 64-hex name, removed with `rm -v`/`--rm`)
or "tmpfs" (an empty tmpfs made in the container's mount namespace; `Options` is its mount data).
The container's first process mounts them (engine.sandbox.rootfs) after its root is pivoted.

Docker's rules kept: `-v` creates a missing bind source, `--mount type=bind` refuses one; a
destination must be absolute and not `/`; two mounts may not share a destination. A bind has a
propagation (`-v SRC:DST:rshared`, `--mount ...,bind-propagation=rslave`; rprivate by default): a
shared or slave one needs its source on a shared (or slave) mount, as Docker requires.
"""

from __future__ import annotations

import os

from engine.config import EngineConfig
from engine.errors import InvalidArgument

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

# Docker's --tmpfs defaults (rw, noexec, nosuid), plus nodev as runc sets it. No size unless asked
# for: Docker's daemon passes none, so the kernel's default (half the RAM) is the only limit.
TMPFS_FLAGS = ("nosuid", "nodev", "noexec")
TMPFS_DEFAULT_SIZE = ""
# Docker's bind propagation modes (engine.sandbox.rootfs.PROPAGATIONS has their mount flags) and its
# default for a bind; a volume has none ("" in inspect, rprivate in effect).
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
DEFAULT_PROPAGATION = "rprivate"
_TMPFS_FLAG_WORDS = {"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev"}
_TMPFS_DATA_KEYS = {"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"}


def prepare_mounts(
    config: EngineConfig,
    volumes: Sequence[str],
    image_volumes: dict[str, Any],
    mount_flags: Sequence[str] = (),
    tmpfs_flags: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """`-v` specs, `--mount` specs, `--tmpfs` specs and the image's `Volumes`, in that order."""
    mounts: list[dict[str, Any]] = []
    if not (volumes or image_volumes or mount_flags or tmpfs_flags):
        return mounts
    for spec in volumes:
        mounts.append(_volume_flag(config, spec))
    for spec in mount_flags:
        mounts.append(_mount_flag(config, spec))
    for spec in tmpfs_flags:
        dest, _, options = spec.partition(":")
        mounts.append(_tmpfs(dest, tmpfs_options(options), spec))
    seen: set[str] = set()
    for mount in mounts:
        if mount["Destination"] in seen:
            raise InvalidArgument(f"Duplicate mount point: {mount['Destination']}")
        seen.add(mount["Destination"])
    for dest in image_volumes:
        if dest not in seen:
            mounts.append(_volume(config, "", dest, True, ""))
    return mounts


def _check_destination(dest: str, spec: str) -> None:
    if not dest.startswith("/"):
        raise InvalidArgument(f"invalid mount specification: '{spec}': destination must be an absolute path")
    if os.path.normpath(dest) == "/":
        raise InvalidArgument(f"invalid mount specification: '{spec}': destination can't be '/'")


def _volume_flag(config: EngineConfig, spec: str) -> dict[str, Any]:
    """`-v [SOURCE:]DEST[:MODE]`: SOURCE absolute -> bind (made if missing), else a named volume."""
    parts = spec.split(":")
    mode = "rw"
    if len(parts) == 3:
        source, dest, mode = parts
    elif len(parts) == 2:
        source, dest = parts
    elif len(parts) == 1:
        source, dest = "", parts[0]
    else:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    words = mode.split(",")
    # z/Z (SELinux relabel) and cached/delegated/consistent (Docker Desktop's) are accepted and
    # change nothing, as Docker on Linux without SELinux does. At most one word of each kind.
    propagation = [w for w in words if w in PROPAGATIONS]
    if not set(words) <= {"rw", "ro", "z", "Z", "nocopy", "cached", "delegated", "consistent", *PROPAGATIONS} or (
            "rw" in words and "ro" in words) or len(propagation) > 1:
        raise InvalidArgument(f"invalid mode: {mode}")
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
        return _bind(source, dest, rw, mode, propagation[0] if propagation else DEFAULT_PROPAGATION)
    return _volume(config, source, dest, rw, mode if mode != "rw" else "")


def _bind(source: str, dest: str, rw: bool, mode: str, propagation: str) -> dict[str, Any]:
    return {"Type": "bind", "Source": source, "Destination": dest, "RW": rw, "Mode": mode, "Name": "",
            "Propagation": propagation}


def _check_propagation(source: str, propagation: str) -> None:
    """Docker's rule for a shared or slave bind: its source must be on a shared (or slave) mount
    (checked again when the container starts: engine.sandbox.rootfs)."""
    if propagation in ("shared", "rshared", "slave", "rslave"):
        from engine.sandbox.rootfs import propagation_error

        error = propagation_error(source, propagation)
        if error is not None:
            raise InvalidArgument(error)


def _volume(config: EngineConfig, name: str, dest: str, rw: bool, mode: str, copy: bool = True) -> dict[str, Any]:
    """A named volume (made on first use) or, without a name, an anonymous one. `copy`: filled with
    the image's content at `dest` when empty (Docker's MountPoint.CopyData; engine.container.copyup)."""
    from engine.container.volumes import create_volume

    volume = create_volume(config, name or None)
    return {
        "Type": "volume",
        "Name": volume.name,
        "Source": str(volume.mountpoint),
        "Destination": dest,
        "Driver": "local",
        "RW": rw,
        "Mode": mode,
        "Anonymous": volume.anonymous,
        "CopyData": copy,
    }


def _mount_flag(config: EngineConfig, spec: str) -> dict[str, Any]:
    """`--mount type=bind|volume|tmpfs,source=...,target=...[,readonly][,tmpfs-size=...]` (Docker's keys)."""
    fields: dict[str, str] = {}
    for item in spec.split(","):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not key:
            continue
        if key in ("readonly", "ro"):
            value = value.lower() if eq else "true"
            if value not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid --mount {spec!r}: readonly takes true or false")
            fields["readonly"] = "true" if value in ("true", "1") else "false"
            continue
        if not eq and key == "volume-nocopy":  # a bare flag, as Docker takes it
            value = "true"
        elif not eq:
            raise InvalidArgument(f"invalid --mount {spec!r}: field '{key}' must be a key=value pair")
        key = {"src": "source", "dst": "target", "destination": "target"}.get(key, key)
        if key not in ("type", "source", "target", "bind-propagation", "volume-nocopy", "tmpfs-size", "tmpfs-mode"):
            raise InvalidArgument(f"invalid --mount {spec!r}: unknown field '{key}'")
        fields[key] = value
    kind = fields.get("type", "volume")
    dest = fields.get("target", "")
    if not dest:
        raise InvalidArgument(f"invalid --mount {spec!r}: target is required")
    _check_destination(dest, spec)
    rw = fields.get("readonly", "false") != "true"
    source = fields.get("source", "")
    propagation = fields.get("bind-propagation", "").lower()
    if propagation and kind != "bind":  # moby's validateExclusiveOptions
        raise InvalidArgument(f"invalid mount config for type \"{kind}\": field BindOptions must not be specified")
    if kind == "bind":
        if propagation and propagation not in PROPAGATIONS:
            raise InvalidArgument(f"invalid mount config for type \"bind\": invalid propagation mode: {propagation}")
        if not source.startswith("/"):
            raise InvalidArgument(f"invalid --mount {spec!r}: a bind source must be an absolute path")
        if not os.path.exists(source):  # unlike -v, --mount does not create it (Docker's rule)
            raise InvalidArgument(f"invalid mount config for type \"bind\": bind source path does not exist: {source}")
        _check_propagation(source, propagation or DEFAULT_PROPAGATION)
        return _bind(source, dest, rw, "", propagation or DEFAULT_PROPAGATION)
    if kind == "volume":
        if source.startswith("/"):
            raise InvalidArgument(f"invalid --mount {spec!r}: a volume source is a name, not a path")
        nocopy = fields.get("volume-nocopy", "false").lower() in ("true", "1")
        return _volume(config, source, dest, rw, "", copy=not nocopy)
    if kind == "tmpfs":
        if source:
            raise InvalidArgument(f"invalid --mount {spec!r}: a tmpfs has no source")
        words = [] if rw else ["ro"]
        if "tmpfs-size" in fields:
            words.append(f"size={fields['tmpfs-size']}")
        if "tmpfs-mode" in fields:
            words.append(f"mode={fields['tmpfs-mode']}")
        return _tmpfs(dest, tmpfs_options(",".join(words), default_size=""), spec)
    raise InvalidArgument(f"invalid --mount {spec!r}: type must be bind, volume or tmpfs")


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
    _check_destination(dest, spec)
    rw = options.split(",")[0] != "ro"
    return {"Type": "tmpfs", "Source": "", "Destination": dest, "RW": rw, "Mode": "", "Name": "", "Options": options}
