"""A container's network connects made before its first start (compose connects a service's other
networks between create and start): kept in its HostConfig under `PENDING_NETWORKS`, shown by
inspect as Docker shows a planned endpoint, and joined right after the first start.

Pure values: the record's JSON entries and the typed `PendingNetwork` they are read into.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.container.state import PENDING_NETWORKS

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any


def parse_links(texts: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """`--link name[:alias]` values (the CLI's and EndpointConfig.Links) -> (name, alias) pairs."""
    from engine.network import links

    return tuple(links.parse_link(text) for text in texts)


@dataclass(frozen=True)
class PendingNetwork:
    """A `network connect` of a container that never ran (compose connects a service's other
    networks between create and start): kept in its HostConfig, joined right after its first start."""

    network: str
    ipv4_address: str | None
    aliases: tuple[str, ...]
    ipv6_address: str | None = None
    mac_address: str | None = None
    links: tuple[tuple[str, str], ...] = ()
    link_local_ips: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = {"Network": self.network, "IPv4Address": self.ipv4_address, "Aliases": list(self.aliases)}
        if self.ipv6_address:
            data["IPv6Address"] = self.ipv6_address
        if self.mac_address:
            data["MacAddress"] = self.mac_address
        if self.links:
            data["Links"] = [f"{name}:{alias}" for name, alias in self.links]
        if self.link_local_ips:
            data["LinkLocalIPs"] = list(self.link_local_ips)
        return data

    def settings(self) -> dict[str, Any]:
        """What Docker's inspect shows of the endpoint before it exists: the configured addresses,
        MAC and links."""
        ipam: dict[str, Any] = {k: v for k, v in (("IPv4Address", self.ipv4_address), ("IPv6Address", self.ipv6_address)) if v}
        if self.link_local_ips:
            ipam["LinkLocalIPs"] = list(self.link_local_ips)
        return {"IPAMConfig": ipam or None, "MacAddress": self.mac_address or "",
                "Links": [f"{name}:{alias}" for name, alias in self.links] or None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PendingNetwork:
        return cls(str(data["Network"]), data.get("IPv4Address") or None, tuple(data.get("Aliases") or ()),
                   data.get("IPv6Address") or None, data.get("MacAddress") or None,
                   parse_links(data.get("Links") or ()), tuple(data.get("LinkLocalIPs") or ()))


def pending_networks(host_config: dict[str, Any]) -> list[PendingNetwork]:
    return [PendingNetwork.from_json(entry) for entry in host_config.get(PENDING_NETWORKS) or []]
