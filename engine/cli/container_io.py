"""A container's streams from the outside: `logs` (the json-file log) and `exec` (pipes relayed by
this process, or a pty from the container's own devpts; docs/isolation.md, the descriptor rule).
"""

from __future__ import annotations

import argparse
import os
import signal

from engine.cli.container_common import start_engine
from engine.config import EngineConfig
from engine.errors import DockuiError, InvalidArgument, NotFound

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any


def cmd_logs(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container import logs, state

    start_engine(config, "logs")
    record = state.find_container(config, args.container)
    path = logs.readable_log(config, record)
    tail = None if args.tail in ("all", "-1") else int(args.tail)
    since = logs.parse_since(args.since)
    until = logs.parse_since(args.until)
    entries, offset = logs.read_entries(path, tail, since)

    def emit(entry: Any) -> None:
        if until is not None and logs._entry_seconds(entry.time) > until:
            return
        data = entry.data
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
    spec = exec_instances.ExecSpec(
        argv=tuple(args.command), env=tuple(_exec_env(args.env)), workdir=args.workdir or "", user=args.user or "",
        tty=args.tty, privileged=args.privileged, attach_stdin=args.interactive and not args.detach,
        attach_stdout=not args.detach, attach_stderr=not args.detach)
    inst = exec_instances.claim(config, exec_instances.create_instance(config, args.container, spec).id)
    if args.detach:
        exec_instances.spawn_detached(config, inst.id)
        return 0
    record = state.load(config, inst.container_id)
    code = 126
    try:
        code = _run_exec(args, config, inst, record.pid, exec_command)
    except DockuiError as exc:  # the command never ran: exec_die carries the status we exit with
        code = 126 if exc.exit_code == 125 else exc.exit_code
        raise
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
