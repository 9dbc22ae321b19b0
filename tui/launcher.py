"""The `dockui` console script: no verb starts the TUI, a verb runs the headless CLI.

Kept free of Textual imports so `dockui ps` never pays for them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def _has_verb(argv: Sequence[str]) -> bool:
    """True when argv names a verb (or asks for help/version) rather than only global options."""
    from engine.cli import find_verb

    return find_verb(argv) is not None or any(a in ("-h", "--help", "--version") for a in argv)


# engine.cli.GLOBAL_OPTIONS_WITH_VALUE, without importing engine.cli (a test keeps them equal).
GLOBAL_OPTIONS_WITH_VALUE = ("--root", "--log-level", "--insecure-registry", "--bip")


def _asks_version(argv: Sequence[str]) -> bool:
    """`--version` among global options only (`dockui --root DIR --version`)."""
    if "--version" not in argv:
        return False
    i = 0
    while i < len(argv):
        if argv[i] in GLOBAL_OPTIONS_WITH_VALUE:
            i += 2
        elif argv[i] == "--version" or argv[i].split("=", 1)[0] in GLOBAL_OPTIONS_WITH_VALUE:
            i += 1
        else:
            return False
    return True


class _DeferredInspect(type(sys)):  # a module type: `import inspect` takes it as it is
    """Stands for `inspect` until an attribute of it is used, then loads the real module in its place."""

    def __getattr__(self, name: str) -> object:
        if sys.modules.get("inspect") is self:
            del sys.modules["inspect"]
        import inspect

        return getattr(inspect, name)


def _defer_inspect() -> None:
    """`dataclasses` imports `inspect` (with ast, dis, tokenize: ~4-5 ms) but uses it only for a
    class without a docstring; the CLI's classes all have one (see "Import costs" in docs/lifecycle.md)."""
    if "inspect" not in sys.modules:
        sys.modules["inspect"] = _DeferredInspect("inspect")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if _asks_version(argv):  # no parser needed to say it (docs/lifecycle.md, "Import costs")
        from engine import __version__

        print(f"dockui {__version__}")
        return 0
    _defer_inspect()
    if _has_verb(argv):
        from engine.cli import main as cli_main

        return cli_main(argv)
    from engine.errors import DockuiError
    from tui.app import run_app

    try:
        return run_app(argv)
    except DockuiError as exc:  # an invalid config file, before the screen opens: one line
        from engine.cli import report

        return report(exc)  # status 1, as every verb but run/create (engine.cli.error_status)


if __name__ == "__main__":
    sys.exit(main())
