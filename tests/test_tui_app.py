"""Behaviour of the TUI on the recorded backend: keys, state-dependent actions, dialogs, the refresh
loop, the bounded log view, key remapping. Fast and without root; the real-engine tests are in
tests/test_tui_engine.py."""

from __future__ import annotations

import json
import tarfile
import threading
import time
from pathlib import Path

import pytest

from engine.config import EngineConfig
from tests.tui_helpers import recorded_app, run_async, settle, until
from tui.app import DockuiApp
from tui.backend import LogLine, RunRequest, build_busybox_rootfs_tar, read_json_log, validate_run
from tui.recorded import RecordedBackend
from tui.widgets.containers_table import ContainersTable
from tui.widgets.logview import LogView


def _select(app: DockuiApp, name: str) -> None:
    table = app.screen.query_one(ContainersTable)
    table.move_cursor(row=[c.name for c in table.visible_rows].index(name))


@run_async
async def test_stop_start_and_state_dependent_actions(tmp_path: Path) -> None:
    app = recorded_app(tmp_path)
    backend: RecordedBackend = app.backend  # type: ignore[assignment]
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        _select(app, "web")
        await pilot.pause()
        assert app.screen.check_action("container", ("stop",)) is True
        assert app.screen.check_action("container", ("start",)) is False  # running: no start offered
        await pilot.press("x")
        assert await until(pilot, lambda: ("stop", "web") in backend.calls)
        await settle(pilot)
        assert await until(pilot, lambda: app.screen.query_one(ContainersTable).selected.status == "exited")
        await pilot.pause()
        assert app.screen.check_action("container", ("stop",)) is False
        await pilot.press("x")  # not offered now: nothing happens
        await pilot.press("s")
        assert await until(pilot, lambda: ("start", "web") in backend.calls)
        assert [c for c in backend.calls if c == ("stop", "web")] == [("stop", "web")]


@run_async
async def test_remove_asks_first(tmp_path: Path) -> None:
    app = recorded_app(tmp_path)
    backend: RecordedBackend = app.backend  # type: ignore[assignment]
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        _select(app, "hog")
        await pilot.press("d")
        await pilot.pause()
        assert type(app.screen).__name__ == "ConfirmDialog"
        await pilot.press("n")
        await settle(pilot)
        assert ("remove", "hog") not in backend.calls
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        assert await until(pilot, lambda: "hog" not in [c.name for c in app.screen.query_one(ContainersTable).views])
        assert ("remove", "hog") in backend.calls


@run_async
async def test_filter_and_sort(tmp_path: Path) -> None:
    app = recorded_app(tmp_path)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(ContainersTable)
        await pilot.press("slash", *"tier=back")
        await pilot.pause()
        assert [c.name for c in table.visible_rows] == ["db"]
        await pilot.press("escape")
        await pilot.pause()
        assert len(table.visible_rows) == 6
        table.set_sort("cpu", reverse=True)
        assert [c.name for c in table.visible_rows][:3] == ["db", "web", "worker"]


@run_async
async def test_refresh_loop_never_overlaps(tmp_path: Path) -> None:
    """A slow engine slows the loop down; it never runs two refreshes at once."""

    class SlowBackend(RecordedBackend):
        def __init__(self) -> None:
            super().__init__()
            self.active = 0
            self.max_active = 0
            self.count = 0
            self.lock = threading.Lock()

        def snapshot(self, focus=None):  # noqa: ANN001, ANN201
            with self.lock:
                self.active += 1
                self.max_active = max(self.max_active, self.active)
            time.sleep(0.15)
            with self.lock:
                self.active -= 1
                self.count += 1
            return super().snapshot(focus)

    backend = SlowBackend()
    app = DockuiApp(EngineConfig(root=tmp_path), backend=backend, refresh_interval=0.01, clock=False)
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(5):
            app.refresh_now()  # pressure: actions and screen changes ask for refreshes
            await pilot.pause(0.1)
        await pilot.pause(0.5)
    assert backend.count >= 3
    assert backend.max_active == 1


@run_async
async def test_log_view_is_bounded_and_searches(tmp_path: Path) -> None:
    app = recorded_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("enter", "l")
        await settle(pilot)
        log = app.screen.query_one(LogView)
        maxlen = log.lines.maxlen
        log.append(LogLine("stdout", "", f"line {i}") for i in range(maxlen + 500))
        assert len(log.lines) == maxlen
        assert log.lines[-1].text == f"line {maxlen + 499}"
        assert log.search("line 777")
        assert log.lines[log.match_index - log.dropped].text.startswith("line 777")
        assert not log.search("no such text")


@run_async
async def test_run_dialog_validates_inline(tmp_path: Path) -> None:
    app = recorded_app(tmp_path)
    backend: RecordedBackend = app.backend  # type: ignore[assignment]
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await pilot.pause()
        dialog = app.screen
        dialog.query_one("#run-image").value = "busybox"
        dialog.query_one("#run-publish").value = "70000:80"
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert dialog.query_one("#run-publish-error").display
        assert not any(c[0] == "run" for c in backend.calls)
        dialog.query_one("#run-publish").value = "127.0.0.1:8081:80"
        dialog.query_one("#run-name").value = "web2"
        await pilot.press("ctrl+r")
        assert await until(pilot, lambda: any(c[0] == "run" for c in backend.calls))
        assert await until(pilot, lambda: "web2" in [c.name for c in app.screen.query_one(ContainersTable).views])


@run_async
async def test_keys_remapped_from_config(tmp_path: Path) -> None:
    (tmp_path / "tui.json").write_text(json.dumps({"stop": "T", "dockui.quit": "Q"}))
    app = recorded_app(tmp_path)
    backend: RecordedBackend = app.backend  # type: ignore[assignment]
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        assert app.notices == 0  # T is free on every screen: no clash reported
        _select(app, "web")
        await pilot.press("x")
        await pilot.pause(0.2)
        assert ("stop", "web") not in backend.calls
        await pilot.press("T")
        assert await until(pilot, lambda: ("stop", "web") in backend.calls)
        await pilot.press("Q")
        await pilot.pause()
    assert app.return_code is not None  # Q quit the app


@run_async
async def test_first_run_import_offer(tmp_path: Path) -> None:
    app = recorded_app(tmp_path, empty=True)
    backend: RecordedBackend = app.backend  # type: ignore[assignment]
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.screen.query_one("#first-run").display
        await pilot.click("#first-import")
        assert await until(pilot, lambda: ("import", "busybox:latest") in backend.calls)
        await settle(pilot)
        assert await until(pilot, lambda: not app.screen.query_one("#first-import").display)


@run_async
async def test_the_images_and_volumes_screens_say_they_are_empty_and_keep_saying_it(tmp_path: Path) -> None:
    """An empty store's first refresh equals the screen's initial empty list: the message must show all
    the same, and stay through the refreshes after it (as "no match" does under a filter)."""
    for empty, key, message, words in ((True, "2", "#images-message", "No images."),
                                       (True, "5", "#volumes-message", "No volumes."),
                                       (False, "2", "#images-message", "No image matches 'nosuch'")):
        app = recorded_app(tmp_path, empty=empty, interval=0.1)

        def says(app: DockuiApp = app, selector: str = message, words: str = words) -> bool:
            shown = app.screen.query_one(selector)
            return app.screen.loaded and shown.display and words in str(shown.render())

        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            await pilot.press(key)
            if not empty:
                await pilot.press("slash", *"nosuch")
            assert await until(pilot, says), words
            await pilot.pause(0.4)  # several refreshes with the same data
            assert says(), words


def test_validate_run_rules() -> None:
    assert validate_run(RunRequest(image="busybox", env=["A=1"], publish=["127.0.0.1:8080:80/tcp"],
                                   volumes=["/srv:/srv:ro"], memory="64m", cpus="0.5", pids_limit="20")) == {}
    errors = validate_run(RunRequest(image="Busybox", publish=["80:0"], volumes=["/srv"], memory="x",
                                     cpus="-1", pids_limit="many", name="-bad"))
    assert set(errors) >= {"image", "publish", "volumes", "memory", "cpus", "pids_limit", "name"}


def test_read_json_log_incremental(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    path.write_text('{"log":"hello\\n","stream":"stdout","time":"2026-01-01T00:00:00Z"}\n'
                    '{"log":"oops\\n","stream":"stderr","time":"2026-01-01T00:00:01Z"}\n{"log":"partial')
    lines, cursor = read_json_log(path, 0)
    assert [(ln.stream, ln.text) for ln in lines] == [("stdout", "hello"), ("stderr", "oops")]
    with open(path, "a") as f:
        f.write('","stream":"stdout","time":"2026-01-01T00:00:02Z"}\n')
    more, _ = read_json_log(path, cursor)
    assert [ln.text for ln in more] == ["partial"]


@pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static")
def test_busybox_rootfs_tar(tmp_path: Path) -> None:
    dest = tmp_path / "bb.tar"
    build_busybox_rootfs_tar(dest)
    with tarfile.open(dest) as tar:
        names = set(tar.getnames())
        assert {"bin/busybox", "bin/sh", "etc/passwd", "etc/group"} <= names
        assert tar.getmember("bin/sh").linkname == "/bin/busybox"


@run_async
async def test_rows_off_screen_are_brought_up_to_date_when_scrolled_to(tmp_path: Path) -> None:
    from dataclasses import replace

    app = DockuiApp(EngineConfig(root=tmp_path), backend=RecordedBackend(scale=120), refresh_interval=0,
                    clock=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(ContainersTable)
        changed = [replace(c, cpu_percent=77.7) if c.status == "running" else c for c in table.views]
        table.set_views(changed)
        last_running = [i for i, c in enumerate(table.visible_rows) if c.status == "running"][-1]
        row_key = table.visible_rows[last_running].id
        assert last_running > 40 and "77.7" not in str(table.get_cell(row_key, "cpu"))  # off screen: deferred
        table.move_cursor(row=last_running)
        await pilot.pause(0.2)
        assert "77.7%" in str(table.get_cell(row_key, "cpu"))


def test_non_root_gets_one_line_and_status_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    from tui import app as app_module

    monkeypatch.setattr(app_module.os, "geteuid", lambda: 1000)
    assert app_module.run_app(["--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs root" in err and "sudo dockui" in err


@run_async
async def test_a_missing_engine_piece_is_a_message_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    import engine.network
    import engine.stats
    from tui.backend import EngineBackend

    monkeypatch.setitem(sys.modules, "engine.stats.sampler", None)  # import engine.stats.sampler -> ImportError
    monkeypatch.setitem(sys.modules, "engine.network.topology", None)
    # `from engine.network import topology` takes the package's attribute when an earlier test
    # imported the module: without it, the import goes through sys.modules (and fails as wanted).
    monkeypatch.delattr(engine.stats, "sampler", raising=False)
    monkeypatch.delattr(engine.network, "topology", raising=False)
    config = EngineConfig(root=tmp_path / "root", cgroup_parent="dockui-tui-missing", bridge_name="dktuimissing")
    snapshot = EngineBackend(config).snapshot()
    assert any("engine.stats.sampler is not available" in p for p in snapshot.problems)
    assert snapshot.host is not None and snapshot.host.mem_total > 0  # psutil stands in for the header
    app = DockuiApp(config, refresh_interval=0)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        assert "engine.stats.sampler is not available" in str(app.screen.query_one("#problems").render())
        await pilot.press("3")
        await settle(pilot)
        message = app.screen.query_one("#net-message")
        assert message.display and "engine.network.topology is not available" in str(message.render())


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light"])
@run_async
async def test_fast_cell_rendering_matches_datatable(tmp_path: Path, theme: str) -> None:
    """The containers table renders one-line cells itself; it must give DataTable's exact segments."""
    from textual.widgets import DataTable

    app = recorded_app(tmp_path)
    app.theme = theme
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(ContainersTable)
        checked = 0
        for row in range(len(table.visible_rows)):
            for column, col in enumerate(table.ordered_columns):
                width = col.get_render_width(table)
                for cursor in (False, True):
                    fast = table._fast_cell_lines(row, column, table.rich_style, width, cursor, False)
                    table._cell_render_cache.clear()
                    slow = DataTable._render_cell(table, row, column, table.rich_style, width, cursor, False)
                    if fast is not None:
                        assert fast == [list(line) for line in slow], (row, col.key, cursor)
                        checked += 1
        assert checked >= len(table.visible_rows) * len(table.columns) * 2 - 4


@run_async
async def test_sorting_reorders_rows_in_place_and_widths_match_datatables_measurement(tmp_path: Path) -> None:
    """A sort remaps rows (no rebuild) and shows them in the sorted order with the cursor on the same
    container; the one-line width measurement gives DataTable's own widths (marks included)."""
    from textual.widgets import DataTable

    from tui.recorded import RecordedBackend

    app = DockuiApp(EngineConfig(root=tmp_path), backend=RecordedBackend(scale=60), refresh_interval=0, clock=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(ContainersTable)
        table.move_cursor(row=5)
        chosen = table.selected.id
        structure = table._structure
        await pilot.press("S", "S", "S")  # image, status, cpu
        await settle(pilot)
        assert table._structure == structure  # nothing cleared and rebuilt
        assert [table.get_row_at(i)[0].plain.split(" ", 1)[-1] for i in range(table.row_count)] == \
            [c.name for c in table.visible_rows]
        assert table.selected.id == chosen
        await pilot.press("space")
        await settle(pilot)
        widths = []
        for measure in (table._update_dimensions, lambda rows: DataTable._update_dimensions(table, rows)):
            for column in table.ordered_columns:
                column.content_width = 0
            measure(list(table.rows))
            widths.append([column.content_width for column in table.ordered_columns])
        assert widths[0] == widths[1]


@run_async
async def test_command_palette_offers_every_action_the_state_allows(tmp_path: Path) -> None:
    app = recorded_app(tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        _select(app, "web")
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Show Images", "Show Network", "Pull image", "Run container", "Import host busybox", "Help",
                "Stop web", "Kill web", "Pause web", "Remove web", "Shell in web", "Filter containers"} <= titles
        assert "Start web" not in titles and "Unpause web" not in titles
        _select(app, "worker")  # paused
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert "Unpause worker" in titles and "Shell in worker" not in titles


def test_every_status_text_fits_the_status_column() -> None:
    from tui.backend import state_text
    from tui.widgets.containers_table import FIXED_WIDTHS

    ages = [0, 0.5, 1, 59, 60, 61, 89, 3599, 3600, 5400, 86399, 86400 * 2 - 1, 86400 * 400, 86400 * 36500]
    for status in ("created", "running", "paused", "restarting", "exited", "dead", "removing"):
        for code in (None, 0, 1, 137, 255):
            for age in ages:
                for oom in (False, True):
                    text = state_text(status, code, 1e9 - age, 1e9 - age, 1e9, oom)
                    assert len(text) <= FIXED_WIDTHS["status"], text


@run_async
async def test_a_failed_pull_puts_the_keyboard_back_on_the_reference_in_the_same_step(tmp_path: Path) -> None:
    """The failure's status and the focus on the reference change together: before, the focus came
    a turn of the app's queue later (Widget.focus), so a test (or a key) could meet the failure on
    screen with the keyboard still on the layers box the disabled field had handed it to."""
    from tui.screens.pull import PullDialog, PullUpdate

    app = recorded_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("p")
        assert await until(pilot, lambda: isinstance(app.screen, PullDialog) and app.focused is not None)
        dialog = app.screen
        ref = dialog.query_one("#pull-ref")
        ref.disabled = True  # as a running pull has it: the focus leaves the field
        await pilot.pause()
        assert app.focused is not ref
        dialog.on_pull_update(PullUpdate({}, error="cannot reach registry 127.0.0.1:9: Connection refused"))
        assert app.focused is ref  # no await in between: the same step


@run_async
async def test_top_is_read_only_while_its_tab_is_shown_and_brackets_step_through_tabs(tmp_path: Path) -> None:
    app = recorded_app(tmp_path, interval=0.05)
    backend: RecordedBackend = app.backend  # type: ignore[assignment]
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        _select(app, "web")
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert ("top", "web") not in backend.calls  # Stats tab: no ps
        tabs = []
        for _ in range(5):
            await pilot.press("right_square_bracket")
            await pilot.pause()
            tabs.append(app.screen.active_tab)
        assert tabs == ["logs", "config", "top", "inspect", "stats"]
        await pilot.press("left_square_bracket", "left_square_bracket")  # round the end back to Top
        assert await until(pilot, lambda: backend.calls.count(("top", "web")) >= 3)  # read every refresh
        rows = app.screen.query_one("#top-table")
        assert [str(c.label) for c in rows.columns.values()] == ["PID", "USER", "TIME", "CMD"]
        assert rows.row_count == 3
        await pilot.press("left_square_bracket")  # Config: the record, then no more ps
        assert await until(pilot, lambda: ("config", "web") in backend.calls)
        await pilot.pause(0.2)
        seen = backend.calls.count(("top", "web"))
        await pilot.pause(0.4)
        assert backend.calls.count(("top", "web")) == seen
        await pilot.press("escape")
        await settle(pilot)
        assert backend.calls.count(("top", "web")) == seen  # nor on the home screen


@run_async
async def test_config_tab_draws_the_typed_record(tmp_path: Path) -> None:
    import io

    from rich.console import Console
    from textual.widgets import Static

    app = recorded_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        _select(app, "db")
        await pilot.press("enter")
        await settle(pilot)
        app.screen.action_detail("config")
        await settle(pilot)
        console = Console(width=110, record=True, file=io.StringIO())
        console.print(app.screen.query_one("#config-text", Static).content)
        text = console.export_text()
        for line in ("Restart policy  unless-stopped", "Networks        bridge 172.17.0.3", "backend 172.18.0.2",
                     "MODE=demo", "Mounts          volume data → /data", "bind   /srv/www → /www (ro)",
                     "com.docker.compose.project=shop", "Terminal        no tty, stdin closed"):
            assert line in text, (line, text)


@run_async
async def test_attach_is_offered_on_running_containers_and_explains_without_a_terminal(tmp_path: Path) -> None:
    app = recorded_app(tmp_path)
    backend: RecordedBackend = app.backend  # type: ignore[assignment]
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        _select(app, "nightly-job")
        await pilot.pause()
        assert app.screen.check_action("attach", ()) is False  # exited: not offered
        _select(app, "db")  # running, without -i -t
        await pilot.pause()
        assert app.screen.check_action("attach", ()) is True
        await pilot.press("a")
        assert await until(pilot, lambda: any("not started with -i -t" in str(n.message)
                                               for n in app._notifications))
        assert ("attach", "db") not in backend.calls  # no terminal handed over
        _select(app, "web")  # run with -i -t
        await pilot.pause()
        await pilot.press("a")
        assert await until(pilot, lambda: ("attach", "web") in backend.calls)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Attach to web" in titles


@run_async
async def test_prune_names_the_stopped_containers_and_removes_exactly_those(tmp_path: Path) -> None:
    from tui.screens.dialogs import ConfirmDialog

    app = recorded_app(tmp_path)
    backend: RecordedBackend = app.backend  # type: ignore[assignment]
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await pilot.press("X")
        assert await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert app.screen.question == "Remove 3 stopped container(s)?\nfresh, hog, nightly-job"
        await pilot.press("y")
        assert await until(pilot, lambda: {c.name for c in app.containers} == {"db", "web", "worker"})
        assert sorted(name for verb, name in backend.calls if verb == "remove") == ["fresh", "hog", "nightly-job"]
        await pilot.press("X")
        assert await until(pilot, lambda: any("no stopped container" in str(n.message) for n in app._notifications))


@run_async
async def test_lines_drawn_before_the_rows_are_measured_are_not_drawn_again(tmp_path: Path) -> None:
    """Rows arrive (add_row) and their widths are measured at the next idle; a line painted in
    between has the header's widths. DataTable keys its line cache by its update count, so without
    moving it on the measurement the narrow line was served again (the run dialog's 80x24 snapshot
    showed the home rows behind it without their MEM column's end, now and then under load)."""
    app = recorded_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(ContainersTable)
        table._narrow = None
        table.on_resize()  # the columns and rows built again, as the first layout does
        new_rows = set(table._new_rows)
        narrow = table.render_line(1).text  # a frame falling before the idle-time measurement
        table._require_update_dimensions = False
        table._new_rows.clear()
        table._update_dimensions(new_rows)  # what the idle does
        after = table.render_line(1).text
        table._clear_caches()
        assert after == table.render_line(1).text != narrow
        assert after.rstrip().endswith("MiB")


def test_the_run_dialog_resolves_a_bare_env_key_as_the_cli_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKUI_TUI_SET_KEY", "from the client")
    monkeypatch.delenv("DOCKUI_TUI_UNSET_KEY", raising=False)
    request = RunRequest(image="busybox", env=["DOCKUI_TUI_SET_KEY", "DOCKUI_TUI_UNSET_KEY", "A=b"])
    assert request.options().env == ["DOCKUI_TUI_SET_KEY=from the client", "DOCKUI_TUI_UNSET_KEY", "A=b"]
