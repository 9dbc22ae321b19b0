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


def parse_kv(args: list) -> dict:
    ctx = {}
    for arg in args:
        key, _, value = arg.partition("=")
        ctx[key] = value
    return ctx


def encode_kv(ctx: dict) -> list:
    return [f"{k}={v}" for k, v in ctx.items() if v is not None]


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


def report_status(ctx: dict, message: dict) -> None:
    """Tell `start` (once) whether the container runs; then the pipe is closed."""
    fd = int(ctx.get("status", -1))
    if fd < 0:
        return
    import json

    write_all(fd, (json.dumps(message) + "\n").encode())
    os.close(fd)
    ctx["status"] = "-1"


def report_progress(ctx: dict, line: bytes) -> None:
    """A line before the report (the caller reads on until the report): see runtime.start."""
    fd = int(ctx.get("status", -1))
    if fd >= 0:
        write_all(fd, line + b"\n")


def send_exit(ctx: dict, code: int) -> None:
    fd = int(ctx.get("attach", -1))
    if fd >= 0:
        write_all(fd, frame(FRAME_EXIT, code.to_bytes(4, "big", signed=True)))
        os.close(fd)
        ctx["attach"] = "-1"
