"""Docker's wait conditions (`not-running`, `next-exit`, `removed`) over the container's record.

`lifecycle.wait` answers the plain `docker wait`; the Engine API also asks for the next exit of a
container that has not started yet (the docker CLI's foreground `run` waits before it starts) and
for its removal (`run --rm`). A `Waiter` is a small state machine over successive records, so a
blocking caller (`wait_for`, the CLI) and a non-blocking one (the service polls it from its event
loop) share one definition of "done". Invariant: the baseline is taken when the waiter is made, so
a `next-exit` never reports an exit that happened before it was asked for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from engine.config import EngineConfig
from engine.container import state
from engine.container.state import ACTIVE_STATUSES, ContainerRecord
from engine.errors import InvalidArgument, NotFound

CONDITIONS = ("not-running", "next-exit", "removed")
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class WaitResult:
    """What `docker wait` reports: the exit code, and the error text Docker puts beside it."""

    status_code: int
    error: str = ""


def _settled(record: ContainerRecord) -> bool:
    """Not running, and no monitor about to start it (a `created` container being started)."""
    if record.status in ACTIVE_STATUSES:
        return False
    return not (record.status == "created" and state.process_alive(record.monitor_pid, record.monitor_start))


class Waiter:
    """Polls one container's record until the condition holds (`poll` returns the result then)."""

    def __init__(self, config: EngineConfig, ref: str, condition: str = "not-running") -> None:
        condition = condition or "not-running"
        if condition not in CONDITIONS:
            raise InvalidArgument(f"invalid condition: {condition!r} (expected one of {', '.join(CONDITIONS)})")
        self.config = config
        self.condition = condition
        record = state.find_container(config, ref)
        self.id = record.id
        self.last = record
        # The exit that counts for next-exit: one that finishes after now (a new FinishedAt).
        self.baseline_finished = record.finished_at if not record.running else None
        self.finished_at_start = record.finished_at  # a later one: it exited since (then restarted, maybe)
        self.seen_running = record.running
        self.made_ns = time.time_ns() - 1_000_000_000  # a die a moment before counts (clock steps)

    def _exit_code_of_removed(self) -> int:
        """The exit code of a container removed between two polls: its record is gone, so it is
        read from its last `die` event (the record's last state when there is none)."""
        from engine import eventlog

        code = self.last.exit_code
        for event in eventlog.read_events(self.config, since_ns=self.made_ns):
            if event.type == "container" and event.action == "die" and event.actor_id == self.id:
                try:
                    code = int(event.attributes.get("exitCode", code))
                except ValueError:
                    pass
        return code

    def poll(self) -> WaitResult | None:
        """The result once the condition holds; None while it does not yet."""
        from engine.container.reconcile import reconcile

        try:
            record = state.load(self.config, self.id)
        except NotFound:  # removed (an --rm container's monitor removes it): every condition holds
            return WaitResult(self._exit_code_of_removed(), self.last.error)
        self.last = record
        if record.status in ACTIVE_STATUSES and not state.process_alive(record.monitor_pid, record.monitor_start):
            reconcile(self.config)  # its monitor died: record the exit now
            return None
        if record.running:
            self.seen_running = True
        if self.condition == "removed":
            return None
        if record.finished_at and record.finished_at != self.finished_at_start and record.status in ("restarting", "running"):
            # It exited since the wait began and its restart policy brought it back (or is about
            # to): Docker wakes its waiters at that exit, with its code.
            return WaitResult(record.exit_code, record.error)
        if not _settled(record):
            return None
        if self.condition == "next-exit" and not self.seen_running and record.finished_at == self.baseline_finished:
            return None
        return WaitResult(record.exit_code, record.error)


def wait_for(config: EngineConfig, ref: str, condition: str = "not-running", timeout: float | None = None) -> WaitResult:
    """Block until `condition` holds for the container (`docker wait --condition`)."""
    waiter = Waiter(config, ref, condition)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        result = waiter.poll()
        if result is not None:
            return result
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"container {waiter.id[:12]} still running after {timeout} s")
        time.sleep(POLL_SECONDS)
