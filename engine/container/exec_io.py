"""The host side of an exec's stdio: relaying its pipes, and opening its pty in the container.

The container's process only ever holds pipe ends or a pty from its own devpts (docs/isolation.md):
this module is the other end, shared by the CLI's `exec` and the exec helper of the Engine API
service (engine.container.exec_instances). Invariant: the relay stops as soon as the exec'd process
has exited and what it wrote has been read (at most a pipe's buffer, drained within DRAIN_SECONDS).
Whatever the command left running in the background then writes into a closed pipe (EPIPE), never
into the caller's terminal or file, and can never read what the user types next.
"""

from __future__ import annotations

import os
import select
import time

from engine.errors import DockuiError

DRAIN_SECONDS = 0.2  # after the exit: long enough to empty a full pipe buffer, short enough not to wait on leftovers


def relay_exec_pipes(pid: int, stdin_w: int | None, out_r: int, err_r: int) -> None:
    """Copy our stdin to `stdin_w` and `out_r`/`err_r` to our stdout/stderr until `pid` is done.

    Closes the three pipe ends it is given. Does not reap `pid` (the caller waits for its status).
    """
    pidfd = os.pidfd_open(pid)
    sinks = {out_r: 1, err_r: 2}
    broken: set[int] = set()  # our stdout/stderr closed by the reader (`| head`): keep draining, drop data
    pending = b""
    deadline: float | None = None
    if stdin_w is not None:
        os.set_blocking(stdin_w, False)
    try:
        while sinks:
            readable = list(sinks)
            if deadline is None:
                readable.append(pidfd)
                if stdin_w is not None and not pending:
                    readable.append(0)
            writable = [stdin_w] if stdin_w is not None and pending else []
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, can_write, _ = select.select(readable, writable, [], timeout)
            if not ready and not can_write:
                break  # exited and drained: leftovers in the background are cut off here
            if pidfd in ready:
                deadline = time.monotonic() + DRAIN_SECONDS
                stdin_w = _close(stdin_w)
                pending = b""
            for fd in [fd for fd in ready if fd in sinks]:
                data = os.read(fd, 65536)
                if not data:
                    os.close(fd)
                    del sinks[fd]
                elif sinks[fd] not in broken:
                    try:
                        _write_all(sinks[fd], data)
                    except BrokenPipeError:
                        broken.add(sinks[fd])
            if 0 in ready and stdin_w is not None:
                pending = os.read(0, 65536)
                if not pending:
                    stdin_w = _close(stdin_w)
            if stdin_w is not None and stdin_w in can_write:
                try:
                    pending = pending[os.write(stdin_w, pending):]
                except BrokenPipeError:  # the command closed its stdin: stop feeding it
                    stdin_w = _close(stdin_w)
                    pending = b""
    finally:
        for fd in sinks:
            os.close(fd)
        _close(stdin_w)
        os.close(pidfd)


def _close(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def open_container_pty(pid: int) -> tuple[int, int]:
    """A pty from the container's own devpts (as runc's exec does), so `tty` names /dev/pts/N inside.

    The master is opened through /proc/<pid>/root and checked to be a devpts ptmx that is not the
    host's; the slave comes from the master itself (TIOCGPTPEER), never from a path.
    """
    import fcntl
    import stat
    import struct
    import termios

    ptmx = os.open(f"/proc/{pid}/root/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(ptmx)
        host_pts = os.stat("/dev/pts")
        if not stat.S_ISCHR(st.st_mode) or os.major(st.st_rdev) != 5 or st.st_dev == host_pts.st_dev:
            raise DockuiError("the container's /dev/pts/ptmx is not its own devpts")
        fcntl.ioctl(ptmx, getattr(termios, "TIOCSPTLCK", 0x40045431), struct.pack("i", 0))
        slave = fcntl.ioctl(ptmx, 0x5441, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)  # TIOCGPTPEER
    except BaseException:
        os.close(ptmx)
        raise
    return ptmx, slave
