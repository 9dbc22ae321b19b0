"""Hijacked connections and Docker's stream framing, for attach, exec start and logs.

Docker's stdio streams: without a tty each chunk is framed as `stream (1 byte: 0 stdin, 1 stdout,
2 stderr) | 0 0 0 | length (4 bytes, big endian) | payload`; with a tty the bytes go raw.

A hijacked connection (attach, exec start) answers `101 Switching Protocols` when the client asked
for `Upgrade: tcp` (the docker CLI, docker-py) and `200` with a raw stream otherwise (older
clients); from then on the socket carries raw bytes both ways. Invariants: the client's half-close
(stdin at EOF) ends only its input, never our output by itself (the caller decides: attach ends its
output there unless Config.StdinOnce); its disconnect ends only its own stream; the
stream's first byte goes out only once the client has read the headers (or after 0.5 s).

A websocket attach (`GET /containers/{id}/attach/ws`) carries the same raw stream in binary frames
(never multiplexed: no 8-byte headers, with or without a tty) and takes the client's frames,
binary or text, as stdin. Both connections are an `AttachClient`, so attach's relay
(engine.service.attach) is one for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import select
import struct
from collections.abc import AsyncIterator, Iterator
from typing import Protocol, TypeVar

from aiohttp import web

T = TypeVar("T")

STDIN, STDOUT, STDERR = 0, 1, 2
MAX_BUFFERED = 1 << 20  # bytes queued to a slow client before we wait for it


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


class AttachClient(Protocol):
    """An attached client as the relay sees it, whatever carries its bytes."""

    input: asyncio.Queue[bytes]  # the client's bytes; b"" once, when it has no more to send

    async def send(self, stream: int, data: bytes) -> bool:
        """One chunk of a container's stream; False once the client is gone."""
        ...

    @property
    def gone(self) -> bool:
        """The client closed the connection (it reads no more)."""
        ...

    def close(self) -> None:
        """Start closing the connection (the relay's end, a detach)."""
        ...

    async def finish(self) -> None:
        """Close the connection and wait until it is closed."""
        ...


def _hung_up(transport: asyncio.BaseTransport | None) -> bool:
    """The peer closed both sides of the connection: POLLHUP on a Unix socket, seen even while we
    neither write (nothing would fail) nor read (paused, or a backlog not yet taken)."""
    if transport is None or transport.is_closing():
        return True
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), 0)  # POLLHUP and POLLERR are always reported
    return any(events & (select.POLLHUP | select.POLLERR) for _, events in poller.poll(0))


class _InputQueue(asyncio.Queue):  # type: ignore[type-arg] - asyncio.Queue[bytes], subclassed
    """The client's input, bounded: past MAX_BUFFERED bytes not yet taken, reading from the client
    pauses (`transport`) or its reader waits (`room`), until half of it is taken. Without it a
    client that sends while the container does not read its stdin grew the service without end
    (200 MiB sent, 212 MiB more memory)."""

    def __init__(self, transport: asyncio.BaseTransport | None = None) -> None:
        super().__init__()
        self.transport = transport
        self.size = 0
        self.room = asyncio.Event()
        self.room.set()

    def _put(self, item: bytes) -> None:
        super()._put(item)
        self.size += len(item)
        if self.size > MAX_BUFFERED and self.room.is_set():
            self.room.clear()
            if isinstance(self.transport, asyncio.ReadTransport) and not self.transport.is_closing():
                self.transport.pause_reading()

    def _get(self) -> bytes:
        item: bytes = super()._get()
        self.size -= len(item)
        if self.size <= MAX_BUFFERED // 2 and not self.room.is_set():
            self.room.set()
            if isinstance(self.transport, asyncio.ReadTransport) and not self.transport.is_closing():
                self.transport.resume_reading()
        return item


class _InputReader:
    """Takes the place of aiohttp's HTTP parser on a hijacked connection: raw bytes to a queue
    (b"" once, at the client's EOF or disconnect)."""

    def __init__(self, queue: asyncio.Queue[bytes]) -> None:
        self.queue = queue
        self.ended = False

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data and not self.ended:
            self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        if not self.ended:
            self.ended = True
            self.queue.put_nowait(b"")


class Hijacked:
    """The raw connection after the HTTP answer: `input` yields the client's bytes (b"" at EOF)."""

    def __init__(self, request: web.Request, framed: bool) -> None:
        self.request = request
        self.framed = framed
        self.input: asyncio.Queue[bytes] = _InputQueue(request.transport)
        self.transport = request.transport
        self.closed = asyncio.Event()

    async def send(self, stream: int, data: bytes) -> bool:
        """Write one chunk (framed without a tty); False once the client is gone."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        transport.write(frame(stream, data) if self.framed else data)
        while transport.get_write_buffer_size() > MAX_BUFFERED and not transport.is_closing():
            await asyncio.sleep(0.01)
        return not transport.is_closing()

    @property
    def gone(self) -> bool:
        """The client closed the connection (not merely its sending side: a half-close keeps
        reading)."""
        return _hung_up(self.transport)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    async def finish(self) -> None:
        self.close()


async def hijack(request: web.Request, framed: bool) -> tuple[web.StreamResponse, Hijacked]:
    """Answer the request (101 or 200) and take over its connection for raw bytes."""
    upgrade = request.headers.get("Upgrade", "").lower() == "tcp" and "upgrade" in request.headers.get("Connection", "").lower()
    content_type = "application/vnd.docker.multiplexed-stream" if framed else "application/vnd.docker.raw-stream"
    if upgrade:
        response = web.StreamResponse(status=101, headers={"Content-Type": content_type, "Connection": "Upgrade", "Upgrade": "tcp"})
    else:
        response = web.StreamResponse(status=200, headers={"Content-Type": content_type})
        # A raw stream, not chunks: the 200 form carries the same bytes as the upgraded one.
        response._length_check = False  # noqa: SLF001 - aiohttp has no public switch for this
    response.force_close()
    await response.prepare(request)
    session = Hijacked(request, framed)
    reader = _InputReader(session.input)
    protocol = request.protocol
    protocol.set_parser(reader)  # type: ignore[arg-type]
    if request.transport is not None:
        request.transport.set_protocol(_HalfClose(protocol, reader))
    await _headers_read(request)  # the client's input is ours from here: none of it is lost meanwhile
    return response, session


HEADERS_READ_WAIT = 0.5  # seconds a client gets to read the 101/200 headers before the stream starts


async def _headers_read(request: web.Request) -> None:
    """Wait until the client has read the response headers (the socket's send queue is empty),
    for at most HEADERS_READ_WAIT seconds.

    Clients that read the headers through a buffered HTTP parser and then switch to the raw socket
    (docker-py takes `response.raw._fp.fp.raw`) lose whatever bytes arrived with the headers: a
    stream that starts at once (attach with `logs`, an exec's first output) would lose its first
    bytes. Docker's stream starts after the headers are out; on a Unix socket SIOCOUTQ tells when
    the peer has read them.
    """
    import fcntl
    import termios

    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if transport is None or sock is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HEADERS_READ_WAIT
    outq = bytearray(struct.calcsize("i"))
    while loop.time() < deadline and not transport.is_closing():
        try:
            fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, outq)
        except OSError:
            return
        if transport.get_write_buffer_size() == 0 and struct.unpack("i", outq)[0] == 0:
            return
        await asyncio.sleep(0.002)


class _HalfClose(asyncio.Protocol):
    """Stands between the transport and aiohttp's protocol on a hijacked connection: the client's
    EOF (it closed its sending side when its stdin ended) ends our input, not the connection,
    so the container's remaining output still reaches it."""

    def __init__(self, inner: asyncio.Protocol, reader: _InputReader) -> None:
        self.inner = inner
        self.reader = reader

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool:
        self.reader.feed_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.reader.feed_eof()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()



class WebSocketClient:
    """A websocket attach: each chunk of the stream one binary frame, raw (the websocket keeps
    the messages apart; Docker never multiplexes this stream), the client's frames its input.
    A websocket has no half-close: the client's close frame (or its disconnect) ends its input
    and marks it gone at once."""

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None = None) -> None:
        self.ws = ws
        self.transport = transport
        self.input: _InputQueue = _InputQueue()
        self._reader = asyncio.create_task(self._read())
        self._closing: asyncio.Future[bool] | None = None

    async def _read(self) -> None:
        from aiohttp import WSMsgType

        try:
            async for message in self.ws:
                if message.type == WSMsgType.BINARY and message.data:
                    self.input.put_nowait(bytes(message.data))
                elif message.type == WSMsgType.TEXT and message.data:
                    self.input.put_nowait(message.data.encode())
                await self.input.room.wait()  # aiohttp's own buffer then stops reading the socket
        finally:
            self.input.put_nowait(b"")

    async def send(self, stream: int, data: bytes) -> bool:  # noqa: ARG002 - one stream per websocket
        if self.gone:
            return False
        try:
            await self.ws.send_bytes(data)
        except (ConnectionError, RuntimeError):
            return False
        return not self.gone

    @property
    def gone(self) -> bool:
        return self.ws.closed or self._reader.done() or self._closing is not None or _hung_up(self.transport)

    def close(self) -> None:
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())

    async def _close(self) -> None:
        """Our close frame, then the client's answer awaited (aiohttp's close would drop the
        connection at once while another task reads: the client's answer would meet a closed
        socket), so the reading task goes first."""
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close()

    async def finish(self) -> None:
        self.close()
        assert self._closing is not None
        await self._closing


async def open_websocket(request: web.Request) -> tuple[web.WebSocketResponse, WebSocketClient]:
    """Complete the client's websocket handshake (a 400 in Docker's body when it is not one)."""
    from engine.errors import InvalidArgument

    ws = web.WebSocketResponse(autoping=True)
    if not ws.can_prepare(request).ok:
        raise InvalidArgument("websocket attach: the request is not a websocket handshake (Upgrade: websocket)")
    transport = request.transport  # taken before the handshake hands the connection to the websocket
    await ws.prepare(request)
    return ws, WebSocketClient(ws, transport)


async def in_batches(items: Iterator[T], size: int = 1000) -> AsyncIterator[list[T]]:
    """A lazy reader's items (a log's entries, read from disk as they are taken) taken on a thread,
    a batch at a time: the event loop never reads the file, and a client that stops reading holds
    one batch, not the whole log."""
    while batch := await asyncio.to_thread(lambda: list(itertools.islice(items, size))):
        yield batch
