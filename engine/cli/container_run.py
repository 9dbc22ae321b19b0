"""run, create and start, and the attached session (stdout/stderr apart, stdin, signals, a raw
tty with its window size): Docker's run flags become `RunOptions`, the work is engine.container's.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from engine.cli.container_common import echo_each, parse_labels, start_engine
from engine.config import EngineConfig
from engine.errors import Conflict, DockuiError, InvalidArgument, NotFound

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from typing import Any

    from engine.container.state import ContainerRecord


def _run_options(args: argparse.Namespace, image_id: str = "") -> Any:
    from engine.container.health import from_flags as health_from_flags
    from engine.container.options import RunOptions, check_client_flags, inline_seccomp_profiles

    if args.entrypoint == "" and not args.command:  # the docker CLI sends Entrypoint [""]: the image's Cmd goes too
        # moby's refusal of that config, made here where the flag is translated (as the service's
        # create_body does): the engine's words, not a flag's (client_side keeps it: create exits 1)
        raise DockuiError("No command specified")
    opts = RunOptions(
        image=args.image,
        image_id=image_id,
        command=list(args.command),
        name=args.name,
        hostname=args.hostname,
        env=_client_env(args.env_file, args.env),
        workdir=args.workdir,
        user=args.user,
        entrypoint=args.entrypoint,
        labels=parse_labels(_label_file_labels(args.label_file) + args.label),
        volumes=args.volume,
        mounts=_mount_specs(args.mount_flags),
        tmpfs=args.tmpfs,
        log_driver=args.log_driver,
        log_opts=args.log_opt,
        memory=args.memory,
        memory_swap=args.memory_swap,
        cpus=args.cpus,
        cpu_shares=args.cpu_shares,
        cpuset_cpus=args.cpuset_cpus,
        pids_limit=args.pids_limit,
        blkio_weight=args.blkio_weight,
        shm_size=args.shm_size,
        cap_add=args.cap_add,
        cap_drop=args.cap_drop,
        privileged=args.privileged,
        read_only=args.read_only,
        restart=args.restart,
        network=args.network,
        ip=args.ip,
        ip6=args.ip6,
        network_aliases=args.network_alias,
        publish=args.publish,
        publish_all=args.publish_all,
        links=args.link,
        dns=args.dns,
        dns_search=args.dns_search,
        dns_options=args.dns_option,
        add_hosts=args.add_host,
        stop_signal=args.stop_signal,
        stop_timeout=args.stop_timeout,
        platform=args.platform,
        tty=args.tty,
        interactive=args.interactive,
        auto_remove=args.rm,
        security_opt=inline_seccomp_profiles(args.security_opt),  # a profile file's JSON, as the docker CLI sends it
        healthcheck=health_from_flags(args.health_cmd, args.health_interval, args.health_timeout,
                                      args.health_start_period, args.health_retries, args.no_healthcheck),
        **_sandbox_flags(args),
    )
    check_client_flags(opts)  # what the docker CLI refuses before it asks the engine (FlagError)
    return opts


def _sandbox_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The flags read into Docker's HostConfig values (engine.container.options has the rules)."""
    from engine.container import options

    if args.cidfile and os.path.exists(args.cidfile):
        raise Conflict(f"Container ID file found, make sure the other container isn't running or delete {args.cidfile}")
    return {
        "init": args.init,
        "ulimits": [options.parse_ulimit(u) for u in args.ulimit],
        "devices": [options.parse_device(d) for d in args.device],
        "group_add": list(args.group_add),
        "sysctls": dict(options.parse_sysctl(item) for item in args.sysctl),
        "cidfile": args.cidfile,
        "volumes_from": list(args.volumes_from),
        "expose": list(args.expose),
        "memory_reservation": args.memory_reservation,
        "oom_kill_disable": args.oom_kill_disable,
        "cpu_period": args.cpu_period,
        "cpu_quota": args.cpu_quota,
        "ipc": args.ipc,
        "pid": args.pid,
        "cgroupns": options.parse_cgroupns(args.cgroupns),
        "mac_address": args.mac_address,
        "uts": _uts_mode(args.uts),
        "memory_swappiness": _swappiness(args.memory_swappiness),
        "device_cgroup_rules": [options.check_device_cgroup_rule(rule) for rule in args.device_cgroup_rule],
    }


def _uts_mode(value: str) -> str:
    if value not in ("", "host"):
        raise InvalidArgument("--uts: invalid UTS mode")  # the docker CLI's words
    return value


def _swappiness(value: int) -> int | None:
    if value != -1 and not 0 <= value <= 100:  # the docker CLI's words
        raise InvalidArgument(f"invalid value: {value}. Valid memory swappiness range is 0-100")
    return None if value == -1 else value


def _mount_specs(flags: list[str]) -> list[Any]:
    """`--mount` flags as the docker CLI reads them (engine.container.mountspec, loaded only for them)."""
    if not flags:
        return []
    from engine.container.mountspec import parse_mount_flag

    return [parse_mount_flag(flag) for flag in flags]


def _client_env(env_files: list[str], env: list[str]) -> list[str]:
    """--env-file lines, then -e values, resolved here as the docker CLI resolves them on the client:
    `-e KEY` takes KEY from this command's environment, or is sent as `KEY` (the container's
    Config.Env keeps it, its process does not get it); a bare KEY line of an env file is dropped
    when unset. The engine itself never looks a variable up."""
    from engine.container.options import resolve_client_env
    from engine.image.imageconfig import parse_env_file

    return [item for path in env_files for item in parse_env_file(path, os.environ)] + resolve_client_env(env, os.environ)


def _label_file_labels(paths: list[str]) -> list[str]:
    """`--label-file`: KEY=VALUE lines (blank lines and # comments skipped), before --label's."""
    labels = []
    for path in paths:
        try:
            with open(path) as f:
                labels += [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
        except OSError as exc:
            raise InvalidArgument(f"open {path}: {exc.strerror}") from None
    return labels


def _write_cidfile(args: argparse.Namespace, container_id: str) -> None:
    if args.cidfile:
        with open(args.cidfile, "x") as f:
            f.write(container_id)


def _local_image_for(record: Any, ref: str, platform: str | None) -> str:
    """The stored image's ID; NotFound (so --pull missing pulls the right one, as Docker does) when
    --platform names another platform than the stored image's."""
    if platform:
        from engine.image.manifest import config_platform, parse_platform

        wanted = parse_platform(platform).normalised()
        found = config_platform(record.config if isinstance(record.config, dict) else {}).normalised()
        if (found.os, found.architecture, found.variant) != (wanted.os, wanted.architecture, wanted.variant):
            raise NotFound(f"image with reference {ref} was found but does not match the specified platform: "
                           f"wanted {wanted}, actual: {found}")
    return record.id


def ensure_image(config: EngineConfig, ref: str, policy: str = "missing", platform: str | None = None) -> str:
    """Docker's `--pull`: look in the store, pull when absent (or always), with progress on stderr.

    Returns the image's ID: the container is made from that image even if the tag moves meanwhile."""
    from engine.image.store import ImageStore

    if policy != "always":
        try:
            return _local_image_for(ImageStore(config).resolve(ref), ref, platform)
        except NotFound:
            if policy == "never":
                raise
        print(f"Unable to find image '{ref}' locally", file=sys.stderr)
    from engine.image.pull import previous_image_id, pull_image, pull_status
    from engine.image.reference import parse_reference

    previous = previous_image_id(config, ref)
    last: dict[str | None, str] = {}

    def progress(event: Any) -> None:
        if event.layer is None:
            print(event.status, file=sys.stderr)
        elif last.get(event.layer) != event.status:
            last[event.layer] = event.status
            print(f"{event.layer}: {event.status}", file=sys.stderr)

    record = pull_image(config, ref, platform=platform, progress=progress)
    print(pull_status(parse_reference(ref), previous, record), file=sys.stderr)
    return record.id


def cmd_create(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.cli.container_common import client_side
    from engine.container.create import create

    with client_side():  # the flags first, as docker's runCreate: their refusals are 125, the engine's 1
        opts = _run_options(args)
    start_engine(config, "create")
    opts.image_id = ensure_image(config, args.image, args.pull, args.platform)
    record = create(config, opts)
    _print_warnings(opts)
    _write_cidfile(args, record.id)
    print(record.id)
    return 0


def _print_warnings(opts: Any) -> None:
    """Docker's create warnings (settings this host cannot apply), on stderr as the docker CLI prints them."""
    if opts.memory_swappiness is None:  # the only one so far: nothing to ask on every run
        return
    from engine.container.create import create_warnings

    for warning in create_warnings(opts):
        print(f"WARNING: {warning}", file=sys.stderr)


def cmd_run(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine import events
    from engine.cli import require_root
    from engine.container.create import create
    from engine.container.reconcile import reconcile
    from engine.container.start import prepare_monitor, start

    require_root("run")
    if args.detach and args.rm and args.restart not in ("no", ""):
        raise InvalidArgument("Conflicting options: --restart and --rm")
    streams = _attach_streams(args.attach)
    if args.detach and streams is not None:
        raise InvalidArgument("Conflicting options: -a and -d")
    # The monitor is forked first: it loads its modules on the other core while we resolve the
    # image and write the record (see PreparedMonitor). The image store, which both sides need
    # (the lookup and create here, an --rm removal there), is loaded before the fork: once, not
    # once on each side, where the monitor's copy came while the container set itself up.
    import engine.image.store  # noqa: F401

    prepared = prepare_monitor(attach=not args.detach, reconcile_config=config, network=args.network)
    try:
        if prepared is None:
            reconcile(config)
        image_id = ensure_image(config, args.image, args.pull, args.platform)
        opts = _run_options(args, image_id)
        opts.stdin_once = args.interactive and not args.detach  # the docker CLI's: stdin closes with an attached client's only
        opts.attach = _attach_config(args.interactive, streams, args.detach)
        record = create(config, opts, prepared.claim if prepared is not None else (0, 0))
        _print_warnings(opts)
        _write_cidfile(args, record.id)
        if args.detach:
            start(config, record.id, interactive=args.interactive, prepared=prepared, created=record)
            print(record.id)
            _exit_now(0)
            return 0
        tty = args.tty and os.isatty(0)
        winsize = None
        if tty:
            size = os.get_terminal_size(0)
            winsize = (size.lines, size.columns)
        events.container(config, "attach", record)  # moby's order, as `docker run`: create, attach, start
        result = start(config, record.id, attach=True, interactive=args.interactive, winsize=winsize,
                       prepared=prepared, created=record)
    finally:
        if prepared is not None:
            prepared.discard()
    code = attach_session(config, result, interactive=args.interactive, tty=args.tty and tty,
                          proxy_signals=args.sig_proxy != "false", streams=streams)
    _exit_now(code)
    return code


def _attach_streams(values: list[str]) -> set[str] | None:
    """`run -a STREAM` (repeatable): the streams relayed; None (no -a) means all of them."""
    if not values:
        return None
    streams = {v.lower() for v in values}
    if not streams <= {"stdin", "stdout", "stderr"}:
        bad = sorted(streams - {"stdin", "stdout", "stderr"})[0]
        raise InvalidArgument(f"invalid argument \"{bad}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR")
    return streams


def _attach_config(interactive: bool, streams: set[str] | None, detach: bool) -> tuple[bool, bool, bool]:
    """Config.AttachStdin/Stdout/Stderr as the docker CLI's run sends them: stdin with -i or `-a stdin`,
    stdout and stderr without -a or as named; none with -d."""
    if detach:
        return (False, False, False)
    return (interactive or "stdin" in (streams or ()), streams is None or "stdout" in streams,
            streams is None or "stderr" in streams)


def _exit_now(code: int) -> None:
    """End the `dockui` process at once when the run is over (returns when it is not the command).

    The interpreter's teardown (every module and object of the engine freed one by one) takes
    ~15 ms after the container is gone and removed; nothing of ours is pending at that point
    (the monitor does the clean-up, no threads, no atexit work), so flush stdio and leave.
    Called in-process (tests, library use) it does nothing.
    """
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    is_command = (spec is not None and spec.name == "tui.launcher") or (
        getattr(getattr(main, "main", None), "__module__", "") == "tui.launcher")
    if not is_command:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def cmd_start(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.start import start
    from engine.container.state import find_container

    start_engine(config, "start")
    if args.attach or args.interactive:
        if len(args.containers) > 1:
            raise InvalidArgument("you cannot start and attach multiple containers at once")
        record = find_container(config, args.containers[0])
        interactive = args.interactive and bool(record.config.get("OpenStdin"))
        winsize = None
        if record.config.get("Tty") and os.isatty(0):
            size = os.get_terminal_size(0)
            winsize = (size.lines, size.columns)
        from engine import events

        events.container(config, "attach", record)  # `docker start -a` attaches, then starts
        with _pending_joined(config, record):
            result = start(config, record.id, attach=True, interactive=interactive, winsize=winsize)
        if result.attach is None:
            return 0
        return attach_session(config, result, interactive=interactive, tty=bool(record.config.get("Tty")) and os.isatty(0))

    def one(ref: str) -> None:
        record = find_container(config, ref)
        with _pending_joined(config, record):
            start(config, record.id)

    return echo_each(args.containers, one)


def _pending_joined(config: EngineConfig, record: ContainerRecord) -> AbstractContextManager[None]:
    """The networks `network connect` gave a never-started container, joined around its start as
    the Engine API's start joins them (engine.api.networks imported only then)."""
    import contextlib

    from engine.container.state import PENDING_NETWORKS

    if not record.host_config.get(PENDING_NETWORKS):
        return contextlib.nullcontext()
    from engine.api.networks import pending_joined

    return pending_joined(config, record)


def attach_session(
    config: EngineConfig, result: Any, interactive: bool, tty: bool, proxy_signals: bool = True,
    streams: set[str] | None = None, detach_keys: str | None = None,
) -> int:
    """Relay between our stdio and the monitor until the container exits; its exit code.

    `streams` (`run -a`): only these of stdin/stdout/stderr are relayed (None: all of them); what
    is not is still logged by the monitor, as Docker does. With a terminal on stdin, typing the
    detach keys (`detach_keys`, else ctrl-p,ctrl-q) lets the container run on: 0, as the docker CLI."""
    stdin_open = interactive and (streams is None or "stdin" in streams)
    scanner = None
    if tty and stdin_open:  # as Docker's: only a container run with -i and -t can be detached from
        from engine.container.detachkeys import DetachScanner, detach_sequence

        scanner = DetachScanner(detach_sequence(detach_keys))
    session = _AttachedSession(result, tty, proxy_signals, streams, scanner, config)
    try:
        exit_code = session.relay(stdin_open)
    finally:
        session.restore()
    if session.detached:
        from engine import events

        events.container(config, "detach", result.record)  # moby's, when a client leaves with the keys
        print("read escape sequence", file=sys.stderr)  # the docker CLI's words
        return 0
    if exit_code is None:  # the monitor died: the record (after reconcile) has the truth
        from engine.container.lifecycle import wait

        try:
            exit_code = wait(config, result.record.id)
        except NotFound:
            exit_code = 125
    return exit_code


class _AttachedSession:
    """Our side of an attached container: our signals forwarded to it (with a tty: only SIGTERM and
    SIGHUP, and window sizes), our stdin sent as frames, its output frames written to our
    stdout/stderr. `restore` puts the terminal and the signal handlers back."""

    def __init__(self, result: Any, tty: bool, proxy_signals: bool, streams: set[str] | None,
                 scanner: Any, config: EngineConfig) -> None:
        from engine.container import monitor

        self.config = config  # for the `resize` events
        self.monitor = monitor
        self.scanner = scanner  # a DetachScanner over our terminal's input, or None
        self.detached = False
        self.relay_out = streams is None or "stdout" in streams
        self.relay_err = streams is None or "stderr" in streams
        self.sock = result.attach
        self.record = result.record
        self.reader = monitor.FrameReader()
        self.wake_r, self.wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self.pending: list[int] = []
        self.old_handlers: dict[int, Any] = {}
        self.saved_tty = None
        forwarded = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2]
        if tty:
            forwarded = [signal.SIGTERM, signal.SIGHUP]
        if proxy_signals or tty:
            for number in forwarded:
                self.old_handlers[number] = signal.signal(number, self._on_signal)
        if tty:
            import termios
            import tty as tty_mod

            self.saved_tty = termios.tcgetattr(0)
            tty_mod.setraw(0, termios.TCSANOW)  # not TCSAFLUSH: keys typed meanwhile are kept
            self.old_handlers[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, self._on_signal)
            self.pending.append(signal.SIGWINCH)
            os.write(self.wake_w, b"s")

    def _on_signal(self, number: int, _frame: Any) -> None:
        self.pending.append(number)
        try:
            os.write(self.wake_w, b"s")
        except OSError:
            pass

    def send(self, kind: int, payload: bytes = b"") -> None:
        try:
            self.sock.sendall(self.monitor.frame(kind, payload))
        except OSError:
            pass

    def relay(self, stdin_open: bool) -> int | None:
        """Until the exit frame (its code) or the monitor's end of the socket closes (None)."""
        import select

        monitor = self.monitor
        while True:
            watched = [self.sock, self.wake_r] + ([0] if stdin_open else [])
            ready, _, _ = select.select(watched, [], [])
            if self.wake_r in ready:
                self._deliver_signals()
            if 0 in ready and stdin_open:
                data = os.read(0, 65536)
                if data and self.scanner is not None:
                    data, self.detached = self.scanner.feed(data)
                    if data:
                        self.send(monitor.FRAME_STDIN, data)
                    if self.detached:
                        return None
                elif data:
                    self.send(monitor.FRAME_STDIN, data)
                else:
                    self.send(monitor.FRAME_STDIN_EOF)
                    stdin_open = False
            if self.sock in ready:
                data = self.sock.recv(65536)
                if not data:
                    return None
                exit_code = None
                for kind, payload in self.reader.feed(data):
                    if kind == monitor.FRAME_STDOUT:
                        if self.relay_out:
                            monitor.write_all(1, payload)
                    elif kind == monitor.FRAME_STDERR:
                        if self.relay_err:
                            monitor.write_all(2, payload)
                    elif kind == monitor.FRAME_EXIT:
                        exit_code = int.from_bytes(payload, "big", signed=True)
                if exit_code is not None:
                    return exit_code

    def _deliver_signals(self) -> None:
        """The signals caught since the last wake-up: a window size to the monitor, the others to
        the container's process."""
        from engine.container import state

        try:
            os.read(self.wake_r, 64)
        except OSError:
            pass
        while self.pending:
            number = self.pending.pop(0)
            if number == signal.SIGWINCH:
                size = os.get_terminal_size(0)
                self.send(self.monitor.FRAME_RESIZE, size.lines.to_bytes(2, "big") + size.columns.to_bytes(2, "big"))
                from engine import events  # moby's ContainerResize logs each size it sets

                events.container(self.config, "resize", self.record, height=size.lines, width=size.columns)
            elif state.process_alive(self.record.pid, self.record.pid_start):
                try:
                    os.kill(self.record.pid, number)
                except ProcessLookupError:
                    pass

    def restore(self) -> None:
        if self.saved_tty is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, self.saved_tty)
        for number, handler in self.old_handlers.items():
            signal.signal(number, handler)
        self.sock.close()
        os.close(self.wake_r)
        os.close(self.wake_w)


def cmd_attach(args: argparse.Namespace, config: EngineConfig) -> int:
    """`docker attach`: become the running container's attached client (its monitor takes one)."""
    import _socket

    from engine.container import monitor
    from engine.container.monitor.context import ATTACH_SOCKET
    from engine.container.start import StartResult
    from engine.container.state import find_container
    from engine.errors import Conflict

    start_engine(config, "attach")
    record = find_container(config, args.container)
    if record.status == "paused":
        raise Conflict(f"You cannot attach to a paused container {record.name}, unpause it first")
    if record.status != "running":
        raise Conflict(f"You cannot attach to a stopped container {record.name}, start it first")
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    directory = os.open(record.dir(config), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    deadline = time.monotonic() + 2 * monitor.START_GRACE + 1  # a container just started: its listener comes
    try:  # through /proc/self/fd: a long engine root still fits a socket address
        while True:
            try:
                sock.connect(f"/proc/self/fd/{directory}/{ATTACH_SOCKET}")
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        greeting = b""
        while len(greeting) < 5 and (chunk := sock.recv(5 - len(greeting))):
            greeting += chunk
    except OSError as exc:
        sock.close()
        raise DockuiError(f"cannot attach to container {record.name}: {exc.strerror}") from None
    finally:
        os.close(directory)
    if greeting[:1] != bytes([monitor.FRAME_ATTACHED]):  # EOF at once: its monitor has a client
        sock.close()
        raise Conflict(f"container {record.name} already has an attached client")
    from engine import events

    events.container(config, "attach", record)  # moby logs it before any stream
    tty = bool(record.config.get("Tty")) and os.isatty(0)
    interactive = bool(record.config.get("OpenStdin")) and not args.no_stdin
    return attach_session(config, StartResult(record, sock), interactive=interactive, tty=tty,
                          proxy_signals=args.sig_proxy != "false", detach_keys=args.detach_keys)
