"""Container networking: bridges, veth pairs, addresses, published ports, links, and the topology.

The life of a container's network, as the runtime drives it:
  prepare(config, id, name, spec, exposed_ports) -> NetworkPlan   at create/start, before the process:
      picks the network, allocates the address (IPAM), refuses busy host ports, builds the
      /etc/hosts and /etc/resolv.conf text and the link environment, and records it all in
      <root>/network/endpoints/<id>.json (the record topology and reconcile read).
  attach(config, plan, pid)   from spawn_container's on_namespaces_ready:
      creates the bridge if needed, a veth pair (host end `veth<7 hex>` on the bridge, the other
      end created directly inside the container's namespace as eth0), configures eth0 and lo from a
      netlink socket opened inside that namespace, and installs the DNAT rules.
  detach(config, id)    on stop: deletes the veth pair and the port rules (the address is kept);
      a dead namespace's pairs on a thread, whose names the caller can wait for (wait_links_gone).
  release(config, id)   on rm: detach, free the address, forget the record.
  reconcile(config, live_ids)  on engine start: undo what a crashed engine left behind.
  topology(config)      the bridges and their ports as data (engine/network/topology.py).

Everything kernel-side goes over netlink: the per-container hot path (attach, detach, topology)
through the small client in engine/kernel/rtnetlink.py, the rest through pyroute2, imported inside
functions only, so the commands that do not touch the network never pay for it. Every container's
monitor imports this module, so it loads nothing else it does not need on every run (ports, links
and topology are imported where used). State changes happen under one flock per root
(`ipam.lock`), so concurrent CLI/TUI processes agree.
"""

from __future__ import annotations

import _socket  # the C module: socket.py would load selectors & co. (~3 ms) into every monitor
import ctypes
import errno
import os
import struct
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine import events
from engine.config import EngineConfig
from engine.errors import Conflict, DockuiError, InvalidArgument, NeedsRoot, NotFound
from engine.kernel.rtnetlink import (
    CREATE,
    IFA_ADDRESS,
    IFA_LOCAL,
    IFF_UP,
    IFLA_ADDRESS,
    IFLA_IFNAME,
    IFLA_INFO_DATA,
    IFLA_INFO_KIND,
    IFLA_LINKINFO,
    IFLA_MASTER,
    IFLA_MTU,
    IFLA_NET_NS_PID,
    NLM_F_ACK,
    NLM_F_REQUEST,
    RTA_GATEWAY,
    RTM_DELLINK,
    RTM_GETADDR,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    VETH_INFO_PEER,
    Rtnl,
    ifinfomsg,
    nla,
    parse_attrs,
    u32,
)
from engine.network import hostsfiles, ipam
from engine.util.fsutil import atomic_write_json, file_lock, read_json

DEFAULT_NETWORK = "bridge"
PREDEFINED = ("bridge", "host", "none")
DEFAULT_MTU = 1500
CLONE_NEWNET = 0x40000000

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from engine.network import (
        links,  # imported where needed: only with --link, -p/-P or for clean-up
        portmap,
    )
    from engine.network.topology import BridgeInfo


# ---- data passed between modules ---------------------------------------------------------------


@dataclass
class NetworkSpec:
    """What the user asked for with run/create flags.

    mode: "bridge" (default), "none", "host", "container:<name|id>", or a named network.
    env: the container's final environment (kept so that containers linking to it get ALIAS_ENV_*).
    """

    mode: str = DEFAULT_NETWORK
    ip: str | None = None  # --ip
    publish: list[str] = field(default_factory=list)  # -p
    publish_all: bool = False  # -P
    links: list[str] = field(default_factory=list)  # --link name[:alias]
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    add_hosts: list[str] = field(default_factory=list)  # --add-host name:ip
    hostname: str | None = None  # -h (defaults to the short ID)
    env: list[str] = field(default_factory=list)
    mtu: int | None = None


@dataclass
class Endpoint:
    """One interface of a container on one network."""

    network: str
    network_id: str
    bridge: str
    ifname: str  # eth0, eth1, ...
    ip: str
    prefixlen: int
    gateway: str
    mac: str
    host_veth: str
    mtu: int = DEFAULT_MTU
    internal: bool = False  # a network made with --internal: no default route through it
    aliases: list[str] = field(default_factory=list)  # more names peers on this network know it by


@dataclass
class NetworkPlan:
    """Everything decided before the container's process exists."""

    container_id: str
    name: str
    mode: str
    hostname: str
    endpoints: list[Endpoint] = field(default_factory=list)
    ports: list[portmap.PortMapping] = field(default_factory=list)
    hosts: str = ""  # /etc/hosts content ("" for container:<x>, which shares the other's files)
    resolv_conf: str = ""
    link_env: list[str] = field(default_factory=list)  # to append to the container's environment
    links: list[tuple[str, str]] = field(default_factory=list)  # (linked name, alias)

    def settings(self) -> dict[str, Any]:
        """Docker's `NetworkSettings` shape, for ContainerRecord.network and `inspect`."""
        ports: dict[str, list[dict[str, str]] | None] = {}
        for m in self.ports:
            ports.setdefault(f"{m.container_port}/{m.proto}", []).append(  # type: ignore[union-attr]
                {"HostIp": m.host_ip, "HostPort": str(m.host_port)}
            )
        primary = self.endpoints[0] if self.endpoints else None
        return {
            "NetworkMode": self.mode,
            "IPAddress": primary.ip if primary else "",
            "IPPrefixLen": primary.prefixlen if primary else 0,
            "MacAddress": primary.mac if primary else "",
            "Gateway": primary.gateway if primary else "",
            "HostVeth": primary.host_veth if primary else "",
            "Bridge": primary.bridge if primary else "",
            "Ports": ports,
            "Links": [f"/{name}:/{self.name}/{alias}" for name, alias in self.links] or None,
            "Networks": {
                ep.network: {
                    "NetworkID": ep.network_id,
                    "IPAddress": ep.ip,
                    "IPPrefixLen": ep.prefixlen,
                    "Gateway": ep.gateway,
                    "MacAddress": ep.mac,
                }
                for ep in self.endpoints
            },
        }


@dataclass
class NetworkInfo:
    """A network (a bridge): the default one, named `bridge`, or one made by `network create`."""

    name: str
    id: str
    bridge: str
    subnet: str
    gateway: str
    created: str
    internal: bool = False
    default: bool = False
    labels: dict[str, str] = field(default_factory=dict)  # Docker's network labels, set at create

    @property
    def prefixlen(self) -> int:
        return int(self.subnet.split("/")[1])

    @property
    def pool(self) -> ipam.Pool:
        return ipam.Pool(self.id, ipam.IPv4Network(self.subnet), ipam.IPv4Address(self.gateway))


# ---- paths and records ---------------------------------------------------------------------------


def _networks_dir(config: EngineConfig) -> Path:
    return config.network_dir / "networks"


def endpoints_dir(config: EngineConfig) -> Path:
    return config.network_dir / "endpoints"


def _record_path(config: EngineConfig, container_id: str) -> Path:
    return endpoints_dir(config) / f"{container_id}.json"


def _now() -> str:
    from datetime import UTC, datetime  # only when a network is created

    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _load_network(config: EngineConfig, name: str) -> NetworkInfo | None:
    data = read_json(_networks_dir(config) / f"{name}.json")
    return NetworkInfo(**data) if data else None


def _save_network(config: EngineConfig, net: NetworkInfo) -> None:
    atomic_write_json(_networks_dir(config) / f"{net.name}.json", asdict(net))


def _all_networks(config: EngineConfig) -> list[NetworkInfo]:
    d = _networks_dir(config)
    if not d.is_dir():
        return []
    return [NetworkInfo(**read_json(p)) for p in sorted(d.glob("*.json"))]


def _load_record(config: EngineConfig, container_id: str) -> dict | None:
    return read_json(_record_path(config, container_id))


def _save_record(config: EngineConfig, rec: dict) -> None:
    ipam.store_json(_record_path(config, rec["container_id"]), rec)


def all_records(config: EngineConfig) -> list[dict]:
    """Every endpoint record of this root, read afresh."""
    d = endpoints_dir(config)
    out = []
    for p in d.glob("*.json") if d.is_dir() else ():
        try:
            rec = read_json(p)
        except ValueError:
            continue  # unreadable: treated as absent
        if rec:
            out.append(rec)
    return out


def _endpoints_of(rec: dict) -> list[Endpoint]:
    return [Endpoint(**ep) for ep in rec.get("endpoints", [])]


def veth_name(container_id: str, network_id: str) -> str:
    """Docker's `veth` + 7 hex; derived (not random) so a crashed engine's leftovers can be found.

    The IDs are random already: a CRC spreads them as well as a cryptographic hash would here, and
    zlib is loaded anyway (hashlib would add ~4 ms of OpenSSL to every monitor's start).
    """
    return "veth" + f"{zlib.crc32(f'{container_id}/{network_id}'.encode()):08x}"[:7]


# ---- choosing networks ---------------------------------------------------------------------------


def _our_bridges(config: EngineConfig) -> list[str]:
    return [config.bridge_name] + [n.bridge for n in _all_networks(config) if n.bridge != config.bridge_name]


def _used_subnets(config: EngineConfig, exclude: str | None = None) -> list[ipam.IPv4Network]:
    """The host's networks plus this root's other networks (not yet all have a bridge)."""
    used = ipam.host_networks(exclude_ifnames=_our_bridges(config))
    used += [ipam.IPv4Network(n.subnet) for n in _all_networks(config) if n.name != exclude]
    return used


def default_network(config: EngineConfig) -> NetworkInfo:
    """The `bridge` network: its subnet chosen once, persisted, and re-checked against the host.

    `config.bridge_ip` (--bip) wins. A persisted subnet that the host has since started using is
    replaced, but only while no container holds an address in it. Call under `ipam.lock`.
    """
    current = _load_network(config, DEFAULT_NETWORK)
    if config.bridge_ip:
        subnet, gateway = ipam.parse_bridge_ip(config.bridge_ip)
        if current and current.subnet == str(subnet) and current.gateway == str(gateway):
            return current
        if current and ipam.in_use(config, current.pool):
            raise Conflict(
                f"the bridge IP changed to {config.bridge_ip} while containers still use {current.subnet}: remove them first"
            )
        net = NetworkInfo(
            DEFAULT_NETWORK, current.id if current else os.urandom(32).hex(), config.bridge_name,
            str(subnet), str(gateway), _now(), default=True,
        )
        _save_network(config, net)
        return net
    if current is not None and current.bridge == config.bridge_name:
        if _bridge_missing(current.bridge) and not ipam.in_use(config, current.pool):
            used = _used_subnets(config, exclude=DEFAULT_NETWORK)
            if ipam.overlaps_any(ipam.IPv4Network(current.subnet), used):
                current = None  # the host now uses it: choose again
        if current is not None:
            return current
    with file_lock(ipam.HOST_LOCK):
        collect_abandoned_bridges(config)
        subnet = ipam.choose_subnet(_used_subnets(config, exclude=DEFAULT_NETWORK))
        net = NetworkInfo(
            DEFAULT_NETWORK, os.urandom(32).hex(), config.bridge_name, str(subnet),
            str(ipam.default_gateway(subnet)), _now(), default=True,
        )
        _save_network(config, net)
        # Hold the subnet on the host at once, so a concurrent engine sees it as used.
        _with_iproute(lambda ipr: _ensure_bridge(ipr, net, config))
    return net


def collect_abandoned_bridges(config: EngineConfig) -> list[str]:
    """Delete other engines' idle bridges: any whose root is gone, and default bridges whose root
    holds no container at all.

    Each default bridge takes a /16 of a small pool (15 of them, then 16 /20s); test suites that
    make a fresh root per test would otherwise exhaust it. A bridge qualifies only if its ifalias
    says dockui made it, it has no port, and its root has no endpoint record; such a root chooses
    its subnet again (and re-creates the bridge) on its next container. Call under HOST_LOCK.
    """
    removed = []
    base = Path("/sys/class/net")
    for entry in base.iterdir() if base.is_dir() else ():
        try:
            alias = (entry / "ifalias").read_text().strip()
        except OSError:
            continue
        if not alias.startswith(ALIAS_PREFIX) or not (entry / "bridge").is_dir():
            continue
        table, _, rest = alias[len(ALIAS_PREFIX) :].partition(":")
        net_name, _, root = rest.partition(":")
        if not root or Path(root) == config.root or any((entry / "brif").iterdir()):
            continue
        if Path(root).exists():
            if net_name != DEFAULT_NETWORK:
                continue  # a named network lives as long as its root: its subnet is its identity
            endpoints = Path(root) / "network" / "endpoints"
            if endpoints.is_dir() and any(endpoints.glob("*.json")):
                continue
        _with_iproute(lambda ipr, name=entry.name: _delete_link(ipr, name))
        if table.startswith("dockui") and not Path(root).exists():
            import subprocess  # rare: only for an abandoned root's table

            subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True)  # noqa: S603,S607
        removed.append(entry.name)
    return removed


def _bridge_missing(name: str) -> bool:
    return not Path("/sys/class/net", name).exists()


def get_network(config: EngineConfig, name: str) -> NetworkInfo:
    """A network by name, ID or ID prefix (`bridge` is created on first use)."""
    if name == DEFAULT_NETWORK:
        with ipam.lock(config):
            return default_network(config)
    net = _load_network(config, name)
    if net:
        return net
    matches = [n for n in _all_networks(config) if n.id.startswith(name)] if len(name) >= 3 else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise NotFound(f"network {name} is ambiguous ({len(matches)} matches)")
    raise NotFound(f"network {name} not found")


# ---- netlink helpers -----------------------------------------------------------------------------


def _iproute():
    from pyroute2 import IPRoute

    return IPRoute(groups=0)


def _with_iproute(fn):  # noqa: ANN001, ANN202
    """Run fn(IPRoute) and turn netlink refusals into errors meant for people."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        with _iproute() as ipr:
            return fn(ipr)
    except NetlinkError as exc:
        if exc.code == errno.EPERM:
            raise NeedsRoot("changing the host's network (bridges, veths) needs root: run it with sudo") from None
        raise DockuiError(f"netlink: {exc}") from None


_libc = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _netns_socket(
    pid: int, raw: bool = False, ifnames: list[str] = ()  # type: ignore[assignment]
) -> tuple[_socket.socket, list[int]]:
    """A netlink socket living in `pid`'s network namespace, and the ifindexes of `ifnames` there.

    The socket's namespace is fixed when it is created, so this thread visits the namespace just
    long enough to create it (setns affects only the calling thread for a net namespace).
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise DockuiError(f"process {pid} is gone: cannot configure its network") from None
        try:
            _setns(target)
            try:
                kind = _socket.SOCK_RAW if raw else _socket.SOCK_DGRAM
                sock = _socket.socket(_socket.AF_NETLINK, kind | _socket.SOCK_CLOEXEC, 0)
                return sock, [_socket.if_nametoindex(name) for name in ifnames]
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)


def _netns_iproute(pid: int):  # noqa: ANN202
    from pyroute2 import IPRoute

    return IPRoute(fileno=_netns_socket(pid)[0].detach(), groups=0)


def _link_index(ipr, name: str) -> int | None:  # noqa: ANN001
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        return ipr.link("get", ifname=name)[0]["index"]
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise


ALIAS_PREFIX = "dockui:"


def _ensure_bridge(ipr, net: NetworkInfo, config: EngineConfig) -> int:  # noqa: ANN001
    """The bridge's ifindex; created with its gateway address and brought up if missing.

    The bridge's ifalias names its engine root, so another engine can tell an abandoned bridge
    (root gone or without containers) from a live one and give its subnet back (see
    `collect_abandoned_bridges`).
    """
    from pyroute2.netlink.exceptions import NetlinkError

    index = _link_index(ipr, net.bridge)
    if index is None:
        try:
            ipr.link("add", ifname=net.bridge, kind="bridge", mtu=DEFAULT_MTU)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
        index = _link_index(ipr, net.bridge)
        if index is None:
            raise DockuiError(f"could not create bridge {net.bridge}")
        from engine.network import portmap

        alias = f"{ALIAS_PREFIX}{portmap.table_name(config)}:{net.name}:{config.root}"
        if len(alias) <= 255:
            ipr.link("set", index=index, ifalias=alias)
    have = {(a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=2)}
    if (net.gateway, net.prefixlen) not in have:
        try:
            ipr.addr("add", index=index, address=net.gateway, prefixlen=net.prefixlen)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
    ipr.link("set", index=index, state="up")
    return index


def _delete_link(ipr, name: str) -> bool:  # noqa: ANN001
    from pyroute2.netlink.exceptions import NetlinkError

    index = _link_index(ipr, name)
    if index is None:
        return False
    try:
        ipr.link("del", index=index)
    except NetlinkError as exc:
        if exc.code != errno.ENODEV:
            raise
    return True


def _create_veth(rt: Rtnl, ep: Endpoint, bridge_index: int, pid: int) -> None:
    """One RTM_NEWLINK: host end on the bridge and up, peer created directly in `pid`'s netns."""
    mac = bytes.fromhex(ep.mac.replace(":", ""))
    peer = ifinfomsg() + nla(IFLA_IFNAME, ep.ifname.encode() + b"\0") + nla(IFLA_ADDRESS, mac)
    peer += nla(IFLA_MTU, u32(ep.mtu)) + nla(IFLA_NET_NS_PID, u32(pid))
    linkinfo = nla(IFLA_INFO_KIND, b"veth") + nla(IFLA_INFO_DATA, nla(VETH_INFO_PEER, peer))
    body = ifinfomsg(flags=IFF_UP, change=IFF_UP) + nla(IFLA_IFNAME, ep.host_veth.encode() + b"\0")
    body += nla(IFLA_MTU, u32(ep.mtu)) + nla(IFLA_MASTER, u32(bridge_index)) + nla(IFLA_LINKINFO, linkinfo)
    rt.request((RTM_NEWLINK, CREATE, body))


def _rt_delete_link(rt: Rtnl, name: str) -> bool:
    try:
        rt.request((RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, ifinfomsg() + nla(IFLA_IFNAME, name.encode() + b"\0")))
    except OSError as exc:
        if exc.errno in (errno.ENODEV, errno.ENOENT):
            return False
        raise
    return True


def _configure_inside(pid: int, endpoints: list[Endpoint]) -> None:
    """lo up; each eth<N> addressed and up; the default route via the first network's gateway that
    is not --internal (Docker programs no gateway for those: only their own subnet is reachable)."""
    sock, indexes = _netns_socket(pid, raw=True, ifnames=[ep.ifname for ep in endpoints])
    requests = [(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, ifinfomsg(1, IFF_UP, IFF_UP))]
    for ep, index in zip(endpoints, indexes, strict=True):
        packed = _socket.inet_aton(ep.ip)
        addr = struct.pack("=BBBBI", _socket.AF_INET, ep.prefixlen, 0, 0, index)
        requests.append((RTM_NEWADDR, CREATE, addr + nla(IFA_LOCAL, packed) + nla(IFA_ADDRESS, packed)))
        requests.append((RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, ifinfomsg(index, IFF_UP, IFF_UP)))
    routed = [ep for ep in endpoints if not ep.internal]
    if routed:
        # rtmsg: AF_INET, dst_len 0, src_len 0, tos 0, main table, proto boot, scope universe, unicast
        route = struct.pack("=BBBBBBBBI", _socket.AF_INET, 0, 0, 0, 254, 3, 0, 1, 0)
        requests.append((RTM_NEWROUTE, CREATE, route + nla(RTA_GATEWAY, _socket.inet_aton(routed[0].gateway))))
    with Rtnl(sock) as rt:
        rt.request(*requests)


def _bridge_ready(rt: Rtnl, ep: Endpoint) -> int | None:
    """The endpoint's bridge's ifindex if it exists, is up and holds its gateway address (sysfs +
    one small dump; the endpoint carries the network's bridge, gateway and prefix)."""
    base = Path("/sys/class/net", ep.bridge)
    try:
        index = int((base / "ifindex").read_text())
        if not int((base / "flags").read_text(), 16) & IFF_UP:
            return None
    except (OSError, ValueError):
        return None
    want = _socket.inet_aton(ep.gateway)
    found = None
    for msg in rt.dump(RTM_GETADDR, struct.pack("=BBBBI", _socket.AF_INET, 0, 0, 0, 0)):
        _family, prefixlen, _flags, _scope, idx = struct.unpack_from("=BBBBI", msg)
        if idx == index and prefixlen == ep.prefixlen:
            attrs = parse_attrs(msg, 8, {IFA_LOCAL})
            if bytes(attrs.get(IFA_LOCAL, b"")) == want:
                found = index  # the dump is read to its end: the socket serves the next request
    return found


def bring_up_loopback(pid: int) -> None:
    """`--network none`: the container gets only `lo`, up."""
    _configure_inside(pid, [])


# ---- prepare / attach / detach / release -----------------------------------------------------------


def _own_names(hostname: str, name: str, container_id: str) -> list[str]:
    return [hostname, name] if name and name != hostname else [hostname]


def _peer_entries(config: EngineConfig, rec: dict) -> list[tuple[str, str]]:
    """On user-defined networks containers find each other by name: one hosts line per peer."""
    mine = {ep["network"] for ep in rec.get("endpoints", []) if ep["network"] != DEFAULT_NETWORK}
    if not mine:
        return []
    entries = []
    for other in all_records(config):
        if other["container_id"] == rec["container_id"] or other.get("state") != "attached":
            continue
        for ep in other.get("endpoints", []):
            if ep["network"] in mine:
                entries.append((ep["ip"], " ".join(dict.fromkeys([other["name"], other["hostname"], *ep.get("aliases", [])]))))
    return entries


def _hosts_for(config: EngineConfig, rec: dict) -> str:
    eps = rec.get("endpoints", [])
    extra = [tuple(e) for e in rec.get("extra_hosts", [])] + _peer_entries(config, rec)
    return hostsfiles.hosts_content(
        eps[0]["ip"] if eps else None, _own_names(rec["hostname"], rec["name"], rec["container_id"]), extra
    )


def _refresh_peer_hosts(config: EngineConfig, networks: set[str], skip: str) -> None:
    """Rewrite the hosts files of running peers on user networks after a join or a leave."""
    networks = {n for n in networks if n != DEFAULT_NETWORK}
    if not networks:
        return
    for other in all_records(config):
        if other["container_id"] == skip or other.get("state") != "attached":
            continue
        if not networks & {ep["network"] for ep in other.get("endpoints", [])}:
            continue
        path = config.containers_dir / other["container_id"] / "hosts"
        if path.exists():
            hostsfiles.write_in_place(path, _hosts_for(config, other))


def _resolve_link(config: EngineConfig, text: str, network_name: str) -> links.LinkTarget:
    from engine.network import links

    name, alias = links.parse_link(text)
    matches = [r for r in all_records(config) if r["name"] == name]
    if not matches:
        matches = [r for r in all_records(config) if r["container_id"].startswith(name)]
    if len(matches) != 1:
        raise NotFound(f"could not get container for {name}" if not matches else f"{name} is ambiguous")
    rec = matches[0]
    eps = [ep for ep in rec.get("endpoints", []) if ep["network"] == network_name]
    if not eps:
        raise InvalidArgument(f"cannot link to {name}: it is not on network {network_name}")
    if rec.get("state") != "attached":
        raise Conflict(f"cannot link to a non running container: /{rec['name']}")
    return links.LinkTarget(
        name=rec["name"], alias=alias, ip=eps[0]["ip"], hostname=rec["hostname"],
        exposed_ports=rec.get("exposed_ports", []), env=rec.get("env", []),
    )


def _resolve_ports(config: EngineConfig, container_id: str, spec: NetworkSpec, exposed: list[str]) -> list[portmap.PortMapping]:
    """-p/-P: a free host port each, refusing one held by the host or another container of this root."""
    if not spec.publish and not spec.publish_all:
        return []
    from engine.network import (
        portmap,  # only with published ports: the module costs every monitor ~1.3 ms
    )

    requests = [r for text in spec.publish for r in portmap.parse_publish(text)]
    if spec.publish_all:
        requests += portmap.exposed_requests(exposed)
    taken = [
        portmap.PortMapping.from_dict(p)
        for r in (all_records(config) if requests else ())
        if r["container_id"] != container_id
        for p in r.get("ports", [])
    ]
    return portmap.resolve(requests, taken)


def prepare(
    config: EngineConfig,
    container_id: str,
    name: str,
    spec: NetworkSpec,
    exposed_ports: list[str] | dict | None = None,
) -> NetworkPlan:
    """Decide the container's network before it runs; idempotent for the same container.

    Raises Conflict for a busy host port or a taken --ip, InvalidArgument for bad flags, NotFound
    for an unknown network or link target. Nothing is changed in the kernel here.
    """
    mode = spec.mode or DEFAULT_NETWORK
    hostname = spec.hostname or container_id[:12]
    exposed = sorted(exposed_ports or [])
    extra = [hostsfiles.parse_add_host(h) for h in spec.add_hosts]
    host_resolv = hostsfiles.host_resolv_conf_text()
    plan = NetworkPlan(container_id, name, mode, hostname)
    if mode == "host":
        try:
            plan.hosts = Path("/etc/hosts").read_text()
        except OSError:
            plan.hosts = hostsfiles.hosts_content(None, [])
        plan.resolv_conf = host_resolv
        return plan
    plan.resolv_conf = hostsfiles.resolv_conf_content(host_resolv, spec.dns, spec.dns_search, spec.dns_options)
    if mode == "none":
        plan.hosts = hostsfiles.hosts_content(None, [], [e for e in extra if e[0] != "host-gateway"])
        return plan
    if mode.startswith("container:"):
        return plan  # shares the other container's namespace and files
    if spec.ip is not None and mode == DEFAULT_NETWORK:
        raise InvalidArgument("user specified IP address is supported on user defined networks only")
    with ipam.lock(config):
        net = get_network(config, mode)
        old = _load_record(config, container_id) or {}
        extra_eps = [Endpoint(**ep) for ep in old.get("endpoints", []) if ep["network"] != net.name]
        endpoints = []
        try:
            for index, (n, requested) in enumerate(
                [(net, spec.ip)] + [(get_network(config, ep.network), ep.ip) for ep in extra_eps]
            ):
                ip = ipam.allocate(config, n.pool, container_id, requested)
                endpoints.append(
                    Endpoint(
                        n.name, n.id, n.bridge, f"eth{index}", str(ip), n.prefixlen, n.gateway,
                        ipam.mac_for(ip), veth_name(container_id, n.id), spec.mtu or DEFAULT_MTU,
                        n.internal,
                    )
                )
            link_targets = [_resolve_link(config, text, net.name) for text in spec.links]
            ports = _resolve_ports(config, container_id, spec, exposed)
        except BaseException:
            if not old:
                for ep in endpoints:
                    ipam.release(config, get_network(config, ep.network).pool, container_id)
            raise
        # Docker's special --add-host value: the host as the container reaches it (the gateway)
        extra = [(endpoints[0].gateway if ip == "host-gateway" else ip, names) for ip, names in extra]
        if link_targets:
            from engine.network import links

            for target in link_targets:
                plan.link_env += links.link_env(name, target)
                extra.append(links.hosts_entry(target))
        plan.links = [(t.name, t.alias) for t in link_targets]
        plan.endpoints = endpoints
        plan.ports = ports
        rec = {
            "container_id": container_id,
            "name": name,
            "hostname": hostname,
            "mode": mode,
            "state": old.get("state", "prepared") if old.get("pid") else "prepared",
            "pid": old.get("pid"),
            "endpoints": [asdict(ep) for ep in endpoints],
            "ports": [p.to_dict() for p in ports],
            "links": [list(x) for x in plan.links],
            "extra_hosts": [list(e) for e in extra],
            "exposed_ports": exposed,
            "env": list(spec.env),
            "preparer": [os.getpid(), _start_ticks(os.getpid())],
        }
        _save_record(config, rec)
        plan.hosts = _hosts_for(config, {**rec, "state": "attached"})
    return plan


def attach(config: EngineConfig, plan: NetworkPlan, pid: int) -> None:
    """Plug the container (its namespaces already made, its process not yet exec'd) into its networks."""
    if not plan.endpoints:
        if plan.mode == "none":
            bring_up_loopback(pid)
        return
    created: list[str] = []
    try:
        # Shared: another engine collecting abandoned bridges (exclusive) waits until our veth is in.
        with file_lock(ipam.HOST_LOCK, shared=True), Rtnl() as rt:
            for ep in plan.endpoints:
                bridge_index = _bridge_ready(rt, ep)
                if bridge_index is None:  # first use, or someone took it down: the slow, careful path
                    net = _load_network(config, ep.network)
                    if net is None:
                        raise NotFound(f"network {ep.network} not found")
                    bridge_index = _with_iproute(lambda ipr, n=net: _ensure_bridge(ipr, n, config))
                if not _bridge_missing(ep.host_veth):
                    _rt_delete_link(rt, ep.host_veth)  # a leftover from a crash would block the name
                _create_veth(rt, ep, bridge_index, pid)
                created.append(ep.host_veth)
        _configure_inside(pid, plan.endpoints)
        if plan.ports:
            from engine.network import portmap

            with ipam.lock(config):
                portmap.install(config, plan.container_id, plan.endpoints[0].bridge, plan.endpoints[0].ip, plan.ports)
    except BaseException as exc:
        _undo(config, plan.container_id, created, bool(plan.ports))
        if isinstance(exc, DockuiError):
            raise
        raise DockuiError(f"network set-up failed: {exc}") from exc
    _record_attached(config, plan, pid)


def _record_attached(config: EngineConfig, plan: NetworkPlan, pid: int) -> None:
    """The endpoint record says "attached" (pid, namespace inode): what reconcile, links and peers'
    hosts files go by. Until then the record is "prepared", in flight while its preparer lives."""
    with ipam.lock(config):
        rec = _load_record(config, plan.container_id)
        if rec is not None:
            rec.update(state="attached", pid=pid, netns_inode=_netns_inode(pid))
            _save_record(config, rec)
            _refresh_peer_hosts(config, {ep.network for ep in plan.endpoints}, skip=plan.container_id)


def _undo(config: EngineConfig, container_id: str, veths: list[str], had_ports: bool) -> None:
    try:
        with Rtnl() as rt:
            for name in veths:
                _rt_delete_link(rt, name)
    except Exception:  # noqa: BLE001 - best effort while already failing
        pass
    if had_ports:
        from engine.network import portmap

        try:
            with ipam.lock(config):
                portmap.remove_rules(config, drop={container_id})
        except Exception:  # noqa: BLE001
            pass


def detach(config: EngineConfig, container_id: str, wait: bool = True) -> list[str]:
    """On stop: delete the veth pair(s) and port rules. The address stays reserved until `rm`.

    With wait=False, host veths of a dead namespace may still be going away when this returns:
    their names are returned, for the caller to see gone (wait_links_gone) after its other work.
    """
    with ipam.lock(config):
        rec = _load_record(config, container_id)
        if rec is None:
            return []
        return _detach_locked(config, rec, wait)


def _netns_alive(rec: dict) -> bool:
    """Does the container's process still hold the namespace we plugged?"""
    return bool(rec.get("pid")) and _netns_inode(rec["pid"]) == rec.get("netns_inode")


_unplugging: set[str] = set()  # host veths a background thread of this process is deleting


def _unplug_in_background(names: list[str]) -> None:
    """Delete the host ends of veth pairs whose container namespace is dead, on a thread.

    The kernel would delete them with the namespace, but only after a normal RCU grace period in
    its clean-up worker (5-10 ms after the exit here). An RTM_DELLINK of ours takes them off the
    host (name, sysfs, bridge port) within ~1.5 ms, but its acknowledgement waits for an RCU barrier
    (~15-20 ms): hence the thread, whose caller goes on and later waits for the names only. If the
    process ends before the thread runs, the kernel's own clean-up still deletes them.
    """
    import _thread  # not threading.Thread: its start() waits for the thread to run (~0.3 ms)

    rt = Rtnl()  # made here: the thread holds the GIL only from its start to its first syscall

    def run() -> None:
        try:
            for name in names:
                _rt_delete_link(rt, name)
        except OSError:
            pass  # best effort: the dead namespace takes them anyway
        finally:
            rt.sock.close()
            _unplugging.difference_update(names)

    _unplugging.update(names)
    _thread.start_new_thread(run, ())


def wait_links_gone(names: list[str], timeout: float = 2.0) -> None:
    """Wait until none of these interfaces exists on the host any more (at most `timeout` s)."""
    deadline = time.monotonic() + timeout
    for name in names:
        while not _bridge_missing(name) and time.monotonic() < deadline:
            time.sleep(0.0005)


def _detach_locked(config: EngineConfig, rec: dict, wait: bool = True, forget: bool = False) -> list[str]:
    """Veths, port rules and the record's state; `forget`: the caller deletes the record next.

    Host veths that an earlier detach(wait=False) of this process is deleting are not waited for
    here: that caller waits for them (monitor_finish, after its other work).
    """
    eps = _endpoints_of(rec)
    present = [ep.host_veth for ep in eps if not _bridge_missing(ep.host_veth)]
    going = [name for name in present if name in _unplugging]
    todo = [name for name in present if name not in _unplugging]
    started: list[str] = []
    if todo and (_netns_alive(rec) or not rec.get("netns_inode")):
        # A namespace still alive, or an unknown one (a crash before attach finished): undo it now.
        with Rtnl() as rt:
            for name in todo:
                _rt_delete_link(rt, name)
    elif todo:
        # The namespace is dead (or held by a container sharing it, which must lose it as with
        # Docker): the kernel is or would be deleting the pairs; get them off the host sooner.
        _unplug_in_background(todo)
        started = todo
    if rec.get("ports"):
        from engine.network import portmap

        portmap.remove_rules(config, drop={rec["container_id"]})
        if eps:
            mappings = [portmap.PortMapping.from_dict(p) for p in rec["ports"]]
            try:
                portmap.flush_udp_conntrack(eps[0].ip, mappings)
            except Exception:  # noqa: BLE001 - conntrack support missing: entries just time out
                pass
    was_attached = rec.get("state") == "attached"
    rec.update(state="detached", pid=None)
    if was_attached or not forget:  # peers' hosts files are rebuilt from the saved records
        _save_record(config, rec)
    if was_attached:
        _refresh_peer_hosts(config, {ep.network for ep in eps}, skip=rec["container_id"])
    if wait:
        wait_links_gone(started)
        return []
    return going + started


def release(config: EngineConfig, container_id: str) -> None:
    """On rm: detach, give the addresses back and forget the container."""
    with ipam.lock(config):
        rec = _load_record(config, container_id)
        if rec is None:
            return
        _detach_locked(config, rec, forget=True)
        for ep in _endpoints_of(rec):
            net = _load_network(config, ep.network)
            if net is not None:
                ipam.release(config, net.pool, container_id)
        _record_path(config, container_id).unlink(missing_ok=True)


def rename(config: EngineConfig, container_id: str, new_name: str) -> None:
    """`rename`: the topology and the peers' hosts files (user networks) follow the new name."""
    with ipam.lock(config):
        rec = _load_record(config, container_id)
        if rec is None:
            return
        rec["name"] = new_name
        _save_record(config, rec)
        path = config.containers_dir / container_id / "hosts"
        if rec.get("state") == "attached" and path.exists():
            hostsfiles.write_in_place(path, _hosts_for(config, rec))
        if rec.get("state") == "attached":
            _refresh_peer_hosts(config, {ep["network"] for ep in rec.get("endpoints", [])}, skip=container_id)


def reconcile(config: EngineConfig, live_ids: set[str] | list[str]) -> dict[str, list[str]]:
    """Undo what a crash left: veths and rules of containers that are not running, orphan veths on
    our bridges, and the records (and addresses) of containers whose directory is gone."""
    live = set(live_ids)
    report: dict[str, list[str]] = {"detached": [], "released": [], "veths": [], "rules": []}
    if not config.network_dir.exists():
        return report
    with ipam.lock(config):
        records = all_records(config)
        # A container being started right now (prepared, or attached but not yet "running" for the
        # caller) must not lose its veth to a concurrent reconcile.
        live |= {r["container_id"] for r in records if _in_flight(config, r)}
        keep_veths = set()
        for rec in records:
            cid = rec["container_id"]
            if cid in live:
                keep_veths |= {ep["host_veth"] for ep in rec.get("endpoints", [])}
                continue
            if rec.get("state") == "attached" or rec.get("ports"):
                _detach_locked(config, rec)
                report["detached"].append(cid)
            if not (config.containers_dir / cid).exists():
                for ep in _endpoints_of(rec):
                    net = _load_network(config, ep.network)
                    if net is not None:
                        ipam.release(config, net.pool, cid)
                _record_path(config, cid).unlink(missing_ok=True)
                report["released"].append(cid)
        bridges = [b for b in _our_bridges(config) if not _bridge_missing(b)]
        if bridges:
            with _iproute() as ipr:
                indexes = {_link_index(ipr, b) for b in bridges}
                for link in ipr.get_links():
                    name = link.get_attr("IFLA_IFNAME")
                    if link.get_attr("IFLA_MASTER") in indexes and name.startswith("veth") and name not in keep_veths:
                        _delete_link(ipr, name)
                        report["veths"].append(name)
        from engine.network import portmap

        removed = portmap.remove_rules(config, keep=live)
        if removed:
            report["rules"].append(str(removed))
    return report


PREPARE_GRACE_SECONDS = 120


def _netns_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def _in_flight(config: EngineConfig, rec: dict) -> bool:
    """Is this container's network in use whatever the caller believes (its process still holds
    the namespace we plugged, or prepare ran moments ago)?"""
    if rec.get("state") == "attached" and rec.get("pid"):
        return rec.get("netns_inode") is not None and _netns_inode(rec["pid"]) == rec.get("netns_inode")
    if rec.get("state") == "prepared":
        preparer = rec.get("preparer")
        if preparer:  # the process that prepared it (the container's monitor) is still at work
            return _start_ticks(preparer[0]) == preparer[1]
        try:
            age = time.time() - _record_path(config, rec["container_id"]).stat().st_mtime
        except OSError:
            return False
        return age < PREPARE_GRACE_SECONDS
    return False


def _start_ticks(pid: int) -> int | None:
    """A process's start time (field 22 of /proc/<pid>/stat), to tell it from a later one with its pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def remove_bridges(config: EngineConfig) -> list[str]:
    """Delete this root's bridges that have no port, and its nft table if empty (for a root that is
    being thrown away, e.g. at the end of a test; Docker keeps docker0, and so does a normal engine)."""
    from engine.network import portmap

    removed = []
    with ipam.lock(config):
        for name in _our_bridges(config):
            brif = Path("/sys/class/net", name, "brif")
            if brif.is_dir() and not any(brif.iterdir()):
                _with_iproute(lambda ipr, n=name: _delete_link(ipr, n))
                removed.append(name)
        portmap.remove_rules(config, keep={r["container_id"] for r in all_records(config)})
    return removed


# ---- named networks ------------------------------------------------------------------------------


def create_network(
    config: EngineConfig, name: str, subnet: str | None = None, gateway: str | None = None, internal: bool = False
) -> NetworkInfo:
    """`network create`: a bridge `br-<12 hex>` with its own subnet (chosen like Docker's if not given)."""
    if name in PREDEFINED:
        raise Conflict(f"network with name {name} already exists")
    if not name or not all(c.isalnum() or c in "_.-" for c in name) or not name[0].isalnum():
        raise InvalidArgument(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    with ipam.lock(config):
        if _load_network(config, name):
            raise Conflict(f"network with name {name} already exists")
        net_id = os.urandom(32).hex()
        with file_lock(ipam.HOST_LOCK):
            collect_abandoned_bridges(config)
            used = _used_subnets(config)
            if subnet:
                chosen = ipam.parse_subnet(subnet)
                clash = [str(u) for u in used if u.overlaps(chosen)]
                if clash:
                    raise Conflict(f"invalid pool request: pool {chosen} overlaps with {clash[0]} already in use")
            else:
                chosen = ipam.choose_subnet(used)
            gw = ipam.default_gateway(chosen)
            if gateway:
                try:
                    gw = ipam.IPv4Address(gateway)
                except ValueError:
                    raise InvalidArgument(f"invalid gateway {gateway!r}") from None
                if gw not in chosen or gw in (chosen.network_address, chosen.broadcast_address):
                    raise InvalidArgument(f"gateway {gw} is not a host address of subnet {chosen}")
            net = NetworkInfo(name, net_id, f"br-{net_id[:12]}", str(chosen), str(gw), _now(), internal)
            _save_network(config, net)
            try:
                _with_iproute(lambda ipr: _ensure_bridge(ipr, net, config))
            except BaseException:
                (_networks_dir(config) / f"{name}.json").unlink(missing_ok=True)
                raise
    events.network(config, "create", net.id, net.name)
    return net


def list_networks(config: EngineConfig) -> list[NetworkInfo]:
    """The networks of this root (the default `bridge` once chosen)."""
    return _all_networks(config)


def _containers_on(config: EngineConfig, net_name: str) -> list[dict]:
    return [r for r in all_records(config) if any(ep["network"] == net_name for ep in r.get("endpoints", []))]


def inspect_network(config: EngineConfig, name: str) -> dict[str, Any]:
    """Docker's `network inspect` shape, plus `Topology`: the live bridge read from netlink."""
    import hashlib  # `network inspect` only

    net = get_network(config, name)
    containers = {}
    for rec in _containers_on(config, net.name):
        for ep in rec["endpoints"]:
            if ep["network"] == net.name:
                containers[rec["container_id"]] = {
                    "Name": rec["name"],
                    "EndpointID": hashlib.sha256(f"{rec['container_id']}/{net.id}".encode()).hexdigest(),
                    "MacAddress": ep["mac"],
                    "IPv4Address": f"{ep['ip']}/{ep['prefixlen']}",
                    "IPv6Address": "",
                    "HostVeth": ep["host_veth"],
                    "State": rec.get("state", ""),
                }
    topo = [b.to_dict() for b in topology(config) if b.name == net.bridge]
    return {
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": net.subnet, "Gateway": net.gateway}]},
        "Internal": net.internal,
        "Attachable": False,
        "Containers": containers,
        "Options": {"com.docker.network.bridge.name": net.bridge},
        "Labels": {},
        "Topology": topo[0] if topo else None,
    }


def remove_network(config: EngineConfig, name: str) -> str:
    """`network rm`: refused while a container is connected; deletes the bridge."""
    if name in PREDEFINED:
        raise Conflict(f"{name} is a pre-defined network and cannot be removed")
    net = get_network(config, name)
    with ipam.lock(config):
        users = _containers_on(config, net.name)
        if users:
            raise Conflict(
                f"error while removing network: network {net.name} id {net.id} has active endpoints "
                f"({', '.join(r['name'] for r in users)})"
            )
        with _iproute() as ipr:
            _delete_link(ipr, net.bridge)
        ipam.drop_pool(config, net.pool)
        (_networks_dir(config) / f"{net.name}.json").unlink(missing_ok=True)
    events.network(config, "destroy", net.id, net.name)
    return net.name


def prune_networks(config: EngineConfig) -> list[str]:
    """`network prune`: remove every user network no container uses."""
    removed = []
    for net in _all_networks(config):
        if net.default or net.name in PREDEFINED:
            continue
        try:
            removed.append(remove_network(config, net.name))
        except Conflict:
            continue
    return removed


def _find_record(config: EngineConfig, container: str) -> dict:
    recs = all_records(config)
    exact = [r for r in recs if r["name"] == container or r["container_id"] == container]
    matches = exact or [r for r in recs if r["container_id"].startswith(container)]
    if len(matches) != 1:
        raise NotFound(f"No such container: {container}" if not matches else f"{container} is ambiguous")
    return matches[0]


def _pid_alive(pid: int | None) -> bool:
    return bool(pid) and Path(f"/proc/{pid}/ns/net").exists()


def connect(config: EngineConfig, network: str, container: str, ip: str | None = None, aliases: list[str] | None = None) -> Endpoint:
    """`network connect`: add an interface on `network`; plugged in now if the container runs."""
    net = get_network(config, network)
    with ipam.lock(config):
        rec = _find_record(config, container)
        if rec.get("mode") in ("host", "none") or str(rec.get("mode", "")).startswith("container:"):
            raise Conflict(f"container {rec['name']} does not use a bridge network")
        if any(ep["network"] == net.name for ep in rec.get("endpoints", [])):
            raise Conflict(f"endpoint with name {rec['name']} already exists in network {net.name}")
        cid = rec["container_id"]
        addr = ipam.allocate(config, net.pool, cid, ip)
        ep = Endpoint(
            net.name, net.id, net.bridge, f"eth{len(rec['endpoints'])}", str(addr), net.prefixlen, net.gateway,
            ipam.mac_for(addr), veth_name(cid, net.id), internal=net.internal, aliases=list(aliases or []),
        )
        running = rec.get("state") == "attached" and _pid_alive(rec.get("pid"))
        if running:
            try:
                with _iproute() as ipr:
                    bridge_index = _ensure_bridge(ipr, net, config)
                    _delete_link(ipr, ep.host_veth)
                    ipr.link(
                        "add", ifname=ep.host_veth, kind="veth", master=bridge_index, state="up",
                        peer={"ifname": ep.ifname, "net_ns_pid": rec["pid"], "address": ep.mac},
                    )
                with _netns_iproute(rec["pid"]) as nipr:
                    index = _link_index(nipr, ep.ifname)
                    nipr.addr("add", index=index, address=ep.ip, prefixlen=ep.prefixlen)
                    nipr.link("set", index=index, state="up")
            except BaseException:
                ipam.release(config, net.pool, cid)
                _with_iproute(lambda ipr: _delete_link(ipr, ep.host_veth))
                raise
        rec["endpoints"].append(asdict(ep))
        _save_record(config, rec)
        if running:
            path = config.containers_dir / cid / "hosts"
            if path.exists():
                hostsfiles.write_in_place(path, _hosts_for(config, rec))
            _refresh_peer_hosts(config, {net.name}, skip=cid)
    events.network(config, "connect", net.id, net.name, cid)
    return ep


def disconnect(config: EngineConfig, network: str, container: str) -> None:
    """`network disconnect`: remove the container's interface on `network` and free its address."""
    net = get_network(config, network)
    with ipam.lock(config):
        rec = _find_record(config, container)
        eps = [ep for ep in rec.get("endpoints", []) if ep["network"] == net.name]
        if not eps:
            raise NotFound(f"container {rec['name']} is not connected to network {net.name}")
        with _iproute() as ipr:
            for ep in eps:
                _delete_link(ipr, ep["host_veth"])
        ipam.release(config, net.pool, rec["container_id"])
        rec["endpoints"] = [ep for ep in rec["endpoints"] if ep["network"] != net.name]
        if rec.get("ports") and not rec["endpoints"]:
            from engine.network import portmap

            portmap.remove_rules(config, drop={rec["container_id"]})
            rec["ports"] = []
        _save_record(config, rec)
        _refresh_peer_hosts(config, {net.name}, skip=rec["container_id"])
    events.network(config, "disconnect", net.id, net.name, rec["container_id"])


def topology(config: EngineConfig) -> list[BridgeInfo]:
    """Every bridge of this root with its ports, read from netlink (see engine/network/topology.py)."""
    from engine.network import topology as topo

    return topo.read(config)
