"""Where the embedded resolver sends the names it does not know: the container's own `--dns`
servers, else the engine's `dns_upstreams` setting, else the host's /etc/resolv.conf nameservers
(read again when the file changes), else Docker's fallback 8.8.8.8/8.8.4.4.

The resolver runs in the host's network namespace, so a loopback nameserver of the host (a local
caching resolver, systemd-resolved's 127.0.0.53) is reachable and kept, as Docker's embedded DNS
keeps it; only the containers' own resolv.conf may not name one.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InvalidArgument

HOST_RESOLV_CONF = Path("/etc/resolv.conf")
FALLBACK = ("8.8.8.8", "8.8.4.4")


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int
    v6: bool


def parse_upstream(text: str) -> Upstream:
    """`1.2.3.4`, `1.2.3.4:5353`, `::1`, `[::1]:5353` -> Upstream; InvalidArgument otherwise."""
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ("53" if not rest else "")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    try:
        address = ipaddress.ip_address(host.split("%")[0])
        number = int(port)
    except ValueError:
        raise InvalidArgument(f"invalid DNS server {text!r}: expected an IP address with an optional :port") from None
    if not 0 < number < 65536:
        raise InvalidArgument(f"invalid DNS server {text!r}: port out of range")
    return Upstream(host, number, address.version == 6)


class HostServers:
    """The host's nameservers, re-read only when /etc/resolv.conf changes."""

    def __init__(self, path: Path = HOST_RESOLV_CONF) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._servers: tuple[str, ...] = ()

    def servers(self) -> tuple[str, ...]:
        try:
            st = os.stat(self.path)
            stamp = (st.st_ino, st.st_mtime_ns)
        except OSError:
            return ()
        if stamp != self._stamp:
            try:
                lines = self.path.read_text().splitlines()
            except OSError:
                return ()
            self._servers = tuple(
                f[1] for f in (line.split() for line in lines) if len(f) > 1 and f[0] == "nameserver"
            )
            self._stamp = stamp
        return self._servers


def choose(container_dns: tuple[str, ...], configured: tuple[str, ...], host: HostServers) -> list[Upstream]:
    """The servers to try, in order, for one container's query."""
    for texts in (container_dns, configured, host.servers(), FALLBACK):
        found = []
        for text in texts:
            try:
                found.append(parse_upstream(text))
            except InvalidArgument:
                continue
        if found:
            return found
    return []
