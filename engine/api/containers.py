"""Containers and exec through the one façade: typed calls over engine.container.

Each call reconciles first (containers whose monitor died are marked exited, as every CLI verb does)
and then delegates to the verb's one implementation (runtime, waiting, logs, execs, stats). What is
here is only what more than one front end needs and the engine's modules do not say: the list
query (Docker's filters), sizes, the log query, and stats in Docker's JSON shape.

Invariant: nothing here forks. Calls that must fork (exec, export) go through a fresh interpreter
(engine.container.execs), so the multi-threaded service and the TUI may call every function here.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from engine.config import EngineConfig
from engine.container import create as creating
from engine.container import filters, lifecycle, removal, state
from engine.container import inspect as inspecting
from engine.container import start as starting
from engine.container.options import RunOptions
from engine.container.reconcile import reconcile as _reconcile
from engine.container.spawner import Spawner, Started
from engine.container.state import ContainerRecord
from engine.errors import DockuiError, NotFound
from engine.util import timefmt

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from engine.api.prune import PruneFilter
    from engine.container.logs import LogEntry
    from engine.container.update import Update

FOLLOW_POLL_SECONDS = 0.05  # a follower sees a stop within this (docker-py's run reads logs to their end)


@dataclass(frozen=True)
class ContainerQuery:
    """`docker ps`: every container or only running ones, newest first, at most `limit`."""

    all: bool = False
    limit: int = -1
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class LogQuery:
    """`docker logs`: which streams, since/until (Unix seconds), the last `tail` entries."""

    stdout: bool = True
    stderr: bool = True
    since: float | None = None
    until: float | None = None
    tail: int | None = None
    follow: bool = False


@dataclass(frozen=True)
class Sizes:
    """Docker's SizeRw (what the container wrote) and SizeRootFs (that plus its image)."""

    rw: int
    root_fs: int


# ------------------------------------------------------------------------------------------ lifecycle


def reconcile(config: EngineConfig) -> None:
    _reconcile(config)


def create(config: EngineConfig, opts: RunOptions, aliases: tuple[str, ...] = (),
           recorded: tuple[tuple[str, Any], ...] = ()) -> ContainerRecord:
    """A new container from an image already in the store (Docker's create never pulls).

    `aliases`: more names for it on its (user-defined) network, kept in its HostConfig as
    NetworkAliases, where the monitor's network set-up reads them at every start. `recorded`:
    HostConfig values the engine acts on as its defaults (Isolation, Runtime), kept as the client
    gave them for inspect."""
    from engine.image.store import ImageStore

    _reconcile(config)
    try:
        image = ImageStore(config).resolve(opts.image_id or opts.image)
    except NotFound:
        from engine.image.store.images import missing_image

        raise missing_image(opts.image) from None
    opts.image_id = image.id
    record = creating.create(config, opts)
    if aliases or recorded:
        extra: dict[str, Any] = dict(recorded)
        if aliases:
            extra["NetworkAliases"] = list(aliases)
        try:
            with state.locked(config, record.id) as locked:
                locked.host_config = {**locked.host_config, **extra}
                state.save(config, locked, durable=True)  # hostconfig.json is written only so
            record = locked
        except BaseException:
            removal.remove(config, record.id, force=True, volumes=True)  # created whole or not at all
            raise
    return record


def start(
    config: EngineConfig, ref: str, attach: bool = False, interactive: bool = False,
    winsize: tuple[int, int] | None = None, spawner: Spawner | None = None,
) -> Started:
    """Start the container; its attach channel when `attach`. A threaded caller (the service, the
    TUI) passes a `spawner.Spawner`, which starts it at the single-threaded fork path's speed."""
    _reconcile(config)
    record = state.find_container(config, ref)
    from engine.api.networks import pending_joined

    with pending_joined(config, record):
        if spawner is not None:
            return spawner.start(config, record.id, attach, interactive, winsize)
        result = starting.start(config, record.id, attach=attach, interactive=interactive, winsize=winsize)
        import socket

        return Started(socket.socket(fileno=result.attach.detach()) if result.attach is not None else None)


def find(config: EngineConfig, ref: str) -> ContainerRecord:
    return state.find_container(config, ref)


def stop(config: EngineConfig, ref: str, timeout: int | None = None, sig: str | None = None) -> ContainerRecord:
    _reconcile(config)
    return lifecycle.stop(config, ref, timeout, sig)


def kill(config: EngineConfig, ref: str, sig: str = "SIGKILL") -> ContainerRecord:
    _reconcile(config)
    return lifecycle.kill(config, ref, sig or "SIGKILL")


def restart(config: EngineConfig, ref: str, timeout: int | None = None) -> ContainerRecord:
    _reconcile(config)
    return lifecycle.restart(config, ref, timeout)


def pause(config: EngineConfig, ref: str) -> ContainerRecord:
    return lifecycle.pause(config, ref)


def unpause(config: EngineConfig, ref: str) -> ContainerRecord:
    return lifecycle.unpause(config, ref)


def rename(config: EngineConfig, ref: str, new_name: str) -> None:
    lifecycle.rename(config, ref, new_name)


def remove(config: EngineConfig, ref: str, force: bool = False, volumes: bool = False) -> ContainerRecord:
    _reconcile(config)
    return removal.remove(config, ref, force=force, volumes=volumes)


def remove_link(config: EngineConfig, link_name: str) -> ContainerRecord:
    """`rm --link <container>/<alias>`: the legacy link goes, both containers stay."""
    from engine.container.unlink import remove_link as unlink

    return unlink(config, link_name)


def update(config: EngineConfig, ref: str, change: Update) -> ContainerRecord:
    """`docker update` (an engine.container.update.Update): limits live, policy on record."""
    from engine.container.update import update as update_container

    _reconcile(config)
    return update_container(config, ref, change)


def prune(config: EngineConfig, filters: PruneFilter | None = None) -> list[str]:
    """Every stopped container the filters (until, label, label!) let go."""
    return prune_reclaiming(config, filters)[0]


def _pruned_by(filters: PruneFilter | None) -> Callable[[ContainerRecord], bool] | None:
    if filters is None:
        return None
    return lambda record: filters.selects_created(record.created, record.config.get("Labels"))


def prune_reclaiming(config: EngineConfig, filters: PruneFilter | None = None) -> tuple[list[str], int]:
    """`prune`, and the bytes the removed containers had written (Docker's SpaceReclaimed): their
    writable layers, measured before they go."""
    from engine.image.store import ImageStore

    store = ImageStore(config)
    _reconcile(config)
    written = {}
    for record in state.list_containers(config):
        if not record.running:
            with contextlib.suppress(OSError, DockuiError):
                written[record.id] = store.rw_layer_size(record.id)
    removed = removal.prune(config, _pruned_by(filters))
    reclaimed = sum(written.get(cid, 0) for cid in removed)
    from engine.api.prune import log_prune

    log_prune(config, "container", reclaimed)
    return removed, reclaimed


def top(config: EngineConfig, ref: str, ps_args: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    return inspecting.top(config, ref, ps_args)


def inspect(config: EngineConfig, ref: str, size: bool = False) -> dict[str, Any]:
    _reconcile(config)
    record = state.find_container(config, ref)
    data = inspecting.inspect(config, record)
    if size:
        sizes = container_sizes(config, record)
        data["SizeRw"], data["SizeRootFs"] = sizes.rw, sizes.root_fs
    return data


listed_networks = inspecting.listed_networks  # a `containers/json` row's Networks (service, TUI)


def wait(config: EngineConfig, ref: str, condition: str = "not-running") -> Any:
    """A `waiting.Waiter` (poll it); made now, so `next-exit` counts only exits from now on."""
    from engine.container.waiting import Waiter

    _reconcile(config)
    return Waiter(config, ref, condition)


# ------------------------------------------------------------------------------------------ listing


def parse_filters(pairs: list[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """Filter (key, value) pairs, checked (engine.container.filters)."""
    return filters.parse_pairs(pairs)


def list_containers(config: EngineConfig, query: ContainerQuery) -> list[ContainerRecord]:
    """Newest first, as `docker ps`."""
    return list_named(config, query).records


@dataclass(frozen=True)
class ContainerListing:
    """A `docker ps` answer: the records shown and each one's Names as moby lists them (its own
    name, then what links to it reserved: "/web/db"), by container ID."""

    records: list[ContainerRecord]
    names: dict[str, list[str]]


def list_named(config: EngineConfig, query: ContainerQuery) -> ContainerListing:
    """`list_containers` with moby's Names: a link's name counts whether or not the linking
    container is shown (a stopped one still holds it)."""
    _reconcile(config)
    records = sorted(state.list_containers(config), key=lambda r: r.created, reverse=True)
    # moby's list: a limit (`ps -n`, `ps -l`) counts stopped containers too, as -a does
    shown = filters.select(config, records, query.filters, all_=query.all or query.limit > 0)
    return ContainerListing(shown[: query.limit] if query.limit > 0 else shown, container_names(records))


def container_names(records: list[ContainerRecord]) -> dict[str, list[str]]:
    """Each container's Names as moby's list has them, from every container's links."""
    from engine.network import links

    return links.all_names([links.Linker(r.id, r.name, tuple(r.host_config.get("Links") or ())) for r in records])


def status_text(record: ContainerRecord, now: float | None = None) -> str:
    """Docker's STATUS column: "Up 3 minutes", "Exited (0) 2 hours ago", "Created", ... (the text
    `ps` and the TUI show: engine.container.status)."""
    from engine.container.status import record_status_text

    return record_status_text(record, now)


def container_sizes(config: EngineConfig, record: ContainerRecord, image_sizes: dict[str, int] | None = None) -> Sizes:
    """What the container wrote, and that plus its image (`image_sizes` caches across a list)."""
    from engine.image.store import ImageStore

    store = ImageStore(config)
    cache = image_sizes if image_sizes is not None else {}
    if record.image_id not in cache:
        try:
            cache[record.image_id] = store.resolve(record.image_id).size
        except NotFound:
            cache[record.image_id] = 0
    written = store.rw_layer_size(record.id)
    return Sizes(written, written + cache[record.image_id])


# ------------------------------------------------------------------------------------------ changes


CHANGE_MODIFIED, CHANGE_ADDED, CHANGE_DELETED = 0, 1, 2


@dataclass(frozen=True)
class Change:
    """One entry of `docker diff`: Kind 0 modified, 1 added, 2 deleted."""

    path: str
    kind: int


def changes(config: EngineConfig, ref: str) -> list[Change]:
    """What the container changed over its image, read from its writable layer's diff directory
    (overlay whiteouts are deletions; a path the image has is modified, else added)."""
    import os
    import stat

    from engine.image.store import ImageStore

    record = state.find_container(config, ref)
    store = ImageStore(config)
    diff = store.rw_layer_path(record.id) / "diff"
    lowers = store.layer_dirs(record.image_id)
    found: list[Change] = []
    for directory, dirs, files in os.walk(diff):
        rel_dir = "/" + os.path.relpath(directory, diff) if directory != str(diff) else ""
        for name in sorted(dirs + files):
            full = os.path.join(directory, name)
            path = f"{rel_dir}/{name}"
            st = os.lstat(full)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                found.append(Change(path, CHANGE_DELETED))
            elif any(os.path.lexists(str(lower) + path) for lower in lowers):
                found.append(Change(path, CHANGE_MODIFIED))
            else:
                found.append(Change(path, CHANGE_ADDED))
    return sorted(found, key=lambda c: c.path)


# ------------------------------------------------------------------------------------------ logs


def log_entries(config: EngineConfig, ref: str, query: LogQuery) -> tuple[ContainerRecord, Iterator[LogEntry], int]:
    """The container, its log entries so far (filtered by the query, read as they are taken:
    engine.container.logs.read_entries) and the offset to follow from."""
    from engine.container import logs

    record = state.find_container(config, ref)
    entries, offset = logs.read_entries(logs.readable_log(config, record), query.tail, query.since)
    return record, (e for e in entries if _wanted(e, query)), offset


def follow_logs(
    config: EngineConfig, record: ContainerRecord, offset: int, query: LogQuery, cancelled: Callable[[], bool]
) -> Iterator[LogEntry]:
    """Entries written after `offset` until the container stops (or `cancelled()` turns true:
    the follower then drains what is written and returns within one poll)."""
    from engine.container import logs

    def still_running() -> bool:
        if cancelled():
            return False
        try:
            current = state.load(config, record.id)
            if current.running and not state.process_alive(current.monitor_pid, current.monitor_start):
                _reconcile(config)  # its monitor died: the container is recorded as exited now
                current = state.load(config, record.id)
            return current.running
        except NotFound:
            return False

    path = record.log_path(config)
    delay = 0.005  # a short run ends within milliseconds: look again soon, then every poll
    while not path.exists():  # the monitor makes the log at the first output: wait while it runs
        if not still_running():
            if not path.exists():
                return
            break
        time.sleep(delay)
        delay = min(delay * 2, FOLLOW_POLL_SECONDS)
    for entry in logs.follow_entries(str(path), offset, still_running, poll=FOLLOW_POLL_SECONDS):
        if cancelled():
            return
        if query.until is not None and _seconds(entry) > query.until:
            return
        if _wanted(entry, query):
            yield entry


def _seconds(entry: LogEntry) -> float:
    return state.parse_rfc3339(entry.time)


def _wanted(entry: LogEntry, query: LogQuery) -> bool:
    if not (query.stdout if entry.stream == "stdout" else query.stderr):
        return False
    return query.until is None or _seconds(entry) <= query.until


# ------------------------------------------------------------------------------------------ stats


def system_cpu_ns() -> int:
    """The host's CPU time in nanoseconds, from /proc/stat (Docker's system_cpu_usage)."""
    import os

    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]
    return sum(int(x) for x in fields) * (1_000_000_000 // os.sysconf("SC_CLK_TCK"))


def docker_stats(stats: Any, previous: dict[str, Any] | None, record: ContainerRecord) -> dict[str, Any]:
    """One `GET /containers/{id}/stats` object from a sampler's ContainerStats (docker stats and
    docker-py compute CPU % from cpu_stats - precpu_stats, memory from usage - inactive_file)."""
    now = time.time()
    cpu = {
        # Only the total: the sampler does not split user and kernel time, and a made-up split is worse
        # than none (clients compute CPU % from total_usage and system_cpu_usage alone).
        "cpu_usage": {"total_usage": stats.cpu.usage_ns},
        "system_cpu_usage": system_cpu_ns(),
        "online_cpus": stats.cpu.online_cpus,
        "throttling_data": {"periods": stats.cpu.nr_periods, "throttled_periods": stats.cpu.nr_throttled,
                            "throttled_time": stats.cpu.throttled_ns},
    }
    mem = stats.memory
    memory: dict[str, Any] = {
        "usage": mem.raw_usage,
        "limit": mem.limit,
        "stats": {"inactive_file": mem.inactive_file, "total_inactive_file": mem.inactive_file},
    }
    if mem.peak is not None:
        memory["max_usage"] = mem.peak
    networks = {}
    if stats.network is not None:
        n = stats.network
        networks["eth0"] = {"rx_bytes": n.rx_bytes, "rx_packets": n.rx_packets, "rx_errors": 0, "rx_dropped": 0,
                            "tx_bytes": n.tx_bytes, "tx_packets": n.tx_packets, "tx_errors": 0, "tx_dropped": 0}
    blkio = {"io_service_bytes_recursive": [
        {"major": 0, "minor": 0, "op": "read", "value": stats.block_io.read_bytes},
        {"major": 0, "minor": 0, "op": "write", "value": stats.block_io.write_bytes},
    ]}
    empty_cpu = {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                 "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    return {
        "read": timefmt.format_rfc3339(int(now * 1_000_000_000)),
        "preread": previous["read"] if previous else "0001-01-01T00:00:00Z",
        "pids_stats": {"current": stats.pids_stats.current} | (
            {"limit": stats.pids_stats.limit} if stats.pids_stats.limit else {}),
        "blkio_stats": blkio,
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu,
        "precpu_stats": previous["cpu_stats"] if previous else empty_cpu,
        "memory_stats": memory,
        "name": "/" + record.name,
        "id": record.id,
        "networks": networks,
    }
