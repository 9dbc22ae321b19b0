"""Writes that must succeed on a full disk: a container's exit, a removal's "removing" mark, the
image index after `rmi` (the verbs that free space must not need space first).

Two fallbacks, in order, when a write through a temp file and a rename fails with ENOSPC/EDQUOT:

1. *In place*: the file already exists and the new content is about its size (a record changes by a
   few bytes), so it is overwritten from offset 0 and truncated: its blocks are already allocated,
   no new ones are needed. Not atomic (a reader may see a torn record for the instant of the write,
   which `state.load` shows as a "dead" record that says why), so only used when the disk is full.
2. *The reserve*: `<root>/.reserve`, 1 MiB preallocated by every CLI start that finds space for it,
   is deleted and the normal write retried: what the in-place write cannot fit (a new file, a
   larger record) then has room.

Invariant: outside a full disk, every write stays atomic (temp file + rename); these paths only
run after the normal write failed with no space.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

from engine.diagnostics import get_logger

log = get_logger(__name__)

RESERVE_NAME = ".reserve"
RESERVE_BYTES = 1 << 20
FULL = (errno.ENOSPC, errno.EDQUOT)


def is_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in FULL


def replenish(root: Path) -> None:
    """Put the reserve back if it is missing and there is room (best effort, cheap when present)."""
    path = root / RESERVE_NAME
    if path.exists():
        return
    tmp = root / f"{RESERVE_NAME}.{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    except OSError:
        return
    try:
        os.posix_fallocate(fd, 0, RESERVE_BYTES)
        os.replace(tmp, path)
    except OSError:
        with _quiet():
            os.unlink(tmp)
    finally:
        os.close(fd)


def release(root: Path) -> bool:
    """Give the reserve's space back to the filesystem; False when there was none to give."""
    try:
        os.unlink(root / RESERVE_NAME)
    except OSError:
        return False
    log.warning("the disk under %s is full: used the reserved space", root)
    return True


def write_in_place(path: Path, data: bytes) -> None:
    """Overwrite an existing file's blocks with `data` (see the module: not atomic)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        if os.fstat(fd).st_blocks * 512 < len(data):  # would need a new block: fail before writing
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        view = memoryview(data)
        offset = 0
        while offset < len(data):
            offset += os.pwrite(fd, view[offset:], offset)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def write_despite_full(root: Path | None, path: Path, data: bytes, atomic_write: Callable[[], None]) -> None:
    """`atomic_write()`, or on a full disk the fallbacks of the module (the reserve only with the
    state `root` it lies under); the first error otherwise."""
    try:
        atomic_write()
        return
    except OSError as exc:
        if exc.errno not in FULL:
            raise
        first = exc
    try:
        write_in_place(path, data)
        return
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno not in FULL:
            raise
    if root is None or not release(root):
        raise first
    atomic_write()


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: object, tb: object) -> bool:
        return isinstance(exc, OSError)
