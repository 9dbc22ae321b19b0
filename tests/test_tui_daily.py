"""The TUI's daily-driver features on real containers (Pilot, a throw-away root):
compose projects (the PROJECT column, `g` marking a project, one stop and one question for its
removal), health in STATUS with its colour, copying the ID and name by OSC 52, saving a log to a
file, and the live events screen."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - fixture
from tests.test_tui_live import _select, _table
from tests.tui_helpers import run_async, until
from tui.app import DockuiApp
from tui.screens.dialogs import ConfirmDialog

pytestmark = pytest.mark.root

STOPPABLE = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]
RUN = ("run", "-d", "--network", "none")


def _cell(app: DockuiApp, name: str, column: str):  # noqa: ANN202 - a rich Text
    table = _table(app)
    row = next(c for c in table.visible_rows if c.name == name)
    return table.get_cell(row.id, column)


def _status(engine: Engine, name: str) -> str:
    return engine.inspect(name)["State"]["Status"]


def _names(engine: Engine) -> set[str]:
    return set(engine.out("ps", "-a", "--format", "{{.Names}}").split())


@run_async
async def test_a_compose_project_is_shown_marked_with_g_stopped_and_removed_as_one(engine: Engine) -> None:
    for service in ("web", "db"):
        engine.out(*RUN, "--name", f"shop_{service}_1", "--label", "com.docker.compose.project=shop",
                   "--label", f"com.docker.compose.service={service}", "busybox", *STOPPABLE)
    engine.out(*RUN, "--name", "loner", "busybox", *STOPPABLE)
    app = DockuiApp(engine.config, refresh_interval=0.3)
    async with app.run_test(size=(160, 40)) as pilot:
        assert await until(pilot, lambda: len([c for c in _table(app).views if c.status == "running"]) == 3)
        assert str(_cell(app, "shop_web_1", "project")) == "shop"
        assert str(_cell(app, "loner", "project")) == "-"
        # the filter finds a project by project=NAME
        await pilot.press("slash", *"project=shop", "enter")
        assert await until(pilot, lambda: sorted(c.name for c in _table(app).visible_rows) == ["shop_db_1", "shop_web_1"])
        await pilot.press("escape")
        assert await until(pilot, lambda: len(_table(app).visible_rows) == 3)

        assert await until(pilot, lambda: _select(app, "shop_db_1"))
        await pilot.press("g")
        table = _table(app)
        assert {c.name for c in table.marked_views} == {"shop_web_1", "shop_db_1"}
        marks = str(app.screen.query_one("#marks").render())
        assert "project shop: 2 marked" in marks, marks
        await pilot.press("x")  # one stop for the whole project
        assert await until(pilot, lambda: _status(engine, "shop_web_1") == "exited"
                           and _status(engine, "shop_db_1") == "exited", timeout=30)
        assert _status(engine, "loner") == "running"
        assert not table.marked  # the bulk action used the marks up

        assert await until(pilot, lambda: _select(app, "shop_web_1")
                           and _table(app).selected.status == "exited")
        await pilot.press("g", "d")  # remove the project: one question naming both
        assert await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "Remove 2 containers" in app.screen.question and "shop_db_1" in app.screen.question
        await pilot.press("y")
        assert await until(pilot, lambda: _names(engine) == {"loner"}, timeout=30)
        # g on a container outside any project says so and marks nothing
        assert await until(pilot, lambda: _select(app, "loner"))
        await pilot.press("g")
        assert not _table(app).marked
        assert any("not part of a compose project" in str(n.message) for n in app._notifications)


@run_async
async def test_health_is_in_status_and_colours_it(engine: Engine) -> None:
    run = (*RUN, "--health-interval", "0.2s", "--health-retries", "1")
    engine.out(*run, "--name", "fine", "--health-cmd", "true", "busybox", "sleep", "600")
    engine.out(*run, "--name", "sick", "--health-cmd", "exit 1", "busybox", "sleep", "600")
    engine.out(*RUN, "--name", "waiting", "--health-cmd", "true", "--health-interval", "1h", "busybox", "sleep", "600")
    engine.out(*RUN, "--name", "plain", "busybox", "sleep", "600")
    app = DockuiApp(engine.config, refresh_interval=0.3)
    async with app.run_test(size=(160, 40)) as pilot:
        def shown() -> dict[str, str]:
            return {c.name: str(_cell(app, c.name, "status")) for c in _table(app).visible_rows}

        assert await until(pilot, lambda: shown().get("fine", "").endswith("(healthy)")
                           and shown().get("sick", "").endswith("(unhealthy)"), timeout=30), shown()
        assert shown()["waiting"].endswith("(starting)") and "(" not in shown()["plain"], shown()
        theme = app.current_theme
        colours = {name: _cell(app, name, "status").style.color.name.lower() for name in ("fine", "sick", "waiting")}
        assert colours["sick"] == theme.error.lower()
        assert colours["waiting"] == theme.warning.lower()
        assert colours["fine"] == theme.success.lower()
        # the filter finds them by health
        await pilot.press("slash", *"unhealthy", "enter")
        assert await until(pilot, lambda: [c.name for c in _table(app).visible_rows] == ["sick"])


@run_async
async def test_y_and_Y_copy_the_id_and_the_name_by_osc52(engine: Engine) -> None:  # noqa: N802 - the keys
    cid = engine.out(*RUN, "--name", "copied", "busybox", "sleep", "600").strip()
    app = DockuiApp(engine.config, refresh_interval=0.3)
    written: list[str] = []
    async with app.run_test(size=(120, 30)) as pilot:
        real_write = app._driver.write
        app._driver.write = lambda data: (written.append(data), real_write(data))  # type: ignore[method-assign]
        assert await until(pilot, lambda: _select(app, "copied"))
        await pilot.press("y")
        assert app.clipboard == cid
        import base64

        assert f"\x1b]52;c;{base64.b64encode(cid.encode()).decode()}\a" in "".join(written)
        await pilot.press("Y")
        assert app.clipboard == "copied"
        await pilot.press("enter")  # the detail screen copies too
        assert await until(pilot, lambda: app.current_mode == "detail")
        app.copy_to_clipboard("")
        await pilot.press("y")
        assert app.clipboard == cid


@run_async
async def test_o_saves_the_whole_log_to_a_new_file(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine.out(*RUN, "--name", "talker", "busybox", "sh", "-c", "seq 1 12000; sleep 600")
    monkeypatch.chdir(tmp_path)
    app = DockuiApp(engine.config, refresh_interval=0.3)
    async with app.run_test(size=(120, 30)) as pilot:
        assert await until(pilot, lambda: _select(app, "talker"))
        await pilot.press("l")
        # the Logs tab, not only the screen: o is offered there only (under load the tab comes a frame later)
        assert await until(pilot, lambda: app.current_mode == "detail" and app.screen.active_tab == "logs")
        await pilot.press("o")
        assert await until(pilot, lambda: list(tmp_path.glob("talker-*.log")), timeout=20)
        saved = next(tmp_path.glob("talker-*.log"))
        assert await until(pilot, lambda: saved.read_text().count("\n") == 12000, timeout=20)
        assert saved.read_text().splitlines()[:2] == ["1", "2"]  # more than the view's 10,000 lines
        assert any(str(saved) in str(n.message) for n in app._notifications)
        await pilot.press("t")
        await pilot.pause(1.1)  # a new file: the name has the second in it
        await pilot.press("o")
        assert await until(pilot, lambda: len(list(tmp_path.glob("talker-*.log"))) == 2, timeout=20)
        stamped = max(tmp_path.glob("talker-*.log"), key=os.path.getmtime)
        assert await until(pilot, lambda: stamped.read_text().count("\n") == 12000, timeout=20)
        first = stamped.read_text().splitlines()[0]
        assert first.endswith(" 1") and first[:4].isdigit() and "T" in first.split()[0], first


@run_async
async def test_the_events_screen_is_live_and_E_filters_it_by_container(engine: Engine) -> None:  # noqa: N802
    from textual.widgets import DataTable

    engine.out(*RUN, "--name", "before-open", "busybox", "sleep", "600")
    app = DockuiApp(engine.config, refresh_interval=0.3)
    async with app.run_test(size=(160, 40)) as pilot:
        def rows() -> list[tuple[str, str]]:
            table = app.screen.query_one("#events", DataTable)
            return [(str(table.get_row_at(i)[3]), str(table.get_row_at(i)[2])) for i in range(table.row_count)]

        await pilot.press("6")
        assert await until(pilot, lambda: app.current_mode == "events" and ("before-open", "start") in rows())
        engine.out(*RUN, "--name", "after-open", "busybox", "sleep", "600")  # live: no key pressed
        assert await until(pilot, lambda: ("after-open", "start") in rows(), timeout=15), rows()
        engine.out("stop", "-t", "0", "after-open")
        assert await until(pilot, lambda: ("after-open", "die") in rows(), timeout=15), rows()

        await pilot.press("1")
        assert await until(pilot, lambda: _select(app, "before-open"))
        await pilot.press("E")  # its events only
        assert await until(pilot, lambda: app.current_mode == "events" and rows()
                           and {name for name, _ in rows()} == {"before-open"}), rows()
        await pilot.press("escape")  # the filter cleared: every event again
        assert await until(pilot, lambda: {"before-open", "after-open"} <= {name for name, _ in rows()})

