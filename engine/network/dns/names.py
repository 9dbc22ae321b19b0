"""Who answers to which name, on which network: the embedded resolver's view of the endpoint
records (<root>/network/endpoints/<id>.json), the only source of truth, read again whenever that
directory changed.

A container asking resolves the names of the running containers (endpoint state "attached") that
share one of its user-defined networks: their container name, hostname, short ID and the aliases
of their endpoint on that network (`--network-alias`, `network connect --alias`, Compose's service
names), each also as `<name>.<network>`, with their IPv4 and (on an IPv6 network) IPv6 addresses;
and, for the container that was created or connected with it only, a `--link name:alias` alias of
a container on a shared user network (Docker's link on a user-defined network is a name the
embedded DNS gives it, never a line of /etc/hosts; a link given at `network connect` resolves on
that network only, as libnetwork's endpoint aliases). The default bridge is never part of it
(Docker's legacy network: links and /etc/hosts only).

Invariant: a container is never told a name that lives only on a network it is not on, and a
container that stopped or was removed is gone from the answers as soon as its record says so.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from engine.config import EngineConfig
from engine.network.records import DEFAULT_NETWORK, EndpointRecord, all_records, endpoints_dir

# A directory changed this recently may change again within the same mtime tick: not trusted.
_SETTLE_SECONDS = 0.05


@dataclass(frozen=True)
class Entry:
    """One container's address on one user-defined network and the names it has there."""

    container_id: str
    network: str
    ip: str
    names: frozenset[str]
    display: str  # the name a reverse lookup gives: `<container name>.<network>`
    ip6: str = ""  # its IPv6 address there, on an IPv6 network


@dataclass(frozen=True)
class Member:
    """A container as a client of the resolver: its user networks, its own --dns servers,
    whether any of its networks reaches beyond itself (not --internal), and its `--link` aliases
    as (alias, linked container's name), lower case."""

    container_id: str
    networks: frozenset[str]
    dns: tuple[str, ...]
    external: bool
    links: tuple[tuple[str, str, str], ...] = ()  # (alias, linked name, network: "" for any of its networks)

    def linked(self, name: str) -> tuple[str, frozenset[str]]:
        """The name to look up, and on which networks: the linked container's name (on the
        link's network) when `name` is one of this container's link aliases."""
        for alias, target, network in self.links:
            if alias == name:
                return target, frozenset({network}) if network else self.networks
        return name, self.networks


def _entries(rec: EndpointRecord) -> list[Entry]:
    if not rec.attached:
        return []
    cid = rec.container_id
    own = {rec.name or "", rec.hostname or "", cid[:12]}
    out = []
    for ep in rec.endpoints:
        if ep.network == DEFAULT_NETWORK:
            continue
        names = {n.lower() for n in own | set(ep.aliases or []) if n}
        names |= {f"{n}.{ep.network.lower()}" for n in names}
        out.append(Entry(cid, ep.network, ep.ip, frozenset(names), f"{rec.name or cid[:12]}.{ep.network}", ep.ip6))
    return out


def _member(rec: EndpointRecord) -> Member:
    networks = frozenset(rec.networks() - {DEFAULT_NETWORK})
    external = any(not ep.internal for ep in rec.endpoints)
    links = [(alias.lower(), target.lower(), ep.network) for ep in rec.endpoints if ep.network != DEFAULT_NETWORK
             for target, alias in ep.links]
    links += [(alias.lower(), target.lower(), "") for target, alias in rec.links]
    return Member(rec.container_id, networks, rec.dns, external, tuple(links))


class NameTable:
    """The names of one engine root, re-read from the records when their directory changes."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._stamp: int | None = None
        self._entries: list[Entry] = []
        self._members: dict[str, Member] = {}

    def refresh(self) -> None:
        try:
            mtime = os.stat(endpoints_dir(self.config)).st_mtime_ns
        except FileNotFoundError:
            mtime = 0
        if mtime == self._stamp:
            return
        records = all_records(self.config)
        self._entries = [e for rec in records for e in _entries(rec)]
        self._members = {rec.container_id: _member(rec) for rec in records}
        settled = time.time_ns() - mtime > _SETTLE_SECONDS * 1e9
        self._stamp = mtime if settled else None

    def member(self, container_id: str) -> Member | None:
        self.refresh()
        return self._members.get(container_id)

    def lookup(self, container_id: str, name: str, v6: bool = False) -> list[str] | None:
        """The IPv4 (`v6`: IPv6) addresses `name` has for this container (None: not a name of its
        networks; an empty list: a name without an address of that version)."""
        member = self.member(container_id)
        if member is None or not member.networks:
            return None
        name, networks = member.linked(name)
        found = [e for e in self._entries if e.network in networks and name in e.names]
        if not found:
            return None
        return list(dict.fromkeys(e.ip6 if v6 else e.ip for e in found if (e.ip6 if v6 else e.ip)))

    def reverse(self, container_id: str, ip: str) -> str | None:
        member = self.member(container_id)
        if member is None:
            return None
        for e in self._entries:
            if e.network in member.networks and ip in (e.ip, e.ip6):
                return e.display
        return None
