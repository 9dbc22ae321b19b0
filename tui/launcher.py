"""The `dockui` console script: no verb starts the TUI, a verb runs the headless CLI.

Kept free of Textual imports so `dockui ps` never pays for them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def _has_verb(argv: Sequence[str]) -> bool:
    """True when argv names a verb (or asks for help/version) rather than only global options."""
    takes_value = {"--root", "--log-level", "--insecure-registry", "--bip"}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help", "--version"):
            return True
        if arg in takes_value:
            i += 2
            continue
        if arg.startswith("--") and "=" in arg:
            i += 1
            continue
        return True
    return False


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if _has_verb(argv):
        from engine.cli import main as cli_main

        return cli_main(argv)
    from tui.app import run_app

    return run_app(argv)


if __name__ == "__main__":
    sys.exit(main())
