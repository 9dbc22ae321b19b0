"""Reading containers: ps (Docker's columns, filters, --format), inspect, top, port.
"""

from __future__ import annotations

import argparse
import sys
import time

from engine.cli.container_common import start_engine
from engine.cli.output import human_duration, natural_key, print_formatted
from engine.config import EngineConfig
from engine.errors import InvalidArgument, NotFound

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from engine.cli.formatters import Row


def status_text(record: Any, now: float | None = None) -> str:
    """Docker's STATUS column (engine.container.status, shared with the TUI)."""
    from engine.container.status import record_status_text

    return record_status_text(record, now)


def ports_text(record: Any) -> str:
    """Docker's PORTS column (its DisplayablePorts over engine.container.status's published ports):
    empty once stopped."""
    from engine.container.status import published_ports

    return displayable_ports(published_ports(record))


def displayable_ports(ports: dict[str, Any] | None) -> str:
    """docker/cli's DisplayablePorts over NetworkSettings.Ports (`80/tcp` -> bindings): the ports
    by private port, IP, public port and type; a port published on the same number, or exposed
    only, grouped into runs (`0.0.0.0:8000-8001->8000-8001/tcp`, `80-81/tcp`), each other
    binding as `IP:PUBLIC->PRIVATE/TYPE` after the groups."""
    entries = []  # the container list's Ports: (private, ip, public, type)
    for key, bindings in (ports or {}).items():
        number, _, proto = key.partition("/")
        for b in bindings or [{}]:
            public = int(b["HostPort"]) if b.get("HostPort") else 0
            entries.append((int(number), (b.get("HostIp") or "0.0.0.0") if public else "", public, proto or "tcp"))
    groups: dict[str, list[int]] = {}  # key -> [first, last], in the order keys appear
    result, mappings = [], []
    for private, ip, public, kind in sorted(entries):
        if ip and public != private:
            mappings.append(f"{_join_host_port(ip, str(public))}->{private}/{kind}")
            continue
        key = f"{ip}/{kind}" if ip else kind
        group = groups.get(key)
        if group is not None and private == group[1] + 1:
            group[1] = private
            continue
        if group is not None:
            result.append(_port_group(key, *group))
        groups[key] = [private, private]
    result += [_port_group(key, first, last) for key, (first, last) in groups.items()]
    return ", ".join(result + mappings)


def _port_group(key: str, first: int, last: int) -> str:
    ip, _, kind = key.rpartition("/")
    group = str(first) if first == last else f"{first}-{last}"
    return f"{_join_host_port(ip, group)}->{group}/{kind}" if ip else f"{group}/{kind}"


def _join_host_port(host: str, port: str) -> str:
    """net.JoinHostPort: an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _command_text(record: Any, truncate: bool) -> str:
    from engine.container.status import command_text

    command = command_text(record)
    if truncate and len(command) > 20:
        command = command[:19] + "…"
    return f'"{command}"'


def names_text(names: list[str], trunc: bool) -> str:
    """docker/cli's ContainerContext.Names (the NAMES column, `.Names`): the names without their
    leading "/"; truncated, only the first that holds no other "/" (the container's own, not a
    link's "web/db"), else all of them joined by ","."""
    stripped = [name[1:] if name.startswith("/") else name for name in names]
    if trunc:
        for name in stripped:
            if "/" not in name:
                return name
    return ",".join(stripped)


def running_for(record: Any, now: float) -> str:
    """Docker's CREATED column (ContainerContext.RunningFor): how long ago the container was created."""
    from engine.container.state import parse_rfc3339

    return human_duration(now - parse_rfc3339(record.created)) + " ago"


def listed_row(record: Any, now: float, *, trunc: bool, names: list[str], size: Callable[[], str]) -> Row:
    """ps's ContainerContext of one container, as `ps --format` and `system df -v` print it."""
    from engine.cli.formatters import container_row

    return container_row(record, trunc=trunc, running_for=running_for(record, now), status=status_text(record, now),
                         ports=ports_text(record), size=size, names=names_text(names, trunc))


def _listed_names(records: list[Any]) -> dict[str, list[str]]:
    """Each container's Names as moby lists them, from every container's links (the linking one
    need not be listed)."""
    from engine.network import links

    return links.all_names([links.Linker(r.id, r.name, tuple(r.host_config.get("Links") or ())) for r in records])


def cmd_ps(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.state import list_containers

    if args.format and args.format.strip() not in ("table", "json") and not args.size:
        from engine.cli.formatters import empty_container_row
        from engine.cli.output import check_format

        check_format(args.format, empty_container_row())
    start_engine(config, "ps")
    if args.quiet and not (args.filter or args.format or args.latest or args.size or args.last >= 0):
        return _ps_quiet(config, args)
    from engine.container import filters

    wanted = filters.parse_words(args.filter)
    records = list_containers(config)
    names = _listed_names(records)
    if args.latest:  # -l and -n pick from every container, as docker's
        records = records[:1]
    elif args.last >= 0:
        records = records[: args.last]
    records = filters.select(config, records, wanted, all_=args.all or args.latest or args.last >= 0)
    if args.quiet and (not args.format or args.format.strip() in ("table", "json")):  # docker: a template wins over -q
        for r in records:
            print(r.id if args.no_trunc else r.short_id)
        return 0
    now = time.time()
    sizes = _ps_sizes(config, records) if args.size else {}
    if args.format and args.format.strip() != "table":
        return _print_ps_format(config, args, records, now, sizes, names)
    from engine.cli.output import print_table

    rows = [
        (
            r.id if args.no_trunc else r.short_id,
            r.image,
            _command_text(r, not args.no_trunc),
            running_for(r, now),
            status_text(r, now),
            ports_text(r),
            names_text(names[r.id], not args.no_trunc),
            *([sizes[r.id]] if args.size else []),
        )
        for r in records
    ]
    headers = ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")
    print_table((*headers, "SIZE") if args.size else headers, rows)
    return 0


def _ps_quiet(config: EngineConfig, args: argparse.Namespace) -> int:
    """`ps -q` (`-a`) from the container index: IDs without reading every record; a running
    one's record is read to confirm it (the record is the truth)."""
    from engine.container.state import ACTIVE_STATUSES, list_entries, load
    from engine.errors import NotFound

    for entry in list_entries(config, () if args.all else ACTIVE_STATUSES):
        if not args.all:
            try:
                if load(config, entry.id).status not in ACTIVE_STATUSES:
                    continue
            except NotFound:
                continue
        print(entry.id if args.no_trunc else entry.id[:12])
    return 0


def _ps_sizes(config: EngineConfig, records: list[Any]) -> dict[str, str]:
    """`ps -s`: "<written> (virtual <written + image>)", in Docker's units, per container ID."""
    from engine.cli.output import human_size
    from engine.image.store import ImageStore

    store = ImageStore(config)
    image_sizes: dict[str, int] = {}
    result = {}
    for r in records:
        written, virtual = _container_sizes(store, r, image_sizes)
        result[r.id] = f"{human_size(written)} (virtual {human_size(virtual)})"
    return result


def _container_sizes(store: Any, record: Any, image_sizes: dict[str, int]) -> tuple[int, int]:
    """(bytes the container wrote, that plus its image): Docker's SizeRw and SizeRootFs.
    `image_sizes` caches image sizes across containers (an image removed meanwhile counts 0)."""
    if record.image_id not in image_sizes:
        try:
            image_sizes[record.image_id] = store.resolve(record.image_id).size
        except NotFound:
            image_sizes[record.image_id] = 0
    written = store.rw_layer_size(record.id)
    return written, written + image_sizes[record.image_id]


def _print_ps_format(config: EngineConfig, args: argparse.Namespace, records: list[Any], now: float,
                     sizes: dict[str, str], names: dict[str, list[str]]) -> int:
    """`ps --format`: `json` (docker's `{{json .}}` per container) or a Go template (`table ...` too)."""
    from engine.cli.formatters import CONTAINER_HEADERS
    from engine.cli.output import render_format
    from engine.image.store import ImageStore
    from engine.util.gofmt import go_json

    image_sizes: dict[str, int] = {}

    def size_of(record: Any) -> str:  # computed only if the template reads .Size, as docker asks for it
        if record.id in sizes:
            return sizes[record.id]
        from engine.cli.output import human_size

        if args.format.strip() == "json":  # ps.go's probe runs the word `json`, not {{json .}}: no size is asked
            return human_size(0)

        written, virtual = _container_sizes(ImageStore(config), record, image_sizes)
        return f"{human_size(written)} (virtual {human_size(virtual)})" if virtual else human_size(written)

    rows = [listed_row(r, now, trunc=not args.no_trunc, names=names[r.id], size=lambda r=r: size_of(r))
            for r in records]
    if args.format.strip() == "json":
        sys.stdout.write("".join(go_json(row.template_json()) + "\n" for row in rows))
    else:
        sys.stdout.write(render_format(args.format, rows, CONTAINER_HEADERS))
    return 0


# docker inspect's --type words (system/inspect.go's allTypes); the swarm's and plugins have no
# objects here, so a name is looked up as a container, an image, a network, then a volume.
INSPECT_TYPES = ("config", "container", "image", "network", "node", "plugin", "secret", "service", "task", "volume")


def cmd_inspect(args: argparse.Namespace, config: EngineConfig) -> int:
    """docker inspect (system/inspect.go): each name as the first kind of object that has it (or
    only `--type`'s kind, whose own not-found error is then the name's), all printed as one JSON
    array or through `--format`; a name found nowhere is "No such object", status 1."""
    kind = args.type
    if kind is not None and kind not in INSPECT_TYPES:
        words = '", "'.join(INSPECT_TYPES)
        raise InvalidArgument(f'type is empty: must be one of "{words}"' if kind == "" else
                              f'unknown type: "{kind}": must be one of "{words}"')
    start_engine(config, "inspect")
    results = []
    status = 0
    for name in args.names:
        try:
            results.append(_inspect_one(config, name, kind, args.size))
        except NotFound as exc:
            print(f"Error: {exc}", file=sys.stderr)
            status = 1
    return max(status, print_formatted(results, args.format))


def _inspect_one(config: EngineConfig, name: str, kind: str | None, size: bool) -> dict[str, Any]:
    """The document of `name` as `kind` (None: each kind in docker's order, skipping not-found)."""
    for each, find in (("container", _container_inspect), ("image", _image_document), ("network", _network_inspect),
                       ("volume", _volume_inspect)):
        if kind is not None and each != kind:
            continue
        try:
            return find(config, name, size) if each == "container" else find(config, name)
        except NotFound:
            if kind is not None:
                raise
        except InvalidArgument:  # a name that is no reference (isErrSkippable: invalid reference format)
            if kind is not None:
                raise
    if kind == "plugin":  # no plugins here: the daemon's words for a missing one
        raise NotFound(f'plugin "{name}" not found')
    raise NotFound(f"No such object: {name}")


def _container_inspect(config: EngineConfig, name: str, size: bool) -> dict[str, Any]:
    from engine.container import state
    from engine.container.inspect import inspect

    record = state.find_container(config, name)
    obj = inspect(config, record)
    if size:  # Docker's --size: what the container wrote, and that plus its image
        from engine.image.store import ImageStore

        obj["SizeRw"], obj["SizeRootFs"] = _container_sizes(ImageStore(config), record, {})
    return obj


def _image_document(config: EngineConfig, ref: str) -> dict[str, Any]:
    from engine.image.store import ImageStore

    return ImageStore(config).inspect(ref)


def _network_inspect(config: EngineConfig, name: str) -> dict[str, Any]:
    from engine.api.networks import inspect

    return inspect(config, name)


def _volume_inspect(config: EngineConfig, name: str) -> dict[str, Any]:
    from engine.container.volumes import get_volume

    return get_volume(config, name).inspect()


def cmd_top(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.cli.output import print_table
    from engine.container.inspect import top

    start_engine(config, "top")
    headers, rows = top(config, args.container, args.ps_args or None)
    print_table(headers, rows, minwidth=20)  # top.go's tabwriter.NewWriter(out, 20, 1, 3, ' ', 0)
    return 0


def cmd_port(args: argparse.Namespace, config: EngineConfig) -> int:
    """docker port (port.go): one private port's bindings (PORT[/PROTO], tcp by default), or every
    binding as `PORT/PROTO -> HOST:PORT`, in natural order."""
    from engine.container.state import find_container
    from engine.container.status import published_ports

    start_engine(config, "port")
    record = find_container(config, args.container)
    ports = published_ports(record)
    lines = []
    if args.private_port:
        number, _, proto = args.private_port.partition("/")
        if not number.isdigit() or int(number) > 65535:  # Go's strconv.ParseUint(port, 10, 16) error
            reason = "value out of range" if number.isdigit() else "invalid syntax"
            raise InvalidArgument(f'invalid port ({number}): strconv.ParseUint: parsing "{number}": {reason}')
        bindings = ports.get(f"{number}/{proto or 'tcp'}") or []
        if not bindings:
            raise NotFound(f"No public port '{args.private_port}' published for {args.container}")
        lines = [_host_port(b) for b in bindings]
    else:
        lines = [f"{port} -> {_host_port(b)}" for port, bindings in ports.items() for b in bindings or []]
    if lines:
        print("\n".join(sorted(lines, key=natural_key)))
    return 0


def _host_port(binding: dict[str, Any]) -> str:
    """A binding's HOST:PORT (net.JoinHostPort: an IPv6 address in brackets)."""
    return _join_host_port(binding.get("HostIp") or "0.0.0.0", str(binding.get("HostPort")))
