"""What a lazydocker or k9s user reaches for first, on the real engine: `a` attaches the real terminal
to a container run with -i -t and ctrl-p ctrl-q comes back (tmux, the real `dockui`), the Top tab
lists the container's real processes only while it is shown, the Config tab draws the record (env,
command, mounts, ports, networks, restart policy, labels, limits), `X` prunes the stopped containers
it names. Everything needs root and removes what it made."""

from __future__ import annotations

import io
import shutil

import pytest
from rich.console import Console
from textual.widgets import DataTable, Static

from engine.container import state
from engine.errors import NotFound
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - fixture
from tests.test_tui_live import STOPPABLE, _select, _table, tmux_app
from tests.tui_helpers import run_async, settle, until
from tui.app import DockuiApp
from tui.screens.dialogs import ConfirmDialog

pytestmark = pytest.mark.root


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_a_attaches_the_terminal_and_ctrl_p_ctrl_q_comes_back_with_the_container_running(engine: Engine) -> None:
    engine.out("run", "-d", "-i", "-t", "--network", "none", "--name", "tui-it", "busybox", "sh")
    with tmux_app(engine) as tmux:
        def attached() -> bool:
            """The attach client relays the terminal: enter brings the shell's prompt. Keys typed before
            it has put the terminal in raw mode are discarded (tty.setraw flushes input), so enter is
            sent until the prompt shows."""
            if "attached to tui-it" not in tmux.screen():
                return False
            tmux.keys("Enter")
            return wait_until(lambda: tmux.screen().rstrip().endswith("/ #"), timeout=0.5)

        assert wait_until(lambda: "tui-it" in tmux.screen() and "Up" in tmux.screen(), timeout=20), tmux.screen()
        tmux.keys("a")
        assert wait_until(attached, timeout=15), tmux.screen()
        assert "ctrl-p ctrl-q detaches" in tmux.screen()
        tmux.keys("echo ATTACHED-$((6*7)) $(hostname)", "Enter")
        cid = state.find_container(engine.config, "tui-it").id
        assert wait_until(lambda: f"ATTACHED-42 {cid[:12]}" in tmux.screen(), timeout=10), tmux.screen()
        tmux.keys("C-p", "C-q")  # the attach client's detach keys: the app comes back, the shell runs on
        assert wait_until(lambda: "1 Containers" in tmux.screen() and "back from tui-it" in tmux.screen(),
                          timeout=10), tmux.screen()
        assert state.find_container(engine.config, "tui-it").status == "running"
        tmux.keys("a")  # again: the same shell, still there (its monitor takes a new client)
        assert wait_until(attached, timeout=15), tmux.screen()
        tmux.keys("echo AGAIN-$((6*7))", "Enter")
        assert wait_until(lambda: "AGAIN-42" in tmux.screen(), timeout=10), tmux.screen()
        tmux.keys("C-p", "C-q")
        assert wait_until(lambda: "1 Containers" in tmux.screen(), timeout=10), tmux.screen()
        tmux.keys("q")
        assert wait_until(lambda: "EXITED=0" in tmux.screen(), timeout=10), tmux.screen()
        assert state.find_container(engine.config, "tui-it").status == "running"


def _config_text(app: DockuiApp) -> str:
    console = Console(width=140, record=True, file=io.StringIO())
    console.print(app.screen.query_one("#config-text", Static).content)
    return console.export_text()


@run_async
async def test_top_config_and_prune_on_real_containers(engine: Engine) -> None:
    engine.out("volume", "create", "tui-data")
    engine.out("run", "-d", "--network", "none", "--name", "tui-top", "-e", "GREETING=hello world",
               "-v", "tui-data:/data", "--label", "tier=front", "--restart", "on-failure:2", "-m", "48m",
               "--pids-limit", "50", "-w", "/data", "busybox", *STOPPABLE)
    engine.out("create", "--network", "none", "--name", "tui-made", "busybox", "true")
    engine.cli("run", "--network", "none", "--name", "tui-done", "busybox", "true")
    record = state.find_container(engine.config, "tui-top")
    app = DockuiApp(engine.config, refresh_interval=0.2)
    async with app.run_test(size=(140, 40)) as pilot:
        assert await until(pilot, lambda: _select(app, "tui-top") and _table(app).selected.status == "running")
        await pilot.press("enter")
        await pilot.press("right_square_bracket", "right_square_bracket")  # Stats -> Logs -> Config
        assert await until(pilot, lambda: "Restart policy" in _config_text(app))
        text = _config_text(app)
        for line in ("GREETING=hello world", "volume tui-data → /data", "Restart policy  on-failure:2",
                     "Working dir     /data", "tier=front", "memory 48.0MiB, pids 50", "Networks        none",
                     "Image           busybox"):
            assert line in text, (line, text)
        assert "trap 'exit 0' TERM" in text  # the command, quoted as ps quotes it
        await pilot.press("right_square_bracket")  # Top: the container's own processes, host pids
        table = app.screen.query_one("#top-table", DataTable)

        def top_rows() -> list[list[str]]:
            return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]

        assert await until(pilot, lambda: any(row[0] == str(record.pid) for row in top_rows()), timeout=10)
        assert [str(c.label) for c in table.columns.values()] == ["PID", "USER", "TIME", "CMD"]
        first = next(row for row in top_rows() if row[0] == str(record.pid))
        assert first[1] == "root" and first[3].startswith("sh -c trap"), first
        # a `sleep 0.2` comes and goes under it: the table follows while shown
        pids = set()
        for _ in range(10):
            await pilot.pause(0.25)
            pids |= {row[0] for row in top_rows()}
        assert len(pids) > 2, pids
        await pilot.press("escape")
        assert await until(pilot, lambda: type(app.screen).__name__ == "ContainersScreen")
        await settle(pilot)
        await pilot.press("X")
        assert await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert app.screen.question.splitlines()[1] == "tui-done, tui-made"
        await pilot.press("y")
        assert await until(pilot, lambda: [c.name for c in app.containers] == ["tui-top"], timeout=15)
    for name in ("tui-done", "tui-made"):
        with pytest.raises(NotFound):
            state.find_container(engine.config, name)
    engine.cli("rm", "-f", "tui-top")
    engine.cli("volume", "rm", "tui-data")


def test_the_logs_tab_says_a_none_log_driver_keeps_nothing(engine: Engine) -> None:
    from engine.errors import NotSupported
    from tui.backend import EngineBackend

    cid = engine.out("create", "--network", "none", "--log-driver", "none", "busybox", "true").strip()
    with pytest.raises(NotSupported, match="configured logging driver does not support reading"):
        EngineBackend(engine.config).read_logs(cid, 0)  # the detail screen shows it where the log would be
    engine.out("rm", cid)
