"""A footer that shows a screen's optional keys where they fit.

Textual's Footer shows every binding marked `show`, in order, and cuts what runs past the right edge.
The home screen's footer is exactly full at 80 columns with the selection's keys, so `a` attach and
`X` prune used to be left out at every width. Here they are `optional`, in order of value: each is
shown if it fits beside the keys always shown and the optional ones already taken, and left out
otherwise (help and the command palette list them all the same). The footer is composed again when
the terminal's width changes.
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


def key_cells(key: FooterKey) -> int:
    """Cells a compact footer key takes: the key, a space, the description and its right margin."""
    return len(key.key_display) + (1 + len(key.description) if key.description else 0) + 1


class FittingFooter(Footer):
    def __init__(self, optional: tuple[str, ...] = (), *, id: str | None = None) -> None:
        super().__init__(compact=True, show_command_palette=False, id=id)
        self.optional = optional  # binding actions, most valuable first
        self._width = 0

    def compose(self) -> ComposeResult:
        widgets = list(super().compose())
        keys = [w for w in widgets if isinstance(w, FooterKey)]
        room = self.app.size.width + 1  # the last key's right margin may fall off the edge
        used = sum(key_cells(k) for k in keys if k.action not in self.optional)
        shown: set[str] = set()
        for action in self.optional:
            key = next((k for k in keys if k.action == action), None)
            if key is not None and used + key_cells(key) <= room:
                used += key_cells(key)
                shown.add(action)
        yield from (w for w in widgets if not isinstance(w, FooterKey) or w.action not in self.optional
                    or w.action in shown)

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            self.call_after_refresh(self.recompose)
