"""Engine API endpoints: system (see docs/api.md): `system/df`, `events`, `auth`.

`/events` streams the engine's events log (engine/events.py, engine/eventlog.py) as Docker does: the logged events since
`since` first, then live ones until `until` or until the client goes away; each stream polls the
log on its own timer, so it never holds a thread or blocks another request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

from engine.api import images as api_images
from engine.api import system as api
from engine.errors import InvalidArgument, RegistryError
from engine.service.context import engine_config, json_body
from engine.service.filters import filter_pairs
from engine.service.images import epoch

routes = web.RouteTableDef()

POLL_SECONDS = 0.1


# ---- system/df ------------------------------------------------------------------------------------


def _image_doc(usage: api.ImageUsage) -> dict[str, Any]:
    record = usage.record
    return {
        "Id": record.id, "ParentId": "", "RepoTags": record.repo_tags, "RepoDigests": record.repo_digests,
        "Created": epoch(record.created), "Size": record.size, "SharedSize": usage.shared_size,
        "VirtualSize": record.size, "Labels": (record.config.get("config") or {}).get("Labels") or None,
        "Containers": usage.containers,
    }


def _container_doc(usage: api.ContainerUsage) -> dict[str, Any]:
    """The container list's row (engine.service.containers) with the sizes `system df` adds."""
    from engine.service.containers import list_entry

    return {**list_entry(usage.record, list(usage.names)), "SizeRw": usage.size_rw, "SizeRootFs": usage.size_root_fs}


def _volume_doc(usage: api.VolumeUsage) -> dict[str, Any]:
    return {**usage.volume.inspect(), "UsageData": {"Size": usage.size, "RefCount": usage.ref_count}}


@routes.get("/system/df")
async def disk_usage(request: web.Request) -> web.Response:
    usage = await asyncio.to_thread(api.disk_usage, engine_config(request))
    return web.json_response({
        "LayersSize": usage.layers_size,
        "Images": [_image_doc(i) for i in usage.images],
        "Containers": [_container_doc(c) for c in usage.containers],
        "Volumes": [_volume_doc(v) for v in usage.volumes],
        "BuildCache": [],
    })


# ---- events ---------------------------------------------------------------------------------------


def event_query(request: web.Request) -> api.EventQuery:
    times = {}
    for key in ("since", "until"):
        text = request.query.get(key)
        try:
            times[key] = api.parse_event_time(text) if text else None
        except (InvalidArgument, ValueError):
            raise InvalidArgument(f"invalid value for {key}: {text!r}") from None
    return api.EventQuery(times["since"], times["until"], api.EventFilter.parse(filter_pairs(request)))


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


@routes.get("/events")
async def events(request: web.Request) -> web.StreamResponse:
    query = event_query(request)
    stream = await asyncio.to_thread(api.EventStream, engine_config(request), query)
    try:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for event in stream.backlog:
            await response.write(_line(event))
        while not query.ended and not _gone(request):
            await asyncio.sleep(POLL_SECONDS)
            for event in stream.poll():
                await response.write(_line(event))
        for event in stream.poll():  # what arrived up to `until`
            await response.write(_line(event))
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response
    finally:
        stream.close()


def _line(event: api.Event) -> bytes:
    return json.dumps(event.to_docker()).encode() + b"\n"


# ---- auth -----------------------------------------------------------------------------------------


@routes.post("/auth")
async def auth(request: web.Request) -> web.Response:
    """Check credentials against a registry as `dockui login` does; nothing is stored (the docker
    CLI keeps them in its own config.json)."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidArgument("auth: the body must be a JSON object")
    fields = {k: body.get(k) or "" for k in ("username", "password", "serveraddress")}
    if not all(isinstance(v, str) for v in fields.values()):
        raise InvalidArgument("auth: username, password and serveraddress must be strings")
    try:
        await asyncio.to_thread(api_images.check_login, engine_config(request), fields["serveraddress"] or "docker.io",
                                fields["username"], fields["password"])
    except RegistryError as exc:
        if "unauthorized" not in str(exc):
            raise  # an unreachable registry is the service's failure to report (500), not a refusal
        # Docker answers refused credentials with 401 and the registry's words
        return web.json_response({"message": str(exc).splitlines()[0]}, status=401)
    return web.json_response({"Status": "Login Succeeded", "IdentityToken": ""})
