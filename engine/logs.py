"""Container logs in Docker's json-file format: writing (see engine.monitor) and reading (`dockui logs`).

`<root>/containers/<id>/<id>-json.log` holds one JSON object per line:
`{"log": "text\\n", "stream": "stdout"|"stderr", "time": "<RFC3339Nano>"}`. The writer is in
engine/monitor.py (it must stay tiny); bytes that are not UTF-8 are kept with surrogate escapes so
`logs` gives back exactly what the container wrote.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class LogEntry:
    stream: str
    data: bytes
    time: str


def _parse(line: bytes) -> LogEntry | None:
    try:
        obj = json.loads(line)
        return LogEntry(obj.get("stream", "stdout"), obj["log"].encode("utf-8", "surrogateescape"), obj["time"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # a torn last line while the monitor writes it


def _entry_seconds(stamp: str) -> float:
    from engine.state import parse_rfc3339

    return parse_rfc3339(stamp)


def parse_since(value: str | None) -> float | None:
    """Docker's --since: a Unix timestamp, an RFC3339 time, or a duration ago (10m, 1h30m, 45s)."""
    if not value:
        return None
    import re

    from engine.errors import InvalidArgument

    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value)
    if parts and "".join(n + u for n, u in parts) == value:
        scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
        return time.time() - sum(float(n) * scale[u] for n, u in parts)
    try:
        return _entry_seconds(value if value.endswith("Z") else value + "Z")
    except ValueError:
        raise InvalidArgument(f"invalid value for --since: {value!r}") from None


def read_entries(path: str, tail: int | None = None, since: float | None = None) -> tuple[list[LogEntry], int]:
    """The entries written so far (the last `tail` of them), and the offset to follow from."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return [], 0
    end = data.rfind(b"\n") + 1  # a torn last line is read on the next poll
    entries = [e for e in (_parse(line) for line in data[:end].splitlines()) if e is not None]
    if since is not None:
        entries = [e for e in entries if _entry_seconds(e.time) >= since]
    if tail is not None and tail >= 0:
        entries = entries[-tail:] if tail else []
    return entries, end


def follow_entries(path: str, offset: int, still_running: Callable[[], bool], poll: float = 0.1) -> Iterator[LogEntry]:
    """Entries appended after `offset` until the container stops and the file is drained."""
    pending = b""
    while True:
        running = still_running()
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        offset += len(chunk)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            entry = _parse(line)
            if entry is not None:
                yield entry
        if not running and not chunk:
            return
        if not chunk:
            time.sleep(poll)
