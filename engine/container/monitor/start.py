"""The monitor's stage 1: claim the container, launch it (launch.py), report to `start`, relay its
output for START_GRACE, then finish it in-process (a short-lived container) or become the small
watch stage (one that lives on, which also gets the `attach` listener).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from engine import events
from engine.config import EngineConfig
from engine.container import state
from engine.container.cleanup import best_effort
from engine.container.monitor.context import (
    ATTACH_SOCKET,
    START_GRACE,
    MonitorContext,
    config_from_json,
    failed_report,
    running_report,
)
from engine.container.monitor.finish import monitor_finish
from engine.container.monitor.launch import launch
from engine.container.monitor.stages import ensure_bytecode, exec_stage, run_put_off
from engine.container.monitor.watch import watch
from engine.container.removal import remove
from engine.container.state import ContainerRecord
from engine.errors import DockuiError, NotFound
from engine.util import trace

# Set by a monitor the `dockui` command forked ahead: the record may name it as its claimant
# already (create wrote it, engine.container.start.PreparedMonitor.claim).
claimed_at_create = False


def monitor_start(ctx: MonitorContext) -> None:
    """Stage 1: start the container, report, then become the small watch stage (or finish a
    short-lived container)."""
    try:
        _monitor_start(ctx)
    finally:
        run_put_off()  # (a start that failed; the others run it on their way below)


def _monitor_start(ctx: MonitorContext) -> None:
    import gc

    # Short-lived (it execs the watch stage, or finishes a container that exited): no cycle
    # collections, each of which touches pages shared copy-on-write with the CLI (~0.2 ms a time).
    gc.disable()
    config = config_from_json(ctx.config)
    cid = ctx.id
    me, me_start = os.getpid(), state.process_start_ticks(os.getpid())

    def claim(r: ContainerRecord) -> None:
        # Compare and set, under the record's lock: of several starts at once exactly one monitor
        # claims the container; the others leave it alone and say it runs (as Docker's start does).
        if (r.monitor_pid, r.monitor_start) != (me, me_start) and state.process_alive(r.monitor_pid, r.monitor_start):
            raise _AlreadyStarted(r.name)
        if r.status in ("removing", "dead"):
            raise _NotStartable(f"container {r.name} is marked for removal and cannot be started")
        r.monitor_pid, r.monitor_start = me, me_start
        if ctx.fresh:  # a start by the user (not by the restart policy)
            r.stop_requested = r.restart_requested = False
            r.restart_count = 0

    try:
        record = _claimed_record(config, cid, me, me_start, ctx.fresh) or state.update(config, cid, claim)
        trace.mark("monitor claimed")
        launch(config, record, ctx)
    except _AlreadyStarted:
        ctx.report({"ok": True, "already_running": True})  # nothing of the record was touched
        return
    except _NotStartable as exc:  # (a removal under way: its record is left as it is)
        ctx.report(failed_report(str(exc), 125))
        return
    except BaseException as exc:  # noqa: BLE001 - everything is reported to the CLI
        if isinstance(exc, DockuiError):
            message, code = str(exc), exc.exit_code
        else:
            import traceback

            traceback.print_exc()
            message, code = f"failed to start the container: {exc}", 125
        _start_failed(config, cid, ctx, message, code)
        return
    events.volume_mounts(config, record)
    events.container(config, "start", record)
    if record.config.get("Healthcheck"):  # only containers with one pay for the checker
        with best_effort():
            _start_health_checker(config, ctx)
    ctx.report(running_report(ctx.pid))
    trace.mark("monitor report")
    if watch(ctx, grace=START_GRACE):
        trace.mark("monitor exited")
        monitor_finish(ctx)  # short-lived: no need for the small stage (saves two interpreter starts)
        run_put_off()  # after the exit went out
        ensure_bytecode()  # for the next runs, after the exit went out (once per process)
    else:
        # Only a container that lives on takes `attach` clients (not on a short run's path);
        # `dockui attach` waits the start's grace period out for it.
        with best_effort():
            ctx.listen_fd = _attach_listener(config.containers_dir / cid)
        run_put_off()
        ensure_bytecode()  # for the watch and finish stages' interpreters
        exec_stage("watch", ctx)


def _claimed_record(config: EngineConfig, cid: str, me: int, me_start: int, fresh: bool) -> ContainerRecord | None:
    """The record, when `create` claimed it for this monitor and nothing changed since; else None
    (the claim's compare-and-set under the lock decides).

    create writes the claim into the record's first complete version, so no other start could
    claim it before; read without the lock, since writers replace the record whole. A stop asked
    for meanwhile (or any other change the claim would have reset) falls back to the locked claim."""
    if not claimed_at_create:
        return None
    record = state.load(config, cid)
    ours = (record.monitor_pid, record.monitor_start) == (me, me_start) and record.status == "created"
    return record if ours and fresh and not (record.stop_requested or record.restart_requested or record.restart_count) else None


def _start_health_checker(config: EngineConfig, ctx: MonitorContext) -> None:
    """State.Health back to "starting" (before the report, so `run -d` then `ps` shows it), then the
    container's checker process (engine.container.monitor.health), if its healthcheck is not NONE."""
    from engine.container import health
    from engine.container.monitor.health import spawn

    if health.of_container(state.load(config, ctx.id).config) is None:
        return

    def reset(r: ContainerRecord) -> None:
        r.health = health.starting(r.health)

    spawn(ctx.config, state.update(config, ctx.id, reset))


class _AlreadyStarted(Exception):
    """Another monitor claimed the container first (a concurrent start)."""


class _NotStartable(Exception):
    """The container is being removed (or dead): no start, and its record is not touched."""


def _start_failed(config: EngineConfig, cid: str, ctx: MonitorContext, message: str, code: int) -> None:
    """The start failed: record it as Docker does (status kept, ExitCode and Error set)."""

    record = None
    try:

        def note(r: ContainerRecord) -> None:
            r.exit_code = code
            r.error = message
            r.monitor_pid = r.monitor_start = 0
            r.pid = r.pid_start = 0
            if r.status != "created":
                r.status = "exited"
                r.finished_at = state.now_rfc3339()

        record = state.update(config, cid, note)
    except NotFound:
        pass
    if record is not None and record.host_config.get("AutoRemove"):
        try:
            remove(config, cid, force=True, volumes=True)
        except Exception as exc:  # noqa: BLE001
            print(f"--rm clean-up failed: {exc}", file=sys.stderr)
    ctx.report(failed_report(message, code))
    ctx.send_exit(code)


def _attach_listener(directory: Path) -> int:
    """A listening unix socket at <container dir>/attach.sock, for `dockui attach`; its fd goes to
    the watch stages, which take one client at a time. Bound through /proc/self/fd/<dir>, so a
    long engine root still fits a socket address (108 bytes)."""
    import _socket

    dfd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        path = f"/proc/self/fd/{dfd}/{ATTACH_SOCKET}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a crashed monitor's, or the run before a restart's
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.bind(path)
            os.chmod(path, 0o600)
            sock.listen(4)
        except BaseException:
            sock.close()
            raise
    finally:
        os.close(dfd)
    return sock.detach()
