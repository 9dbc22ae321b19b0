"""The container index: `<root>/containers/index`, one short line per container, so that verbs whose
work does not depend on how many containers exist (name and ID lookup, `ps -q`, the name check at
create, reconcile's liveness checks) read one small file instead of every record.

The records stay the truth (engine.container.state); the index is a cache of a few fields of each
(`Entry`) that is never trusted past what it can prove:

- Every record write is bracketed: `dirty(id)` appends `<id> ?` before the record changes and
  `put(entry)` appends the new line after. A writer killed in between leaves `?`, and readers load
  that one record. Removal appends `?` before the record goes and `<id> -` after.
- Appends are single `O_APPEND` writes (whole lines; the last line for an ID wins) under a shared
  flock of `.index.lock`; a rewrite (compaction, or the first build) holds it exclusively, reads
  what is on disk and replaces the file by rename, so no append is lost and a `?` is never
  resolved from a record that may be half-way through a change.
- Readers compare the index's IDs with the container directories (one `listdir`): a directory the
  index does not know is loaded from its record, an ID without a directory is dropped; a line that
  does not parse, or a missing file, makes the reader rebuild the index from the records.

Invariant: for every container directory with a record, the index's last line for its ID is either
`?` or the fields of the record as last saved.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import time
from dataclasses import dataclass

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

INDEX = "index"
LOCK = ".index.lock"
_ID_RE = re.compile(r"^[0-9a-f]{64}$")
_DIRTY = "?"
_GONE = "-"
COMPACT_SLACK = 256  # lines beyond one per live entry before a reader rewrites the file


@dataclass(frozen=True)
class Entry:
    """What the index keeps of one record: enough to find it, list it and check its processes."""

    id: str
    status: str
    name: str
    created: str
    pid: int = 0
    pid_start: int = 0
    monitor_pid: int = 0
    monitor_start: int = 0
    creator_pid: int = 0
    creator_start: int = 0

    def line(self) -> str:
        return (f"{self.id} {self.status} {self.name or '/'} {self.created} {self.pid} {self.pid_start} "
                f"{self.monitor_pid} {self.monitor_start} {self.creator_pid} {self.creator_start}\n")

    @classmethod
    def parse(cls, fields: list[str]) -> Entry:
        cid, status, name, created, *numbers = fields
        pid, pid_start, monitor_pid, monitor_start, creator_pid, creator_start = map(int, numbers)
        return cls(cid, status, "" if name == "/" else name, created, pid, pid_start, monitor_pid,
                   monitor_start, creator_pid, creator_start)


class _Unparsable(Exception):
    """The index file holds a line its writers never write (a torn write after a power loss)."""


def dirty(containers_dir: Path, container_id: str) -> None:
    """Say the record of `container_id` is about to change (readers load it until `put`)."""
    _append(containers_dir, f"{container_id} {_DIRTY}\n")


def put(containers_dir: Path, entry: Entry) -> None:
    """The record's new fields, once it is written."""
    _append(containers_dir, entry.line())


def drop(containers_dir: Path, container_id: str) -> None:
    """The container is gone (its directory removed)."""
    _append(containers_dir, f"{container_id} {_GONE}\n")


def _append(containers_dir: Path, line: str) -> None:
    try:
        lock = os.open(containers_dir / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        return  # no containers directory: nothing to index
    try:
        fcntl.flock(lock, fcntl.LOCK_SH)
        try:
            fd = os.open(containers_dir / INDEX, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                data = line.encode()
                if os.write(fd, data) != len(data):
                    raise OSError(errno.ENOSPC, "short write")
            finally:
                os.close(fd)
        except OSError:
            # A full disk: the index can no longer vouch for this record. Without it, readers
            # load the records (the truth) and rebuild it when there is room; the record write
            # this line belongs to goes on.
            with contextlib.suppress(OSError):
                os.unlink(containers_dir / INDEX)
    finally:
        os.close(lock)


def entries(
    containers_dir: Path, load: Callable[[str], Entry | None], statuses: tuple[str, ...] = (), processes: bool = False,
) -> list[Entry]:
    """The containers' entries, newest first: all, or (parsing is most of a read) those in
    `statuses` plus, with `processes`, every one that names a monitor or a creator process.
    `load(id)` reads one record (None: it has none). One read of the index (none when it has not changed since this process last read it)
    and one listdir; records are read only where the index cannot vouch for them (a `?`, a
    directory it does not know). Rewrites the index when it is missing, does not parse, or has
    grown well past the live entries."""
    found = [
        Entry.parse(fields) for fields in _listing(containers_dir, load).values()
        if not statuses or fields[1] in statuses or processes and (fields[6] != "0" or fields[8] != "0")
    ]
    found.sort(key=lambda e: e.created, reverse=True)
    return found


def names(containers_dir: Path, load: Callable[[str], Entry | None]) -> dict[str, str]:
    """Every container's name -> its ID (no entry built)."""
    return {fields[2]: cid for cid, fields in _listing(containers_dir, load).items() if fields[2] != "/"}


_DIRS: dict[str, tuple[tuple[int, int], float, list[str]]] = {}
DIR_SETTLED = 0.1  # seconds: a listing taken this long after the directory's last change is reused


def container_dirs(containers_dir: Path) -> list[str]:
    """The names in the containers directory (one listdir, reused while the directory is unchanged:
    same inode and mtime, and listed at least DIR_SETTLED after that mtime, so that an entry made
    within the same timestamp tick is never missed). FileNotFoundError when it does not exist."""
    path = os.fspath(containers_dir)
    st = os.stat(path)
    key = (st.st_ino, st.st_mtime_ns)
    cached = _DIRS.get(path)
    if cached is not None and cached[0] == key and cached[1] - st.st_mtime >= DIR_SETTLED:
        return cached[2]
    listed_at = time.time()
    names = os.listdir(path)
    _DIRS[path] = (key, listed_at, names)
    return names


def signature(containers_dir: Path) -> tuple[int, ...] | None:
    """A value that changes whenever a record is written, created or removed: the index file's
    inode, size and mtime (every record write appends to it, so its size grows; a rewrite replaces
    the file) and the directory's inode and mtime. A reader that takes it before reading records
    and finds it unchanged later has read every record as it still is, except one whose writer was
    killed between `dirty` and `put` (reconcile finishes those). None without an index file: look
    at the records."""
    path = os.fspath(containers_dir)
    try:
        st = os.stat(os.path.join(path, INDEX))
        dt = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, dt.st_ino, dt.st_mtime_ns)


def ids(containers_dir: Path, load: Callable[[str], Entry | None]) -> list[str]:
    """Every container's ID (no entry built)."""
    return list(_listing(containers_dir, load))


def unvouched(containers_dir: Path) -> set[str]:
    """The container directories whose record the index cannot vouch for (a `?` is their last
    line, or no line at all): where a verb killed half-way may have left a directory without a
    record. Everything when the index cannot be read."""
    try:
        on_disk = container_dirs(containers_dir)
    except FileNotFoundError:
        return set()
    try:
        known, dirty_ids, _ = _read(containers_dir)
    except (FileNotFoundError, _Unparsable):
        known, dirty_ids = {}, set()
    return {cid for cid in on_disk if (cid not in known or cid in dirty_ids) and _ID_RE.match(cid)}


def _listing(containers_dir: Path, load: Callable[[str], Entry | None]) -> dict[str, list[str]]:
    """ID -> the fields of its entry, for every container directory with a record."""
    try:
        names_on_disk = container_dirs(containers_dir)
    except FileNotFoundError:
        return {}
    try:
        known, dirty_ids, count = _read(containers_dir)
    except (FileNotFoundError, _Unparsable):
        return {e.id: e.line().split() for e in _rewrite(containers_dir, load)}
    previous = _LISTINGS.get(os.fspath(containers_dir))
    if previous is not None and previous[0] is known and previous[1] is names_on_disk:
        return previous[2]  # the same file and directory listing as last time: the same answer
    found: dict[str, list[str]] = {}
    unknown = live = 0
    for cid in names_on_disk:
        fields = known.get(cid)
        if fields is not None and cid not in dirty_ids:
            found[cid] = fields
            live += 1
            continue
        if len(cid) != 64 or not _ID_RE.match(cid):
            continue
        live += 1
        unknown += cid not in dirty_ids
        entry = load(cid)
        if entry is not None:
            found[cid] = entry.line().split()
    if unknown or count > live + COMPACT_SLACK:
        with contextlib.suppress(OSError):
            _rewrite(containers_dir, load, wait=False)
    elif not dirty_ids:  # nothing was loaded: the answer holds while neither input changes
        _LISTINGS[os.fspath(containers_dir)] = (known, names_on_disk, found)
    return found


_LISTINGS: dict[str, tuple[dict[str, list[str]], list[str], dict[str, list[str]]]] = {}


_CACHE: dict[str, tuple[tuple[int, int, int], tuple[dict[str, list[str]], set[str], int]]] = {}


def _read(containers_dir: Path) -> tuple[dict[str, list[str]], set[str], int]:
    """The fields of the last entry per ID, the IDs whose last line is `?`, and the number of
    lines; parsed once per process for as long as the file is unchanged (same inode and size)."""
    path = os.path.join(containers_dir, INDEX)
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        cached = _CACHE.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        data = f.read().decode("ascii", "replace")
    lines = data.split("\n")
    lines.pop()  # "" after the last newline; else an append being written now: ignore it
    known: dict[str, list[str]] = {}
    dirty_ids: set[str] = set()
    for line in lines:
        fields = line.split(" ")
        cid = fields[0]
        if len(fields) == 2 and fields[1] in (_DIRTY, _GONE):
            known.pop(cid, None)
            if fields[1] == _DIRTY:
                dirty_ids.add(cid)
            else:
                dirty_ids.discard(cid)
            continue
        if len(fields) != 10 or len(cid) != 64 or not fields[9].isdigit():
            raise _Unparsable(line[:80])
        known[cid] = fields
        dirty_ids.discard(cid)
    result = (known, dirty_ids, len(lines))
    _CACHE[path] = (key, result)
    return result


def _rewrite(containers_dir: Path, load: Callable[[str], Entry | None], wait: bool = True) -> list[Entry]:
    """Rebuild the file from what it holds plus the records it lacks, under the exclusive lock
    (appends wait for it); a `?` stays a `?`: its writer may still be changing the record."""
    try:
        lock = os.open(containers_dir / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        return []
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return []  # another process is rewriting it
        try:
            known, dirty_ids, _ = _read(containers_dir)
        except (FileNotFoundError, _Unparsable):
            known, dirty_ids = {}, set()
        found: list[Entry] = []
        out: list[str] = []
        for cid in (n for n in os.listdir(containers_dir) if _ID_RE.match(n)):
            if cid in dirty_ids:
                out.append(f"{cid} {_DIRTY}\n")
                entry = load(cid)
            else:
                fields = known.get(cid)
                entry = Entry.parse(fields) if fields is not None else load(cid)
                if entry is not None:
                    out.append(entry.line())
            if entry is not None:
                found.append(entry)
        tmp = containers_dir / f".{INDEX}.{os.getpid()}"
        try:
            with open(tmp, "w", encoding="ascii") as f:
                f.write("".join(out))
            os.replace(tmp, containers_dir / INDEX)
        except OSError:  # a full disk: the entries stand without the file, which the next reader rebuilds
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return found
    finally:
        os.close(lock)
