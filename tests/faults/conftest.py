"""The fault suite's session hooks: the scoreboard (tests/faults/scoreboard.py) printed at the end."""

from __future__ import annotations

import pytest

from tests.faults.scoreboard import BOARD


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = BOARD.lines()
    if not lines:
        return
    terminalreporter.section("fault scoreboard")
    for line in lines:
        terminalreporter.write_line(line)
