"""What docker-compose 1.29's own test suite (contrib/compose_suite.py) found the service doing
differently from Docker, each case driven by a real client on the real socket: docker-py at the API
version Compose 1.29 pins (1.38, its COMPOSE_SPEC floor), or the docker-compose command itself."""

from __future__ import annotations

import pytest

from tests.service_support import Service, service_fixture  # noqa: F401 - the `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root

COMPOSE_API = "1.38"  # compose.const.API_VERSIONS[COMPOSE_SPEC]: every integration client of Compose 1.29


def _compose_client(service: Service):  # noqa: ANN202 - docker.APIClient, imported lazily
    import docker

    return docker.APIClient(base_url=service.host, version=COMPOSE_API, timeout=60)


def test_compose_api_version_is_served_and_the_floor_is_dockers(service: Service) -> None:
    """Docker 25+ serves 1.24 and up (Docker 24 even 1.12): Compose 1.29's 1.38 client works."""
    client = _compose_client(service)
    try:
        assert client.version()["MinAPIVersion"] == "1.24"
        cid = client.create_container("busybox", ["true"], labels={"com.docker.compose.project": "x"})["Id"]
        listed = client.containers(all=True, filters={"label": "com.docker.compose.project=x"})
        assert [c["Id"] for c in listed] == [cid]
        client.remove_container(cid)
    finally:
        client.close()
    old = service.request("GET", "/v1.23/containers/json")
    assert old.status == 400
    assert old.json()["message"] == ("client version 1.23 is too old. Minimum supported API version is 1.24, "
                                     "please upgrade your client to a newer version")
