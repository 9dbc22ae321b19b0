"""Docker's mount.Mount as dockui holds it: `MountSpec`, what one `--mount` flag or one entry of
the API's `HostConfig.Mounts` says, and the docker CLI's reading of `--mount` (`parse_mount_flag`).

A spec is a value, kept in the record's HostConfig as given (`to_docker`: Go's encoding, with
omitempty on every field and `{}` for an options struct that was given empty); checking it and
making the mount is engine.container.mounts'. The CLI loads this module only for `--mount`, so
`run` without it defines none of these classes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from engine.errors import InvalidArgument

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


@dataclass(frozen=True)
class BindOptions:
    """mount.BindOptions: `non_recursive` binds the source's top mount only; a read-only bind is
    read-only down its tree unless `read_only_non_recursive` (its top mount only);
    `read_only_force_recursive` refuses to start where the kernel cannot (engine.container.mounts)."""

    propagation: str = ""
    non_recursive: bool = False
    create_mountpoint: bool = False
    read_only_non_recursive: bool = False
    read_only_force_recursive: bool = False


@dataclass(frozen=True)
class VolumeDriver:
    """mount.Driver: the volume's driver (only `local`) and its options (type, device, o)."""

    name: str = ""
    options: tuple[tuple[str, str], ...] | None = None  # None: no Options key (Go's nil map)


@dataclass(frozen=True)
class VolumeOptions:
    """mount.VolumeOptions: for a volume the mount creates, its labels and driver options."""

    no_copy: bool = False
    labels: tuple[tuple[str, str], ...] | None = None
    subpath: str = ""
    driver: VolumeDriver | None = None


@dataclass(frozen=True)
class TmpfsOptions:
    """mount.TmpfsOptions: size in bytes, mode bits, and the exec/noexec words."""

    size_bytes: int = 0
    mode: int = 0
    options: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class MountSpec:
    """Docker's mount.Mount: one `--mount` flag or one entry of HostConfig.Mounts."""

    type: str = "volume"
    source: str = ""
    target: str = ""
    read_only: bool = False
    consistency: str = ""
    bind: BindOptions | None = None
    volume: VolumeOptions | None = None
    tmpfs: TmpfsOptions | None = None

    def to_docker(self) -> dict[str, Any]:
        """As Docker's HostConfig.Mounts shows it: Go's encoding of mount.Mount (omitempty on every
        field; an options struct that was given is `{}` even when all its fields are empty)."""
        out: dict[str, Any] = _present({"Type": self.type, "Source": self.source, "Target": self.target,
                                        "ReadOnly": self.read_only, "Consistency": self.consistency})
        if self.bind is not None:
            b = self.bind
            out["BindOptions"] = _present({
                "Propagation": b.propagation, "NonRecursive": b.non_recursive, "CreateMountpoint": b.create_mountpoint,
                "ReadOnlyNonRecursive": b.read_only_non_recursive, "ReadOnlyForceRecursive": b.read_only_force_recursive})
        if self.volume is not None:
            v = self.volume
            out["VolumeOptions"] = _present({"NoCopy": v.no_copy, "Labels": dict(v.labels or ()), "Subpath": v.subpath})
            if v.driver is not None:
                out["VolumeOptions"]["DriverConfig"] = _present({"Name": v.driver.name,
                                                                 "Options": dict(v.driver.options or ())})
        if self.tmpfs is not None:
            t = self.tmpfs
            out["TmpfsOptions"] = _present({"SizeBytes": t.size_bytes, "Mode": t.mode,
                                            "Options": [list(o) for o in t.options]})
        return out


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    """Go's omitempty: "", false, 0, an empty map or list are left out."""
    return {k: v for k, v in fields.items() if v not in ("", False, 0, {}, [])}


def parse_mount_flag(text: str) -> MountSpec:
    """`--mount type=...,source=...,target=...` as the docker CLI reads it (opts.MountOpt.Set): CSV
    fields (`"volume-opt=o=size=8m,mode=0750"` quoted keeps its commas), Docker's keys and words."""
    # what the fields set: the mount's own values, then each options struct the CLI would allocate
    parts: dict[str, dict[str, Any]] = {"mount": {"type": "volume"}, "bind": {}, "volume": {}, "driver": {}, "tmpfs": {}}
    for key, value, given in _flag_fields(text):
        _apply_field(parts, key, value, given)
    volume, driver = parts["volume"], parts["driver"]
    if driver:
        volume["driver"] = VolumeDriver(driver.get("name", ""), _pairs(driver.get("options")))
    if "labels" in volume:
        volume["labels"] = _pairs(volume["labels"])
    bind, tmpfs = parts["bind"], parts["tmpfs"]
    spec = MountSpec(**parts["mount"], bind=BindOptions(**bind) if bind else None,
                     volume=VolumeOptions(**volume) if volume else None, tmpfs=TmpfsOptions(**tmpfs) if tmpfs else None)
    _check_flag_options(spec)
    return spec


def _flag_fields(text: str) -> list[tuple[str, str, bool]]:
    """The CSV fields as (lower-cased key, value, whether `=` was given), with the CLI's checks."""
    import csv

    text = text.strip()
    if not text:
        raise InvalidArgument("invalid --mount: value is empty")
    try:
        fields = next(csv.reader([text]))
    except (csv.Error, StopIteration) as exc:
        raise InvalidArgument(f"invalid --mount {text!r}: {exc}") from None
    found = []
    for field in fields:
        key, eq, value = field.partition("=")
        if key.strip() != key:
            raise InvalidArgument(f"invalid --mount: invalid option '{key.strip()}' in '{field}': "
                                  "option should not have whitespace")
        if eq and not value.strip():
            raise InvalidArgument(f"invalid --mount: invalid value for '{key}': value is empty")
        if eq and value.strip() != value:
            raise InvalidArgument(f"invalid --mount: invalid value for '{key}' in '{field}': value should not have whitespace")
        if not eq and key.lower() not in ("readonly", "ro", "volume-nocopy", "bind-create-src"):
            raise InvalidArgument(f"invalid --mount: invalid field '{field}' must be a key=value pair")
        found.append((key.lower(), value, bool(eq)))
    return found


# --mount keys that set a plain value: key -> (part, field, how the value is read)
_FLAG_VALUES: dict[str, tuple[str, str, Callable[[str, str, bool], Any]]] = {
    "type": ("mount", "type", lambda _k, v, _g: v.lower()),
    "source": ("mount", "source", lambda _k, v, _g: os.path.abspath(v) if v.startswith(".") else v),
    "target": ("mount", "target", lambda _k, v, _g: v),
    "readonly": ("mount", "read_only", lambda k, v, g: _flag_bool(k, v, g)),
    "consistency": ("mount", "consistency", lambda _k, v, _g: v.lower()),
    "bind-propagation": ("bind", "propagation", lambda _k, v, _g: v.lower()),
    "bind-create-src": ("bind", "create_mountpoint", lambda k, v, g: _flag_bool(k, v, g)),
    "volume-nocopy": ("volume", "no_copy", lambda k, v, g: _flag_bool(k, v, g)),
    "volume-driver": ("driver", "name", lambda _k, v, _g: v),
    "volume-subpath": ("volume", "subpath", lambda _k, v, _g: v),
    "tmpfs-size": ("tmpfs", "size_bytes", lambda k, v, _g: _flag_size(k, v)),
    "tmpfs-mode": ("tmpfs", "mode", lambda k, v, _g: _flag_mode(k, v)),
}
_FLAG_ALIASES = {"src": "source", "dst": "target", "destination": "target", "ro": "readonly"}


def _apply_field(parts: dict[str, dict[str, Any]], key: str, value: str, given: bool) -> None:
    canonical = _FLAG_ALIASES.get(key, key)
    if canonical in _FLAG_VALUES:
        part, name, read = _FLAG_VALUES[canonical]
        parts[part][name] = read(key, value, given)  # errors name the key as given, as the CLI's
    elif key == "bind-recursive":
        _bind_recursive(parts["bind"], value)
    elif key in ("volume-label", "volume-opt"):
        # the CLI's ensureVolumeOptions/ensureVolumeDriver and setValueOnMap (a pair without a key adds none)
        owner, slot = (parts["volume"], "labels") if key == "volume-label" else (parts["driver"], "options")
        name, _, setting = value.partition("=")
        owner.setdefault(slot, None)
        if name:
            owner[slot] = {**(owner[slot] or {}), name: setting}
    else:
        raise InvalidArgument(f"invalid --mount: unknown option '{key}' in '{key}={value}'")


def _pairs(mapping: dict[str, str] | None) -> tuple[tuple[str, str], ...] | None:
    return None if mapping is None else tuple(mapping.items())


def _flag_bool(key: str, value: str, given: bool) -> bool:
    if not given:
        return True
    if value in ("1", "true", "0", "false"):
        return value in ("1", "true")
    raise InvalidArgument(f"invalid --mount: invalid value for '{key}': invalid boolean value (\"{value}\"): "
                          'must be one of "true", "1", "false", or "0" (default "true")')


def _flag_size(key: str, value: str) -> int:
    from engine.util.units import parse_size

    try:
        return parse_size(value)
    except InvalidArgument:
        raise InvalidArgument(f"invalid --mount: invalid value for {key}: {value}") from None


def _flag_mode(key: str, value: str) -> int:
    try:
        return int(value, 8)
    except ValueError:
        raise InvalidArgument(f"invalid --mount: invalid value for {key}: {value}") from None


def _bind_recursive(bind: dict[str, Any], value: str) -> None:
    settings = {"enabled": {}, "disabled": {"non_recursive": True}, "writable": {"read_only_non_recursive": True},
                "readonly": {"read_only_force_recursive": True}}
    if value not in settings:
        raise InvalidArgument(f'invalid --mount: invalid value for bind-recursive: {value} '
                              '(must be "enabled", "disabled", "writable", or "readonly")')
    bind.update(settings[value])


def _check_flag_options(spec: MountSpec) -> None:
    """The docker CLI's validateMountOptions, in its words (`bind-*` on a volume, ...)."""
    for given, kind in ((spec.bind, "bind"), (spec.volume, "volume"), (spec.tmpfs, "tmpfs")):
        if given is not None and spec.type != kind:
            raise InvalidArgument(f"invalid --mount: cannot mix '{kind}-*' options with mount type '{spec.type}'")
    if spec.bind is not None and not spec.read_only:
        for on, value in ((spec.bind.read_only_non_recursive, "writable"), (spec.bind.read_only_force_recursive, "readonly")):
            if on:
                raise InvalidArgument(f"invalid --mount: option 'bind-recursive={value}' requires 'readonly' "
                                      "to be specified in conjunction")
    if spec.bind is not None and spec.bind.read_only_force_recursive and spec.bind.propagation != "rprivate":
        raise InvalidArgument("invalid --mount: option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' "
                              "to be specified in conjunction")
