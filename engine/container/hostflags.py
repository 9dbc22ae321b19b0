"""A record's sandbox flags at start: HostConfig's Init, Devices, DeviceCgroupRules, Sysctls, Ulimits,
GroupAdd, IpcMode, PidMode, UTSMode and a seccomp profile (SecurityOpt) turned into the values
engine.sandbox.process takes, and the device rules the cgroup adds to its allow-list.

Runs in the monitor's stage 1 (engine.container.monitor.launch), just before the spawn: devices
are looked up on the host and the containers joined by `container:NAME` modes are resolved now,
as runc does at start. Invariant: a flag the container cannot have (a device gone, a container to
join that is not running, no init on this host) is one clear error and the start changes nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.config import EngineConfig
from engine.container import state
from engine.errors import Conflict, DockuiError, InvalidArgument

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any

    from engine.sandbox.tunables import DeviceNode, Ulimit


@dataclass(frozen=True)
class SandboxFlags:
    """What launch adds to the process spec and the cgroup."""

    init: str | None = None  # the host's static init, bound at tunables.INIT_PATH
    devices: list[DeviceNode] = field(default_factory=list)
    device_rules: list[str] = field(default_factory=list)  # devices controller lines for them
    sysctls: dict[str, str] = field(default_factory=dict)
    ulimits: list[Ulimit] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    ipc: str = ""
    ipc_shm: Path | None = None  # the /dev/shm to bind (the host's, or the joined container's)
    pid_namespace: str = ""
    # HostConfig.CgroupnsMode, resolved at create; "" (a container created before dockui had the
    # flag) keeps the private namespace it always had.
    cgroupns: str = "private"
    seccomp_filter: bytes | None = None  # the compiled --security-opt seccomp=<profile>, if any
    uts: str = ""  # HostConfig.UTSMode: "" or "host"


KEYS = ("Init", "Devices", "Sysctls", "Ulimits", "GroupAdd", "IpcMode", "PidMode", "UTSMode", "DeviceCgroupRules")
PLAIN_IPC_MODES = ("", "private", "shareable")


def sandbox_flags(config: EngineConfig, host_config: dict[str, Any]) -> SandboxFlags:
    flags = _sandbox_flags(config, host_config)
    program = seccomp_filter(host_config)
    flags = flags if program is None else replace(flags, seccomp_filter=program)
    defaults = network_sysctls(host_config.get("NetworkMode") or "")
    return replace(flags, sysctls={**defaults, **flags.sysctls}) if defaults else flags


# Docker's sysctls for a container with a network namespace of its own (moby's WithCommonOptions,
# daemon/oci_linux.go): unprivileged ICMP echo sockets, and ports below 1024 without
# CAP_NET_BIND_SERVICE (which Docker's default capabilities grant anyway). They are the spec's, not
# the HostConfig's (inspect does not show them), and a --sysctl of the same key wins.
PRIVATE_NETWORK_SYSCTLS = {"net.ipv4.ping_group_range": "0 2147483647", "net.ipv4.ip_unprivileged_port_start": "0"}


def network_sysctls(network_mode: str) -> dict[str, str]:
    """The default sysctls of a container on `network_mode`: none on the host's or another
    container's namespace (moby's NetworkMode.IsPrivate), and only those this kernel has."""
    if network_mode == "host" or network_mode.startswith("container:"):
        return {}
    return {key: value for key, value in PRIVATE_NETWORK_SYSCTLS.items()
            if os.path.exists("/proc/sys/" + key.replace(".", "/"))}


def seccomp_filter(host_config: dict[str, Any]) -> bytes | None:
    """The container's `--security-opt seccomp=<profile>` compiled for its capabilities (the includes/
    excludes `caps` of the profile see its bounding set); None: Docker's default filter or none.
    The container's process, `exec` and health probes all install this one."""
    items = host_config.get("SecurityOpt") or ()
    if not any(item.startswith("seccomp=") for item in items):
        return None  # the common case: nothing parsed, engine.sandbox.seccomp not imported
    from engine.container.options import security_options
    from engine.sandbox import seccomp, security

    profile = security_options(items).seccomp_profile
    if profile is None:
        return None
    caps = security.capabilities_for(host_config.get("CapAdd") or (), host_config.get("CapDrop") or (),
                                     bool(host_config.get("Privileged")))
    return seccomp.profile_filter(profile, caps)


def _sandbox_flags(config: EngineConfig, host_config: dict[str, Any]) -> SandboxFlags:
    cgroupns = host_config.get("CgroupnsMode") or "private"
    if not any(host_config.get(key) for key in KEYS if key != "IpcMode") and \
            (host_config.get("IpcMode") or "") in PLAIN_IPC_MODES:
        return SandboxFlags(cgroupns=cgroupns)  # the common case: nothing to look up (and tunables not imported)
    from engine.container.options import check_device_cgroup_rule, check_uts_mode
    from engine.sandbox import tunables

    init = None
    if host_config.get("Init"):
        init = tunables.find_init()
        if init is None:
            raise DockuiError("--init: no static init on this host (install tini: docker-init or tini-static)")
    devices, rules = [], []
    for entry in host_config.get("Devices") or []:
        try:
            node = tunables.device_node(entry["PathOnHost"], entry["PathInContainer"])
        except (OSError, ValueError) as exc:
            raise InvalidArgument(f"error gathering device information while adding custom device "
                                  f"{entry['PathOnHost']!r}: {getattr(exc, 'strerror', None) or exc}") from None
        devices.append(node)
        rules.append(node.rule(entry.get("CgroupPermissions") or "rwm"))
    # --device-cgroup-rule: Docker's rules as written, after the devices' own (checked at create;
    # again here, as moby checks them when it builds the spec: a record is a file).
    rules += [check_device_cgroup_rule(rule) for rule in host_config.get("DeviceCgroupRules") or []]
    ulimits = [tunables.ulimit(u["Name"], u["Soft"], u["Hard"]) for u in host_config.get("Ulimits") or []]
    ipc, shm = _ipc(config, host_config.get("IpcMode") or "")
    return SandboxFlags(init, devices, rules, dict(host_config.get("Sysctls") or {}), ulimits,
                        list(host_config.get("GroupAdd") or []), ipc, shm,
                        _pid(config, host_config.get("PidMode") or ""), cgroupns,
                        uts=check_uts_mode(host_config.get("UTSMode") or ""))


def _running_pid(config: EngineConfig, flag: str, ref: str) -> tuple[int, dict[str, Any]]:
    target = state.find_container(config, ref)
    if target.status not in ("running", "paused") or not state.process_alive(target.pid, target.pid_start):
        raise Conflict(f"{flag} container:{ref}: cannot join container {target.id[:12]}: it is not running")
    return target.pid, target.host_config


def _ipc(config: EngineConfig, mode: str) -> tuple[str, Path | None]:
    if mode == "host":
        return "host", Path("/dev/shm")
    if mode.startswith("container:"):
        ref = mode.split(":", 1)[1]
        pid, host_config = _running_pid(config, "--ipc", ref)
        if (host_config.get("IpcMode") or "private") not in ("shareable", "host"):
            raise Conflict(f"--ipc container:{ref}: non-shareable IPC (the container must run with --ipc shareable)")
        # The IPC namespace (SysV shm, semaphores, queues, POSIX mqueues) is shared; the other
        # container's /dev/shm tmpfs lives in its mount namespace only and is not (Docker keeps a
        # shareable container's /dev/shm on the host to bind it: not done here).
        return f"/proc/{pid}/ns/ipc", None
    return "", None


def _pid(config: EngineConfig, mode: str) -> str:
    if mode == "host":
        return "host"
    if mode.startswith("container:"):
        pid, _ = _running_pid(config, "--pid", mode.split(":", 1)[1])
        return f"/proc/{pid}/ns/pid"
    return ""


def device_allow(flags: SandboxFlags) -> list[str] | None:
    """The cgroup's allow-list: Docker's default rules plus the devices given (None: the default)."""
    if not flags.device_rules:
        return None
    from engine.sandbox.cgroups import default_device_rules

    return [*default_device_rules(), *flags.device_rules]


def apply(spec: Any, flags: SandboxFlags) -> None:
    """Set the flags' values on an engine.sandbox.process.ProcessSpec."""
    from engine.sandbox.rootfs import BindMount

    if flags.init:
        from engine.sandbox.tunables import INIT_PATH  # (only then: see sandbox_flags)

        spec.argv = [INIT_PATH, "--", *spec.argv]
        spec.mounts.append(BindMount(Path(flags.init), INIT_PATH, True))
    if flags.ipc_shm is not None:
        spec.mounts.append(BindMount(flags.ipc_shm, "/dev/shm", False))
    spec.devices = list(flags.devices)
    spec.sysctls = dict(flags.sysctls)
    spec.ulimits = list(flags.ulimits)
    spec.additional_groups = [*spec.additional_groups, *flags.groups]
    spec.ipc = flags.ipc
    spec.pid_namespace = flags.pid_namespace
    spec.seccomp_filter = flags.seccomp_filter
    spec.cgroupns = flags.cgroupns
    spec.uts = flags.uts
