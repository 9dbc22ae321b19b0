"""`docker commit`: a container's changes become a new image on top of the image it was made from.

The container layer (`<layer>/diff`, overlayfs's upper directory) is written out as an OCI layer
tar: a whiteout (a 0/0 character device) becomes an empty `.wh.<name>` file, an opaque directory
(xattr `trusted.overlay.opaque=y`) gets a `.wh..wh..opq` entry; everything else goes as it is, with
numeric owners. The store then takes it like any pulled layer (extraction, diff_id, chain ID), and
the new image config is the base image's with that diff_id appended, a history entry, and the
container's Cmd/Entrypoint/Env/... (with `--change` on top), as Docker does.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from engine.config import EngineConfig
from engine.errors import Conflict, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    import tarfile
    from typing import Any, BinaryIO

    from engine.container.state import ContainerRecord
    from engine.image.reference import Reference
    from engine.image.store import ImageRecord, ImageStore

# The image config keys a container's config carries over (OCI image spec, `config` object).
IMAGE_CONFIG_KEYS = ("User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir", "Labels", "StopSignal")
OPAQUE_XATTR = "trusted.overlay.opaque"


def write_layer_tar(diff: Path, out: BinaryIO) -> None:
    """The overlay upper dir `diff` as an OCI layer tar (sorted, so the same changes give the same tar)."""
    import tarfile

    from engine.image.store import is_whiteout

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uname = info.gname = ""  # numeric owners, as in the container
        return info

    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for directory, dirs, files in os.walk(diff):
            dirs.sort()
            rel_dir = os.path.relpath(directory, diff)
            if rel_dir != "." and _is_opaque(directory):
                tar.addfile(_empty_file(os.path.join(rel_dir, ".wh..wh..opq")))
            for name in sorted([*dirs, *files]):
                path = os.path.join(directory, name)
                rel = os.path.normpath(os.path.join(rel_dir, name))
                st = os.lstat(path)
                if is_whiteout(st):
                    tar.addfile(_empty_file(os.path.join(os.path.dirname(rel), ".wh." + name)))
                    continue
                tar.add(path, arcname=rel, recursive=False, filter=clean)


def _is_opaque(directory: str) -> bool:
    try:
        return os.getxattr(directory, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _empty_file(name: str) -> tarfile.TarInfo:
    import tarfile

    info = tarfile.TarInfo(os.path.normpath(name))
    info.mode = 0o600
    return info


def commit(
    config: EngineConfig,
    ref: str,
    repository: str | None = None,
    message: str = "",
    author: str = "",
    changes: dict[str, Any] | None = None,
    pause: bool = True,
) -> ImageRecord:
    """The new image (tagged `repository` when given). A running container is paused meanwhile
    (Docker's default), so its files do not change half-way through."""
    from engine.container import lifecycle
    from engine.container.state import find_container
    from engine.image.reference import parse_reference
    from engine.image.store import ImageStore

    tag = parse_reference(repository) if repository else None
    record = find_container(config, ref)
    store = ImageStore(config)
    try:
        base = store.resolve(record.image_id)
    except NotFound:
        raise NotFound(f"the image container {record.name} was made from is gone ({record.image_id[:19]})") from None
    paused = False
    if pause and record.status == "running":
        with contextlib.suppress(Conflict):  # it may stop meanwhile (a short run): nothing to pause then
            lifecycle.pause(config, record.id)
            paused = True
    try:
        committed = _commit_paused(config, record, store, base, tag, message, author, changes)
    finally:  # as moby's deferred containerUnpause: after the image's create/tag and the commit event
        if paused:
            with contextlib.suppress(Conflict):  # it stopped while paused: nothing is left to thaw
                lifecycle.unpause(config, record.id)
    return committed


def with_changes(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The config after `--change` instructions, as Docker's builder applies them to the container's
    config: ENV sets its keys in the current Env (`$VAR`/`${VAR}` expanded against it), LABEL, EXPOSE
    and VOLUME add to what is there; the others replace."""
    import re
    from functools import partial

    merged = {**current, **changes}
    for key in ("Labels", "ExposedPorts", "Volumes"):
        if key in changes:
            merged[key] = {**(current.get(key) or {}), **changes[key]}
    if "Env" in changes:
        env = list(current.get("Env") or [])
        for entry in changes["Env"]:
            name, _, value = entry.partition("=")
            value = re.sub(r"\$\{(\w+)\}|\$(\w+)", partial(_lookup, dict(e.partition("=")[::2] for e in env)), value)
            at = next((i for i, e in enumerate(env) if e.partition("=")[0] == name), None)
            if at is None:
                env.append(f"{name}={value}")
            else:
                env[at] = f"{name}={value}"
        merged["Env"] = env
    return merged


def _lookup(values: dict[str, str], match: Any) -> str:
    return values.get(match.group(1) or match.group(2), "")


def _commit_paused(config: EngineConfig, record: ContainerRecord, store: ImageStore, base: ImageRecord,
                   tag: Reference | None, message: str, author: str, changes: dict[str, Any] | None) -> ImageRecord:
    """The layer, the image and the events of a commit (the container paused meanwhile, if it ran)."""
    import tempfile

    from engine.container.state import now_rfc3339

    config.tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=config.tmp_dir, prefix="commit-") as spool:
        write_layer_tar(store.rw_layer_path(record.id) / "diff", spool)
        spool.seek(0)
        chain = store.add_layer(spool, "application/vnd.oci.image.layer.v1.tar",
                                base.chain_ids[-1] if base.chain_ids else None, None)
    diff_id = store.layer_info(chain).diff_id
    created = now_rfc3339()
    image = json.loads(json.dumps(base.config))  # a deep copy
    container_config = {k: record.config[k] for k in IMAGE_CONFIG_KEYS if record.config.get(k) is not None}
    image["config"] = with_changes(container_config, changes or {})
    image["created"] = created
    image.pop("comment", None)  # the base image's; this image's is the commit message
    if message:
        image["comment"] = message
    if author:
        image["author"] = author
    image.setdefault("rootfs", {"type": "layers", "diff_ids": []})["diff_ids"] = [*base.diff_ids, diff_id]
    entry: dict[str, Any] = {"created": created, "created_by": " ".join([record.path, *record.args])}
    if message:
        entry["comment"] = message
    if author:
        entry["author"] = author
    image["history"] = [*(image.get("history") or []), entry]
    # Docker records the container's image as the committed image's parent (inspect's Parent)
    committed = store.add_image(json.dumps(image, separators=(",", ":")).encode(), [tag] if tag else [], parent=base.id)
    _log_commit(config, record, committed.id, tag.with_tag(tag.tag_or_latest).familiar() if tag else "", message)
    return committed


def _log_commit(config: EngineConfig, record: ContainerRecord, image_id: str, image_ref: str, message: str) -> None:
    """moby's events for a commit: image `create`, image `tag` when named, then container `commit`."""
    from engine import events

    events.image(config, "create", image_id)
    if image_ref:
        events.image(config, "tag", image_id, image_ref)
    events.container(config, "commit", record, comment=message, imageID=image_id, imageRef=image_ref)
