"""Pull dialog: a validated reference, one progress bar per layer, overall progress, cancel.

The pull runs in a worker thread; its events are folded into per-layer state and handed to the UI
at most ten times a second (and on every change of state), so a fast registry cannot flood the app.
Cancel sets the engine's cancel event: the engine stops between chunks and commits nothing partial.

The overall bar counts each layer's download and extraction as the two halves of one figure, and
never goes back (the engine's Extracting events restart at 0 bytes after a layer's download).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, ProgressBar, Static

from engine.errors import DockuiError
from engine.util.units import human_size
from tui.backend import PullProgress, validate_reference

STATES = {
    "Pulling fs layer": "waiting", "Waiting": "waiting", "Downloading": "downloading",
    "Verifying Checksum": "verifying", "Download complete": "downloaded", "Extracting": "extracting",
    "Pull complete": "done", "Already exists": "already exists",
}
FINISHED = ("done", "already exists")
# how requests/urllib3 say that a name did not resolve (no network, no DNS)
NO_NAME = ("NameResolutionError", "Name or service not known", "Temporary failure in name resolution",
           "No address associated with hostname", "Failed to resolve", "nodename nor servname")


def pull_error_text(error: str) -> tuple[str, bool]:
    """The sentence the dialog shows for an engine error, and whether the registry was unreachable
    (then the host's busybox import is offered). The engine's full words stay available below it."""
    match = re.match(r"cannot reach registry (\S+?):? ", error + " ")
    if match is None:
        return error, False
    host = match.group(1)
    if any(marker in error for marker in NO_NAME):
        return f"cannot reach {host} (no network?): its name does not resolve", True
    if "Connection refused" in error:
        return f"cannot reach {host}: nothing listens there (is the registry running?)", True
    if "timed out" in error or "no answer within" in error:
        return f"cannot reach {host}: no answer (no network, or a firewall?)", True
    return f"cannot reach {host}", True


def layer_fraction(state: LayerState) -> float:
    """How far one layer is, 0..1: download is the first half, extraction the second."""
    word = STATES.get(state.status, "")
    if word in FINISHED:
        return 1.0
    part = min(state.current, state.total) / state.total if state.total else 0.0
    if word == "downloading":
        return 0.5 * part
    if word in ("verifying", "downloaded"):
        return 0.5
    if word == "extracting":
        return 0.5 + 0.5 * part
    return 0.0


@dataclass
class LayerState:
    status: str
    current: int
    total: int
    speed: float = 0.0


class PullUpdate(Message):
    def __init__(self, layers: dict[str, LayerState], final: str | None = None, error: str | None = None) -> None:
        super().__init__()
        self.layers = layers
        self.final = final
        self.error = error


class LayerRow(Horizontal):
    def __init__(self, layer: str) -> None:
        super().__init__(classes="layer-row")
        self.layer_id = layer
        self.state: LayerState | None = None

    def compose(self) -> ComposeResult:
        yield Label(self.layer_id, classes="layer-id")
        yield ProgressBar(total=None, show_eta=False, show_percentage=True, classes="layer-bar")
        yield Label("waiting", classes="layer-state")

    def on_mount(self) -> None:
        if self.state is not None:
            self.set_state(self.state)

    def set_state(self, state: LayerState) -> None:
        self.state = state
        bars = self.query(ProgressBar)
        if not bars:
            return  # not composed yet: on_mount draws it
        bar = bars.first()
        word = STATES.get(state.status, state.status.lower())
        if state.total:
            done = state.total if word in ("done", "already exists", "downloaded", "extracting", "verifying") \
                else state.current
            bar.update(total=state.total, progress=done)
        elif word in FINISHED:
            bar.update(total=1, progress=1)  # size unknown (layer already in the store): full, not "busy"
        text = word
        if word == "downloading" and state.total:
            text += f" {human_size(state.current)}/{human_size(state.total)}"
            if state.speed:
                text += f" {human_size(int(state.speed))}/s"
        elif state.total:
            text += f" {human_size(state.total)}"
        self.query_one(".layer-state", Label).update(text)


class PullDialog(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel / close")]

    def __init__(self, reference: str = "") -> None:
        super().__init__()
        self.initial = reference
        self.cancel_event = threading.Event()
        self.running = False
        self.result_id: str | None = None
        self.rows: dict[str, LayerRow] = {}
        self.progress_seen: list[tuple[int, int]] = []  # (done, total) of each update drawn
        self._overall = 0.0  # the overall fraction drawn last: it only grows

    def compose(self) -> ComposeResult:
        with Vertical(id="pull", classes="dialog"):
            yield Static("Pull an image", classes="dialog-title")
            yield Input(self.initial, placeholder="busybox, user/repo:tag, host:5000/ns/repo@sha256:…", id="pull-ref",
                        select_on_focus=False)  # after a failure, typing edits the name rather than replacing it
            yield Static("", id="pull-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Pull", id="pull-start", variant="primary")
                yield Button("Cancel", id="pull-cancel")
            yield VerticalScroll(id="pull-layers")
            with Horizontal(id="pull-overall"):
                yield Label("overall", classes="layer-id")
                yield ProgressBar(total=None, show_eta=False, id="pull-overall-bar")
                yield Label("", id="pull-overall-text", classes="layer-state")
            yield Static("", id="pull-status")
            yield Static("", id="pull-detail", classes="dim")
            yield Button("Import the host's busybox instead", id="pull-import")

    def on_mount(self) -> None:
        self.query_one("#pull-overall").display = False  # shown once a pull starts
        self.query_one("#pull-detail").display = False
        self.query_one("#pull-import").display = False
        self.query_one("#pull-ref", Input).focus()
        self._validate(self.initial) if self.initial else None

    def _validate(self, text: str) -> str | None:
        error = self.query_one("#pull-error", Static)
        try:
            canonical = validate_reference(text)
        except DockuiError as exc:
            error.update(f"✗ {exc}")
            return None
        error.update(f"✓ {canonical}")
        return canonical

    @on(Input.Changed, "#pull-ref")
    def _changed(self, event: Input.Changed) -> None:
        if not self.running:
            self._validate(event.value)

    @on(Input.Submitted, "#pull-ref")
    @on(Button.Pressed, "#pull-start")
    def _start(self) -> None:
        if self.running:
            return
        if self.result_id is not None:
            self.dismiss(self.result_id)
            return
        text = self.query_one("#pull-ref", Input).value
        if self._validate(text) is None:
            return
        self.running = True
        self.query_one("#pull-detail").display = False
        self.query_one("#pull-import").display = False
        self.query_one("#pull-overall").display = True
        self.cancel_event.clear()
        self.query_one("#pull-start", Button).disabled = True
        self.query_one("#pull-ref", Input).disabled = True
        self.query_one("#pull-status", Static).update(f"pulling {text.strip()}…")
        self._pull(text.strip())

    @work(thread=True, exclusive=True, group="pull")
    def _pull(self, reference: str) -> None:
        layers: dict[str, LayerState] = {}
        lock = threading.Lock()
        last_post = 0.0
        seen: dict[str, tuple[float, int]] = {}

        def progress(event: PullProgress) -> None:
            nonlocal last_post
            if not event.layer:
                return
            now = time.monotonic()
            with lock:
                old = layers.get(event.layer)
                state = LayerState(event.status, event.current, event.total or (old.total if old else 0))
                prev = seen.get(event.layer)
                if event.status == "Downloading" and prev and now - prev[0] >= 0.5:
                    state.speed = (event.current - prev[1]) / (now - prev[0])
                    seen[event.layer] = (now, event.current)
                elif prev is None or event.status != "Downloading":
                    seen[event.layer] = (now, event.current)
                    state.speed = old.speed if old else 0.0
                else:
                    state.speed = old.speed if old else 0.0
                layers[event.layer] = state
                changed = old is None or old.status != state.status
                if changed or now - last_post >= 0.1:
                    last_post = now
                    self.post_message(PullUpdate(dict(layers)))

        try:
            image_id = self.dockui_backend().pull(reference, progress, self.cancel_event)
        except Exception as exc:  # DockuiError or an engine piece missing: shown in the dialog
            self.post_message(PullUpdate(dict(layers), error=str(exc) or type(exc).__name__))
            return
        self.post_message(PullUpdate(dict(layers), final=image_id))

    def dockui_backend(self):  # noqa: ANN201 - the app's backend
        return self.app.backend  # type: ignore[attr-defined]

    def on_pull_update(self, message: PullUpdate) -> None:
        box = self.query_one("#pull-layers", VerticalScroll)
        for layer, state in message.layers.items():
            row = self.rows.get(layer)
            if row is None:
                row = self.rows[layer] = LayerRow(layer)
                row.state = state
                box.mount(row)
            else:
                row.set_state(state)
        states = list(message.layers.values())
        total = sum(s.total for s in states)
        finished = sum(1 for s in states if STATES.get(s.status) in FINISHED)
        if total:
            fraction = sum(layer_fraction(s) * s.total for s in states) / total
        else:  # sizes unknown: whole layers (all of them already in the store, say)
            fraction = finished / len(states) if states else 0.0
        if message.final is not None:
            fraction = 1.0
        self._overall = max(self._overall, fraction)
        done = round(self._overall * total)
        self.progress_seen.append((done, total))
        if states or message.final is not None:
            self.query_one("#pull-overall-bar", ProgressBar).update(total=1000, progress=round(self._overall * 1000))
        present = sum(1 for s in states if STATES.get(s.status) == "already exists")
        text = f"{finished}/{len(states)} layers"
        if present:  # the label has about 22 cells at 80 columns: the count, not the size
            text += f", {present} existed"
        elif total:
            text += f"  {human_size(total)}"
        if not states and message.final is not None:  # as Docker: no layer lines for an image it has
            text = "image is up to date: every layer already in the store"
        self.query_one("#pull-overall-text", Label).update(text)
        status = self.query_one("#pull-status", Static)
        if message.final is not None or message.error is not None:
            self.running = False
            self.query_one("#pull-ref", Input).disabled = False
            start = self.query_one("#pull-start", Button)
            start.disabled = False
            if message.final is not None:
                self.result_id = message.final
                status.update(f"✓ pulled {message.final.removeprefix('sha256:')[:12]} (enter or Close to return)")
                start.label = "Close"
                self.query_one("#pull-cancel", Button).display = False
                self.set_focus(start)
            else:
                text, unreachable = pull_error_text(message.error)
                status.update(f"✗ {text}  (edit the name and press enter to retry)")
                detail = self.query_one("#pull-detail", Static)
                detail.display = text != message.error
                detail.update(f"engine: {message.error}")
                self.query_one("#pull-import").display = unreachable
                start.label = "Retry"
                # typing goes to the reference again: edit it, enter retries. Focused here and now
                # (Screen.set_focus), not by Widget.focus, which defers it to a later turn of the
                # app's queue: between the two, the failure was on screen while the keyboard was
                # still on the layers box the disabled field had handed it to.
                self.set_focus(self.query_one("#pull-ref", Input))
            self.app.refresh_now()  # type: ignore[attr-defined]

    @on(Button.Pressed, "#pull-import")
    def _import(self) -> None:
        self.app.import_host_busybox()  # type: ignore[attr-defined]
        self.dismiss(None)

    @on(Button.Pressed, "#pull-cancel")
    def action_cancel(self) -> None:
        if self.running:
            self.cancel_event.set()
            self.query_one("#pull-status", Static).update("cancelling… (completed layers stay; nothing partial is kept)")
            return
        self.dismiss(self.result_id)
