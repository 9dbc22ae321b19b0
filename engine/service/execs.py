"""Engine API endpoints: exec (see docs/api.md).

An exec instance is recorded by engine.container.exec_instances and run by its helper, a fresh
single-threaded interpreter (this service has threads, so it never forks into a container itself).
`start` relays between the hijacked connection and the helper's pipes: stdout and stderr framed as
Docker's streams (raw with a tty), the client's bytes to its stdin. The container's command never
sees these pipes: the helper gives it pipes of its own (or its own pty).

Invariants: the relay ends when the helper has exited and its output is drained; a client that goes
away closes only our ends (the command runs on, its exit code is still recorded); resize reaches the
helper of a running tty exec through a pipe this service holds while the relay runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import subprocess
from collections.abc import Callable
from typing import Any

from aiohttp import web

from engine.container import exec_instances
from engine.container.detachkeys import DetachScanner, detach_sequence
from engine.container.exec_instances import ExecInstance, ExecSpec
from engine.errors import InvalidArgument
from engine.service.context import engine_config, json_body, json_response, query_int
from engine.service.fields import canonical_keys, console_size, json_bool, json_str, json_strs
from engine.service.streams import STDERR, STDOUT, Hijacked, hijack

routes = web.RouteTableDef()

_resize_pipes: dict[str, int] = {}  # exec ID -> write end of its helper's resize pipe, while it runs
_reapers: set[asyncio.Task[int]] = set()  # waits for detached helpers


EXEC_FIELDS = ("Cmd", "Env", "WorkingDir", "User", "Tty", "Privileged", "AttachStdin", "AttachStdout", "AttachStderr",
               "DetachKeys", "ConsoleSize")


def _spec(body: Any) -> ExecSpec:
    if not isinstance(body, dict):
        raise InvalidArgument("the exec body must be a JSON object")
    body = canonical_keys(body, EXEC_FIELDS)
    argv = json_strs("ExecConfig", body, "Cmd")
    if not argv:
        raise InvalidArgument("No exec command specified")
    detach_sequence(json_str("ExecConfig", body, "DetachKeys"))  # a bad sequence is refused here, as Docker's
    return ExecSpec(
        argv=tuple(argv), env=tuple(json_strs("ExecConfig", body, "Env")), workdir=json_str("ExecConfig", body, "WorkingDir") or "",
        user=json_str("ExecConfig", body, "User") or "", tty=json_bool("ExecConfig", body, "Tty"), privileged=json_bool("ExecConfig", body, "Privileged"),
        attach_stdin=json_bool("ExecConfig", body, "AttachStdin"), attach_stdout=body.get("AttachStdout", True) is not False,
        attach_stderr=body.get("AttachStderr", True) is not False, detach_keys=json_str("ExecConfig", body, "DetachKeys") or "",
        console_size=console_size(body),
    )


@routes.post("/containers/{id}/exec")
async def create(request: web.Request) -> web.Response:
    spec = _spec(await json_body(request, {}))
    inst = await asyncio.to_thread(exec_instances.create_instance, engine_config(request), request.match_info["id"], spec)
    return json_response({"Id": inst.id}, status=201)


@routes.get("/exec/{id}/json")
async def inspect(request: web.Request) -> web.Response:
    inst = await asyncio.to_thread(exec_instances.load_instance, engine_config(request), request.match_info["id"])
    return json_response(inspect_body(inst))


def inspect_body(inst: ExecInstance) -> dict[str, Any]:
    spec = inst.spec
    return {
        "ID": inst.id,
        "Running": inst.running,
        "ExitCode": inst.exit_code,
        "ProcessConfig": {"tty": spec.tty, "entrypoint": spec.argv[0], "arguments": list(spec.argv[1:]),
                          "privileged": spec.privileged, "user": spec.user},
        "OpenStdin": spec.attach_stdin,
        "OpenStderr": spec.attach_stderr,
        "OpenStdout": spec.attach_stdout,
        "CanRemove": False,
        "ContainerID": inst.container_id,
        "DetachKeys": spec.detach_keys,
        "Pid": inst.pid,
    }


@routes.post("/exec/{id}/resize")
async def resize(request: web.Request) -> web.Response:
    rows, cols = query_int(request, "h", 0) or 0, query_int(request, "w", 0) or 0
    inst = await asyncio.to_thread(exec_instances.load_instance, engine_config(request), request.match_info["id"])
    fd = _resize_pipes.get(inst.id)
    if fd is not None and rows > 0 and cols > 0:
        with contextlib.suppress(OSError):
            os.write(fd, struct.pack(">HH", rows, cols))
    return web.Response(status=200)


@routes.post("/exec/{id}/start")
async def start(request: web.Request) -> web.StreamResponse:
    config = engine_config(request)
    body = await json_body(request, {}) or {}
    if not isinstance(body, dict):
        raise InvalidArgument("the exec start body must be a JSON object")
    detach = json_bool("ExecConfig", body, "Detach")
    # Docker frames the output unless the *start* asks for a tty (docker-py's exec_start sends
    # Tty: false by default and reads frames, even from a tty exec).
    framed = not json_bool("ExecConfig", body, "Tty")
    inst = await asyncio.to_thread(exec_instances.claim, config, request.match_info["id"])
    winsize = console_size(body) or inst.spec.console_size  # moby: the start's size, else the create's
    resize_r, resize_w = os.pipe2(os.O_CLOEXEC) if inst.spec.tty else (-1, -1)
    argv, env = exec_instances.helper_command(config, inst.id, winsize, resize_r)
    attached = not detach
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, env=env, cwd="/", start_new_session=True,
            stdin=subprocess.PIPE if attached and inst.spec.attach_stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if attached else subprocess.DEVNULL,
            stderr=subprocess.PIPE if attached else subprocess.DEVNULL,
            pass_fds=[resize_r] if resize_r >= 0 else [],
        )
    finally:
        if resize_r >= 0:
            os.close(resize_r)
    if detach:
        if resize_w >= 0:
            os.close(resize_w)
        reaper = asyncio.get_running_loop().create_task(process.wait())  # reap it when it ends
        _reapers.add(reaper)  # held until done: the loop keeps only weak references to tasks
        reaper.add_done_callback(_reapers.discard)
        return web.Response(status=200)
    if resize_w >= 0:
        _resize_pipes[inst.id] = resize_w
    try:
        response, client = await hijack(request, framed=framed)
        await _relay(process, client, inst.spec, lambda: exec_instances.detached(config, inst.id))
    finally:
        if _resize_pipes.pop(inst.id, None) is not None:
            os.close(resize_w)
    return response


async def _relay(process: asyncio.subprocess.Process, client: Hijacked, spec: ExecSpec,
                 on_detach: Callable[[], None]) -> None:
    """Helper output to the client and client input to the helper, until the helper is done;
    `on_detach` (moby's exec_detach event) when the client leaves with the detach keys."""

    async def pump(stream: asyncio.StreamReader | None, kind: int, wanted: bool) -> None:
        if stream is None:
            return
        while True:
            data = await stream.read(65536)
            if not data:
                return
            if wanted and not client.gone:
                await client.send(kind, data)

    # Docker's detach keys act on a tty exec's input: the client is let go, the command runs on.
    scanner = DetachScanner(detach_sequence(spec.detach_keys)) if spec.tty and spec.attach_stdin else None

    async def feed() -> None:
        stdin = process.stdin
        while True:
            data = await client.input.get()
            if scanner is not None and data:
                data, detached = scanner.feed(data)
                if detached:
                    await asyncio.to_thread(on_detach)  # before the client goes: its end cancels this task
                    client.close()
                    return
                if not data:
                    continue
            if stdin is None:
                if not data:
                    return
                continue
            try:
                if not data:
                    stdin.close()
                    return
                stdin.write(data)
                await stdin.drain()
            except (ConnectionError, OSError):
                return

    feeder = asyncio.create_task(feed())
    try:
        await asyncio.gather(pump(process.stdout, STDOUT, spec.attach_stdout),
                             pump(process.stderr, STDERR, spec.attach_stderr))
        await process.wait()
    finally:
        feeder.cancel()
        if process.stdin is not None:
            process.stdin.close()
        client.close()
