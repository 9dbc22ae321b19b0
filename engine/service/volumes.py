"""Engine API endpoints: volumes (see docs/api.md).

Docker's volume bodies and queries become `engine.api.volumes` calls. Invariant: a body is checked
whole before anything is created (the `local` driver and its options only; names as Docker's).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from engine.api import volumes as api
from engine.errors import InvalidArgument, NotFound
from engine.service.context import api_version, engine_config, json_body, query_bool
from engine.service.filters import filter_pairs

routes = web.RouteTableDef()

_CREATE_FIELDS = {"Name", "Driver", "DriverOpts", "Labels", "ClusterVolumeSpec"}


def create_spec(body: Any) -> api.CreateVolume:
    what = "volume create"
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidArgument(f"{what}: the body must be a JSON object")
    unknown = sorted(set(body) - _CREATE_FIELDS)
    if unknown:
        raise InvalidArgument(f"{what}: unknown field {unknown[0]}")
    name = body.get("Name")
    if name is not None and not isinstance(name, str):
        raise InvalidArgument(f"{what}: Name must be a string")
    driver = body.get("Driver") or "local"
    if driver != "local":  # no volume plugins: Docker's plugin lookup finds none (404, errdefs.NotFound)
        shown = f"create {name}: " if name else ""
        raise NotFound(f'{shown}error looking up volume plugin {driver}: plugin "{driver}" not found')
    options = body.get("DriverOpts") or {}
    if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
        raise InvalidArgument(f"{what}: DriverOpts must be an object of strings")
    if body.get("ClusterVolumeSpec"):
        raise InvalidArgument(f"{what}: cluster volumes are not supported")
    labels = body.get("Labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise InvalidArgument(f"{what}: Labels must be an object of strings")
    return api.CreateVolume(name or None, dict(labels), dict(options))


@routes.get("/volumes")
async def list_volumes(request: web.Request) -> web.Response:
    volume_filter = api.VolumeFilter.parse(filter_pairs(request))
    found = await asyncio.to_thread(api.list_volumes, engine_config(request), volume_filter)
    return web.json_response({"Volumes": [v.inspect() for v in found], "Warnings": []})


@routes.post("/volumes/create")
async def create(request: web.Request) -> web.Response:
    spec = create_spec(await json_body(request))
    volume = await asyncio.to_thread(api.create, engine_config(request), spec)
    return web.json_response(volume.inspect(), status=201)


@routes.post("/volumes/prune")
async def prune(request: web.Request) -> web.Response:
    from engine.api.prune import VOLUME_KEYS, PruneFilter

    filters = PruneFilter.parse(filter_pairs(request), VOLUME_KEYS)
    # Before API 1.42 a prune took named volumes too (moby's router sets all=true for older clients).
    everything = filters.flag is True or api_version(request) < (1, 42)
    removed, freed = await asyncio.to_thread(api.prune, engine_config(request), everything, filters)
    return web.json_response({"VolumesDeleted": removed or None, "SpaceReclaimed": freed})


@routes.get("/volumes/{name}")
async def inspect(request: web.Request) -> web.Response:
    doc = await asyncio.to_thread(api.inspect, engine_config(request), request.match_info["name"])
    return web.json_response(doc)


@routes.delete("/volumes/{name}")
async def remove(request: web.Request) -> web.Response:
    force = query_bool(request, "force")
    await asyncio.to_thread(api.remove, engine_config(request), request.match_info["name"], force)
    return web.Response(status=204)
