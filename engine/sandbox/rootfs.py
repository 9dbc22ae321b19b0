"""The container's filesystem view, built inside its fresh mount namespace.

Everything here runs in the container's first process after `unshare(CLONE_NEWNS)` and before
exec, so every mount lives and dies with the container's mount namespace: the host never sees the
overlay, and nothing is left mounted when the last process of the container exits.

Order (as runc does it): make `/` rslave (host mounts propagate in, ours never out) -> clone the
host-side bind sources as detached mounts (open_tree) -> mount the overlay (or bind a plain
directory) -> pivot_root -> /proc, /dev (tmpfs + nodes), /dev/pts, /dev/shm, /dev/mqueue, /sys (ro)
-> attach the clones (move_mount; host paths were resolved before the pivot, container paths are
resolved after it, inside the container), a read-only one made read-only down its whole tree
(mount_setattr, Docker's "rro") unless asked for its top mount only, each then given its bind
propagation (Docker's rprivate unless asked) -> masked and read-only paths -> `--read-only`. The
sources of shared binds are cloned before `/` turns rslave, so they stay peers of the host's
mount: the only way anything the container mounts reaches the host, and only below such a bind.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from engine.config import DEFAULTS
from engine.kernel import syscalls
from engine.kernel.syscalls import (
    MNT_DETACH,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    MS_SHARED,
    MS_SLAVE,
    MS_STRICTATIME,
)

DEFAULT_SHM_SIZE = DEFAULTS.shm_size

# (name, major, minor): runc's default device nodes, all mode 0666 root:root.
DEVICE_NODES: tuple[tuple[str, int, int], ...] = (
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
)
DEVICE_SYMLINKS: tuple[tuple[str, str], ...] = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
    ("core", "/proc/kcore"),
)


@dataclass
class OverlayLayers:
    """What overlayfs needs: `lowerdir` is the store's option value, relative to `layers_dir`."""

    layers_dir: Path
    lowerdir: str
    upperdir: Path
    workdir: Path

    def options(self) -> str:
        def rel(path: Path) -> str:
            try:
                return os.path.relpath(path, self.layers_dir) if path.is_relative_to(self.layers_dir) else str(path)
            except ValueError:
                return str(path)

        return f"lowerdir={self.lowerdir},upperdir={rel(self.upperdir)},workdir={rel(self.workdir)}"


# How deep a read-only bind is read-only (moby's BindOptions, API 1.44+): every mount of its tree,
# or only its top one when the kernel cannot (Docker's default, "rro" else "ro"); its top mount
# only (ReadOnlyNonRecursive, Docker's only behaviour before 1.44: a host mount below the source
# stays writable); every mount or the container does not start (ReadOnlyForceRecursive).
READONLY_RECURSIVE = "recursive"
READONLY_TOP = "top"
READONLY_FORCE_RECURSIVE = "force-recursive"
READONLY_DEPTHS = (READONLY_RECURSIVE, READONLY_TOP, READONLY_FORCE_RECURSIVE)


@dataclass
class BindMount:
    """`-v source:destination[:ro][,PROPAGATION]`, or an engine-provided file such as /etc/hosts.

    `propagation` is Docker's bind propagation (PROPAGATIONS); rprivate, Docker's default, means
    that neither the host's later mounts under the source nor the container's under the
    destination cross over. `recursive`: the mounts below the source come along (rbind, Docker's
    default; False is BindOptions.NonRecursive). `readonly_depth`: one of READONLY_DEPTHS."""

    source: Path
    destination: str
    readonly: bool = False
    propagation: str = "rprivate"
    recursive: bool = True
    readonly_depth: str = READONLY_RECURSIVE

    @property
    def shared(self) -> bool:
        return self.propagation in SHARED_PROPAGATIONS


# Docker's bind propagation modes and the mount(2) flags runc sets with them on the bind.
PROPAGATIONS = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
}
SHARED_PROPAGATIONS = ("shared", "rshared")
SLAVE_PROPAGATIONS = ("slave", "rslave")


def propagation_error(source: str | os.PathLike[str], propagation: str,
                      mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """Docker's rule for a shared or slave bind (moby's ensureShared/ensureSharedOrSlave): the mount
    its source is on must be shared (for shared, rshared) or shared or slave (slave, rslave), or
    nothing could ever propagate; Docker's message when it is not, else None."""
    if propagation not in (*SHARED_PROPAGATIONS, *SLAVE_PROPAGATIONS):
        return None
    path = os.path.realpath(source)
    point, optional = _source_mount(path, mountinfo)
    wanted = ("shared:",) if propagation in SHARED_PROPAGATIONS else ("shared:", "master:")
    if any(field.startswith(wanted) for field in optional):
        return None
    kind = "a shared" if propagation in SHARED_PROPAGATIONS else "a shared or slave"
    return f"path {source} is mounted on {point} but it is not {kind} mount"


def _source_mount(path: str, mountinfo: str) -> tuple[str, list[str]]:
    """The mount point holding `path` (the longest one above it; the later of equals: the top one)
    and its optional mountinfo fields (shared:N, master:N, ...)."""
    best, optional = "/", []
    with open(mountinfo) as f:
        for line in f:
            fields = line.split()
            point = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
            inside = point == "/" or path == point or path.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, optional = point, fields[6:fields.index("-")]
    return best, optional


def make_mounts_slave() -> None:
    """Host mounts keep propagating into the container; nothing we mount leaks out."""
    syscalls.mount(None, "/", None, MS_REC | MS_SLAVE)


def clone_mount(source: str | os.PathLike[str], recursive: bool = True) -> int:
    """A detached clone of the mount at `source` (with `recursive`, of the mounts below it too),
    to attach after pivot_root.

    Bind sources on the host are taken before pivot_root hides the host (and resolved there),
    destinations after it (resolved inside the container): runc's mount-fd approach. Must be a
    path looked up in our own mount namespace (a descriptor opened earlier points at the
    parent's mounts, which the kernel refuses to clone).
    """
    flags = syscalls.OPEN_TREE_CLONE | syscalls.OPEN_TREE_CLOEXEC | (syscalls.AT_RECURSIVE if recursive else 0)
    return syscalls.open_tree(syscalls.AT_FDCWD, source, flags)


def open_bind_sources(binds: list[BindMount], shared: bool = False, taken: list[int] | None = None) -> list[int]:
    """Detached clones of the host-side sources, taken before pivot_root: with `shared`, only those
    of shared binds (each -1 for the others), cloned before `make_mounts_slave` so the clone stays
    a peer of the host's mount; then the others into `taken`, cloned after it (slaves: the host's
    mounts may reach them, theirs never reach the host) until their own propagation is set."""
    fds = list(taken) if taken is not None else [-1] * len(binds)
    for i, bind in enumerate(binds):
        if fds[i] >= 0 or (shared and not bind.shared):
            continue
        try:
            fds[i] = clone_mount(bind.source, bind.recursive)
        except OSError as exc:
            raise OSError(exc.errno, f"bind source {bind.source}: {os.strerror(exc.errno or 0)}") from None
    return fds


def check_bind_propagation(binds: list[BindMount]) -> None:
    """Docker's shared/slave source rule at start (the host may have changed since create)."""
    for bind in binds:
        error = propagation_error(bind.source, bind.propagation)
        if error is not None:
            raise OSError(errno.EINVAL, error)


def mount_root(rootfs: Path, overlay: OverlayLayers | None) -> None:
    """Overlay (mounted from a chdir'ed layers dir, so lowerdir stays short) or a bind of rootfs."""
    if overlay is None:
        syscalls.mount(rootfs, rootfs, None, MS_BIND | MS_REC)
        return
    options = overlay.options()
    if len(options.encode()) >= 4096:
        raise OSError(errno.E2BIG, f"overlay mount options are {len(options)} bytes, over one page: too many layers")
    previous = os.open(".", os.O_PATH | os.O_CLOEXEC)
    try:
        os.chdir(overlay.layers_dir)
        syscalls.mount("overlay", rootfs, "overlay", 0, options)
    finally:
        os.fchdir(previous)
        os.close(previous)


def pivot_into(rootfs: Path) -> None:
    """pivot_root(".", ".") then detach the old root (runc's way: no put_old dir needed)."""
    os.chdir(rootfs)
    syscalls.pivot_root(".", ".")
    syscalls.umount2(".", MNT_DETACH)
    os.chdir("/")


def _ensure_dir(path: str) -> None:
    """Create a mount point inside the container; refuse a symlink (runc CVE-2019-19921 class)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        os.makedirs(path, mode=0o755, exist_ok=True)
        return
    if stat.S_ISLNK(st.st_mode):
        raise OSError(errno.ELOOP, f"mount point {path} is a symlink", path)
    if not stat.S_ISDIR(st.st_mode):
        raise OSError(errno.ENOTDIR, f"mount point {path} is not a directory", path)


def _ensure_file(path: str) -> None:
    if os.path.isdir(path):
        raise OSError(errno.EISDIR, f"cannot mount a file on directory {path}", path)
    if not os.path.lexists(path):
        os.makedirs(os.path.dirname(path) or "/", mode=0o755, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def mount_standard(
    shm_size: int,
    privileged: bool,
    console_tree: int | None,
    cgroups: CgroupView | None = None,
) -> None:
    """/proc, /dev with its nodes, /dev/pts, /dev/shm, /dev/mqueue, /sys and /sys/fs/cgroup (read-only unless privileged)."""
    _ensure_dir("/proc")
    syscalls.mount("proc", "/proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV)
    _ensure_dir("/dev")
    syscalls.mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k")
    old_umask = os.umask(0)
    try:
        for name, major, minor in DEVICE_NODES:
            os.mknod(f"/dev/{name}", stat.S_IFCHR | 0o666, os.makedev(major, minor))
        for name, target in DEVICE_SYMLINKS:
            os.symlink(target, f"/dev/{name}")
        for sub in ("pts", "shm", "mqueue"):
            os.mkdir(f"/dev/{sub}", 0o755)
    finally:
        os.umask(old_umask)
    syscalls.mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                   "newinstance,ptmxmode=0666,mode=0620,gid=5")
    syscalls.mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                   f"mode=1777,size={int(shm_size)}")
    syscalls.mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if console_tree is not None:
        # The terminal the user's process talks to, visible as /dev/console like runc does.
        _ensure_file("/dev/console")
        syscalls.move_mount(console_tree, "/dev/console")
    _ensure_dir("/sys")
    sys_flags = MS_NOSUID | MS_NOEXEC | MS_NODEV | (0 if privileged else MS_RDONLY)
    syscalls.mount("sysfs", "/sys", "sysfs", sys_flags)
    if cgroups is not None:
        mount_cgroups(cgroups, writable=privileged)


def bind_console(pts: str) -> None:
    """The container's terminal (a /dev/pts/N of its own devpts) also as /dev/console, as runc does."""
    _ensure_file("/dev/console")
    syscalls.mount(pts, "/dev/console", None, MS_BIND)


@dataclass
class CgroupMount:
    """One cgroup hierarchy of the host: recreated (namespaced, read-only) in the container."""

    name: str  # directory under /sys/fs/cgroup ("" when /sys/fs/cgroup itself is cgroup2)
    fstype: str  # "cgroup" or "cgroup2"
    options: str  # v1: the hierarchy's controllers/name ("memory", "name=systemd")


CgroupLayout = tuple[list[CgroupMount], list[tuple[str, str]]]  # host_cgroup_layout(): mounts, symlinks


@dataclass(frozen=True)
class CgroupView:
    """What the container's /sys/fs/cgroup shows: only hierarchies it has a group of its own in.

    `joined`: the names (under /sys/fs/cgroup) of those hierarchies; None when the caller put the
    process in its groups itself (every hierarchy is shown, each rooted at the process's group).
    `trees`: host cgroup namespace only: per name, a detached clone of the container's directory
    (taken before pivot_root), bound where a private namespace would mount the hierarchy: without a
    namespace of its own, a cgroup mount would show the host's whole tree (runc binds these too).
    """

    layout: CgroupLayout
    joined: frozenset[str] | None = None
    trees: dict[str, int] = field(default_factory=dict)

    def close(self) -> None:
        for fd in self.trees.values():
            os.close(fd)


CGROUP_MOUNT_POINT = "/sys/fs/cgroup"


def hierarchy_names(layout: CgroupLayout, procs_files: list[Path]) -> dict[str, Path]:
    """Per hierarchy name of `layout`, the directory of the group whose `cgroup.procs` is listed.

    String work only (no lookups: this runs on every container start): the component after
    /sys/fs/cgroup names the hierarchy, through the layout's symlinks (cpu -> cpu,cpuacct).
    """
    mounts, links = layout
    names = {m.name for m in mounts}
    aliases = dict(links)
    found: dict[str, Path] = {}
    for procs in procs_files:
        text = str(procs)
        if not text.startswith(CGROUP_MOUNT_POINT + "/"):
            continue
        if names == {""}:
            found[""] = Path(procs).parent
            continue
        first = text[len(CGROUP_MOUNT_POINT) + 1:].split("/", 1)[0]
        first = aliases.get(first, first)
        if first in names:
            found[first] = Path(procs).parent
    return found


def cgroup_view(layout: CgroupLayout, procs_files: list[Path], host_namespace: bool) -> CgroupView:
    """The container's /sys/fs/cgroup, decided before pivot_root (host mode clones its directories
    now, while host paths are visible). Without `procs_files` (the caller joined the groups): every
    hierarchy in a private namespace, none in the host's (which groups are the container's is not
    known here, and showing the host's would expose them)."""
    if not procs_files:
        return CgroupView(layout, None if not host_namespace else frozenset())
    own = hierarchy_names(layout, procs_files)
    trees: dict[str, int] = {}
    if host_namespace:
        try:
            for name, directory in own.items():
                trees[name] = clone_mount(directory)
        except BaseException:
            for fd in trees.values():
                os.close(fd)
            raise
    return CgroupView(layout, frozenset(own), trees)


def host_cgroup_layout(mountinfo: str = "/proc/self/mountinfo") -> CgroupLayout:
    """The hierarchies mounted under /sys/fs/cgroup, and the symlinks there (e.g. cpu -> cpu,cpuacct).

    Read before pivot_root, so the container gets the same layout as the host (v1, v2 or hybrid).
    """
    mounts = []
    with open(mountinfo) as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            point, fstype, options = fields[4], fields[sep + 1], fields[sep + 3]
            if fstype not in ("cgroup", "cgroup2"):
                continue
            if point == "/sys/fs/cgroup":
                name = ""
            elif point.startswith("/sys/fs/cgroup/") and "/" not in point[len("/sys/fs/cgroup/"):]:
                name = point[len("/sys/fs/cgroup/"):]
            else:
                continue
            kept = ",".join(o for o in options.split(",") if o not in ("rw", "ro"))
            mounts.append(CgroupMount(name, fstype, kept))
    links = []
    try:
        for entry in os.scandir("/sys/fs/cgroup"):
            if entry.is_symlink():
                links.append((entry.name, os.readlink(entry.path)))
    except OSError:
        pass
    return mounts, links


def mount_cgroups(view: CgroupView, writable: bool) -> None:
    """/sys/fs/cgroup like Docker: each hierarchy the container has a group in, showing that group.

    Private cgroup namespace: each hierarchy mounted from inside it (its group is the mount's
    root). Host namespace: the clone of its group's directory bound there instead. A tmpfs holds
    them on v1 and hybrid hosts (with the host's symlinks, e.g. cpu -> cpu,cpuacct). Read-only
    unless privileged. A hierarchy the kernel refuses is left out.
    """
    mounts, links = view.layout
    if not mounts:
        return
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | (0 if writable else MS_RDONLY)
    if len(mounts) == 1 and mounts[0].name == "":
        if view.joined is not None and "" not in view.joined:
            syscalls.mount("tmpfs", CGROUP_MOUNT_POINT, "tmpfs", flags | MS_RDONLY, "mode=555,size=0")
        elif "" in view.trees:
            _attach_cgroup_tree(view.trees[""], CGROUP_MOUNT_POINT, flags)
        else:
            syscalls.mount("cgroup2", CGROUP_MOUNT_POINT, "cgroup2", flags)
        return
    syscalls.mount("tmpfs", CGROUP_MOUNT_POINT, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755")
    shown = set()
    for mount in mounts:
        if not mount.name or (view.joined is not None and mount.name not in view.joined):
            continue
        target = f"{CGROUP_MOUNT_POINT}/{mount.name}"
        os.mkdir(target, 0o555)
        try:
            if mount.name in view.trees:
                _attach_cgroup_tree(view.trees[mount.name], target, flags)
            else:
                syscalls.mount(mount.fstype, target, mount.fstype, flags, mount.options or None)
        except OSError:
            os.rmdir(target)
            continue
        shown.add(mount.name)
    for name, target in links:
        if target in shown:
            os.symlink(target, f"{CGROUP_MOUNT_POINT}/{name}")
    if not writable:
        syscalls.mount(None, CGROUP_MOUNT_POINT, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)


def _attach_cgroup_tree(tree: int, target: str, flags: int) -> None:
    """Bind a cloned group directory at `target` with the cgroup mounts' flags (a bind takes its
    source's flags: read-only needs the remount)."""
    syscalls.move_mount(tree, target)
    syscalls.mount(None, target, None, MS_BIND | MS_REMOUNT | flags)


def _remount_readonly(path: str) -> None:
    """Make a bind mount read-only, keeping its nosuid/nodev/noexec flags."""
    keep = os.statvfs(path).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC)
    syscalls.mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | keep)


def make_tree_readonly(path: str, force: bool) -> None:
    """Every mount below `path` read-only too, in one mount_setattr(2) (runc's "rro"). A kernel
    without it (before 5.12: ENOSYS) leaves the top mount's remount as the only one, as Docker
    falls back to "ro", unless `force` (ReadOnlyForceRecursive), then it is Docker's error."""
    try:
        syscalls.mount_setattr(path, syscalls.MOUNT_ATTR_RDONLY, flags=syscalls.AT_RECURSIVE)
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
        if force:
            raise OSError(errno.ENOSYS, f"bind {path}: rro is not supported: function not implemented "
                                        "(kernel is older than 5.12?)") from None


def mount_binds(binds: list[BindMount], source_fds: list[int]) -> None:
    """Attach each cloned host source at its destination, resolved inside the container."""
    for bind, fd in zip(binds, source_fds, strict=True):
        mount_bind(bind, fd)


def mount_bind(bind: BindMount, source_fd: int) -> None:
    dest = os.path.normpath("/" + bind.destination.lstrip("/"))
    if stat.S_ISDIR(os.fstat(source_fd).st_mode):
        _ensure_dir(dest)
    else:
        _ensure_file(dest)
    syscalls.move_mount(source_fd, dest)
    if bind.readonly:
        _remount_readonly(dest)
        if bind.readonly_depth != READONLY_TOP:
            make_tree_readonly(dest, force=bind.readonly_depth == READONLY_FORCE_RECURSIVE)
    syscalls.mount(None, dest, None, PROPAGATIONS.get(bind.propagation, MS_PRIVATE | MS_REC))


def make_root_shared() -> None:
    """With a shared bind the container's root is shared too, as Docker sets RootfsPropagation
    (runc applies it after pivot_root, so only the container's own mounts are affected)."""
    syscalls.mount(None, "/", None, MS_SHARED)


_TMPFS_FLAGS = {"ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}
_TMPFS_CLEARED = {"rw", "suid", "dev", "exec"}


def mount_tmpfs(destination: str, options: str) -> None:
    """An empty tmpfs at `destination` (inside the container); `options` as engine.container.mounts writes them."""
    dest = os.path.normpath("/" + destination.lstrip("/"))
    flags, data = 0, []
    for word in options.split(","):
        if word in _TMPFS_FLAGS:
            flags |= _TMPFS_FLAGS[word]
        elif word and word not in _TMPFS_CLEARED:
            data.append(word)
    _ensure_dir(dest)
    syscalls.mount("tmpfs", dest, "tmpfs", flags, ",".join(data))


def mount_in_order(binds: list[BindMount], source_fds: list[int], tmpfs: list[tuple[str, str]]) -> None:
    """Binds and tmpfs mounts, shallowest destination first (as Docker sorts them), so that a mount
    inside another one's destination is not hidden by it."""
    steps = [(bind.destination, i, "bind") for i, bind in enumerate(binds)]
    steps += [(dest, i, "tmpfs") for i, (dest, _) in enumerate(tmpfs)]
    steps.sort(key=lambda step: len([p for p in os.path.normpath("/" + step[0]).split("/") if p]))
    for _, i, kind in steps:
        if kind == "bind":
            mount_bind(binds[i], source_fds[i])
        else:
            mount_tmpfs(*tmpfs[i])


def open_verified_null() -> int:
    """An O_PATH fd of /dev/null that really is char 1:3 (runc CVE-2025-31133)."""
    fd = os.open("/dev/null", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise OSError(errno.EPERM, "/dev/null is not the null device (1:3): refusing to mask with it")
    return fd


def mask_paths(paths: list[str] | tuple[str, ...]) -> None:
    """Hide files behind /dev/null and directories behind an empty read-only tmpfs."""
    if not paths:
        return
    null_fd = open_verified_null()
    try:
        for path in paths:
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                syscalls.mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0")
            else:
                syscalls.mount(f"/proc/self/fd/{null_fd}", path, None, MS_BIND)
    finally:
        os.close(null_fd)


def readonly_paths(paths: list[str] | tuple[str, ...]) -> None:
    """Bind each path onto itself, then remount it read-only."""
    for path in paths:
        try:
            syscalls.mount(path, path, None, MS_BIND | MS_REC)
        except FileNotFoundError:
            continue
        _remount_readonly(path)


def make_root_readonly() -> None:
    """--read-only: the root mount becomes read-only; /dev, /proc, binds keep their own flags."""
    _remount_readonly("/")


def ensure_workdir(path: str) -> None:
    """Docker creates a missing WorkingDir; a symlink is followed inside the container only."""
    os.makedirs(path, mode=0o755, exist_ok=True)


def set_hostname(hostname: str, domainname: str = "") -> None:
    if hostname:
        syscalls.sethostname(hostname)
    if domainname:
        syscalls.setdomainname(domainname)
