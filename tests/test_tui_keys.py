"""The keys a lazydocker or k9s user reaches for, on real containers (Pilot on the real engine
backend, and the real `dockui` in tmux where typing speed matters): the `:` prompt, the log search's
n/N and match count, help listing every key of the screen in view, the home footer's optional keys,
`n` on the images screen, copying IDs and names on every list, the volumes filter and the network
list naming its containers."""

from __future__ import annotations

import shutil

import pytest
from textual.widgets import DataTable, Input
from textual.widgets._footer import FooterKey

from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - fixture
from tests.test_tui_live import STOPPABLE, _select, _table, tmux_app
from tests.test_tui_resources import _rows
from tests.tui_helpers import run_async, settle, until
from tui import keymap
from tui.app import DockuiApp
from tui.screens.detail import DetailScreen
from tui.screens.dialogs import HelpScreen
from tui.screens.events import EventsScreen
from tui.screens.images import ImagesScreen
from tui.screens.jump import Jump, JumpPrompt, resolve
from tui.screens.run import RunDialog
from tui.screens.volumes import VolumesScreen
from tui.widgets.logview import LogView

pytestmark = pytest.mark.root

# three ERR lines among nine, then quiet: the log's content is known exactly
TALKER = ["sh", "-c", "for i in 1 2 3 4 5 6; do echo line $i; [ $((i % 2)) = 0 ] && echo ERR $i; done; "
          "trap 'exit 0' TERM; while :; do sleep 0.2; done"]


def test_resolve_reads_names_prefixes_aliases_and_says_what_is_wrong() -> None:
    assert resolve("images") == Jump("images") and resolve(":img") == Jump("images")
    assert resolve("vol  data ") == Jump("volumes", "data")
    assert resolve("logs web") == Jump("logs", "web") and resolve("ne") == Jump("networks")
    assert resolve("q") == Jump("quit") and resolve("ps") == Jump("containers")
    assert resolve("p") == "'p' could be containers or pull"
    assert resolve("xyz").startswith("no view 'xyz': containers, images")
    assert resolve("help me") == "help takes no argument"
    assert resolve("   ").startswith("type a view")


def _footer_keys(app: DockuiApp) -> list[str]:
    return [k.key_display for k in app.screen.query(FooterKey)]


@run_async
async def test_colon_goes_to_views_with_their_filter_and_to_a_containers_logs(engine: Engine) -> None:
    engine.out("run", "-d", "--network", "none", "--name", "tui-jump", "busybox", *STOPPABLE)
    engine.out("volume", "create", "tui-jumpvol")
    app = DockuiApp(engine.config, refresh_interval=0.3)
    async with app.run_test(size=(120, 30)) as pilot:
        assert await until(pilot, lambda: _select(app, "tui-jump"))
        # a `:` typed into the filter is a character, not the prompt
        await pilot.press("slash", "a", "colon")
        assert app.screen.query_one("#filter", Input).value == "a:" and not isinstance(app.screen, JumpPrompt)
        await pilot.press("escape")
        await pilot.press("colon", *"im busy", "enter")
        assert await until(pilot, lambda: isinstance(app.screen, ImagesScreen) and app.screen.images)
        assert [i.reference for i in app.screen.images] == ["busybox:latest"]
        await pilot.press("colon", *"im nosuch", "enter")
        assert await until(pilot, lambda: isinstance(app.screen, ImagesScreen) and not app.screen.images)
        await pilot.press("colon", *"vol jumpv", "enter")
        assert await until(pilot, lambda: isinstance(app.screen, VolumesScreen)
                           and [v.name for v in app.screen.volumes] == ["tui-jumpvol"])
        # a wrong name keeps the prompt open with the reason; esc closes it where it was
        await pilot.press("colon", *"xyz", "enter")
        assert isinstance(app.screen, JumpPrompt)
        assert "no view 'xyz'" in str(app.screen.query_one("#jump-error").render())
        await pilot.press("escape")
        assert isinstance(app.screen, VolumesScreen)
        await pilot.press("colon", *"logs tui-ju", "enter")  # a unique prefix of the name
        assert await until(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.active_tab == "logs")
        assert app.screen.container_id == engine.inspect("tui-jump")["Id"]
        await pilot.press("colon", *"logs nosuch", "enter")
        assert await until(pilot, lambda: any("no container 'nosuch'" in str(n.message) for n in app._notifications))
        await pilot.press("colon", *"ev tui-jump", "enter")
        assert await until(pilot, lambda: isinstance(app.screen, EventsScreen) and app.screen.filter_text == "tui-jump")
        await pilot.press("colon", "q", "enter")
        assert await until(pilot, lambda: not app.is_running)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_colon_keeps_the_keys_typed_right_after_it_in_a_real_terminal(engine: Engine) -> None:
    """`:logs NAME` sent in one burst (tmux send-keys): the prompt must get every key after the colon,
    not the table under it (the binding is a priority one for that reason)."""
    engine.out("run", "-d", "--network", "none", "--name", "tui-burst", "busybox", *TALKER)
    with tmux_app(engine) as tmux:
        assert wait_until(lambda: "tui-burst" in tmux.screen() and "Up" in tmux.screen(), timeout=20), tmux.screen()
        tmux.keys(":logs tui-bu", "Enter")
        assert wait_until(lambda: "ERR 6" in tmux.screen() and "line 1" in tmux.screen(), timeout=15), tmux.screen()
        tmux.keys(":q", "Enter")
        assert wait_until(lambda: "EXITED=0" in tmux.screen(), timeout=15), tmux.screen()


@run_async
async def test_log_search_steps_with_n_and_N_counts_matches_and_ampersand_filters(engine: Engine) -> None:  # noqa: N802
    engine.out("run", "-d", "--network", "none", "--name", "tui-talk", "busybox", *TALKER)
    app = DockuiApp(engine.config, refresh_interval=0.3)
    async with app.run_test(size=(120, 30)) as pilot:
        assert await until(pilot, lambda: _select(app, "tui-talk"))
        await pilot.press("l")
        assert await until(pilot, lambda: isinstance(app.screen, DetailScreen)
                           and len(app.screen.query_one(LogView).lines) == 9)
        log = app.screen.query_one(LogView)

        def state() -> str:
            return str(app.screen.query_one("#log-state").render())

        await pilot.press("slash", *"err", "enter")
        assert await until(pilot, lambda: "/err: match 1 of 3" in state()), state()
        assert log.lines[log.match_index - log.dropped].text == "ERR 2"
        assert not app.screen.query_one("#log-search").display  # enter closed the box; the line says it all
        await pilot.press("n", "n")
        assert await until(pilot, lambda: "match 3 of 3" in state()), state()
        assert log.lines[log.match_index - log.dropped].text == "ERR 6"
        await pilot.press("n")  # round the end
        assert await until(pilot, lambda: "match 1 of 3" in state()), state()
        await pilot.press("N")
        assert await until(pilot, lambda: "match 3 of 3" in state()), state()
        await pilot.press("escape")  # clears the search, stays on the log
        assert await until(pilot, lambda: "/err" not in state() and not log.pattern)
        assert isinstance(app.screen, DetailScreen)
        await pilot.press("n")  # no search: n is the app's run key again
        assert await until(pilot, lambda: isinstance(app.screen, RunDialog))
        await pilot.press("escape")
        await pilot.press("slash", *"nothing-like-it", "enter")
        assert await until(pilot, lambda: "/nothing-like-it: no match in the 9 lines held" in state()), state()
        await pilot.press("escape")

        # & as less's: only the lines containing a word; a search then steps over those only
        def shown() -> list[str]:
            return [log.lines[i].text for i, start in log._rows if start == 0]

        await pilot.press("ampersand", *"line", "enter")
        assert await until(pilot, lambda: "&line: only the 6 of 9 lines containing it" in state()), state()
        assert shown() == [f"line {i}" for i in range(1, 7)]
        await pilot.press("slash", *"e 4", "enter")  # "line 4" (shown); nothing else matches
        assert await until(pilot, lambda: "/e 4: match 1 of 1" in state()), state()
        await pilot.press("escape", "w")  # wrap on keeps the filter
        assert await until(pilot, lambda: "wrap on" in state() and "&line" in state())
        assert shown() == [f"line {i}" for i in range(1, 7)]
        await pilot.press("escape")  # esc: every line again
        assert await until(pilot, lambda: "&line" not in state() and len(shown()) == 9)
        assert isinstance(app.screen, DetailScreen)


def _help_lines(app: DockuiApp) -> tuple[list[str], list[str]]:
    """The help's lines for the screen in view and the app-wide keys, and all its lines."""
    lines = str(app.screen.query_one("#help-text").render()).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("This screen:"))
    end = next(i for i, line in enumerate(lines) if i > start and line == "Everywhere")
    end = next(i for i, line in enumerate(lines) if i > end and line == "")
    return lines[start:end], lines


@run_async
async def test_help_lists_every_key_of_the_screen_in_view(engine: Engine) -> None:
    engine.out("run", "-d", "--network", "none", "--name", "tui-help", "busybox", *STOPPABLE)
    app = DockuiApp(engine.config, refresh_interval=0.3)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await until(pilot, lambda: _select(app, "tui-help"))
        for key, mode in (("1", "containers"), ("4", "detail"), ("2", "images"), ("3", "network"),
                          ("5", "volumes"), ("6", "events")):
            await pilot.press(key)
            await settle(pilot)
            assert app.current_mode == mode
            # every key the screen answers to now, whether enabled for this selection or not
            live = {(keymap.describe(b.binding.key), b.binding.id.removeprefix("dockui."))
                    for b in app.screen.active_bindings.values()
                    if b.binding.id and b.binding.id.startswith("dockui.")}
            assert live, mode
            await pilot.press("question_mark")
            assert await until(pilot, lambda: isinstance(app.screen, HelpScreen))
            first, _ = _help_lines(app)
            assert first[0] == f"This screen: {keymap.SCREEN_TITLES[mode]}", first[0]
            listed = {line.strip().split("  ", 1)[0] for line in first[1:] if line.strip()}
            for shown, action_id in live:
                assert shown in listed, (mode, shown, action_id)
                assert any(line.strip().startswith(shown) and keymap.help_text(action_id, mode) in line
                           for line in first), (mode, shown, action_id)
            for key, _description in keymap.WIDGET_KEYS.get(mode, ()):
                assert key in listed, (mode, key)
            await pilot.press("escape")
            assert await until(pilot, lambda: not isinstance(app.screen, HelpScreen))
        # the containers screen's esc, enter and first/last keys are in its section
        await pilot.press("1")
        await settle(pilot)
        await pilot.press("question_mark")
        assert await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        first, _ = _help_lines(app)
        text = "\n".join(first)
        assert "enter  Open the detail" in text and "esc  Clear the filter, then the marks" in text
        assert "a  Attach" in text and ":  Go to a view" in text


@run_async
async def test_the_home_footer_shows_attach_and_prune_where_they_fit(engine: Engine) -> None:
    engine.out("run", "-d", "-i", "-t", "--network", "none", "--name", "tui-tty", "busybox", "sh")
    engine.out("run", "--network", "none", "--name", "tui-done", "busybox", "true")
    app = DockuiApp(engine.config, refresh_interval=0.3)
    async with app.run_test(size=(120, 30)) as pilot:
        assert await until(pilot, lambda: _select(app, "tui-tty") and _table(app).selected.status == "running")
        assert await until(pilot, lambda: "a" in _footer_keys(app) and "X" in _footer_keys(app)), _footer_keys(app)
        keys = _footer_keys(app)
        assert keys.index("e") < keys.index("a") < keys.index("i")  # beside Shell, as on the detail screen
        await pilot.resize_terminal(80, 30)
        assert await until(pilot, lambda: "a" not in _footer_keys(app)), _footer_keys(app)
        # the columns were rebuilt for the width: the cursor is still on its container
        assert _table(app).selected.name == "tui-tty"
        keys = _footer_keys(app)
        assert {"x", "r", "K", "P", "d", "l", "e", "i", "/", "S"} <= set(keys), keys  # the selection's keys stay
        footer_cells = sum(len(k.key_display) + len(k.description) + 2 for k in app.screen.query(FooterKey))
        assert footer_cells <= 81, footer_cells
        assert await until(pilot, lambda: _select(app, "tui-done") and _table(app).selected.status == "exited")
        assert await until(pilot, lambda: "X" in _footer_keys(app)), _footer_keys(app)  # room beside fewer keys
        await pilot.press("X")  # and it works from there
        assert await until(pilot, lambda: "tui-done" in str(getattr(app.screen, "question", "")))


@run_async
async def test_images_n_runs_the_selection_and_every_list_copies_and_filters(engine: Engine) -> None:
    net = "tui-keysnet"
    engine.out("network", "create", net)
    engine.out("volume", "create", "tui-keysvol")
    engine.out("volume", "create", "tui-othervol")
    engine.out("run", "-d", "--network", net, "-v", "tui-keysvol:/data", "--name", "tui-user", "busybox", *STOPPABLE)
    image_id = engine.out("image", "inspect", "-f", "{{.Id}}", "busybox").strip()
    net_id = engine.out("network", "inspect", "-f", "{{.Id}}", net).strip()
    app = DockuiApp(engine.config, refresh_interval=0.3)
    try:
        async with app.run_test(size=(140, 30)) as pilot:
            await settle(pilot)
            await pilot.press("2")
            assert await until(pilot, lambda: isinstance(app.screen, ImagesScreen) and app.screen.selected is not None)
            await pilot.press("y")
            assert app.clipboard == image_id
            await pilot.press("Y")
            assert app.clipboard == "busybox:latest"
            await pilot.press("n")  # the run dialog with this image, not an empty one
            assert await until(pilot, lambda: isinstance(app.screen, RunDialog))
            assert app.screen.query_one("#run-image", Input).value == "busybox:latest"
            await pilot.press("escape")

            await pilot.press("3")
            table_id = "#networks"
            assert await until(pilot, lambda: net in [str(r[0]) for r in _rows(app, table_id)])
            row = next(r for r in _rows(app, table_id) if str(r[0]) == net)
            assert str(row[3]) == "1: tui-user", row
            names = [str(r[0]) for r in _rows(app, table_id)]
            app.screen.query_one(table_id, DataTable).move_cursor(row=names.index(net))
            await pilot.press("y")
            assert app.clipboard == net_id
            await pilot.press("Y")
            assert app.clipboard == net

            await pilot.press("5")
            assert await until(pilot, lambda: isinstance(app.screen, VolumesScreen) and len(app.screen.volumes) == 2)
            await pilot.press("slash", *"user")  # a container using it
            assert await until(pilot, lambda: [v.name for v in app.screen.volumes] == ["tui-keysvol"])
            await pilot.press("enter", "y")
            assert app.clipboard == "tui-keysvol"
            await pilot.press("escape")
            assert await until(pilot, lambda: len(app.screen.volumes) == 2)
            assert not app.screen.query_one("#volume-filter").display
    finally:
        engine.cli("rm", "-f", "tui-user")
        engine.cli("network", "rm", net)


def test_every_help_line_fits_the_dialog_at_80_columns() -> None:
    """The help dialog is ~66 cells wide at 80 columns: a key (10) and a description up to 52 fit on
    one line each (a wrapped one reads as two keys)."""
    descriptions = [d for _, _, d, _ in keymap.DEFAULTS.values()] + list(keymap.SCREEN_HELP.values())
    descriptions += [d for keys in keymap.WIDGET_KEYS.values() for _, d in keys]
    assert max(len(d) for d in descriptions) <= 52, max(descriptions, key=len)
    assert all(len(k) <= 10 for keys in keymap.WIDGET_KEYS.values() for k, _ in keys)


@run_async
async def test_A_marks_every_container_the_filter_shows_and_one_key_acts_on_them(engine: Engine) -> None:  # noqa: N802
    for name in ("tui-w1", "tui-w2", "tui-other"):
        engine.out("run", "-d", "--network", "none", "--name", name, "busybox", *STOPPABLE)
    app = DockuiApp(engine.config, refresh_interval=0.3)
    async with app.run_test(size=(120, 30)) as pilot:
        assert await until(pilot, lambda: len([c for c in _table(app).views if c.status == "running"]) == 3)
        await pilot.press("slash", *"tui-w", "enter", "A")
        assert {c.name for c in _table(app).marked_views} == {"tui-w1", "tui-w2"}
        assert "2 marked" in str(app.screen.query_one("#marks").render())
        await pilot.press("x")  # one stop for the two the filter showed, not the third
        assert await until(pilot, lambda: {n: engine.inspect(n)["State"]["Status"] for n in ("tui-w1", "tui-w2")}
                           == {"tui-w1": "exited", "tui-w2": "exited"}, timeout=30)
        assert engine.inspect("tui-other")["State"]["Status"] == "running"
        await pilot.press("A", "A")  # again: unmarks them
        assert not _table(app).marked


@run_async
async def test_image_history_shows_the_highlighted_step_whole(engine: Engine, tmp_path) -> None:  # noqa: ANN001
    long_step = "echo " + "x" * 90 + " > /long"
    (tmp_path / "Dockerfile").write_text(f"FROM busybox\nRUN {long_step}\nCMD [\"sh\"]\n")
    engine.out("build", "-q", "-t", "tui-hist:1", str(tmp_path))
    app = DockuiApp(engine.config, refresh_interval=0.3)
    async with app.run_test(size=(140, 35)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        assert await until(pilot, lambda: isinstance(app.screen, ImagesScreen)
                           and "tui-hist:1" in [i.reference for i in app.screen.images])
        table = app.screen.query_one("#images", DataTable)
        table.move_cursor(row=[i.reference for i in app.screen.images].index("tui-hist:1"))
        await pilot.press("h")
        assert await until(pilot, lambda: "CMD" in str(app.screen.query_one("#history-step").render()))
        await pilot.press("j")  # the RUN step, cut in the table, whole below it
        assert await until(pilot, lambda: long_step in str(app.screen.query_one("#history-step").render()))
        cells = [str(c) for c in app.screen.query_one("#history-table", DataTable).get_row_at(1)]
        assert long_step not in " ".join(cells)
