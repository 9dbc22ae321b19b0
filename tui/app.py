"""The Textual application: four screens, one refresh loop, engine calls in workers.

The loop: `_tick` (UI thread) asks the visible screen what it needs, a thread worker fetches it
from the backend, the result comes back as a `RefreshDone` message, the screen draws it, and only
then is the next tick scheduled. So there is never more than one refresh in flight, a slow engine
call slows the loop instead of piling up, and screens that are not visible cost nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input

from engine.cli import add_global_options, config_from_args
from engine.config import EngineConfig
from tui import keymap, logfile, prefs
from tui.backend import Backend, ContainerView, EngineBackend, ImageView, allowed_actions
from tui.pending import Pending, PendingActions
from tui.screens.base import DataScreen
from tui.screens.containers import ContainersScreen
from tui.screens.detail import TABS, DetailScreen
from tui.screens.dialogs import ConfirmDialog, HelpScreen
from tui.screens.events import EventsScreen
from tui.screens.images import ImagesScreen
from tui.screens.jump import Jump, JumpPrompt
from tui.screens.network import NetworkScreen
from tui.screens.pull import PullDialog
from tui.screens.run import RunDialog
from tui.screens.volumes import VolumesScreen

STYLES = Path(__file__).resolve().parent.parent / "styles"

STAYS = 7 * 24 * 3600  # a notification's timeout that means "until dismissed"
DETACH_KEYS = "ctrl-p ctrl-q"  # the attach client's (engine/container/detachkeys.py), as Docker's
VERB_WORDS = {"start": "started", "stop": "stopped", "restart": "restarted", "kill": "killed",
              "pause": "paused", "unpause": "unpaused", "remove": "removed"}


class RefreshDone(Message):
    """A refresh's data, fetched in a worker thread, for `screen` to draw."""

    def __init__(self, screen: DataScreen, data: Any, fetch_cpu: float, error: str | None) -> None:
        super().__init__()
        self.screen = screen
        self.data = data
        self.fetch_cpu = fetch_cpu
        self.error = error


class ActionDone(Message):
    """An engine call ended: `text` says what was done, or `error` why `title` (what was tried) failed."""

    def __init__(self, text: str, error: str | None = None, container_id: str | None = None,
                 pending: Pending | None = None, title: str = "") -> None:
        super().__init__()
        self.text = text
        self.title = title
        self.error = error
        self.container_id = container_id
        self.pending = pending


class ShellReady(Message):
    """The shell `e` will run (found in a worker), or why there is none."""

    def __init__(self, view: ContainerView, command: list[str] | None, error: str | None) -> None:
        super().__init__()
        self.view = view
        self.command = command
        self.error = error


class DockuiApp(App[None]):
    CSS_PATH = str(STYLES / "dockui.tcss")
    TITLE = "dockui"
    MODES = {"containers": ContainersScreen, "images": ImagesScreen, "network": NetworkScreen,
             "detail": DetailScreen, "volumes": VolumesScreen, "events": EventsScreen}
    BINDINGS = [
        # `:` is a priority binding: it must open its prompt before the keys typed after it (`:logs web`
        # at typing speed) are handed to the focused table; check_action leaves it to inputs and dialogs
        *keymap.bindings(*(a for a in keymap.SCREEN_ACTIONS["app"] if a != "jump")),
        keymap.binding("jump", priority=True),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, config: EngineConfig, backend: Backend | None = None, refresh_interval: float = 1.0,
                 clock: bool = True) -> None:
        super().__init__()
        self.config = config
        self.backend: Backend = backend if backend is not None else EngineBackend(config)
        self.refresh_interval = refresh_interval
        self.clock = clock  # False in snapshot tests: no "x minutes ago" computed from the wall clock
        self.selected_id: str | None = None
        self.detail_tab: str | None = None
        self.containers: tuple[ContainerView, ...] = ()
        self.image_refs: list[str] = []
        self._in_flight = False
        self._again = False
        self._timer: Timer | None = None
        self.refresh_count = 0
        self.refresh_costs: deque[tuple[float, float]] = deque(maxlen=1000)  # (fetch CPU s, draw CPU s)
        self.quitting = False  # set by `q` (or a crash): every later key and mouse event is dropped
        self.crash_file: Path | None = None  # where an unhandled exception's traceback was written
        self.crash_summary = ""
        self.actions = PendingActions()
        self.notices = 0  # notices shown until dismissed (a container died)
        self.events_filter: str | None = None  # set by `E`: the filter the events screen opens with
        keys, problem = keymap.load_keymap(config.root)
        self.key_overrides = keys
        self._keymap_problem = problem
        if keys:
            self.set_keymap(keys)

    def on_mount(self) -> None:
        theme = prefs.load_theme(self.config.root)
        if theme in self.available_themes and theme != self.theme:
            self.theme = theme
        self._theme_ready = True
        self.switch_mode("containers")
        if self._keymap_problem:  # stays until dismissed: a key that does nothing is hard to explain
            self.notices += 1
            self.notify(f"{self._keymap_problem}\n(press {keymap.describe(self._key_of('dismiss'))} to dismiss)",
                        title="key config", severity="warning", timeout=STAYS)
        self._load_image_refs()

    _theme_ready = False  # set once the saved theme is applied: only the user's changes are saved

    def watch_theme(self, theme: str) -> None:
        """The theme chosen in the palette is the next session's too."""
        if self._theme_ready:
            problem = prefs.save_theme(self.config.root, theme)
            if problem:
                self.notify(problem, severity="warning", timeout=5)

    # ---- quitting and crashing

    def exit(self, result: None = None, return_code: int = 0, message: Any = None) -> None:
        self.quitting = True
        super().exit(result, return_code, message)

    async def on_event(self, event: events.Event) -> None:
        # `q` is final: keys already queued behind it (typed ahead) must not open a shell or stop a
        # container while the app is closing.
        if self.quitting and isinstance(event, events.InputEvent):
            return
        await super().on_event(event)

    def _handle_exception(self, error: Exception) -> None:
        # Textual's hook for an unhandled exception (it then prints the traceback and exits with
        # return_code 1): keep the traceback in a file as well, so `run_app` can name it.
        self.quitting = True
        if self.crash_file is None:
            self.crash_summary = f"{type(error).__name__}: {error}"
            self.crash_file = save_crash_report(self.config.root, error)
        super()._handle_exception(error)

    # ---- the refresh loop

    def _target(self) -> DataScreen | None:
        for screen in reversed(self.screen_stack):
            if isinstance(screen, DataScreen):
                return screen
        return None

    def refresh_now(self) -> None:
        """Refresh as soon as possible, without starting a second loop."""
        if self._in_flight:
            self._again = True
            return
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.call_later(self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self._in_flight or not self.is_running:
            return
        screen = self._target()
        job = screen.refresh_job() if screen is not None else None
        if screen is None or job is None:
            self._schedule()
            return
        self._in_flight = True
        backend = self.backend

        def fetch() -> None:
            start = time.thread_time()
            try:
                data, error = job(backend), None
            except Exception as exc:  # shown on screen; the loop goes on
                data, error = None, f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
            self.post_message(RefreshDone(screen, data, time.thread_time() - start, error))

        self.run_worker(fetch, thread=True, group="refresh", exit_on_error=False)

    def on_refresh_done(self, message: RefreshDone) -> None:
        start = time.thread_time()
        self._in_flight = False
        screen = message.screen
        if message.error is not None:
            self.notify(message.error, title="refresh failed", severity="error", timeout=3)
        elif screen.is_attached and (screen.is_active or screen is self._target()):
            try:
                screen.apply_data(message.data)
            except NoMatches:  # the screen is being torn down (quit) while a refresh was in flight
                pass
        self.refresh_count += 1
        self.refresh_costs.append((message.fetch_cpu, time.thread_time() - start))
        if self._again:
            self._again = False
            self.call_later(self._tick)
        else:
            self._schedule()

    def _schedule(self) -> None:
        if self.refresh_interval > 0 and self._timer is None:
            self._timer = self.set_timer(self.refresh_interval, self._tick)

    # ---- navigation

    def action_show(self, name: str) -> None:
        if self.current_mode != name:
            self.switch_mode(name)

    def action_help(self) -> None:
        """Help with the screen in view's keys first: its own bindings, as that screen holds them."""
        target = self._target()
        bindings = type(target).BINDINGS if target is not None else []
        own = tuple(dict.fromkeys(b.id.removeprefix("dockui.") for b in bindings
                                  if isinstance(b, Binding) and b.id and b.id.startswith("dockui.")))
        self.push_screen(HelpScreen(self.current_mode if target is not None else None, own))

    def action_jump(self) -> None:
        """`:` as k9s's: a one-line prompt naming a view (tui/screens/jump.py)."""
        def done(jump: Jump | None) -> None:
            if jump is not None:
                self.run_worker(self.jump_to(jump), group="jump", exit_on_error=False)

        self.push_screen(JumpPrompt(), done)

    async def jump_to(self, jump: Jump) -> None:
        """Go where a resolved `:` line says; a container that is not there is a notice, not a move."""
        if jump.target in ("detail", "logs"):
            view = self.find_container(jump.argument) if jump.argument else None
            if jump.argument and view is None:
                self.notify(f"no container {jump.argument!r} (a name, or the start of a name or ID)",
                            severity="warning", timeout=4)
                return
            if view is not None:
                self.selected_id = view.id
            self.detail_tab = "logs" if jump.target == "logs" else None
            if isinstance(self.screen, DetailScreen):
                self.screen.on_screen_resume()  # the same screen, another container or tab
            else:
                await self.switch_mode("detail")
            return
        simple = {"pull": lambda: self.action_pull(jump.argument), "run": lambda: self.action_run_dialog(jump.argument),
                  "help": self.action_help, "quit": self.exit}
        if jump.target in simple:
            simple[jump.target]()
            return
        mode = {"networks": "network"}.get(jump.target, jump.target)
        if self.current_mode != mode:
            await self.switch_mode(mode)
        if jump.argument and isinstance(self.screen, DataScreen):  # resolve() gives one to filtered views only
            self.screen.set_filter_text(jump.argument)

    def find_container(self, text: str) -> ContainerView | None:
        """A container by its name, else the one whose name or ID starts with `text` (when only one does)."""
        exact = [c for c in self.containers if text in (c.name, c.id)]
        if exact:
            return exact[0]
        found = [c for c in self.containers if c.name.startswith(text) or c.id.startswith(text)]
        return found[0] if len(found) == 1 else None

    def action_pull(self, reference: str = "") -> None:
        def done(image_id: str | None) -> None:
            self._load_image_refs()
            self.refresh_now()

        self.push_screen(PullDialog(reference), done)

    def action_run_dialog(self, image: str = "") -> None:
        def done(container_id: str | None) -> None:
            if container_id:
                self.notify(f"started {container_id[:12]}", timeout=2)
                self.selected_id = container_id
            self.refresh_now()

        self.push_screen(RunDialog(image, self.image_refs), done)

    # ---- engine work off the UI thread

    def _in_worker(self, label: str, fn: Any, *args: Any, container_id: str | None = None,
                   pending: Pending | None = None, title: str = "") -> None:
        def work() -> None:
            try:
                result = fn(*args)
            except Exception as exc:
                self.post_message(ActionDone(label, str(exc) or type(exc).__name__, container_id, pending,
                                             title or "engine error"))
                return
            text = label if not isinstance(result, list) else label + ("\n" + "\n".join(result) if result else "")
            self.post_message(ActionDone(text, None, container_id, pending))

        self.run_worker(work, thread=True, group="actions", exit_on_error=False)

    def on_action_done(self, message: ActionDone) -> None:
        if message.container_id is not None and message.pending is not None:
            self.actions.end(message.container_id, message.pending)
        if message.error:
            self.notify_error(message.error, title=message.title)
        else:
            self.notify(message.text, timeout=3)
        self._bindings_changed()
        self.refresh_now()

    def notify_error(self, text: str, title: str) -> None:
        """An error stays on screen, whole, until the user dismisses it (z): a toast that vanishes in
        a few seconds is easily missed, and the full message is what a person needs to act."""
        self.notices += 1
        self.notify(f"{text}\n(press {keymap.describe(self._key_of('dismiss'))} to dismiss)", title=title,
                    severity="error", timeout=STAYS)
        self._bindings_changed()

    def engine_call(self, label: str, fn: Any, *args: Any, title: str = "") -> None:
        """An engine change that is not a container action (networks, volumes, images), in a worker:
        `label` on success, the engine's message (kept until dismissed) on failure."""
        self._in_worker(label, fn, *args, title=title)

    def confirm_then(self, question: str, yes: str, label: str, fn: Any, *args: Any) -> None:
        """Ask first; on yes, `engine_call`."""
        def confirmed(answer: bool | None) -> None:
            if answer:
                self.engine_call(label, fn, *args, title=f"{yes.lower()} failed")

        self.push_screen(ConfirmDialog(question, yes), confirmed)

    # ---- container actions: one at a time per container, shown in STATUS while they run

    def container_allows(self, view: ContainerView | None, action: str, parameters: tuple[object, ...]) -> bool:
        """Whether a screen offers `action` (container(verb), kill_now, exec_shell) for `view`."""
        if view is None:
            return False
        pending = self.actions.pending.get(view.id)
        if action == "kill_now":
            return pending is not None and pending.verb in ("stop", "restart")
        if pending is not None:
            return False  # one action at a time; kill_now above is the exception
        if action in ("exec_shell", "attach"):
            return view.status == "running"
        verb = str(parameters[0]) if parameters else ""
        if verb == "pause":
            return view.status in ("running", "paused")
        return verb in allowed_actions(view.status)

    def observe(self, views: tuple[ContainerView, ...]) -> tuple[ContainerView, ...]:
        """Every refresh's containers pass here: deaths are noticed, pending actions overlaid."""
        for death in self.actions.deaths(views):
            self.notices += 1
            self.notify(f"{death.name} ({death.id[:12]}) stopped on its own: {death.summary}. "
                        f"Press {keymap.describe(self._key_of('dismiss'))} to dismiss.",
                        title="container died", severity="error", timeout=STAYS)
            self._bindings_changed()
        return self.actions.overlay(views)

    def _key_of(self, action_id: str) -> str:
        return self.key_overrides.get(f"dockui.{action_id}", keymap.DEFAULTS[action_id][0])

    def _bindings_changed(self) -> None:
        self.refresh_bindings()
        for screen in self.screen_stack:
            if hasattr(screen, "bindings_changed"):
                screen.bindings_changed()

    def action_dismiss_notices(self) -> None:
        self.clear_notifications()
        self.notices = 0
        self._bindings_changed()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "dismiss_notices":
            return self.notices > 0
        if action == "jump":  # a `:` typed into an input (8080:80, busybox:latest) or over a dialog stays a `:`
            return isinstance(self.screen, DataScreen) and not isinstance(self.focused, Input)
        return True

    def container_action(self, verb: str, view: ContainerView) -> None:
        if verb == "pause" and view.status == "paused":
            verb = "unpause"
        refusal = self.actions.refusal(verb, view)
        if refusal is not None:
            self.notify(refusal, title=f"{verb} refused", severity="warning", timeout=3)
            return
        if verb == "remove":
            question = f"Remove container {view.name} ({view.short_id})?"
            if view.status in ("running", "paused", "restarting"):
                question += "\nIt is running: it will be killed first (rm -f)."

            def confirmed(yes: bool | None) -> None:
                if yes and self.actions.refusal("remove", view) is None:
                    self._start_action("remove", view)

            self.push_screen(ConfirmDialog(question), confirmed)
            return
        self._start_action(verb, view)

    def copy_container(self, view: ContainerView, what: str) -> None:
        """The container's full ID or its name to the terminal's clipboard, by OSC 52 as k9s does
        (Textual's copy_to_clipboard: works over ssh and in tmux with set-clipboard on)."""
        self.copy_text(view.id if what == "id" else view.name, "ID" if what == "id" else "name")

    def copy_text(self, text: str, what: str) -> None:
        """`text` to the terminal's clipboard by OSC 52; the notice shows it (an ID cut to 12)."""
        self.copy_to_clipboard(text)
        shown = text if what != "ID" else text.removeprefix("sha256:")[:12] + "…"
        self.notify(f"copied {what} {shown} to the clipboard (OSC 52)", timeout=2)

    def show_events_of(self, view: ContainerView) -> None:
        """The events screen, filtered by the container's name."""
        self.events_filter = view.name  # the events screen takes it when it is shown
        self.action_show("events")

    def save_log(self, view: ContainerView, timestamps: bool) -> None:
        """The container's whole log to a new file (tui/logfile.py), in a worker; the notice names it."""
        path = logfile.new_path(view.name)

        def job() -> list[str]:
            return [f"{logfile.save(self.backend, view.id, path, timestamps)} lines in {path}"]

        self._in_worker(f"saved the log of {view.name}", job, title=f"saving the log of {view.name} failed")

    def bulk_action(self, verb: str, views: list[ContainerView]) -> None:
        """One verb on every marked container it applies to (the rest are named and skipped); remove
        and kill ask once for all of them."""
        applies = [v for v in views if self.container_allows(v, "container", (verb,))]
        skipped = [v.name for v in views if v not in applies]
        if not applies:
            self.notify(f"{verb} applies to none of the marked containers", title=f"{verb} refused",
                        severity="warning", timeout=4)
            return

        def go() -> None:
            for view in applies:
                if view.id in self.actions.pending:  # an action began while the question was open
                    continue
                self._start_action("unpause" if verb == "pause" and view.status == "paused" else verb, view)
            note = f"{verb}: {', '.join(v.name for v in applies)}"
            if skipped:
                note += f" (skipped, not applicable: {', '.join(skipped)})"
            self.notify(note, timeout=4)

        if verb not in ("remove", "kill"):
            go()
            return
        running = [v.name for v in applies if v.status in ("running", "paused", "restarting")]
        question = f"{'Remove' if verb == 'remove' else 'Kill'} {len(applies)} containers: " \
                   f"{', '.join(v.name for v in applies)}?"
        if verb == "remove" and running:
            question += f"\nRunning ones are killed first (rm -f): {', '.join(running)}."
        if skipped:
            question += f"\nSkipped (not applicable): {', '.join(skipped)}."

        def confirmed(yes: bool | None) -> None:
            if yes:
                go()

        self.push_screen(ConfirmDialog(question, "Remove all" if verb == "remove" else "Kill all"), confirmed)

    def _start_action(self, verb: str, view: ContainerView) -> None:
        entry = self.actions.begin(verb, view.id)
        self._in_worker(f"{view.name} {VERB_WORDS.get(verb, verb)}", self.backend.container_action, verb, view.id,
                        container_id=view.id, pending=entry, title=f"{verb} {view.name} failed")
        self._bindings_changed()
        self.refresh_now()  # STATUS says "Stopping… 0 s" at once

    def remove_image(self, image: ImageView) -> None:
        """Ask first; an image containers use is removed with force (rmi -f), and the question names
        them (the engine still refuses while one of them runs)."""
        question = f"Remove image {image.reference} ({image.short_id})?"
        if image.used_by:
            question += (f"\nUsed by {len(image.used_by)} container(s): {', '.join(image.used_by)}.\n"
                         "It is removed with force (rmi -f): stopped ones keep their files but lose their image; "
                         "the engine refuses while one runs.")

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._in_worker(f"removed {image.reference}", self.backend.remove_image, image.reference,
                                bool(image.used_by), title=f"remove {image.reference} failed")

        self.push_screen(ConfirmDialog(question, "Remove with force" if image.used_by else "Remove"), confirmed)

    def import_host_busybox(self) -> None:
        self.notify("importing the host's busybox as busybox:latest…", timeout=2)

        def job() -> list[str]:
            image_id = self.backend.import_host_busybox()
            return [f"busybox:latest = {image_id.removeprefix('sha256:')[:12]}; press n to run a container"]

        self._in_worker("imported", job)
        self._load_image_refs()

    def exec_shell(self, view: ContainerView) -> None:
        """Find a shell that runs in the container (a worker: it execs into it), then suspend and run it."""
        if self.quitting:
            return

        def find() -> None:
            try:
                command, error = self.backend.exec_command(view.id), None
            except Exception as exc:
                command, error = None, str(exc) or type(exc).__name__
            self.post_message(ShellReady(view, command, error))

        self.run_worker(find, thread=True, group="exec", exit_on_error=False)

    def on_shell_ready(self, message: ShellReady) -> None:
        view = message.view
        if self.quitting:
            return
        if message.error is not None:
            self.notify_error(message.error, title=f"no shell in {view.name}")
            return
        if message.command is None:
            self.notify("exec needs the real engine", severity="warning", timeout=2)
            return
        try:
            with self.suspend():
                print(f"dockui: shell in {view.name} ({view.short_id}); exit the shell to come back", flush=True)
                subprocess.run(message.command, check=False)
        except Exception as exc:  # SuspendNotSupported (headless), or exec failing
            self.notify_error(f"shell unavailable: {exc}", title="shell failed")
        self.refresh_now()

    def attach(self, view: ContainerView) -> None:
        """Hand the terminal to `dockui attach` (App.suspend, as `e` does) until ctrl-p ctrl-q
        detaches or the container's process ends, then come back. Only a container run with -i -t
        can be detached from (Docker reads the detach keys on a terminal's input): for another one
        the notice says so and what to use instead, rather than hand over a terminal that ctrl-c
        alone could leave (and that would stop the container)."""
        if self.quitting:
            return
        if not view.attachable:
            self.notify(f"{view.name} was not started with -i -t: there is no terminal to attach to and no "
                        "detach keys (Docker's rule). l follows its output, e opens a shell in it.",
                        title="attach", severity="warning", timeout=6)
            return
        command = self.backend.attach_command(view.id)
        if command is None:
            self.notify("attach needs the real engine", severity="warning", timeout=2)
            return
        status: int | None = None
        try:
            with self.suspend():
                print(f"dockui: attached to {view.name} ({view.short_id}); {DETACH_KEYS} detaches and comes back, "
                      "the container runs on (enter shows its prompt)", flush=True)
                status = subprocess.run(command, check=False).returncode
                if status != 0:  # the attach client's error, or the process's own status: leave it readable
                    _wait_for_enter(f"dockui: attach ended with status {status}; press enter to go back")
        except Exception as exc:  # SuspendNotSupported (headless), or the attach failing
            self.notify_error(f"attach unavailable: {exc}", title="attach failed")
        if status == 0:
            self.notify(f"back from {view.name} ({DETACH_KEYS} detaches; it runs on unless its process ended)",
                        timeout=4)
        self.refresh_now()

    def _load_image_refs(self) -> None:
        def job() -> None:
            try:
                refs = sorted({image.reference for image in self.backend.images()})
            except Exception:
                return
            self.call_from_thread(setattr, self, "image_refs", refs)

        self.run_worker(job, thread=True, group="images", exit_on_error=False)

    # ---- command palette: every action

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for name, title in (("containers", "Containers"), ("images", "Images"), ("network", "Network"),
                            ("detail", "Container detail"), ("volumes", "Volumes")):
            yield SystemCommand(f"Show {title}", f"Switch to the {title} screen",
                                lambda name=name: self.action_show(name))
        yield SystemCommand("Pull image", "Pull an image from a registry", self.action_pull)
        yield SystemCommand("Run container", "Create and start a container", self.action_run_dialog)
        yield SystemCommand("Import host busybox", "Import the host's busybox-static as busybox:latest",
                            self.import_host_busybox)
        yield SystemCommand("Help", "List every key binding", self.action_help)
        target = self._target()
        view = getattr(target, "selected", None) if isinstance(target, ContainersScreen) else \
            getattr(target, "container_view", None)
        if isinstance(view, ContainerView):
            allowed = allowed_actions(view.status) | ({"unpause"} if view.status == "paused" else set())
            if view.id in self.actions.pending:
                allowed = {"kill"} if self.container_allows(view, "kill_now", ()) else set()
            for verb in ("start", "stop", "restart", "kill", "pause", "unpause", "remove"):
                if verb in allowed:
                    yield SystemCommand(f"{verb.capitalize()} {view.name}", f"{verb} the selected container",
                                        lambda verb=verb, view=view: self.container_action(verb, view))
            if view.status == "running":
                yield SystemCommand(f"Shell in {view.name}", "exec sh in the container",
                                    lambda view=view: self.exec_shell(view))
            if view.status == "running" and view.attachable:
                yield SystemCommand(f"Attach to {view.name}", f"dockui attach; {DETACH_KEYS} comes back",
                                    lambda view=view: self.attach(view))
        if isinstance(target, ContainersScreen):
            yield SystemCommand("Filter containers", "Filter by name, image, status or label", target.action_filter)
            yield SystemCommand("Sort containers", "Cycle the sort column", target.action_sort)
        if isinstance(target, DetailScreen):
            for tab in TABS:
                yield SystemCommand(f"Detail: {tab}", f"Show the {tab} tab",
                                    lambda tab=tab, target=target: target.action_detail(tab))


def _wait_for_enter(prompt: str) -> None:
    """In the suspended terminal (cooked mode): a line to read before the app takes the screen back."""
    print(prompt, flush=True)
    try:
        sys.stdin.readline()
    except (OSError, ValueError):
        pass


def run_app(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="dockui")
    add_global_options(parser)
    args = parser.parse_args(list(argv))
    if os.geteuid() != 0:
        print("dockui: the full-screen session needs root (containers, cgroups, netlink): run `sudo dockui`",
              file=sys.stderr)
        return 1
    app = DockuiApp(config_from_args(args))
    app.run()
    return exit_status(app)


def exit_status(app: DockuiApp) -> int:
    """The process status after the app returned: non-zero after a crash, with the report's path."""
    if app.crash_file is not None:
        print(f"dockui: the session crashed ({app.crash_summary}); the traceback is in {app.crash_file}",
              file=sys.stderr)
        return 1
    return app.return_code or 0


def save_crash_report(root: Path, error: BaseException) -> Path:
    """Write the traceback to `<root>/tui-crash-<time>-<pid>.txt` (the temp dir if the root is not
    writable) and return the path."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    name = f"tui-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    for directory in (Path(root), Path(tempfile.gettempdir())):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / name
            path.write_text(text)
            return path
        except OSError:
            continue
    return Path(tempfile.gettempdir()) / name
