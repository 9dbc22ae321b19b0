"""Config.StdinOnce, HostConfig.Links and link names in the container list, as moby shows them,
through the Engine API service (the docker CLI, docker-py) and dockui's own CLI.

- StdinOnce is the create body's (docker-py always sends false; the docker CLI true for `create -i`
  and a foreground `run -i`, false for `run -d -i`). Without it, a client's stdin EOF ends that
  attach and leaves the container's stdin open for the next one (moby's CopyStreams); with it,
  the EOF closes the container's stdin.
- Inspect's HostConfig.Links is "/<linked>:/<linking>/<alias>" (moby's link index).
- The linked container's Names in `GET /containers/json` hold "/<linking>/<alias>"; the docker
  CLI's NAMES shows them with --no-trunc only (docker/cli's ContainerContext.Names).
"""

from __future__ import annotations

import json
import select
import socket
import struct
import subprocess
import tempfile

import pytest

from tests.service_support import Service, service_fixture  # noqa: F401 - the `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root

LOOP = ["sh", "-c", "while read line; do echo got:$line; done; exit 5"]


def _stdout_until(sock: socket.socket, wanted: bytes, timeout: float = 10) -> bytes:
    """The stdout payloads of a framed (no tty) attach until `wanted` shows up, or its end."""
    data = b""
    out = b""
    while wanted not in out:
        ready, _, _ = select.select([sock], [], [], timeout)
        chunk = sock.recv(65536) if ready else b""
        if not chunk:
            break
        data += chunk
        while len(data) >= 8:
            size = struct.unpack(">I", data[4:8])[0]
            if len(data) < 8 + size:
                break
            if data[0] == 1:
                out += data[8:8 + size]
            data = data[8 + size:]
    return out


def _ended(sock: socket.socket, timeout: float = 10) -> bool:
    """Whether the service ends the stream (EOF) within `timeout`."""
    while select.select([sock], [], [], timeout)[0]:
        if not sock.recv(65536):
            return True
    return False


def test_stdin_once_is_the_create_bodys_and_the_attach_honours_it(service: Service) -> None:
    client = service.client()
    api = client.api
    try:
        container = client.containers.run("busybox", LOOP, stdin_open=True, detach=True)
        assert api.inspect_container(container.id)["Config"]["StdinOnce"] is False  # docker-py's
        for word in (b"one", b"two"):  # the second attach still finds the container's stdin open
            sock = api.attach_socket(container.id, {"stdin": 1, "stdout": 1, "stream": 1})
            raw = getattr(sock, "_sock", sock)
            try:
                raw.sendall(word + b"\n")
                assert b"got:" + word in _stdout_until(raw, b"got:" + word)
                raw.shutdown(socket.SHUT_WR)  # the client's stdin ends
                assert _ended(raw), "without StdinOnce the client's stdin EOF ends its attach"
            finally:
                sock.close()
            container.reload()
            assert container.status == "running", "the container's stdin stays open without StdinOnce"
        container.remove(force=True)

        # The docker CLI: `create -i` is StdinOnce (`start -a -i` then closes cat's stdin at the
        # EOF), `run -d -i` is not.
        service.docker_out("create", "-i", "--name", "once", "busybox", "cat")
        service.docker_out("run", "-d", "-i", "--name", "kept", "busybox", "cat")
        shown = service.docker_out("inspect", "-f", "{{.Name}} {{.Config.StdinOnce}}", "once", "kept").split("\n")
        assert shown[:2] == ["/once true", "/kept false"]
        started = service.docker("start", "-a", "-i", "once", input=b"echoed\n", timeout=30)
        assert (started.returncode, started.stdout) == (0, b"echoed\n"), started.stderr
        # dockui's CLI records the same.
        engine = service.engine
        engine.out("create", "-i", "--name", "dkonce", "busybox", "cat")
        engine.out("run", "-d", "-i", "--name", "dkkept", "busybox", "cat")
        assert engine.inspect("dkonce")["Config"]["StdinOnce"] is True
        assert engine.inspect("dkkept")["Config"]["StdinOnce"] is False
        # dockui's attach sends its stdin's EOF to the monitor, which (told StdinOnce false at the
        # start) leaves cat's stdin open: the next client's input still reaches it. The file's EOF
        # follows its line at once, long before cat's echo comes back.
        with tempfile.TemporaryFile() as typed:
            typed.write(b"first\n")
            typed.seek(0)
            attach = engine.popen("attach", "--sig-proxy=false", "dkkept", stdin=typed, stdout=subprocess.PIPE)
            try:
                assert attach.stdout is not None
                assert attach.stdout.readline() == b"first\n"
            finally:
                attach.kill()
                attach.wait()
        sock = api.attach_socket("dkkept", {"stdin": 1, "stdout": 1, "stream": 1})
        try:
            raw = getattr(sock, "_sock", sock)
            raw.sendall(b"second\n")
            assert b"second" in _stdout_until(raw, b"second")
        finally:
            sock.close()
    finally:
        for c in api.containers(all=True):
            api.remove_container(c["Id"], force=True)
        client.close()


def test_links_in_inspect_and_link_names_in_the_list(service: Service) -> None:
    engine = service.engine
    service.docker_out("create", "--name", "db", "busybox", "true")
    service.docker_out("create", "--name", "web", "--link", "db:dbalias", "busybox", "true")
    try:
        assert service.docker_out("inspect", "-f", "{{.HostConfig.Links}}", "web").strip() == "[/db:/web/dbalias]"
        assert engine.out("inspect", "-f", "{{.HostConfig.Links}}", "web").strip() == "[/db:/web/dbalias]"
        assert service.docker_out("inspect", "-f", "{{json .HostConfig.Links}}", "db").strip() == "null"

        reply = service.request("GET", "/v1.43/containers/json?all=1")
        assert reply.status == 200, reply.body
        names = {row["Id"][:12]: row["Names"] for row in reply.json()}
        ids = {name: service.docker_out("inspect", "-f", "{{.Id}}", name).strip()[:12] for name in ("db", "web")}
        assert names[ids["db"]] == ["/db", "/web/dbalias"]
        assert names[ids["web"]] == ["/web"]

        for run in (service.docker_out, engine.out):  # the docker CLI over the API, dockui's own
            full = run("ps", "-a", "--no-trunc", "--format", "{{.Names}}").split()
            assert sorted(full) == ["db,web/dbalias", "web"]
            short = run("ps", "-a", "--format", "{{.Names}}").split()
            assert sorted(short) == ["db", "web"]
            table = run("ps", "-a", "--no-trunc")
            assert any(line.endswith("db,web/dbalias") for line in table.splitlines())
            assert "web/dbalias" not in run("ps", "-a")
        row = json.loads(engine.out("ps", "-a", "--no-trunc", "--filter", "name=^db$", "--format", "json"))
        assert row["Names"] == "db,web/dbalias"
    finally:
        service.docker("rm", "-f", "web", "db")
