"""The Engine API's network and volume endpoints through real clients: the docker CLI and docker-py
against `dockui system service` (tests/service_support.py), with real bridges, veths and addresses
checked inside the container; bad bodies get Docker's status and one line, and create nothing.
"""

from __future__ import annotations

import json

import pytest

from engine.container import volumes as engine_volumes
from engine.network import endpoints
from tests.service_support import DOCKER, Service, service_fixture  # noqa: F401
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401

pytestmark = [pytest.mark.root, pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed")]

SUBNET = "10.217.44.0/24"  # private, and not a pool Docker's allocation order reaches soon


def _message(reply) -> str:  # noqa: ANN001
    body = reply.json()
    assert set(body) == {"message"} and "\n" not in body["message"]
    return body["message"]


def _networks(service: Service) -> list[str]:
    return sorted(n.name for n in endpoints.list_networks(service.engine.config))


def test_network_create_inspect_connect_disconnect_rm_prune(service: Service) -> None:
    net_id = service.docker_out("network", "create", "--subnet", SUBNET, "--gateway", "10.217.44.254",
                                "--label", "suite=api", "apinet").strip()
    listed = service.docker_out("network", "ls", "--format", "{{.Name}} {{.Driver}}").splitlines()
    assert "apinet bridge" in listed and "bridge bridge" in listed and "host host" in listed
    assert service.docker_out("network", "ls", "-q", "--no-trunc", "-f", "label=suite=api").split() == [net_id]
    doc = json.loads(service.docker_out("network", "inspect", "apinet"))[0]
    assert doc["Id"] == net_id and doc["IPAM"]["Config"] == [{"Subnet": SUBNET, "Gateway": "10.217.44.254"}]
    assert doc["Labels"] == {"suite": "api"} and doc["Driver"] == "bridge"
    assert doc["Options"] == {}  # as Docker's for a network made without options (compose compares them)
    # what docker-compose sends for its default network: Attachable (a swarm notion) is accepted
    made = service.request("POST", "/v1.43/networks/create", body={
        "Name": "composed", "Driver": "bridge", "Attachable": True, "CheckDuplicate": True,
        "Labels": {"com.docker.compose.network": "default"}, "Options": {}, "IPAM": {"Driver": "default", "Config": []}})
    assert made.status == 201, made.body
    service.docker_out("network", "rm", "composed")
    internal = service.docker_out("network", "create", "--internal", "private")
    assert json.loads(service.docker_out("network", "inspect", "private"))[0]["Internal"] is True
    assert service.docker_out("network", "ls", "-q", "--no-trunc", "-f", "name=priv").split() == [internal.strip()]
    service.docker_out("network", "rm", "private")

    service.engine.out("run", "-d", "--name", "peer", "--network", "apinet", "busybox", "sleep", "60")
    service.engine.out("run", "-d", "--name", "joiner", "busybox", "sleep", "60")
    service.docker_out("network", "connect", "--ip", "10.217.44.77", "--alias", "db", "apinet", "joiner")
    addresses = service.engine.out("exec", "joiner", "ip", "-4", "-o", "addr")
    assert "10.217.44.77/24" in addresses  # a real interface in the container's namespace
    for name in ("joiner", "db"):  # through the embedded DNS: Docker writes no peer into /etc/hosts
        assert "Address: 10.217.44.77" in service.engine.out("exec", "peer", "nslookup", name)
    service.engine.out("restart", "-t", "0", "joiner")  # a restart keeps its address and aliases there
    assert "10.217.44.77/24" in service.engine.out("exec", "joiner", "ip", "-4", "-o", "addr")
    assert "Address: 10.217.44.77" in service.engine.out("exec", "peer", "nslookup", "db")
    containers = json.loads(service.docker_out("network", "inspect", "--format", "{{json .Containers}}", "apinet"))
    assert sorted(c["Name"] for c in containers.values()) == ["joiner", "peer"]

    busy = service.docker("network", "rm", "apinet")
    assert busy.returncode == 1 and b"has active endpoints" in busy.stderr
    service.docker_out("network", "disconnect", "apinet", "joiner")
    assert "10.217.44.77" not in service.engine.out("exec", "joiner", "ip", "-4", "-o", "addr")
    service.engine.out("rm", "-f", "peer", "joiner")
    assert service.docker_out("network", "prune", "-f").split() == ["Deleted", "Networks:", "apinet"]
    assert "apinet" not in _networks(service)

    client = service.client()
    try:
        import docker

        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.217.45.0/24")])
        made = client.networks.create("pynet", driver="bridge", ipam=ipam, labels={"k": "v"})
        assert made.name == "pynet" and "pynet" in [n.name for n in client.networks.list()]
        assert made.attrs["IPAM"]["Config"][0]["Subnet"] == "10.217.45.0/24" and made.attrs["Labels"] == {"k": "v"}
        assert [n.name for n in client.networks.list(names=["pynet"])] == ["pynet"]
        made.remove()
        assert "pynet" not in _networks(service)
    finally:
        client.close()


def test_bad_network_requests_get_dockers_status_and_create_nothing(service: Service) -> None:
    service.docker_out("network", "create", "--subnet", SUBNET, "taken")
    before = _networks(service)
    cases = [
        (b"{not json", 400, "invalid JSON"),
        ({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.217.46.0/33"}]}}, 400, "10.217.46.0/33"),
        ({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.217.46.0/24", "Gateway": "10.9.9.9"}]}}, 400, "gateway"),
        ({"Name": "x", "Driver": "overlay"}, 400, "driver 'overlay' is not supported"),
        ({"Name": "x", "EnableIPv6": True, "IPAM": {"Config": [{"Subnet": "fd00:1::/64", "IPRange": "fd00:2::/80"}]}},
         400, "invalid ip-range fd00:2::/80: parent subnet fd00:1::/64 doesn't contain ip-range"),
        ({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.217.46.0/24", "AuxiliaryAddresses": {"a": "10.9.9.9"}}]}},
         400, "invalid auxiliary address a: parent subnet 10.217.46.0/24 doesn't contain this address"),
        ({"Name": "x", "Internal": "yes"}, 400, "Internal must be bool"),
        ({"Name": "x", "Colour": "red"}, 400, "unknown field Colour"),
        ({"Name": "  "}, 400, "invalid name: name is empty"),
        ({"Name": "x", "EnableIPv4": False, "EnableIPv6": True}, 400, "EnableIPv4 false"),
        ({"Name": "taken"}, 409, "already exists"),
        ({"Name": "x", "IPAM": {"Config": [{"Subnet": SUBNET}]}}, 409, "overlaps"),
        ({"Name": "bridge"}, 409, "operation is not permitted on predefined bridge network"),
    ]
    for body, status, text in cases:
        reply = service.request("POST", "/v1.43/networks/create", body=body,
                                headers={"Content-Type": "application/json"})
        assert reply.status == status, (body, reply.status, reply.body)
        assert text in _message(reply), (body, reply.body)
    for method, path, body, status in [
        ("GET", "/v1.43/networks/nosuch", None, 404),
        ("DELETE", "/v1.43/networks/nosuch", None, 404),
        ("POST", "/v1.43/networks/nosuch/connect", {"Container": "x"}, 404),
        ("POST", "/v1.43/networks/taken/connect", {"Container": "nosuch"}, 404),
        ("POST", "/v1.43/networks/taken/connect", {}, 400),
        ("POST", "/v1.43/networks/taken/disconnect", {"Container": 5}, 400),
        ("GET", "/v1.43/networks?filters=%7B%22colour%22%3A%5B%22x%22%5D%7D", None, 400),
    ]:
        reply = service.request(method, path, body=body)
        assert reply.status == status, (path, reply.status, reply.body)
        _message(reply)
    assert _networks(service) == before
    service.docker_out("network", "rm", "taken")


def test_volumes_create_list_inspect_rm_prune(service: Service) -> None:
    assert service.docker_out("volume", "create", "--label", "suite=api", "apivol").strip() == "apivol"
    anonymous = service.docker_out("volume", "create").strip()
    assert len(anonymous) == 64
    assert sorted(service.docker_out("volume", "ls", "-q").split()) == sorted(["apivol", anonymous])
    assert service.docker_out("volume", "ls", "-q", "-f", "label=suite=api").split() == ["apivol"]
    doc = json.loads(service.docker_out("volume", "inspect", "apivol"))[0]
    assert doc["Name"] == "apivol" and doc["Driver"] == "local" and doc["Labels"] == {"suite": "api"}
    assert doc["Mountpoint"] == str(service.engine.config.volumes_dir / "apivol" / "_data")

    service.engine.out("create", "--name", "user", "--network", "none", "-v", "apivol:/data", "busybox", "true")
    busy = service.docker("volume", "rm", "apivol")
    assert busy.returncode == 1 and b"volume is in use" in busy.stderr
    assert service.docker_out("volume", "ls", "-q", "-f", "dangling=true").split() == [anonymous]
    assert anonymous in service.docker_out("volume", "prune", "-f")
    service.engine.out("rm", "user")
    service.docker_out("volume", "rm", "apivol")
    assert engine_volumes.list_volumes(service.engine.config) == []

    client = service.client()
    try:
        volume = client.volumes.create("pyvol", labels={"k": "v"})
        assert volume.name == "pyvol" and [v.name for v in client.volumes.list()] == ["pyvol"]
        assert client.volumes.get("pyvol").attrs["Labels"] == {"k": "v"}
        volume.remove()
    finally:
        client.close()

    for body, status, text in [
        (b"[1, 2]", 400, "must be a JSON object"),
        ({"Name": "bad/name"}, 400, "invalid characters"),
        ({"Name": "x", "Driver": "nfs"}, 404, "error looking up volume plugin nfs: plugin \"nfs\" not found"),
        ({"Name": "x", "Labels": {"a": 1}}, 400, "Labels"),
    ]:
        reply = service.request("POST", "/v1.43/volumes/create", body=body, headers={"Content-Type": "application/json"})
        assert reply.status == status and text in _message(reply), (body, reply.status, reply.body)
    reply = service.request("GET", "/v1.43/volumes/nosuch")
    assert reply.status == 404 and _message(reply) == "get nosuch: no such volume"
    assert service.request("DELETE", "/v1.43/volumes/nosuch").status == 404
    assert engine_volumes.list_volumes(service.engine.config) == []
