"""Engine API endpoints: a container's filesystem (see docs/api.md): `archive` (docker cp, both
ways), `export`, `changes` and `commit`.

Reading or writing inside a container means entering its mount namespace (or mounting its overlay
in a private one), which a threaded process must not do: those run in engine.container.archive's
helper, a fresh single-threaded interpreter whose stdout/stdin this module streams. Invariants: a
helper's failure is one line with Docker's status (404 no such path, 400 bad request, 500 other);
a client that goes away mid-stream kills only its helper.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from engine.api import containers as api
from engine.errors import InvalidArgument
from engine.service.containers import finish
from engine.service.context import engine_config, json_body, json_response, query_bool
from engine.service.fields import json_dict, json_str, json_strs

routes = web.RouteTableDef()


async def _call(func: Any, *args: Any) -> Any:
    return await asyncio.to_thread(func, *args)


@routes.get("/containers/{id}/changes")
async def changes(request: web.Request) -> web.Response:
    rows = await _call(api.changes, engine_config(request), request.match_info["id"])
    return json_response([{"Path": c.path, "Kind": c.kind} for c in rows] or None)


HELPER_ERRORS = {2: 404, 3: 400}


async def _helper(request: web.Request, op: str, *args: str, stdin: bool = False) -> asyncio.subprocess.Process:
    """The archive helper (engine.container.archive) for this container: a fresh interpreter, as it
    enters the container's mount namespace."""
    import subprocess

    from engine.container import archive

    config = engine_config(request)
    record = await _call(api.find, config, request.match_info["id"])
    argv, env = archive.helper_command(op, config, record.id, *args)
    return await asyncio.create_subprocess_exec(
        *argv, env=env, cwd="/", stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


async def _helper_failed(process: asyncio.subprocess.Process, request: web.Request) -> web.Response:
    """The helper's one line; a missing path in moby's words, naming the container as the client did."""
    assert process.stderr is not None
    message = (await process.stderr.read()).decode(errors="replace").strip().splitlines()
    code = await process.wait()
    if code == 2 and request.query.get("path"):
        return error_response(404, f"Could not find the file {request.query['path']} in container {request.match_info['id']}")
    return error_response(HELPER_ERRORS.get(code, 500), message[-1] if message else f"archive helper exited {code}")


def error_response(status: int, message: str) -> web.Response:
    return json_response({"message": message}, status=status)


def _path_query(request: web.Request) -> str:
    path = request.query.get("path")
    if not path:
        raise InvalidArgument("path is required (?path=)")
    return path


def _stat_header(line: bytes) -> str:
    import base64

    return base64.b64encode(line.strip()).decode()


@routes.head("/containers/{id}/archive")
async def archive_head(request: web.Request) -> web.Response:
    process = await _helper(request, "stat", _path_query(request))
    assert process.stdout is not None
    line = await process.stdout.readline()
    if not line:
        return await _helper_failed(process, request)
    await process.wait()
    return web.Response(status=200, headers={"X-Docker-Container-Path-Stat": _stat_header(line)})


@routes.get("/containers/{id}/archive")
async def archive_get(request: web.Request) -> web.StreamResponse:
    process = await _helper(request, "get", _path_query(request))
    assert process.stdout is not None
    line = await process.stdout.readline()
    if not line:
        return await _helper_failed(process, request)
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar",
                                                       "X-Docker-Container-Path-Stat": _stat_header(line)})
    await response.prepare(request)
    if await _stream_out(process, response) == 0:
        await _log_copied(request, "get")
    return response


async def _log_copied(request: web.Request, op: str) -> None:
    from engine.container import archive

    config = engine_config(request)
    record = await _call(api.find, config, request.match_info["id"])
    await _call(archive.log_copied, config, record.id, op)


async def _stream_out(process: asyncio.subprocess.Process, response: web.StreamResponse) -> int:
    """The helper's stdout to the client; the helper's exit status."""
    assert process.stdout is not None
    try:
        while chunk := await process.stdout.read(1 << 16):
            await response.write(chunk)
    except ConnectionError:
        process.kill()
        # Read the pipes to their end: a stdout whose reading was paused (the client had stopped
        # reading before it left) would otherwise never see EOF, and both pipes would stay open.
        await process.communicate()
    finally:
        code = await process.wait()
    await finish(response)
    return code


@routes.put("/containers/{id}/archive")
async def archive_put(request: web.Request) -> web.Response:
    path = _path_query(request)
    no_overwrite = "1" if query_bool(request, "noOverwriteDirNonDir") else "0"
    # copyUIDGID (cp -a): owned by the container's user when it has one, as moby's tarCopyOptions
    owner = ""
    if query_bool(request, "copyUIDGID"):
        record = await _call(api.find, engine_config(request), request.match_info["id"])
        owner = record.config.get("User") or ""
    process = await _helper(request, "put", path, no_overwrite, owner, stdin=True)
    assert process.stdin is not None
    try:
        async for chunk in request.content.iter_chunked(1 << 16):
            process.stdin.write(chunk)
            await process.stdin.drain()
    except (ConnectionError, OSError):
        pass  # the helper stopped reading (an error it reports below) or the client went away
    finally:
        process.stdin.close()
    code = await process.wait()
    if code != 0:
        return await _helper_failed(process, request)
    await _log_copied(request, "put")
    return web.Response(status=200)


@routes.get("/containers/{id}/export")
async def export(request: web.Request) -> web.StreamResponse:
    process = await _helper(request, "export")
    assert process.stdout is not None
    first = await process.stdout.read(1 << 16)
    if not first:
        return await _helper_failed(process, request)
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/octet-stream"})
    await response.prepare(request)
    await response.write(first)
    await _stream_out(process, response)
    return response


# ------------------------------------------------------------------------------------------ commit


@routes.post("/commit")
async def commit(request: web.Request) -> web.Response:
    """`docker commit`: a new image from the container's changes (engine.container.commit)."""
    from engine.container.commit import commit as commit_container
    from engine.image.changes import parse_changes

    body = await json_body(request)  # first, as moby's router: a body that is not JSON is said before anything
    container = request.query.get("container")
    if not container:
        raise InvalidArgument("commit: the container is required (?container=)")
    given = _config_body(body)
    repo = request.query.get("repo") or None
    if repo and request.query.get("tag"):
        repo = f"{repo}:{request.query['tag']}"
    changes = _over(given, parse_changes([c for c in request.query.getall("changes", []) if c]))
    image = await _call(commit_container, engine_config(request), container, repo,
                        request.query.get("comment", ""), request.query.get("author", ""), changes,
                        query_bool(request, "pause", True))
    return json_response({"Id": image.id}, status=201)


# A commit body's fields an image config keeps (engine.container.commit.IMAGE_CONFIG_KEYS), by type.
COMMIT_LISTS = ("Cmd", "Entrypoint", "Env")
COMMIT_DICTS = ("Labels", "ExposedPorts", "Volumes")
COMMIT_STRINGS = ("User", "WorkingDir", "StopSignal")
MERGED = ("Labels", "ExposedPorts", "Volumes")


def _config_body(body: Any) -> dict[str, Any]:
    """POST /commit's Config body, as moby's CreateImageFromContainer takes it: the new image's
    config, the container's filling each field it leaves empty (engine.container.commit applies it
    as changes over the container's config). A field no image config keeps is refused by name."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidArgument("commit: the body must be a JSON object (a container Config)")
    given: dict[str, Any] = {}
    for key, value in body.items():
        if value in (None, "", [], {}, False, 0):
            continue
        if key in COMMIT_LISTS:
            given[key] = json_strs("Config", body, key)
        elif key in COMMIT_DICTS:
            given[key] = json_dict("Config", body, key)
        elif key in COMMIT_STRINGS:
            given[key] = json_str("Config", body, key)
        elif key not in IGNORED_CONFIG_KEYS:
            raise InvalidArgument(f"commit: Config.{key} is not supported by dockui")
    return given


# What a client's Config carries that describes the container, not an image (moby's commit keeps
# them in the image's config, where nothing reads them): accepted and left out.
IGNORED_CONFIG_KEYS = ("Hostname", "Domainname", "AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin",
                       "StdinOnce", "Image", "ArgsEscaped")


def _over(given: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`changes` (the query's Dockerfile instructions) applied over the body's config, as moby's
    BuildFromConfig: LABEL, EXPOSE and VOLUME add, ENV sets its keys, the others replace."""
    merged = {**given, **changes}
    for key in MERGED:
        if key in given and key in changes:
            merged[key] = {**given[key], **changes[key]}
    if "Env" in given and "Env" in changes:
        names = {e.partition("=")[0] for e in changes["Env"]}
        merged["Env"] = [e for e in given["Env"] if e.partition("=")[0] not in names] + changes["Env"]
    return merged
