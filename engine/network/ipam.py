"""IP address management: which subnet a bridge gets, and which address each container gets.

IPv4 subnets are chosen in Docker's order (172.17.0.0/16 ... 172.31.0.0/16, then 192.168.0.0/20,
192.168.16.0/20, ...), IPv6 ones as /64s of a ULA /48 derived from the engine root (Docker derives
its from the engine's ID), skipping any that overlaps an address or route already on the host, so a
bridge never shadows the host's own networks. Addresses are handed out sequentially after the last
one given (as Docker does, so a freed address is not reused at once), recorded in
`<root>/network/ipam/<network id>.json` (`.v6.json` for IPv6) under one flock, so concurrent `run`s
never get the same one.

Invariant (libnetwork's default IPAM): a dynamic address comes only from the pool's `ip_range`
(the whole subnet without one); a static one may be any host address of the subnet; the network
address, the IPv4 broadcast, the gateway and every auxiliary address are never given to anyone.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from _thread import get_ident  # threading itself is not loaded on the run path
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.config import EngineConfig
from engine.errors import Conflict, InvalidArgument
from engine.util.fsutil import file_lock, read_json

IPv4Network = ipaddress.IPv4Network
IPv4Address = ipaddress.IPv4Address
IPv6Network = ipaddress.IPv6Network
IPv6Address = ipaddress.IPv6Address
IPNetwork = IPv4Network | IPv6Network
IPAddress = IPv4Address | IPv6Address

# Host-wide lock (not per root): two engines choosing a subnet at once must not pick the same one.
HOST_LOCK = Path(os.environ.get("DOCKUI_NET_HOST_LOCK", "/run/lock/dockui-network.lock"))


def candidate_subnets() -> Iterator[IPv4Network]:
    """Docker's default address pools, in the order Docker tries them."""
    for second in range(17, 32):
        yield IPv4Network(f"172.{second}.0.0/16")
    for third in range(0, 256, 16):
        yield IPv4Network(f"192.168.{third}.0/20")


def parse_subnet(text: str) -> IPNetwork:
    """`--subnet` value (IPv4 or IPv6) -> network; host bits must be zero, as Docker requires."""
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise InvalidArgument(f"invalid subnet {text!r}: {exc}") from None
    if str(net) != text and ipaddress.ip_interface(text).ip != net.network_address:
        raise InvalidArgument(f"invalid network config: invalid subnet {text}: it should be {net}")
    if net.max_prefixlen - net.prefixlen < 2:
        raise InvalidArgument(f"subnet {text} is too small: it needs room for a gateway and a container")
    return net


def parse_ip_range(text: str, subnet: IPNetwork) -> IPNetwork:
    """`--ip-range`: a block of `subnet` that dynamic addresses come from (Docker's checks, in
    Docker's words: moby daemon/network.go validateIPRange)."""
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        raise InvalidArgument(f"invalid network config: invalid ip-range {text!r}: not a CIDR block") from None
    if "/" not in text:
        raise InvalidArgument(f"invalid network config: invalid ip-range {text!r}: not a CIDR block")
    block = iface.network
    where = f"invalid network config: invalid ip-range {text}"
    if block.version != subnet.version:
        raise InvalidArgument(f"{where}: parent subnet is an IPv{subnet.version} block")
    if block.prefixlen < subnet.prefixlen:
        raise InvalidArgument(f"{where}: CIDR block is bigger than its parent subnet {subnet}")
    if iface.ip != block.network_address:
        raise InvalidArgument(f"{where}: it should be {block}")
    if not block.subnet_of(subnet):  # type: ignore[arg-type]
        raise InvalidArgument(f"{where}: parent subnet {subnet} doesn't contain ip-range")
    return block


def parse_member(text: str, subnet: IPNetwork, what: str) -> IPAddress:
    """A gateway or auxiliary address: one of `subnet`'s (moby's validateAddress)."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid network config: invalid {what}: {text!r} is not an IP address") from None
    if addr.version != subnet.version:
        raise InvalidArgument(f"invalid network config: invalid {what}: parent subnet is an IPv{subnet.version} block")
    if addr not in subnet:
        raise InvalidArgument(f"invalid network config: invalid {what}: parent subnet {subnet} doesn't contain this address")
    return addr


def parse_bridge_ip(text: str) -> tuple[IPv4Network, IPv4Address]:
    """`--bip 172.18.0.1/16` -> (subnet, gateway), as Docker's daemon flag."""
    try:
        iface = ipaddress.IPv4Interface(text)
    except ValueError as exc:
        raise InvalidArgument(f"invalid bridge IP {text!r}: {exc}") from None
    net = iface.network
    if net.prefixlen > 30 or iface.ip in (net.network_address, net.broadcast_address):
        raise InvalidArgument(f"invalid bridge IP {text!r}: not a host address of a usable subnet")
    return net, iface.ip


def default_gateway(subnet: IPNetwork, ip_range: IPNetwork | None = None) -> IPAddress:
    """The subnet's first host address, or the range's first when there is one: libnetwork asks
    its IPAM for the gateway as for any dynamic address, from the range."""
    first = subnet.network_address + 1
    if ip_range is not None and ip_range.network_address > first:
        return ip_range.network_address
    return first


def host_networks(exclude_ifnames: Iterable[str] = (), family: int = 4) -> list[IPNetwork]:
    """Every network of that IP version the host already uses: interface addresses and main-table
    routes.

    The default route is ignored, as Docker does, and so are IPv6 link-local, multicast and
    loopback ones (every interface has them); interfaces in `exclude_ifnames` (our own bridges)
    are skipped so a bridge does not conflict with itself.
    """
    from pyroute2 import IPRoute

    excluded = set(exclude_ifnames)
    af = 2 if family == 4 else 10
    nets: list[IPNetwork] = []
    with IPRoute(groups=0) as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        skip_index = {idx for idx, name in names.items() if name in excluded}
        for addr in ipr.get_addr(family=af):
            if addr["index"] in skip_index:
                continue
            ip = addr.get_attr("IFA_LOCAL") or addr.get_attr("IFA_ADDRESS")
            nets.append(ipaddress.ip_network(f"{ip}/{addr['prefixlen']}", strict=False))
        for route in ipr.get_routes(family=af, table=254):
            if route.get_attr("RTA_OIF") in skip_index or route["dst_len"] == 0:
                continue
            dst = route.get_attr("RTA_DST")
            if dst:
                nets.append(ipaddress.ip_network(f"{dst}/{route['dst_len']}", strict=False))
    return [n for n in nets if not (n.is_link_local or n.is_multicast or n.is_loopback)]


def overlaps_any(subnet: IPNetwork, used: Iterable[IPNetwork]) -> bool:
    return any(subnet.version == other.version and subnet.overlaps(other) for other in used)  # type: ignore[arg-type]


def ula_prefix(seed: str) -> IPv6Network:
    """This engine's IPv6 pool: a unique local /48 (fdXX:XXXX:XXXX::/48, RFC 4193) from a hash of
    `seed` (the engine root), as Docker derives its own from the engine's ID."""
    import hashlib  # only when an IPv6 network is made without a subnet

    digest = hashlib.sha256(seed.encode()).digest()
    return IPv6Network((b"\xfd" + digest[:5] + bytes(10), 48))


def choose_subnet6(seed: str, used: Iterable[IPNetwork]) -> IPv6Network:
    """The first /64 of this engine's ULA /48 that overlaps nothing in `used`."""
    used = [u for u in used if u.version == 6]
    for candidate in ula_prefix(seed).subnets(new_prefix=64):
        if not overlaps_any(candidate, used):
            return candidate
    raise Conflict("no free IPv6 subnet left in this engine's pool")


def choose_subnet(used: Iterable[IPv4Network]) -> IPv4Network:
    """The first candidate pool that overlaps nothing in `used`."""
    used = list(used)
    for candidate in candidate_subnets():
        if not overlaps_any(candidate, used):
            return candidate
    raise Conflict("no free private subnet left in the default pools (172.17-31.0.0/16, 192.168.0.0/16)")


@dataclass(frozen=True)
class Pool:
    """One network's address pool of one IP version: the subnet, its gateway, the block dynamic
    addresses come from (`--ip-range`), the auxiliary addresses (name, address) nobody gets, and
    the file that records who has what."""

    network_id: str
    subnet: IPNetwork
    gateway: IPAddress
    ip_range: IPNetwork | None = None
    aux: tuple[tuple[str, str], ...] = ()

    def path(self, config: EngineConfig) -> Path:
        suffix = ".v6.json" if self.subnet.version == 6 else ".json"
        return config.network_dir / "ipam" / f"{self.network_id}{suffix}"

    def reserved(self) -> set[IPAddress]:
        """Never handed out: the network address (IPv6's subnet-router anycast), the IPv4
        broadcast, the gateway and the auxiliary addresses."""
        out = {self.subnet.network_address, self.gateway, *(ipaddress.ip_address(a) for _, a in self.aux)}
        if self.subnet.version == 4:
            out.add(self.subnet.broadcast_address)
        return out

    def dynamic_bounds(self) -> tuple[int, int]:
        """The first and last address (as integers) a dynamic allocation may give."""
        first, last = int(self.subnet.network_address) + 1, int(self.subnet.broadcast_address)
        if self.subnet.version == 4:
            last -= 1
        if self.ip_range is not None:
            first = max(first, int(self.ip_range.network_address))
            last = min(last, int(self.ip_range.broadcast_address))
        return first, last


_depth: dict[tuple[str, int], int] = {}  # (lock path, thread id) -> how deep that thread holds it


@contextlib.contextmanager
def lock(config: EngineConfig) -> Iterator[None]:
    """The per-root lock every change to network state (addresses, ports, records) is made under.

    Re-entrant within a thread: a second flock on a new descriptor of the same file would wait for
    ourselves forever.
    """
    key = (str(config.network_dir / "lock"), get_ident())
    if _depth.get(key):
        _depth[key] += 1
        try:
            yield
        finally:
            _depth[key] -= 1
        return
    with file_lock(Path(key[0])):
        _depth[key] = 1
        try:
            yield
        finally:
            del _depth[key]


def store_json(path: Path, obj: object) -> None:
    """Replace `path` atomically (temp + rename), without fsync.

    Network state is runtime state: a process killed at any point leaves the old or the new file,
    never a mix, which is what concurrent runs and crash recovery need. Only a power loss could
    roll a file back, and then no container is running and an address that reappears free is
    simply handed out again (a restarted container gets a fresh one, never a duplicate). Skipping
    the two fsyncs per write saves ~7 ms per write on this VM, a third of the per-container budget.
    """
    text = json.dumps(obj, separators=(",", ":"))  # compact: the C encoder (indent takes the Python one)
    from engine.util.diskfull import write_despite_full  # a full disk: a release (smaller) goes in place

    write_despite_full(None, path, text.encode(), lambda: _replace(path, text))


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{get_ident()}")
    try:
        try:
            tmp.write_text(text)
        except FileNotFoundError:  # the first write under this root
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _load(pool: Pool, config: EngineConfig) -> dict:
    return read_json(pool.path(config), None) or {
        "subnet": str(pool.subnet),
        "gateway": str(pool.gateway),
        "last": str(pool.gateway),
        "addresses": {},
    }


def parse_static(requested: str, version: int) -> IPAddress:
    """A static address asked for (`--ip`, `--ip6`, IPAMConfig): of the right version, not
    unspecified (moby's normalizeEndpointIPAMConfig, in its words)."""
    try:
        want = ipaddress.ip_address(requested)
    except ValueError:
        raise InvalidArgument(f"invalid IPv{version} address: {requested}") from None
    if want.version != version or want.is_unspecified:
        raise InvalidArgument(f"invalid IPv{version} address: {requested}")
    return want


def parse_link_local(texts: Iterable[str]) -> list[str]:
    """IPAMConfig.LinkLocalIPs: any address that is not unspecified (moby's check and words)."""
    out = []
    for text in texts:
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            raise InvalidArgument(f"invalid link-local IP address: {text}") from None
        if addr.is_unspecified:
            raise InvalidArgument(f"invalid link-local IP address: {text}")
        out.append(str(addr))
    return out


def check_static(pool: Pool, want: IPAddress) -> None:
    """Refuse a static address outside the subnet (Docker's words) or one that is never given."""
    if want not in pool.subnet:
        raise InvalidArgument(f"no configured subnet contains IP address {want}")
    for name, aux in pool.aux:
        if ipaddress.ip_address(aux) == want:
            raise Conflict(f"Address already in use: {want} is the auxiliary address {name} of subnet {pool.subnet}")
    if want in pool.reserved():
        raise InvalidArgument(f"address {want} is not a usable host address of subnet {pool.subnet}")


def allocate(config: EngineConfig, pool: Pool, container_id: str, requested: str | None = None) -> IPAddress:
    """Give `container_id` an address of `pool` (the requested one if free). Call under `lock(config)`.

    An address already held by this container is returned again, so a retried start is idempotent.
    """
    state = _load(pool, config)
    addresses: dict[str, str] = state["addresses"]
    for ip, owner in addresses.items():
        if owner == container_id and (requested is None or ip == requested):
            return ipaddress.ip_address(ip)
    if requested is not None:
        want = parse_static(requested, pool.subnet.version)
        check_static(pool, want)
        if str(want) in addresses:
            raise Conflict(f"address {want} is already in use by container {addresses[str(want)][:12]}")
        chosen = want
    else:
        chosen = _next_free(pool, state)
    addresses[str(chosen)] = container_id
    if requested is None:
        state["last"] = str(chosen)
    store_json(pool.path(config), state)
    return chosen


def _next_free(pool: Pool, state: dict) -> IPAddress:
    first, last = pool.dynamic_bounds()
    reserved = pool.reserved()
    size = last - first + 1
    try:
        start = int(ipaddress.ip_address(state.get("last") or pool.gateway)) + 1
    except ValueError:
        start = first
    if not first <= start <= last:
        start = first
    addresses = state["addresses"]
    make = IPv4Address if pool.subnet.version == 4 else IPv6Address
    for step in range(size):
        value = first + (start - first + step) % size
        candidate = make(value)
        if candidate not in reserved and str(candidate) not in addresses:
            return candidate
    where = f"range {pool.ip_range} of subnet {pool.subnet}" if pool.ip_range else f"subnet {pool.subnet}"
    raise Conflict(
        f"no available IPv{pool.subnet.version} address in {where}: all {len(addresses)} addresses are in use"
    )


def release(config: EngineConfig, pool: Pool, container_id: str) -> list[str]:
    """Free every address of `pool` held by `container_id`. Call under `lock(config)`."""
    state = read_json(pool.path(config), None)
    if not state:
        return []
    freed = [ip for ip, owner in state["addresses"].items() if owner == container_id]
    if freed:
        for ip in freed:
            del state["addresses"][ip]
        store_json(pool.path(config), state)
    return freed


def in_use(config: EngineConfig, pool: Pool) -> dict[str, str]:
    """address -> container id, as recorded."""
    return dict(_load(pool, config)["addresses"])


def release_all(config: EngineConfig, pools: Iterable[Pool], container_id: str) -> None:
    """Free `container_id`'s addresses in each of `pools` (a network's IPv4 and IPv6 ones). Call
    under `lock(config)`."""
    for pool in pools:
        release(config, pool, container_id)


def drop_pool(config: EngineConfig, pool: Pool) -> None:
    try:
        pool.path(config).unlink()
    except FileNotFoundError:
        pass


def mac_for(ip: IPAddress) -> str:
    """Docker's MAC for an IPv4 address: 02:42 followed by the four octets."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ip.packed)


def parse_mac(text: str) -> str:
    """A MAC address for an interface (EndpointConfig.MacAddress): six hex octets separated by
    ":" or "-", lower case; Go's net.ParseMAC message otherwise, as Docker answers."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts):
        raise InvalidArgument(f"address {text}: invalid MAC address")
    if int(parts[0], 16) & 1:
        raise InvalidArgument(f"address {text}: invalid MAC address: a multicast address cannot be an interface's")
    return ":".join(parts).lower()
