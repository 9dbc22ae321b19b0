"""The home screen's table: sortable by any column, filterable, updated cell by cell.

A refresh with the same rows in the same order only rewrites the cells whose text changed, so a
1 Hz refresh of 200 containers costs little; rows are rebuilt only when the set or order changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from tui.backend import ContainerView
from tui.widgets.charts import human_bytes, sparkline

GLYPHS = {"running": "●", "paused": "‖", "restarting": "↻", "created": "○", "exited": "■", "dead": "✖"}
STATUS_COLOURS = {"running": "success", "paused": "warning", "restarting": "warning", "created": "primary",
                  "exited": "foreground", "dead": "error"}

# key, title, sort key, shown when narrow
COLUMNS: tuple[tuple[str, str, Callable[[ContainerView], Any], bool], ...] = (
    ("name", "  NAME", lambda c: c.name, True),
    ("image", "IMAGE", lambda c: c.image, True),
    ("id", "ID", lambda c: c.id, False),
    ("status", "STATUS", lambda c: (c.status, c.state_text), True),
    ("ip", "IP", lambda c: tuple(int(x) for x in c.ip.split(".")) if c.ip else (), False),
    ("ports", "PORTS", lambda c: c.ports, False),
    ("cpu", "CPU %", lambda c: c.cpu_percent or -1.0, True),
    ("cpu_spark", "CPU trend", lambda c: c.cpu_percent or -1.0, False),
    ("mem", "MEM", lambda c: c.mem_usage or -1, True),
    ("mem_pct", "MEM %", lambda c: c.mem_percent or -1.0, False),
    ("mem_spark", "MEM trend", lambda c: c.mem_usage or -1, False),
)
SORTABLE = tuple(key for key, *_ in COLUMNS if key not in ("cpu_spark", "mem_spark"))
NARROW = 120


def memory_sparkline(values: Sequence[float], width: int) -> str:
    """Memory moves little: scale between the window's low and high, and draw a steady line flat."""
    points = list(values)[-width:]
    if not points:
        return " " * width
    low, high = min(points), max(points)
    if high <= 0 or (high - low) < 0.02 * high:
        return ("▄" * len(points)).rjust(width)
    return sparkline([v - low * 0.9 for v in points], width, high - low * 0.9)


class ContainersTable(DataTable):
    BINDINGS = [Binding("j", "cursor_down", "Down", show=False), Binding("k", "cursor_up", "Up", show=False)]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.sort_column = "name"
        self.sort_reverse = False
        self.filter_text = ""
        self.views: tuple[ContainerView, ...] = ()
        self.visible_rows: list[ContainerView] = []
        self._narrow: bool | None = None
        self._cells: dict[str, tuple[Any, ...]] = {}
        self._order: list[str] = []

    # ---- public

    def set_views(self, views: Sequence[ContainerView]) -> None:
        self.views = tuple(views)
        self._render_rows()

    def set_sort(self, column: str, reverse: bool | None = None) -> None:
        self.sort_column = column
        if reverse is not None:
            self.sort_reverse = reverse
        self._render_rows()

    def cycle_sort(self) -> str:
        index = (SORTABLE.index(self.sort_column) + 1) % len(SORTABLE) if self.sort_column in SORTABLE else 0
        self.set_sort(SORTABLE[index])
        return self.sort_column

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip().lower()
        self._render_rows()

    @property
    def selected(self) -> ContainerView | None:
        if not self.visible_rows or self.cursor_row < 0 or self.cursor_row >= len(self.visible_rows):
            return None
        return self.visible_rows[self.cursor_row]

    # ---- internals

    def _columns(self) -> list[tuple[str, str, Callable[[ContainerView], Any], bool]]:
        return [c for c in COLUMNS if c[3] or not self._narrow]

    def on_resize(self) -> None:
        narrow = self.size.width < NARROW
        if narrow != self._narrow:
            self._narrow = narrow
            self.clear(columns=True)
            for key, title, _, _ in self._columns():
                title_text = title
                if key == self.sort_column:
                    title_text = f"{title}{'▼' if self.sort_reverse else '▲'}"
                self.add_column(title_text, key=key)
            self._order = []
            self._render_rows()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key in SORTABLE:
            self.set_sort(key, not self.sort_reverse if key == self.sort_column else False)
        event.stop()

    def _matches(self, c: ContainerView) -> bool:
        if not self.filter_text:
            return True
        hay = " ".join((c.name, c.image, c.status, c.id[:12], *(f"{k}={v}" for k, v in c.labels))).lower()
        return all(word in hay for word in self.filter_text.split())

    def _render_rows(self) -> None:
        if self._narrow is None:
            return  # not sized yet: on_resize will build the columns and call back
        key_fn = next(fn for key, _, fn, _ in COLUMNS if key == self.sort_column)
        visible = sorted((c for c in self.views if self._matches(c)), key=lambda c: (key_fn(c), c.name),
                         reverse=self.sort_reverse)
        selected = self.selected.id if self.selected else None
        self.visible_rows = visible
        order = [c.id for c in visible]
        columns = self._columns()
        self._update_titles(columns)
        styles = self._status_styles()
        if order != self._order:
            self.clear()
            self._cells = {}
            for c in visible:
                cells = self._cells_for(c, columns, styles)
                self._cells[c.id] = cells
                self.add_row(*cells, key=c.id)
            self._order = order
            if selected in order:
                self.move_cursor(row=order.index(selected), animate=False)
            return
        for c in visible:
            cells = self._cells_for(c, columns, styles)
            old = self._cells.get(c.id)
            if old == cells:
                continue
            for (key, *_), new, prev in zip(columns, cells, old or (None,) * len(cells), strict=False):
                if new != prev:
                    self.update_cell(c.id, key, new, update_width=True)
            self._cells[c.id] = cells

    def _update_titles(self, columns: list[tuple[str, str, Callable[[ContainerView], Any], bool]]) -> None:
        for key, title, _, _ in columns:
            column = self.columns.get(key)  # type: ignore[call-overload]
            if column is None:
                continue
            wanted = f"{title}{'▼' if self.sort_reverse else '▲'}" if key == self.sort_column else title
            if str(column.label) != wanted:
                column.label = Text(wanted)
                self.refresh()

    def _status_styles(self) -> dict[str, Style]:
        theme = self.app.current_theme
        out = {}
        for status, attr in STATUS_COLOURS.items():
            colour = getattr(theme, attr, None) or theme.foreground or "default"
            out[status] = Style(color=colour, bold=status == "running")
        return out

    def _cells_for(self, c: ContainerView, columns: list[tuple[str, str, Callable[[ContainerView], Any], bool]],
                   styles: dict[str, Style]) -> tuple[Any, ...]:
        style = styles.get(c.status, Style())
        image_width = 16 if self._narrow else 22
        values = {
            "name": Text.assemble((GLYPHS.get(c.status, "?"), style), " ", c.name),
            "image": c.image if len(c.image) <= image_width else "…" + c.image[-(image_width - 1):],
            "id": c.short_id,
            "status": Text(c.state_text, style=style if c.status != "exited" else Style(dim=True)),
            "ip": c.ip,
            "ports": c.ports,
            "cpu": Text(f"{c.cpu_percent:6.1f}%" if c.cpu_percent is not None else "     --", justify="right"),
            "cpu_spark": sparkline(c.cpu_history, 8, max(5.0, *c.cpu_history)) if c.cpu_history else " " * 8,
            "mem": Text(human_bytes(c.mem_usage) if c.mem_usage is not None else "--", justify="right"),
            "mem_pct": Text(f"{c.mem_percent:5.1f}%" if c.mem_percent is not None else "--", justify="right"),
            "mem_spark": memory_sparkline(c.mem_history, 8),
        }
        return tuple(values[key] for key, *_ in columns)
