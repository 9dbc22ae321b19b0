"""Typed reads of request JSON fields, shared by the endpoint modules: each returns the field's
value (or its empty default when absent or null) or raises InvalidArgument naming
`section.key` and the type it expected, so a value of the wrong JSON type is always a 400.
"""

from __future__ import annotations

from typing import Any

from engine.errors import InvalidArgument

INT64 = range(-(1 << 63), 1 << 63)


def check_int64(section: str, body: Any) -> None:
    """Every number in `body` fits Go's int64, as moby's JSON decoding of a create or update body
    requires (a 2**70 Memory was taken, and its start failed; no Docker field is wider): InvalidArgument
    in Go's words, naming the first that does not. Iterative: the body may be nested hundreds deep."""
    pending: list[tuple[str, Any]] = [(section, body)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, dict):
            pending.extend((f"{where}.{k}", v) for k, v in value.items())
        elif isinstance(value, list):
            pending.extend((where, v) for v in value)
        elif isinstance(value, int) and not isinstance(value, bool) and value not in INT64:
            raise InvalidArgument(f"json: cannot unmarshal number {value} into Go struct field {where} of type int64")


def json_str(section: str, body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"{section}.{key}: expected a string, got {type(value).__name__}")
    return value


def json_int(section: str, body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{section}.{key}: expected an integer, got {type(value).__name__}")
    return value


def json_bool(section: str, body: dict[str, Any], key: str) -> bool:
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidArgument(f"{section}.{key}: expected a boolean, got {type(value).__name__}")
    return value


def json_strs(section: str, body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{section}.{key}: expected a list of strings")
    return list(value)


def json_dict(section: str, body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{section}.{key}: expected an object, got {type(value).__name__}")
    return value


def canonical_keys(body: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The body with its keys spelt as `names` spells them, matched case-insensitively, as Go's
    encoding/json (Docker's decoder) matches them: docker-py sends `detachKeys` for `DetachKeys`.
    Keys not in `names` are kept as sent."""
    spelling = {name.lower(): name for name in names}
    return {spelling.get(key.lower(), key): value for key, value in body.items()}


def console_size(body: dict[str, Any]) -> tuple[int, int] | None:
    """ConsoleSize [height, width] (API 1.42: a create's HostConfig, an exec's create or start body),
    None when not given or not two positive integers (Docker ignores such a size)."""
    size = body.get("ConsoleSize")
    if isinstance(size, list) and len(size) == 2 and all(isinstance(n, int) and n > 0 for n in size):
        return size[0], size[1]
    return None
