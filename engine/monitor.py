"""The per-container monitor: what conmon is to podman. One detached process per running container.

`runtime.start` launches it as a fresh interpreter in its own session (`start_new_session=True`), so
it survives the CLI and the TUI. It keeps ONE pid for the container's whole life but runs in three
stages, each an `execv` of the previous one, so that the long-lived part is small:

1. `start` (full engine imported): creates the cgroup, mounts the rootfs, calls
   `engine.process.spawn_container` (its `on_namespaces_ready` joins the cgroup and plugs the veth),
   records "running", reports `{"ok": ...}` or `{"error": ..., "exit_code": ...}` on the status fd,
   then execs stage 2 with the container's stdio fds inherited.
2. `watch` (`python -S engine/monitor.py`, imports only os/select/fcntl/_json): relays stdout/stderr
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
MAX_PARTIAL = 16 * 1024
START_GRACE = 0.25  # seconds the full start stage relays before exec'ing the small watch stage
ENGINE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    """Docker's json-file format: one entry per line (or per 16 KiB, or the rest at EOF)."""

    def __init__(self, path: str) -> None:
        from _json import encode_basestring_ascii

        self.encode = encode_basestring_ascii
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.partial = {"stdout": b"", "stderr": b""}

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
            write_all(self.fd, b"".join(out))

    def flush(self) -> None:
        for stream, buf in self.partial.items():
            if buf:
                write_all(self.fd, self.entry(stream, buf))
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
    log = LogWriter(ctx["log"])
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
            if fd == attach_fd:
                try:
                    data = os.read(attach_fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    poller.unregister(attach_fd)
                    attach_fd = -1  # the client went away; keep logging
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


def exec_stage(stage: str, ctx: dict) -> None:
    """Replace this process with the next stage (same pid, so the container stays our child)."""
    for key in ("attach", "status", "out", "err", "pty", "in"):
        fd = int(ctx.get(key, -1) or -1)
        if fd >= 0:
            os.set_inheritable(fd, True)
    env = dict(os.environ)
    env["PYTHONPATH"] = ENGINE_ROOT
    if stage == "watch":
        argv = [sys.executable, "-S", os.path.abspath(__file__), stage, *encode_kv(ctx)]
    else:
        argv = [sys.executable, "-m", "engine.monitor", stage, *encode_kv(ctx)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


# -------------------------------------------------------------------------------- stages 1 and 3


def report_status(ctx: dict, message: dict) -> None:
    """Tell `runtime.start` (once) whether the container runs; then the pipe is closed."""
    fd = int(ctx.get("status", -1))
    if fd < 0:
        return
    import json

    write_all(fd, (json.dumps(message) + "\n").encode())
    os.close(fd)
    ctx["status"] = "-1"


def send_exit(ctx: dict, code: int) -> None:
    fd = int(ctx.get("attach", -1))
    if fd >= 0:
        write_all(fd, frame(FRAME_EXIT, code.to_bytes(4, "big", signed=True)))
        os.close(fd)
        ctx["attach"] = "-1"


def loopback_up(pid: int) -> None:
    """`--network none`: bring `lo` up in the container's namespace (an ioctl, no netlink library)."""
    import fcntl
    import socket
    import struct

    from engine import syscalls

    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.setns(target, syscalls.CLONE_NEWNET)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        finally:
            syscalls.setns(own, syscalls.CLONE_NEWNET)
    finally:
        os.close(target)
        os.close(own)
    with sock:
        siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock.fileno(), siocgifflags, request))[1]
        fcntl.ioctl(sock.fileno(), siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


def launch(config, record, ctx: dict) -> dict:  # noqa: ANN001 - typed in runtime; kept import-free here
    """Cgroup, network plan, stdio, spawn: returns the fds and pid the watch stage needs."""

    from engine import cgroups, hostsfiles, imageconfig, process, runtime, security, state
    from engine.errors import Conflict

    hc, cfg = record.host_config, record.config
    d = record.dir(config)
    mode = hc.get("NetworkMode") or "bridge"
    kind = runtime.network_kind(mode)
    cg = cgroups.open_cgroup(config, record.id)
    cg.create(runtime.resources_of(hc), privileged=bool(hc.get("Privileged")))
    plan = None
    network_value = kind
    files = {"hosts": d / "hosts", "hostname": d / "hostname", "resolv.conf": d / "resolv.conf"}
    child_fds: list = []
    keep: dict = {}
    mounted = False
    try:
        if kind == "bridge":
            from engine import network

            spec = network.NetworkSpec(
                mode=mode,
                ip=hc.get("IPAddress"),
                publish=list(hc.get("PublishSpecs") or []),
                publish_all=bool(hc.get("PublishAllPorts")),
                links=list(hc.get("Links") or []),
                dns=list(hc.get("Dns") or []),
                dns_search=list(hc.get("DnsSearch") or []),
                dns_options=list(hc.get("DnsOptions") or []),
                add_hosts=list(hc.get("ExtraHosts") or []),
                hostname=cfg.get("Hostname"),
                env=list(cfg.get("Env") or []),
            )
            plan = network.prepare(config, record.id, record.name, spec, list((cfg.get("ExposedPorts") or {}).keys()))
            hostsfiles.write_in_place(files["hosts"], plan.hosts)
            hostsfiles.write_in_place(files["resolv.conf"], plan.resolv_conf)
        elif kind == "container":
            other = state.find_container(config, mode.split(":", 1)[1])
            if other.status != "running" or not state.process_alive(other.pid, other.pid_start):
                raise Conflict(f"cannot join network of a non running container: {other.id}")
            network_value = f"container:{other.pid}"
            files = {k: other.dir(config) / k for k in files}
        # The rootfs is mounted here, on the host side (see runtime.mount_rootfs), and handed to
        # spawn_container as a plain directory it binds recursively.
        merged = runtime.mount_rootfs(config, record, files)
        mounted = True
        privileged = bool(hc.get("Privileged"))
        tty = bool(cfg.get("Tty"))
        env = imageconfig.process_env(cfg.get("Env") or [], cfg.get("Hostname", ""), tty, plan.link_env if plan else [])
        spec = process.ProcessSpec(
            argv=[record.path, *record.args],
            rootfs=merged,
            env=env,
            overlay=None,
            cwd=cfg.get("WorkingDir") or "/",
            user=cfg.get("User") or "",
            hostname=cfg.get("Hostname", ""),
            tty=tty,
            network=network_value,
            mounts=[],
            shm_size=int(hc.get("ShmSize") or 64 * 1024 * 1024),
            read_only=bool(hc.get("ReadonlyRootfs")),
            capabilities=security.capabilities_for(hc.get("CapAdd") or (), hc.get("CapDrop") or (), privileged),
            privileged=privileged,
        )
        if tty:
            master, slave = os.openpty()
            if ctx.get("winsize"):
                import fcntl
                import termios

                rows, cols = (int(x) for x in ctx["winsize"].split("x"))
                fcntl.ioctl(master, termios.TIOCSWINSZ, rows.to_bytes(2, "little") + cols.to_bytes(2, "little") + bytes(4))
            child_fds.append(slave)
            keep["pty"] = master
            stdio = (slave, slave, slave)
        else:
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            keep.update(out=out_r, err=err_r)
            child_fds += [out_w, err_w]
            in_r = None
            if ctx.get("stdin") == "1":
                in_r, in_w = os.pipe2(os.O_CLOEXEC)
                keep["in"] = in_w
                child_fds.append(in_r)
            stdio = (in_r, out_w, err_w)
        oom_base = cg.oom_kill_count()

        def on_namespaces_ready(pid: int) -> None:
            cg.add_process(pid)
            if plan is not None:
                network.attach(config, plan, pid)
            elif kind == "none":
                loopback_up(pid)

        pid = process.spawn_container(spec, stdio, on_namespaces_ready)
    except BaseException:
        for fd in [*child_fds, *keep.values()]:
            os.close(fd)
        if mounted:
            runtime.unmount_rootfs(record)
        try:
            cg.destroy()
        finally:
            if plan is not None:
                network.detach(config, record.id)
        raise
    for fd in child_fds:
        os.close(fd)
    pid_start = state.process_start_ticks(pid)
    settings = plan.settings() if plan is not None else {
        "NetworkMode": mode, "IPAddress": "", "IPPrefixLen": 0, "MacAddress": "", "Gateway": "",
        "HostVeth": "", "Bridge": "", "Ports": {}, "Links": None, "Networks": {},
    }

    def running(r) -> None:  # noqa: ANN001
        r.status = "running"
        r.pid = pid
        r.pid_start = pid_start
        r.started_at = state.now_rfc3339()
        r.exit_code = 0
        r.error = ""
        r.oom_killed = False
        r.cgroup_paths = {k: str(v) for k, v in cg.paths.items()}
        r.network = settings

    state.update(config, record.id, running)
    handoff = {k: str(v) for k, v in keep.items()}
    handoff.update(pid=str(pid), oom=str(oom_base), log=str(record.log_path(config)))
    return handoff


def start(ctx: dict) -> None:
    """Stage 1: start the container, report, then become the small watch stage."""
    import traceback

    from engine import runtime, state
    from engine.errors import DockuiError

    config = runtime.config_from_json(ctx["config"])
    cid = ctx["id"]
    me, me_start = os.getpid(), state.process_start_ticks(os.getpid())

    def claim(r) -> None:  # noqa: ANN001
        r.monitor_pid, r.monitor_start = me, me_start

    try:
        record = state.update(config, cid, claim)
        handoff = launch(config, record, ctx)
    except BaseException as exc:  # noqa: BLE001 - everything is reported to the CLI
        if isinstance(exc, DockuiError):
            message, code = str(exc), exc.exit_code
        else:
            traceback.print_exc()
            message, code = f"failed to start the container: {exc}", 125
        failed(config, cid, ctx, message, code)
        return
    report_status(ctx, {"ok": True, "pid": int(handoff["pid"])})
    ctx.update(handoff)
    if watch(ctx, grace=START_GRACE):
        finish(ctx)  # short-lived: no need for the small stage (saves two interpreter starts)
    else:
        exec_stage("watch", ctx)


def failed(config, cid: str, ctx: dict, message: str, code: int) -> None:  # noqa: ANN001
    """The start failed: record it as Docker does (status kept, ExitCode and Error set)."""
    from engine import runtime, state
    from engine.errors import NotFound

    record = None
    try:

        def note(r) -> None:  # noqa: ANN001
            r.exit_code = code
            r.error = message
            r.monitor_pid = r.monitor_start = 0
            r.pid = r.pid_start = 0
            if r.status != "created":
                r.status = "exited"
                r.finished_at = state.now_rfc3339()

        record = state.update(config, cid, note)
    except NotFound:
        pass
    if record is not None and record.host_config.get("AutoRemove"):
        try:
            runtime.remove(config, cid, force=True, volumes=True)
        except Exception as exc:  # noqa: BLE001
            print(f"--rm clean-up failed: {exc}", file=sys.stderr)
    report_status(ctx, {"error": message, "exit_code": code})
    send_exit(ctx, code)


def finish(ctx: dict) -> None:
    """Stage 3: record the exit, clean up, and restart (back to stage 1) or remove."""
    import time

    from engine import cgroups, runtime, state
    from engine.errors import NotFound

    config = runtime.config_from_json(ctx["config"])
    cid = ctx["id"]
    code = int(ctx["exit"])
    try:
        record = state.load(config, cid)
    except NotFound:
        record = None
    if record is not None and record.cgroup_paths:
        cg = cgroups.Cgroup.from_paths(record.cgroup_paths)
    else:
        cg = cgroups.open_cgroup(config, cid)
    oom = cg.oom_kill_count() > int(ctx.get("oom", 0) or 0)
    try:
        cg.destroy()
    except Exception as exc:  # noqa: BLE001
        print(f"cgroup clean-up failed: {exc}", file=sys.stderr)
    if record is not None:
        runtime.unmount_rootfs(record)
    if record is not None and runtime.network_kind(record.host_config.get("NetworkMode", "none")) == "bridge":
        try:
            from engine import network

            network.detach(config, cid)
        except Exception as exc:  # noqa: BLE001
            print(f"network detach failed: {exc}", file=sys.stderr)
    if record is None:
        send_exit(ctx, code)
        return
    if oom and code == 0:
        code = 137
    policy = record.host_config.get("RestartPolicy") or {}
    name, retries = policy.get("Name") or "", int(policy.get("MaximumRetryCount") or 0)

    def exited(r) -> None:  # noqa: ANN001
        r.status = "exited"
        r.exit_code = code
        r.oom_killed = oom
        r.finished_at = state.now_rfc3339()
        r.pid = r.pid_start = 0
        again = not r.stop_requested and (
            name in ("always", "unless-stopped")
            or (name == "on-failure" and code != 0 and (retries == 0 or r.restart_count < retries))
        )
        if again:
            r.status = "restarting"
            r.restart_count += 1
        else:
            r.monitor_pid = r.monitor_start = 0

    try:
        record = state.update(config, cid, exited)
    except NotFound:
        send_exit(ctx, code)
        return
    if record.status == "restarting":
        time.sleep(min(0.1 * 2 ** (record.restart_count - 1), 10.0))  # Docker's doubling back-off

        def check(r) -> None:  # noqa: ANN001
            if r.stop_requested:
                r.status = "exited"
                r.monitor_pid = r.monitor_start = 0

        try:
            record = state.update(config, cid, check)
        except NotFound:
            send_exit(ctx, code)
            return
        if record.status == "restarting":
            for key in ("exit", "pid", "oom"):
                ctx.pop(key, None)
            exec_stage("start", ctx)  # a fresh stage 1: no recursion however often it restarts
    if record.host_config.get("AutoRemove"):
        try:
            runtime.remove(config, cid, volumes=True)
        except Exception as exc:  # noqa: BLE001
            print(f"--rm clean-up failed: {exc}", file=sys.stderr)
    send_exit(ctx, code)


def main(argv: list) -> int:
    stage, ctx = argv[0], parse_kv(argv[1:])
    for key in ("attach", "status", "out", "err", "pty", "in"):
        fd = int(ctx.get(key, -1) or -1)
        if fd >= 0:
            os.set_inheritable(fd, False)
    if stage == "watch":
        watch(ctx)
        exec_stage("finish", ctx)
        return 0
    if stage == "start":
        start(ctx)
    elif stage == "finish":
        finish(ctx)
    else:
        print(f"unknown monitor stage {stage!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
