"""A hostile client of the Engine API socket, beyond test_hostile_api's: connections by the thousand
that never send (or send a chunked body that never ends) to a service started with 1024
descriptors; readers that stop reading a big log, a flooding attach or exec; stdin sent faster than
the container reads it; hang-ups in the middle of a `PUT archive`, a build's upload, an image load
and a pull; a request line of a million parameters; JSON 100,000 deep wherever the service decodes
JSON; `filters` of every wrong shape on every endpoint that takes one; numbers out of range in
every numeric query parameter, in create bodies and in `dockui run`'s flags.

What must hold: each is answered with Docker's status and a one-line `{"message"}` (never a 500 or
"internal error") or, where Docker takes it, taken; everyone else is still answered within two
seconds; the service's memory stays bounded while a reader stalls or a writer floods; and once the
client is gone nothing of it stays (descriptors, threads, helpers, mounts, spools, staging files)
and the container or the store is as usable as before.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.scoreboard import score
from tests.faults.test_hostile_api import _one_line, _responsive
from tests.fixtures.imagebuild import file, tar_from_entries
from tests.service_support import (
    START_TIMEOUT,
    Service,
    _answers,
    service_fixture,  # noqa: F401 - `service` fixture
    stop_service,
)
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - `engine` fixture

pytestmark = pytest.mark.root

# Every endpoint that reads `filters` (moby's filters.FromJSON), and the shapes a client may send
# instead of a map of lists of strings: each must be a 400 or, where Docker reads it (a map of
# booleans, the legacy form; JSON null), an answer; never a 500.
FILTER_ENDPOINTS = (("GET", "/containers/json?all=1"), ("GET", "/images/json"), ("GET", "/networks"),
                    ("GET", "/volumes"), ("GET", "/plugins"), ("GET", "/events?since=1&until=2"),
                    ("POST", "/containers/prune"), ("POST", "/images/prune"), ("POST", "/networks/prune"),
                    ("POST", "/volumes/prune"), ("POST", "/build/prune"))
FILTER_SHAPES = ("[]", '"name"', "1", "true", "null", '{"name":1}', '{"name":[1]}', '{"name":[[]]}',
                 '{"name":{"a":"yes"}}', '{"name":{"a":1}}', '{"name":null}', '{"label":[null]}', '{"":[""]}',
                 '{"until":["x"]}', '{"until":["99999999999999999999"]}', '{"dangling":["maybe"]}',
                 '{"before":["\\u0000"]}', '{"name":["' + "a" * 5000 + '"]}', "{", '{"name":["a"]}x')
# Values a numeric query parameter must refuse in one line or take: past int64, negative, floats
# Python reads and Go does not, 5000 digits (past int()'s limit), hex, blanks
NUMBERS = ("99999999999999999999", "-1", "-99999999999999999999", "1e400", "nan", "inf", "9" * 5000, "0x10",
           " 5", "5.5", "18446744073709551616")
SIGNAL_WORDS = ("²", "SIGRTMIN+" + "9" * 5000, "SIGRTMIN+²")  # digits to str.isdigit, not to int()


def _resources(service: Service) -> tuple[int, int]:
    """The service's threads and open descriptors, less the mount table engine.util.mountinfo keeps
    open by design once a call has looked at it (one file, whatever the clients do)."""
    pid = service.process.pid
    with open(f"/proc/{pid}/status") as f:
        threads = next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
    descriptors = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            descriptors += not os.readlink(f"/proc/{pid}/fd/{fd}").endswith("/mountinfo")
        except FileNotFoundError:
            pass  # closed meanwhile
    return threads, descriptors


def _reply_ok(status: int, body: bytes) -> bool:
    """Docker's answer to a bad value: a 4xx with one line, or a 2xx/304 (taken); never a 5xx."""
    if status >= 500 or b"internal error" in body or b"Traceback" in body:
        return False
    return status < 400 or _one_line(body)


def test_filters_of_every_wrong_shape(service: Service) -> None:
    engine = service.engine
    engine.out("create", "--name", "kept", "--network", "none", "busybox", "true")
    engine.out("volume", "create", "keptv")
    try:
        for method, path in FILTER_ENDPOINTS:
            bad = []
            for shape in FILTER_SHAPES:
                sep = "&" if "?" in path else "?"
                reply = service.request(method, f"{path}{sep}filters={urllib.parse.quote(shape)}", timeout=15)
                if not _reply_ok(reply.status, reply.body):
                    bad.append(f"{shape[:30]} -> {reply.status} {reply.body[:100]!r}")
            score("api", f"filters-shapes-{method.lower()}-{path.split('?')[0].strip('/').replace('/', '-')}",
                  not bad and _responsive(service), detail="; ".join(bad[:3]))
        for shape in ('{"name":{"kept":"yes"}}', '{"name":{"kept":1}}'):  # moby: a map of booleans, or a 400
            reply = service.request("GET", "/containers/json?all=1&filters=" + urllib.parse.quote(shape))
            score("api", f"filters-map-of-{'strings' if 'yes' in shape else 'numbers'}", reply.status == 400
                  and _one_line(reply.body), detail=f"{reply.status} {reply.body[:120]!r}")
        for kind in ("containers", "images", "networks"):  # Unix seconds past Go's int64: moby's ParseInt error
            reply = service.request("POST", f"/{kind}/prune?filters=" + urllib.parse.quote('{"until":["9' + "9" * 19 + '"]}'))
            score("api", f"prune-{kind}-until-past-int64", reply.status == 400 and _one_line(reply.body),
                  detail=f"{reply.status} {reply.body[:120]!r}")
        kept = engine.out("ps", "-aq", "--no-trunc").split()
        volumes = engine.out("volume", "ls", "-q").split()
        score("api", "filters-shapes-pruned-nothing", len(kept) == 1 and volumes == ["keptv"],
              detail=f"containers {kept} volumes {volumes}")
    finally:
        engine.out("rm", "-f", "kept")
        engine.out("volume", "rm", "keptv")


def _numeric_queries(cid: str, exec_id: str) -> list[tuple[str, str, str]]:
    """(method, path, parameter) of every numeric query parameter the service reads."""
    return [("GET", "/containers/json?all=1", "limit"), ("POST", f"/containers/{cid}/resize?w=80", "h"),
            ("POST", f"/containers/{cid}/resize?h=24", "w"), ("POST", f"/exec/{exec_id}/resize?w=80", "h"),
            ("POST", f"/exec/{exec_id}/resize?h=24", "w"), ("GET", f"/containers/{cid}/logs?stdout=1", "tail"),
            ("GET", f"/containers/{cid}/logs?stdout=1", "since"), ("GET", f"/containers/{cid}/logs?stdout=1", "until"),
            ("GET", "/events?since=1", "until"), ("GET", "/events?until=1", "since"),
            ("POST", f"/containers/{cid}/kill", "signal"), ("POST", f"/containers/{cid}/stop?t=0", "signal"),
            ("POST", f"/containers/{cid}/stop", "t"), ("POST", f"/containers/{cid}/restart", "t"),
            ("POST", "/containers/prune?filters=", "until"), ("POST", "/images/prune?filters=", "until"),
            ("POST", "/networks/prune?filters=", "until"), ("GET", "/images/json?filters=", "until")]


def test_numbers_out_of_range_in_every_query_parameter(service: Service) -> None:
    """A running container (its stop signal SIGKILL, so a stop that is taken returns at once, even
    with a negative timeout, Docker's "wait for ever") and a tty exec of it; each value is sent to
    each parameter, the container started again when one stopped it."""
    engine = service.engine
    cid = engine.out("run", "-d", "-t", "--network", "none", "--label", "keep=1", "--stop-signal", "KILL", "busybox",
                     "sh", "-c", "while true; do sleep 0.1; done").strip()
    try:
        made = service.request("POST", f"/containers/{cid}/exec", {"Cmd": ["sleep", "60"], "Tty": True})
        exec_id = made.json()["Id"]
        for method, path, name in _numeric_queries(cid, exec_id):
            bad = []
            for value in NUMBERS + (SIGNAL_WORDS if name == "signal" else ()):
                if "filters=" in path:
                    target = path.replace("filters=", "filters=" + urllib.parse.quote(json.dumps(
                        {name: [value], "label": ["nothing-has-this"]})))
                else:
                    target = f"{path}{'&' if '?' in path else '?'}{name}={urllib.parse.quote(value)}"
                reply = service.request(method, target, timeout=20)
                if not _reply_ok(reply.status, reply.body):
                    bad.append(f"{value[:24]} -> {reply.status} {reply.body[:100]!r}")
                if not service.request("GET", f"/containers/{cid}/json").json()["State"]["Running"]:
                    service.request("POST", f"/containers/{cid}/start")
            where = path.split("?")[0].replace(cid, "C").replace(exec_id, "E").strip("/").replace("/", "-")
            score("api", f"numbers-{method.lower()}-{where}-{name}", not bad and _responsive(service),
                  detail="; ".join(bad[:3]))
    finally:
        engine.out("rm", "-f", cid)


@pytest.fixture(name="limited_service")
def limited_service_fixture(engine: Engine):  # noqa: ANN201
    """The service started as a login shell or a systemd unit starts it: 1024 descriptors (soft)
    under the hard limit."""
    workdir = Path(tempfile.mkdtemp(prefix="dkapi-"))
    socket_path = workdir / "api.sock"
    (workdir / "docker-config").mkdir()
    log = open(workdir / "service.log", "ab")  # noqa: SIM115 - closed once the process has it
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]  # kept: raising it needs CAP_SYS_RESOURCE
    if hard < 2048:
        pytest.skip(f"the hard limit of open files is {hard}: no room above a soft 1024")
    process = subprocess.Popen(["prlimit", f"--nofile=1024:{hard}", "--",
                                *engine.argv("system", "service", "-H", f"unix://{socket_path}")],
                               env=engine.env, stdout=log, stderr=log, start_new_session=True)
    log.close()
    svc = Service(engine, socket_path, process, workdir / "docker-config")
    try:
        assert wait_until(lambda: process.poll() is None and _answers(socket_path), timeout=START_TIMEOUT)
        yield svc
    finally:
        try:
            stop_service(svc)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            shutil.rmtree(workdir, ignore_errors=True)


def test_a_thousand_idle_connections(limited_service: Service) -> None:
    """Slowloris by the thousand: 1100 connections that never send a byte or a chunked body's first
    chunk only (past the 1024 descriptors
    the service was started with) while others are still answered, and a container it starts keeps
    the limit it was given (Go raises the soft limit for dockerd itself, not for what it starts)."""
    service = limited_service
    _, fds0 = _resources(service)
    held = []
    try:
        for i in range(1100):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(service.socket_path))
            if i % 10 == 0:  # and one in ten a chunked create body that never ends
                sock.sendall(b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n9\r\n{\"Image\":\r\n")
            held.append(sock)
        wait_until(lambda: _resources(service)[1] >= fds0 + 1000, timeout=10)  # all of them accepted
        started = time.monotonic()
        try:
            listed = service.request("GET", "/containers/json?all=1", timeout=5).status
        except TimeoutError:
            listed = 0
        took = time.monotonic() - started
        score("api", "a-thousand-idle-connections", listed == 200 and _responsive(service),
              detail=f"list {listed} in {took:.1f} s, descriptors {fds0}->{_resources(service)[1]}")
    finally:
        for sock in held:
            sock.close()
    settled = wait_until(lambda: _resources(service)[1] <= fds0 + 2, timeout=10)
    score("api", "a-thousand-idle-connections-gone", bool(settled), detail=f"{fds0}->{_resources(service)[1]}",
          leaks=[] if settled else [f"descriptors {fds0}->{_resources(service)[1]}"])
    out = service.engine.out("run", "--rm", "--network", "none", "busybox", "sh", "-c", "ulimit -n")
    via_service = service.request("POST", "/containers/create", {"Image": "busybox", "Cmd": ["sh", "-c", "ulimit -n"],
                                                                 "HostConfig": {"NetworkMode": "none"}}).json()["Id"]
    try:
        service.request("POST", f"/containers/{via_service}/start")
        service.request("POST", f"/containers/{via_service}/wait", timeout=20)
        logs = service.engine.out("logs", via_service)
    finally:
        service.engine.out("rm", "-f", via_service)
    score("api", "service-containers-keep-their-limit", logs.strip() == "1024" and out.strip() != "",
          detail=f"through the service {logs.strip()!r}, from the CLI {out.strip()!r}")


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def _stalled_reader(service: Service, request: str) -> socket.socket:
    """A client that sends `request`, reads the first bytes of the answer and then reads no more."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(str(service.socket_path))
    sock.settimeout(20)
    sock.sendall(request.encode())
    sock.recv(64)
    return sock


def test_readers_that_stop_reading(service: Service) -> None:
    """Six clients ask for a 24 MB log (and two attach with logs=1, two follow it) and read none of
    it; one attaches to a container that writes as fast as it can, one starts an exec that does, and
    neither reads: the service
    must hold what its socket buffers hold, not the log (each of them had it all in memory: 50 MB
    a client), and everyone else is still answered."""
    engine = service.engine
    line = "x" * 199
    logged = engine.out("run", "-d", "--network", "none", "busybox", "sh", "-c",
                        f"yes {line} | head -n 120000; echo written; sleep 600").strip()
    flood = engine.out("run", "-d", "--network", "none", "busybox", "sh", "-c", f"yes {line}").strip()
    held: list[socket.socket] = []
    try:
        assert wait_until(lambda: engine.out("logs", "--tail", "1", logged) == "written\n", timeout=60)
        pid = service.process.pid
        before = _rss_kib(pid)
        requests = [f"GET /containers/{logged}/logs?stdout=1 HTTP/1.1\r\nHost: x\r\n\r\n"] * 4
        requests += [f"GET /containers/{logged}/logs?stdout=1&follow=1 HTTP/1.1\r\nHost: x\r\n\r\n"] * 2
        requests += [f"POST /containers/{logged}/attach?logs=1&stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\n"
                     "Upgrade: tcp\r\nConnection: Upgrade\r\n\r\n"] * 2
        requests += [f"POST /containers/{flood}/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\n"
                     "Upgrade: tcp\r\nConnection: Upgrade\r\n\r\n"]
        flooding_exec = service.request("POST", f"/containers/{logged}/exec", {
            "Cmd": ["yes", line], "AttachStdout": True}).json()["Id"]
        start = b'{"Detach": false, "Tty": false}'
        requests += [f"POST /exec/{flooding_exec}/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(start)}\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n{start.decode()}"]
        held = [_stalled_reader(service, request) for request in requests]
        time.sleep(2)  # the flood fills every buffer on its way
        grown = (_rss_kib(pid) - before) // 1024
        alive = _responsive(service)
        score("api", "stalled-readers-of-a-big-log", grown < 40 and alive,
              detail=f"service memory grew {grown} MiB with {len(held)} stalled readers, alive={alive}")
    finally:
        for sock in held:
            sock.close()
        engine.out("rm", "-f", logged, flood)


def _archive_helpers(service: Service) -> list[str]:
    from tests.faults.test_hostile_api import _is_archive_helper

    return [p for p in os.listdir("/proc") if p.isdigit() and _is_archive_helper(p, service.engine)]


def _hang_up_mid_body(service: Service, head: str, body: bytes, chunked: bool) -> None:
    """Send `head`, the first part of `body` (as one chunk of a chunked body that never ends, or
    under a Content-Length that promises it all) and go away."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(service.socket_path))
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    sock.sendall(f"{head}Host: x\r\n{framing}\r\n\r\n".encode())
    part = body[: len(body) // 3]
    sock.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
    time.sleep(0.5)  # the service is inside the upload
    sock.close()


def _flood_stdin(service: Service, cid: str, websocket: bool) -> int:
    """Attach to `cid` with stdin and send up to 64 MiB as fast as the service takes it (a raw
    hijacked stream, or binary websocket frames); the MiB it took before it stopped reading."""
    import struct

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(service.socket_path))
    if websocket:
        sock.sendall(f"GET /containers/{cid}/attach/ws?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: x\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode())
        chunk = bytes([0x82, 0xFF]) + struct.pack(">Q", 1 << 16) + b"\0" * 4 + b"y" * (1 << 16)  # masked, key 0
    else:
        sock.sendall(f"POST /containers/{cid}/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: x\r\n"
                     "Upgrade: tcp\r\nConnection: Upgrade\r\n\r\n".encode())
        chunk = b"y" * (1 << 16)
    assert b" 101 " in sock.recv(200)
    sock.settimeout(3)
    sent = 0
    try:
        while sent < 64 << 20:
            sock.sendall(chunk)
            sent += len(chunk)
    except (TimeoutError, OSError):
        pass  # it stopped reading: what the test wants
    sock.close()
    return sent >> 20


def test_stdin_sent_faster_than_the_container_reads_it(service: Service) -> None:
    """A client attached with stdin to a container that never reads it (`sleep`), sending as fast as
    it can: the service held all of it in memory (64 MiB sent, 64 MiB more); it must stop reading at
    a bounded backlog, and let the attach go once the client leaves."""
    engine = service.engine
    ids = [engine.out("run", "-d", "-i", "--network", "none", "busybox", "sleep", "600").strip() for _ in range(2)]
    try:
        service.request("GET", "/_ping")
        _, fds0 = _resources(service)
        for cid, websocket in zip(ids, (False, True), strict=True):
            before = _rss_kib(service.process.pid)
            taken = _flood_stdin(service, cid, websocket)
            grown = (_rss_kib(service.process.pid) - before) // 1024
            settled = wait_until(lambda: _resources(service)[1] <= fds0, timeout=10)
            name = "websocket" if websocket else "hijacked"
            score("api", f"stdin-flood-{name}", taken < 16 and grown < 16 and _responsive(service),
                  detail=f"took {taken} MiB, grew {grown} MiB",
                  leaks=[] if settled else [f"descriptors {fds0}->{_resources(service)[1]}"])
    finally:
        engine.out("rm", "-f", *ids)


def test_hang_ups_in_the_middle_of_an_upload(service: Service) -> None:
    """`PUT archive` into a running and a stopped container, a build's context, an image load: the
    client sends a third of its body and goes away. Its helper must go (and the stopped container's
    overlay with it), no spool or unpacked context stays, no copy is logged as done, and the
    containers start and copy as before (what was written of the file stays, as with Docker's
    untar)."""
    engine = service.engine
    body = _tar({"big": b"z" * (6 << 20)})
    running = engine.out("run", "-d", "--network", "none", "busybox", "sleep", "600").strip()
    stopped = engine.out("create", "--network", "none", "busybox", "sleep", "600").strip()
    _, fds0 = _resources(service)
    since = time.time()
    try:
        uploads = [(f"put-archive-{state}-{framing}", f"PUT /containers/{cid}/archive?path=/tmp HTTP/1.1\r\n")
                   for state, cid in (("running", running), ("stopped", stopped)) for framing in ("length", "chunked")]
        uploads += [("build-context", "POST /build?t=never-built HTTP/1.1\r\nContent-Type: application/x-tar\r\n"),
                    ("image-load", "POST /images/load HTTP/1.1\r\nContent-Type: application/x-tar\r\n")]
        for name, head in uploads:
            _hang_up_mid_body(service, head, body, chunked=name.endswith("chunked"))
            gone = wait_until(lambda: not _archive_helpers(service) and _resources(service)[1] <= fds0, timeout=10)
            left = [str(p) for p in engine.config.tmp_dir.iterdir()] if engine.config.tmp_dir.is_dir() else []
            mounts = [line.split()[4] for line in open("/proc/self/mountinfo") if str(engine.config.root) in line]
            score("api", f"hang-up-mid-{name}", bool(gone) and not left and not mounts and _responsive(service),
                  detail=f"helpers {_archive_helpers(service)} fds {fds0}->{_resources(service)[1]}",
                  leaks=left + mounts)
        events = service.request("GET", f"/events?since={since:.0f}&until={time.time() + 1:.0f}").body
        images = [i["RepoTags"] for i in service.request("GET", "/images/json").json()]
        engine.out("start", stopped)
        copied = service.request("GET", f"/containers/{stopped}/archive?path=/tmp/big")
        score("api", "hang-ups-mid-upload-left-it-usable", b"extract-to-dir" not in events and engine.inspect(
            stopped)["State"]["Running"] and copied.status == 200 and ["never-built:latest"] not in images,
              detail=f"events {events.count(b'extract-to-dir')} copy {copied.status} images {images}")
    finally:
        engine.out("rm", "-f", running, stopped)


def test_a_million_query_parameters(service: Service) -> None:
    """A request line of a million `a=1` pairs (4 MB), and 100 `filters` with 700 other pairs within
    aiohttp's 8 KiB request line: refused or read, at once, and the service answers others meanwhile."""
    started = time.monotonic()
    huge = b"GET /containers/json?" + b"&".join([b"a=1"] * 1_000_000) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    from tests.faults.test_hostile_api import _raw, _status

    reply = _raw(service, huge)
    took = time.monotonic() - started
    score("api", "a-million-query-parameters", _status(reply) in (400, 414, 431) and took < 5 and _responsive(service),
          detail=f"{reply[:80]!r} in {took:.1f} s")
    many = "&".join(["filters=" + urllib.parse.quote('{"name":["x"]}')] * 100 + ["x=1"] * 700)
    reply_many = service.request("GET", f"/containers/json?all=1&{many}", timeout=10)
    score("api", "eight-hundred-query-parameters", _reply_ok(reply_many.status, reply_many.body) and _responsive(service),
          detail=f"{reply_many.status} {reply_many.body[:100]!r}")


def _registry_sockets(service: Service, port: int) -> Callable[[], list[str]]:
    """The service's TCP connections to 127.0.0.1:`port` (engine.image.registry.client_for keeps a
    session per registry, its connections pooled for the next pull)."""
    def found() -> list[str]:
        pid = service.process.pid
        peers = {}
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                peers[fields[9]] = int(fields[2].split(":")[1], 16)
        sockets = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except FileNotFoundError:
                continue
            if link.startswith("socket:[") and peers.get(link[8:-1]) == port:
                sockets.append(fd)
        return sockets

    return found


def test_hang_up_in_the_middle_of_a_pull(service: Service, registry, tmp_path: Path) -> None:  # noqa: ANN001
    """`POST /images/create` through tests/faults/registry_proxy.py, its second layer stalled: the
    client goes away once the first layer is in. The pull ends (cancelled, or done once the
    registry answers again), holds no thread or descriptor, leaves whole layers and no staging or
    temp file, and the next pull of the image completes."""
    from tests.faults.registry_proxy import FaultProxy
    from tests.faults.test_registry_stalls import _layers, _push, _store_consistent

    engine = service.engine
    image = _push(registry, tmp_path, "hangup", 400_000, 300_000)
    first, second = (layer[0] for layer in image.layers)
    from engine.image.digest import chain_ids

    proxy = FaultProxy(registry.host).start()
    try:
        service.request("GET", "/_ping")
        threads0, fds0 = _resources(service)
        proxy.faults = {second.diff_id: ["stall:60"]}
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(service.socket_path))
        sock.sendall(f"POST /images/create?fromImage={proxy.host}/faults/hangup&tag=latest HTTP/1.1\r\n"
                     "Host: x\r\n\r\n".encode())
        committed = wait_until(lambda: chain_ids([first.diff_id])[0] in _layers(engine), timeout=30)
        sock.close()
        time.sleep(0.5)
        proxy.release.set()  # the stalled layer flows again: a pull still running would finish now
        pooled = _registry_sockets(service, proxy.port)  # the shared client's keep-alive pool (at most 8)
        settled = wait_until(lambda: _resources(service)[1] - len(pooled()) <= fds0 and len(pooled()) <= 8
                             and _resources(service)[0] <= threads0 + 1, timeout=20)
        problems = _store_consistent(engine)
        score("registry", "client-hangs-up-mid-pull", bool(committed) and bool(settled) and _responsive(service),
              detail=f"committed={bool(committed)} threads {threads0}->{_resources(service)[0]} "
                     f"fds {fds0}->{_resources(service)[1]} (registry pool {len(pooled())})", leaks=problems)
        proxy.faults = {}
        pulled = service.request("POST", f"/images/create?fromImage={proxy.host}/faults/hangup&tag=latest", timeout=60)
        listed = [tag for i in service.request("GET", "/images/json").json() for tag in i["RepoTags"] or ()]
        score("registry", "pull-after-a-hang-up", pulled.status == 200 and f"{proxy.host}/faults/hangup:latest" in listed
              and not _store_consistent(engine), detail=f"{pulled.status} {pulled.body[-160:]!r} {listed}")
    finally:
        proxy.release.set()
        proxy.stop()


def _tar(files: dict[str, bytes]) -> bytes:
    return tar_from_entries(file(name, data) for name, data in files.items())


def test_json_nested_100000_deep_wherever_json_is_read(service: Service) -> None:
    """test_hostile_api nests the create body and `filters`; every other body, query value and
    header the service decodes as JSON gets the same: a 400 in one line, never a RecursionError's 500."""
    import base64

    engine = service.engine
    cid = engine.out("run", "-d", "--network", "none", "busybox", "sleep", "600").strip()
    engine.out("network", "create", "deepnet")
    try:
        made = service.request("POST", f"/containers/{cid}/exec", {"Cmd": ["true"]}).json()["Id"]
        deep = b"[" * 100_000 + b"]" * 100_000
        bodies = (f"/containers/{cid}/update", "/networks/create", "/volumes/create", f"/containers/{cid}/exec",
                  f"/exec/{made}/start", "/networks/deepnet/connect", "/networks/deepnet/disconnect", "/auth",
                  f"/commit?container={cid}")
        bad = []
        for path in bodies:
            reply = service.request("POST", path, body=deep, headers={"Content-Type": "application/json"}, timeout=20)
            if reply.status != 400 or not _one_line(reply.body):
                bad.append(f"{path} {reply.status} {reply.body[:100]!r}")
        score("api", "deep-json-bodies", not bad and _responsive(service), detail="; ".join(bad[:3]))
        bad = []
        context = _tar({"Dockerfile": b"FROM busybox\n"})
        for name in ("buildargs", "labels"):  # 2500 deep: what an 8 KiB request line holds
            reply = service.request("POST", f"/build?{name}={'[' * 2500}{']' * 2500}", body=context,
                                    headers={"Content-Type": "application/x-tar"}, timeout=20)
            if reply.status != 400 or not _one_line(reply.body):
                bad.append(f"{name} {reply.status} {reply.body[:100]!r}")
        score("api", "deep-json-build-query", not bad and _responsive(service), detail="; ".join(bad))
        header = base64.urlsafe_b64encode(b"[" * 3000 + b"]" * 3000).decode()
        bad = []
        for method, path in (("POST", "/images/create?fromImage=127.0.0.1:1/x&tag=1"), ("POST", "/images/busybox/push"),
                             ("POST", "/build?t=deep")):
            reply = service.request(method, path, body=context if "build" in path else None, timeout=20,
                                    headers={"X-Registry-Auth": header, "X-Registry-Config": header})
            if "build" in path:  # moby's build route ignores an X-Registry-Config it cannot decode
                if not _reply_ok(reply.status, reply.body):
                    bad.append(f"{path} {reply.status} {reply.body[:100]!r}")
                continue
            if reply.status != 400 or not _one_line(reply.body):
                bad.append(f"{path} {reply.status} {reply.body[:100]!r}")
        score("api", "deep-json-registry-auth", not bad and _responsive(service), detail="; ".join(bad))
        # a Dockerfile's exec form and a --change's (commit, import) are JSON arrays too
        bad = []
        dockerfile = b"FROM busybox\nCMD " + b"[" * 100_000 + b"]" * 100_000 + b"\n"
        built = service.request("POST", "/build?t=deep", body=_tar({"Dockerfile": dockerfile}), timeout=60,
                                headers={"Content-Type": "application/x-tar"})
        if not _reply_ok(built.status, built.body) or b"internal error" in built.body or b"Recursion" in built.body:
            bad.append(f"build {built.status} {built.body[-160:]!r}")
        change = urllib.parse.quote("CMD " + "[" * 1200 + "]" * 1200)  # within the 8 KiB line
        for path in (f"/commit?container={cid}&repo=deep&changes={change}",
                     f"/images/create?fromSrc=-&repo=deep&changes={change}"):
            reply = service.request("POST", path, body=_tar({"f": b"x"}) if "fromSrc" in path else None, timeout=20)
            if reply.status != 400 or not _one_line(reply.body):
                bad.append(f"{path[:20]} {reply.status} {reply.body[:100]!r}")
        score("api", "deep-json-exec-forms", not bad and _responsive(service), detail="; ".join(bad))
    finally:
        engine.out("rm", "-f", cid)
        engine.out("network", "rm", "deepnet")
        engine.cli("rmi", "deep")


BIG = 2**70  # past Go's int64: moby's JSON decoding refuses it before anything
BODY_NUMBERS = (
    ("memory-past-int64", {"HostConfig": {"Memory": BIG}}), ("memory-negative", {"HostConfig": {"Memory": -1}}),
    ("reservation-negative", {"HostConfig": {"MemoryReservation": -1}}),
    ("cpu-shares-past-int64", {"HostConfig": {"CpuShares": BIG}}), ("cpu-quota-past-int64", {"HostConfig": {"CpuQuota": BIG}}),
    ("pids-limit-past-int64", {"HostConfig": {"PidsLimit": BIG}}), ("shm-size-negative", {"HostConfig": {"ShmSize": -1}}),
    ("shm-size-past-int64", {"HostConfig": {"ShmSize": BIG}}), ("stop-timeout-past-int64", {"StopTimeout": BIG}),
    ("tmpfs-size-past-int64", {"HostConfig": {"Mounts": [{"Type": "tmpfs", "Target": "/t",
                                                          "TmpfsOptions": {"SizeBytes": BIG}}]}}),
    ("tmpfs-mode-past-int64", {"HostConfig": {"Mounts": [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"Mode": BIG}}]}}),
    ("healthcheck-retries-past-int64", {"Healthcheck": {"Test": ["CMD", "true"], "Retries": BIG}}),
    ("cpuset-past-8192", {"HostConfig": {"CpusetCpus": "0-99999999999999999999"}}),
    ("cpuset-one-past-8192", {"HostConfig": {"CpusetCpus": "9000"}}),
    ("host-port-past-65535", {"HostConfig": {"NetworkMode": "bridge",
                                             "PortBindings": {"80/tcp": [{"HostPort": "99999999999999999999"}]}}}),
)


def test_numbers_out_of_range_in_create_bodies(service: Service) -> None:
    """What moby refuses at create (its JSON decoding into int64, verifyContainerSettings and
    verifyPlatformContainerResources) must be a 400 at create, never a created container whose start
    is a 500, nor a thread that fills memory: `CpusetCpus` `0-99999999999999999999` made a set of
    10^20 CPUs (moby's CVE-2018-20699), the request never answered and the service deaf to SIGTERM."""
    for case, fields in BODY_NUMBERS:
        body = {"Image": "busybox", "Cmd": ["true"], **{k: v for k, v in fields.items() if k != "HostConfig"},
                "HostConfig": {"NetworkMode": "none", **fields.get("HostConfig", {})}}
        try:
            reply = service.request("POST", "/containers/create", body, timeout=10)
            status, text = reply.status, reply.body
        except TimeoutError:
            status, text = 0, b"no answer in 10 s"
        if status == 201:
            service.request("DELETE", f"/containers/{reply.json()['Id']}?force=1")
        score("api", f"create-body-{case}", status == 400 and _one_line(text) and _responsive(service),
              detail=f"{status} {text[:160]!r}")
    listed = service.request("GET", "/containers/json?all=1").json()
    score("api", "create-body-numbers-made-nothing", listed == [], detail=str(listed)[:120])


def test_numbers_out_of_range_in_run_flags(service: Service) -> None:
    """The same through `dockui run`: one line at create (status 125), no container, where `--cpus
    1e400` or `nan` was an internal error and a memory of 10^29 bytes ran with no limit at all."""
    from tests.faults.scoreboard import one_line_error, stderr_escapes

    engine = service.engine
    for case, flags in (("cpus-inf", ("--cpus", "1e400")), ("cpus-nan", ("--cpus", "nan")),
                        ("memory-past-int64", ("--memory", "99999999999999999999g")),
                        ("pids-limit-past-int64", ("--pids-limit", "99999999999999999999")),
                        ("cpu-shares-past-int64", ("--cpu-shares", "99999999999999999999")),
                        ("cpuset-past-8192", ("--cpuset-cpus", "0-99999999999999999999"))):
        result = engine.cli("run", "--network", "none", *flags, "busybox", "true", timeout=30)
        score("flags", f"run-{case}", result.returncode == 125 and one_line_error(result.stderr)
              and b"internal error" not in result.stderr, detail=f"{result.returncode} {result.stderr[-160:]!r}",
              escapes=stderr_escapes(result.stderr))
    left = engine.out("ps", "-aq")
    score("flags", "run-numbers-made-nothing", left == "", detail=left)
