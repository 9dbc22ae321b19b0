"""Starting containers from a threaded process at the speed of a single-threaded one.

`start.start` forks the container's monitor when its caller is single-threaded (the CLI), and
otherwise launches it as a fresh interpreter (~60-90 ms more: the interpreter and the monitor's
imports). The Engine API service has threads, so it keeps a spawner: a single-threaded helper
process (`python -m engine.container.spawner FD`) with the engine's start path imported once,
which serves each start request in a grandchild of its own (fork, fork again, the middle one exits
at once): a copy of an idle, single-threaded, already-imported process, where `start.start` takes
its fork path.

Protocol: the caller sends one SOCK_SEQPACKET message per request, a JSON object (config, id,
attach, interactive, winsize) with one descriptor attached, the caller's end of a fresh socketpair;
the grandchild answers on that socketpair with one JSON line ({"ok": true} or {"error", "kind",
"exit_code"}) and, when attached, the monitor's attach channel as a descriptor of the same message.

Invariants: the spawner itself never runs engine code beyond imports (a failed start cannot hurt
it), never has a second thread, and exits when its control socket closes (its caller is gone). A
caller that finds it dead starts another one, and falls back to `start.start` in-process if that
fails too.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from dataclasses import dataclass

from engine.config import EngineConfig

MAX_MESSAGE = 1 << 20
ERRORS = ("NotFound", "Conflict", "InvalidArgument", "CommandNotFound", "CommandNotInvokable")


@dataclass(frozen=True)
class Started:
    """A start's outcome as the caller sees it: the attach channel when one was asked for."""

    attach: socket.socket | None


# ------------------------------------------------------------------------------------------ caller side


class Spawner:
    """The caller's handle: starts the helper, sends requests (thread-safe), falls back in-process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._control: socket.socket | None = None
        self._process = None

    def launch(self) -> None:
        import subprocess

        from engine.container.exec_instances import helper_env

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._process = subprocess.Popen(
            [sys.executable, "-S", "-m", "engine.container.spawner", str(theirs.fileno())],
            pass_fds=[theirs.fileno()], env=helper_env(), cwd="/", stdin=subprocess.DEVNULL, start_new_session=True,
        )
        theirs.close()
        self._control = ours

    def close(self) -> None:
        if self._control is not None:
            self._control.close()  # the helper reads EOF and exits
            self._control = None
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except Exception:  # noqa: BLE001 - it is a helper: kill it rather than hang
                self._process.kill()
                self._process.wait()
            self._process = None

    def _send(self, request: bytes, fd: int) -> None:
        """Send one request (under the lock); a helper found dead is replaced once, then OSError."""
        if self._control is None:
            raise OSError("no spawner")
        try:
            socket.send_fds(self._control, [request], [fd])
        except OSError:
            if self._process is None or self._process.poll() is None:
                raise
            self._control.close()  # it died (killed, out of memory): reap it and start another
            self._control = None
            self._process = None
            self.launch()
            socket.send_fds(self._control, [request], [fd])  # type: ignore[arg-type]

    def start(
        self, config: EngineConfig, container_id: str, attach: bool, interactive: bool, winsize: tuple[int, int] | None
    ) -> Started:
        """Start the container through the helper (blocking: call it off the event loop)."""
        from engine.container import start as starting
        from engine.container.monitor.context import config_to_json

        request = json.dumps({"config": config_to_json(config), "id": container_id, "attach": attach,
                              "interactive": interactive, "winsize": list(winsize) if winsize else None}).encode()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with self._lock:
                self._send(request, theirs.fileno())
        except OSError:
            ours.close()
            theirs.close()
            result = starting.start(config, container_id, attach=attach, interactive=interactive, winsize=winsize)
            return Started(result.attach and socket.socket(fileno=result.attach.detach()))
        theirs.close()
        with ours:
            message, fds, _, _ = socket.recv_fds(ours, MAX_MESSAGE, 1)
        attach_sock = socket.socket(fileno=fds[0]) if fds else None
        _raise_reported(message, attach_sock)
        return Started(attach_sock)


def _raise_reported(message: bytes, attach_sock: socket.socket | None) -> None:
    from engine import errors

    if not message:
        if attach_sock is not None:
            attach_sock.close()
        raise errors.DockuiError("the container's start helper exited without an answer")
    reply = json.loads(message)
    if "error" not in reply:
        return
    if attach_sock is not None:
        attach_sock.close()
    kind = reply.get("kind")
    error = getattr(errors, kind)(reply["error"]) if kind in ERRORS else errors.DockuiError(reply["error"])
    error.exit_code = int(reply.get("exit_code", 125))
    raise error


# ------------------------------------------------------------------------------------------ the helper


def serve(control: socket.socket) -> None:
    """The helper's loop: one grandchild per request, until the control socket closes."""
    from engine.container import start as starting  # noqa: F401 - imported once, inherited by every fork

    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, MAX_MESSAGE, 1)
        except InterruptedError:
            continue
        if not message:
            return
        if not fds:
            continue
        pid = os.fork()
        if pid == 0:
            if os.fork() == 0:
                control.close()
                _answer(message, fds[0])
            os._exit(0)
        os.close(fds[0])
        os.waitpid(pid, 0)


def _answer(message: bytes, reply_fd: int) -> None:
    """In the grandchild: start the container, answer on the reply socket, exit."""
    code = 0
    reply = socket.socket(fileno=reply_fd)
    try:
        os.setsid()
        request = json.loads(message)
        from engine.container import start as starting
        from engine.container.monitor.context import config_from_json
        from engine.errors import DockuiError

        winsize = tuple(request["winsize"]) if request.get("winsize") else None
        try:
            result = starting.start(config_from_json(request["config"]), request["id"], attach=request["attach"],
                                    interactive=request["interactive"], winsize=winsize)
        except DockuiError as exc:
            socket.send_fds(reply, [json.dumps({"error": str(exc), "kind": type(exc).__name__,
                                                "exit_code": exc.exit_code}).encode()], [])
        else:
            fds = [result.attach.fileno()] if result.attach is not None else []
            socket.send_fds(reply, [b'{"ok": true}'], fds)
    except BaseException as exc:  # noqa: BLE001 - the caller gets one line whatever happened
        code = 1
        try:
            socket.send_fds(reply, [json.dumps({"error": f"start helper: {type(exc).__name__}: {exc}"}).encode()], [])
        except OSError:
            pass
    finally:
        os._exit(code)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m engine.container.spawner CONTROL_FD", file=sys.stderr)
        return 2
    serve(socket.socket(fileno=int(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
