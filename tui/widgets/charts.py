"""Sparklines for table cells and multi-row plots for the Stats tab, as plain text (cheap to redraw)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from engine.util.units import short_binary_size

BLOCKS = " ▁▂▃▄▅▆▇█"


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


def format_value(value: float | None, unit: str) -> str:
    """`%` percent of one core, `n` a count, `B` bytes, `B/s` a byte rate."""
    if value is None:
        return "--"
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "n":
        return f"{value:.0f}"
    return human_bytes(value, "/s" if unit == "B/s" else "")


class Plot(Static):
    """A titled multi-row chart; redrawn only when given new data while visible."""

    DEFAULT_CLASSES = "plot"

    def __init__(self, title: str, unit: str = "", *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.title = title
        self.unit = unit
        self._data: tuple[tuple[float, ...], float | None, str] | None = None

    def set_series(self, values: Sequence[float], top: float | None = None, latest: str = "") -> None:
        data = (tuple(values), top, latest)
        if data == self._data:
            return
        self._data = data
        self.refresh(layout=False)
        self.update(self._render_text())

    def on_resize(self) -> None:
        if self._data is not None:
            self.update(self._render_text())

    def _render_text(self) -> Text:
        values, top, latest = self._data or ((), None, "")
        width = max(10, self.content_region.width or self.size.width or 40)
        height = max(1, (self.content_region.height or self.size.height or 5) - 1)
        ceiling = top if top else (max(values) if values else 0)
        text = Text()
        text.append(f"{self.title} ", style="bold")
        text.append(latest)
        scale = f"max {format_value(ceiling, self.unit)}"
        if len(self.title) + len(latest) + len(scale) + 4 <= width:
            text.append(f"  ({scale})", style="dim")
        for line in plot_lines(values, width, height, ceiling or None):
            text.append("\n")
            text.append(line, style="bold")
        return text
