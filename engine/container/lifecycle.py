"""A created container's life after `start`: stop, kill, restart, pause, unpause, wait, rename.

The monitor owns the container's process; these verbs signal it (or freeze its cgroup) and then
watch the record until the monitor has written the outcome. A monitor found dead on the way is
cleaned up by `reconcile` there and then, so no verb waits for a process that is gone.

Events in moby's order (daemon/stop.go, kill.go, restart.go): each signal sent is a `kill` event
with its number, written as it is sent, before the monitor's `die`; `stop` and `restart` come
last, once the run is over (or has started again).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from engine import events
from engine.config import DEFAULTS, EngineConfig
from engine.container import state
from engine.container.cleanup import (
    best_effort,
    container_cgroup,
    monitor_done,
    signal_container,
    wait_monitor_exit,
)
from engine.container.options import DEFAULT_STOP_TIMEOUT
from engine.container.reconcile import reconcile
from engine.container.start import start
from engine.container.state import ACTIVE_STATUSES, ContainerRecord, find_container
from engine.errors import Conflict, InvalidArgument, NotFound

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    pass


def _wait_for(
    config: EngineConfig, container_id: str, done: Callable[[ContainerRecord], bool], timeout: float
) -> ContainerRecord | None:
    """Poll the record until `done` (None when it was removed); the record at timeout otherwise."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            record = state.load(config, container_id)
        except NotFound:
            return None
        if done(record):
            return record
        if record.status in ACTIVE_STATUSES and not state.process_alive(record.monitor_pid, record.monitor_start):
            reconcile(config)
            continue
        if time.monotonic() > deadline:
            return record
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _not_running(record: ContainerRecord) -> bool:
    return record.status not in ACTIVE_STATUSES


def stop(config: EngineConfig, ref: str, timeout: int | None = None, sig: str | int | None = None, *,
         restarting: bool = False) -> ContainerRecord:
    """`sig` (default the StopSignal), then SIGKILL after `timeout` seconds (Config.StopTimeout, default 10).
    `restarting`: the stop of a restart, marked in the same update (see restart)."""
    from engine.image.imageconfig import parse_signal

    record = find_container(config, ref)

    def mark(r: ContainerRecord) -> None:
        r.stop_requested = True
        if restarting:
            r.restart_requested = True

    record = state.update(config, record.id, mark)
    if not record.running:
        return record
    if timeout is None:
        timeout = record.config.get("StopTimeout", DEFAULT_STOP_TIMEOUT)
    sig = parse_signal(sig or record.config.get("StopSignal") or DEFAULTS.stop_signal)
    if record.status == "paused":
        signal_container(record, sig)
        container_cgroup(config, record).thaw()
    else:
        signal_container(record, sig)
    # Docker's stop is its kill with the stop signal, then with SIGKILL when the timeout passes:
    # `docker events` shows kill (signal=15), [unpause], [kill (signal=9)], die, stop.
    events.container(config, "kill", record, signal=sig)
    if record.status == "paused":
        events.container(config, "unpause", record)  # moby's monitor logs the task's resume
    # The run this stop signalled is over when its monitor is; a start by another process meanwhile
    # (a concurrent restart) is a new run, never killed here nor waited for.
    watched = (record.monitor_pid, record.monitor_start)

    def started_again(r: ContainerRecord) -> bool:
        return (r.monitor_pid, r.monitor_start) not in (watched, (0, 0))

    grace = float("inf") if timeout < 0 else timeout  # Docker: a negative timeout waits for ever (moby#35311)
    after = _wait_for(config, record.id, lambda r: _not_running(r) or started_again(r), grace)
    if after is not None and after.running and not started_again(after):
        with best_effort():
            container_cgroup(config, after).kill_all(signal.SIGKILL)
        signal_container(after, signal.SIGKILL)
        events.container(config, "kill", after, signal=int(signal.SIGKILL))
    after = _wait_for(config, record.id, lambda r: monitor_done(r) or started_again(r), 15)
    if after is None or not started_again(after):
        wait_monitor_exit(*watched)  # its `die` is written: `stop` comes after it
    events.container(config, "stop", after or record)
    return after or record


def kill(config: EngineConfig, ref: str, sig: int | str = "SIGKILL") -> ContainerRecord:
    from engine.image.imageconfig import parse_signal

    number = parse_signal(sig)
    record = find_container(config, ref)
    if not record.running or record.status == "restarting":
        raise Conflict(f"cannot kill container: {ref}: container {record.id} is not running")  # moby's router words
    if _kill_ends_the_run(record, number):

        def mark(r: ContainerRecord) -> None:
            r.stop_requested = True

        record = state.update(config, record.id, mark)
    signal_container(record, number)
    thawed = record.status == "paused" and _kill_ends_the_run(record, number)
    if thawed:
        container_cgroup(config, record).thaw()  # a frozen process takes no signal: Docker unpauses it too
    events.container(config, "kill", record, signal=number)
    if thawed:
        events.container(config, "unpause", record)  # moby's monitor logs the task's resume
    if number == signal.SIGKILL:
        _wait_for(config, record.id, _not_running, 10)
    return record


def _kill_ends_the_run(record: ContainerRecord, number: int) -> bool:
    """Docker's rule (moby's killWithSignal): SIGKILL, the container's StopSignal, or any signal
    when it has none is a kill its restart policy does not undo (the next exit is final, until the
    next start); another signal (a reload's SIGHUP to a container stopped by SIGQUIT) keeps the policy."""
    from engine.image.imageconfig import parse_signal

    own = record.config.get("StopSignal")
    return number == signal.SIGKILL or not own or parse_signal(own) == number


def restart(config: EngineConfig, ref: str, timeout: int | None = None) -> ContainerRecord:
    """stop, then start; an --rm container is kept across it (Docker's HasBeenManuallyRestarted):
    the stop marks it, the start's claim clears the mark."""
    record = stop(config, ref, timeout, restarting=True)
    started = start(config, record.id).record
    events.container(config, "restart", started)
    return started


def pause(config: EngineConfig, ref: str) -> ContainerRecord:
    record = find_container(config, ref)
    if record.status != "running":
        raise Conflict(f"container {record.id} is not running" if record.status != "paused" else f"Container {record.id} is already paused")
    with state.locked(config, record.id) as locked:
        if locked.status != "running":  # it stopped since the look above: its cgroup may be gone
            raise Conflict(f"container {record.id} is not running")
        try:
            container_cgroup(config, locked).freeze()
        except FileNotFoundError:  # its process is gone and its monitor removed the cgroup: exiting
            raise Conflict(f"container {record.id} is not running") from None
        locked.status = "paused"
    events.container(config, "pause", locked)
    return locked


def unpause(config: EngineConfig, ref: str) -> ContainerRecord:
    record = find_container(config, ref)
    if record.status != "paused":
        raise Conflict(f"Container {record.id} is not paused")
    with state.locked(config, record.id) as locked:
        container_cgroup(config, locked).thaw()
        if locked.status == "paused":
            locked.status = "running"
    events.container(config, "unpause", locked)
    return locked


def wait(config: EngineConfig, ref: str) -> int:
    """Block until the container is not running; its exit code (Docker's `wait`)."""
    record = find_container(config, ref)
    last = record
    while True:
        try:
            last = state.load(config, record.id)
        except NotFound:
            return last.exit_code
        if last.status not in ACTIVE_STATUSES and not (
            last.status == "created" and state.process_alive(last.monitor_pid, last.monitor_start)
        ):
            return last.exit_code
        if not state.process_alive(last.monitor_pid, last.monitor_start):
            reconcile(config)
        time.sleep(0.05)


def rename(config: EngineConfig, ref: str, new_name: str) -> None:
    """`rename`: the record, then the network's records (topology, peers' hosts files)."""
    record = find_container(config, ref)
    if not new_name.strip("/"):
        raise InvalidArgument("Neither old nor new names may be empty")
    name = state.validate_name(new_name)
    if name == record.name:
        raise InvalidArgument("Renaming a container with the same name as its current name")
    try:
        state.rename_record(config, record.id, new_name)
    except Conflict:  # moby's words: the name's holder, and the way out
        holder = find_container(config, name).id
        raise Conflict(f'Error when allocating new name: Conflict. The container name "/{name}" '
                       f'is already in use by container "{holder}". You have to remove (or rename) that container to be '
                       "able to reuse that name.") from None
    from engine.network import endpoint as network

    network.rename(config, record.id, name)
    events.container(config, "rename", find_container(config, record.id), oldName=record.name)
