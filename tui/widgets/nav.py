"""The top line: which screen is shown and the keys that switch screens."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

SCREENS = (("1", "containers", "Containers"), ("2", "images", "Images"), ("3", "network", "Network"),
           ("4", "detail", "Detail"))


class NavBar(Static):
    def __init__(self, current: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.current = current
        self.extra = ""

    def on_mount(self) -> None:
        self._draw()

    def set_extra(self, extra: str) -> None:
        if extra != self.extra:
            self.extra = extra
            self._draw()

    def _draw(self) -> None:
        text = Text()
        text.append(" dockui ", style="bold reverse")
        for key, name, title in SCREENS:
            text.append("  ")
            if name == self.current:
                text.append(f"{key} {title}", style="bold underline")
            else:
                text.append(f"{key} ", style="dim")
                text.append(title, style="dim")
        if self.extra:
            text.append("   ")
            text.append(self.extra, style="italic")
        self.update(text)
