"""The Engine API service's containers and exec, driven by real clients (the docker CLI, docker-py)
and raw HTTP against `dockui system service` on a socket of its own."""

from __future__ import annotations

import json

import pytest

from tests.service_support import Service, service_fixture  # noqa: F401 - the `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root


def test_ping_version_info_report_the_engine(service: Service) -> None:
    ping = service.request("GET", "/_ping")
    assert ping.status == 200 and ping.body == b"OK"
    assert ping.headers["api-version"] == "1.43" and ping.headers["ostype"] == "linux"
    head = service.request("HEAD", "/v1.43/_ping")
    assert head.status == 200 and head.headers["docker-experimental"] == "false"
    info = service.request("GET", "/v1.41/info").json()
    assert info["Images"] == 1 and info["Containers"] == 0
    assert info["NCPU"] >= 1 and info["MemTotal"] > 0 and info["Driver"] == "overlay2"
    version = service.docker_out("version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}")
    assert version.split() == ["1.43", "1.41"]


def test_docker_cli_detached_lifecycle(service: Service) -> None:
    cid = service.docker_out("run", "-d", "--name", "web", "busybox", "sh", "-c", "echo hello; echo oops >&2; sleep 300").strip()
    assert len(cid) == 64
    ps = service.docker_out("ps", "--format", "{{.ID}} {{.Names}} {{.Status}}")
    assert ps.startswith(cid[:12] + " web Up")
    assert wait_until(lambda: service.docker("logs", "web").stdout == b"hello\n")
    logs = service.docker("logs", "web")
    assert logs.stdout == b"hello\n" and logs.stderr == b"oops\n"
    inspect = json.loads(service.docker_out("inspect", "web"))[0]
    assert inspect["Id"] == cid and inspect["State"]["Running"] is True and inspect["Name"] == "/web"
    assert service.docker_out("stop", "-t", "1", "web").strip() == "web"
    assert json.loads(service.docker_out("inspect", "web"))[0]["State"]["Status"] == "exited"
    assert service.docker_out("ps", "-q") == ""
    assert service.docker_out("ps", "-aq", "--no-trunc").strip() == cid
    assert service.docker_out("rm", "web").strip() == "web"
    assert service.docker_out("ps", "-aq") == ""
