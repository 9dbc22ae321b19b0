"""A container's streams from the outside: `logs` (the json-file log) and `exec` (pipes relayed by
this process, or a pty from the container's own devpts; docs/isolation.md, the descriptor rule).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from engine.cli.container_common import start_engine
from engine.config import EngineConfig
from engine.errors import Conflict, DockuiError, InvalidArgument, NotFound

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any


def cmd_logs(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container import logs, state

    start_engine(config, "logs")
    record = state.find_container(config, args.container)
    path = logs.readable_log(config, record)
    tail = _tail_lines(args.tail)
    since = _log_time(logs, "since", args.since)
    until = _log_time(logs, "until", args.until)
    entries, offset = logs.read_entries(path, tail, since)

    def emit(entry: Any) -> None:
        if until is not None and logs._entry_seconds(entry.time) > until:
            return
        data = entry.data
        if args.details:  # moby's details: the entry's log attributes (a json-file entry has none here), then a space
            data = b" " + data
        if args.timestamps:
            data = entry.time.encode() + b" " + data
        fd = 2 if entry.stream == "stderr" else 1
        os.write(fd, data) if len(data) < 65536 else _write_big(fd, data)

    for entry in entries:
        emit(entry)
    if args.follow:

        def still_running() -> bool:
            try:
                return state.load(config, record.id).running
            except NotFound:
                return False

        try:
            for entry in logs.follow_entries(path, offset, still_running):
                emit(entry)
        except KeyboardInterrupt:
            return 0
    return 0


def _log_time(logs: Any, flag: str, text: str | None) -> float | None:
    """--since/--until read as the docker CLI reads them (its words when it cannot)."""
    try:
        return logs.parse_since(text)
    except InvalidArgument:
        raise InvalidArgument(f'invalid value for "{flag}": failed to parse value as time or duration: "{text}"') from None


def _tail_lines(text: str) -> int | None:
    """--tail: a number of lines, or all ("all", -1), refused in the daemon's words otherwise."""
    if text in ("all", "-1", ""):
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(f"invalid value for tail: {text!r}") from None


def _write_big(fd: int, data: bytes) -> None:
    from engine.container.monitor import write_all

    write_all(fd, data)


def cmd_exec(args: argparse.Namespace, config: EngineConfig) -> int:
    """`docker exec` as an exec instance (engine.container.exec_instances), so it writes moby's
    exec_create, exec_start and exec_die with one execID and can be inspected, as the Engine API's
    exec is; this process relays the command's pipes or pty (with -d: the background helper runs it)."""
    from engine.container import exec_instances, state
    from engine.container.exec import exec_command

    start_engine(config, "exec")
    if not args.command:
        raise InvalidArgument("exec requires at least 2 arguments")
    if args.tty and args.interactive and not args.detach and not os.isatty(0):  # exec.go's CheckTty
        state.find_container(config, args.container)  # after its inspect: no such container comes first
        raise DockuiError("the input device is not a TTY")
    keys = _exec_detach_keys(args.detach_keys)
    spec = exec_instances.ExecSpec(
        argv=tuple(args.command), env=tuple(_exec_env(args.env)), workdir=args.workdir or "", user=args.user or "",
        tty=args.tty, privileged=args.privileged, attach_stdin=args.interactive and not args.detach,
        attach_stdout=not args.detach, attach_stderr=not args.detach, detach_keys=keys)
    inst = exec_instances.claim(config, exec_instances.create_instance(config, args.container, spec).id)
    if args.detach:
        exec_instances.spawn_detached(config, inst.id)
        return 0
    if spec.tty and spec.attach_stdin:  # only such an exec can be detached from (hijack.go's escape proxy)
        return _detachable_exec(config, inst.id, keys)
    record = state.load(config, inst.container_id)
    code = 126
    try:
        code = _run_exec(args, config, inst, record.pid, exec_command)
    except (Conflict, NotFound):  # the container stopped or went: the engine's refusal (status 1)
        raise
    except DockuiError as exc:  # the command never ran: exec_die carries the status we exit with
        code = 126 if exc.exit_code == 125 else exc.exit_code
        # as the docker CLI shows it: the words the exec's stream carried (stdout with a tty), and
        # the exec's exit code (exec.go's getExecExitStatus)
        print(exc, file=sys.stdout if args.tty else sys.stderr)
    finally:
        exec_instances.finish(config, inst.id, record, code)
    return code


def _run_exec(args: argparse.Namespace, config: EngineConfig, inst: Any, container_pid: int, exec_command: Any) -> int:
    """Start the instance's command on a pty or on pipes, relay until it ends; its exit code."""
    from engine.container import exec_instances

    tty = args.tty
    master = None
    if tty:
        from engine.container.exec_io import open_container_pty

        master, slave = open_container_pty(container_pid)
        if os.isatty(0):
            _copy_winsize(0, master)
        stdio: tuple[int | None, int | None, int | None] = (slave, slave, slave)
        ours: tuple[int, ...] = (master,)
        theirs: tuple[int, ...] = (slave,)
    else:
        # Pipes, never our own descriptors: a terminal or file handed to the container could be
        # read or reopened by whatever the command leaves running (docs/isolation.md).
        in_r, in_w = os.pipe2(os.O_CLOEXEC) if args.interactive else (None, None)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        stdio = (in_r, out_w, err_w)
        ours = tuple(fd for fd in (in_w, out_r, err_r) if fd is not None)
        theirs = tuple(fd for fd in stdio if fd is not None)
    try:
        pid = exec_command(
            config, inst.container_id, list(inst.spec.argv), env=list(inst.spec.env), workdir=args.workdir,
            user=args.user, tty=tty, stdio=stdio, privileged=args.privileged, exec_id=inst.id,
        )
    except BaseException:
        for fd in ours:
            os.close(fd)
        raise
    finally:
        for fd in theirs:
            os.close(fd)
    exec_instances.mark_running(config, inst.id, pid)
    if master is not None:
        _relay_pty(master, args.interactive)
    else:
        from engine.container.exec_io import relay_exec_pipes

        relay_exec_pipes(pid, stdin_w=ours[0] if args.interactive else None, out_r=ours[-2], err_r=ours[-1])
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _exec_detach_keys(flag: str | None) -> str:
    """exec.go's parseExec: --detach-keys, else the config file's detachKeys; a sequence the engine
    cannot read is refused in moby's exec words, before anything runs."""
    from engine.container.detachkeys import client_detach_keys, detach_sequence

    keys = client_detach_keys(flag)
    try:
        detach_sequence(keys)
    except InvalidArgument:
        raise InvalidArgument(f"Invalid escape keys ({keys}) provided") from None
    return keys


def _detachable_exec(config: EngineConfig, inst_id: str, keys: str) -> int:
    """`exec -it`: the exec helper runs the command on its pty in a session of its own (as for the
    Engine API), this process relays our terminal to it. Typing the detach keys leaves it running:
    moby's exec_detach, the docker CLI's "read escape sequence" and status 1; the helper still
    records the exit (exec_die) when the command ends. Else the command's exit code."""
    import subprocess

    from engine.container import exec_instances

    resize_r, resize_w = os.pipe2(os.O_CLOEXEC)
    argv, env = exec_instances.helper_command(config, inst_id, _terminal_size(), resize_r)
    try:
        helper = subprocess.Popen(argv, env=env, cwd="/", start_new_session=True, stdin=subprocess.PIPE,  # noqa: S603
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=[resize_r])
    finally:
        os.close(resize_r)
    try:
        detached = _relay_helper(helper, resize_w, keys)
    finally:
        os.close(resize_w)
    if detached:
        exec_instances.detached(config, inst_id)
        print("read escape sequence", file=sys.stderr)  # the docker CLI's EscapeError, as its error: 1
        return 1
    return helper.wait()


def _terminal_size() -> tuple[int, int] | None:
    if not os.isatty(0):
        return None
    size = os.get_terminal_size(0)
    return size.lines, size.columns


def _relay_helper(helper: Any, resize_w: int, keys: str) -> bool:
    """Our terminal (raw) to the helper's stdin through the detach scanner, its stdout and stderr to
    ours, window sizes to its resize pipe; until its output ends (False) or the keys are typed (True)."""
    import select
    import struct

    from engine.container.detachkeys import DetachScanner, detach_sequence

    scanner = DetachScanner(detach_sequence(keys))
    out, err, stdin = helper.stdout.fileno(), helper.stderr.fileno(), helper.stdin.fileno()
    wake_r, wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)

    def on_winch(*_: Any) -> None:
        os.write(wake_w, b"w")

    saved, old_winch = _raw_terminal(on_winch)
    try:
        watched = [out, err, 0, wake_r]
        while out in watched or err in watched:
            ready, _, _ = select.select(watched, [], [])
            for fd in (out, err):
                if fd in ready:
                    data = os.read(fd, 65536)
                    if data:  # a tty's one stream: the helper's stderr (a start's error) is on stdout too
                        os.write(1, data)
                    else:
                        watched.remove(fd)
            if 0 in ready:
                typed = os.read(0, 65536)
                if not typed:  # our input ended: so does the command's
                    watched.remove(0)
                    helper.stdin.close()
                    continue
                data, detached = scanner.feed(typed)
                if detached:
                    return True
                if data:
                    os.write(stdin, data)
            if wake_r in ready:
                os.read(wake_r, 64)
                size = _terminal_size()
                if size:
                    os.write(resize_w, struct.pack(">HH", *size))
        return False
    finally:
        _restore_terminal(saved, old_winch)
        for fd in (wake_r, wake_w):
            os.close(fd)
        for stream in (helper.stdin, helper.stdout, helper.stderr):
            stream.close()


def _raw_terminal(on_winch: Any) -> tuple[Any, Any]:
    """Our terminal raw (the container's pty alone translates), SIGWINCH to `on_winch`; what to restore."""
    if not os.isatty(0):
        return None, None
    import termios
    import tty as tty_mod

    saved = termios.tcgetattr(0)
    tty_mod.setraw(0, termios.TCSANOW)  # not TCSAFLUSH: keys typed meanwhile are kept
    return saved, signal.signal(signal.SIGWINCH, on_winch)


def _restore_terminal(saved: Any, old_winch: Any) -> None:
    if saved is not None:
        import termios

        termios.tcsetattr(0, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, old_winch)


def _exec_env(items: list[str]) -> list[str]:
    """`exec -e`: KEY=VALUE as given; a bare KEY takes our own value, or is left out when we have none (docker's)."""
    return [i if "=" in i else f"{i}={os.environ[i]}" for i in items if "=" in i or i in os.environ]


def _copy_winsize(source: int, target: int) -> None:
    import fcntl
    import termios

    fcntl.ioctl(target, termios.TIOCSWINSZ, fcntl.ioctl(source, termios.TIOCGWINSZ, bytes(8)))


def _relay_pty(master: int, interactive: bool) -> None:
    """Copy between our terminal and the exec's pty until the pty closes."""
    import select

    saved = None
    old_winch = None
    if os.isatty(0):  # raw, so the container's pty alone translates newlines (as docker does)
        import termios
        import tty as tty_mod

        saved = termios.tcgetattr(0)
        tty_mod.setraw(0, termios.TCSANOW)  # not TCSAFLUSH: keys typed meanwhile are kept
        old_winch = signal.signal(signal.SIGWINCH, lambda *_: _copy_winsize(0, master))
    try:
        watched = [master] + ([0] if interactive else [])
        while True:
            ready, _, _ = select.select(watched, [], [])
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                os.write(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if not data:
                    watched.remove(0)
                    continue
                os.write(master, data)
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, saved)
            signal.signal(signal.SIGWINCH, old_winch)
        os.close(master)
