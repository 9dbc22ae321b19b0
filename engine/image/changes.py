"""Dockerfile instructions as `import --change` and `commit --change` take them (CMD, ENTRYPOINT,
ENV, LABEL, WORKDIR, USER, EXPOSE, STOPSIGNAL, VOLUME), turned into image config keys.

Pure functions, shared by the CLI's import/commit and the Engine API's import (`changes=`): one
parser, so every front end accepts and refuses the same instructions with the same one-line errors.
"""

from __future__ import annotations

import json
import re

from engine.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_CHANGE_RE = re.compile(r"^\s*([A-Za-z]+)\s+(.*)$", re.S)


def parse_changes(changes: list[str]) -> dict[str, Any]:
    """The subset of Dockerfile instructions `docker import --change` accepts, as config keys."""
    config: dict[str, Any] = {}
    for change in changes:
        match = _CHANGE_RE.match(change)
        if not match:
            raise InvalidArgument(f"invalid --change {change!r}: expected INSTRUCTION ARGS")
        word, rest = match.group(1).upper(), match.group(2).strip()
        if word in ("CMD", "ENTRYPOINT"):
            value = _exec_or_shell(rest)
            config["Cmd" if word == "CMD" else "Entrypoint"] = value
        elif word == "ENV":
            env = config.setdefault("Env", [])
            pairs = _key_values(rest)
            for key, value in pairs:
                env[:] = [e for e in env if not e.startswith(key + "=")] + [f"{key}={value}"]
        elif word == "LABEL":
            config.setdefault("Labels", {}).update(dict(_key_values(rest)))
        elif word == "WORKDIR":
            config["WorkingDir"] = rest
        elif word == "USER":
            config["User"] = rest
        elif word == "EXPOSE":
            for port in rest.split():
                config.setdefault("ExposedPorts", {})[port if "/" in port else f"{port}/tcp"] = {}
        elif word == "STOPSIGNAL":
            config["StopSignal"] = rest
        elif word == "VOLUME":
            for volume in _exec_or_shell(rest) if rest.startswith("[") else rest.split():
                config.setdefault("Volumes", {})[volume] = {}
        else:
            raise InvalidArgument(f"{word} is not a valid change command for import")
    return config


def _exec_or_shell(rest: str) -> list[str]:
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except (ValueError, RecursionError):  # RecursionError: `[[[...` thousands deep
            raise InvalidArgument(f"invalid JSON array in --change: {rest}") from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidArgument(f"--change expects a JSON array of strings: {rest}")
        return value
    return ["/bin/sh", "-c", rest]


def _key_values(rest: str) -> list[tuple[str, str]]:
    import shlex

    words = shlex.split(rest)
    if words and "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]  # legacy `ENV KEY value`
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise InvalidArgument(f"invalid key=value in --change: {word}")
        pairs.append((key, value))
    return pairs
