"""The headless, docker-like command line: `dockui <verb> ...`.

Each group of verbs lives in its own module with a `register(subparsers)` function; a verb's handler
is `handler(args, config) -> int`. Modules here import heavy things (requests, pyroute2) only inside
handlers, so `dockui ps` stays fast.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from engine import __version__, diagnostics
from engine.config import EngineConfig
from engine.errors import DockuiError, NeedsRoot

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

# Modules that register verbs, in the order their verbs appear in `--help`.
VERB_MODULES = (
    "engine.cli.container_cmds",
    "engine.cli.registry_cmds",
    "engine.cli.image_cmds",
    "engine.cli.build_cmds",
    "engine.cli.network_cmds",
    "engine.cli.stats_cmds",
    "engine.cli.system_cmds",
)

Handler = Callable[[argparse.Namespace, EngineConfig], int]

# argparse translates its few fixed messages ("options", "show this help message and exit", ...)
# through gettext each time it makes a parser: a catalog search on disk per message (~140 of them
# for `dockui images`). The answer cannot change within a process: each message is looked up once.
argparse._ = functools.lru_cache(maxsize=None)(argparse._)  # type: ignore[attr-defined]


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, with the terminal's width looked up once per process: argparse makes
    a formatter for every add_argument (to check it), and each looked at the terminal (~1.5 ms of
    every start, for `run`'s 60 flags)."""

    _width: int | None = None

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None) -> None:
        if width is None:
            if HelpFormatter._width is None:
                HelpFormatter._width = terminal_columns() - 2
            width = HelpFormatter._width
        super().__init__(prog, indent_increment, max_help_position, width)


def terminal_columns() -> int:
    """shutil.get_terminal_size().columns without importing shutil (see docs/lifecycle.md)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns if sys.__stdout__ else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class ArgumentParser(argparse.ArgumentParser):
    """argparse that exits as docker's usage errors do (usage_status: 125 for a flag, 1 for the
    arguments or the verb), with help formatted by HelpFormatter; a long option must be spelled
    out, as docker's (`--pid` is not `--pids-limit`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        """Docker's form: the problem and a hint in two lines, not the whole usage; a missing
        argument (as Docker's "requires at least 1 argument") also gets the usage line. A group
        without its sub-verb (`dockui volume`) is not an error: docker's ShowHelp, the group's help
        on stderr and status 0."""
        if message == "the following arguments are required: COMMAND":
            self.print_help(sys.stderr)
            sys.exit(0)
        print(f"{self.prog}: error: {message}\nSee '{self.prog} --help'.", file=sys.stderr)
        if message.startswith("the following arguments are required"):
            print(file=sys.stderr)
            self.print_usage(sys.stderr)
        sys.exit(1 if self.unknown_verb else usage_status(message))

    unknown_verb = False

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """argparse's check of a choice; an unknown verb is noted for error() (docker's "unknown
        command" is status 1, a flag's value it cannot take 125)."""
        try:
            super()._check_value(action, value)
        except argparse.ArgumentError:
            self.unknown_verb = isinstance(action, argparse._SubParsersAction)
            raise


def usage_status(message: str) -> int:
    """The docker CLI's status for a usage error (cobra's two kinds): 125 for a flag (unknown, or a
    value it cannot take: cli.FlagErrorFunc's StatusError), 1 for the positional arguments (too few,
    too many: cli.RequiresMinArgs and friends are plain errors)."""
    if message.startswith("the following arguments are required"):
        return 1
    if message.startswith("unrecognized arguments: "):
        extras = message.removeprefix("unrecognized arguments: ").split()
        return 125 if any(word.startswith("-") for word in extras) else 1
    return 125


def filter_flag(text: str) -> str:
    """A `--filter` value as the docker CLI's FilterOpt takes it: KEY=VALUE; else the flag's own
    error (a usage error: 125)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError("bad format of filter (expected name=value)")
    return text


def env_flag(text: str) -> str:
    """An `-e` value as the docker CLI's ValidateEnv takes it: a name before any `=`; else the
    flag's own error (a usage error: 125)."""
    if not text.partition("=")[0]:
        raise argparse.ArgumentTypeError(f"invalid environment variable: {text}")
    return text


# Verbs whose engine errors keep their status: docker's run wraps every failure before the container
# runs in a StatusError (125; 126/127 when the command cannot be invoked or found: run.go), and
# exec's 126/127 are the exec's own exit code. docker's create wraps only its client-side refusals
# (parse() and the flags' validators: create.go's runCreate) and returns the engine's plainly: 1.
# Every other verb's engine error is 1, as docker's plain errors (`start` of a container whose
# command is not found too); a status that is neither 125, 126 nor 127 (a template's 64) is the
# CLI's own and stays.
RUN_VERBS = frozenset({("run",), ("container", "run")})
CREATE_VERBS = frozenset({("create",), ("container", "create")})
COMMAND_STATUS_VERBS = frozenset({("exec",), ("container", "exec")})


def error_status(exc: DockuiError, verb: tuple[str, ...]) -> int:
    """The exit status of an engine error in `verb` (its words: `("network", "create")`)."""
    if verb in RUN_VERBS or exc.exit_code not in (125, 126, 127):
        return exc.exit_code
    if verb in CREATE_VERBS:
        from engine.container.options import FlagError  # (an error's path only)

        return 125 if isinstance(exc, FlagError) else 1
    if verb in COMMAND_STATUS_VERBS and exc.exit_code != 125:
        return exc.exit_code
    return 1


# Global options that take a value (the verb is the first argument that is neither one of these
# nor an option).
GLOBAL_OPTIONS_WITH_VALUE = ("--root", "--log-level", "--insecure-registry", "--bip")


def find_verb(argv: Sequence[str]) -> str | None:
    """The verb named in argv, or None when argv holds only global options (or asks for help)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in GLOBAL_OPTIONS_WITH_VALUE:
            i += 2
        elif arg.startswith("-"):
            i += 1
        else:
            return arg
    return None


# Verbs whose usual command lines engine.cli.container_cmds.fast_args parses without argparse.
FAST_VERBS = ("run", "ps")

# The module of each top-level verb past the container verbs (those come first anyway): `dockui
# images` imports and builds that module's parsers alone, not the ~40 of the modules before it. A
# verb missing here is found by trying the modules in order (tests/test_cli_import_costs.py checks).
VERB_OWNERS = {verb: module for module, verbs in (
    ("engine.cli.registry_cmds", ("login", "logout", "pull", "push")),
    ("engine.cli.image_cmds", ("history", "image", "images", "import", "load", "rmi", "save", "tag")),
    ("engine.cli.build_cmds", ("build",)),
    ("engine.cli.network_cmds", ("network",)),
    ("engine.cli.stats_cmds", ("stats",)),
    ("engine.cli.system_cmds", ("events", "info", "system", "version")),
) for verb in verbs}


def build_parser(verb: str | None = None) -> ArgumentParser:
    """The top-level parser; given the verb, only the module that registers it (VERB_OWNERS), or
    the modules up to it.

    Building every group's parsers costs ~10 ms on each start, so `dockui ps` builds only the
    container verbs. An unknown verb (or none: --help) gets every group, for the usage message.
    """
    parser = ArgumentParser(prog="dockui", description="A daemonless container engine with a TUI.")
    add_global_options(parser)
    subparsers = parser.add_subparsers(dest="verb", metavar="COMMAND", parser_class=ArgumentParser)
    for name in (VERB_OWNERS[verb],) if verb in VERB_OWNERS else VERB_MODULES:
        importlib.import_module(name).register(subparsers, verb)
        if verb is not None and verb in subparsers.choices:
            break
    else:
        if verb is not None:  # not a verb: the full parser, for the usage message that lists them all
            return build_parser(None)
    return parser


def quick_parse(argv: Sequence[str], verb: str) -> argparse.Namespace | None:
    """argparse's namespace for a line that names `verb` (and a sub-verb) and nothing else, read
    from its module's register() without building a parser (engine.cli.quickparse); None for any
    other line."""
    from engine.cli.quickparse import quick_args

    return quick_args(argv, importlib.import_module(VERB_OWNERS.get(verb, VERB_MODULES[0])).register, add_global_options)


def add_global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", help="state directory (default /var/lib/dockui, or $DOCKUI_ROOT)")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("DOCKUI_LOG_LEVEL", "warning"),
        choices=["debug", "info", "warning", "error", "critical"],
    )
    parser.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="allow plain HTTP (and unverified TLS) for this registry",
    )
    parser.add_argument(
        "--bip",
        metavar="CIDR",
        help="address and prefix of the default bridge, e.g. 172.18.0.1/16 (default: first free private subnet)",
    )
    parser.add_argument("--version", action="version", version=f"dockui {__version__}")


def config_from_args(args: argparse.Namespace) -> EngineConfig:
    config = EngineConfig.load(root=args.root, log_level=args.log_level, bridge_ip=args.bip)
    config.insecure_registries = [*config.insecure_registries, *args.insecure_registry]
    if os.geteuid() == 0:
        config.ensure_root()
    return config


def require_root(what: str) -> None:
    """Raise NeedsRoot (one line; status 125 for run, 1 for other verbs) unless we are root."""
    if os.geteuid() != 0:
        raise NeedsRoot(f"{what} needs root (namespaces, mounts, cgroups): run it with sudo")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = find_verb(argv)
    args = None
    if verb in FAST_VERBS:  # the common run and ps without argparse's parsers
        from engine.cli.container_cmds import fast_args

        args = fast_args(argv, verb)
    elif verb is not None:  # `images`, `network ls`, ...: a verb and nothing else, without them too
        args = quick_parse(argv, verb)
    if args is None:
        parser = build_parser(verb)
        args, extras = parser.parse_known_args(argv)
        if extras:  # named by the verb's own parser (`dockui network create`), as Docker does
            _verb_parser(parser, args).error(f"unrecognized arguments: {' '.join(extras)}")
    if not getattr(args, "verb", None):
        parser.print_help()
        return 0
    diagnostics.configure(args.log_level)
    if not gc.isenabled():  # the command's start-up, made with collection off (docs/lifecycle.md, "Import costs"):
        gc.freeze()  # it lives as long as the process, out of every later collection (the one at exit too)
        gc.enable()
    handler: Handler = args.handler
    config: EngineConfig | None = None
    try:
        config = config_from_args(args)
        return handler(args, config)
    except DockuiError as exc:
        return report(exc, _status_verb(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # permission, full disk, ...: what the verb could not do, in one line
        from engine.errors import from_os_error

        if args.log_level == "debug":
            raise
        return report(from_os_error(exc, _verb_name(args), config.root if config else None), _status_verb(args))
    except Exception as exc:  # a bug: one line, and the traceback with --log-level debug
        if args.log_level == "debug":
            raise
        return report(DockuiError(f"{_verb_name(args)}: internal error: {type(exc).__name__}: {exc} "
                                  "(--log-level debug shows where)"), _status_verb(args))


def _verb_words(args: argparse.Namespace) -> list[str]:
    """`["network", "inspect"]`, `["ps"]`: the verb and sub-verb as typed."""
    words = [args.verb]
    for name, value in sorted(vars(args).items()):
        if name.endswith("_verb") and isinstance(value, str) and value != args.verb:
            words.append(value)
    return words


def _status_verb(args: argparse.Namespace) -> tuple[str, ...]:
    """The verb's words for error_status; `container`'s sub-verb is parsed inside its handler, so it
    is the first word of the rest that is not an option."""
    words = _verb_words(args)
    if words == ["container"]:
        words.append(next((w for w in getattr(args, "rest", ()) if not w.startswith("-")), ""))
    return tuple(words)


def _verb_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost parser `args` went through: `network` then its `create`, for its name."""
    current = parser
    for word in _verb_words(args):
        actions = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions or word not in actions[0].choices:
            break
        current = actions[0].choices[word]
    return current


def report(exc: DockuiError, verb: tuple[str, ...] = ()) -> int:
    """Print an engine error of `verb` as the CLI's one line; its exit status (error_status)."""
    message = " ".join(str(exc).split("\n")) or type(exc).__name__
    from engine.cli.output import FormatError  # a template's error: bare, as the docker CLI prints Go's

    print(message if isinstance(exc, FormatError) else f"Error: {message}", file=sys.stderr)
    return error_status(exc, verb)


def _verb_name(args: argparse.Namespace) -> str:
    """`network inspect`, `image prune`, `ps`: the verb as typed, for error lines."""
    return " ".join(_verb_words(args))
