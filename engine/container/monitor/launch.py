"""Stage 1's launch of the container's first process: its cgroup, its network plan (or the network of
the container it joins), its overlay root, its stdio (pipes or a pty), the spawn, and the record
"running" while the process builds its root.

Invariant: a launch that fails undoes what it did (the record as it was, the cgroup, the network)
before the error goes to `start`.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.config import DEFAULTS, EngineConfig
from engine.container import state
from engine.container.cleanup import best_effort, release_volumes, uses_named_volumes
from engine.container.monitor import prime
from engine.container.monitor.context import CGROUP_READY_LINE, MonitorContext, attach_socketpair
from engine.container.options import network_kind, resources_of, security_options
from engine.container.state import ContainerRecord
from engine.errors import Conflict
from engine.util import trace

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any


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


def launch(config: EngineConfig, record: ContainerRecord, ctx: MonitorContext) -> None:
    """Cgroup, network plan, stdio, spawn: sets in `ctx` the fds and pid the watch stage needs."""
    from engine.sandbox import cgroups, process

    hc = record.host_config
    mode = hc.get("NetworkMode") or "bridge"
    kind = network_kind(mode)
    from engine.container import hostflags

    flags = hostflags.sandbox_flags(config, hc)  # --init, --device, --ipc, --pid, ...: checked before anything is made
    cg = cgroups.open_cgroup(config, record.id)
    cg.create(resources_of(hc), devices_allow=hostflags.device_allow(flags), privileged=bool(hc.get("Privileged")))
    trace.mark("monitor cgroup")
    if not prime.primed_ahead:
        ctx.report_progress(CGROUP_READY_LINE)  # the caller primes (see start); one forked ahead did
    if kind == "bridge":
        prime.prime_cgroup_migration()  # keeps the fast path open through network.prepare
    plan = None
    child_fds: list = []
    keep: dict = {}
    recorded: list[int] = []  # the pid, once record_running wrote it (undone if the start fails)
    console = None  # with a tty: our end of the socket the container's terminal comes over
    try:
        _mount_volumes(config, record)
        plan, network_value, files = _network(config, record, kind, mode)
        spec = _process_spec(config, record, cg, plan, network_value, files)
        hostflags.apply(spec, flags)
        console, stdio = _stdio(spec, ctx, child_fds, keep)
        oom_base = cg.oom_kill_count()

        def on_namespaces_ready(pid: int) -> None:
            from engine.network import endpoint as network

            network.attach(config, plan, pid)

        def record_running(pid: int) -> None:
            """While the process builds its root: it runs once spawn_container returns."""
            _record_running(config, record, cg, plan, mode, pid)
            recorded.append(pid)
            trace.mark("monitor running recorded")

        # Keep the cgroup-migration fast path open for the container process's join: cheap while
        # a recent prime (the prepared monitor's, the caller's) still holds it open, and otherwise
        # the grace period the join would have waited for anyway. Its own namespace set-up brings
        # `lo` up; only a bridge needs us between that and its exec.
        prime.prime_cgroup_migration()
        trace.mark("monitor spawn")
        pid = process.spawn_container(
            spec, stdio, on_namespaces_ready if plan is not None else None, during_setup=record_running
        )
        trace.mark("monitor exec succeeded")
        if console is not None:
            keep["pty_fd"] = process.receive_console(console)  # sent before its exec, which succeeded
    except BaseException:
        for fd in [*child_fds, *keep.values()]:
            os.close(fd)
        if console is not None:
            console.close()
        try:
            if recorded:  # it never ran: the record as it was (the caller records the failure)
                with best_effort():
                    state.update(config, record.id, lambda r: _restore_run_fields(r, record))
            cg.destroy()
        finally:
            release_volumes(config, record)
            if plan is not None:
                from engine.network import endpoint as network

                network.detach(config, record.id)
        raise
    for fd in child_fds:
        os.close(fd)
    if console is not None:
        console.close()
    _hand_over(config, record, ctx, keep, pid, oom_base)


def _mount_volumes(config: EngineConfig, record: ContainerRecord) -> None:
    """Volumes with driver options are mounted now, before the sandbox binds them (volume_mounts)."""
    if uses_named_volumes(record):  # (the module only on the path of containers with one)
        from engine.container import volume_mounts

        volume_mounts.mount_for(config, record)


def _network(config: EngineConfig, record: ContainerRecord, kind: str, mode: str) -> tuple[Any, str, dict]:
    """The network plan (a bridge: address, ports, hosts and resolv.conf written in place), the
    spec's network value, and the hosts/hostname/resolv.conf files the container binds."""
    hc, cfg = record.host_config, record.config
    d = record.dir(config)
    plan = None
    network_value = kind
    files = {"hosts": d / "hosts", "hostname": d / "hostname", "resolv.conf": d / "resolv.conf"}
    if kind == "bridge":
        from engine.network import endpoint as network
        from engine.network import hostsfiles

        spec = network.NetworkSpec(
            mode=mode,
            ip=hc.get("IPAddress"),
            ip6=hc.get("IPv6Address"),
            endpoint_links=list(hc.get("EndpointLinks") or []),  # the create body's, user networks only
            link_local=list(hc.get("EndpointLinkLocalIPs") or []),
            publish=list(hc.get("PublishSpecs") or []),
            publish_all=bool(hc.get("PublishAllPorts")),
            links=list(hc.get("Links") or []),
            dns=list(hc.get("Dns") or []),
            dns_search=list(hc.get("DnsSearch") or []),
            dns_options=list(hc.get("DnsOptions") or []),
            add_hosts=list(hc.get("ExtraHosts") or []),
            hostname=cfg.get("Hostname"),
            mac=cfg.get("MacAddress") or None,
            env=list(cfg.get("Env") or []),
            aliases=list(hc.get("NetworkAliases") or []),  # the create request's (Engine API)
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
    return plan, network_value, files


def _overlay(config: EngineConfig, record: ContainerRecord) -> Any:
    """The container's overlay root, mounted by its first process inside its own mount namespace
    (engine.sandbox.rootfs): it vanishes with it, and no host mount has to propagate to every other
    namespace and back out again (docs/lifecycle.md)."""
    from engine.sandbox.rootfs import OverlayLayers

    rw = Path(record.rw_layer)
    overlay_type = OverlayLayers
    if record.host_config.get("AutoRemove"):
        overlay_type = _volatile_overlay_type(OverlayLayers)
        # The kernel leaves this marker after a volatile mount and refuses the next mount while
        # it exists; an --rm container's layer is disposable, so a restart after a crash may go on.
        incompat = rw / "work" / "work" / "incompat"
        if incompat.exists():  # only then shutil (docs/lifecycle.md, "Import costs")
            import shutil

            shutil.rmtree(incompat, ignore_errors=True)
    try:  # the store wrote the layer's lowerdir value next to it (Docker's overlay2 `lower` file)
        lowerdir = (rw / "lower").read_text().strip()
    except FileNotFoundError:
        lowerdir = ""
    if not lowerdir:
        from engine.image.store import ImageStore

        lowerdir = ImageStore(config).lowerdir_option(record.image_id)
    if (rw / "init").is_dir():  # Docker's init layer (/.dockerenv), above the image's: see container.create
        lowerdir = f"{os.path.relpath(rw / 'init', config.layers_dir)}:{lowerdir}"
    return overlay_type(
        layers_dir=config.layers_dir,
        lowerdir=lowerdir,
        upperdir=rw / "diff",
        workdir=rw / "work",
    )


def _process_spec(config: EngineConfig, record: ContainerRecord, cg: Any, plan: Any, network_value: str,
                  files: dict) -> Any:
    """The container's first process, as engine.sandbox.process spawns it."""
    from engine.container.mounts import sandbox_bind
    from engine.image import imageconfig
    from engine.sandbox import process, security

    hc, cfg = record.host_config, record.config
    privileged = bool(hc.get("Privileged"))
    secopts = security_options(hc.get("SecurityOpt") or ())
    tty = bool(cfg.get("Tty"))
    env = imageconfig.process_env(cfg.get("Env") or [], cfg.get("Hostname", ""), tty, plan.link_env if plan else [])
    return process.ProcessSpec(
        argv=[record.path, *record.args],
        rootfs=Path(record.rw_layer) / "merged",
        env=env,
        overlay=_overlay(config, record),
        cwd=cfg.get("WorkingDir") or "/",
        user=cfg.get("User") or "",
        hostname=cfg.get("Hostname", ""),
        domainname=cfg.get("Domainname") or "",
        tty=tty,
        network=network_value,
        mounts=[sandbox_bind(m) for m in record.mounts if m.get("Type") != "tmpfs"],
        tmpfs=[(m["Destination"], m["Options"]) for m in record.mounts if m.get("Type") == "tmpfs"],
        hosts_file=files["hosts"],
        hostname_file=files["hostname"],
        resolv_conf=files["resolv.conf"],
        shm_size=int(hc.get("ShmSize") or DEFAULTS.shm_size),
        read_only=bool(hc.get("ReadonlyRootfs")),
        capabilities=security.capabilities_for(hc.get("CapAdd") or (), hc.get("CapDrop") or (), privileged),
        privileged=privileged,
        masked_paths=hc.get("MaskedPaths"),  # None (not set at create): the sandbox's defaults
        readonly_paths=hc.get("ReadonlyPaths"),
        no_new_privs=secopts.no_new_privs,
        seccomp=secopts.seccomp,
        cgroup_procs=cg.procs_files(),  # joined by the process itself, first thing
    )


def _stdio(spec: Any, ctx: MonitorContext, child_fds: list, keep: dict) -> tuple[Any, tuple]:
    """The container's stdio: a pty it makes itself, or pipes. Appends the child's ends to
    `child_fds` and ours (by MonitorContext field) to `keep`; returns the console socket (with a
    tty) and the stdio triple for the spawn."""
    console = None
    if spec.tty:
        # The process makes its terminal in its own devpts (`tty` says /dev/pts/0, as with
        # Docker) and sends us the master over this socket.
        console, console_child = attach_socketpair()
        spec.console_socket = console_child.detach()
        child_fds.append(spec.console_socket)
        if ctx.winsize:
            rows, cols = (int(x) for x in ctx.winsize.split("x"))
            spec.winsize = (rows, cols)
        return console, (None, None, None)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    keep.update(out_fd=out_r, err_fd=err_r)
    child_fds += [out_w, err_w]
    in_r = None
    if ctx.open_stdin:
        in_r, in_w = os.pipe2(os.O_CLOEXEC)
        keep["in_fd"] = in_w
        child_fds.append(in_r)
    return console, (in_r, out_w, err_w)


def _record_running(config: EngineConfig, record: ContainerRecord, cg: Any, plan: Any, mode: str, pid: int) -> None:
    """Record "running" while the process builds its root (undone by _restore_run_fields if the
    start fails after all)."""
    hc = record.host_config
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
    if hc.get("AutoRemove"):
        with best_effort():  # what --rm's removal needs, loaded now rather than after the exit
            import shutil  # noqa: F401 - the rw layer's rmtree

            import engine.image.store  # noqa: F401


def _hand_over(config: EngineConfig, record: ContainerRecord, ctx: MonitorContext, keep: dict, pid: int,
               oom_base: int) -> None:
    """What the watch stage needs, into the context: our stdio ends, the pid, the log and its limits."""
    for name, fd in keep.items():
        setattr(ctx, name, fd)
    ctx.pid, ctx.oom_base, ctx.log_path = pid, oom_base, str(record.log_path(config))
    log_settings = record.host_config.get("LogConfig") or {}
    if log_settings.get("Type") == "none":
        ctx.log_path = os.devnull  # --log-driver none: the watch stage's entries are kept nowhere
        return  # (its --log-opt values are Docker's to ignore: none takes any)
    log_config = log_settings.get("Config") or {}
    if log_config:
        from engine.container.logs import log_limits

        ctx.log_max_size, ctx.log_max_file = log_limits(log_config)


def _restore_run_fields(r: ContainerRecord, before: ContainerRecord) -> None:
    """Undo launch's "running" (recorded while the process set itself up) after it failed."""
    for name in ("status", "pid", "pid_start", "started_at", "exit_code", "error", "oom_killed",
                 "cgroup_paths", "network"):
        setattr(r, name, getattr(before, name))
