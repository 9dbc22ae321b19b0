"""Container logs in Docker's json-file format: writing (see engine.container.monitor) and reading (`dockui logs`).

`<root>/containers/<id>/<id>-json.log` holds one JSON object per line:
`{"log": "text\\n", "stream": "stdout"|"stderr", "time": "<RFC3339Nano>"}`. The writer is in
engine/container/monitor.py (it must stay tiny); bytes that are not UTF-8 are kept with surrogate escapes so
`logs` gives back exactly what the container wrote.

Rotation as Docker's json-file driver does it (`--log-opt max-size=10m --log-opt max-file=3`):
before an entry would take the file past max-size, the writer renames `<id>-json.log` to `.1`
(`.1` to `.2`, ...; keeping max-file files in all) and starts a new one; with max-file 1 the file
is emptied instead. Reading goes through the rotated files oldest first. With `--log-driver none`
nothing is written (the monitor's entries go to /dev/null) and reading is refused, as Docker's.
"""

from __future__ import annotations

import collections
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import BinaryIO

    from engine.config import EngineConfig
    from engine.container.state import ContainerRecord


@dataclass(frozen=True)
class LogEntry:
    """One json-file log line: the stream, the bytes written and Docker's RFC 3339 time."""

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
    from engine.container.state import parse_rfc3339

    return parse_rfc3339(stamp)


def parse_since(value: str | None) -> float | None:
    """Docker's --since: a Unix timestamp, an RFC3339 time, or a duration ago (10m, 1h30m, 45s)."""
    if not value:
        return None
    import re

    from engine.errors import InvalidArgument

    if re.fullmatch(r"\d{1,19}(\.\d+)?", value) and int(value.partition(".")[0]) < 2**63:  # Go's int64 seconds
        return float(value)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value)
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    ago = sum(float(n) * scale[u] for n, u in parts)
    if parts and "".join(n + u for n, u in parts) == value and ago < 2**63 / 1e9:  # within a Go time.Duration
        return time.time() - ago
    # Docker's timestamps: a date, a date and a time (minutes or seconds, a fraction), a zone or none
    # (then the local time, as the docker CLI reads it)
    match = re.fullmatch(r"(\d{4}-\d\d-\d\d)(?:[Tt ](\d\d:\d\d)(:\d\d)?(\.\d+)?)?([Zz]|[+-]\d\d:?\d\d)?", value)
    if match:
        from engine.util.timefmt import parse_rfc3339

        date, minutes, seconds, fraction, zone = match.groups()
        text = f"{date}T{minutes or '00:00'}{seconds or ':00'}"
        if zone:
            found = parse_rfc3339(text + (fraction or "") + zone)
        else:
            try:
                found = time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S")) + float(fraction or 0)
            except (ValueError, OverflowError):
                found = None
        if found is not None:
            return found
    raise InvalidArgument(f"invalid value for --since/--until: {value!r}")


LOG_OPTS = ("max-size", "max-file")
READ_NOT_SUPPORTED = "configured logging driver does not support reading"  # Docker's words


def keeps_no_log(record: ContainerRecord) -> bool:
    """`--log-driver none`: the container's output is kept nowhere (no log file, no LogPath)."""
    return (record.host_config.get("LogConfig") or {}).get("Type") == "none"


def readable_log(config: EngineConfig, record: ContainerRecord) -> str:
    """The json-file log `logs` reads; Docker's error (the Engine API's 501) for a container whose
    driver keeps nothing (`--log-driver none`: its output went to an attached client only)."""
    if keeps_no_log(record):
        from engine.errors import NotSupported

        raise NotSupported(READ_NOT_SUPPORTED)
    return str(record.log_path(config))


def log_limits(options: dict[str, str]) -> tuple[int, int]:
    """Docker's json-file `--log-opt`s -> (max-size in bytes, 0 for none; max-file); InvalidArgument
    for anything else, as Docker refuses an unknown option at create."""
    from engine.errors import InvalidArgument

    for key in options:
        if key not in LOG_OPTS:
            raise InvalidArgument(f"unknown log opt '{key}' for json-file log driver")
    max_size = 0
    if options.get("max-size") not in (None, "", "-1"):
        from engine.util.units import parse_size

        max_size = parse_size(options["max-size"])
        if max_size <= 0:
            raise InvalidArgument("max-size must be a positive number")
    max_file = 1
    if options.get("max-file"):
        try:
            max_file = int(options["max-file"])
        except ValueError:
            raise InvalidArgument(f"invalid max-file: {options['max-file']!r}") from None
        if max_file < 1:
            raise InvalidArgument("max-file cannot be less than 1")
        # Without max-size nothing rotates, so max-file has no effect (Docker's json-file takes it so).
    return max_size, max_file


def rotated_paths(path: str) -> list[str]:
    """The rotated files of a log (`path.N` ... `path.1`), oldest first, then the live one."""
    older = []
    n = 1
    while os.path.exists(f"{path}.{n}"):
        older.append(f"{path}.{n}")
        n += 1
    return [*reversed(older), path]


def read_entries(path: str, tail: int | None = None, since: float | None = None) -> tuple[Iterator[LogEntry], int]:
    """The entries written so far (the last `tail` of them), and the offset in the live file to
    follow from. The files are opened now (a rotation meanwhile loses nothing) and read as the
    entries are taken: a reader that stops reading holds one entry, never the whole log (up to
    max-size x max-file of it); with `tail`, the last `tail` entries only."""
    files: list[tuple[BinaryIO, int | None]] = []
    end = 0
    for name in rotated_paths(path):
        try:
            f = open(name, "rb")  # noqa: SIM115 - closed by _entries_of once read
        except FileNotFoundError:
            continue  # rotated away meanwhile
        if name == path:
            end = _last_line_end(f)  # a torn last line is read on the next poll
        files.append((f, end if name == path else None))
    if tail == 0:  # the follow offset only (`logs -f --tail 0`): nothing is read
        _close_all(files)
        return iter(()), end
    entries = _entries_of(files, since)
    if tail is not None and tail > 0:  # read to the end (which closes the files), the last `tail` kept
        return iter(collections.deque(entries, maxlen=min(tail, 1 << 62))), end  # a deque's limit
    return entries, end


def _last_line_end(f: BinaryIO) -> int:
    """The offset just after the file's last newline (0 without one), read from its end."""
    position = os.fstat(f.fileno()).st_size
    while position > 0:
        start = max(0, position - 65536)
        f.seek(start)
        newline = f.read(position - start).rfind(b"\n")
        if newline >= 0:
            f.seek(0)
            return start + newline + 1
        position = start
    f.seek(0)
    return 0


def _entries_of(files: list[tuple[BinaryIO, int | None]], since: float | None) -> Iterator[LogEntry]:
    """The entries of `files` in order, each read up to its limit (None: to its end); closes them."""
    try:
        for f, limit in files:
            left = limit
            for line in f:
                if left is not None:
                    if left <= 0:
                        break
                    left -= len(line)
                entry = _parse(line)
                if entry is not None and (since is None or _entry_seconds(entry.time) >= since):
                    yield entry
    finally:
        _close_all(files)


def _close_all(files: list[tuple[BinaryIO, int | None]]) -> None:
    for f, _ in files:
        f.close()


def follow_entries(path: str, offset: int, still_running: Callable[[], bool], poll: float = 0.1) -> Iterator[LogEntry]:
    """Entries appended after `offset` until the container stops and the file is drained.

    The open file is read on after a rotation renamed it; once drained, the new file named `path`
    is followed from its start."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - kept open across rotations, closed below
    except FileNotFoundError:
        return
    try:
        f.seek(offset)
        pending = b""
        while True:
            running = still_running()
            chunk = f.read()
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                entry = _parse(line)
                if entry is not None:
                    yield entry
            if chunk:
                continue
            try:
                renamed = os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                if not running:
                    return  # the container was removed
                time.sleep(poll)  # a rotation between its rename and the new file's creation
                continue
            if renamed:
                f.close()
                f = open(path, "rb")  # noqa: SIM115
                pending = b""
                continue
            if not running:
                return
            time.sleep(poll)
    finally:
        f.close()
