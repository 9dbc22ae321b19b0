"""The mount points this process sees (/proc/self/mountinfo): the one reader of the mount table,
for the container side's questions (a rootfs left mounted, a volume's `_data` mounted, anything
mounted below a volume before it is deleted, a reconcile's stale mounts).

One removal asks several of them (`rm -v`: the rootfs, the volume, before and after unmounting),
so inside a `session()` the table is read once and kept, with the file it was read from. The
kernel flags an open mountinfo file (POLLPRI|POLLERR, fs/proc_namespace.c's mounts_poll) once its
mount namespace has changed since the file was opened or last polled: a later lookup in the
session costs one poll(2) and reads the file again only after a mount or an unmount, ours or
anyone's, so an answer is as fresh as a read at that moment. (The poll comes before the read: a
change in between shows at the next poll.) `select` is imported only when a kept table is looked
up again. Outside a session every lookup reads the file afresh, and a session's file is closed
when the outermost session ends: a long-lived process (the service) holds no descriptor between
its requests.

Invariant: `mount_points()` is never older than the last change of the mount namespace before the
call. A kept file belongs to the process that opened it: a forked child reads afresh and never
polls its parent's file (the poll state is the open file's, which a fork shares). A file names the
mount namespace it was opened in: a process enters another one (unshare, setns: the engine does so
only in forked children) outside any session.
"""

from __future__ import annotations

import _thread  # (a lock without loading `threading`: see docs/lifecycle.md, "Import costs")
import os
from contextlib import contextmanager

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from collections.abc import Iterator

MOUNTINFO = "/proc/self/mountinfo"
_ESCAPES = (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\"))  # mountinfo's octal escapes


class _Table:
    """The mount points read from one open mountinfo file, and the poll that says they changed."""

    __slots__ = ("fd", "owner", "points", "poller")

    def __init__(self, owner: int) -> None:
        self.owner = owner
        self.poller = None
        self.fd = os.open(MOUNTINFO, os.O_RDONLY | os.O_CLOEXEC)  # the open is the first poll's baseline
        self.points = _parse(self.fd)

    def current(self) -> frozenset[str]:
        if self.poller is None:
            import select

            self.poller = select.poll()
            self.poller.register(self.fd, select.POLLPRI)
        if self.poller.poll(0):  # (only POLLPRI or POLLERR is reported: the namespace changed)
            os.lseek(self.fd, 0, os.SEEK_SET)
            self.points = _parse(self.fd)
        return self.points

    def close(self) -> frozenset[str]:
        os.close(self.fd)
        return self.points


_kept: _Table | None = None
_sessions = 0  # sessions open in this process (any thread)
_lock = _thread.allocate_lock()


def mount_points() -> frozenset[str]:
    """Every mount point (its path as mountinfo names it: resolved, unescaped)."""
    global _kept
    owner = os.getpid()
    with _lock:
        if not _sessions:
            return _Table(owner).close()
        if _kept is not None and _kept.owner == owner:
            return _kept.current()
        _kept = _Table(owner)  # (a forked child leaves its copy of the parent's descriptor alone:
        return _kept.points    # its number may name another file there by now)


@contextmanager
def session() -> Iterator[None]:
    """Lookups inside share one read of the table (re-read only after a change); re-entrant, and
    across threads: the file is closed when the last open session ends."""
    global _sessions, _kept
    with _lock:
        _sessions += 1
    try:
        yield
    finally:
        with _lock:
            _sessions -= 1
            if not _sessions and _kept is not None:
                if _kept.owner == os.getpid():
                    _kept.close()
                _kept = None


def mounts_under(real: str) -> list[str]:
    """The mount points at or below the resolved path `real`, sorted (parents first)."""
    return sorted(p for p in mount_points() if p == real or p.startswith(real.rstrip("/") + "/"))


def _parse(fd: int) -> frozenset[str]:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    points = set()
    for line in b"".join(chunks).decode(errors="surrogateescape").splitlines():
        point = line.split(" ", 5)[4]
        if "\\" in point:
            for escaped, char in _ESCAPES:
                point = point.replace(escaped, char)
        points.add(point)
    return frozenset(points)
