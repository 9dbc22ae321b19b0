"""The build cache, keyed as Docker's legacy builder keys it: a step's result is an image whose parent
is the step's parent image and whose `container_config` equals the step's (the instruction is in
its Cmd: `#(nop) ENV A=b`, the RUN command with its build arguments, `COPY file:<checksum> in /dst`).

The parent link is the store's own place for it, Docker's layout: a `parent` file beside
`lastUpdated` in imagedb/metadata/sha256/<id>/ (empty for a step on `scratch`). Removing an image
removes its metadata, so a removed image is never a cache hit. When several images match, the
newest wins, as in Docker.

`Prober` keeps Docker's rule that once a step of a stage misses, every later step of that stage
is built (the chain of parents is new from there on).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from engine.image.digest import hex_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from engine.image.store import ImageStore


def _metadata(store: ImageStore) -> str:
    return str(store.imagedb / "metadata" / "sha256")


def parent_of(store: ImageStore, image_id: str) -> str | None:
    try:
        with open(os.path.join(_metadata(store), hex_of(image_id), "parent")) as f:
            return f.read().strip()
    except (OSError, ValueError):
        return None


def canonical(config: dict[str, Any]) -> str:
    """A container config as compared: keys sorted, empty values dropped (nil and {} are one)."""
    return json.dumps({k: v for k, v in config.items() if v not in (None, "", [], {}, False)}, sort_keys=True)


def lookup(store: ImageStore, parent_id: str, container_config: dict[str, Any]) -> str | None:
    wanted = canonical(container_config)
    best: tuple[str, str] | None = None
    try:
        names = os.listdir(_metadata(store))
    except FileNotFoundError:
        return None
    for name in names:
        image_id = "sha256:" + name
        if parent_of(store, image_id) != parent_id:
            continue
        try:
            with open(store.imagedb / "content" / "sha256" / name, "rb") as f:
                config = json.load(f)
        except (OSError, ValueError):
            continue
        if canonical(config.get("container_config") or {}) != wanted:
            continue
        created = str(config.get("created", ""))
        if best is None or created > best[0]:
            best = (created, image_id)
    return best[1] if best else None


@dataclass
class Prober:
    store: ImageStore
    disabled: bool = False
    busted: bool = False

    def reset(self) -> None:
        """A new stage: its first step may hit again."""
        self.busted = False

    def probe(self, parent_id: str, container_config: dict[str, Any]) -> str | None:
        if self.disabled or self.busted:
            return None
        found = lookup(self.store, parent_id, container_config)
        if found is None:
            self.busted = True
        return found


def prune(store: ImageStore) -> tuple[list[str], int]:
    """`docker builder prune` for this builder: every untagged image a build made (it has a `parent`
    record) that no container uses; the removed image IDs and the bytes their freed layers held."""
    from engine.errors import Conflict, NotFound

    sizes = {info.chain_id: info.size for info in _layers(store)}
    removed: list[str] = []
    for record in store.list_images():
        if record.repo_tags or record.repo_digests or parent_of(store, record.id) is None:
            continue
        try:
            store.remove(record.id)
        except (Conflict, NotFound):
            continue  # a container uses it, or another prune took it
        removed.append(record.id)
    left = {info.chain_id for info in _layers(store)}
    return removed, sum(size for chain, size in sizes.items() if chain not in left)


def _layers(store: ImageStore) -> list[Any]:
    infos = []
    for record in store.list_images():
        for chain in record.chain_ids:
            try:
                infos.append(store.layer_info(chain))
            except Exception:  # noqa: BLE001 - a layer going away meanwhile is simply not counted
                continue
    return infos
