"""Named networks (`docker network create/ls/rm/prune`) and the default `bridge`: their records,
subnets chosen by engine.network.ipam, and their bridges (created on first use, removed with the
network; a bridge this root no longer records is collected).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from engine import events
from engine.config import EngineConfig
from engine.errors import Conflict, InvalidArgument, NotFound
from engine.network import ipam
from engine.network.plumbing import (
    ALIAS_PREFIX,
    bridge_missing,
    delete_link,
    ensure_bridge,
    iproute,
    with_iproute,
)
from engine.network.records import (
    DEFAULT_NETWORK,
    PREDEFINED,
    EndpointRecord,
    NetworkInfo,
    _now,
    all_networks,
    all_records,
    load_network,
    network_path,
    save_network,
)
from engine.util.fsutil import file_lock

TYPE_CHECKING = False
if TYPE_CHECKING:
    from engine.network.ipamconfig import SubnetRequest


def our_bridges(config: EngineConfig) -> list[str]:
    return [config.bridge_name] + [n.bridge for n in all_networks(config) if n.bridge != config.bridge_name]


def _used_subnets(config: EngineConfig, exclude: str | None = None, family: int = 4) -> list[ipam.IPNetwork]:
    """The host's networks plus this root's other networks (not yet all have a bridge)."""
    used = ipam.host_networks(exclude_ifnames=our_bridges(config), family=family)
    for n in all_networks(config):
        if n.name != exclude:
            subnet = n.subnet if family == 4 else (n.subnet6 if n.ipv6 else "")
            if subnet:
                used.append(ipam.ipaddress.ip_network(subnet))
    return used


def default_network(config: EngineConfig) -> NetworkInfo:
    """The `bridge` network: its subnet chosen once, persisted, and re-checked against the host.

    `config.bridge_ip` (--bip) wins. A persisted subnet that the host has since started using is
    replaced, but only while no container holds an address in it. Call under `ipam.lock`.
    """
    current = load_network(config, DEFAULT_NETWORK)
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
        save_network(config, net)
        return net
    if current is not None and current.bridge == config.bridge_name:
        if bridge_missing(current.bridge) and not ipam.in_use(config, current.pool):
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
        save_network(config, net)
        # Hold the subnet on the host at once, so a concurrent engine sees it as used.
        with_iproute(lambda ipr: ensure_bridge(ipr, net, config))
    return net


def collect_abandoned_bridges(config: EngineConfig) -> list[str]:
    """Delete other engines' idle bridges: any whose root is gone, and default bridges whose root
    holds no container at all.

    Each default bridge takes a /16 of a small pool (15 of them, then 16 /20s); test suites that
    make a fresh root per test would otherwise exhaust it. A bridge qualifies only if its ifalias
    says dockui made it, it has no port, and its root has no endpoint record; such a root chooses
    its subnet again (and re-creates the bridge) on its next container. Call under HOST_LOCK.

    A root whose network state is gone (the root itself, or only its `network` directory: a wiped
    or unmounted root) is abandoned. A live root's bridge is judged and deleted under that root's
    network lock (`ipam.lock`), taken
    without waiting: a root busy with its network (preparing a container, removing its bridges) is
    left alone, and one that starts meanwhile waits until the deletion is over. So no root ever
    sees its bridge half deleted by another (the bridge's `brif` gone, its /sys/class/net entry
    not yet: its own removal then skipped it, and its next look still found it).
    """
    removed = []
    base = Path("/sys/class/net")
    for entry in base.iterdir() if base.is_dir() else ():
        owner = _foreign_bridge(entry, config)
        if owner is None:
            continue
        table, net_name, root = owner
        if (root / "network" / "lock").exists():  # a live root (it makes its lock before any bridge)
            if net_name != DEFAULT_NETWORK:
                continue  # a named network lives as long as its root: its subnet is its identity
            with _lock_if_free(root / "network" / "lock") as held:
                if not held or _foreign_bridge(entry, config) != owner or _has_endpoints(root):
                    continue
                with_iproute(lambda ipr, name=entry.name: delete_link(ipr, name))
        else:
            with_iproute(lambda ipr, name=entry.name: delete_link(ipr, name))
            if table.startswith("dockui"):
                import subprocess  # rare: only for an abandoned root's table

                subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True)  # noqa: S603,S607
        removed.append(entry.name)
    return removed


def _foreign_bridge(entry: Path, config: EngineConfig) -> tuple[str, str, Path] | None:
    """(nft table, network name, root) of a portless bridge another dockui root made, from its
    ifalias; None for anything else, or for a link that vanished while it was looked at."""
    try:
        alias = (entry / "ifalias").read_text().strip()
        if not alias.startswith(ALIAS_PREFIX) or not (entry / "bridge").is_dir() or any((entry / "brif").iterdir()):
            return None
    except OSError:
        return None
    table, _, rest = alias[len(ALIAS_PREFIX) :].partition(":")
    net_name, _, root = rest.partition(":")
    if not root or Path(root) == config.root:
        return None
    return table, net_name, Path(root)


def _has_endpoints(root: Path) -> bool:
    endpoints = root / "network" / "endpoints"
    return endpoints.is_dir() and any(endpoints.glob("*.json"))


@contextmanager
def _lock_if_free(path: Path) -> Iterator[bool]:
    """Another root's network lock, held for the block if it was free (True), else False at once;
    False too if it went meanwhile (never created in another root's directory)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def get_network(config: EngineConfig, name: str) -> NetworkInfo:
    """A network by full ID, name or ID prefix, in moby's order (FindNetwork): any name is allowed,
    so a network named like another's ID must not stand in for it (`bridge` is made on first use)."""
    if name == DEFAULT_NETWORK:
        with ipam.lock(config):
            return default_network(config)
    networks = all_networks(config) if len(name) == 64 else []
    net = next((n for n in networks if n.id == name), None) or load_network(config, name)
    if net:
        return net
    matches = [n for n in all_networks(config) if n.id.startswith(name)] if len(name) >= 3 else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise NotFound(f"network {name} is ambiguous ({len(matches)} matches)")
    raise NotFound(f"network {name} not found")


def _pick(config: EngineConfig, request: SubnetRequest | None, version: int) -> ipam.IPNetwork:
    """The requested subnet (refused when it overlaps one in use), else the next free one."""
    used = _used_subnets(config, family=version)
    if request is not None and request.subnet:
        chosen = ipam.parse_subnet(request.subnet)
        if chosen.version != version:
            raise InvalidArgument(f"invalid subnet {request.subnet}: not an IPv{version} subnet")
        clash = [str(u) for u in used if ipam.overlaps_any(chosen, [u])]
        if clash:
            raise Conflict(f"invalid pool request: pool {chosen} overlaps with {clash[0]} already in use")
        return chosen
    return ipam.choose_subnet(used) if version == 4 else ipam.choose_subnet6(str(config.root), used)


def ipv6_available() -> bool:
    """Is IPv6 on in this kernel (not disabled at boot or by sysctl)?"""
    try:
        return Path("/proc/sys/net/ipv6/conf/all/disable_ipv6").read_text().strip() == "0"
    except OSError:
        return False


def create_network(
    config: EngineConfig, name: str, subnet: str | None = None, gateway: str | None = None, internal: bool = False,
    *, configs: tuple[SubnetRequest, ...] = (), ipv6: bool = False,
) -> NetworkInfo:
    """`network create`: a bridge `br-<12 hex>` with its own subnet (chosen like Docker's if not
    given), IPv6 too with `ipv6`. An IPv6 config without `ipv6` is ignored, as Docker's."""
    from engine.network import ipamconfig  # network create only: its types cost every monitor otherwise

    ipamconfig.check_name(name)
    v4, v6 = ipamconfig.requests(subnet, gateway, configs)
    if ipv6 and not ipv6_available():
        raise InvalidArgument("IPv6 is disabled in this host's kernel (net.ipv6.conf.all.disable_ipv6): cannot create an IPv6 network")
    with ipam.lock(config):
        if load_network(config, name):
            raise Conflict(f"network with name {name} already exists")
        net_id = os.urandom(32).hex()
        with file_lock(ipam.HOST_LOCK):
            collect_abandoned_bridges(config)
            four = ipamconfig.family(v4, _pick(config, v4, 4))
            six = ipamconfig.family(v6, _pick(config, v6, 6)) if ipv6 else None
            net = NetworkInfo(
                name, net_id, f"br-{net_id[:12]}", str(four.subnet), str(four.gateway), _now(), internal,
                ip_range=str(four.ip_range or ""), aux_addresses=four.aux, ipv6=six is not None,
                subnet6=str(six.subnet) if six else "", gateway6=str(six.gateway) if six else "",
                ip_range6=str(six.ip_range or "") if six else "", aux_addresses6=six.aux if six else {},
            )
            save_network(config, net)
            try:
                with_iproute(lambda ipr: ensure_bridge(ipr, net, config))
            except BaseException:
                network_path(config, name).unlink(missing_ok=True)
                with_iproute(lambda ipr: delete_link(ipr, net.bridge))
                raise
    events.network(config, "create", net.id, net.name)
    return net


def list_networks(config: EngineConfig) -> list[NetworkInfo]:
    """The networks of this root (the default `bridge` once chosen)."""
    return all_networks(config)


def containers_on(config: EngineConfig, net_name: str) -> list[EndpointRecord]:
    return [r for r in all_records(config) if r.on(net_name)]


def remove_network(config: EngineConfig, name: str) -> str:
    """`network rm`: refused while a container is connected; deletes the bridge."""
    net = get_network(config, name) if name not in PREDEFINED else None
    if net is None or net.name in PREDEFINED:  # also by its ID or a prefix of it
        raise Conflict(f"{net.name if net else name} is a pre-defined network and cannot be removed")
    with ipam.lock(config):
        users = containers_on(config, net.name)
        if users:
            raise Conflict(
                f"error while removing network: network {net.name} id {net.id} has active endpoints "
                f"({', '.join(r.name for r in users)})"
            )
        with iproute() as ipr:
            delete_link(ipr, net.bridge)
        for pool in net.pools():
            ipam.drop_pool(config, pool)
        network_path(config, net.name).unlink(missing_ok=True)
    events.network(config, "destroy", net.id, net.name)
    return net.name


def prune_networks(config: EngineConfig, selected: Callable[[NetworkInfo], bool] | None = None) -> list[str]:
    """`network prune`: remove every user network no container uses (that `selected` lets go)."""
    removed = []
    for net in all_networks(config):
        if net.default or net.name in PREDEFINED or (selected is not None and not selected(net)):
            continue
        try:
            removed.append(remove_network(config, net.name))
        except Conflict:
            continue
    return removed


def remove_bridges(config: EngineConfig) -> list[str]:
    """Delete this root's bridges that have no port, and its nft table if empty (for a root that is
    being thrown away, e.g. at the end of a test; Docker keeps docker0, and so does a normal engine)."""
    from engine.network import portmap

    removed = []
    with ipam.lock(config):
        for name in our_bridges(config):
            brif = Path("/sys/class/net", name, "brif")
            if brif.is_dir() and not any(brif.iterdir()):
                with_iproute(lambda ipr, n=name: delete_link(ipr, n))
                removed.append(name)
        portmap.remove_rules(config, keep={r.container_id for r in all_records(config)})
    return removed
