"""A hostile client of the Engine API service (a member of group `dockui`): huge headers and bodies,
a `Content-Length` that lies, slowloris connections, deeply nested JSON, names and tags with newlines
or `../`, a bad or exponential `name` filter regex, and a client that hangs up in the middle of
every streaming endpoint. The service must answer each with Docker's status and a one-line
`{"message"}`, keep answering everyone else within a second, and be left with no more threads,
descriptors or containers than before."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.faults.scoreboard import score
from tests.service_support import Service, service_fixture  # noqa: F401 - `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - `engine` fixture

pytestmark = pytest.mark.root


def _raw(service: Service, data: bytes, timeout: float = 10) -> bytes:
    """Send `data` on a fresh connection and read until the service closes it or `timeout`."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(service.socket_path))
    sock.settimeout(timeout)
    got = b""
    try:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it answered and closed before reading it all: its answer is still there to read
        while b"\r\n\r\n" not in got or not _complete(got):
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
        return got
    except (TimeoutError, ConnectionResetError):
        return got
    finally:
        sock.close()


def _complete(reply: bytes) -> bool:
    head, _, body = reply.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _status(reply: bytes) -> int:
    try:
        return int(reply.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def _resources(service: Service) -> tuple[int, int]:
    """The service's threads and open descriptors."""
    pid = service.process.pid
    with open(f"/proc/{pid}/status") as f:
        threads = next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
    return threads, len(os.listdir(f"/proc/{pid}/fd"))


def _responsive(service: Service) -> bool:
    started = time.monotonic()
    ok = service.process.poll() is None and service.request("GET", "/_ping", timeout=5).status == 200
    return ok and time.monotonic() - started < 2


def _one_line(body: bytes) -> bool:
    try:
        message = json.loads(body)["message"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(message, str) and "\n" not in message and "Traceback" not in message


def test_hostile_requests(service: Service) -> None:
    def case(name: str, status: int, body: bytes, expected: tuple[int, ...], need_message: bool = True) -> None:
        alive = _responsive(service)
        score("api", name, status in expected and (not need_message or _one_line(body)) and alive,
              detail=f"{status} {body[:200]!r} alive={alive}")

    huge_header = b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
    reply = _raw(service, huge_header)
    case("huge-header", _status(reply), b"", (400, 431), need_message=False)
    many_headers = b"GET /_ping HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(20000)) + b"\r\n"
    reply = _raw(service, many_headers)
    case("many-headers", _status(reply), b"", (400, 431), need_message=False)

    big = service.request("POST", "/containers/create", body=b"{" + b" " * (5 << 20) + b"}",
                          headers={"Content-Type": "application/json"})
    case("body-over-limit", big.status, big.body, (413,))
    # a chunked body (no Content-Length) over the limit must be cut at the limit as well
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(service.socket_path))
    sock.settimeout(20)
    sock.sendall(b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (1 << 20, b" " * (1 << 20))
    try:
        for _ in range(8):
            sock.sendall(chunk)
        sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the service closed early: fine, its answer is read below
    reply = b""
    try:
        while not _complete(reply):
            data = sock.recv(65536)
            if not data:
                break
            reply += data
    except (TimeoutError, OSError):
        pass
    sock.close()
    case("chunked-body-over-limit", _status(reply), reply.partition(b"\r\n\r\n")[2], (413,), need_message=False)

    nested = service.request("POST", "/containers/create", body=b"[" * 200000 + b"]" * 200000,
                             headers={"Content-Type": "application/json"})
    case("deeply-nested-json", nested.status, nested.body, (400,))
    nested_filter = '{"name":' + "[" * 3000 + "]" * 3000 + "}"  # raw brackets: under the 8 KiB request line
    reply_filters = service.request("GET", f"/containers/json?all=1&filters={nested_filter}")
    case("deeply-nested-filters", reply_filters.status, reply_filters.body, (400,))

    for name, ref in (("name-dotdot", "../../etc"), ("name-newline", "web\nX-Injected: 1"),
                      ("name-slash-path", "a/../../b"), ("name-nul", "a\0b")):
        reply_create = service.request("POST", "/containers/create?name=" + urllib.parse.quote(ref),
                                       body={"Image": "busybox", "Cmd": ["true"]})
        case(name, reply_create.status, reply_create.body, (400,))
    for name, repo in (("tag-newline", "evil\nrepo"), ("tag-dotdot", "../../x"), ("tag-uppercase-path", "A/../B")):
        reply_tag = service.request("POST", "/images/busybox/tag?repo=" + urllib.parse.quote(repo) + "&tag=t")
        case(name, reply_tag.status, reply_tag.body, (400,))
    assert service.engine.out("ps", "-aq") == ""


def test_regex_bomb_in_a_name_filter(service: Service) -> None:
    """Docker's name filter is a Go (RE2) regular expression, linear in the name; a backtracking one
    given `(a+)+$` and a name of 40 `a`s and a `-` would spin a service thread for ever."""
    engine = service.engine
    name = "a" * 40 + "-x"
    engine.out("create", "--name", name, "--network", "none", "busybox", "true")
    try:
        before = time.monotonic()
        reply = service.request("GET", "/containers/json?all=1&filters=" + urllib.parse.quote(
            json.dumps({"name": ["(a+)+$", "(a|aa)*c"]})), timeout=15)
        took = time.monotonic() - before
        listed = reply.json() if reply.status == 200 else None
        score("api", "filter-regex-bomb", took < 5 and (reply.status == 400 and _one_line(reply.body) or listed == [])
              and _responsive(service), detail=f"{reply.status} {reply.body[:200]!r} in {took:.1f} s")
        bad = service.request("GET", "/containers/json?all=1&filters=" + urllib.parse.quote('{"name":["("]}'))
        score("api", "filter-bad-regex", bad.status == 400 and _one_line(bad.body), detail=f"{bad.status} {bad.body!r}")
        good = service.request("GET", "/containers/json?all=1&filters=" + urllib.parse.quote(
            json.dumps({"name": ["^a+-x$"]})))
        assert good.status == 200 and len(good.json()) == 1, good.body  # an ordinary pattern still matches
    finally:
        engine.out("rm", "-f", name)


def test_slow_and_lying_clients(service: Service) -> None:
    """Slowloris connections (half a request line, then nothing), a Content-Length that promises more
    than comes: the service keeps answering others, and once they hang up nothing of them stays."""
    threads0, fds0 = _resources(service)
    held = []
    for i in range(40):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(service.socket_path))
        if i % 2:
            sock.sendall(b"GET /_pi")
        else:
            sock.sendall(b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n{\"Image\":")
        held.append(sock)
    alive = _responsive(service)
    for sock in held:
        sock.close()
    settled = wait_until(lambda: _resources(service)[1] <= fds0 + 2, timeout=10)
    threads, fds = _resources(service)
    score("api", "slowloris-and-short-bodies", alive and bool(settled),
          detail=f"alive={alive} threads {threads0}->{threads} fds {fds0}->{fds}",
          leaks=[] if settled else [f"descriptors {fds0}->{fds}"])
    assert service.engine.out("ps", "-aq") == ""


def _hang_up_after_first_bytes(service: Service, request: bytes, linger: float = 0) -> bytes:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(service.socket_path))
    sock.settimeout(20)
    sock.sendall(request)
    got = b""
    try:
        while b"\r\n\r\n" not in got:
            chunk = sock.recv(4096)
            if not chunk:
                break
            got += chunk
    except TimeoutError:
        pass
    time.sleep(linger)  # a client that stops reading first: every buffer on the way fills up
    sock.close()
    return got


def test_streaming_clients_hang_up(service: Service, tmp_path: Path) -> None:
    """A client that reads the headers of every streaming endpoint and goes away: the service's
    threads and descriptors come back to what they were, the container is untouched."""
    engine = service.engine
    cid = engine.out("run", "-d", "--network", "none", "busybox", "sh", "-c",
                     "while true; do echo tick; sleep 0.2; done").strip()
    try:
        service.request("GET", "/_ping")
        time.sleep(0.5)  # the executor's first threads exist
        threads0, fds0 = _resources(service)
        endpoints = {
            "logs-follow": f"GET /containers/{cid}/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: x\r\n\r\n",
            "attach-stream": f"POST /containers/{cid}/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\n"
                             "Upgrade: tcp\r\nConnection: Upgrade\r\n\r\n",
            "events": "GET /events HTTP/1.1\r\nHost: x\r\n\r\n",
            "stats-stream": f"GET /containers/{cid}/stats?stream=1 HTTP/1.1\r\nHost: x\r\n\r\n",
            "wait": f"POST /containers/{cid}/wait HTTP/1.1\r\nHost: x\r\n\r\n",
            "pull-unreachable": "POST /images/create?fromImage=127.0.0.1:1/nothing&tag=latest HTTP/1.1\r\nHost: x\r\n\r\n",
            "export": f"GET /containers/{cid}/export HTTP/1.1\r\nHost: x\r\n\r\n",
            "export-stalled": f"GET /containers/{cid}/export HTTP/1.1\r\nHost: x\r\n\r\n",
            "archive-get-stalled": f"GET /containers/{cid}/archive?path=/bin HTTP/1.1\r\nHost: x\r\n\r\n",
        }
        for name, request in endpoints.items():
            head = _hang_up_after_first_bytes(service, request.encode(), 1.0 if "stalled" in name else 0)
            settled = wait_until(lambda: _resources(service)[1] <= fds0, timeout=15)
            threads, fds = _resources(service)
            running = engine.inspect(cid)["State"]["Running"]
            score("api", f"hang-up-{name}", bool(head) and running and _responsive(service),
                  detail=f"{head[:80]!r} threads {threads0}->{threads} fds {fds0}->{fds} running={running}",
                  leaks=[] if settled else [f"descriptors {fds0}->{fds}"])
        helpers = [p for p in os.listdir("/proc") if p.isdigit() and _is_archive_helper(p, engine)]
        score("api", "hang-up-no-helper-left", not helpers, detail=str(helpers),
              leaks=[f"helper processes {helpers}"] if helpers else [])
    finally:
        engine.out("rm", "-f", cid)


def _is_archive_helper(pid: str, engine: Engine) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    return b"engine.container.archive" in cmdline and str(engine.config.root).encode() in cmdline
