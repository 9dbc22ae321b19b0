"""Sizes as Docker's flags take them (go-units RAMInBytes): `32m`, `1g`, `512k`, `100` (bytes)."""

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
