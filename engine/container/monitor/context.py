"""What the monitor's stages share: the start context passed from stage to stage as `key=value` argv,
the status messages its stage 1 sends to `start`, and the frames of the attach channel
(`kind (1 byte) | length (4 bytes, big endian) | payload`).

Loaded by the Python watch stage too, so it imports only `os` at the top (see docs/lifecycle.md).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any

    from engine.config import EngineConfig


FRAME_STDIN = 0
FRAME_STDOUT = 1
FRAME_STDERR = 2
FRAME_STDIN_EOF = 3
FRAME_RESIZE = 4  # payload: rows, cols as two 2-byte big-endian ints
FRAME_EXIT = 5  # payload: exit code as a 4-byte big-endian signed int
FRAME_ATTACHED = 6  # to a client of `attach`: it is the container's attached client now
START_GRACE = 0.25  # seconds the full start stage relays before exec'ing the small watch stage


def frame(kind: int, payload: bytes = b"") -> bytes:
    return bytes((kind,)) + len(payload).to_bytes(4, "big") + payload


class FrameReader:
    """Splits a byte stream into (kind, payload) frames."""

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> list:
        self.buf += data
        frames = []
        while len(self.buf) >= 5:
            size = int.from_bytes(self.buf[1:5], "big")
            if len(self.buf) < 5 + size:
                break
            frames.append((self.buf[0], self.buf[5 : 5 + size]))
            self.buf = self.buf[5 + size :]
        return frames


def write_all(fd: int, data: bytes) -> bool:
    """Write everything (blocking fd); False when the reader went away."""
    try:
        while data:
            data = data[os.write(fd, data) :]
        return True
    except OSError:
        return False


ATTACH_SOCKET = "attach.sock"  # in the container's dir, while it runs: `dockui attach` connects here
CGROUP_READY_LINE = b'{"cgroup": "created"}'


def attach_socketpair() -> tuple[Any, Any]:
    """The attach channel: a connected AF_UNIX stream pair (CLOEXEC, as every socket Python makes).

    From `_socket`, the C module under `socket`: the `socket` wrapper's import (its enums and
    `selectors`) costs ~4 ms of every attached `run`, and the channel needs none of it.
    """
    import _socket

    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)


def config_to_json(config: EngineConfig) -> str:
    import json
    from dataclasses import asdict
    from pathlib import Path

    data = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
    return json.dumps(data, separators=(",", ":"))


def config_from_json(text: str) -> EngineConfig:
    import json
    from pathlib import Path

    from engine.config import EngineConfig

    data = json.loads(text)
    for key in ("root", "certs_dir", "auth_config"):
        if data.get(key) is not None:
            data[key] = Path(data[key])
    return EngineConfig(**data)


# Stage 1's report to `start`, one JSON line on the status pipe after any progress lines.
def running_report(pid: int) -> dict:
    return {"ok": True, "pid": pid}


def failed_report(message: str, exit_code: int) -> dict:
    return {"error": message, "exit_code": exit_code}


# The start context: every field, its default (which gives its type) and what it is. The argv keys
# are the field names; native/dockui-watch.c reads and rewrites the same keys (KEY_* there, checked by
# tests/test_monitor_native.py).
FIELDS = {
    "id": "",  # the container's full ID
    "config": "",  # the EngineConfig, as JSON (config_to_json)
    "fresh": True,  # a start by the user, not by the restart policy: resets the restart count
    "open_stdin": False,  # -i: the container's stdin is a pipe from the attached client
    # Config.StdinOnce: a client's stdin EOF closes the container's stdin (moby's CloseStdin);
    # otherwise it stays open for the next attach. True by default: a monitor started before the
    # field existed closed it on every EOF.
    "stdin_once": True,
    "winsize": "",  # ROWSxCOLS of the caller's terminal, for a tty before its process starts
    "status_fd": -1,  # to `start`: progress lines, then one report (-1 once it went out)
    "attach_fd": -1,  # the attached client: `run`'s socketpair end or an `attach` connection
    "listen_fd": -1,  # attach.sock's listener, while a container that lives on runs
    "out_fd": -1,  # the container's stdout, our end
    "err_fd": -1,  # the container's stderr, our end
    "in_fd": -1,  # the container's stdin, our end (with open_stdin)
    "pty_fd": -1,  # the container's terminal, its master (with a tty)
    "pid": 0,  # the container's first process, the monitor's child
    "oom_base": 0,  # the cgroup's oom_kill count before the start
    "log_path": "",  # the json-file log
    "log_max_size": 0,  # rotate before the log passes this many bytes (0: never)
    "log_max_file": 1,  # files kept, the live one included
    "exit_code": -1,  # the container's exit status, once the watch stage saw it exit
}
# The keys of the dict this context replaced: a monitor started before an upgrade still hands them on
# (its C stage execs the new finish stage), so from_argv reads them as the fields they became.
LEGACY_KEYS = {
    "status": "status_fd", "attach": "attach_fd", "listen": "listen_fd", "out": "out_fd", "err": "err_fd",
    "in": "in_fd", "pty": "pty_fd", "stdin": "open_stdin", "oom": "oom_base", "log": "log_path",
    "exit": "exit_code",
}
FD_FIELDS = ("attach_fd", "listen_fd", "status_fd", "out_fd", "err_fd", "pty_fd", "in_fd")


class MonitorContext:
    """The monitor's start context, handed from stage to stage as `key=value` argv (to_argv,
    from_argv): every field of FIELDS, typed by its default.

    Slotted rather than a dataclass: the Python watch stage loads this module, and `dataclasses`
    would bring `inspect` with it (see docs/lifecycle.md). Not frozen: a stage records in place
    what it hands on (a descriptor closed is -1, the watch stage sets `exit_code`).
    """

    __slots__ = tuple(FIELDS)

    id: str
    config: str
    fresh: bool
    open_stdin: bool
    stdin_once: bool
    winsize: str
    status_fd: int
    attach_fd: int
    listen_fd: int
    out_fd: int
    err_fd: int
    in_fd: int
    pty_fd: int
    pid: int
    oom_base: int
    log_path: str
    log_max_size: int
    log_max_file: int
    exit_code: int

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(FIELDS)
        if unknown:
            raise TypeError(f"unknown monitor context fields: {sorted(unknown)}")
        for name, default in FIELDS.items():
            value = values.get(name, default)
            if type(value) is not type(default):
                raise TypeError(f"monitor context field {name}: {type(default).__name__} expected, got {value!r}")
            setattr(self, name, value)

    def to_argv(self) -> list[str]:
        out = []
        for name, default in FIELDS.items():
            value = getattr(self, name)
            out.append(f"{name}={int(value) if type(default) is bool else value}")
        return out

    @classmethod
    def from_argv(cls, args: list[str]) -> MonitorContext:
        values: dict[str, Any] = {}
        for arg in args:
            name, _, text = arg.partition("=")
            name = LEGACY_KEYS.get(name, name)
            default = FIELDS.get(name)
            if default is None:
                raise ValueError(f"unknown monitor context key {name!r}")
            if type(default) is bool:
                values[name] = text == "1"
            elif type(default) is int:
                values[name] = int(text) if text else default
            else:
                values[name] = text
        return cls(**values)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(getattr(self, n) == getattr(other, n) for n in FIELDS)

    def __repr__(self) -> str:
        return "MonitorContext(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in FIELDS) + ")"

    def fds(self) -> list[int]:
        """The descriptors the context holds (inherited across the stages' execs)."""
        return [fd for fd in (getattr(self, n) for n in FD_FIELDS) if fd >= 0]

    def report(self, message: dict) -> None:
        """Tell `start` (once) whether the container runs; then the pipe is closed."""
        fd = self.status_fd
        if fd < 0:
            return
        import json

        write_all(fd, (json.dumps(message) + "\n").encode())
        os.close(fd)
        self.status_fd = -1

    def report_progress(self, line: bytes) -> None:
        """A line before the report (the caller reads on until the report): see engine.container.start."""
        fd = self.status_fd
        if fd >= 0:
            write_all(fd, line + b"\n")

    def send_exit(self, code: int) -> None:
        """The exit code to the attached client, last; then its connection is closed."""
        fd = self.attach_fd
        if fd >= 0:
            write_all(fd, frame(FRAME_EXIT, code.to_bytes(4, "big", signed=True)))
            os.close(fd)
            self.attach_fd = -1
