"""Volumes: the typed calls the front ends make (list with filters, create, inspect, remove, prune),
each on engine.container.volumes, which owns `<root>/volumes`. This module checks the typed
arguments and filters; the volume documents are the engine's own (`Volume.inspect`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.config import EngineConfig
from engine.container import volumes as engine_volumes
from engine.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path
    from typing import Any

    from engine.api.prune import PruneFilter
    from engine.container.volumes import Volume

VOLUME_FILTER_KEYS = ("dangling", "driver", "label", "name")


@dataclass(frozen=True)
class CreateVolume:
    """Docker's volume create body: the `local` driver, with its options (type, device, o)."""

    name: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VolumeFilter:
    """Docker's volume filters: name (substring), driver, label KEY[=VALUE] (all must match),
    dangling=true|false (no container mounts it)."""

    wanted: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def parse(cls, pairs: Iterable[tuple[str, str]]) -> VolumeFilter:
        wanted: dict[str, list[str]] = {}
        for key, value in pairs:
            if key not in VOLUME_FILTER_KEYS:
                raise InvalidArgument(f"invalid filter '{key}'")
            if key == "dangling" and value.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid filter 'dangling={value}'")
            wanted.setdefault(key, []).append(value)
        return cls(tuple((k, tuple(v)) for k, v in sorted(wanted.items())))

    def matches(self, volume: Volume, in_use: bool) -> bool:
        for key, values in self.wanted:
            if key == "name" and not any(v in volume.name for v in values):
                return False
            if key == "driver" and "local" not in values:
                return False
            if key == "dangling" and not any((not in_use) == (v.lower() in ("true", "1")) for v in values):
                return False
            if key == "label" and not all(
                k in volume.labels and (not sep or volume.labels[k] == v) for k, sep, v in (x.partition("=") for x in values)
            ):
                return False
        return True


def list_volumes(config: EngineConfig, volume_filter: VolumeFilter | None = None) -> list[Volume]:
    flt = volume_filter or VolumeFilter()
    users = engine_volumes.volumes_in_use(config) if flt.wanted else {}
    return [v for v in engine_volumes.list_volumes(config) if flt.matches(v, v.name in users)]


def create(config: EngineConfig, spec: CreateVolume) -> Volume:
    return engine_volumes.create_volume(config, spec.name or None, labels=dict(spec.labels),
                                        options=dict(spec.options))


def inspect(config: EngineConfig, name: str) -> dict[str, Any]:
    return engine_volumes.get_volume(config, name).inspect()


def remove(config: EngineConfig, name: str, force: bool = False) -> None:
    engine_volumes.remove_volume(config, name, force=force)


def prune(config: EngineConfig, all_volumes: bool = False, filters: PruneFilter | None = None,
          ) -> tuple[list[str], int]:
    """Remove unused anonymous volumes (every unused one with `all_volumes`; those the label
    filters let go): names and bytes freed. As Docker's SpaceReclaimed, only the volumes removed
    are measured, each as its removal is certain (not every volume of the store first)."""
    sizes: dict[str, int] = {}
    selected = None if filters is None else (lambda volume: filters.selects(None, volume.labels))
    removed = engine_volumes.prune_volumes(config, all_volumes=all_volumes, selected=selected,
                                           before_delete=lambda v: sizes.__setitem__(v.name, _tree_size(v.mountpoint)))
    freed = sum(sizes.get(name, 0) for name in removed)
    from engine.api.prune import log_prune

    log_prune(config, "volume", freed)
    return removed, freed


def _tree_size(path: Path) -> int:
    """Bytes under a directory (each inode once), as `system df` and prune report them."""
    import os

    total, seen = 0, set()
    for top, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                st = os.lstat(os.path.join(top, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def sizes(config: EngineConfig) -> dict[str, int]:
    return {v.name: _tree_size(v.mountpoint) for v in engine_volumes.list_volumes(config)}


def used_by(config: EngineConfig) -> dict[str, tuple[str, ...]]:
    """Volume name -> IDs of the containers that mount it (running or not), as rm and prune judge use."""
    return {name: tuple(ids) for name, ids in engine_volumes.volumes_in_use(config).items()}
