"""Saving a container's whole log to a file (the log view's `o`), as `docker logs [-t] NAME > file` would.

The file is new (never an existing one overwritten: created with O_EXCL), in the directory the app
was started from, or the temp directory when that is not writable. The log is read from the start
through the backend's bounded reader, so a log larger than the view's 10,000 lines is saved whole.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from tui.backend import Backend

MAX_ROUNDS = 100_000  # 1 MiB a read: a bound, not a limit anyone meets


def new_path(name: str, directory: Path | None = None) -> Path:
    """`<dir>/<name>-<YYYYmmdd-HHMMSS>.log`, in the working directory if writable, else the temp one."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    where = directory if directory is not None else Path.cwd()
    if not os.access(where, os.W_OK):
        where = Path(tempfile.gettempdir())
    return where / f"{name or 'container'}-{stamp}.log"


def save(backend: Backend, container_id: str, path: Path, timestamps: bool) -> int:
    """Write every line of the container's log to `path` (a new file); the number of lines."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    count = 0
    cursor = 0
    with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as out:
        for _ in range(MAX_ROUNDS):
            lines, after = backend.read_logs(container_id, cursor)
            for line in lines:
                out.write(f"{line.time} {line.text}\n" if timestamps else f"{line.text}\n")
            count += len(lines)
            if after == cursor or not lines:
                break
            cursor = after
    return count
