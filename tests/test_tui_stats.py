"""The detail screen's Stats tab on the real engine: limits drawn as lines on a scale that does not
stretch small figures (issue #14, "charts with meaning"), and the sampler following the screen
(CPU and memory only while the tables show, everything while a detail screen is open). Pilot on
real containers in a throw-away root; needs root and removes what it made."""

from __future__ import annotations

import pytest

from engine.stats.sampler import FULL, TABLE
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - fixture
from tests.tui_helpers import run_async, until
from tui.app import DockuiApp
from tui.backend import EngineBackend
from tui.widgets.charts import LIMIT_MARKS, Plot
from tui.widgets.containers_table import ContainersTable

pytestmark = pytest.mark.root
MIB = 1024 * 1024


def _open_detail(app: DockuiApp, name: str) -> bool:
    """Select `name` on the home screen (True once it is selected)."""
    if type(app.screen).__name__ != "ContainersScreen":
        return False
    table = app.screen.query_one(ContainersTable)
    names = [c.name for c in table.visible_rows]
    if name not in names:
        return False
    table.move_cursor(row=names.index(name))
    return table.selected is not None and table.selected.name == name and table.selected.status == "running"


def _plot(app: DockuiApp, plot_id: str) -> Plot:
    return app.screen.query_one(f"#{plot_id}", Plot)


def _rows(plot: Plot) -> list[str]:
    """The plot as drawn: the title line, then one line per row (axis label, tick, bars)."""
    return plot.render().plain.splitlines()


def _bars(row: str) -> str:
    """A plot row without its axis: what follows the tick (┤ on a labelled row, │ otherwise)."""
    return row.split("┤", 1)[1] if "┤" in row else row.split("│", 1)[1]


@run_async
async def test_cpu_quota_and_memory_limit_are_lines_on_a_scale_that_does_not_stretch(engine: Engine) -> None:
    engine.out("run", "-d", "--network", "none", "--cpus", "0.5", "-m", "64m", "--name", "tui-lim",
               "busybox", "sleep", "600")
    app = DockuiApp(engine.config, refresh_interval=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await until(pilot, lambda: _open_detail(app, "tui-lim"))
        await pilot.press("enter")

        def drawn() -> bool:
            if type(app.screen).__name__ != "DetailScreen":
                return False
            cpu, mem = _plot(app, "plot-cpu")._data, _plot(app, "plot-mem")._data
            return bool(cpu and mem and len(cpu[0]) >= 3 and cpu[2] == 50.0 and mem[2] == 64 * MIB)

        assert await until(pilot, drawn, timeout=15)
        await pilot.pause(0.1)
        cpu = _rows(_plot(app, "plot-cpu"))
        assert "quota 50%" in cpu[0]
        assert cpu[1].lstrip().startswith("100%┤")  # one core: a sleeping container is not a full bar
        assert cpu[-1].lstrip().startswith("0%┤")
        quota_rows = [i for i, row in enumerate(cpu[1:]) if set(_bars(row)) <= set(LIMIT_MARKS) and _bars(row).strip()]
        assert len(quota_rows) == 1 and 0 < quota_rows[0] < len(cpu) - 2, cpu  # half way, not at an edge
        assert not [row for i, row in enumerate(cpu[1:-1]) if i != quota_rows[0] and _bars(row).strip()], cpu
        mem = _rows(_plot(app, "plot-mem"))
        assert "of 64.0MiB" in mem[0]
        assert mem[1].lstrip().startswith("64MiB┤")  # the scale is the limit
        assert set(_bars(mem[1])) == {"▔"}, mem  # the limit line along the top
        assert all(not _bars(row).strip() for row in mem[2:-1]), mem  # a few MiB: the bottom row only


@run_async
async def test_the_sampler_follows_the_screen_and_the_detail_shows_block_io_and_pids(engine: Engine) -> None:
    # fsync'd writes: the container's own thread submits them, so its cgroup is charged (v1 and v2)
    writer = "while :; do dd if=/dev/zero of=/tmp/blk bs=64k count=16 conv=fsync 2>/dev/null; sleep 0.2; done"
    engine.out("run", "-d", "--network", "none", "--name", "tui-io", "busybox", "sh", "-c", writer)
    backend = EngineBackend(engine.config)
    app = DockuiApp(engine.config, backend=backend, refresh_interval=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await until(pilot, lambda: _open_detail(app, "tui-io"))
        assert backend._sampler is not None and backend._sampler.level == TABLE
        assert backend.stats_series(app.selected_id).pids == ()  # TABLE rounds read no pids
        await pilot.press("enter")
        assert await until(pilot, lambda: backend._sampler.level == FULL, timeout=5)

        def figures() -> bool:
            series = backend.stats_series(app.selected_id)
            return max(series.blk_write, default=0) > 0 and max(series.pids, default=0) >= 2

        assert await until(pilot, figures, timeout=15)
        await pilot.pause(0.5)  # the next refresh draws them
        pids = _rows(_plot(app, "plot-pids"))[0]
        assert pids.startswith("PIDs ") and int(pids.split()[1]) >= 2, pids  # sh and dd or sleep
        written = _rows(_plot(app, "plot-bw"))
        assert any(_bars(row).strip() for row in written[1:]), written  # bars, not an empty plot
        await pilot.press("escape")
        assert await until(pilot, lambda: backend._sampler.level == TABLE, timeout=5)
        assert await until(pilot, lambda: backend.stats_series(app.selected_id).pids == (), timeout=5)


# ---- the idle cuts (docs/tui.md, "Idle on real containers"): each guarded here


def test_rows_off_screen_are_read_every_fifth_round_with_rates_over_their_own_interval(engine: Engine) -> None:
    """Sampler.sample(focus, every): a container outside the focus is read one round in `every`, and
    its CPU % then covers the time since its own last read (a busy loop under --cpus 0.5 stays near
    50 %, where one round's host time would make it ~5 x larger). The backend holds its figures in
    between, so the row never shows '--'."""
    from engine.stats.sampler import Sampler

    busy = engine.out("run", "-d", "--network", "none", "--cpus", "0.5", "--name", "busy", "busybox", "sh", "-c",
                      "while :; do :; done").strip()
    calm = engine.out("run", "-d", "--network", "none", "--name", "calm", "busybox", "sleep", "600").strip()
    import time

    with Sampler(engine.config, level=TABLE, host=False) as sampler:
        sampler.sample()  # every container has a first read
        reads, percents = 0, []
        for _ in range(10):
            time.sleep(0.2)
            snap = sampler.sample(focus={calm}, every=5)
            assert calm in snap.by_id and calm not in snap.skipped
            if busy in snap.by_id:
                reads += 1
                percents.append(snap.by_id[busy].cpu_percent)
            else:
                assert busy in snap.skipped
        assert reads == 2, reads
        assert all(25 <= p <= 75 for p in percents), percents

    backend = EngineBackend(engine.config)
    for _ in range(7):
        views = {c.name: c for c in backend.snapshot(frozenset({calm})).containers}
        assert views["busy"].cpu_percent is not None and views["calm"].cpu_percent is not None
        time.sleep(0.1)
    assert len(backend.stats_series(busy).cpu) == 7  # one sample a second on the timeline, held or read


def test_records_are_not_read_again_while_the_index_is_unchanged(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """EngineBackend reuses its records while the container index's signature is unchanged (no stat
    or parse per container), and sees a change at once (the index grows with every record write)."""
    import os

    import tui.backend as backend_module

    engine.out("create", "--network", "none", "--name", "first", "busybox", "true")
    engine.out("create", "--network", "none", "--name", "second", "busybox", "true")
    backend = EngineBackend(engine.config)
    assert {r.name for r in backend._cached_records()} == {"first", "second"}
    loads, stats = [], []
    real_load, real_stat = backend_module.load_record, os.stat
    monkeypatch.setattr(backend_module, "load_record", lambda config, cid: loads.append(cid) or real_load(config, cid))
    monkeypatch.setattr(backend_module.os, "stat", lambda path, *a, **k: stats.append(str(path)) or real_stat(path, *a, **k))
    for _ in range(3):
        assert {r.name for r in backend._cached_records()} == {"first", "second"}
    assert loads == [] and not [p for p in stats if p.endswith(".json")], (loads, stats)
    engine.out("rename", "second", "renamed")
    assert {r.name for r in backend._cached_records()} == {"first", "renamed"}
