"""Published ports (`-p`, `-P`): parsing, the busy-port check, and the DNAT rules that implement them.

Design (see docs/network.md): no userland proxy. Each engine root has one nftables table
(`ip dockui` for the default bridge name, `ip dockui_<bridge>` otherwise) with NAT chains on the
prerouting and output hooks, so both traffic arriving from outside and traffic the host sends
itself (to 127.0.0.1 or any local address) is DNATed to the container. Traffic from the host's
loopback needs `route_localnet` on the bridge and a masquerade to the bridge address for packets
leaving 127.0.0.0/8 towards the container (Docker does the same without its proxy); a raw-priority
rule drops packets from the bridge to 127.0.0.0/8 so containers cannot reach the host's loopback
services through it (CVE-2020-8558). Every rule carries the comment `dk:<container id>`; stop
deletes that container's rules, and the table goes when it is empty, so clean-up is exact.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import socket
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.config import EngineConfig
from engine.errors import Conflict, DockuiError, InvalidArgument

PROTOCOLS = ("tcp", "udp")
COMMENT_PREFIX = "dk:"


@dataclass(frozen=True)
class PortRequest:
    """One `-p` mapping as asked for; host_port 0 means 'any free port'."""

    host_ip: str  # "" = all addresses
    host_port: int
    container_port: int
    proto: str


@dataclass(frozen=True)
class PortMapping:
    """A mapping in force: host_ip "0.0.0.0" when published on every address."""

    host_ip: str
    host_port: int
    container_port: int
    proto: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PortMapping:
        return cls(d["host_ip"], int(d["host_port"]), int(d["container_port"]), d["proto"])


def _port_range(text: str, what: str, spec: str) -> list[int]:
    lo, sep, hi = text.partition("-")
    try:
        start = int(lo)
        end = int(hi) if sep else start
    except ValueError:
        raise InvalidArgument(f"invalid {what} in {spec!r}: {text!r} is not a port number") from None
    if not (1 <= start <= 65535 and 1 <= end <= 65535) or end < start:
        raise InvalidArgument(f"invalid {what} in {spec!r}: ports are 1-65535")
    return list(range(start, end + 1))


def parse_publish(spec: str) -> list[PortRequest]:
    """`[hostIP:][hostPort:]containerPort[/tcp|udp]` (ports may be ranges of equal length)."""
    text, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise InvalidArgument(f"invalid protocol {proto!r} in {spec!r}: use tcp or udp")
    host_ip = ""
    if text.startswith("["):
        raise InvalidArgument(f"invalid -p {spec!r}: IPv6 host addresses are not supported")
    parts = text.rsplit(":", 2)
    if len(parts) == 3:
        host_ip, host_part, container_part = parts
    elif len(parts) == 2:
        host_part, container_part = parts
    else:
        host_part, container_part = "", parts[0]
    if host_ip:
        try:
            ipaddress.IPv4Address(host_ip)
        except ValueError:
            raise InvalidArgument(f"invalid host IP {host_ip!r} in -p {spec!r}") from None
        if host_ip == "0.0.0.0":
            host_ip = ""
    if not container_part:
        raise InvalidArgument(f"invalid -p {spec!r}: no container port")
    container_ports = _port_range(container_part, "container port", spec)
    if host_part and host_part != "0":  # host port 0 is any free port, as Docker's (testcontainers sends it)
        host_ports = _port_range(host_part, "host port", spec)
        if len(host_ports) != len(container_ports):
            raise InvalidArgument(f"invalid -p {spec!r}: host and container port ranges differ in length")
    else:
        host_ports = [0] * len(container_ports)
    return [PortRequest(host_ip, h, c, proto) for h, c in zip(host_ports, container_ports, strict=True)]


def exposed_requests(exposed_ports: Iterable[str]) -> list[PortRequest]:
    """`-P`: every exposed port ("80/tcp") to a free host port on all addresses."""
    requests = []
    for item in exposed_ports:
        number, _, proto = str(item).partition("/")
        for port in _port_range(number, "exposed port", str(item)):
            requests.append(PortRequest("", 0, port, (proto or "tcp").lower()))
    return requests


def _overlaps(a_ip: str, b_ip: str) -> bool:
    return a_ip in ("", "0.0.0.0") or b_ip in ("", "0.0.0.0") or a_ip == b_ip


def probe_bind(host_ip: str, port: int, proto: str) -> None:
    """Raise Conflict if something on the host already holds the port (a listener, a bound UDP socket)."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore TIME_WAIT leftovers
        try:
            sock.bind((host_ip or "0.0.0.0", port))
        except OSError as exc:
            where = f"{host_ip or '0.0.0.0'}:{port}/{proto}"
            if exc.errno == errno.EADDRINUSE:
                raise Conflict(f"Bind for {where} failed: port is already allocated") from None
            raise Conflict(f"Bind for {where} failed: {exc.strerror}") from None


def local_port_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def resolve(requests: list[PortRequest], taken: Iterable[PortMapping]) -> list[PortMapping]:
    """Give each request a concrete free host port; refuse ones already in use.

    `taken` are the mappings of this engine's other containers (their ports have no listener on the
    host, only DNAT rules, so a bind test alone would not see them).
    """
    used = list(taken)
    result: list[PortMapping] = []
    for req in requests:
        if req.host_port:
            for other in used:
                if other.proto == req.proto and other.host_port == req.host_port and _overlaps(other.host_ip, req.host_ip):
                    raise Conflict(
                        f"Bind for {req.host_ip or '0.0.0.0'}:{req.host_port}/{req.proto} failed: port is already allocated"
                    )
            probe_bind(req.host_ip, req.host_port, req.proto)
            port = req.host_port
        else:
            port = _free_port(req, used)
        mapping = PortMapping(req.host_ip or "0.0.0.0", port, req.container_port, req.proto)
        used.append(mapping)
        result.append(mapping)
    return result


def _free_port(req: PortRequest, used: list[PortMapping]) -> int:
    lo, hi = local_port_range()
    busy = {m.host_port for m in used if m.proto == req.proto and _overlaps(m.host_ip, req.host_ip)}
    for port in range(lo, hi + 1):
        if port in busy:
            continue
        try:
            probe_bind(req.host_ip, port, req.proto)
        except Conflict:
            continue
        return port
    raise Conflict(f"no free host port left in {lo}-{hi} for {req.container_port}/{req.proto}")


# ---- nftables ---------------------------------------------------------------------------------


def table_name(config: EngineConfig) -> str:
    """One table per engine instance (its bridge name tells it apart), so `nft delete table` cleans all."""
    return "dockui" if config.bridge_name == "dockui0" else f"dockui_{config.bridge_name}"


def _nft(script: str, *args: str) -> str:
    try:
        import subprocess  # only with published ports

        proc = subprocess.run(["nft", *args, "-f", "-"], input=script, capture_output=True, text=True)
    except FileNotFoundError:
        raise DockuiError("publishing ports needs nftables' `nft` (apt-get install nftables)") from None
    if proc.returncode != 0:
        raise DockuiError(f"nft failed: {proc.stderr.strip()}")
    return proc.stdout


def _nft_json(table: str) -> list[dict]:
    try:
        import subprocess

        proc = subprocess.run(["nft", "-j", "-a", "list", "table", "ip", table], capture_output=True, text=True)
    except FileNotFoundError:
        return []  # without nft no rule of ours can exist
    if proc.returncode != 0:
        return []  # no such table
    return json.loads(proc.stdout).get("nftables", [])


def rules_script(table: str, container_id: str, bridge: str, container_ip: str, mappings: list[PortMapping]) -> str:
    """The nft commands that publish `mappings` for one container (idempotent table/chain set-up first)."""
    comment = f'comment "{COMMENT_PREFIX}{container_id}"'
    lines = [
        f"add table ip {table}",
        f"add chain ip {table} guard {{ type filter hook prerouting priority raw; policy accept; }}",
        f"add chain ip {table} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}",
        f"add chain ip {table} output {{ type nat hook output priority -100; policy accept; }}",
        f"add chain ip {table} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}",
        # route_localnet must not let containers reach the host's loopback services (CVE-2020-8558).
        f'add rule ip {table} guard iifname "{bridge}" ip daddr 127.0.0.0/8 drop {comment}',
    ]
    for m in mappings:
        match_ip = "" if m.host_ip == "0.0.0.0" else f"ip daddr {m.host_ip} "
        target = f"dnat to {container_ip}:{m.container_port}"
        lines.append(
            f"add rule ip {table} prerouting fib daddr type local {match_ip}{m.proto} dport {m.host_port} {target} {comment}"
        )
        lines.append(
            f"add rule ip {table} output fib daddr type local {match_ip}{m.proto} dport {m.host_port} {target} {comment}"
        )
        if m.host_ip == "0.0.0.0" or ipaddress.IPv4Address(m.host_ip).is_loopback:
            lines.append(
                f'add rule ip {table} postrouting oifname "{bridge}" ip saddr 127.0.0.0/8 '
                f"ip daddr {container_ip} {m.proto} dport {m.container_port} masquerade {comment}"
            )
    return "\n".join(lines) + "\n"


def install(config: EngineConfig, container_id: str, bridge: str, container_ip: str, mappings: list[PortMapping]) -> None:
    """Add the DNAT rules for a container (call before its process runs)."""
    if not mappings:
        return
    if any(m.host_ip == "0.0.0.0" or ipaddress.IPv4Address(m.host_ip).is_loopback for m in mappings):
        _set_route_localnet(bridge)
    _nft(rules_script(table_name(config), container_id, bridge, container_ip, mappings))


def _set_route_localnet(bridge: str) -> None:
    path = Path(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet")
    try:
        if path.read_text().strip() != "1":
            path.write_text("1\n")
    except OSError as exc:
        raise DockuiError(f"cannot enable route_localnet on {bridge}: {exc}") from None


def flush_udp_conntrack(container_ip: str, mappings: list[PortMapping]) -> int:
    """Forget the conntrack entries of a container's published UDP ports (as Docker does).

    A UDP "connection" lives in conntrack for 30-180 s after its last packet; without this, a
    client that keeps sending would stay DNATed to the old container's address after the port is
    published again by another one. TCP needs nothing: a new connection is looked up afresh.
    """
    udp = [m for m in mappings if m.proto == "udp"]
    if not udp:
        return 0
    from pyroute2 import Conntrack
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

    deleted = 0
    with Conntrack() as ct:
        for m in udp:
            wanted = NFCTAttrTuple(saddr=container_ip, proto=socket.IPPROTO_UDP, sport=m.container_port)
            for entry in list(ct.dump_entries(tuple_reply=wanted)):
                try:
                    ct.delete(entry)
                    deleted += 1
                except Exception:  # noqa: BLE001 - an entry may expire while we look
                    continue
    return deleted


def _owner(rule: dict) -> str | None:
    comment = rule.get("comment") or ""
    return comment[len(COMMENT_PREFIX) :] if comment.startswith(COMMENT_PREFIX) else None


def remove_rules(config: EngineConfig, keep: set[str] | None = None, drop: set[str] | None = None) -> int:
    """Delete rules of containers in `drop` (or of every container not in `keep`); the table if empty.

    Returns how many rules were deleted. Call under the network lock.
    """
    table = table_name(config)
    items = _nft_json(table)
    if not items:
        return 0
    rules = [i["rule"] for i in items if "rule" in i]
    doomed = []
    for rule in rules:
        owner = _owner(rule)
        if owner is None:
            continue
        if (drop is not None and owner in drop) or (keep is not None and owner not in keep):
            doomed.append(rule)
    if len(doomed) == len(rules):
        _nft(f"delete table ip {table}\n")
        return len(doomed)
    if doomed:
        _nft("".join(f"delete rule ip {table} {r['chain']} handle {r['handle']}\n" for r in doomed))
    return len(doomed)


def list_rule_owners(config: EngineConfig) -> dict[str, int]:
    """container id -> number of rules it has in this engine's table (for tests and reconcile)."""
    owners: dict[str, int] = {}
    for item in _nft_json(table_name(config)):
        owner = _owner(item.get("rule", {}))
        if owner:
            owners[owner] = owners.get(owner, 0) + 1
    return owners


def table_exists(config: EngineConfig) -> bool:
    return bool(_nft_json(table_name(config)))
