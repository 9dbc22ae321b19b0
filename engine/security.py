"""Capabilities, no_new_privs and the device allow-list, with Docker's defaults.

Docker/runc start a container's process with a fixed capability set (bounding, effective and
permitted; inheritable empty since CVE-2022-24769; no ambient caps for the default profile),
`--cap-add/--cap-drop` tweak it the way moby's `caps.TweakCapabilities` does, and `--privileged`
takes every capability the engine itself holds. The device allow-list is data the cgroups module
writes into the devices controller (runc's `AllowedDevices`).
"""

from __future__ import annotations

from typing import NamedTuple

from engine import syscalls
from engine.errors import InvalidArgument

CAPABILITIES: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

# moby oci/caps/defaults.go DefaultCapabilities, in Docker's order.
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
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

# moby's default masked and read-only paths (oci/defaults.go); none of them apply with --privileged.
DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
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
DEFAULT_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)


class DeviceRule(NamedTuple):
    """One allow rule of the devices controller; `None` for major/minor means any (`*`)."""

    type: str  # "c", "b" or "a"
    major: int | None
    minor: int | None
    access: str  # subset of "rwm"

    def v1_line(self) -> str:
        """The line to write into cgroup v1 `devices.allow`, e.g. `c 1:3 rwm`."""
        major = "*" if self.major is None else str(self.major)
        minor = "*" if self.minor is None else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"


# runc libcontainer/specconv AllowedDevices (what Docker uses for an unprivileged container),
# applied after denying everything ("a *:* rwm").
DEFAULT_DEVICE_RULES: list[DeviceRule] = [
    DeviceRule("c", None, None, "m"),  # mknod of any char device
    DeviceRule("b", None, None, "m"),  # mknod of any block device
    DeviceRule("c", 1, 3, "rwm"),  # /dev/null
    DeviceRule("c", 1, 8, "rwm"),  # /dev/random
    DeviceRule("c", 1, 7, "rwm"),  # /dev/full
    DeviceRule("c", 5, 0, "rwm"),  # /dev/tty
    DeviceRule("c", 1, 5, "rwm"),  # /dev/zero
    DeviceRule("c", 1, 9, "rwm"),  # /dev/urandom
    DeviceRule("c", 136, None, "rwm"),  # /dev/pts/*
    DeviceRule("c", 5, 2, "rwm"),  # /dev/ptmx
    DeviceRule("c", 10, 200, "rwm"),  # /dev/net/tun
]


def last_cap() -> int:
    """The highest capability number this kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return max(CAPABILITIES.values())


def all_capabilities() -> list[str]:
    """Every capability this kernel knows, in number order."""
    top = last_cap()
    return [name for name, number in sorted(CAPABILITIES.items(), key=lambda kv: kv[1]) if number <= top]


def normalize_capability(name: str) -> str:
    """"net_admin", "NET_ADMIN", "cap_net_admin" -> "CAP_NET_ADMIN"; "all" -> "ALL"."""
    upper = name.strip().upper()
    if upper == "ALL":
        return "ALL"
    if not upper.startswith("CAP_"):
        upper = "CAP_" + upper
    if upper not in CAPABILITIES:
        raise InvalidArgument(f"unknown capability: {name!r}")
    return upper


def capabilities_for(
    cap_add: list[str] | tuple[str, ...] = (),
    cap_drop: list[str] | tuple[str, ...] = (),
    privileged: bool = False,
) -> list[str]:
    """The container's capability list, with moby's TweakCapabilities rules.

    --privileged: all; cap-add ALL: all minus drops; cap-drop ALL: only the adds; otherwise the
    default set minus drops plus adds (an add wins over a drop).
    """
    if privileged:
        return all_capabilities()
    adds = [normalize_capability(c) for c in cap_add]
    drops = [normalize_capability(c) for c in cap_drop]
    if not adds and not drops:
        return list(DEFAULT_CAPABILITIES)
    if "ALL" in adds:
        return [c for c in all_capabilities() if c not in drops]
    if "ALL" in drops:
        result = [c for c in adds if c != "ALL"]
    else:
        result = [c for c in DEFAULT_CAPABILITIES if c not in drops] + adds
    seen: list[str] = []
    for cap in result:
        if cap not in seen:
            seen.append(cap)
    return seen


def capability_mask(names: list[str] | tuple[str, ...]) -> int:
    mask = 0
    for name in names:
        mask |= 1 << CAPABILITIES[normalize_capability(name)]
    return mask


def names_from_mask(mask: int) -> list[str]:
    return [name for name, number in sorted(CAPABILITIES.items(), key=lambda kv: kv[1]) if mask >> number & 1]


def set_no_new_privs() -> None:
    syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)


def drop_bounding_set(keep_mask: int) -> None:
    """Drop every capability not in keep_mask from the bounding set (needs CAP_SETPCAP)."""
    for number in range(last_cap() + 1):
        if keep_mask >> number & 1:
            continue
        if syscalls.prctl(syscalls.PR_CAPBSET_READ, number) == 1:
            syscalls.prctl(syscalls.PR_CAPBSET_DROP, number)


def apply_process_capabilities(mask: int, uid: int) -> None:
    """Set effective/permitted (inheritable empty) and, for a non-root user, the ambient set.

    runc sets what the OCI spec lists; Docker's spec has the capabilities in bounding, effective
    and permitted for root. For a non-root user the caps vanish at execve (as with Docker) unless
    they are ambient; Docker lists none, so neither do we: CapEff of `-u 1000` is 0, like Docker.
    The mask is limited to what this process holds (root here may lack some).
    """
    _, permitted, _ = syscalls.capget()
    mask &= permitted
    syscalls.capset(mask, mask, 0)
    try:
        syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError:
        pass


def set_dumpable(dumpable: bool) -> None:
    syscalls.prctl(syscalls.PR_SET_DUMPABLE, 1 if dumpable else 0)


def keep_caps(keep: bool) -> None:
    syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 1 if keep else 0)


def own_bounding_mask() -> int:
    """The bounding set of this process (what --privileged can at most grant)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                return int(line.split()[1], 16)
    return 0
