"""The top line: which screen is shown, the keys that switch screens, and the app-wide keys (pull, run,
help, quit, as remapped), so the footer below can give its width to the selection's keys."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui import keymap

SCREENS = (("1", "containers", "Containers"), ("2", "images", "Images"), ("3", "network", "Network"),
           ("4", "detail", "Detail"), ("5", "volumes", "Volumes"), ("6", "events", "Events"))
WIDE = 90  # below, the events screen's entry is left out (its key works; help lists it)


class NavBar(Static):
    def __init__(self, current: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.current = current

    def on_mount(self) -> None:
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        text = Text()
        if self.size.width >= WIDE:  # at 80 columns the screens and the app keys need every cell
            text.append(" dockui ", style="bold reverse")
        for key, name, title in SCREENS:
            if name == "events" and self.size.width < WIDE and self.current != "events":
                continue
            text.append(" ")
            if name == self.current:
                text.append(f"{key} {title}", style="bold underline")
            else:
                text.append(f"{key} ", style="dim")
                text.append(title, style="dim")
        overrides = getattr(self.app, "key_overrides", {})
        hints = Text()
        for action_id in keymap.NAV_KEYS:
            keys = overrides.get(f"dockui.{action_id}", keymap.DEFAULTS[action_id][0])
            hints.append(" ")
            hints.append(keymap.describe(keys).split(",")[0], style="bold")
            hints.append(" " + keymap.DEFAULTS[action_id][2])
        gap = self.size.width - text.cell_len - hints.cell_len
        text.append(" " * max(1, gap))
        text.append_text(hints)
        self.update(text)
