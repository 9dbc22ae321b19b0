"""Networks: the typed calls the front ends make (list with filters, inspect, create, remove,
connect, disconnect, prune), each on engine.network (networks: named networks; endpoint: a
container's interfaces; records: what is on disk; topology: the live read), which owns the bridges,
addresses and records. This module checks the typed arguments and presents networks in Docker's
shape; pyroute2 is loaded only by the calls that touch the kernel.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass, field, replace

from engine.config import EngineConfig
from engine.container.pending_networks import PendingNetwork, pending_networks
from engine.container.pending_networks import parse_links as parse_links  # the front ends' link parser
from engine.container.state import PENDING_NETWORKS
from engine.errors import Conflict, InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any

    from engine.api.prune import PruneFilter
    from engine.container.state import ContainerRecord
    from engine.network.ipamconfig import SubnetRequest
    from engine.network.records import NetworkInfo

NETWORK_FILTER_KEYS = ("dangling", "driver", "id", "label", "name", "scope", "type")
BUILTIN = ("bridge", "host", "none")
# moby checks no alias's characters (compose aliases a container `--test-service` when its service
# is so named); only a name no DNS query can carry is refused: empty, whitespace, control characters.
ENDPOINT_LINKS = "EndpointLinks"  # HostConfig keys: the primary endpoint's Links and LinkLocalIPs, read at every start
ENDPOINT_LINK_LOCAL = "EndpointLinkLocalIPs"
_ALIAS_RE = re.compile(r"^[^\s\x00-\x1f\x7f]{1,255}$")


def pseudo_id(name: str) -> str:
    """A stable ID for `host` and `none` (and `bridge` before its subnet is chosen): they have no record."""
    return hashlib.sha256(f"dockui-network-{name}".encode()).hexdigest()


@dataclass(frozen=True)
class CreateNetwork:
    """Docker's network create body, as dockui supports it (bridge driver; one IPv4 subnet and,
    with `ipv6`, one IPv6 subnet; `configs` are the IPAM configs: subnet, gateway, IPRange,
    AuxiliaryAddresses)."""

    name: str
    subnet: str | None = None
    gateway: str | None = None
    internal: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    check_duplicate: bool = True
    configs: tuple[SubnetRequest, ...] = ()
    ipv6: bool = False


@dataclass(frozen=True)
class NetworkFilter:
    """Docker's network list filters: values of one key OR, keys AND. `name` and `id` match by
    substring/prefix as Docker's do; type is `builtin` or `custom`; dangling=true: no container."""

    wanted: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def parse(cls, pairs: Iterable[tuple[str, str]]) -> NetworkFilter:
        wanted: dict[str, list[str]] = {}
        for key, value in pairs:
            if key not in NETWORK_FILTER_KEYS:
                raise InvalidArgument(f"invalid filter '{key}'")
            if key == "type" and value not in ("builtin", "custom"):
                raise InvalidArgument(f"invalid filter: 'type'='{value}'")
            if key == "dangling" and value.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid filter 'dangling={value}'")
            wanted.setdefault(key, []).append(value)
        return cls(tuple((k, tuple(v)) for k, v in sorted(wanted.items())))

    def matches(self, doc: dict[str, Any]) -> bool:
        return all(self._matches(key, values, doc) for key, values in self.wanted)

    @staticmethod
    def _matches(key: str, values: tuple[str, ...], doc: dict[str, Any]) -> bool:
        if key == "name":
            return any(v in doc["Name"] for v in values)
        if key == "id":
            return any(doc["Id"].startswith(v) for v in values)
        if key == "driver":
            return doc["Driver"] in values
        if key == "scope":
            return doc["Scope"] in values
        if key == "type":
            return ("builtin" if doc["Name"] in BUILTIN else "custom") in values
        if key == "dangling":
            dangling = doc["Name"] not in BUILTIN and not doc["Containers"]
            return any(dangling == (v.lower() in ("true", "1")) for v in values)
        labels = doc.get("Labels") or {}
        return all(k in labels and (not sep or labels[k] == v) for k, sep, v in (x.partition("=") for x in values))


def _document(net: NetworkInfo | None, name: str, containers: dict[str, Any]) -> dict[str, Any]:
    """Docker's network object (as list and inspect show it)."""
    builtin = name in BUILTIN
    driver = "bridge" if name == "bridge" or not builtin else name
    ipam_config = net.ipam_config() if net else []
    return {
        "Name": name,
        "Id": net.id if net else pseudo_id(name),
        "Created": net.created if net else "0001-01-01T00:00:00Z",
        "Scope": "local",
        "Driver": driver,
        "EnableIPv6": bool(net and net.ipv6),
        "IPAM": {"Driver": "default", "Options": None, "Config": ipam_config},
        "Internal": bool(net and net.internal),
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers,
        "Options": _options(net, name),
        "Labels": dict(net.labels) if net else {},
    }


def list_networks(config: EngineConfig, network_filter: NetworkFilter | None = None) -> list[dict[str, Any]]:
    """Docker's network list: the built-in three, then this root's networks by name."""
    from engine.network import networks, records

    nets = {n.name: n for n in networks.list_networks(config)}
    users: dict[str, dict[str, Any]] = {}
    for rec in records.all_records(config):
        for endpoint in rec.endpoints:
            users.setdefault(endpoint.network, {})[rec.container_id] = {"Name": rec.name}
    docs = [_document(nets.pop(name, None), name, users.get(name, {})) for name in BUILTIN]
    docs += [_document(net, net.name, users.get(net.name, {})) for net in sorted(nets.values(), key=lambda n: n.name)]
    flt = network_filter or NetworkFilter()
    return [doc for doc in docs if flt.matches(doc)]


def inspect(config: EngineConfig, name: str) -> dict[str, Any]:
    """Docker's network inspect document (with dockui's live `Topology` of the bridge)."""
    if name in ("host", "none"):
        return _document(None, name, {})
    from engine.network import networks, topology

    live = topology.inspect_network(config, name)  # the endpoints and the bridge, read from the kernel
    net = networks.get_network(config, live["Id"])  # by its full ID: a name may be another network's ID
    return {**_document(net, net.name, live["Containers"]), "Topology": live["Topology"]}


def _options(net: NetworkInfo | None, name: str) -> dict[str, str]:
    """Driver options as Docker reports them: the default network names its bridge; a user network
    shows only options it was created with (dockui takes none), so a client comparing its own
    options with an existing network's (docker-compose does) finds no change. dockui's bridge name
    is in `Topology`."""
    return {"com.docker.network.bridge.name": net.bridge} if net is not None and name == "bridge" else {}


def resolve(config: EngineConfig, name: str) -> NetworkInfo:
    if name in ("host", "none"):
        raise Conflict(f"{name} is a pre-defined network: it has no bridge")
    from engine.network import networks

    return networks.get_network(config, name)


def create(config: EngineConfig, spec: CreateNetwork) -> NetworkInfo:
    """A bridge network; Conflict if the name exists (Docker's CheckDuplicate is always on)."""
    from engine.network import networks, records

    net = networks.create_network(config, spec.name, subnet=spec.subnet, gateway=spec.gateway, internal=spec.internal,
                                  configs=spec.configs, ipv6=spec.ipv6)
    if spec.labels:
        from engine.network import ipam

        net = replace(net, labels=dict(spec.labels))
        with ipam.lock(config):
            records.save_network(config, net)
    return net


def remove(config: EngineConfig, name: str) -> str:
    from engine.network import networks

    return networks.remove_network(config, name)


def prune(config: EngineConfig, filters: PruneFilter | None = None) -> list[str]:
    """Every unused user network the filters (until, label, label!) let go."""
    from engine.api.prune import log_prune
    from engine.network import networks

    selected = None if filters is None else (lambda net: filters.selects_created(net.created, net.labels))
    removed = networks.prune_networks(config, selected)
    log_prune(config, "network", 0)  # moby reports no bytes for networks
    return removed


@dataclass(frozen=True)
class Connection:
    """A container joining a network (Docker's EndpointConfig): its addresses there (else the
    next free ones), its MAC there (else one derived from its IPv4 address), aliases (the extra
    names its peers on that network resolve to it through the embedded DNS) and links ((linked
    container, alias): names only this container resolves there, Docker's links on a user-defined
    network)."""

    network: str
    container: str
    ipv4_address: str | None = None
    aliases: tuple[str, ...] = ()
    ipv6_address: str | None = None
    mac_address: str | None = None
    links: tuple[tuple[str, str], ...] = ()
    link_local_ips: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for alias in self.aliases:
            if not _ALIAS_RE.match(alias):
                raise InvalidArgument(f"invalid alias {alias!r}: whitespace and control characters are not allowed")
        from engine.network import ipam

        if self.ipv4_address is not None:
            ipam.parse_static(self.ipv4_address, 4)
        if self.ipv6_address is not None:
            ipam.parse_static(self.ipv6_address, 6)
        if self.mac_address is not None:
            object.__setattr__(self, "mac_address", ipam.parse_mac(self.mac_address))
        object.__setattr__(self, "link_local_ips", tuple(ipam.parse_link_local(self.link_local_ips)))


def _not_yet_started(config: EngineConfig, network: str, container: str) -> str | None:
    """The ID of a created container that never ran, when `network` is its primary one: it has no
    endpoint until its first start, its network and aliases live in its HostConfig (NetworkMode,
    NetworkAliases) meanwhile. Compose disconnects and reconnects such a container to give it its
    service name as an alias (the embedded DNS answers it)."""
    from engine.container import state
    from engine.network import records
    from engine.network.networks import get_network

    try:
        record = state.find_container(config, container)
        if records.load_record(config, record.id) is not None:
            return None
        mode = record.host_config.get("NetworkMode") or "bridge"
        primary = get_network(config, "bridge" if mode == "default" else mode)
        return record.id if primary.id == get_network(config, network).id else None
    except NotFound:
        return None


def _set_pending(config: EngineConfig, container_id: str, connection: Connection | None) -> None:
    """The primary network of a container that never ran, configured again (a connect after a
    disconnect; None: the disconnect): its aliases, addresses, MAC, endpoint links and link-local
    addresses, in the fields its first start reads (a create's NetworkingConfig fills the same:
    engine.service.networks.endpoint_links). The connect's links and link-local addresses replace
    the create's, as a new endpoint's (compose reconnects so before a first start)."""
    from engine.container import state

    c = connection or Connection("", container_id)
    with state.locked(config, container_id) as locked:
        hc = locked.host_config
        links = [f"{name}:{alias}" for name, alias in c.links]
        locked.host_config = {**hc, "NetworkAliases": list(c.aliases) or None,
                              "IPAddress": c.ipv4_address or hc.get("IPAddress"),
                              "IPv6Address": c.ipv6_address or hc.get("IPv6Address"),
                              ENDPOINT_LINKS: links or None, ENDPOINT_LINK_LOCAL: list(c.link_local_ips) or None}
        if c.mac_address:
            locked.config = {**locked.config, "MacAddress": c.mac_address}
        state.save(config, locked, durable=True)


def check_connectable(config: EngineConfig, container: str) -> None:
    """Docker's refusals for `network connect` of a container without a network of its own (moby's
    ErrConflictNoNetwork, ErrConflictSharedNetwork); an unknown container is left to the connect."""
    from engine.container.state import find_container

    try:
        mode = find_container(config, container).host_config.get("NetworkMode") or ""
    except NotFound:
        return
    if mode == "none":
        raise Conflict("container cannot be connected to multiple networks with one of the networks in private (none) mode")
    if mode == "host" or mode.startswith("container:"):
        raise Conflict("container sharing network namespace with another container or host cannot be connected to any other network")


def _never_started(config: EngineConfig, container: str) -> str | None:
    """The ID of a container that has no endpoint record yet (it never ran), else None."""
    from engine.container import state
    from engine.network import records

    try:
        record = state.find_container(config, container)
    except NotFound:
        return None
    return record.id if records.load_record(config, record.id) is None else None


def _add_pending(config: EngineConfig, container_id: str, connection: Connection) -> None:
    from engine.container import state
    from engine.network.networks import get_network

    net = get_network(config, connection.network)
    with state.locked(config, container_id) as locked:
        entries = pending_networks(locked.host_config)
        if any(get_network(config, e.network).id == net.id for e in entries):
            raise Conflict(f"endpoint with name {locked.name} already exists in network {net.name}")
        entries.append(PendingNetwork(net.name, connection.ipv4_address, connection.aliases, connection.ipv6_address,
                                      connection.mac_address, connection.links, connection.link_local_ips))
        locked.host_config = {**locked.host_config, PENDING_NETWORKS: [e.to_json() for e in entries]}
        state.save(config, locked, durable=True)


def _drop_pending(config: EngineConfig, container_id: str, network: str) -> bool:
    """Forget a pending connect to `network`; False when there was none."""
    from engine.container import state
    from engine.network.networks import get_network

    net = get_network(config, network)
    with state.locked(config, container_id) as locked:
        entries = pending_networks(locked.host_config)
        kept = [e for e in entries if e.network != net.name]
        if len(kept) == len(entries):
            return False
        locked.host_config = {**locked.host_config, PENDING_NETWORKS: [e.to_json() for e in kept] or None}
        state.save(config, locked, durable=True)
    return True


@contextlib.contextmanager
def pending_joined(config: EngineConfig, record: ContainerRecord) -> Iterator[None]:
    """Around a start (the API's and the CLI's alike): the networks a never-started container was
    connected to are checked before it runs and joined once it runs."""
    if not record.host_config.get(PENDING_NETWORKS):
        yield
        return
    check_pending(config, record.host_config)
    yield
    join_pending(config, record.id)


def check_pending(config: EngineConfig, host_config: dict[str, Any]) -> None:
    """Before a start: every network the container waits to join still exists (NotFound, in
    Docker's words, otherwise: the start is refused before anything runs)."""
    from engine.network.networks import get_network

    for entry in pending_networks(host_config):
        get_network(config, entry.network)


def join_pending(config: EngineConfig, container_id: str) -> None:
    """After a start: connect the container to the networks it was connected to before it first
    ran, then forget them (its endpoint record keeps them from now on, across restarts)."""
    from engine.container import state
    from engine.network import endpoint

    record = state.load(config, container_id)
    entries = pending_networks(record.host_config)
    if not entries:
        return
    with state.locked(config, container_id) as locked:
        locked.host_config = {**locked.host_config, PENDING_NETWORKS: None}
        state.save(config, locked, durable=True)
    for entry in entries:
        endpoint.connect(config, entry.network, container_id, ip=entry.ipv4_address, aliases=list(entry.aliases),
                         ip6=entry.ipv6_address, mac=entry.mac_address, links=entry.links,
                         link_local=entry.link_local_ips)


def connect(config: EngineConfig, connection: Connection) -> None:
    from engine.network import endpoint

    check_connectable(config, connection.container)
    pending = _not_yet_started(config, connection.network, connection.container)
    if pending is not None:
        _set_pending(config, pending, connection)
        return
    never_ran = _never_started(config, connection.container)
    if never_ran is not None:
        _add_pending(config, never_ran, connection)
        return
    endpoint.connect(config, connection.network, connection.container, ip=connection.ipv4_address,
                     aliases=list(connection.aliases), ip6=connection.ipv6_address, mac=connection.mac_address,
                     links=connection.links, link_local=connection.link_local_ips)


def disconnect(config: EngineConfig, network: str, container: str, force: bool = False) -> None:
    """Remove the container's interface on `network`; `force` also accepts a container that no
    longer exists (Docker's force deletes a dead container's endpoint). A container that exists but
    is not on the network is an error even then, as Docker's."""
    pending = _not_yet_started(config, network, container)
    if pending is not None:
        _set_pending(config, pending, None)  # a connect follows (compose); the network stays primary
        return
    never_ran = _never_started(config, container)
    if never_ran is not None and _drop_pending(config, never_ran, network):
        return
    try:
        from engine.network import endpoint

        endpoint.disconnect(config, network, container)
    except NotFound:
        if not force or _container_exists(config, container):
            raise


def _container_exists(config: EngineConfig, container: str) -> bool:
    from engine.container import state

    try:
        state.find_container(config, container)
    except NotFound:
        return False
    return True


@dataclass(frozen=True)
class Interface:
    """A container's interface on one network, keyed in `Topology.interfaces` by its host veth:
    what the bridge's port alone does not say (the interface name inside, eth0 or eth1, and the
    links whose target is attached to this same network)."""

    container_id: str
    container_name: str
    network: str
    ifname: str
    ip: str
    prefixlen: int
    mac: str
    links: tuple[tuple[str, str], ...]  # (linked container name, alias)


if TYPE_CHECKING:
    from engine.network.topology import BridgeInfo


@dataclass(frozen=True)
class Topology:
    """The bridges as netlink reports them now, and the endpoint records behind their ports."""

    bridges: tuple[BridgeInfo, ...]
    interfaces: dict[str, Interface]


def topology(config: EngineConfig) -> Topology:
    """Every bridge of this root with its ports (engine.network.topology), and per host veth the
    container interface behind it. A link is listed under a network only when its target has an
    interface on that network too (a link cannot cross networks)."""
    from engine.network import topology as net_topology

    bridges = tuple(net_topology.read(config))
    from engine.network.records import all_records

    records = all_records(config)
    networks_of = {rec.name: rec.networks() for rec in records}
    interfaces = {}
    for rec in records:
        for ep in rec.endpoints:
            links = tuple((name, alias) for name, alias in rec.links if ep.network in networks_of.get(name, set()))
            interfaces[ep.host_veth] = Interface(rec.container_id, rec.name, ep.network, ep.ifname, ep.ip,
                                                 ep.prefixlen, ep.mac, links)
    return Topology(bridges, interfaces)
