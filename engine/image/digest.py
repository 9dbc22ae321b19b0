"""Content digests as the OCI image spec defines them: `sha256:<64 hex>`, and layer chain IDs.

A chain ID names a layer *together with everything below it*, so the same diff on top of two
different parents is two different layers: ChainID(L0) = DiffID(L0),
ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln)).
"""

from __future__ import annotations

import re

from engine.errors import InvalidArgument

SHA256_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def sha256_digest(data: bytes) -> str:
    import hashlib  # not at import time: it loads OpenSSL (~3 ms), and `run` hashes nothing

    return "sha256:" + hashlib.sha256(data).hexdigest()


def hex_of(digest: str) -> str:
    """The hex part of `sha256:<hex>`, validated (it becomes a file name in the store)."""
    if not SHA256_RE.match(digest):
        raise InvalidArgument(f"invalid sha256 digest: {digest!r}")
    return digest.split(":", 1)[1]


def chain_id(parent_chain_id: str | None, diff_id: str) -> str:
    if parent_chain_id is None:
        return diff_id
    return sha256_digest(f"{parent_chain_id} {diff_id}".encode())


def chain_ids(diff_ids: list[str]) -> list[str]:
    """Chain IDs of every layer of an image, bottom to top."""
    result: list[str] = []
    parent: str | None = None
    for diff_id in diff_ids:
        parent = chain_id(parent, diff_id)
        result.append(parent)
    return result
