"""`start`: launch the container's monitor and wait for its one report (running, or the error with its
exit status 125/126/127); and the monitor forked ahead of `start` (`prepare_monitor`), as `dockui run`
does it.

The monitor is a fork of a single-threaded caller (the engine is already loaded: the `dockui`
command's child, any other caller's grandchild), or `python -S -m engine.container.monitor start
...` from a threaded one (the TUI), in its own session, so the container outlives the caller. The caller keeps only the status pipe's read end and, when
attached, one end of the attach socketpair. Why each step of this path is shaped as it is (the fork
ahead, the cgroup-migration priming, the light imports) is written once in docs/lifecycle.md.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.config import EngineConfig
from engine.container import state
from engine.container.cleanup import best_effort
from engine.container.monitor import prime
from engine.container.monitor.__main__ import main as monitor_main
from engine.container.monitor.context import (
    CGROUP_READY_LINE,
    MonitorContext,
    attach_socketpair,
    config_to_json,
    write_all,
)
from engine.container.options import network_kind
from engine.container.state import ContainerRecord, find_container
from engine.container.sweep import sweep
from engine.errors import Conflict, DockuiError, NotFound
from engine.util import trace

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any


ENGINE_PARENT = Path(__file__).resolve().parents[2]  # holds engine/
START_REPORT_TIMEOUT = 60


@dataclass
class StartResult:
    """What `start` hands back: the record as the monitor left it, and the attach channel."""

    record: ContainerRecord
    attach: Any = None  # our end of the attach socketpair (attach_socketpair), when asked for


def start(
    config: EngineConfig,
    ref: str,
    attach: bool = False,
    interactive: bool = False,
    winsize: tuple[int, int] | None = None,
    prepared: PreparedMonitor | None = None,
    created: ContainerRecord | None = None,
) -> StartResult:
    """Launch the container's monitor and wait until the user's process runs (or failed to).

    `winsize` (rows, columns) sizes the container's tty before its process starts. `prepared` is a
    monitor forked ahead by `prepare_monitor` (used when its attach mode matches; the caller still
    discards it afterwards, which is a no-op once used). `created`: the record `create` just
    returned in this process (`run`), used instead of reading it back; a start by another process
    meanwhile is still seen, by the monitor's claim under the record's lock.
    """
    record = created if created is not None and created.id == ref else find_container(config, ref)
    if prepared is not None and (prepared.used or prepared.attach != attach):
        prepared = None
    claimed = prepared is not None and prepared.claims(record)  # by create, for the monitor it forked
    if record.status in ("running", "paused", "restarting"):
        if record.status == "paused":
            raise Conflict(f"cannot start a paused container {record.name}, try unpause instead")
        return StartResult(record)
    if record.status in ("removing", "dead"):
        raise Conflict(f"container {record.name} is marked for removal and cannot be started")
    if not claimed and record.monitor_pid and state.process_alive(record.monitor_pid, record.monitor_start):
        record = _settled(config, record)  # another start (or a stop) is under way: its outcome first
        if record.status in ("running", "paused", "restarting"):
            return StartResult(record)  # started by the other: as Docker, that is a success here
        if record.status in ("removing", "dead"):
            raise Conflict(f"container {record.name} is marked for removal and cannot be started")

    primed_by_monitor = prepared is not None  # a monitor forked ahead keeps the fast path open
    if prepared is None and _may_fork():
        prepared = prepare_monitor(attach)
    if prepared is not None:
        status_r, status_w, client, server_fd = prepared.status_r, prepared.status_w, prepared.client, prepared.server_fd
    else:
        status_r, status_w = os.pipe2(os.O_CLOEXEC)
        client = server = None
        if attach:
            client, server = attach_socketpair()
        server_fd = server.fileno() if server else -1
    ctx = MonitorContext(
        id=record.id,
        status_fd=status_w,
        attach_fd=server_fd,
        open_stdin=interactive,
        stdin_once=bool(record.config.get("StdinOnce")),
        fresh=True,
        winsize=f"{winsize[0]}x{winsize[1]}" if winsize else "",
        config=config_to_json(config),
    )
    env = _monitor_env()
    log_path = record.dir(config) / "monitor.log"
    argv = ["start", *ctx.to_argv()]
    if prepared is not None:
        prepared.launch(argv, log_path, env)
    else:
        _spawn_monitor(argv, log_path, env, status_w, server)
    report = _read_report(status_r, primed_by_monitor, log_path)
    trace.mark("cli report")
    if "error" in report:
        if client is not None:
            client.close()
        error = DockuiError(report["error"])
        error.exit_code = int(report.get("exit_code", 125))
        raise error
    try:
        record = state.load(config, record.id)
    except NotFound:
        pass
    return StartResult(record, client)


def _spawn_monitor(argv: list[str], log_path: Path, env: dict[str, str], status_w: int, server: Any) -> None:
    """A monitor as a fresh interpreter (from a threaded caller, where forking is unsafe), in its
    own session; it inherits the status pipe's write end and our attach end's peer."""
    import subprocess

    server_fd = server.fileno() if server else -1
    with open(log_path, "ab") as monitor_log:
        subprocess.Popen(
            [sys.executable, "-S", "-m", "engine.container.monitor", *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=monitor_log,
            pass_fds=[status_w] + ([server_fd] if server_fd >= 0 else []),
            start_new_session=True,
            cwd="/",
            env=env,
        )
    os.close(status_w)
    if server is not None:
        server.close()


def _read_report(status_r: int, primed_by_monitor: bool, log_path: Path) -> dict:
    """The monitor's report (an "error" key when the start failed), after its progress lines;
    closes the status pipe."""
    # The monitor reports within a second or two; a minute means it hangs (a frozen cgroup,
    # a stuck mount): give up rather than block the CLI or the TUI for ever.
    reader = _StatusReader(status_r, START_REPORT_TIMEOUT)
    try:
        line = reader.line()
        if line == CGROUP_READY_LINE:
            # The container's cgroup exists: open the migration fast path while the monitor forks
            # the container's first process (see prime.prime_cgroup_migration), unless it did already.
            if not primed_by_monitor:
                prime.prime_cgroup_migration()
            line = reader.line()
    finally:
        os.close(status_r)
    if line is None:
        line = json.dumps({"error": f"the container's monitor did not report within {START_REPORT_TIMEOUT} s "
                           f"(see {log_path})"}).encode()
    try:
        return json.loads(line) if line else {"error": "the container's monitor exited unexpectedly (see monitor.log)"}
    except ValueError:
        return {"error": f"bad report from the monitor: {line[:200]!r}"}


def _settled(config: EngineConfig, record: ContainerRecord, timeout: float = START_REPORT_TIMEOUT) -> ContainerRecord:
    """The record once the monitor busy with it is done starting (running) or gone (stopped);
    Conflict if that takes longer than a start may."""
    deadline = time.monotonic() + timeout
    while True:
        if record.status in ("running", "paused", "restarting", "removing", "dead"):
            return record
        if not state.process_alive(record.monitor_pid, record.monitor_start):
            return record
        if time.monotonic() > deadline:
            raise Conflict(f"container {record.name} is being started or stopped by another process")
        time.sleep(0.02)
        record = state.load(config, record.id)


class _StatusReader:
    """Lines from the monitor's status pipe, with one overall deadline (None when it passes)."""

    def __init__(self, fd: int, timeout: float) -> None:
        self.fd = fd
        self.deadline = time.monotonic() + timeout
        self.buffer = b""

    def line(self) -> bytes | None:
        import select

        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, self.deadline - time.monotonic()))
            if not ready:
                return None
            chunk = os.read(self.fd, 4096)
            if not chunk:  # the monitor closed it (or died): what came is all there is
                line, self.buffer = self.buffer, b""
                return line
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


PRIME_INTERVAL = 0.004  # well inside one RCU grace period (~10 ms here)
PRIME_FOR_AT_MOST = 1.0  # a long pull: stop; the start then pays the grace period once


def _read_control(
    control_r: int, prime_target: str | None = "", ahead: list[Callable[[], None]] | tuple = ()
) -> dict | None:
    """The start context (one JSON object), or None when the CLI gave up (EOF before it came).

    `prime_target`: see prime.prime_target (looked up here when not given). `ahead`: short warm-up
    steps, run one at a time while nothing has come yet; those left when the context comes are
    skipped (the start does their work itself where it needs it).

    While it waits, this keeps the cgroup-migration fast path open (see prime.prime_cgroup_migration):
    a prime every PRIME_INTERVAL, for at most PRIME_FOR_AT_MOST, so that once the context arrives
    the container's cgroup is made and joined without waiting for an RCU grace period. The first,
    slow prime was taken by the intermediate process (_prepared_monitor_child) or the command's
    thread (_prime_on_a_thread), off this path. Returns as soon as the object is complete: the CLI
    closes its end only after reaping the intermediate process, where there is one.
    """
    import select

    target = prime.prime_target() if prime_target == "" else prime_target
    deadline = time.monotonic() + PRIME_FOR_AT_MOST
    pending = list(ahead)
    data = b""
    while True:
        timeout = PRIME_INTERVAL if time.monotonic() < deadline else None
        ready, _, _ = select.select([control_r], [], [], 0 if pending and not data else timeout)
        if not ready:
            if pending and not data:
                with best_effort():
                    pending.pop(0)()
                if not pending:
                    trace.mark("monitor ahead done")
            else:
                prime.prime_cgroup_migration(target)
            continue
        chunk = os.read(control_r, 65536)
        trace.mark(f"monitor context ({len(pending)} steps left)")
        data += chunk
        if not chunk or data.rstrip().endswith(b"}"):
            try:
                return json.loads(data)
            except ValueError:
                if not chunk:
                    return None  # EOF without a whole object: the CLI did not launch us


def _monitor_env() -> dict[str, str]:
    """The monitor runs with -S (no site: ~15 ms less per stage), so it gets our package and
    site-packages (pyroute2 for bridge networks) on an explicit path."""
    env = dict(os.environ)
    paths = [str(ENGINE_PARENT), *(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def _may_fork() -> bool:
    """Fork the monitor from this process only when that is safe: no other thread (the TUI has
    several; a fork would copy locks held by them), and not turned off for debugging."""
    try:
        single = len(os.listdir("/proc/self/task")) == 1  # every thread, Python's or a library's
    except OSError:
        single = False
    return single and os.environ.get("DOCKUI_MONITOR_SPAWN", "fork") == "fork"


@dataclass
class PreparedMonitor:
    """A monitor forked before the container exists, waiting on a pipe for its start context.

    `dockui run` forks it first thing, so the monitor imports what its stage 1 needs (process,
    rootfs, security, cgroups: ~15 ms) on the other core while the CLI reconciles, resolves the
    image and writes the record. It holds the child's ends of the status pipe and the attach
    socketpair (made before the fork, so the numbers are the same in both). If the CLI never
    launches it (an error, a missing image, the CLI killed), the control pipe reaches EOF and the
    waiting process exits without touching anything.
    """

    control: int  # write end of the control pipe: one JSON message, then closed
    status_r: int
    status_w: int  # the child's end; closed here once launched
    server_fd: int  # the child's end of the attach socketpair (-1 when not attached)
    client: Any  # our end of the attach socketpair (attach_socketpair), or None
    attach: bool
    intermediate: int = 0  # the first fork, which exits at once: reaped on launch/discard (0: none)
    used: bool = False
    monitor: tuple[int, int] = (0, 0)  # the monitor's pid and start ticks, when it is our child

    def claims(self, record: ContainerRecord) -> bool:
        """Whether `record` names this monitor as its claimant (create wrote it: `claim`)."""
        return self.monitor != (0, 0) and (record.monitor_pid, record.monitor_start) == self.monitor

    @property
    def claim(self) -> tuple[int, int]:
        """What `create` writes as the new record's monitor, (0, 0) for none: this monitor, when
        its pid is known here (the command's own child) and it is still to be launched. The
        monitor then finds the container claimed for it, in a record no other start could have
        claimed before (see "The start path" in docs/lifecycle.md)."""
        return (0, 0) if self.used else self.monitor

    def launch(self, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        """Hand over the start context; the monitor's report then arrives on status_r."""
        message = json.dumps({"argv": argv, "log": str(log_path), "env": env}).encode()
        self.used = True
        trace.mark("cli context")
        try:
            write_all(self.control, message)
        except OSError:
            pass  # it died: start() reads EOF on the status pipe and reports that
        finally:
            self._close_child_ends()

    def discard(self) -> None:
        """Not launched (or already launched): let the waiting process go and close our ends."""
        if self.used:
            return
        self.used = True
        self._close_child_ends()
        os.close(self.status_r)
        if self.client is not None:
            self.client.close()

    def _close_child_ends(self) -> None:
        if self.intermediate:
            try:
                os.waitpid(self.intermediate, 0)
            except ChildProcessError:
                pass
            self.intermediate = 0
        for fd in (self.control, self.status_w, self.server_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.control = self.status_w = self.server_fd = -1


def prepare_monitor(
    attach: bool, reconcile_config: EngineConfig | None = None, network: str = "none"
) -> PreparedMonitor | None:
    """Fork the monitor ahead of `start` (see PreparedMonitor); None where forking is unsafe.

    With `reconcile_config`, the forked monitor runs `reconcile` while it waits (before it can
    start anything), so the caller need not: `run` leaves it to the monitor, off its own path.
    `network` (the --network value) says whether to load the network module too (~9 ms).
    """
    if not _may_fork():
        return None
    _import_shared()
    control_r, control_w = os.pipe2(os.O_CLOEXEC)
    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    client = server = None
    if attach:
        client, server = attach_socketpair()
    server_fd = server.detach() if server is not None else -1
    sys.stdout.flush()
    sys.stderr.flush()
    direct = _caller_is_the_command()
    target = prime.prime_target() if direct else ""
    trace.mark("cli fork")
    pid = os.fork()
    if pid == 0:
        _prepared_monitor_child(control_r, {control_r, status_w, server_fd} - {-1}, reconcile_config,
                                network_kind(network) == "bridge", target)
    os.close(control_r)
    if direct:  # our child: never waited for (see _caller_is_the_command); the slow prime is ours
        _prime_on_a_thread(target)
        return PreparedMonitor(control_w, status_r, status_w, server_fd, client, attach,
                               monitor=(pid, state.process_start_ticks(pid)))
    # The intermediate child exits at once (the monitor is never our child); it is reaped later,
    # so the CLI goes on with its own work now.
    return PreparedMonitor(control_w, status_r, status_w, server_fd, client, attach, intermediate=pid)


def _caller_is_the_command() -> bool:
    """Whether this process is the `dockui` command (engine.running_as_command, set by its
    launcher), which ends with the verb: the monitor is then forked once, as its child.

    Another caller (tests, the bench, library use) may live on for long after the container: its
    monitor is a grandchild whose parent exits at once, so that the caller never holds a zombie
    for every container it started. The command holds one at most from its monitor's exit to its
    own (a zombie is a dead process to state.process_alive), and the monitor is reparented when
    the command ends, as the grandchild is when the intermediate ends.
    """
    import engine

    return engine.running_as_command


def _prime_on_a_thread(target: str | None) -> None:
    """The first, slow cgroup-migration prime (see prime.prime_cgroup_migration), on a thread of
    ours that waits in the kernel while we go on: the intermediate process's job when there is
    one. The command forks nothing after its monitor, so the thread is no hazard to a fork."""
    import _thread

    def prime_once() -> None:
        try:
            prime.prime_cgroup_migration(target)
        except BaseException:  # noqa: BLE001 - never a traceback on the user's terminal
            pass

    _thread.start_new_thread(prime_once, ())


def _prepared_monitor_child(
    control_r: int, keep: set[int], reconcile_config: EngineConfig | None, bridge: bool,
    prime_target: str | None = "",
) -> None:
    """In the forked child: a session of its own, the monitor itself (`prime_target` given: the
    command's child, see _caller_is_the_command) or the intermediate process whose child it is;
    warm up, wait for the context, run."""
    code = 1
    try:
        os.setsid()
        _detach_descriptors(keep)
        direct = prime_target != ""
        if not direct:
            # Looked up before the slow prime below starts: reading /proc/self/cgroup waits for
            # the cgroup_mutex that the prime holds through its grace period.
            prime_target = prime.prime_target()
        if not direct and os.fork():
            # The intermediate process, which nobody waits for until the CLI launches the monitor:
            # it takes the first, slow cgroup migration (a grace period, see prime.prime_cgroup_migration)
            # so that neither the CLI nor the monitor has to. No descriptor of the CLI's is open
            # here any more, so the monitor still sees EOF on the control pipe if the CLI gives up.
            prime.prime_cgroup_migration(prime_target)
            os._exit(0)
        trace.mark(f"monitor forked ({'the caller' if direct else 'an intermediate'}'s child)")
        os.chdir("/")
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE):
            signal.signal(number, signal.SIG_DFL if number != signal.SIGPIPE else signal.SIG_IGN)
        _import_stage_one(bridge)
        trace.mark("monitor imported")
        # Done ahead, in steps, while no context has come: the container-independent part of the
        # cgroup and of the spawn, then the imports of an --rm removal. What is not done by then
        # the start does itself where it needs it.
        ahead: list[Callable[[], None]] = []
        with best_effort():
            from engine.sandbox import cgroups, process

            ahead += [cgroups.block_devices, *process.prepare_ahead_steps()]
        ahead += _removal_imports()
        message = _read_control(control_r, prime_target, ahead)
        os.close(control_r)
        if message is None:  # the CLI did not launch us: nothing to do
            code = 0
            return
        prime.primed_ahead = True
        if direct:  # create may have written our claim (PreparedMonitor.claim)
            from engine.container.monitor import start as stage_one

            stage_one.claimed_at_create = True
        _adopt(message)
        if reconcile_config is not None:  # run's sweep, no part of this start: once it is over
            from engine.container.monitor import stages

            stages.put_off.append(lambda: _sweep_for_run(reconcile_config))
        code = monitor_main(message["argv"])
    except BaseException:  # noqa: BLE001 - nothing may return into the CLI's code
        import traceback

        try:
            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
    finally:
        os._exit(code)


def _sweep_for_run(config: EngineConfig) -> None:
    """The sweep `run` leaves to the monitor it forks (engine.container.sweep); a failure goes to
    monitor.log."""
    try:
        sweep(config)
        trace.mark("monitor swept")
    except Exception:  # noqa: BLE001 - reported, never fatal to the monitor
        import traceback

        print(f"reconcile failed: {traceback.format_exc()}", file=sys.stderr)


def _detach_descriptors(keep: set[int]) -> None:
    """/dev/null for stdio and every descriptor closed but `keep`: nothing of the CLI's stays open
    (its terminal, its pipes), so its readers see EOF when it is done."""
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    wanted = {0, 1, 2, *keep}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in wanted:
            try:
                os.close(fd)
            except OSError:
                pass


def _import_shared() -> None:
    """What both sides of `run` load after the fork, loaded once before it: the caller's options
    (the resources check: cgroups), create (the image config, the log's limits) and its report
    wait (select) need them as the monitor's stage 1 does, which then inherits them (~1.5 ms of
    its imports, more on a busy host, where they were the start's critical path); `mounts`: create's
    mount records, launch's bind mounts."""
    with best_effort():
        import select  # noqa: F401

        import engine.container.logs  # noqa: F401
        import engine.container.mounts  # noqa: F401
        import engine.image.imageconfig  # noqa: F401
        import engine.sandbox.cgroups  # noqa: F401


def _import_stage_one(bridge: bool) -> None:
    """What stage 1 needs before it can start anything, first: the CLI may send the context
    within ~10 ms (less than these imports take on a busy host)."""
    with best_effort():
        import engine.container.hostflags  # noqa: F401 - launch's first step
        import engine.container.logs  # noqa: F401 - launch's last (the log's limits)
        import engine.container.monitor.start  # noqa: F401 - stage 1 itself (launch, finish): ~3 ms
        import engine.image.imageconfig  # noqa: F401
        import engine.sandbox.cgroups  # noqa: F401
        import engine.sandbox.process  # noqa: F401
        import engine.sandbox.rootfs  # noqa: F401
        import engine.sandbox.security  # noqa: F401

        if bridge:  # (hostsfiles: ipaddress, ~2 ms, for a bridge's hosts and resolv.conf only)
            import engine.network.endpoint  # noqa: F401
            import engine.network.hostsfiles  # noqa: F401


def _removal_imports() -> list[Callable[[], None]]:
    """What an --rm removal loads (`shutil`, the image store: ~4 ms, 8-13 on a busy host), one
    module a step: a context that comes meanwhile waits for one step, not for all of them (what
    is not loaded by then, launch._record_running loads while the container sets itself up)."""
    import importlib

    names = ("shutil", "engine.image.digest", "engine.image.store.layers", "engine.image.store.images",
             "engine.image.store.archives", "engine.image.store.rwlayers", "engine.image.store")
    return [lambda name=name: importlib.import_module(name) and None for name in names]


def _adopt(message: dict) -> None:
    """The launched monitor's stderr (monitor.log) and environment: the CLI's (we were forked from
    it) with a few changes, just those applied."""
    log_fd = os.open(message["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    env = message["env"]
    for key in [k for k in os.environ if k not in env]:
        del os.environ[key]
    for key, value in env.items():
        if os.environ.get(key) != value:
            os.environ[key] = value
