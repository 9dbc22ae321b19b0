"""Thin, errno-checked ctypes wrappers over the Linux calls Python 3.11 lacks.

Python 3.11 has no `os.unshare`/`os.setns`, no `mount`, `pivot_root`, `prctl` or `capset`; the
container start path needs all of them. Every wrapper raises `OSError(errno, ...)` on failure so
callers handle kernel errors like any other I/O error.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)

# Namespaces (linux/sched.h)
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# Mount flags (linux/mount.h)
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

# prctl options (linux/prctl.h)
PR_SET_PDEATHSIG = 1
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# New mount API (Linux 5.2+): detached clones of a mount, attached later.
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x00000004
# mount_setattr(2) (Linux 5.12+): change a mount's (with AT_RECURSIVE: a whole tree's) attributes.
MOUNT_ATTR_RDONLY = 0x00000001

TIOCSCTTY = 0x540E
CLOSE_RANGE_CLOEXEC = 1 << 2

_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_SYSCALL_NUMBERS = {
    "x86_64": {"pivot_root": 155, "close_range": 436, "open_tree": 428, "move_mount": 429, "mount_setattr": 442},
    "aarch64": {"pivot_root": 41, "close_range": 436, "open_tree": 428, "move_mount": 429, "mount_setattr": 442},
}


def _check(result: int, what: str, path: str | None = None) -> int:
    if result == -1:
        err = ctypes.get_errno()
        if path is None:
            raise OSError(err, f"{what}: {os.strerror(err)}")
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return result


def _b(value: str | os.PathLike[str] | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def mount(
    source: str | os.PathLike[str] | None,
    target: str | os.PathLike[str],
    fstype: str | None = None,
    flags: int = 0,
    data: str | None = None,
) -> None:
    result = _libc.mount(
        _b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)
    )
    _check(result, f"mount {source or fstype} on {os.fsdecode(target)}", os.fsdecode(target))


def umount2(target: str | os.PathLike[str], flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), ctypes.c_int(flags)), "umount2", os.fsdecode(target))


def _syscall_number(name: str) -> int:
    machine = os.uname().machine
    table = _SYSCALL_NUMBERS.get(machine)
    if table is None:
        raise OSError(38, f"{name}: unsupported architecture {machine}")
    return table[name]


def pivot_root(new_root: str | os.PathLike[str], put_old: str | os.PathLike[str]) -> None:
    nr = _syscall_number("pivot_root")
    _check(_libc.syscall(ctypes.c_long(nr), _b(new_root), _b(put_old)), "pivot_root")


def open_tree(dirfd: int, path: str | os.PathLike[str], flags: int) -> int:
    """A file descriptor for a (with OPEN_TREE_CLONE: detached copy of a) mount tree."""
    nr = _syscall_number("open_tree")
    return _check(
        _libc.syscall(ctypes.c_long(nr), ctypes.c_int(dirfd), _b(path), ctypes.c_uint(flags)),
        "open_tree", os.fsdecode(path) or f"fd {dirfd}",
    )


def move_mount(from_fd: int, to_path: str | os.PathLike[str], to_dirfd: int = AT_FDCWD) -> None:
    """Attach the mount tree behind from_fd (from open_tree) at to_path."""
    nr = _syscall_number("move_mount")
    _check(
        _libc.syscall(ctypes.c_long(nr), ctypes.c_int(from_fd), b"", ctypes.c_int(to_dirfd), _b(to_path),
                      ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)),
        "move_mount", os.fsdecode(to_path),
    )


class _MountAttr(ctypes.Structure):
    """struct mount_attr (linux/mount.h, MOUNT_ATTR_SIZE_VER0)."""

    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(path: str | os.PathLike[str], attr_set: int, attr_clr: int = 0, flags: int = 0,
                  dirfd: int = AT_FDCWD) -> None:
    """Set (and clear) mount attributes of the mount at `path`; with AT_RECURSIVE in `flags`, of
    every mount below it too, all or none (the kernel changes the tree atomically)."""
    nr = _syscall_number("mount_setattr")
    attr = _MountAttr(attr_set, attr_clr, 0, 0)
    _check(
        _libc.syscall(ctypes.c_long(nr), ctypes.c_int(dirfd), _b(path), ctypes.c_uint(flags),
                      ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))),
        "mount_setattr", os.fsdecode(path),
    )


def close_range_cloexec(first: int) -> None:
    """Mark every descriptor >= first close-on-exec (close_range(2), Linux 5.11+)."""
    nr = _syscall_number("close_range")
    _check(
        _libc.syscall(ctypes.c_long(nr), ctypes.c_uint(first), ctypes.c_uint(0xFFFFFFFF),
                      ctypes.c_uint(CLOSE_RANGE_CLOEXEC)),
        "close_range",
    )


def raise_open_files_limit() -> tuple[int, int]:
    """RLIMIT_NOFILE's soft limit up to its hard one, as Go's runtime does for every Go program
    (dockerd among them): a server holding one descriptor per client must not stop accepting at
    the 1024 a login or a systemd unit gives by default. Returns the limits as they were; processes
    started afterwards inherit the raised one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return soft, hard


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(
        _libc.prctl(
            ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
            ctypes.c_ulong(arg4), ctypes.c_ulong(arg5),
        ),
        f"prctl({option})",
    )


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, ctypes.c_size_t(len(raw))), "sethostname")


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(_libc.setdomainname(raw, ctypes.c_size_t(len(raw))), "setdomainname")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) as 64-bit masks."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    _check(_libc.capget(ctypes.byref(header), data), "capget")
    return (
        data[0].effective | (data[1].effective << 32),
        data[0].permitted | (data[1].permitted << 32),
        data[0].inheritable | (data[1].inheritable << 32),
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for index, shift in ((0, 0), (1, 32)):
        data[index].effective = (effective >> shift) & 0xFFFFFFFF
        data[index].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[index].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def ioctl_int(fd: int, request: int, arg: int = 0) -> None:
    _check(_libc.ioctl(ctypes.c_int(fd), ctypes.c_ulong(request), ctypes.c_ulong(arg)), "ioctl")
