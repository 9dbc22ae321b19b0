"""The network side's records and the values passed between its modules: `NetworkSpec` (what a
container asks for), `Endpoint` and `NetworkPlan` (what prepare decided), `EndpointRecord` (a
container's endpoints as stored), `NetworkInfo` (a named network), and where they live on disk:
<root>/network/networks/<id>.json and <root>/network/endpoints/<container id>.json.

Every write is atomic (engine.util.fsutil); the callers that change them hold the per-root flock
(`ipam.lock`), so concurrent CLI, TUI and monitor processes agree.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.config import DEFAULTS, EngineConfig
from engine.network import ipam
from engine.util.fsutil import atomic_write_json, read_json

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any

    from engine.network import portmap  # imported where needed: only with -p/-P


DEFAULT_NETWORK = "bridge"


PREDEFINED = ("bridge", "host", "none")


DEFAULT_MTU = DEFAULTS.mtu


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
    aliases: list[str] = field(default_factory=list)  # --network-alias: more names on the primary network
    mac: str | None = None  # --mac-address: eth0's, instead of the one derived from its address
    ip6: str | None = None  # --ip6: the IPv6 address on an IPv6 user network
    endpoint_links: list[str] = field(default_factory=list)  # the create body's EndpointsConfig Links ("name:alias")
    link_local: list[str] = field(default_factory=list)  # the create body's IPAMConfig.LinkLocalIPs


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
    ip6: str = ""  # its IPv6 address on an IPv6 network ("" otherwise)
    prefixlen6: int = 0
    gateway6: str = ""
    links: list[list[str]] = field(default_factory=list)  # [linked container, alias]: names only this container resolves here
    static_ip: str = ""  # the addresses asked for (Docker's IPAMConfig), "" when allocated
    static_ip6: str = ""
    link_local: list[str] = field(default_factory=list)  # IPAMConfig.LinkLocalIPs: more addresses (/16, IPv6 /64)

    def to_json(self) -> dict[str, Any]:
        """Its record's JSON: the keys written since IPv6, IPAM configs and endpoint links came
        only when set, so a record without them is the same JSON as it always was."""
        data = asdict(self)
        for key in _NEWER_ENDPOINT_KEYS:
            if not data[key]:
                del data[key]
        return data

    def settings(self) -> dict[str, Any]:
        """Docker's EndpointSettings of this interface, as container inspect shows it."""
        ipam_config: dict[str, Any] = {k: v for k, v in (("IPv4Address", self.static_ip), ("IPv6Address", self.static_ip6)) if v}
        if self.link_local:
            ipam_config["LinkLocalIPs"] = list(self.link_local)
        return {
            "IPAMConfig": ipam_config or None,
            "Links": [f"{name}:{alias}" for name, alias in self.links] or None,
            "Aliases": list(self.aliases) or None,
            "NetworkID": self.network_id,
            "Gateway": self.gateway,
            "IPAddress": self.ip,
            "IPPrefixLen": self.prefixlen,
            "IPv6Gateway": self.gateway6,
            "GlobalIPv6Address": self.ip6,
            "GlobalIPv6PrefixLen": self.prefixlen6,
            "MacAddress": self.mac,
        }


_NEWER_ENDPOINT_KEYS = ("ip6", "prefixlen6", "gateway6", "links", "static_ip", "static_ip6", "link_local")


@dataclass(frozen=True)
class EndpointRecord:
    """A container's endpoint record (<root>/network/endpoints/<container id>.json): what `prepare`
    decided (interfaces, published ports, hosts entries, what links to it need) and where it stands.

    `state`: "prepared" (in flight while `preparer`, the (pid, start ticks) of the process that
    prepared it, lives), "attached" (plugged into the namespace of `pid`, whose inode is
    `netns_inode`) or "detached" (stopped: the addresses stay reserved until `rm`). Written by
    engine.network.endpoint under `ipam.lock`; read by reconcile, topology, links and the
    embedded DNS. A change is a new record (`dataclasses.replace`) saved whole.
    `from_json`/`to_json` keep the file's JSON as it always was, so records of any age load.
    """

    container_id: str
    name: str
    hostname: str
    mode: str = DEFAULT_NETWORK
    state: str = "prepared"
    pid: int | None = None
    endpoints: tuple[Endpoint, ...] = ()
    ports: tuple[dict[str, Any], ...] = ()  # PortMapping.to_dict()s: portmap loads only with -p/-P
    links: tuple[tuple[str, str], ...] = ()  # (linked name, alias)
    extra_hosts: tuple[tuple[str, str], ...] = ()  # (address, names) hosts lines
    exposed_ports: tuple[str, ...] = ()
    env: tuple[str, ...] = ()  # the container's environment, for the ALIAS_ENV_* of containers linking to it
    dns: tuple[str, ...] = ()  # the embedded DNS forwards to these (user networks)
    preparer: tuple[int, int] | None = None
    netns_inode: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EndpointRecord:
        preparer = data.get("preparer")
        return cls(
            container_id=data["container_id"],
            name=data["name"],
            hostname=data["hostname"],
            mode=data.get("mode", DEFAULT_NETWORK),
            state=data.get("state", "prepared"),
            pid=data.get("pid"),
            endpoints=tuple(Endpoint(**ep) for ep in data.get("endpoints", [])),
            ports=tuple(data.get("ports") or ()),
            links=tuple((str(n), str(a)) for n, a in data.get("links") or ()),
            extra_hosts=tuple((str(ip), str(names)) for ip, names in data.get("extra_hosts") or ()),
            exposed_ports=tuple(data.get("exposed_ports") or ()),
            env=tuple(data.get("env") or ()),
            dns=tuple(data.get("dns") or ()),
            preparer=(int(preparer[0]), int(preparer[1])) if preparer else None,
            netns_inode=data.get("netns_inode"),
        )

    def to_json(self) -> dict[str, Any]:
        """The file's JSON object, its keys in the order they were always written."""
        data: dict[str, Any] = {
            "container_id": self.container_id,
            "name": self.name,
            "hostname": self.hostname,
            "mode": self.mode,
            "state": self.state,
            "pid": self.pid,
            "endpoints": [ep.to_json() for ep in self.endpoints],
            "ports": [dict(p) for p in self.ports],
            "links": [list(x) for x in self.links],
            "extra_hosts": [list(e) for e in self.extra_hosts],
            "exposed_ports": list(self.exposed_ports),
            "env": list(self.env),
            "dns": list(self.dns),
            "preparer": list(self.preparer) if self.preparer else None,
        }
        if self.netns_inode is not None:  # written from the first attach on
            data["netns_inode"] = self.netns_inode
        return data

    @property
    def attached(self) -> bool:
        return self.state == "attached"

    def on(self, network: str) -> list[Endpoint]:
        """Its endpoints on `network` (none or one)."""
        return [ep for ep in self.endpoints if ep.network == network]

    def networks(self) -> set[str]:
        return {ep.network for ep in self.endpoints}

    def port_mappings(self) -> list[portmap.PortMapping]:
        from engine.network import portmap  # only with published ports

        return [portmap.PortMapping.from_dict(p) for p in self.ports]


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
            "GlobalIPv6Address": primary.ip6 if primary else "",
            "GlobalIPv6PrefixLen": primary.prefixlen6 if primary else 0,
            "IPv6Gateway": primary.gateway6 if primary else "",
            "HostVeth": primary.host_veth if primary else "",
            "Bridge": primary.bridge if primary else "",
            "Ports": ports,
            "Links": [f"/{name}:/{self.name}/{alias}" for name, alias in self.links] or None,
            "Networks": {ep.network: ep.settings() for ep in self.endpoints},
        }


@dataclass
class NetworkInfo:
    """A network (a bridge): the default one, named `bridge`, or one made by `network create`.

    IPv4 always (`subnet`, `gateway`, and `network create --ip-range/--aux-address`); IPv6 when
    `ipv6` (`--ipv6`): `subnet6`, `gateway6` (the bridge's address), `ip_range6`, `aux_addresses6`.
    """

    name: str
    id: str
    bridge: str
    subnet: str
    gateway: str
    created: str
    internal: bool = False
    default: bool = False
    labels: dict[str, str] = field(default_factory=dict)  # Docker's network labels, set at create
    ip_range: str = ""
    aux_addresses: dict[str, str] = field(default_factory=dict)  # name -> address, never given out
    ipv6: bool = False
    subnet6: str = ""
    gateway6: str = ""
    ip_range6: str = ""
    aux_addresses6: dict[str, str] = field(default_factory=dict)

    @property
    def prefixlen(self) -> int:
        return int(self.subnet.split("/")[1])

    @property
    def prefixlen6(self) -> int:
        return int(self.subnet6.split("/")[1]) if self.subnet6 else 0

    @property
    def pool(self) -> ipam.Pool:
        return ipam.Pool(
            self.id, ipam.IPv4Network(self.subnet), ipam.IPv4Address(self.gateway),
            ipam.IPv4Network(self.ip_range) if self.ip_range else None, tuple(sorted(self.aux_addresses.items())),
        )

    @property
    def pool6(self) -> ipam.Pool | None:
        if not (self.ipv6 and self.subnet6):
            return None
        return ipam.Pool(
            self.id, ipam.IPv6Network(self.subnet6), ipam.IPv6Address(self.gateway6),
            ipam.IPv6Network(self.ip_range6) if self.ip_range6 else None, tuple(sorted(self.aux_addresses6.items())),
        )

    def pools(self) -> list[ipam.Pool]:
        return [self.pool] + ([p] if (p := self.pool6) else [])

    def ipam_config(self) -> list[dict[str, Any]]:
        """Docker's IPAM.Config: one entry per subnet, IPRange and AuxiliaryAddresses only when set."""
        out = []
        for subnet, gateway, ip_range, aux in (
            (self.subnet, self.gateway, self.ip_range, self.aux_addresses),
            (self.subnet6 if self.ipv6 else "", self.gateway6, self.ip_range6, self.aux_addresses6),
        ):
            if not subnet:
                continue
            entry: dict[str, Any] = {"Subnet": subnet}
            if ip_range:
                entry["IPRange"] = ip_range
            entry["Gateway"] = gateway
            if aux:
                entry["AuxiliaryAddresses"] = dict(aux)
            out.append(entry)
        return out


def network_file(name: str) -> str:
    """The file name of a network's record. Docker accepts any name that is not blank (moby's
    NewNetwork), so a name that is not a plain `[a-zA-Z0-9][a-zA-Z0-9_.-]*` one is %-quoted (a
    plain name is its own file name, as it always was; quoting is injective and no plain name
    needs it, so two names never share a file), and one too long for a file name is hashed."""
    if name and name.isascii() and (name[0].isalnum()) and all(c.isalnum() or c in "_.-" for c in name):
        plain = name
    else:
        from urllib.parse import quote

        plain = quote(name, safe="")
    if len(plain) > 200:
        import hashlib

        plain = "%%" + hashlib.sha256(name.encode()).hexdigest()  # "%%" is never in a quoted name
    return f"{plain}.json"


def networks_dir(config: EngineConfig) -> Path:
    return config.network_dir / "networks"


def endpoints_dir(config: EngineConfig) -> Path:
    return config.network_dir / "endpoints"


def record_path(config: EngineConfig, container_id: str) -> Path:
    return endpoints_dir(config) / f"{container_id}.json"


def _now() -> str:
    from datetime import UTC, datetime  # only when a network is created

    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def network_path(config: EngineConfig, name: str) -> Path:
    return networks_dir(config) / network_file(name)


def load_network(config: EngineConfig, name: str) -> NetworkInfo | None:
    try:
        data = read_json(network_path(config, name))
    except (OSError, ValueError):
        return None  # not a possible file name (a NUL), or unreadable: no such network
    return NetworkInfo(**data) if data and data.get("name") == name else None


def save_network(config: EngineConfig, net: NetworkInfo) -> None:
    atomic_write_json(network_path(config, net.name), asdict(net))


def all_networks(config: EngineConfig) -> list[NetworkInfo]:
    d = networks_dir(config)
    if not d.is_dir():
        return []
    return [NetworkInfo(**read_json(p)) for p in sorted(d.glob("*.json"))]


def load_record(config: EngineConfig, container_id: str) -> EndpointRecord | None:
    data = read_json(record_path(config, container_id))
    return EndpointRecord.from_json(data) if data else None


def save_record(config: EngineConfig, rec: EndpointRecord) -> None:
    ipam.store_json(record_path(config, rec.container_id), rec.to_json())


def all_records(config: EngineConfig) -> list[EndpointRecord]:
    """Every endpoint record of this root, read afresh."""
    d = endpoints_dir(config)
    out = []
    for p in d.glob("*.json") if d.is_dir() else ():
        try:
            data = read_json(p)
            rec = EndpointRecord.from_json(data) if data else None
        except (ValueError, KeyError, TypeError):
            continue  # unreadable: treated as absent
        if rec:
            out.append(rec)
    return out


def endpoints_of(rec: EndpointRecord) -> list[Endpoint]:
    return list(rec.endpoints)


def veth_name(container_id: str, network_id: str) -> str:
    """Docker's `veth` + 7 hex; derived (not random) so a crashed engine's leftovers can be found.

    The IDs are random already: a CRC spreads them as well as a cryptographic hash would here, and
    zlib is loaded anyway (hashlib would add ~4 ms of OpenSSL to every monitor's start).
    """
    return "veth" + f"{zlib.crc32(f'{container_id}/{network_id}'.encode()):08x}"[:7]
