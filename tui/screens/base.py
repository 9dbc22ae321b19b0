"""What every refreshing screen offers the app's single refresh loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.screen import Screen

if TYPE_CHECKING:
    from tui.app import DockuiApp
    from tui.backend import Backend

Job = Callable[["Backend"], Any]


class DataScreen(Screen[None]):
    """A screen the refresh loop feeds: `refresh_job` (UI thread) says what to fetch, the job runs in
    a worker thread, and `apply_data` (UI thread) draws the result."""

    loaded = False  # at least one refresh applied (tests wait on it)

    @property
    def dockui(self) -> DockuiApp:
        return self.app  # type: ignore[return-value]

    def refresh_job(self) -> Job | None:
        return None

    def apply_data(self, data: Any) -> None:
        self.loaded = True

    def set_filter_text(self, text: str) -> None:
        """Show only what `text` matches, as the screen's `/` would (`:images TEXT`); screens without a
        filter ignore it."""

    def on_screen_resume(self) -> None:
        self.dockui.refresh_now()
