"""Run dialog: the `dockui run` options as a form, validated as the CLI validates, errors inline."""

from __future__ import annotations

import shlex

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Static, Switch

from tui.backend import RunRequest, validate_run

FIELDS = (
    ("image", "Image", "busybox:latest (tab completes from the store)"),
    ("name", "Name", "optional, e.g. web"),
    ("command", "Command", "optional, e.g. httpd -f -p 80"),
    ("env", "Env (-e)", "KEY=value KEY2='two words'"),
    ("publish", "Ports (-p)", "127.0.0.1:8080:80 9000:9000/udp"),
    ("volumes", "Volumes (-v)", "/srv/www:/www:ro data:/data"),
    ("memory", "Memory (-m)", "e.g. 64m"),
    ("cpus", "CPUs", "e.g. 0.5"),
    ("pids_limit", "PIDs limit", "e.g. 100"),
    ("network", "Network", "bridge (default), none, host, container:NAME"),
    ("links", "Links", "NAME[:ALIAS] ..."),
)
LISTS = ("env", "publish", "volumes", "links")


class RunDialog(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "close", "Cancel"), Binding("ctrl+r", "submit", "Run")]

    def __init__(self, image: str = "", images: list[str] | None = None) -> None:
        super().__init__()
        self.image = image
        self.images = images or []

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="run", classes="dialog"):
            yield Static("Run a container", classes="dialog-title")
            for key, label, placeholder in FIELDS:
                with Horizontal(classes="field"):
                    yield Label(label, classes="field-label")
                    suggester = SuggestFromList(self.images, case_sensitive=False) if key == "image" else None
                    yield Input(self.image if key == "image" else "", placeholder=placeholder, id=f"run-{key}",
                                suggester=suggester)
                yield Static("", id=f"run-{key}-error", classes="error field-error")
            with Horizontal(classes="field"):
                yield Label("Detach (-d)", classes="field-label")
                yield Switch(True, id="run-detach")
                yield Label("Remove on exit (--rm)", classes="field-label")
                yield Switch(False, id="run-remove")
            yield Static("", id="run-form-error", classes="error")
            yield Static("", id="run-argv", classes="argv")
            with Horizontal(classes="buttons"):
                yield Button("Run (ctrl+r)", id="run-start", variant="primary")
                yield Button("Cancel", id="run-cancel")

    def on_mount(self) -> None:
        for key, *_ in FIELDS:
            self.query_one(f"#run-{key}-error").display = False
        self.query_one("#run-form-error").display = False
        self.query_one("#run-image" if not self.image else "#run-name", Input).focus()
        self._preview()

    def request(self) -> RunRequest:
        def value(key: str) -> str:
            return self.query_one(f"#run-{key}", Input).value.strip()

        def items(key: str) -> list[str]:
            try:
                return shlex.split(value(key))
            except ValueError:
                return [value(key)]

        return RunRequest(image=value("image"), name=value("name"), command=value("command"), env=items("env"),
                          publish=items("publish"), volumes=items("volumes"), memory=value("memory"),
                          cpus=value("cpus"), pids_limit=value("pids_limit"), network=value("network"),
                          links=items("links"), detach=self.query_one("#run-detach", Switch).value,
                          remove=self.query_one("#run-remove", Switch).value)

    def _preview(self) -> None:
        try:
            line = "dockui " + shlex.join(self.request().argv())
        except ValueError as exc:
            line = str(exc)
        self.query_one("#run-argv", Static).update(line)

    @on(Input.Changed)
    @on(Switch.Changed)
    def _changed(self) -> None:
        self._preview()

    def show_errors(self, errors: dict[str, str]) -> None:
        for key, *_ in FIELDS:
            widget = self.query_one(f"#run-{key}-error", Static)
            widget.display = key in errors
            if key in errors:
                widget.update(f"✗ {errors[key]}")
        form = self.query_one("#run-form-error", Static)
        form.display = "form" in errors
        if "form" in errors:
            form.update(f"✗ {errors['form']}")
        self._reveal(errors)

    def _reveal(self, errors: dict[str, str]) -> None:
        """Bring the first error into view and put the cursor in its field: at 80x24 the form is
        taller than the screen, and an error drawn below it is as good as none."""
        first = next((key for key, *_ in FIELDS if key in errors), None)
        if first is not None:
            field = self.query_one(f"#run-{first}", Input)
            self.set_focus(field, scroll_visible=False)  # now, with the error (Widget.focus defers it)
            shown = (self.query_one(f"#run-{first}-error", Static), field)  # the error, then its field above it
        elif "form" in errors:
            shown = (self.query_one("#run-form-error", Static),)
        else:
            return

        def reveal() -> None:
            for widget in shown:
                widget.scroll_visible(animate=False, immediate=True)

        self.call_after_refresh(reveal)

    @on(Input.Submitted)
    @on(Button.Pressed, "#run-start")
    def action_submit(self) -> None:
        request = self.request()
        errors = validate_run(request)
        self.show_errors(errors)
        if errors:
            return
        if not request.detach:
            self.show_errors({"form": "attached runs need a terminal: use `dockui run -it` outside the TUI, "
                                      "or keep Detach on and use e (shell) / l (logs)"})
            return
        self.query_one("#run-start", Button).disabled = True
        self.query_one("#run-argv", Static).update("starting…")
        self._run(request)

    @work(thread=True, exclusive=True, group="run")
    def _run(self, request: RunRequest) -> None:
        try:
            container_id = self.app.backend.run(request)  # type: ignore[attr-defined]
        except Exception as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        self.app.call_from_thread(self.dismiss, container_id or "")

    def _failed(self, message: str) -> None:
        self.query_one("#run-start", Button).disabled = False
        self.show_errors({"form": message})
        self._preview()

    @on(Button.Pressed, "#run-cancel")
    def action_close(self) -> None:
        self.dismiss(None)
