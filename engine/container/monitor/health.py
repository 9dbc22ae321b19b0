"""The health checker: one small process per running container that has a healthcheck, which runs
the probe every interval inside the container (as `exec` does) and writes `State.Health`.

    monitor stage 1 ──spawn()──► (double fork, setsid) python -S -m engine.container.monitor.health ...
                                   pidfd of the container's first process; every interval:
                                   probe = exec_in_container(pipes only, killed at its timeout)
                                   State.Health under the record's lock; health_status event on a change

Started by the monitor's stage 1 once the container runs (only when it has a healthcheck, so other
containers pay nothing), reparented away from the monitor at once (the monitor's stages wait on the
container alone, never reap it, and a restart's fresh stage 1 starts a fresh checker). It lives
exactly as long as the container's first process: it holds a pidfd of that process and leaves the
moment it exits (a stop, a kill, the container's own exit, reconcile killing what a dead monitor
left), and a probe still running then dies with the container's pid namespace. See docs/lifecycle.md
("Healthchecks") for why a process of its own rather than the watch stage.

Invariants: the container only ever gets pipes the checker made (docs/isolation.md); a result is
written only while the record still names the same container process (pid and start time), so a
checker of an earlier run never writes over a restarted container's health.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time

from engine.container import health, state
from engine.errors import DockuiError, NotFound

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any

    from engine.config import EngineConfig
    from engine.container.state import ContainerRecord


def spawn(config_json: str, record: ContainerRecord) -> None:
    """Start the checker for `record`'s running process (stage 1, after the launch). Returns at once:
    the intermediate child exits as soon as the checker is forked, and is reaped here."""
    from engine.container.monitor.stages import ENGINE_ROOT

    argv = [sys.executable, "-S", "-m", "engine.container.monitor.health", record.id, str(record.pid),
            str(record.pid_start), config_json]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ENGINE_ROOT, env.get("PYTHONPATH")) if p)
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                devnull = os.open(os.devnull, os.O_RDWR)
                os.dup2(devnull, 0)
                os.dup2(devnull, 1)
                os.closerange(3, 1 << 16)  # nothing of the monitor's (status pipe, the container's output)
                os.chdir("/")
                os.execve(sys.executable, argv, env)
        finally:
            os._exit(0)
    os.waitpid(child, 0)


def main(argv: list[str]) -> int:
    from engine.container.monitor.context import config_from_json

    cid, pid, pid_start, config = argv[0], int(argv[1]), int(argv[2]), config_from_json(argv[3])
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return 0
    if state.process_start_ticks(pid) != pid_start:
        return 0  # the pid was reused before we looked: the container is gone
    try:
        record = state.load(config, cid)
    except NotFound:
        return 0
    check = health.of_container(record.config)
    if check is None:
        return 0
    started = state.parse_rfc3339(record.started_at) or time.time()
    while not _gone(pidfd, check.interval_ns / 1e9):
        try:
            record = state.load(config, cid)
        except NotFound:
            return 0
        if (record.pid, record.pid_start) != (pid, pid_start):
            return 0
        if record.status == "paused":
            continue  # a frozen container cannot answer: no result until it is unpaused
        result = probe(record, check)
        if _gone(pidfd, 0):
            return 0
        in_start_period = time.time() - started < check.start_period_ns / 1e9
        if not _record(config, cid, (pid, pid_start), result, check.retries_count, in_start_period):
            return 0
    return 0


def _gone(pidfd: int, wait: float) -> bool:
    """True once the container's process has exited (waiting up to `wait` seconds for it)."""
    return bool(select.select([pidfd], [], [], wait)[0])


def _record(config: EngineConfig, cid: str, process: tuple[int, int], result: dict[str, Any], retries: int,
            in_start_period: bool) -> bool:
    """Write the result into State.Health; emit health_status when the status changed. False when
    the record no longer belongs to this run of the container."""
    from engine import events

    before: list[str] = []

    def change(r: ContainerRecord) -> None:
        if (r.pid, r.pid_start) != process or r.status not in ("running", "paused"):
            return
        before.append(health.status_of(r.health))
        r.health = health.with_result(r.health or health.starting({}), result, retries, in_start_period)

    try:
        record = state.update(config, cid, change)
    except NotFound:
        return False
    if not before:
        return False
    now = health.status_of(record.health)
    if now != before[0]:
        events.container(config, f"health_status: {now}", record)
    return True


def probe(record: ContainerRecord, check: health.Healthcheck) -> dict[str, Any]:
    """Run the check once inside the container: Docker's HealthcheckResult (ExitCode -1 when it could
    not run or overran its timeout, with the reason as its Output)."""
    from engine.container import hostflags
    from engine.image import imageconfig
    from engine.sandbox import process

    begun = state.now_rfc3339()
    argv = check.probe_argv(record.config.get("Shell"))
    env = imageconfig.process_env(record.config.get("Env") or [], record.config.get("Hostname", ""), False)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    try:
        try:
            child = process.exec_in_container(
                record.pid, argv, env, record.config.get("WorkingDir") or "/", record.config.get("User") or "",
                False, (None, out_w, out_w), seccomp_filter=hostflags.seccomp_filter(record.host_config), wait=False)
        finally:
            os.close(out_w)
        output, code = _collect(child, out_r, check.timeout_ns / 1e9)
    except (DockuiError, OSError, ValueError) as exc:  # a probe that could not run is a failed probe,
        output, code = str(exc).encode(), -1  # never the end of the checker
    finally:
        os.close(out_r)
    if code is None:  # moby's words, with what the probe wrote before it was killed
        overran = f"Health check exceeded timeout ({health.format_duration(check.timeout_ns)})".encode()
        output, code = overran + (b": " + output if output else b""), -1
    text = output[: health.OUTPUT_LIMIT].decode("utf-8", "replace")
    return {"Start": begun, "End": state.now_rfc3339(), "ExitCode": code, "Output": text}


def _collect(child: int, out_r: int, timeout: float) -> tuple[bytes, int | None]:
    """The probe's output and exit code; None for the code when it overran `timeout` (then killed).

    Waits on the probe's pidfd, not for EOF: something it left in the background may hold the pipe."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    child_fd = os.pidfd_open(child)
    watched = [out_r, child_fd]
    try:
        while child_fd in watched:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
                return b"".join(chunks), None
            ready = select.select(watched, [], [], left)[0]
            if out_r in ready and not _read_into(out_r, chunks):
                watched.remove(out_r)  # EOF: only its exit is left to wait for
            if child_fd in ready:
                watched.remove(child_fd)
        _, status = os.waitpid(child, 0)
        while out_r in watched and select.select([out_r], [], [], 0)[0] and _read_into(out_r, chunks):
            pass  # what it wrote just before exiting
        code = os.waitstatus_to_exitcode(status)
        return b"".join(chunks), 128 - code if code < 0 else code
    finally:
        os.close(child_fd)


def _read_into(fd: int, chunks: list[bytes]) -> bool:
    """One read, kept while under OUTPUT_LIMIT; False at EOF."""
    data = os.read(fd, 65536)
    if data and sum(map(len, chunks)) < health.OUTPUT_LIMIT:
        chunks.append(data)
    return bool(data)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
