"""The TUI against the real engine, for what a person meets in daily use (issue #14): crashes, pending
actions, dead containers, logs, shells, sorting, the footer. Pilot (`App.run_test`) on real containers
in a throw-away root; everything here needs root and removes what it made."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from textual import events

from engine.config import EngineConfig
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - fixture
from tests.tui_helpers import run_async, until
from tui.app import DockuiApp
from tui.backend import EngineBackend
from tui.widgets.containers_table import ContainersTable

pytestmark = pytest.mark.root
REPO = Path(__file__).resolve().parent.parent

# PID 1 that stops on SIGTERM within ~0.2 s; a bare `sh` loop ignores SIGTERM (no handler as PID 1)
STOPPABLE = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]
DEAF = ["sh", "-c", "while :; do sleep 0.2; done"]


def _table(app: DockuiApp) -> ContainersTable:
    return app.screen.query_one(ContainersTable)


def _select(app: DockuiApp, name: str) -> bool:
    table = _table(app)
    names = [c.name for c in table.visible_rows]
    if name not in names:
        return False
    table.move_cursor(row=names.index(name))
    return table.selected is not None and table.selected.name == name


def _status(eng: Engine, name: str) -> str:
    return eng.inspect(name)["State"]["Status"]


def _cell(app: DockuiApp, name: str, column: str) -> str:
    table = _table(app)
    row = next(c for c in table.visible_rows if c.name == name)
    return str(table.get_cell(row.id, column))


def _notes(app: DockuiApp) -> list[str]:
    return [f"{n.title} {n.message}" for n in app._notifications]


# ---- crashes


@run_async
async def test_sort_repeatedly_with_rows_off_screen_does_not_crash(engine: Engine) -> None:
    """Rows off screen wait in a pending set; `S` rebuilds the table (scrolling to the top), which
    wrote those pending rows, changed since (uptime, CPU), into rows that no longer existed:
    CellDoesNotExist."""
    count = 10
    for i in range(count):
        engine.out("run", "-d", "--network", "none", "--name", f"tui-s{i:02d}", "busybox", "sleep", "600")
    app = DockuiApp(engine.config, refresh_interval=0.1)
    async with app.run_test(size=(130, 12)) as pilot:  # wide enough for the ID column: a new order
        assert await until(pilot, lambda: len(_table(app).visible_rows) == count)
        table = _table(app)
        table.move_cursor(row=count - 1)
        for _ in range(8):  # more than a second: every row's uptime changes
            await pilot.press("S")
            await pilot.pause(0.2)
            assert app.is_running and app.return_code is None
            table.move_cursor(row=count - 1)
        assert table.scroll_y > 0
        assert len(table.visible_rows) == count


class SpyBackend(EngineBackend):
    """The real engine backend, recording which container actions the app asked for."""

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        self.calls: list[tuple[str, str]] = []

    def container_action(self, action: str, container_id: str) -> None:
        self.calls.append((action, container_id))
        super().container_action(action, container_id)

    def exec_command(self, container_id: str) -> list[str] | None:
        self.calls.append(("exec", container_id))
        return super().exec_command(container_id)


@run_async
async def test_q_is_final_keys_typed_after_it_are_dropped(engine: Engine) -> None:
    engine.out("run", "-d", "--network", "none", "--name", "tui-q", "busybox", *STOPPABLE)
    backend = SpyBackend(engine.config)
    app = DockuiApp(engine.config, backend=backend, refresh_interval=0.2)
    async with app.run_test(size=(120, 30)) as pilot:
        assert await until(pilot, lambda: _select(app, "tui-q") and _table(app).selected.status == "running")
        await pilot.pause(0.1)
        assert app.screen.check_action("exec_shell", ())  # `e` would open a shell
        # typed ahead, as `q e x` typed quickly: the focused table gets all three before the app
        # has closed, so each is handled unless the app drops them
        for key in ("q", "e", "x"):
            app.post_message(events.Key(key, key))
        await pilot.pause(0.3)
    assert backend.calls == []
    assert app.return_code == 0
    assert _status(engine, "tui-q") == "running"


def test_a_crash_exits_non_zero_and_names_the_saved_traceback(engine: Engine) -> None:
    """The real `run_app` (headless), a real engine root, and a screen that raises while drawing."""
    script = "\n".join([
        "import sys",
        "from tui import app as module",
        "from tui.screens.containers import ContainersScreen",
        "def broken(self, data): raise RuntimeError('drawing failed on purpose')",
        "ContainersScreen.apply_data = broken",
        "run = module.DockuiApp.run",
        "module.DockuiApp.run = lambda self: run(self, headless=True, size=(100, 30))",
        f"sys.exit(module.run_app(['--root', {str(engine.config.root)!r}]))",
    ])
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            env=engine.env, cwd=REPO)
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    last = result.stderr.strip().splitlines()[-1]
    assert "the session crashed" in last and "drawing failed on purpose" in last, last
    path = Path(last.rsplit(" ", 1)[1])
    assert path.is_file() and path.parent == engine.config.root
    report = path.read_text()
    assert "Traceback (most recent call last)" in report and "RuntimeError: drawing failed on purpose" in report
    path.unlink()
