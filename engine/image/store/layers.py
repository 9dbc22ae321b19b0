"""Layers: Docker's layerdb and overlay2 dirs, their publication, their reference counts and removal.

    <root>/image/overlay2/layerdb/sha256/<chainID>/     diff, size, cache-id, parent, tar-split.json.gz,
                                                        unsynced (a pull's layer not yet flushed: boot ID)
    <root>/image/overlay2/layerdb/tmp/                  metadata being written or deleted (never state)
    <root>/overlay2/<cache-id>/{diff/,link,lower}       layer contents; l/<26 chars> -> ../<cache-id>/diff
    <root>/overlay2/.staging/<rand>{,.lock}             layers being extracted, each owned by an flock
    <root>/image/overlay2/pulls/<rand>                  a pull's journal of layers not yet in an image

`LayerStore` is the base every part of `ImageStore` builds on: the store's directories, its write
lock (`.store.lock`, with the `.store.dirty` mark a killed writer leaves) and the tidying at open.

Invariant: a layer exists exactly when `layerdb/sha256/<chainID>/` does. Its contents are extracted
into a private staging dir outside any lock, then published by two renames under the store lock,
the layerdb rename being the commit point; removal renames the layerdb entry away first. A layer
is deleted only when nothing uses it, counted from the files themselves (images' rootfs, rw
layers' parents, child layers, live pulls' journals), so there is no counter to get out of step.
A layer whose `unsynced` mark names an earlier boot may have lost files in a crash: it is trusted
only if something flushed after it proves it whole, else deleted (`drop_torn_layers`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass

from engine.diagnostics import get_logger
from engine.errors import IntegrityError, InvalidArgument, NotFound
from engine.image.digest import SHA256_RE, chain_id, chain_ids, hex_of
from engine.util.fsutil import file_lock, fsync_dir
from engine.util.randomness import pick

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, BinaryIO

    from engine.config import EngineConfig
    from engine.image.store import ImageStore
    from engine.image.store.rwlayers import ContainerLister


log = get_logger(__name__)


STAGING = ".staging"  # under layers_dir: layers being extracted


LINK_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


UNREFERENCED_MIN_AGE = 600.0  # seconds: see ImageStore.unreferenced_layers


UNSYNCED = "unsynced"  # in a layerdb entry: committed before the flush that makes it durable


@dataclass
class LayerInfo:
    """One layer's layerdb entry (`layerdb/sha256/<chainID>/`)."""

    chain_id: str
    diff_id: str
    parent: str | None
    cache_id: str
    size: int


@dataclass
class StagedLayer:
    """A layer extracted into a private staging dir, verified but not yet in the store.

    Holds an flock on `<layers_dir>/.staging/<name>.lock` while alive, which tells every store open
    that the dirs are in use. `discard()` (or `commit_layer`) releases it; it is idempotent.
    """

    diff_id: str
    content_size: int
    layer_dir: Path  # <layers_dir>/.staging/<name>, holding diff/
    info_dir: Path  # <image_dir>/layerdb/tmp/<name>
    committed: bool = False
    _lock: Path | None = None
    _lock_fd: int | None = None

    def discard(self) -> None:
        """Remove what is left of the staging dirs and release their lock."""
        if self._lock_fd is None:
            return
        import shutil

        shutil.rmtree(self.layer_dir, ignore_errors=True)
        shutil.rmtree(self.info_dir, ignore_errors=True)
        assert self._lock is not None
        self._lock.unlink(missing_ok=True)
        os.close(self._lock_fd)
        self._lock_fd = None
        with contextlib.suppress(OSError):
            self._lock.parent.rmdir()  # only when empty: layers_dir then holds just l/ and layers, as Docker's

    def __enter__(self) -> StagedLayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


class LayerStore:
    """The layers under one engine root, and what every part of the store shares: its directories,
    its write lock and the tidying of what a killed process left. Uses nothing above it: what uses
    a layer (images' rootfs, rw layers' parents) is read from the files here."""

    def __init__(self, config: EngineConfig, containers: ContainerLister | None = None) -> None:
        self.config = config
        self.containers = containers  # the container side's answer to "which images are in use"
        self.image_dir = config.image_dir
        self.layers_dir = config.layers_dir
        self.layerdb = self.image_dir / "layerdb"
        self.imagedb = self.image_dir / "imagedb"
        self.repositories_file = self.image_dir / "repositories.json"
        self.lock_file = self.image_dir / ".store.lock"
        self._cleanup_leftovers()

    # --- locking and recovery ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The store's write lock. A writer killed while holding it may leave an orphan layer dir;
        the `.store.dirty` mark it leaves tells the next open to look (a full scan reads a file per
        layer and per container: too much for every `dockui` start)."""
        with file_lock(self.lock_file):
            dirty = self.image_dir / ".store.dirty"
            os.close(os.open(dirty, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
            yield
            dirty.unlink(missing_ok=True)  # not on an exception: the next open checks then

    def _writable(self) -> bool:
        return os.access(self.config.root, os.W_OK) and (
            not self.image_dir.exists() or os.access(self.image_dir, os.W_OK)
        )

    def _ensure_dirs(self) -> None:
        for path in (
            self.imagedb / "content" / "sha256",
            self.imagedb / "metadata" / "sha256",
            self.layerdb / "sha256",
            self.layerdb / "mounts",
            self.layerdb / "tmp",
            self.layers_dir / "l",
        ):
            path.mkdir(parents=True, exist_ok=True, mode=0o755)

    def _cleanup_leftovers(self) -> None:
        """Remove what a killed process left: dead staging dirs, half-deleted and orphan layers."""
        if not self.image_dir.exists() or not self._writable():
            return
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # someone is writing; the next open will tidy up
            self._remove_dead_staging()
            dirty = self.image_dir / ".store.dirty"
            if dirty.exists():
                self._remove_orphan_layer_dirs()
                dirty.unlink(missing_ok=True)
        finally:
            os.close(fd)

    def _staging_is_live(self, name: str) -> bool:
        """A staging dir is live while its owner holds the flock on `<name>.lock`."""
        lock = self.layers_dir / STAGING / f"{name}.lock"
        try:
            lfd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return False  # owners create the lock before the dirs; see _staging
        try:
            try:
                fcntl.flock(lfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            lock.unlink(missing_ok=True)  # dead owner; a new owner re-checks the inode and retries
            return False
        finally:
            os.close(lfd)

    def _remove_dead_staging(self) -> None:
        staging = self.layers_dir / STAGING
        tmp = self.layerdb / "tmp"
        names: set[str] = set()
        if staging.is_dir():
            names.update(e.name.removesuffix(".lock") for e in staging.iterdir())
        if tmp.is_dir():
            names.update(e.name for e in tmp.iterdir())
        for name in sorted(names):
            if self._staging_is_live(name):
                continue
            import shutil

            shutil.rmtree(staging / name, ignore_errors=True)
            shutil.rmtree(tmp / name, ignore_errors=True)
        with contextlib.suppress(OSError):
            staging.rmdir()

    def _remove_orphan_layer_dirs(self) -> None:
        """Cache dirs that no layerdb entry or mount names (a commit killed between its renames)."""
        if not self.layers_dir.is_dir():
            return
        used: set[str] = set()
        for info_dir in self._layer_info_dirs():
            with contextlib.suppress(OSError):
                used.add((info_dir / "cache-id").read_text().strip())
        mounts = self.layerdb / "mounts"
        if mounts.is_dir():
            for mount in mounts.iterdir():
                for name in ("mount-id", "init-id"):
                    with contextlib.suppress(OSError):
                        used.add((mount / name).read_text().strip())
        links: set[str] = set()
        for entry in self.layers_dir.iterdir():
            if not re.fullmatch(r"[0-9a-f]{64}(-init)?", entry.name):
                continue  # only what we create: l/, .staging/ and anything foreign stay
            if entry.name not in used:
                log.info("removing orphan layer dir %s", entry)
                self._remove_layer_dir(entry.name)
            else:
                with contextlib.suppress(OSError):
                    links.add((entry / "link").read_text().strip())
        link_dir = self.layers_dir / "l"
        if link_dir.is_dir():
            for link in link_dir.iterdir():
                if link.name not in links:
                    link.unlink(missing_ok=True)

    def _layer_info_dirs(self) -> list[Path]:
        base = self.layerdb / "sha256"
        return [p for p in base.iterdir() if p.is_dir()] if base.is_dir() else []

    def _new_staging(self) -> StagedLayer:
        """A private (layer dir, layerdb dir) pair, owned by an flock for as long as we live."""
        self._ensure_dirs()
        staging = self.layers_dir / STAGING
        while True:
            name = os.urandom(16).hex()
            lock = staging / f"{name}.lock"
            staging.mkdir(mode=0o700, exist_ok=True)
            try:
                lfd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                continue  # another process (or thread) removed the empty staging dir just now
            fcntl.flock(lfd, fcntl.LOCK_EX)
            try:
                if os.fstat(lfd).st_ino == os.stat(lock).st_ino:
                    break  # not removed by a cleanup that ran between our open and our flock
            except FileNotFoundError:
                pass
            os.close(lfd)
        staged = StagedLayer(diff_id="", content_size=0, layer_dir=staging / name,
                             info_dir=self.layerdb / "tmp" / name, _lock=lock, _lock_fd=lfd)
        try:
            staged.layer_dir.mkdir(mode=0o700)
            (staged.layer_dir / "diff").mkdir(mode=0o755)
            staged.info_dir.mkdir()
        except BaseException:
            staged.discard()
            raise
        return staged

    # --- layers -----------------------------------------------------------------------------------

    def _layer_path(self, chain: str) -> Path:
        return self.layerdb / "sha256" / hex_of(chain)

    def has_layer(self, chain_id: str) -> bool:
        return (self._layer_path(chain_id) / "cache-id").is_file()

    def layer_info(self, chain: str) -> LayerInfo:
        path = self._layer_path(chain)
        try:
            parent = (path / "parent").read_text().strip() if (path / "parent").exists() else None
            return LayerInfo(
                chain_id=chain,
                diff_id=(path / "diff").read_text().strip(),
                parent=parent or None,
                cache_id=(path / "cache-id").read_text().strip(),
                size=int((path / "size").read_text().strip() or 0),
            )
        except FileNotFoundError:
            raise NotFound(f"layer {chain} not found in the store") from None

    def add_layer(
        self,
        blob: BinaryIO,
        media_type: str | None,
        parent_chain_id: str | None,
        expected_diff_id: str | None,
    ) -> str:
        """Extract, verify and publish one layer; returns its chain ID. Safe to run concurrently.

        `blob` is read to its end (compressed or not). If the layer is already stored (known from
        `expected_diff_id`), nothing is read. Equivalent to `stage_layer` then `commit_layer`.
        """
        if parent_chain_id is not None and not self.has_layer(parent_chain_id):
            raise NotFound(f"parent layer {parent_chain_id} not found in the store")
        if expected_diff_id is not None:
            hex_of(expected_diff_id)
            known = chain_id(parent_chain_id, expected_diff_id)
            if self.torn_layers([known]):
                self.drop_torn_layers()
            if self.has_layer(known):
                return known
        return self.commit_layer(self.stage_layer(blob, media_type), parent_chain_id, expected_diff_id)

    def stage_layer(self, blob: BinaryIO, media_type: str | None, sync: bool = True) -> StagedLayer:
        """Extract `blob` into a private staging dir and compute its diff_id; nothing is published.

        Needs no parent and takes no store lock, so the layers of one image can be staged in
        parallel (pull does, as their downloads complete) and committed in order afterwards. The
        caller must `commit_layer` or `discard()` the result; if the process dies first, the next
        store open removes the staging dir (its flock died with the process). `sync=False` skips
        the syncfs: the caller then commits with `durable=False` and calls `sync_layers` itself.
        """
        from engine.image.extract import (  # tarfile, zlib, threads: pulls and imports only
            extract_layer,
            syncfs,
        )

        staged = self._new_staging()
        try:
            try:
                result = extract_layer(blob, staged.layer_dir / "diff", media_type)
            except (OSError, EOFError) as exc:
                raise IntegrityError(f"cannot extract layer: {exc}") from exc
            staged.diff_id = result.diff_id
            staged.content_size = result.content_size
            if sync:
                (staged.info_dir / "diff").write_text(result.diff_id)
                (staged.info_dir / "size").write_text(str(result.content_size))
            else:  # what `images`, `df` and `prune` read of a layer is never torn, even if its files are
                _write_synced(staged.info_dir / "diff", result.diff_id)
                _write_synced(staged.info_dir / "size", str(result.content_size))
            (staged.info_dir / "tar-split.json.gz").write_bytes(result.tar_split)
            if sync:
                syncfs(staged.layer_dir)
        except BaseException:
            staged.discard()
            raise
        return staged

    def commit_layer(self, staged: StagedLayer, parent_chain_id: str | None, expected_diff_id: str | None,
                     durable: bool = True) -> str:
        """Verify a staged layer and publish it on top of `parent_chain_id`; returns its chain ID.

        Atomic under the store lock (the layerdb rename is the commit point). If the same chain is
        already stored (a concurrent pull won), the staged copy is thrown away. The staged layer is
        consumed either way: after this call it is committed or discarded. `durable=False` (a layer
        staged with `sync=False`): the entry carries an `unsynced` mark naming this boot until
        `sync_layers` (docs/store.md, "One flush per pull").
        """
        try:
            if staged.committed or not staged.diff_id or not staged.layer_dir.is_dir():
                raise InvalidArgument("this staged layer was already committed or discarded")
            if expected_diff_id is not None and staged.diff_id != expected_diff_id:
                raise IntegrityError(
                    f"layer content does not match its diff_id: expected {expected_diff_id}, got {staged.diff_id}"
                )
            chain = chain_id(parent_chain_id, staged.diff_id)
            layer_dir, info_dir = staged.layer_dir, staged.info_dir
            if parent_chain_id:
                _write_synced(info_dir / "parent", parent_chain_id)
            with self._locked():
                if self.has_layer(chain):
                    return chain  # a concurrent pull won: ours is thrown away with the staging dir
                if parent_chain_id is not None and not self.has_layer(parent_chain_id):
                    raise NotFound(f"parent layer {parent_chain_id} not found in the store")
                cache_id = os.urandom(32).hex()
                self._publish_layer_dir(layer_dir, cache_id, parent_chain_id)
                _write_synced(info_dir / "cache-id", cache_id)  # syncfs in stage_layer covered the others
                if not durable:  # in the entry before its commit, made durable with it (fsync_dir below)
                    (info_dir / UNSYNCED).write_text(_boot_id())
                for name in ("diff", "size", "cache-id", "parent", "tar-split.json.gz"):
                    if (info_dir / name).exists():
                        os.chmod(info_dir / name, 0o644)
                fsync_dir(info_dir)
                os.rename(info_dir, self._layer_path(chain))  # the commit point
                fsync_dir(self.layerdb / "sha256")
                staged.committed = True
            return chain
        finally:
            staged.discard()

    # --- one flush per pull: layers committed before their data is on disk ------------------------

    def sync_layers(self, chains: list[str]) -> None:
        """One `syncfs` of the store's filesystem(s), then the `unsynced` marks of `chains` go.

        Every layer committed with `durable=False` before this call is on disk when it returns,
        whoever committed it (syncfs writes back the whole filesystem). The marks are removed
        without an fsync: one that survives a power loss only makes a good layer be checked again.
        Without a mark among `chains` (an image already pulled) nothing is flushed.
        """
        from engine.image.extract import syncfs

        if not any((self._layer_path(chain) / UNSYNCED).exists() for chain in chains):
            return
        self._ensure_dirs()
        syncfs(self.layers_dir)
        if os.stat(self.image_dir).st_dev != os.stat(self.layers_dir).st_dev:
            syncfs(self.image_dir)
        for chain in chains:
            (self._layer_path(chain) / UNSYNCED).unlink(missing_ok=True)

    def torn_layers(self, chains: list[str]) -> bool:
        """Whether any of `chains` carries an `unsynced` mark of an earlier boot: committed by a
        pull that never flushed, before a power loss or reboot, so its files may be incomplete."""
        boot = None
        for chain in chains:
            mark = _read_or_none(self._layer_path(chain) / UNSYNCED)
            if mark is None:
                continue
            boot = boot or _boot_id()
            if mark != boot:
                return True
        return False

    def drop_torn_layers(self) -> list[str]:
        """Reconcile the marks of earlier boots (see `torn_layers`); returns the deleted chain IDs.

        A marked layer that an image or container uses, or that a layer without a mark builds on,
        is on disk: whoever registered that image or committed that child flushed the filesystem
        after this layer was committed. Its mark goes. Any other marked layer is deleted, children
        first, so the next pull extracts it again instead of reusing files a crash may have torn.
        """
        deleted: list[str] = []
        boot = _boot_id()
        with self._locked():
            # Only what a commit made durable is read: the `parent` file (fsynced) and the mark;
            # `diff` and `size` of a torn entry may be empty.
            parents: dict[str, str | None] = {}
            marks: dict[str, str] = {}
            for info_dir in self._layer_info_dirs():
                chain = "sha256:" + info_dir.name
                parents[chain] = _read_or_none(info_dir / "parent")
                mark = _read_or_none(info_dir / UNSYNCED)
                if mark is not None:
                    marks[chain] = mark
            marked = {chain for chain, mark in marks.items() if mark != boot}
            durable = self._used_layers()
            for chain in parents:  # below an unmarked layer: flushed when it was committed
                parent = parents[chain] if chain not in marks else None
                while parent is not None and parent not in durable:
                    durable.add(parent)
                    parent = parents.get(parent)
            for chain in marked & durable:
                (self._layer_path(chain) / UNSYNCED).unlink(missing_ok=True)
            doomed = marked - durable
            while doomed:
                below = {parents[c] for c in parents if c not in deleted}
                leaves = [c for c in doomed if c not in below]
                if not leaves:
                    break
                for chain in leaves:
                    log.info("deleting layer %s: committed before a flush that a reboot cut off", chain)
                    self._delete_torn_layer(chain)
                    deleted.append(chain)
                    doomed.discard(chain)
        return deleted

    def _delete_torn_layer(self, chain: str) -> None:
        """`_delete_layer` for an entry whose unsynced files may be empty: only its fsynced
        `cache-id` is read (the lock is held)."""
        import shutil

        path = self._layer_path(chain)
        cache_id = _read_or_none(path / "cache-id")
        doomed = self.layerdb / "tmp" / f"del-{hex_of(chain)}-{os.urandom(4).hex()}"
        os.rename(path, doomed)
        fsync_dir(self.layerdb / "sha256")
        if cache_id and re.fullmatch(r"[0-9a-f]{64}", cache_id):
            self._remove_layer_dir(cache_id)
        shutil.rmtree(doomed, ignore_errors=True)

    def _publish_layer_dir(self, layer_dir: Path, cache_id: str, parent_chain_id: str | None) -> None:
        """Give the layer its link and lower files and move it to <layers_dir>/<cache-id>."""
        link = "".join(pick(LINK_CHARS) for _ in range(26))
        (layer_dir / "link").write_text(link)
        if parent_chain_id is not None:
            (layer_dir / "lower").write_text(self._lower_of_chain(parent_chain_id))
        os.chmod(layer_dir, 0o700)
        target = self.layers_dir / cache_id
        os.rename(layer_dir, target)
        os.symlink(f"../{cache_id}/diff", self.layers_dir / "l" / link)
        fsync_dir(self.layers_dir)

    def _lower_of_chain(self, top_chain: str) -> str:
        """Docker's `lower` file content: `l/<link>:l/<link>...`, from `top_chain` down."""
        return ":".join(f"l/{link}" for link in self._links(top_chain))

    def _links(self, top_chain: str) -> list[str]:
        links: list[str] = []
        chain: str | None = top_chain
        while chain is not None:
            info = self.layer_info(chain)
            links.append((self.layers_dir / info.cache_id / "link").read_text().strip())
            chain = info.parent
        return links

    def _remove_layer_dir(self, cache_id: str, empty_later: list[Path] | None = None) -> None:
        """With `empty_later`: renamed into layerdb/tmp (gone from the layers in one step) and left
        there for the caller to delete; what a killed caller leaves, the next open deletes."""
        import shutil

        path = self.layers_dir / cache_id
        with contextlib.suppress(OSError):
            link = (path / "link").read_text().strip()
            if link:
                (self.layers_dir / "l" / link).unlink(missing_ok=True)
        merged = path / "merged"
        if merged.is_dir() and os.path.ismount(merged):
            _lazy_unmount(merged)
        if empty_later is not None:
            doomed = self.layerdb / "tmp" / f"del-{cache_id}-{os.urandom(4).hex()}"
            try:
                os.rename(path, doomed)
            except OSError:
                pass  # (gone already, or refused: another file system, a full directory): deleted here
            else:
                empty_later.append(doomed)
                return
        shutil.rmtree(path, ignore_errors=True)

    def _delete_layer(self, chain: str) -> None:
        """Remove one layer (caller holds the lock). The rename out of sha256/ is the commit point."""
        import shutil

        info = self.layer_info(chain)
        doomed = self.layerdb / "tmp" / f"del-{hex_of(chain)}-{os.urandom(4).hex()}"
        os.rename(self._layer_path(chain), doomed)
        fsync_dir(self.layerdb / "sha256")
        self._remove_layer_dir(info.cache_id)
        shutil.rmtree(doomed, ignore_errors=True)

    def layer_tar(self, chain_id: str) -> Iterator[bytes]:
        """The layer's original uncompressed tar, byte for byte (its sha256 is the diff_id)."""
        from base64 import b64decode

        info = self.layer_info(chain_id)
        diff = self.layers_dir / info.cache_id / "diff"
        for record in read_tar_split(self._layer_path(chain_id) / "tar-split.json.gz"):
            if record["type"] == 2:
                yield b64decode(record["payload"])
                continue
            name, size = record["name"], record["size"]
            fd = os.open(diff / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                remaining = size
                while remaining:
                    chunk = f.read(min(remaining, 1 << 20))
                    if not chunk:
                        raise IntegrityError(f"layer {chain_id}: {name} is shorter than recorded")
                    remaining -= len(chunk)
                    yield chunk

    # --- reference counts: what uses a layer (images' rootfs, rw layers) --------------------------

    def _image_ids(self) -> list[str]:
        content = self.imagedb / "content" / "sha256"
        if not content.is_dir():
            return []
        return ["sha256:" + p.name for p in content.iterdir() if SHA256_RE.match("sha256:" + p.name)]

    def _mount_parents(self) -> dict[str, str]:
        """container ID -> chain ID of the image layer its rw layer sits on."""
        result: dict[str, str] = {}
        mounts = self.layerdb / "mounts"
        if mounts.is_dir():
            for mount in mounts.iterdir():
                with contextlib.suppress(OSError):
                    parent = (mount / "parent").read_text().strip()
                    if parent:
                        result[mount.name] = parent
        return result

    def _used_layers(self, exclude_image: str | None = None) -> set[str]:
        used: set[str] = set()
        for image_id in self._image_ids():
            if image_id == exclude_image:
                continue
            with contextlib.suppress(NotFound, ValueError, OSError):
                config = json.loads((self.imagedb / "content" / "sha256" / hex_of(image_id)).read_bytes())
                used.update(chain_ids(config.get("rootfs", {}).get("diff_ids", [])))
        for parent in self._mount_parents().values():
            chain: str | None = parent
            while chain is not None and chain not in used:
                used.add(chain)
                try:
                    chain = self.layer_info(chain).parent
                except NotFound:
                    break
        return used

    def release_unused_layers(self, chain_ids: list[str]) -> list[str]:
        """Delete these layers (top first) where nothing uses them: no image, no container's rw
        layer, no child layer. For a failed pull to take back what it committed; returns the
        deleted chain IDs."""
        deleted: list[str] = []
        with self._locked():
            used = self._used_layers()
            children: dict[str, set[str]] = {}
            for info_dir in self._layer_info_dirs():
                with contextlib.suppress(OSError):
                    parent = (info_dir / "parent").read_text().strip()
                    if parent:
                        children.setdefault(parent, set()).add("sha256:" + info_dir.name)
            for chain in reversed(chain_ids):
                if chain in used or children.get(chain) or not self.has_layer(chain):
                    continue
                parent = self.layer_info(chain).parent
                self._delete_layer(chain)
                deleted.append(chain)
                if parent:
                    children.get(parent, set()).discard(chain)
        return deleted

    def _release_chain(self, top: str | None) -> list[str]:
        """Delete the layers from `top` down that no image or mount uses any more (lock held)."""
        deleted: list[str] = []
        if top is None:
            return deleted
        used = self._used_layers()
        chain: str | None = top
        while chain is not None and chain not in used and self.has_layer(chain):
            parent = self.layer_info(chain).parent
            self._delete_layer(chain)
            deleted.append(chain)
            chain = parent
        return deleted

    # --- unreferenced layers (prune) --------------------------------------------------------------

    def unreferenced_layers(self) -> list[LayerInfo]:
        """Layers that are safe to delete now: no image, rw layer or pull in progress needs them.

        A pull records the layers it commits in its journal until it registers the image; a
        journal whose owner died names layers of a killed pull, reclaimable at once (a re-pull
        would still find them, and reuses them, as long as nobody prunes). Any other layer nothing
        uses is reclaimable once older than UNREFERENCED_MIN_AGE (an import, load or commit
        registers its image within seconds of its layers). While a pull runs, none: it may be
        counting on a layer it found ("Already exists") that nothing references yet.
        """
        if self._pull_in_progress():
            return []
        used = self._used_layers()
        dead = PullJournal.dead_layers(self)
        now = time.time()
        found = []
        for info_dir in self._layer_info_dirs():
            chain = "sha256:" + info_dir.name
            if chain in used:
                continue
            with contextlib.suppress(OSError):
                if chain in dead or now - info_dir.stat().st_mtime >= UNREFERENCED_MIN_AGE:
                    found.append(self.layer_info(chain))
        return found

    def prune_unreferenced_layers(self) -> list[str]:
        """Delete `unreferenced_layers()`, children before parents; their chain IDs."""
        deleted: list[str] = []
        if not self.layerdb.is_dir():
            return deleted
        with self._locked():
            doomed = {info.chain_id: info for info in self.unreferenced_layers()}
            while doomed:
                parents = {info.parent for info in self._all_layer_infos() if info.chain_id not in deleted}
                leaves = [chain for chain in doomed if chain not in parents]
                if not leaves:
                    break  # a layer some kept layer builds on (not reached: see unreferenced_layers)
                for chain in leaves:
                    self._delete_layer(chain)
                    deleted.append(chain)
                    del doomed[chain]
            PullJournal.forget_dead(self)
        return deleted

    def _all_layer_infos(self) -> list[LayerInfo]:
        infos = []
        for info_dir in self._layer_info_dirs():
            with contextlib.suppress(NotFound, OSError):
                infos.append(self.layer_info("sha256:" + info_dir.name))
        return infos

    def _pull_in_progress(self) -> bool:
        return PullJournal.any_live(self)


class PullJournal:
    """The layers one pull has committed and not yet registered an image for.

    `<image_dir>/pulls/<random>`: one chain ID per line, appended just before each layer is
    committed (a layer named but never committed is simply not there), the file flocked by its
    pull for as long as it lives. A journal whose flock can be taken belongs to
    a pull that died (SIGKILL, power loss): its layers are what `image prune` reclaims at once.
    """

    def __init__(self, store: ImageStore) -> None:
        directory = store.image_dir / "pulls"
        directory.mkdir(parents=True, exist_ok=True)
        name = os.urandom(8).hex()
        self.path = directory / name
        tmp = directory / f".{name}"  # flocked before it gets its name: a named journal is never unowned
        self._fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        os.rename(tmp, self.path)

    def add(self, chain: str) -> None:
        os.write(self._fd, chain.encode() + b"\n")

    def close(self) -> None:
        """The pull is over (image registered, or its layers taken back): the journal goes."""
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)

    @staticmethod
    def _journals(store: ImageStore) -> list[tuple[Path, bool]]:
        """(journal, alive?) for every journal."""
        directory = store.image_dir / "pulls"
        try:
            paths = list(directory.iterdir())
        except FileNotFoundError:
            return []
        found = []
        for path in paths:
            if path.name.startswith(".") and time.time() - path.stat().st_mtime < 10:
                continue  # being named by its pull right now (an older one: its pull died first)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                found.append((path, False))
            except BlockingIOError:
                found.append((path, True))
            finally:
                os.close(fd)
        return found

    @classmethod
    def any_live(cls, store: ImageStore) -> bool:
        return any(alive for _, alive in cls._journals(store))

    @classmethod
    def dead_layers(cls, store: ImageStore) -> set[str]:
        layers: set[str] = set()
        for path, alive in cls._journals(store):
            if not alive:
                with contextlib.suppress(OSError):
                    layers.update(line for line in path.read_text().split() if SHA256_RE.match(line))
        return layers

    @classmethod
    def forget_dead(cls, store: ImageStore) -> None:
        for path, alive in cls._journals(store):
            if not alive:
                path.unlink(missing_ok=True)

    @classmethod
    def forget_settled(cls, store: ImageStore) -> None:
        """Drop dead journals whose layers an image now uses (a re-pull took them over) or that are
        gone; the others stay for `image prune`."""
        dead = [path for path, alive in cls._journals(store) if not alive]
        if not dead:
            return
        used = store._used_layers()
        for path in dead:
            with contextlib.suppress(OSError):
                layers = [line for line in path.read_text().split() if SHA256_RE.match(line)]
                if all(chain in used or not store.has_layer(chain) for chain in layers):
                    path.unlink()


def _boot_id() -> str:
    """This boot's random ID: an `unsynced` mark of another boot may name torn files."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def _read_or_none(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _write_synced(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _lazy_unmount(path: Path) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.umount2(os.fsencode(path), 2)  # MNT_DETACH


def write_tar_split(path: Path, records: list[tuple]) -> None:
    """Docker's tar-split format: gzip'd JSON lines, type 1 = file reference, type 2 = raw segment."""
    from base64 import b64encode

    lines = []
    for position, record in enumerate(records):
        if record[0] == "s":
            lines.append(f'{{"type":2,"payload":"{b64encode(record[1]).decode()}","position":{position}}}')
        else:
            name = json.dumps(record[1])
            lines.append(f'{{"type":1,"name":{name},"size":{record[2]},"position":{position}}}')
    lines.append("")
    import gzip

    with open(path, "wb") as f:
        f.write(gzip.compress("\n".join(lines).encode(), compresslevel=1))


def read_tar_split(path: Path) -> Iterator[dict[str, Any]]:
    import gzip

    try:
        with gzip.open(path, "rb") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)
    except FileNotFoundError:
        raise NotFound(f"layer has no tar-split metadata ({path})") from None


def is_whiteout(st: os.stat_result) -> bool:
    """An overlayfs whiteout: a character device 0/0."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
