"""What every endpoint module reads from the running service: its engine config and shared state.

Kept apart from `app` so that endpoint modules (containers, images, networks, ...) can import it
while `app` imports them. Invariant: these are the only application-wide values; the service keeps
no container state beyond streams in flight and pending attaches (see engine.service.attach).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from engine.api.info import API_VERSION, MIN_API_VERSION
from engine.config import EngineConfig
from engine.errors import InvalidArgument

CONFIG = web.AppKey("config", EngineConfig)
SESSIONS = web.AppKey("sessions", object)  # engine.service.attach.Sessions
SPAWNER = web.AppKey("spawner", object)  # engine.container.spawner.Spawner, or None (starts in-process)

__all__ = ["API_VERSION", "CONFIG", "MIN_API_VERSION", "SESSIONS", "SPAWNER"]


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON body with Docker's exact Content-Type (the docker CLI shows an error body raw when
    the type carries a charset)."""
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


def engine_config(request: web.Request) -> EngineConfig:
    return request.app[CONFIG]


def api_version(request: web.Request) -> tuple[int, int]:
    """The version the client asked for in its path (the newest one when it named none)."""
    text = request.match_info.get("api_version") or API_VERSION
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


async def json_body(request: web.Request, default: Any = None) -> Any:
    """The request's JSON body (Docker's 400 message when it is not JSON); `default` when empty."""
    raw = await request.read()
    if not raw.strip():
        return default
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"invalid JSON: {exc}") from None
    except RecursionError:  # `[[[[...` a hundred thousand deep: a client error, not ours
        raise InvalidArgument("invalid JSON: nested too deeply") from None


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    """Docker's boolean query values: 1/true/True (and an empty value counts as false)."""
    value = request.query.get(name)
    if value is None:
        return default
    return value.lower() in ("1", "true", "yes")


def query_int(request: web.Request, name: str, default: int | None = None) -> int | None:
    value = request.query.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f"invalid value for {name}: {value!r} is not an integer") from None


def query_filters(request: web.Request) -> dict[str, Any]:
    """The `filters` query parameter: a JSON object (Docker's map of lists)."""
    raw = request.query.get("filters")
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidArgument(f"invalid filters: {raw[:200]!r} is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidArgument("invalid filters: expected a JSON object")
    return value
