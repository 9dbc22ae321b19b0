"""Output helpers shared by the verbs: JSON for machines, aligned tables for people."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence

from engine.errors import InvalidArgument

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms per start)
if TYPE_CHECKING:
    from typing import Any


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=4)
    sys.stdout.write("\n")


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], gap: int = 3) -> None:
    """Print columns padded like docker's tables (the last column is not padded)."""
    rows = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    for row in [list(headers), *rows]:
        cells = [c.ljust(widths[i] + gap) for i, c in enumerate(row[:-1])]
        sys.stdout.write(("".join(cells) + row[-1]).rstrip() + "\n")


def print_formatted(results: list[Any], template: str | None) -> None:
    """`inspect`'s output: each object through `--format`, or all of them as one JSON array."""
    if template:
        for obj in results:
            print(render_template(template, obj))
    else:
        print_json(results)


def human_size(n: float) -> str:
    """Docker's decimal units: 1.2MB, 512kB."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.3g}{unit}"
        n /= 1000
    return f"{n}B"


def human_duration(seconds: float) -> str:
    """go-units' HumanDuration, as docker prints ages and uptimes (without " ago")."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def render_template(template: str, obj: Any) -> str:
    """A small subset of Go templates, as docker's --format takes them: {{.A.B}}, {{json .A}}; a missing
    field is an error, as for Docker's (struct) objects."""
    template = template.replace("\\t", "\t").replace("\\n", "\n")
    if template.startswith("table "):
        template = template[6:]

    def lookup(path: str) -> Any:
        value = obj
        for part in [p for p in path.strip().lstrip(".").split(".") if p]:
            if isinstance(value, dict) and part in value:
                value = value[part]
            else:
                raise InvalidArgument(f"template: no field {part!r} in {path!r}")
        return value

    def render(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        if expr.startswith("json "):
            return json.dumps(lookup(expr[5:]))
        value = lookup(expr)
        if isinstance(value, bool):
            return "true" if value else "false"
        if value is None:
            return "<no value>"
        if isinstance(value, dict | list):
            return json.dumps(value)
        return str(value)

    return re.sub(r"\{\{(.*?)\}\}", render, template)
