"""A container's endpoints, as the container side drives them:
  prepare(config, id, name, spec, exposed_ports) -> NetworkPlan   before the process: the network,
      the address (IPAM), busy host ports refused, /etc/hosts and /etc/resolv.conf text, the link
      environment, all recorded in <root>/network/endpoints/<id>.json;
  attach(config, plan, pid)   once the process has its namespaces: the bridge, a veth pair (eth0
      made directly inside the namespace), addresses and routes, the DNAT rules;
  detach(config, id)   on stop: the veth pair and the port rules go (the address is kept);
  release(config, id)  on rm: detach, free the address, forget the record;
  connect/disconnect   a running container on a named network; rename follows a new name.

Every container's monitor imports this module, so it loads nothing it does not need on every run
(ports, links and pyroute2 are imported where used).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from engine import events
from engine.config import EngineConfig
from engine.errors import Conflict, DockuiError, InvalidArgument, NotFound
from engine.kernel.rtnetlink import Rtnl
from engine.network import hostsfiles, ipam
from engine.network.networks import get_network
from engine.network.plumbing import (
    _netns_inode,
    bridge_missing,
    bridge_ready,
    bring_up_loopback,
    configure_inside,
    configure_interface,
    create_veth,
    delete_link,
    ensure_bridge,
    iproute,
    netns_alive,
    rt_delete_link,
    start_ticks,
    unplug_in_background,
    unplugging,
    wait_links_gone,
    with_iproute,
)
from engine.network.records import (
    DEFAULT_MTU,
    DEFAULT_NETWORK,
    Endpoint,
    EndpointRecord,
    NetworkInfo,
    NetworkPlan,
    NetworkSpec,
    all_records,
    endpoints_of,
    load_network,
    load_record,
    record_path,
    save_record,
    veth_name,
)
from engine.util.fsutil import file_lock

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any

    from engine.network import (  # imported where needed: only with --link, -p/-P or for clean-up
        links,
        portmap,
    )



def _hosts_for(rec: EndpointRecord) -> str:
    """A container's /etc/hosts is its own, as Docker's (libnetwork's etchosts): `--add-host` and
    legacy-link lines, then `address<TAB>hostname` for each of its networks in the order it joined
    them (libnetwork appends one at every join; never the container's name: on a user-defined
    network the embedded DNS answers for names, on the default bridge nothing does). Peers on a
    user-defined network are never written in, so a container joining or leaving rewrites no other
    container's file, and a rename none at all."""
    eps = rec.endpoints
    text = hostsfiles.hosts_content(eps[0].ip if eps else None, [rec.hostname], rec.extra_hosts)
    if eps and eps[0].ip6:
        text += _own_line(eps[0].ip6, rec.hostname)
    return text + "".join(_own_lines(ep, rec.hostname) for ep in eps[1:])


def _own_line(ip: str, hostname: str) -> str:
    return f"{ip}\t{hostname}\n"


def _own_lines(ep: Endpoint, hostname: str) -> str:
    """What a join adds to the container's own /etc/hosts: its IPv4 address, then its IPv6 one
    (libnetwork's getEtcHostsAddrs order)."""
    return _own_line(ep.ip, hostname) + (_own_line(ep.ip6, hostname) if ep.ip6 else "")


class Wanted:
    """An interface `prepare` or `connect` sets up: the network, the addresses asked for (None:
    the next free one; on a restart the ones held), and what peers and the container know of it:
    aliases, links ((linked container, alias)), its MAC, the addresses the user asked for (Docker's
    IPAMConfig: static_ip, static_ip6, link_local).

    A plain slotted class, not a dataclass: every container's monitor imports this module, and
    making a dataclass costs ~0.9 ms of its start (measured: 9 fields, frozen). Never changed once made.
    """

    __slots__ = ("aliases", "ip", "ip6", "link_local", "links", "mac", "net", "static_ip", "static_ip6")

    def __init__(self, net: NetworkInfo, ip: str | None = None, ip6: str | None = None, aliases: tuple[str, ...] = (),
                 links: tuple[tuple[str, str], ...] = (), mac: str | None = None, static_ip: str = "",
                 static_ip6: str = "", link_local: tuple[str, ...] = ()) -> None:
        self.net, self.ip, self.ip6, self.aliases, self.links = net, ip, ip6, aliases, links
        self.mac, self.static_ip, self.static_ip6, self.link_local = mac, static_ip, static_ip6, link_local


def _resolve_link(config: EngineConfig, text: str, network_name: str) -> links.LinkTarget:
    from engine.network import links

    name, alias = links.parse_link(text)
    matches = [r for r in all_records(config) if r.name == name]
    if not matches:
        matches = [r for r in all_records(config) if r.container_id.startswith(name)]
    if len(matches) != 1:
        raise NotFound(f"could not get container for {name}" if not matches else f"{name} is ambiguous")
    rec = matches[0]
    eps = rec.on(network_name)
    if not eps:
        raise InvalidArgument(f"cannot link to {name}: it is not on network {network_name}")
    if not rec.attached:
        raise Conflict(f"cannot link to a non running container: /{rec.name}")
    return links.LinkTarget(
        name=rec.name, alias=alias, ip=eps[0].ip, hostname=rec.hostname,
        exposed_ports=list(rec.exposed_ports), env=list(rec.env),
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
        mapping
        for r in (all_records(config) if requests else ())
        if r.container_id != container_id
        for mapping in r.port_mappings()
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
    if (spec.ip is not None or spec.ip6 is not None) and mode == DEFAULT_NETWORK:
        raise InvalidArgument("user specified IP address is supported on user defined networks only")
    with ipam.lock(config):
        net = get_network(config, mode)
        if net.name == DEFAULT_NETWORK and spec.aliases:
            raise InvalidArgument("network-scoped alias is supported only for containers in user defined networks")
        old = load_record(config, container_id)
        extra_eps = [ep for ep in old.endpoints if ep.network != net.name] if old else []
        if net.name != DEFAULT_NETWORK or any(ep.network != DEFAULT_NETWORK for ep in extra_eps):
            # Docker's embedded DNS answers at 127.0.0.11 on a user network (engine.network.dns),
            # also for a default-bridge container that was connected to one
            from engine.network.dns.resolvconf import embedded_resolv_conf

            plan.resolv_conf = embedded_resolv_conf(host_resolv, spec.dns_search, spec.dns_options)
        endpoints = []
        try:
            before = old.on(net.name) if old else []  # connected again after a disconnect: its links stay
            if spec.endpoint_links:
                from engine.network import links

                primary_links = tuple(links.parse_link(text) for text in spec.endpoint_links)
            else:
                primary_links = tuple((a, b) for a, b in before[0].links) if before else ()
            link_local = tuple(ipam.parse_link_local(spec.link_local)) if spec.link_local else (
                tuple(before[0].link_local) if before else ())
            wanted = [Wanted(net, spec.ip, spec.ip6, tuple(spec.aliases), primary_links, spec.mac,
                             spec.ip or "", spec.ip6 or "", link_local)]
            wanted += [Wanted(get_network(config, ep.network), ep.ip, ep.ip6 or None, tuple(ep.aliases),
                              tuple((a, b) for a, b in ep.links), ep.mac, ep.static_ip, ep.static_ip6,
                              tuple(ep.link_local))
                       for ep in extra_eps]
            _allocate_endpoints(config, container_id, spec, wanted, endpoints)
            link_targets = [_resolve_link(config, text, net.name) for text in spec.links]
            ports = _resolve_ports(config, container_id, spec, exposed)
        except BaseException:
            if not old:
                for ep in endpoints:
                    ipam.release_all(config, get_network(config, ep.network).pools(), container_id)
            raise
        # Docker's special --add-host value: the host as the container reaches it (the gateway)
        extra = [(endpoints[0].gateway if ip == "host-gateway" else ip, names) for ip, names in extra]
        if link_targets and net.name == DEFAULT_NETWORK:  # Docker's legacy links: the default bridge only
            from engine.network import links

            for target in link_targets:
                plan.link_env += links.link_env(name, target)
                extra.append(links.hosts_entry(target))
        plan.links = [(t.name, t.alias) for t in link_targets]
        plan.endpoints = endpoints
        plan.ports = ports
        rec = _prepared_record(plan, old, extra, exposed, spec)
        save_record(config, rec)
        plan.hosts = _hosts_for(rec)
    return plan


def _allocate_endpoints(config: EngineConfig, container_id: str, spec: NetworkSpec, wanted: list[Wanted],
                        endpoints: list[Endpoint]) -> None:
    """The addresses of each of `wanted`: eth0 on the network asked for, then the networks the
    container was connected to, which keep their aliases and links. Each endpoint is appended as
    its addresses are taken, so a failure part-way can release them."""
    for index, want in enumerate(wanted):
        endpoints.append(_endpoint(config, container_id, want, f"eth{index}", spec.mtu or DEFAULT_MTU))


def _endpoint(config: EngineConfig, container_id: str, want: Wanted, ifname: str, mtu: int = DEFAULT_MTU) -> Endpoint:
    """An interface on `want.net` with its addresses allocated (IPv6 too on an IPv6 network);
    a static address is checked against the network first (Docker's words), so nothing is taken
    when one is refused."""
    n = want.net
    pool6 = n.pool6
    if want.ip6 is not None:
        want6 = ipam.parse_static(want.ip6, 6)
        if pool6 is None:
            raise InvalidArgument(f"no configured subnet contains IP address {want6}")
        ipam.check_static(pool6, want6)
    ip = ipam.allocate(config, n.pool, container_id, want.ip)
    ip6 = ""
    if pool6 is not None:
        try:
            ip6 = str(ipam.allocate(config, pool6, container_id, want.ip6))
        except BaseException:
            ipam.release(config, n.pool, container_id)
            raise
    return Endpoint(
        n.name, n.id, n.bridge, ifname, str(ip), n.prefixlen, n.gateway,
        want.mac or ipam.mac_for(ip), veth_name(container_id, n.id), mtu, n.internal, list(want.aliases),
        ip6, n.prefixlen6 if ip6 else 0, n.gateway6 if ip6 else "", [list(link) for link in want.links],
        want.static_ip, want.static_ip6, list(want.link_local),
    )


def _prepared_record(plan: NetworkPlan, old: EndpointRecord | None, extra: list, exposed: list[str],
                     spec: NetworkSpec) -> EndpointRecord:
    """The endpoint record `prepare` writes (attach, topology, the embedded DNS and reconcile read it)."""
    return EndpointRecord(
        container_id=plan.container_id,
        name=plan.name,
        hostname=plan.hostname,
        mode=plan.mode,
        state=old.state if old and old.pid else "prepared",
        pid=old.pid if old else None,
        endpoints=tuple(plan.endpoints),
        ports=tuple(p.to_dict() for p in plan.ports),
        links=tuple(plan.links),
        extra_hosts=tuple((ip, names) for ip, names in extra),
        exposed_ports=tuple(exposed),
        env=tuple(spec.env),
        dns=tuple(spec.dns),
        preparer=(os.getpid(), start_ticks(os.getpid())),
    )


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
                bridge_index = bridge_ready(rt, ep)
                if bridge_index is None:  # first use, or someone took it down: the slow, careful path
                    net = load_network(config, ep.network)
                    if net is None:
                        raise NotFound(f"network {ep.network} not found")
                    bridge_index = with_iproute(lambda ipr, n=net: ensure_bridge(ipr, n, config))
                if not bridge_missing(ep.host_veth):
                    rt_delete_link(rt, ep.host_veth)  # a leftover from a crash would block the name
                create_veth(rt, ep, bridge_index, pid)
                created.append(ep.host_veth)
        configure_inside(pid, plan.endpoints)
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
    if _on_user_network(plan.endpoints):  # before the process runs: its first query finds 127.0.0.11
        from engine.network.dns import client as dns

        dns.register(config, plan.container_id, pid)


def _on_user_network(endpoints: Any) -> bool:
    """Is any of these endpoints on a user-defined network (the container is the embedded DNS's)?"""
    return any(ep.network != DEFAULT_NETWORK for ep in endpoints)


def _join_embedded_dns(config: EngineConfig, container_id: str, pid: int) -> None:
    """A running container that had only the default bridge, connected to a user network: as
    Docker's (libnetwork starts the sandbox's resolver and rebuilds its resolv.conf), its
    resolv.conf becomes the embedded one (its search and options kept; its nameservers are where
    the resolver forwards, as the host's) and the resolver serves it from now on."""
    from engine.network.dns import client as dns
    from engine.network.dns.resolvconf import EMBEDDED_NAMESERVER, embedded_resolv_conf

    path = config.containers_dir / container_id / "resolv.conf"
    try:
        current = path.read_text()
    except FileNotFoundError:
        current = None
    if current is not None and f"nameserver {EMBEDDED_NAMESERVER}" not in current.splitlines():
        hostsfiles.write_in_place(path, embedded_resolv_conf(current))
    dns.register(config, container_id, pid)


def _record_attached(config: EngineConfig, plan: NetworkPlan, pid: int) -> None:
    """The endpoint record says "attached" (pid, namespace inode): what reconcile, links and the
    embedded DNS go by. Until then the record is "prepared", in flight while its preparer lives."""
    with ipam.lock(config):
        rec = load_record(config, plan.container_id)
        if rec is not None:
            save_record(config, replace(rec, state="attached", pid=pid, netns_inode=_netns_inode(pid)))
    events.network_endpoints(config, "connect", plan.container_id, plan.endpoints)


def _undo(config: EngineConfig, container_id: str, veths: list[str], had_ports: bool) -> None:
    try:
        with Rtnl() as rt:
            for name in veths:
                rt_delete_link(rt, name)
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
        rec = load_record(config, container_id)
        if rec is None:
            return []
        events.network_endpoints(config, "disconnect", container_id, endpoints_of(rec))
        return detach_locked(config, rec, wait)


def detach_locked(config: EngineConfig, rec: EndpointRecord, wait: bool = True, forget: bool = False) -> list[str]:
    """Veths, port rules and the record's state; `forget`: the caller deletes the record next.

    Host veths that an earlier detach(wait=False) of this process is deleting are not waited for
    here: that caller waits for them (monitor_finish, after its other work).
    """
    eps = endpoints_of(rec)
    present = [ep.host_veth for ep in eps if not bridge_missing(ep.host_veth)]
    going = [name for name in present if name in unplugging]
    todo = [name for name in present if name not in unplugging]
    started: list[str] = []
    if todo and (netns_alive(rec) or not rec.netns_inode):
        # A namespace still alive, or an unknown one (a crash before attach finished): undo it now.
        with Rtnl() as rt:
            for name in todo:
                rt_delete_link(rt, name)
    elif todo:
        # The namespace is dead (or held by a container sharing it, which must lose it as with
        # Docker): the kernel is or would be deleting the pairs; get them off the host sooner.
        unplug_in_background(todo)
        started = todo
    if rec.ports:
        from engine.network import portmap

        portmap.remove_rules(config, drop={rec.container_id})
        if eps:
            mappings = rec.port_mappings()
            try:
                portmap.flush_udp_conntrack(eps[0].ip, mappings)
            except Exception:  # noqa: BLE001 - conntrack support missing: entries just time out
                pass
    if rec.attached or not forget:  # the embedded DNS stops answering for it
        save_record(config, replace(rec, state="detached", pid=None))
    if wait:
        wait_links_gone(started)
        return []
    return going + started


def release(config: EngineConfig, container_id: str) -> None:
    """On rm: detach, give the addresses back and forget the container."""
    with ipam.lock(config):
        rec = load_record(config, container_id)
        if rec is None:
            return
        detach_locked(config, rec, forget=True)
        for ep in endpoints_of(rec):
            net = load_network(config, ep.network)
            ipam.release_all(config, net.pools() if net is not None else (), container_id)
        record_path(config, container_id).unlink(missing_ok=True)


def rename(config: EngineConfig, container_id: str, new_name: str) -> None:
    """`rename`: the topology and the embedded DNS follow the new name (no hosts file holds it)."""
    with ipam.lock(config):
        rec = load_record(config, container_id)
        if rec is None:
            return
        save_record(config, replace(rec, name=new_name))


def _find_record(config: EngineConfig, container: str) -> EndpointRecord:
    recs = all_records(config)
    exact = [r for r in recs if r.name == container or r.container_id == container]
    matches = exact or [r for r in recs if r.container_id.startswith(container)]
    if len(matches) != 1:
        raise NotFound(f"No such container: {container}" if not matches else f"{container} is ambiguous")
    return matches[0]


def _pid_alive(pid: int | None) -> bool:
    return bool(pid) and Path(f"/proc/{pid}/ns/net").exists()


def connect(config: EngineConfig, network: str, container: str, ip: str | None = None, aliases: list[str] | None = None,
            *, ip6: str | None = None, mac: str | None = None, links: tuple[tuple[str, str], ...] = (),
            link_local: tuple[str, ...] = ()) -> Endpoint:
    """`network connect`: add an interface on `network` (its addresses the ones asked for, else
    the next free ones; `mac` its MAC; `links` names only this container resolves there); plugged
    in now if the container runs."""
    net = get_network(config, network)
    if (ip is not None or ip6 is not None) and net.name == DEFAULT_NETWORK:
        raise InvalidArgument("user specified IP address is supported on user defined networks only")
    with ipam.lock(config):
        rec = _find_record(config, container)
        if rec.mode in ("host", "none") or rec.mode.startswith("container:"):
            raise Conflict(f"container {rec.name} does not use a bridge network")
        if rec.on(net.name):
            raise Conflict(f"endpoint with name {rec.name} already exists in network {net.name}")
        cid = rec.container_id
        want = Wanted(net, ip, ip6, tuple(aliases or ()), tuple(links), mac, ip or "", ip6 or "",
                      tuple(ipam.parse_link_local(link_local)))
        ep = _endpoint(config, cid, want, f"eth{len(rec.endpoints)}")
        running = rec.attached and _pid_alive(rec.pid)
        if running:
            try:
                with iproute() as ipr:
                    bridge_index = ensure_bridge(ipr, net, config)
                    delete_link(ipr, ep.host_veth)
                    ipr.link(
                        "add", ifname=ep.host_veth, kind="veth", master=bridge_index, state="up",
                        peer={"ifname": ep.ifname, "net_ns_pid": rec.pid, "address": ep.mac},
                    )
                configure_interface(rec.pid, ep)
            except BaseException:
                ipam.release_all(config, net.pools(), cid)
                with_iproute(lambda ipr: delete_link(ipr, ep.host_veth))
                raise
        rec = replace(rec, endpoints=(*rec.endpoints, ep))
        save_record(config, rec)  # its names there resolve through the embedded DNS from now on
        hosts_path = config.containers_dir / cid / "hosts"
        if running and hosts_path.exists():  # Docker's join appends its addresses there to its own hosts
            with open(hosts_path, "a") as hosts:
                hosts.write(_own_lines(ep, rec.hostname))
    if running and net.name != DEFAULT_NETWORK:
        _join_embedded_dns(config, cid, rec.pid)
    events.network(config, "connect", net.id, net.name, cid)
    return ep


def disconnect(config: EngineConfig, network: str, container: str) -> None:
    """`network disconnect`: remove the container's interface on `network` and free its address."""
    net = get_network(config, network)
    with ipam.lock(config):
        rec = _find_record(config, container)
        eps = rec.on(net.name)
        if not eps:
            raise NotFound(f"container {rec.name} is not connected to network {net.name}")
        with iproute() as ipr:
            for ep in eps:
                delete_link(ipr, ep.host_veth)
        ipam.release_all(config, net.pools(), rec.container_id)
        rec = replace(rec, endpoints=tuple(ep for ep in rec.endpoints if ep.network != net.name))
        if rec.ports and not rec.endpoints:
            from engine.network import portmap

            portmap.remove_rules(config, drop={rec.container_id})
            rec = replace(rec, ports=())
        save_record(config, rec)
    events.network(config, "disconnect", net.id, net.name, rec.container_id)
