"""Container networking on the real kernel: a bridge, veth pairs and network namespaces made here.

"Containers" are processes started with `unshare -n` (and `-m` where a private /etc/hosts is bind
mounted), then plugged in with network.prepare/attach exactly as the runtime does. Traffic only
flows between the test's own bridge and those namespaces, over subnets checked to be unused.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.errors import Conflict
from engine.network import endpoints as network
from engine.network import ipam, portmap

REPO = Path(__file__).resolve().parent.parent
BUSYBOX = "/bin/busybox"

pytestmark = pytest.mark.root


def free_subnet(prefix: int = 24) -> ipaddress.IPv4Network:
    """A random 10.2xx.y.0/24 no host interface or route uses (parallel test runs pick others)."""
    used = ipam.host_networks()
    for _ in range(100):
        net = ipaddress.IPv4Network(f"10.{random.randrange(200, 250)}.{random.randrange(256)}.0/{prefix}")
        if not ipam.overlaps_any(net, used):
            return net
    raise RuntimeError("no free test subnet")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def links_on_host() -> dict[str, dict]:
    out = subprocess.run(["ip", "-j", "-s", "link"], capture_output=True, text=True, check=True).stdout
    return {link["ifname"]: link for link in json.loads(out)}


class Box:
    """A process in its own network namespace (and, with hosts_file, its own /etc/hosts)."""

    def __init__(self, argv: list[str], hosts_file: Path | None = None) -> None:
        if hosts_file is None:
            cmd = ["unshare", "-n", "--", *argv]
        else:
            script = f'mount --bind "{hosts_file}" /etc/hosts && exec "$@"'
            cmd = ["unshare", "-n", "-m", "--propagation", "private", "--", "sh", "-c", script, "sh", *argv]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        own = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if os.readlink(f"/proc/{self.pid}/ns/net") != own and (
                    hosts_file is None or os.readlink(f"/proc/{self.pid}/exe").endswith("busybox")
                ):
                    return
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError("namespace not ready")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def run(self, *argv: str, mount: bool = False) -> subprocess.CompletedProcess[str]:
        ns = ["-n", "-m"] if mount else ["-n"]
        return subprocess.run(["nsenter", "-t", str(self.pid), *ns, *argv], capture_output=True, text=True, timeout=20)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def netcfg(tmp_path: Path) -> Iterator[EngineConfig]:
    """An engine config with its own bridge name, subnet and nft table; everything removed after."""
    subnet = free_subnet()
    config = EngineConfig(
        root=tmp_path / "root",
        bridge_name=f"dkt{secrets.token_hex(2)}",
        bridge_ip=f"{subnet.network_address + 1}/{subnet.prefixlen}",
    )
    boxes: list[Box] = []
    config.boxes = boxes  # type: ignore[attr-defined]
    yield config
    for box in boxes:
        box.kill()
    network.reconcile(config, set())
    network.remove_bridges(config)
    bridges = [config.bridge_name] + [n.bridge for n in network.list_networks(config)]
    leftovers = [name for name in bridges if Path("/sys/class/net", name).exists()]
    for name in leftovers:
        subprocess.run(["ip", "link", "del", name], capture_output=True)
    table_left = portmap.table_exists(config)
    subprocess.run(["nft", "delete", "table", "ip", portmap.table_name(config)], capture_output=True)
    assert leftovers == [] and not table_left, f"left behind: {leftovers}, nft table: {table_left}"


def start_box(config: EngineConfig, argv: list[str] | None = None, hosts_file: Path | None = None) -> Box:
    box = Box(argv or [BUSYBOX, "sleep", "60"], hosts_file)
    config.boxes.append(box)  # type: ignore[attr-defined]
    return box


def new_id() -> str:
    return secrets.token_hex(32)


def run_container(
    config: EngineConfig, name: str, spec: network.NetworkSpec | None = None, exposed: list[str] | None = None,
    argv: list[str] | None = None, private_hosts: bool = False,
) -> tuple[network.NetworkPlan, Box]:
    """prepare -> (hosts file) -> process with its namespace -> attach, as the runtime does."""
    cid = new_id()
    plan = network.prepare(config, cid, name, spec or network.NetworkSpec(), exposed or [])
    hosts_file = None
    if private_hosts:
        hosts_file = config.containers_dir / cid / "hosts"
        hosts_file.parent.mkdir(parents=True, exist_ok=True)
        hosts_file.write_text(plan.hosts)
    box = start_box(config, argv, hosts_file)
    network.attach(config, plan, box.pid)
    return plan, box


def test_two_containers_reach_each_other_and_topology_matches_iproute2(netcfg: EngineConfig) -> None:
    plan_a, box_a = run_container(netcfg, "alpha")
    plan_b, box_b = run_container(netcfg, "beta")
    ip_a, ip_b = plan_a.endpoints[0].ip, plan_b.endpoints[0].ip
    assert ip_a != ip_b
    ping = box_a.run(BUSYBOX, "ping", "-c", "1", "-W", "3", ip_b)
    assert ping.returncode == 0 and "1 packets received" in ping.stdout, ping.stdout + ping.stderr
    assert box_b.run(BUSYBOX, "ping", "-c", "1", "-W", "3", ip_a).returncode == 0

    # Inside: eth0 with the planned address and Docker's MAC, lo up, default route via the bridge.
    inside = json.loads(box_a.run("ip", "-j", "addr").stdout)
    eth0 = next(i for i in inside if i["ifname"] == "eth0")
    assert eth0["address"] == plan_a.endpoints[0].mac == ipam.mac_for(ipaddress.IPv4Address(ip_a))
    assert [(a["local"], a["prefixlen"]) for a in eth0["addr_info"] if a["family"] == "inet"] == [(ip_a, 24)]
    assert "UP" in next(i for i in inside if i["ifname"] == "lo")["flags"]
    route = json.loads(box_a.run("ip", "-j", "route").stdout)
    assert {"dst": "default", "gateway": plan_a.endpoints[0].gateway} in [
        {k: r.get(k) for k in ("dst", "gateway")} for r in route
    ]

    # The topology agrees with an independent reading by iproute2.
    topo = {b.name: b for b in network.topology(netcfg)}
    bridge = topo[netcfg.bridge_name]
    host = links_on_host()
    addrs = json.loads(subprocess.run(["ip", "-j", "addr", "show", "dev", netcfg.bridge_name], capture_output=True, text=True).stdout)
    assert bridge.ifindex == host[netcfg.bridge_name]["ifindex"]
    assert bridge.mtu == host[netcfg.bridge_name]["mtu"]
    assert bridge.mac == host[netcfg.bridge_name]["address"]
    assert bridge.state == host[netcfg.bridge_name]["operstate"]
    assert bridge.addresses == [f"{a['local']}/{a['prefixlen']}" for a in addrs[0]["addr_info"] if a["family"] == "inet"]
    iproute_ports = {n: link for n, link in host.items() if link.get("master") == netcfg.bridge_name}
    assert sorted(p.host_veth for p in bridge.ports) == sorted(iproute_ports)
    for port, plan, box in ((p, pl, bx) for p in bridge.ports for pl, bx in ((plan_a, box_a), (plan_b, box_b))
                            if p.host_veth == pl.endpoints[0].host_veth):
        link = iproute_ports[port.host_veth]
        assert port.host_veth.startswith("veth") and len(port.host_veth) == 11
        assert port.ifindex == link["ifindex"]
        assert port.oper_state == link["operstate"] == "UP"
        assert port.container_id == plan.container_id and port.container_name == plan.name
        inner = json.loads(box.run("ip", "-j", "link", "show", "eth0").stdout)[0]
        assert port.peer_ifindex == inner["ifindex"] and link["link_index"] == inner["ifindex"]
        assert (port.ip, port.mac) == (plan.endpoints[0].ip, inner["address"])
        # counters move between readings; iproute2's reading lies between two of ours
        assert port.rx_packets <= link["stats64"]["rx"]["packets"] and port.tx_bytes <= link["stats64"]["tx"]["bytes"]
        later = {p.host_veth: p for p in network.topology(netcfg)[0].ports}[port.host_veth]
        assert link["stats64"]["rx"]["packets"] <= later.rx_packets and link["stats64"]["tx"]["bytes"] <= later.tx_bytes
        assert later.rx_packets >= 1  # the ping went through this port

    # stop: veth gone at once; rm: address free again
    network.detach(netcfg, plan_a.container_id)
    assert plan_a.endpoints[0].host_veth not in links_on_host()
    network.release(netcfg, plan_a.container_id)
    net = network.get_network(netcfg, "bridge")
    assert ip_a not in ipam.in_use(netcfg, net.pool) and ip_b in ipam.in_use(netcfg, net.pool)


def test_published_port_reaches_httpd_and_busy_ports_are_refused(netcfg: EngineConfig, tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from the container\n")
    port = free_port()
    spec = network.NetworkSpec(publish=[f"127.0.0.1:{port}:80"])
    plan, box = run_container(netcfg, "web", spec, ["80/tcp"], [BUSYBOX, "httpd", "-f", "-p", "80", "-h", str(www)])
    assert [(m.host_ip, m.host_port, m.container_port, m.proto) for m in plan.ports] == [("127.0.0.1", port, 80, "tcp")]
    assert plan.settings()["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    body = b""
    for _ in range(50):  # httpd may still be starting
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
            break
        except OSError:
            time.sleep(0.05)
    assert body == b"hello from the container\n"
    assert portmap.list_rule_owners(netcfg) == {plan.container_id: 4}  # guard, 2 DNAT, masquerade

    # The same host port again: refused by prepare, before any process exists, nothing allocated.
    net = network.get_network(netcfg, "bridge")
    before = ipam.in_use(netcfg, net.pool)
    with pytest.raises(Conflict, match=f"Bind for 0.0.0.0:{port}/tcp failed: port is already allocated"):
        network.prepare(netcfg, new_id(), "web2", network.NetworkSpec(publish=[f"{port}:80"]), [])
    # A port some other program listens on: refused too.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = listener.getsockname()[1]
        with pytest.raises(Conflict, match="already allocated"):
            network.prepare(netcfg, new_id(), "web3", network.NetworkSpec(publish=[f"127.0.0.1:{busy}:80"]), [])
    assert ipam.in_use(netcfg, net.pool) == before
    # -P: every exposed port to some free host port
    plan_p = network.prepare(netcfg, new_id(), "webp", network.NetworkSpec(publish_all=True), ["80/tcp", "53/udp"])
    assert sorted((m.container_port, m.proto) for m in plan_p.ports) == [(53, "udp"), (80, "tcp")]
    assert all(m.host_port >= portmap.local_port_range()[0] and m.host_port != port for m in plan_p.ports)
    network.release(netcfg, plan_p.container_id)

    # stop removes every rule (and the table with the last one)
    network.detach(netcfg, plan.container_id)
    assert portmap.list_rule_owners(netcfg) == {}
    assert not portmap.table_exists(netcfg)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)


def test_links_env_hosts_and_ping_by_alias(netcfg: EngineConfig) -> None:
    db_plan, _db = run_container(netcfg, "db", network.NetworkSpec(env=["PASSWORD=s3cret", "PATH=/bin"]), ["5432/tcp"])
    web_plan, web = run_container(
        netcfg, "web", network.NetworkSpec(links=["db:database"], add_hosts=["extra.local:10.1.2.3", "dockerhost:host-gateway"]),
        private_hosts=True,
    )
    ip = db_plan.endpoints[0].ip
    assert web_plan.link_env == [
        f"DATABASE_PORT=tcp://{ip}:5432",
        f"DATABASE_PORT_5432_TCP=tcp://{ip}:5432",
        f"DATABASE_PORT_5432_TCP_ADDR={ip}",
        "DATABASE_PORT_5432_TCP_PORT=5432",
        "DATABASE_PORT_5432_TCP_PROTO=tcp",
        "DATABASE_NAME=/web/database",
        "DATABASE_ENV_PASSWORD=s3cret",
    ]
    hosts_lines = web_plan.hosts.splitlines()
    assert hosts_lines[6:] == [
        "10.1.2.3\textra.local",
        f"{web_plan.endpoints[0].gateway}\tdockerhost",
        f"{ip}\tdatabase {db_plan.hostname} db",
        f"{web_plan.endpoints[0].ip}\t{web_plan.hostname}",  # its hostname only, as Docker's
    ]
    assert web_plan.settings()["Links"] == ["/db:/web/database"]
    for target in ("database", "db"):
        ping = web.run(BUSYBOX, "ping", "-c", "1", "-W", "3", target, mount=True)
        assert ping.returncode == 0 and f"PING {target} ({ip})" in ping.stdout, ping.stdout + ping.stderr


def test_named_network_peers_resolve_each_other_by_name(netcfg: EngineConfig) -> None:
    subnet = free_subnet(prefix=28)
    net = network.create_network(netcfg, "dknet", subnet=str(subnet))
    assert net.bridge == f"br-{net.id[:12]}" and net.subnet == str(subnet)
    with pytest.raises(Conflict, match="overlaps"):
        network.create_network(netcfg, "dknet2", subnet=str(subnet))
    one, box_one = run_container(netcfg, "one", network.NetworkSpec(mode="dknet"), private_hosts=True)
    two, box_two = run_container(netcfg, "two", network.NetworkSpec(mode="dknet", ip=str(subnet.network_address + 9)), private_hosts=True)
    assert two.endpoints[0].ip == str(subnet.network_address + 9)
    # As Docker's: a hosts file holds the container itself only ("one" was not rewritten when "two"
    # joined); peers are found through the embedded DNS at 127.0.0.11 in each one's namespace.
    for plan in (one, two):
        hosts = (netcfg.containers_dir / plan.container_id / "hosts").read_text().splitlines()
        assert hosts[6:] == [f"{plan.endpoints[0].ip}\t{plan.hostname}"], hosts
    for box, peer, address in ((box_one, "two", two.endpoints[0].ip), (box_two, "one", one.endpoints[0].ip)):
        found = box.run(BUSYBOX, "nslookup", peer, "127.0.0.11")
        assert found.returncode == 0 and f"Address: {address}" in found.stdout, found.stdout + found.stderr
        ping = box.run(BUSYBOX, "ping", "-c", "1", "-W", "3", address)
        assert ping.returncode == 0, ping.stdout + ping.stderr
    network.rename(netcfg, two.container_id, "deux")
    assert f"Address: {two.endpoints[0].ip}" in box_one.run(BUSYBOX, "nslookup", "deux", "127.0.0.11").stdout
    info = network.inspect_network(netcfg, "dknet")
    assert set(info["Containers"]) == {one.container_id, two.container_id}
    assert sorted(p["container_name"] for p in info["Topology"]["ports"]) == ["deux", "one"]
    with pytest.raises(Conflict, match="active endpoints"):
        network.remove_network(netcfg, "dknet")

    # connect a running default-bridge container to the named network: it gets eth1 at once
    three, box_three = run_container(netcfg, "three")
    ep = network.connect(netcfg, "dknet", "three")
    assert ep.ifname == "eth1"
    assert box_three.run(BUSYBOX, "ping", "-c", "1", "-W", "3", one.endpoints[0].ip).returncode == 0
    network.disconnect(netcfg, "dknet", "three")
    assert "eth1" not in box_three.run("ip", "-br", "link").stdout
    for plan in (one, two, three):
        network.release(netcfg, plan.container_id)
    assert network.prune_networks(netcfg) == ["dknet"]
    assert net.bridge not in links_on_host()


ENGINE_THAT_DIES = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from engine.config import EngineConfig
    from engine.network import endpoints as network
    root, bridge, bip, pid, port = sys.argv[1:6]
    cfg = EngineConfig(root=Path(root), bridge_name=bridge, bridge_ip=bip)
    plan = network.prepare(cfg, "f" * 64, "doomed", network.NetworkSpec(publish=[f"127.0.0.1:{port}:80"]), [])
    network.attach(cfg, plan, int(pid))
    print(plan.endpoints[0].host_veth, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_sigkilled_engine_leaves_nothing_after_reconcile(netcfg: EngineConfig) -> None:
    box = start_box(netcfg)
    proc = subprocess.run(
        [sys.executable, "-c", ENGINE_THAT_DIES, str(netcfg.root), netcfg.bridge_name, netcfg.bridge_ip or "",
         str(box.pid), str(free_port())],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    veth = proc.stdout.strip()
    # an orphan the records know nothing about (a crash between creating a veth and recording it)
    subprocess.run(["ip", "link", "add", "veth0dead00", "master", netcfg.bridge_name, "type", "veth", "peer", "name", "dkpeer0"], check=True)
    assert veth in links_on_host() and "veth0dead00" in links_on_host()
    assert portmap.list_rule_owners(netcfg) == {"f" * 64: 4}
    box.kill()  # the container died with the engine; its rules and record remain
    report = network.reconcile(netcfg, live_ids=set())
    host = links_on_host()
    assert veth not in host and "veth0dead00" not in host and "dkpeer0" not in host
    assert not portmap.table_exists(netcfg)
    assert report["released"] == ["f" * 64]  # no container directory: the address goes back too
    assert ipam.in_use(netcfg, network.get_network(netcfg, "bridge").pool) == {}


def test_network_none_gets_only_loopback(netcfg: EngineConfig) -> None:
    plan, box = run_container(netcfg, "lonely", network.NetworkSpec(mode="none"))
    assert plan.endpoints == [] and plan.ports == []
    inside = {i["ifname"]: i for i in json.loads(box.run("ip", "-j", "link").stdout)}
    assert list(inside) == ["lo"] and "UP" in inside["lo"]["flags"]


def test_abandoned_default_bridges_give_their_subnet_back(tmp_path: Path) -> None:
    """In a namespace of our own: root A's idle default bridge (no container left) and root C's
    bridge (root deleted) are collected when root B needs a subnet; A's named network survives."""
    code = textwrap.dedent(
        f"""
        import json, shutil
        from pathlib import Path
        from engine.config import EngineConfig
        from engine.network import endpoints as network
        tmp = Path({str(tmp_path)!r})
        a = EngineConfig(root=tmp / "a", bridge_name="dkgca")
        c = EngineConfig(root=tmp / "c", bridge_name="dkgcc")
        first = network.get_network(a, "bridge").subnet
        network.prepare(a, "a" * 64, "busy", network.NetworkSpec(), [])  # A has a container: kept
        named = network.create_network(a, "keep", subnet="10.77.0.0/24")
        gone = network.get_network(c, "bridge").subnet
        network.release(a, "a" * 64)  # now A has none
        shutil.rmtree(c.root)
        b = EngineConfig(root=tmp / "b", bridge_name="dkgcb")
        chosen = network.get_network(b, "bridge").subnet
        links = sorted(p.name for p in Path("/sys/class/net").iterdir())
        print(json.dumps([first, gone, chosen, links, named.bridge]))
        """
    )
    proc = subprocess.run(
        ["unshare", "-n", "-m", "sh", "-c", 'mount -t sysfs sysfs /sys && exec "$@"', "sh", sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DOCKUI_NET_HOST_LOCK": str(tmp_path / "host.lock")},
    )
    assert proc.returncode == 0, proc.stderr
    first, gone, chosen, links, named_bridge = json.loads(proc.stdout)
    assert (first, gone) == ("172.17.0.0/16", "172.18.0.0/16")
    assert chosen == "172.17.0.0/16"  # A's idle bridge was collected, its subnet reused
    assert "dkgca" not in links and "dkgcc" not in links and "dkgcb" in links
    assert named_bridge in links


def _prepare_many(root: str, bridge: str, bip: str, prefix: str, count: int) -> list[str]:
    config = EngineConfig(root=Path(root), bridge_name=bridge, bridge_ip=bip)
    return [
        network.prepare(config, f"{prefix}{i:02d}".ljust(64, "0"), f"{prefix}{i}", network.NetworkSpec(), []).endpoints[0].ip
        for i in range(count)
    ]


def test_concurrent_prepares_get_distinct_addresses_and_a_full_network_refuses(netcfg: EngineConfig) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as workers:
        chunks = workers.starmap(
            _prepare_many,
            [(str(netcfg.root), netcfg.bridge_name, netcfg.bridge_ip, f"p{n}", 25) for n in range(4)],
        )
    flat = [ip for chunk in chunks for ip in chunk]
    assert len(flat) == 100 and len(set(flat)) == 100
    # records and pool agree
    pool = ipam.in_use(netcfg, network.get_network(netcfg, "bridge").pool)
    assert sorted(pool) == sorted(flat)

    small = free_subnet(prefix=29)
    network.create_network(netcfg, "tiny", subnet=str(small))
    got = [network.prepare(netcfg, new_id(), f"t{i}", network.NetworkSpec(mode="tiny"), []).endpoints[0].ip for i in range(5)]
    assert sorted(got, key=ipaddress.IPv4Address) == [str(small.network_address + i) for i in range(2, 7)]
    with pytest.raises(Conflict, match=f"no available IPv4 address in subnet {small}"):
        network.prepare(netcfg, new_id(), "t6", network.NetworkSpec(mode="tiny"), [])
    for rec_id in list(ipam.in_use(netcfg, network.get_network(netcfg, "tiny").pool).values()):
        network.release(netcfg, rec_id)
    for chunk_prefix in ("p0", "p1", "p2", "p3"):
        for i in range(25):
            network.release(netcfg, f"{chunk_prefix}{i:02d}".ljust(64, "0"))
    network.remove_network(netcfg, "tiny")


UDP_ECHO = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('0.0.0.0', 5353))\nwhile True:\n    data, peer = s.recvfrom(2048)\n    s.sendto(b'echo:' + data, peer)\n"


def test_published_udp_port_reaches_the_container(netcfg: EngineConfig) -> None:
    port = free_port()
    spec = network.NetworkSpec(publish=[f"127.0.0.1:{port}:5353/udp"])
    plan, _box = run_container(netcfg, "udp", spec, argv=[sys.executable, "-c", UDP_ECHO])
    assert plan.settings()["Ports"] == {"5353/udp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(0.2)
        reply = b""
        for _ in range(50):  # the echo server may still be starting
            client.sendto(b"ping", ("127.0.0.1", port))
            try:
                reply = client.recv(100)
                break
            except TimeoutError:
                continue
    assert reply == b"echo:ping"
    conntrack = Path("/proc/net/nf_conntrack")

    def tracked() -> bool:
        return conntrack.exists() and f"src={plan.endpoints[0].ip} dst=" in conntrack.read_text()

    network.detach(netcfg, plan.container_id)
    assert portmap.list_rule_owners(netcfg) == {}
    assert not tracked()  # no stale UDP mapping that would keep DNATing to the old address
