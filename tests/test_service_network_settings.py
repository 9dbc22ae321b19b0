"""The network settings of Docker's clients through the Engine API service (tests/service_support.py):
docker-py's IPAM pool with IPRange and AuxiliaryAddresses, `connect_container_to_network` with an
IPv4 address, a MAC address and links, IPv6 networks from the docker CLI (`--ipv6 --subnet
fd../64`, `network connect --ip6`), and a network name with a space; what the service answers
is what the kernel has (the interface inside the container), bad values get Docker's one line.
"""

from __future__ import annotations

import ipaddress
import json

import pytest

from engine.network.networks import ipv6_available
from tests.service_support import DOCKER, Service, service_fixture  # noqa: F401
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401
from tests.test_network import free_subnet
from tests.test_network_settings import _ula_subnet

pytestmark = [pytest.mark.root, pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed")]


def _message(reply) -> str:  # noqa: ANN001
    body = reply.json()
    assert set(body) == {"message"} and "\n" not in body["message"], body
    return body["message"]


def test_docker_py_ipam_pool_and_connect_settings(service: Service) -> None:
    import docker
    from docker.types import IPAMConfig, IPAMPool

    subnet = free_subnet(prefix=24)
    base = subnet.network_address
    ip_range, gateway, aux = f"{base + 64}/26", str(base + 126), {"a": str(base + 5), "b": str(base + 6)}
    client = service.client()
    try:
        pool = IPAMPool(subnet=str(subnet), iprange=ip_range, gateway=gateway, aux_addresses=aux)
        net = client.networks.create("pyranged", driver="bridge", ipam=IPAMConfig(driver="default", pool_configs=[pool]))
        attrs = client.api.inspect_network(net.id)
        assert attrs["IPAM"]["Options"] is None and attrs["IPAM"]["Driver"] == "default"
        assert attrs["IPAM"]["Config"] == [{"Subnet": str(subnet), "IPRange": ip_range, "Gateway": gateway,
                                           "AuxiliaryAddresses": aux}]

        service.engine.out("run", "-d", "--name", "upstream", "--network", "pyranged", "busybox", "sleep", "60")
        upstream_ip = client.api.inspect_container("upstream")["NetworkSettings"]["Networks"]["pyranged"]["IPAddress"]
        assert ipaddress.ip_address(upstream_ip) in ipaddress.ip_network(ip_range)  # from the range
        service.engine.out("run", "-d", "--name", "joiner", "busybox", "sleep", "60")
        before = service.engine.out("exec", "joiner", "ls", "/sys/class/net").split()
        for kwargs, words in [
            ({"ipv4_address": "10.1.2.3"}, "no configured subnet contains IP address 10.1.2.3"),
            ({"ipv4_address": aux["a"]}, "Address already in use"),
            ({"mac_address": "02:42:zz:00:00:01"}, "invalid MAC address"),
            ({"link_local_ips": ["0.0.0.0"]}, "invalid link-local IP address: 0.0.0.0"),
        ]:
            with pytest.raises(docker.errors.APIError) as refused:
                client.api.connect_container_to_network("joiner", "pyranged", **kwargs)
            assert words in str(refused.value.explanation) and "\n" not in refused.value.explanation
        assert service.engine.out("exec", "joiner", "ls", "/sys/class/net").split() == before

        address = str(base + 24)  # outside the range: a static address may be anywhere in the subnet
        client.api.connect_container_to_network("joiner", "pyranged", ipv4_address=address,
                                                mac_address="02:42:ac:11:00:99", links=[("upstream", "bar")])
        entry = client.api.inspect_container("joiner")["NetworkSettings"]["Networks"]["pyranged"]
        assert entry["IPAMConfig"]["IPv4Address"] == address and entry["MacAddress"] == "02:42:ac:11:00:99"
        assert entry["Links"] == ["upstream:bar"]
        eth1 = service.engine.out("exec", "joiner", "ip", "-o", "link", "show", "eth1")
        assert "link/ether 02:42:ac:11:00:99" in eth1
        assert f"inet {address}/24" in service.engine.out("exec", "joiner", "ip", "-4", "-o", "addr", "show", "eth1")
        assert f"Address: {upstream_ip}" in service.engine.out("exec", "joiner", "nslookup", "bar")

        # docker-py's test_create_with_linklocal_ips: one more address on the interface (a /16, as libnetwork's)
        local = client.api.create_container(
            "busybox", "sleep 60", host_config=client.api.create_host_config(network_mode="bridge"),
            networking_config=client.api.create_networking_config(
                {"bridge": client.api.create_endpoint_config(link_local_ips=["169.254.8.8"])}))
        client.api.start(local)
        ipam_config = client.api.inspect_container(local)["NetworkSettings"]["Networks"]["bridge"]["IPAMConfig"]
        assert ipam_config["LinkLocalIPs"] == ["169.254.8.8"]
        assert "inet 169.254.8.8/16" in service.engine.out("exec", local["Id"], "ip", "-4", "-o", "addr", "show", "eth0")
        client.api.remove_container(local, force=True)

        # links given at create (docker-py's test_create_with_links): the linked container may come later
        linking = client.api.create_container(
            "busybox", "sleep 60", host_config=client.api.create_host_config(network_mode="pyranged"),
            networking_config=client.api.create_networking_config(
                {"pyranged": client.api.create_endpoint_config(links=[("later", "baz")])}))
        client.api.start(linking)
        assert client.api.inspect_container(linking)["NetworkSettings"]["Networks"]["pyranged"]["Links"] == ["later:baz"]
        service.engine.out("run", "-d", "--name", "later", "--network", "pyranged", "busybox", "sleep", "60")
        later_ip = client.api.inspect_container("later")["NetworkSettings"]["Networks"]["pyranged"]["IPAddress"]
        assert f"Address: {later_ip}" in service.engine.out("exec", linking["Id"], "nslookup", "baz")
        client.api.remove_container(linking, force=True)
        service.engine.out("rm", "-f", "later")

        # a container that never ran: the MAC (and links) wait in its configuration, as Docker shows them
        created = client.api.create_container("busybox", "true")
        client.api.connect_container_to_network(created, "pyranged", mac_address="02:42:ac:11:00:02")
        assert client.api.inspect_container(created)["NetworkSettings"]["Networks"]["pyranged"]["MacAddress"] \
            == "02:42:ac:11:00:02"
        client.api.remove_container(created)

        for name in ("test 01", "team/web"):  # any non-blank name, as Docker's (moby's routes take a "/")
            made = client.api.create_network(name)
            assert client.api.inspect_network(name)["Id"] == made["Id"] and client.api.inspect_network(name)["Name"] == name
            assert client.api.remove_network(name) is None
        service.engine.out("rm", "-f", "upstream", "joiner")
        net.remove()
    finally:
        client.close()


@pytest.mark.skipif(not ipv6_available(), reason="IPv6 is disabled in this host's kernel")
def test_docker_cli_ipv6_network_and_connect_ip6(service: Service) -> None:
    subnet6 = _ula_subnet()
    ip_range6 = f"{subnet6.network_address}/96"
    service.docker_out("network", "create", "--ipv6", "--subnet", str(free_subnet(prefix=24)), "--subnet", str(subnet6),
                       "--ip-range", ip_range6, "--gateway", str(subnet6.network_address + 0xffff), "sixapi")
    doc = json.loads(service.docker_out("network", "inspect", "sixapi"))[0]
    assert doc["EnableIPv6"] is True
    assert doc["IPAM"]["Config"][1] == {"Subnet": str(subnet6), "IPRange": ip_range6,
                                        "Gateway": str(subnet6.network_address + 0xffff)}
    client = service.client()
    try:  # docker-py's create with an IPv6 address (its test_create_with_ipv6_address)
        fixed = str(subnet6.network_address + 0xf00e)
        created = client.api.create_container(
            "busybox", "sleep 60", host_config=client.api.create_host_config(network_mode="sixapi"),
            networking_config=client.api.create_networking_config(
                {"sixapi": client.api.create_endpoint_config(ipv6_address=fixed)}))
        client.api.start(created)
        entry = client.api.inspect_container(created)["NetworkSettings"]["Networks"]["sixapi"]
        assert entry["IPAMConfig"]["IPv6Address"] == fixed and entry["GlobalIPv6Address"] == fixed
        assert f"inet6 {fixed}/64" in service.engine.out("exec", created["Id"], "ip", "-6", "-o", "addr", "show", "eth0")
        client.api.remove_container(created, force=True)
    finally:
        client.close()
    service.engine.out("run", "-d", "--name", "six", "busybox", "sleep", "60")
    wanted = str(subnet6.network_address + 0xf00d)
    service.docker_out("network", "connect", "--ip6", wanted, "sixapi", "six")
    assert f"inet6 {wanted}/64" in service.engine.out("exec", "six", "ip", "-6", "-o", "addr", "show", "eth1")
    entry = json.loads(service.docker_out("inspect", "six"))[0]["NetworkSettings"]["Networks"]["sixapi"]
    assert entry["IPAMConfig"]["IPv6Address"] == wanted and entry["GlobalIPv6Address"] == wanted
    assert entry["IPv6Gateway"] == str(subnet6.network_address + 0xffff)
    refused = service.docker("network", "connect", "--ip6", "fd00:dead::1", "sixapi", "six")
    assert refused.returncode == 1 and b"endpoint with name six already exists" in refused.stderr
    service.docker_out("network", "disconnect", "sixapi", "six")
    refused = service.docker("network", "connect", "--ip6", "fd00:dead::1", "sixapi", "six")
    assert refused.returncode == 1 and b"no configured subnet contains IP address fd00:dead::1" in refused.stderr
    service.engine.out("rm", "-f", "six")
    service.docker_out("network", "rm", "sixapi")


COMPOSE_FILE = """version: "2.4"
services:
  db:
    image: busybox
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    networks:
      six:
        ipv4_address: {db4}
        ipv6_address: {db6}
  app:
    image: busybox
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    mac_address: "02:42:ac:11:00:42"
    links: ["db:database"]
    depends_on: [db]
    networks: [six]
networks:
  six:
    enable_ipv6: true
    ipam:
      config:
        - subnet: {subnet4}
          ip_range: {range4}
          aux_addresses: {{reserved: {aux4}}}
        - subnet: {subnet6}
"""


@pytest.mark.skipif(not ipv6_available(), reason="IPv6 is disabled in this host's kernel")
def test_compose_file_with_ip_range_aux_ipv6_mac_and_links(service: Service, tmp_path) -> None:  # noqa: ANN001
    import shutil
    import subprocess

    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    subnet4, subnet6 = free_subnet(prefix=24), _ula_subnet()
    base = subnet4.network_address
    values = {"subnet4": subnet4, "range4": f"{base + 128}/25", "aux4": base + 129, "db4": base + 10,
              "subnet6": subnet6, "db6": subnet6.network_address + 0x10}
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE.format(**values))

    def compose(*args: str) -> str:
        done = subprocess.run([binary, "-p", "dkns", *args], cwd=tmp_path, env=service.env, capture_output=True, timeout=120)
        assert done.returncode == 0, f"docker-compose {args}:\n{done.stdout.decode()}\n{done.stderr.decode()}"
        return done.stdout.decode()

    try:
        compose("up", "-d")
        net = json.loads(service.docker_out("network", "inspect", "dkns_six"))[0]
        assert net["EnableIPv6"] is True
        assert net["IPAM"]["Config"] == [
            {"Subnet": str(subnet4), "IPRange": f"{base + 128}/25", "Gateway": str(base + 128),
             "AuxiliaryAddresses": {"reserved": str(base + 129)}},
            {"Subnet": str(subnet6), "Gateway": str(subnet6.network_address + 1)}]
        app = json.loads(service.docker_out("inspect", "dkns_app_1"))[0]["NetworkSettings"]["Networks"]["dkns_six"]
        assert app["IPAddress"] == str(base + 130)  # the range's, past the gateway and the aux address
        assert app["MacAddress"] == "02:42:ac:11:00:42"
        assert "link/ether 02:42:ac:11:00:42" in service.engine.out("exec", "dkns_app_1", "ip", "-o", "link", "show", "eth0")
        assert f"Address: {base + 10}" in service.engine.out("exec", "dkns_app_1", "nslookup", "database")
        assert f"Address: {values['db6']}" in service.engine.out("exec", "dkns_app_1", "nslookup", "-type=AAAA", "db")
        assert "1 packets received" in service.engine.out("exec", "dkns_app_1", "ping", "-6", "-c", "1", "-W", "3", str(values["db6"]))
    finally:
        compose("down", "-t", "0")
    assert "dkns_six" not in service.docker_out("network", "ls", "--format", "{{.Name}}").split()
