"""Docker's `filters` query parameter as (key, value) pairs, for the endpoints of images, networks,
volumes and events.

Docker sends `{"key": ["v1", "v2"]}`; clients before API 1.22 sent `{"key": {"v1": true}}`; both
are read. Anything else is a 400 naming what was wrong; the keys themselves are checked by the
engine call the pairs go to (each area knows its own).
"""

from __future__ import annotations

from aiohttp import web

from engine.errors import InvalidArgument
from engine.service.context import query_filters


def filter_pairs(request: web.Request) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, values in query_filters(request).items():
        if isinstance(values, dict) and all(isinstance(on, bool) for on in values.values()):  # Go's map[string]bool
            values = [v for v, on in values.items() if on]
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InvalidArgument(f"invalid filter {key!r}: expected a list of strings")
        pairs.extend((key, v) for v in values)
    return pairs

