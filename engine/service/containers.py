"""Engine API endpoints: containers (see docs/api.md).

Each handler translates Docker's request into one engine.api.containers call (run on a thread: the
engine's calls block) and the result into Docker's JSON. Long streams (logs with follow, stats,
attach, wait) are awaited on the event loop or on their own thread, never on the shared pool's
short-call threads for longer than one poll, so they never hold up other requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

from engine.api import containers as api
from engine.config import EngineConfig
from engine.container.detachkeys import detach_sequence
from engine.container.mounts import mount_points
from engine.container.state import ContainerRecord, parse_rfc3339
from engine.container.status import command_text, published_ports
from engine.errors import Conflict, DockuiError, InvalidArgument, NotFound
from engine.service.attach import AttachRequest, AttachStreams, Sessions
from engine.service.attach import serve as serve_attach
from engine.service.context import (
    SESSIONS,
    SPAWNER,
    api_version,
    engine_config,
    json_body,
    json_response,
    query_bool,
    query_int,
)
from engine.service.create_body import create_request
from engine.service.fields import console_size
from engine.service.filters import filter_pairs
from engine.service.streams import STDERR, STDOUT, frame, hijack, in_batches, open_websocket

routes = web.RouteTableDef()

NO_CONTENT = 204


async def finish(response: web.StreamResponse) -> None:
    """End a streamed body; a client already gone is not an error (its stream just ends)."""
    with contextlib.suppress(ConnectionError, RuntimeError):
        await response.write_eof()


def _sessions(request: web.Request) -> Sessions:
    return request.app[SESSIONS]  # type: ignore[return-value]


async def _call(func: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(func, *args, **kwargs)


# ------------------------------------------------------------------------------------------ create, list, inspect


@routes.post("/containers/create")
async def create(request: web.Request) -> web.Response:
    config = engine_config(request)
    body = await json_body(request)
    if body is None:
        raise InvalidArgument("config cannot be empty in order to create a container")
    spec = create_request(body, request.query.get("name"), request.query.get("platform"))
    version = api_version(request)
    if version < (1, 44):  # moby's defaultReadOnlyNonRecursive
        from engine.container.mounts import for_api_before_1_44

        for_api_before_1_44(spec.options)
    if version < (1, 40) and not spec.options.ipc:
        spec.options.ipc = "shareable"  # moby's router: the default of clients older than private-by-default
    legacy = spec.options.network in ("bridge", "default")  # moby checks links only there (registerLinks)
    await asyncio.to_thread(_check_references, config, spec.options.links if legacy else [], spec.options.volumes_from)
    if request.query.get("platform"):
        await asyncio.to_thread(_check_platform, config, spec.options.image, request.query["platform"])
    record = await _call(api.create, config, spec.options, spec.aliases, spec.recorded)
    from engine.container.create import create_warnings

    return json_response({"Id": record.id, "Warnings": create_warnings(spec.options)}, status=201)


def _check_references(config: EngineConfig, links: list[str], volumes_from: list[str]) -> None:
    """moby checks at create that linked and volumes-from containers exist: a missing one is a 400
    (the request names something wrong), never a 404 (which the CLI reads as a missing image)."""
    for ref, words in [(link.split(":", 1)[0].lstrip("/"), "could not get container for {}: ") for link in links] + \
                      [(source.split(":", 1)[0], "") for source in volumes_from]:
        try:
            api.find(config, ref)
        except NotFound as exc:
            raise InvalidArgument(words.format(ref) + str(exc)) from None


def _check_platform(config: EngineConfig, image: str, platform: str) -> None:
    """moby's create with a platform: read as containerd reads one (a malformed one is a 400), then
    the local image must be of it (a 404 otherwise, as for a missing image: create never pulls). An
    image that is not there is create's own 404."""
    from engine.api import images
    from engine.image.manifest import Platform, parse_platform

    wanted = parse_platform(platform).normalised()
    try:
        record = images.resolve(config, image)
    except NotFound:
        return
    actual_os = str(record.config.get("os") or "linux")
    actual_arch = str(record.config.get("architecture") or "amd64")
    actual = Platform(actual_os, actual_arch).normalised()
    if (wanted.os, wanted.architecture) != (actual.os, actual.architecture):
        raise NotFound(f"image with reference {image} was found but does not match the specified platform: "
                       f"wanted {platform}, actual: {actual_os}/{actual_arch}")


@routes.get("/containers/json")
async def list_containers(request: web.Request) -> web.Response:
    config = engine_config(request)
    query = api.ContainerQuery(
        all=query_bool(request, "all"),
        limit=query_int(request, "limit", -1) or -1,
        filters=api.parse_filters(filter_pairs(request)),
    )
    with_size = query_bool(request, "size")

    def listing() -> list[dict[str, Any]]:
        listing = api.list_named(config, query)
        image_sizes: dict[str, int] = {}
        rows = []
        for r in listing.records:
            row = list_entry(r, listing.names.get(r.id))
            if with_size:
                sizes = api.container_sizes(config, r, image_sizes)
                row["SizeRw"], row["SizeRootFs"] = sizes.rw, sizes.root_fs
            rows.append(row)
        return rows

    return json_response(await _call(listing))


def list_entry(r: ContainerRecord, names: list[str] | None = None) -> dict[str, Any]:
    """One row of `GET /containers/json` (a container that does not run publishes no port, as Docker's);
    `names`: moby's Names (api.list_named: with the names links reserved), else its own name."""
    ports = []
    for port, bindings in published_ports(r).items():
        number, _, proto = port.partition("/")
        for b in bindings or [{}]:
            entry: dict[str, Any] = {"PrivatePort": int(number), "Type": proto or "tcp"}
            if b.get("HostPort"):
                entry |= {"IP": b.get("HostIp") or "0.0.0.0", "PublicPort": int(b["HostPort"])}
            ports.append(entry)
    return {
        "Id": r.id,
        "Names": names or ["/" + r.name],
        "Image": r.image,
        "ImageID": r.image_id,
        "Command": command_text(r),
        "Created": int(parse_rfc3339(r.created)),
        "Ports": ports,
        "Labels": r.config.get("Labels") or {},
        "State": r.status,
        "Status": api.status_text(r),
        "HostConfig": {"NetworkMode": r.host_config.get("NetworkMode", "bridge")},
        "NetworkSettings": {"Networks": api.listed_networks(r)},
        "Mounts": mount_points(r),  # Docker's MountPoint, as inspect shows them
    }


@routes.get("/containers/{id}/json")
async def inspect(request: web.Request) -> web.Response:
    data = await _call(api.inspect, engine_config(request), request.match_info["id"], query_bool(request, "size"))
    return json_response(data)


@routes.get("/containers/{id}/top")
async def top(request: web.Request) -> web.Response:
    args = request.query.get("ps_args", "").split() or None
    titles, processes = await _call(api.top, engine_config(request), request.match_info["id"], args)
    return json_response({"Titles": titles, "Processes": processes})


# ------------------------------------------------------------------------------------------ lifecycle


@routes.post("/containers/{id}/start")
async def start(request: web.Request) -> web.Response:
    config = engine_config(request)
    ref = request.match_info["id"]
    if request.query.get("checkpoint"):
        raise InvalidArgument("checkpoints are not supported by dockui")
    record = await _call(api.find, config, ref)
    if record.running:
        return web.Response(status=304)
    try:
        return await _start(request, config, record)
    except DockuiError as exc:
        raise _docker_start_error(exc) from None


def _docker_start_error(exc: DockuiError) -> DockuiError:
    """The docker CLI picks its exit status from the start error's words (127: "no such file or
    directory" or "executable file not found", 126: "permission denied"), in lower case."""
    if exc.exit_code not in (126, 127):
        return exc
    message = str(exc).replace("No such file or directory", "no such file or directory")
    error = DockuiError(message.replace("Permission denied", "permission denied"))
    error.exit_code = exc.exit_code
    return error


async def _start(request: web.Request, config: Any, record: ContainerRecord) -> web.Response:
    sessions = _sessions(request)
    spawner = request.app[SPAWNER]
    interactive = bool(record.config.get("OpenStdin"))
    size = _console_size(record)
    pending = sessions.take_pending(record.id)
    if pending is None:
        await _call(api.start, config, record.id, False, interactive, size, spawner)
        return web.Response(status=NO_CONTENT)
    try:
        result = await _call(api.start, config, record.id, True, interactive, size, spawner)
    except BaseException as exc:
        if not pending.channel.done():
            pending.channel.set_exception(exc if isinstance(exc, Exception) else Conflict("start cancelled"))
        raise
    channel = result.attach
    if channel is None:
        pending.channel.cancel()
    elif pending.channel.done():  # the attaching client went away meanwhile: the container runs on
        channel.close()
    else:
        pending.channel.set_result(channel)
    return web.Response(status=NO_CONTENT)


def _console_size(record: ContainerRecord) -> tuple[int, int] | None:
    """A tty container's first size, as its create recorded it (HostConfig.ConsoleSize)."""
    return console_size(record.host_config) if record.config.get("Tty") else None


@routes.post("/containers/{id}/stop")
async def stop(request: web.Request) -> web.Response:
    config = engine_config(request)
    timeout = query_int(request, "t")
    record = await _call(api.find, config, request.match_info["id"])
    if not record.running:
        return web.Response(status=304)
    await _call(api.stop, config, record.id, timeout, request.query.get("signal") or None)
    return web.Response(status=NO_CONTENT)


@routes.post("/containers/{id}/restart")
async def restart(request: web.Request) -> web.Response:
    await _call(api.restart, engine_config(request), request.match_info["id"], query_int(request, "t"))
    return web.Response(status=NO_CONTENT)


@routes.post("/containers/{id}/kill")
async def kill(request: web.Request) -> web.Response:
    await _call(api.kill, engine_config(request), request.match_info["id"], request.query.get("signal") or "SIGKILL")
    return web.Response(status=NO_CONTENT)


@routes.post("/containers/{id}/pause")
async def pause(request: web.Request) -> web.Response:
    await _call(api.pause, engine_config(request), request.match_info["id"])
    return web.Response(status=NO_CONTENT)


@routes.post("/containers/{id}/unpause")
async def unpause(request: web.Request) -> web.Response:
    await _call(api.unpause, engine_config(request), request.match_info["id"])
    return web.Response(status=NO_CONTENT)


@routes.post("/containers/{id}/rename")
async def rename(request: web.Request) -> web.Response:
    name = request.query.get("name")
    if not name:
        raise InvalidArgument("rename: the new name is required (?name=)")
    await _call(api.rename, engine_config(request), request.match_info["id"], name)
    return web.Response(status=NO_CONTENT)


@routes.post("/containers/{id}/update")
async def update(request: web.Request) -> web.Response:
    """docker update: engine.service.update_body reads the body, engine.container.update applies it."""
    from engine.service.update_body import update_request

    change = update_request(await json_body(request), api_version(request))
    if change.is_empty():  # Docker's daemon takes an empty update ("one or more flags" is its CLI's check)
        await _call(api.find, engine_config(request), request.match_info["id"])
    else:
        await _call(api.update, engine_config(request), request.match_info["id"], change)
    return json_response({"Warnings": []})


@routes.delete("/containers/{id}")
async def remove(request: web.Request) -> web.Response:
    if query_bool(request, "link"):  # `{id}` names the link: moby's "the default link name" conflict unless it has a "/"
        await _call(api.remove_link, engine_config(request), request.match_info["id"])
        return web.Response(status=NO_CONTENT)
    ref = request.match_info["id"]  # removed by the reference given: moby's refusals name it so
    record = await _call(api.remove, engine_config(request), ref, query_bool(request, "force"), query_bool(request, "v"))
    _sessions(request).end_pending(record.id)  # an attach waiting for a start that cannot come
    return web.Response(status=NO_CONTENT)


@routes.post("/containers/prune")
async def prune(request: web.Request) -> web.Response:
    from engine.api.prune import CONTAINER_KEYS, PruneFilter

    filters = PruneFilter.parse(filter_pairs(request), CONTAINER_KEYS)
    removed, reclaimed = await _call(api.prune_reclaiming, engine_config(request), filters)
    return json_response({"ContainersDeleted": removed or None, "SpaceReclaimed": reclaimed})


@routes.post("/containers/{id}/resize")
async def resize(request: web.Request) -> web.Response:
    rows, cols = query_int(request, "h", 0) or 0, query_int(request, "w", 0) or 0
    record = await _call(api.find, engine_config(request), request.match_info["id"])
    if not record.running:
        raise Conflict(f"container {record.id} is not running")
    if await _sessions(request).resize(record.id, rows, cols):  # moby logs a size its task took
        from engine import events

        await asyncio.to_thread(events.container, engine_config(request), "resize", record, height=rows, width=cols)
    return web.Response(status=200)


# ------------------------------------------------------------------------------------------ wait


@routes.post("/containers/{id}/wait")
async def wait(request: web.Request) -> web.StreamResponse:
    """Docker answers 200 at once and sends the body when the condition holds (so a client sees
    the headers before it starts the container)."""
    from engine.container.waiting import POLL_SECONDS

    waiter = await _call(api.wait, engine_config(request), request.match_info["id"], request.query.get("condition", ""))
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        result = await _call(waiter.poll)
        if result is not None:
            break
        if request.transport is None or request.transport.is_closing():
            return response
        # Short runs (`docker run --rm`) end and are removed within a second: look every 10 ms
        # then; longer waits are polled every POLL_SECONDS.
        await asyncio.sleep(0.01 if loop.time() - started < 1.0 else POLL_SECONDS)
    body: dict[str, Any] = {"StatusCode": result.status_code}
    if result.error:
        body["Error"] = {"Message": result.error}
    with contextlib.suppress(ConnectionError):
        await response.write(json.dumps(body).encode() + b"\n")
    await finish(response)
    return response


# ------------------------------------------------------------------------------------------ logs


@routes.get("/containers/{id}/logs")
async def logs(request: web.Request) -> web.StreamResponse:
    config = engine_config(request)
    query = _log_query(request)
    if not (query.stdout or query.stderr):
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    timestamps = query_bool(request, "timestamps")
    record, entries, offset = await _call(api.log_entries, config, request.match_info["id"], query)
    framed = not record.config.get("Tty")
    response = web.StreamResponse(status=200, headers={
        "Content-Type": "application/vnd.docker.multiplexed-stream" if framed else "application/vnd.docker.raw-stream"})
    await response.prepare(request)

    details = query_bool(request, "details")  # moby: the entry's attributes (none here), then a space

    async def emit(entry: Any) -> bool:
        data = b" " + entry.data if details else entry.data
        data = data if not timestamps else entry.time.encode() + b" " + data
        stream = STDERR if entry.stream == "stderr" else STDOUT
        try:
            await response.write(frame(stream, data) if framed else data)
        except (ConnectionError, RuntimeError):
            return False
        return True

    async for batch in in_batches(entries):
        for entry in batch:
            if not await emit(entry):
                return response
    if query.follow:
        await _follow(request, config, record, offset, query, emit)
    await finish(response)
    return response


def _log_query(request: web.Request) -> api.LogQuery:
    from engine.container.logs import parse_since

    tail = request.query.get("tail", "all")
    if tail in ("all", "", "-1"):
        tail_n = None
    else:
        try:
            tail_n = int(tail)
        except ValueError:
            raise InvalidArgument(f"invalid value for tail: {tail!r}") from None
    since = parse_since(request.query.get("since")) or None
    until = parse_since(request.query.get("until")) or None
    return api.LogQuery(stdout=query_bool(request, "stdout"), stderr=query_bool(request, "stderr"),
                        since=since, until=until, tail=tail_n, follow=query_bool(request, "follow"))


async def _follow(request: web.Request, config: Any, record: ContainerRecord, offset: int, query: api.LogQuery,
                  emit: Any) -> None:
    """Follow on a thread of its own (the engine's follower polls and sleeps), handing entries to
    the loop; the client's disconnect cancels the follower within one poll."""
    import threading

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1000)
    cancelled = threading.Event()
    done = object()

    def put(item: Any) -> None:
        asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    def follower() -> None:
        try:
            for entry in api.follow_logs(config, record, offset, query, cancelled.is_set):
                put(entry)
        except Exception:  # noqa: BLE001 - a removed container ends the stream
            pass
        finally:
            if not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    put(done)

    threading.Thread(target=follower, name="logs-follow", daemon=True).start()
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), 1.0)
            except TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    return
                continue
            if item is done or not await emit(item):
                return
    finally:
        cancelled.set()
        while not queue.empty():
            queue.get_nowait()


# ------------------------------------------------------------------------------------------ attach


@routes.post("/containers/{id}/attach")
async def attach(request: web.Request) -> web.StreamResponse:
    """The hijacked attach: Docker's framing without a tty, raw with one."""
    config = engine_config(request)
    record = await _call(api.find, config, request.match_info["id"])
    framed = not record.config.get("Tty")
    asked = _attach_request(request, record, query_bool(request, "stdin"), query_bool(request, "stdout"),
                            query_bool(request, "stderr"))
    return await serve_attach(config, _sessions(request), record, asked, lambda: hijack(request, framed))


@routes.get("/containers/{id}/attach/ws")
async def attach_ws(request: web.Request) -> web.StreamResponse:
    """The websocket attach (moby's wsContainersAttach): raw binary frames, never multiplexed;
    before API 1.42 every stream is attached, whatever the query says."""
    config = engine_config(request)
    record = await _call(api.find, config, request.match_info["id"])
    if api_version(request) >= (1, 42):
        wanted = query_bool(request, "stdin"), query_bool(request, "stdout"), query_bool(request, "stderr")
    else:
        wanted = True, True, True
    asked = _attach_request(request, record, *wanted)
    return await serve_attach(config, _sessions(request), record, asked, lambda: open_websocket(request))


def _attach_request(request: web.Request, record: ContainerRecord, stdin: bool, stdout: bool,
                    stderr: bool) -> AttachRequest:
    """Moby's ContainerAttach checks: detach keys are parsed whatever the container (acted on with
    a tty only), a paused or restarting container is a conflict."""
    tty = bool(record.config.get("Tty"))
    keys = detach_sequence(request.query.get("detachKeys"))
    ref = request.match_info["id"]
    if record.status == "paused":
        raise Conflict(f"container {ref} is paused, unpause the container before attach")
    if record.status == "restarting":
        raise Conflict(f"container {ref} is restarting, wait until the container is running")
    close_stdin = bool(record.config.get("StdinOnce")) and not tty
    stdin = stdin and bool(record.config.get("OpenStdin"))  # moby attaches no stdin to a container without -i
    return AttachRequest(AttachStreams(stdin, stdout, stderr, keys if tty else b"", close_stdin),
                         query_bool(request, "logs"), query_bool(request, "stream"))


# ------------------------------------------------------------------------------------------ stats


@routes.get("/containers/{id}/stats")
async def stats(request: web.Request) -> web.StreamResponse:
    from engine.stats.sampler import Sampler, state_targets

    config = engine_config(request)
    record = await _call(api.find, config, request.match_info["id"])
    stream = query_bool(request, "stream", True)
    one_shot = query_bool(request, "one-shot")
    if not record.running:
        body = _empty_stats(record)
        if not stream:
            return json_response(body)
    every = state_targets(config)
    sampler = Sampler(config, lambda: [t for t in every() if t.id == record.id], host=False)
    try:
        previous = None
        if not one_shot:
            previous = await _sample(sampler, record, None)
            if not stream:
                await asyncio.sleep(1.0)
        current = await _sample(sampler, record, previous)
        if not stream:
            return json_response(current)
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        while current is not None:
            try:
                await response.write(json.dumps(current).encode() + b"\n")
            except (ConnectionError, RuntimeError):
                return response
            await asyncio.sleep(1.0)
            if request.transport is None or request.transport.is_closing():
                return response
            current = await _sample(sampler, record, current)
        await finish(response)
        return response
    finally:
        sampler.close()


async def _sample(sampler: Any, record: ContainerRecord, previous: dict[str, Any] | None) -> dict[str, Any] | None:
    def take() -> dict[str, Any] | None:
        snapshot = sampler.sample()
        stats = snapshot.get(record.id)
        return api.docker_stats(stats, previous, record) if stats is not None else None

    return await _call(take)


def _empty_stats(record: ContainerRecord) -> dict[str, Any]:
    zero = {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    return {"read": "0001-01-01T00:00:00Z", "preread": "0001-01-01T00:00:00Z", "pids_stats": {}, "blkio_stats": {},
            "num_procs": 0, "storage_stats": {}, "cpu_stats": zero, "precpu_stats": zero, "memory_stats": {},
            "name": "/" + record.name, "id": record.id}


# ------------------------------------------------------------------------------------------ legacy links


@routes.delete("/containers/{id}/{link}")
async def remove_link(request: web.Request) -> web.Response:
    """`DELETE /containers/<container>/<alias>?link=1` (the docker CLI's `rm --link`, docker-py's
    `remove_container(..., link=True)`): a link's name is `<container>/<alias>`."""
    if not query_bool(request, "link"):
        raise NotFound(f"No such container: {request.match_info['id']}/{request.match_info['link']}")
    name = f"{request.match_info['id']}/{request.match_info['link']}"
    await _call(api.remove_link, engine_config(request), name)
    return web.Response(status=NO_CONTENT)


# ------------------------------------------------------------------------------------------ refused


REFUSED = {
    "/containers/{id}/checkpoints": "checkpoints are not supported by dockui (no CRIU)",
}


def _refuse(message: str) -> Any:
    async def handler(request: web.Request) -> web.Response:  # noqa: ARG001
        return json_response({"message": message}, status=501)

    return handler


for _path, _message in REFUSED.items():
    routes.route("*", _path)(_refuse(_message))
