"""`rm [-f] [-v]` and `container prune`: kill a running container when forced (until its monitor is
done: it may be starting it right now), then remove it (cleanup.remove_stopped).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from engine import events
from engine.config import EngineConfig
from engine.container import state
from engine.container.cleanup import (
    best_effort,
    container_cgroup,
    monitor_done,
    remove_stopped,
    signal_container,
    wait_monitor_exit,
)
from engine.container.state import ACTIVE_STATUSES, ContainerRecord, find_container
from engine.container.sweep import sweep
from engine.errors import Conflict, NotFound


def remove(config: EngineConfig, ref: str, force: bool = False, volumes: bool = False) -> ContainerRecord:
    """`rm [-f] [-v]`: kill if forced, then cgroup, network, writable layer, volumes, record."""
    record = find_container(config, ref)
    if record.running or (record.status == "created" and state.process_alive(record.monitor_pid, record.monitor_start)):
        if not force:  # moby's words (daemon/delete.go), naming the container as it was given
            if record.status == "paused":
                raise Conflict(f'cannot remove container "{ref}": container is paused and must be unpaused first')
            state_word = "restarting" if record.status == "restarting" else "running"
            raise Conflict(f'cannot remove container "{ref}": container is {state_word}: '
                           "stop the container before removing or force remove")

        def mark(r: ContainerRecord) -> None:
            r.stop_requested = True

        record = state.update(config, record.id, mark)
        watched = (record.monitor_pid, record.monitor_start)
        if record.running:
            events.container(config, "kill", record, signal=int(signal.SIGKILL))  # moby's rm -f: kill, die, destroy
        if record.status == "paused":
            events.container(config, "unpause", record)  # thawed below: moby's monitor logs the resume
        # Kill until the monitor is done: it may be starting the container right now, so one
        # round of signals could come before the process exists.
        deadline = time.monotonic() + 15
        while True:
            try:
                current = state.load(config, record.id)
            except NotFound:
                return record  # the monitor removed it (--rm)
            if monitor_done(current):
                record = current
                wait_monitor_exit(*watched)  # its `die` is written: `destroy` comes after it
                break
            if current.status in ACTIVE_STATUSES and not state.process_alive(current.monitor_pid, current.monitor_start):
                sweep(config)
                continue
            cg = container_cgroup(config, current)
            with best_effort():
                if cg.frozen:
                    cg.thaw()
            with best_effort():
                cg.kill_all(signal.SIGKILL)
            signal_container(current, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise Conflict(f"could not stop container {current.id} for removal (its monitor is still busy)")
            time.sleep(0.02)
        if record.status == "removing" and record.host_config.get("AutoRemove"):
            # --rm: the monitor is removing it after the exit our kill caused; Docker's rm -f of such
            # a container succeeds too (its removal goes first and the auto-remove finds it gone)
            _wait_gone(config, record.id)
            return record
    return remove_stopped(config, record.id, remove_volumes=volumes)


def _wait_gone(config: EngineConfig, container_id: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state.load(config, container_id)
        except NotFound:
            return
        time.sleep(0.02)
    raise Conflict(f"removal of container {container_id} is already in progress")


def prune(config: EngineConfig, selected: Callable[[ContainerRecord], bool] | None = None) -> list[str]:
    """Remove every stopped container (that `selected` lets go: prune's filters); their IDs."""
    removed = []
    for record in state.list_containers(config):
        if selected is not None and not selected(record):
            continue
        if record.status in ("exited", "created", "dead") and not state.process_alive(record.monitor_pid, record.monitor_start):
            try:
                remove(config, record.id)
                removed.append(record.id)
            except (Conflict, NotFound):
                continue
    return removed
