"""What every refreshing screen offers the app's single refresh loop, and the keys of a screen built
round one list (its DataTable `LIST`, with its filter box `FILTER` where it has one): j/k, `/`, and
the filter `:VIEW TEXT` gives."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.screen import Screen
from textual.widgets import DataTable, Input

if TYPE_CHECKING:
    from tui.app import DockuiApp
    from tui.backend import Backend

Job = Callable[["Backend"], Any]


class DataScreen(Screen[None]):
    """A screen the refresh loop feeds: `refresh_job` (UI thread) says what to fetch, the job runs in
    a worker thread, and `apply_data` (UI thread) draws the result."""

    loaded = False  # at least one refresh applied (tests wait on it)
    LIST = ""  # the id of the screen's main DataTable, if it has one
    FILTER = ""  # the id of the Input filtering it, if it has one

    @property
    def dockui(self) -> DockuiApp:
        return self.app  # type: ignore[return-value]

    def refresh_job(self) -> Job | None:
        return None

    def apply_data(self, data: Any) -> None:
        self.loaded = True

    def set_filter_text(self, text: str) -> None:
        """Show only what `text` matches, as the screen's `/` would (`:images TEXT`): the box shown and
        filled, the keyboard on the list. Screens without a filter ignore it."""
        if self.FILTER:
            box = self.query_one(f"#{self.FILTER}", Input)
            box.display = True
            box.value = text
            self.query_one(f"#{self.LIST}").focus()

    def action_filter(self) -> None:
        box = self.query_one(f"#{self.FILTER}", Input)
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """enter in the filter box: the keyboard back on the list; an empty filter closes the box."""
        if self.FILTER and event.input.id == self.FILTER:
            self.query_one(f"#{self.LIST}").focus()
            if not event.value:
                event.input.display = False

    def clear_filter(self) -> bool:
        """esc while the filter box shows: emptied and closed, the keyboard back on the list. False when
        it was not showing (esc then means something else)."""
        box = self.query_one(f"#{self.FILTER}", Input)
        if not box.display:
            return False
        box.value = ""
        box.display = False
        self.query_one(f"#{self.LIST}").focus()
        return True

    def action_cursor_down(self) -> None:
        self.query_one(f"#{self.LIST}", DataTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one(f"#{self.LIST}", DataTable).action_cursor_up()

    def on_screen_resume(self) -> None:
        self.dockui.refresh_now()
