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
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        keys = self.app._keymap  # the effective keys after the user's remapping
        text = Text()
        text.append("dockui keys", style="bold")
        text.append("  (remap in /etc/dockui/tui.json or <root>/tui.json; every action is also in the "
                    "command palette, ctrl+p)\n\n", style="dim")
        titles = {"app": "Everywhere", "containers": "Containers (1)", "detail": "Container detail (4)",
                  "images": "Images (2)", "network": "Network (3)", "volumes": "Volumes (5)", "events": "Events (6)"}
        for screen, action_ids in keymap.SCREEN_ACTIONS.items():  # grouped by the screen they act on
            text.append(f"{titles.get(screen, screen)}\n", style="bold underline")
            for action_id in action_ids:
                default, _, description, _ = keymap.DEFAULTS[action_id]
                effective = keys.get(f"dockui.{action_id}", default)
                text.append(f"{keymap.describe(effective):>10}  ", style="bold")
                text.append(f"{description}\n")
            text.append("\n")
        text.append("\n     arrows  move      tab  next panel      enter  open detail      ctrl+p  command palette\n")
        text.append("\nCPU % is of one core, as docker stats counts it. Container actions are offered only where\n"
                    "the container's state allows them.", style="dim")
        with VerticalScroll(id="help", classes="dialog"):
            yield Static(text, id="help-text")
            yield Button("Close (esc)", id="close")

    def on_button_pressed(self) -> None:
        self.dismiss()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss()
