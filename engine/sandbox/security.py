"""Capabilities, no_new_privs and the device allow-list, with Docker's defaults.

Docker/runc start a container's process with a fixed capability set (bounding, effective and
permitted; inheritable empty since CVE-2022-24769; no ambient caps for the default profile),
`--cap-add/--cap-drop` tweak it the way moby's `caps.TweakCapabilities` does, and `--privileged`
takes every capability the engine itself holds. The device allow-list is data the cgroups module
writes into the devices controller (runc's `AllowedDevices`).
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections import namedtuple

from engine.config import DEFAULTS
from engine.errors import InvalidArgument
from engine.kernel import syscalls

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

DEFAULT_CAPABILITIES: tuple[str, ...] = DEFAULTS.capabilities

DEFAULT_MASKED_PATHS: tuple[str, ...] = DEFAULTS.masked_paths  # none of them apply with --privileged
DEFAULT_READONLY_PATHS: tuple[str, ...] = DEFAULTS.readonly_paths


class DeviceRule(namedtuple("DeviceRule", "type major minor access")):
    """One allow rule of the devices controller: type "c", "b" or "a"; major and minor numbers
    (int, or None for any: `*`); access a subset of "rwm"."""

    __slots__ = ()

    @classmethod
    def from_line(cls, line: str) -> DeviceRule:
        """A rule from its `devices.allow` line, e.g. `c 136:* rwm`."""
        kind, numbers, access = line.split()
        major, minor = (None if n == "*" else int(n) for n in numbers.split(":"))
        return cls(kind, major, minor, access)

    def v1_line(self) -> str:
        """The line to write into cgroup v1 `devices.allow`, e.g. `c 1:3 rwm`."""
        major = "*" if self.major is None else str(self.major)
        minor = "*" if self.minor is None else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"


DEFAULT_DEVICE_RULES: list[DeviceRule] = [DeviceRule.from_line(line) for line in DEFAULTS.device_rules]


_last_cap: int | None = None


def last_cap() -> int:
    """The highest capability number this kernel knows (read once: it never changes)."""
    global _last_cap
    if _last_cap is None:
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                _last_cap = int(f.read())
        except (OSError, ValueError):
            return max(CAPABILITIES.values())
    return _last_cap


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


# ---- seccomp ----------------------------------------------------------------------------------
#
# A deny-list rendering of Docker's default profile (moby profiles/seccomp/default.json), x86_64:
# syscalls the profile never allows, those it allows only with a capability (denied unless the
# container has it), clone/unshare creating namespaces without CAP_SYS_ADMIN, clone3 -> ENOSYS
# (so libc falls back to clone, whose flags can be checked), AF_VSOCK sockets. Denied calls fail
# with EPERM like Docker's SCMP_ACT_ERRNO. Other ABIs (i386, x32) are refused with ENOSYS.

_X86_64_SYSCALLS: dict[str, int] = {
    "acct": 163, "add_key": 248, "bpf": 321, "clock_settime": 227, "create_module": 174,
    "delete_module": 176, "finit_module": 313, "get_kernel_syms": 177, "get_mempolicy": 239,
    "init_module": 175, "ioperm": 173, "iopl": 172, "kexec_file_load": 320, "kexec_load": 246,
    "keyctl": 250, "lookup_dcookie": 212, "mbind": 237, "mount": 165, "move_pages": 279,
    "name_to_handle_at": 303, "nfsservctl": 180, "open_by_handle_at": 304, "perf_event_open": 298,
    "pivot_root": 155, "query_module": 178, "quotactl": 179, "reboot": 169, "request_key": 249,
    "set_mempolicy": 238, "setns": 308, "settimeofday": 164, "swapon": 167, "swapoff": 168,
    "sysfs": 139, "_sysctl": 156, "umount2": 166, "unshare": 272, "uselib": 134, "userfaultfd": 323,
    "ustat": 136, "syslog": 103, "vhangup": 153, "fanotify_init": 300, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "mount_setattr": 442, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "quotactl_fd": 443, "sethostname": 170, "setdomainname": 171, "chroot": 161,
}
_NR_CLONE, _NR_CLONE3, _NR_SOCKET = 56, 435, 41

_NEVER_ALLOWED = (
    "add_key", "keyctl", "request_key", "kexec_load", "kexec_file_load", "userfaultfd", "create_module",
    "get_kernel_syms", "query_module", "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
)
# capability -> syscalls the profile allows only with it
_CAP_GATED: dict[str, tuple[str, ...]] = {
    "CAP_SYS_ADMIN": (
        "bpf", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie", "mount",
        "mount_setattr", "move_mount", "name_to_handle_at", "open_tree", "perf_event_open", "quotactl",
        "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount2", "unshare",
        "swapon", "swapoff",
    ),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_CHROOT": ("chroot",),
    "CAP_SYS_MODULE": ("delete_module", "init_module", "finit_module"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_TIME": ("settimeofday", "clock_settime"),
    "CAP_SYS_TTY_CONFIG": ("vhangup",),
    "CAP_SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "move_pages"),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
    "CAP_DAC_READ_SEARCH": ("open_by_handle_at",),
}
_CLONE_NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
_AF_VSOCK = 40
_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_EPERM, _ENOSYS = 1, 38


def denied_syscalls(caps: list[str] | tuple[str, ...]) -> list[str]:
    """Names the filter refuses for a container holding `caps`."""
    held = {normalize_capability(c) for c in caps}
    allowed: set[str] = set()
    for cap, names in _CAP_GATED.items():
        if cap in held:
            allowed.update(names)
    denied = set(_NEVER_ALLOWED)
    for names in _CAP_GATED.values():
        denied.update(n for n in names if n not in allowed)
    return sorted(denied)


def seccomp_program(caps: list[str] | tuple[str, ...]) -> list[tuple[int, int, int, int]] | None:
    """Classic BPF (code, jt, jf, k) for the container's caps; None where we have no table."""
    if os.uname().machine != "x86_64":
        return None
    ld_w_abs, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    held = {normalize_capability(c) for c in caps}
    prog: list[tuple[int, int, int, int]] = [
        (ld_w_abs, 0, 0, 4),  # seccomp_data.arch
        (jeq, 1, 0, _AUDIT_ARCH_X86_64),
        (ret, 0, 0, _RET_ERRNO | _ENOSYS),
        (ld_w_abs, 0, 0, 0),  # seccomp_data.nr
        (jge, 0, 1, _X32_SYSCALL_BIT),
        (ret, 0, 0, _RET_ERRNO | _ENOSYS),
    ]
    for name in denied_syscalls(caps):
        prog += [(jeq, 0, 1, _X86_64_SYSCALLS[name]), (ret, 0, 0, _RET_ERRNO | _EPERM)]
    if "CAP_SYS_ADMIN" not in held:
        prog += [(jeq, 0, 1, _NR_CLONE3), (ret, 0, 0, _RET_ERRNO | _ENOSYS)]
    prog += [  # socket(AF_VSOCK, ...) -> EPERM
        (jeq, 0, 4, _NR_SOCKET),
        (ld_w_abs, 0, 0, 16),  # args[0], low 32 bits
        (jeq, 0, 1, _AF_VSOCK),
        (ret, 0, 0, _RET_ERRNO | _EPERM),
        (ret, 0, 0, _RET_ALLOW),
    ]
    if "CAP_SYS_ADMIN" not in held:  # clone(flags with CLONE_NEW*) -> EPERM
        prog += [
            (jeq, 0, 3, _NR_CLONE),
            (ld_w_abs, 0, 0, 16),
            (jset, 0, 1, _CLONE_NAMESPACE_FLAGS),
            (ret, 0, 0, _RET_ERRNO | _EPERM),
        ]
    prog.append((ret, 0, 0, _RET_ALLOW))
    return prog


_filters: dict[frozenset[str], bytes | None] = {}


def seccomp_filter(caps: list[str] | tuple[str, ...]) -> bytes | None:
    """seccomp_program as the kernel takes it (struct sock_filter[]), built once per capability set.

    A monitor forked ahead builds the default set's while it waits for its context (see
    process.prepare_ahead), so the container's first process only copies it into the kernel.
    """
    held = frozenset(normalize_capability(c) for c in caps)
    if held not in _filters:
        program = seccomp_program(sorted(held))
        _filters[held] = None if program is None else b"".join(struct.pack("=HBBI", *ins) for ins in program)
    return _filters[held]


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def install_seccomp(caps: list[str] | tuple[str, ...], program: bytes | None = None) -> bool:
    """Load a filter into this process (inherited by execve and children). False if unsupported.

    `program`: a compiled `--security-opt seccomp=<profile>` (engine.sandbox.seccomp.profile_filter)
    instead of Docker's default filter for `caps`. Needs no_new_privs or CAP_SYS_ADMIN; the
    container's init calls it before dropping caps.
    """
    fprog = seccomp_fprog(caps) if program is None else sock_fprog(program)
    if fprog is None:
        return False
    syscalls.prctl(syscalls.PR_SET_SECCOMP, syscalls.SECCOMP_MODE_FILTER, ctypes.addressof(fprog))
    return True


_programs: dict[bytes, tuple] = {}


def seccomp_fprog(caps: list[str] | tuple[str, ...]) -> _SockFprog | None:
    """The struct sock_fprog for seccomp_filter(caps), kept with its buffer (made once)."""
    data = seccomp_filter(caps)
    return None if data is None else sock_fprog(data)


def sock_fprog(data: bytes) -> _SockFprog:
    """The struct sock_fprog for a struct sock_filter[] (`data`), kept with its buffer (made once)."""
    if data not in _programs:
        buffer = ctypes.create_string_buffer(data, len(data))
        fprog = _SockFprog(len(data) // ctypes.sizeof(_SockFilter), ctypes.cast(buffer, ctypes.POINTER(_SockFilter)))
        _programs[data] = (fprog, buffer)
    return _programs[data][0]
