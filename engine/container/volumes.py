"""Named volumes: `<root>/volumes/<name>/_data`, with Docker's `local` driver semantics.

A volume is a directory that outlives containers; `rm -v` and `volume prune` remove the anonymous
ones. Metadata (creation time, labels, anonymous flag) sits next to `_data` in `volume.json`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine import events
from engine.config import EngineConfig
from engine.errors import Conflict, InvalidArgument, NotFound
from engine.util.fsutil import atomic_write_json, file_lock, read_json

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any

VOLUME_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


@dataclass
class Volume:
    """A named or anonymous volume: `<root>/volumes/<name>/_data` and its metadata."""

    name: str
    mountpoint: Path
    created_at: str
    labels: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False

    def inspect(self) -> dict[str, Any]:
        return {
            "CreatedAt": self.created_at,
            "Driver": "local",
            "Labels": self.labels or None,
            "Mountpoint": str(self.mountpoint),
            "Name": self.name,
            "Options": None,
            "Scope": "local",
        }


def _lock(config: EngineConfig) -> Path:
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
    )


def create_volume(
    config: EngineConfig, name: str | None = None, labels: dict[str, str] | None = None, anonymous: bool = False
) -> Volume:
    """Create a volume (idempotent for an existing name, as Docker's local driver is)."""
    from engine.container.state import now_rfc3339

    if name is None:
        name = secrets.token_hex(32)
        anonymous = True
    if not VOLUME_NAME_RE.match(name):
        raise InvalidArgument(f'"{name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed')
    with file_lock(_lock(config)):
        existing = _load(config, name)
        if existing is not None:
            return existing
        d = config.volumes_dir / name
        (d / "_data").mkdir(parents=True, exist_ok=True)
        meta = {"CreatedAt": now_rfc3339(), "Labels": labels or {}, "Anonymous": anonymous}
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


def remove_volume(config: EngineConfig, name: str, force: bool = False) -> None:
    import shutil

    get_volume(config, name)
    with file_lock(_lock(config)):
        users = volumes_in_use(config).get(name)
        if users and not force:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        shutil.rmtree(config.volumes_dir / name, ignore_errors=True)
    events.volume(config, "destroy", name)


def prune_volumes(config: EngineConfig, all_volumes: bool = False,
                  selected: Callable[[Volume], bool] | None = None) -> list[str]:
    """Remove unused anonymous volumes (all unused ones with `all_volumes`; those `selected` lets
    go: prune's filters), like `docker volume prune`."""
    removed = []
    in_use = volumes_in_use(config)
    for volume in list_volumes(config):
        if volume.name in in_use or not (volume.anonymous or all_volumes):
            continue
        if selected is not None and not selected(volume):
            continue
        try:
            remove_volume(config, volume.name)
            removed.append(volume.name)
        except (Conflict, NotFound):
            continue
    return removed
