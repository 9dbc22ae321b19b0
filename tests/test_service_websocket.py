"""`GET /containers/{id}/attach/ws`, the websocket attach, driven by websocket-client (the library
docker-py's `attach_socket(ws=True)` uses) over the service's Unix socket.

What moby's wsContainersAttach does and these tests check: the stream is raw in binary frames
(never Docker's 8-byte multiplexing headers, with or without a tty), the client's frames are the
container's stdin, the connection closes when the container exits; `logs`, `stream`, `stdin`,
`stdout`, `stderr` (honoured from API 1.42; every stream before) and, on a tty, `detachKeys`.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.service_support import Service, service_fixture  # noqa: F401 - the `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root

websocket = pytest.importorskip("websocket", reason="websocket-client is not installed (pip install websocket-client)")


def _ws(service: Service, cid: str, query: str, version: str = "v1.43"):  # noqa: ANN202 - a websocket.WebSocket
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(20)
    sock.connect(str(service.socket_path))
    return websocket.create_connection(f"ws://localhost/{version}/containers/{cid}/attach/ws?{query}", socket=sock,
                                       timeout=20)


def _read_until_closed(ws) -> tuple[list[tuple[int, bytes]], bool]:  # noqa: ANN001
    """Every data frame (opcode, payload) until the service's close frame; True if it closed."""
    frames = []
    while True:
        opcode, data = ws.recv_data(control_frame=False)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return frames, True
        frames.append((opcode, data))


def test_websocket_attach_before_start_streams_raw_frames_and_closes_at_exit(service: Service) -> None:
    docker = service.client()
    try:
        container = docker.containers.create("busybox", ["sh", "-c", "printf out-1; printf err-1 >&2; sleep 0.2; "
                                                         "printf out-2; exit 3"])
        ws = _ws(service, container.id, "stream=1&stdout=1&stderr=1")
        try:
            container.start()
            frames, closed = _read_until_closed(ws)
        finally:
            ws.close()
        assert closed, "the service closes the websocket when the container exits"
        assert {opcode for opcode, _ in frames} == {websocket.ABNF.OPCODE_BINARY}
        # Raw: no 8-byte stream header in front of any chunk, stdout and stderr alike.
        assert b"".join(data for _, data in frames) in (b"out-1err-1out-2", b"err-1out-1out-2")
        assert container.wait(timeout=10)["StatusCode"] == 3

        # stream=0: the log only, then the close; stdout=0 leaves stdout out (API 1.42 and later).
        ws = _ws(service, container.id, "logs=1&stream=0&stdout=0&stderr=1")
        try:
            frames, closed = _read_until_closed(ws)
        finally:
            ws.close()
        assert closed
        assert b"".join(data for _, data in frames) == b"err-1"
        # Before API 1.42 moby attaches every stream whatever the query says.
        ws = _ws(service, container.id, "logs=1&stream=0&stdout=0&stderr=0", version="v1.41")
        try:
            frames, _ = _read_until_closed(ws)
        finally:
            ws.close()
        replayed = b"".join(data for _, data in frames)
        assert len(replayed) == 15 and all(part in replayed for part in (b"out-1", b"err-1", b"out-2"))
    finally:
        docker.close()


def test_websocket_attach_sends_the_clients_frames_as_stdin(service: Service) -> None:
    docker = service.client()
    try:
        # docker-py always sends StdinOnce false: the body says true here, as `docker create -i` does
        made = service.request("POST", "/containers/create", {
            "Image": "busybox", "Cmd": ["sh", "-c", "while read line; do echo got:$line; done; exit 5"],
            "OpenStdin": True, "StdinOnce": True})
        assert made.status == 201, made.body
        container = docker.containers.get(made.json()["Id"])
        container.start()
        ws = _ws(service, container.id, "stream=1&stdin=1&stdout=1&stderr=1")
        try:
            ws.send_binary(b"binary\n")
            assert ws.recv() == b"got:binary\n"
            ws.send("text\n")  # a text frame is input too (moby reads both)
            assert ws.recv() == b"got:text\n"
        finally:
            ws.close()
        # StdinOnce: the client's end is its stdin's end (moby's CloseStdin without a tty), so the
        # loop ends.
        assert container.wait(timeout=10)["StatusCode"] == 5
        container.remove()
    finally:
        docker.close()


def test_websocket_attach_on_a_tty_detach_keys_and_close_leave_the_container_running(service: Service) -> None:
    docker = service.client()
    try:
        container = docker.containers.run("busybox", ["sh"], stdin_open=True, tty=True, detach=True)
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            _ws(service, container.id, "stream=1&stdin=1&detachKeys=ctrl-")
        assert refused.value.status_code == 400
        ws = _ws(service, container.id, "stream=1&stdin=1&stdout=1&detachKeys=ctrl-x")
        try:
            _expect(ws, b"echo $((6*7))z\n", b"42z")  # a tty's output, raw
            ws.send_binary(b"\x18")  # ctrl-x
            _, closed = _read_until_closed(ws)
            assert closed
        finally:
            ws.close()
        container.reload()
        assert container.status == "running"
        ws = _ws(service, container.id, "stream=1&stdin=1&stdout=1")
        try:
            _expect(ws, b"echo $((5*5))z\n", b"25z")
        finally:
            ws.close()  # with a tty the client's close leaves stdin open (moby's attach), the slot free
        ws = _ws(service, container.id, "stream=1&stdin=1&stdout=1")
        try:
            _expect(ws, b"echo $((4*4))z\n", b"16z")
            ws.send_binary(b"exit 7\n")
            _, closed = _read_until_closed(ws)
            assert closed, "the service closes the websocket when the container exits"
        finally:
            ws.close()
        assert container.wait(timeout=10)["StatusCode"] == 7
        container.remove()
    finally:
        docker.close()


def _expect(ws, typed: bytes, wanted: bytes) -> None:  # noqa: ANN001
    ws.send_binary(typed)
    seen = b""
    deadline = time.monotonic() + 10
    while wanted not in seen and time.monotonic() < deadline:
        seen += ws.recv()
    assert wanted in seen, seen


def test_websocket_attach_refusals_are_docker_statuses(service: Service) -> None:
    reply = service.request("GET", "/containers/nosuch/attach/ws?stream=1")
    assert reply.status == 404
    docker = service.client()
    try:
        container = docker.containers.create("busybox", ["true"])
        not_a_handshake = service.request("GET", f"/containers/{container.id}/attach/ws?stream=1")
        assert not_a_handshake.status == 400
        assert "websocket" in not_a_handshake.json()["message"]
        with pytest.raises(websocket.WebSocketBadStatusException) as bad_keys:  # parsed without a tty too, as moby
            _ws(service, container.id, "stream=1&detachKeys=ctrl-")
        assert bad_keys.value.status_code == 400
        sleeper = docker.containers.run("busybox", ["sleep", "300"], detach=True)
        sleeper.pause()
        with pytest.raises(websocket.WebSocketBadStatusException) as paused:
            _ws(service, sleeper.name, "stream=1&stdout=1")
        assert paused.value.status_code == 409
        assert f"container {sleeper.name} is paused, unpause the container before attach" in str(paused.value)
        hijacked = service.request("POST", f"/containers/{sleeper.name}/attach?stream=1&stdout=1")
        assert hijacked.status == 409  # the hijacked attach's check is the same
        sleeper.remove(force=True)
        container.start()
        assert container.wait(timeout=10)["StatusCode"] == 0
        ws = _ws(service, container.id, "stream=1&stdout=1")  # stopped: moby's attach waits for the next run
        try:
            container.start()
            _, closed = _read_until_closed(ws)
        finally:
            ws.close()
        assert closed and container.wait(timeout=10)["StatusCode"] == 0
        container.remove()
    finally:
        docker.close()


def test_a_websocket_client_gone_before_start_leaves_the_start_to_run(service: Service) -> None:
    docker = service.client()
    try:
        container = docker.containers.create("busybox", ["sh", "-c", "read line; echo got:$line"], stdin_open=True)
        ws = _ws(service, container.id, "stream=1&stdin=1&stdout=1")
        ws.close()  # waiting for the start, then gone: the pending attach is dropped, not handed the channel
        container.start()
        ws = _ws(service, container.id, "stream=1&stdin=1&stdout=1")
        try:
            ws.send_binary(b"late\n")
            frames, closed = _read_until_closed(ws)
        finally:
            ws.close()
        assert b"".join(data for _, data in frames) == b"got:late\n" and closed
        assert container.wait(timeout=10)["StatusCode"] == 0
        container.remove()
    finally:
        docker.close()
