"""`docker cp` underneath: stat, read (as a tar) and write (from a tar) a path in a container's
filesystem, running or not.

The work happens in a disposable helper, a fresh single-threaded interpreter (`python -m
engine.container.archive ...`: it changes its own mount namespace and root, which a threaded
process such as the Engine API service must not do). The helper sees the container's filesystem as
the container does, then resolves every path from that root:

- running container: it joins the container's mount namespace (setns), whose root is the
  container's root, volumes and binds included;
- stopped container: in a private mount namespace of its own it mounts the container's overlay
  (the image's layers, the container's diff as the upper layer), chroots into it and binds the
  container's volumes and bind mounts at their destinations (resolved inside that root, as the
  container's own start does), so a copy lands where the container will see it; the mounts
  vanish with the helper, nothing is mounted on the host.

Invariants: a path is resolved inside the container's root (a symlink to /etc means the container's
/etc), never the host's; an archive written in is extracted under that root with the checks of tarfile's `tar`
filter (no absolute names, no member leaving the destination); the helper's stdout carries only the
stat line and the tar.

Protocol: `stat` prints one JSON line (Docker's PathStat); `get` prints that line then the tar;
`put PATH NOOVERWRITE [OWNER]` reads the tar on stdin; `export` prints the container's whole filesystem as a tar
(engine.container.export). Exit status 0, or 2 (no such path), 3 (bad request), 1 (other), with
one line on stderr.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tarfile
from dataclasses import asdict, dataclass

from engine.config import EngineConfig
from engine.errors import InvalidArgument
from engine.image.imageconfig import resolve_user  # not in cmd_put: the helper leaves the root first

EXIT_NOT_FOUND = 2
EXIT_INVALID = 3
# Go's os.FileMode type bits, as Docker's PathStat carries them.
GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_DEVICE = 1 << 26
GO_MODE_PIPE = 1 << 25
GO_MODE_SOCKET = 1 << 24
GO_MODE_SETUID = 1 << 23
GO_MODE_SETGID = 1 << 22
GO_MODE_CHARDEV = 1 << 21
GO_MODE_STICKY = 1 << 20


@dataclass(frozen=True)
class PathStat:
    """Docker's container path stat (the X-Docker-Container-Path-Stat header, base64 JSON)."""

    name: str
    size: int
    mode: int
    mtime: str
    linkTarget: str  # noqa: N815 - Docker's field name


def go_mode(st: os.stat_result) -> int:
    mode = st.st_mode & 0o777
    kind = stat.S_IFMT(st.st_mode)
    mode |= {stat.S_IFDIR: GO_MODE_DIR, stat.S_IFLNK: GO_MODE_SYMLINK, stat.S_IFIFO: GO_MODE_PIPE,
             stat.S_IFSOCK: GO_MODE_SOCKET, stat.S_IFBLK: GO_MODE_DEVICE,
             stat.S_IFCHR: GO_MODE_DEVICE | GO_MODE_CHARDEV}.get(kind, 0)
    if st.st_mode & stat.S_ISUID:
        mode |= GO_MODE_SETUID
    if st.st_mode & stat.S_ISGID:
        mode |= GO_MODE_SETGID
    if st.st_mode & stat.S_ISVTX:
        mode |= GO_MODE_STICKY
    return mode


def path_stat(path: str) -> PathStat:
    """Stat `path` as Docker does: a trailing symlink is reported as the link (linkTarget set)."""
    from engine.util.timefmt import format_rfc3339

    st = os.lstat(path)
    target = ""
    if stat.S_ISLNK(st.st_mode):
        target = os.path.realpath(path)
    stamp = format_rfc3339(st.st_mtime_ns)
    return PathStat(os.path.basename(path.rstrip("/")) or "/", st.st_size, go_mode(st), stamp, target)


# ------------------------------------------------------------------------------------------ entering


def enter_container(config: EngineConfig, container_id: str, writable: bool) -> None:
    """Make our root the container's root (see the module docstring). Single-threaded callers only."""
    from engine.container import state

    record = state.load(config, container_id)
    if record.status in ("running", "paused") and state.process_alive(record.pid, record.pid_start):
        _join_running(record.pid)
    else:
        _mount_stopped(config, record.id, record.image_id, writable, record.mounts)


def _join_running(pid: int) -> None:
    from engine.kernel import syscalls

    fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.setns(fd, syscalls.CLONE_NEWNS)  # root and cwd become the namespace's root
    finally:
        os.close(fd)
    os.chdir("/")


def _mount_stopped(config: EngineConfig, container_id: str, image_id: str, writable: bool,
                   mounts: list[dict]) -> None:
    from pathlib import Path

    from engine.image.store import ImageStore
    from engine.kernel import syscalls
    from engine.sandbox.rootfs import BindMount, make_mounts_slave, open_bind_sources

    store = ImageStore(config)
    layer = store.rw_layer_path(container_id)
    lowers = store.lowerdir_option(image_id)
    syscalls.unshare(syscalls.CLONE_NEWNS)
    make_mounts_slave()  # our mount stays in this namespace
    view = str(layer / "merged")  # the container's own mount point, free while it is stopped
    os.chdir(config.layers_dir)  # the image's lowers are `l/<link>`, relative to it
    if writable:
        options = f"lowerdir={lowers},upperdir={layer / 'diff'},workdir={layer / 'work'}"
        syscalls.mount("overlay", view, "overlay", 0, options)
    else:
        options = f"lowerdir={layer / 'diff'}:{lowers}"
        syscalls.mount("overlay", view, "overlay", syscalls.MS_RDONLY, options)
    binds = [BindMount(Path(m["Source"]), m["Destination"], not m.get("RW", True))
             for m in mounts if m.get("Type") in ("volume", "bind")]
    fds = open_bind_sources(binds)  # host paths: before the chroot
    os.chroot(view)
    os.chdir("/")
    _bind_volumes(binds, fds, writable)


def _bind_volumes(binds: list, fds: list[int], writable: bool) -> None:
    """The stopped container's volumes and binds (sources cloned before the chroot), mounted as its
    start mounts them, now that we are in its root. A read-only view skips a destination that does
    not exist yet (it cannot make the mount point, and nothing is there to read)."""
    from engine.sandbox import rootfs

    try:
        kept = [(b, fd) for b, fd in zip(binds, fds, strict=True) if writable or os.path.exists(_resolve(b.destination))]
        rootfs.mount_in_order([b for b, _ in kept], [fd for _, fd in kept], [])
    finally:
        for fd in fds:
            os.close(fd)


# ------------------------------------------------------------------------------------------ operations


def _resolve(path: str) -> str:
    if not path.startswith("/"):
        path = "/" + path
    return path


def cmd_stat(path: str) -> None:
    sys.stdout.buffer.write(json.dumps(asdict(path_stat(_resolve(path)))).encode() + b"\n")


def cmd_get(path: str) -> None:
    path = _resolve(path)
    info = path_stat(path)
    out = sys.stdout.buffer
    out.write(json.dumps(asdict(info)).encode() + b"\n")
    out.flush()
    # Docker names the entries after the path's last element ("." style copies are client-side).
    follow = path.endswith("/") or path.endswith("/.")
    source = os.path.realpath(path) if follow else path

    def swapped(member: tarfile.TarInfo) -> tarfile.TarInfo:
        # `path/` asks for what the link leads to: a link found there by tar's own lstat was put in
        # after realpath (a container swapping a directory for a link); never hand it out as the top.
        if follow and member.name == info.name and member.issym():
            raise tarfile.TarError(f"{path} changed while it was being copied")
        if info.name == "/":  # a copy of / keeps Docker's names ("/", "/foo"): tarfile strips the slash
            member.name = "/" + member.name
            if member.islnk():
                member.linkname = "/" + member.linkname
        return member

    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.add(source, arcname=info.name, recursive=True, filter=swapped)
    out.flush()


def cmd_put(path: str, no_overwrite_dir_non_dir: bool, owner: str = "") -> None:
    """Extract the tar on stdin into the directory `path`, with the archive's numeric owners (as
    moby's untar), or all owned by `owner` (the container's Config.User, resolved in its own
    /etc/passwd and /etc/group: moby's copyUIDGID)."""
    path = _resolve(path)
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(f"extraction point is not a directory: {path}")
    ids = None
    if owner:
        uid, gid, _ = resolve_user("/", owner)
        ids = (uid, gid)
    if not sys.stdin.buffer.peek(1):  # an empty body: nothing to extract (moby's untar of no bytes)
        return
    with tarfile.open(fileobj=sys.stdin.buffer, mode="r|*") as tar:
        for member in tar:
            _relative_names(member)
            target = os.path.join(path, member.name)
            if no_overwrite_dir_non_dir and os.path.lexists(target):
                if os.path.isdir(target) != member.isdir():
                    raise IsADirectoryError(f"cannot overwrite {'directory' if os.path.isdir(target) else 'non-directory'} "
                                            f"{target} with {'directory' if member.isdir() else 'non-directory'}")
            _check_member(member)
            if ids is not None:
                member.uid, member.gid = ids
            if member.islnk():
                _hard_link(path, member, target)
            else:
                tar.extract(member, path, set_attrs=True, numeric_owner=True)


class HardLinkError(tarfile.TarError):
    """A hard link whose target is not in the destination: Docker's `link OLD NEW: REASON`."""


def _hard_link(root: str, member: tarfile.TarInfo, target: str) -> None:
    """A hard link member, as Docker's untar makes it: os.link from `root/linkname` (a file the
    archive wrote earlier or one already there), replacing what `target` was. tarfile's own fallback
    (copy the target's data from the archive) cannot work on a stream and fails with a KeyError."""
    source = os.path.join(root, member.linkname)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.lexists(target) and not os.path.isdir(target):
        os.unlink(target)
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise HardLinkError(f"link {source} {target}: {reason}") from None


def _relative_names(member: tarfile.TarInfo) -> None:
    """An absolute member name (testcontainers sends `/dir/file` to put at `/`) is taken under the
    destination, as Docker joins it and as tarfile's filters strip its leading slashes; so is a
    hard link's target."""
    member.name = member.name.lstrip("/") or "."
    if member.islnk():
        member.linkname = member.linkname.lstrip("/")


def _check_member(member: tarfile.TarInfo) -> None:
    """tarfile's `tar` filter, by hand (this Python may predate extraction filters): no absolute
    names, no `..`, no hard link leaving the destination. Symbolic links may point anywhere: they
    resolve inside the container's root, where we are."""
    for name in (member.name, member.linkname if member.islnk() else ""):
        if name.startswith("/") or ".." in name.split("/"):
            raise tarfile.TarError(f"refusing archive member {member.name!r}: it would leave the destination")
    if member.isdev() or member.isfifo():
        return
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise tarfile.TarError(f"refusing archive member {member.name!r}: unsupported type")


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "export":
        return _export(argv[1], argv[2])
    if len(argv) < 4 or argv[0] not in ("stat", "get", "put"):
        print("usage: python -m engine.container.archive stat|get|put CONFIG_JSON CONTAINER_ID PATH [noOverwrite [owner]]",
              file=sys.stderr)
        return EXIT_INVALID
    from engine.container.monitor.context import config_from_json

    op, config_json, container_id, path = argv[:4]
    try:
        enter_container(config_from_json(config_json), container_id, writable=op == "put")
        if op == "stat":
            cmd_stat(path)
        elif op == "get":
            cmd_get(path)
        else:
            cmd_put(path, len(argv) > 4 and argv[4] == "1", argv[5] if len(argv) > 5 else "")
    except FileNotFoundError:
        print(f"Could not find the file {path} in container {container_id[:12]}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except (NotADirectoryError, IsADirectoryError, tarfile.TarError, InvalidArgument) as exc:
        print(_go_error(exc), file=sys.stderr)
        return EXIT_INVALID
    except Exception as exc:  # noqa: BLE001 - one line for the caller
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def _go_error(exc: Exception) -> str:
    """An OSError naming a path as Go says it (`stat /etc/passwd/: not a directory`), else its text."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"stat {exc.filename}: {exc.strerror.lower()}"
    return str(exc)


def _export(config_json: str, container_id: str) -> int:
    """`docker export` (engine.container.export forks, which this helper may)."""
    from engine.container.export import export
    from engine.container.monitor.context import config_from_json
    from engine.errors import DockuiError

    try:
        export(config_from_json(config_json), container_id, sys.stdout.buffer)
    except DockuiError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


def log_copied(config: EngineConfig, container_id: str, op: str) -> None:
    """moby's event for a copy that went through: `archive-path` for a `get`, `extract-to-dir` for a
    `put` (a `stat` has none). Written by whoever ran the helper: the helper itself has left the
    host's root by then."""
    from engine import events
    from engine.container import state
    from engine.errors import NotFound

    action = {"get": "archive-path", "put": "extract-to-dir"}.get(op)
    if action is not None:
        try:
            events.container(config, action, state.load(config, container_id))
        except NotFound:  # removed meanwhile: nothing left to name
            pass


def helper_command(op: str, config: EngineConfig, container_id: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """argv and environment of the helper (a fresh interpreter: it changes its namespace and root)."""
    from engine.container.exec_instances import helper_env
    from engine.container.monitor.context import config_to_json

    argv = [sys.executable, "-S", "-m", "engine.container.archive", op, config_to_json(config), container_id, *args]
    return argv, helper_env()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
