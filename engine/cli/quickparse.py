"""Command lines that name a verb and nothing else (`dockui images`, `dockui network ls`, `dockui
--root DIR volume ls`), turned into argparse's namespace without building argparse's parsers.

Such a line's namespace is its parsers' defaults: the global options' (or the values given to
them), then each parser's on the way down, a sub-parser's winning as in argparse. They are read
from the same `register` calls that build the real parsers, made on a `Recorder` that keeps each
`add_argument`'s dest and default, so a new flag is known to both at once. Anything a recorder
cannot answer exactly as argparse would (a flag after the verb, a positional, a required
argument, an action class of its own, parsers built from parents, a group verb without its
sub-verb, an attribute it does not know) gives None, and argparse parses the line as before.
tests/test_cli_import_costs.py compares both on every listing verb.
"""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

# The actions whose default a recorder knows (argparse's `default` for each when none is given).
_IMPLICIT_DEFAULTS = {"store": None, "append": None, "extend": None, "store_const": None, "append_const": None,
                      "count": None, "store_true": False, "store_false": True}


class Unanswerable(Exception):
    """The recorded parsers cannot stand for argparse on this line."""


class Recorder:
    """Stands for a parser while `register` runs: records dests, defaults and sub-parsers."""

    def __init__(self) -> None:
        self.defaults: dict[str, Any] = {}
        self.options: dict[str, tuple[str, str, Any, Any]] = {}  # option -> (dest, action, type, choices)
        self.needs_arguments = False  # a positional, or a required option: a bare line is an error
        self.subparsers: Subparsers | None = None

    def add_argument(self, *names: str, **kwargs: Any) -> None:
        action = kwargs.get("action", "store")
        if action in ("help", "version"):  # no dest: only their option is known (and not answered)
            self.options.update(dict.fromkeys(names, ("", action, None, None)))
            return
        if not isinstance(action, str) or action not in _IMPLICIT_DEFAULTS:
            raise Unanswerable(f"action {action!r}")
        if not names[0].startswith("-"):
            self._add_positional(names[0], kwargs)
            return
        self.needs_arguments = self.needs_arguments or bool(kwargs.get("required"))
        long_names = [n for n in names if n.startswith("--")]
        dest = kwargs.get("dest") or (long_names or names)[0].lstrip("-").replace("-", "_")
        if dest is argparse.SUPPRESS:
            return
        default = kwargs.get("default", _IMPLICIT_DEFAULTS[action])
        convert = kwargs.get("type")
        if isinstance(default, str) and convert is not None:  # argparse converts a string default
            default = convert(default)
        self.defaults.setdefault(dest, default)
        for name in names:
            self.options[name] = (dest, action, convert, kwargs.get("choices"))

    def _add_positional(self, dest: str, kwargs: dict[str, Any]) -> None:
        """An optional positional (`nargs` "?" or "*") given no word takes its default ("*": [] for
        None), a string one through its type; any other kind needs a word."""
        nargs = kwargs.get("nargs")
        if nargs not in ("?", "*") or kwargs.get("choices") is not None or kwargs.get("action", "store") != "store":
            self.needs_arguments = True
            return
        default = kwargs.get("default")
        if isinstance(default, str) and kwargs.get("type") is not None:
            default = kwargs["type"](default)
        self.defaults.setdefault(dest, [] if default is None and nargs == "*" else default)

    def set_defaults(self, **kwargs: Any) -> None:
        self.defaults.update(kwargs)  # a parser's own defaults win over its actions'

    def add_subparsers(self, **kwargs: Any) -> Subparsers:
        self.subparsers = Subparsers(kwargs.get("dest", argparse.SUPPRESS))
        return self.subparsers

    def add_argument_group(self, *args: Any, **kwargs: Any) -> Recorder:
        return self

    def add_mutually_exclusive_group(self, required: bool = False) -> Recorder:
        self.needs_arguments = self.needs_arguments or required
        return self

    def __getattr__(self, name: str) -> Any:
        raise Unanswerable(f"parser.{name}")


class Subparsers:
    """Stands for `add_subparsers`' action: the recorders of its verbs, by name and alias."""

    def __init__(self, dest: str) -> None:
        self.dest = dest
        self.choices: dict[str, Recorder] = {}

    def add_parser(self, name: str, **kwargs: Any) -> Recorder:
        if kwargs.get("parents"):
            raise Unanswerable("parents")
        recorder = Recorder()
        for word in (name, *kwargs.get("aliases", ())):
            self.choices[word] = recorder
        return recorder


def quick_args(argv: Sequence[str], register: Any, add_global_options: Any) -> argparse.Namespace | None:
    """argparse's namespace for `[GLOBAL OPTIONS] VERB [SUB-VERB]`, from `register(subparsers,
    verb)` and `add_global_options(parser)` run on recorders; None for any other line."""
    top = Recorder()
    try:
        add_global_options(top)
        values = dict(top.defaults)
        i = _global_options(argv, top, values)
        words = list(argv[i:])
        if not words or any(w.startswith("-") for w in words):
            return None
        subparsers = Subparsers("verb")
        register(subparsers, words[0])
        for word in words:
            recorder = subparsers.choices.get(word) if subparsers is not None else None
            if recorder is None:
                return None
            if subparsers.dest is not argparse.SUPPRESS:
                values[subparsers.dest] = word
            values.update(recorder.defaults)
            subparsers = recorder.subparsers
        if subparsers is not None or recorder.needs_arguments or "handler" not in values:
            return None  # a group without its sub-verb, or arguments missing: argparse says so
    except Exception:  # noqa: BLE001 - Unanswerable, or a register() that wants more of argparse than a recorder has
        return None
    return argparse.Namespace(**values)


def _global_options(argv: Sequence[str], top: Recorder, values: dict[str, Any]) -> int:
    """Take the global options (`--root DIR`, `--root=DIR`, repeated `--insecure-registry`) into
    `values`; the index of the first word after them."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        name, eq, value = argv[i].partition("=") if argv[i].startswith("--") else (argv[i], "", "")
        dest, action, convert, choices = top.options.get(name, ("", "", None, None))
        if action not in ("store", "append"):
            raise Unanswerable(name)
        i += 1
        if not eq:
            if i >= len(argv) or argv[i].startswith("-"):
                raise Unanswerable(name)
            value, i = argv[i], i + 1
        try:
            converted = convert(value) if convert is not None else value
        except Exception as exc:  # noqa: BLE001 - argparse says what is wrong with it
            raise Unanswerable(name) from exc
        if choices is not None and converted not in choices:
            raise Unanswerable(name)
        if action == "append":
            values[dest] = [*(values[dest] or []), converted]
        else:
            values[dest] = converted
    return i
