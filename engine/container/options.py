"""What `docker create`/`run` flags become before anything is written: `RunOptions`, the restart policy,
the cgroup resources of a HostConfig, the network kind of a NetworkMode.

Pure values and Docker's validation rules; nothing here touches the disk or the kernel, so the CLI,
the API and the monitor's stages share these definitions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.config import DEFAULTS
from engine.errors import InvalidArgument

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from engine.container.health import Healthcheck
    from engine.container.mountspec import MountSpec


RESTART_POLICIES = ("no", "on-failure", "always", "unless-stopped")
DEFAULT_STOP_TIMEOUT = DEFAULTS.stop_timeout


class FlagError(InvalidArgument):
    """A flag value the client refuses before it asks the engine anything: what a docker CLI flag's
    own validator or its `parse()` (cli/command/container/opts.go) refuses. `docker create` wraps
    these alone in a StatusError 125; the engine's refusals (no such image, name in use, ...) it
    returns plainly, status 1 (engine.cli.error_status)."""


@dataclass
class RunOptions:
    """`docker create`/`run` flags, already parsed into values (sizes in bytes)."""

    image: str
    command: list[str] = field(default_factory=list)
    name: str | None = None
    hostname: str | None = None
    domainname: str = ""  # Config.Domainname: the NIS domain name of its UTS namespace
    env: list[str] = field(default_factory=list)
    env_files: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    entrypoint: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    mounts: list[MountSpec] = field(default_factory=list)  # --mount / HostConfig.Mounts (mount.Mount)
    tmpfs: list[str] = field(default_factory=list)  # --tmpfs DEST[:OPTIONS]
    legacy_read_only_binds: bool = False  # API < 1.44: a read-only bind is read-only at its top only (container.mounts)
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
    ip6: str | None = None  # --ip6: the IPv6 address on an IPv6 user network
    network_aliases: list[str] = field(default_factory=list)  # --network-alias (user networks)
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
    stdin_once: bool | None = None  # Config.StdinOnce (None: as `interactive`; `run -d -i` and API clients say)
    # Config.AttachStdin/Stdout/Stderr, recorded as the client sent them (None: the docker CLI's create
    # without -a: stdin as `interactive`, stdout and stderr; `run -d` and API clients say)
    attach: tuple[bool, bool, bool] | None = None
    auto_remove: bool = False
    security_opt: list[str] = field(default_factory=list)  # --security-opt values (container.options.security_options)
    healthcheck: Healthcheck | None = None  # from --health-*/--no-healthcheck (over the image's)
    init: bool = False  # --init: Docker's tini as PID 1 (engine.sandbox.init)
    ulimits: list[dict[str, Any]] = field(default_factory=list)  # HostConfig.Ulimits (parse_ulimit)
    devices: list[dict[str, str]] = field(default_factory=list)  # HostConfig.Devices (parse_device)
    group_add: list[str] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    cidfile: str = ""
    volumes_from: list[str] = field(default_factory=list)  # CONTAINER[:ro|rw]
    expose: list[str] = field(default_factory=list)  # PORT[/PROTO] or a range, into Config.ExposedPorts
    memory_reservation: int | None = None
    oom_kill_disable: bool = False
    cpu_period: int | None = None
    cpu_quota: int | None = None
    ipc: str = ""  # "", private, shareable, host, container:NAME
    pid: str = ""  # "", host, container:NAME
    cgroupns: str = ""  # "", host, private ("": Docker's default, engine.sandbox.cgroups.cgroupns_mode)
    mac_address: str = ""  # eth0's on a bridge network (parse_mac_address)
    uts: str = ""  # "" (a UTS namespace of its own) or "host" (check_uts_mode)
    memory_swappiness: int | None = None  # 0..100; None or -1: the kernel's (check_memory_swappiness)
    device_cgroup_rules: list[str] = field(default_factory=list)  # "c 1:3 mr" (check_device_cgroup_rule)


def resolve_client_env(items: list[str], environ: Mapping[str, str]) -> list[str]:
    """`-e` values as the docker CLI resolves them on the client (dockui's CLI and the TUI are
    clients): `KEY` takes KEY from the client's `environ` when set, else it is kept as `KEY` (the
    container's Config.Env keeps it, its process does not get it). The engine never looks one up."""
    resolved = []
    for item in items:
        key, sep, _ = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable: {item}")
        resolved.append(item if sep or key not in environ else f"{key}={environ[key]}")
    return resolved


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
    return {"Name": name, "MaximumRetryCount": retries}  # "no" spelled out, as Docker's inspect shows it


@dataclass(frozen=True)
class SecurityOptions:
    """HostConfig.SecurityOpt, read: no_new_privs only when asked for (Docker's default: setuid
    binaries work for a non-root user), Docker's seccomp filter unless `seccomp=unconfined`, or the
    profile given inline as `seccomp=<JSON>` (checked here; compiled per process start by
    engine.sandbox.seccomp). SELinux and AppArmor labels are accepted and have nothing to apply to
    (dockui sets neither)."""

    no_new_privs: bool = False
    seccomp: bool = True
    seccomp_profile: str | None = None  # the profile's JSON text (None: Docker's default filter)


def security_options(items: list[str] | tuple[str, ...]) -> SecurityOptions:
    """Docker's `--security-opt` values (KEY=VALUE or the older KEY:VALUE); InvalidArgument for others."""
    no_new_privs, seccomp, profile = False, True, None
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            key, sep, value = item.partition(":")
        if key == "no-new-privileges":
            if value not in ("", "true", "false"):
                raise InvalidArgument(f"invalid --security-opt: {item!r} (no-new-privileges takes true or false)")
            no_new_privs = value != "false"
        elif key == "seccomp" and value in ("unconfined", "builtin"):
            seccomp, profile = value == "builtin", None
        elif key == "seccomp" and value:
            from engine.sandbox.seccomp import check_profile  # only a container with a profile pays for it

            seccomp, profile = check_profile(value) is not None, value  # `{}`: no filter, as Docker reads it
        elif key in ("label", "apparmor") and value:
            continue
        else:
            raise InvalidArgument(f'Invalid --security-opt: "{item}"')
    return SecurityOptions(no_new_privs, seccomp, profile if seccomp else None)


def inline_seccomp_profiles(items: list[str]) -> list[str]:
    """The docker CLI's side of `--security-opt seccomp=<file>`: the file's JSON, compacted, replaces
    its path (the record and the Engine API carry the profile itself, as Docker's do)."""
    if not any(_names_profile_file(item) for item in items):
        return list(items)
    from engine.sandbox.seccomp import read_profile_file

    return [f"seccomp={read_profile_file(item[8:])}" if _names_profile_file(item) else item for item in items]


def _names_profile_file(item: str) -> bool:
    return item.startswith(("seccomp=", "seccomp:")) and item[8:] not in ("", "unconfined", "builtin")


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
        memory_reservation=host_config.get("MemoryReservation") or None,
        oom_kill_disable=bool(host_config.get("OomKillDisable")),
        cpu_period=host_config.get("CpuPeriod") or None,
        cpu_quota=host_config.get("CpuQuota") or None,
        memory_swappiness=host_config.get("MemorySwappiness"),
    )


# ------------------------------------------------------------------------------------------ sandbox flags
# --ulimit, --device, --sysctl, --ipc, --pid, --expose: Docker's syntax and rules, as HostConfig
# values (the monitor's launch turns them into the sandbox's spec).

ULIMIT_NAMES = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
                "rss", "rtprio", "rttime", "sigpending", "stack", "as")


def parse_ulimit(text: str) -> dict[str, Any]:
    """`NAME=SOFT[:HARD]` -> HostConfig.Ulimits' {"Name", "Soft", "Hard"} (-1: unlimited)."""
    name, sep, values = text.partition("=")
    if not sep or name not in ULIMIT_NAMES:
        raise InvalidArgument(f"invalid ulimit argument: {text!r} (NAME=SOFT[:HARD], NAME one of {', '.join(ULIMIT_NAMES)})")
    soft_text, _, hard_text = values.partition(":")
    try:
        soft = int(soft_text)
        hard = int(hard_text) if hard_text else soft
    except ValueError:
        raise InvalidArgument(f"invalid ulimit argument: {text!r}: limits are integers") from None
    if soft != -1 and hard != -1 and soft > hard:
        raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return {"Name": name, "Soft": soft, "Hard": hard}


def check_ulimits(ulimits: list[dict[str, Any]]) -> None:
    """A hard limit above the engine's own cannot be set (that needs CAP_SYS_RESOURCE, which
    root here may lack): refused now, in words, rather than at start."""
    import resource

    holds = _holds_capability(24)  # CAP_SYS_RESOURCE
    for item in ulimits:
        name, hard = item["Name"], item["Hard"]
        current = resource.getrlimit(getattr(resource, f"RLIMIT_{name.upper()}"))[1]
        wanted = resource.RLIM_INFINITY if hard == -1 else hard
        above = current != resource.RLIM_INFINITY and (wanted == resource.RLIM_INFINITY or wanted > current)
        if above and not holds:
            shown = "unlimited" if current == resource.RLIM_INFINITY else str(current)
            raise InvalidArgument(f"--ulimit {name}: hard limit {'unlimited' if hard == -1 else hard} is above the "
                                  f"engine's own ({shown}), and raising it needs CAP_SYS_RESOURCE")


def _holds_capability(number: int) -> bool:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> number & 1)
    return False


def parse_device(text: str) -> dict[str, str]:
    """`--device HOST[:CONTAINER][:PERMISSIONS]` -> HostConfig.Devices' entry (Docker's rules)."""
    parts = text.split(":")
    permissions = "rwm"
    if len(parts) > 1 and parts[-1] and set(parts[-1]) <= set("rwm") and not parts[-1].startswith("/"):
        permissions = parts.pop()
    if len(parts) > 2 or not parts[0]:
        raise InvalidArgument(f"invalid device specification: {text}")
    host = parts[0]
    container = parts[1] if len(parts) == 2 and parts[1] else host
    if not host.startswith("/") or not container.startswith("/"):
        raise InvalidArgument(f"invalid device specification: {text}: paths must be absolute")
    return {"PathOnHost": host, "PathInContainer": container, "CgroupPermissions": permissions}


# Sysctls a container may set: those of the namespaces it owns (Docker's ValidateSysctl).
NAMESPACED_SYSCTLS = ("kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
                      "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni")
NAMESPACED_SYSCTL_PREFIXES = ("fs.mqueue.", "net.")


def parse_sysctl(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise InvalidArgument(f"invalid sysctl: {text!r} (KEY=VALUE)")
    return key, value


def check_sysctls(sysctls: dict[str, str], network_kind: str, ipc_mode: str) -> None:
    """Only namespaced sysctls, and only of a namespace the container has of its own."""
    for key in sysctls:
        if key.startswith("net."):
            if network_kind == "host":
                raise InvalidArgument(f"sysctl {key!r} not allowed in host network namespace")
            if network_kind == "container":
                raise InvalidArgument(f"sysctl {key!r} can't be set when the network namespace is shared with a container")
            continue
        if key in NAMESPACED_SYSCTLS or key.startswith("fs.mqueue."):
            if ipc_mode == "host" or ipc_mode.startswith("container:"):
                raise InvalidArgument(f"sysctl {key!r} is not allowed when joining another IPC namespace")
            continue
        raise InvalidArgument(f"sysctl {key!r} is not allowed: only namespaced sysctls (net.*, kernel.shm*, "
                              "kernel.msg*, kernel.sem, fs.mqueue.*) can be set for a container")


def check_namespace_mode(flag: str, mode: str, allowed: tuple[str, ...]) -> None:
    if mode in allowed or (mode.startswith("container:") and mode.split(":", 1)[1]):
        return
    raise InvalidArgument(f"invalid {flag} mode: {mode!r} ({', '.join(m for m in allowed if m)} or container:NAME)")


def check_uts_mode(mode: str) -> str:
    """HostConfig.UTSMode: "" or "host" (moby's UTSMode.Valid), in the daemon's words."""
    if mode not in ("", "host"):
        raise InvalidArgument(f"invalid UTS mode: {mode}")
    return mode


def check_memory_swappiness(value: int | None) -> int | None:
    """--memory-swappiness / HostConfig.MemorySwappiness: 0..100; -1 (the docker CLI's default) and
    None leave the kernel's value, as Docker's fixMemorySwappiness reads -1 as unset."""
    if value is None or value == -1:
        return None
    if not 0 <= value <= 100:
        raise InvalidArgument(f"Invalid value: {value}, valid memory swappiness range is 0-100")
    return value


# The docker CLI's and moby's pattern of a device cgroup rule: TYPE MAJOR:MINOR ACCESS.
_DEVICE_CGROUP_RULE = r"[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}"


def check_device_cgroup_rule(rule: str) -> str:
    """`--device-cgroup-rule 'c 1:3 mr'` (HostConfig.DeviceCgroupRules): refused in the docker CLI's
    words unless it has Docker's form; the rule goes to the cgroup's allow-list as written."""
    import re

    if not isinstance(rule, str) or not re.fullmatch(_DEVICE_CGROUP_RULE, rule):
        raise InvalidArgument(f"invalid device cgroup format '{rule}'")
    return rule


def parse_cgroupns(value: str) -> str:
    """`--cgroupns`: host, private or "" (the default), refused in the docker CLI's words."""
    if value not in ("", "host", "private"):
        raise InvalidArgument("--cgroupns: invalid CGROUP mode")
    return value


def parse_mac_address(text: str) -> str:
    """`--mac-address`: six hex octets, a unicast address (as Docker checks it), lower case."""
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts):
        raise FlagError(f"{text} is not a valid mac address")
    if int(parts[0], 16) & 1:
        raise InvalidArgument(f"{text} is a multicast address: a container's MAC must be unicast")
    return text.lower()


def exposed_ports(specs: list[str]) -> list[str]:
    """`--expose 80`, `8000-8002/udp` -> Config.ExposedPorts keys ("80/tcp", ...)."""
    keys: list[str] = []
    for spec in specs:
        if ":" in spec:
            raise FlagError(f"invalid port format for --expose: {spec}")
        ports, _, proto = spec.partition("/")
        proto = proto or "tcp"
        first, _, last = ports.partition("-")
        try:
            low, high = int(first), int(last or first)
        except ValueError:
            raise FlagError(f"invalid range format for --expose: {spec}") from None
        if proto not in ("tcp", "udp", "sctp") or not 0 < low <= high <= 65535:
            raise FlagError(f"invalid --expose: {spec}")
        keys += [f"{port}/{proto}" for port in range(low, high + 1)]
    return keys


def network_kind(mode: str) -> str:
    """"none", "host", "container" or "bridge" (the default bridge or a named network)."""
    if mode in ("none", "host"):
        return mode
    if mode.startswith("container:"):
        return "container"
    return "bridge"


# ------------------------------------------------------------------------------------------ client side
# The docker CLI checks some `create`/`run` flags itself, before it asks the engine: a flag's validator
# (--dns, --add-host, --link, --sysctl) or its parse() (-p, --expose, --pid, --mac-address, --log-opt
# with --log-driver none, the --security-opt form, --restart's form and --rm with it). Those dockui's
# argument parsing does not already make are made here, on RunOptions, refused as FlagError in the
# docker CLI's words; the engine's own rules (engine.container.create) come after, with the engine's.


def check_client_flags(opts: RunOptions) -> None:
    """FlagError for the first of these flags that the docker CLI refuses on the client."""
    _check_restart_flags(opts.restart, opts.auto_remove)
    if opts.publish:
        _check_publish(opts.publish)
    exposed_ports(opts.expose)
    if opts.mac_address:
        parse_mac_address(opts.mac_address)
    if opts.pid and opts.pid != "host" and not _names_container(opts.pid):
        raise FlagError("--pid: invalid PID mode")
    if opts.log_driver == "none" and opts.log_opts:
        raise FlagError("invalid logging opts for driver none")
    for item in opts.security_opt:
        _check_security_opt_form(item)
    if any(not mount.target for mount in opts.mounts):  # opts.MountOpt.Set's last word on a --mount
        raise FlagError('invalid argument for "--mount" flag: target is required')
    for text in opts.links:
        if not text or text.count(":") > 1:
            raise FlagError(_flag_refusal(text, "--link", f"bad format for links: {text}" if text else
                                          "empty string specified for links"))
    for text in opts.add_hosts:
        _check_add_host(text)
    for text in opts.dns:
        if not _is_ip(text.strip()):
            raise FlagError(_flag_refusal(text, "--dns", f"IP address is not correctly formatted: {text}"))
    for key, value in opts.sysctls.items():
        if not key or not (key in NAMESPACED_SYSCTLS or key.startswith(NAMESPACED_SYSCTL_PREFIXES)):
            raise FlagError(_flag_refusal(f"{key}={value}", "--sysctl", f"sysctl '{key}={value}' is not allowed"))


def _flag_refusal(value: str, flag: str, reason: str) -> str:
    """pflag's words for a value its validator refused."""
    return f'invalid argument "{value}" for "{flag}" flag: {reason}'


def _names_container(mode: str) -> bool:
    kind, sep, name = mode.partition(":")
    return bool(sep) and kind == "container" and bool(name)


def _check_restart_flags(restart: str, auto_remove: bool) -> None:
    """opts.ParseRestartPolicy's form (the policy's name is the engine's to check), then --rm."""
    name, sep, count = (restart or "").partition(":")
    if sep and not name:
        raise FlagError("invalid restart policy format: no policy provided before colon")
    if count:
        try:
            int(count)
        except ValueError:
            raise FlagError("invalid restart policy format: maximum retry count must be an integer") from None
    if auto_remove and name not in ("", "no"):
        raise FlagError("conflicting options: cannot specify both --restart and --rm")


def _check_publish(specs: list[str]) -> None:
    from engine.network.portmap import parse_publish  # only a container that publishes pays for it

    for spec in specs:
        try:
            parse_publish(spec)
        except InvalidArgument as exc:
            raise FlagError(str(exc)) from None


def _check_security_opt_form(item: str) -> None:
    """parseSecurityOpts: KEY=VALUE or KEY:VALUE with a value, or no-new-privileges alone."""
    key, sep, value = item.partition("=")
    if not sep and key != "no-new-privileges":
        key, sep, value = item.partition(":")
    if (not sep or not value) and key != "no-new-privileges":
        raise FlagError(f'Invalid --security-opt: "{item}"')


def _check_add_host(text: str) -> None:
    """opts.ValidateExtraHost: NAME=IP or NAME:IP (IP maybe in brackets, or host-gateway)."""
    name, sep, address = text.partition("=")
    if not sep:
        name, sep, address = text.partition(":")
    if not sep or not name or ":" in name:
        raise FlagError(_flag_refusal(text, "--add-host", f'bad format for add-host: "{text}"'))
    if address != "host-gateway":
        if len(address) > 2 and address[0] == "[" and address[-1] == "]":
            address = address[1:-1]
        if not _is_ip(address.strip()):
            raise FlagError(_flag_refusal(text, "--add-host", f'invalid IP address in add-host: "{address}"'))


def _is_ip(text: str) -> bool:
    import ipaddress  # (only when --dns or --add-host is given)

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
