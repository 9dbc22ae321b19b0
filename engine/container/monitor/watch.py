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
    MonitorContext,
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
        # engine.util.timefmt's RFC3339Nano, written out: that module loads `re`, which this
        # long-lived stage does without (docs/lifecycle.md, import costs)
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


def watch(ctx: MonitorContext, grace: float | None = None) -> bool:
    """Relay the container's output until it exits (True, ctx.exit_code set).

    With `grace` (seconds), give up after that long while it still runs (False, ctx updated), so
    the start stage can finish short-lived containers in-process and exec the small watch stage
    only for those that live on.
    """
    import time

    relay = _Relay(ctx)
    exited = relay.pidfd < 0
    give_up = None if grace is None else time.monotonic() + grace
    drain_deadline = None
    while relay.sources or not exited:
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
                relay.hand_over(ctx)
                return False
        for fd, _events in relay.poller.poll(timeout):
            if fd == relay.pidfd:
                exited = True
                relay.poller.unregister(relay.pidfd)
            elif fd == relay.listen_fd:
                relay.accept()
            elif fd == relay.attach_fd:
                relay.from_client()
            else:
                relay.from_container(fd)
    relay.finish(ctx)
    return True


class _Relay:
    """One watch's state: the container's output sources, the attached client (one at a time), the
    log, and the poller over them, the container's pidfd and the attach listener."""

    def __init__(self, ctx: MonitorContext) -> None:
        import select

        self.pid = ctx.pid
        self.pty_fd = ctx.pty_fd
        self.in_fd = ctx.in_fd
        self.stdin_once = ctx.stdin_once  # a client's stdin EOF ends the container's stdin only then
        self.attach_fd = ctx.attach_fd
        self.listen_fd = ctx.listen_fd  # `dockui attach` connects here (monitor.start._attach_listener)
        self.log = LogWriter(ctx.log_path, ctx.log_max_size, ctx.log_max_file or 1)
        self.reader = FrameReader()
        self.sources: dict[int, str] = {}
        for fd, stream in ((ctx.pty_fd, "stdout"), (ctx.out_fd, "stdout"), (ctx.err_fd, "stderr")):
            if fd >= 0:
                self.sources[fd] = stream
        self.keys = {fd: name for name, fd in (("pty_fd", ctx.pty_fd), ("out_fd", ctx.out_fd),
                                               ("err_fd", ctx.err_fd)) if fd >= 0}
        try:
            self.pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            self.pidfd = -1
        self.poller = select.poll()
        for fd in [*self.sources, self.attach_fd, self.pidfd, self.listen_fd]:
            if fd >= 0:
                self.poller.register(fd, select.POLLIN)

    def accept(self) -> None:
        """A client on the attach listener: it becomes the attached one unless there is one."""
        import select

        client = accept_client(self.listen_fd)
        if client < 0:
            return
        if self.attach_fd >= 0:  # one attached client at a time: this one sees EOF at once
            os.close(client)
            return
        self.attach_fd = client
        self.poller.register(self.attach_fd, select.POLLIN)
        write_all(self.attach_fd, frame(FRAME_ATTACHED))

    def from_client(self) -> None:
        """Frames from the attached client: stdin, its end, window sizes; EOF detaches it."""
        try:
            data = os.read(self.attach_fd, 65536)
        except OSError:
            data = b""
        if not data:
            self.poller.unregister(self.attach_fd)
            os.close(self.attach_fd)
            self.attach_fd = -1  # the client went away; keep logging (another may attach)
            self.reader = FrameReader()
            return
        for kind, payload in self.reader.feed(data):
            if kind == FRAME_STDIN:
                target = self.pty_fd if self.pty_fd >= 0 else self.in_fd
                if target >= 0:
                    write_all(target, payload)
            elif kind == FRAME_STDIN_EOF and self.in_fd >= 0 and self.stdin_once:
                os.close(self.in_fd)
                self.in_fd = -1
            elif kind == FRAME_RESIZE and self.pty_fd >= 0 and len(payload) == 4:
                import fcntl
                import termios

                rows, cols = int.from_bytes(payload[:2], "big"), int.from_bytes(payload[2:], "big")
                winsize = rows.to_bytes(2, "little") + cols.to_bytes(2, "little") + bytes(4)
                fcntl.ioctl(self.pty_fd, termios.TIOCSWINSZ, winsize)

    def from_container(self, fd: int) -> None:
        """Output from the container: into the log and to the attached client; EOF drops the source."""
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the pty's last slave closed
            data = b""
        stream = self.sources.get(fd)
        if stream is None:
            return
        if not data:
            self.poller.unregister(fd)
            del self.sources[fd]
            os.close(fd)
            if fd == self.pty_fd:
                self.pty_fd = -1
            return
        self.log.write(stream, data)
        kind = FRAME_STDOUT if stream == "stdout" else FRAME_STDERR
        if self.attach_fd >= 0 and not write_all(self.attach_fd, frame(kind, data)):
            self.poller.unregister(self.attach_fd)
            os.close(self.attach_fd)
            self.attach_fd = -1

    def hand_over(self, ctx: MonitorContext) -> None:
        """The grace period passed while the container runs: what is still open goes back into
        `ctx` for the watch stage proper."""
        self.log.flush()
        os.close(self.log.fd)
        if self.pidfd >= 0:
            os.close(self.pidfd)
        ctx.pty_fd = ctx.out_fd = ctx.err_fd = -1
        for fd in self.sources:
            setattr(ctx, self.keys[fd], fd)
        ctx.in_fd = self.in_fd
        ctx.attach_fd = self.attach_fd

    def finish(self, ctx: MonitorContext) -> None:
        """The container exited: flush and close, reap it, and leave its exit code in `ctx`."""
        self.log.flush()
        os.close(self.log.fd)
        if self.pidfd >= 0:
            os.close(self.pidfd)
        for fd in self.sources:
            os.close(fd)
        try:
            _, status = os.waitpid(self.pid, 0)
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code
        except ChildProcessError:
            code = 255  # not our child (should not happen): the exit status is unknown
        ctx.exit_code = code
        ctx.attach_fd = self.attach_fd
        ctx.out_fd = ctx.err_fd = ctx.pty_fd = ctx.in_fd = -1
        ctx.pid = 0
        if self.in_fd >= 0:
            os.close(self.in_fd)
