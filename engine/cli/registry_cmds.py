"""Registry verbs: pull, push, login, logout.

The engine modules that import `requests` are imported inside the handlers, so `dockui ps` and
`dockui --help` never pay for them.
"""

from __future__ import annotations

import argparse
import sys

from engine.config import EngineConfig
from engine.errors import InvalidArgument

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import TextIO

BAR_WIDTH = 50
_BYTE_STATUSES = ("Downloading", "Extracting", "Pushing")


def register(subparsers: argparse._SubParsersAction, verb: str | None = None) -> None:  # noqa: ARG001
    add_pull(subparsers.add_parser("pull", help="Download an image from a registry"))
    add_push(subparsers.add_parser("push", help="Upload an image to a registry"))

    login = subparsers.add_parser("login", help="Log in to a registry")
    login.add_argument("server", nargs="?", default="docker.io", metavar="SERVER")
    login.add_argument("-u", "--username")
    login.add_argument("-p", "--password")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    login.set_defaults(handler=cmd_login)

    logout = subparsers.add_parser("logout", help="Log out from a registry")
    logout.add_argument("server", nargs="?", default="docker.io", metavar="SERVER")
    logout.set_defaults(handler=cmd_logout)


def add_pull(pull: argparse.ArgumentParser) -> None:
    """`pull`'s flags (also `image pull`)."""
    pull.add_argument("reference", metavar="NAME[:TAG|@DIGEST]")
    pull.add_argument("--platform", help="os/arch[/variant] to pull from a multi-platform image")
    pull.add_argument("-q", "--quiet", action="store_true", help="print only the image reference")
    pull.set_defaults(handler=cmd_pull)


def add_push(push: argparse.ArgumentParser) -> None:
    """`push`'s flags (also `image push`)."""
    push.add_argument("reference", metavar="NAME[:TAG]")
    push.add_argument("-q", "--quiet", action="store_true", help="print only the digest line")
    push.set_defaults(handler=cmd_push)


class ProgressPrinter:
    """Docker-style per-layer lines: redrawn in place with bars on a terminal, one line per state
    change otherwise (byte counters are only shown on a terminal, as docker does)."""

    def __init__(self, out: TextIO, tty: bool | None = None) -> None:
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.order: list[str] = []
        self.last_status: dict[str, str] = {}

    def __call__(self, event) -> None:  # event: PullEvent
        if event.layer is None:
            self.out.write(event.status + "\n")
            self.out.flush()
            return
        if not self.tty:
            if event.status in _BYTE_STATUSES or self.last_status.get(event.layer) == event.status:
                self.last_status[event.layer] = event.status
                return
            self.last_status[event.layer] = event.status
            self.out.write(f"{event.layer}: {event.status}\n")
            self.out.flush()
            return
        line = f"{event.layer}: {event.status}"
        if event.status in _BYTE_STATUSES and event.total:
            line += " " + bar(event.current, event.total)
        if event.layer not in self.order:
            self.order.append(event.layer)
            self.out.write(line + "\n")
        else:
            up = len(self.order) - self.order.index(event.layer)
            self.out.write(f"\x1b[{up}A\r\x1b[2K{line}\r\x1b[{up}B")
        self.out.flush()


def bar(current: int, total: int) -> str:
    from engine.cli.output import human_size

    filled = min(BAR_WIDTH, int(BAR_WIDTH * current / total)) if total else 0
    arrow = "=" * max(filled - 1, 0) + (">" if filled < BAR_WIDTH and filled else "=" if filled else "")
    return f"[{arrow.ljust(BAR_WIDTH)}] {human_size(current):>8}/{human_size(total)}"


def cmd_pull(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.cli import require_root
    from engine.image.pull import previous_image_id, pull_image, pull_status
    from engine.image.reference import parse_reference

    reference = parse_reference(args.reference)
    require_root("pull (layers keep their owners, devices and xattrs)")
    previous = previous_image_id(config, args.reference)
    printer = None if args.quiet else ProgressPrinter(sys.stdout)
    record = pull_image(config, args.reference, platform=args.platform, progress=printer)
    if not args.quiet:
        print(pull_status(reference, previous, record))
    print(str(reference))
    return 0


def cmd_push(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.image.push import push_image

    printer = ProgressPrinter(sys.stdout)

    def progress(event) -> None:
        if not args.quiet or (event.layer is None and "digest:" in event.status):
            printer(event)

    push_image(config, args.reference, progress=progress)
    return 0


def normalise_server(server: str) -> str:
    """`https://host:5000/v2/` -> `host:5000`; Docker Hub's aliases -> `docker.io`."""
    host = server.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    if not host:
        raise InvalidArgument(f"invalid registry address {server!r}")
    if host in ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"):
        return "docker.io"
    return host


def cmd_login(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.image.auth import Credentials, save_credentials
    from engine.image.registry import RegistryClient, forget_clients

    server = normalise_server(args.server)
    if args.password and args.password_stdin:
        raise InvalidArgument("--password and --password-stdin are mutually exclusive")
    username = args.username
    if args.password_stdin:
        if not username:
            raise InvalidArgument("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif args.password is not None:
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", file=sys.stderr)
        password = args.password
    else:
        if not username:
            username = input("Username: ").strip()
        import getpass  # on use: see "Import costs" in docs/lifecycle.md

        password = getpass.getpass("Password: ")
    if not username:
        raise InvalidArgument("Non-null Username Required")
    if not password:
        raise InvalidArgument("Non-null Password Required")
    credentials = Credentials(username, password)
    host = "registry-1.docker.io" if server == "docker.io" else server
    client = RegistryClient(config, host, credentials=credentials, use_stored_credentials=False)
    try:
        client.check_login()
    finally:
        client.close()
    path = save_credentials(config, server, credentials)
    forget_clients()
    print(f"Credentials stored in {path}", file=sys.stderr)
    print("Login Succeeded")
    return 0


def cmd_logout(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.image.auth import remove_credentials

    server = normalise_server(args.server)
    if remove_credentials(config, server):
        print(f"Removing login credentials for {server}")
    else:
        print(f"Not logged in to {server}")
    return 0

