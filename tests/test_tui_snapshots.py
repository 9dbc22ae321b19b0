"""Snapshot tests of every screen at 80x24 and 160x48, fed by the recorded (deterministic) backend.

Update after an intended change with `pytest tests/test_tui_snapshots.py --snapshot-update` and look
at the SVGs in tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, TabbedContent

from tests.tui_helpers import recorded_app, settle

SIZES = [(80, 24), (160, 48)]


def steady_cursors(app) -> None:  # noqa: ANN001
    """Stop every text cursor blinking, shown: an Input's cursor blinks on a 0.5 s timer, so a
    focused field was drawn with or without it depending on when the shot fell in the blink (the
    run dialog at 80x24 differed by that one cell under load)."""
    for screen in app.screen_stack:
        for field in screen.query(Input):
            field.cursor_blink = False  # Textual then keeps the cursor visible


async def _final_frame(pilot) -> None:  # noqa: ANN001
    """Let idle-time work (a DataTable re-measuring its columns after rows arrive) reach the screen.

    Without it a snapshot could, rarely, catch a header drawn with the widths of before the rows.
    """
    await pilot.pause(0.1)
    await settle(pilot)
    steady_cursors(pilot.app)
    await pilot.pause()


def _tab(name: str):  # noqa: ANN202
    async def run_before(pilot) -> None:  # noqa: ANN001
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        pilot.app.screen.query_one(TabbedContent).active = name
        await settle(pilot)
        await _final_frame(pilot)

    return run_before


def _keys(*keys: str):  # noqa: ANN202
    async def run_before(pilot) -> None:  # noqa: ANN001
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        await _final_frame(pilot)

    return run_before


SCREENS = {
    "home": _keys(),
    "detail_stats": _keys("enter"),
    "detail_logs": _keys("enter", "l"),
    "detail_inspect": _keys("enter", "i"),
    "detail_config": _tab("config"),
    "detail_top": _keys("enter", "right_square_bracket", "right_square_bracket", "right_square_bracket"),
    "images": _keys("2"),
    "network": _keys("3"),
    "pull_done": _keys("p", *"busybox", "enter"),
    "run_dialog": _keys("n"),
    "help": _keys("question_mark"),
    "confirm_remove": _keys("d"),
    "volumes": _keys("5"),
    "image_history": _keys("2", "h"),
    "confirm_image_in_use": _keys("2", "d"),
    "events": _keys("6"),
    "confirm_container_prune": _keys("X"),
}

# the states issue #14 asked to see: a pending stop, an OOM-killed container with its notice, the log
# paused by scrolling up, marks and their one confirmation


async def _pending_stop(pilot) -> None:  # noqa: ANN001
    """A stop that waits (a SIGTERM-deaf PID 1): the app's overlay on a fixed clock, 7 s in."""
    from tui.pending import PendingActions

    await settle(pilot)
    app = pilot.app
    clock = [100.0]
    app.actions = PendingActions(clock=lambda: clock[0])
    web = next(c for c in app.containers if c.name == "web")
    app.actions.begin("stop", web.id)
    clock[0] += 7
    app._bindings_changed()
    app.refresh_now()
    await settle(pilot)
    await _final_frame(pilot)


async def _oom_killed(pilot) -> None:  # noqa: ANN001
    await settle(pilot)
    pilot.app.backend.oom_kill("db")
    pilot.app.refresh_now()
    await settle(pilot)
    await _final_frame(pilot)


STATES = {
    "pending_stop": _pending_stop,
    "oom_killed": _oom_killed,
    "log_paused": _keys("enter", "l", "pageup"),
    "marks": _keys("space", "space", "down", "space"),
    "confirm_bulk_remove": _keys("space", "space", "d"),
    # db (the first row) and web are the compose project "shop": g marks both, d asks once for both
    "project_marked": _keys("g"),
    "confirm_project_remove": _keys("g", "d"),
    "events_of_container": _keys("E"),
    # web (the fifth row by name) runs under a CPU quota, a memory limit and a pids limit: three lines
    "stats_limits": _keys("down", "down", "down", "down", "enter"),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(snap_compare, tmp_path: Path, screen: str, size: tuple[int, int]) -> None:
    assert snap_compare(recorded_app(tmp_path), terminal_size=size, run_before=SCREENS[screen])


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("state", list(STATES))
def test_state(snap_compare, tmp_path: Path, state: str, size: tuple[int, int]) -> None:
    assert snap_compare(recorded_app(tmp_path), terminal_size=size, run_before=STATES[state])


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_first_run(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    """Empty store: the home screen says how to get an image and offers pull / import / run."""
    assert snap_compare(recorded_app(tmp_path, empty=True), terminal_size=size, run_before=_keys())


def test_filtered_and_sorted(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(recorded_app(tmp_path), run_before=_keys("S", "S", "slash", *"busybox", "enter"))


def test_logs_timestamps_and_search(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(recorded_app(tmp_path), terminal_size=(160, 48),
                        run_before=_keys("enter", "l", "t", "slash", *"slow", "enter", "n"))


def test_run_dialog_inline_errors(snap_compare, tmp_path: Path) -> None:
    async def run_before(pilot) -> None:  # noqa: ANN001
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        screen = pilot.app.screen
        screen.query_one("#run-image").value = "busybox"
        screen.query_one("#run-publish").value = "127.0.0.1:99999:80"
        screen.query_one("#run-memory").value = "lots"
        await pilot.press("ctrl+r")
        await settle(pilot)
        steady_cursors(pilot.app)
        await pilot.pause()

    assert snap_compare(recorded_app(tmp_path), terminal_size=(160, 48), run_before=run_before)


def test_light_theme(snap_compare, tmp_path: Path) -> None:
    app = recorded_app(tmp_path)
    app.theme = "textual-light"
    assert snap_compare(app, terminal_size=(160, 48), run_before=_keys())
