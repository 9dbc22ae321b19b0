"""Small modal dialogs: confirmation and the help listing."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tui import keymap


class ConfirmDialog(ModalScreen[bool]):
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str, yes: str = "Remove") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm", classes="dialog"):
            yield Static(self.question, id="confirm-question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class HelpScreen(ModalScreen[None]):
    """Every key: the screen in view's first (its bindings as it holds them, so none is left out, and
    the keys its widgets take: enter, esc, tab, End...), then the app-wide ones, then the other screens'."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, screen: str | None = None, bindings: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.screen_name = screen  # the mode in view (containers, detail, ...), or None
        self.screen_bindings = bindings  # its action ids, in its own order

    def compose(self) -> ComposeResult:
        keys = self.app._keymap  # the effective keys after the user's remapping
        text = Text()
        text.append("dockui keys", style="bold")
        text.append("  (remap in /etc/dockui/tui.json or <root>/tui.json; every action is also in the "
                    "command palette, ctrl+p)\n\n", style="dim")

        def section(title: str, action_ids: tuple[str, ...], screen: str | None) -> None:
            text.append(f"{title}\n", style="bold underline")
            for action_id in action_ids:
                default, _, description, _ = keymap.DEFAULTS[action_id]
                effective = keys.get(f"dockui.{action_id}", default)
                text.append(f"{keymap.describe(effective):>10}  ", style="bold")
                text.append(f"{keymap.help_text(action_id, screen)}\n")
            for key, description in keymap.WIDGET_KEYS.get(screen or "", ()):
                text.append(f"{key:>10}  ", style="bold")
                text.append(f"{description}\n")
            text.append("\n")

        here = self.screen_name
        if here is not None:
            own = self.screen_bindings or keymap.SCREEN_ACTIONS.get(here, ())
            section(f"This screen: {keymap.SCREEN_TITLES.get(here, here)}", own, here)
        section(keymap.SCREEN_TITLES["app"], keymap.SCREEN_ACTIONS["app"], None)
        for screen, action_ids in keymap.SCREEN_ACTIONS.items():  # the other screens, for reference
            if screen not in ("app", here):
                section(keymap.SCREEN_TITLES.get(screen, screen), action_ids, screen)
        text.append("CPU % is of one core, as docker stats counts it. Container actions are offered only where\n"
                    "the container's state allows them.", style="dim")
        with VerticalScroll(id="help", classes="dialog"):
            yield Static(text, id="help-text")
            yield Button("Close (esc)", id="close")

    def on_button_pressed(self) -> None:
        self.dismiss()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss()
