"""Starting a container's process (and `exec`s into it) in its own namespaces.

Used by the per-container monitor (engine.container.monitor), a fresh single-threaded interpreter: fork
is safe there. Do not call spawn_container/exec_in_container from a threaded process (the TUI);
start a helper interpreter instead.

One module of ~870 lines on purpose: spawn and exec share the child-side steps between fork and
execve (cgroup join, setns/unshare, stdio, user, capabilities, seccomp, the 126/127 report), which
must run in exactly this order; one file keeps that sequence readable top to bottom.

spawn_container(spec, stdio, on_namespaces_ready, during_setup) -> host pid
    1. The caller unshares CLONE_NEWPID for its *children* only, forks, and restores its own
       pid_for_children with setns (so it can start the container again later, e.g. --restart).
       The child is PID 1 of the new pid namespace and a direct child of the caller (waitpid it).
    2. Child: non-dumpable; writes itself into spec.cgroup_procs (the container's cgroups);
       unshares mount, uts (unless "host"), ipc, cgroup (rooted at the group just joined) and (unless network
       "host") net namespaces, bringing `lo` up; "container:<pid>" / "netns:<path>" joins that
       net namespace with setns.
    3. Only with on_namespaces_ready: the child tells the parent, which runs
       on_namespaces_ready(pid) (plug the veth; a caller without cgroup_procs may join the cgroup
       here: the cgroup namespace is then unshared after it). If it raises, the child is killed
       and reaped and the exception propagates. Without it there is no round trip.
       Then the parent runs during_setup(pid), if given, while the child goes on.
    4. Child: stdio on 0-2; setsid (and
       TIOCSCTTY with a tty); rootfs (see rootfs.py: overlay, pivot_root, /proc, /dev, /sys ro,
       binds, masked and read-only paths, --read-only); hostname; resolves the user inside the
       container; no_new_privs; seccomp (Docker's default rules); bounding set;
       setgroups/setgid/setuid; capabilities; chdir to WorkingDir; every fd >= 3 marked
       close-on-exec and cwd checked (runc CVE-2024-21626); signal dispositions reset; execve
       with PATH looked up in the container's env.
    5. Any failure in the child is sent over a CLOEXEC pipe; EOF without a message means execve
       succeeded. spawn_container then raises: CommandNotFound (127) for a missing executable,
       CommandNotInvokable (126) for EACCES/ENOEXEC/EISDIR, InvalidArgument (125) for an unknown
       user/group, DockuiError (125) for anything else. The failed child is already reaped.

exec_in_container(pid, argv, env, cwd, user, tty, stdio, cgroup_procs=..., capabilities=...)
    The caller enters the container's pid namespace for its children, forks; the child writes
    itself into the given cgroup.procs files, setns into cgroup, ipc, uts, net then mnt, chroots to
    /proc/<pid>/root, then does step 4's user/caps/cwd/exec part. By default it joins every cgroup
    of the container's init and takes the init's bounding set and no_new_privs (so an exec never
    has more than the container). Returns the exit status (wait=True, default) or the host pid
    (wait=False; then waitpid it). Same 126/127 mapping.

prepare_ahead() does the container-independent part of the next spawn early (a network namespace
with `lo` up, the host's cgroup layout, the default seccomp filter): a monitor forked ahead calls
it while it waits.

resolve_user(rootfs, "name[:group]" | "uid[:gid]") and command_for(...) live in imageconfig.py
(Docker's rules) and are re-exported here.
"""

from __future__ import annotations

import _socket  # the C module: `socket`'s import (enums, selectors) is ~3 ms of the monitor's warm-up
import errno
import fcntl
import json
import os
import signal
import struct
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import CommandNotFound, CommandNotInvokable, DockuiError, InvalidArgument, NotFound
from engine.image.imageconfig import DEFAULT_PATH, ExecUser, command_for, resolve_user
from engine.kernel import syscalls
from engine.sandbox import rootfs as rootfs_mod
from engine.sandbox import security
from engine.sandbox.rootfs import DEFAULT_SHM_SIZE, BindMount, OverlayLayers
from engine.util import trace

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from engine.sandbox.tunables import DeviceNode, Ulimit

__all__ = [
    "BindMount",
    "OverlayLayers",
    "ProcessSpec",
    "command_for",
    "exec_in_container",
    "resolve_user",
    "spawn_container",
]


@dataclass
class ProcessSpec:
    """Everything the container's first process needs; plain data, filled in by the lifecycle code.

    env: the final process environment ("K=V"), see imageconfig.process_env.
    rootfs: where the root is mounted (the layer's merged/ dir) or, without `overlay`, a plain
        directory used as is (bind-mounted).
    network: "none"/"bridge"/"" -> a new net namespace; "host" -> the host's;
        "container:<pid>" or "netns:<path>" -> join that one.
    capabilities: None -> Docker's default set (security.capabilities_for gives the tweaked list).
    masked_paths/readonly_paths: None -> Docker's defaults (none when privileged).
    cgroup_procs: `cgroup.procs` files the process writes itself into first thing (before it
        unshares anything; its cgroup namespace is then rooted there), so the parent need not.
    cgroupns: "private" -> a cgroup namespace of its own (it sees its group as `/`); "host" -> the
        host's (it sees `/dockui/<id>`; /sys/fs/cgroup still shows only its own groups).
    seccomp: Docker's default filter (security.seccomp_program); False = `seccomp=unconfined`.
        Never applied with privileged, like Docker.
    seccomp_filter: a compiled `--security-opt seccomp=<profile>` (engine.sandbox.seccomp) used
        instead of the default filter; applied with privileged too, as Docker applies a profile.
    """

    argv: list[str]
    rootfs: Path
    env: list[str] = field(default_factory=list)
    overlay: OverlayLayers | None = None
    cwd: str = "/"
    user: str = ""
    additional_groups: list[str] = field(default_factory=list)
    hostname: str = ""
    domainname: str = ""  # set with the hostname, in its own UTS namespace only
    tty: bool = False
    network: str = "none"
    mounts: list[BindMount] = field(default_factory=list)
    hosts_file: Path | None = None
    hostname_file: Path | None = None
    resolv_conf: Path | None = None
    shm_size: int = DEFAULT_SHM_SIZE
    read_only: bool = False
    capabilities: list[str] | None = None
    privileged: bool = False
    no_new_privs: bool = True
    seccomp: bool = True
    seccomp_filter: bytes | None = None
    masked_paths: list[str] | None = None
    readonly_paths: list[str] | None = None
    cgroup_procs: list[Path] = field(default_factory=list)
    cgroupns: str = "private"
    # With `tty`: a unix socket to send the terminal's master over. The process then makes its
    # terminal itself in its own devpts (/dev/pts/0, as runc's console socket does), sized
    # `winsize` (rows, columns); without it, the caller's stdio is the terminal (/dev/console).
    console_socket: int = -1
    winsize: tuple[int, int] | None = None
    tmpfs: list[tuple[str, str]] = field(default_factory=list)  # (destination, options): engine.container.mounts
    # --device, --sysctl, --ulimit (engine.sandbox.tunables' values), applied in the container's
    # own namespaces just before it drops privileges.
    devices: list[DeviceNode] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    ulimits: list[Ulimit] = field(default_factory=list)
    # --ipc and --pid: "" a namespace of its own, "host" the host's, else a /proc/<pid>/ns/... to join.
    ipc: str = ""
    pid_namespace: str = ""
    uts: str = ""  # --uts: "" a UTS namespace of its own (with `hostname`), "host" the host's (no hostname set)

    def all_binds(self) -> list[BindMount]:
        binds = list(self.mounts)
        for source, dest in (
            (self.hosts_file, "/etc/hosts"),
            (self.hostname_file, "/etc/hostname"),
            (self.resolv_conf, "/etc/resolv.conf"),
        ):
            if source is not None:
                binds.append(BindMount(Path(source), dest, self.read_only))
        return binds

    def capability_list(self) -> list[str]:
        if self.capabilities is not None:
            return list(self.capabilities)
        return security.capabilities_for(privileged=self.privileged)


Stdio = tuple[int | None, int | None, int | None]


# ---- parent <-> child messages ------------------------------------------------------------------


class _Channel:
    """Newline-delimited JSON messages over a pipe; EOF means the child exec'd (or died)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def receive(self) -> dict | None:
        while b"\n" not in self.buffer:
            chunk = os.read(self.fd, 4096)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)


def _send(fd: int, message: dict) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


class _ChildFailure(Exception):
    def __init__(self, kind: str, err: int, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.errno = err


def _error_for(message: dict) -> DockuiError:
    kind, err, text = message.get("kind", "setup"), message.get("errno", 0), message.get("message", "")
    if kind == "exec":
        if err in (errno.ENOENT, errno.ENOTDIR):
            return CommandNotFound(text)
        if err in (errno.EACCES, errno.ENOEXEC, errno.EISDIR, errno.EPERM):
            return CommandNotInvokable(text)
    if kind == "invalid":
        return InvalidArgument(text)
    return DockuiError(f"failed to start the container process: {text}")


def _child_report(fd: int, exc: BaseException) -> None:
    if isinstance(exc, _ChildFailure):
        message = {"kind": exc.kind, "errno": exc.errno, "message": str(exc)}
    elif isinstance(exc, InvalidArgument):
        message = {"kind": "invalid", "errno": 0, "message": str(exc)}
    elif isinstance(exc, OSError):
        detail = exc.strerror or str(exc)
        if exc.filename:
            detail = f"{detail}: {exc.filename}"
        message = {"kind": "setup", "errno": exc.errno or 0, "message": detail}
    else:
        message = {"kind": "setup", "errno": 0, "message": f"{type(exc).__name__}: {exc}"}
    try:
        _send(fd, message)
    except OSError:
        pass


# ---- steps shared by the container's init and by exec -------------------------------------------


def check_container_stdio(stdio: Stdio) -> None:
    """Refuse a host descriptor as a container's stdio: only pipes, sockets or a pty of its own devpts.

    A terminal or a file of the host's would let the container's processes (and whatever they
    leave in the background) read the user's next keystrokes or reopen the file through
    /proc/self/fd (docs/isolation.md). None stands for the container's own /dev/null.
    """
    import stat

    host_pts = None
    for fd in stdio:
        if fd is None:
            continue
        st = os.fstat(fd)
        if stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode):
            continue
        if stat.S_ISCHR(st.st_mode) and 136 <= os.major(st.st_rdev) <= 143:  # a pty slave
            if host_pts is None:
                host_pts = os.stat("/dev/pts").st_dev
            if st.st_dev != host_pts:  # from the container's own devpts (TIOCGPTPEER on its ptmx)
                continue
        raise InvalidArgument(f"descriptor {fd} is not a pipe, a socket or the container's own terminal: "
                              "a host file or terminal is never handed to a container")


def _setup_stdio(stdio: Stdio, tty: bool) -> None:
    """Put the caller's descriptors on 0-2 (None -> /dev/null), new session, controlling tty."""
    high = []
    for fd in stdio:
        if fd is None:
            fd = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        high.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
    for target, fd in enumerate(high):
        os.dup2(fd, target, inheritable=True)
        os.close(fd)
    os.setsid()
    if tty:
        syscalls.ioctl_int(0, termios.TIOCSCTTY, 0)


def _find_executable(name: str, env: list[str]) -> str:
    """Go's exec.LookPath with the container's PATH, as runc does it."""
    if "/" in name:
        return name
    path = DEFAULT_PATH
    for item in env:
        if item.startswith("PATH="):
            path = item[5:]
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if not os.path.isdir(candidate) and st.st_mode & 0o111:
            return candidate
    raise _ChildFailure("exec", errno.ENOENT, f'exec: "{name}": executable file not found in $PATH')


def _become_user(user: ExecUser, caps: list[str], no_new_privs: bool, seccomp: bool,
                 seccomp_filter: bytes | None = None) -> None:
    """runc's finalizeNamespace: no_new_privs, seccomp, bounding set, ids with keepcaps, capset.

    The seccomp filter goes in while we still hold CAP_SYS_ADMIN (so it works without
    no_new_privs too); nothing after it needs a syscall the filter refuses.
    """
    mask = security.capability_mask(caps)
    if no_new_privs:
        security.set_no_new_privs()
    if seccomp:
        security.install_seccomp(caps, seccomp_filter)
    security.drop_bounding_set(mask)
    security.keep_caps(True)
    os.setgroups(user.groups)
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)
    security.keep_caps(False)
    security.apply_process_capabilities(mask, user.uid)


def _reset_signals() -> None:
    """Python ignores SIGPIPE/SIGXFSZ and the caller may ignore more: the container starts clean.

    Handlers go back to the default at execve anyway; an ignored signal stays ignored. Python
    knows every signal's disposition (read at its start, or set since through it): only those
    not at the default are reset (a syscall each, instead of one per signal).
    """
    for number in range(1, signal.NSIG):
        if number in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            if signal.getsignal(number) is not signal.SIG_DFL:
                signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _exec(argv: list[str], env: list[str], cwd: str, user: ExecUser) -> None:
    """chdir inside the container, seal descriptors, check cwd, execve. Raises on failure."""
    if not any(item.startswith("HOME=") for item in env):
        env = [*env, f"HOME={user.home}"]
    try:
        os.chdir(cwd)
    except OSError as exc:
        raise _ChildFailure("setup", exc.errno or 0, f"chdir to cwd ({cwd!r}) set in config.json failed: "
                            f"{exc.strerror}") from None
    syscalls.close_range_cloexec(3)
    try:
        current = os.getcwd()
    except OSError:
        current = ""
    if not current.startswith("/"):
        raise _ChildFailure("setup", errno.EPERM, "current working directory is outside of the container")
    path = _find_executable(argv[0], env)
    environment = {}
    for item in env:
        key, sep, value = item.partition("=")
        if sep:  # a bare `KEY` (kept in Config.Env as Docker keeps it) is never a variable
            environment[key] = value
    _reset_signals()
    os.umask(0o022)  # Docker's default, whatever the engine runs with
    trace.mark("container execve")
    try:
        os.execve(path, argv, environment)
    except OSError as exc:
        raise _ChildFailure("exec", exc.errno or 0, f'exec: "{argv[0]}": {exc.strerror}') from None


# ---- the container's first process -------------------------------------------------------------


def _net_namespace_path(network: str) -> str | None:
    """None for a new namespace (or host); else the namespace file to join."""
    if network.startswith("container:"):
        target = network.split(":", 1)[1]
        if not target.isdigit():
            raise InvalidArgument(f"network {network!r}: give the pid of the container to join")
        return f"/proc/{int(target)}/ns/net"
    if network.startswith("netns:"):
        return network.split(":", 1)[1]
    return None


def _validate(spec: ProcessSpec) -> None:
    """Refuse a bad spec before forking, with a message for people."""
    if not spec.argv:
        raise InvalidArgument("No command specified")
    if not spec.cwd.startswith("/"):
        raise InvalidArgument(f"the working directory '{spec.cwd}' is invalid, it needs to be an absolute path")
    if spec.uts not in ("", "host"):
        raise InvalidArgument(f"invalid UTS mode: {spec.uts}")
    if spec.cgroupns not in ("host", "private"):
        raise InvalidArgument(f"invalid cgroup namespace mode: {spec.cgroupns!r} (host or private)")
    join = _net_namespace_path(spec.network)
    if join is not None and not os.path.exists(join):
        raise InvalidArgument(f"network {spec.network!r}: {join} does not exist (is the container running?)")


def _loopback_up() -> None:
    """Bring `lo` up in a fresh net namespace (Docker's `--network none` has a working loopback)."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock.fileno(), siocgifflags, request))[1]
        fcntl.ioctl(sock.fileno(), siocsifflags, struct.pack("16sH22x", b"lo", flags | iff_up))
    finally:
        sock.close()


def _container_init(spec: ProcessSpec, stdio: Stdio, msg_w: int, go_r: int, prepared: _Prepared) -> None:
    """Runs in the forked child (PID 1 of the new pid namespace). Never returns.

    go_r < 0: no handshake (the parent has nothing to do once the namespaces exist).
    """
    try:
        trace.mark("container forked")  # (first: a trace file is opened in the host's namespace)
        msg_w = _move_high(msg_w)  # stdio set-up below must never land on the channel
        if go_r >= 0:
            go_r = _move_high(go_r)
        security.set_dumpable(False)
        for procs in spec.cgroup_procs:
            _write_file(procs, b"0")
        trace.mark("container joined its cgroups")
        flags = syscalls.CLONE_NEWNS | (0 if spec.uts == "host" else syscalls.CLONE_NEWUTS) | \
            (0 if spec.ipc else syscalls.CLONE_NEWIPC)
        if spec.ipc not in ("", "host"):
            _join_namespace(spec.ipc, syscalls.CLONE_NEWIPC)
        join_net = _net_namespace_path(spec.network)
        if spec.network != "host" and join_net is None:
            flags |= syscalls.CLONE_NEWNET
        # The cgroup namespace is rooted at the group the process is in when it unshares it: the
        # container's, once joined (by itself above, or by the parent during the handshake).
        cgroup_joined = bool(spec.cgroup_procs) or go_r < 0
        new_cgroupns = syscalls.CLONE_NEWCGROUP if spec.cgroupns != "host" else 0
        if flags & syscalls.CLONE_NEWNET and prepared.netns >= 0:
            syscalls.setns(prepared.netns, syscalls.CLONE_NEWNET)  # made ahead, `lo` already up
            flags &= ~syscalls.CLONE_NEWNET
            fresh_net = False
        else:
            fresh_net = bool(flags & syscalls.CLONE_NEWNET)
        if prepared.netns >= 0:
            os.close(prepared.netns)
        syscalls.unshare(flags | (new_cgroupns if cgroup_joined else 0))
        trace.mark("container unshared")
        if fresh_net:
            _loopback_up()
        if join_net is not None:
            net_fd = os.open(join_net, os.O_RDONLY | os.O_CLOEXEC)
            syscalls.setns(net_fd, syscalls.CLONE_NEWNET)
            os.close(net_fd)
        if go_r >= 0:
            _send(msg_w, {"ready": True})
            if os.read(go_r, 1) != b"G":
                os._exit(1)  # the parent gave up (or died): never run the user's process
            os.close(go_r)
        if not cgroup_joined and new_cgroupns:
            syscalls.unshare(new_cgroupns)
        own_console = spec.tty and spec.console_socket >= 0
        if not own_console:
            _setup_stdio(stdio, spec.tty)

        binds = spec.all_binds()
        if any(bind.propagation != "rprivate" for bind in binds):
            rootfs_mod.check_bind_propagation(binds)  # read in our copy of the host's mount table
        shared = any(bind.shared for bind in binds)
        source_fds = rootfs_mod.open_bind_sources(binds, shared=True) if shared else None
        rootfs_mod.make_mounts_slave()
        source_fds = rootfs_mod.open_bind_sources(binds, taken=source_fds)
        # By path: the descriptor itself belongs to a mount of the parent's namespace.
        console = rootfs_mod.clone_mount(os.ttyname(0)) if spec.tty and not own_console else None
        cgroups = rootfs_mod.cgroup_view(prepared.cgroup_layout or rootfs_mod.host_cgroup_layout(),
                                         spec.cgroup_procs, host_namespace=not new_cgroupns)
        trace.mark("container bind sources")
        rootfs_mod.mount_root(spec.rootfs, spec.overlay)
        trace.mark("container root mounted")
        rootfs_mod.pivot_into(spec.rootfs)
        trace.mark("container pivoted")
        rootfs_mod.mount_standard(spec.shm_size, spec.privileged, console, cgroups)
        cgroups.close()
        trace.mark("container standard mounts")
        rootfs_mod.mount_in_order(binds, source_fds, spec.tmpfs)
        trace.mark("container binds")
        if shared:
            rootfs_mod.make_root_shared()
        for fd in [*source_fds, *([console] if console is not None else [])]:
            os.close(fd)
        if own_console:
            _setup_stdio((slave := _open_console(spec.console_socket, spec.winsize),) * 3, True)
            os.close(slave)
        masked = spec.masked_paths
        if masked is None:
            masked = [] if spec.privileged else list(security.DEFAULT_MASKED_PATHS)
        readonly = spec.readonly_paths
        if readonly is None:
            readonly = [] if spec.privileged else list(security.DEFAULT_READONLY_PATHS)
        if spec.devices:
            from engine.sandbox import tunables

            tunables.make_device_nodes(spec.devices)
        _write_sysctls(spec.sysctls)
        rootfs_mod.mask_paths(masked)
        rootfs_mod.readonly_paths(readonly)
        trace.mark("container masked")
        if spec.uts != "host":
            rootfs_mod.set_hostname(spec.hostname, spec.domainname)
        user = resolve_user("/", spec.user, spec.additional_groups)
        rootfs_mod.ensure_workdir(spec.cwd)
        if spec.read_only:
            rootfs_mod.make_root_readonly()
        if spec.ulimits:
            from engine.sandbox import tunables

            tunables.set_ulimits(spec.ulimits)
        trace.mark("container user resolved")
        _become_user(user, spec.capability_list(), spec.no_new_privs,
                     spec.seccomp and (not spec.privileged or spec.seccomp_filter is not None), spec.seccomp_filter)
        trace.mark("container privileges dropped")
        _exec(spec.argv, spec.env, spec.cwd, user)
    except BaseException as exc:  # noqa: BLE001 - everything goes to the parent, then we die
        _child_report(msg_w, exc)
    os._exit(127)


def _write_sysctls(sysctls: dict[str, str]) -> None:
    """In the container's process, through its own /proc/sys (its net/ipc namespaces), before
    /proc/sys goes read-only. Here rather than in engine.sandbox.tunables: Docker's network
    sysctls (engine.container.hostflags.network_sysctls) are written for nearly every container, and
    the child can import nothing once it has pivoted."""
    for key, value in sysctls.items():
        fd = os.open("/proc/sys/" + key.replace(".", "/"), os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)


def _join_namespace(path: str, kind: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.setns(fd, kind)
    finally:
        os.close(fd)


def _fork_for(spec: ProcessSpec) -> int:
    """fork() into the spec's pid namespace: a new one, the host's (ours), or one to join."""
    if spec.pid_namespace == "host":
        return os.fork()
    if spec.pid_namespace:
        fd = os.open(spec.pid_namespace, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return _fork_in_pid_namespace(fd)
        finally:
            os.close(fd)
    return _fork_in_pid_namespace(None)


def _open_console(console_socket: int, winsize: tuple[int, int] | None) -> int:
    """The container's terminal, from its own devpts (its /dev/pts is mounted): the slave, also bound
    on /dev/console; the master goes to the monitor over `console_socket` (SCM_RIGHTS)."""
    master = os.open("/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, getattr(termios, "TIOCSPTLCK", 0x40045431), struct.pack("i", 0))  # unlockpt
        if winsize:
            rows, cols = winsize
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        number = struct.unpack("i", fcntl.ioctl(master, getattr(termios, "TIOCGPTN", 0x80045430), bytes(4)))[0]
        slave = os.open(f"/dev/pts/{number}", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        rootfs_mod.bind_console(f"/dev/pts/{number}")
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, console_socket)
        try:
            sock.sendmsg([b"\0"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", master))])
        finally:
            sock.close()
    finally:
        os.close(master)
    return slave


def receive_console(sock: object) -> int:
    """The monitor's side of _open_console: the terminal's master, sent by the container's process."""
    _, ancillary, _, _ = sock.recvmsg(1, _socket.CMSG_SPACE(4))  # type: ignore[attr-defined]
    for level, kind, data in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS and len(data) >= 4:
            return struct.unpack("i", data[:4])[0]
    raise DockuiError("the container's process sent no terminal")


def _write_file(path: str | os.PathLike[str], data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _move_high(fd: int) -> int:
    """Move a descriptor to >= 10 so dup2 onto 0-2 cannot clobber it (caller may lack 0-2)."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


def _reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _fork_in_pid_namespace(new_ns_fd: int | None) -> int:
    """fork() with the child in a new (None) or the given pid namespace; ours is restored after."""
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if new_ns_fd is None:
            syscalls.unshare(syscalls.CLONE_NEWPID)
        else:
            syscalls.setns(new_ns_fd, syscalls.CLONE_NEWPID)
        try:
            pid = os.fork()
        except BaseException:
            syscalls.setns(own, syscalls.CLONE_NEWPID)
            raise
        if pid != 0:
            syscalls.setns(own, syscalls.CLONE_NEWPID)
        return pid
    finally:
        os.close(own)


class _Prepared:
    """What spawn_container needs that does not depend on the container (see prepare_ahead)."""

    def __init__(self, made: float = 0.0, cgroup_layout: tuple | None = None) -> None:
        self.made = made  # time.monotonic() when it was made
        self.cgroup_layout = cgroup_layout  # rootfs.host_cgroup_layout()
        self.netns = -1  # a fresh network namespace with `lo` up (fd), for a process that wants one


_ahead = _Prepared()
AHEAD_VALID_FOR = 5.0  # seconds: then the host's cgroup mounts are read again


def prepare_ahead() -> None:
    """Do the part of the next spawn that needs no container now (a monitor forked ahead calls
    this while it waits for its start context): a network namespace with `lo` up (~0.6 ms in the
    child otherwise), the host's cgroup layout, Docker's default seccomp filter and the
    capability count, so the container's first process does not."""
    for step in prepare_ahead_steps():
        step()


def prepare_ahead_steps() -> list[Callable[[], None]]:
    """prepare_ahead in steps of ~0.2-1 ms, for a caller that stops between them once its
    container's spec arrives (spawn_container does what was not done)."""

    def layout() -> None:
        global _ahead
        if _ahead.netns >= 0:
            os.close(_ahead.netns)
        _ahead = _Prepared(time.monotonic(), rootfs_mod.host_cgroup_layout())

    def netns() -> None:
        _ahead.netns = _new_net_namespace()

    def seccomp() -> None:
        security.seccomp_fprog(security.DEFAULT_CAPABILITIES)
        security.last_cap()

    return [layout, netns, seccomp]


def _take_prepared() -> _Prepared:
    """What prepare_ahead made, once (the layout only while fresh); else nothing (the child does it)."""
    global _ahead
    prepared, _ahead = _ahead, _Prepared()
    if time.monotonic() - prepared.made > AHEAD_VALID_FOR:
        prepared.cgroup_layout = None
    return prepared


def _new_net_namespace() -> int:
    """An fd of a new network namespace with `lo` up; this process stays in its own."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.unshare(syscalls.CLONE_NEWNET)
        try:
            fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _loopback_up()
            except BaseException:
                os.close(fd)
                raise
        finally:
            try:
                syscalls.setns(own, syscalls.CLONE_NEWNET)
            except OSError as exc:  # never go on in the wrong namespace (nothing suppresses this)
                raise RuntimeError(f"cannot return to our network namespace: {exc}") from exc
    finally:
        os.close(own)
    return fd


def spawn_container(
    spec: ProcessSpec,
    stdio: Stdio,
    on_namespaces_ready: Callable[[int], None] | None = None,
    during_setup: Callable[[int], None] | None = None,
) -> int:
    """Start the container's first process; returns its host pid once execve succeeded.

    Without `on_namespaces_ready` the child goes straight on to exec (no round trip with us).
    `during_setup(pid)` runs here while the child builds its root and drops its privileges (after
    on_namespaces_ready): work of the caller's that would otherwise follow the exec. If either
    raises, the child is killed and reaped (it never runs the user's process) and it propagates.
    """
    _validate(spec)
    prepared = _take_prepared()
    msg_r, msg_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC) if on_namespaces_ready is not None else (-1, -1)
    try:
        pid = _fork_for(spec)
    except BaseException as exc:
        for fd in (msg_r, msg_w, go_r, go_w, prepared.netns):
            if fd >= 0:
                os.close(fd)
        if isinstance(exc, OSError):
            raise DockuiError(f"cannot create the container's pid namespace: {exc.strerror}") from exc
        raise
    if pid == 0:
        os.close(msg_r)
        if go_w >= 0:
            os.close(go_w)
        _container_init(spec, stdio, msg_w, go_r, prepared)
        os._exit(127)  # not reached
    if prepared.netns >= 0:
        os.close(prepared.netns)  # the child's now (or unused: "host", "container:...")
    os.close(msg_w)
    if go_r >= 0:
        os.close(go_r)
    channel = _Channel(msg_r)
    try:
        if on_namespaces_ready is not None:
            message = channel.receive()
            if message is None or "ready" not in message:
                raise _error_for(message or {"message": "the container process died during set-up"})
            on_namespaces_ready(pid)
            os.write(go_w, b"G")
            os.close(go_w)
            go_w = -1
        if during_setup is not None:
            during_setup(pid)
        message = channel.receive()
        if message is not None:
            raise _error_for(message)
    except BaseException:
        _reap(pid)
        raise
    finally:
        os.close(msg_r)
        if go_w >= 0:
            os.close(go_w)
    return pid


# ---- exec -----------------------------------------------------------------------------------


def wait_status(status: int) -> int:
    """A waitpid status as a shell exit code: the code, or 128+signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


_LIMIT_ROWS = {  # /proc/<pid>/limits' row names and their resources (fs/proc/base.c's lnames)
    "Max cpu time": "CPU", "Max file size": "FSIZE", "Max data size": "DATA", "Max stack size": "STACK",
    "Max core file size": "CORE", "Max resident set": "RSS", "Max processes": "NPROC", "Max open files": "NOFILE",
    "Max locked memory": "MEMLOCK", "Max address space": "AS", "Max file locks": "LOCKS",
    "Max pending signals": "SIGPENDING", "Max msgqueue size": "MSGQUEUE", "Max nice priority": "NICE",
    "Max realtime priority": "RTPRIO", "Max realtime timeout": "RTTIME",
}


def _rlimits_of(pid: int) -> list[tuple[int, tuple[int, int]]]:
    """The resource limits of the container's init (its --ulimit values): an exec gets them, as
    Docker's exec takes the container's spec, never the limits of the process that started it.
    Read from /proc/<pid>/limits (readable by all): prlimit() on a process of another user needs
    CAP_SYS_RESOURCE, which root in a container (a CI runner) may lack."""
    import resource

    def value(text: str) -> int:
        return resource.RLIM_INFINITY if text == "unlimited" else int(text)

    found = []
    with open(f"/proc/{pid}/limits") as f:
        for line in f.readlines()[1:]:
            name, soft, hard = line[:26].strip(), line[26:47].strip(), line[47:68].strip()
            which = getattr(resource, f"RLIMIT_{_LIMIT_ROWS.get(name, '?')}", None)
            if which is not None:
                found.append((which, (value(soft), value(hard))))
    return found


def _set_rlimits(rlimits: list[tuple[int, tuple[int, int]]]) -> None:
    """The init's limits; one above this process's hard limit (raising needs CAP_SYS_RESOURCE) is
    held at that hard limit, never refused: the exec still runs, within what the host allows."""
    import resource

    for which, (soft, hard) in rlimits:
        try:
            resource.setrlimit(which, (soft, hard))
        except (PermissionError, ValueError):
            ceiling = resource.getrlimit(which)[1]
            resource.setrlimit(which, (_at_most(soft, ceiling), _at_most(hard, ceiling)))


def _at_most(value: int, ceiling: int) -> int:
    import resource

    if ceiling == resource.RLIM_INFINITY or (value != resource.RLIM_INFINITY and value <= ceiling):
        return value
    return ceiling


def _proc_status(pid: int) -> dict[str, str]:
    result = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            result[key] = value.strip()
    return result


def cgroup_procs_of(pid: int) -> list[Path]:
    """The `cgroup.procs` files of every hierarchy `pid` is in (v1 controllers and/or v2).

    Mount points come from our mountinfo, so the hybrid layout (v1 + a v2 tree) works too.
    """
    mounts: list[tuple[set[str], str, str, bool]] = []  # (controllers, root, mountpoint, is_v2)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype, options = fields[sep + 1], fields[sep + 3]
            if fstype == "cgroup":
                names = {o for o in options.split(",") if o not in ("rw", "ro")}
                mounts.append((names, fields[3], fields[4], False))
            elif fstype == "cgroup2":
                mounts.append((set(), fields[3], fields[4], True))
    result = []
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            hierarchy, controllers, path = line.rstrip("\n").split(":", 2)
            wanted = set(controllers.split(",")) if controllers else set()
            for names, root, mountpoint, is_v2 in mounts:
                if (is_v2 and hierarchy == "0" and not controllers) or (not is_v2 and wanted and wanted <= names):
                    if path == root or path.startswith(root.rstrip("/") + "/") or root == "/":
                        rel = os.path.relpath(path, root)
                        rel = "" if rel == "." else rel
                        procs = Path(mountpoint, rel, "cgroup.procs")
                        if procs.exists():
                            result.append(procs)
                    break
    return result


_EXEC_NAMESPACES = (
    ("cgroup", syscalls.CLONE_NEWCGROUP),
    ("ipc", syscalls.CLONE_NEWIPC),
    ("uts", syscalls.CLONE_NEWUTS),
    ("net", syscalls.CLONE_NEWNET),
    ("mnt", syscalls.CLONE_NEWNS),  # last: after it /proc/<pid> paths of the host are gone
)


def exec_in_container(
    pid: int,
    argv: list[str],
    env: list[str],
    cwd: str = "/",
    user: str = "",
    tty: bool = False,
    stdio: Stdio = (None, None, None),
    *,
    cgroup_procs: list[Path] | tuple[Path, ...] | None = None,
    capabilities: list[str] | None = None,
    no_new_privs: bool | None = None,
    seccomp: bool | None = None,
    seccomp_filter: bytes | None = None,
    additional_groups: list[str] | None = None,
    wait: bool = True,
) -> int:
    """Run argv inside the running container whose init is host pid `pid`.

    wait=True: waits and returns the exit status (128+N when killed by signal N); wait=False:
    returns the host pid (the caller waitpid()s it, e.g. to forward signals or resize a tty).
    By default the exec joins every cgroup the container's init is in, gets the init's bounding
    set as its capabilities, its no_new_privs flag and (if the init has one) the seccomp filter
    for those caps, so it never has more than the container.
    cgroup_procs: explicit `cgroup.procs` files to join instead.
    seccomp_filter: the container's compiled seccomp profile, when it has one (the caller reads it
        from the record: the init's filter cannot be read back), installed instead of the default.
    """
    if not argv:
        raise InvalidArgument("No command specified")
    check_container_stdio(stdio)
    try:
        status = _proc_status(pid)
        if cgroup_procs is None:
            cgroup_procs = cgroup_procs_of(pid)
        rlimits = _rlimits_of(pid)
    except FileNotFoundError:
        raise NotFound(f"container process {pid} is not running") from None
    if capabilities is not None:
        caps = list(capabilities)
    else:
        caps = security.names_from_mask(int(status.get("CapBnd", "0"), 16))
    if no_new_privs is None:
        no_new_privs = status.get("NoNewPrivs", "1") != "0"
    if seccomp is None:
        seccomp = status.get("Seccomp", "2") != "0"
    opened: list[tuple[int, int]] = []
    root_fd = pid_fd = -1
    try:
        try:
            pid_fd = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            for name, nstype in _EXEC_NAMESPACES:
                opened.append((os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), nstype))
            root_fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(f"container process {pid} is not running") from None
        msg_r, msg_w = os.pipe2(os.O_CLOEXEC)
        try:
            child = _fork_in_pid_namespace(pid_fd)
        except BaseException:
            os.close(msg_r)
            os.close(msg_w)
            raise
        if child == 0:
            try:
                os.close(msg_r)
                msg_w = _move_high(msg_w)
                security.set_dumpable(False)
                for procs in cgroup_procs:
                    with open(procs, "w") as f:
                        f.write("0")
                for fd, nstype in opened:
                    syscalls.setns(fd, nstype)
                os.fchdir(root_fd)
                os.chroot(".")
                os.chdir("/")
                _setup_stdio(stdio, tty)
                _set_rlimits(rlimits)
                exec_user = resolve_user("/", user, additional_groups)
                _become_user(exec_user, caps, no_new_privs, seccomp, seccomp_filter)
                _exec(argv, env, cwd or "/", exec_user)
            except BaseException as exc:  # noqa: BLE001
                _child_report(msg_w, exc)
            os._exit(127)
        os.close(msg_w)
        try:
            message = _Channel(msg_r).receive()
            if message is not None:
                raise _error_for(message)
        except BaseException:
            _reap(child)
            raise
        finally:
            os.close(msg_r)
        if not wait:
            return child
        return wait_status(os.waitpid(child, 0)[1])
    finally:
        for fd, _ in opened:
            os.close(fd)
        for fd in (root_fd, pid_fd):
            if fd >= 0:
                os.close(fd)
