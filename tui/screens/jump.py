"""The `:` prompt, as k9s's: type a view's name (or any prefix of it, or an alias) and enter goes there,
with an optional argument: `:images busy` opens Images filtered by "busy", `:logs web` the Logs tab of
the container named web, `:pull alpine:3` the pull dialog with that reference.

`resolve` is the whole grammar, a pure function: text in, a `Jump` or the one-line reason it is not one
out. The prompt stays open with that reason under the input until the text resolves or esc closes it,
so a typo never sends the user somewhere unexpected.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Static


@dataclass(frozen=True)
class Target:
    """A place `:` can go: its name, the short names k9s and docker users type, what an argument means."""

    name: str
    aliases: tuple[str, ...]
    argument: str  # what a word after the name is ("" = takes none)


TARGETS = (
    Target("containers", ("ps", "co", "ct", "1"), "filter"),
    Target("images", ("img", "im", "2"), "filter"),
    Target("networks", ("net", "network", "3"), ""),
    Target("detail", ("4",), "container"),
    Target("logs", ("log",), "container"),
    Target("volumes", ("vol", "5"), "filter"),
    Target("events", ("ev", "6"), "filter"),
    Target("pull", (), "reference"),
    Target("run", (), "image"),
    Target("help", ("?",), ""),
    Target("quit", ("q", "q!"), ""),
)
NAMES = tuple(t.name for t in TARGETS)


@dataclass(frozen=True)
class Jump:
    target: str  # a Target's name
    argument: str = ""


def resolve(text: str) -> Jump | str:
    """`text` (without the colon) as a Jump, or why it is none, in words."""
    words = text.strip().removeprefix(":").split(maxsplit=1)
    if not words:
        return f"type a view: {', '.join(NAMES)}"
    word, argument = words[0].lower(), (words[1].strip() if len(words) > 1 else "")
    exact = [t for t in TARGETS if word == t.name or word in t.aliases]
    found = exact or [t for t in TARGETS if t.name.startswith(word) or any(a.startswith(word) for a in t.aliases)]
    if not found:
        return f"no view {word!r}: {', '.join(NAMES)}"
    if len(found) > 1:
        return f"{word!r} could be {' or '.join(t.name for t in found)}"
    target = found[0]
    if argument and not target.argument:
        return f"{target.name} takes no argument"
    return Jump(target.name, argument)


class JumpPrompt(ModalScreen[Jump | None]):
    """One line at the top, over the screen in view (which stays visible, as k9s's prompt)."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="jump"):
            yield Input(placeholder="images, volumes, net, events, logs NAME, pull, run, q… (tab completes)",
                        suggester=SuggestFromList(NAMES, case_sensitive=False), id="jump-input")
            yield Static("", id="jump-error", classes="error")

    def on_mount(self) -> None:
        self.query_one("#jump-error").display = False
        self.query_one("#jump-input", Input).focus()

    def on_key(self, event: events.Key) -> None:
        """Keys typed right after `:` (`:logs web` at typing speed) can arrive before the input has
        the focus: they go into it rather than being lost."""
        box = self.query_one("#jump-input", Input)
        if box.has_focus:
            return
        if event.key == "enter":
            event.stop()
            box.focus()
            self._submit(box.value)
        elif event.is_printable and event.character:
            event.stop()
            box.insert_text_at_cursor(event.character)
            box.focus()

    @on(Input.Submitted, "#jump-input")
    def _go(self, event: Input.Submitted) -> None:
        self._submit(event.value)

    def _submit(self, text: str) -> None:
        result = resolve(text)
        if isinstance(result, Jump):
            self.dismiss(result)
            return
        error = self.query_one("#jump-error", Static)
        error.update(f"✗ {result}")
        error.display = True

    def action_close(self) -> None:
        self.dismiss(None)
