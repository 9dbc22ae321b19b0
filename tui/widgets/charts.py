"""Sparklines for table cells and the Stats tab's plots, as plain text (cheap to redraw).

A plot's scale means something: its y axis is labelled in the series' unit, a limit (the memory
limit, the CPU quota, the pids limit) is drawn as a line at its height, and the scale never
stretches below a floor (one core for CPU, the limit when there is one), so 0.2 % of a core is a
sliver, not a full bar. `plot_scale` picks the top, `plot_lines` draws the bars and the line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from engine.util.units import short_binary_size

BLOCKS = " ▁▂▃▄▅▆▇█"
LIMIT_MARKS = "▁─▔"  # the limit in the lower, middle or upper third of its row
KIB = 1024


def sparkline(values: Sequence[float], width: int = 10, top: float | None = None) -> str:
    """The last `width` values as one row of eighth blocks, scaled to `top` (or their max)."""
    points = list(values)[-width:]
    if not points:
        return " " * width
    ceiling = top if top else max(points)
    if ceiling <= 0:
        return ("▁" * len(points)).rjust(width)
    out = []
    for v in points:
        level = round(8 * max(0.0, min(v, ceiling)) / ceiling)
        out.append(BLOCKS[max(1, level)])
    return "".join(out).rjust(width)


def human_bytes(n: float | None, suffix: str = "") -> str:
    """Binary units as `docker stats` prints them (MiB, GiB)."""
    return "--" if n is None else short_binary_size(n) + suffix


def format_value(value: float | None, unit: str) -> str:
    """`%` percent of one core, `n` a count, `B` bytes, `B/s` a byte rate."""
    if value is None:
        return "--"
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "n":
        return f"{value:.0f}"
    return human_bytes(value, "/s" if unit == "B/s" else "")


def axis_label(value: float, unit: str) -> str:
    """A scale mark: as short as the value allows (`100%`, `64MiB`, `4KiB/s`, `12`)."""
    if unit == "%":
        return f"{value:g}%"
    if unit == "n":
        return f"{value:g}"
    text = short_binary_size(value).replace(".0", "")
    return text + "/s" if unit == "B/s" else text


def _nice(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k that is at least `value` (> 0)."""
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value * (1 - 1e-9):
            return candidate
    return 10 ** (exponent + 1)


def nice_ceiling(value: float, unit: str) -> float:
    """`value` rounded up to a number a scale can be labelled with (bytes in binary units)."""
    if value <= 0:
        return 1.0
    if unit in ("B", "B/s"):
        base = 1.0
        while value / base >= KIB:
            base *= KIB
        return _nice(value / base) * base
    return _nice(value)


def plot_scale(values: Sequence[float], unit: str, floor: float = 0.0, limit: float | None = None) -> float:
    """The top of a plot's y axis: never below `floor` or the limit; the limit itself when nothing
    exceeds it (memory: 0 to its limit); otherwise the largest of them rounded up to a nice number."""
    peak = max(values, default=0.0)
    if limit and peak <= limit and floor <= limit:
        return float(limit)
    highest = max(peak, limit or 0.0)
    return float(floor) if highest <= floor else nice_ceiling(highest, unit)


@dataclass(frozen=True)
class LimitMark:
    """Where a limit falls in a plot `height` rows high: its row from the top and its glyph."""

    row: int
    glyph: str

    @classmethod
    def place(cls, limit: float, ceiling: float, height: int) -> LimitMark | None:
        if not limit or ceiling <= 0 or limit > ceiling or height < 1:
            return None
        level = limit / ceiling * height  # in rows from the bottom
        from_bottom = max(0, math.ceil(level) - 1)
        within = level - from_bottom  # 0 < within <= 1
        return cls(height - 1 - from_bottom, LIMIT_MARKS[min(2, int(within * 3 - 1e-9))])


def plot_lines(values: Sequence[float], width: int, height: int, top: float | None = None) -> list[str]:
    """A bar chart `height` rows high of the last `width` values, newest on the right."""
    points = list(values)[-width:]
    ceiling = top if top else (max(points) if points else 0)
    rows = [[" "] * width for _ in range(height)]
    offset = width - len(points)
    for i, v in enumerate(points):
        eighths = 0 if ceiling <= 0 else round(8 * height * max(0.0, min(v, ceiling)) / ceiling)
        if v > 0 and eighths == 0:
            eighths = 1
        for row in range(height):
            fill = eighths - 8 * row
            if fill <= 0:
                break
            rows[height - 1 - row][offset + i] = BLOCKS[min(8, fill)]
    return ["".join(r) for r in rows]


class Plot(Static):
    """A titled chart with a labelled y axis and an optional limit line; redrawn only when given new
    data (or a new size)."""

    DEFAULT_CLASSES = "plot"
    COMPONENT_CLASSES = {"plot--axis", "plot--limit"}

    def __init__(self, title: str, unit: str = "", *, floor: float = 0.0, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.title = title
        self.unit = unit
        self.floor = floor  # the scale's least top (one core, a few KiB/s): small values stay small
        self._data: tuple[tuple[float, ...], str, float | None, str] | None = None

    def set_series(self, values: Sequence[float], latest: str = "", *, limit: float | None = None,
                   limit_name: str = "limit") -> None:
        """`latest`: the headline figure; `limit` is drawn as a line and named `limit_name`."""
        data = (tuple(values), latest, limit or None, limit_name)
        if data == self._data:
            return
        self._data = data
        self.update(self._render_text())

    def on_resize(self) -> None:
        if self._data is not None:
            self.update(self._render_text())

    @property
    def scale_top(self) -> float:
        """The y axis' top for the current data."""
        values, _, limit, _ = self._data or ((), "", None, "")
        return plot_scale(values, self.unit, self.floor, limit)

    def _render_text(self) -> Text:
        values, latest, limit, limit_name = self._data or ((), "", None, "limit")
        width = max(10, self.content_region.width or self.size.width or 40)
        height = max(1, (self.content_region.height or self.size.height or 5) - 1)
        ceiling = self.scale_top
        axis_style = self.get_component_rich_style("plot--axis")
        limit_style = self.get_component_rich_style("plot--limit")
        text = Text()
        text.append(f"{self.title} ", style="bold")
        text.append(latest)
        if limit:
            legend = f"  ─ {limit_name} {axis_label(limit, self.unit)}"
            if len(self.title) + len(latest) + len(legend) + 1 <= width:
                text.append(legend, style=limit_style)
        labels = {0: axis_label(ceiling, self.unit), height - 1: axis_label(0, self.unit)}
        if height >= 5:  # the half mark, on the row that holds half the scale (as a limit would be)
            labels[height - math.ceil(height / 2)] = axis_label(ceiling / 2, self.unit)
        gutter = max(len(label) for label in labels.values()) + 1
        if width - gutter < 10:
            gutter = 0  # too narrow for a scale: the bars alone
        bars = plot_lines(values, width - gutter, height, ceiling)
        mark = LimitMark.place(limit, ceiling, height) if limit else None
        for row, line in enumerate(bars):
            text.append("\n")
            if gutter:
                label = labels.get(row, "")
                text.append(label.rjust(gutter - 1) + ("┤" if label else "│"), style=axis_style)
            if mark is not None and mark.row == row:
                self._append_with_limit(text, line, mark.glyph, limit_style)
            else:
                text.append(line, style="bold")
        return text

    @staticmethod
    def _append_with_limit(text: Text, line: str, glyph: str, limit_style: Style) -> None:
        """A row crossed by the limit: the line in the empty cells, the bars where they reach it."""
        for empty, cells in groupby(line, key=lambda cell: cell == " "):
            run = "".join(cells)
            if empty:
                text.append(glyph * len(run), style=limit_style)
            else:
                text.append(run, style="bold")
