"""The local image store, laid out as Docker's overlay2 store so its files read the same.

    <root>/image/overlay2/repositories.json          names -> image IDs (tags and repo@sha256 digests)
    <root>/image/overlay2/imagedb/content/sha256/<id>   the image config, byte for byte
    <root>/image/overlay2/imagedb/metadata/sha256/<id>/ lastUpdated (and parent, for built images)
    <root>/image/overlay2/layerdb/sha256/<chainID>/     diff, size, cache-id, parent, tar-split.json.gz
    <root>/image/overlay2/layerdb/mounts/<container>/   mount-id, parent: a container's rw layer
    <root>/overlay2/<cache-id>/{diff/,link,lower}       layer contents; l/<26 chars> -> ../<cache-id>/diff

Why it is safe to share: a layer is extracted into a private staging directory (outside any lock,
so pulls run in parallel), verified, then published by two renames under the store lock; the
layerdb rename is the commit point. Whatever dies in between leaves only staging dirs (owned by an
flock that dies with the process) or an unreferenced cache dir, both removed at the next open.
Layers are reference-counted by what uses them (images' rootfs, container mounts), computed from
the files themselves, so there is no counter to get out of step.

`ImageStore` is one object (callers open it with `ImageStore(config)`), composed of one class per
concern, each in its own module:

    layers.py     LayerStore: directories, the store lock, recovery at open, layers (stage, commit,
                  tar), reference counts, unreferenced layers, the pull journal (PullJournal)
    images.py     ImageIndex: imagedb and repositories.json (add, resolve, inspect, tag, rmi, prune)
    rwlayers.py   RwLayers: containers' writable layers, and the ContainerUse the container side reports
    archives.py   Archives: import, save, load

The last three build on LayerStore and call each other only through the composed store (an `rmi`
asks which containers use the image; a rw layer is made on an image the index resolves).

May import: engine.image.digest, engine.image.extract and engine.image.reference (inside the
functions that need them), engine.util, engine.events and below; never container records.
"""

from __future__ import annotations

from engine.image.store.archives import Archives
from engine.image.store.images import ImageIndex, ImageRecord, _repo_of, host_architecture, now_rfc3339
from engine.image.store.layers import (
    LINK_CHARS,
    STAGING,
    UNREFERENCED_MIN_AGE,
    LayerInfo,
    LayerStore,
    PullJournal,
    StagedLayer,
    is_whiteout,
    read_tar_split,
    write_tar_split,
)
from engine.image.store.rwlayers import ContainerUse, RwLayers

__all__ = [
    "LINK_CHARS",
    "STAGING",
    "UNREFERENCED_MIN_AGE",
    "ContainerUse",
    "ImageRecord",
    "ImageStore",
    "LayerInfo",
    "PullJournal",
    "StagedLayer",
    "_repo_of",
    "host_architecture",
    "is_whiteout",
    "now_rfc3339",
    "read_tar_split",
    "write_tar_split",
]


class ImageStore(Archives, ImageIndex, RwLayers, LayerStore):
    """Images and layers under one engine root. Cheap to create; every method re-reads the files."""
