"""Safe, faithful extraction of one image layer (a tar stream) into an empty directory.

One module of ~1,000 lines on purpose: the tar parser, the path resolution and the whiteout rules
are one security boundary, read and reviewed together (a split would put the checks apart from the
writes they guard).

Why not `tarfile.extractall`: its filters are not a sandbox (a run of CVEs, the latest with chains
of symlinks). Here every path is cleaned lexically, must stay inside the layer, and is then opened
component by component with `O_NOFOLLOW|O_DIRECTORY` relative to the layer's own descriptor, so a
symlink already in the layer can never carry a write outside it. The tar is parsed block by block
(our own header parser, checked against Go's archive/tar rules), which also lets us:

* hash the uncompressed stream as it goes by (the layer's diff_id), with no second pass;
* keep the raw header and padding bytes, plus references to file contents now on disk
  ("tar-split", as Docker does), so the exact original tar can be rebuilt for `push`;
* convert OCI whiteouts for overlayfs (`.wh.x` -> char device 0/0 `x`; `.wh..wh..opq` -> the
  directory gets `trusted.overlay.opaque=y`).

Duplicate entries: the later one wins, as in Docker (the old node is removed first, so a hard link
to it keeps the old content). Anything suspicious raises IntegrityError; the caller throws the
half-written directory away.
"""

from __future__ import annotations

import base64
import ctypes
import errno
import hashlib
import io
import json
import os
import queue
import shutil
import stat
import tarfile
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

from engine.errors import IntegrityError, NeedsRoot

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import BinaryIO

BLOCK = 512
CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
OVERLAY_XATTR_PREFIX = "trusted.overlay."
MAX_SPECIAL_SIZE = 1 << 20  # PAX / GNU long-name data
MAX_TRAILER = 16 << 20  # bytes after the end-of-archive blocks (kept verbatim for push)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_REGULAR = {tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE}
# Types that never carry data, whatever their size field says (Go's archive/tar does the same).
_HEADER_ONLY = {tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE}
_PAX = {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE}


@dataclass
class ExtractResult:
    """What a layer turned out to be: its diff_id, sizes and the tar-split records."""

    diff_id: str
    tar_size: int  # bytes of the uncompressed tar
    content_size: int  # bytes of regular file contents (Docker's layer "size")
    tar_split: bytes = b""  # tar-split.json.gz (see _TarSplit)


# --- decompression -----------------------------------------------------------------------------


class _Prefixed(io.RawIOBase):
    """A reader that first returns `prefix` (the bytes we peeked at), then the rest of `raw`."""

    def __init__(self, prefix: bytes, raw: BinaryIO) -> None:
        self._prefix = prefix
        self._raw = raw

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._prefix:
            if n is None or n < 0:
                data, self._prefix = self._prefix + self._raw.read(), b""
                return data
            data, self._prefix = self._prefix[:n], self._prefix[n:]
            return data
        return self._raw.read(n)

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class _GzipReader:
    """Streaming gzip (multi-member, as Go's reader) with large reads: GzipFile reads 8 KiB at a
    time, which on a big layer is thousands of Python round trips through the caller's reader."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._d = zlib.decompressobj(wbits=31)
        self._input = b""

    def read(self, n: int = CHUNK) -> bytes:
        n = n if n and n > 0 else CHUNK
        while True:
            if self._d.eof:
                rest = self._d.unused_data.lstrip(b"\x00") or self._raw.read(CHUNK).lstrip(b"\x00")
                while not rest:  # only zero padding so far (allowed after the last member)
                    more = self._raw.read(CHUNK)
                    if not more:
                        return b""
                    rest = more.lstrip(b"\x00")
                if not rest.startswith(GZIP_MAGIC):
                    raise zlib.error("trailing data after the gzip stream")
                self._d = zlib.decompressobj(wbits=31)
                self._input = rest
            if not self._input:
                out = self._d.decompress(b"", n)  # output zlib still holds from earlier input
                if out:
                    return out
                if self._d.eof:
                    continue
                self._input = self._raw.read(CHUNK)
                if not self._input:
                    raise EOFError("gzip stream is truncated")
            out = self._d.decompress(self._input, n)
            self._input = b"" if self._d.eof else self._d.unconsumed_tail
            if out:
                return out


class _ZstdReader:
    """Streaming zstd, frame by frame, so a truncated stream is an error (zstandard's
    stream_reader just stops). Input goes in small slices to bound the output of one call."""

    SLICE = 1 << 10  # a zstd block of 128 KiB can take 4 bytes: at most ~32 MiB out per call

    def __init__(self, raw: BinaryIO) -> None:
        import zstandard  # heavy-ish and optional for most commands: imported only when needed

        self._new = zstandard.ZstdDecompressor().decompressobj
        self._d = self._new()
        self._raw = raw
        self._in = b""
        self._pos = 0

    def read(self, n: int = CHUNK) -> bytes:  # noqa: ARG002 - output is bounded by the slice instead
        while True:
            if self._d.eof:
                rest = self._in[self._pos :].lstrip(b"\x00")
                while not rest:
                    more = self._raw.read(CHUNK)
                    if not more:
                        return b""  # ended on a frame boundary
                    rest = more.lstrip(b"\x00")
                self._d, self._in, self._pos = self._new(), rest, 0
            if self._pos >= len(self._in):
                self._in, self._pos = self._raw.read(CHUNK), 0
                if not self._in:
                    raise EOFError("zstd stream is truncated")
            piece = self._in[self._pos : self._pos + self.SLICE]
            self._pos += len(piece)
            out = self._d.decompress(piece)
            if self._d.eof and self._d.unused_data:
                self._pos -= len(self._d.unused_data)  # those bytes start the next frame
            if out:
                return out


def compression_of(head: bytes) -> str:
    """`gzip`, `zstd` or `none`, from the first bytes (as Docker does, magic beats media type)."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def open_decompressed(blob: BinaryIO, media_type: str | None = None) -> tuple[BinaryIO, str]:
    """Wrap `blob` so reads return the uncompressed tar; returns (reader, compression)."""
    head = b""
    while len(head) < 4:
        more = blob.read(4 - len(head))
        if not more:
            break
        head += more
    kind = compression_of(head)
    if kind == "none" and media_type and (media_type.endswith("+gzip") or media_type.endswith("+zstd")):
        # A tar that says it is compressed but is not: Docker would accept it; we do too, but only
        # when it really looks like a tar (checked by the header parser below).
        pass
    source = _Prefixed(head, blob)
    if kind == "gzip":
        return _GzipReader(source), kind  # type: ignore[return-value]
    if kind == "zstd":
        return _ZstdReader(source), kind  # type: ignore[return-value]
    return source, kind  # type: ignore[return-value]


class _ReadAhead:
    """Decompresses and hashes the next chunks in a helper thread while the caller creates files.

    zlib, zstandard and hashlib release the GIL on large buffers, so on a layer of small files this
    work overlaps the extractor's syscalls instead of adding to them. Errors (of the blob's reader
    or of decompression) are re-raised in the reading thread, in stream order.
    """

    DEPTH = 2  # chunks decompressed ahead (gzip: up to CHUNK bytes each; zstd: see _ZstdReader)

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.hasher = hashlib.sha256()
        self._queue: queue.Queue[tuple[bytes, BaseException | None]] = queue.Queue(self.DEPTH)
        self._stop = threading.Event()
        self._ended = False
        self._thread = threading.Thread(target=self._run, name="extract-read-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                chunk = self._raw.read(CHUNK)
                if chunk:
                    self.hasher.update(chunk)
                self._put(chunk, None)
                if not chunk:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
            self._put(b"", exc)

    def _put(self, chunk: bytes, error: BaseException | None) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put((chunk, error), timeout=0.1)
                return
            except queue.Full:
                continue

    def read(self, n: int = CHUNK) -> bytes:  # noqa: ARG002 - chunks come as decompressed
        if self._ended:
            return b""
        chunk, error = self._queue.get()
        if error is not None:
            self._ended = True
            raise error
        if not chunk:
            self._ended = True
        return chunk

    def close(self) -> None:
        """Stop the helper; it ends at its next chunk (at once after the end of the stream)."""
        self._stop.set()
        if self._ended:
            self._thread.join()


class _HashingSource:
    """Reads the uncompressed stream in large chunks; every byte that goes by is hashed."""

    def __init__(self, raw: BinaryIO | _ReadAhead) -> None:
        self._raw = raw
        self._buf = b""
        self._pos = 0
        self.hasher = raw.hasher if isinstance(raw, _ReadAhead) else hashlib.sha256()
        self._hash_here = not isinstance(raw, _ReadAhead)
        self.total = 0

    def _fill(self) -> bool:
        try:
            chunk = self._raw.read(CHUNK)
        except (OSError, EOFError, zlib.error) as exc:
            raise IntegrityError(f"layer is not valid compressed data: {exc}") from exc
        except Exception as exc:  # zstandard.ZstdError and friends
            if type(exc).__module__.startswith("zstandard"):
                raise IntegrityError(f"layer is not valid zstd data: {exc}") from exc
            raise
        if not chunk:
            return False
        if self._hash_here:
            self.hasher.update(chunk)
        self.total += len(chunk)
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0
        return True

    def read(self, n: int) -> bytes:
        """Up to `n` bytes; fewer only at the end of the stream."""
        while len(self._buf) - self._pos < n:
            if not self._fill():
                break
        data = self._buf[self._pos : self._pos + n]
        self._pos += len(data)
        return data

    def read_exact(self, n: int, what: str) -> bytes:
        data = self.read(n)
        if len(data) != n:
            raise IntegrityError(f"layer tar is truncated (in {what})")
        return data

    def read_rest(self, limit: int) -> bytes:
        """Everything left (hashed too), or a little more than `limit` bytes if there is more."""
        parts = [self._buf[self._pos :]]
        total = len(parts[0])
        self._buf, self._pos = b"", 0
        while total <= limit and self._fill():
            parts.append(self._buf)
            total += len(self._buf)
            self._buf = b""
        return b"".join(parts)


# --- paths ---------------------------------------------------------------------------------------


def clean_path(name: str) -> tuple[str, ...]:
    """Split a member name into components inside the layer; refuse anything that leaves it."""
    if "\x00" in name:
        raise IntegrityError(f"layer entry name {name!r} contains a NUL byte")
    if name.startswith("/"):
        raise IntegrityError(f"layer entry {name!r} has an absolute path: refusing to write outside the layer")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise IntegrityError(f"layer entry {name!r} climbs out of the layer with '..'")
            parts.pop()
        else:
            parts.append(part)
    return tuple(parts)


def _parse_pax(data: bytes) -> dict[str, bytes]:
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # NUL padding at the end of the record block
            break
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise IntegrityError("layer tar has a malformed PAX header") from None
        record = data[pos : pos + length]
        if space < 0 or length <= space - pos or not record.endswith(b"\n"):
            raise IntegrityError("layer tar has a malformed PAX header")
        key, sep, value = record[space - pos + 1 : -1].partition(b"=")
        if not sep:
            raise IntegrityError("layer tar has a malformed PAX record")
        records[key.decode("utf-8", "surrogateescape")] = value
        pos += length
    return records


class Header:
    """One tar header's fields (what `tarfile.TarInfo` has, parsed without its overhead)."""

    __slots__ = ("name", "linkname", "type", "mode", "uid", "gid", "size", "mtime", "devmajor", "devminor")

    def __init__(self) -> None:
        self.name = ""
        self.linkname = ""
        self.type = tarfile.REGTYPE
        self.mode = 0
        self.uid = 0
        self.gid = 0
        self.size = 0
        self.mtime: float = 0
        self.devmajor = 0
        self.devminor = 0


def _number(field: bytes) -> int:
    """A numeric header field: octal text, or GNU base-256 when the high bit is set."""
    if field and field[0] & 0x80:
        if field[0] != 0x80:
            raise IntegrityError("layer tar has a negative base-256 number in a header")
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\x00", 1)[0].strip()
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise IntegrityError(f"layer tar has a malformed number in a header: {text!r}") from None


def parse_header(buf: bytes) -> Header:
    """Parse a 512-byte ustar/GNU/v7 header block as Go's archive/tar does (checksum verified)."""
    stored = buf[148:156].split(b"\x00", 1)[0].strip()
    try:
        checksum = int(stored, 8)
    except ValueError:
        raise IntegrityError("layer is not a valid tar: bad header checksum field") from None
    unsigned = sum(buf) - sum(buf[148:156]) + 256
    if checksum != unsigned:
        high = sum(1 for b in buf if b > 127) - sum(1 for b in buf[148:156] if b > 127)
        signed = unsigned - 256 * high  # old tars summed signed chars
        if checksum != signed:
            raise IntegrityError("layer is not a valid tar: header checksum mismatch")
    h = Header()
    h.name = _nts(buf[0:100])
    h.mode = _number(buf[100:108])
    h.uid = _number(buf[108:116])
    h.gid = _number(buf[116:124])
    h.size = _number(buf[124:136])
    h.mtime = _number(buf[136:148])
    h.type = buf[156:157] or tarfile.REGTYPE
    h.linkname = _nts(buf[157:257])
    magic = buf[257:265]
    if magic[:6] == b"ustar\x00":  # POSIX ustar/pax: the name may continue in the prefix field
        h.devmajor = _number(buf[329:337])
        h.devminor = _number(buf[337:345])
        prefix = _nts(buf[345:500])
        if prefix:
            h.name = prefix + "/" + h.name
    elif magic == b"ustar  \x00":  # GNU: no prefix (those bytes hold atime/ctime)
        h.devmajor = _number(buf[329:337])
        h.devminor = _number(buf[337:345])
    if h.type == tarfile.AREGTYPE and h.name.endswith("/"):
        h.type = tarfile.DIRTYPE
    if h.type == tarfile.DIRTYPE:
        h.name = h.name.rstrip("/")
    return h


def _nts(data: bytes) -> str:
    return data.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")


# --- the extractor -----------------------------------------------------------------------------


class _TarSplit:
    """A layer's tar-split, built as the tar goes by: Docker's gzip'd JSON lines (type 2 = a raw
    header/padding segment, base64; type 1 = a file's path and size), compressed in batches so a
    layer of 20,000 small files holds ~1 MB of it instead of ~25 MB of Python objects.

    A file whose content a later entry overwrites must be replayed from the tar-split itself:
    `inlined[position]` keeps that content, and `finish` rewrites its line (rare: duplicates and
    whiteouts of the same layer)."""

    BATCH = 512  # lines per compress call

    def __init__(self) -> None:
        self._gz = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: a gzip member, mtime 0
        self._parts: list[bytes] = []
        self._lines: list[str] = []
        self.position = 0
        self.inlined: dict[int, bytes] = {}

    def raw(self, data: bytes) -> None:
        self._add(_raw_line(data, self.position))

    def ref(self, rel: str, size: int) -> int:
        """Adds a file reference; returns its position."""
        self._add(f'{{"type":1,"name":{json.dumps(rel)},"size":{size},"position":{self.position}}}\n')
        return self.position - 1

    def _add(self, line: str) -> None:
        self._lines.append(line)
        self.position += 1
        if len(self._lines) >= self.BATCH:
            self._compress()

    def _compress(self) -> None:
        self._parts.append(self._gz.compress("".join(self._lines).encode()))
        self._lines = []

    def finish(self) -> bytes:
        self._compress()
        self._parts.append(self._gz.flush())
        data = b"".join(self._parts)
        self._parts = []
        if not self.inlined:
            return data
        lines = zlib.decompress(data, 47).decode().splitlines(keepends=True)
        for position, content in self.inlined.items():
            lines[position] = _raw_line(content, position)
        out = zlib.compressobj(1, zlib.DEFLATED, 31)
        return out.compress("".join(lines).encode()) + out.flush()


def _raw_line(data: bytes, position: int) -> str:
    return f'{{"type":2,"payload":"{base64.b64encode(data).decode()}","position":{position}}}\n'


class _Extractor:
    def __init__(self, dest: Path, source: _HashingSource) -> None:
        self.dest = dest
        self.src = source
        self.root_fd = os.open(dest, _DIR_FLAGS)
        self.is_root = os.geteuid() == 0
        self.tar_split = _TarSplit()
        self.file_refs: dict[str, tuple[int, int]] = {}  # relative path -> (position, size) of its reference
        self.dir_times: list[tuple[tuple[str, ...], int, int]] = []
        self.content_size = 0
        self._cached: tuple[tuple[str, ...], int] | None = None
        self._cached_setgid = False  # the cached parent is setgid: new files take its group
        self.umask = _current_umask()
        self.root_owned = os.geteuid() == 0 and os.getegid() == 0
        # Paths this extraction may have created: the layer starts empty, so anything else cannot
        # exist and needs no lstat before it is created (20,000 syscalls saved on a big layer).
        self.created: set[tuple[str, ...]] = set()
        # Whiteouts this layer made: they hide lower layers only (OCI image spec), so what this
        # layer puts at the same path stays, and a directory there starts opaque.
        self.whiteouts: set[tuple[str, ...]] = set()
        self._pending_raw: list[bytes] = []

    # raw tar-split bookkeeping
    def raw(self, data: bytes) -> None:
        if data:
            self._pending_raw.append(data)

    def _flush_raw(self) -> None:
        if self._pending_raw:
            self.tar_split.raw(b"".join(self._pending_raw))
            self._pending_raw = []

    def file_ref(self, rel: str, size: int) -> None:
        self._flush_raw()
        self.file_refs[rel] = (self.tar_split.ref(rel, size), size)

    def _drop_cache(self) -> None:
        if self._cached:
            os.close(self._cached[1])
            self._cached = None

    def close(self) -> None:
        self._flush_raw()
        self._drop_cache()
        os.close(self.root_fd)

    # directory walking, never following a symlink
    def _walk(self, parts: tuple[str, ...], create: bool, name: str) -> int:
        fd = os.dup(self.root_fd)
        try:
            for depth, part in enumerate(parts, 1):
                try:
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(part, 0o755, dir_fd=fd)
                    if self.umask & 0o755:  # implicit parents are 0755 whatever the umask
                        os.chmod(part, 0o755, dir_fd=fd)
                    self.created.add(parts[:depth])
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise IntegrityError(
                            f"layer entry {name!r} goes through {part!r}, which is a symlink or not a "
                            "directory: refusing to write outside the layer"
                        ) from None
                    raise
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def parent_fd(self, parts: tuple[str, ...], name: str) -> int:
        """A descriptor of the directory holding `parts[-1]`, created if missing (cached: borrowed)."""
        parent = parts[:-1]
        if self._cached and self._cached[0] == parent:
            return self._cached[1]
        fd = self._walk(parent, True, name)
        if self._cached:
            os.close(self._cached[1])
        self._cached = (parent, fd)
        self._cached_setgid = bool(os.fstat(fd).st_mode & stat.S_ISGID)
        return fd

    # removal of an earlier entry (duplicates, whiteouts in the same layer)
    def _inline_refs(self, rel: str) -> None:
        """Earlier file contents about to be overwritten go into the tar-split itself."""
        prefix = rel + "/"
        for path in [p for p in self.file_refs if p == rel or p.startswith(prefix)]:
            index, size = self.file_refs.pop(path)
            parts = tuple(path.split("/"))
            fd = self._walk(parts[:-1], False, path)
            try:
                ffd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            finally:
                os.close(fd)
            with os.fdopen(ffd, "rb") as f:
                content = f.read(size + 1)
            if len(content) != size:
                raise IntegrityError(f"layer content of {path!r} changed during extraction")
            self.tar_split.inlined[index] = content

    def remove_existing(self, pfd: int, parts: tuple[str, ...], keep_dir: bool) -> bool:
        """Remove what is at `parts` unless it is a directory and `keep_dir`; True if a dir is kept."""
        base = parts[-1]
        if parts not in self.created:
            self.created.add(parts)  # the caller creates it next
            return False
        try:
            st = os.lstat(base, dir_fd=pfd)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            self._inline_refs("/".join(parts))
            shutil.rmtree(base, dir_fd=pfd)
        else:
            self._inline_refs("/".join(parts))
            os.unlink(base, dir_fd=pfd)
        return False

    # metadata
    def chown(self, target: int | str, uid: int, gid: int, pfd: int | None = None) -> None:
        if not self.is_root:
            return  # an unprivileged extraction keeps the caller's ids (like rootless engines)
        if isinstance(target, int):
            os.fchown(target, uid, gid)
        else:
            os.chown(target, uid, gid, dir_fd=pfd, follow_symlinks=False)

    def set_xattrs(self, target: int | str, xattrs: dict[str, bytes], pfd: int | None = None) -> None:
        for key, value in xattrs.items():
            try:
                if isinstance(target, int):
                    os.setxattr(target, key, value)
                else:
                    os.setxattr(f"/proc/self/fd/{pfd}/{target}", key, value, follow_symlinks=False)
            except OSError as exc:
                if self.is_root and exc.errno not in (errno.ENOTSUP,):
                    raise IntegrityError(f"cannot set xattr {key} on {target!r}: {exc.strerror}") from None

    # the entries
    def extract(self) -> None:
        global_pax: dict[str, bytes] = {}
        pax: dict[str, bytes] = {}
        long_name: str | None = None
        long_link: str | None = None
        while True:
            header = self.src.read(BLOCK)
            if not header:
                break  # end of stream without the end-of-archive blocks: accepted, as Go does
            if len(header) < BLOCK:
                raise IntegrityError("layer tar is truncated (in a header)")
            if header == b"\x00" * BLOCK:
                rest = self.src.read_rest(MAX_TRAILER)
                if len(rest) > MAX_TRAILER:
                    raise IntegrityError(f"layer tar has more than {MAX_TRAILER} bytes after its end-of-archive marker")
                self.raw(header + rest)
                break
            info = parse_header(header)
            self.raw(header)
            kind = info.type
            size = info.size
            if kind in _PAX or kind in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
                if size > MAX_SPECIAL_SIZE:  # Go's archive/tar has the same limit
                    raise IntegrityError(f"layer tar has an extended header of {size} bytes (limit {MAX_SPECIAL_SIZE})")
                padded = -(-size // BLOCK) * BLOCK
                data = self.src.read_exact(padded, "an extended header")
                self.raw(data)
                payload = data[:size]
                if kind == tarfile.XGLTYPE:
                    global_pax.update(_parse_pax(payload))
                elif kind in _PAX:
                    pax.update(_parse_pax(payload))
                elif kind == tarfile.GNUTYPE_LONGNAME:
                    long_name = _nts(payload)
                else:
                    long_link = _nts(payload)
                continue
            records = {**global_pax, **pax}
            pax = {}
            if long_name is not None:
                info.name = long_name
            if long_link is not None:
                info.linkname = long_link
            long_name = long_link = None
            xattrs = self._apply_pax(info, records)
            if kind == tarfile.AREGTYPE and info.name.endswith("/"):
                kind = info.type = tarfile.DIRTYPE  # old tars mark directories by a trailing slash only
            size = info.size
            if kind == tarfile.GNUTYPE_SPARSE or "GNU.sparse.major" in records or "GNU.sparse.size" in records:
                raise IntegrityError(f"layer entry {info.name!r} is a sparse file, which is not supported")
            if kind in _HEADER_ONLY:
                size = 0
            self.entry(info, xattrs, size)

    def _apply_pax(self, info: Header, records: dict[str, bytes]) -> dict[str, bytes]:
        xattrs: dict[str, bytes] = {}
        try:
            for key, value in records.items():
                if key == "path":
                    info.name = value.decode("utf-8", "surrogateescape")
                elif key == "linkpath":
                    info.linkname = value.decode("utf-8", "surrogateescape")
                elif key == "size":
                    info.size = int(value)
                elif key == "uid":
                    info.uid = int(value)
                elif key == "gid":
                    info.gid = int(value)
                elif key == "mtime":
                    info.mtime = float(value)
                elif key.startswith("SCHILY.xattr."):
                    name = key[len("SCHILY.xattr.") :]
                    if name.startswith(OVERLAY_XATTR_PREFIX):
                        # overlayfs' own metadata (redirect, metacopy, opaque...) would change how
                        # the layers merge; only our whiteout conversion may set it.
                        raise IntegrityError(f"layer entry {info.name!r} sets the overlayfs-internal xattr {name}")
                    xattrs[name] = value
        except ValueError:
            raise IntegrityError(f"layer entry {info.name!r} has a malformed PAX value") from None
        if info.size < 0 or info.uid < 0 or info.gid < 0:
            raise IntegrityError(f"layer entry {info.name!r} has a negative size or id")
        return xattrs

    def entry(self, info: Header, xattrs: dict[str, bytes], size: int) -> None:
        name = info.name
        parts = clean_path(name)
        kind = info.type
        mode = info.mode & 0o7777
        mtime_ns = int(info.mtime * 1_000_000_000)
        data_blocks = -(-size // BLOCK) * BLOCK

        if not parts:  # "./": the layer's root directory itself
            if kind != tarfile.DIRTYPE:
                raise IntegrityError(f"layer entry {name!r} would replace the layer's root")
            self._drop_cache()  # the cached parent may be this directory, whose mode changes
            self.chown(self.root_fd, info.uid, info.gid)
            os.fchmod(self.root_fd, mode)
            self.set_xattrs(self.root_fd, xattrs)
            self.dir_times.append(((), mtime_ns, mtime_ns))
            self._skip_data(size, data_blocks, name)
            return

        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(info, parts, name)
            self._skip_data(size, data_blocks, name)
            return

        pfd = self.parent_fd(parts, name)
        try:
            kept_dir = self.remove_existing(pfd, parts, keep_dir=kind == tarfile.DIRTYPE)
            after_whiteout = parts in self.whiteouts
            self.whiteouts.discard(parts)
            if kind in _REGULAR:
                self._regular(info, xattrs, parts, pfd, size, data_blocks, mode, mtime_ns)
                return
            if kind == tarfile.DIRTYPE:
                if not kept_dir:
                    os.mkdir(base, 0o700, dir_fd=pfd)
                dfd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
                try:
                    self.chown(dfd, info.uid, info.gid)
                    os.fchmod(dfd, mode)
                    self.set_xattrs(dfd, xattrs)
                    if after_whiteout:  # re-created after this layer's whiteout: no lower content
                        self._opaque(dfd)
                finally:
                    os.close(dfd)
                self.dir_times.append((parts, mtime_ns, mtime_ns))
            elif kind == tarfile.SYMTYPE:
                target = info.linkname
                if not target.startswith("/"):
                    joined = "/".join(parts[:-1] + (target,))
                    try:
                        clean_path(joined)
                    except IntegrityError:
                        raise IntegrityError(
                            f"layer symlink {name!r} -> {target!r} points outside the layer"
                        ) from None
                if "\x00" in target or not target:
                    raise IntegrityError(f"layer symlink {name!r} has an invalid target")
                os.symlink(target, base, dir_fd=pfd)
                self.chown(base, info.uid, info.gid, pfd)
                self.set_xattrs(base, xattrs, pfd)
                os.utime(base, ns=(mtime_ns, mtime_ns), dir_fd=pfd, follow_symlinks=False)
            elif kind == tarfile.LNKTYPE:
                self._hardlink(info, parts, pfd)
            elif kind in (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE):
                if kind == tarfile.FIFOTYPE:
                    os.mkfifo(base, 0o600, dir_fd=pfd)
                else:
                    node = stat.S_IFCHR if kind == tarfile.CHRTYPE else stat.S_IFBLK
                    try:
                        os.mknod(base, node | 0o600, os.makedev(info.devmajor, info.devminor), dir_fd=pfd)
                    except PermissionError:
                        raise NeedsRoot(f"creating device node {name!r} needs root") from None
                self.chown(base, info.uid, info.gid, pfd)
                os.chmod(base, mode, dir_fd=pfd)
                self.set_xattrs(base, xattrs, pfd)
                os.utime(base, ns=(mtime_ns, mtime_ns), dir_fd=pfd, follow_symlinks=False)
            else:
                raise IntegrityError(f"layer entry {name!r} has an unsupported tar type {kind!r}")
        except ValueError as exc:  # embedded NULs and the like
            raise IntegrityError(f"layer entry {name!r} is invalid: {exc}") from None
        self._skip_data(size, data_blocks, name)

    def _skip_data(self, size: int, data_blocks: int, name: str) -> None:
        """Data of entries we do not store as files is kept verbatim in the tar-split."""
        if data_blocks:
            self.raw(self.src.read_exact(data_blocks, f"the data of {name!r}"))

    def _regular(
        self,
        info: Header,
        xattrs: dict[str, bytes],
        parts: tuple[str, ...],
        pfd: int,
        size: int,
        data_blocks: int,
        mode: int,
        mtime_ns: int,
    ) -> None:
        rel = "/".join(parts)
        # Most files are root's and 0644/0755: created with the right owner and mode they need
        # no chown/chmod (two syscalls of seven on a layer of small files).
        plain_mode = not mode & 0o7000 and mode & ~self.umask == mode
        owner_ok = self.root_owned and info.uid == 0 and info.gid == 0 and not self._cached_setgid
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(parts[-1], flags, mode if plain_mode else 0o600, dir_fd=pfd)
        padding: bytes | None = None  # read with the data; recorded after the file's reference
        try:
            remaining = size
            if 0 < data_blocks <= CHUNK:  # a small file: data and padding in one read, one write
                block = self.src.read(data_blocks)
                if len(block) < size:
                    raise IntegrityError(f"layer tar is truncated (in the data of {info.name!r})")
                view = memoryview(block)[:size]
                while view:
                    view = view[os.write(fd, view):]
                if len(block) < data_blocks:
                    raise IntegrityError(f"layer tar is truncated (in the padding of {info.name!r})")
                padding, remaining = block[size:], 0
            while remaining:
                chunk = self.src.read(min(remaining, CHUNK))
                if not chunk:
                    raise IntegrityError(f"layer tar is truncated (in the data of {info.name!r})")
                view = memoryview(chunk)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                remaining -= len(chunk)
            if size > CHUNK:
                start_writeback(fd)
            if not owner_ok:
                self.chown(fd, info.uid, info.gid)
            if not (owner_ok and plain_mode):
                os.fchmod(fd, mode)  # after chown, which clears setuid/setgid
            if xattrs:
                self.set_xattrs(fd, xattrs)
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(fd)
        if size:
            self.file_ref(rel, size)
        self.content_size += size
        if padding is not None:
            self.raw(padding)
        elif data_blocks > size:
            self.raw(self.src.read_exact(data_blocks - size, f"the padding of {info.name!r}"))

    def _hardlink(self, info: Header, parts: tuple[str, ...], pfd: int) -> None:
        try:
            target = clean_path(info.linkname)
        except IntegrityError:
            raise IntegrityError(f"layer hard link {info.name!r} -> {info.linkname!r} points outside the layer") from None
        if not target:
            raise IntegrityError(f"layer hard link {info.name!r} points at the layer's root")
        try:
            tfd = self._walk(target[:-1], False, info.linkname)
        except FileNotFoundError:
            raise IntegrityError(f"layer hard link {info.name!r} -> {info.linkname!r}: target not in the layer") from None
        try:
            st = os.lstat(target[-1], dir_fd=tfd)
            if stat.S_ISDIR(st.st_mode):
                raise IntegrityError(f"layer hard link {info.name!r} -> {info.linkname!r} targets a directory")
            os.link(target[-1], parts[-1], src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            raise IntegrityError(f"layer hard link {info.name!r} -> {info.linkname!r}: target not in the layer") from None
        finally:
            os.close(tfd)

    def _whiteout(self, info: Header, parts: tuple[str, ...], name: str) -> None:
        base = parts[-1]
        if base == OPAQUE_WHITEOUT:
            fd = self._walk(parts[:-1], True, name)
            try:
                os.setxattr(fd, OPAQUE_XATTR, b"y")
            except PermissionError:
                raise NeedsRoot("marking an opaque directory (trusted.overlay.opaque) needs root") from None
            finally:
                os.close(fd)
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # other AUFS metadata (.wh..wh.plnk, ...): meaningless for overlayfs
        target = base[len(WHITEOUT_PREFIX) :]
        if target in ("", ".", ".."):
            raise IntegrityError(f"layer whiteout {name!r} names no file")
        target_parts = parts[:-1] + (target,)
        pfd = self.parent_fd(target_parts, name)
        if target_parts in self.created and target_parts not in self.whiteouts:
            # This layer made the path itself: the whiteout hides only the lower layers' (OCI
            # image spec), which a file here already does; a directory here must not merge.
            try:
                dfd = os.open(target, _DIR_FLAGS, dir_fd=pfd)
            except (NotADirectoryError, FileNotFoundError, OSError):
                return
            try:
                self._opaque(dfd)
            finally:
                os.close(dfd)
            return
        self.remove_existing(pfd, target_parts, keep_dir=False)
        try:
            os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd)
        except PermissionError:
            raise NeedsRoot("creating whiteouts (character device 0/0) needs root") from None
        self.whiteouts.add(target_parts)
        self.chown(target, info.uid, info.gid, pfd)

    @staticmethod
    def _opaque(dfd: int) -> None:
        try:
            os.setxattr(dfd, OPAQUE_XATTR, b"y")
        except PermissionError:
            raise NeedsRoot("marking an opaque directory (trusted.overlay.opaque) needs root") from None

    def restore_dir_times(self) -> None:
        """Directory mtimes last: creating entries inside a directory changes its mtime."""
        for parts, atime_ns, mtime_ns in reversed(self.dir_times):
            try:
                fd = self._walk(parts, False, "/".join(parts))
            except (FileNotFoundError, IntegrityError):
                continue  # replaced later in the tar
            try:
                os.utime(fd, ns=(atime_ns, mtime_ns))
            finally:
                os.close(fd)


def _current_umask() -> int:
    """The umask, read without changing it (os.umask would race with other threads)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o777  # unknown: never skip an fchmod


def extract_layer(blob: BinaryIO, dest: Path, media_type: str | None = None) -> ExtractResult:
    """Extract a (possibly compressed) layer tar into the empty directory `dest`.

    Raises IntegrityError for a malformed or malicious tar; `dest` is then in an undefined state
    and must be removed by the caller.
    """
    reader, _ = open_decompressed(blob, media_type)
    read_ahead = _ReadAhead(reader)
    source = _HashingSource(read_ahead)
    try:
        extractor = _Extractor(dest, source)
        try:
            extractor.extract()
            extractor.restore_dir_times()
        finally:
            extractor.close()
    finally:
        read_ahead.close()
    return ExtractResult(
        diff_id="sha256:" + source.hasher.hexdigest(),
        tar_size=source.total,
        content_size=extractor.content_size,
        tar_split=extractor.tar_split.finish(),
    )


# --- syncing -------------------------------------------------------------------------------------

_libc = None
SYNC_FILE_RANGE_WRITE = 2


def _c() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        _libc = libc
    return _libc


def syncfs(path: Path) -> None:
    """Flush the filesystem holding `path` (one syscall for many files instead of an fsync per file)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _c().syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs: {os.strerror(err)}", str(path))
    finally:
        os.close(fd)


def start_writeback(fd: int) -> None:
    """Start writing a large file's pages to disk without waiting (`sync_file_range(WRITE)`): the
    flush at the end of a pull then finds little left to write. Best effort: errors surface there."""
    _c().sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)
