"""Docker's container create body (Config, HostConfig, NetworkingConfig) -> the engine's RunOptions.

Every field dockui supports is mapped; a field it does not support is accepted only at its default
(null, "", 0, false, [], {} or Docker's named default) and otherwise refused with a 400 that names
it, so nothing a client asked for is silently dropped. Invariant: translation only; it creates
nothing (runtime.create does, after this succeeded), and a value of the wrong JSON type is a 400.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from engine.container.health import Healthcheck
from engine.container.mountspec import BindOptions, MountSpec, TmpfsOptions, VolumeDriver, VolumeOptions
from engine.container.options import RunOptions
from engine.errors import InvalidArgument
from engine.service.fields import (
    check_int64,
    console_size,
    json_bool,
    json_dict,
    json_int,
    json_str,
    json_strs,
)

# Fields the docker CLI and docker-py send that concern the client only, or that dockui's behaviour
# already matches at any value.
IGNORED_CONFIG = {"AttachStdin", "AttachStdout", "AttachStderr", "StdinOnce", "OnBuild", "ArgsEscaped", "Shell",
                  "Image", "Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Labels", "Hostname", "Tty", "OpenStdin",
                  "StopSignal", "StopTimeout", "Volumes", "ExposedPorts", "NetworkDisabled", "HostConfig",
                  "NetworkingConfig", "Domainname", "Healthcheck", "MacAddress"}
NAMED_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "IpcMode": ("", "private", "shareable"),
    "PidMode": ("", "private"),
    "UsernsMode": ("", "host"),
    "Isolation": ("", "default"),
    "Runtime": ("", "runc", "dockui"),
    "ConsoleSize": (None, [0, 0]),
    "OomScoreAdj": (None, 0),
    "ContainerIDFile": (None, ""),  # the client writes it
}
# Accepted only at a named default (NAMED_DEFAULTS) and reported by inspect as the client spelt it.
RECORDED_AS_GIVEN = ("Isolation", "Runtime", "UsernsMode")
ENDPOINT_DRIVER_OPTS = "EndpointDriverOpts"  # HostConfig key: the primary endpoint's DriverOpts, for inspect
# The log drivers Docker's engine ships (dockui writes json-file only: the others are refused by
# the engine with its own words); any other name is unknown to Docker too.
DOCKER_LOG_DRIVERS = {"json-file", "local", "none", "syslog", "journald", "gelf", "fluentd", "awslogs", "splunk",
                      "etwlogs", "gcplogs", "logentries"}
HOST_MAPPED = {"Binds", "Mounts", "Tmpfs", "LogConfig", "NetworkMode", "PortBindings", "PublishAllPorts", "RestartPolicy",
               "AutoRemove", "CapAdd", "CapDrop", "Privileged", "ReadonlyRootfs", "Dns", "DnsOptions", "DnsSearch",
               "ExtraHosts", "Links", "Memory", "MemorySwap", "NanoCpus", "CpuShares", "CpusetCpus", "PidsLimit",
               "BlkioWeight", "ShmSize", "CpuQuota", "CpuPeriod", "ConsoleSize", "ContainerIDFile",
               "SecurityOpt", "Init", "Ulimits", "Devices", "GroupAdd", "Sysctls", "VolumesFrom",
               "MemoryReservation", "OomKillDisable", "IpcMode", "PidMode", "CgroupnsMode", "UTSMode",
               "MemorySwappiness", "DeviceCgroupRules", "MaskedPaths", "ReadonlyPaths", "Annotations"}


def _default(value: Any) -> bool:
    return value in (None, "", 0, False, [], {})


def _refuse_unsupported(section: str, body: dict[str, Any], supported: set[str]) -> None:
    for key, value in body.items():
        if key in supported:
            continue
        if key in NAMED_DEFAULTS and value in NAMED_DEFAULTS[key]:
            continue
        if _default(value):
            continue
        raise InvalidArgument(f"{section}.{key} is not supported by dockui (got {json.dumps(value)})")


@dataclass(frozen=True)
class CreateRequest:
    """A create body, translated: the engine's RunOptions and the primary network's aliases."""

    options: RunOptions
    aliases: tuple[str, ...] = ()
    recorded: tuple[tuple[str, Any], ...] = ()  # HostConfig values kept only for inspect to show


def create_request(body: Any, name: str | None, platform: str | None) -> CreateRequest:
    """The engine's view of a create request, or InvalidArgument naming the first field refused."""
    if not isinstance(body, dict):
        raise InvalidArgument("the create body must be a JSON object")
    check_int64("ContainerConfig", body)
    host = json_dict("", body, "HostConfig")
    net = json_dict("", body, "NetworkingConfig")
    _refuse_unsupported("Config", body, IGNORED_CONFIG)
    _refuse_unsupported("HostConfig", host, HOST_MAPPED)
    image = json_str("Config", body, "Image")
    if not image:
        raise InvalidArgument("Config.Image is required")
    opts = RunOptions(image=image, name=name or None, platform=platform or None)
    _apply_config(opts, body)
    _apply_host(opts, host, body)
    aliases = _apply_networking(opts, net)
    recorded = tuple((key, host[key]) for key in RECORDED_AS_GIVEN if isinstance(host.get(key), str) and host[key])
    size = console_size(host)
    if size is not None:
        recorded += (("ConsoleSize", list(size)),)  # the tty's first size (start reads it back), as inspect shows it
    recorded += _recorded_paths_and_annotations(host)
    driver_opts = _endpoint_driver_opts(opts, net)
    if driver_opts:
        recorded += ((ENDPOINT_DRIVER_OPTS, driver_opts),)
    from engine.service.networks import endpoint_links

    recorded += endpoint_links(opts.network, net)
    return CreateRequest(opts, aliases, recorded)


def _endpoint_driver_opts(opts: RunOptions, net: dict[str, Any]) -> dict[str, str]:
    """The primary endpoint's DriverOpts: the bridge driver acts on none a client sends (as Docker's,
    which keeps and shows them), so they are kept for inspect."""
    for network, endpoint in json_dict("NetworkingConfig", net, "EndpointsConfig").items():
        if network in (opts.network, "default") and isinstance(endpoint, dict):
            found = json_dict(f"NetworkingConfig.EndpointsConfig[{network}]", endpoint, "DriverOpts")
            if not all(isinstance(v, str) for v in found.values()):
                raise InvalidArgument(f"NetworkingConfig.EndpointsConfig[{network}].DriverOpts: expected string values")
            return dict(found)
    return {}


def _apply_config(opts: RunOptions, body: dict[str, Any]) -> None:
    command = json_strs("Config", body, "Cmd")
    entrypoint = body.get("Entrypoint")
    if entrypoint is not None:
        parts = json_strs("Config", body, "Entrypoint")
        if parts == [""] and not command:  # the docker CLI's `--entrypoint ''`: the image's Cmd goes too
            raise InvalidArgument("No command specified")
        if parts:
            opts.entrypoint = parts[0]
            command = parts[1:] + command
        else:
            opts.entrypoint = ""  # Docker's `--entrypoint ""`: the image's entrypoint reset
    opts.command = command
    # `KEY` without `=` was the client's to resolve (the docker CLI does): it is kept as given, as
    # Docker's Config.Env keeps it; the engine never looks it up in this service's own environment
    # and no process gets it (engine.container.create, engine.sandbox.process).
    opts.env = json_strs("Config", body, "Env")
    opts.workdir = json_str("Config", body, "WorkingDir") or None
    opts.user = json_str("Config", body, "User") or None
    labels = json_dict("Config", body, "Labels")
    if not all(isinstance(v, str) for v in labels.values()):
        raise InvalidArgument("Config.Labels: expected string values")
    opts.labels = dict(labels)
    opts.hostname = json_str("Config", body, "Hostname") or None
    opts.domainname = json_str("Config", body, "Domainname") or ""
    opts.tty = json_bool("Config", body, "Tty")
    opts.interactive = json_bool("Config", body, "OpenStdin")
    opts.stdin_once = json_bool("Config", body, "StdinOnce")  # kept as sent: the attach relay honours it
    opts.attach = (json_bool("Config", body, "AttachStdin"), json_bool("Config", body, "AttachStdout"),
                   json_bool("Config", body, "AttachStderr"))  # kept as sent, as moby's Config
    opts.stop_signal = json_str("Config", body, "StopSignal") or None
    opts.stop_timeout = json_int("Config", body, "StopTimeout")
    opts.volumes = list(json_dict("Config", body, "Volumes"))  # anonymous volumes (`-v /path`)
    opts.healthcheck = Healthcheck.from_docker(body.get("Healthcheck"))  # over the image's, as the flags
    opts.mac_address = json_str("Config", body, "MacAddress") or ""
    if json_bool("Config", body, "NetworkDisabled"):
        opts.network = "none"


def _apply_host(opts: RunOptions, host: dict[str, Any], body: dict[str, Any]) -> None:
    section = "HostConfig"
    tmpfs = json_dict(section, host, "Tmpfs")
    # Config.Volumes yields to a bind, mount or tmpfs at the same place, as moby's (moby#40446)
    covered = _bind_targets(host) | set(tmpfs) | {m.get("Target") for m in _list(section, host, "Mounts") if isinstance(m, dict)}
    opts.volumes = json_strs(section, host, "Binds") + [v for v in opts.volumes if v not in covered]
    opts.mounts = [_mount(m) for m in _list(section, host, "Mounts")]
    opts.tmpfs = [f"{dest}:{options}" if options else dest for dest, options in tmpfs.items()]
    log = json_dict(section, host, "LogConfig")
    opts.log_driver = json_str("HostConfig.LogConfig", log, "Type") or "json-file"
    if opts.log_driver not in DOCKER_LOG_DRIVERS:  # Docker's words for a driver no daemon has
        raise InvalidArgument(f"logger: no log driver named '{opts.log_driver}' is registered")
    opts.log_opts = [f"{k}={v}" for k, v in json_dict("HostConfig.LogConfig", log, "Config").items()]
    mode = json_str(section, host, "NetworkMode") or "bridge"
    if opts.network != "none":
        opts.network = "bridge" if mode == "default" else mode
    opts.publish = _publish_specs(json_dict(section, host, "PortBindings"))
    opts.expose = list(json_dict("Config", body, "ExposedPorts"))
    opts.publish_all = json_bool(section, host, "PublishAllPorts")
    policy = json_dict(section, host, "RestartPolicy")
    name = json_str("HostConfig.RestartPolicy", policy, "Name") or "no"
    retries = json_int("HostConfig.RestartPolicy", policy, "MaximumRetryCount") or 0
    opts.restart = f"{name}:{retries}" if name == "on-failure" and retries else name
    opts.auto_remove = json_bool(section, host, "AutoRemove")
    opts.cap_add = json_strs(section, host, "CapAdd")
    opts.cap_drop = json_strs(section, host, "CapDrop")
    opts.privileged = json_bool(section, host, "Privileged")
    opts.security_opt = json_strs(section, host, "SecurityOpt")
    opts.read_only = json_bool(section, host, "ReadonlyRootfs")
    opts.dns = json_strs(section, host, "Dns")
    opts.dns_options = json_strs(section, host, "DnsOptions")
    opts.dns_search = json_strs(section, host, "DnsSearch")
    opts.add_hosts = json_strs(section, host, "ExtraHosts")
    opts.links = json_strs(section, host, "Links")
    opts.memory = json_int(section, host, "Memory") or None
    swap = json_int(section, host, "MemorySwap")
    opts.memory_swap = swap if swap else None
    nano = json_int(section, host, "NanoCpus") or 0
    opts.cpus = nano / 1e9 if nano else None
    opts.cpu_quota = json_int(section, host, "CpuQuota") or None  # with NanoCpus: refused at create
    opts.cpu_period = json_int(section, host, "CpuPeriod") or None
    opts.cpu_shares = json_int(section, host, "CpuShares") or None
    opts.cpuset_cpus = json_str(section, host, "CpusetCpus") or None
    pids = json_int(section, host, "PidsLimit")
    opts.pids_limit = pids if pids and pids > 0 else None
    opts.blkio_weight = json_int(section, host, "BlkioWeight") or None
    opts.shm_size = json_int(section, host, "ShmSize") or None
    _apply_sandbox(opts, host)


def _apply_sandbox(opts: RunOptions, host: dict[str, Any]) -> None:
    """Init, Ulimits, Devices, GroupAdd, Sysctls, VolumesFrom, the memory soft limit, swappiness and
    OOM switch, IpcMode, PidMode, UTSMode, CgroupnsMode and DeviceCgroupRules: the same values the
    run flags give (engine.container.options checks them, in the daemon's words)."""
    from engine.container.options import parse_device, parse_ulimit

    section = "HostConfig"
    opts.init = json_bool(section, host, "Init")
    opts.ulimits = [parse_ulimit(f"{u.get('Name')}={json_int(section, u, 'Soft') or 0}:{json_int(section, u, 'Hard') or 0}")
                    for u in _objects(section, host, "Ulimits")]
    opts.devices = [parse_device(":".join(str(d.get(k) or "") for k in ("PathOnHost", "PathInContainer"))
                                 + f":{d.get('CgroupPermissions') or 'rwm'}") for d in _objects(section, host, "Devices")]
    opts.group_add = json_strs(section, host, "GroupAdd")
    sysctls = json_dict(section, host, "Sysctls")
    if not all(isinstance(v, str) for v in sysctls.values()):
        raise InvalidArgument("HostConfig.Sysctls: expected string values")
    opts.sysctls = dict(sysctls)
    opts.volumes_from = json_strs(section, host, "VolumesFrom")
    opts.memory_reservation = json_int(section, host, "MemoryReservation") or None
    opts.oom_kill_disable = json_bool(section, host, "OomKillDisable")
    opts.ipc = json_str(section, host, "IpcMode") or ""
    opts.pid = json_str(section, host, "PidMode") or ""
    _check_mode("IPC", opts.ipc, ("", "none", "private", "shareable", "host"))
    _check_mode("PID", opts.pid, ("", "private", "host"))
    opts.cgroupns = json_str(section, host, "CgroupnsMode") or ""
    opts.uts = json_str(section, host, "UTSMode") or ""
    opts.memory_swappiness = json_int(section, host, "MemorySwappiness")  # None and -1: unset
    opts.device_cgroup_rules = json_strs(section, host, "DeviceCgroupRules")
    if opts.cgroupns not in ("", "host", "private"):
        raise InvalidArgument(f'{section}.CgroupnsMode: invalid cgroup namespace mode: {json.dumps(opts.cgroupns)} '
                              '(use "host" or "private")')


def _recorded_paths_and_annotations(host: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """MaskedPaths/ReadonlyPaths as given ([] too: nothing masked; the sandbox reads them at start)
    and Annotations (OCI runtime metadata: kept for inspect, no runtime reads them here)."""
    recorded: tuple[tuple[str, Any], ...] = ()
    for key in ("MaskedPaths", "ReadonlyPaths"):
        if host.get(key) is not None:
            recorded += ((key, json_strs("HostConfig", host, key)),)
    annotations = json_dict("HostConfig", host, "Annotations")
    if not all(isinstance(v, str) for v in annotations.values()):
        raise InvalidArgument("HostConfig.Annotations: expected string values")
    if "" in annotations:
        raise InvalidArgument("invalid Annotations: the empty string is not permitted as an annotation key")
    if annotations:
        recorded += (("Annotations", dict(annotations)),)
    return recorded


def _check_mode(kind: str, mode: str, plain: tuple[str, ...]) -> None:
    """moby's IpcMode/PidMode Valid(): a plain mode or `container:NAME`, else `invalid IPC mode: X`."""
    if mode in plain or (mode.startswith("container:") and mode.removeprefix("container:")):
        return
    raise InvalidArgument(f"invalid {kind} mode: {mode}")


def _list(section: str, body: dict[str, Any], key: str) -> list[Any]:
    items = body.get(key) or []
    if not isinstance(items, list):
        raise InvalidArgument(f"{section}.{key}: expected a list")
    return items


def _objects(section: str, body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = body.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise InvalidArgument(f"{section}.{key}: expected a list of objects")
    return items


def _bind_targets(host: dict[str, Any]) -> set[str]:
    return {b.split(":")[1] for b in host.get("Binds") or [] if isinstance(b, str) and b.count(":") >= 1}


def _publish_specs(bindings: dict[str, Any]) -> list[str]:
    specs = []
    for port, hosts in bindings.items():
        if not isinstance(port, str):
            raise InvalidArgument("HostConfig.PortBindings: expected port keys like 80/tcp")
        number, _, proto = port.partition("/")
        target = number if proto in ("", "tcp") else f"{number}/{proto}"
        for binding in hosts or [{}]:
            if not isinstance(binding, dict):
                raise InvalidArgument(f"HostConfig.PortBindings[{port}]: expected objects")
            host_ip = binding.get("HostIp") or ""
            host_port = binding.get("HostPort") or ""
            if host_ip:
                specs.append(f"{host_ip}:{host_port}:{target}")
            elif host_port:
                specs.append(f"{host_port}:{target}")
            else:
                specs.append(target)
    return specs


def _mount(mount: Any) -> MountSpec:
    """A Mounts entry as Docker's mount.Mount (kept as given in the record's HostConfig); a value of
    the wrong JSON type is a 400, a field dockui cannot act on is refused by name. The mount's own
    rules (types, paths, propagation, the volume's options) are the engine's (engine.container.mounts)."""
    where = "HostConfig.Mounts"
    if not isinstance(mount, dict):
        raise InvalidArgument(f"{where}: expected objects")
    _refuse_unsupported(where, mount, {"Type", "Source", "Target", "ReadOnly", "Consistency", "BindOptions",
                                       "VolumeOptions", "TmpfsOptions"})
    bind = _options(mount, "BindOptions")
    volume = _options(mount, "VolumeOptions")
    tmpfs = _options(mount, "TmpfsOptions")
    return MountSpec(
        type=json_str(where, mount, "Type") or "",
        source=json_str(where, mount, "Source") or "",
        target=json_str(where, mount, "Target") or "",
        read_only=json_bool(where, mount, "ReadOnly"),
        consistency=json_str(where, mount, "Consistency") or "",
        bind=None if bind is None else _bind_options(bind),
        volume=None if volume is None else _volume_options(volume),
        tmpfs=None if tmpfs is None else _tmpfs_options(tmpfs),
    )


def _options(mount: dict[str, Any], key: str) -> dict[str, Any] | None:
    """An options object, or None when absent or null (Go's nil pointer: not shown by inspect)."""
    return None if mount.get(key) is None else json_dict("HostConfig.Mounts", mount, key)


def _bind_options(body: dict[str, Any]) -> BindOptions:
    where = "HostConfig.Mounts.BindOptions"
    _refuse_unsupported(where, body, {"Propagation", "NonRecursive", "CreateMountpoint", "ReadOnlyNonRecursive",
                                      "ReadOnlyForceRecursive"})
    return BindOptions(
        propagation=json_str(where, body, "Propagation") or "",
        non_recursive=json_bool(where, body, "NonRecursive"),
        create_mountpoint=json_bool(where, body, "CreateMountpoint"),
        read_only_non_recursive=json_bool(where, body, "ReadOnlyNonRecursive"),
        read_only_force_recursive=json_bool(where, body, "ReadOnlyForceRecursive"),
    )


def _volume_options(body: dict[str, Any]) -> VolumeOptions:
    where = "HostConfig.Mounts.VolumeOptions"
    _refuse_unsupported(where, body, {"NoCopy", "Labels", "Subpath", "DriverConfig"})
    driver = body.get("DriverConfig")
    if driver is not None:
        _refuse_unsupported(f"{where}.DriverConfig", json_dict(where, body, "DriverConfig"), {"Name", "Options"})
    return VolumeOptions(
        no_copy=json_bool(where, body, "NoCopy"),
        labels=_string_pairs(where, body, "Labels"),
        subpath=json_str(where, body, "Subpath") or "",
        driver=None if driver is None else VolumeDriver(
            name=json_str(f"{where}.DriverConfig", driver, "Name") or "",
            options=_string_pairs(f"{where}.DriverConfig", driver, "Options")),
    )


def _tmpfs_options(body: dict[str, Any]) -> TmpfsOptions:
    where = "HostConfig.Mounts.TmpfsOptions"
    _refuse_unsupported(where, body, {"SizeBytes", "Mode", "Options"})
    options = body.get("Options") or []
    if not isinstance(options, list) or not all(isinstance(o, list) and all(isinstance(w, str) for w in o)
                                                for o in options):
        raise InvalidArgument(f"{where}.Options: expected a list of lists of strings")
    return TmpfsOptions(size_bytes=json_int(where, body, "SizeBytes") or 0, mode=json_int(where, body, "Mode") or 0,
                        options=tuple(tuple(o) for o in options))


def _string_pairs(section: str, body: dict[str, Any], key: str) -> tuple[tuple[str, str], ...] | None:
    """A JSON map of strings (None when absent or null)."""
    if body.get(key) is None:
        return None
    found = json_dict(section, body, key)
    if not all(isinstance(v, str) for v in found.values()):
        raise InvalidArgument(f"{section}.{key}: expected string values")
    return tuple(found.items())


def _apply_networking(opts: RunOptions, net: dict[str, Any]) -> tuple[str, ...]:
    """The primary network's address and aliases (the only network a create configures)."""
    aliases: list[str] = []
    endpoints = json_dict("NetworkingConfig", net, "EndpointsConfig")
    for network, endpoint in endpoints.items():
        if not isinstance(endpoint, dict):
            raise InvalidArgument(f"NetworkingConfig.EndpointsConfig[{network}]: expected an object")
        if network not in (opts.network, "default") and not (network == "bridge" and opts.network == "bridge"):
            raise InvalidArgument(f"NetworkingConfig: only the network of HostConfig.NetworkMode can be configured "
                                  f"at create (got {network}); use POST /networks/{{id}}/connect")
        ipam = json_dict(f"NetworkingConfig.EndpointsConfig[{network}]", endpoint, "IPAMConfig")
        if ipam.get("IPv4Address"):
            opts.ip = ipam["IPv4Address"]
        if ipam.get("IPv6Address"):
            opts.ip6 = json_str(f"NetworkingConfig.EndpointsConfig[{network}].IPAMConfig", ipam, "IPv6Address")
        for key, value in ipam.items():  # LinkLocalIPs: engine.service.networks.endpoint_links keeps them
            if key not in ("IPv4Address", "IPv6Address", "LinkLocalIPs") and not _default(value):
                raise InvalidArgument(f"NetworkingConfig.EndpointsConfig[{network}].IPAMConfig.{key} is not supported by dockui")
        if endpoint.get("MacAddress"):  # API 1.44+ sends --mac-address here, older ones in Config
            opts.mac_address = json_str(f"NetworkingConfig.EndpointsConfig[{network}]", endpoint, "MacAddress") or ""
        aliases += json_strs(f"NetworkingConfig.EndpointsConfig[{network}]", endpoint, "Aliases")
        for key, value in endpoint.items():
            if key in ("IPAMConfig", "Aliases", "NetworkID", "EndpointID", "Gateway", "IPAddress", "IPPrefixLen",
                       "IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "MacAddress", "DriverOpts",
                       "Links", "DNSNames"):
                continue
            if not _default(value):
                raise InvalidArgument(f"NetworkingConfig.EndpointsConfig[{network}].{key} is not supported by dockui")
    if aliases and opts.network in ("bridge", "default", "host", "none"):
        raise InvalidArgument("network-scoped aliases are only supported for user-defined networks")
    return tuple(dict.fromkeys(aliases))
