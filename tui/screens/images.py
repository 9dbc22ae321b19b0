"""Images in the store: repository, tag, ID, created, size; the selection's layers with chainIDs."""

from __future__ import annotations

import time
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Static

from engine.util.units import human_size
from tui import keymap
from tui.backend import Backend, HistoryView, ImageView, human_duration, parse_time
from tui.screens.base import DataScreen, Job
from tui.widgets.nav import NavBar
from tui.widgets.tables import fill_table, first_names

IMAGE_TITLES = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "LAYERS", "USED BY"]
HISTORY_TITLES = ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
LAYER_TITLES = ["#", "CHAIN ID", "DIFF ID", "SIZE"]


def created_text(created: str, now: float | None) -> str:
    ts = parse_time(created)
    if ts is None:
        return created or "?"
    if now is None:
        return created[:10]
    return f"{human_duration(now - ts)} ago"


class ImagesScreen(DataScreen):
    BINDINGS = keymap.bindings(*keymap.SCREEN_ACTIONS["images"])
    LIST, FILTER = "images", "image-filter"

    def __init__(self) -> None:
        super().__init__()
        self.images: list[ImageView] = []  # shown (after the filter)
        self.all_images: list[ImageView] = []
        self.filter_text = ""
        self._drawn = False  # the table and the message show all_images (not before the first, nor over an error)

    def compose(self) -> ComposeResult:
        yield NavBar("images", id="nav")
        yield Input(placeholder="filter: repository, tag, ID or a container using it (esc clears)", id="image-filter")
        yield DataTable(id="images", cursor_type="row")
        yield Static("Layers (bottom → top)", id="layers-title")
        yield DataTable(id="layers", cursor_type="row")
        yield Static("", id="images-message")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        fill_table(self.query_one("#images", DataTable), IMAGE_TITLES, [])
        fill_table(self.query_one("#layers", DataTable), LAYER_TITLES, [])
        self.query_one("#images-message").display = False
        self.query_one("#image-filter").display = False
        self.query_one("#images", DataTable).focus()

    def refresh_job(self) -> Job | None:
        def job(backend: Backend) -> list[ImageView] | Exception:
            try:
                return backend.images()
            except Exception as exc:
                return exc

        return job

    def apply_data(self, data: Any) -> None:
        if isinstance(data, Exception):
            message = self.query_one("#images-message", Static)
            message.display = True
            message.update(f"⚠ {data}")
            self._drawn = False
            super().apply_data(data)
            return
        if data != self.all_images or not self._drawn:
            self.all_images = data
            self._fill()
        super().apply_data(data)

    def _matches(self, image: ImageView) -> bool:
        hay = " ".join((image.repository, image.tag, image.short_id, *image.used_by)).lower()
        return all(word in hay for word in self.filter_text.split())

    def _fill(self) -> None:
        data = [image for image in self.all_images if self._matches(image)]
        table = self.query_one("#images", DataTable)
        current = self.selected
        self.images = data
        now = time.time() if self.dockui.clock else None
        rows = [[image.repository, image.tag, image.short_id, created_text(image.created, now),
                 human_size(image.size), str(len(image.layers)), first_names(image.used_by) or "-"] for image in data]
        fill_table(table, IMAGE_TITLES, rows, keys=[f"{i}" for i in range(len(data))])
        keys = [(i.id, i.reference) for i in data]
        if current is not None and (current.id, current.reference) in keys:
            table.move_cursor(row=keys.index((current.id, current.reference)), animate=False)
        message = self.query_one("#images-message", Static)
        message.display = not data
        if not data:
            message.update("No images. Press p to pull one (e.g. busybox)." if not self.all_images else
                           f"No image matches {self.filter_text!r} (esc clears the filter).")
        self._drawn = True
        self._show_layers()
        self.refresh_bindings()

    @property
    def selected(self) -> ImageView | None:
        table = self.query_one("#images", DataTable)
        if not self.images or not (0 <= table.cursor_row < len(self.images)):
            return None
        return self.images[table.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "images":
            self._show_layers()
            self.refresh_bindings()

    def _show_layers(self) -> None:
        image = self.selected
        rows = [
            [str(i), layer.chain_id.removeprefix("sha256:")[:24] + "…", layer.diff_id.removeprefix("sha256:")[:24] + "…",
             human_size(layer.size)]
            for i, layer in enumerate(image.layers if image else ())
        ]
        fill_table(self.query_one("#layers", DataTable), LAYER_TITLES, rows)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("remove_image", "run_image", "image_history", "copy"):
            return self.selected is not None
        return True

    def action_remove_image(self) -> None:
        if self.selected:
            self.dockui.remove_image(self.selected)

    def action_copy(self, what: str) -> None:
        """y the full ID, Y repository:tag (as k9s copies what is under the cursor)."""
        image = self.selected
        if image is not None:
            self.dockui.copy_text(image.id if what == "id" else image.reference, "ID" if what == "id" else "reference")

    def action_run_image(self) -> None:
        """n: the run dialog with this image filled in (not the app's empty one)."""
        if self.selected:
            self.dockui.action_run_dialog(self.selected.reference)

    def action_image_history(self) -> None:
        if self.selected:
            self.app.push_screen(HistoryDialog(self.selected))

    def action_prune(self) -> None:
        dangling = [i.short_id for i in self.all_images if i.repository == "<none>" and not i.used_by]
        if not dangling:
            self.app.notify("no dangling image (untagged and unused) to prune", timeout=3)
            return
        self.dockui.confirm_then(f"Remove every dangling image (untagged, no container uses it)?\n"
                                 f"{', '.join(dangling)}", "Prune", "pruned images", self.dockui.backend.prune_images)

    @on(Input.Changed, "#image-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip().lower()
        self._fill()

    def key_escape(self) -> None:
        self.clear_filter()


class HistoryDialog(ModalScreen[None]):
    """`docker history`: the image's build steps, newest first, with the size each layer added."""

    BINDINGS = [Binding("escape,q,h", "close", "Close"), Binding("j", "step(1)", "Down", show=False),
                Binding("k", "step(-1)", "Up", show=False)]

    def __init__(self, image: ImageView) -> None:
        super().__init__()
        self.image = image
        self.steps: list[HistoryView] = []  # as the table shows them

    def compose(self) -> ComposeResult:
        with Vertical(id="history", classes="dialog"):
            yield Static(f"History of {self.image.reference} (esc closes)", classes="dialog-title")
            yield DataTable(id="history-table", cursor_type="row")
            yield Static("", id="history-step")  # the highlighted step whole: the table cuts it at 60
            yield Static("", id="history-error", classes="error")

    def on_mount(self) -> None:
        self.query_one("#history-error").display = False
        self.load()

    @work(thread=True)
    def load(self) -> None:
        try:
            rows: list[HistoryView] | str = self.app.backend.image_history(self.image.reference)  # type: ignore[attr-defined]
        except Exception as exc:
            rows = str(exc) or type(exc).__name__
        self.app.call_from_thread(self._show, rows)

    def _show(self, rows: list[HistoryView] | str) -> None:
        if isinstance(rows, str):
            error = self.query_one("#history-error", Static)
            error.display = True
            error.update(f"✗ {rows}")
            return
        self.steps = rows
        fill_table(self.query_one("#history-table", DataTable), HISTORY_TITLES, [
            [r.image_id.removeprefix("sha256:")[:12], r.created[:19], _cut(r.created_by, 60), human_size(r.size),
             r.comment] for r in rows])
        self.query_one("#history-table", DataTable).focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self.steps):
            step = self.steps[event.cursor_row]
            self.query_one("#history-step", Static).update(
                f"{step.image_id.removeprefix('sha256:')[:12]}: {step.created_by or '(no command)'}")

    def action_step(self, step: int) -> None:
        table = self.query_one("#history-table", DataTable)
        if step > 0:
            table.action_cursor_down()
        else:
            table.action_cursor_up()

    def action_close(self) -> None:
        self.dismiss()


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
