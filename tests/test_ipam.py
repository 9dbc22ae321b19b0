"""IPAM: subnet choice in Docker's order avoiding the host's networks, and address allocation."""

from __future__ import annotations

import ipaddress
import json
import multiprocessing
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.errors import Conflict, InvalidArgument
from engine.network import ipam

REPO = Path(__file__).resolve().parent.parent


def make_pool(subnet: str) -> ipam.Pool:
    net = ipaddress.IPv4Network(subnet)
    return ipam.Pool(uuid.uuid4().hex, net, ipam.default_gateway(net))


def test_candidates_follow_dockers_order() -> None:
    candidates = [str(c) for c in ipam.candidate_subnets()]
    assert candidates[:3] == ["172.17.0.0/16", "172.18.0.0/16", "172.19.0.0/16"]
    assert candidates[14] == "172.31.0.0/16"
    assert candidates[15:18] == ["192.168.0.0/20", "192.168.16.0/20", "192.168.32.0/20"]
    assert ipam.choose_subnet([]) == ipaddress.IPv4Network("172.17.0.0/16")
    used = [ipaddress.IPv4Network("172.16.0.0/12")]
    assert ipam.choose_subnet(used) == ipaddress.IPv4Network("192.168.0.0/20")
    # a route inside a candidate makes it unusable, not just an exact match
    assert ipam.choose_subnet([ipaddress.IPv4Network("172.17.5.0/24")]) == ipaddress.IPv4Network("172.18.0.0/16")
    with pytest.raises(Conflict, match="no free private subnet"):
        ipam.choose_subnet([ipaddress.IPv4Network("172.16.0.0/12"), ipaddress.IPv4Network("192.168.0.0/16")])


def test_bridge_ip_and_subnet_parsing() -> None:
    assert ipam.parse_bridge_ip("172.20.0.1/16") == (
        ipaddress.IPv4Network("172.20.0.0/16"),
        ipaddress.IPv4Address("172.20.0.1"),
    )
    for bad in ("172.20.0.0/16", "nonsense", "10.0.0.1/31"):
        with pytest.raises(InvalidArgument):
            ipam.parse_bridge_ip(bad)
    with pytest.raises(InvalidArgument, match="invalid subnet"):
        ipam.parse_subnet("10.1.2.3/24")
    assert ipam.mac_for(ipaddress.IPv4Address("172.17.0.2")) == "02:42:ac:11:00:02"


def test_hundred_allocations_are_distinct_and_persisted(engine_config: EngineConfig) -> None:
    pool = make_pool("172.30.0.0/16")
    with ipam.lock(engine_config):
        got = [ipam.allocate(engine_config, pool, f"c{i}") for i in range(100)]
    assert len(set(got)) == 100
    assert pool.gateway not in got
    assert all(ip in pool.subnet for ip in got)
    on_disk = json.loads(pool.path(engine_config).read_text())["addresses"]
    assert sorted(on_disk) == sorted(str(ip) for ip in got)
    # idempotent for the same container, and a freed address is not handed out again at once
    with ipam.lock(engine_config):
        assert ipam.allocate(engine_config, pool, "c7") == got[7]
        assert ipam.release(engine_config, pool, "c7") == [str(got[7])]
        assert ipam.allocate(engine_config, pool, "new") != got[7]


def _allocate_many(root: str, pool_id: str, prefix: str, count: int) -> list[str]:
    config = EngineConfig(root=Path(root))
    net = ipaddress.IPv4Network("172.29.0.0/24")
    pool = ipam.Pool(pool_id, net, ipam.default_gateway(net))
    out = []
    for i in range(count):
        with ipam.lock(config):
            out.append(str(ipam.allocate(config, pool, f"{prefix}-{i}")))
    return out


def test_concurrent_allocations_never_collide(engine_config: EngineConfig) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as workers:
        results = workers.starmap(
            _allocate_many, [(str(engine_config.root), "shared", f"p{n}", 25) for n in range(4)]
        )
    flat = [ip for chunk in results for ip in chunk]
    assert len(flat) == 100 and len(set(flat)) == 100


def test_small_subnet_is_refused_only_when_really_full(engine_config: EngineConfig) -> None:
    pool = make_pool("10.99.0.0/29")  # 8 addresses: network, gateway .1, broadcast -> 5 for containers
    with ipam.lock(engine_config):
        got = [ipam.allocate(engine_config, pool, f"c{i}") for i in range(5)]
        assert sorted(str(ip) for ip in got) == [f"10.99.0.{i}" for i in range(2, 7)]
        with pytest.raises(Conflict, match=r"no available IPv4 address in subnet 10\.99\.0\.0/29"):
            ipam.allocate(engine_config, pool, "one-too-many")
        ipam.release(engine_config, pool, "c2")
        assert ipam.allocate(engine_config, pool, "one-too-many") == got[2]


def test_requested_address(engine_config: EngineConfig) -> None:
    pool = make_pool("10.98.0.0/24")
    with ipam.lock(engine_config):
        assert str(ipam.allocate(engine_config, pool, "a", "10.98.0.50")) == "10.98.0.50"
        with pytest.raises(Conflict, match="already in use"):
            ipam.allocate(engine_config, pool, "b", "10.98.0.50")
        for bad in ("10.97.0.5", "10.98.0.1", "10.98.0.255", "banana"):
            with pytest.raises(InvalidArgument):
                ipam.allocate(engine_config, pool, "b", bad)


@pytest.mark.root
def test_dummy_interface_holding_172_17_makes_the_engine_choose_another(tmp_path: Path) -> None:
    """In a network namespace of our own: first the engine picks 172.17.0.0/16; with a dummy
    interface holding 172.17.0.1/16 (and the first choice forgotten) it picks 172.18.0.0/16.
    The CI kernel is built without CONFIG_DUMMY, so the stub interface is an `ifb` device there."""
    code = textwrap.dedent(
        f"""
        import json, shutil
        from pathlib import Path
        from pyroute2 import IPRoute
        from engine.config import EngineConfig
        from engine.network import endpoints as network
        root = Path({str(tmp_path)!r})
        cfg = EngineConfig(root=root / "a", bridge_name="dkipam0")
        first = network.get_network(cfg, "bridge")
        with IPRoute() as ipr:
            ipr.link("del", ifname="dkipam0")
            try:
                ipr.link("add", ifname="dkdummy0", kind="dummy")
            except Exception:  # kernel without CONFIG_DUMMY (this CI's): ifb is the same kind of stub
                ipr.link("add", ifname="dkdummy0", kind="ifb")
            idx = ipr.link_lookup(ifname="dkdummy0")[0]
            ipr.addr("add", index=idx, address="172.17.0.1", prefixlen=16)
            ipr.link("set", index=idx, state="up")
        cfg2 = EngineConfig(root=root / "b", bridge_name="dkipam1")
        second = network.get_network(cfg2, "bridge")
        # the persisted choice is stable across runs
        again = network.get_network(EngineConfig(root=root / "b", bridge_name="dkipam1"), "bridge")
        print(json.dumps([first.subnet, first.gateway, second.subnet, second.gateway, again.subnet]))
        """
    )
    proc = subprocess.run(
        ["unshare", "-n", "-m", "sh", "-c", 'mount -t sysfs sysfs /sys && exec "$@"', "sh", sys.executable, "-c", code],
        capture_output=True, text=True, cwd=REPO, timeout=60,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DOCKUI_NET_HOST_LOCK": str(tmp_path / "host.lock")},
    )
    assert proc.returncode == 0, proc.stderr
    first_subnet, first_gw, second_subnet, second_gw, again = json.loads(proc.stdout)
    assert (first_subnet, first_gw) == ("172.17.0.0/16", "172.17.0.1")
    assert (second_subnet, second_gw) == ("172.18.0.0/16", "172.18.0.1")
    assert again == second_subnet


def test_a_slash_16_refuses_only_when_every_address_is_taken(engine_config: EngineConfig) -> None:
    """65,536 addresses: network, gateway and broadcast reserved, 65,533 for containers. With all but
    one recorded as taken (written directly: 65k real allocations would only test the disk), the
    next allocation finds the single free one, wherever it is, and only the one after is refused."""
    pool = make_pool("172.31.0.0/16")
    free = "172.31.200.17"
    hosts = (str(ip) for ip in pool.subnet.hosts())
    taken = {ip: f"c{i}" for i, ip in enumerate(hosts) if ip not in (free, str(pool.gateway))}
    assert len(taken) == 65_532
    pool.path(engine_config).parent.mkdir(parents=True)
    pool.path(engine_config).write_text(
        json.dumps({"subnet": str(pool.subnet), "gateway": str(pool.gateway), "last": "172.31.0.5", "addresses": taken})
    )
    with ipam.lock(engine_config):
        assert str(ipam.allocate(engine_config, pool, "the-65533rd")) == free
        with pytest.raises(Conflict, match="no available IPv4 address in subnet 172.31.0.0/16: all 65533 addresses are in use"):
            ipam.allocate(engine_config, pool, "one-too-many")
