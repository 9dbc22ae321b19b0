"""Shared set-up for the Engine API service tests (no tests here).

`service` fixture: the `engine` fixture of tests/test_lifecycle_support.py (busybox in a fresh root,
a unique cgroup parent and bridge, a strict no-leftovers teardown) plus `dockui system service`
listening on a socket of its own in a fresh temp dir. Teardown stops the service with SIGTERM (it
must exit and remove its socket) before the engine's teardown checks for leftovers.

Use it in a test module with:

    from tests.service_support import Service, service_fixture  # noqa: F401
    from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401

`Service.docker(...)` runs the docker CLI against it (DOCKER_HOST, an empty DOCKER_CONFIG),
`Service.client()` gives a docker-py client, `Service.request(...)` a raw HTTP request,
`docker_events(...)` the events the docker CLI reports over a window.
"""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.test_lifecycle_support import REPO, Engine, wait_until

DOCKER = shutil.which("docker")
START_TIMEOUT = 20.0


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Service:
    engine: Engine
    socket_path: Path
    process: subprocess.Popen
    docker_config: Path

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def env(self) -> dict[str, str]:
        return dict(self.engine.env, DOCKER_HOST=self.host, DOCKER_CONFIG=str(self.docker_config))

    def docker(self, *args: str, input: bytes | None = None, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess:
        if DOCKER is None:
            pytest.skip("the docker CLI is not installed (apt-get install docker.io, never starting its daemon)")
        result = subprocess.run([DOCKER, *args], input=input, capture_output=True, timeout=timeout, env=self.env)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} -> {result.returncode}\n{result.stdout!r}\n{result.stderr!r}")
        return result

    def docker_out(self, *args: str, timeout: float = 60) -> str:
        return self.docker(*args, timeout=timeout, check=True).stdout.decode()

    def client(self, timeout: int = 60) -> Any:
        import docker

        return docker.DockerClient(base_url=self.host, version="auto", timeout=timeout)

    def request(self, method: str, path: str, body: bytes | dict | None = None, headers: dict[str, str] | None = None,
                timeout: float = 30) -> Reply:
        conn = UnixHTTPConnection(str(self.socket_path), timeout)
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        hdrs = dict(headers or {})
        if isinstance(body, dict):
            hdrs.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def restart(self) -> None:
        """A new service process on the same socket (after the old one was killed or stopped)."""
        self.process = _start(self.engine, self.socket_path)


def _start(engine: Engine, socket_path: Path) -> subprocess.Popen:
    log = open(socket_path.parent / "service.log", "ab")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [*engine.argv("system", "service", "-H", f"unix://{socket_path}")],
        env=engine.env, cwd=REPO, stdout=log, stderr=log, start_new_session=True,
    )
    log.close()
    ready = wait_until(lambda: process.poll() is not None or _answers(socket_path), timeout=START_TIMEOUT)
    if not ready or process.poll() is not None:
        process.kill()
        process.wait()
        text = (socket_path.parent / "service.log").read_text(errors="replace")
        raise AssertionError(f"dockui system service did not start:\n{text}")
    return process


def _answers(path: Path) -> bool:
    if not path.exists():
        return False
    conn = UnixHTTPConnection(str(path), 2)
    try:
        conn.request("GET", "/_ping")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def stop_service(service: Service) -> None:
    """SIGTERM; the service must exit within 10 s and take its socket with it."""
    process = service.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError("dockui system service did not exit within 10 s of SIGTERM") from None
        assert not service.socket_path.exists(), "the service left its socket behind"


@pytest.fixture(name="service")
def service_fixture(engine: Engine):  # noqa: ANN201
    """`dockui system service` over the `engine` fixture's root, on a socket of its own."""
    workdir = Path(tempfile.mkdtemp(prefix="dkapi-"))  # short: a socket path must fit 108 bytes
    docker_config = workdir / "docker-config"
    docker_config.mkdir()
    socket_path = workdir / "api.sock"
    try:
        svc = Service(engine, socket_path, _start(engine, socket_path), docker_config)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    try:
        yield svc
    finally:
        try:
            stop_service(svc)
        finally:
            if svc.process.poll() is None:
                svc.process.kill()
                svc.process.wait()
            shutil.rmtree(workdir, ignore_errors=True)


def wait_for_status(engine: Engine, ref: str, status: str, timeout: float = 10) -> bool:
    from engine.container import state

    def check() -> bool:
        try:
            return state.find_container(engine.config, ref).status == status
        except Exception:  # noqa: BLE001
            return False

    return bool(wait_until(check, timeout=timeout))


EventRow = tuple[str, str, str, dict[str, str]]


def docker_events(service: Service, since: float, **filters: str) -> list[EventRow]:
    """`docker events --since --until now` as (type, action, actor, attributes), oldest first.

    Each event is read as the docker CLI's `{{json .}}` of it, so an action holding any text
    (`exec_start: sh -c ...`) parses the same as any other."""
    args = ["events", "--since", f"{since:.6f}", "--until", f"{time.time():.6f}", "--format", "{{json .}}"]
    for key, value in filters.items():
        args += ["--filter", f"{key}={value}"]
    rows = []
    for line in service.docker_out(*args).splitlines():
        message = json.loads(line)
        actor = message["Actor"]
        rows.append((message["Type"], message["Action"], actor["ID"], actor.get("Attributes") or {}))
    return rows


__all__ = ["DOCKER", "EventRow", "Reply", "Service", "docker_events", "service_fixture", "stop_service",
           "wait_for_status"]


def pty_run(argv: list[str], env: dict[str, str], keys: list[bytes], timeout: float = 20,
            size: tuple[int, int] = (30, 100)) -> tuple[int, bytes]:
    """`argv` on a pty of `size` rows and columns (as a user's terminal; a CLI sends it as a
    resize), typing each of `keys` once a fresh shell prompt ends the output; its exit status and
    everything it printed."""
    import fcntl
    import os
    import re
    import select
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    output, pending = b"", list(keys)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    break
                if not data:
                    break
                output += data
            if pending and re.search(rb"# (\x1b\[[0-9;]*[A-Za-z])*$", output):  # a prompt (and ash's redraw codes)
                os.write(master, pending.pop(0))
            if proc.poll() is not None and not ready:
                break
        return proc.wait(timeout=10), output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
