"""What the app is waiting for, and what happened without it: pending container actions and deaths.

An engine action (stop, restart, remove, ...) runs in a worker and may take seconds (a stop waits up to
the container's stop timeout before SIGKILL). Meanwhile the engine's record still says "running", so
the app overlays the pending action on the container's view: STATUS reads `Stopping… 7 s`, the other
actions are refused, and only `K` (kill now) is offered while a stop or restart waits.

The same place watches transitions between refreshes: a container that was live and is now exited with
a non-zero code (or OOM-killed), without an action of ours to explain it, "died unexpectedly".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from tui.backend import ContainerView

# verb -> the words STATUS shows while it runs
PENDING_WORDS = {"start": "Starting…", "stop": "Stopping…", "restart": "Restarting…", "kill": "Killing…",
                 "pause": "Pausing…", "unpause": "Unpausing…", "remove": "Removing…"}
# a stop or restart may be cut short by a kill; nothing else may overlap a pending action
INTERRUPTIBLE = {"stop", "restart"}
# an exit seen this long after one of our own actions on the container is ours, not a death
EXPECTED_FOR = 15.0


@dataclass(frozen=True)
class Pending:
    verb: str
    since: float  # monotonic


@dataclass(frozen=True)
class Death:
    """A container that stopped on its own, as the notice shows it."""

    id: str
    name: str
    summary: str  # "Exited (137) · OOM killed"


class PendingActions:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.pending: dict[str, Pending] = {}
        self._ours: dict[str, float] = {}  # container id -> when our last action on it ended
        self._last_status: dict[str, str] = {}

    # ---- actions

    def refusal(self, verb: str, view: ContainerView) -> str | None:
        """Why `verb` may not start now on `view` (None: it may)."""
        current = self.pending.get(view.id)
        if current is None:
            return None
        if verb == "kill" and current.verb in INTERRUPTIBLE:
            return None
        words = PENDING_WORDS.get(current.verb, current.verb).removesuffix("…").lower()
        hint = "; K kills it now" if current.verb in INTERRUPTIBLE else ""
        return f"{view.name} is already {words} ({self.elapsed(view.id)} s){hint}"

    def begin(self, verb: str, container_id: str) -> Pending:
        entry = Pending(verb, self.clock())
        self.pending[container_id] = entry
        return entry

    def end(self, container_id: str, entry: Pending) -> None:
        """The action finished (or failed). A kill that cut a stop short ends the stop's wait too."""
        self._ours[container_id] = self.clock()
        if self.pending.get(container_id) is entry:
            del self.pending[container_id]

    def elapsed(self, container_id: str) -> int:
        entry = self.pending.get(container_id)
        return int(self.clock() - entry.since) if entry else 0

    # ---- views

    def overlay(self, views: Iterable[ContainerView]) -> tuple[ContainerView, ...]:
        """The views with pending actions shown in STATUS."""
        out = []
        for view in views:
            entry = self.pending.get(view.id)
            if entry is not None:
                words = PENDING_WORDS.get(entry.verb, entry.verb)
                text = f"{words} {self.elapsed(view.id)} s" if entry.verb in INTERRUPTIBLE else words
                view = replace(view, state_text=text, pending=entry.verb)
            out.append(view)
        return tuple(out)

    def deaths(self, views: Iterable[ContainerView]) -> list[Death]:
        """Containers that were live at the previous look and have exited since on their own: a non-zero
        exit code or the OOM killer, and no action of ours on them in the last EXPECTED_FOR seconds."""
        now = self.clock()
        for cid, when in list(self._ours.items()):
            if now - when > EXPECTED_FOR:
                del self._ours[cid]
        found = []
        seen = {}
        for view in views:
            seen[view.id] = view.status
            before = self._last_status.get(view.id)
            if before not in ("running", "paused", "restarting") or view.status not in ("exited", "dead"):
                continue
            if view.id in self.pending or view.id in self._ours:
                continue
            if view.exit_code == 0 and not view.oom_killed:
                continue  # a job that finished
            code = view.exit_code if view.exit_code is not None else "?"
            found.append(Death(view.id, view.name, f"Exited ({code})" + (" · OOM killed" if view.oom_killed else "")))
        self._last_status = seen
        return found
