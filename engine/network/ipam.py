"""IP address management: which subnet a bridge gets, and which address each container gets.

Subnets are chosen in Docker's order (172.17.0.0/16 ... 172.31.0.0/16, then 192.168.0.0/20,
192.168.16.0/20, ...), skipping any that overlaps an address or route already on the host, so a
bridge never shadows the host's own networks. Addresses are handed out sequentially after the last
one given (as Docker does, so a freed address is not reused at once), recorded in
`<root>/network/ipam/<network id>.json` under one flock, so concurrent `run`s never get the same one.
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

# Host-wide lock (not per root): two engines choosing a subnet at once must not pick the same one.
HOST_LOCK = Path(os.environ.get("DOCKUI_NET_HOST_LOCK", "/run/lock/dockui-network.lock"))


def candidate_subnets() -> Iterator[IPv4Network]:
    """Docker's default address pools, in the order Docker tries them."""
    for second in range(17, 32):
        yield IPv4Network(f"172.{second}.0.0/16")
    for third in range(0, 256, 16):
        yield IPv4Network(f"192.168.{third}.0/20")


def parse_subnet(text: str) -> IPv4Network:
    """`--subnet` value -> network; host bits must be zero, as Docker requires."""
    try:
        net = IPv4Network(text, strict=True)
    except ValueError as exc:
        raise InvalidArgument(f"invalid subnet {text!r}: {exc}") from None
    if net.prefixlen > 30:
        raise InvalidArgument(f"subnet {text} is too small: it needs room for a gateway and a container")
    return net


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


def default_gateway(subnet: IPv4Network) -> IPv4Address:
    return subnet.network_address + 1


def host_networks(exclude_ifnames: Iterable[str] = ()) -> list[IPv4Network]:
    """Every IPv4 network the host already uses: interface addresses and main-table routes.

    The default route (0.0.0.0/0) is ignored, as Docker does; interfaces in `exclude_ifnames`
    (our own bridges) are skipped so a bridge does not conflict with itself.
    """
    from pyroute2 import IPRoute

    excluded = set(exclude_ifnames)
    nets: list[IPv4Network] = []
    with IPRoute(groups=0) as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        skip_index = {idx for idx, name in names.items() if name in excluded}
        for addr in ipr.get_addr(family=2):
            if addr["index"] in skip_index:
                continue
            ip = addr.get_attr("IFA_LOCAL") or addr.get_attr("IFA_ADDRESS")
            nets.append(IPv4Network(f"{ip}/{addr['prefixlen']}", strict=False))
        for route in ipr.get_routes(family=2, table=254):
            if route.get_attr("RTA_OIF") in skip_index or route["dst_len"] == 0:
                continue
            dst = route.get_attr("RTA_DST")
            if dst:
                nets.append(IPv4Network(f"{dst}/{route['dst_len']}", strict=False))
    return nets


def overlaps_any(subnet: IPv4Network, used: Iterable[IPv4Network]) -> bool:
    return any(subnet.overlaps(other) for other in used)


def choose_subnet(used: Iterable[IPv4Network]) -> IPv4Network:
    """The first candidate pool that overlaps nothing in `used`."""
    used = list(used)
    for candidate in candidate_subnets():
        if not overlaps_any(candidate, used):
            return candidate
    raise Conflict("no free private subnet left in the default pools (172.17-31.0.0/16, 192.168.0.0/16)")


@dataclass
class Pool:
    """One network's address pool: the subnet, its gateway and the file that records who has what."""

    network_id: str
    subnet: IPv4Network
    gateway: IPv4Address

    def path(self, config: EngineConfig) -> Path:
        return config.network_dir / "ipam" / f"{self.network_id}.json"


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


def allocate(config: EngineConfig, pool: Pool, container_id: str, requested: str | None = None) -> IPv4Address:
    """Give `container_id` an address of `pool` (the requested one if free). Call under `lock(config)`.

    An address already held by this container is returned again, so a retried start is idempotent.
    """
    state = _load(pool, config)
    addresses: dict[str, str] = state["addresses"]
    for ip, owner in addresses.items():
        if owner == container_id and (requested is None or ip == requested):
            return IPv4Address(ip)
    reserved = {pool.subnet.network_address, pool.subnet.broadcast_address, pool.gateway}
    if requested is not None:
        try:
            want = IPv4Address(requested)
        except ValueError:
            raise InvalidArgument(f"invalid IP address {requested!r}") from None
        if want not in pool.subnet or want in reserved:
            raise InvalidArgument(f"address {want} is not a usable host address of subnet {pool.subnet}")
        if str(want) in addresses:
            raise Conflict(f"address {want} is already in use by container {addresses[str(want)][:12]}")
        chosen = want
    else:
        chosen = _next_free(pool, state, reserved)
    addresses[str(chosen)] = container_id
    if requested is None:
        state["last"] = str(chosen)
    store_json(pool.path(config), state)
    return chosen


def _next_free(pool: Pool, state: dict, reserved: set[IPv4Address]) -> IPv4Address:
    first = int(pool.subnet.network_address) + 1
    last = int(pool.subnet.broadcast_address) - 1
    size = last - first + 1
    try:
        start = int(IPv4Address(state.get("last") or pool.gateway)) + 1
    except ValueError:
        start = first
    addresses = state["addresses"]
    for step in range(size):
        value = first + (start - first + step) % size
        candidate = IPv4Address(value)
        if candidate not in reserved and str(candidate) not in addresses:
            return candidate
    raise Conflict(
        f"no available IPv4 address in subnet {pool.subnet}: all {len(addresses)} addresses are in use"
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


def drop_pool(config: EngineConfig, pool: Pool) -> None:
    try:
        pool.path(config).unlink()
    except FileNotFoundError:
        pass


def mac_for(ip: IPv4Address) -> str:
    """Docker's MAC for an IPv4 address: 02:42 followed by the four octets."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ip.packed)
