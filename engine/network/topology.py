"""The network as data: each bridge of a root with its ports, read from netlink.

`read(config)` is what `dockui network inspect` prints and the
TUI's network panel polls every second: one address dump, one dump of the host's bridges and per
bridge one dump of its ports, filtered by the kernel, decoded by hand (engine/kernel/rtnetlink.py), with
the container behind each port taken from the endpoint records, so no namespace is entered. Apart
from engine.network.endpoint so that the monitors, which import that on every start, skip these types.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import asdict, dataclass, field

from engine.config import EngineConfig
from engine.kernel.rtnetlink import (
    IFA_ADDRESS,
    IFLA_ADDRESS,
    IFLA_IFNAME,
    IFLA_INFO_KIND,
    IFLA_LINK,
    IFLA_LINKINFO,
    IFLA_MASTER,
    IFLA_MTU,
    IFLA_OPERSTATE,
    IFLA_STATS64,
    OPERSTATES,
    RTM_GETADDR,
    RTM_GETLINK,
    Rtnl,
    ifinfomsg,
    nla,
    parse_attrs,
    u32,
)
from engine.network.networks import containers_on, get_network, list_networks
from engine.network.records import (
    DEFAULT_NETWORK,
    Endpoint,
    EndpointRecord,
    NetworkInfo,
    all_records,
    endpoints_dir,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


@dataclass
class PortInfo:
    """One bridge port as seen from the host. rx/tx are the host veth's counters (what the
    container sent is the veth's rx)."""

    host_veth: str
    ifindex: int
    peer_ifindex: int
    container_id: str
    container_name: str
    ip: str
    mac: str
    oper_state: str
    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int


@dataclass
class BridgeInfo:
    name: str
    network: str
    ifindex: int
    state: str
    mtu: int
    mac: str
    addresses: list[str]
    subnet: str
    ports: list[PortInfo] = field(default_factory=list)
    gateway: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_cache: dict[str, tuple[tuple[int, int], list[EndpointRecord]]] = {}


def _records(config: EngineConfig) -> list[EndpointRecord]:
    """The records for read-only use by a poller (topology at 1 Hz): re-read only after a change.

    Every save renames into the directory, changing its mtime; a directory changed within the last
    second is always re-read, since coarse timestamps could hide a second change in the same tick.
    """
    d = endpoints_dir(config)
    try:
        st = d.stat()
    except FileNotFoundError:
        return []
    key = (st.st_mtime_ns, st.st_ino)
    cached = _cache.get(str(d))
    if cached and cached[0] == key and time.time_ns() - st.st_mtime_ns > 1_000_000_000:
        return cached[1]
    records = all_records(config)
    _cache[str(d)] = (key, records)
    return records


@dataclass
class _Link:
    index: int
    name: str
    master: int
    peer_index: int
    operstate: str
    mtu: int
    mac: str
    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int


_HH = struct.Struct("=HH").unpack_from
_U32 = struct.Struct("=I").unpack_from
_STATS4 = struct.Struct("=4Q").unpack_from


def _dump_links(rt: Rtnl, master: int = 0, kind: str | None = None) -> list[_Link]:
    """An RTM_GETLINK dump, filtered in the kernel by master ifindex and/or link kind, decoded sparingly.

    The attribute walk is the hot loop (about 30 attributes per message), so it is written out
    flat and stops once it has both the counters and the peer ifindex (IFLA_LINK, a veth's).
    """
    request = ifinfomsg()
    if master:
        request += nla(IFLA_MASTER, u32(master))
    if kind:
        request += nla(IFLA_LINKINFO, nla(IFLA_INFO_KIND, kind.encode()))
    out = []
    for msg in rt.dump(RTM_GETLINK, request):
        index = struct.unpack_from("=i", msg, 4)[0]
        name, mtu, link_master, peer, state, mac, stats = "", 0, 0, 0, 0, "", (0, 0, 0, 0)
        offset, end = 16, len(msg)
        while offset + 4 <= end:
            length, attr = _HH(msg, offset)
            if length < 4:
                break
            attr &= 0x3FFF
            if attr == IFLA_STATS64:
                stats = _STATS4(msg, offset + 4)
                if peer:
                    break
            elif attr == IFLA_IFNAME:
                name = bytes(msg[offset + 4 : offset + length]).rstrip(b"\0").decode()
            elif attr == IFLA_MTU:
                mtu = _U32(msg, offset + 4)[0]
            elif attr == IFLA_MASTER:
                link_master = _U32(msg, offset + 4)[0]
            elif attr == IFLA_LINK:
                peer = _U32(msg, offset + 4)[0]
                if stats[0] or stats[1] or stats[2] or stats[3]:
                    break
            elif attr == IFLA_OPERSTATE:
                state = msg[offset + 4]
            elif attr == IFLA_ADDRESS:
                mac = bytes(msg[offset + 4 : offset + length]).hex(":")
            offset += (length + 3) & ~3
        if master and link_master != master:
            continue  # a kernel too old to filter
        out.append(
            _Link(
                index, name, link_master, peer, OPERSTATES[state] if state < len(OPERSTATES) else str(state), mtu, mac,
                rx_packets=stats[0], tx_packets=stats[1], rx_bytes=stats[2], tx_bytes=stats[3],
            )
        )
    return out


def _dump_ipv4_addrs(rt: Rtnl) -> dict[int, list[str]]:
    addrs: dict[int, list[str]] = {}
    for msg in rt.dump(RTM_GETADDR, struct.pack("=BBBBI", socket.AF_INET, 0, 0, 0, 0)):
        _family, prefixlen, _flags, _scope, idx = struct.unpack_from("=BBBBI", msg)
        a = parse_attrs(msg, 8, {IFA_ADDRESS})
        if IFA_ADDRESS in a:
            addrs.setdefault(idx, []).append(f"{socket.inet_ntoa(bytes(a[IFA_ADDRESS]))}/{prefixlen}")
    return addrs


def _add_ipv6_addrs(rt: Rtnl, addrs: dict[int, list[str]]) -> None:
    """The global IPv6 addresses (an IPv6 network's gateway), after each interface's IPv4 ones:
    one more dump, made only when this root has an IPv6 network (every link has a link-local
    address, which is skipped)."""
    for msg in rt.dump(RTM_GETADDR, struct.pack("=BBBBI", socket.AF_INET6, 0, 0, 0, 0)):
        _family, prefixlen, _flags, scope, idx = struct.unpack_from("=BBBBI", msg)
        a = parse_attrs(msg, 8, {IFA_ADDRESS})
        if scope == 0 and IFA_ADDRESS in a:
            addrs.setdefault(idx, []).append(f"{socket.inet_ntop(socket.AF_INET6, bytes(a[IFA_ADDRESS]))}/{prefixlen}")


def read(config: EngineConfig) -> list[BridgeInfo]:
    """Every bridge of this root with its ports: one address dump, one dump of the host's bridges,
    and per bridge one dump of its ports (filtered by the kernel, so other interfaces cost nothing).

    Container IDs/names and eth0 addresses come from the endpoint records, matched by host veth
    name, so no container namespace is entered (cheap enough for a 1 Hz refresh with hundreds of ports).
    """
    networks = {n.bridge: n for n in list_networks(config)}
    if config.bridge_name not in networks:
        networks[config.bridge_name] = NetworkInfo(DEFAULT_NETWORK, "", config.bridge_name, "", "", "", default=True)
    by_veth: dict[str, tuple[EndpointRecord, Endpoint]] = {}
    for rec in _records(config):
        for ep in rec.endpoints:
            by_veth[ep.host_veth] = (rec, ep)
    bridges: dict[int, BridgeInfo] = {}
    with Rtnl() as rt:
        addrs = _dump_ipv4_addrs(rt)
        if any(n.ipv6 for n in networks.values()):
            _add_ipv6_addrs(rt, addrs)
        for link in _dump_links(rt, kind="bridge"):
            net = networks.get(link.name)
            if net is not None:
                bridges[link.index] = BridgeInfo(
                    link.name, net.name, link.index, link.operstate, link.mtu, link.mac,
                    addrs.get(link.index, []), net.subnet, gateway=net.gateway,
                )
        for bridge in bridges.values():
            for link in _dump_links(rt, master=bridge.ifindex):
                found = by_veth.get(link.name)
                rec, ep = found if found else (None, None)
                bridge.ports.append(
                    PortInfo(
                        link.name, link.index, link.peer_index, rec.container_id if rec else "", rec.name if rec else "",
                        ep.ip if ep else "", ep.mac if ep else "", link.operstate,
                        link.rx_bytes, link.tx_bytes, link.rx_packets, link.tx_packets,
                    )
                )
    return sorted(bridges.values(), key=lambda b: (b.network != DEFAULT_NETWORK, b.name))


def inspect_network(config: EngineConfig, name: str) -> dict[str, Any]:
    """Docker's `network inspect` shape, plus `Topology`: the live bridge read from netlink."""
    import hashlib  # `network inspect` only

    net = get_network(config, name)
    containers = {}
    for rec in containers_on(config, net.name):
        for ep in rec.on(net.name):
            containers[rec.container_id] = {
                "Name": rec.name,
                "EndpointID": hashlib.sha256(f"{rec.container_id}/{net.id}".encode()).hexdigest(),
                "MacAddress": ep.mac,
                "IPv4Address": f"{ep.ip}/{ep.prefixlen}",
                "IPv6Address": f"{ep.ip6}/{ep.prefixlen6}" if ep.ip6 else "",
                "HostVeth": ep.host_veth,
                "State": rec.state,
            }
    topo = [b.to_dict() for b in read(config) if b.name == net.bridge]
    return {
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": net.ipv6,
        "IPAM": {"Driver": "default", "Options": {}, "Config": net.ipam_config()},
        "Internal": net.internal,
        "Attachable": False,
        "Containers": containers,
        "Options": {"com.docker.network.bridge.name": net.bridge},
        "Labels": {},
        "Topology": topo[0] if topo else None,
    }
