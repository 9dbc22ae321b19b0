"""One container in tabs: Stats, Logs, Config, Top, Inspect. Only the visible tab is fetched: the Top
tab's `ps` runs each refresh while it is on view and never otherwise, the Config tab reads the record
when it is shown."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Static, TabbedContent, TabPane

from tui import keymap
from tui.backend import Backend, ConfigView, ContainerView, ProcessTable, StatsSeries
from tui.screens.base import DataScreen, Job
from tui.widgets.charts import Plot, format_value
from tui.widgets.json_tree import JsonTree
from tui.widgets.logview import LogView
from tui.widgets.nav import NavBar
from tui.widgets.tables import fill_table

TABS = ("stats", "logs", "config", "top", "inspect")  # the order [ and ] step through
SEARCH_PLACEHOLDER = "search the log (enter: find, then n next, N previous; esc clears)"
FOCUS = {"logs": "#log", "config": "#config-scroll", "top": "#top-table", "inspect": "#inspect-tree"}
# The plots' least scales: an idle container's figures stay small instead of filling the plot
CPU_FLOOR = 100.0  # one core
MEM_FLOOR = 64 * 1024 * 1024  # without a limit (with one, the scale is the limit)
RATE_FLOOR = 4 * 1024.0  # bytes per second
PIDS_FLOOR = 10.0



class DetailScreen(DataScreen):
    # the log keys first: on the Logs tab they matter most and the footer is cut at 80 columns
    BINDINGS = [
        *keymap.bindings("back", "timestamps", "follow", "wrap", "search", "search_next", "search_prev", "log_filter",
                         "start", "stop", "restart", "kill", "kill_now", "pause", "remove", "exec"),
        keymap.binding("inspect", show=False),
        keymap.binding("logs", show=False),
        keymap.binding("attach"),
        *keymap.bindings("log_save", "copy_id", "copy_name", "container_events", "tab_prev", "tab_next"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.container_id: str | None = None
        self.container_view: ContainerView | None = None
        self._log_cursor = 0
        self._inspect_for: str | None = None
        self._inspect: dict[str, Any] | None = None
        self._top_drawn: ProcessTable | None = None
        self._config_drawn: ConfigView | None = None

    def compose(self) -> ComposeResult:
        yield NavBar("detail", id="nav")
        yield Static("no container selected: choose one on the Containers screen (1)", id="detail-title")
        with TabbedContent(id="tabs", initial="stats"):
            with TabPane("Stats", id="stats"):
                with Grid(id="plots"):
                    yield Plot("CPU", "%", floor=CPU_FLOOR, id="plot-cpu")
                    yield Plot("Memory", "B", floor=MEM_FLOOR, id="plot-mem")
                    yield Plot("Net rx", "B/s", floor=RATE_FLOOR, id="plot-rx")
                    yield Plot("Net tx", "B/s", floor=RATE_FLOOR, id="plot-tx")
                    yield Plot("Block read", "B/s", floor=RATE_FLOOR, id="plot-br")
                    yield Plot("Block write", "B/s", floor=RATE_FLOOR, id="plot-bw")
                    yield Plot("PIDs", "n", floor=PIDS_FLOOR, id="plot-pids")
            with TabPane("Logs", id="logs"):
                yield Input(placeholder=SEARCH_PLACEHOLDER, id="log-search")
                yield Static("", id="log-state")
                yield LogView(id="log")
            with TabPane("Config", id="config"):
                with VerticalScroll(id="config-scroll"):
                    yield Static("", id="config-text")
            with TabPane("Top", id="top"):
                yield DataTable(id="top-table", cursor_type="row")
            with TabPane("Inspect", id="inspect"):
                yield JsonTree(id="inspect-tree")
        yield Static("", id="detail-message")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#log-search").display = False
        self.query_one("#detail-message").display = False

    _opened = False  # the screen was just shown: its first refresh skips the snapshot

    def on_screen_resume(self) -> None:
        self._opened = True
        self.dockui.backend.show_detail_stats(True)  # block I/O and pids are sampled while this is open
        wanted = self.dockui.selected_id
        if wanted != self.container_id:
            self.container_id = wanted
            self._log_cursor = 0
            self._inspect_for = None
            self.query_one(LogView).clear()
            self.query_one("#top-table", DataTable).clear(columns=True)
            self.query_one("#config-text", Static).update("")
            self._config_drawn = None
        if self.dockui.detail_tab:
            self.action_detail(self.dockui.detail_tab)
            self.dockui.detail_tab = None
        self._draw_at_once()
        super().on_screen_resume()

    def on_screen_suspend(self) -> None:
        # another screen replaced this one (the tables need CPU and memory only); a dialog on top
        # leaves the plots in view
        if not isinstance(self.app.screen, ModalScreen):
            self.dockui.backend.show_detail_stats(False)

    def _draw_at_once(self) -> None:
        """The Stats tab in the frame the key opened, from what is in memory (the home screen's last
        views, the backend's sample history: no engine call), rather than after the refresh loop's
        next turn, which may first finish a home refresh sampling every container."""
        cid = self.container_id
        known = next((c for c in self.dockui.containers if c.id == cid), None)
        if cid is None or known is None or self.active_tab != "stats":
            return
        try:
            series = self.dockui.backend.stats_series(cid)
        except Exception:  # the refresh shows it in a moment, with its error
            return
        self.apply_data({"id": cid, "tab": "stats", "views": self.dockui.containers, "stats": series})

    @property
    def active_tab(self) -> str:
        """The visible tab's name (one of TABS)."""
        return self.query_one(TabbedContent).active or "stats"

    @on(TabbedContent.TabActivated)
    def _tab_changed(self) -> None:
        self.refresh_bindings()  # the log keys exist only on the Logs tab
        self.dockui.refresh_now()

    # ---- refresh

    def refresh_job(self) -> Job | None:
        cid = self.container_id
        if cid is None:
            # `4` before the home screen had drawn (or chosen) a row: the row it highlights first
            def first(backend: Backend) -> dict[str, Any]:
                views = backend.snapshot().containers
                chosen = min(views, key=lambda c: (c.name, c.id)) if views else None
                return {"id": chosen.id if chosen else None, "views": views, "auto": True}

            return first
        tab = self.active_tab
        cursor = self._log_cursor
        need_inspect = tab == "inspect" and self._inspect_for != cid
        # The first fetch after the screen opens draws from the home screen's last refresh: a
        # snapshot samples every container (250 running: a large part of a second on a busy host)
        # and would stand between the key and the screen. The next tick samples again.
        known = self.dockui.containers if self._opened and any(c.id == cid for c in self.dockui.containers) else None
        self._opened = False

        def job(backend: Backend) -> dict[str, Any]:
            out: dict[str, Any] = {"id": cid, "tab": tab}
            # a snapshot also keeps the engine-side history going
            out["views"] = known if known is not None else backend.snapshot().containers
            try:
                if tab == "stats":
                    out["stats"] = backend.stats_series(cid)
                elif tab == "logs":
                    out["logs"] = backend.read_logs(cid, cursor)
                elif tab == "top":
                    out["top"] = backend.top(cid)
                elif tab == "config":
                    out["config"] = backend.container_config(cid)
                elif need_inspect:
                    out["inspect"] = backend.inspect(cid)
            except Exception as exc:
                out["error"] = str(exc)
            return out

        return job

    def apply_data(self, data: Any) -> None:
        if data.get("auto"):
            if self.container_id is None and data["id"] is not None:
                self.container_id = self.dockui.selected_id = data["id"]
                self.dockui.refresh_now()  # now the tab's own data
            elif data["id"] is None:
                self.query_one("#detail-title", Static).update("no containers yet: n runs one")
            super().apply_data(data)
            return
        if data["id"] != self.container_id:
            return
        views = self.dockui.observe(data["views"])
        view: ContainerView | None = next((c for c in views if c.id == data["id"]), None)
        self.container_view = view
        title = self.query_one("#detail-title", Static)
        if view is None:
            title.update(Text(f"container {data['id'][:12]} is gone", style="bold"))
        else:
            text = Text()
            text.append(view.name, style="bold")
            text.append(f"  {view.short_id}  {view.image}  ")
            text.append(view.state_text, style="italic")
            if view.ip:
                text.append(f"  {view.ip}")
            title.update(text)
        message = self.query_one("#detail-message", Static)
        message.display = "error" in data
        if "error" in data:
            message.update(f"⚠ {data['error']}")
        if "stats" in data:
            self._draw_stats(data["stats"], view)
        if "logs" in data:
            lines, self._log_cursor = data["logs"]
            self.query_one(LogView).append(lines)
        if "top" in data:
            self._draw_top(data["top"])
        elif data.get("tab") == "top" and "error" in data:  # not running (any more): no stale rows
            self.query_one("#top-table", DataTable).clear()
        if "config" in data and data["config"] != self._config_drawn:  # redrawn only when it changed
            self._config_drawn = data["config"]
            self.query_one("#config-text", Static).update(config_table(data["config"]))
        if "inspect" in data:
            self._inspect = data["inspect"]
            self._inspect_for = data["id"]
            self._draw_inspect()
        status = (view.status, view.pending) if view else None
        if status != getattr(self, "_bindings_for", "?"):
            self._bindings_for = status
            self.refresh_bindings()  # only on a change: the footer rebuilds its keys each time
        super().apply_data(data)

    def _draw_stats(self, series: StatsSeries, view: ContainerView | None) -> None:
        # an exited container has no current figures: the plots keep its history, the headline says so
        stopped = view is not None and not view.is_live

        def latest(values: tuple[float, ...], unit: str) -> str:
            if stopped:
                return f"not running ({view.state_text})" if view else "not running"
            return format_value(values[-1], unit) if values else "--"

        self.query_one("#plot-cpu", Plot).set_series(series.cpu, latest(series.cpu, "%"), limit=series.cpu_limit,
                                                     limit_name="quota")
        limit = "" if stopped else f" of {format_value(series.mem_limit, 'B')}" if series.mem_limit else " (no limit)"
        self.query_one("#plot-mem", Plot).set_series(series.mem, latest(series.mem, "B") + limit,
                                                     limit=series.mem_limit)
        self.query_one("#plot-rx", Plot).set_series(series.net_rx, latest(series.net_rx, "B/s"))
        self.query_one("#plot-tx", Plot).set_series(series.net_tx, latest(series.net_tx, "B/s"))
        self.query_one("#plot-br", Plot).set_series(series.blk_read, latest(series.blk_read, "B/s"))
        self.query_one("#plot-bw", Plot).set_series(series.blk_write, latest(series.blk_write, "B/s"))
        pl = f" of {series.pids_limit}" if series.pids_limit and not stopped else ""
        self.query_one("#plot-pids", Plot).set_series(series.pids, latest(series.pids, "n") + pl,
                                                      limit=series.pids_limit)

    def _draw_top(self, table_data: ProcessTable) -> None:
        """The processes, again only when they changed (a second's refresh of the same processes keeps
        the table as it is), with the cursor kept on its row."""
        table = self.query_one("#top-table", DataTable)
        if table_data == self._top_drawn and table.row_count:
            return
        self._top_drawn = table_data
        row = table.cursor_row
        fill_table(table, list(table_data.titles), [list(r) for r in table_data.rows])
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1), scroll=False)

    def _draw_inspect(self) -> None:
        self.query_one(JsonTree).set_data(self._inspect or {})

    # ---- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("search_next", "search_prev"):  # else n is the app's run key
            return self.active_tab == "logs" and bool(self.query_one(LogView).pattern)
        if action in ("toggle_timestamps", "toggle_follow", "toggle_wrap", "search", "save_log", "log_filter"):
            return self.active_tab == "logs"
        if action in ("container", "exec_shell", "attach", "kill_now"):
            return self.dockui.container_allows(self.container_view, action, parameters)
        return True

    def bindings_changed(self) -> None:
        self.refresh_bindings()

    def action_kill_now(self) -> None:
        self.action_container("kill")

    def action_back(self) -> None:
        """esc: closes the search box, else clears the search (as k9s's esc clears a filter), else goes back."""
        box = self.query_one("#log-search", Input)
        log = self.query_one(LogView)
        if box.display:
            box.display = False
            log.focus()
            return
        if log.pattern and self.active_tab == "logs":
            log.clear_search()
            self.refresh_bindings()
            return
        if log.only and self.active_tab == "logs":
            log.set_only("")
            return
        self.dockui.action_show("containers")

    def action_container(self, verb: str) -> None:
        if self.container_view is not None:
            self.dockui.container_action(verb, self.container_view)

    def action_exec_shell(self) -> None:
        if self.container_view is not None:
            self.dockui.exec_shell(self.container_view)

    def action_attach(self) -> None:
        if self.container_view is not None:
            self.dockui.attach(self.container_view)

    def action_detail(self, tab: str) -> None:
        """Show a tab and put the keyboard in it (arrows then scroll the log, not switch tabs)."""
        self.query_one(TabbedContent).active = tab
        if tab == "inspect":
            self._inspect_for = None
        target = FOCUS.get(tab)
        if target is not None:
            self.call_after_refresh(self.query_one(target).focus)  # once the pane is displayed

    def action_tab(self, step: int) -> None:
        """[ and ]: the previous or next tab, round the ends (lazydocker's keys)."""
        self.action_detail(TABS[(TABS.index(self.active_tab) + step) % len(TABS)])

    @on(LogView.StateChanged)
    def _log_state(self) -> None:
        self.query_one("#log-state", Static).update(self.query_one(LogView).state_text)

    def action_save_log(self) -> None:
        if self.container_view is not None:
            self.dockui.save_log(self.container_view, self.query_one(LogView).show_timestamps)

    def action_events_of(self) -> None:
        if self.container_view is not None:
            self.dockui.show_events_of(self.container_view)

    def action_copy(self, what: str) -> None:
        if self.container_view is not None:
            self.dockui.copy_container(self.container_view, what)

    def action_toggle_timestamps(self) -> None:
        log = self.query_one(LogView)
        log.set_timestamps(not log.show_timestamps)

    def action_toggle_follow(self) -> None:
        log = self.query_one(LogView)
        log.set_follow(not log.follow)  # the line above the log says which

    def action_toggle_wrap(self) -> None:
        log = self.query_one(LogView)
        log.set_wrap(not log.wrap)

    _box_filters = False  # the box under the tabs takes a filter (&) rather than a search (/)

    def action_search(self) -> None:
        self._open_box(filters=False)

    def action_log_filter(self) -> None:
        """&, as less's: only the lines containing a word; an empty one shows them all again."""
        self._open_box(filters=True)

    def _open_box(self, filters: bool) -> None:
        box = self.query_one("#log-search", Input)
        log = self.query_one(LogView)
        if filters != self._box_filters:
            self._box_filters = filters
            box.value = log.only if filters else log.pattern
            box.placeholder = ("show only the lines containing… (enter applies, empty shows all; esc closes)"
                               if filters else SEARCH_PLACEHOLDER)
        box.display = True
        box.focus()

    @on(Input.Submitted, "#log-search")
    def _search(self, event: Input.Submitted) -> None:
        """enter: the first match from the top; the box closes (the line above the log names the
        search and where it is), n and N step on."""
        log = self.query_one(LogView)
        if self._box_filters:
            log.set_only(event.value.strip())
        elif not log.search(event.value):
            self.notify(f"no match for {event.value!r}", severity="warning", timeout=2)
        event.input.display = False
        log.focus()
        self.refresh_bindings()

    def action_search_next(self) -> None:
        log = self.query_one(LogView)
        if log.pattern and not log.search(log.pattern, forward=True):
            self.notify("no match", severity="warning", timeout=1.5)

    def action_search_prev(self) -> None:
        log = self.query_one(LogView)
        if log.pattern and not log.search(log.pattern, forward=False):
            self.notify("no match", severity="warning", timeout=1.5)


def config_table(view: ConfigView) -> Table:
    """The Config tab: what the container was made with (lazydocker's Config), a title column and
    its values, one a line (a long one wraps in its own column)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")

    def row(title: str, values: list[str] | list[Text], empty: str = "none") -> None:
        for n, value in enumerate(values or [Text(empty, style="dim")]):
            grid.add_row(title if n == 0 else "", value)

    def argv(words: tuple[str, ...]) -> list[str]:
        return [" ".join(f"'{w}'" if not w or " " in w else w for w in words)] if words else []

    row("Image", [view.image])
    row("Command", argv(view.command), "the image's")
    row("Entrypoint", argv(view.entrypoint), "the image's")
    row("Working dir", [view.working_dir] if view.working_dir else [], "the image's")
    row("User", [view.user] if view.user else [], "the image's")
    row("Terminal", ["-i -t: a attaches, ctrl-p ctrl-q detaches" if view.tty and view.stdin_open else
                     f"{'tty' if view.tty else 'no tty'}, stdin {'open' if view.stdin_open else 'closed'}"])
    row("Env", [Text.assemble((name, "bold"), "=", value) for name, value in view.env])
    row("Ports", list(view.ports))
    row("Mounts", [f"{m.type:<6} {m.source} → {m.destination}{' (ro)' if m.read_only else ''}" for m in view.mounts])
    row("Networks", [f"{name} {address}".rstrip() for name, address in view.networks])
    row("Restart policy", [view.restart_policy])
    limits = [f"memory {format_value(view.memory_limit, 'B')}"] if view.memory_limit else []
    limits += [f"cpus {view.cpu_limit / 100:g}"] if view.cpu_limit else []
    limits += [f"pids {view.pids_limit}"] if view.pids_limit else []
    row("Limits", [", ".join(limits)] if limits else [])
    row("Labels", [Text.assemble((key, "bold"), "=", value) for key, value in view.labels])
    return grid
