"""System: disk usage (`system df`) and the events log (history, filters, following), the typed
calls the CLI's `events`/`system df` and the service's `/system/df` and `/events` make.

The figures are read from the stores now (image layers once each, containers' rw layers, volume
trees); the events are the engine's log (engine/events.py, read through engine/eventlog.py). Nothing here changes state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from engine import eventlog
from engine.config import EngineConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from engine.container.state import ContainerRecord
    from engine.container.volumes import Volume
    from engine.image.store import ImageRecord

Event = eventlog.Event
EventFilter = eventlog.EventFilter


# ---- disk usage ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageUsage:
    record: ImageRecord
    containers: int  # how many containers use it
    shared_size: int  # bytes of its layers that other images use too


@dataclass(frozen=True)
class ContainerUsage:
    record: ContainerRecord
    size_rw: int  # what the container wrote (its rw layer)
    size_root_fs: int  # that plus its image
    names: tuple[str, ...] = ()  # moby's Names, as the container list has them (with the names links reserved)


@dataclass(frozen=True)
class VolumeUsage:
    volume: Volume
    size: int
    ref_count: int  # containers that mount it


@dataclass(frozen=True)
class DiskUsage:
    layers_size: int  # every stored layer once
    images: tuple[ImageUsage, ...]
    containers: tuple[ContainerUsage, ...]
    volumes: tuple[VolumeUsage, ...]


def disk_usage(config: EngineConfig) -> DiskUsage:
    from engine.api import volumes as api_volumes
    from engine.api.containers import container_names, container_sizes
    from engine.api.images import shared_bytes
    from engine.container import state
    from engine.container import volumes as engine_volumes
    from engine.image.store import ImageStore
    from engine.image.store.images import children_by_parent

    store = ImageStore(config)
    images = store.list_images()
    containers = state.list_containers(config)
    layer_sizes: dict[str, int] = {}
    for record in images:
        for chain in record.chain_ids:
            if chain not in layer_sizes:
                layer_sizes[chain] = store.layer_info(chain).size
    shared = shared_bytes(images, layer_sizes.__getitem__)
    by_image: dict[str, int] = {}
    for container in containers:
        by_image[container.image_id] = by_image.get(container.image_id, 0) + 1
    parents = children_by_parent(images)  # Docker's df counts no intermediate image (untagged, with a child)
    image_usage = tuple(
        ImageUsage(r, by_image.get(r.id, 0), shared[r.id])
        for r in images if r.repo_tags or r.repo_digests or r.id not in parents
    )
    image_size = {r.id: r.size for r in images}
    container_usage = []
    names = container_names(containers)  # moby's df lists the containers as its list does
    for container in containers:
        sizes = container_sizes(config, container, image_size)
        container_usage.append(ContainerUsage(container, sizes.rw, sizes.root_fs, tuple(names.get(container.id, ()))))
    mounts = engine_volumes.volumes_in_use(config)
    sizes = api_volumes.sizes(config)
    volume_usage = tuple(
        VolumeUsage(v, sizes.get(v.name, 0), len(mounts.get(v.name, []))) for v in engine_volumes.list_volumes(config)
    )
    for info in store.unreferenced_layers():  # a killed pull's: stored, counted, reclaimable by image prune
        layer_sizes.setdefault(info.chain_id, info.size)
    return DiskUsage(sum(layer_sizes.values()), image_usage, tuple(container_usage), volume_usage)


# ---- events ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventQuery:
    """Which events: since/until in nanoseconds since the epoch (None: from now on / for ever)."""

    since_ns: int | None = None
    until_ns: int | None = None
    event_filter: EventFilter = EventFilter()

    @property
    def ended(self) -> bool:
        """True when `until` has passed: the query has nothing live left to wait for."""
        return self.until_ns is not None and time.time_ns() > self.until_ns


_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
                   "h": 3_600_000_000_000}


def parse_event_time(text: str) -> int:
    """Docker's --since/--until: a Unix time (fractions allowed, as the docker CLI sends them), an
    RFC3339 time (without a zone: UTC) or a Go duration ago (10m, 1h30m, 1.5s). Nanoseconds since
    the epoch; InvalidArgument for anything else."""
    import re

    from engine.errors import InvalidArgument
    from engine.util.timefmt import parse_rfc3339

    seconds_text, dot, fraction = text.partition(".")
    if seconds_text.isdigit() and len(seconds_text) < 20 and (not dot or fraction.isdigit()):  # an int64, as Go's
        return int(seconds_text) * 1_000_000_000 + int((fraction + "000000000")[:9])
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    ago = sum(float(n) * _DURATION_UNITS[u] for n, u in parts) if parts else 0.0
    if parts and "".join(n + u for n, u in parts) == text and ago < float("inf"):  # 400 digits are inf
        return time.time_ns() - int(ago)
    seconds = parse_rfc3339(text)
    if seconds is None:
        raise InvalidArgument(f"invalid time {text!r}: use a Unix time, an RFC3339 time or a duration such as 10m")
    return int(seconds * 1e9)


def past_events(config: EngineConfig, query: EventQuery) -> list[Event]:
    """The logged events the query selects, oldest first (none without `since`: Docker streams only
    live events then)."""
    if query.since_ns is None:
        return []
    found = eventlog.read_events(config, query.since_ns, query.until_ns)
    return list(eventlog.iter_matching(found, query.event_filter))


class EventStream:
    """A query's events: `backlog` (the logged ones it selects, oldest first) then, from `poll()`,
    the live ones. The follower starts before the backlog is read, so nothing appended in between
    is missed; what both saw is given once."""

    def __init__(self, config: EngineConfig, query: EventQuery) -> None:
        self.query = query
        self._follower = eventlog.Follower(config)
        self.backlog = past_events(config, query)
        self._seen = {_key(e) for e in self.backlog}

    def poll(self) -> list[Event]:
        fresh = [e for e in self._follower.poll() if _key(e) not in self._seen]
        self._seen.clear()  # only the overlap with the backlog can repeat, on the first poll
        return [e for e in fresh if _selected(e, self.query)]

    def close(self) -> None:
        self._follower.close()


def _key(event: Event) -> tuple[int, str, str, str]:
    return (event.time_nano, event.type, event.action, event.actor_id)


def _selected(event: Event, query: EventQuery) -> bool:
    if query.since_ns is not None and event.time_nano < query.since_ns:
        return False
    if query.until_ns is not None and event.time_nano > query.until_ns:
        return False
    return query.event_filter.matches(event)
