"""The Stats tab's scale rules (tui/widgets/charts.py), the CPU quota read from a HostConfig, and
when the detail screen asks the backend for full statistics (on the recorded backend): no engine,
no root."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tui_helpers import recorded_app, run_async, settle
from tui.backend import cpu_quota_percent
from tui.widgets.charts import LimitMark, axis_label, nice_ceiling, plot_lines, plot_scale

MIB = 1024 * 1024


def test_a_tiny_value_is_not_stretched_to_the_top_of_the_plot() -> None:
    top = plot_scale([0.2, 0.1, 0.2], "%", floor=100.0)
    assert top == 100.0
    rows = plot_lines([0.2, 0.1, 0.2], 3, 5, top)
    assert rows[:-1] == ["   "] * 4 and rows[-1] == "▁▁▁"  # a sliver on the bottom row, not a bar


def test_the_limit_is_the_scale_when_nothing_exceeds_it_and_the_floor_otherwise() -> None:
    assert plot_scale([3 * MIB], "B", floor=64 * MIB, limit=256 * MIB) == 256 * MIB  # 0 to the limit
    assert plot_scale([12.0], "%", floor=100.0, limit=50.0) == 100.0  # one core, the quota half way
    assert plot_scale([12.0], "%", floor=100.0, limit=200.0) == 200.0  # two cores' quota
    assert plot_scale([150.0], "%", floor=100.0) == 200.0  # above the floor: a nice number
    assert plot_scale([300.0], "B/s", floor=4096.0) == 4096.0
    assert plot_scale([70 * MIB], "B", floor=64 * MIB) == 100 * MIB


@pytest.mark.parametrize(("value", "unit", "expected"), [
    (0.7, "%", 1.0), (3.0, "n", 5.0), (21.0, "%", 25.0), (1100 * MIB, "B", 2 * 1024 * MIB), (5000.0, "B/s", 5 * 1024),
])
def test_nice_ceilings(value: float, unit: str, expected: float) -> None:
    assert nice_ceiling(value, unit) == expected


def test_a_limit_is_placed_on_the_row_that_holds_it() -> None:
    assert LimitMark.place(64, 64, 6) == LimitMark(0, "▔")  # the top edge
    assert LimitMark.place(50, 100, 10) == LimitMark(5, "▔")  # exactly half: the top of the 5th row up
    assert LimitMark.place(50, 100, 5) == LimitMark(2, "─")  # half of the middle row
    assert LimitMark.place(1, 100, 5) == LimitMark(4, "▁")  # low in the bottom row
    assert LimitMark.place(150, 100, 5) is None  # above the scale: not drawn


def test_axis_labels_are_short() -> None:
    assert [axis_label(v, u) for v, u in ((100.0, "%"), (64 * MIB, "B"), (4096.0, "B/s"), (0.0, "B"), (10.0, "n"))] == [
        "100%", "64MiB", "4KiB/s", "0B", "10"]


def test_cpu_quota_from_nanocpus_or_quota_and_period() -> None:
    assert cpu_quota_percent({"NanoCpus": 500_000_000}) == 50.0
    assert cpu_quota_percent({"CpuQuota": 150_000, "CpuPeriod": 100_000}) == 150.0
    assert cpu_quota_percent({"CpuQuota": 25_000}) == 25.0  # the kernel's default period
    assert cpu_quota_percent({"NanoCpus": 0, "CpuQuota": 0}) is None
    assert cpu_quota_percent({}) is None


@run_async
async def test_the_detail_screen_asks_for_full_stats_while_it_is_in_view(tmp_path: Path) -> None:
    app = recorded_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        levels = lambda: [level for call, level in app.backend.calls if call == "stats_level"]  # noqa: E731
        assert levels() == []  # the home screen: the sampler's TABLE level, the default
        await pilot.press("enter")
        await settle(pilot)
        assert levels()[-1] == "full"
        await pilot.press("d")  # a question over the detail screen: its plots stay in view
        await settle(pilot)
        assert type(app.screen).__name__ == "ConfirmDialog" and levels()[-1] == "full"
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert type(app.screen).__name__ == "ContainersScreen" and levels()[-1] == "table"
