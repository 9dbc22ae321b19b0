"""`docker cp`'s rules (the client half of the copy; engine.container.archive is the container half).

Docker's CLI turns a copy into an archive GET or PUT on a path in the container and then renames
the archive's top entry so that the copy lands where `cp -a` would put it. The same rules here:

- a directory copied onto an existing directory goes *into* it (`DEST/<name>`), unless the source
  ends in `/.`, which copies its contents;
- a directory onto a missing path creates that path; onto a file it is an error;
- a file onto a directory goes into it; onto a missing path (its parent must exist; a trailing `/`
  means "a directory", which must then exist) or a file, it becomes that path;
- `-` as the host side is a tar stream on stdout (the container's archive as is) or on stdin
  (extracted into a directory of the container).

The container side always goes through engine.container.archive's helper (the one implementation
the Engine API's `archive` endpoints also use): it enters the container's mount namespace, or
mounts its overlay privately when stopped, so paths resolve inside the container's root.

Invariants: nothing is written before both sides are checked (a bad copy changes nothing); the host
side never writes outside the destination (archive members are checked as the helper checks them,
and no member is written through a symbolic link); copies into a container belong to root unless
`archive` (cp -a) keeps the source's owners, or gives them to the container's Config.User when it
has one (moby's copyUIDGID). Docker's own CLI sends the host's owners even without -a (the
daemon keeps an archive's numeric owners, as the helper does for the Engine API); dockui's CLI
keeps root there, as Docker's documentation says.
"""

from __future__ import annotations

import json
import os
import posixpath
import subprocess
import tarfile
from dataclasses import dataclass
from typing import BinaryIO

from engine.config import EngineConfig
from engine.errors import DockuiError, InvalidArgument, NotFound

HELPER_NOT_FOUND = 2


@dataclass(frozen=True)
class CopyTarget:
    """One side of `cp`: a container path (`container` set) or a host path (`-` for a stream)."""

    container: str | None
    path: str


def parse_target(text: str) -> CopyTarget:
    """`CONTAINER:PATH` or a host path, as Docker splits them (a path with a `/` before the first
    `:` is a host path: `./a:b`)."""
    if text.startswith(("/", ".")) or ":" not in text:
        return CopyTarget(None, text)
    name, _, path = text.partition(":")
    if not name:
        raise InvalidArgument(f"invalid copy target {text!r}: the container name is empty")
    if not path:
        raise InvalidArgument(f"invalid copy target {text!r}: the path is empty")
    return CopyTarget(name, path)


@dataclass(frozen=True)
class ContainerPath:
    """What the helper's `stat` says about a container path (Docker's PathStat, the fields we use)."""

    name: str
    is_dir: bool
    exists: bool
    link_target: str = ""  # a symbolic link's target, resolved inside the container


GO_MODE_DIR = 1 << 31


def _helper(config: EngineConfig, op: str, container_id: str, *args: str, stdin: int | None = None) -> subprocess.Popen:
    from engine.container import archive

    argv, env = archive.helper_command(op, config, container_id, *args)
    return subprocess.Popen(argv, env=env, cwd="/", stdin=stdin if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _helper_error(process: subprocess.Popen, ref: str = "", path: str = "") -> DockuiError:
    """The helper's one line; a missing path in moby's words, naming the container as it was given."""
    assert process.stderr is not None
    lines = process.stderr.read().decode(errors="replace").strip().splitlines()
    code = process.wait()
    if code == HELPER_NOT_FOUND and ref and path:
        return NotFound(f"Could not find the file {path} in container {ref}")
    message = lines[-1] if lines else f"the copy helper exited {code}"
    return NotFound(message) if code == HELPER_NOT_FOUND else DockuiError(message)


def container_stat(config: EngineConfig, container_id: str, path: str) -> ContainerPath:
    process = _helper(config, "stat", container_id, path)
    out, err = process.communicate()  # reads stderr to its end and closes it: its text is `err`
    if process.returncode == HELPER_NOT_FOUND:
        return ContainerPath(posixpath.basename(path.rstrip("/")), False, False)
    if process.returncode != 0 or not out:
        lines = err.decode(errors="replace").strip().splitlines()
        raise DockuiError(lines[-1] if lines else f"the copy helper exited {process.returncode}")
    info = json.loads(out.splitlines()[0])
    return ContainerPath(info["name"], bool(info["mode"] & GO_MODE_DIR), True, info.get("linkTarget") or "")


# ------------------------------------------------------------------------------------------ out of a container


def copy_from_container(config: EngineConfig, ref: str, src: str, dest: str, out: BinaryIO,
                        follow_link: bool = False) -> None:
    """`cp CONTAINER:SRC DEST` (DEST `-`: the archive to `out`); `follow_link` (-L): a symbolic
    link SRC copies what it points to (resolved in the container), under the link's name."""
    from engine.container.state import find_container

    record = find_container(config, ref)
    path = _absolute(src)
    link_name = ""
    if follow_link:
        target = container_stat(config, record.id, path)
        if target.link_target:
            link_name, path = target.name, target.link_target
    process = _helper(config, "get", record.id, path)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise _helper_error(process, ref, path)
    info = json.loads(line)
    try:
        if dest == "-" and link_name:
            _rename_stream(process.stdout, out, info["name"], link_name)
        elif dest == "-":
            while chunk := process.stdout.read(1 << 16):
                out.write(chunk)
            out.flush()
        else:
            src_is_dir = bool(info["mode"] & GO_MODE_DIR)
            root, rename = _host_destination(src, dest, link_name or info["name"], src_is_dir)
            _extract_host(process.stdout, root, info["name"], rename)
    finally:
        process.stdout.close()
        code = process.wait()
    if code != 0:
        raise _helper_error(process)
    _log_copied(config, record.id, "get")


def _host_destination(src: str, dest: str, name: str, src_is_dir: bool) -> tuple[str, str]:
    """(directory to extract into, name the archive's top entry takes there), checked before any write."""
    contents_only = src_is_dir and (src.endswith("/.") or src == ".")
    if os.path.isdir(dest):
        return dest, "" if contents_only else name
    if os.path.lexists(dest):
        if src_is_dir:
            raise InvalidArgument(f"cannot copy directory to a file: {dest}")
        return os.path.dirname(os.path.abspath(dest)), os.path.basename(dest)
    if dest.endswith("/") and not src_is_dir:
        raise NotFound(f"destination directory {dest} does not exist")
    parent = os.path.dirname(os.path.abspath(dest.rstrip("/")))
    if not os.path.isdir(parent):
        raise NotFound(f"destination directory {parent} does not exist")
    if contents_only:
        os.mkdir(dest)
        return dest, ""
    return parent, os.path.basename(dest.rstrip("/"))


def _extract_host(stream: BinaryIO, root: str, top: str, rename: str) -> None:
    """Extract the helper's archive (top entry `top`) under `root`, the top entry renamed `rename`
    ("" : its contents go straight into root)."""
    from engine.container.archive import _check_member

    real_root = os.path.realpath(root)
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            if top == "/":  # a copy of / names its entries "/", "/bin" (Docker's names): relative to it here
                _unroot(member)
            _check_member(member)
            rest = _rest(member.name, top)
            if rest is None:
                raise tarfile.TarError(f"unexpected archive member {member.name!r}")
            member.name = "/".join(p for p in (rename, rest) if p)
            if not member.name:
                continue  # the top directory itself, copied as contents: root already exists
            _check_inside(real_root, member.name)
            if member.isdir() and os.path.isdir(os.path.join(root, member.name)):
                continue  # an existing directory is merged into, as Docker does
            if not member.isdir() and os.path.lexists(os.path.join(root, member.name)):
                os.unlink(os.path.join(root, member.name))
            if member.islnk():
                member.linkname = "/".join(p for p in (rename, _rest(member.linkname, top) or "") if p)
            member.uid, member.gid = os.getuid(), os.getgid()  # Docker: the caller's uid:gid
            tar.extract(member, root, set_attrs=True, numeric_owner=True)


def _unroot(member: tarfile.TarInfo) -> None:
    member.name = member.name.lstrip("/")
    if member.islnk():
        member.linkname = member.linkname.lstrip("/")


def _rest(name: str, top: str) -> str | None:
    """`name` below the archive's top entry (None: not under it); every name is under `/`."""
    if top == "/":
        return name
    return name[len(top):].lstrip("/") if name == top or name.startswith(top + "/") else None


def _rename_stream(stream: BinaryIO, out: BinaryIO, top: str, name: str) -> None:
    """The helper's archive with its top entry `top` renamed `name` (cp -L to `-`)."""
    with tarfile.open(fileobj=stream, mode="r|") as source, \
            tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as target:
        for member in source:
            if member.name == top or member.name.startswith(top + "/"):
                member.name = name + member.name[len(top):]
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
    out.flush()


def _check_inside(real_root: str, name: str) -> None:
    """No member is written through a symbolic link (one the archive made or the host had)."""
    parent = os.path.dirname(os.path.join(real_root, name))
    if os.path.realpath(parent) != os.path.normpath(parent):
        raise tarfile.TarError(f"refusing archive member {name!r}: its directory is a symbolic link")


# ------------------------------------------------------------------------------------------ into a container


def copy_to_container(config: EngineConfig, ref: str, src: str, dest: str, source: BinaryIO,
                      keep_owner: bool = False, follow_link: bool = False) -> None:
    """`cp SRC CONTAINER:DEST` (SRC `-`: a tar from `source`, extracted into the directory DEST)."""
    from engine.container.state import find_container

    record = find_container(config, ref)
    dest = _absolute(dest)
    target = container_stat(config, record.id, dest)
    if target.link_target:  # a destination that is a symbolic link means where it points, as Docker does
        dest = target.link_target
        target = container_stat(config, record.id, dest)
    if src == "-":
        if not target.is_dir:
            raise InvalidArgument(f"destination {dest!r} must be a directory" if target.exists
                                  else f"Could not find the file {dest} in container {ref}")
        _put(config, record.id, dest, lambda stdin: _pump(source, stdin))
        return
    if not os.path.lexists(src):
        raise NotFound(f"lstat {src}: no such file or directory")
    src_path = os.path.realpath(src) if follow_link else src
    src_is_dir = os.path.isdir(src_path) and not os.path.islink(src_path)
    into, name = _container_destination(config, record.id, src, dest, target, src_is_dir)
    # cp -a into a container with a Config.User: that user owns the copy, as moby's copyUIDGID
    owner = (record.config.get("User") or "") if keep_owner else ""
    _put(config, record.id, into, lambda stdin: _write_tar(stdin, src_path, name, keep_owner), owner)


def _container_destination(config: EngineConfig, container_id: str, src: str, dest: str,
                           target: ContainerPath, src_is_dir: bool) -> tuple[str, str]:
    contents_only = src_is_dir and (src.endswith("/.") or src == ".")
    if target.exists and target.is_dir:
        return dest, "" if contents_only else os.path.basename(os.path.normpath(os.path.abspath(src)))
    if target.exists:
        if src_is_dir:
            raise InvalidArgument(f"cannot copy directory to a file: {dest}")
        return posixpath.dirname(dest.rstrip("/")) or "/", posixpath.basename(dest)
    if dest.endswith("/") and not src_is_dir:
        raise NotFound(f"destination directory {dest} does not exist in the container")
    parent = posixpath.dirname(dest.rstrip("/")) or "/"
    if not container_stat(config, container_id, parent).is_dir:
        raise NotFound(f"Could not find the file {parent} in container {container_id[:12]}")
    return parent, posixpath.basename(dest.rstrip("/"))


def _write_tar(stdin: BinaryIO, src: str, name: str, keep_owner: bool) -> None:
    def owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
        if not keep_owner:
            info.uid = info.gid = 0
        info.uname = info.gname = ""  # numeric ids, resolved by nothing in the container
        return info

    with tarfile.open(fileobj=stdin, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        if name:
            tar.add(src, arcname=name, recursive=True, filter=owner)
        else:  # a directory's contents
            for entry in sorted(os.listdir(src)):
                tar.add(os.path.join(src, entry), arcname=entry, recursive=True, filter=owner)


def _pump(source: BinaryIO, stdin: BinaryIO) -> None:
    while chunk := source.read(1 << 16):
        stdin.write(chunk)


def _put(config: EngineConfig, container_id: str, into: str, feed, owner: str = "") -> None:  # noqa: ANN001 - a writer callback
    process = _helper(config, "put", container_id, into, "1", owner, stdin=subprocess.PIPE)
    assert process.stdin is not None
    try:
        feed(process.stdin)
    except BrokenPipeError:
        pass  # the helper stopped reading: its error is reported below
    finally:
        try:
            process.stdin.close()
        except BrokenPipeError:
            pass
    if process.wait() != 0:
        raise _helper_error(process)
    _log_copied(config, container_id, "put")


def _log_copied(config: EngineConfig, container_id: str, op: str) -> None:
    from engine.container.archive import log_copied

    log_copied(config, container_id, op)


def _absolute(path: str) -> str:
    return path if path.startswith("/") else "/" + path
