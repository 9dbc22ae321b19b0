"""Containers' writable layers: `layerdb/mounts/<container>/` and their overlay2 dirs.

    <root>/image/overlay2/layerdb/mounts/<container>/   mount-id (and init-id), parent: the image's top chain ID
    <root>/overlay2/<mount-id>/{diff,work,merged,link,lower}

Owns creating a container's rw layer on its image, its path and size (Docker's SizeRw), its
removal (and then of the image layers nothing uses any more), and collecting orphan rw layers.
The store never reads container records: the container side reports its containers as
`ContainerUse`s (engine.container.usage).

Invariant: a rw layer exists exactly when `layerdb/mounts/<container>/` does (made in
`layerdb/tmp/` and renamed into place under the store lock, renamed away first on removal).
A container's record is written before its rw layer and removed after it, so a rw layer with no
record is an orphan (a `run` or `rm` killed half-way), never one being created.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from dataclasses import dataclass

from engine.errors import Conflict, InvalidArgument, NotFound
from engine.image.digest import hex_of
from engine.image.store.layers import LINK_CHARS, LayerStore, _write_synced
from engine.util.fsutil import fsync_dir
from engine.util.randomness import pick

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from engine.config import EngineConfig


@dataclass(frozen=True)
class ContainerUse:
    """One container as the container side reports it to the store (engine.container.usage): the
    store never reads container records itself. `image_id` is None for a record file that is not a
    listed container (its rw layer is still not an orphan)."""

    id: str
    image_id: str | None
    running: bool


if TYPE_CHECKING:
    ContainerLister = Callable[[EngineConfig], Sequence[ContainerUse]]


class RwLayers(LayerStore):
    """Containers' writable layers (layerdb/mounts/<container>/ and their overlay2 dirs).
    A mixin of ImageStore: a new rw layer sits on an image the image index resolves."""

    # --- container rw layers ----------------------------------------------------------------------

    def create_rw_layer(self, container_id: str, image_id: str, durable: bool = True) -> Path:
        """A container's writable layer: <layers_dir>/<mount-id>/{diff,work,merged}, with link and lower.

        `durable=False` skips the fsyncs (an --rm container's layer: nothing of it is worth keeping
        over a power loss; the renames keep it atomic all the same)."""
        write = _write_synced if durable else _write_unsynced
        _check_container_id(container_id)
        record = self._record(image_id if image_id.startswith("sha256:") else self.resolve(image_id).id)
        self._ensure_dirs()
        mount_dir = self.layerdb / "mounts" / container_id
        with self._locked():
            if mount_dir.exists():
                raise Conflict(f"container {container_id[:12]} already has a rw layer")
            for chain in record.chain_ids:
                if not self.has_layer(chain):
                    raise NotFound(f"layer {chain} of image {record.short_id} is missing")
            mount_id = os.urandom(32).hex()
            path = self.layers_dir / mount_id
            for sub in ("diff", "work", "merged"):
                (path / sub).mkdir(parents=True, mode=0o755)
            os.chmod(path, 0o710)
            link = "".join(pick(LINK_CHARS) for _ in range(26))
            (path / "link").write_text(link)
            top = record.chain_ids[-1] if record.chain_ids else None
            if top:
                (path / "lower").write_text(self._lower_of_chain(top))
            os.symlink(f"../{mount_id}/diff", self.layers_dir / "l" / link)
            tmp = self.layerdb / "tmp" / f"mount-{container_id}-{os.urandom(4).hex()}"
            tmp.mkdir()
            write(tmp / "mount-id", mount_id)
            write(tmp / "parent", top or "")
            if durable:
                fsync_dir(tmp)
            os.rename(tmp, mount_dir)
            if durable:
                fsync_dir(mount_dir.parent)
        return path

    def rw_layer_path(self, container_id: str) -> Path:
        _check_container_id(container_id)
        try:
            mount_id = (self.layerdb / "mounts" / container_id / "mount-id").read_text().strip()
        except FileNotFoundError:
            raise NotFound(f"container {container_id[:12]} has no rw layer") from None
        return self.layers_dir / mount_id

    def rw_layer_size(self, container_id: str) -> int:
        """Bytes the container wrote (its layer's `diff`): regular files' sizes, a hard-linked file
        once, as Docker's SizeRw counts them."""
        total = 0
        seen: set[tuple[int, int]] = set()
        try:
            top = self.rw_layer_path(container_id) / "diff"
        except NotFound:
            return 0
        for directory, _, files in os.walk(top):
            for name in files:
                try:
                    st = os.lstat(os.path.join(directory, name))
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
        return total

    def remove_rw_layer(self, container_id: str, image_id: str | None = None,
                        empty_later: list[Path] | None = None) -> None:
        """Drop a container's writable layer (unmounting it lazily if it is still mounted).

        Then the layers below it that nothing uses any more are deleted (an image removed while
        the container lived). `image_id`, the image the layer was made from: while it is stored,
        so are all its layers, and the scan of every image and rw layer (which also hashes chain
        IDs) is skipped: the common case, at the end of every `run --rm`. `empty_later`: the
        layer's directories are renamed into layerdb/tmp and listed there for the caller to
        delete when it has time (the monitor of an --rm container, after the exit went out)."""
        _check_container_id(container_id)
        with self._locked():
            self._remove_rw_layer_locked(container_id, image_id, empty_later)

    def _remove_rw_layer_locked(self, container_id: str, image_id: str | None = None,
                                empty_later: list[Path] | None = None) -> None:
        """remove_rw_layer's work, the store lock held by the caller."""
        import shutil

        mount_dir = self.layerdb / "mounts" / container_id
        if not mount_dir.exists():
            return
        ids = []
        for name in ("mount-id", "init-id"):
            with contextlib.suppress(OSError):
                ids.append((mount_dir / name).read_text().strip())
        parent = None
        with contextlib.suppress(OSError):
            parent = (mount_dir / "parent").read_text().strip() or None
        doomed = self.layerdb / "tmp" / f"del-mount-{container_id}-{os.urandom(4).hex()}"
        os.rename(mount_dir, doomed)
        for mount_id in ids:
            if mount_id and re.fullmatch(r"[0-9a-f]{64}(-init)?", mount_id):
                self._remove_layer_dir(mount_id, empty_later)
        if empty_later is not None:
            empty_later.append(doomed)
        else:
            shutil.rmtree(doomed, ignore_errors=True)
        if image_id is None or not self._image_stored(image_id):
            self._release_chain(parent)

    def _image_stored(self, image_id: str) -> bool:
        try:
            return (self.imagedb / "content" / "sha256" / hex_of(image_id)).is_file()
        except InvalidArgument:
            return False

    # --- containers, as the container side reports them -------------------------------------------

    def _container_uses(self) -> Sequence[ContainerUse]:
        if self.containers is None:
            raise RuntimeError("ImageStore(config, containers=engine.container.usage.container_uses) is "
                               "needed to remove images or rw layers: only the container side knows its containers")
        return self.containers(self.config)

    def collect_orphan_rw_layers(self) -> list[str]:
        """Remove the rw layers of containers that have no record (a `run` or `rm` killed between
        the layer and the record); their container IDs.

        Safe against a concurrent create: its record is written before its layer, and a removal
        drops the layer before the record.
        """
        parents = self._mount_parents()  # the layers first: a record is written before its layer
        uses = self._container_uses()
        if parents.keys() <= {u.id for u in uses}:
            return []  # the common case: no lock taken
        with self._locked():
            return self._collect_orphans_locked(parents, uses)

    def _collect_orphans_locked(self, parents: dict[str, str], uses: Sequence[ContainerUse]) -> list[str]:
        """collect_orphan_rw_layers on what the caller read, the store lock held: `parents`
        (_mount_parents) read before `uses` (_container_uses)."""
        recorded = {u.id for u in uses}
        orphans = [cid for cid in parents if cid not in recorded]
        for cid in orphans:
            with contextlib.suppress(OSError, InvalidArgument):
                _check_container_id(cid)
                self._remove_rw_layer_locked(cid)
        return orphans


def _check_container_id(container_id: str) -> None:
    if not re.fullmatch(r"[0-9a-zA-Z_.-]{1,128}", container_id) or container_id in (".", ".."):
        raise InvalidArgument(f"invalid container ID: {container_id!r}")


def _write_unsynced(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
