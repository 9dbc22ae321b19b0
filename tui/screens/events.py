"""Events: the engine's event log live (what `dockui events` prints), newest at the bottom, as a table
(time, type, action, the actor's name and ID, its other attributes). The last hour is shown when the
screen first opens, then each refresh appends what the engine logged since (the backend keeps one
follower on the log: nothing is read twice, nothing is read while the screen is not shown).

`/` filters (words ANDed over type, action, name, ID and attributes; esc clears); `E` on the
containers or detail screen opens it filtered by that container's name.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.widgets import DataTable, Footer, Input, Static

from tui import keymap
from tui.backend import EventView
from tui.screens.base import DataScreen, Job
from tui.widgets.nav import NavBar

KEPT = 2000  # events held for the table (the log itself is the engine's, bounded by its rotation)
# Fixed widths: nothing to measure as rows arrive (longer cells are cut; DETAILS scrolls sideways).
COLUMNS = (("TIME", 8), ("TYPE", 9), ("ACTION", 24), ("NAME", 24), ("ID", 12), ("DETAILS", 160))
ACTION_STYLES = {"die": "bold $error", "oom": "bold $error", "kill": "$warning", "stop": "$warning",
                 "start": "$success", "create": "$primary", "destroy": "dim", "health_status": "$warning"}


def event_matches(event: EventView, words: list[str]) -> bool:
    hay = " ".join((event.type, event.action, event.name, event.actor_id[:12], event.details)).lower()
    return all(word in hay for word in words)


class EventsScreen(DataScreen):
    BINDINGS = keymap.bindings(*keymap.SCREEN_ACTIONS["events"])
    LIST, FILTER = "events", "events-filter"

    def __init__(self) -> None:
        super().__init__()
        self.events: deque[EventView] = deque(maxlen=KEPT)
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        yield NavBar("events", id="nav")
        yield Static("", id="events-state")
        yield Input(placeholder="filter: container name, ID, action or type (esc clears)", id="events-filter")
        yield DataTable(id="events", cursor_type="row")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one("#events", DataTable)
        for title, width in COLUMNS:
            table.add_column(title, key=title.lower(), width=width)
        self.query_one("#events-filter").display = False
        table.focus()
        self._state()
        self.take_filter()

    def on_screen_resume(self) -> None:
        self.take_filter()
        super().on_screen_resume()

    def take_filter(self) -> None:
        """The filter `E` asked for on another screen, if any (once)."""
        wanted, self.dockui.events_filter = self.dockui.events_filter, None
        if wanted is not None:
            self.set_filter(wanted)

    def refresh_job(self) -> Job | None:
        return lambda backend: backend.events()

    def apply_data(self, data: Any) -> None:
        fresh: list[EventView] = data
        self.events.extend(fresh)
        table = self.query_one("#events", DataTable)
        at_end = table.cursor_row >= table.row_count - 1
        added = self._add_rows(fresh)
        while table.row_count > KEPT:
            table.remove_row(next(iter(table.rows)))
        if added and at_end:  # follow the end unless the user moved up
            table.move_cursor(row=table.row_count - 1, animate=False)
        if added or not self.loaded:
            self._state()
        super().apply_data(data)

    def set_filter(self, text: str) -> None:
        """Show only the events every word of `text` matches (the screen's `/`, or `E` elsewhere)."""
        self.filter_text = text.strip().lower()
        box = self.query_one("#events-filter", Input)
        if box.value != text:
            box.value = text
        box.display = bool(text)
        table = self.query_one("#events", DataTable)
        table.clear()
        self._add_rows(self.events)
        if table.row_count:
            table.move_cursor(row=table.row_count - 1, animate=False)
        self._state()

    def _add_rows(self, events: Iterable[EventView]) -> int:
        """The rows of the events the filter lets through; how many."""
        table = self.query_one("#events", DataTable)
        words = self.filter_text.split()
        added = 0
        for event in events:
            if event_matches(event, words):
                table.add_row(*self._cells(event))
                added += 1
        return added

    def _state(self) -> None:
        shown = self.query_one("#events", DataTable).row_count
        what = f" matching {self.filter_text!r}" if self.filter_text else ""
        self.query_one("#events-state", Static).update(
            f"{shown} event(s){what} of {len(self.events)} since the last hour · live · / filters, esc clears")

    def _cells(self, event: EventView) -> tuple[Any, ...]:
        stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
        style = ACTION_STYLES.get(event.action.split(":")[0], "")
        return (Text(stamp, style="dim"), event.type, Text(event.action, style=self._style(style)),
                event.name, event.actor_id.removeprefix("sha256:")[:12], event.details)

    def _style(self, spec: str) -> str:
        """Theme variables ($error ...) in a style, as the theme defines them."""
        if "$" not in spec:
            return spec
        variables = self.app.theme_variables
        return " ".join(variables.get(word[1:], "") if word.startswith("$") else word for word in spec.split())

    @on(Input.Changed, "#events-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if event.value.strip().lower() != self.filter_text:
            self.set_filter(event.value)

    def key_escape(self) -> None:
        if self.query_one("#events-filter", Input).display:
            self.set_filter("")
            self.query_one("#events", DataTable).focus()
