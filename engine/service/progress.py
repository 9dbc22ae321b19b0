"""Docker's JSON progress stream (pull, push, import, load): one JSON object per line, as the docker
CLI and docker-py read it, fed from an engine call that runs on a worker thread.

    {"status": "Pulling from library/busybox", "id": "latest"}
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "a3ed95caeb02"}
    {"status": "Downloading", "progressDetail": {"current": 1024, "total": 4096}, "progress": "[=>  ] ...", "id": "..."}
    {"status": "Digest: sha256:..."}
    {"errorDetail": {"message": "..."}, "error": "..."}      a failure once the stream has begun

Invariant: the HTTP status is decided before the first line goes out. Events are held back until
the engine call has passed its first check (for a pull: the manifest was found, i.e. a layer line
or the end arrived), so an unknown image or a bad reference still gets Docker's 404/400 with a
`{"message"}` body; after that, a failure is the stream's last line. A client that goes away sets
the call's cancel event: the engine stops at its next read and takes back what it had begun.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

TYPE_CHECKING = False
if TYPE_CHECKING:
    from engine.image.pull import PullEvent

_PULLING_FROM = re.compile(r"^(\S+): Pulling from (.+)$")
_PUSHED = re.compile(r"^(\S+): digest: (\S+) size: (\d+)$")
_BAR_WIDTH = 50


def progress_line(event: PullEvent) -> dict[str, Any]:
    """One engine progress event in Docker's JSONMessage shape."""
    if event.layer is None:
        match = _PULLING_FROM.match(event.status)
        if match:
            return {"status": f"Pulling from {match.group(2)}", "id": match.group(1)}
        return {"status": event.status}
    line: dict[str, Any] = {"status": event.status, "progressDetail": {}, "id": event.layer}
    if event.total:
        line["progressDetail"] = {"current": event.current, "total": event.total}
        line["progress"] = _bar(event.current, event.total)
    return line


def push_aux(event: PullEvent) -> dict[str, Any] | None:
    """The aux record Docker sends after push's closing `TAG: digest: D size: N` line (clients read
    the digest from it; the docker CLI prints the status line and hides aux records)."""
    found = _PUSHED.match(event.status) if event.layer is None else None
    if found is None:
        return None
    return {"progressDetail": {}, "aux": {"Tag": found.group(1), "Digest": found.group(2), "Size": int(found.group(3))}}


def _bar(current: int, total: int) -> str:
    from engine.util.units import human_size

    filled = min(_BAR_WIDTH, int(_BAR_WIDTH * current / total)) if total else 0
    arrow = "=" * max(filled - 1, 0) + (">" if 0 < filled < _BAR_WIDTH else "=" if filled else "")
    return f"[{arrow.ljust(_BAR_WIDTH)}] {human_size(current)}/{human_size(total)}"


def error_line(exc: BaseException) -> dict[str, Any]:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return {"errorDetail": {"message": message}, "error": message}


@dataclass(frozen=True)
class _Emitted:
    body: dict[str, Any]


@dataclass(frozen=True)
class _Done:
    closing: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class _Failed:
    error: BaseException


Line = dict[str, Any]  # one JSON object of the stream
Emit = Callable[[Line], None]
Work = Callable[[Emit, threading.Event], tuple[Line, ...]]  # (emit, cancel) -> the closing lines


def _never(line: Line) -> bool:  # noqa: ARG001
    return False


async def stream(request: web.Request, work: Work, held: Callable[[Line], bool] = _never) -> web.StreamResponse:
    """Run `work(emit, cancel)` on a thread and stream what it emits, then the lines it returns.

    Lines for which `held(line)` is true are kept back until another line arrives: while only those
    have come, a failure is still an HTTP error status (raised from here for the middleware).
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[_Emitted | _Done | _Failed] = asyncio.Queue()
    cancel = threading.Event()

    def emit(line: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, _Emitted(line))

    def run() -> None:
        try:
            closing = work(emit, cancel)
        except BaseException as exc:  # noqa: BLE001 - handed to the loop, raised or streamed there
            loop.call_soon_threadsafe(queue.put_nowait, _Failed(exc))
            return
        loop.call_soon_threadsafe(queue.put_nowait, _Done(closing))

    task = loop.run_in_executor(None, run)
    response: web.StreamResponse | None = None
    pending: list[dict[str, Any]] = []
    try:
        while True:
            item = await _next_item(queue, request)
            if isinstance(item, _Failed):
                if response is None:
                    raise item.error
                await response.write(_encode(error_line(item.error)))
                break
            lines = [item.body] if isinstance(item, _Emitted) else list(item.closing)
            if response is None and isinstance(item, _Emitted) and held(item.body):
                pending.append(item.body)
                continue
            if response is None:
                response = web.StreamResponse(headers={"Content-Type": "application/json"})
                await response.prepare(request)
                lines = pending + lines
            for line in lines:
                await response.write(_encode(line))
            if isinstance(item, _Done):
                break
    finally:
        cancel.set()  # a no-op once the call has returned; stops it if the client went away
        with contextlib.suppress(BaseException):
            await asyncio.shield(task)
    assert response is not None
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


CLIENT_POLL_SECONDS = 0.5  # how soon a silent call (a RUN printing nothing) notices its client left


async def _next_item(queue: asyncio.Queue, request: web.Request) -> _Emitted | _Done | _Failed:
    """The next item from the call, or ConnectionResetError once the client has gone: a write would
    tell only when the call next says something, so a silent call is checked on every poll."""
    while True:
        try:
            return await asyncio.wait_for(queue.get(), CLIENT_POLL_SECONDS)
        except TimeoutError:
            if request.transport is None or request.transport.is_closing():
                raise ConnectionResetError("the client went away") from None


def _encode(line: dict[str, Any]) -> bytes:
    return json.dumps(line).encode() + b"\r\n"
