"""A bounded log viewer: keeps the last `max_lines` lines whatever the log's length.

Draws only the visible rows (line API), colours stdout and stderr apart, toggles timestamps, follows
the end, and searches with next/previous over what it holds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.backend import LogLine

DEFAULT_MAX_LINES = 10_000


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
        self._width = 0

    # ---- data

    def append(self, new: Iterable[LogLine]) -> None:
        added = 0
        maxlen = self.lines.maxlen or 0
        for line in new:
            if len(self.lines) == maxlen:
                self.dropped += 1
            self.lines.append(line)
            added += 1
            if len(line.text) > self._width:
                self._width = min(len(line.text), 2000)
        if not added:
            return
        self._update_size()
        if self.follow:
            self._to_end()
        self.refresh()

    def _to_end(self) -> None:
        self.scroll_end(animate=False, immediate=False, x_axis=False)

    def on_resize(self) -> None:
        if self.follow:
            self.call_after_refresh(self._to_end)

    def clear(self) -> None:
        self.lines.clear()
        self.dropped = 0
        self.match_index = None
        self._width = 0
        self._update_size()
        self.refresh()

    def _update_size(self) -> None:
        stamp = 31 if self.show_timestamps else 0
        self.virtual_size = Size(self._width + stamp + 1, len(self.lines))

    def set_timestamps(self, on: bool) -> None:
        self.show_timestamps = on
        self._update_size()
        self.refresh()

    # ---- search

    def search(self, pattern: str, forward: bool = True) -> bool:
        """Move to the next (or previous) line containing `pattern`; stops following. False when none."""
        self.pattern = pattern
        if not pattern or not self.lines:
            self.match_index = None
            self.refresh()
            return False
        needle = pattern.lower()
        n = len(self.lines)
        if self.match_index is not None and self.match_index >= self.dropped:
            start = self.match_index - self.dropped
        else:
            start = n - 1 if forward else 0
        for step in range(1, n + 1):
            i = (start + step) % n if forward else (start - step) % n
            if needle in self.lines[i].text.lower():
                self.follow = False
                self.match_index = self.dropped + i
                self.scroll_to(y=max(0, i - self.size.height // 2), animate=False)
                self.refresh()
                return True
        self.match_index = None
        self.refresh()
        return False

    # ---- drawing

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        if index >= len(self.lines):
            return Strip.blank(width, self.rich_style)
        line = self.lines[index]
        base = self.rich_style
        text_style = base + self.get_component_rich_style(
            "logview--stderr" if line.stream == "stderr" else "logview--stdout")
        segments: list[Segment] = []
        if self.show_timestamps:
            ts = (line.time or "").ljust(30)[:30]
            segments.append(Segment(ts + " ", base + self.get_component_rich_style("logview--timestamp")))
        if self.match_index == self.dropped + index:
            text_style = text_style + self.get_component_rich_style("logview--current")
        segments.extend(self._highlight(line.text, text_style))
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
