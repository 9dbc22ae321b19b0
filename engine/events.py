"""The engine's events log: what happened to containers, images, networks and volumes, in Docker's
event shape, written by the engine where each thing happens (so the CLI, the TUI and the service
all produce it); engine/eventlog.py reads it for `dockui events` and the service's `/events`.

    <root>/events/events.log     one JSON object per line: Type, Action, Actor{ID, Attributes},
                                 scope, time, timeNano (Docker's events.Message without the legacy
                                 status/id/from fields, which `eventlog.Event.to_docker` adds back)
    <root>/events/events.log.1   the previous generation, read before the current one

Invariants:
- An append is one `write(2)` of one whole line on an `O_APPEND` descriptor, so concurrent
  appenders (CLIs, monitors, the TUI, the service) never interleave inside a line and never need a
  lock. Readers skip a line they cannot parse (a write cut short by a full disk).
- Bounded: an appender that finds the file past `MAX_BYTES` renames it over `.1` under an flock,
  re-checking the size first, so one rotation happens however many appenders notice; the log never
  holds much more than `2 * MAX_BYTES`. A writer still holding the old file appends to `.1`, which
  readers still read, so no event is lost to a rotation (readers order by timeNano).
- Never fails a verb: an event that cannot be written (a read-only root, a user without rights on
  it) is dropped. The log records; it is not the state, which stays in each area's own files.
- Cheap on `dockui run`'s path: os, json, time and fcntl only, no dataclass built at import
  (tests/test_layering.py); reading the log (engine/eventlog.py) costs the writers nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import time

from engine.config import EngineConfig

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from collections.abc import Iterable

    from engine.container.state import ContainerRecord
    from engine.network.records import Endpoint

MAX_BYTES = 1 << 20  # per generation: ~4000 events of ~250 bytes; two generations are kept
LOG_NAME = "events.log"


def log_dir(config: EngineConfig) -> str:
    return os.path.join(config.root, "events")


def log_path(config: EngineConfig) -> str:
    return os.path.join(log_dir(config), LOG_NAME)


def emit(config: EngineConfig, type: str, action: str, actor_id: str, attributes: dict[str, str] | None = None) -> None:  # noqa: A002
    """Append one event now. Never raises: a log that cannot be written loses the event, not the verb."""
    now = time.time_ns()
    record = {
        "Type": type, "Action": action,
        "Actor": {"ID": actor_id, "Attributes": {k: str(v) for k, v in (attributes or {}).items()}},
        "scope": "local", "time": now // 1_000_000_000, "timeNano": now,
    }
    try:
        append_line(config, json.dumps(record, separators=(",", ":")).encode() + b"\n")
    except (OSError, ValueError):  # ValueError: a name that is not valid text (a lone surrogate)
        pass


def append_line(config: EngineConfig, line: bytes) -> None:
    """One O_APPEND write of a whole line; rotates when the file has passed MAX_BYTES."""
    path = log_path(config)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        os.makedirs(log_dir(config), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, line)
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    if size > MAX_BYTES:
        _rotate(config)


def _rotate(config: EngineConfig) -> None:
    """events.log -> events.log.1, once: the size is checked again under the lock, since another
    appender may have rotated between our write and now."""
    path = log_path(config)
    lock_fd = os.open(os.path.join(log_dir(config), ".rotate.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_size > MAX_BYTES:
                os.replace(path, path + ".1")
        except FileNotFoundError:
            pass
    finally:
        os.close(lock_fd)


def container(config: EngineConfig, action: str, record: ContainerRecord, **extra: object) -> None:
    """A container event with Docker's attributes: image, name, the container's labels, and `extra`
    (exitCode for die, signal for kill, oldName for rename, execID for exec_*)."""
    labels = (record.config or {}).get("Labels")
    attributes = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
    attributes.update(image=record.image, name=record.name)
    attributes.update({k: str(v) for k, v in extra.items()})
    emit(config, "container", action, record.id, attributes)


def exec_action(action: str, argv: Iterable[str]) -> str:
    """moby's exec event action: `exec_create: ` + the entrypoint + " " + the arguments joined, so
    a command without arguments ends in a space (`exec_start: true `), as `docker events` shows it."""
    entrypoint, *args = argv
    return f"{action}: {entrypoint} {' '.join(args)}"


def die(config: EngineConfig, record: ContainerRecord, code: int) -> None:
    """`die`, as moby's handleContainerExit writes it: exitCode and execDuration (whole seconds
    since the run started), after the volumes' `unmount` events (its Cleanup comes first)."""
    from engine.util.timefmt import parse_rfc3339

    for mount in record.mounts:
        if mount.get("Type") == "volume":
            volume(config, "unmount", mount.get("Name", ""), container=record.id)
    started = parse_rfc3339(record.started_at)
    duration = max(int(time.time() - started), 0) if started else 0
    container(config, "die", record, exitCode=code, execDuration=duration)


def image(config: EngineConfig, action: str, actor: str, name: str | None = None) -> None:
    """An image event. `actor` is the reference for pull/push/tag/import/load/save (as Docker's:
    `busybox:latest`), the image ID for untag/delete; `name` defaults to `actor`."""
    emit(config, "image", action, actor, {"name": name or actor})


def images(config: EngineConfig, action: str, image_ids: Iterable[str]) -> None:
    """One image event per image ID (load, save: Docker names each image by its ID)."""
    for image_id in image_ids:
        image(config, action, image_id)


def image_removal(config: EngineConfig, image_id: str, lines: list[str]) -> None:
    """The events of an `rmi` from its report lines: one untag per `Untagged:` line, and a delete
    when the image itself went (Docker names both by the image ID)."""
    for line in lines:
        if line.startswith("Untagged: "):
            image(config, "untag", image_id)
    if f"Deleted: {image_id}" in lines:
        image(config, "delete", image_id)


def volume_mounts(config: EngineConfig, record: ContainerRecord) -> None:
    """A `mount` event per volume the container mounts as it starts (Docker's attributes)."""
    for mount in record.mounts:
        if mount.get("Type") == "volume":
            volume(config, "mount", mount.get("Name", ""), container=record.id, destination=mount.get("Destination", ""),
                   propagation=mount.get("Propagation", ""), **{"read/write": str(bool(mount.get("RW", True))).lower()})


def network(config: EngineConfig, action: str, network_id: str, name: str, container_id: str | None = None) -> None:
    """A network event (`bridge` driver); connect/disconnect name the container."""
    attributes = {"name": name, "type": "bridge"}
    if container_id:
        attributes["container"] = container_id
    emit(config, "network", action, network_id, attributes)


def network_endpoints(config: EngineConfig, action: str, container_id: str, endpoints: Iterable[Endpoint]) -> None:
    """`connect` for each network a container joins as it starts, `disconnect` as it stops."""
    for ep in endpoints:
        network(config, action, ep.network_id, ep.network, container_id)


def volume(config: EngineConfig, action: str, name: str, **extra: object) -> None:
    """A volume event (`local` driver); mount adds container, destination, read/write."""
    emit(config, "volume", action, name, {"driver": "local", **{k: str(v) for k, v in extra.items()}})
