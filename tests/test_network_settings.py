"""The network settings Docker's clients send and dockui used to refuse, end to end through
`dockui` on the real kernel: IPAM `--ip-range` and `--aux-address`, `network connect --ip/--alias/
--link` (the kernel's interface, the embedded DNS's answers), IPv6 user networks (addresses on the
bridge and in the containers, AAAA answers, /etc/hosts, traffic between containers only), and the
network names Docker accepts. Bad values get Docker's one line and change nothing; the `cli`
fixture's teardown (tests/test_network_cli.py) removes every container, bridge and rule.
"""

from __future__ import annotations

import ipaddress
import json
import random
import subprocess
from pathlib import Path

import pytest

from engine.network import endpoints as network
from engine.network import ipam
from engine.network.networks import ipv6_available
from tests import test_network_cli
from tests.test_network import free_subnet, links_on_host
from tests.test_network_cli import Cli

cli = test_network_cli.cli  # the fixture: a root with its own bridge, every container, bridge and rule removed after

pytestmark = pytest.mark.root


def _bridge_addresses(bridge: str) -> list[str]:
    out = subprocess.run(["ip", "-j", "addr", "show", "dev", bridge], capture_output=True, text=True, check=True).stdout
    return [f"{a['local']}/{a['prefixlen']}" for link in json.loads(out) for a in link["addr_info"]]


def _our_bridges(cli: Cli) -> set[str]:
    """The bridges whose ifalias names this test's root (other tests' links come and go meanwhile)."""
    found = set()
    for entry in Path("/sys/class/net").iterdir():
        try:
            if (entry / "ifalias").read_text().strip().endswith(f":{cli.config.root}"):
                found.add(entry.name)
        except OSError:
            continue
    return found


def _network(cli: Cli, name: str) -> dict:
    return json.loads(cli.ok("network", "inspect", name))[0]


def _refused(cli: Cli, *args: str) -> str:
    proc = cli.run(*args)
    assert proc.returncode != 0, (args, proc.stdout)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_ip_range_and_aux_addresses(cli: Cli) -> None:
    subnet = free_subnet(prefix=24)
    base = subnet.network_address
    ip_range = f"{base + 128}/25"
    aux = str(base + 129)
    before = {n.name for n in network.list_networks(cli.config)}
    bridges = _our_bridges(cli)
    for args, words in [
        (("--subnet", str(subnet), "--ip-range", f"{base + 1}/25"), f"invalid ip-range {base + 1}/25: it should be {base}/25"),
        (("--subnet", str(subnet), "--ip-range", "10.1.0.0/25"), "no matching subnet for range 10.1.0.0/25"),
        (("--subnet", str(subnet), "--ip-range", f"{base}/16"), f"CIDR block is bigger than its parent subnet {subnet}"),
        (("--ip-range", ip_range), "every ip-range or gateway must have a corresponding subnet"),
        (("--subnet", str(subnet), "--aux-address", "a=10.1.0.9"), "no matching subnet for aux-address 10.1.0.9"),
        (("--subnet", str(subnet), "--aux-address", "nonsense"), "expected name=ip"),
        (("--subnet", f"{base + 3}/24"), f"invalid subnet {base + 3}/24: it should be {subnet}"),
    ]:
        assert words in _refused(cli, "network", "create", *args, "dkrange")
    assert {n.name for n in network.list_networks(cli.config)} == before and _our_bridges(cli) == bridges

    cli.ok("network", "create", "--subnet", str(subnet), "--ip-range", ip_range, "--aux-address", f"router={aux}", "dkrange")
    doc = _network(cli, "dkrange")
    gateway = str(base + 128)  # libnetwork asks for the gateway as a dynamic address: the range's first
    assert doc["IPAM"]["Config"] == [{"Subnet": str(subnet), "IPRange": ip_range, "Gateway": gateway,
                                     "AuxiliaryAddresses": {"router": aux}}]
    assert f"{gateway}/24" in _bridge_addresses(doc["Topology"]["name"])
    shown = cli.ok("network", "inspect", "-f", "{{range .IPAM.Config}}{{.IPRange}} {{.AuxiliaryAddresses}}{{end}}", "dkrange")
    assert shown == f"{ip_range} map[router:{aux}]\n"  # a Go map, as the docker CLI prints it

    cli.ok("run", "-d", "--name", "r1", "--network", "dkrange", "busybox", "sleep", "60")
    cli.ok("run", "-d", "--name", "r2", "--network", "dkrange", "busybox", "sleep", "60")
    cli.ok("run", "-d", "--name", "r3", "--network", "dkrange", "--ip", str(base + 5), "busybox", "sleep", "60")
    got = {name: cli.inspect(name)["NetworkSettings"]["Networks"]["dkrange"]["IPAddress"] for name in ("r1", "r2", "r3")}
    # dynamic addresses from the range only, the aux address skipped; a static one anywhere in the subnet
    assert got == {"r1": str(base + 130), "r2": str(base + 131), "r3": str(base + 5)}
    assert f"inet {base + 5}/24" in cli.ok("exec", "r3", "ip", "-4", "-o", "addr", "show", "eth0")
    assert "1 packets received" in cli.ok("exec", "r3", "ping", "-c", "1", "-W", "3", "r1")
    assert cli.inspect("r3")["NetworkSettings"]["Networks"]["dkrange"]["IPAMConfig"] == {"IPv4Address": str(base + 5)}
    held = ipam.in_use(cli.config, network.get_network(cli.config, "dkrange").pool)
    assert "Address already in use" in _refused(cli, "run", "--name", "r4", "--network", "dkrange", "--ip", aux, "busybox", "true")
    assert "no configured subnet contains IP address 10.1.2.3" in _refused(
        cli, "run", "--name", "r5", "--network", "dkrange", "--ip", "10.1.2.3", "busybox", "true")
    assert ipam.in_use(cli.config, network.get_network(cli.config, "dkrange").pool) == held
    cli.ok("rm", "-f", "r1", "r2", "r3", "r4", "r5")
    cli.ok("network", "rm", "dkrange")
    assert doc["Topology"]["name"] not in links_on_host()


def test_connect_with_ip_alias_and_link(cli: Cli) -> None:
    subnet = free_subnet(prefix=24)
    base = subnet.network_address
    cli.ok("network", "create", "--subnet", str(subnet), "dkjoin")
    cli.ok("run", "-d", "--name", "peer", "--network", "dkjoin", "busybox", "sleep", "60")
    cli.ok("run", "-d", "--name", "joiner", "busybox", "sleep", "60")
    peer_ip = cli.inspect("peer")["NetworkSettings"]["Networks"]["dkjoin"]["IPAddress"]
    for args, words in [
        (("--ip", "10.1.2.3"), "no configured subnet contains IP address 10.1.2.3"),
        (("--ip", "banana"), "invalid IPv4 address: banana"),
        (("--ip", str(base + 1)), "not a usable host address"),  # the gateway
        (("--link", ":x"), "invalid --link"),
        (("--link-local-ip", "0.0.0.0"), "invalid link-local IP address: 0.0.0.0"),
    ]:
        assert words in _refused(cli, "network", "connect", *args, "dkjoin", "joiner")
    assert cli.ok("exec", "joiner", "ls", "/sys/class/net").split() == ["eth0", "lo"]

    cli.ok("network", "connect", "--ip", str(base + 77), "--alias", "db", "--link", "peer:upstream",
           "--link-local-ip", "169.254.9.9", "dkjoin", "joiner")
    eth1 = cli.ok("exec", "joiner", "ip", "-4", "-o", "addr", "show", "eth1")
    assert f"inet {base + 77}/24" in eth1 and "inet 169.254.9.9/16" in eth1
    entry = cli.inspect("joiner")["NetworkSettings"]["Networks"]["dkjoin"]
    assert entry["IPAMConfig"] == {"IPv4Address": str(base + 77), "LinkLocalIPs": ["169.254.9.9"]}
    assert entry["Links"] == ["peer:upstream"]
    assert entry["Aliases"] == ["db"]
    # the link is a name only the linking container resolves (Docker's embedded DNS), the alias everyone's
    assert f"Address: {peer_ip}" in cli.ok("exec", "joiner", "nslookup", "upstream")
    assert cli.run("exec", "peer", "nslookup", "upstream").returncode != 0
    assert f"Address: {base + 77}" in cli.ok("exec", "peer", "nslookup", "db")
    assert "upstream" not in cli.ok("exec", "joiner", "cat", "/etc/hosts")
    cli.ok("restart", "-t", "0", "joiner")  # a restart keeps the address, alias and link there
    assert f"Address: {peer_ip}" in cli.ok("exec", "joiner", "nslookup", "upstream")
    assert cli.inspect("joiner")["NetworkSettings"]["Networks"]["dkjoin"]["Links"] == ["peer:upstream"]
    cli.ok("rm", "-f", "peer", "joiner")
    cli.ok("network", "rm", "dkjoin")


def _ula_subnet() -> ipaddress.IPv6Network:
    used = ipam.host_networks(family=6)
    for _ in range(100):
        net = ipaddress.IPv6Network((b"\xfd" + random.randbytes(7) + bytes(8), 64))
        if not ipam.overlaps_any(net, used):
            return net
    raise RuntimeError("no free test IPv6 subnet")


@pytest.mark.skipif(not ipv6_available(), reason="IPv6 is disabled in this host's kernel")
def test_ipv6_network_addresses_dns_and_hosts(cli: Cli) -> None:
    subnet4, subnet6 = free_subnet(prefix=24), _ula_subnet()
    gateway6 = subnet6.network_address + 1
    cli.ok("network", "create", "--ipv6", "--subnet", str(subnet4), "--subnet", str(subnet6), "dksix")
    doc = _network(cli, "dksix")
    assert doc["EnableIPv6"] is True
    assert "dksix true" in cli.ok("network", "ls", "--format", "{{.Name}} {{.IPv6}}").splitlines()
    assert doc["IPAM"]["Config"] == [{"Subnet": str(subnet4), "Gateway": str(subnet4.network_address + 1)},
                                     {"Subnet": str(subnet6), "Gateway": str(gateway6)}]
    assert f"{gateway6}/64" in _bridge_addresses(doc["Topology"]["name"])
    assert doc["Topology"]["addresses"] == [f"{subnet4.network_address + 1}/24", f"{gateway6}/64"]

    cli.ok("run", "-d", "--name", "s1", "--hostname", "six1", "--network", "dksix", "busybox", "sleep", "60")
    cli.ok("run", "-d", "--name", "s2", "--network", "dksix", "busybox", "sleep", "60")
    settings = cli.inspect("s1")["NetworkSettings"]
    s1_ip6 = settings["Networks"]["dksix"]["GlobalIPv6Address"]
    assert s1_ip6 == str(subnet6.network_address + 2) and settings["GlobalIPv6Address"] == s1_ip6
    assert settings["Networks"]["dksix"]["GlobalIPv6PrefixLen"] == 64 and settings["IPv6Gateway"] == str(gateway6)
    assert f"inet6 {s1_ip6}/64 scope global" in cli.ok("exec", "s1", "ip", "-6", "-o", "addr", "show", "eth0")
    assert f"default via {gateway6}" in cli.ok("exec", "s1", "ip", "-6", "route")
    # traffic between the containers only, over the bridge
    assert "1 packets received" in cli.ok("exec", "s2", "ping", "-6", "-c", "1", "-W", "3", s1_ip6)
    assert f"Address: {s1_ip6}" in cli.ok("exec", "s2", "nslookup", "-type=AAAA", "s1")
    assert "name = s1.dksix" in cli.ok("exec", "s2", "nslookup", s1_ip6)  # ip6.arpa PTR
    assert f"{s1_ip6}\tsix1" in cli.ok("exec", "s1", "cat", "/etc/hosts").splitlines()
    fixed = str(subnet6.network_address + 0xbeef)  # `run --ip6`: a static IPv6 address
    cli.ok("run", "-d", "--name", "s3", "--network", "dksix", "--ip6", fixed, "busybox", "sleep", "60")
    assert f"inet6 {fixed}/64" in cli.ok("exec", "s3", "ip", "-6", "-o", "addr", "show", "eth0")
    assert cli.inspect("s3")["NetworkSettings"]["Networks"]["dksix"]["IPAMConfig"] == {"IPv6Address": fixed}
    assert "1 packets received" in cli.ok("exec", "s3", "ping", "-6", "-c", "1", "-W", "3", "s1")
    assert "invalid IPv6 address: 10.0.0.1" in _refused(cli, "run", "--name", "s4", "--network", "dksix", "--ip6",
                                                         "10.0.0.1", "busybox", "true")
    cli.ok("rm", "-f", "s3", "s4")
    members = _network(cli, "dksix")["Containers"]
    assert sorted(c["IPv6Address"] for c in members.values()) == sorted(f"{a}/64" for a in (s1_ip6, subnet6.network_address + 3))

    # --ip6 on network connect, checked against the subnet in Docker's words
    cli.ok("network", "create", "--ipv6", "--subnet", str(free_subnet(prefix=24)), "dksix2")
    wanted = str(subnet6.network_address + 0x99)
    assert f"no configured subnet contains IP address {wanted}" in _refused(
        cli, "network", "connect", "--ip6", wanted, "dksix2", "s2")
    own6 = ipaddress.IPv6Network(_network(cli, "dksix2")["IPAM"]["Config"][1]["Subnet"])
    assert own6.prefixlen == 64 and own6.network_address.packed[0] == 0xfd  # a ULA /64 of the engine's /48
    cli.ok("network", "connect", "--ip6", str(own6.network_address + 0x99), "dksix2", "s2")
    assert f"inet6 {own6.network_address + 0x99}/64" in cli.ok("exec", "s2", "ip", "-6", "-o", "addr", "show", "eth1")
    entry = cli.inspect("s2")["NetworkSettings"]["Networks"]["dksix2"]
    assert entry["IPAMConfig"] == {"IPv6Address": str(own6.network_address + 0x99)}
    cli.ok("rm", "-f", "s1", "s2")
    cli.ok("network", "rm", "dksix", "dksix2")
    assert doc["Topology"]["name"] not in links_on_host()


def test_network_names_docker_accepts(cli: Cli) -> None:
    for name in ("test 01", "a:b", "über", "_under", ".dot"):
        net_id = cli.ok("network", "create", "--subnet", str(free_subnet(prefix=28)), name).strip()
        assert _network(cli, name)["Id"] == net_id and _network(cli, name)["Name"] == name
    names = cli.ok("network", "ls", "--format", "{{.Name}}").splitlines()
    assert {"test 01", "a:b", "über", "_under", ".dot"} <= set(names)
    cli.ok("run", "-d", "--name", "spaced", "--network", "test 01", "busybox", "sleep", "60")
    assert cli.inspect("spaced")["NetworkSettings"]["Networks"]["test 01"]["IPAddress"]
    cli.ok("rm", "-f", "spaced")
    for name in ("test 01", "a:b", "über", "_under", ".dot"):
        cli.ok("network", "rm", name)
    assert "invalid name: name is empty" in _refused(cli, "network", "create", "  ")
    for name in ("bridge", "host", "none", "default"):
        assert f"operation is not permitted on predefined {name} network" in _refused(cli, "network", "create", name)


def test_ipv6_network_refused_where_the_kernel_has_ipv6_off(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host booted with ipv6.disable=1 (or the sysctl off): `--ipv6` is one line and nothing is made."""
    from engine.errors import InvalidArgument
    from engine.network import networks

    monkeypatch.setattr(networks, "ipv6_available", lambda: False)
    before, bridges = network.list_networks(cli.config), _our_bridges(cli)
    with pytest.raises(InvalidArgument, match="IPv6 is disabled in this host's kernel"):
        networks.create_network(cli.config, "nosix", ipv6=True)
    assert network.list_networks(cli.config) == before and _our_bridges(cli) == bridges
