"""The home screen's table: sortable by any column, filterable, updated cell by cell.

A refresh with the same rows in the same order only rewrites the cells whose text changed, so a
1 Hz refresh of 200 containers costs little; rows are rebuilt only when the set or order changes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.binding import Binding
from textual.geometry import Size
from textual.render import measure
from textual.widgets import DataTable
from textual.widgets._data_table import RowKey, default_cell_formatter

from tui.backend import ContainerView
from tui.widgets.charts import human_bytes, sparkline

GLYPHS = {"running": "●", "paused": "‖", "restarting": "↻", "created": "○", "exited": "■", "dead": "✖"}
HEALTH_STYLES = {"unhealthy": "dead", "starting": "restarting"}  # health -> the status style it borrows
STATUS_COLOURS = {"running": "success", "paused": "warning", "restarting": "warning", "created": "primary",
                  "exited": "foreground", "dead": "error"}

NARROW = 120
PROJECT_WIDTH = 120  # the compose project column, while some container belongs to one
FULL_WIDTH = 175  # from here every column fits; below it PROJECT takes the ID's place
# STATUS sorts by state first (live before stopped), then by age: the youngest start or exit first
STATUS_RANK = {"running": 0, "restarting": 1, "paused": 2, "created": 3, "exited": 4, "dead": 5}


def _status_key(c: ContainerView) -> tuple[int, float]:
    when = c.started_at if c.is_live else c.finished_at
    return STATUS_RANK.get(c.status, 6), -(when or 0.0)


def _figure(value: float | None, digits: int = 1) -> tuple[bool, float]:
    """A live figure as shown (one decimal: rows do not swap over noise below it); none sorts lowest."""
    return (value is not None, round(value, digits) if value is not None else 0.0)


# key, title, sort key (the underlying value, not the text), table width from which the column is shown.
# Equal keys keep name order, in both directions.
COLUMNS: tuple[tuple[str, str, Callable[[ContainerView], Any], int], ...] = (
    ("name", "  NAME", lambda c: c.name, 0),
    ("project", "PROJECT", lambda c: (not c.project, c.project), PROJECT_WIDTH),  # compose projects together
    ("image", "IMAGE", lambda c: c.image, 0),
    ("id", "ID", lambda c: c.id, NARROW),
    ("status", "STATUS", _status_key, 0),
    ("ip", "IP", lambda c: tuple(int(x) for x in c.ip.split(".")) if c.ip else (), NARROW),
    ("ports", "PORTS", lambda c: c.ports, NARROW),
    ("cpu", "CPU %", lambda c: _figure(c.cpu_percent), 0),
    ("cpu_spark", "CPU trend", lambda c: _figure(c.cpu_percent), NARROW),
    ("mem", "MEM", lambda c: _figure(c.mem_usage, -5), 0),  # 100 kB steps
    ("mem_pct", "MEM %", lambda c: _figure(c.mem_percent), FULL_WIDTH),
    ("mem_spark", "MEM trend", lambda c: _figure(c.mem_usage, -5), NARROW),
)
# Columns whose text changes every second get fixed widths: re-measuring a column is O(rows).
FIXED_WIDTHS = {"status": 26, "cpu": 7, "cpu_spark": 9, "mem": 9, "mem_pct": 6, "mem_spark": 9}
SORTABLE = tuple(key for key, *_ in COLUMNS if key not in ("cpu_spark", "mem_spark"))


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
    # vim's j/k; Home/End (and k9s's G) to the first and last row: DataTable's own Home/End scroll
    # sideways, which the columns chosen by width never need
    BINDINGS = [Binding("j", "cursor_down", "Down", show=False), Binding("k", "cursor_up", "Up", show=False),
                Binding("home", "scroll_top", "First row", show=False),
                Binding("end,G", "scroll_bottom", "Last row", show=False)]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.sort_column = "name"
        self.sort_reverse = False
        self.filter_text = ""
        self.marked: set[str] = set()  # IDs marked with space, for bulk actions
        self.views: tuple[ContainerView, ...] = ()
        self.visible_rows: list[ContainerView] = []
        self._narrow: bool | None = None
        self._shown: tuple[str, ...] = ()
        self._cells: dict[str, tuple[Any, ...]] = {}
        self._order: list[str] = []
        self._pending: dict[str, ContainerView] = {}  # newer data for rows off screen
        self._cell_versions: dict[tuple[Any, Any], int] = {}
        self._versions = itertools.count(1)
        self._structure = 0

    # ---- cheaper redraws: a cell is re-rendered only when it changed.
    # DataTable keys its cell-render cache on a table-wide update counter, so one changed cell makes
    # every visible cell render again (about 0.1 ms each). Here the counter seen while rendering a
    # cell is that cell's own version (unique per update), so unchanged cells come from the cache.

    def update_cell(self, row_key: Any, column_key: Any, value: Any, *, update_width: bool = False) -> None:
        self._cell_versions[(row_key, column_key)] = next(self._versions)
        super().update_cell(row_key, column_key, value, update_width=update_width)

    def clear(self, columns: bool = False) -> ContainersTable:
        # Pending rows go first: clearing scrolls to the top, and the scroll handler would otherwise
        # write them into rows that no longer exist (CellDoesNotExist).
        self._pending = {}
        self._structure += 1
        self._cell_versions.clear()
        return super().clear(columns)

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> Any:
        if row_index < 0 or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        version = (self._cell_versions.get((row_key, column_key), 0), self._structure, width)
        key = (row_key, column_key, base_style, cursor, hover, self._show_hover_cursor, version,
               self._pseudo_class_state)  # the same shape as DataTable's own cache key
        lines = self._cell_render_cache.get(key)
        if lines is not None:
            return lines
        lines = self._fast_cell_lines(row_index, column_index, base_style, width, cursor, hover)
        if lines is not None:
            self._cell_render_cache[key] = lines
            return lines
        saved = self._update_count
        self._update_count = version  # type: ignore[assignment]
        try:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        finally:
            self._update_count = saved

    def _fast_cell_lines(self, row_index: int, column_index: int, base_style: Style, width: int,
                         cursor: bool = False, hover: bool = False) -> list[list[Segment]] | None:
        """DataTable's rendering of a one-line Text cell (Padding + Styled + render_lines), done
        directly: about 5x cheaper. None for anything else (then DataTable renders it).
        tests/test_tui_app.py checks it gives exactly DataTable's segments."""
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        cell = self._data[row_key][column_key]
        if not isinstance(cell, Text) or self.rows[row_key].height != 1 or "\n" in cell.plain:
            return None
        justify = cell.justify
        pad = self.cell_padding
        gap = width - 2 * pad - cell.cell_len
        if gap < 0 or justify not in (None, "default", "left", "right"):
            return None
        console = self.app.console
        text_style = console.get_style(cell.style) if cell.style else None
        if not cell._spans:
            plain = cell.plain
            if justify == "right":
                line = [Segment(" " * gap + plain, text_style)]
            elif justify == "left":
                line = [Segment(plain + " " * gap, text_style)]
            else:
                line = [Segment(plain, text_style)] + ([Segment(" " * gap)] if gap else [])
        elif justify in (None, "default"):
            line = [Segment(t, (text_style + st) if (text_style and st) else (text_style or st), c)
                    for t, st, c in cell.render(console, end="")]
            if gap:
                line.append(Segment(" " * gap))
        else:
            return None
        is_fixed = row_index < self.fixed_rows or column_index < self.fixed_columns
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, is_fixed, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css")
        pre = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component_style
        if pad:
            null = Style.null()
            line = [Segment(" " * pad, null), *line, Segment(" " * pad, null)]
        out = []
        for text, style, control in line:
            if control:
                out.append(Segment(text, None, control))
                continue
            combined = pre + style if style is not None else pre
            out.append(Segment(text, combined + post_style if post_style else combined))
        return [out]

    # ---- public

    def set_views(self, views: Sequence[ContainerView]) -> None:
        self.views = tuple(views)
        self.marked &= {c.id for c in self.views}  # a removed container is no longer marked
        if self._narrow is not None and self._wanted() != self._shown:
            self.on_resize()  # a first compose project came, or the last one went: PROJECT in or out
            return
        self._render_rows()

    def toggle_mark(self, container_id: str) -> None:
        self.marked ^= {container_id}
        self._render_rows()

    def mark_project(self, project: str) -> None:
        """Mark every container of a compose project (all of them, filtered out or not)."""
        self._mark_all({c.id for c in self.views if c.project == project})

    def mark_shown(self) -> None:
        """Mark every container the filter shows (a bulk action on "all the workers")."""
        self._mark_all({c.id for c in self.visible_rows})

    def _mark_all(self, ids: set[str]) -> None:
        """Mark all of `ids`, or unmark them when all are marked already (the same key again)."""
        self.marked = self.marked - ids if ids <= self.marked else self.marked | ids
        self._render_rows()

    def clear_marks(self) -> None:
        if self.marked:
            self.marked = set()
            self._render_rows()

    @property
    def marked_views(self) -> list[ContainerView]:
        """The marked containers, in the table's order."""
        return [c for c in self.visible_rows if c.id in self.marked] + \
            [c for c in self.views if c.id in self.marked and c not in self.visible_rows]

    def set_sort(self, column: str, reverse: bool | None = None) -> None:
        self.sort_column = column
        if reverse is not None:
            self.sort_reverse = reverse
        self._render_rows()

    def cycle_sort(self) -> str:
        """The next sortable column among those shown (a hidden column would sort without a header
        saying so)."""
        cycle = [key for key in SORTABLE if key in self._shown] or ["name"]
        index = (cycle.index(self.sort_column) + 1) % len(cycle) if self.sort_column in cycle else 0
        self.set_sort(cycle[index])
        return self.sort_column

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip().lower()
        self._render_rows()

    def ids_on_screen(self) -> frozenset[str] | None:
        """The containers whose rows are on screen (with a row of margin), the highlighted one and the
        marked ones: the figures a refresh must read. None before the table has a size (read all)."""
        if self._narrow is None or not self.size.height:
            return None
        top = int(self.scroll_y)
        rows = self.visible_rows[max(0, top - 1): top + self.size.height + 2]
        chosen = self.selected
        return frozenset([*(c.id for c in rows), *self.marked, *([chosen.id] if chosen else [])])

    @property
    def selected(self) -> ContainerView | None:
        if not self.visible_rows or self.cursor_row < 0 or self.cursor_row >= len(self.visible_rows):
            return None
        return self.visible_rows[self.cursor_row]

    # ---- internals

    def _columns(self) -> list[tuple[str, str, Callable[[ContainerView], Any], int]]:
        return [c for c in COLUMNS if c[0] in self._shown]

    def _wanted(self) -> tuple[str, ...]:
        """The columns for this width. PROJECT only while some container belongs to a compose
        project, and below FULL_WIDTH it takes the ID's place (the detail screen and `y` give the ID)."""
        width = self.size.width
        shown = [key for key, _, _, min_width in COLUMNS if width >= min_width]
        if "project" in shown:
            if not any(c.project for c in self.views):
                shown.remove("project")
            elif width < FULL_WIDTH:
                shown.remove("id")
        return tuple(shown)

    def on_resize(self) -> None:
        shown = self._wanted()
        if shown != self._shown or self._narrow is None:
            # the rebuild resets the cursor to the first row: it must stay on its container (a resize,
            # a tmux zoom, then `d` would otherwise ask to remove another one)
            selected = self.selected.id if self.selected else None
            self._shown = shown
            self._narrow = self.size.width < NARROW
            if self.sort_column not in shown:
                self.sort_column, self.sort_reverse = "name", False
            self.clear(columns=True)
            for key, title, _, _ in self._columns():
                title_text = title
                if key == self.sort_column:
                    title_text = f"{title}{'▼' if self.sort_reverse else '▲'}"
                self.add_column(title_text, key=key, width=FIXED_WIDTHS.get(key))
            self._order = []
            self._render_rows()
            if selected in self._order:
                self.move_cursor(row=self._order.index(selected), animate=False)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key in SORTABLE:
            self.set_sort(key, not self.sort_reverse if key == self.sort_column else False)
        event.stop()

    def _matches(self, c: ContainerView) -> bool:
        if not self.filter_text:
            return True
        hay = " ".join((c.name, c.image, c.status, c.health, c.id[:12], f"project={c.project}" if c.project else "",
                        *(f"{k}={v}" for k, v in c.labels))).lower()
        return all(word in hay for word in self.filter_text.split())

    def _render_rows(self) -> None:
        if self._narrow is None:
            return  # not sized yet: on_resize will build the columns and call back
        key_fn = next(fn for key, _, fn, _ in COLUMNS if key == self.sort_column)
        visible = sorted((c for c in self.views if self._matches(c)), key=lambda c: (c.name, c.id))
        visible.sort(key=key_fn, reverse=self.sort_reverse)  # stable, also reversed: ties stay in name order
        selected = self.selected.id if self.selected else None
        self.visible_rows = visible
        order = [c.id for c in visible]
        columns = self._columns()
        self._update_titles(columns)
        styles = self._status_styles()
        if order != self._order and len(order) == len(self._order) and set(order) == set(self._order):
            self._reorder(order, selected)  # a sort: the same rows in another order, nothing to rebuild
        if order != self._order:
            self.clear()
            self._cells = {}
            self._pending = {}
            for c in visible:
                cells = self._cells_for(c, columns, styles)
                self._cells[c.id] = cells
                self.add_row(*cells, key=c.id)
            self._order = order
            if selected in order:
                self.move_cursor(row=order.index(selected), animate=False)
            return
        # Only rows on screen are rewritten now; the rest when they scroll into view.
        top = int(self.scroll_y)
        bottom = top + self.size.height
        for index, c in enumerate(visible):
            if top - 1 <= index <= bottom + 1:
                self._pending.pop(c.id, None)
                self._write_row(c, columns, styles)
            else:
                self._pending[c.id] = c

    def _reorder(self, order: list[str], selected: str | None) -> None:
        """Put the existing rows in `order`, as DataTable.sort does (it only remaps row indexes), and
        keep the cursor on `selected`, the container it was on. Rebuilding 250 rows instead costs ~80 ms,
        and measuring them again on the next idle as much (issue #14: key to screen within 100 ms)."""
        index = {cid: i for i, cid in enumerate(order)}
        self._row_locations = TwoWayDict({key: index[key.value] for key in self.rows})
        self._update_count += 1
        self._order = order
        self.refresh()
        if selected in index:
            self.move_cursor(row=index[selected], animate=False)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """Column widths for new rows. DataTable measures each cell through Rich (~0.04 ms a cell:
        250 rows rebuilt cost ~100 ms on the next idle); every cell here is one line of Text, whose
        width is its cell length. A test compares the widths with DataTable's own measurement.

        A column that grows makes every line drawn so far wrong: DataTable keys its line and row
        caches by its update count, not by the widths, so a line painted between `add_row` and this
        idle-time measurement (a frame that fell there, more likely on a loaded machine) was served
        again with the narrow widths; the update count moves on instead. (The home screen behind the
        run dialog showed its rows without their MEM column's last cells now and then.)"""
        columns = self.ordered_columns
        grew = False
        for row_key in new_rows:
            row = self._data.get(row_key)
            if row is None:
                continue  # removed before the idle
            for column in columns:
                cell = row.get(column.key)
                if isinstance(cell, Text) and "\n" not in cell.plain:
                    width = cell.cell_len
                else:
                    width = measure(self.app.console, default_cell_formatter(cell), 1)
                if width > column.content_width:
                    column.content_width, grew = width, True
        if grew:
            self._update_count += 1
            self.refresh()
        # what DataTable's own ends with: the scrollable size from the new widths and row count
        width = sum(column.get_render_width(self) for column in self.columns.values()) + self._row_label_column_width
        self.virtual_size = Size(width, self._total_row_height + (self.header_height if self.show_header else 0))

    def _write_row(self, c: ContainerView, columns: list[tuple[str, str, Callable[[ContainerView], Any], int]],
                   styles: dict[str, Style]) -> None:
        cells = self._cells_for(c, columns, styles)
        old = self._cells.get(c.id)
        if old == cells:
            return
        for (key, *_), new, prev in zip(columns, cells, old or (None,) * len(cells), strict=False):
            if new != prev:
                self.update_cell(c.id, key, new, update_width=key not in FIXED_WIDTHS)
        self._cells[c.id] = cells

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._pending:
            top, bottom = int(new_value), int(new_value) + self.size.height
            columns, styles = self._columns(), self._status_styles()
            for index in range(max(0, top - 1), min(len(self.visible_rows), bottom + 2)):
                c = self._pending.pop(self.visible_rows[index].id, None)
                if c is not None and c.id in self.rows:
                    self._write_row(c, columns, styles)

    def _update_titles(self, columns: list[tuple[str, str, Callable[[ContainerView], Any], int]]) -> None:
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
        out["marked"] = Style(color=theme.accent or theme.foreground or "default", bold=True)
        return out

    @staticmethod
    def _state_style(c: ContainerView, style: Style, styles: dict[str, Style]) -> Style:
        """STATUS in the state's colour; a pending action in the warning colour; a running container's
        failing health check in the error colour, one still starting in the warning colour."""
        if c.pending:
            return styles["restarting"]
        if c.health in HEALTH_STYLES:
            return styles[HEALTH_STYLES[c.health]]
        return style if c.status != "exited" else Style(dim=True)

    def _cells_for(self, c: ContainerView, columns: list[tuple[str, str, Callable[[ContainerView], Any], int]],
                   styles: dict[str, Style]) -> tuple[Any, ...]:
        style = styles.get(c.status, Style())
        image_width = 14 if self._narrow else 20
        values = {
            "name": Text.assemble((GLYPHS.get(c.status, "?"), style), ("✓", styles["marked"]), (c.name, styles["marked"]))
            if c.id in self.marked else Text.assemble((GLYPHS.get(c.status, "?"), style), " ", c.name),
            "project": Text(c.project or "-", style=Style() if c.project else Style(dim=True)),
            "image": Text(c.image if len(c.image) <= image_width else "…" + c.image[-(image_width - 1):]),
            "id": Text(c.short_id),
            "status": Text(c.state_text, style=self._state_style(c, style, styles)),
            "ip": Text(c.ip),
            "ports": Text(c.ports),
            "cpu": Text(f"{c.cpu_percent:6.1f}%" if c.cpu_percent is not None else "     --", justify="right"),
            "cpu_spark": Text(sparkline(c.cpu_history, 8, max(5.0, *c.cpu_history)) if c.cpu_history else ""),
            "mem": Text(human_bytes(c.mem_usage) if c.mem_usage is not None else "--", justify="right"),
            "mem_pct": Text(f"{c.mem_percent:5.1f}%" if c.mem_percent is not None else "--", justify="right"),
            "mem_spark": Text(memory_sparkline(c.mem_history, 8)),
        }
        return tuple(values[key] for key, *_ in columns)
