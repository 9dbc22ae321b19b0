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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--version"]:  # no parser needed to say it (docs/lifecycle.md, "Import costs")
        from engine import __version__

        print(f"dockui {__version__}")
        return 0
    if _has_verb(argv):
        from engine.cli import main as cli_main

        return cli_main(argv)
    from engine.errors import DockuiError
    from tui.app import run_app

    try:
        return run_app(argv)
    except DockuiError as exc:  # an invalid config file, before the screen opens: one line
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
