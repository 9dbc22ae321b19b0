"""The Textual application (placeholder screen until the TUI issue lands)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Static

from engine.cli import add_global_options, config_from_args
from engine.config import EngineConfig

STYLES = Path(__file__).resolve().parent.parent / "styles"


class DockuiApp(App[None]):
    CSS_PATH = str(STYLES / "dockui.tcss")
    TITLE = "dockui"
    BINDINGS = [("q", "quit", "Quit")]

    def __init__(self, config: EngineConfig) -> None:
        super().__init__()
        self.config = config

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"dockui — state in {self.config.root}", id="placeholder")
        yield Footer()


def run_app(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="dockui")
    add_global_options(parser)
    args = parser.parse_args(list(argv))
    if os.geteuid() != 0:
        print("dockui: the full-screen session needs root (containers, cgroups, netlink): run `sudo dockui`",
              file=sys.stderr)
        return 1
    DockuiApp(config_from_args(args)).run()
    return 0
