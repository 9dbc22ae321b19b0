"""A bounded log viewer: keeps the last `max_lines` lines whatever the log's length.

Draws only the visible rows (line API), colours stdout and stderr apart, toggles timestamps, follows
the end, wraps long lines on request, searches with next/previous over what it holds, and shows only
the lines containing a word on request (less's `&`; k9s's log filter).

Following stops as soon as the user scrolls up (keys or wheel) and resumes with End (or `f`): new lines
never pull the view away from what the user is reading. `state_text` says which, for the line above
the log; a `StateChanged` message tells the screen when it changes.
"""

from __future__ import annotations

import bisect
import itertools
from collections import deque
from collections.abc import Iterable

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.backend import LogLine

DEFAULT_MAX_LINES = 10_000
STAMP = 31  # timestamp column, with its space


class LogView(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {"logview--stderr", "logview--stdout", "logview--timestamp", "logview--match",
                         "logview--current"}

    def __init__(self, max_lines: int = DEFAULT_MAX_LINES, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: deque[LogLine] = deque(maxlen=max_lines)
        self.dropped = 0  # lines that fell off the front
        self.show_timestamps = False
        self.follow = True
        self.pattern = ""
        self.match_index: int | None = None  # absolute line number (dropped + index)
        self.match_total = 0  # lines held that contain the pattern (kept as lines come and go)
        self.wrap = False
        self.only = ""  # the filter (less's &): only lines containing it are shown; "" shows all
        self.loaded = False  # the log was read at least once (an empty log is then really empty)
        self._width = 0
        # with wrap or the filter on (`_mapped`): one (line index, first character) per screen row, in order
        self._rows: list[tuple[int, int]] = []
        self._row_width = 0

    class StateChanged(Message):
        """Follow, wrap, emptiness or the search's place changed: the line above the log should say so."""

    @property
    def state_text(self) -> str:
        if not self.lines:
            return "the log is empty: nothing written to stdout or stderr yet" if self.loaded else "reading the log…"
        parts = ["following (f stops)" if self.follow else "paused — End to follow"]
        if self.wrap:
            parts.append("wrap on (w)")
        if self.only:
            parts.append(f"&{self.only}: only the {len(self._rows)} of {len(self.lines)} lines containing it "
                         "(& changes it, esc shows all)")
        if self.pattern:
            parts.append(self.match_text)
        return " · ".join(parts)

    @property
    def _mapped(self) -> bool:
        """Screen rows are not lines one for one: `_rows` maps them (wrapped lines, filtered lines)."""
        return self.wrap or bool(self.only)

    def _searchable(self, text: str) -> bool:
        """A line shown (so one the search may land on): every line, or the filter's."""
        return not self.only or self.only.lower() in text.lower()

    def _is_match(self, text: str) -> bool:
        """A line the search counts and lands on: it contains the pattern, and the filter's word if one is on."""
        return bool(self.pattern) and self.pattern.lower() in text.lower() and self._searchable(text)

    def _count_matches(self, last: int | None = None) -> int:
        """The matching lines held (up to line index `last`, if given)."""
        lines = self.lines if last is None else itertools.islice(self.lines, last + 1)
        return sum(1 for line in lines if self._is_match(line.text))

    def set_only(self, text: str) -> None:
        """Show only the lines containing `text` (case-insensitive), as less's `&`; "" shows all. The
        view stays on the line it showed (or follows the end)."""
        first = self._line_at(int(self.scroll_y))
        self.only = text
        self.match_total = self._count_matches()
        self._relayout(first)

    @property
    def match_text(self) -> str:
        """Where the search is: `/slow: match 3 of 12 (n next, N previous, esc clears)`."""
        if not self.match_total:
            return f"/{self.pattern}: no match in the {len(self.lines)} lines held"
        where = f"match {self.match_ordinal()} of {self.match_total}" if self.match_index is not None else \
            f"{self.match_total} matches"
        return f"/{self.pattern}: {where} (n next, N previous, esc clears)"

    def match_ordinal(self) -> int:
        """The current match's place among the matching lines, counted from the top (1-based)."""
        if self.match_index is None or self.match_index < self.dropped:
            return 0
        return self._count_matches(self.match_index - self.dropped)

    def _changed(self) -> None:
        self.post_message(self.StateChanged())

    def set_follow(self, on: bool) -> None:
        if on != self.follow:
            self.follow = on
            self._changed()
        if on:
            self._to_end()

    # ---- data

    def append(self, new: Iterable[LogLine]) -> None:
        if not self.loaded:
            self.loaded = True
            self._changed()
        added = 0
        maxlen = self.lines.maxlen or 0
        total = self.match_total
        for line in new:
            if len(self.lines) == maxlen:
                self.dropped += 1
                if self._is_match(self.lines[0].text):
                    self.match_total -= 1
            self.lines.append(line)
            if self._is_match(line.text):
                self.match_total += 1
            added += 1
            if len(line.text) > self._width:
                self._width = min(len(line.text), 2000)
        if not added:
            return
        if len(self.lines) == added or self.match_total != total or self.only:
            self._changed()  # no longer empty, or the match count (or the filter's) moved
        self._update_size()
        if self.follow:
            self._to_end()
        self.refresh()

    def _to_end(self) -> None:
        self.scroll_end(animate=False, immediate=False, x_axis=False)

    def on_resize(self) -> None:
        if self._mapped:
            self._update_size()
        if self.follow:
            self.call_after_refresh(self._to_end)

    def clear(self) -> None:
        self.lines.clear()
        self.dropped = 0
        self.match_index = None
        self.match_total = 0
        self.loaded = False
        self._width = 0
        self._update_size()
        self.refresh()
        self._changed()

    def _update_size(self) -> None:
        stamp = STAMP if self.show_timestamps else 0
        if not self._mapped:
            self._rows = []
            self.virtual_size = Size(self._width + stamp + 1, len(self.lines))
            return
        width = max(10, self.scrollable_content_region.width - stamp)
        self._row_width = width
        rows: list[tuple[int, int]] = []
        for index, line in enumerate(self.lines):
            if not self._searchable(line.text):
                continue
            if not self.wrap:
                rows.append((index, 0))
                continue
            length = len(line.text.replace("\t", "    "))
            rows.extend((index, start) for start in range(0, max(length, 1), width))
        self._rows = rows
        self.virtual_size = Size(self.scrollable_content_region.width if self.wrap else self._width + stamp + 1,
                                 len(rows))

    def set_timestamps(self, on: bool) -> None:
        self.show_timestamps = on
        self._update_size()
        self.refresh()

    def set_wrap(self, on: bool) -> None:
        """Long lines wrap at the view's width (no horizontal scrolling) or run off to the right."""
        first = self._line_at(int(self.scroll_y))
        self.wrap = on
        self.scroll_x = 0
        self._relayout(first)

    def _relayout(self, first: int) -> None:
        """After a change of which lines show or how they wrap: rows measured again, and the view
        back on line `first` (or at the end, following)."""
        self._update_size()
        if self.follow:
            self._to_end()
        else:
            self.scroll_to(y=self._row_of(first), animate=False)
        self.refresh()
        self._changed()

    def _line_at(self, row: int) -> int:
        if not self._mapped:
            return row
        return self._rows[row][0] if 0 <= row < len(self._rows) else 0

    def _row_of(self, index: int) -> int:
        """The first screen row of line `index` (or of the next line shown, under the filter)."""
        if not self._mapped:
            return index
        return bisect.bisect_left(self._rows, (index, 0))

    # ---- scrolling by the user pauses following; End resumes it

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # moving up, and not merely clamped to a new end (a resize): the user is reading back
        if self.follow and new_value < old_value and new_value < self.max_scroll_y:
            self.follow = False
            self._changed()

    def action_scroll_end(self) -> None:
        self.set_follow(True)

    def action_scroll_home(self) -> None:
        self.set_follow(False)
        super().action_scroll_home()

    # ---- search

    def search(self, pattern: str, forward: bool = True) -> bool:
        """Move to the next (or previous) line containing `pattern`; stops following. False when none."""
        if pattern != self.pattern:
            self.pattern = pattern
            self.match_index = None
            self.match_total = self._count_matches()
        if not pattern or not self.lines:
            self.match_index = None
            self.refresh()
            self._changed()
            return False
        n = len(self.lines)
        if self.match_index is not None and self.match_index >= self.dropped:
            start = self.match_index - self.dropped
        else:
            start = n - 1 if forward else 0
        for step in range(1, n + 1):
            i = (start + step) % n if forward else (start - step) % n
            if self._is_match(self.lines[i].text):
                if self.follow:
                    self.follow = False
                    self._changed()
                self.match_index = self.dropped + i
                self.scroll_to(y=max(0, self._row_of(i) - self.size.height // 2), animate=False)
                self.refresh()
                self._changed()
                return True
        self.match_index = None
        self.refresh()
        self._changed()
        return False

    def clear_search(self) -> None:
        """No pattern, no highlight (esc after a search)."""
        self.pattern = ""
        self.match_index = None
        self.match_total = 0
        self.refresh()
        self._changed()

    # ---- drawing

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = scroll_y + y
        width = self.size.width
        if self._mapped:
            if row >= len(self._rows):
                return Strip.blank(width, self.rich_style)
            index, start = self._rows[row]
        else:
            index, start = row, 0
        if index >= len(self.lines):
            return Strip.blank(width, self.rich_style)
        line = self.lines[index]
        base = self.rich_style
        text_style = base + self.get_component_rich_style(
            "logview--stderr" if line.stream == "stderr" else "logview--stdout")
        segments: list[Segment] = []
        if self.show_timestamps:
            ts = (line.time or "").ljust(30)[:30] if start == 0 else " " * 30
            segments.append(Segment(ts + " ", base + self.get_component_rich_style("logview--timestamp")))
        if self.match_index == self.dropped + index:
            text_style = text_style + self.get_component_rich_style("logview--current")
        text = line.text.replace("\t", "    ")
        if self.wrap:
            text = text[start:start + self._row_width]
        segments.extend(self._highlight(text, text_style))
        strip = Strip(segments).crop(scroll_x, scroll_x + width)
        return strip.extend_cell_length(width, base)

    def _highlight(self, text: str, style: Style) -> list[Segment]:
        text = text.replace("\t", "    ")
        if not self.pattern:
            return [Segment(text, style)]
        match_style = style + self.get_component_rich_style("logview--match")
        out: list[Segment] = []
        lower, needle = text.lower(), self.pattern.lower()
        pos = 0
        while True:
            hit = lower.find(needle, pos)
            if hit < 0:
                out.append(Segment(text[pos:], style))
                return out
            out.append(Segment(text[pos:hit], style))
            out.append(Segment(text[hit:hit + len(needle)], match_style))
            pos = hit + len(needle)
