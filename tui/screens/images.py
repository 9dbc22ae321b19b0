"""Images in the store: repository, tag, ID, created, size; the selection's layers with chainIDs."""

from __future__ import annotations

import time
from typing import Any

from textual.app import ComposeResult
from textual.widgets import DataTable, Footer, Static

from engine.cli.output import human_size
from tui import keymap
from tui.backend import Backend, ImageView, human_duration, parse_time
from tui.screens.base import DataScreen, Job
from tui.widgets.nav import NavBar
from tui.widgets.tables import fill_table

IMAGE_TITLES = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "LAYERS"]
LAYER_TITLES = ["#", "CHAIN ID", "DIFF ID", "SIZE"]


def created_text(created: str, now: float | None) -> str:
    ts = parse_time(created)
    if ts is None:
        return created or "?"
    if now is None:
        return created[:10]
    return f"{human_duration(now - ts)} ago"


class ImagesScreen(DataScreen):
    BINDINGS = [*keymap.bindings("image_remove", "image_run"), keymap.binding("down"), keymap.binding("up")]

    def __init__(self) -> None:
        super().__init__()
        self.images: list[ImageView] = []

    def compose(self) -> ComposeResult:
        yield NavBar("images", id="nav")
        yield DataTable(id="images", cursor_type="row")
        yield Static("Layers (bottom → top)", id="layers-title")
        yield DataTable(id="layers", cursor_type="row")
        yield Static("", id="images-message")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        fill_table(self.query_one("#images", DataTable), IMAGE_TITLES, [])
        fill_table(self.query_one("#layers", DataTable), LAYER_TITLES, [])
        self.query_one("#images-message").display = False
        self.query_one("#images", DataTable).focus()

    def refresh_job(self) -> Job | None:
        def job(backend: Backend) -> list[ImageView] | Exception:
            try:
                return backend.images()
            except Exception as exc:
                return exc

        return job

    def apply_data(self, data: Any) -> None:
        message = self.query_one("#images-message", Static)
        message.display = isinstance(data, Exception)
        if isinstance(data, Exception):
            message.update(f"⚠ {data}")
            super().apply_data(data)
            return
        if data != self.images:
            self.images = data
            table = self.query_one("#images", DataTable)
            row = table.cursor_row
            now = time.time() if self.dockui.clock else None
            rows = [[image.repository, image.tag, image.short_id, created_text(image.created, now),
                     human_size(image.size), str(len(image.layers))] for image in data]
            fill_table(table, IMAGE_TITLES, rows, keys=[f"{i}" for i in range(len(data))])
            if data:
                table.move_cursor(row=min(max(row, 0), len(data) - 1))
            if not data:
                message.display = True
                message.update("No images. Press p to pull one (e.g. busybox).")
            self._show_layers()
        super().apply_data(data)

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
        if action in ("remove_image", "run_image"):
            return self.selected is not None
        return True

    def action_cursor_down(self) -> None:
        self.query_one("#images", DataTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one("#images", DataTable).action_cursor_up()

    def action_remove_image(self) -> None:
        if self.selected:
            self.dockui.remove_image(self.selected)

    def action_run_image(self) -> None:
        if self.selected:
            self.dockui.action_run_dialog(self.selected.reference)
