"""Published ports: `-p` parsing like Docker's, the busy-port check, and the nft rules' shape."""

from __future__ import annotations

import socket

import pytest

from engine.config import EngineConfig
from engine.errors import Conflict, InvalidArgument
from engine.network import portmap
from engine.network.portmap import PortMapping, PortRequest


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("80", [PortRequest("", 0, 80, "tcp")]),
        ("8080:80", [PortRequest("", 8080, 80, "tcp")]),
        ("127.0.0.1:8080:80", [PortRequest("127.0.0.1", 8080, 80, "tcp")]),
        ("127.0.0.1::80/udp", [PortRequest("127.0.0.1", 0, 80, "udp")]),
        ("0:80", [PortRequest("", 0, 80, "tcp")]),  # host port 0: any free one, as Docker's
        ("0.0.0.0:53:53/UDP", [PortRequest("", 53, 53, "udp")]),
        ("8000-8001:80-81", [PortRequest("", 8000, 80, "tcp"), PortRequest("", 8001, 81, "tcp")]),
    ],
)
def test_publish_specs(spec: str, expected: list[PortRequest]) -> None:
    assert portmap.parse_publish(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("80/sctp", "invalid protocol"),
        ("8080:70000", "ports are 1-65535"),
        ("a:80", "not a port number"),
        ("300.1.1.1:80:80", "invalid host IP"),
        ("8000-8002:80-81", "differ in length"),
        ("[::1]:80:80", "IPv6"),
        ("127.0.0.1:80:", "no container port"),
    ],
)
def test_bad_publish_specs_are_refused_clearly(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        portmap.parse_publish(spec)


def test_exposed_ports_for_publish_all() -> None:
    assert portmap.exposed_requests(["80/tcp", "53/udp", "8080"]) == [
        PortRequest("", 0, 80, "tcp"), PortRequest("", 0, 53, "udp"), PortRequest("", 0, 8080, "tcp"),
    ]


def test_resolve_refuses_ports_taken_by_other_containers_or_listeners() -> None:
    taken = [PortMapping("0.0.0.0", 18080, 80, "tcp"), PortMapping("127.0.0.1", 18081, 80, "tcp")]
    with pytest.raises(Conflict, match="127.0.0.2:18080/tcp failed: port is already allocated"):
        portmap.resolve([PortRequest("127.0.0.2", 18080, 80, "tcp")], taken)  # 0.0.0.0 covers every address
    with pytest.raises(Conflict, match="already allocated"):
        portmap.resolve([PortRequest("", 18081, 80, "tcp")], taken)
    # a different protocol or a different specific address does not collide
    assert portmap.resolve([PortRequest("", 18080, 80, "udp")], taken) == [PortMapping("0.0.0.0", 18080, 80, "udp")]
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = listener.getsockname()[1]
        with pytest.raises(Conflict, match=f"127.0.0.1:{busy}/tcp failed: port is already allocated"):
            portmap.resolve([PortRequest("127.0.0.1", busy, 80, "tcp")], [])
    # the same request twice in one run is refused too
    with pytest.raises(Conflict):
        portmap.resolve([PortRequest("", 18090, 80, "tcp"), PortRequest("", 18090, 81, "tcp")], [])


def test_automatic_host_ports_skip_busy_ones() -> None:
    lo, hi = portmap.local_port_range()
    taken = [PortMapping("0.0.0.0", lo, 1, "tcp")]
    got = portmap.resolve([PortRequest("", 0, 80, "tcp"), PortRequest("", 0, 81, "tcp")], taken)
    ports = [m.host_port for m in got]
    assert len(set(ports)) == 2 and lo not in ports and all(lo <= p <= hi for p in ports)


def test_unassignable_host_address_is_refused() -> None:
    with pytest.raises(Conflict, match="Cannot assign requested address"):
        portmap.probe_bind("192.0.2.123", 18080, "tcp")


def test_rules_script_shape() -> None:
    script = portmap.rules_script(
        "dockui_t", "c" * 64, "dkt0", "10.1.0.2",
        [PortMapping("127.0.0.1", 8080, 80, "tcp"), PortMapping("10.9.9.9", 5353, 53, "udp")],
    )
    comment = 'comment "dk:' + "c" * 64 + '"'
    lines = script.splitlines()
    assert f'add rule ip dockui_t guard iifname "dkt0" ip daddr 127.0.0.0/8 drop {comment}' in lines
    assert (
        f"add rule ip dockui_t output fib daddr type local ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.1.0.2:80 {comment}"
        in lines
    )
    assert (
        f"add rule ip dockui_t prerouting fib daddr type local ip daddr 10.9.9.9 udp dport 5353 dnat to 10.1.0.2:53 {comment}"
        in lines
    )
    # masquerade only for traffic leaving the host's loopback, only towards this container's port
    masq = [line for line in lines if "masquerade" in line]
    assert masq == [
        f'add rule ip dockui_t postrouting oifname "dkt0" ip saddr 127.0.0.0/8 ip daddr 10.1.0.2 tcp dport 80 masquerade {comment}'
    ]


def test_table_name_is_per_engine_instance() -> None:
    assert portmap.table_name(EngineConfig()) == "dockui"
    assert portmap.table_name(EngineConfig(bridge_name="dkt1234")) == "dockui_dkt1234"
