"""The per-container monitor: what conmon is to podman. One detached process per running container.

`runtime.start` launches it as a fresh interpreter in its own session (`start_new_session=True`), so
it survives the CLI and the TUI. It keeps ONE pid for the container's whole life but runs in three
stages, each an `execv` of the previous one, so that the long-lived part is small. Stages 1 and 3
need the whole engine and live in engine.container.runtime (`monitor_start`, `monitor_finish`); this module
holds only what the long-lived stage 2 runs, so that stage compiles and keeps little:

1. `start` (full engine imported): creates the cgroup, mounts the rootfs, calls
   `engine.sandbox.process.spawn_container` (the process joins its cgroup itself; `on_namespaces_ready` plugs the veth),
   records "running", reports `{"ok": ...}` or `{"error": ..., "exit_code": ...}` on the status fd,
   then relays output itself for 250 ms: a container that exits by then is finished in-process
   (no more interpreter starts), one that lives on gets stage 2 with its stdio fds inherited.
2. `watch` (the C drop-in engine/container/native/dockui-watch.c when built, see `native_watch`; otherwise
   `python -S`, loads only this module from its .pyc, and os/select/_json): relays stdout/stderr
   (or the pty) into the json-file log and to an attached client, stdin and window sizes from it,
   and waits for the container (its child: exec keeps children) through a pidfd.
3. `finish` (full engine again): records exit code, times and OOMKilled (137 when the cgroup's
   oom_kill count rose), detaches the network, removes the cgroup, unmounts the rootfs, applies the
   restart policy (back to stage 1) or `--rm`, then tells an attached client the exit code.

The attached client (CLI `run`/`start -a`) talks over a socketpair made by the CLI: frames of
`kind (1 byte) | length (4 bytes, big endian) | payload`, kinds below.
"""

import os
import sys

FRAME_STDIN = 0
FRAME_STDOUT = 1
FRAME_STDERR = 2
FRAME_STDIN_EOF = 3
FRAME_RESIZE = 4  # payload: rows, cols as two 2-byte big-endian ints
FRAME_EXIT = 5  # payload: exit code as a 4-byte big-endian signed int
FRAME_ATTACHED = 6  # to a client of `attach`: it is the container's attached client now
MAX_PARTIAL = 16 * 1024
START_GRACE = 0.25  # seconds the full start stage relays before exec'ing the small watch stage
ENGINE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # holds engine/


def frame(kind: int, payload: bytes = b"") -> bytes:
    return bytes((kind,)) + len(payload).to_bytes(4, "big") + payload


class FrameReader:
    """Splits a byte stream into (kind, payload) frames."""

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> list:
        self.buf += data
        frames = []
        while len(self.buf) >= 5:
            size = int.from_bytes(self.buf[1:5], "big")
            if len(self.buf) < 5 + size:
                break
            frames.append((self.buf[0], self.buf[5 : 5 + size]))
            self.buf = self.buf[5 + size :]
        return frames


def write_all(fd: int, data: bytes) -> bool:
    """Write everything (blocking fd); False when the reader went away."""
    try:
        while data:
            data = data[os.write(fd, data) :]
        return True
    except OSError:
        return False


# -------------------------------------------------------------------------------- json-file log writer


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


# -------------------------------------------------------------------------------- stage 2: watch


def parse_kv(args: list) -> dict:
    ctx = {}
    for arg in args:
        key, _, value = arg.partition("=")
        ctx[key] = value
    return ctx


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


def encode_kv(ctx: dict) -> list:
    return [f"{k}={v}" for k, v in ctx.items() if v is not None]


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


_bytecode_checked = False


def ensure_bytecode() -> None:
    """Have .pyc files for the engine (an editable install, or PYTHONDONTWRITEBYTECODE, has none).

    Compiling from source costs each stage tens of milliseconds, and the long-lived watch stage
    ~1 MB for good. Only stats when the files are fresh, and once per process (a monitor forked
    ahead checks while it waits for its context).
    """
    global _bytecode_checked
    if _bytecode_checked:
        return
    _bytecode_checked = True
    import importlib.util

    # (and for the console script's first module, tui.launcher: the TUI's others are not on the CLI path)
    engine_dirs = [d for d, _, _ in os.walk(os.path.join(ENGINE_ROOT, "engine")) if not d.endswith("__pycache__")]
    for directory in (*engine_dirs, os.path.join(ENGINE_ROOT, "tui")):
        try:
            names = [n for n in os.listdir(directory) if n.endswith(".py")]
        except OSError:
            continue
        if directory.endswith("tui"):
            names = [n for n in names if n in ("__init__.py", "launcher.py")]
        for name in names:
            source = os.path.join(directory, name)
            cached = importlib.util.cache_from_source(source)
            try:
                if os.stat(cached).st_mtime >= os.stat(source).st_mtime:
                    continue
            except OSError:
                pass
            import py_compile

            try:
                py_compile.compile(source, cached, doraise=True)
            except (OSError, py_compile.PyCompileError):
                return  # read-only install: stages still run, compiled from source


def native_watch() -> str | None:
    """The compiled watch stage, if built (~0.3 MB of PSS instead of the interpreter's ~3 MB).

    DOCKUI_WATCH=python forces the Python stage; DOCKUI_WATCH=<path> names the binary.
    """
    choice = os.environ.get("DOCKUI_WATCH", "")
    if choice == "python":
        return None
    path = choice or os.path.join(sys.prefix, "libexec", "dockui-watch")
    return path if os.access(path, os.X_OK) else None


def exec_stage(stage: str, ctx: dict) -> None:
    """Replace this process with the next stage (same pid, so the container stays our child)."""
    for key in ("attach", "listen", "status", "out", "err", "pty", "in"):
        fd = int(ctx.get(key, -1) or -1)
        if fd >= 0:
            os.set_inheritable(fd, True)
    env = dict(os.environ)
    if ENGINE_ROOT not in env.get("PYTHONPATH", "").split(os.pathsep):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (ENGINE_ROOT, env.get("PYTHONPATH")) if p)
    native = native_watch() if stage == "watch" else None
    if native:
        # The C stage (engine/container/native/dockui-watch.c): same argv and context; it execs stage 3 with this python.
        env["DOCKUI_MONITOR_PYTHON"] = sys.executable
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(native, [native, stage, *encode_kv(ctx)], env)
    if stage == "watch":
        loader = f"import sys; sys.path.insert(0, {ENGINE_ROOT!r}); from engine.container.monitor import main; sys.exit(main(sys.argv[1:]))"
        argv = [sys.executable, "-S", "-c", loader, stage, *encode_kv(ctx)]
    else:
        argv = [sys.executable, "-S", "-m", "engine.container.monitor", stage, *encode_kv(ctx)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


def main(argv: list) -> int:
    stage, ctx = argv[0], parse_kv(argv[1:])
    for key in ("attach", "listen", "status", "out", "err", "pty", "in"):
        fd = int(ctx.get(key, -1) or -1)
        if fd >= 0:
            os.set_inheritable(fd, False)
    if stage == "watch":
        watch(ctx)
        exec_stage("finish", ctx)
        return 0
    from engine.container import runtime  # stages 1 and 3 need the whole engine; they live with the lifecycle

    if stage == "start":
        runtime.monitor_start(ctx)
    elif stage == "finish":
        runtime.monitor_finish(ctx)
    else:
        print(f"unknown monitor stage {stage!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
