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
    from typing import Any

    from engine.container.health import Healthcheck


RESTART_POLICIES = ("no", "on-failure", "always", "unless-stopped")
DEFAULT_STOP_TIMEOUT = DEFAULTS.stop_timeout


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
    auto_remove: bool = False
    security_opt: list[str] = field(default_factory=list)  # --security-opt values (container.options.security_options)
    healthcheck: Healthcheck | None = None  # from --health-*/--no-healthcheck (over the image's)


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
    binaries work for a non-root user), Docker's seccomp filter unless `seccomp=unconfined`. SELinux
    and AppArmor labels are accepted and have nothing to apply to (dockui sets neither)."""

    no_new_privs: bool = False
    seccomp: bool = True


def security_options(items: list[str] | tuple[str, ...]) -> SecurityOptions:
    """Docker's `--security-opt` values (KEY=VALUE or the older KEY:VALUE); InvalidArgument for others."""
    no_new_privs, seccomp = False, True
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            key, sep, value = item.partition(":")
        if key == "no-new-privileges":
            if value not in ("", "true", "false"):
                raise InvalidArgument(f"invalid --security-opt: {item!r} (no-new-privileges takes true or false)")
            no_new_privs = value != "false"
        elif key == "seccomp" and value == "unconfined":
            seccomp = False
        elif key == "seccomp" and value:
            raise InvalidArgument("--security-opt seccomp=<profile.json> is not supported by dockui: "
                                  "use the default filter or seccomp=unconfined")
        elif key in ("label", "apparmor") and value:
            continue
        else:
            raise InvalidArgument(f'Invalid --security-opt: "{item}"')
    return SecurityOptions(no_new_privs, seccomp)


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
