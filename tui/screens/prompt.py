"""A small form dialog: a title, a few labelled inputs, OK and Cancel. Dismissed with the values
by field id, or None. Used where an action needs a name (new network, connect a container)."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


@dataclass(frozen=True)
class Field:
    id: str
    label: str
    value: str = ""
    placeholder: str = ""
    required: bool = True


class PromptDialog(ModalScreen[dict[str, str] | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, fields: tuple[Field, ...], ok: str = "OK") -> None:
        super().__init__()
        self.title_text = title
        self.fields = fields
        self.ok = ok

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt", classes="dialog"):
            yield Static(self.title_text, classes="dialog-title")
            for f in self.fields:
                yield Label(f.label)
                yield Input(f.value, placeholder=f.placeholder, id=f"prompt-{f.id}")
            yield Static("", id="prompt-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.ok} (enter)", id="prompt-ok", variant="primary")
                yield Button("Cancel (esc)", id="prompt-cancel")

    def on_mount(self) -> None:
        self.query_one("#prompt-error").display = False
        self.query_one(f"#prompt-{self.fields[0].id}", Input).focus()

    def values(self) -> dict[str, str]:
        return {f.id: self.query_one(f"#prompt-{f.id}", Input).value.strip() for f in self.fields}

    @on(Input.Submitted)
    @on(Button.Pressed, "#prompt-ok")
    def _ok(self) -> None:
        values = self.values()
        missing = [f for f in self.fields if f.required and not values[f.id]]
        if missing:
            error = self.query_one("#prompt-error", Static)
            error.update(f"✗ {missing[0].label.rstrip(':')} is required")
            error.display = True
            self.query_one(f"#prompt-{missing[0].id}", Input).focus()
            return
        self.dismiss(values)

    @on(Button.Pressed, "#prompt-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
