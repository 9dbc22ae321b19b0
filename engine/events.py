"""The engine's events log: what happened to containers, images, networks and volumes, in Docker's
event shape, written by the engine where each thing happens (so the CLI, the TUI and the service
all produce it) and read by `dockui events` and the service's `/events`.

    <root>/events/events.log     one JSON object per line: Type, Action, Actor{ID, Attributes},
                                 scope, time, timeNano (Docker's events.Message without the legacy
                                 status/id/from fields, which `Event.to_docker` adds back)
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
- Cheap on `dockui run`'s path: os, json, time and fcntl only (tests/test_layering.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass, field

from engine.config import EngineConfig
from engine.errors import InvalidArgument, NeedsRoot

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from engine.container.state import ContainerRecord

MAX_BYTES = 1 << 20  # per generation: ~4000 events of ~250 bytes; two generations are kept
LOG_NAME = "events.log"
TYPES = ("container", "image", "network", "volume", "daemon")
FILTER_KEYS = ("container", "event", "image", "label", "network", "scope", "type", "volume", "daemon")
# Docker matches these actions by prefix: the action carries the command ("exec_start: sh -c ...").
_PREFIX_ACTIONS = ("exec_create", "exec_start", "health_status")


@dataclass(frozen=True)
class Event:
    """One event. `attributes` is Docker's Actor.Attributes (name, image, exitCode, labels...)."""

    type: str
    action: str
    actor_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    time_nano: int = 0
    scope: str = "local"

    def to_json(self) -> dict[str, object]:
        """The line as stored: Docker's modern fields."""
        return {
            "Type": self.type,
            "Action": self.action,
            "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
            "scope": self.scope,
            "time": self.time_nano // 1_000_000_000,
            "timeNano": self.time_nano,
        }

    def to_docker(self) -> dict[str, object]:
        """Docker's `events.Message` as the API sends it, with the legacy status/id/from fields that
        Docker still fills for container and image events."""
        legacy: dict[str, object] = {}
        if self.type in ("container", "image"):
            legacy = {"status": self.action, "id": self.actor_id}
            if self.type == "container" and "image" in self.attributes:
                legacy["from"] = self.attributes["image"]
        return {**legacy, **self.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Event:
        actor = data.get("Actor") or {}
        if not isinstance(actor, dict):
            raise ValueError("Actor is not an object")
        attributes = actor.get("Attributes") or {}
        time_nano = data.get("timeNano")
        if not isinstance(time_nano, int):
            time_nano = int(data.get("time", 0)) * 1_000_000_000  # type: ignore[call-overload]
        return cls(
            type=str(data["Type"]),
            action=str(data["Action"]),
            actor_id=str(actor.get("ID", "")),
            attributes={str(k): str(v) for k, v in attributes.items()} if isinstance(attributes, dict) else {},
            time_nano=time_nano,
            scope=str(data.get("scope", "local")),
        )


# ---- writing -----------------------------------------------------------------------------------


def log_dir(config: EngineConfig) -> str:
    return os.path.join(config.root, "events")


def log_path(config: EngineConfig) -> str:
    return os.path.join(log_dir(config), LOG_NAME)


def emit(config: EngineConfig, type: str, action: str, actor_id: str, attributes: dict[str, str] | None = None) -> None:  # noqa: A002
    """Append one event now. Never raises: a log that cannot be written loses the event, not the verb."""
    event = Event(type, action, actor_id, {k: str(v) for k, v in (attributes or {}).items()}, time.time_ns())
    line = json.dumps(event.to_json(), separators=(",", ":")).encode() + b"\n"
    try:
        append_line(config, line)
    except OSError:
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
    labels = (record.config or {}).get("Labels") or {}
    attributes = {**{str(k): str(v) for k, v in labels.items()}, "image": record.image, "name": record.name}
    attributes.update({k: str(v) for k, v in extra.items()})
    emit(config, "container", action, record.id, attributes)


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


def volume(config: EngineConfig, action: str, name: str, **extra: object) -> None:
    """A volume event (`local` driver); mount adds container, destination, read/write."""
    emit(config, "volume", action, name, {"driver": "local", **{k: str(v) for k, v in extra.items()}})


# ---- reading -----------------------------------------------------------------------------------


def _parse_lines(data: bytes) -> list[Event]:
    events = []
    for raw in data.splitlines():
        try:
            events.append(Event.from_json(json.loads(raw)))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a torn or foreign line
    return events


def read_events(config: EngineConfig, since_ns: int | None = None, until_ns: int | None = None) -> list[Event]:
    """The events kept in both generations with since <= timeNano <= until, oldest first."""
    path = log_path(config)
    events: list[Event] = []
    for name in (path + ".1", path):
        try:
            with open(name, "rb") as f:
                events.extend(_parse_lines(f.read()))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except PermissionError:
            raise NeedsRoot(f"the events log {name} is readable by root only: run it with sudo") from None
    events.sort(key=lambda e: e.time_nano)
    return [
        e for e in events
        if (since_ns is None or e.time_nano >= since_ns) and (until_ns is None or e.time_nano <= until_ns)
    ]


class Follower:
    """New events as they are appended, across rotations: `poll()` returns what arrived since the
    last call (never blocks), so a thread, an asyncio loop or a CLI loop can drive it.

    It starts at the current end of the log. Past a rotation it reads the rest of the file it had
    (now `.1`, where late writers may still append) before moving to the new one. A follower that
    falls a whole generation behind between two polls (MAX_BYTES of events, ~4000, within one
    poll interval) misses that generation, as a bounded log must.
    """

    def __init__(self, config: EngineConfig) -> None:
        self.path = log_path(config)
        self._file = None
        self._inode = 0
        self._pending = b""
        self._open(at_end=True)

    def _open(self, at_end: bool) -> None:
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - kept open across polls
        except (FileNotFoundError, NotADirectoryError):
            self._file, self._inode = None, 0
            return
        if at_end:
            f.seek(0, os.SEEK_END)
        self._file, self._inode = f, os.fstat(f.fileno()).st_ino

    def poll(self) -> list[Event]:
        data = b""
        if self._file is not None:
            data = self._file.read()
        try:
            current = os.stat(self.path).st_ino
        except (FileNotFoundError, NotADirectoryError):
            current = 0
        if current and current != self._inode:  # rotated (or created): the new file from its start
            if self._file is not None:
                data += self._file.read()
                self._file.close()
            self._open(at_end=False)
            if self._file is not None:
                data += self._file.read()
        data = self._pending + data
        complete, _, self._pending = data.rpartition(b"\n")
        return _parse_lines(complete)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


# ---- filters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilter:
    """Docker's events filters: values of one key OR (labels AND), different keys AND.

    container: ID prefix or name; image: the image attribute (or an image event's ID), with or
    without its tag; event: the action (exec_create/exec_start/health_status by prefix); label:
    KEY or KEY=VALUE among the attributes; network, volume: ID (prefix) or name; type; scope.
    """

    wanted: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def parse(cls, pairs: Iterable[tuple[str, str]]) -> EventFilter:
        wanted: dict[str, list[str]] = {}
        for key, value in pairs:
            if key not in FILTER_KEYS:
                raise InvalidArgument(f"invalid filter '{key}'")
            if key == "type" and value not in TYPES:
                raise InvalidArgument(f"invalid filter 'type={value}': one of {', '.join(TYPES)}")
            wanted.setdefault(key, []).append(value)
        return cls(tuple((k, tuple(v)) for k, v in sorted(wanted.items())))

    def matches(self, event: Event) -> bool:
        return all(self._key_matches(key, values, event) for key, values in self.wanted)

    @staticmethod
    def _key_matches(key: str, values: tuple[str, ...], event: Event) -> bool:
        attrs = event.attributes
        if key == "type":
            return event.type in values
        if key == "scope":
            return event.scope in values
        if key == "event":
            return any(event.action == v or (v in _PREFIX_ACTIONS and event.action.startswith(v + ":")) for v in values)
        if key == "label":
            # every label filter must match, as Docker's MatchKVList
            return all(
                (k in attrs and (not sep or attrs[k] == v)) for k, sep, v in (value.partition("=") for value in values)
            )
        if key in ("container", "network", "volume"):
            if event.type != key:
                return False
            return any(event.actor_id.startswith(v) or attrs.get("name") == v for v in values)
        if key == "image":
            names = [attrs.get("image", "")]
            if event.type == "image":
                names += [event.actor_id, attrs.get("name", "")]
            return any(_image_matches(n, v) for n in names if n for v in values)
        return False  # daemon: dockui has no daemon events


def _image_matches(name: str, wanted: str) -> bool:
    """`busybox` matches `busybox:latest` and `busybox`; IDs match by prefix."""
    if name == wanted or name.split("@", 1)[0] == wanted:
        return True
    if name.startswith("sha256:") and name.removeprefix("sha256:").startswith(wanted.removeprefix("sha256:")):
        return True
    last = name.rsplit("/", 1)[-1]
    return ":" in last and name.rsplit(":", 1)[0] == wanted


def iter_matching(events: Iterable[Event], event_filter: EventFilter) -> Iterator[Event]:
    return (e for e in events if event_filter.matches(e))
