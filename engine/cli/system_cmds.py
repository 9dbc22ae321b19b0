"""`dockui system ...` verbs: `system service` (the Docker Engine API on a Unix socket).

A plain verb module: `register(subparsers, verb)` adds the verbs, each handler is
`handler(args, config) -> int`. aiohttp is imported only by `system service`'s handler.
"""

from __future__ import annotations

import argparse

from engine.config import EngineConfig


def register(subparsers: argparse._SubParsersAction, verb: str | None = None) -> None:  # noqa: ARG001
    from engine.cli import ArgumentParser

    group = subparsers.add_parser("system", help="Manage dockui (the Engine API service, ...)")
    sub = group.add_subparsers(dest="system_verb", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    p = sub.add_parser("service", help="Serve the Docker Engine API on a Unix socket (foreground)")
    p.add_argument("-H", "--host", default=None, metavar="unix:///PATH",
                   help="the socket to listen on (default unix:///run/dockui.sock)")
    p.add_argument("-t", "--timeout", type=float, default=0, metavar="SECONDS",
                   help="exit after this many seconds without a connection (0: never)")
    p.set_defaults(handler=cmd_system_service)


def cmd_system_service(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.cli import require_root
    from engine.service import server

    host = args.host or server.DEFAULT_HOST
    server.parse_host(host)  # a tcp:// address is refused before the root check
    require_root("system service")
    return server.run(config, host, args.timeout)
