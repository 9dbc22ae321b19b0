"""`dockui network ...`: create, ls, inspect, rm, prune, connect, disconnect (Docker's verbs and output).

The engine.network modules (and through them pyroute2) are imported inside the handlers only.
"""

from __future__ import annotations

import argparse

from engine.cli import filter_flag
from engine.cli.output import natural_key, print_json, print_table
from engine.config import EngineConfig


def register(subparsers: argparse._SubParsersAction, verb: str | None = None) -> None:  # noqa: ARG001
    """Add `network` and its verbs to the top-level parser."""
    parser = subparsers.add_parser("network", help="manage networks (bridges)")
    verbs = parser.add_subparsers(dest="network_verb", metavar="COMMAND", parser_class=type(parser))
    parser.set_defaults(handler=lambda args, config: _usage(parser))

    p = verbs.add_parser("create", help="create a bridge network")
    p.add_argument("--subnet", action="append", default=[],
                   help="subnet in CIDR form, IPv4 or IPv6 (default: the first free of Docker's pools)")
    p.add_argument("--gateway", action="append", default=[],
                   help="IPv4 or IPv6 gateway for the master subnet (the bridge's address; default: the subnet's first)")
    p.add_argument("--ip-range", action="append", default=[], help="allocate container ip from a sub-range")
    p.add_argument("--aux-address", action="append", default=[], metavar="NAME=IP",
                   help="auxiliary IPv4 or IPv6 addresses, never given to a container")
    p.add_argument("--ipv6", action="store_true", help="enable IPv6 networking (a ULA /64 unless an IPv6 --subnet is given)")
    p.add_argument("--internal", action="store_true", help="restrict external access: containers get no default route through this network")
    p.add_argument("-d", "--driver", default="bridge", help="Driver to manage the Network (bridge only)")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="Set metadata on a network")
    p.add_argument("name")
    p.set_defaults(handler=cmd_create)

    p = verbs.add_parser("ls", aliases=["list"], help="list networks")
    p.add_argument("-q", "--quiet", action="store_true", help="only IDs")
    p.add_argument("-f", "--filter", action="append", default=[], type=filter_flag,
                   help="Provide filter values (driver=, id=, label=, name=, scope=, type=, dangling=)")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format", help="a Go template ({{.Name}}, 'table {{.ID}}\\t{{.Name}}')")
    p.set_defaults(handler=cmd_ls)

    p = verbs.add_parser("inspect", help="show networks as JSON, with the live bridge topology")
    p.add_argument("-f", "--format", help="Format the output using a Go template ({{.IPAM.Config}})")
    p.add_argument("names", nargs="+", metavar="NETWORK")
    p.set_defaults(handler=cmd_inspect)

    p = verbs.add_parser("rm", aliases=["remove"], help="remove networks")
    p.add_argument("names", nargs="+", metavar="NETWORK")
    p.set_defaults(handler=cmd_rm)

    p = verbs.add_parser("prune", help="remove every network no container uses")
    p.add_argument("-f", "--force", action="store_true", help="do not ask (dockui never asks)")
    p.add_argument("--filter", action="append", default=[], type=filter_flag, help="Provide filter values (until=, label=, label!=)")
    p.set_defaults(handler=cmd_prune)

    p = verbs.add_parser("connect", help="connect a container to a network")
    p.add_argument("--ip", help="IPv4 address on that network")
    p.add_argument("--ip6", help="IPv6 address on that network")
    p.add_argument("--alias", action="append", default=[], help="add a network-scoped alias for the container")
    p.add_argument("--link", action="append", default=[], help="add link to another container (name[:alias])")
    p.add_argument("--link-local-ip", action="append", default=[], help="add a link-local address for the container")
    p.add_argument("network")
    p.add_argument("container")
    p.set_defaults(handler=cmd_connect)

    p = verbs.add_parser("disconnect", help="disconnect a container from a network")
    p.add_argument("-f", "--force", action="store_true", help="force the container to disconnect from a network")
    p.add_argument("network")
    p.add_argument("container")
    p.set_defaults(handler=cmd_disconnect)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def _root(what: str) -> None:
    from engine.cli import require_root

    require_root(what)


def _string_list(values: list[str]) -> list[str]:
    """The docker CLI's string-list flags (`--subnet`, `--link-local-ip`, ...): repeated or comma-separated."""
    return [v for value in values for v in value.split(",") if v]


def cmd_create(args: argparse.Namespace, config: EngineConfig) -> int:
    """Docker's `network create`, through the Engine API's own call (engine.api.networks.create), so
    the CLI and `POST /networks/create` record the same network (labels included)."""
    if args.driver != "bridge":  # the docker CLI sends any driver: the engine refuses it (as the service does)
        from engine.errors import InvalidArgument

        raise InvalidArgument(f"network create: driver {args.driver!r} is not supported (bridge only)")
    _root("network create")
    from engine.api.networks import CreateNetwork, create
    from engine.cli.container_common import parse_labels
    from engine.network import ipamconfig

    aux = [ipamconfig.parse_aux_address(text) for text in _string_list(args.aux_address)]
    configs = ipamconfig.consolidate(_string_list(args.subnet), _string_list(args.ip_range), _string_list(args.gateway), aux)
    spec = CreateNetwork(args.name, internal=args.internal, labels=parse_labels(args.label), configs=tuple(configs),
                         ipv6=args.ipv6)
    print(create(config, spec).id)
    return 0


# The IDs `network ls` shows for the predefined networks without a record: sha256("dockui-network-" +
# name), written out so that listing needs no OpenSSL (~2.4 ms; tests/test_cli_import_costs.py
# recomputes them).
PSEUDO_IDS = {
    "bridge": "e4dce10ffb42e02e582d9a5d2f42eaca54d18489f9b575c94606e4479a19eb0c",
    "host": "b44023cafba84347dd225043d2114d15b3142c2154dbcf2f5d82b00d11c99198",
    "none": "5d8c2389d94a2cbcf115fecb865d142f66a787f2544ba02d57a56153b07db384",
}


def _pseudo_id(name: str) -> str:
    return PSEUDO_IDS[name]


def cmd_ls(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.network.records import all_networks  # the records only: no plumbing, no ctypes

    rows = []
    nets = {n.name: n for n in all_networks(config)}
    listed = []  # (network or None for the pseudo ones, its row)
    for name in ("bridge", "host", "none"):
        net = nets.pop(name, None)
        rows.append((net.id if net else _pseudo_id(name), name, "bridge" if name == "bridge" else name, "local"))
        listed.append(net)
    for net in nets.values():  # in any order: the list is sorted by name below
        rows.append((net.id, net.name, "bridge", "local"))
        listed.append(net)
    if args.filter:  # as the Engine API filters its list (engine.api.networks.NetworkFilter)
        from engine.api.networks import NetworkFilter, list_networks
        from engine.container.filters import filter_words

        kept = {doc["Name"] for doc in list_networks(config, NetworkFilter.parse(filter_words(args.filter)))}
        pairs = [(row, net) for row, net in zip(rows, listed, strict=True) if row[1] in kept]
        rows, listed = [row for row, _ in pairs], [net for _, net in pairs]
    order = sorted(range(len(rows)), key=lambda i: natural_key(rows[i][1]))  # list.go: by name, naturally
    rows, listed = [rows[i] for i in order], [listed[i] for i in order]
    width = 64 if args.no_trunc else 12
    if args.quiet and (not args.format or args.format.strip() in ("table", "json")):  # docker: a template wins over -q
        for row in rows:
            print(row[0][:width])
        return 0
    if args.format and args.format.strip() != "table":  # a Go template (docker's networkContext)
        import sys

        from engine.cli.formatters import NETWORK_HEADERS, network_row
        from engine.cli.output import render_format
        from engine.container.state import parse_rfc3339

        contexts = [
            network_row(network_id=row[0][:width], name=row[1], driver=row[2], internal=bool(net and net.internal),
                        created=parse_rfc3339(net.created) if net and net.created else None,
                        labels=net.labels if net else {}, ipv6=bool(net and net.ipv6))
            for row, net in zip(rows, listed, strict=True)
        ]
        if args.format.strip() == "json":  # docker's `{{json .}}` of each networkContext
            from engine.util.gofmt import go_json

            sys.stdout.write("".join(go_json(context.template_json()) + "\n" for context in contexts))
        else:
            sys.stdout.write(render_format(args.format, contexts, NETWORK_HEADERS))
        return 0
    print_table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"], [(r[0][:width], *r[1:]) for r in rows])
    return 0


def cmd_inspect(args: argparse.Namespace, config: EngineConfig) -> int:
    """The Engine API's document (engine.api.networks.inspect), the predefined networks' too."""
    from engine.api.networks import inspect
    from engine.errors import NotFound

    out, missing = [], []
    for name in args.names:
        try:
            out.append(inspect(config, name))
        except NotFound:
            missing.append(name)
    if args.format:
        from engine.cli.output import print_formatted

        status = print_formatted(out, args.format)
    else:
        print_json(out)
        status = 0
    if missing:
        raise NotFound("network " + ", ".join(missing) + " not found")
    return status


def cmd_rm(args: argparse.Namespace, config: EngineConfig) -> int:
    _root("network rm")
    from engine.errors import DockuiError
    from engine.network import networks as network

    failed = None
    for name in args.names:
        try:
            print(network.remove_network(config, name))
        except DockuiError as exc:
            failed = exc
    if failed:
        raise failed
    return 0


def cmd_prune(args: argparse.Namespace, config: EngineConfig) -> int:
    _root("network prune")
    from engine.api.networks import prune
    from engine.api.prune import NETWORK_KEYS, from_flags

    removed = prune(config, from_flags(args.filter, NETWORK_KEYS))
    if removed:
        print("Deleted Networks:")
        for name in removed:
            print(name)
    return 0


def cmd_connect(args: argparse.Namespace, config: EngineConfig) -> int:
    _root("network connect")
    from engine.api.networks import Connection, connect, parse_links

    connect(config, Connection(args.network, args.container, ipv4_address=args.ip, aliases=tuple(args.alias or ()),
                               ipv6_address=args.ip6, links=parse_links(args.link),
                               link_local_ips=tuple(_string_list(args.link_local_ip))))
    return 0


def cmd_disconnect(args: argparse.Namespace, config: EngineConfig) -> int:
    _root("network disconnect")
    from engine.api.networks import disconnect

    disconnect(config, args.network, args.container, force=args.force)
    return 0
