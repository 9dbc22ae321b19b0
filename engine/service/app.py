"""The aiohttp application of the Engine API service: routing, versions, errors, _ping/version/info.

Every endpoint module (ENDPOINT_MODULES: containers, container_files, execs, images, networks,
volumes, system, build, swarm, plugins) exposes `routes = web.RouteTableDef()`; each route is served both unversioned
(`/containers/json`) and versioned (`/v1.43/containers/json`). The app also owns the start spawner
(engine.container.spawner), launched at startup and stopped at cleanup. Invariants:
- A version outside MIN_API_VERSION..API_VERSION gets Docker's 400 and reaches no handler.
- Every engine error becomes Docker's `{"message": "..."}` body with Docker's status (NotFound 404,
  Conflict 409, InvalidArgument 400, anything else 500): one line, never a traceback.
- Bodies over MAX_BODY bytes are refused (413) before a handler reads them; endpoints that take
  archives (image load, container archive PUT) stream their bodies and are not limited.
"""

from __future__ import annotations

import asyncio
import logging
import platform
from collections.abc import Awaitable, Callable

from aiohttp import web

from engine.api import info as engine_info
from engine.config import EngineConfig
from engine.errors import Conflict, DockuiError, InvalidArgument, NotFound, NotSupported
from engine.service.context import API_VERSION, CONFIG, MIN_API_VERSION, engine_config, json_response

log = logging.getLogger("dockui.service")

MAX_BODY = 4 * 1024 * 1024  # create bodies are a few KiB; 4 MiB leaves room for big env/labels
STREAMED_BODIES = ("/archive", "/images/load", "/images/create", "/build")
ENDPOINT_MODULES = ("containers", "container_files", "execs", "images", "networks", "volumes", "system", "build", "swarm",
                    "plugins")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, message: str) -> web.Response:
    return json_response({"message": message}, status=status)


def status_of(exc: DockuiError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, InvalidArgument):
        return 400
    if isinstance(exc, NotSupported):
        return 501
    return 500


def _version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Versions, body size and engine errors, in Docker's words."""
    version = request.match_info.get("api_version")
    if version is not None:
        asked = _version_tuple(version)
        if asked < _version_tuple(MIN_API_VERSION):
            return error_response(400, f"client version {version} is too old. Minimum supported API version is "
                                  f"{MIN_API_VERSION}, please upgrade your client to a newer version")
        if asked > _version_tuple(API_VERSION):
            return error_response(400, f"client version {version} is too new. Maximum supported API version is {API_VERSION}")
    if (request.content_length or 0) > MAX_BODY and not request.path.endswith(STREAMED_BODIES):
        return error_response(413, f"request body of {request.content_length} bytes is over the limit of {MAX_BODY}")
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except DockuiError as exc:
        return error_response(status_of(exc), str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:  # noqa: BLE001 - the client gets one line, the log the details
        log.exception("%s %s failed", request.method, request.path)
        return error_response(500, f"internal error: {type(exc).__name__}: {exc}".splitlines()[0])


def ping_headers() -> dict[str, str]:
    return {
        "Api-Version": API_VERSION,
        "Docker-Experimental": "false",
        "Ostype": "linux",
        "Builder-Version": "1",
        "Cache-Control": "no-cache, no-store, must-revalidate",
        "Pragma": "no-cache",
        "Server": f"dockui (linux; {platform.machine()})",
    }


core = web.RouteTableDef()


@core.get("/_ping")
async def ping(request: web.Request) -> web.Response:  # noqa: ARG001
    return web.Response(text="OK", headers=ping_headers())


@core.head("/_ping")
async def ping_head(request: web.Request) -> web.Response:  # noqa: ARG001
    return web.Response(headers=ping_headers())


@core.get("/version")
async def version(request: web.Request) -> web.Response:  # noqa: ARG001
    return json_response(engine_info.version())


@core.get("/info")
async def info(request: web.Request) -> web.Response:
    body = await asyncio.to_thread(engine_info.info, engine_config(request))
    return json_response(body)


@web.middleware
async def server_header(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if not response.prepared:
        response.headers.setdefault("Api-Version", API_VERSION)
        response.headers.setdefault("Ostype", "linux")
    return response


def _add_routes(app: web.Application, table: web.RouteTableDef) -> None:
    for route in table:
        assert isinstance(route, web.RouteDef)
        for path in (route.path, "/v{api_version:[0-9]+[.][0-9]+}" + route.path):
            app.router.add_route(route.method, path, route.handler, **route.kwargs)


async def _not_found(request: web.Request) -> web.Response:
    return error_response(404, f"page not found: {request.method} {request.path}")


async def _start_spawner(app: web.Application) -> None:
    """The single-threaded helper that starts containers by fork (engine.container.spawner)."""
    from engine.service.context import SPAWNER

    await asyncio.to_thread(app[SPAWNER].launch)  # type: ignore[attr-defined]


async def _stop_spawner(app: web.Application) -> None:
    from engine.service.context import SPAWNER

    await asyncio.to_thread(app[SPAWNER].close)  # type: ignore[attr-defined]


def make_app(config: EngineConfig, spawn: bool = True) -> web.Application:
    import importlib

    from engine.service.attach import Sessions

    app = web.Application(middlewares=[server_header, errors_middleware], client_max_size=MAX_BODY)
    app[CONFIG] = config
    from engine.service.context import SESSIONS, SPAWNER

    app[SESSIONS] = Sessions()
    if spawn:
        from engine.container.spawner import Spawner

        app[SPAWNER] = Spawner()  # launched at startup; until then (or if it dies) starts run in-process
        app.on_startup.append(_start_spawner)
        app.on_cleanup.append(_stop_spawner)
    else:
        app[SPAWNER] = None
    _add_routes(app, core)
    for name in ENDPOINT_MODULES:
        module = importlib.import_module(f"engine.service.{name}")
        _add_routes(app, module.routes)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app
