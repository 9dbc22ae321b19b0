"""Volumes: name, size, the containers that mount them, created; the selection's inspect document
below. `d` removes (the engine refuses a volume in use, and the message stays), `X` prunes every
volume no container mounts, after one confirmation that names them."""

from __future__ import annotations

import json
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.widgets import DataTable, Footer, Input, Static

from engine.errors import Conflict
from engine.util.units import human_size
from tui import keymap
from tui.backend import Backend, VolumeView
from tui.screens.base import DataScreen, Job
from tui.widgets.nav import NavBar
from tui.widgets.tables import fill_table

VOLUME_TITLES = ["NAME", "DRIVER", "SIZE", "USED BY", "CREATED"]


def _short_name(volume: VolumeView) -> str:
    """Anonymous volumes have 64-hex names: 12 are enough to tell them apart, as IDs are shown."""
    return volume.name[:12] + "…" if volume.anonymous and len(volume.name) > 13 else volume.name


class VolumesScreen(DataScreen):
    BINDINGS = keymap.bindings(*keymap.SCREEN_ACTIONS["volumes"])
    LIST, FILTER = "volumes", "volume-filter"

    def __init__(self) -> None:
        super().__init__()
        self.volumes: list[VolumeView] = []  # shown (after the filter)
        self.all_volumes: list[VolumeView] = []
        self.filter_text = ""
        self._drawn = False  # the table and the message show all_volumes (not before the first, nor over an error)
        self.inspected: tuple[str, dict[str, Any] | str] | None = None

    def compose(self) -> ComposeResult:
        yield NavBar("volumes", id="nav")
        yield Input(placeholder="filter: name, driver or a container using it (esc clears)", id="volume-filter")
        yield DataTable(id="volumes", cursor_type="row")
        yield Static("", id="volume-detail")
        yield Static("", id="volumes-message")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        fill_table(self.query_one("#volumes", DataTable), VOLUME_TITLES, [])
        self.query_one("#volumes-message").display = False
        self.query_one("#volume-filter").display = False
        self.query_one("#volumes", DataTable).focus()

    def refresh_job(self) -> Job | None:
        wanted = self.selected.name if self.selected else None

        def job(backend: Backend) -> tuple[list[VolumeView], tuple[str, dict[str, Any] | str] | None] | Exception:
            try:
                volumes = backend.volumes()
            except Exception as exc:
                return exc
            name = wanted if wanted in {v.name for v in volumes} else (volumes[0].name if volumes else None)
            if name is None:
                return volumes, None
            try:
                return volumes, (name, backend.inspect_volume(name))
            except Exception as exc:
                return volumes, (name, str(exc))

        return job

    def apply_data(self, data: Any) -> None:
        if isinstance(data, Exception):
            message = self.query_one("#volumes-message", Static)
            message.display = True
            message.update(f"⚠ {data}")
            self._drawn = False
            super().apply_data(data)
            return
        volumes, inspected = data
        if volumes != self.all_volumes or not self._drawn:
            self.all_volumes = volumes
            self._fill()
        self.inspected = inspected
        self._show_detail()
        super().apply_data(data)

    def _matches(self, volume: VolumeView) -> bool:
        hay = " ".join((volume.name, volume.driver, *volume.used_by)).lower()
        return all(word in hay for word in self.filter_text.split())

    def _fill(self) -> None:
        volumes = [v for v in self.all_volumes if self._matches(v)]
        table = self.query_one("#volumes", DataTable)
        current = self.selected.name if self.selected else None
        self.volumes = volumes
        rows = [[_short_name(v), v.driver, human_size(v.size), ", ".join(v.used_by) or "-", v.created[:19]]
                for v in volumes]
        fill_table(table, VOLUME_TITLES, rows, keys=[v.name for v in volumes])
        names = [v.name for v in volumes]
        if current in names:
            table.move_cursor(row=names.index(current), animate=False)
        message = self.query_one("#volumes-message", Static)
        message.display = not volumes
        message.update("No volumes. `dockui volume create NAME` or `-v NAME:/path` in the run dialog makes one."
                       if not self.all_volumes else f"No volume matches {self.filter_text!r} (esc clears the filter).")
        self._drawn = True
        self._show_detail()
        self.refresh_bindings()

    @on(Input.Changed, "#volume-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip().lower()
        self._fill()

    def key_escape(self) -> None:
        self.clear_filter()

    @property
    def selected(self) -> VolumeView | None:
        table = self.query_one("#volumes", DataTable)
        if not self.volumes or not (0 <= table.cursor_row < len(self.volumes)):
            return None
        return self.volumes[table.cursor_row]

    def _show_detail(self) -> None:
        detail = self.query_one("#volume-detail", Static)
        volume = self.selected
        detail.display = volume is not None
        if volume is None:
            return
        lines = [f"{volume.name}  used by: {', '.join(volume.used_by) or 'no container'}"]
        if self.inspected is not None and self.inspected[0] == volume.name:
            doc = self.inspected[1]
            lines.append(json.dumps(doc, indent=2) if isinstance(doc, dict) else f"⚠ {doc}")
        else:
            lines.append("…")
        detail.update("\n".join(lines))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()
        self.refresh_bindings()
        if self.selected and (self.inspected is None or self.inspected[0] != self.selected.name):
            self.dockui.refresh_now()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("remove_volume", "copy"):
            return self.selected is not None
        return True

    def action_copy(self, what: str) -> None:
        """Y: the volume's name (its only identity) to the clipboard."""
        if self.selected is not None:
            self.dockui.copy_text(self.selected.name, "name")

    def action_remove_volume(self) -> None:
        volume = self.selected
        if volume is None:
            return
        question = f"Remove volume {volume.name}?"
        if volume.used_by:
            question += f"\nIt is used by {', '.join(volume.used_by)}: the engine will refuse while they exist."
        backend = self.dockui.backend

        def remove(name: str) -> None:
            """The engine's refusal names the users by full ID (Docker's words); the names are added."""
            try:
                backend.remove_volume(name)
            except Conflict as exc:  # in use
                if not volume.used_by:
                    raise
                raise Conflict(f"{exc} (used by {', '.join(volume.used_by)})") from exc

        self.dockui.confirm_then(question, "Remove", f"volume {_short_name(volume)} removed", remove, volume.name)

    def action_prune(self) -> None:
        unused = [_short_name(v) for v in self.all_volumes if not v.used_by]
        if not unused:
            self.app.notify("no unused volume to prune", timeout=3)
            return
        self.dockui.confirm_then(f"Remove every volume no container uses, and its data?\n{', '.join(unused)}",
                                 "Prune", "pruned volumes", self.dockui.backend.prune_volumes)
