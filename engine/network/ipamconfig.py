"""What `network create` asks for, checked before anything is made: `SubnetRequest` (one of
Docker's IPAM configs: subnet, gateway, ip-range, auxiliary addresses), the docker CLI's matching of
`--ip-range`, `--gateway` and `--aux-address` to their `--subnet` (its consolidateIpam, its words),
moby's daemon checks of each (validateIpamConfig: its words, on one line), and Docker's rule for
a network's name.

Invariant: every refusal happens here, before a subnet is chosen or a record written, so a bad
request changes nothing. Loaded by `network create` only (the service and the CLI), never by a
container's monitor: its dataclasses would cost every container start.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import Conflict, InvalidArgument
from engine.network import ipam
from engine.network.records import PREDEFINED


@dataclass(frozen=True)
class SubnetRequest:
    """One IPAM config of `network create` (Docker's IPAMConfig): the subnet (None: the next free
    pool), its gateway, the block dynamic addresses come from, and (name, address) pairs reserved."""

    subnet: str | None = None
    gateway: str | None = None
    ip_range: str | None = None
    aux_addresses: tuple[tuple[str, str], ...] = ()

    @property
    def version(self) -> int:
        text = self.subnet or self.ip_range or self.gateway or (self.aux_addresses[0][1] if self.aux_addresses else "")
        return 6 if ":" in text else 4


def consolidate(subnets: list[str], ranges: list[str], gateways: list[str],
                aux: list[tuple[str, str]]) -> list[SubnetRequest]:
    """The docker CLI's `network create` flags -> one request per subnet: each --ip-range,
    --gateway and --aux-address goes to the subnet that contains it (its consolidateIpam, its
    messages)."""
    if len(subnets) < len(ranges) or len(subnets) < len(gateways):
        raise InvalidArgument("every ip-range or gateway must have a corresponding subnet")
    nets = [ipam.parse_subnet(text) for text in subnets]
    for i, a in enumerate(nets):
        if any(a.version == b.version and a.overlaps(b) for b in nets[:i]):  # type: ignore[arg-type]
            raise InvalidArgument("multiple overlapping subnet configuration is not supported")
    found: list[dict[str, object]] = [{"ip_range": None, "gateway": None, "aux": []} for _ in nets]

    def owner(text: str, what: str) -> int:
        try:
            addr = ipam.ipaddress.ip_interface(text).ip
        except ValueError:
            raise InvalidArgument(f"invalid {what} {text!r}: not an IP address") from None
        for i, net in enumerate(nets):
            if addr.version == net.version and addr in net:
                return i
        raise InvalidArgument(f"no matching subnet for {what} {text}")

    for text in ranges:
        i = owner(text, "range")
        if found[i]["ip_range"]:
            raise InvalidArgument(f"cannot configure multiple ranges ({text}, {found[i]['ip_range']}) on the same subnet ({subnets[i]})")
        found[i]["ip_range"] = text
    for text in gateways:
        i = owner(text, "gateway")
        if found[i]["gateway"]:
            raise InvalidArgument(f"cannot configure multiple gateways ({text}, {found[i]['gateway']}) for the same subnet ({subnets[i]})")
        found[i]["gateway"] = text
    for name, text in aux:
        found[owner(text, "aux-address")]["aux"].append((name, text))  # type: ignore[union-attr]
    return [SubnetRequest(subnets[i], f["gateway"], f["ip_range"], tuple(f["aux"]))  # type: ignore[arg-type]
            for i, f in enumerate(found)]


def parse_aux_address(text: str) -> tuple[str, str]:
    """`--aux-address name=ip`."""
    name, sep, address = text.partition("=")
    if not sep or not name or not address:
        raise InvalidArgument(f"invalid argument {text!r} for \"--aux-address\" flag: expected name=ip")
    return name, address


def check_name(name: str) -> None:
    """Docker's rule for a network name (moby's NewNetwork and createNetwork): anything but a
    blank or a predefined network's name."""
    if not name.strip():
        raise InvalidArgument("invalid name: name is empty")
    if name in PREDEFINED or name == "default":
        raise Conflict(f"operation is not permitted on predefined {name} network ")  # Docker: 403


@dataclass(frozen=True)
class Family:
    """One IP version of a network being made: subnet, gateway, range and aux, checked."""

    subnet: ipam.IPNetwork
    gateway: ipam.IPAddress
    ip_range: ipam.IPNetwork | None
    aux: dict[str, str]


def family(request: SubnetRequest | None, chosen: ipam.IPNetwork) -> Family:
    """The subnet's gateway, range and aux addresses checked against it (Docker's checks)."""
    request = request or SubnetRequest()
    ip_range = ipam.parse_ip_range(request.ip_range, chosen) if request.ip_range else None
    aux: dict[str, str] = {}
    for name, text in request.aux_addresses:
        aux[name] = str(ipam.parse_member(text, chosen, f"auxiliary address {name}"))
    if request.gateway:
        gw = ipam.parse_member(request.gateway, chosen, f"gateway {request.gateway}")
        if chosen.version == 4 and gw == chosen.broadcast_address or gw == chosen.network_address:
            raise InvalidArgument(f"invalid network config: invalid gateway {gw}: not a host address of subnet {chosen}")
    else:
        gw = ipam.default_gateway(chosen, ip_range)
    if str(gw) in aux.values():
        raise InvalidArgument(f"invalid network config: gateway {gw} is also an auxiliary address")
    return Family(chosen, gw, ip_range, aux)


def requests(subnet: str | None, gateway: str | None,
             configs: tuple[SubnetRequest, ...]) -> tuple[SubnetRequest | None, SubnetRequest | None]:
    """At most one IPv4 and one IPv6 request (a dockui network has one subnet of each)."""
    if subnet or gateway:
        configs = (SubnetRequest(subnet, gateway), *configs)
    v4 = [c for c in configs if c.version == 4]
    v6 = [c for c in configs if c.version == 6]
    if len(v4) > 1 or len(v6) > 1:
        raise InvalidArgument("dockui networks have one IPv4 subnet and at most one IPv6 subnet")
    for c in configs:
        if (c.gateway or c.ip_range or c.aux_addresses) and not c.subnet:
            raise InvalidArgument("every ip-range or gateway must have a corresponding subnet")
    return (v4[0] if v4 else None), (v6[0] if v6 else None)
