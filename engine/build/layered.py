"""An image's files read through its layer directories, as overlayfs would show them, without a mount.

COPY and WORKDIR need to know what the image already has (is the destination a directory? which
attributes do its parent directories have? who is `app` in /etc/passwd?) and COPY --from reads
files out of another image. A mount would need a mount namespace (the service is threaded); the
store's layer `diff` directories are enough: a path is looked up from the top layer down, a
whiteout (a 0/0 character device) hides it, an opaque directory (`trusted.overlay.opaque=y`)
hides what is below it. Symlinks are resolved inside the image's root (an absolute target
starts again at the image's `/`, `..` stops at it), never on the host.

Invariant: every host path this module returns lies inside one of the image's layer directories.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InvalidArgument

OPAQUE_XATTR = "trusted.overlay.opaque"
MAX_SYMLINKS = 40


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


@dataclass(frozen=True)
class Entry:
    """One path of the image: where its topmost copy is on the host, and that copy's lstat."""

    path: str  # inside the image, absolute and clean
    host: Path
    st: os.stat_result

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)


class LayeredView:
    """The merged view of layer directories given bottom to top (an empty list: `scratch`)."""

    def __init__(self, layer_dirs: list[Path]) -> None:
        self.layers = list(reversed(layer_dirs))  # top first

    def entry(self, path: str) -> Entry | None:
        """The entry at `path` exactly as written (no symlink followed), or None."""
        rel = os.path.normpath("/" + path).lstrip("/")
        if not rel or rel == ".":
            return Entry("/", self.layers[0], os.lstat(self.layers[0])) if self.layers else None
        parts = rel.split("/")
        for layer in self.layers:
            hidden_below = False
            current = str(layer)
            for i, part in enumerate(parts):
                current = os.path.join(current, part)
                try:
                    st = os.lstat(current)
                except FileNotFoundError:
                    break
                if _is_whiteout(st):
                    return None
                if i == len(parts) - 1:
                    return Entry("/" + rel, Path(current), st)
                if not stat.S_ISDIR(st.st_mode):
                    return None  # a file hides the directory lower layers had there
                if _opaque(current):
                    hidden_below = True
            if hidden_below:
                return None
        return None

    def resolve(self, path: str, follow_last: bool = True) -> str:
        """`path` with its symlinks resolved inside the image (the last one only if `follow_last`)."""
        pending = [p for p in os.path.normpath("/" + path).split("/") if p]
        resolved: list[str] = []
        hops = 0
        while pending:
            part = pending.pop(0)
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            if part == ".":
                continue
            candidate = "/" + "/".join([*resolved, part])
            found = self.entry(candidate)
            if found is not None and stat.S_ISLNK(found.st.st_mode) and (pending or follow_last):
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise InvalidArgument(f"too many levels of symbolic links in {path}")
                target = os.readlink(found.host)
                if target.startswith("/"):
                    resolved = []
                pending = [p for p in target.split("/") if p] + pending
                continue
            resolved.append(part)
        return "/" + "/".join(resolved)

    def lookup(self, path: str) -> Entry | None:
        """The entry `path` names, symlinks (also the last) followed."""
        return self.entry(self.resolve(path))

    def listdir(self, path: str) -> list[str]:
        """The names in directory `path` (resolved), merged over the layers."""
        rel = self.resolve(path).lstrip("/")
        names: set[str] = set()
        hidden: set[str] = set()
        for layer in self.layers:
            directory = os.path.join(str(layer), rel) if rel else str(layer)
            try:
                st = os.lstat(directory)
            except FileNotFoundError:
                if self._blocked(layer, rel):
                    break
                continue
            if _is_whiteout(st) or not stat.S_ISDIR(st.st_mode):
                break
            for name in os.listdir(directory):
                if name in names or name in hidden:
                    continue  # an upper layer decided this name already
                if _is_whiteout(os.lstat(os.path.join(directory, name))):
                    hidden.add(name)
                else:
                    names.add(name)
            if _opaque(directory):
                break
        return sorted(names)

    def _blocked(self, layer: Path, rel: str) -> bool:
        current = str(layer)
        for part in rel.split("/") if rel else []:
            nxt = os.path.join(current, part)
            try:
                st = os.lstat(nxt)
            except FileNotFoundError:
                return False
            if _is_whiteout(st) or not stat.S_ISDIR(st.st_mode) or _opaque(nxt):
                return True
            current = nxt
        return False

    def walk(self, path: str) -> list[tuple[str, Entry]]:
        """Every entry under directory `path` (relative names, sorted, directories before their contents)."""
        base = self.resolve(path)
        out: list[tuple[str, Entry]] = []

        def visit(directory: str, rel: str) -> None:
            for name in self.listdir(directory):
                child_path = f"{directory.rstrip('/')}/{name}"
                entry = self.entry(child_path)
                if entry is None:
                    continue
                child_rel = f"{rel}/{name}" if rel else name
                out.append((child_rel, entry))
                if entry.is_dir:
                    visit(child_path, child_rel)

        visit(base, "")
        return out

    def read_text(self, path: str, limit: int = 1 << 20) -> str | None:
        found = self.lookup(path)
        if found is None or not stat.S_ISREG(found.st.st_mode):
            return None
        with open(found.host, "rb") as f:
            return f.read(limit).decode(errors="replace")
