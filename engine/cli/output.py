"""Output helpers shared by the verbs: JSON for machines, aligned tables for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
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


def human_size(n: float) -> str:
    """Docker's decimal units: 1.2MB, 512kB."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.3g}{unit}"
        n /= 1000
    return f"{n}B"
