"""Attaching API clients to a container's monitor (before or after start).

The monitor speaks its own frames (engine.container.monitor: kind | length | payload) over either
the socketpair `runtime.start(attach=True)` hands back, or <container dir>/attach.sock once the
container runs. This module relays those frames to the client's connection: a hijacked HTTP one
(Docker's framing without a tty) or a websocket (engine.service.streams).

Attach before start (the docker CLI's foreground `run`: create, attach, wait, start): the attach
request registers a `PendingAttach` and waits; the `start` request takes it and starts the container
attached, handing the monitor's end to the waiting request. Invariants: one monitor channel per
relay; a client that goes away closes only its channel (the container, its log and other clients go
on); the relay ends when the monitor reports the exit or closes the channel.

`serve` is the whole attach, for both of Docker's attach endpoints: the hijacked `POST .../attach`
(framed without a tty) and the websocket `GET .../attach/ws` (raw binary frames); they differ only
in how the client's connection is opened (engine.service.streams).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from engine import events
from engine.api import containers as api
from engine.config import EngineConfig
from engine.container import monitor
from engine.container.detachkeys import DetachScanner
from engine.container.state import ContainerRecord
from engine.errors import Conflict
from engine.service.streams import STDERR, STDOUT, AttachClient, in_batches

if TYPE_CHECKING:
    from engine.container.logs import LogEntry

CLIENT_POLL_SECONDS = 0.2  # how soon a vanished client's attach slot is freed
BUSY_GRACE = 1.0  # seconds an attach retries a monitor whose one slot a leaving client still holds


@dataclass(frozen=True)
class AttachStreams:
    """What the client asked for (Docker's stdin/stdout/stderr query flags)."""

    stdin: bool
    stdout: bool
    stderr: bool
    detach: bytes = b""  # the detach sequence acted on (a tty's input only); empty: none
    close_stdin: bool = True  # the client's input EOF closes the container's stdin (moby: StdinOnce, no tty)


@dataclass(frozen=True)
class AttachRequest:
    """An attach's query: the streams, `logs` (replay the log first), `stream` (then follow)."""

    streams: AttachStreams
    logs: bool
    stream: bool


Opener = Callable[[], Awaitable[tuple[web.StreamResponse, AttachClient]]]  # answers the request, takes its connection


@dataclass
class PendingAttach:
    streams: AttachStreams
    channel: asyncio.Future[socket.socket] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Sessions:
    """Pending attaches by container ID, and the live channels (for resize)."""

    def __init__(self) -> None:
        self.pending: dict[str, list[PendingAttach]] = {}
        self.live: dict[str, list[asyncio.StreamWriter]] = {}

    def wait_for_start(self, container_id: str, streams: AttachStreams) -> PendingAttach:
        pending = PendingAttach(streams)
        self.pending.setdefault(container_id, []).append(pending)
        return pending

    def take_pending(self, container_id: str) -> PendingAttach | None:
        """The first attach still waiting for this container's start (the monitor has one channel)."""
        waiting = [p for p in self.pending.pop(container_id, []) if not p.channel.done()]
        for extra in waiting[1:]:
            extra.channel.cancel()
        return waiting[0] if waiting else None

    def end_pending(self, container_id: str) -> None:
        """The container is gone: every attach waiting for its start ends (moby closes its streams)."""
        for pending in self.pending.pop(container_id, []):
            pending.channel.cancel()

    def forget(self, container_id: str, pending: PendingAttach) -> None:
        entries = self.pending.get(container_id, [])
        if pending in entries:
            entries.remove(pending)

    async def resize(self, container_id: str, rows: int, cols: int) -> bool:
        """Send a window size to the monitor through the attached channel (False: none attached)."""
        sent = False
        for writer in self.live.get(container_id, []):
            with contextlib.suppress(ConnectionError, OSError):
                writer.write(monitor.frame(monitor.FRAME_RESIZE, struct.pack(">HH", rows, cols)))
                sent = True
        return sent


async def connect_running(config: EngineConfig, record: ContainerRecord) -> socket.socket:
    """A channel to a running container's monitor (its attach.sock), greeted as attached.

    The monitor takes one client at a time and turns another away at once. A client that just
    left (a closed websocket, a killed `docker attach`) may still hold the slot for the moment the
    service takes to notice, so a turned-away attach tries again for BUSY_GRACE seconds before
    it is the 409."""
    loop = asyncio.get_running_loop()
    busy_until = loop.time() + BUSY_GRACE
    while True:
        sock = await _greeted(config, record)
        if sock is not None:
            return sock
        if loop.time() > busy_until:
            raise Conflict(f"cannot attach to container {record.id[:12]}: another client is attached")
        await asyncio.sleep(0.05)


async def _greeted(config: EngineConfig, record: ContainerRecord) -> socket.socket | None:
    """One connection to the monitor's attach socket: the channel, or None when another client
    holds the slot."""
    from engine.container.monitor.context import ATTACH_SOCKET

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    # A container started a moment ago gets its listener after the start stage's grace period.
    deadline = loop.time() + 2 * monitor.START_GRACE + 1
    try:
        # Through /proc/self/fd/<dir>: a long engine root would not fit a socket address (108 bytes).
        dfd = os.open(record.dir(config), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            while True:
                try:
                    await loop.sock_connect(sock, f"/proc/self/fd/{dfd}/{ATTACH_SOCKET}")
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    if loop.time() > deadline:
                        raise
                    await asyncio.sleep(0.02)
        finally:
            os.close(dfd)
        greeting = await asyncio.wait_for(loop.sock_recv(sock, 5), 5)
    except (TimeoutError, OSError):
        sock.close()
        raise Conflict(f"cannot attach to container {record.id[:12]}: its monitor takes no client now") from None
    if not greeting or greeting[0] != monitor.FRAME_ATTACHED:
        sock.close()
        return None
    return sock


async def relay(
    sessions: Sessions, container_id: str, channel: socket.socket, client: AttachClient, streams: AttachStreams,
    on_detach: Callable[[], Awaitable[None]] | None = None,
) -> int | None:
    """Relay between the monitor's channel and the client until the exit (its code) or either side
    goes away (None). `on_detach` is awaited when the client leaves with the detach keys."""
    channel.setblocking(False)
    reader, writer = await asyncio.open_unix_connection(sock=channel)
    sessions.live.setdefault(container_id, []).append(writer)
    pump = asyncio.create_task(_client_to_monitor(client, writer, streams, on_detach))
    code = None
    try:
        frames = monitor.FrameReader()
        while True:
            data = await reader.read(65536)
            if not data:
                break
            for kind, payload in frames.feed(data):
                if kind == monitor.FRAME_EXIT:
                    code = struct.unpack(">i", payload)[0]
                elif kind == monitor.FRAME_STDOUT and streams.stdout:
                    if not await client.send(STDOUT, payload):
                        return None
                elif kind == monitor.FRAME_STDERR and streams.stderr:
                    if not await client.send(STDERR, payload):
                        return None
            if code is not None:
                break
    finally:
        pump.cancel()
        live = sessions.live.get(container_id, [])
        if writer in live:
            live.remove(writer)
        if not live:
            sessions.live.pop(container_id, None)
        writer.close()
        client.close()
    return code


async def _client_to_monitor(client: AttachClient, writer: asyncio.StreamWriter, streams: AttachStreams,
                             on_detach: Callable[[], Awaitable[None]] | None = None) -> None:
    """The client's bytes as stdin frames (dropped when it did not ask for stdin); its EOF as
    stdin's EOF when `close_stdin` (Config.StdinOnce without a tty: the output goes on until the
    exit), else the end of this attach, its output too, with the container's stdin left open for
    the next client (moby's CopyStreams either way; the monitor, told StdinOnce at the start, would
    ignore the EOF too). Once the client is gone (not merely done sending), the channel is closed, which
    ends the relay and frees the monitor's one attach slot even if the container stays silent.
    The detach sequence closes the client and the channel at once: the container runs on, its
    stdin still open (Docker's detach)."""
    stdin = streams.stdin
    scanner = DetachScanner(streams.detach) if stdin and streams.detach else None
    try:
        while data := await client.input.get():
            if scanner is not None:
                data, detached = scanner.feed(data)
                if detached:
                    if data:
                        writer.write(monitor.frame(monitor.FRAME_STDIN, data))
                        await writer.drain()
                    if on_detach is not None:
                        await on_detach()
                    client.close()
                    writer.close()
                    return
            if stdin and data:
                writer.write(monitor.frame(monitor.FRAME_STDIN, data))
                if not await _drained(client, writer):
                    writer.transport.abort()  # what it holds will never be read: ends the relay at once
                    return
        if stdin and streams.close_stdin:
            writer.write(monitor.frame(monitor.FRAME_STDIN_EOF))
            await writer.drain()
        elif stdin:  # moby closes this attach's output instead: the container's stdin stays open
            client.close()
            writer.close()
            return
    except (ConnectionError, OSError):
        pass
    while not client.gone:  # a half-close: the client still reads the output
        await asyncio.sleep(CLIENT_POLL_SECONDS)
    writer.close()


async def _drained(client: AttachClient, writer: asyncio.StreamWriter) -> bool:
    """The stdin frame written out to the monitor, or False once the client is gone while it waits:
    with a container that does not read its stdin, the relay and the client's connection stayed
    for ever after the client had left."""
    while True:
        try:
            await asyncio.wait_for(writer.drain(), CLIENT_POLL_SECONDS)
            return True
        except TimeoutError:
            if client.gone:
                return False


async def serve(config: EngineConfig, sessions: Sessions, record: ContainerRecord, asked: AttachRequest,
                open_client: Opener) -> web.StreamResponse:
    """Attach one client: the log first when asked, then the live streams of a running container,
    or of a created or stopped one once `start` hands over its channel. Errors found before the
    client's connection is opened (a busy monitor) are the request's status."""
    streams = asked.streams
    entries: Iterator[LogEntry] = iter(())
    if asked.logs:
        query = api.LogQuery(stdout=streams.stdout, stderr=streams.stderr)
        _, entries, _ = await asyncio.to_thread(api.log_entries, config, record.id, query)
    await asyncio.to_thread(events.container, config, "attach", record)  # moby logs it before any stream

    async def detached() -> None:  # moby's `detach`, when the client leaves with the detach keys
        await asyncio.to_thread(events.container, config, "detach", record)

    if not asked.stream:
        response, client = await open_client()
        await _replay(client, entries)
        await client.finish()
        return response
    if record.running:
        channel = await connect_running(config, record)
        try:
            response, client = await open_client()
        except BaseException:
            channel.close()
            raise
        await _replay(client, entries)
        await relay(sessions, record.id, channel, client, streams, detached)
        await client.finish()
        return response
    # Not running (created, or stopped: moby's streams outlive a run): wait for the next start, as
    # `docker start -a` and compose's up (attach, then start) expect.
    pending = sessions.wait_for_start(record.id, streams)
    try:
        response, client = await open_client()
    except BaseException:
        pending.channel.cancel()
        sessions.forget(record.id, pending)
        raise
    await _replay(client, entries)
    gone = asyncio.create_task(_client_gone(client))
    try:
        await asyncio.wait([pending.channel, gone], return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not pending.channel.done() or pending.channel.cancelled() or pending.channel.exception() is not None:
        pending.channel.cancel()
        sessions.forget(record.id, pending)
        await client.finish()
        return response
    channel = pending.channel.result()
    if client.gone:  # gone while the start was under way: the container runs on, its stdin open
        channel.close()
        await client.finish()
        return response
    await relay(sessions, record.id, channel, client, streams, detached)
    await client.finish()
    return response


async def _replay(client: AttachClient, entries: Iterator[LogEntry]) -> None:
    async for batch in in_batches(entries):
        for entry in batch:
            if not await client.send(STDERR if entry.stream == "stderr" else STDOUT, entry.data):
                return


async def _client_gone(client: AttachClient) -> None:
    while not client.gone:
        await asyncio.sleep(CLIENT_POLL_SECONDS)
