"""Engine configuration: where the state lives and the knobs shared by every module.

One `EngineConfig` is built by the CLI (or the TUI) from flags, the environment and the config file
(`/etc/dockui/config.json`, or `$DOCKUI_CONFIG`), and handed to each subsystem; nothing reads globals.

Invariant: a config file either loads whole or stops the command with one `InvalidConfig` line that
names the file and every problem (bad JSON with its line and column, a top level that is not an
object, a value of the wrong type, a key nothing reads, as Docker's daemon refuses unknown
directives). A typo never silently falls back to the defaults (the shared bridge, the shared cgroup
parent).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import InvalidConfig

DEFAULT_ROOT = Path("/var/lib/dockui")
CONFIG_FILE = Path("/etc/dockui/config.json")
CERTS_DIR = Path("/etc/dockui/certs.d")

# The json-file log cap a container gets when `--log-opt max-size` is not given (Docker's own
# default is unbounded: one chatty container fills the disk under the state root, and then no verb
# can record anything). 3 files of 10 MiB: what `docker run --log-opt` examples and most distros'
# daemon.json use; `logs` still shows the last ~30 MiB. Set `log_max_size` to "" (or "-1") for
# Docker's unbounded behaviour.
DEFAULT_LOG_MAX_SIZE = "10m"
DEFAULT_LOG_MAX_FILE = 3
# Seconds without a byte from a registry before an attempt is abandoned (and retried).
DEFAULT_REGISTRY_STALL_TIMEOUT = 30.0


@dataclass(frozen=True)
class Defaults:
    """What a container gets when nothing says otherwise (Docker's defaults), in one table: each
    module that applies one reads it here, so no two places can disagree."""

    shm_size: int = 64 * 1024 * 1024  # /dev/shm, unless --shm-size
    stop_signal: str = "SIGTERM"  # unless --stop-signal or the image's StopSignal
    stop_timeout: int = 10  # seconds from the stop signal to SIGKILL, unless stop -t or --stop-timeout
    mtu: int = 1500  # bridges and veth pairs
    log_max_size: str = DEFAULT_LOG_MAX_SIZE  # json-file --log-opt max-size (EngineConfig may change it)
    log_max_file: int = DEFAULT_LOG_MAX_FILE  # json-file --log-opt max-file (EngineConfig may change it)
    # moby oci/caps/defaults.go DefaultCapabilities, in Docker's order.
    capabilities: tuple[str, ...] = ("CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
    )
    # runc libcontainer/specconv AllowedDevices (what Docker uses for an unprivileged container),
    # in devices.allow syntax, applied after denying everything ("a *:* rwm").
    device_rules: tuple[str, ...] = (
        "c *:* m",  # mknod of any char device
        "b *:* m",  # mknod of any block device
        "c 1:3 rwm",  # /dev/null
        "c 1:8 rwm",  # /dev/random
        "c 1:7 rwm",  # /dev/full
        "c 5:0 rwm",  # /dev/tty
        "c 1:5 rwm",  # /dev/zero
        "c 1:9 rwm",  # /dev/urandom
        "c 136:* rwm",  # /dev/pts/*
        "c 5:2 rwm",  # /dev/ptmx
        "c 10:200 rwm",  # /dev/net/tun
    )
    # moby's default masked and read-only paths (oci/defaults.go); none of them apply with --privileged.
    masked_paths: tuple[str, ...] = ("/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    )
    readonly_paths: tuple[str, ...] = ("/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
    )


DEFAULTS = Defaults()


@dataclass
class EngineConfig:
    """Settings shared by the engine's modules.

    `bridge_name` and `cgroup_parent` are configurable so that tests (and a second engine on one
    host) can keep their kernel objects apart.
    """

    root: Path = DEFAULT_ROOT
    log_level: str = "warning"
    insecure_registries: list[str] = field(default_factory=list)
    certs_dir: Path = CERTS_DIR
    bridge_name: str = "dockui0"
    bridge_ip: str | None = None  # --bip, e.g. "172.18.0.1/16"
    cgroup_parent: str = "dockui"
    auth_config: Path | None = None  # Docker-compatible config.json with "auths"
    log_max_size: str = DEFAULT_LOG_MAX_SIZE  # default json-file --log-opt max-size ("" = unbounded)
    log_max_file: int = DEFAULT_LOG_MAX_FILE  # default json-file --log-opt max-file
    registry_stall_timeout: float = DEFAULT_REGISTRY_STALL_TIMEOUT  # seconds with no byte -> retry
    # The embedded DNS's upstream servers ("ip" or "ip:port"); empty: the host's /etc/resolv.conf.
    dns_upstreams: list[str] = field(default_factory=list)
    # Every new container gets --security-opt no-new-privileges (written into its HostConfig at create).
    no_new_privileges: bool = False
    # dockerd's --default-cgroupns-mode: "host" or "private" for a container without --cgroupns;
    # "" = Docker's default (private on a pure cgroup v2 host, host on v1/hybrid): see docs/cgroups.md.
    default_cgroupns_mode: str = ""

    # Standard places under the root. Layout follows Docker's.
    @property
    def image_dir(self) -> Path:
        return self.root / "image" / "overlay2"

    @property
    def layers_dir(self) -> Path:
        return self.root / "overlay2"

    @property
    def containers_dir(self) -> Path:
        return self.root / "containers"

    @property
    def volumes_dir(self) -> Path:
        return self.root / "volumes"

    @property
    def network_dir(self) -> Path:
        return self.root / "network"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    def ensure_root(self) -> None:
        """Create the state root 0710, as Docker keeps /var/lib/docker: other users may not list
        containers, images or logs (a container's files hold its environment and output). A root
        an older dockui made 0755 is tightened; a directory that is not a dockui root is left alone.
        """
        root = self.root
        try:
            if not root.exists():
                root.parent.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(FileExistsError):
                    root.mkdir(mode=0o710)
                    os.chmod(root, 0o710)  # whatever the umask
            elif (root / "containers").is_dir() or (root / "image").is_dir():
                st = root.stat()
                if st.st_uid == 0 and st.st_mode & 0o067 != 0o010:
                    os.chmod(root, 0o710)
        except OSError:
            return  # the verb meets the same problem and reports it in its own words
        from engine.util.diskfull import replenish

        replenish(root)  # the space a full disk's exit records and removals fall back on

    def default_log_opts(self) -> dict[str, str]:
        """The json-file options a container gets when its `--log-opt`s set no max-size."""
        if self.log_max_size in ("", "-1"):
            return {}
        return {"max-size": self.log_max_size, "max-file": str(self.log_max_file)}

    @classmethod
    def load(cls, root: str | os.PathLike[str] | None = None, **overrides: object) -> EngineConfig:
        """Build a config from the config file, `DOCKUI_ROOT`, then explicit arguments (in that order).

        InvalidConfig (one line) when the config file is unreadable or invalid.
        """
        values: dict[str, object] = dict(read_config_file(config_file_path()))
        env_root = os.environ.get("DOCKUI_ROOT")
        if env_root:
            values["root"] = Path(env_root)
        if root is not None:
            values["root"] = Path(root)
        for key, value in overrides.items():
            if value is not None:
                values[key] = value
        return cls(**values)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- config file


def config_file_path() -> Path:
    return Path(os.environ.get("DOCKUI_CONFIG") or CONFIG_FILE)


def _string_list(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be a list of strings, not {_kind(value)}")
    return value


def _name(limit: int) -> Callable[[object], str]:
    def check(value: object) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {_kind(value)}")
        if not value or len(value) > limit or "/" in value or value in (".", ".."):
            raise ValueError(f"must be a name of 1 to {limit} characters without '/', not {value!r}")
        return value

    return check


def _cidr(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string such as \"172.18.0.1/16\", not {_kind(value)}")
    import ipaddress

    try:
        ipaddress.ip_interface(value)
    except ValueError:
        raise ValueError(f"must be an address and prefix such as \"172.18.0.1/16\", not {value!r}") from None
    return value


def _size(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"must be a size such as \"10m\", not {_kind(value)}")
    if value in ("", "-1"):
        return value
    from engine.errors import InvalidArgument
    from engine.util.units import parse_size

    try:
        if parse_size(value) <= 0:
            raise InvalidArgument(value)
    except InvalidArgument:
        raise ValueError(f"must be a size such as \"10m\", not {value!r}") from None
    return value


def _dns_server(value: str) -> str:
    """`1.2.3.4`, `1.2.3.4:5353`, `::1` or `[::1]:5353` (the embedded DNS's upstream servers)."""
    import ipaddress

    host, port = value, "53"
    if value.startswith("[") and "]" in value:
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ("53" if not rest else "x")
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    try:
        ipaddress.ip_address(host)
        if not 0 < int(port) < 65536:
            raise ValueError(port)
    except ValueError:
        raise ValueError(f"must list addresses such as \"192.0.2.53\" or \"127.0.0.1:5353\", not {value!r}") from None
    return value


def _dns_servers(value: object) -> list[str]:
    return [_dns_server(v) for v in _string_list(value)]


def _positive_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be a whole number of at least 1, not {_json(value)}")
    return value


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {_json(value)}")
    return value


def _positive_number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"must be a number of seconds above 0, not {_json(value)}")
    return float(value)


def _cgroupns_mode(value: object) -> str:
    if value not in ("host", "private", ""):
        raise ValueError(f'must be "host" or "private", not {_json(value)}')
    return str(value)


# Every key the config file may set, with the check that turns its JSON value into the field's.
CONFIG_KEYS: dict[str, Callable[[object], object]] = {
    "insecure_registries": _string_list,
    "bridge_name": _name(15),  # IFNAMSIZ - 1
    "bridge_ip": _cidr,
    "cgroup_parent": _name(255),
    "log_max_size": _size,
    "log_max_file": _positive_int,
    "registry_stall_timeout": _positive_number,
    "dns_upstreams": _dns_servers,
    "no_new_privileges": _boolean,
    "default_cgroupns_mode": _cgroupns_mode,
}


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _json(value: object) -> str:
    return json.dumps(value) if isinstance(value, int | float | bool | str | type(None)) else _kind(value)


def read_config_file(path: Path) -> dict[str, object]:
    """The checked settings of the config file at `path`; {} when there is none.

    InvalidConfig names the file and every problem, so one edit fixes them all.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        raise InvalidConfig(f"configuration file {path} is a directory") from None
    except PermissionError:
        raise InvalidConfig(f"cannot read configuration file {path}: permission denied") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidConfig(f"cannot read configuration file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not text.strip():
        return {}  # an empty file, as Docker treats an empty daemon.json
    try:
        data = json.loads(text)
    except ValueError as exc:
        line, column = getattr(exc, "lineno", 0), getattr(exc, "colno", 0)
        reason = getattr(exc, "msg", str(exc))
        raise InvalidConfig(f"invalid configuration file {path}: line {line} column {column}: {reason}") from None
    if not isinstance(data, dict):
        raise InvalidConfig(f"invalid configuration file {path}: the top level must be a JSON object, not {_kind(data)}")
    values, problems = {}, []
    for key, value in data.items():
        check = CONFIG_KEYS.get(key)
        if check is None:
            problems.append(f"unknown key {key!r}{_suggest(key)}")
            continue
        try:
            values[key] = check(value)
        except ValueError as exc:
            problems.append(f"{key!r} {exc}")
    if problems:
        raise InvalidConfig(f"invalid configuration file {path}: " + "; ".join(problems))
    return values


def _suggest(key: str) -> str:
    import difflib

    close = difflib.get_close_matches(key, CONFIG_KEYS, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (known keys: {', '.join(CONFIG_KEYS)})"
