"""Uniform random choices from os.urandom, without the `secrets`/`random` imports (see pick)."""

from __future__ import annotations

import os
from collections.abc import Sequence


def pick(options: Sequence[str]) -> str:
    """A uniformly random element, from os.urandom (as `secrets.choice`, whose import loads OpenSSL:
    ~4 ms on every `dockui run`)."""
    span = 1 << 32
    limit = span - span % len(options)  # rejection sampling: no modulo bias
    while True:
        n = int.from_bytes(os.urandom(4), "little")
        if n < limit:
            return options[n % len(options)]
