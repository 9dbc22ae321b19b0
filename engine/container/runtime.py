"""Container lifecycle without a daemon: create, start, stop, kill, pause, rm, wait, exec, reconcile.

Start path (one `dockui run`):

    CLI (container_cmds)                       parses Docker's flags into `RunOptions`
    -> runtime.create                          resolves the image (store), applies Docker's config rules
                                               (engine.image.imageconfig), writes the record (engine.container.state:
                                               <root>/containers/<id>/config.v2.json + hostconfig.json),
                                               store.create_rw_layer -> <root>/overlay2/<id>/{diff,work,merged},
                                               named/anonymous volumes
    -> runtime.start                           the monitor, in its own session: a double fork of a
                                               single-threaded caller (the CLI: engine already loaded),
                                               else Popen(python -S -m engine.container.monitor start ...) (TUI);
                                               a status pipe (and, when attached, one end of a
                                               socketpair); reads one JSON line: started, or the error
                                               with its exit status (125/126/127)
    -> monitor stage "start" (engine.container.monitor)  cgroup (cgroups.open_cgroup(...).create(resources)),
                                               network.prepare for bridge-like modes (else hosts and
                                               resolv.conf written here), stdio pipes or a pty,
                                               process.spawn_container(spec, stdio, on_namespaces_ready=
                                               network.attach for a bridge; the process joins its
                                               cgroups itself), record "running" while it builds its root
    -> monitor stage "watch"                   (execv, tiny) json-file log + attach relay, waits
    -> monitor stage "finish"                  exit code/OOMKilled, network.detach, cgroup destroy,
                                               restart policy or --rm (runtime.remove)

The overlay root is mounted inside the container's own mount namespace (engine.sandbox.rootfs), so it
disappears with the container's last process: there is no host mount to leak. Every verb that
touches containers first calls `reconcile` (cheap: one /proc stat per active container), which
marks containers whose monitor died as exited and removes their cgroups and network plumbing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.config import EngineConfig
from engine.container import monitor, state
from engine.container.names import generate_name
from engine.container.state import ACTIVE_STATUSES, ContainerRecord, find_container, now_rfc3339
from engine.errors import Conflict, DockuiError, InvalidArgument, NotFound

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms per start)
if TYPE_CHECKING:
    from typing import Any

ENGINE_PARENT = Path(__file__).resolve().parents[2]  # holds engine/
RESTART_POLICIES = ("no", "on-failure", "always", "unless-stopped")
DEFAULT_STOP_TIMEOUT = 10
START_REPORT_TIMEOUT = 60


@dataclass
class RunOptions:
    """`docker create`/`run` flags, already parsed into values (sizes in bytes)."""

    image: str
    command: list[str] = field(default_factory=list)
    name: str | None = None
    hostname: str | None = None
    env: list[str] = field(default_factory=list)
    env_files: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    entrypoint: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    mount_flags: list[str] = field(default_factory=list)  # --mount
    tmpfs: list[str] = field(default_factory=list)  # --tmpfs DEST[:OPTIONS]
    log_driver: str = "json-file"
    log_opts: list[str] = field(default_factory=list)  # --log-opt KEY=VALUE (max-size, max-file)
    memory: int | None = None
    memory_swap: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    cpuset_cpus: str | None = None
    pids_limit: int | None = None
    blkio_weight: int | None = None
    shm_size: int | None = None
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    read_only: bool = False
    restart: str = "no"
    network: str = "bridge"
    ip: str | None = None
    publish: list[str] = field(default_factory=list)
    publish_all: bool = False
    links: list[str] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    add_hosts: list[str] = field(default_factory=list)
    stop_signal: str | None = None
    stop_timeout: int | None = None
    platform: str | None = None
    image_id: str = ""  # the image `image` was resolved to (ensure_image), if it was already
    tty: bool = False
    interactive: bool = False
    auto_remove: bool = False


def parse_restart_policy(value: str) -> dict[str, Any]:
    name, _, count = (value or "no").partition(":")
    if name not in RESTART_POLICIES:
        raise InvalidArgument(f"invalid restart policy '{value}'")
    if count and name != "on-failure":
        raise InvalidArgument(f"invalid restart policy '{value}': maximum retry count can only be used with 'on-failure'")
    try:
        retries = int(count) if count else 0
    except ValueError:
        raise InvalidArgument(f"invalid restart policy '{value}': maximum retry count must be an integer") from None
    if retries < 0:
        raise InvalidArgument("maximum retry count cannot be negative")
    return {"Name": "" if name == "no" else name, "MaximumRetryCount": retries}


def resources_of(host_config: dict[str, Any]) -> Any:
    from engine.sandbox.cgroups import Resources

    nano = host_config.get("NanoCpus") or 0
    return Resources(
        memory=host_config.get("Memory") or None,
        memory_swap=host_config.get("MemorySwap") or None,
        cpus=nano / 1e9 if nano else None,
        cpu_shares=host_config.get("CpuShares") or None,
        cpuset_cpus=host_config.get("CpusetCpus") or None,
        pids_limit=host_config.get("PidsLimit") or None,
        blkio_weight=host_config.get("BlkioWeight") or None,
    )


def network_kind(mode: str) -> str:
    """"none", "host", "container" or "bridge" (the default bridge or a named network)."""
    if mode in ("none", "host"):
        return mode
    if mode.startswith("container:"):
        return "container"
    return "bridge"


# ------------------------------------------------------------------------------------------ create


def create(config: EngineConfig, opts: RunOptions) -> ContainerRecord:
    """Write a new container (record, writable layer, volumes); nothing runs yet."""
    from engine.container.mounts import prepare_mounts
    from engine.image import imageconfig
    from engine.image.store import ImageStore
    from engine.network import hostsfiles

    host_config = _host_config(opts)
    resources_of(host_config).validate()
    if opts.log_driver != "json-file":
        raise InvalidArgument(f"log driver {opts.log_driver!r} is not supported: dockui writes json-file logs")
    if opts.log_opts:
        from engine.container.logs import log_limits

        if any("=" not in o for o in opts.log_opts):
            raise InvalidArgument(f"invalid log opt: expected KEY=VALUE, got {opts.log_opts!r}")
        log_limits(host_config["LogConfig"]["Config"])
    if opts.auto_remove and host_config["RestartPolicy"]["Name"]:
        raise InvalidArgument("Conflicting options: --restart and --rm")
    if opts.name is not None:
        opts.name = state.validate_name(opts.name)
    kind = network_kind(opts.network)
    if kind == "container":
        find_container(config, opts.network.split(":", 1)[1])
    if kind in ("host", "none", "container") and (opts.publish or opts.publish_all):
        if kind != "none":
            raise InvalidArgument("Conflicting options: port publishing and the container type network mode")
    if kind in ("host", "container") and opts.hostname:
        raise InvalidArgument("Conflicting options: hostname and the network mode")
    if kind == "none" and any(hostsfiles.parse_add_host(h)[0] == "host-gateway" for h in opts.add_hosts):
        # Docker writes the host's gateway address; without a network there is no gateway to reach.
        raise InvalidArgument("--add-host NAME:host-gateway needs a network: with --network none there is no gateway")

    store = ImageStore(config)
    image = store.resolve(opts.image_id or opts.image)
    image_conf = (image.config.get("config") or {}) if isinstance(image.config, dict) else {}
    argv = imageconfig.command_for(image.config, opts.entrypoint, opts.command or None)
    if opts.entrypoint is not None:
        entrypoint = [opts.entrypoint] if opts.entrypoint else None
        cmd = list(opts.command) or (None if opts.entrypoint else image_conf.get("Cmd"))
    else:
        entrypoint = image_conf.get("Entrypoint")
        cmd = list(opts.command) or image_conf.get("Cmd")
    env = imageconfig.merge_env(image_conf.get("Env"), opts.env, opts.env_files)
    workdir = imageconfig.working_dir(image.config, opts.workdir)
    user = imageconfig.user_for(image.config, opts.user)
    stop_sig = opts.stop_signal or image_conf.get("StopSignal") or None
    if stop_sig:
        imageconfig.parse_signal(stop_sig)
    exposed = dict(image_conf.get("ExposedPorts") or {})
    for spec in opts.publish:
        port = spec.rsplit(":", 1)[-1]
        exposed.setdefault(port if "/" in port else port + "/tcp", {})
    labels = {**(image_conf.get("Labels") or {}), **opts.labels}

    container_id = os.urandom(32).hex()
    hostname = opts.hostname or container_id[:12]
    if kind == "host":
        hostname = os.uname().nodename
    config_dict: dict[str, Any] = {
        "Hostname": hostname,
        "Domainname": "",
        "User": user,
        "AttachStdin": opts.interactive,
        "AttachStdout": True,
        "AttachStderr": True,
        "ExposedPorts": exposed or None,
        "Tty": opts.tty,
        "OpenStdin": opts.interactive,
        "StdinOnce": opts.interactive,
        "Env": env,
        "Cmd": cmd,
        "Image": opts.image,
        "Volumes": image_conf.get("Volumes"),
        "WorkingDir": workdir if workdir != "/" or opts.workdir else image_conf.get("WorkingDir", ""),
        "Entrypoint": entrypoint,
        "OnBuild": None,
        "Labels": labels,
    }
    if stop_sig:
        config_dict["StopSignal"] = stop_sig
    if opts.stop_timeout is not None:
        config_dict["StopTimeout"] = opts.stop_timeout
    record = ContainerRecord(
        id=container_id,
        name=opts.name or "",
        image=opts.image,
        image_id=image.id,
        created=now_rfc3339(),
        config=config_dict,
        host_config=host_config,
        network={"NetworkMode": opts.network, "IPAddress": "", "Gateway": "", "MacAddress": "", "Ports": {}},
        path=argv[0],
        args=argv[1:],
        platform=opts.platform or "linux",
    )
    state.create_record(config, record, generate_name)
    keep = not host_config.get("AutoRemove")  # an --rm container is not worth fsyncs: nothing of it outlives it
    try:
        rw = store.create_rw_layer(container_id, image.id, durable=keep)
        record.rw_layer = str(rw)
        record.mounts = prepare_mounts(config, opts.volumes, image_conf.get("Volumes") or {}, opts.mount_flags, opts.tmpfs)
        _write_etc_files(config, record)
        state.save(config, record, durable=True, fsync=keep)
    except BaseException:
        _remove_files(config, record, remove_volumes=True)
        raise
    return record


def _host_config(opts: RunOptions) -> dict[str, Any]:
    return {
        "Binds": [v for v in opts.volumes if ":" in v] or None,
        "Tmpfs": {spec.partition(":")[0]: spec.partition(":")[2] for spec in opts.tmpfs} or None,
        "LogConfig": {"Type": opts.log_driver, "Config": dict(o.partition("=")[::2] for o in opts.log_opts)},
        "NetworkMode": opts.network,
        "PortBindings": {},
        "PublishSpecs": list(opts.publish),
        "RestartPolicy": parse_restart_policy(opts.restart),
        "AutoRemove": opts.auto_remove,
        "CapAdd": opts.cap_add or None,
        "CapDrop": opts.cap_drop or None,
        "Dns": opts.dns,
        "DnsOptions": opts.dns_options,
        "DnsSearch": opts.dns_search,
        "ExtraHosts": opts.add_hosts or None,
        "Links": opts.links or None,
        "Privileged": opts.privileged,
        "PublishAllPorts": opts.publish_all,
        "ReadonlyRootfs": opts.read_only,
        "ShmSize": opts.shm_size or 64 * 1024 * 1024,
        "Memory": opts.memory or 0,
        "MemorySwap": opts.memory_swap or 0,
        "NanoCpus": int(round((opts.cpus or 0) * 1e9)),
        "CpuShares": opts.cpu_shares or 0,
        "CpusetCpus": opts.cpuset_cpus or "",
        "PidsLimit": opts.pids_limit,
        "BlkioWeight": opts.blkio_weight or 0,
        "IPAddress": opts.ip,
    }


def _write_etc_files(config: EngineConfig, record: ContainerRecord) -> None:
    """hostname, hosts and resolv.conf in the container's dir (bind-mounted in by engine.sandbox.rootfs)."""
    from engine.network import hostsfiles

    d = record.dir(config)
    hc = record.host_config
    kind = network_kind(hc.get("NetworkMode", "bridge"))
    (d / "hostname").write_text(record.config["Hostname"] + "\n")
    if kind == "host":
        hosts = Path("/etc/hosts").read_text() if Path("/etc/hosts").exists() else hostsfiles.hosts_content(None, [])
        # --add-host entries after the host's own, as Docker writes them; in the host's namespace
        # the host is reachable on loopback, so that is what host-gateway means here.
        extra = [hostsfiles.parse_add_host(h) for h in hc.get("ExtraHosts") or []]
        if extra:
            hosts = hosts.rstrip("\n") + "\n" + "".join(
                f"{'127.0.0.1' if ip == 'host-gateway' else ip}\t{name}\n" for ip, name in extra)
        resolv = hostsfiles.host_resolv_conf_text()
    else:
        extra = [hostsfiles.parse_add_host(h) for h in hc.get("ExtraHosts") or []]
        hosts = hostsfiles.hosts_content(None, [], extra)
        resolv = hostsfiles.resolv_conf_content(
            hostsfiles.host_resolv_conf_text(), hc.get("Dns") or (), hc.get("DnsSearch") or (), hc.get("DnsOptions") or ()
        )
    (d / "hosts").write_text(hosts)
    (d / "resolv.conf").write_text(resolv)


# ------------------------------------------------------------------------------------------ rootfs
# The rootfs is mounted inside the container's mount namespace (engine.sandbox.rootfs), so it needs no
# unmounting; these helpers remove host-side leftovers under the layers dir (reconcile, rm).


def _is_mountpoint(path: Path) -> bool:
    return str(path) in _mountpoints()


def _mountpoints() -> set[str]:
    points = set()
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split()
            points.add(fields[4].decode().replace("\\040", " "))
    return points


def unmount_rootfs(record: ContainerRecord) -> None:
    """Lazily unmount the overlay and everything bound below it (idempotent)."""
    from engine.kernel import syscalls

    if not record.rw_layer:
        return
    merged = Path(record.rw_layer) / "merged"
    for _ in range(64):
        if not _is_mountpoint(merged):
            return
        try:
            syscalls.umount2(merged, syscalls.MNT_DETACH)
        except OSError:
            return


# ------------------------------------------------------------------------------------------ start


@dataclass
class StartResult:
    """What `start` hands back: the record as the monitor left it, and the attach channel."""

    record: ContainerRecord
    attach: Any = None  # our end of the attach socketpair (attach_socketpair), when asked for


def config_to_json(config: EngineConfig) -> str:
    data = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
    return json.dumps(data, separators=(",", ":"))


def config_from_json(text: str) -> EngineConfig:
    data = json.loads(text)
    for key in ("root", "certs_dir", "auth_config"):
        if data.get(key) is not None:
            data[key] = Path(data[key])
    return EngineConfig(**data)


def start(
    config: EngineConfig,
    ref: str,
    attach: bool = False,
    interactive: bool = False,
    winsize: tuple[int, int] | None = None,
    prepared: PreparedMonitor | None = None,
) -> StartResult:
    """Launch the container's monitor and wait until the user's process runs (or failed to).

    `winsize` (rows, columns) sizes the container's tty before its process starts. `prepared` is a
    monitor forked ahead by `prepare_monitor` (used when its attach mode matches; the caller still
    discards it afterwards, which is a no-op once used).
    """
    record = find_container(config, ref)
    if record.status in ("running", "paused", "restarting"):
        if record.status == "paused":
            raise Conflict(f"cannot start a paused container {record.name}, try unpause instead")
        return StartResult(record)
    if record.status in ("removing", "dead"):
        raise Conflict(f"container {record.name} is marked for removal and cannot be started")
    if record.monitor_pid and state.process_alive(record.monitor_pid, record.monitor_start):
        raise Conflict(f"container {record.name} is being started or stopped by another process")

    if prepared is not None and (prepared.used or prepared.attach != attach):
        prepared = None
    primed_by_monitor = prepared is not None  # a monitor forked ahead keeps the fast path open
    if prepared is None and _may_fork():
        prepared = prepare_monitor(attach)
    if prepared is not None:
        status_r, status_w, client, server_fd = prepared.status_r, prepared.status_w, prepared.client, prepared.server_fd
    else:
        status_r, status_w = os.pipe2(os.O_CLOEXEC)
        client = server = None
        if attach:
            client, server = attach_socketpair()
        server_fd = server.fileno() if server else -1
    ctx = {
        "id": record.id,
        "status": str(status_w),
        "attach": str(server_fd),
        "stdin": "1" if interactive else "0",
        "fresh": "1",
        "winsize": f"{winsize[0]}x{winsize[1]}" if winsize else "",
        "config": config_to_json(config),
    }
    env = _monitor_env()
    log_path = record.dir(config) / "monitor.log"
    argv = ["start", *[f"{k}={v}" for k, v in ctx.items()]]
    if prepared is not None:
        prepared.launch(argv, log_path, env)
    else:
        import subprocess

        with open(log_path, "ab") as monitor_log:
            subprocess.Popen(
                [sys.executable, "-S", "-m", "engine.container.monitor", *argv],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=monitor_log,
                pass_fds=[status_w] + ([server_fd] if server_fd >= 0 else []),
                start_new_session=True,
                cwd="/",
                env=env,
            )
        os.close(status_w)
        if server is not None:
            server.close()
    # The monitor reports within a second or two; a minute means it hangs (a frozen cgroup,
    # a stuck mount): give up rather than block the CLI or the TUI for ever.
    reader = _StatusReader(status_r, START_REPORT_TIMEOUT)
    try:
        line = reader.line()
        if line == CGROUP_READY_LINE:
            # The container's cgroup exists: open the migration fast path while the monitor forks
            # the container's first process (see _prime_cgroup_migration), unless it did already.
            if not primed_by_monitor:
                _prime_cgroup_migration()
            line = reader.line()
    finally:
        os.close(status_r)
    if line is None:
        line = json.dumps({"error": f"the container's monitor did not report within {START_REPORT_TIMEOUT} s "
                           f"(see {log_path})"}).encode()
    try:
        report = json.loads(line) if line else {"error": "the container's monitor exited unexpectedly (see monitor.log)"}
    except ValueError:
        report = {"error": f"bad report from the monitor: {line[:200]!r}"}
    if "error" in report:
        if client is not None:
            client.close()
        error = DockuiError(report["error"])
        error.exit_code = int(report.get("exit_code", 125))
        raise error
    try:
        record = state.load(config, record.id)
    except NotFound:
        pass
    return StartResult(record, client)


CGROUP_READY_LINE = b'{"cgroup": "created"}'


def attach_socketpair() -> tuple[Any, Any]:
    """The attach channel: a connected AF_UNIX stream pair (CLOEXEC, as every socket Python makes).

    From `_socket`, the C module under `socket`: the `socket` wrapper's import (its enums and
    `selectors`) costs ~4 ms of every attached `run`, and the channel needs none of it.
    """
    import _socket

    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)


class _StatusReader:
    """Lines from the monitor's status pipe, with one overall deadline (None when it passes)."""

    def __init__(self, fd: int, timeout: float) -> None:
        self.fd = fd
        self.deadline = time.monotonic() + timeout
        self.buffer = b""

    def line(self) -> bytes | None:
        import select

        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, self.deadline - time.monotonic()))
            if not ready:
                return None
            chunk = os.read(self.fd, 4096)
            if not chunk:  # the monitor closed it (or died): what came is all there is
                line, self.buffer = self.buffer, b""
                return line
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


PRIME_INTERVAL = 0.004  # well inside one RCU grace period (~10 ms here)
PRIME_FOR_AT_MOST = 1.0  # a long pull: stop; the start then pays the grace period once


_primed_ahead = False  # this monitor was forked ahead and kept the migration fast path open itself


def _read_control(
    control_r: int, prime_target: str | None = "", ahead: list[Callable[[], None]] | tuple = ()
) -> dict | None:
    """The start context (one JSON object), or None when the CLI gave up (EOF before it came).

    `prime_target`: see _prime_target (looked up here when not given). `ahead`: short warm-up
    steps, run one at a time while nothing has come yet; those left when the context comes are
    skipped (the start does their work itself where it needs it).

    While it waits, this keeps the cgroup-migration fast path open (see _prime_cgroup_migration):
    a prime every PRIME_INTERVAL, for at most PRIME_FOR_AT_MOST, so that once the context arrives
    the container's cgroup is made and joined without waiting for an RCU grace period. The first,
    slow prime was taken by the intermediate process (_prepared_monitor_child), off this path.
    Returns as soon as the object is complete: the CLI closes its end only after reaping that
    intermediate process.
    """
    import select

    target = _prime_target() if prime_target == "" else prime_target
    deadline = time.monotonic() + PRIME_FOR_AT_MOST
    pending = list(ahead)
    data = b""
    while True:
        timeout = PRIME_INTERVAL if time.monotonic() < deadline else None
        ready, _, _ = select.select([control_r], [], [], 0 if pending and not data else timeout)
        if not ready:
            if pending and not data:
                with _suppress():
                    pending.pop(0)()
            else:
                _prime_cgroup_migration(target)
            continue
        chunk = os.read(control_r, 65536)
        data += chunk
        if not chunk or data.rstrip().endswith(b"}"):
            try:
                return json.loads(data)
            except ValueError:
                if not chunk:
                    return None  # EOF without a whole object: the CLI did not launch us
                # else a '}' inside the message, at a chunk boundary: read on


def _prime_cgroup_migration(target: str | None = "") -> None:
    """Start the kernel's wait for cgroup migrations now, while the monitor builds the container.

    Moving a process between cgroups takes the global cgroup_threadgroup_rwsem for writing; when
    no migration happened in the last ~10 ms that waits for an RCU grace period (5-15 ms here,
    more on a busy host) while holding cgroup_mutex, in the monitor, in the start path (it moves
    the container's first process into its cgroup). The caller moves itself into the cgroup it is
    already in: nothing changes for it, but the lock's slow path is taken now, and a migration a
    few ms later finds it done. A monitor forked ahead (`run`) has its intermediate process take
    the first, slow prime and keeps the path open while it waits (_read_control); a monitor
    started otherwise is primed by its caller once the container's cgroup exists (`start`).
    `target` is the cgroup.procs file (_prime_target), looked up here when not given.
    """
    if target == "":
        target = _prime_target()
    if target is None:
        return
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def _prime_target() -> str | None:
    """The cgroup.procs file of our own group in the pids hierarchy (or v2's), or None."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    target = None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):
            target = f"/sys/fs/cgroup/pids{path}"
        elif line.startswith("0::") and target is None and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            target = f"/sys/fs/cgroup{path}"  # cgroup v2 only
    return None if target is None else target.rstrip("/") + "/cgroup.procs"


def _monitor_env() -> dict[str, str]:
    """The monitor runs with -S (no site: ~15 ms less per stage), so it gets our package and
    site-packages (pyroute2 for bridge networks) on an explicit path."""
    env = dict(os.environ)
    paths = [str(ENGINE_PARENT), *(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def _may_fork() -> bool:
    """Fork the monitor from this process only when that is safe: no other thread (the TUI has
    several; a fork would copy locks held by them), and not turned off for debugging."""
    try:
        single = len(os.listdir("/proc/self/task")) == 1  # every thread, Python's or a library's
    except OSError:
        single = False
    return single and os.environ.get("DOCKUI_MONITOR_SPAWN", "fork") == "fork"


@dataclass
class PreparedMonitor:
    """A monitor forked before the container exists, waiting on a pipe for its start context.

    `dockui run` forks it first thing, so the monitor imports what its stage 1 needs (process,
    rootfs, security, cgroups: ~15 ms) on the other core while the CLI reconciles, resolves the
    image and writes the record. It holds the child's ends of the status pipe and the attach
    socketpair (made before the fork, so the numbers are the same in both). If the CLI never
    launches it (an error, a missing image, the CLI killed), the control pipe reaches EOF and the
    waiting process exits without touching anything.
    """

    control: int  # write end of the control pipe: one JSON message, then closed
    status_r: int
    status_w: int  # the child's end; closed here once launched
    server_fd: int  # the child's end of the attach socketpair (-1 when not attached)
    client: Any  # our end of the attach socketpair (attach_socketpair), or None
    attach: bool
    intermediate: int = 0  # the first fork, which exits at once: reaped on launch/discard
    used: bool = False

    def launch(self, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        """Hand over the start context; the monitor's report then arrives on status_r."""
        message = json.dumps({"argv": argv, "log": str(log_path), "env": env}).encode()
        self.used = True
        try:
            monitor.write_all(self.control, message)
        except OSError:
            pass  # it died: start() reads EOF on the status pipe and reports that
        finally:
            self._close_child_ends()

    def discard(self) -> None:
        """Not launched (or already launched): let the waiting process go and close our ends."""
        if self.used:
            return
        self.used = True
        self._close_child_ends()
        os.close(self.status_r)
        if self.client is not None:
            self.client.close()

    def _close_child_ends(self) -> None:
        if self.intermediate:
            try:
                os.waitpid(self.intermediate, 0)
            except ChildProcessError:
                pass
            self.intermediate = 0
        for fd in (self.control, self.status_w, self.server_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.control = self.status_w = self.server_fd = -1


def prepare_monitor(
    attach: bool, reconcile_config: EngineConfig | None = None, network: str = "none"
) -> PreparedMonitor | None:
    """Fork the monitor ahead of `start` (see PreparedMonitor); None where forking is unsafe.

    With `reconcile_config`, the forked monitor runs `reconcile` while it waits (before it can
    start anything), so the caller need not: `run` leaves it to the monitor, off its own path.
    `network` (the --network value) says whether to load the network module too (~9 ms).
    """
    if not _may_fork():
        return None
    control_r, control_w = os.pipe2(os.O_CLOEXEC)
    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    client = server = None
    if attach:
        client, server = attach_socketpair()
    server_fd = server.detach() if server is not None else -1
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _prepared_monitor_child(control_r, {control_r, status_w, server_fd} - {-1}, reconcile_config,
                                network_kind(network) == "bridge")
    os.close(control_r)
    # The intermediate child exits at once (the monitor is never our child); it is reaped later,
    # so the CLI goes on with its own work now.
    return PreparedMonitor(control_w, status_r, status_w, server_fd, client, attach, intermediate=pid)


def _prepared_monitor_child(
    control_r: int, keep: set[int], reconcile_config: EngineConfig | None, bridge: bool
) -> None:
    """In the forked child: become a session leader's orphan, warm up, wait for the context, run."""
    code = 1
    try:
        os.setsid()
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        wanted = {0, 1, 2, *keep}
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd not in wanted:
                try:
                    os.close(fd)
                except OSError:
                    pass
        # Looked up before the slow prime below starts: reading /proc/self/cgroup waits for the
        # cgroup_mutex that the prime holds through its grace period.
        prime_target = _prime_target()
        if os.fork():
            # The intermediate process, which nobody waits for until the CLI launches the monitor:
            # it takes the first, slow cgroup migration (a grace period, see _prime_cgroup_migration)
            # so that neither the CLI nor the monitor has to. No descriptor of the CLI's is open
            # here any more, so the monitor still sees EOF on the control pipe if the CLI gives up.
            _prime_cgroup_migration(prime_target)
            os._exit(0)
        os.chdir("/")
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE):
            signal.signal(number, signal.SIG_DFL if number != signal.SIGPIPE else signal.SIG_IGN)
        # What stage 1 needs before it can start anything, first: the CLI may send the context
        # within ~10 ms (less than these imports take on a busy host).
        with _suppress():
            import engine.image.imageconfig  # noqa: F401
            import engine.network.hostsfiles  # noqa: F401
            import engine.sandbox.cgroups  # noqa: F401
            import engine.sandbox.process  # noqa: F401
            import engine.sandbox.rootfs  # noqa: F401
            import engine.sandbox.security  # noqa: F401

            if bridge:
                import engine.network.endpoints  # noqa: F401
        reconcile_failure = ""
        if reconcile_config is not None:
            try:
                reconcile(reconcile_config)
            except Exception:  # noqa: BLE001 - written to monitor.log below (stderr is /dev/null yet)
                import traceback

                reconcile_failure = traceback.format_exc()
        # The container-independent part of the cgroup and of the spawn is done ahead, in steps,
        # while no context has come (what is not done by then, the start does itself).
        ahead: list[Callable[[], None]] = []
        with _suppress():
            from engine.sandbox import cgroups, process

            ahead = [cgroups.block_devices, *process.prepare_ahead_steps()]
        message = _read_control(control_r, prime_target, ahead)
        os.close(control_r)
        if message is None:  # the CLI did not launch us: nothing to do
            code = 0
            return
        global _primed_ahead
        _primed_ahead = True
        log_fd = os.open(message["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        if reconcile_failure:
            print(f"reconcile failed: {reconcile_failure}", file=sys.stderr)
        env = message["env"]  # the CLI's (we were forked from it) with a few changes: just those
        for key in [k for k in os.environ if k not in env]:
            del os.environ[key]
        for key, value in env.items():
            if os.environ.get(key) != value:
                os.environ[key] = value
        code = monitor.main(message["argv"])
    except BaseException:  # noqa: BLE001 - nothing may return into the CLI's code
        import traceback

        try:
            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
    finally:
        os._exit(code)


# ------------------------------------------------------------------------------------------ signals


def _wait_for(
    config: EngineConfig, container_id: str, done: Callable[[ContainerRecord], bool], timeout: float
) -> ContainerRecord | None:
    """Poll the record until `done` (None when it was removed); the record at timeout otherwise."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            record = state.load(config, container_id)
        except NotFound:
            return None
        if done(record):
            return record
        if record.status in ACTIVE_STATUSES and not state.process_alive(record.monitor_pid, record.monitor_start):
            reconcile(config)
            continue
        if time.monotonic() > deadline:
            return record
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _not_running(record: ContainerRecord) -> bool:
    return record.status not in ACTIVE_STATUSES


def _monitor_done(record: ContainerRecord) -> bool:
    return record.status not in ACTIVE_STATUSES and not state.process_alive(record.monitor_pid, record.monitor_start)


def _signal_container(record: ContainerRecord, sig: int) -> None:
    if not state.process_alive(record.pid, record.pid_start):
        return
    try:
        os.kill(record.pid, sig)
    except ProcessLookupError:
        pass


def _cgroup(config: EngineConfig, record: ContainerRecord) -> Any:
    from engine.sandbox.cgroups import Cgroup, open_cgroup

    if record.cgroup_paths:
        return Cgroup.from_paths(record.cgroup_paths)
    return open_cgroup(config, record.id)


def stop(config: EngineConfig, ref: str, timeout: int | None = None, sig: str | int | None = None) -> ContainerRecord:
    """`sig` (default the StopSignal), then SIGKILL after `timeout` seconds (Config.StopTimeout, default 10)."""
    from engine.image.imageconfig import parse_signal

    record = find_container(config, ref)

    def mark(r: ContainerRecord) -> None:
        r.stop_requested = True

    record = state.update(config, record.id, mark)
    if not record.running:
        return record
    if timeout is None:
        timeout = record.config.get("StopTimeout", DEFAULT_STOP_TIMEOUT)
    sig = parse_signal(sig or record.config.get("StopSignal") or "SIGTERM")
    if record.status == "paused":
        _signal_container(record, sig)
        _cgroup(config, record).thaw()
    else:
        _signal_container(record, sig)
    after = _wait_for(config, record.id, _not_running, max(timeout, 0))
    if after is not None and after.running:
        with _suppress():
            _cgroup(config, after).kill_all(signal.SIGKILL)
        _signal_container(after, signal.SIGKILL)
    after = _wait_for(config, record.id, _monitor_done, 15)
    return after or record


def kill(config: EngineConfig, ref: str, sig: int | str = "SIGKILL") -> ContainerRecord:
    from engine.image.imageconfig import parse_signal

    number = parse_signal(sig)
    record = find_container(config, ref)
    if not record.running or record.status == "restarting":
        raise Conflict(f"Container {record.id} is not running")
    _signal_container(record, number)
    if number == signal.SIGKILL:
        _wait_for(config, record.id, _not_running, 10)
    return record


def restart(config: EngineConfig, ref: str, timeout: int | None = None) -> ContainerRecord:
    record = stop(config, ref, timeout)
    return start(config, record.id).record


def pause(config: EngineConfig, ref: str) -> ContainerRecord:
    record = find_container(config, ref)
    if record.status != "running":
        raise Conflict(f"Container {record.id} is not running" if record.status != "paused" else f"Container {record.id} is already paused")
    with state.locked(config, record.id) as locked:
        _cgroup(config, locked).freeze()
        locked.status = "paused"
    return locked


def unpause(config: EngineConfig, ref: str) -> ContainerRecord:
    record = find_container(config, ref)
    if record.status != "paused":
        raise Conflict(f"Container {record.id} is not paused")
    with state.locked(config, record.id) as locked:
        _cgroup(config, locked).thaw()
        if locked.status == "paused":
            locked.status = "running"
    return locked


def wait(config: EngineConfig, ref: str) -> int:
    """Block until the container is not running; its exit code (Docker's `wait`)."""
    record = find_container(config, ref)
    last = record
    while True:
        try:
            last = state.load(config, record.id)
        except NotFound:
            return last.exit_code
        if last.status not in ACTIVE_STATUSES and not (
            last.status == "created" and state.process_alive(last.monitor_pid, last.monitor_start)
        ):
            return last.exit_code
        if not state.process_alive(last.monitor_pid, last.monitor_start):
            reconcile(config)
        time.sleep(0.05)


def rename(config: EngineConfig, ref: str, new_name: str) -> None:
    """`rename`: the record, then the network's records (topology, peers' hosts files)."""
    record = find_container(config, ref)
    state.rename_record(config, record.id, new_name)
    from engine.network import endpoints as network

    network.rename(config, record.id, state.validate_name(new_name))


# ------------------------------------------------------------------------------------------ removal


def remove(config: EngineConfig, ref: str, force: bool = False, volumes: bool = False) -> ContainerRecord:
    """`rm [-f] [-v]`: kill if forced, then cgroup, network, writable layer, volumes, record."""
    record = find_container(config, ref)
    if record.running or (record.status == "created" and state.process_alive(record.monitor_pid, record.monitor_start)):
        if not force:
            raise Conflict(
                f"You cannot remove a {record.status} container {record.id}. "
                "Stop the container before attempting removal or force remove"
            )

        def mark(r: ContainerRecord) -> None:
            r.stop_requested = True

        record = state.update(config, record.id, mark)
        # Kill until the monitor is done: it may be starting the container right now, so one
        # round of signals could come before the process exists.
        deadline = time.monotonic() + 15
        while True:
            try:
                current = state.load(config, record.id)
            except NotFound:
                return record  # the monitor removed it (--rm)
            if _monitor_done(current):
                record = current
                break
            if current.status in ACTIVE_STATUSES and not state.process_alive(current.monitor_pid, current.monitor_start):
                reconcile(config)
                continue
            cg = _cgroup(config, current)
            with _suppress():
                if cg.frozen:
                    cg.thaw()
            with _suppress():
                cg.kill_all(signal.SIGKILL)
            _signal_container(current, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise Conflict(f"could not stop container {current.id} for removal (its monitor is still busy)")
            time.sleep(0.02)
    with state.locked(config, record.id) as locked:
        if locked.status == "removing":
            raise Conflict(f"removal of container {locked.id} is already in progress")
        locked.status = "removing"
    _remove_files(config, locked, remove_volumes=volumes)
    return locked


def _remove_files(config: EngineConfig, record: ContainerRecord, remove_volumes: bool) -> None:
    from engine.image.store import ImageStore

    with _suppress():
        _cgroup(config, record).destroy()
    if network_kind(record.host_config.get("NetworkMode", "none")) == "bridge":
        with _suppress():
            from engine.network import endpoints as network

            network.release(config, record.id)
    unmount_rootfs(record)
    with _suppress():
        ImageStore(config).remove_rw_layer(record.id, record.image_id)
    anonymous = [m for m in record.mounts if m.get("Type") == "volume" and m.get("Anonymous")]
    if remove_volumes and anonymous:
        from engine.container.volumes import remove_volume  # only then: its import is ~2 ms of every --rm

        for mount in anonymous:
            with _suppress():
                remove_volume(config, mount["Name"], force=True)
    state.delete_record(config, record.id)


def prune(config: EngineConfig) -> list[str]:
    """Remove every stopped container; their IDs."""
    removed = []
    for record in state.list_containers(config):
        if record.status in ("exited", "created", "dead") and not state.process_alive(record.monitor_pid, record.monitor_start):
            try:
                remove(config, record.id)
                removed.append(record.id)
            except (Conflict, NotFound):
                continue
    return removed


# ------------------------------------------------------------------------------------------ inspection


def top(config: EngineConfig, ref: str, ps_args: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """The container's processes as `ps -ef` shows them (host pids, like Docker)."""
    record = find_container(config, ref)
    if not record.running:
        raise Conflict(f"Container {record.id} is not running")
    pids = _cgroup(config, record).pids()
    if not pids:
        return [], []
    args = ps_args or ["-ef"]
    import subprocess

    result = subprocess.run(["ps", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DockuiError(f"ps: {result.stderr.strip()}")
    lines = result.stdout.splitlines()
    headers = lines[0].split()
    if "PID" not in headers:
        raise InvalidArgument("Couldn't find PID field in ps output")
    pid_col = headers.index("PID")
    wanted = set(pids)
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(headers) - 1)
        if len(fields) > pid_col and fields[pid_col].isdigit() and int(fields[pid_col]) in wanted:
            rows.append(fields)
    return headers, rows


def inspect(config: EngineConfig, record: ContainerRecord) -> dict[str, Any]:
    """Docker-like `inspect` JSON."""
    v2, host_config = record.to_disk()
    d = record.dir(config)
    rw = Path(record.rw_layer) if record.rw_layer else None
    graph: dict[str, Any] = {"Name": "overlay2", "Data": None}
    if rw is not None:
        lower = ""
        with _suppress():
            from engine.image.store import ImageStore

            lower = ":".join(str(p) for p in reversed(ImageStore(config).layer_dirs(record.image_id)))
        graph["Data"] = {
            "LowerDir": lower,
            "UpperDir": str(rw / "diff"),
            "WorkDir": str(rw / "work"),
            "MergedDir": str(rw / "merged"),
        }
    return {
        "Id": record.id,
        "Created": record.created,
        "Path": record.path,
        "Args": record.args,
        "State": record.state_dict(),
        "Image": record.image_id,
        "ResolvConfPath": str(d / "resolv.conf"),
        "HostnamePath": str(d / "hostname"),
        "HostsPath": str(d / "hosts"),
        "LogPath": str(record.log_path(config)),
        "Name": "/" + record.name,
        "RestartCount": record.restart_count,
        "Driver": "overlay2",
        "Platform": record.platform,
        "HostConfig": host_config,
        "GraphDriver": graph,
        "Mounts": [
            {k: m.get(k) for k in ("Type", "Name", "Source", "Destination", "Driver", "Mode", "RW") if k in m}
            | {"Propagation": "rprivate" if m.get("Type") == "bind" else ""}
            for m in record.mounts
        ],
        "Config": record.config,
        "NetworkSettings": record.network,
    }


# ------------------------------------------------------------------------------------------ exec


def exec_command(
    config: EngineConfig,
    ref: str,
    argv: list[str],
    env: list[str] | None = None,
    workdir: str | None = None,
    user: str | None = None,
    tty: bool = False,
    stdio: tuple[int | None, int | None, int | None] = (None, None, None),
    privileged: bool = False,
) -> int:
    """Start `argv` inside the running container (its namespaces and cgroup); the host pid to wait for.

    Forks: call it from a single-threaded process (the CLI), not from the TUI.
    """
    from engine.image import imageconfig
    from engine.sandbox import process, security

    record = find_container(config, ref)
    if record.status == "paused":
        raise Conflict(f"Container {record.id} is paused, unpause the container before exec")
    if record.status != "running" or not state.process_alive(record.pid, record.pid_start):
        raise Conflict(f"Container {record.id} is not running")
    if not argv:
        raise InvalidArgument("No exec command specified")
    base_env = imageconfig.process_env(record.config.get("Env") or [], record.config.get("Hostname", ""), tty)
    full_env = imageconfig.replace_or_append_env(base_env, list(env or []))
    return process.exec_in_container(
        record.pid,
        argv,
        full_env,
        workdir or record.config.get("WorkingDir") or "/",
        user if user is not None else record.config.get("User") or "",
        tty,
        stdio,
        capabilities=security.capabilities_for(privileged=True) if privileged else None,
        wait=False,
    )


# ------------------------------------------------------------------------------------------ reconcile


def reconcile(config: EngineConfig) -> list[str]:
    """Mark containers whose monitor died as exited and clean up after them; their IDs.

    An --rm container found so is removed, as Docker's daemon removes them when it restarts.
    Cheap when nothing died: one /proc read per active container, plus a cgroup directory scan.
    """
    cleaned = []
    auto_remove = []
    records = state.list_containers(config)
    for record in records:
        busy = record.status in ACTIVE_STATUSES or record.status == "created" and record.monitor_pid
        if not busy or state.process_alive(record.monitor_pid, record.monitor_start):
            continue
        try:
            with state.locked(config, record.id) as locked:
                still_busy = locked.status in ACTIVE_STATUSES or locked.status == "created" and locked.monitor_pid
                if not still_busy or state.process_alive(locked.monitor_pid, locked.monitor_start):
                    continue
                _cleanup_unwatched(config, locked)
                cleaned.append(locked.id)
                if locked.host_config.get("AutoRemove"):
                    auto_remove.append(locked.id)
        except NotFound:
            continue
    for container_id in auto_remove:
        with _suppress():
            remove(config, container_id, force=True, volumes=True)
    _remove_orphan_cgroups(config)
    _remove_stale_mounts(config)
    if cleaned:
        with _suppress():
            from engine.network import endpoints as network

            live = {r.id for r in state.list_containers(config) if r.running}
            network.reconcile(config, live)
    return cleaned


def _remove_stale_mounts(config: EngineConfig) -> None:
    """Unmount `<layers>/<id>/merged` of containers that have no live monitor (a crash left it)."""
    prefix = str(config.layers_dir) + "/"
    stale = [p for p in _mountpoints() if p.startswith(prefix) and p.endswith("/merged")]
    if not stale:
        return
    from engine.kernel import syscalls  # ctypes: ~5 ms, so only when there is something to unmount
    owners = {str(Path(r.rw_layer) / "merged"): r for r in state.list_containers(config) if r.rw_layer}
    for point in stale:
        record = owners.get(point)
        if record is not None and state.process_alive(record.monitor_pid, record.monitor_start):
            continue
        with _suppress():
            syscalls.umount2(point, syscalls.MNT_DETACH)


ORPHAN_MIN_AGE = 10.0  # seconds


def _remove_orphan_cgroups(config: EngineConfig) -> None:
    """Destroy container groups under our parent whose container no longer exists.

    The groups are listed BEFORE the container directories: a directory exists before its monitor
    makes the group, so a container being started concurrently is never taken for an orphan
    (cgroups.cleanup_orphans takes the keep-list first, which would race with a concurrent start).
    """
    with _suppress():
        from engine.sandbox.cgroups import open_cgroup, parent_dirs

        groups: set[str] = set()
        young: set[str] = set()
        now = time.time()
        for parent in parent_dirs(config).values():
            try:
                entries = [e for e in os.scandir(parent) if e.is_dir(follow_symlinks=False)]
            except FileNotFoundError:
                continue
            groups |= {e.name for e in entries}
            with _suppress():
                young |= {e.name for e in entries if now - e.stat(follow_symlinks=False).st_mtime < ORPHAN_MIN_AGE}
        # A group made in the last seconds may be another engine root's container being started
        # (same cgroup parent, still empty until its first process joins): a later reconcile sees it.
        groups -= young
        if not groups:
            return
        try:
            existing = {e.name for e in os.scandir(config.containers_dir)}
        except FileNotFoundError:
            existing = set()
        for name in groups - existing:
            if state.ID_RE.match(name):
                group = open_cgroup(config, name)
                # A populated group may belong to another engine root sharing this cgroup parent:
                # only empty leftovers are ours to remove (ours with processes are killed by rm and
                # by _cleanup_unwatched, which know the container).
                if group.pids():
                    continue
                with _suppress():
                    group.destroy()


def _cleanup_unwatched(config: EngineConfig, record: ContainerRecord) -> None:
    """The monitor is gone: kill what is left of the container and record it as exited."""
    was_active = record.status in ACTIVE_STATUSES
    killed = False
    cg = _cgroup(config, record)
    with _suppress():
        if cg.pids():
            killed = True
            if cg.frozen:
                cg.thaw()
            cg.kill_all(signal.SIGKILL)
    if state.process_alive(record.pid, record.pid_start):
        killed = True
        _signal_container(record, signal.SIGKILL)
    with _suppress():
        cg.destroy()
    unmount_rootfs(record)
    if network_kind(record.host_config.get("NetworkMode", "none")) == "bridge":
        with _suppress():
            from engine.network import endpoints as network

            network.detach(config, record.id)
    if was_active:
        record.status = "exited"
        record.exit_code = 137 if killed else 255
        record.finished_at = now_rfc3339()
        record.error = "the container's monitor exited unexpectedly"
    record.pid = 0
    record.pid_start = 0
    record.monitor_pid = 0
    record.monitor_start = 0


class _suppress:
    """Swallow engine and OS errors during best-effort clean-up (logged at debug level)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        if exc is not None and isinstance(exc, OSError | DockuiError | ImportError):
            import logging

            logging.getLogger(__name__).debug("clean-up step failed: %s", exc)
            return True
        return False


# ------------------------------------------------------------------------------------------ monitor stages 1 and 3
# (engine.container.monitor runs them; they live here because they need the whole engine, while the
# monitor module itself stays small for its long-lived watch stage)


def _report_status(ctx: dict, message: dict) -> None:
    """Tell `start` (once) whether the container runs; then the pipe is closed."""
    fd = int(ctx.get("status", -1))
    if fd < 0:
        return
    import json

    monitor.write_all(fd, (json.dumps(message) + "\n").encode())
    os.close(fd)
    ctx["status"] = "-1"


def _report_progress(ctx: dict, line: bytes) -> None:
    """A line before the report (the caller reads on until the report): see runtime.start."""
    fd = int(ctx.get("status", -1))
    if fd >= 0:
        monitor.write_all(fd, line + b"\n")


def _send_exit(ctx: dict, code: int) -> None:
    fd = int(ctx.get("attach", -1))
    if fd >= 0:
        monitor.write_all(fd, monitor.frame(monitor.FRAME_EXIT, code.to_bytes(4, "big", signed=True)))
        os.close(fd)
        ctx["attach"] = "-1"


def _volatile_overlay_type(base: type) -> type:
    """OverlayLayers whose mount adds `volatile` (Linux 5.10+): no sync of the upper filesystem.

    Used for --rm containers, as podman does: their writable layer is deleted when they exit, so
    it needs no durability, and the sync that overlayfs otherwise does when the container's mount
    namespace goes away (an ext4 journal commit of the whole host filesystem) costs 10-200 ms on a
    busy host, in the critical path of every `run --rm`.
    """

    class VolatileOverlayLayers(base):
        def options(self) -> str:
            return super().options() + ",volatile"

    return VolatileOverlayLayers


def _launch(config: EngineConfig, record: ContainerRecord, ctx: dict) -> dict:
    """Cgroup, network plan, stdio, spawn: returns the fds and pid the watch stage needs."""
    from engine.image import imageconfig
    from engine.network import hostsfiles
    from engine.sandbox import cgroups, process, security

    hc, cfg = record.host_config, record.config
    d = record.dir(config)
    mode = hc.get("NetworkMode") or "bridge"
    kind = network_kind(mode)
    cg = cgroups.open_cgroup(config, record.id)
    cg.create(resources_of(hc), privileged=bool(hc.get("Privileged")))
    if not _primed_ahead:
        _report_progress(ctx, CGROUP_READY_LINE)  # the caller primes (see start); one forked ahead did
    if kind == "bridge":
        _prime_cgroup_migration()  # keeps the fast path open through network.prepare
    plan = None
    network_value = kind
    files = {"hosts": d / "hosts", "hostname": d / "hostname", "resolv.conf": d / "resolv.conf"}
    child_fds: list = []
    keep: dict = {}
    recorded: list[int] = []  # the pid, once record_running wrote it (undone if the start fails)
    console = None  # with a tty: our end of the socket the container's terminal comes over
    try:
        if kind == "bridge":
            from engine.network import endpoints as network

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
        # The overlay and the binds are mounted by the container's first process inside its own
        # mount namespace (engine.sandbox.rootfs): they vanish with it, and no host mount has to propagate
        # to every other namespace and back out again (a host umount cost ~200 ms on a busy host).
        from engine.sandbox.rootfs import BindMount, OverlayLayers

        rw = Path(record.rw_layer)
        overlay_type = OverlayLayers
        if hc.get("AutoRemove"):
            overlay_type = _volatile_overlay_type(OverlayLayers)
            # The kernel leaves this marker after a volatile mount and refuses the next mount while
            # it exists; an --rm container's layer is disposable, so a restart after a crash may go on.
            shutil.rmtree(rw / "work" / "work" / "incompat", ignore_errors=True)
        try:  # the store wrote the layer's lowerdir value next to it (Docker's overlay2 `lower` file)
            lowerdir = (rw / "lower").read_text().strip()
        except FileNotFoundError:
            lowerdir = ""
        if not lowerdir:
            from engine.image.store import ImageStore

            lowerdir = ImageStore(config).lowerdir_option(record.image_id)
        overlay = overlay_type(
            layers_dir=config.layers_dir,
            lowerdir=lowerdir,
            upperdir=rw / "diff",
            workdir=rw / "work",
        )
        privileged = bool(hc.get("Privileged"))
        tty = bool(cfg.get("Tty"))
        env = imageconfig.process_env(cfg.get("Env") or [], cfg.get("Hostname", ""), tty, plan.link_env if plan else [])
        spec = process.ProcessSpec(
            argv=[record.path, *record.args],
            rootfs=rw / "merged",
            env=env,
            overlay=overlay,
            cwd=cfg.get("WorkingDir") or "/",
            user=cfg.get("User") or "",
            hostname=cfg.get("Hostname", ""),
            tty=tty,
            network=network_value,
            mounts=[BindMount(Path(m["Source"]), m["Destination"], not m.get("RW", True))
                    for m in record.mounts if m.get("Type") != "tmpfs"],
            tmpfs=[(m["Destination"], m["Options"]) for m in record.mounts if m.get("Type") == "tmpfs"],
            hosts_file=files["hosts"],
            hostname_file=files["hostname"],
            resolv_conf=files["resolv.conf"],
            shm_size=int(hc.get("ShmSize") or 64 * 1024 * 1024),
            read_only=bool(hc.get("ReadonlyRootfs")),
            capabilities=security.capabilities_for(hc.get("CapAdd") or (), hc.get("CapDrop") or (), privileged),
            privileged=privileged,
            cgroup_procs=cg.procs_files(),  # joined by the process itself, first thing
        )
        if tty:
            # The process makes its terminal in its own devpts (`tty` says /dev/pts/0, as with
            # Docker) and sends us the master over this socket.
            console, console_child = attach_socketpair()
            spec.console_socket = console_child.detach()
            child_fds.append(spec.console_socket)
            if ctx.get("winsize"):
                rows, cols = (int(x) for x in ctx["winsize"].split("x"))
                spec.winsize = (rows, cols)
            stdio = (None, None, None)
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
            network.attach(config, plan, pid)

        def record_running(pid: int) -> None:
            """While the process builds its root (~5 ms): it runs once spawn_container returns."""
            pid_start = state.process_start_ticks(pid)
            settings = plan.settings() if plan is not None else {
                "NetworkMode": mode, "IPAddress": "", "IPPrefixLen": 0, "MacAddress": "", "Gateway": "",
                "HostVeth": "", "Bridge": "", "Ports": {}, "Links": None, "Networks": {},
            }

            def running(r: ContainerRecord) -> None:
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
            recorded.append(pid)
            if hc.get("AutoRemove"):
                with _suppress():  # what --rm's removal needs, loaded now rather than after the exit
                    import engine.image.store  # noqa: F401

        # Keep the cgroup-migration fast path open for the container process's join: ~0.1 ms
        # while a recent prime (the prepared monitor's, the caller's) still holds it open, and
        # otherwise the grace period the join would have waited for anyway. Its own namespace
        # set-up brings `lo` up; only a bridge needs us between that and its exec.
        _prime_cgroup_migration()
        pid = process.spawn_container(
            spec, stdio, on_namespaces_ready if plan is not None else None, during_setup=record_running
        )
        if console is not None:
            keep["pty"] = process.receive_console(console)  # sent before its exec, which succeeded
    except BaseException:
        for fd in [*child_fds, *keep.values()]:
            os.close(fd)
        if console is not None:
            console.close()
        try:
            if recorded:  # it never ran: the record as it was (the caller records the failure)
                with _suppress():
                    state.update(config, record.id, lambda r: _restore_run_fields(r, record))
            cg.destroy()
        finally:
            if plan is not None:
                network.detach(config, record.id)
        raise
    for fd in child_fds:
        os.close(fd)
    if console is not None:
        console.close()
    handoff = {k: str(v) for k, v in keep.items()}
    handoff.update(pid=str(pid), oom=str(oom_base), log=str(record.log_path(config)))
    log_config = (hc.get("LogConfig") or {}).get("Config") or {}
    if log_config:
        from engine.container.logs import log_limits

        max_size, max_file = log_limits(log_config)
        handoff.update(log_max_size=str(max_size), log_max_file=str(max_file))
    return handoff


def _restore_run_fields(r: ContainerRecord, before: ContainerRecord) -> None:
    """Undo _launch's "running" (recorded while the process set itself up) after it failed."""
    for name in ("status", "pid", "pid_start", "started_at", "exit_code", "error", "oom_killed",
                 "cgroup_paths", "network"):
        setattr(r, name, getattr(before, name))


def monitor_start(ctx: dict) -> None:
    """Stage 1: start the container, report, then become the small watch stage."""
    import gc

    # Short-lived (it execs the watch stage, or finishes a container that exited): no cycle
    # collections, each of which touches pages shared copy-on-write with the CLI (~0.2 ms a time).
    gc.disable()
    config = config_from_json(ctx["config"])
    cid = ctx["id"]
    me, me_start = os.getpid(), state.process_start_ticks(os.getpid())

    def claim(r: ContainerRecord) -> None:
        r.monitor_pid, r.monitor_start = me, me_start
        if ctx.get("fresh") == "1":  # a start by the user (not by the restart policy)
            r.stop_requested = False
            r.restart_count = 0

    try:
        record = state.update(config, cid, claim)
        handoff = _launch(config, record, ctx)
    except BaseException as exc:  # noqa: BLE001 - everything is reported to the CLI
        if isinstance(exc, DockuiError):
            message, code = str(exc), exc.exit_code
        else:
            import traceback

            traceback.print_exc()
            message, code = f"failed to start the container: {exc}", 125
        _start_failed(config, cid, ctx, message, code)
        return
    _report_status(ctx, {"ok": True, "pid": int(handoff["pid"])})
    ctx.update(handoff)
    if monitor.watch(ctx, grace=monitor.START_GRACE):
        monitor_finish(ctx)  # short-lived: no need for the small stage (saves two interpreter starts)
        monitor.ensure_bytecode()  # for the next runs, after the exit went out (once per process)
    else:
        # Only a container that lives on takes `attach` clients (not on a short run's path);
        # `dockui attach` waits the start's grace period out for it.
        with _suppress():
            ctx["listen"] = str(_attach_listener(config.containers_dir / cid))
        monitor.ensure_bytecode()  # for the watch and finish stages' interpreters
        monitor.exec_stage("watch", ctx)


def _start_failed(config: EngineConfig, cid: str, ctx: dict, message: str, code: int) -> None:
    """The start failed: record it as Docker does (status kept, ExitCode and Error set)."""

    record = None
    try:

        def note(r: ContainerRecord) -> None:
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
            remove(config, cid, force=True, volumes=True)
        except Exception as exc:  # noqa: BLE001
            print(f"--rm clean-up failed: {exc}", file=sys.stderr)
    _report_status(ctx, {"error": message, "exit_code": code})
    _send_exit(ctx, code)


ATTACH_SOCKET = "attach.sock"  # in the container's dir, while it runs: `dockui attach` connects here


def _attach_listener(directory: Path) -> int:
    """A listening unix socket at <container dir>/attach.sock, for `dockui attach`; its fd goes to
    the watch stages, which take one client at a time. Bound through /proc/self/fd/<dir>, so a
    long engine root still fits a socket address (108 bytes)."""
    import _socket

    dfd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        path = f"/proc/self/fd/{dfd}/{ATTACH_SOCKET}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a crashed monitor's, or the run before a restart's
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.bind(path)
            os.chmod(path, 0o600)
            sock.listen(4)
        except BaseException:
            sock.close()
            raise
    finally:
        os.close(dfd)
    return sock.detach()


def monitor_finish(ctx: dict) -> None:
    """Stage 3: record the exit, clean up, and restart (back to stage 1) or remove."""
    from engine.sandbox import cgroups

    config = config_from_json(ctx["config"])
    cid = ctx["id"]
    code = int(ctx["exit"])
    listen = int(ctx.pop("listen", -1) or -1)
    if listen >= 0:  # nobody attaches to a stopped container (a restart makes a new listener)
        os.close(listen)
        with contextlib.suppress(OSError):
            os.unlink(config.containers_dir / cid / ATTACH_SOCKET)
    try:
        record = state.load(config, cid)
    except NotFound:
        record = None
    host_links: list[str] = []
    if record is not None and network_kind(record.host_config.get("NetworkMode", "none")) == "bridge":
        try:
            from engine.network import endpoints as network

            # First: the veth pairs leave the host on a thread meanwhile (see network.detach)
            host_links = network.detach(config, cid, wait=False)
        except Exception as exc:  # noqa: BLE001
            print(f"network detach failed: {exc}", file=sys.stderr)
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
        unmount_rootfs(record)
    if record is None:
        _send_exit(ctx, code)
        return
    if oom and code == 0:
        code = 137
    try:
        _finish_record(config, ctx, record, code, oom)
    finally:
        # The host veths are being deleted on a thread (or by the kernel with the namespace): wait
        # for them (after the record work above, which overlaps), so that when `run` returns or
        # `wait` answers, nothing of the container is left on the host.
        _wait_links_gone(host_links)
        _send_exit(ctx, code)


def _wait_links_gone(names: list[str], timeout: float = 2.0) -> None:
    if names:
        from engine.network import endpoints as network

        network.wait_links_gone(names, timeout)


def _finish_record(config: EngineConfig, ctx: dict, record: ContainerRecord, code: int, oom: bool) -> None:
    """Stage 3's record part: exited (or restarting: back to stage 1), then --rm removal."""
    import time

    cid = record.id
    policy = record.host_config.get("RestartPolicy") or {}
    name, retries = policy.get("Name") or "", int(policy.get("MaximumRetryCount") or 0)

    def exited(r: ContainerRecord) -> None:
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
            if r.host_config.get("AutoRemove"):
                r.status = "removing"  # --rm: as `remove` would mark it, in the same locked update

    try:
        record = state.update(config, cid, exited)
    except NotFound:
        return
    if record.status == "removing":
        try:
            _remove_files(config, record, remove_volumes=True)
        except Exception as exc:  # noqa: BLE001
            print(f"--rm clean-up failed: {exc}", file=sys.stderr)
        return
    if record.status == "restarting":
        time.sleep(min(0.1 * 2 ** (record.restart_count - 1), 10.0))  # Docker's doubling back-off

        def check(r: ContainerRecord) -> None:
            if r.stop_requested:
                r.status = "exited"
                r.monitor_pid = r.monitor_start = 0

        try:
            record = state.update(config, cid, check)
        except NotFound:
            return
        if record.status == "restarting":
            for key in ("exit", "pid", "oom"):
                ctx.pop(key, None)
            ctx["fresh"] = "0"
            monitor.exec_stage("start", ctx)  # a fresh stage 1: no recursion however often it restarts
    if record.host_config.get("AutoRemove"):
        try:
            remove(config, cid, volumes=True)
        except Exception as exc:  # noqa: BLE001
            print(f"--rm clean-up failed: {exc}", file=sys.stderr)
