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
    """The request's JSON body, checked as Docker's httputils.ReadJSON: a Content-Type other than
    application/json, malformed JSON or content after the document is a 400 in Docker's words;
    `default` when the body is empty."""
    raw = await request.read()
    _check_json_type(request.headers.get("Content-Type", ""), raw)
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        return default
    try:
        value, end = json.JSONDecoder().raw_decode(text, len(text) - len(text.lstrip()))
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"invalid JSON: {go_json_error(exc)}") from None
    except RecursionError:  # `[[[[...` a hundred thousand deep: a client error, not ours
        raise InvalidArgument("invalid JSON: nested too deeply") from None
    if text[end:].strip():
        raise InvalidArgument("unexpected content after JSON")
    return value


def _check_json_type(content_type: str, raw: bytes) -> None:
    """Docker's CheckForJSON: no Content-Type is fine only without a body; else it must be JSON's."""
    if not content_type and not raw:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if not media:
        raise InvalidArgument(f"malformed Content-Type header ({content_type}): mime: no media type")
    if media != "application/json":
        raise InvalidArgument(f"unsupported Content-Type header ({content_type}): must be 'application/json'")


# Python's decoder messages in Go's encoding/json words (Docker's clients and tests read Go's).
_GO_CONTEXT = {
    "Expecting property name enclosed in double quotes": "looking for beginning of object key string",
    "Expecting value": "looking for beginning of value",
    "Expecting ':' delimiter": "after object key",
}


def go_json_error(exc: json.JSONDecodeError) -> str:
    """`invalid character 'x' looking for ...` as Go says it; `unexpected EOF` at the end of input."""
    if exc.pos >= len(exc.doc.rstrip()):
        return "unexpected EOF"
    char = exc.doc[exc.pos]
    context = _GO_CONTEXT.get(exc.msg)
    if exc.msg == "Expecting ',' delimiter":
        context = "after array element" if _innermost(exc.doc, exc.pos) == "[" else "after object key:value pair"
    return f"invalid character {char!r} {context}" if context else exc.msg


def _innermost(doc: str, pos: int) -> str:
    """The bracket ('{' or '[') open at `pos` (strings skipped)."""
    stack: list[str] = []
    in_string = escaped = False
    for char in doc[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            stack.append(char)
        elif char in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else ""


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
