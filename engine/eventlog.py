"""Reading the engine's events log (written by engine/events.py, whose docstring gives the format
and its invariants): the events kept, a follower of new ones across rotations, Docker's filters.

Used by `dockui events` and the service's `/events` (through engine.api.system); kept apart from
the writer so that the verbs that only append never build these classes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from engine.config import EngineConfig
from engine.errors import InvalidArgument, NeedsRoot
from engine.events import log_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

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
            raise _unreadable(name) from None
    events.sort(key=lambda e: e.time_nano)
    return [
        e for e in events
        if (since_ns is None or e.time_nano >= since_ns) and (until_ns is None or e.time_nano <= until_ns)
    ]


def _unreadable(path: str) -> NeedsRoot:
    return NeedsRoot(f"the events log {path} is readable by root only: run it with sudo")


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
        except PermissionError:
            raise _unreadable(self.path) from None
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
        except PermissionError:
            raise _unreadable(self.path) from None
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
