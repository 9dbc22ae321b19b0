"""Home: every container, live at 1 Hz, with host figures; first-run guidance when the store is empty."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Static

from tui import keymap
from tui.backend import STOPPED_STATES, Backend, ContainerView, Snapshot
from tui.screens.base import DataScreen, Job
from tui.widgets.containers_table import ContainersTable
from tui.widgets.footer import FittingFooter
from tui.widgets.hostbar import LEGEND, HostBar
from tui.widgets.nav import NavBar

FIRST_RUN = (
    "No containers yet. First get an image: pull busybox from Docker Hub (press p, needs the internet) or, "
    "offline, import the host's busybox-static (Debian: apt-get install busybox-static) as busybox:latest, "
    "as `dockui import` does with a root filesystem tarball. Then start a first container with n, e.g. "
    "busybox with the command `httpd -f -p 80`."
)

FOOTER_OPTIONAL = ("attach", "prune")  # shown in the footer where they fit, most valuable first


class ContainersScreen(DataScreen):
    # attach and prune are in the footer where they fit (tui/widgets/footer.py): at 80 columns the
    # selection's other keys fill it exactly; help and the palette list them at any width
    BINDINGS = [keymap.binding(action_id, show=True if action_id in FOOTER_OPTIONAL else None)
                for action_id in keymap.SCREEN_ACTIONS["containers"]]
    LIST, FILTER = "containers", "filter"

    def compose(self) -> ComposeResult:
        yield NavBar("containers", id="nav")
        yield HostBar(id="hostbar")
        yield Static(LEGEND, id="legend")
        with Vertical(id="first-run"):
            yield Static(FIRST_RUN, id="first-run-text")
            with Horizontal(id="first-run-buttons"):
                yield Button("Pull busybox", id="first-pull", variant="primary")
                yield Button("Import host busybox", id="first-import")
                yield Button("Run a container", id="first-run-container")
        yield Input(placeholder="filter: name, image, status or label=value (esc clears)", id="filter")
        yield ContainersTable(id="containers")
        yield Static("", id="problems")
        yield Static("", id="marks")
        yield FittingFooter(optional=tuple(keymap.DEFAULTS[a][1] for a in FOOTER_OPTIONAL))

    def on_mount(self) -> None:
        self.query_one("#first-run").display = False
        self.query_one("#filter").display = False
        self.query_one("#problems").display = False
        self.query_one("#marks").display = False
        self.query_one(ContainersTable).focus()

    # ---- refresh

    def refresh_job(self) -> Job | None:
        focus = self.query_one(ContainersTable).ids_on_screen()  # taken now, on the UI thread

        def job(backend: Backend) -> tuple[Snapshot, int | None]:
            snapshot = backend.snapshot(focus)
            images = None
            if not snapshot.containers:
                try:
                    images = len(backend.images())
                except Exception:
                    images = 0
            return snapshot, images

        return job

    def apply_data(self, data: Any) -> None:
        snapshot, image_count = data
        table = self.query_one(ContainersTable)
        containers = self.dockui.observe(snapshot.containers)
        table.set_views(containers)
        running = sum(1 for c in snapshot.containers if c.status == "running")
        self.query_one(HostBar).set_host(snapshot.host, running, len(snapshot.containers))
        empty = not snapshot.containers
        first_run = self.query_one("#first-run")
        if first_run.display != empty:
            first_run.display = empty
            table.display = not empty
        if empty:
            has_images = bool(image_count)
            self.query_one("#first-run-text", Static).update(
                FIRST_RUN if not has_images else
                f"No containers yet; {image_count} image(s) in the store. Press n (or the button) to run one, "
                "e.g. busybox with the command `httpd -f -p 80`.")
            self.query_one("#first-pull").display = not has_images
            self.query_one("#first-import").display = not has_images
        problems = self.query_one("#problems", Static)
        text = "\n".join(f"⚠ {p}" for p in snapshot.problems)
        problems.display = bool(text)
        if text:
            problems.update(text)
        self.dockui.containers = containers
        if table.marked or self.query_one("#marks").display:
            self._show_marks()
        self._sync_selection()
        super().apply_data(data)

    # ---- selection and actions

    @property
    def selected(self) -> ContainerView | None:
        return self.query_one(ContainersTable).selected

    def _sync_selection(self) -> None:
        c = self.selected
        new = c.id if c else None
        status = (c.status, c.pending) if c else None
        if (new, status) != (self.dockui.selected_id, getattr(self, "_selected_status", None)):
            self.dockui.selected_id = new
            self._selected_status = status
            self.refresh_bindings()

    def on_data_table_row_highlighted(self, event: ContainersTable.RowHighlighted) -> None:
        self._sync_selection()

    def on_data_table_row_selected(self, event: ContainersTable.RowSelected) -> None:
        self._sync_selection()
        if self.selected:
            self.dockui.action_show("detail")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        marked = self.query_one(ContainersTable).marked_views
        if action == "container" and marked:  # offered when it applies to any marked container
            return any(self.dockui.container_allows(c, action, parameters) for c in marked)
        if action in ("exec_shell", "attach", "kill_now") and marked:
            return False
        if action in ("container", "exec_shell", "attach", "kill_now"):
            return self.dockui.container_allows(self.selected, action, parameters)
        if action in ("mark", "mark_all", "mark_project", "copy", "events_of"):
            return self.selected is not None
        if action == "detail":
            return self.selected is not None
        return True

    def bindings_changed(self) -> None:
        self.refresh_bindings()

    def action_container(self, verb: str) -> None:
        table = self.query_one(ContainersTable)
        if table.marked:
            self.dockui.bulk_action(verb, table.marked_views)
            table.clear_marks()
            self._show_marks()
            return
        c = self.selected
        if c is not None:
            self.dockui.container_action(verb, c)

    def action_mark(self) -> None:
        """Space: mark or unmark the row and move down, as k9s does."""
        table = self.query_one(ContainersTable)
        c = self.selected
        if c is None:
            return
        table.toggle_mark(c.id)
        table.action_cursor_down()
        self._show_marks()

    def action_mark_all(self) -> None:
        """A: mark every container shown (filter first: `/worker`, A, x stops all the workers), as
        lazydocker's bulk commands; again: unmark them."""
        self.query_one(ContainersTable).mark_shown()
        self._show_marks()

    def action_mark_project(self) -> None:
        """g: mark the highlighted container's whole compose project (lazydocker's project view, as
        marks): the container keys then stop, restart or remove the project, with one question."""
        c = self.selected
        if c is None:
            return
        if not c.project:
            self.notify(f"{c.name} is not part of a compose project (no com.docker.compose.project label)",
                        severity="warning", timeout=3)
            return
        self.query_one(ContainersTable).mark_project(c.project)
        self._show_marks()

    def action_events_of(self) -> None:
        if self.selected is not None:
            self.dockui.show_events_of(self.selected)

    def action_copy(self, what: str) -> None:
        if self.selected is not None:
            self.dockui.copy_container(self.selected, what)

    def _show_marks(self) -> None:
        table = self.query_one(ContainersTable)
        marks = self.query_one("#marks", Static)
        marks.display = bool(table.marked)
        if table.marked:
            views = table.marked_views
            names = ", ".join(c.name for c in views)
            projects = sorted({c.project for c in views})
            whole = [p for p in projects if p and all(c.id in table.marked for c in table.views if c.project == p)]
            what = f"project {', '.join(whole)}: " if whole and len(projects) == len(whole) else ""
            marks.update(f"✓ {what}{len(table.marked)} marked ({names}): the container keys act on all of them; "
                         "space unmarks, esc clears")
        self.refresh_bindings()

    def action_kill_now(self) -> None:
        self.action_container("kill")

    def action_detail(self, tab: str) -> None:
        if self.selected:
            self.dockui.selected_id = self.selected.id
            self.dockui.detail_tab = tab
            self.dockui.action_show("detail")

    def action_exec_shell(self) -> None:
        if self.selected:
            self.dockui.exec_shell(self.selected)

    def action_attach(self) -> None:
        if self.selected:
            self.dockui.attach(self.selected)

    def action_prune(self) -> None:
        """X: remove the stopped containers (lazydocker's "prune exited containers"), after a question
        naming them; exactly those are removed, without force."""
        stopped = [c for c in self.dockui.containers if c.status in STOPPED_STATES and not c.pending]
        if not stopped:
            self.notify("no stopped container to prune", timeout=3)
            return
        names = ", ".join(sorted(c.name for c in stopped))
        self.dockui.confirm_then(f"Remove {len(stopped)} stopped container(s)?\n{names}", "Prune",
                                 "pruned containers", self.dockui.backend.prune_containers,
                                 tuple(c.id for c in stopped))

    def action_sort(self) -> None:
        self.query_one(ContainersTable).cycle_sort()  # the header's ▲/▼ shows the sort column

    def action_sort_reverse(self) -> None:
        table = self.query_one(ContainersTable)
        table.set_sort(table.sort_column, not table.sort_reverse)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_one(ContainersTable).set_filter(event.value)
        self._sync_selection()

    def key_escape(self) -> None:
        if self.clear_filter():
            return
        if self.query_one(ContainersTable).marked:
            self.query_one(ContainersTable).clear_marks()
            self._show_marks()

    @on(Button.Pressed, "#first-pull")
    def _first_pull(self) -> None:
        self.dockui.action_pull("busybox")

    @on(Button.Pressed, "#first-import")
    def _first_import(self) -> None:
        self.dockui.import_host_busybox()

    @on(Button.Pressed, "#first-run-container")
    def _first_container(self) -> None:
        self.dockui.action_run_dialog()
