"""The build context: a directory (the CLI's PATH, or a request's tar unpacked), `.dockerignore`, the
sources a COPY/ADD names, and their checksums for the build cache.

- `.dockerignore` follows Docker's pattern matcher: one pattern a line, `#` comments, `!` exceptions,
  `*`, `?`, `[...]` within one path element, `**` across any number of them; a pattern matches a path
  or any of its parents, and the last pattern that matches decides.
- A source is a path relative to the context's root (a leading `/` or `..` never leaves it), with
  wildcards matched element by element; what `.dockerignore` excludes does not exist for COPY. A
  source that is itself a symlink is followed (inside the root); links under a directory are copied
  as links.
- `checksum(paths)`: what Docker's tarsum hashes (names, types, modes, link targets, contents; not
  owners or modification times), so touching a file keeps the cache and changing a byte does not.

`unpack_context(stream, into)` unpacks a request's context tar (plain or gzip): no absolute names,
no `..`, no write through a symlink, no hard link to one; modes kept.
Invariant: nothing here follows a symlink out of the context's root.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

_WILDCARDS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class IgnoreRule:
    pattern: str
    exclusion: bool
    regex: re.Pattern[str]


def parse_dockerignore(text: str) -> tuple[IgnoreRule, ...]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        cleaned = os.path.normpath(line).lstrip("/") if line not in ("/", ".") else "."
        if cleaned in ("", "."):
            cleaned = "."
        rules.append(IgnoreRule(cleaned, exclusion, re.compile(_pattern_regex(cleaned))))
    return tuple(rules)


def _pattern_regex(pattern: str) -> str:
    out = ["^"]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern[i + 1:i + 2] == "*":
                i += 1
                if pattern[i + 1:i + 2] == "/":
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise InvalidArgument(f"invalid .dockerignore pattern {pattern!r}: unterminated [")
            body = pattern[i + 1:end]
            if body.startswith(("!", "^")):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return "".join(out)


def excluded(rules: tuple[IgnoreRule, ...], rel: str) -> bool:
    """Whether `.dockerignore` excludes `rel` (a clean path relative to the context's root)."""
    if not rules:
        return False
    candidates = [rel]
    parent = os.path.dirname(rel)
    while parent:
        candidates.append(parent)
        parent = os.path.dirname(parent)
    result = False
    for rule in rules:
        if rule.pattern == "." or any(rule.regex.match(c) for c in candidates):
            result = not rule.exclusion
    return result


@dataclass(frozen=True)
class Source:
    """One file or directory a COPY/ADD takes: its path relative to the root, and the real path."""

    rel: str
    path: Path


@dataclass(frozen=True)
class BuildContext:
    root: Path
    rules: tuple[IgnoreRule, ...] = ()

    @classmethod
    def open(cls, root: Path) -> BuildContext:
        if not root.is_dir():
            raise NotFound(f"unable to prepare context: path {str(root)!r} not found")
        ignore = root / ".dockerignore"
        text = ignore.read_text(errors="replace") if ignore.is_file() else ""
        return cls(root.resolve(), parse_dockerignore(text))

    def excluded(self, rel: str) -> bool:
        return excluded(self.rules, rel)

    def sources(self, pattern: str) -> list[Source]:
        """The context entries `pattern` names (wildcards expanded), excluded ones left out."""
        clean = os.path.normpath("/" + pattern).lstrip("/") or "."
        if not _WILDCARDS.search(clean):
            if clean != "." and self.excluded(clean):
                raise NotFound(f"file not found in build context or excluded by .dockerignore: stat {pattern}: "
                               "file does not exist")
            path = self._inside(clean)
            if not os.path.lexists(path):
                raise NotFound(f"file not found in build context or excluded by .dockerignore: stat {pattern}: "
                               "file does not exist")
            return [Source(clean, path)]
        found = [Source(rel, self._inside(rel)) for rel in self._glob(clean.split("/"))]
        return sorted(found, key=lambda s: s.rel)

    def _glob(self, parts: list[str]) -> list[str]:
        matches = [""]
        for part in parts:
            following: list[str] = []
            for base in matches:
                directory = self.root / base if base else self.root
                if not directory.is_dir() or directory.is_symlink():
                    continue
                if not _WILDCARDS.search(part):
                    names = [part] if os.path.lexists(directory / part) else []
                else:
                    names = sorted(n for n in os.listdir(directory) if fnmatch.fnmatchcase(n, part))
                following += [f"{base}/{n}" if base else n for n in names]
            matches = [m for m in following if not self.excluded(m)]
        return matches

    def _inside(self, rel: str) -> Path:
        """`rel` with its symlinks resolved (a parent's as well as the last one's), never leaving the
        root: a context's `link -> /etc` must not make `COPY link/shadow` read the host's."""
        if rel == ".":
            return self.root
        path = self.root / rel
        resolved = path.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise InvalidArgument(f"forbidden path outside the build context: {rel} ({resolved})")
        return resolved

    def walk(self, source: Source) -> list[tuple[str, Path]]:
        """(path relative to the source, real path) of a directory's entries, sorted, excluded ones
        left out (a directory source is copied by its contents)."""
        out: list[tuple[str, Path]] = []
        base = source.path
        for directory, dirs, files in os.walk(base):
            rel_dir = os.path.relpath(directory, base)
            kept_dirs = []
            for name in sorted(dirs):
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                ctx_rel = _join(source.rel, rel)
                if self.excluded(ctx_rel) and not self._has_exception_under(ctx_rel):
                    continue
                kept_dirs.append(name)
                if not self.excluded(ctx_rel):
                    out.append((rel, Path(directory) / name))
            dirs[:] = kept_dirs
            for name in sorted(files):
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                if not self.excluded(_join(source.rel, rel)):
                    out.append((rel, Path(directory) / name))
        return sorted(out)

    def _has_exception_under(self, rel: str) -> bool:
        return any(r.exclusion and r.pattern.startswith(rel + "/") for r in self.rules)


def _join(base: str, rel: str) -> str:
    return rel if base in ("", ".") else f"{base}/{rel}"


def checksum(entries: list[tuple[str, Path]]) -> str:
    """sha256 over names, types, permission bits, link targets and contents (tarsum's fields)."""
    digest = hashlib.sha256()
    for rel, path in entries:
        st = os.lstat(path)
        digest.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode):o}\0".encode())
        if stat.S_ISLNK(st.st_mode):
            digest.update(os.readlink(path).encode())
        elif stat.S_ISREG(st.st_mode):
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
        digest.update(b"\n")
    return digest.hexdigest()


def unpack_context(stream: BinaryIO, into: Path) -> None:
    """A context tar (plain or gzip) into the empty directory `into`, modes kept.

    tarfile reads the stream (as lenient as Go's reader about a last member's padding, which the
    docker CLI leaves out when it appends a Dockerfile from outside the context); every write is
    checked here first: a clean relative name, no parent directory that is a symlink, nothing
    written through an existing entry (it is removed first), a hard link only to a plain entry of
    the context. A symlink member may point anywhere: it is created, never followed."""
    import tarfile

    last = None
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            while True:
                try:
                    member = tar.next()
                except tarfile.ReadError:
                    if _complete(into, last):
                        break  # the stream ended right after the last member's data: Go accepts it
                    raise
                if member is None:
                    break
                last = member
                if member.isdev() or not _prepare_member(into, member):
                    continue
                tar.extract(member, into, set_attrs=True, numeric_owner=True)
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidArgument(f"the build context is not a valid tar archive: {exc}") from None


def _complete(into: Path, member: Any) -> bool:
    """Whether the last member read was written whole (its data all there)."""
    if member is None:
        return False
    if not member.isfile():
        return True
    try:
        return os.lstat(into.joinpath(*_clean_member(member.name))).st_size == member.size
    except OSError:
        return False


def _clean_member(name: str) -> list[str]:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise InvalidArgument(f"the build context has a member that leaves it: {name!r}")
    return parts


def _prepare_member(into: Path, member: Any) -> bool:
    """Make the member's parents (never through a symlink) and clear its place; False to skip it."""
    import shutil

    parts = _clean_member(member.name)
    if not parts:
        return False
    parent = into
    for part in parts[:-1]:
        parent = parent / part
        if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
            raise InvalidArgument(f"the build context writes through a link or a file: {member.name!r}")
        if not parent.exists():
            parent.mkdir(mode=0o755)
    target = parent / parts[-1]
    if os.path.lexists(target) and not (member.isdir() and target.is_dir() and not target.is_symlink()):
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    if member.islnk():
        source = into.joinpath(*_clean_member(member.linkname))
        link_parts = source.relative_to(into).parts
        for i in range(1, len(link_parts) + 1):
            if into.joinpath(*link_parts[:i]).is_symlink():
                raise InvalidArgument(f"the build context has a hard link through a symlink: {member.name!r}")
    return True
