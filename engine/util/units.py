"""Sizes and durations, read and printed as Docker does (go-units): `parse_size` reads flags (`32m`,
`1g`), the `*_size` and `*_duration` functions print them, for the CLI and the TUI alike.

The one home of every size and duration formatter: the CLI's listings, `docker stats`, the TUI's
columns and the Engine API's progress all call these, so one figure reads the same everywhere.
"""

from __future__ import annotations

import re

from engine.errors import InvalidArgument

SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def parse_size(text: str) -> int:
    """Binary units, as Docker's `-m`, `--shm-size` and `--log-opt max-size` read them."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmgtp]?)b?", text.strip().lower())
    if not match:
        raise InvalidArgument(f"invalid size: '{text}'")
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2)])


# ---- sizes as Docker and the TUI print them (go-units) ------------------------------------------


def _custom_size(size: float, base: float, units: tuple[str, ...], precision: int) -> str:
    """go-units CustomSize: "%.<precision>g<unit>"."""
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return f"{size:.{precision}g}{units[i]}"


def binary_size(n: float) -> str:
    """go-units BytesSize, as docker stats prints memory: 1.5MiB, 1.944GiB."""
    return _custom_size(n, 1024.0, ("B", "KiB", "MiB", "GiB", "TiB", "PiB"), 4)


def decimal_size(n: float) -> str:
    """go-units HumanSizeWithPrecision(n, 3), as docker prints image sizes and stats I/O: 1.2kB, 648B."""
    return _custom_size(n, 1000.0, ("B", "kB", "MB", "GB", "TB", "PB"), 3)


human_size = decimal_size  # the name the CLI's listings use (docker images, ps -s, system df)


def go_human_size(n: float) -> str:
    """go-units HumanSize (precision 4), as system df prints its totals and an image's unique size: 1.982MB."""
    return _custom_size(n, 1000.0, ("B", "kB", "MB", "GB", "TB", "PB"), 4)


def short_binary_size(n: float) -> str:
    """Binary units with one decimal (whole bytes below 1 KiB): the TUI's fixed-width columns."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}TiB"


# ---- durations -----------------------------------------------------------------------------------


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


def short_duration(seconds: float) -> str:
    """A compact age ("5 s", "12 min", "3 h", "4 d"): the TUI's STATUS column is 26 cells wide and
    Docker's words ("Exited (137) About a minute ago") do not fit it."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400 * 2:
        return f"{s // 3600} h"
    return f"{s // 86400} d"
