"""The container's /etc/hosts and /etc/resolv.conf, built the way Docker builds them.

hosts: Docker's fixed localhost/IPv6 lines, then `--add-host` and link entries, then the
container's own address and names. resolv.conf: the host's, with loopback nameservers dropped
(they would point at the container's own loopback) and Google's public resolvers put in when none
is left, exactly as Docker does; `--dns`, `--dns-search`, `--dns-option` replace the host's lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from engine.errors import InvalidArgument

DEFAULT_HOSTS = (
    ("127.0.0.1", "localhost"),
    ("::1", "localhost ip6-localhost ip6-loopback"),
    ("fe00::0", "ip6-localnet"),
    ("ff00::0", "ip6-mcastprefix"),
    ("ff02::1", "ip6-allnodes"),
    ("ff02::2", "ip6-allrouters"),
)
# Docker's fallback when the host only has loopback resolvers. Written into a file, never contacted.
DEFAULT_NAMESERVERS = ("8.8.8.8", "8.8.4.4")
HOST_RESOLV_CONF = Path("/etc/resolv.conf")
SYSTEMD_RESOLV_CONF = Path("/run/systemd/resolve/resolv.conf")


def parse_add_host(text: str) -> tuple[str, str]:
    """`--add-host name:ip` (also `name=ip`, Docker 25) -> (ip, name)."""
    if "=" in text:
        name, _, ip = text.partition("=")
    else:
        name, _, ip = text.partition(":")
    ip = ip.strip("[]")
    if not name or not ip:
        raise InvalidArgument(f"invalid --add-host {text!r}: expected name:ip")
    if ip != "host-gateway":
        import ipaddress  # (where used: ~1.2 ms of every create otherwise, docs/lifecycle.md)

        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidArgument(f"invalid IP address in --add-host {text!r}") from None
    return ip, name


def hosts_content(
    own_ip: str | None, own_names: Iterable[str], extra: Iterable[tuple[str, str]] = ()
) -> str:
    """The text of /etc/hosts: defaults, extra (ip, names) pairs, then the container itself."""
    lines = [f"{ip}\t{names}" for ip, names in DEFAULT_HOSTS]
    lines += [f"{ip}\t{names}" for ip, names in extra]
    names = " ".join(n for n in dict.fromkeys(own_names) if n)
    if own_ip and names:
        lines.append(f"{own_ip}\t{names}")
    return "\n".join(lines) + "\n"


def host_resolv_conf_text() -> str:
    """The host's resolv.conf; behind systemd-resolved's stub, the upstream file, as Docker reads it."""
    try:
        text = HOST_RESOLV_CONF.read_text()
    except OSError:
        return ""
    servers = [line.split()[1] for line in text.splitlines() if line.startswith("nameserver") and len(line.split()) > 1]
    if servers == ["127.0.0.53"] and SYSTEMD_RESOLV_CONF.exists():
        try:
            return SYSTEMD_RESOLV_CONF.read_text()
        except OSError:
            pass
    return text


def _is_loopback(address: str) -> bool:
    host = address.split("%")[0]
    parts = host.split(".")
    if len(parts) == 4 and all(p.isascii() and p.isdigit() and len(p) <= 3 and (p == "0" or p[0] != "0")
                               and int(p) <= 255 for p in parts):
        return parts[0] == "127"  # a dotted quad, as ipaddress reads it, without its import
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolv_conf_content(
    host_text: str,
    dns: Iterable[str] = (),
    dns_search: Iterable[str] = (),
    dns_options: Iterable[str] = (),
) -> str:
    """Docker's resolv.conf for a container on a bridge network."""
    nameservers: list[str] = []
    search: list[str] | None = None
    options: list[str] | None = None
    for raw in host_text.splitlines():
        fields = raw.split()
        if not fields or fields[0].startswith(("#", ";")):
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            nameservers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            search = fields[1:]
        elif fields[0] == "options":
            options = fields[1:]
    nameservers = [ns for ns in nameservers if not _is_loopback(ns)]
    dns = list(dns)
    for server in dns:
        import ipaddress

        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise InvalidArgument(f"invalid --dns {server!r}: not an IP address") from None
    if dns:
        nameservers = dns
    elif not nameservers:
        nameservers = list(DEFAULT_NAMESERVERS)
    dns_search = list(dns_search)
    if dns_search:
        search = [] if dns_search == ["."] else dns_search
    dns_options = list(dns_options)
    if dns_options:
        options = dns_options
    lines = []
    if search:
        lines.append("search " + " ".join(search))
    lines += [f"nameserver {ns}" for ns in nameservers]
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def write_in_place(path: Path, text: str) -> None:
    """Rewrite a file that may be bind-mounted into a running container.

    A rename would leave the container looking at the old inode, so truncate and write instead.
    """
    with open(path, "r+" if path.exists() else "w") as f:
        f.seek(0)
        f.write(text)
        f.truncate()
