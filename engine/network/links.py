"""Legacy container links (`--link name[:alias]`): environment variables and /etc/hosts lines, on the
default bridge only, as Docker; on a user-defined network a link is only a name the embedded DNS
gives the linking container (engine.network.dns.names).

Pure functions, byte-for-byte Docker's format (moby `daemon/links/links.go` and
`buildSandboxOptions`), so programs written for Docker's links work unchanged; the link graph as
moby's API shows it (`Linker`: inspect's "/db:/web/alias" and the list's extra Names "/web/db",
each link's container resolved afresh as moby's GetContainer would); and `unlink`, the
network's side of removing one (`docker rm --link`): the linking container's endpoint record and
its /etc/hosts lose the link, under the network lock (engine.network.ipam.lock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from engine.config import EngineConfig
from engine.errors import InvalidArgument


@dataclass
class LinkTarget:
    """What the linking container needs to know about the linked one."""

    name: str  # the linked container's name, without the leading "/"
    alias: str  # the alias given in --link (the name when none was given)
    ip: str
    hostname: str = ""
    exposed_ports: list[str] = field(default_factory=list)  # "80/tcp", "53/udp", "8080"
    env: list[str] = field(default_factory=list)  # "KEY=value"


def parse_link(text: str) -> tuple[str, str]:
    """`name[:alias]` -> (name, alias); Docker strips a leading "/" from the name."""
    name, _, alias = text.partition(":")
    name = name.lstrip("/")
    if not name:
        raise InvalidArgument(f"invalid --link {text!r}: expected name[:alias]")
    alias = alias or name
    if "/" in alias or not alias.strip():
        raise InvalidArgument(f"invalid --link {text!r}: bad alias")
    return name, alias


@dataclass(frozen=True)
class Linker:
    """A container as the link graph sees it: its ID, its name (no leading "/") and its
    HostConfig.Links as given (`name[:alias]`, the name may be an ID or an ID prefix)."""

    id: str
    name: str
    links: tuple[str, ...] = ()


def resolve_linked(containers: Sequence[Linker], ref: str) -> Linker | None:
    """The container a link's name designates, as moby's GetContainer: a full ID, a name, then an
    unambiguous ID prefix; None when none (removed since: moby forgets such a link)."""
    ref = ref.lstrip("/")
    for wanted in (lambda c: c.id == ref, lambda c: c.name == ref):
        found = [c for c in containers if wanted(c)]
        if found:
            return found[0]
    found = [c for c in containers if c.id.startswith(ref)]
    return found[0] if len(found) == 1 else None


def shown_links(containers: Sequence[Linker], parent: Linker) -> list[str]:
    """HostConfig.Links as moby's inspect shows them: "/<linked>:/<parent>/<alias>" (the linked
    container's current name, the full name the link reserved), in the order given."""
    shown = []
    for name, alias in _parsed(parent.links):
        child = resolve_linked(containers, name)
        if child is not None:
            shown.append(f"/{child.name}:/{parent.name}/{alias}")
    return shown


def _parsed(texts: Sequence[str]) -> list[tuple[str, str]]:
    """The (name, alias) of each stored link (checked when it was given; one that no longer parses
    is skipped rather than failing a listing)."""
    parsed = []
    for text in texts:
        try:
            parsed.append(parse_link(text))
        except InvalidArgument:
            continue
    return parsed


def all_names(containers: Sequence[Linker]) -> dict[str, list[str]]:
    """Every container's Names as moby lists them (`GET /containers/json`): its own name and each
    name a link to it reserved, "/<linking>/<alias>", sorted as moby's names table."""
    names = {c.id: ["/" + c.name] for c in containers}
    for parent in containers:
        for name, alias in _parsed(parent.links):
            child = resolve_linked(containers, name)
            if child is not None:
                names[child.id].append(f"/{parent.name}/{alias}")
    return {cid: sorted(set(listed)) for cid, listed in names.items()}


def _port(spec: str) -> tuple[int, str]:
    number, _, proto = spec.partition("/")
    try:
        port = int(number)
    except ValueError:
        raise InvalidArgument(f"invalid exposed port {spec!r}") from None
    return port, (proto or "tcp").lower()


def _sorted_ports(ports: list[str]) -> list[tuple[int, str]]:
    """Docker's order: by number, tcp before other protocols of the same number."""
    parsed = [_port(p) for p in ports]
    return sorted(parsed, key=lambda p: (p[0], p[1] != "tcp"))


def _next_contiguous(ports: list[tuple[int, str]], value: int, index: int) -> int:
    if index + 1 == len(ports):
        return index
    for i in range(index + 1, len(ports)):
        if ports[i][0] > value + 1:
            return i - 1
        value += 1
    return len(ports) - 1


def link_env(parent_name: str, target: LinkTarget) -> list[str]:
    """The environment variables Docker gives a container linked to `target` (in Docker's order)."""
    alias = target.alias.upper().replace("-", "_")
    ip = target.ip
    ports = _sorted_ports(target.exposed_ports)
    env: list[str] = []
    if ports:
        port, proto = ports[0]
        env.append(f"{alias}_PORT={proto}://{ip}:{port}")
    i = 0
    while i < len(ports):
        port, proto = ports[i]
        j = _next_contiguous(ports, port, i)
        if j > i + 1:
            up = proto.upper()
            env.append(f"{alias}_PORT_{port}_{up}_START={proto}://{ip}:{port}")
            env.append(f"{alias}_PORT_{port}_{up}_ADDR={ip}")
            env.append(f"{alias}_PORT_{port}_{up}_PROTO={proto}")
            env.append(f"{alias}_PORT_{port}_{up}_PORT_START={port}")
            end_port, end_proto = ports[j]
            env.append(f"{alias}_PORT_{port}_{end_proto.upper()}_END={end_proto}://{ip}:{end_port}")
            env.append(f"{alias}_PORT_{port}_{end_proto.upper()}_PORT_END={end_port}")
            i = j + 1
        else:
            i += 1
    for port, proto in ports:
        up = proto.upper()
        env.append(f"{alias}_PORT_{port}_{up}={proto}://{ip}:{port}")
        env.append(f"{alias}_PORT_{port}_{up}_ADDR={ip}")
        env.append(f"{alias}_PORT_{port}_{up}_PORT={port}")
        env.append(f"{alias}_PORT_{port}_{up}_PROTO={proto}")
    env.append(f"{alias}_NAME=/{parent_name.lstrip('/')}/{target.alias}")
    for item in target.env:
        key, sep, value = item.partition("=")
        if not sep or key in ("HOME", "PATH"):
            continue
        env.append(f"{alias}_ENV_{key}={value}")
    return env


def hosts_entry(target: LinkTarget) -> tuple[str, str]:
    """(ip, names) for /etc/hosts: the alias, the linked container's hostname and, if different, its name."""
    names = [target.alias]
    if target.hostname:
        names.append(target.hostname)
    if target.alias != target.name:
        names.append(target.name)
    return target.ip, " ".join(names)


def is_link_entry(names: str, alias: str) -> bool:
    """Whether a hosts line's names are the ones `hosts_entry` wrote for `alias` (the alias, then
    at least the linked container's hostname; an --add-host line holds one name)."""
    words = names.split()
    return len(words) > 1 and words[0] == alias


def unlink(config: EngineConfig, container_id: str, alias: str) -> None:
    """Forget the link `alias` in a container's endpoint record: its name no longer resolves there
    (the embedded DNS, NetworkSettings.Links) and, as moby's sandbox refresh does, its /etc/hosts
    line goes, rewritten in place in a running container's file. A container that never had its
    network prepared has nothing to forget (its next start reads its links afresh)."""
    from engine.network import hostsfiles, ipam
    from engine.network.records import load_record, save_record

    with ipam.lock(config):
        rec = load_record(config, container_id)
        if rec is None:
            return
        gone = [entry for entry in rec.extra_hosts if is_link_entry(entry[1], alias)]
        save_record(config, replace(rec, links=tuple(link for link in rec.links if link[1] != alias),
                                    extra_hosts=tuple(entry for entry in rec.extra_hosts if entry not in gone)))
        hosts = config.containers_dir / container_id / "hosts"
        if not gone or not hosts.exists():
            return
        dropped = {f"{ip}\t{names}" for ip, names in gone}
        lines = hosts.read_text().splitlines(keepends=True)
        hostsfiles.write_in_place(hosts, "".join(line for line in lines if line.rstrip("\n") not in dropped))
