"""Container networking: bridges, veth pairs, addresses, published ports, links, and the topology.

The life of a container's network, as the runtime drives it:
  prepare(config, id, name, spec, exposed_ports) -> NetworkPlan   at create/start, before the process:
      picks the network, allocates the address (IPAM), refuses busy host ports, builds the
      /etc/hosts and /etc/resolv.conf text and the link environment, and records it all in
      <root>/network/endpoints/<id>.json (the record topology and reconcile read).
  attach(config, plan, pid) -> NetworkAttachment   from spawn_container's on_namespaces_ready:
      creates the bridge if needed, a veth pair (host end `veth<7 hex>` on the bridge, the other
      end created directly inside the container's namespace as eth0), configures eth0 and lo from a
      netlink socket opened inside that namespace, and installs the DNAT rules.
  detach(config, id)    on stop: deletes the veth pair and the port rules (the address is kept).
  release(config, id)   on rm: detach, free the address, forget the record.
  reconcile(config, live_ids)  on engine start: undo what a crashed engine left behind.

Everything kernel-side goes through pyroute2 (netlink), imported inside functions only, so the
commands that do not touch the network never pay for it. State changes happen under one flock
per root (`ipam.lock`), so concurrent CLI/TUI processes agree.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import secrets
import socket
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine import hostsfiles, ipam, links, portmap
from engine.config import EngineConfig
from engine.errors import Conflict, DockuiError, InvalidArgument, NotFound
from engine.fsutil import atomic_write_json, file_lock, read_json

DEFAULT_NETWORK = "bridge"
PREDEFINED = ("bridge", "host", "none")
DEFAULT_MTU = 1500
CLONE_NEWNET = 0x40000000


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

    @property
    def needs_netns_setup(self) -> bool:
        return bool(self.endpoints)

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
class NetworkAttachment:
    """What attach() did: the host-side interfaces and how long it took."""

    container_id: str
    pid: int
    host_veths: list[str]
    host_ifindexes: list[int]
    seconds: float


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

    @property
    def prefixlen(self) -> int:
        return int(self.subnet.split("/")[1])

    @property
    def pool(self) -> ipam.Pool:
        return ipam.Pool(self.id, ipam.IPv4Network(self.subnet), ipam.IPv4Address(self.gateway))


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- paths and records ---------------------------------------------------------------------------


def _networks_dir(config: EngineConfig) -> Path:
    return config.network_dir / "networks"


def _endpoints_dir(config: EngineConfig) -> Path:
    return config.network_dir / "endpoints"


def _record_path(config: EngineConfig, container_id: str) -> Path:
    return _endpoints_dir(config) / f"{container_id}.json"


def _now() -> str:
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
    atomic_write_json(_record_path(config, rec["container_id"]), rec)


def _all_records(config: EngineConfig) -> list[dict]:
    d = _endpoints_dir(config)
    if not d.is_dir():
        return []
    out = []
    for p in d.glob("*.json"):
        rec = read_json(p)
        if rec:
            out.append(rec)
    return out


def _endpoints_of(rec: dict) -> list[Endpoint]:
    return [Endpoint(**ep) for ep in rec.get("endpoints", [])]


def veth_name(container_id: str, network_id: str) -> str:
    """Docker's `veth` + 7 hex; derived (not random) so a crashed engine's leftovers can be found."""
    return "veth" + hashlib.sha256(f"{container_id}/{network_id}".encode()).hexdigest()[:7]


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
            DEFAULT_NETWORK, current.id if current else secrets.token_hex(32), config.bridge_name,
            str(subnet), str(gateway), _now(), default=True,
        )
        _save_network(config, net)
        return net
    if current is not None and current.bridge == config.bridge_name:
        if not ipam.in_use(config, current.pool) and _bridge_missing(current.bridge):
            used = _used_subnets(config, exclude=DEFAULT_NETWORK)
            if ipam.overlaps_any(ipam.IPv4Network(current.subnet), used):
                current = None  # the host now uses it: choose again
        if current is not None:
            return current
    with file_lock(ipam.HOST_LOCK):
        subnet = ipam.choose_subnet(_used_subnets(config, exclude=DEFAULT_NETWORK))
        net = NetworkInfo(
            DEFAULT_NETWORK, secrets.token_hex(32), config.bridge_name, str(subnet),
            str(ipam.default_gateway(subnet)), _now(), default=True,
        )
        _save_network(config, net)
        # Hold the subnet on the host at once, so a concurrent engine sees it as used.
        _with_iproute(lambda ipr: _ensure_bridge(ipr, net))
    return net


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
    with _iproute() as ipr:
        return fn(ipr)


_libc = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _netns_socket(pid: int) -> socket.socket:
    """A netlink socket living in `pid`'s network namespace.

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
                return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, 0)
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)


def _netns_iproute(pid: int):  # noqa: ANN202
    from pyroute2 import IPRoute

    return IPRoute(fileno=_netns_socket(pid).detach(), groups=0)


def _link_index(ipr, name: str) -> int | None:  # noqa: ANN001
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        return ipr.link("get", ifname=name)[0]["index"]
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise


def _ensure_bridge(ipr, net: NetworkInfo) -> int:  # noqa: ANN001
    """The bridge's ifindex; created with its gateway address and brought up if missing."""
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


def bring_up_loopback(pid: int) -> None:
    """`--network none`: the container gets only `lo`, up."""
    with _netns_iproute(pid) as nipr:
        nipr.link("set", index=1, state="up")


# ---- prepare / attach / detach / release -----------------------------------------------------------


def _own_names(hostname: str, name: str, container_id: str) -> list[str]:
    return [hostname, name] if name and name != hostname else [hostname]


def _peer_entries(config: EngineConfig, rec: dict) -> list[tuple[str, str]]:
    """On user-defined networks containers find each other by name: one hosts line per peer."""
    mine = {ep["network"] for ep in rec.get("endpoints", []) if ep["network"] != DEFAULT_NETWORK}
    if not mine:
        return []
    entries = []
    for other in _all_records(config):
        if other["container_id"] == rec["container_id"] or other.get("state") != "attached":
            continue
        for ep in other.get("endpoints", []):
            if ep["network"] in mine:
                entries.append((ep["ip"], " ".join(dict.fromkeys([other["name"], other["hostname"]]))))
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
    for other in _all_records(config):
        if other["container_id"] == skip or other.get("state") != "attached":
            continue
        if not networks & {ep["network"] for ep in other.get("endpoints", [])}:
            continue
        path = config.containers_dir / other["container_id"] / "hosts"
        if path.exists():
            hostsfiles.write_in_place(path, _hosts_for(config, other))


def _resolve_link(config: EngineConfig, text: str) -> links.LinkTarget:
    name, alias = links.parse_link(text)
    matches = [r for r in _all_records(config) if r["name"] == name]
    if not matches:
        matches = [r for r in _all_records(config) if r["container_id"].startswith(name)]
    if len(matches) != 1:
        raise NotFound(f"could not get container for {name}" if not matches else f"{name} is ambiguous")
    rec = matches[0]
    eps = [ep for ep in rec.get("endpoints", []) if ep["network"] == DEFAULT_NETWORK]
    if not eps:
        raise InvalidArgument(f"cannot link to {name}: it is not on the default bridge network")
    if rec.get("state") != "attached":
        raise Conflict(f"cannot link to a non running container: /{rec['name']}")
    return links.LinkTarget(
        name=rec["name"], alias=alias, ip=eps[0]["ip"], hostname=rec["hostname"],
        exposed_ports=rec.get("exposed_ports", []), env=rec.get("env", []),
    )


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
        plan.hosts = hostsfiles.hosts_content(None, [], extra)
        return plan
    if mode.startswith("container:"):
        return plan  # shares the other container's namespace and files
    if spec.ip is not None and mode == DEFAULT_NETWORK:
        raise InvalidArgument("user specified IP address is supported on user defined networks only")
    if spec.links and mode != DEFAULT_NETWORK:
        pass  # Docker allows legacy links only on the default bridge; on user networks names resolve anyway
    net = get_network(config, mode)
    with ipam.lock(config):
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
                    )
                )
            link_targets = [_resolve_link(config, text) for text in spec.links]
            requests = [r for text in spec.publish for r in portmap.parse_publish(text)]
            if spec.publish_all:
                requests += portmap.exposed_requests(exposed)
            taken = [
                portmap.PortMapping.from_dict(p)
                for r in _all_records(config)
                if r["container_id"] != container_id
                for p in r.get("ports", [])
            ]
            ports = portmap.resolve(requests, taken)
        except BaseException:
            if not old:
                for ep in endpoints:
                    ipam.release(config, get_network(config, ep.network).pool, container_id)
            raise
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
        }
        _save_record(config, rec)
        plan.hosts = _hosts_for(config, {**rec, "state": "attached"})
    return plan


def attach(config: EngineConfig, plan: NetworkPlan, pid: int) -> NetworkAttachment:
    """Plug the container (its namespaces already made, its process not yet exec'd) into its networks."""
    start = time.perf_counter()
    if not plan.endpoints:
        if plan.mode == "none":
            bring_up_loopback(pid)
        return NetworkAttachment(plan.container_id, pid, [], [], time.perf_counter() - start)
    created: list[str] = []
    indexes: list[int] = []
    try:
        with _iproute() as ipr:
            for ep in plan.endpoints:
                net = get_network(config, ep.network) if ep.network != DEFAULT_NETWORK else None
                if net is None:
                    with ipam.lock(config):
                        net = default_network(config)
                bridge_index = _ensure_bridge(ipr, net)
                _delete_link(ipr, ep.host_veth)  # a leftover from a crash would block the name
                ipr.link(
                    "add", ifname=ep.host_veth, kind="veth", master=bridge_index, state="up", mtu=ep.mtu,
                    peer={"ifname": ep.ifname, "net_ns_pid": pid, "address": ep.mac, "mtu": ep.mtu},
                )
                created.append(ep.host_veth)
                indexes.append(_link_index(ipr, ep.host_veth) or 0)
        with _netns_iproute(pid) as nipr:
            nipr.link("set", index=1, state="up")
            for i, ep in enumerate(plan.endpoints):
                index = _link_index(nipr, ep.ifname)
                nipr.addr("add", index=index, address=ep.ip, prefixlen=ep.prefixlen)
                nipr.link("set", index=index, state="up")
                if i == 0:
                    nipr.route("add", dst="0.0.0.0/0", gateway=ep.gateway)
        if plan.ports:
            with ipam.lock(config):
                portmap.install(config, plan.container_id, plan.endpoints[0].bridge, plan.endpoints[0].ip, plan.ports)
    except BaseException as exc:
        _undo(config, plan.container_id, created, bool(plan.ports))
        if isinstance(exc, DockuiError):
            raise
        raise DockuiError(f"network set-up failed: {exc}") from exc
    with ipam.lock(config):
        rec = _load_record(config, plan.container_id)
        if rec is not None:
            rec.update(state="attached", pid=pid, host_ifindexes=indexes, netns_inode=_netns_inode(pid))
            _save_record(config, rec)
            _refresh_peer_hosts(config, {ep.network for ep in plan.endpoints}, skip=plan.container_id)
    return NetworkAttachment(plan.container_id, pid, created, indexes, time.perf_counter() - start)


def _undo(config: EngineConfig, container_id: str, veths: list[str], had_ports: bool) -> None:
    try:
        with _iproute() as ipr:
            for name in veths:
                _delete_link(ipr, name)
    except Exception:  # noqa: BLE001 - best effort while already failing
        pass
    if had_ports:
        try:
            with ipam.lock(config):
                portmap.remove_rules(config, drop={container_id})
        except Exception:  # noqa: BLE001
            pass


def detach(config: EngineConfig, container_id: str) -> None:
    """On stop: delete the veth pair(s) and port rules. The address stays reserved until `rm`."""
    with ipam.lock(config):
        rec = _load_record(config, container_id)
        if rec is None:
            return
        _detach_locked(config, rec)


def _detach_locked(config: EngineConfig, rec: dict) -> None:
    eps = _endpoints_of(rec)
    if eps and any(not _bridge_missing(ep.host_veth) for ep in eps):
        with _iproute() as ipr:
            for ep in eps:
                _delete_link(ipr, ep.host_veth)
    if rec.get("ports"):
        portmap.remove_rules(config, drop={rec["container_id"]})
    was_attached = rec.get("state") == "attached"
    rec.update(state="detached", pid=None)
    _save_record(config, rec)
    if was_attached:
        _refresh_peer_hosts(config, {ep.network for ep in eps}, skip=rec["container_id"])


def release(config: EngineConfig, container_id: str) -> None:
    """On rm: detach, give the addresses back and forget the container."""
    with ipam.lock(config):
        rec = _load_record(config, container_id)
        if rec is None:
            return
        _detach_locked(config, rec)
        for ep in _endpoints_of(rec):
            net = _load_network(config, ep.network)
            if net is not None:
                ipam.release(config, net.pool, container_id)
        _record_path(config, container_id).unlink(missing_ok=True)


def ports_of(config: EngineConfig, container_id: str) -> list[portmap.PortMapping]:
    """The published ports in force for a container (for `dockui port`)."""
    rec = _load_record(config, container_id) or {}
    return [portmap.PortMapping.from_dict(p) for p in rec.get("ports", [])]


def reconcile(config: EngineConfig, live_ids: set[str] | list[str]) -> dict[str, list[str]]:
    """Undo what a crash left: veths and rules of containers that are not running, orphan veths on
    our bridges, and the records (and addresses) of containers whose directory is gone."""
    live = set(live_ids)
    report: dict[str, list[str]] = {"detached": [], "released": [], "veths": [], "rules": []}
    if not config.network_dir.exists():
        return report
    with ipam.lock(config):
        records = _all_records(config)
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
        try:
            age = time.time() - _record_path(config, rec["container_id"]).stat().st_mtime
        except OSError:
            return False
        return age < PREPARE_GRACE_SECONDS
    return False


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
        net_id = secrets.token_hex(32)
        with file_lock(ipam.HOST_LOCK):
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
                _with_iproute(lambda ipr: _ensure_bridge(ipr, net))
            except BaseException:
                (_networks_dir(config) / f"{name}.json").unlink(missing_ok=True)
                raise
    return net


def list_networks(config: EngineConfig) -> list[NetworkInfo]:
    """The networks of this root (the default `bridge` once chosen)."""
    return _all_networks(config)


def _containers_on(config: EngineConfig, net_name: str) -> list[dict]:
    return [r for r in _all_records(config) if any(ep["network"] == net_name for ep in r.get("endpoints", []))]


def inspect_network(config: EngineConfig, name: str) -> dict[str, Any]:
    """Docker's `network inspect` shape, plus `Topology`: the live bridge read from netlink."""
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
    recs = _all_records(config)
    exact = [r for r in recs if r["name"] == container or r["container_id"] == container]
    matches = exact or [r for r in recs if r["container_id"].startswith(container)]
    if len(matches) != 1:
        raise NotFound(f"No such container: {container}" if not matches else f"{container} is ambiguous")
    return matches[0]


def _pid_alive(pid: int | None) -> bool:
    return bool(pid) and Path(f"/proc/{pid}/ns/net").exists()


def connect(config: EngineConfig, network: str, container: str, ip: str | None = None) -> Endpoint:
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
            ipam.mac_for(addr), veth_name(cid, net.id),
        )
        running = rec.get("state") == "attached" and _pid_alive(rec.get("pid"))
        if running:
            try:
                with _iproute() as ipr:
                    bridge_index = _ensure_bridge(ipr, net)
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
            portmap.remove_rules(config, drop={rec["container_id"]})
            rec["ports"] = []
        _save_record(config, rec)
        _refresh_peer_hosts(config, {net.name}, skip=rec["container_id"])


# ---- topology ------------------------------------------------------------------------------------


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


def _dump_links_and_addrs() -> tuple[list[_Link], dict[int, list[str]]]:
    """One RTM_GETLINK dump and one RTM_GETADDR dump of the host namespace."""
    out = []
    with _iproute() as ipr:
        for msg in ipr.get_links():
            stats = msg.get_attr("IFLA_STATS64") or {}
            out.append(
                _Link(
                    msg["index"], msg.get_attr("IFLA_IFNAME"), msg.get_attr("IFLA_MASTER") or 0,
                    msg.get_attr("IFLA_LINK") or 0, msg.get_attr("IFLA_OPERSTATE") or "", msg.get_attr("IFLA_MTU") or 0,
                    msg.get_attr("IFLA_ADDRESS") or "", stats.get("rx_bytes", 0), stats.get("tx_bytes", 0),
                    stats.get("rx_packets", 0), stats.get("tx_packets", 0),
                )
            )
        addrs: dict[int, list[str]] = {}
        for a in ipr.get_addr(family=2):
            addrs.setdefault(a["index"], []).append(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
    return out, addrs


def topology(config: EngineConfig) -> list[BridgeInfo]:
    """Every bridge of this root with its ports, from one link dump and one address dump.

    Container IDs/names and eth0 addresses come from the endpoint records, matched by host veth
    name, so no container namespace is entered (cheap enough for a 1 Hz refresh with hundreds of ports).
    """
    networks = {n.bridge: n for n in _all_networks(config)}
    if config.bridge_name not in networks:
        networks[config.bridge_name] = NetworkInfo(DEFAULT_NETWORK, "", config.bridge_name, "", "", "", default=True)
    by_veth: dict[str, tuple[dict, dict]] = {}
    for rec in _all_records(config):
        for ep in rec.get("endpoints", []):
            by_veth[ep["host_veth"]] = (rec, ep)
    links_, addrs = _dump_links_and_addrs()
    bridges: dict[int, BridgeInfo] = {}
    for link in links_:
        if link.name in networks:
            net = networks[link.name]
            bridges[link.index] = BridgeInfo(
                link.name, net.name, link.index, link.operstate, link.mtu, link.mac,
                addrs.get(link.index, []), net.subnet,
            )
    for link in links_:
        bridge = bridges.get(link.master)
        if bridge is None:
            continue
        rec, ep = by_veth.get(link.name, ({}, {}))
        bridge.ports.append(
            PortInfo(
                link.name, link.index, link.peer_index, rec.get("container_id", ""), rec.get("name", ""),
                ep.get("ip", ""), ep.get("mac", ""), link.operstate,
                link.rx_bytes, link.tx_bytes, link.rx_packets, link.tx_packets,
            )
        )
    return sorted(bridges.values(), key=lambda b: (b.network != DEFAULT_NETWORK, b.name))
