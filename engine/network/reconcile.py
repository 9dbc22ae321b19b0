"""`reconcile(config, live_ids)`: undo what a crashed engine or monitor left behind on the network
side (veth pairs, port rules, addresses of containers that are gone, bridges of removed networks),
run by the container side's reconcile when a monitor was found dead.

A container still being prepared (its record younger than PREPARE_GRACE_SECONDS, its process
alive) is never taken for a leftover.
"""

from __future__ import annotations

import time

from engine.config import EngineConfig
from engine.network import ipam
from engine.network.endpoint import detach_locked
from engine.network.networks import our_bridges
from engine.network.plumbing import (
    _netns_inode,
    bridge_missing,
    delete_link,
    iproute,
    link_index,
    start_ticks,
)
from engine.network.records import EndpointRecord, all_records, endpoints_of, load_network, record_path


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
        live |= {r.container_id for r in records if _in_flight(config, r)}
        keep_veths = set()
        for rec in records:
            cid = rec.container_id
            if cid in live:
                keep_veths |= {ep.host_veth for ep in rec.endpoints}
                continue
            if rec.attached or rec.ports:
                detach_locked(config, rec)
                report["detached"].append(cid)
            if not (config.containers_dir / cid).exists():
                for ep in endpoints_of(rec):
                    net = load_network(config, ep.network)
                    ipam.release_all(config, net.pools() if net is not None else (), cid)
                record_path(config, cid).unlink(missing_ok=True)
                report["released"].append(cid)
        bridges = [b for b in our_bridges(config) if not bridge_missing(b)]
        if bridges:
            with iproute() as ipr:
                indexes = {link_index(ipr, b) for b in bridges}
                for link in ipr.get_links():
                    name = link.get_attr("IFLA_IFNAME")
                    if link.get_attr("IFLA_MASTER") in indexes and name.startswith("veth") and name not in keep_veths:
                        delete_link(ipr, name)
                        report["veths"].append(name)
        from engine.network import portmap

        removed = portmap.remove_rules(config, keep=live)
        if removed:
            report["rules"].append(str(removed))
    return report


PREPARE_GRACE_SECONDS = 120


def _in_flight(config: EngineConfig, rec: EndpointRecord) -> bool:
    """Is this container's network in use whatever the caller believes (its process still holds
    the namespace we plugged, or prepare ran moments ago)?"""
    if rec.attached and rec.pid:
        return rec.netns_inode is not None and _netns_inode(rec.pid) == rec.netns_inode
    if rec.state == "prepared":
        preparer = rec.preparer
        if preparer:  # the process that prepared it (the container's monitor) is still at work
            return start_ticks(preparer[0]) == preparer[1]
        try:
            age = time.time() - record_path(config, rec.container_id).stat().st_mtime
        except OSError:
            return False
        return age < PREPARE_GRACE_SECONDS
    return False
