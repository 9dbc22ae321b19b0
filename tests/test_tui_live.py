"""The TUI against the real engine, for what a person meets in daily use (issue #14): crashes, pending
actions, dead containers, logs, shells, sorting, the footer. Pilot (`App.run_test`) on real containers
in a throw-away root; everything here needs root and removes what it made."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual import events

from engine.config import EngineConfig
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - fixture
from tests.tui_helpers import run_async, until
from tui.app import DockuiApp
from tui.backend import ContainerView, EngineBackend
from tui.widgets.containers_table import ContainersTable
from tui.widgets.logview import LogView

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


# ---- pending actions


@run_async
async def test_a_pending_stop_shows_in_status_refuses_repeats_and_offers_kill_now(engine: Engine) -> None:
    """PID 1 ignores SIGTERM, so `x` waits the stop timeout (10 s) before SIGKILL."""
    engine.out("run", "-d", "--network", "none", "--name", "tui-deaf", "busybox", *DEAF)
    backend = SpyBackend(engine.config)
    app = DockuiApp(engine.config, backend=backend, refresh_interval=0.2)
    async with app.run_test(size=(120, 30)) as pilot:
        assert await until(pilot, lambda: _select(app, "tui-deaf") and _table(app).selected.status == "running")
        await pilot.pause(0.1)
        await pilot.press("x")
        assert await until(pilot, lambda: _cell(app, "tui-deaf", "status").startswith("Stopping… "))
        assert await until(pilot, lambda: _cell(app, "tui-deaf", "status") == "Stopping… 1 s", timeout=3)
        await pilot.press("x", "x", "r", "d")  # refused while the stop waits: nothing queued
        await pilot.pause(0.2)
        assert [verb for verb, _ in backend.calls] == ["stop"]
        assert type(app.screen).__name__ == "ContainersScreen"  # no remove question either
        footer = {b.binding.description for b in app.screen.active_bindings.values() if b.enabled}
        assert "Kill now" in footer and "Stop" not in footer and "Restart" not in footer
        assert _status(engine, "tui-deaf") == "running"
        started = time.monotonic()
        await pilot.press("K")
        assert await until(pilot, lambda: _status(engine, "tui-deaf") == "exited", timeout=8)
        assert time.monotonic() - started < 5  # the kill did not wait for the stop's 10 s
        assert [verb for verb, _ in backend.calls] == ["stop", "kill"]
        assert await until(pilot, lambda: _cell(app, "tui-deaf", "status").startswith("Exited (137)"), timeout=12)
        assert not [n for n in _notes(app) if "died" in n]  # we killed it: not a death


@run_async
async def test_removing_shows_in_status(engine: Engine) -> None:
    engine.out("run", "-d", "--network", "none", "--name", "tui-rm", "busybox", *STOPPABLE)
    app = DockuiApp(engine.config, refresh_interval=0.2)
    gate = threading.Event()
    real = app.backend.container_action

    def slow_remove(action: str, container_id: str) -> None:
        gate.wait(10)  # the engine's remove starts only once the test has seen STATUS
        real(action, container_id)

    app.backend.container_action = slow_remove  # type: ignore[method-assign]
    async with app.run_test(size=(120, 30)) as pilot:
        assert await until(pilot, lambda: _select(app, "tui-rm"))
        await pilot.press("d")
        await pilot.pause(0.1)
        await pilot.press("y")
        try:
            assert await until(pilot, lambda: _cell(app, "tui-rm", "status") == "Removing…", timeout=3)
        finally:
            gate.set()
        assert await until(pilot, lambda: not _table(app).views, timeout=15)


# ---- logs


@run_async
async def test_logs_l_focuses_scrolling_up_pauses_end_follows_w_wraps_and_empty_says_so(engine: Engine) -> None:
    chatty = "i=0; while :; do echo line-$i; i=$((i+1)); [ $((i % 40)) = 0 ] && sleep 0.2; done"
    engine.out("run", "-d", "--network", "none", "--name", "tui-log", "busybox", "sh", "-c",
               f"printf '%0300d\\n' 7; {chatty}")
    engine.out("create", "--network", "none", "--name", "tui-quiet", "busybox", "true")
    app = DockuiApp(engine.config, refresh_interval=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        assert await until(pilot, lambda: _select(app, "tui-log"))
        await pilot.press("l")
        log = None

        def log_has_lines() -> bool:
            nonlocal log
            log = app.screen.query_one(LogView) if type(app.screen).__name__ == "DetailScreen" else None
            return log is not None and len(log.lines) > 100 and log.max_scroll_y > 0

        assert await until(pilot, log_has_lines, timeout=10)
        assert app.focused is log  # arrows now scroll the log instead of switching tabs
        state = app.screen.query_one("#log-state")
        assert "following" in str(state.render())
        await pilot.press("pageup", "up")
        assert not log.follow
        where = log.scroll_y
        await pilot.pause(1.0)  # five refreshes of a log that keeps growing
        assert log.scroll_y == where and log.max_scroll_y > where  # not pulled back to the tail
        assert "paused — End to follow" in str(state.render())
        await pilot.press("end")
        assert await until(pilot, lambda: log.follow and log.scroll_y == log.max_scroll_y, timeout=3)
        assert "following" in str(state.render())
        rows = log.virtual_size.height
        await pilot.press("w")  # the 300-character line now takes several rows, no horizontal scrolling
        assert log.wrap and log.virtual_size.height >= rows + 2
        assert log.virtual_size.width <= log.size.width and "wrap on" in str(state.render())
        await pilot.press("w")
        assert not log.wrap
        await pilot.press("1")
        assert await until(pilot, lambda: _select(app, "tui-quiet"))
        await pilot.press("l")
        assert await until(pilot, lambda: "the log is empty" in str(app.screen.query_one("#log-state").render()))


# ---- dead containers


@pytest.fixture
def drop_bridge(engine_config: EngineConfig):  # noqa: ANN201
    """Set up before `engine`, so this runs after its teardown (whose reconcile may re-create the bridge)."""
    yield
    subprocess.run(["ip", "link", "del", engine_config.bridge_name], capture_output=True)


@run_async
async def test_an_oom_killed_container_loses_its_live_figures_and_a_notice_stays(drop_bridge: None,
                                                                                  engine: Engine) -> None:
    port = 20000 + os.getpid() % 20000
    engine.out("run", "-d", "--name", "tui-oom", "-m", "16m", "--memory-swap", "16m", "-p", f"127.0.0.1:{port}:80",
               # it eats memory only once the test has seen its live figures (a fixed sleep raced the
               # first sampled round under load)
               "busybox", "sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.1; done; tail /dev/zero")
    app = DockuiApp(engine.config, refresh_interval=0.2)
    async with app.run_test(size=(160, 40)) as pilot:
        def view() -> ContainerView:
            return next(c for c in _table(app).views if c.name == "tui-oom")

        assert await until(pilot, lambda: _select(app, "tui-oom") and view().cpu_percent is not None)
        assert view().ip and str(port) in _cell(app, "tui-oom", "ports") and "%" in _cell(app, "tui-oom", "cpu")
        engine.out("exec", "tui-oom", "touch", "/tmp/go")
        assert await until(pilot, lambda: view().status == "exited", timeout=20)
        await pilot.pause(0.3)
        assert _cell(app, "tui-oom", "status") == "Exited (137) · OOM killed"
        assert _cell(app, "tui-oom", "ip") == "" and _cell(app, "tui-oom", "ports") == ""
        assert _cell(app, "tui-oom", "cpu").strip() == "--" and _cell(app, "tui-oom", "mem").strip() == "--"
        assert _cell(app, "tui-oom", "cpu_spark").strip() == ""
        notices = [n for n in app._notifications if "tui-oom" in n.message]
        assert len(notices) == 1 and "OOM killed" in notices[0].message
        assert notices[0].timeout > 24 * 3600  # stays until dismissed
        await pilot.press("enter")  # the Stats tab: no figures from before the death
        assert await until(pilot, lambda: "not running" in str(app.screen.query_one("#plot-cpu").render()))
        title = str(app.screen.query_one("#detail-title").render())
        assert "OOM killed" in title and "172." not in title
        for plot in ("#plot-cpu", "#plot-mem", "#plot-pids"):
            assert "not running" in str(app.screen.query_one(plot).render())
        await pilot.press("z")
        assert await until(pilot, lambda: not app._notifications)


# ---- e: a shell where there is one, the reason where there is none


@dataclass(frozen=True)
class TmuxApp:
    """The app in a tmux session: its screen as text, and keys typed into it."""

    session: str

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.session], capture_output=True,
                              text=True).stdout

    def keys(self, *typed: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.session, *typed], check=True)


@contextmanager
def tmux_app(eng: Engine) -> Iterator[TmuxApp]:
    """The real `dockui` (no verb: the TUI) in a detached 100x30 tmux session, a real terminal that
    `e` and `a` can hand over; the shell prints EXITED=<status> once the app quits. The session is
    killed on the way out."""
    session = f"dockui-test-{os.urandom(4).hex()}"
    dockui = REPO / ".venv" / "bin" / "dockui"
    command = [str(dockui)] if dockui.exists() else [sys.executable, "-m", "tui.launcher"]
    shell = " ".join([*command, "--root", str(eng.config.root)]) + "; echo EXITED=$?; sleep 30"
    env = ["-e", f"DOCKUI_CONFIG={eng.env['DOCKUI_CONFIG']}", "-e", f"PYTHONPATH={REPO}"]
    subprocess.run(["tmux", "new-session", "-d", "-x", "100", "-y", "30", "-s", session, *env, shell],
                   check=True, cwd=REPO)
    try:
        yield TmuxApp(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)


def _import_busybox_as(eng: Engine, tmp_path: Path, reference: str, binary: str, links: tuple[str, ...]) -> None:
    """An image whose only program is the host's busybox at `binary`, with applet symlinks `links`."""
    tar_path = tmp_path / f"{reference.replace(':', '-')}.tar"
    with tarfile.open(tar_path, "w") as tar:
        for d in ("bin", "tmp", "proc", "sys", "dev", "etc", "root"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        info = tar.gettarinfo("/bin/busybox", arcname=binary)
        info.uid = info.gid = 0
        with open("/bin/busybox", "rb") as f:
            tar.addfile(info, f)
        for link in links:
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, "/" + binary
            tar.addfile(info)
    eng.out("import", str(tar_path), reference)


@run_async
async def test_e_without_any_shell_says_why_in_the_app(engine: Engine, tmp_path: Path) -> None:
    _import_busybox_as(engine, tmp_path, "noshell:1", "bin/sleep", ())  # busybox named sleep: no sh, ash, busybox
    engine.out("run", "-d", "--network", "none", "--name", "tui-noshell", "noshell:1", "/bin/sleep", "600")
    app = DockuiApp(engine.config, refresh_interval=0.3)
    async with app.run_test(size=(120, 30)) as pilot:
        assert await until(pilot, lambda: _select(app, "tui-noshell") and _table(app).selected.status == "running")
        await pilot.pause(0.1)
        await pilot.press("e")
        assert await until(pilot, lambda: any("no shell" in n for n in _notes(app)), timeout=30)
        note = next(n for n in _notes(app) if "no shell" in n)
        assert "tried sh, ash, /bin/busybox sh" in note, note
        assert app.is_running


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_e_falls_back_to_busybox_sh_in_a_real_terminal(engine: Engine, tmp_path: Path) -> None:
    _import_busybox_as(engine, tmp_path, "bbonly:1", "bin/busybox", ("bin/sleep",))  # no sh, no ash links
    engine.out("run", "-d", "--network", "none", "--name", "tui-bbonly", "bbonly:1", "sleep", "600")
    with tmux_app(engine) as tmux:
        assert wait_until(lambda: "tui-bbonly" in tmux.screen() and "Up" in tmux.screen(), timeout=20), tmux.screen()
        tmux.keys("e")
        assert wait_until(lambda: "shell in tui-bbonly" in tmux.screen() and "/ #" in tmux.screen(),
                          timeout=20), tmux.screen()
        tmux.keys("echo INSIDE-$((6*7)) $0", "Enter")
        assert wait_until(lambda: "INSIDE-42" in tmux.screen(), timeout=10), tmux.screen()
        tmux.keys("exit", "Enter")
        assert wait_until(lambda: "tui-bbonly" in tmux.screen() and "shell in" not in tmux.screen(),
                          timeout=10), tmux.screen()
        tmux.keys("q")
        assert wait_until(lambda: "EXITED=0" in tmux.screen(), timeout=10), tmux.screen()


# ---- sorting, selection, footer


@run_async
async def test_sort_uses_values_over_shown_columns_with_name_ties(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    engine.out("run", "-d", "--network", "none", "--name", "tui-old", "busybox", *STOPPABLE)
    time.sleep(1.6)
    engine.out("run", "-d", "--network", "none", "--name", "tui-young", "busybox", *STOPPABLE)
    for name in ("tui-c2", "tui-c1"):
        engine.out("create", "--network", "none", "--name", name, "busybox", "true")
    # the app's clock runs 9 s ahead: tui-old is "Up 10 s", tui-young "Up 9 s" (as text, 10 < 9)
    import tui.backend

    monkeypatch.setattr(tui.backend.time, "time", lambda real=time.time: real() + 9)
    app = DockuiApp(engine.config, refresh_interval=0.3)
    async with app.run_test(size=(100, 30)) as pilot:  # narrow: no ID, IP, PORTS or MEM % column
        assert await until(pilot, lambda: len(_table(app).visible_rows) == 4)
        table = _table(app)
        seen = []
        for _ in range(6):
            await pilot.press("S")
            await pilot.pause(0.05)
            seen.append(table.sort_column)
            titles = [str(column.label) for column in table.ordered_columns]
            assert any(title.endswith(("▲", "▼")) for title in titles), (table.sort_column, titles)
        assert seen == ["image", "status", "cpu", "mem", "name", "image"]  # only columns on screen
        table.set_sort("status")
        await pilot.pause(0.7)  # refreshes: the order holds
        assert [c.name for c in table.visible_rows] == ["tui-young", "tui-old", "tui-c1", "tui-c2"]
        table.set_sort("cpu", reverse=True)
        await pilot.pause(0.1)
        names = [c.name for c in table.visible_rows]
        assert names[2:] == ["tui-c1", "tui-c2"]  # no figures: last, in name order even when reversed


@run_async
async def test_4_on_a_fresh_app_opens_the_highlighted_row(engine: Engine) -> None:
    for name in ("tui-b", "tui-a"):
        engine.out("create", "--network", "none", "--name", name, "busybox", "true")
    app = DockuiApp(engine.config, refresh_interval=0.3)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("4")  # before the first refresh has drawn the table
        assert await until(pilot, lambda: "tui-a" in str(app.screen.query_one("#detail-title").render()))
        await pilot.press("1")
        assert await until(pilot, lambda: _table(app).selected is not None)
        assert _table(app).selected.name == "tui-a"
    app = DockuiApp(engine.config, refresh_interval=0.3)
    async with app.run_test(size=(120, 30)) as pilot:
        assert await until(pilot, lambda: len(_table(app).visible_rows) == 2 and _table(app).cursor_row == 0)
        await pilot.press("4")
        assert await until(pilot, lambda: "tui-a" in str(app.screen.query_one("#detail-title").render()))


@run_async
async def test_footer_offers_every_key_of_a_running_container_at_80_columns(engine: Engine) -> None:
    from textual.widgets import Footer

    engine.out("run", "-d", "--network", "none", "--name", "tui-foot", "busybox", *STOPPABLE)
    app = DockuiApp(engine.config, refresh_interval=0.3)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: _select(app, "tui-foot") and _table(app).selected.status == "running")
        await pilot.pause(0.3)
        footer = app.screen.query_one(Footer)
        keys = {key.key_display: key for key in footer.query("FooterKey")}
        for key in ("K", "P", "e", "i", "S", "x", "l", "d"):
            assert key in keys, (key, sorted(keys))
            assert keys[key].region.right <= 80, (key, keys[key].region)
        nav = str(app.screen.query_one("#nav").render())
        assert all(hint in nav for hint in ("p Pull", "n Run", "? Help", "q Quit"))


@run_async
async def test_status_is_never_cut(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    assert engine.cli("run", "--network", "none", "--name", "tui-done", "busybox", "sh", "-c", "exit 137").returncode == 137
    engine.out("run", "-d", "--network", "none", "--name", "tui-frozen", "busybox", *STOPPABLE)
    engine.out("pause", "tui-frozen")
    import tui.backend

    # a minute and a bit later, when Docker's words are longest ("Exited (137) About a minute ago")
    monkeypatch.setattr(tui.backend.time, "time", lambda real=time.time: real() + 70)
    app = DockuiApp(engine.config, refresh_interval=0.3)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await until(pilot, lambda: len(_table(app).visible_rows) == 2)
        await pilot.pause(0.3)
        table = _table(app)
        width = table.columns["status"].width  # type: ignore[index]
        for name, expected in (("tui-done", "Exited (137) 1 min ago"), ("tui-frozen", "Up 1 min (Paused)")):
            text = _cell(app, name, "status")
            assert text == expected and len(text) <= width, (text, width)
        engine.out("unpause", "tui-frozen")


# ---- pull dialog


@run_async
async def test_pull_overall_bar_never_goes_back_and_present_layers_say_so(
        engine_config: EngineConfig, busybox_in_registry: str) -> None:
    from tui.screens.pull import LayerRow

    engine_config.cgroup_parent = f"dockui-tuipl-{os.urandom(3).hex()}"
    engine_config.bridge_name = f"dktl{os.urandom(3).hex()}"

    def cli(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "tui.launcher", "--root", str(engine_config.root), *args],
                       check=True, capture_output=True, cwd=REPO, timeout=60)

    app = DockuiApp(engine_config, refresh_interval=0.5)
    async with app.run_test(size=(120, 40)) as pilot:
        async def pull() -> tuple[Any, list[str]]:
            await pilot.press("p")
            await pilot.pause(0.2)
            dialog = app.screen
            dialog.query_one("#pull-ref").value = busybox_in_registry
            await pilot.press("enter")
            assert await until(pilot, lambda: dialog.result_id is not None or not dialog.running, timeout=30)
            assert dialog.result_id is not None, dialog.query_one("#pull-status").render()
            assert dialog.query_one("#pull-overall-bar").percentage == 1.0
            states = [str(row.query_one(".layer-state").render()) for row in dialog.query(LayerRow)]
            return dialog, states

        dialog, _ = await pull()  # an empty store: download, then extraction (its events restart at 0 bytes)
        fractions = [done / total for done, total in dialog.progress_seen if total]
        assert len(fractions) >= 2 and fractions == sorted(fractions) and fractions[-1] == 1.0, fractions
        await pilot.press("escape")
        dialog, states = await pull()  # the image is there: Docker prints no layer lines
        assert states == [] and "up to date" in str(dialog.query_one("#pull-overall-text").render())
        await pilot.press("escape")
        # another image keeps the layer while the pulled one goes: the next pull finds the layer present.
        # Not a commit of it: a committed image is its child, and `rmi` of a parent only untags it
        # (Docker's rule; a pull of an image still stored prints no layer lines). An image on the same
        # layers with a config of its own, as `docker load` of another build on that base gives:
        import json

        from engine.image.digest import hex_of
        from engine.image.reference import parse_reference
        from engine.image.store import ImageStore

        store = ImageStore(engine_config)
        base = store.resolve(busybox_in_registry)
        config = json.loads((store.imagedb / "content" / "sha256" / hex_of(base.id)).read_bytes())
        config.setdefault("config", {})["Labels"] = {"keep": "1"}
        store.add_image(json.dumps(config).encode(), [parse_reference("keep:1")])
        cli("rmi", busybox_in_registry)
        dialog, states = await pull()
        assert states and all(state == "already exists" for state in states), states
        assert all(row.query_one("ProgressBar").percentage == 1.0 for row in dialog.query(LayerRow))
        assert "existed" in str(dialog.query_one("#pull-overall-text").render())
        await pilot.press("escape")
