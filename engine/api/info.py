"""The engine's `info` and `version`: real figures of this host and this engine's state.

Shared by the Engine API service (`GET /info`, `GET /version`) and the CLI's `info`/`version`
verbs, so both report the same numbers. Invariant: nothing here is a constant that Docker reports
as a measurement (CPUs, memory, kernel, counts are read now), and nothing here changes state.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass

from engine import __version__
from engine.config import EngineConfig
from engine.util import timefmt

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

API_VERSION = "1.43"
# Docker 25 and later answer from 1.24 (Docker 24, API 1.43, from 1.12); docker-compose 1.x speaks 1.38.
# The version gates after 1.24 that change a reply are kept where they are (api_version in the service).
MIN_API_VERSION = "1.24"
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x"}


@dataclass(frozen=True)
class ContainerCounts:
    total: int
    running: int
    paused: int
    stopped: int


def container_counts(config: EngineConfig) -> ContainerCounts:
    from engine.container import state
    from engine.container.reconcile import reconcile

    reconcile(config)
    records = state.list_containers(config)
    running = sum(r.status in ("running", "restarting") for r in records)
    paused = sum(r.status == "paused" for r in records)
    return ContainerCounts(len(records), running, paused, len(records) - running - paused)


def mem_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def arch() -> str:
    return GO_ARCH.get(platform.machine(), platform.machine())


def client_version() -> dict[str, Any]:
    """The `Client` half of `docker version`'s data, for dockui's own CLI (the client and the
    engine are one program: the same version and API version)."""
    return {"Platform": {"Name": ""}, "Version": __version__, "ApiVersion": API_VERSION,
            "DefaultAPIVersion": API_VERSION, "GitCommit": "", "GoVersion": "python" + platform.python_version(),
            "Os": "linux", "Arch": arch(), "BuildTime": "", "Context": "default"}


def version() -> dict[str, Any]:
    """Docker's `GET /version` body (the `Server` half of `docker version`'s data)."""
    uname = os.uname()
    return {
        "Platform": {"Name": "dockui"},
        "Components": [{"Name": "Engine", "Version": __version__,
                        "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
                                    "Os": "linux", "Arch": arch(), "KernelVersion": uname.release,
                                    "GoVersion": "python" + platform.python_version(), "GitCommit": "",
                                    "BuildTime": "", "Experimental": "false"}}],
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "python" + platform.python_version(),
        "Os": "linux",
        "Arch": arch(),
        "KernelVersion": uname.release,
        "BuildTime": "",
    }


def os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            fields = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
        return fields.get("PRETTY_NAME", "Linux").strip('"')
    except OSError:
        return "Linux"


def info(config: EngineConfig) -> dict[str, Any]:
    """Docker's `GET /info` body, with this host's and this engine's figures."""
    from engine.image.store import ImageStore
    from engine.sandbox.cgroups import cgroup_version

    counts = container_counts(config)
    uname = os.uname()
    return {
        "ID": _engine_id(config),
        "Containers": counts.total,
        "ContainersRunning": counts.running,
        "ContainersPaused": counts.paused,
        "ContainersStopped": counts.stopped,
        "Images": len(ImageStore(config).list_images()),
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", backing_filesystem(config)], ["Supports d_type", "true"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Log": ["json-file"]},
        "MemoryLimit": True,
        "SwapLimit": True,
        "CpuCfsPeriod": True,
        "CpuCfsQuota": True,
        "CPUShares": True,
        "CPUSet": True,
        "PidsLimit": True,
        "IPv4Forwarding": _ip_forward(),
        "Debug": False,
        "NFd": len(os.listdir("/proc/self/fd")),
        "NGoroutines": 0,
        "SystemTime": timefmt.format_rfc3339(time.time_ns()),  # nanoseconds, as Docker: clients take since/until from it
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": str(cgroup_version()),
        "NEventsListener": 0,
        "KernelVersion": uname.release,
        "OperatingSystem": os_name(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": platform.machine(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"InsecureRegistryCIDRs": [], "IndexConfigs": {},
                           "Mirrors": []},
        "NCPU": os.cpu_count() or 1,
        "MemTotal": mem_total(),
        "DockerRootDir": str(config.root),
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": uname.nodename,
        "Labels": [],
        "ExperimentalBuild": False,
        "ServerVersion": __version__,
        # One runtime, under the name inspect shows for it (HostConfig.Runtime "runc", what Docker's
        # clients look for) and its own; create accepts either.
        "Runtimes": {"runc": {"path": "dockui"}, "dockui": {"path": "dockui"}},
        "DefaultRuntime": "runc",
        "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": False},
        "LiveRestoreEnabled": True,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Warnings": [],
    }


def backing_filesystem(config: EngineConfig) -> str:
    """The filesystem under the engine's root (from mountinfo: the longest mount point above it),
    named as Docker names it (ext2/3/4 are "extfs")."""
    root = os.path.realpath(config.root if config.root.exists() else config.root.parent)
    best, fstype = "", "unknown"
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                point, kind = fields[4], fields[fields.index("-") + 1]
                inside = root == point or root.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, fstype = point, kind
    except (OSError, ValueError, IndexError):
        return "unknown"
    return "extfs" if fstype in ("ext2", "ext3", "ext4") else fstype


def _ip_forward() -> bool:
    try:
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def _engine_id(config: EngineConfig) -> str:
    """A stable ID for this engine root (Docker's daemon ID), made once."""
    path = config.root / "engine-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    import uuid

    value = str(uuid.uuid4()).upper()
    try:
        config.root.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    except OSError:
        pass
    return value
