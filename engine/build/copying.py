"""COPY, ADD and WORKDIR as a layer tar: what Docker's classic builder would leave in a container's
writable layer after copying, without running a container.

Rules (moby's copy.go):
- A relative destination is under the WORKDIR; a destination ending in `/`, or one the image already
  has as a directory, takes each source *in* it; several sources need such a destination.
- A directory source is copied by its contents; ADD extracts a local tar archive (plain, gzip,
  bzip2, xz) into the destination instead of copying it (with the engine's layer extractor).
- Owners are 0:0, or `--chown`'s (names looked up in the image's /etc/passwd and /etc/group; a user
  without a group uses the UID as the GID); COPY --from without --chown keeps the source's owners.
- Directories the destination needs are created 0755 with those owners; directories the image
  already has are written with the image's own attributes (mode, owners, mtime), as overlayfs'
  copy-up would, so `COPY x /tmp/x` keeps /tmp 1777.

The tar is spooled under the engine's tmp dir and handed to the store (`ImageStore.add_layer`).
Invariant: every member name is relative, clean and inside the image's root (symlinked parents are
resolved through the image, engine.build.layered), so the layer can never write outside it.
"""

from __future__ import annotations

import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from engine.build.layered import Entry, LayeredView
from engine.errors import InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int


@dataclass(frozen=True)
class Item:
    """One source to copy: its real path on the host and the name it is copied under."""

    name: str  # basename at the destination (a file source copied into a directory)
    host: Path
    is_dir: bool
    children: tuple[tuple[str, Path, os.stat_result], ...] = ()  # a directory's entries (relative names)
    owner: Owner | None = None  # the source's own owners (COPY --from), None: use the copy's owner
    archive: bool = False  # ADD: extract it


def resolve_chown(view: LayeredView, spec: str) -> Owner:
    """`--chown=user[:group]` with names looked up in the destination image."""
    user, sep, group = spec.partition(":")
    uid = _lookup_id(view, "/etc/passwd", user, "user")
    gid = _lookup_id(view, "/etc/group", group, "group") if sep and group else uid
    return Owner(uid, gid)


def _lookup_id(view: LayeredView, path: str, name: str, kind: str) -> int:
    if name.isdigit():
        return int(name)
    text = view.read_text(path) or ""
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == name and fields[2].isdigit():
            return int(fields[2])
    raise NotFound(f"unable to convert uid/gid chown string to host mapping: can't find {'uid' if kind == 'user' else 'gid'} "
                   f"for {kind} {name}: no such {kind}: {name}")


def is_archive(path: Path) -> bool:
    """A tar ADD extracts: plain (ustar magic), gzip, bzip2 or xz compressed."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        try:
            with tarfile.open(path, "r:*") as tar:
                return tar.next() is not None
        except (tarfile.TarError, OSError, EOFError):
            return False
    return len(head) >= 262 and head[257:262] == b"ustar"


class LayerBuilder:
    """The members of one COPY/ADD/WORKDIR layer, keyed by their path in the image."""

    def __init__(self, view: LayeredView, owner: Owner, tmp_dir: Path) -> None:
        self.view = view
        self.owner = owner
        self.tmp_dir = tmp_dir  # where ADD unpacks archives (under the engine's tmp dir)
        self.members: dict[str, tuple[tarfile.TarInfo, Path | None]] = {}
        self.unpacked: list[Path] = []

    # --- directories ------------------------------------------------------------------------------

    def ensure_dir(self, path: str) -> str:
        """`path` (resolved in the image) as a directory, with its parents; the resolved path."""
        resolved = self.view.resolve(path)
        parts = [p for p in resolved.split("/") if p]
        for i in range(1, len(parts) + 1):
            current = "/" + "/".join(parts[:i])
            if current in self.members:
                continue
            existing = self.view.entry(current)
            if existing is not None and not existing.is_dir:
                raise InvalidArgument(f"cannot create directory {current}: the image has a file there")
            self.members[current] = (self._dir_info(current, existing), None)
        return resolved

    def _dir_info(self, path: str, existing: Entry | None) -> tarfile.TarInfo:
        info = tarfile.TarInfo(path.lstrip("/"))
        info.type = tarfile.DIRTYPE
        if existing is not None:
            st = existing.st
            info.mode, info.uid, info.gid, info.mtime = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)
        else:
            info.mode, info.uid, info.gid = 0o755, self.owner.uid, self.owner.gid
            info.mtime = int(_now())
        return info

    # --- files ------------------------------------------------------------------------------------

    def add_path(self, dest: str, host: Path, st: os.stat_result, owner: Owner | None) -> None:
        """One file, link or directory at `dest` (its parent already made), from `host`."""
        info = tarfile.TarInfo(dest.lstrip("/"))
        info.mode = stat.S_IMODE(st.st_mode)
        info.mtime = int(st.st_mtime)
        chosen = owner or self.owner
        info.uid, info.gid = chosen.uid, chosen.gid
        data: Path | None = None
        if stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(st.st_mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(host)
        elif stat.S_ISREG(st.st_mode):
            info.size = st.st_size
            data = host
        elif stat.S_ISFIFO(st.st_mode):
            info.type = tarfile.FIFOTYPE
        else:
            return  # device nodes and sockets are not copied from a context
        self.members[dest] = (info, data)

    def copy_item(self, item: Item, dest: str, into_dir: bool) -> None:
        if item.archive:
            self.extract_archive(item.host, self.ensure_dir(dest))
            return
        if item.is_dir:
            base = self.ensure_dir(dest)
            top = self.members[base][0]
            if self.view.entry(base) is None:  # a directory the copy makes takes the source's mode
                st = os.lstat(item.host)
                top.mode, top.mtime = stat.S_IMODE(st.st_mode), int(st.st_mtime)
                owner = item.owner or self.owner
                top.uid, top.gid = owner.uid, owner.gid
            for rel, host, st in item.children:
                self.add_path(f"{base.rstrip('/')}/{rel}", host, st, _owner_of(st) if item.owner else None)
            return
        if into_dir:
            parent = self.ensure_dir(dest)
            target = f"{parent.rstrip('/')}/{item.name}"
        else:
            parent = self.ensure_dir(os.path.dirname(dest.rstrip("/")) or "/")
            target = f"{parent.rstrip('/')}/{os.path.basename(dest.rstrip('/'))}"
        st = os.lstat(item.host)
        self.add_path(target, item.host, st, item.owner)

    def extract_archive(self, archive: Path, dest_dir: str) -> None:
        """ADD's local tar: its members under `dest_dir`, unpacked first with the engine's layer
        extractor (every path checked, nothing written through a symlink), owners kept."""
        import tempfile

        from engine.errors import IntegrityError
        from engine.image.extract import extract_layer

        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        unpacked = Path(tempfile.mkdtemp(prefix="add-", dir=self.tmp_dir))
        self.unpacked.append(unpacked)
        try:
            with _decompressed(archive) as stream:
                extract_layer(stream, unpacked)
        except (IntegrityError, OSError, EOFError) as exc:
            raise InvalidArgument(f"ADD failed: cannot extract {archive.name}: {exc}") from None
        for directory, dirs, files in os.walk(unpacked):
            dirs.sort()
            rel_dir = os.path.relpath(directory, unpacked)
            for name in sorted([*dirs, *files]):
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                host = Path(directory) / name
                st = os.lstat(host)
                self.add_path(f"{dest_dir.rstrip('/')}/{rel}", host, st, _owner_of(st))

    def close(self) -> None:
        """Remove what ADD unpacked (the tar is written by then)."""
        import shutil

        for path in self.unpacked:
            shutil.rmtree(path, ignore_errors=True)
        self.unpacked.clear()

    def write(self, out: BinaryIO) -> None:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(self.members):
                info, data = self.members[path]
                if data is None:
                    tar.addfile(info)
                else:
                    with open(data, "rb") as f:
                        tar.addfile(info, f)


def _decompressed(archive: Path) -> BinaryIO:
    """The archive's bytes, bzip2 and xz undone here (the extractor itself reads plain and gzip)."""
    with open(archive, "rb") as f:
        head = f.read(6)
    if head[:3] == b"BZh":
        import bz2

        return bz2.open(archive, "rb")  # type: ignore[return-value]
    if head == b"\xfd7zXZ\x00":
        import lzma

        return lzma.open(archive, "rb")  # type: ignore[return-value]
    return open(archive, "rb")


def _owner_of(st: os.stat_result) -> Owner:
    return Owner(st.st_uid, st.st_gid)


def _now() -> float:
    import time

    return time.time()
