"""Timestamps of the run path across its processes (the CLI, the monitor it forks, the container's
first process until its exec), for bench/run's timeline (`bench/run --timeline N`).

`DOCKUI_TRACE=<file>` in the environment: each `mark(what)` appends one line, `<pid> <ns> <what>`,
the time from CLOCK_MONOTONIC (one clock for every process of the host, the bench's too). A process
opens the file at its first mark (a fork's child at its own first one, before it leaves the host's
mount namespace: the container's process marks first thing for that reason) and keeps it open
while it is still its own (see _write). Give it a file on a tmpfs (bench/run uses /dev/shm): a write
that extends a file on disk may wait for the file system's journal, in the middle of what it times.

Invariant: without the variable (always, outside the bench) `mark` returns at once: nothing is
opened, written or imported. A mark never raises (a failed write is dropped).
"""

from __future__ import annotations

import os

PATH = os.environ.get("DOCKUI_TRACE") or None
_fd = -1
_file: tuple[int, int, int] = (0, 0, 0)  # (pid, st_dev, st_ino) of _fd when it was opened


def mark(what: str) -> None:
    """One timestamp, when tracing (see the module's docstring)."""
    if PATH is None:
        return
    _write(what)


def _write(what: str) -> None:
    """Checked before each write: the descriptor is this process's and still the trace file (a
    forked child's parent's may have been closed, its number since reused by another file)."""
    global _fd, _file
    from time import monotonic_ns

    now = monotonic_ns()
    pid = os.getpid()
    try:
        try:
            st = os.fstat(_fd) if _fd >= 0 else None
        except OSError:
            st = None
        if st is None or (pid, st.st_dev, st.st_ino) != _file:
            _fd = os.open(PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            st = os.fstat(_fd)
            _file = (pid, st.st_dev, st.st_ino)
        os.write(_fd, f"{pid} {now} {what}\n".encode())
    except OSError:
        pass
