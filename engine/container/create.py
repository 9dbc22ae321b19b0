"""`create`: a new container on disk (its record, writable layer, volumes, hostname/hosts/resolv.conf);
nothing runs yet.

Invariant: a create that fails half-way removes what it wrote (cleanup.remove_files), so a failed
`create` or `run` leaves no record, layer or anonymous volume behind.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine import events
from engine.config import DEFAULTS, EngineConfig
from engine.container import state
from engine.container.cleanup import remove_files
from engine.container.names import generate_name
from engine.container.options import (
    RunOptions,
    exposed_ports,
    network_kind,
    parse_restart_policy,
    resources_of,
    security_options,
)
from engine.container.state import ContainerRecord, find_container, now_rfc3339
from engine.errors import InvalidArgument

LOG_DRIVERS = ("json-file", "none")  # none: nothing is kept, `logs` refuses (engine.container.logs)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any


def create(config: EngineConfig, opts: RunOptions, monitor: tuple[int, int] = (0, 0)) -> ContainerRecord:
    """Write a new container (record, writable layer, volumes); nothing runs yet.

    `monitor`: the pid and start ticks of a monitor forked ahead to start it (`run`), written as
    the claim of the finished record (engine.container.start.PreparedMonitor.claim); (0, 0): none."""
    from engine.container.mounts import prepare_mounts
    from engine.image.store import ImageStore

    host_config = _host_config(opts)
    kind = _check(config, opts, host_config)

    store = ImageStore(config)
    image = store.resolve(opts.image_id or opts.image)
    image_conf = (image.config.get("config") or {}) if isinstance(image.config, dict) else {}
    container_id = os.urandom(32).hex()
    config_dict, argv = _container_config(opts, image.config, kind, container_id)
    if kind == "container":  # Docker's initializeNetworking: the joined container's hostname, as its /etc/hostname
        config_dict["Hostname"] = find_container(config, opts.network.split(":", 1)[1]).config.get("Hostname") or config_dict["Hostname"]
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
        _write_init_layer(Path(rw))
        shared = _volumes_from(config, opts)
        own = prepare_mounts(config, opts.volumes, {d: v for d, v in (image_conf.get("Volumes") or {}).items()
                                                    if d not in {m["Destination"] for m in shared}},
                             opts.mounts, opts.tmpfs, opts.legacy_read_only_binds)
        record.mounts = own + [m for m in shared if m["Destination"] not in {o["Destination"] for o in own}]
        if any(m.get("Type") == "volume" for m in record.mounts):
            from engine.container.copyup import copy_up

            copy_up(config, Path(rw), store.lowerdir_option(image.id), record.mounts)
        _write_etc_files(config, record)
        record.monitor_pid, record.monitor_start = monitor
        state.save(config, record, durable=True, fsync=keep)
    except BaseException:
        remove_files(config, record, remove_volumes=True)
        raise
    events.container(config, "create", record)
    return record


def _volumes_from(config: EngineConfig, opts: RunOptions) -> list[dict[str, Any]]:
    """`--volumes-from CONTAINER[:MODE]` (engine.container.mounts.volumes_from_mode: ro/rw, z/Z): its
    volumes and binds at the same destinations, writable only if they are there and `ro` is not
    given, with no Mode (moby's registerMountPoints copies them so: `m.RW && ReadWrite(mode)`). An
    anonymous volume stays anonymous: `rm -v` of whichever container is removed last removes it,
    as Docker's (engine.container.volumes.remove_volume keeps it while another container mounts it)."""
    from engine.container.mounts import volumes_from_mode

    shared: list[dict[str, Any]] = []
    for item in opts.volumes_from:
        ref, mode = volumes_from_mode(item)
        source = find_container(config, ref)
        for mount in source.mounts:
            if mount.get("Type") not in ("volume", "bind"):
                continue
            copy = {**mount, "CopyData": False, "Mode": "", "RW": mount.get("RW", True) and "ro" not in mode.split(",")}
            shared.append(copy)
    return shared


def _check_sandbox_flags(config: EngineConfig, opts: RunOptions, kind: str) -> None:
    """--ulimit, --sysctl, --ipc, --pid, --init: Docker's rules (engine.container.options); the
    container a `container:NAME` mode joins must exist now (and run when this one starts)."""
    from engine.container.options import (
        check_device_cgroup_rule,
        check_namespace_mode,
        check_sysctls,
        check_ulimits,
        check_uts_mode,
    )

    if opts.ulimits:  # (its check reads /proc/self/status: not on every create)
        check_ulimits(opts.ulimits)
    check_namespace_mode("--ipc", opts.ipc, ("", "private", "shareable", "host"))
    check_namespace_mode("--pid", opts.pid, ("", "host"))
    check_uts_mode(opts.uts)
    opts.device_cgroup_rules = [check_device_cgroup_rule(rule) for rule in opts.device_cgroup_rules]
    for mode in (opts.ipc, opts.pid):
        if mode.startswith("container:"):
            find_container(config, mode.split(":", 1)[1])
    check_sysctls(opts.sysctls, kind, opts.ipc)
    if opts.mac_address:
        from engine.container.options import parse_mac_address

        opts.mac_address = parse_mac_address(opts.mac_address)
        if kind != "bridge":
            raise InvalidArgument("conflicting options: mac-address and the network mode")
    for device in opts.devices:
        from engine.sandbox.tunables import device_node

        try:
            device_node(device["PathOnHost"], device["PathInContainer"])
        except (OSError, ValueError) as exc:
            raise InvalidArgument(f"error gathering device information while adding custom device "
                                  f"{device['PathOnHost']!r}: {getattr(exc, 'strerror', None) or exc}") from None
    if opts.init:
        from engine.sandbox.tunables import find_init

        if find_init() is None:
            raise InvalidArgument("--init: no static init on this host (install tini: docker-init or tini-static)")


def _memory_swappiness(opts: RunOptions) -> int | None:
    """HostConfig.MemorySwappiness: 0..100, else None (-1 too); None where the host's cgroups have
    no such knob (v2), as Docker drops it there with a warning (create_warnings)."""
    from engine.container.options import check_memory_swappiness

    value = check_memory_swappiness(opts.memory_swappiness)
    if value is None:
        return None
    from engine.sandbox.cgroups import memory_swappiness_supported

    return value if memory_swappiness_supported() else None


def _check(config: EngineConfig, opts: RunOptions, host_config: dict[str, Any]) -> str:
    """Docker's rules for the flags together (InvalidArgument in its words), with the config
    file's defaults applied to `host_config`; the network kind."""
    from engine.network import hostsfiles

    if "max-size" not in host_config["LogConfig"]["Config"] and opts.log_driver == "json-file":  # the config file's cap
        for key, value in config.default_log_opts().items():
            host_config["LogConfig"]["Config"].setdefault(key, value)
    host_config["MemorySwappiness"] = _memory_swappiness(opts)
    resources_of(host_config).validate()
    security_options(host_config["SecurityOpt"] or ())
    if config.no_new_privileges and not any(o.startswith("no-new-privileges") for o in opts.security_opt):
        host_config["SecurityOpt"] = [*opts.security_opt, "no-new-privileges"]  # the config file's default
    from engine.sandbox.cgroups import cgroupns_mode  # loaded by resources_of above

    host_config["CgroupnsMode"] = cgroupns_mode(opts.cgroupns, config.default_cgroupns_mode, opts.privileged)
    if opts.log_driver not in LOG_DRIVERS:
        raise InvalidArgument(f"log driver {opts.log_driver!r} is not supported: dockui writes json-file logs "
                              "(or none: --log-driver none)")
    if opts.log_driver == "json-file" and (opts.log_opts or host_config["LogConfig"]["Config"]):
        from engine.container.logs import log_limits

        if any("=" not in o for o in opts.log_opts):
            raise InvalidArgument(f"invalid log opt: expected KEY=VALUE, got {opts.log_opts!r}")
        log_limits(host_config["LogConfig"]["Config"])
    if opts.auto_remove and host_config["RestartPolicy"]["Name"] != "no":
        raise InvalidArgument("Conflicting options: --restart and --rm")
    if opts.name is not None:
        opts.name = state.validate_name(opts.name)
    kind = network_kind(opts.network)
    if kind == "container":
        find_container(config, opts.network.split(":", 1)[1])
    _check_sandbox_flags(config, opts, kind)
    if kind in ("host", "none", "container") and (opts.publish or opts.publish_all):
        if kind != "none":
            raise InvalidArgument("Conflicting options: port publishing and the container type network mode")
    if (opts.shm_size or 0) < 0:  # moby's verifyContainerSettings, as every port binding parsing (not at start)
        raise InvalidArgument("SHM size can not be less than 0")
    if opts.publish:
        from engine.network.portmap import parse_publish

        for spec in opts.publish:
            parse_publish(spec)
    if opts.network_aliases and (kind != "bridge" or opts.network in ("bridge", "default")):
        raise InvalidArgument("network-scoped alias is supported only for containers in user defined networks")
    if kind in ("host", "container") and opts.hostname:
        raise InvalidArgument("Conflicting options: hostname and the network mode")
    if opts.uts == "host" and opts.hostname:  # moby's validateNetMode
        raise InvalidArgument("conflicting options: hostname and the UTS mode")
    if kind == "none" and any(hostsfiles.parse_add_host(h)[0] == "host-gateway" for h in opts.add_hosts):
        # Docker writes the host's gateway address; without a network there is no gateway to reach.
        raise InvalidArgument("--add-host NAME:host-gateway needs a network: with --network none there is no gateway")
    return kind


def _container_config(opts: RunOptions, image_config: Any, kind: str, container_id: str) -> tuple[dict[str, Any], list[str]]:
    """Docker's Config of the new container (the image's config under the flags) and its argv."""
    from engine.image import imageconfig

    image_conf = (image_config.get("config") or {}) if isinstance(image_config, dict) else {}
    argv = imageconfig.command_for(image_config, opts.entrypoint, opts.command or None)
    if opts.entrypoint is not None:
        entrypoint = [opts.entrypoint] if opts.entrypoint else None
        cmd = list(opts.command) or (None if opts.entrypoint else image_conf.get("Cmd"))
    else:
        entrypoint = image_conf.get("Entrypoint")
        cmd = list(opts.command) or image_conf.get("Cmd")
    env = _config_env(image_conf.get("Env"), opts)
    workdir = imageconfig.working_dir(image_config, opts.workdir)
    user = imageconfig.user_for(image_config, opts.user)
    stop_sig = opts.stop_signal or image_conf.get("StopSignal") or None
    if stop_sig:
        imageconfig.parse_signal(stop_sig)
    exposed = dict(image_conf.get("ExposedPorts") or {})
    for port in exposed_ports(opts.expose):
        exposed.setdefault(port, {})
    for port in exposed_ports([spec.rsplit(":", 1)[-1] for spec in opts.publish]):  # a range: each of its ports
        exposed.setdefault(port, {})
    labels = {**(image_conf.get("Labels") or {}), **opts.labels}

    attach = opts.attach if opts.attach is not None else (opts.interactive, True, True)
    hostname = opts.hostname or container_id[:12]
    if kind == "host":
        hostname = os.uname().nodename
    config_dict: dict[str, Any] = {
        "Hostname": hostname,
        "Domainname": opts.domainname,
        "User": user,
        "AttachStdin": attach[0],
        "AttachStdout": attach[1],
        "AttachStderr": attach[2],
        "ExposedPorts": exposed or None,
        "Tty": opts.tty,
        "OpenStdin": opts.interactive,
        "StdinOnce": opts.interactive if opts.stdin_once is None else opts.stdin_once,
        "Env": env,
        "Cmd": cmd,
        "Image": opts.image,
        "Volumes": {**(image_conf.get("Volumes") or {}), **{v: {} for v in opts.volumes if ":" not in v}} or None,
        "WorkingDir": workdir if workdir != "/" or opts.workdir else image_conf.get("WorkingDir", ""),
        "Entrypoint": entrypoint,
        "OnBuild": None,
        "Labels": labels,
    }
    if stop_sig:
        config_dict["StopSignal"] = stop_sig
    if opts.mac_address:
        config_dict["MacAddress"] = opts.mac_address
    _set_healthcheck(config_dict, opts.healthcheck, image_conf.get("Healthcheck"))
    if opts.stop_timeout is not None:
        config_dict["StopTimeout"] = opts.stop_timeout
    return config_dict, argv


def _config_env(image_env: list[str] | None, opts: RunOptions) -> list[str]:
    """Config.Env: the image's, then --env-file lines, then -e entries (a later key wins in place).

    Nothing is looked up in this process's environment: a `KEY` without `=` is the client's to
    resolve (the docker CLI does, and so does engine.cli.container_run), so one that arrives here is
    kept as it is, as Docker's Config.Env keeps it, and engine.sandbox.process never gives it to a
    process. The engine may be the Engine API service, whose own environment is no client's
    business."""
    from engine.image import imageconfig

    overrides: list[str] = []
    for file in opts.env_files:
        overrides += imageconfig.parse_env_file(file, {})
    overrides += opts.env
    for item in overrides:
        if not item.split("=", 1)[0]:
            raise InvalidArgument(f"invalid environment variable: {item}")
    return imageconfig.replace_or_append_env(list(image_env or []), overrides)


def create_warnings(opts: RunOptions) -> list[str]:
    """What Docker's create answers in `Warnings` for these options: settings this host cannot
    apply, which create dropped from the record (call after create)."""
    if opts.memory_swappiness in (None, -1):
        return []
    from engine.sandbox.cgroups import SWAPPINESS_DISCARDED, memory_swappiness_supported

    return [] if memory_swappiness_supported() else [SWAPPINESS_DISCARDED]


def _write_init_layer(rw: Path) -> None:
    """Docker's init layer: `/.dockerenv` (an empty file some programs test for), in a lower layer of
    the container's own (`<layer>/init`, stacked by the monitor's launch), so `diff`, `commit` and the
    container's writes never see it."""
    (rw / "init").mkdir(mode=0o755, exist_ok=True)
    (rw / "init" / ".dockerenv").touch(mode=0o755)


def _set_healthcheck(config_dict: dict[str, Any], flags: Any, image_check: Any) -> None:
    """Config.Healthcheck: the flags' on top of the image's HEALTHCHECK, as Docker merges them."""
    from engine.container.health import Healthcheck

    image = Healthcheck.from_docker(image_check, "the image's Healthcheck") if image_check else None
    merged = flags.over(image) if flags is not None else image
    if merged is not None:
        config_dict["Healthcheck"] = merged.to_docker()


def nano_cpus(cpus: float) -> int:
    """--cpus as HostConfig.NanoCpus; `inf`, `nan` or `1e400` are refused in one line (int() of them
    raised, an internal error)."""
    if cpus != cpus or abs(cpus) > 1e12:
        raise InvalidArgument(f"invalid --cpus {cpus}: Range of CPUs is from 0.01 to the CPUs available")
    return int(round(cpus * 1e9))


def _host_config(opts: RunOptions) -> dict[str, Any]:
    return {
        "Binds": [v for v in opts.volumes if ":" in v] or None,
        "Tmpfs": {spec.partition(":")[0]: spec.partition(":")[2] for spec in opts.tmpfs} or None,
        **({"Mounts": [m.to_docker() for m in opts.mounts]} if opts.mounts else {}),  # as given, as Docker keeps it
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
        "ShmSize": opts.shm_size or DEFAULTS.shm_size,
        "Memory": opts.memory or 0,
        "MemorySwap": opts.memory_swap or 0,
        "NanoCpus": nano_cpus(opts.cpus or 0),
        "CpuShares": opts.cpu_shares or 0,
        "CpusetCpus": opts.cpuset_cpus or "",
        "PidsLimit": opts.pids_limit,
        "BlkioWeight": opts.blkio_weight or 0,
        "IPAddress": opts.ip,
        **({"IPv6Address": opts.ip6} if opts.ip6 else {}),  # read by the network set-up at every start
        "SecurityOpt": list(opts.security_opt) or None,
        "NetworkAliases": opts.network_aliases or None,
        "Init": opts.init or None,
        "Ulimits": list(opts.ulimits) or None,
        "Devices": list(opts.devices) or None,
        "GroupAdd": list(opts.group_add) or None,
        "Sysctls": dict(opts.sysctls) or None,
        "ContainerIDFile": opts.cidfile,
        "VolumesFrom": list(opts.volumes_from) or None,
        "MemoryReservation": opts.memory_reservation or 0,
        "OomKillDisable": opts.oom_kill_disable,
        "CpuPeriod": opts.cpu_period or 0,
        "CpuQuota": opts.cpu_quota or 0,
        "IpcMode": opts.ipc or "private",
        "PidMode": opts.pid,
        "UTSMode": opts.uts,
        "MemorySwappiness": opts.memory_swappiness,
        "DeviceCgroupRules": list(opts.device_cgroup_rules) or None,
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
