"""The monitor's stage 2 in Python (the fallback of native/dockui-watch.c, and the first 250 ms of
every start in stage 1): relays the container's stdout/stderr (or its pty) into the json-file log
and to an attached client, stdin and window sizes from it, and waits for the container.

Long-lived in every running container when the C stage is not built: it imports only os/select/
_json, compiled ahead (stages.ensure_bytecode).
"""

from __future__ import annotations

import os

from engine.container.monitor.context import (
    FRAME_ATTACHED,
    FRAME_RESIZE,
    FRAME_STDERR,
    FRAME_STDIN,
    FRAME_STDIN_EOF,
    FRAME_STDOUT,
    FrameReader,
    frame,
    write_all,
)

MAX_PARTIAL = 16 * 1024


class LogWriter:
    """Docker's json-file format: one entry per line (or per 16 KiB, or the rest at EOF).

    With `max_size` (bytes), rotated as Docker's driver does (see engine.container.logs): before a write
    would take the file past it, `path` becomes `path.1` (and so on, `max_file` files in all)."""

    def __init__(self, path: str, max_size: int = 0, max_file: int = 1) -> None:
        from _json import encode_basestring_ascii

        self.encode = encode_basestring_ascii
        self.path, self.max_size, self.max_file = path, max_size, max_file
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size
        self.partial = {"stdout": b"", "stderr": b""}

    def _write(self, entries: list[bytes]) -> None:
        """Write whole entries, batched; rotate before one that would take the file past max_size."""
        batch: list[bytes] = []
        for entry in entries:
            if self.max_size and self.size and self.size + len(entry) > self.max_size:
                write_all(self.fd, b"".join(batch))
                batch = []
                self._rotate()
            batch.append(entry)
            self.size += len(entry)
        if batch:
            write_all(self.fd, b"".join(batch))

    def _rotate(self) -> None:
        os.close(self.fd)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        if self.max_file > 1:
            for n in range(self.max_file - 1, 0, -1):
                try:
                    os.rename(f"{self.path}.{n - 1}" if n > 1 else self.path, f"{self.path}.{n}")
                except FileNotFoundError:
                    pass
        else:
            flags |= os.O_TRUNC
        self.fd = os.open(self.path, flags, 0o640)
        self.size = 0

    def write(self, stream: str, data: bytes) -> None:
        buf = self.partial[stream] + data
        out = []
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            while nl + 1 - start > MAX_PARTIAL:  # Docker splits long lines into 16 KiB pieces
                out.append(self.entry(stream, buf[start : start + MAX_PARTIAL]))
                start += MAX_PARTIAL
            out.append(self.entry(stream, buf[start : nl + 1]))
            start = nl + 1
        buf = buf[start:]
        while len(buf) >= MAX_PARTIAL:
            out.append(self.entry(stream, buf[:MAX_PARTIAL]))
            buf = buf[MAX_PARTIAL:]
        self.partial[stream] = buf
        if out:
            self._write(out)

    def flush(self) -> None:
        for stream, buf in self.partial.items():
            if buf:
                self._write([self.entry(stream, buf)])
                self.partial[stream] = b""

    def entry(self, stream: str, data: bytes) -> bytes:
        import time

        ns = time.time_ns()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"
        text = self.encode(data.decode("utf-8", "surrogateescape"))
        return f'{{"log":{text},"stream":"{stream}","time":"{stamp}"}}\n'.encode()


def accept_client(listen_fd: int) -> int:
    """A connection on the attach listener (an inheritable fd: stage 3 sends it the exit code), or -1."""
    import socket  # only when somebody attaches: its import is ~3 ms

    listener = socket.socket(fileno=listen_fd)
    try:
        conn, _ = listener.accept()
    except OSError:
        return -1
    finally:
        listener.detach()
    return conn.detach()


def watch(ctx: dict, grace: float | None = None) -> bool:
    """Relay the container's output until it exits (True, ctx["exit"] set).

    With `grace` (seconds), give up after that long while it still runs (False, ctx updated), so
    the start stage can finish short-lived containers in-process and exec the small watch stage
    only for those that live on.
    """
    import select
    import time

    pid = int(ctx["pid"])
    pty_fd = int(ctx.get("pty", -1))
    in_fd = int(ctx.get("in", -1))
    attach_fd = int(ctx.get("attach", -1))
    listen_fd = int(ctx.get("listen", -1))  # `dockui attach` connects here (runtime._attach_listener)
    log = LogWriter(ctx["log"], int(ctx.get("log_max_size") or 0), int(ctx.get("log_max_file") or 1))
    reader = FrameReader()
    sources = {}
    for key, stream in (("pty", "stdout"), ("out", "stdout"), ("err", "stderr")):
        fd = int(ctx.get(key, -1))
        if fd >= 0:
            sources[fd] = stream
    keys = {int(ctx[k]): k for k in ("pty", "out", "err") if int(ctx.get(k, -1)) >= 0}
    kinds = {"stdout": FRAME_STDOUT, "stderr": FRAME_STDERR}
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        pidfd = -1
    poller = select.poll()
    for fd in sources:
        poller.register(fd, select.POLLIN)
    if attach_fd >= 0:
        poller.register(attach_fd, select.POLLIN)
    if pidfd >= 0:
        poller.register(pidfd, select.POLLIN)
    if listen_fd >= 0:
        poller.register(listen_fd, select.POLLIN)
    exited = pidfd < 0
    give_up = None if grace is None else time.monotonic() + grace
    drain_deadline = None
    while sources or not exited:
        timeout = None
        if exited:
            # Every writer died with the pid namespace; a stray fd holder gets 2 s, then we go on.
            if drain_deadline is None:
                drain_deadline = time.monotonic() + 2.0
            timeout = max(0, int((drain_deadline - time.monotonic()) * 1000))
            if timeout == 0:
                break
        elif give_up is not None:
            timeout = max(0, int((give_up - time.monotonic()) * 1000))
            if timeout == 0:
                log.flush()
                os.close(log.fd)
                if pidfd >= 0:
                    os.close(pidfd)
                for key in ("pty", "out", "err"):
                    ctx[key] = "-1"
                for fd in sources:
                    ctx[keys[fd]] = str(fd)
                ctx["in"] = str(in_fd)
                ctx["attach"] = str(attach_fd)
                return False
        for fd, _events in poller.poll(timeout):
            if fd == pidfd:
                exited = True
                poller.unregister(pidfd)
                continue
            if fd == listen_fd:
                client = accept_client(listen_fd)
                if client < 0:
                    continue
                if attach_fd >= 0:  # one attached client at a time: this one sees EOF at once
                    os.close(client)
                    continue
                attach_fd = client
                poller.register(attach_fd, select.POLLIN)
                write_all(attach_fd, frame(FRAME_ATTACHED))
                continue
            if fd == attach_fd:
                try:
                    data = os.read(attach_fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    poller.unregister(attach_fd)
                    os.close(attach_fd)
                    attach_fd = -1  # the client went away; keep logging (another may attach)
                    reader = FrameReader()
                    continue
                for kind, payload in reader.feed(data):
                    if kind == FRAME_STDIN:
                        target = pty_fd if pty_fd >= 0 else in_fd
                        if target >= 0:
                            write_all(target, payload)
                    elif kind == FRAME_STDIN_EOF and in_fd >= 0:
                        os.close(in_fd)
                        in_fd = -1
                    elif kind == FRAME_RESIZE and pty_fd >= 0 and len(payload) == 4:
                        import fcntl
                        import termios

                        rows, cols = int.from_bytes(payload[:2], "big"), int.from_bytes(payload[2:], "big")
                        winsize = rows.to_bytes(2, "little") + cols.to_bytes(2, "little") + bytes(4)
                        fcntl.ioctl(pty_fd, termios.TIOCSWINSZ, winsize)
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the pty's last slave closed
                data = b""
            stream = sources.get(fd)
            if stream is None:
                continue
            if not data:
                poller.unregister(fd)
                del sources[fd]
                os.close(fd)
                if fd == pty_fd:
                    pty_fd = -1
                continue
            log.write(stream, data)
            if attach_fd >= 0 and not write_all(attach_fd, frame(kinds[stream], data)):
                poller.unregister(attach_fd)
                os.close(attach_fd)
                attach_fd = -1
    log.flush()
    os.close(log.fd)
    if pidfd >= 0:
        os.close(pidfd)
    for fd in sources:
        os.close(fd)
    try:
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
    except ChildProcessError:
        code = 255  # not our child (should not happen): the exit status is unknown
    ctx["exit"] = str(code)
    ctx["attach"] = str(attach_fd)
    for key in ("out", "err", "pty", "in", "pid"):
        ctx.pop(key, None)
    if in_fd >= 0:
        os.close(in_fd)
    return True
