"""Exec instances (Docker's `POST /containers/{id}/exec` then `/exec/{id}/start`): made, run, and
inspectable after they end.

    <root>/containers/<container id>/execs/<exec id>.json    one ExecInstance (removed with the container)

An instance is created (its spec recorded, nothing runs), then started once by the exec helper:
a fresh interpreter (`python -m engine.container.exec_instances run ...`) that is single-threaded,
so it may fork into the container's namespaces (engine.sandbox.process says: never fork from a
threaded process, and the Engine API service has threads). The helper records the exec's pid, relays
the command's pipes (or its pty from the container's own devpts) to its own stdin/stdout/stderr,
waits for it, and records the exit code.

Invariants: the container's process only ever gets pipes the helper made, or its own pty (the
descriptor rule of docs/isolation.md), never the helper's own stdio, so a caller's socket or
terminal never reaches the container. An instance starts at most once (the `started` flag is set
under the record's lock before anything runs). The helper runs in its own session: a service that
dies does not take the exec with it, and the exit code is still recorded.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from engine import events
from engine.config import EngineConfig
from engine.container import state
from engine.errors import Conflict, InvalidArgument, NotFound

ENGINE_PARENT = Path(__file__).resolve().parents[2]  # holds engine/
RESIZE_RECORD = 4  # the resize pipe's messages: rows, cols as two 2-byte big-endian ints


@dataclass(frozen=True)
class ExecSpec:
    """What Docker's exec create body asks for."""

    argv: tuple[str, ...]
    env: tuple[str, ...] = ()
    workdir: str = ""
    user: str = ""
    tty: bool = False
    privileged: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = True
    attach_stderr: bool = True
    detach_keys: str = ""
    console_size: tuple[int, int] | None = None  # (height, width) of its tty, unless its start gives one


@dataclass(frozen=True)
class ExecInstance:
    id: str
    container_id: str
    spec: ExecSpec
    created: str
    started: bool = False
    running: bool = False
    pid: int = 0
    exit_code: int | None = None
    error: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ExecInstance:
        data = json.loads(text)
        spec = data.pop("spec")
        spec["argv"] = tuple(spec["argv"])
        spec["env"] = tuple(spec["env"])
        if spec.get("console_size"):
            spec["console_size"] = tuple(spec["console_size"])
        return cls(spec=ExecSpec(**spec), **data)


def _dir(config: EngineConfig, container_id: str) -> Path:
    return config.containers_dir / container_id / "execs"


def _path(config: EngineConfig, inst_id: str) -> Path:
    """The instance's file, found by its ID alone (Docker's exec IDs are global)."""
    if not inst_id or not all(c in "0123456789abcdef" for c in inst_id):
        raise NotFound(f"No such exec instance: {inst_id}")
    for candidate in config.containers_dir.glob(f"*/execs/{inst_id}.json"):
        return candidate
    raise NotFound(f"No such exec instance: {inst_id}")


def _write(path: Path, inst: ExecInstance) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(inst.to_json())
    os.replace(tmp, path)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def create_instance(config: EngineConfig, ref: str, spec: ExecSpec) -> ExecInstance:
    """Record a new exec instance for a running container (nothing runs yet)."""
    record = state.find_container(config, ref)
    if record.status == "paused":
        raise Conflict(f"Container {record.id} is paused, unpause the container before exec")
    if record.status != "running":
        raise Conflict(f"container {record.id} is not running")
    if not spec.argv:
        raise InvalidArgument("No exec command specified")
    inst = ExecInstance(os.urandom(32).hex(), record.id, spec, state.now_rfc3339())
    directory = _dir(config, record.id)
    directory.mkdir(mode=0o700, exist_ok=True)
    _write(directory / f"{inst.id}.json", inst)
    events.container(config, events.exec_action("exec_create", spec.argv), record, execID=inst.id)
    return inst


def load_instance(config: EngineConfig, inst_id: str) -> ExecInstance:
    path = _path(config, inst_id)
    try:
        return ExecInstance.from_json(path.read_text())
    except FileNotFoundError:
        raise NotFound(f"No such exec instance: {inst_id}") from None


def claim(config: EngineConfig, inst_id: str) -> ExecInstance:
    """Mark the instance started (once: a second start is a Conflict, as Docker's)."""
    path = _path(config, inst_id)
    with _locked(path):
        inst = ExecInstance.from_json(path.read_text())
        if inst.started:
            raise Conflict(f"exec {inst_id} has already been started")
        record = state.load(config, inst.container_id)
        if record.status != "running":
            raise Conflict(f"container {record.id} is not running")
        inst = replace(inst, started=True)
        _write(path, inst)
    return inst


def _update(config: EngineConfig, inst_id: str, **changes: object) -> None:
    path = _path(config, inst_id)
    with _locked(path):
        _write(path, replace(ExecInstance.from_json(path.read_text()), **changes))


def helper_command(
    config: EngineConfig, inst_id: str, winsize: tuple[int, int] | None = None, resize_fd: int = -1
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of the exec helper for this instance (claim it first). With a tty,
    `resize_fd` is the read end of a pipe (passed to the helper) that carries window sizes."""
    from engine.container.monitor.context import config_to_json

    size = f"{winsize[0]}x{winsize[1]}" if winsize else ""
    argv = [sys.executable, "-S", "-m", "engine.container.exec_instances", "run", config_to_json(config), inst_id, size,
            str(resize_fd)]
    return argv, helper_env()


def helper_env() -> dict[str, str]:
    """The environment of a helper interpreter started with -S (no site: faster), which finds the
    engine and the site-packages it needs on an explicit PYTHONPATH."""
    env = dict(os.environ)
    paths = [str(ENGINE_PARENT), *(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


# ------------------------------------------------------------------------------------------ the helper


def run_helper(config: EngineConfig, inst_id: str, winsize: str, resize_fd: int = -1) -> int:
    """Run a claimed instance with our stdio as its streams; record pid and exit code."""
    from engine.container.exec import exec_command

    inst = load_instance(config, inst_id)
    spec = inst.spec
    record = state.load(config, inst.container_id)
    code = 126
    try:
        if spec.tty:
            code = _run_tty(config, inst, record.pid, winsize, resize_fd, exec_command)
        else:
            code = _run_pipes(config, inst, exec_command)
    except Exception as exc:  # noqa: BLE001 - the caller reads the message on stderr, the code in the record
        code = int(getattr(exc, "exit_code", 126))
        code = 126 if code == 125 else code
        os.write(2, f"{exc}\n".encode())
        _update(config, inst.id, error=str(exc))
    finally:
        finish(config, inst.id, record, code)
    return code


def mark_running(config: EngineConfig, inst_id: str, pid: int) -> None:
    """The instance's command runs as host pid `pid` (inspect's Running and Pid)."""
    _update(config, inst_id, running=True, pid=pid)


def finish(config: EngineConfig, inst_id: str, record: state.ContainerRecord, code: int) -> None:
    """The instance ended with `code`: recorded, then moby's `exec_die` (execID, exitCode), whoever
    ran it (the helper for the Engine API, `dockui exec` in its own process)."""
    _update(config, inst_id, running=False, exit_code=code)
    events.container(config, "exec_die", record, execID=inst_id, exitCode=code)


def detached(config: EngineConfig, inst_id: str) -> None:
    """A client left the running instance with the detach keys: moby's `exec_detach` (execID). The
    command runs on; its helper still records the end (exec_die)."""
    inst = load_instance(config, inst_id)
    events.container(config, "exec_detach", state.load(config, inst.container_id), execID=inst_id)


def spawn_detached(config: EngineConfig, inst_id: str) -> None:
    """Run a claimed instance in the background (`exec -d`): the helper, in a session of its own with
    no stdio, records the exit and writes `exec_die` when the command ends, however long after the
    caller has gone (Docker's daemon does both)."""
    import subprocess

    argv, env = helper_command(config, inst_id)
    subprocess.Popen(argv, env=env, cwd="/", start_new_session=True, stdin=subprocess.DEVNULL,  # noqa: S603
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _run_pipes(config: EngineConfig, inst: ExecInstance, exec_command: object) -> int:
    from engine.container.exec_io import relay_exec_pipes

    spec = inst.spec
    in_r, in_w = os.pipe2(os.O_CLOEXEC) if spec.attach_stdin else (None, None)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = exec_command(config, inst.container_id, list(spec.argv), env=list(spec.env), workdir=spec.workdir or None,  # type: ignore[operator]
                           user=spec.user or None, tty=False, stdio=(in_r, out_w, err_w), privileged=spec.privileged, exec_id=inst.id)
    finally:
        for fd in (in_r, out_w, err_w):
            if fd is not None:
                os.close(fd)
    mark_running(config, inst.id, pid)
    relay_exec_pipes(pid, stdin_w=in_w, out_r=out_r, err_r=err_r)
    return _exit_code(pid)


def _run_tty(
    config: EngineConfig, inst: ExecInstance, container_pid: int, winsize: str, resize_fd: int, exec_command: object
) -> int:
    import select
    import struct
    import termios

    from engine.container.exec_io import open_container_pty

    spec = inst.spec
    master, slave = open_container_pty(container_pid)
    if winsize:
        rows, cols = (int(x) for x in winsize.split("x"))
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    try:
        pid = exec_command(config, inst.container_id, list(spec.argv), env=list(spec.env), workdir=spec.workdir or None,  # type: ignore[operator]
                           user=spec.user or None, tty=True, stdio=(slave, slave, slave), privileged=spec.privileged, exec_id=inst.id)
    finally:
        os.close(slave)
    mark_running(config, inst.id, pid)
    watched = [master, *([0] if spec.attach_stdin else []), *([resize_fd] if resize_fd >= 0 else [])]
    while True:
        ready, _, _ = select.select(watched, [], [])
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the last holder of the pty's other side is gone
                data = b""
            if not data:
                break
            try:
                _write_all(1, data)
            except BrokenPipeError:
                pass  # the caller went away: keep draining so the command is not blocked
        if 0 in ready:
            data = os.read(0, 65536)
            if data:
                _write_all(master, data)
            else:
                watched.remove(0)
        if resize_fd >= 0 and resize_fd in ready:
            message = os.read(resize_fd, RESIZE_RECORD)
            if len(message) == RESIZE_RECORD:
                rows, cols = struct.unpack(">HH", message)
                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            else:
                watched.remove(resize_fd)
    os.close(master)
    return _exit_code(pid)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def main(argv: list[str]) -> int:
    if len(argv) != 5 or argv[0] != "run":
        print("usage: python -m engine.container.exec_instances run CONFIG_JSON EXEC_ID ROWSxCOLS|'' RESIZE_FD|-1", file=sys.stderr)
        return 2
    from engine.container.monitor.context import config_from_json

    return run_helper(config_from_json(argv[1]), argv[2], argv[3], int(argv[4]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

