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
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import re
import shutil
import stat
import time
from base64 import b64decode, b64encode
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine import events
from engine.config import EngineConfig
from engine.diagnostics import get_logger
from engine.errors import Conflict, CorruptState, DockuiError, IntegrityError, InvalidArgument, NotFound
from engine.image.digest import SHA256_RE, chain_id, chain_ids, hex_of, sha256_digest
from engine.util import timefmt
from engine.util.fsutil import atomic_write, atomic_write_json, file_lock, fsync_dir, read_json
from engine.util.randomness import pick

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any, BinaryIO

    from engine.image.reference import Reference

log = get_logger(__name__)

STAGING = ".staging"  # under layers_dir: layers being extracted
LINK_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_ID_PREFIX_RE = re.compile(r"^(?:sha256:)?([0-9a-f]{1,64})$")
_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def host_architecture() -> str:
    """The host's architecture in OCI/Go words (`amd64`, `arm64`...)."""
    machine = os.uname().machine
    return _GOARCH.get(machine, machine)


def now_rfc3339() -> str:
    """UTC, microseconds (as Docker writes image configs)."""
    return timefmt.now_rfc3339(digits=6)


@dataclass
class ImageRecord:
    """One image in the store, as the other modules see it."""

    id: str  # "sha256:<hex>" of the config bytes
    config: dict[str, Any]
    diff_ids: list[str]
    chain_ids: list[str]  # bottom -> top
    repo_tags: list[str] = field(default_factory=list)  # familiar "busybox:latest"
    repo_digests: list[str] = field(default_factory=list)  # familiar "busybox@sha256:..."
    size: int = 0
    created: str = ""

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[1][:12]


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


@dataclass(frozen=True)
class ContainerUse:
    """One container as the container side reports it to the store (engine.container.usage): the
    store never reads container records itself. `image_id` is None for a record file that is not a
    listed container (its rw layer is still not an orphan)."""

    id: str
    image_id: str | None
    running: bool


if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    ContainerLister = Callable[[EngineConfig], Sequence[ContainerUse]]


class ImageStore:
    """Images and layers under one engine root. Cheap to create; every method re-reads the files."""

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

    # --- locking and recovery -------------------------------------------------------------------

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

    # --- layers -------------------------------------------------------------------------------

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
            if self.has_layer(known):
                return known
        return self.commit_layer(self.stage_layer(blob, media_type), parent_chain_id, expected_diff_id)

    def stage_layer(self, blob: BinaryIO, media_type: str | None) -> StagedLayer:
        """Extract `blob` into a private staging dir and compute its diff_id; nothing is published.

        Needs no parent and takes no store lock, so the layers of one image can be staged in
        parallel (pull does, as their downloads complete) and committed in order afterwards. The
        caller must `commit_layer` or `discard()` the result; if the process dies first, the next
        store open removes the staging dir (its flock died with the process).
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
            (staged.info_dir / "diff").write_text(result.diff_id)
            (staged.info_dir / "size").write_text(str(result.content_size))
            write_tar_split(staged.info_dir / "tar-split.json.gz", result.tar_split)
            syncfs(staged.layer_dir)
        except BaseException:
            staged.discard()
            raise
        return staged

    def commit_layer(self, staged: StagedLayer, parent_chain_id: str | None, expected_diff_id: str | None) -> str:
        """Verify a staged layer and publish it on top of `parent_chain_id`; returns its chain ID.

        Atomic under the store lock (the layerdb rename is the commit point). If the same chain is
        already stored (a concurrent pull won), the staged copy is thrown away. The staged layer is
        consumed either way: after this call it is committed or discarded.
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

    def _remove_layer_dir(self, cache_id: str) -> None:
        path = self.layers_dir / cache_id
        with contextlib.suppress(OSError):
            link = (path / "link").read_text().strip()
            if link:
                (self.layers_dir / "l" / link).unlink(missing_ok=True)
        merged = path / "merged"
        if merged.is_dir() and os.path.ismount(merged):
            _lazy_unmount(merged)
        shutil.rmtree(path, ignore_errors=True)

    def _delete_layer(self, chain: str) -> None:
        """Remove one layer (caller holds the lock). The rename out of sha256/ is the commit point."""
        info = self.layer_info(chain)
        doomed = self.layerdb / "tmp" / f"del-{hex_of(chain)}-{os.urandom(4).hex()}"
        os.rename(self._layer_path(chain), doomed)
        fsync_dir(self.layerdb / "sha256")
        self._remove_layer_dir(info.cache_id)
        shutil.rmtree(doomed, ignore_errors=True)

    def layer_tar(self, chain_id: str) -> Iterator[bytes]:
        """The layer's original uncompressed tar, byte for byte (its sha256 is the diff_id)."""
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

    # --- images --------------------------------------------------------------------------------

    def add_image(
        self, config_bytes: bytes, tags: list[Reference], digest_ref: Reference | None = None
    ) -> ImageRecord:
        """Record an image whose layers are all stored, and point `tags` (and `digest_ref`) at it."""
        config = _parse_config(config_bytes)
        chains = chain_ids(config["rootfs"]["diff_ids"])
        image_id = sha256_digest(config_bytes)
        self._ensure_dirs()
        with self._locked():
            for chain in chains:
                if not self.has_layer(chain):
                    raise IntegrityError(f"image {image_id[:19]} needs layer {chain}, which is not in the store")
            content = self.imagedb / "content" / "sha256" / hex_of(image_id)
            if not content.exists():
                atomic_write(content, config_bytes, 0o600)
            atomic_write(self.imagedb / "metadata" / "sha256" / hex_of(image_id) / "lastUpdated", now_rfc3339().encode())
            repos = self._read_repositories()
            for ref in tags:
                repos.setdefault(ref.familiar_name, {})[f"{ref.familiar_name}:{ref.tag_or_latest}"] = image_id
            if digest_ref is not None and digest_ref.digest:
                repos.setdefault(digest_ref.familiar_name, {})[
                    f"{digest_ref.familiar_name}@{digest_ref.digest}"
                ] = image_id
            self._write_repositories(repos)
        return self._record(image_id)

    def _read_repositories(self) -> dict[str, dict[str, str]]:
        """repositories.json's names; CorruptState (naming the file and the way back) when it is not
        what `_write_repositories` writes: never overwritten then, so no tag is lost silently."""
        path = self.repositories_file
        try:
            data = read_json(path, {"Repositories": {}})
        except ValueError as exc:
            where = f"line {exc.lineno} column {exc.colno}: {exc.msg}" if hasattr(exc, "lineno") else "not UTF-8"
            raise CorruptState(_corrupt_index(path, f"not valid JSON ({where})")) from None
        repos = data.get("Repositories") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(repos, dict | None):
            raise CorruptState(_corrupt_index(path, "not an object with a \"Repositories\" object"))
        for name, refs in (repos or {}).items():
            if not isinstance(refs, dict) or not all(isinstance(v, str) and SHA256_RE.match(v) for v in refs.values()):
                raise CorruptState(_corrupt_index(path, f"the entry for {name!r} is not a map of names to image IDs"))
        return repos or {}

    def _write_repositories(self, repos: dict[str, dict[str, str]]) -> None:
        """Atomically; on a full disk in place or into the reserve (util.diskfull), so that `rmi`,
        which frees space, never needs space first (an untag makes the file smaller)."""
        from engine.util.diskfull import write_despite_full

        repos = {name: refs for name, refs in repos.items() if refs}
        data = {"Repositories": repos}
        text = json.dumps(data, separators=(",", ":")).encode() + b"\n"
        write_despite_full(self.config.root, self.repositories_file, text,
                           lambda: atomic_write_json(self.repositories_file, data, 0o600))

    def _image_ids(self) -> list[str]:
        content = self.imagedb / "content" / "sha256"
        if not content.is_dir():
            return []
        return ["sha256:" + p.name for p in content.iterdir() if SHA256_RE.match("sha256:" + p.name)]

    def _record(self, image_id: str, repos: dict[str, dict[str, str]] | None = None) -> ImageRecord:
        path = self.imagedb / "content" / "sha256" / hex_of(image_id)
        try:
            config = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise NotFound(f"No such image: {image_id}") from None
        if repos is None:
            repos = self._read_repositories()
        tags: list[str] = []
        digests: list[str] = []
        for refs in repos.values():
            for key, value in refs.items():
                if value == image_id:
                    (digests if "@" in key else tags).append(key)
        diff_ids = list(config.get("rootfs", {}).get("diff_ids", []))
        chains = chain_ids(diff_ids)
        size = 0
        for chain in chains:
            with contextlib.suppress(OSError, ValueError):
                size += int((self._layer_path(chain) / "size").read_text())
        return ImageRecord(
            id=image_id,
            config=config,
            diff_ids=diff_ids,
            chain_ids=chains,
            repo_tags=sorted(tags),
            repo_digests=sorted(digests),
            size=size,
            created=config.get("created", ""),
        )

    def list_images(self) -> list[ImageRecord]:
        """Every image, newest first."""
        repos = self._read_repositories()
        records = []
        for image_id in self._image_ids():
            with contextlib.suppress(NotFound, ValueError):
                records.append(self._record(image_id, repos))
        records.sort(key=lambda r: (r.created, r.id), reverse=True)
        return records

    def _lookup(self, ref_or_id: str) -> tuple[str, str | None]:
        """(image ID, the repositories.json key it was found under, or None when found by ID)."""
        text = ref_or_id.strip()
        if re.fullmatch(r"(?:sha256:)?[0-9a-f]{64}", text):
            image_id = "sha256:" + text.removeprefix("sha256:")
            if (self.imagedb / "content" / "sha256" / hex_of(image_id)).exists():
                return image_id, None
            raise NotFound(f"No such image: {ref_or_id}")
        repos = self._read_repositories()
        ref = None
        with contextlib.suppress(InvalidArgument):
            from engine.image.reference import parse_reference

            ref = parse_reference(text)
        if ref is not None:
            refs = repos.get(ref.familiar_name, {})
            key = f"{ref.familiar_name}@{ref.digest}" if ref.digest else f"{ref.familiar_name}:{ref.tag_or_latest}"
            if key in refs:
                return refs[key], key
        match = _ID_PREFIX_RE.match(text)
        if match:
            found = [i for i in self._image_ids() if i[len("sha256:") :].startswith(match.group(1))]
            if len(found) == 1:
                return found[0], None
            if len(found) > 1:
                raise InvalidArgument(f"image ID prefix {text!r} is ambiguous ({len(found)} images)")
        raise NotFound(f"No such image: {ref_or_id}")

    def resolve(self, ref_or_id: str) -> ImageRecord:
        """An image by reference (`busybox`, `busybox:1`, `repo@sha256:..`) or full/short ID."""
        image_id, _ = self._lookup(ref_or_id)
        return self._record(image_id)

    def inspect(self, ref_or_id: str) -> dict[str, Any]:
        """`docker image inspect`'s object for one image."""
        record = self.resolve(ref_or_id)
        conf = record.config
        dirs = [self.layers_dir / self.layer_info(c).cache_id for c in record.chain_ids]
        graph: dict[str, str] = {}
        if dirs:
            top = dirs[-1]
            graph = {"MergedDir": str(top / "merged"), "UpperDir": str(top / "diff"), "WorkDir": str(top / "work")}
            if len(dirs) > 1:
                graph["LowerDir"] = ":".join(str(d / "diff") for d in reversed(dirs[:-1]))
        last_tag = ""
        with contextlib.suppress(OSError):
            last_tag = (self.imagedb / "metadata" / "sha256" / hex_of(record.id) / "lastUpdated").read_text()
        result: dict[str, Any] = {
            "Id": record.id,
            "RepoTags": record.repo_tags,
            "RepoDigests": record.repo_digests,
            "Parent": "",
            "Comment": conf.get("comment", ""),
            "Created": record.created,
            "DockerVersion": conf.get("docker_version", ""),
            "Author": conf.get("author", ""),
            "Config": conf.get("config"),
            "Architecture": conf.get("architecture", ""),
            "Os": conf.get("os", ""),
            "Size": record.size,
            "GraphDriver": {"Data": graph, "Name": "overlay2"},
            "RootFS": {"Type": "layers", "Layers": record.diff_ids},
            "Metadata": {"LastTagTime": last_tag},
        }
        if conf.get("variant"):
            result["Variant"] = conf["variant"]
        return result

    def tag(self, source: str, target: str) -> ImageRecord:
        from engine.image.reference import parse_reference

        image_id, _ = self._lookup(source)
        ref = parse_reference(target)
        if ref.digest:
            raise InvalidArgument(f"refusing to create a tag with a digest reference: {target}")
        with self._locked():
            repos = self._read_repositories()
            repos.setdefault(ref.familiar_name, {})[f"{ref.familiar_name}:{ref.tag_or_latest}"] = image_id
            self._write_repositories(repos)
        events.image(self.config, "tag", image_id, ref.with_tag(ref.tag_or_latest).familiar())
        return self._record(image_id)

    # --- layer dirs for the runtime -------------------------------------------------------------

    def layer_dirs(self, image_id: str) -> list[Path]:
        """The image's diff directories, bottom to top."""
        record = self._record(image_id if image_id.startswith("sha256:") else self.resolve(image_id).id)
        return [self.layers_dir / self.layer_info(c).cache_id / "diff" for c in record.chain_ids]

    def lowerdir_option(self, image_id: str) -> str:
        """overlayfs `lowerdir=` value with short links, top to bottom, relative to layers_dir."""
        record = self._record(image_id if image_id.startswith("sha256:") else self.resolve(image_id).id)
        if not record.chain_ids:
            raise InvalidArgument(f"image {record.short_id} has no layers")
        return self._lower_of_chain(record.chain_ids[-1])

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

    def remove_rw_layer(self, container_id: str, image_id: str | None = None) -> None:
        """Drop a container's writable layer (unmounting it lazily if it is still mounted).

        Then the layers below it that nothing uses any more are deleted (an image removed while
        the container lived). `image_id`, the image the layer was made from: while it is stored,
        so are all its layers, and the scan of every image and rw layer (which also hashes chain
        IDs) is skipped: the common case, at the end of every `run --rm`."""
        _check_container_id(container_id)
        mount_dir = self.layerdb / "mounts" / container_id
        with self._locked():
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
                    self._remove_layer_dir(mount_id)
            shutil.rmtree(doomed, ignore_errors=True)
            if image_id is None or not self._image_stored(image_id):
                self._release_chain(parent)

    def _image_stored(self, image_id: str) -> bool:
        try:
            return (self.imagedb / "content" / "sha256" / hex_of(image_id)).is_file()
        except InvalidArgument:
            return False

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

    # --- removal -------------------------------------------------------------------------------

    def _container_uses(self) -> Sequence[ContainerUse]:
        if self.containers is None:
            raise RuntimeError("ImageStore(config, containers=engine.container.usage.container_uses) is "
                               "needed to remove images or rw layers: only the container side knows its containers")
        return self.containers(self.config)

    def _containers_using(self, record: ImageRecord) -> list[tuple[str, bool]]:
        """(container ID, running?) for containers made from this image."""
        uses = self._container_uses()
        using = {u.id: u.running for u in uses if u.image_id == record.id}
        known = {u.id for u in uses if u.image_id is not None}
        # A container that has a record file is shown by `ps -a` (a corrupt one as "dead"), so it
        # may be named here; a rw layer with no record at all is an orphan (collected before).
        top = record.chain_ids[-1] if record.chain_ids else None
        recorded = {u.id for u in uses}
        for cid, parent in self._mount_parents().items():
            if top and parent == top and cid not in known and cid in recorded:
                using.setdefault(cid, False)
        return sorted(using.items())

    def collect_orphan_rw_layers(self) -> list[str]:
        """Remove the rw layers of containers that have no record (a `run` or `rm` killed between
        the layer and the record); their container IDs.

        Safe against a concurrent create: its record is written before its layer, and a removal
        drops the layer before the record.
        """
        parents = self._mount_parents()  # the layers first: a record is written before its layer
        recorded = {u.id for u in self._container_uses()}
        orphans = [cid for cid in parents if cid not in recorded]
        for cid in orphans:
            with contextlib.suppress(OSError, InvalidArgument):
                self.remove_rw_layer(cid)
        return orphans

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

    def remove(self, ref: str, force: bool = False) -> list[str]:
        """`docker rmi`: untag, and delete the image and the layers nothing else uses.

        Returns Docker's `Untagged: ...` / `Deleted: ...` lines. Refuses (Conflict) while a
        container uses the image, unless `force` and the container is not running.
        """
        self._ensure_dirs()
        self.collect_orphan_rw_layers()
        with self._locked():
            image_id, key = self._lookup(ref)
            record = self._record(image_id)
            repos = self._read_repositories()
            lines: list[str] = []
            all_refs = record.repo_tags + record.repo_digests
            using = self._containers_using(record)
            if key is not None:
                name = _repo_of(key)
                single = len(record.repo_tags) <= 1 and len({_repo_of(r) for r in all_refs}) <= 1
                if not force and single and using:
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{ref}" (must force) - container '
                        f"{using[0][0][:12]} is using its referenced image {record.short_id}"
                    )
                _drop_key(repos, key)
                lines.append(f"Untagged: {key}")
                if "@" not in key:
                    # Only digests of this repository left: they go too (as Docker does).
                    remaining_tags = [r for r in record.repo_tags if r != key and _repo_of(r) == name]
                    if not remaining_tags:
                        for digest_key in [d for d in record.repo_digests if _repo_of(d) == name]:
                            _drop_key(repos, digest_key)
                            lines.append(f"Untagged: {digest_key}")
                remaining = [r for refs in repos.values() for r, v in refs.items() if v == image_id]
                self._write_repositories(repos)
                if remaining:
                    events.image_removal(self.config, image_id, lines)
                    return lines
                running = [c for c, is_running in using if is_running]
                if using and (running or not force):
                    events.image_removal(self.config, image_id, lines)
                    return lines  # the image stays, dangling, for its containers (Docker does the same)
            else:
                repo_names = {_repo_of(r) for r in all_refs}
                if len(repo_names) > 1 and not force:
                    raise Conflict(
                        f"conflict: unable to delete {record.short_id} (must be forced) - image is "
                        "referenced in multiple repositories"
                    )
                running = [c for c, is_running in using if is_running]
                if running:
                    raise Conflict(
                        f"conflict: unable to delete {record.short_id} (cannot be forced) - image is being "
                        f"used by running container {running[0][:12]}"
                    )
                if using and not force:
                    raise Conflict(
                        f"conflict: unable to delete {record.short_id} (must be forced) - image is being "
                        f"used by stopped container {using[0][0][:12]}"
                    )
                for r in all_refs:
                    _drop_key(repos, r)
                    lines.append(f"Untagged: {r}")
                self._write_repositories(repos)
            lines.extend(self._delete_image(record))
            events.image_removal(self.config, image_id, lines)
            return lines

    def _delete_image(self, record: ImageRecord) -> list[str]:
        """Delete the config and the image's layers that nothing else uses (caller holds the lock)."""
        hex_id = hex_of(record.id)
        (self.imagedb / "content" / "sha256" / hex_id).unlink(missing_ok=True)
        shutil.rmtree(self.imagedb / "metadata" / "sha256" / hex_id, ignore_errors=True)
        lines = [f"Deleted: {record.id}"]
        used = self._used_layers(exclude_image=record.id)
        for chain in reversed(record.chain_ids):
            if chain in used or not self.has_layer(chain):
                continue
            self._delete_layer(chain)
            lines.append(f"Deleted: {chain}")
        return lines

    def prune(self, all_images: bool = False) -> list[str]:
        """Remove dangling images (no tags), or with `all_images` every image no container uses;
        then the layers no image or container uses (what a killed pull left: see PullJournal)."""
        lines: list[str] = []
        for record in self.list_images():
            if record.repo_tags and not all_images:
                continue
            if self._containers_using(record):
                continue
            try:
                lines.extend(self.remove(record.id, force=True))
            except (NotFound, Conflict):
                continue
        self.collect_orphan_rw_layers()
        lines.extend(f"Deleted: {chain}" for chain in self.prune_unreferenced_layers())
        return lines

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

    # --- import ----------------------------------------------------------------------------------

    def import_tarball(
        self,
        path: str | os.PathLike[str] | BinaryIO,
        ref: str | None,
        changes: dict[str, Any] | None = None,
        message: str = "",
    ) -> ImageRecord:
        """`docker import`: a root filesystem tarball (plain, gzip or zstd) becomes a one-layer image.

        `changes` are merged into the image's `config` (e.g. {"Cmd": ["sh"]}, like `--change`).
        """
        from engine.image.reference import parse_reference

        tag = parse_reference(ref) if ref else None
        if tag is not None and tag.digest:
            raise InvalidArgument(f"refusing to import with a digest reference: {ref}")
        source = "-"
        if isinstance(path, (str, os.PathLike)):
            source = os.fspath(path)
            try:
                blob: BinaryIO = open(path, "rb")
            except FileNotFoundError:
                raise NotFound(f"no such file: {source}") from None
            except IsADirectoryError:
                raise InvalidArgument(f"{source} is a directory, not a tarball") from None
        else:
            blob = path
        try:
            chain = self.add_layer(blob, None, None, None)
        finally:
            if blob is not path:
                blob.close()
        diff_id = self.layer_info(chain).diff_id
        created = now_rfc3339()
        comment = message or f"Imported from {source}"
        config: dict[str, Any] = {
            "architecture": host_architecture(),
            "comment": comment,
            "config": dict(changes or {}),
            "created": created,
            "history": [{"created": created, "comment": comment}],
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        events.image(self.config, "import", sha256_digest(config_bytes))
        return self.add_image(config_bytes, [tag] if tag else [])


    # --- archives: docker save / docker load ----------------------------------------------------

    def layer_tar_size(self, chain_id: str) -> int:
        """Size of `layer_tar(chain_id)`, from the tar-split alone (a tar header needs it first)."""
        total = 0
        for record in read_tar_split(self._layer_path(chain_id) / "tar-split.json.gz"):
            total += len(b64decode(record["payload"])) if record["type"] == 2 else record["size"]
        return total

    def save(self, refs: list[str], out: BinaryIO) -> None:
        """`docker save`: write the images as one tar in Docker's format (an OCI image layout plus
        Docker's manifest.json), with every layer as its exact original uncompressed tar."""
        import tarfile

        from engine.image.reference import parse_reference

        entries: list[dict[str, Any]] = []
        index: list[dict[str, Any]] = []
        blobs: dict[str, tuple[str, Any]] = {}  # digest -> ("bytes", data) | ("layer", chain ID)
        by_image: dict[str, list[str]] = {}  # one manifest.json entry per image, as Docker writes
        for ref in refs:
            image_id, key = self._lookup(ref)
            tags = by_image.setdefault(image_id, [])
            if key is not None and "@" not in key and key not in tags:
                tags.append(key)
        for image_id, repo_tags in by_image.items():
            record = self._record(image_id)
            config_bytes = (self.imagedb / "content" / "sha256" / hex_of(image_id)).read_bytes()
            blobs[image_id] = ("bytes", config_bytes)
            layers = []
            for diff_id, chain in zip(record.diff_ids, record.chain_ids, strict=True):
                blobs.setdefault(diff_id, ("layer", chain))
                layers.append(
                    {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": diff_id, "size": self.layer_tar_size(chain)}
                )
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": image_id, "size": len(config_bytes)},
                    "layers": layers,
                },
                separators=(",", ":"),
            ).encode()
            manifest_digest = sha256_digest(manifest)
            blobs[manifest_digest] = ("bytes", manifest)
            descriptor: dict[str, Any] = {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": len(manifest),
            }
            for tag in repo_tags or [None]:
                entry = dict(descriptor)
                if tag is not None:
                    full = parse_reference(tag)
                    entry["annotations"] = {
                        "io.containerd.image.name": str(full),
                        "org.opencontainers.image.ref.name": full.tag_or_latest,
                    }
                index.append(entry)
            entries.append(
                {
                    "Config": f"blobs/sha256/{hex_of(image_id)}",
                    "RepoTags": repo_tags or None,
                    "Layers": [f"blobs/sha256/{hex_of(d)}" for d in record.diff_ids],
                }
            )

        def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))

        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for name in ("blobs", "blobs/sha256"):
                info = tarfile.TarInfo(name)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
                tar.addfile(info)
            for digest, (kind, value) in blobs.items():
                name = f"blobs/sha256/{hex_of(digest)}"
                if kind == "bytes":
                    add_bytes(tar, name, value)
                    continue
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = self.layer_tar_size(value), 0o644, 0
                reader = _VerifyingReader(self.layer_tar(value), digest)
                tar.addfile(info, reader)
                reader.check()
            add_bytes(tar, "index.json", json.dumps(
                {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index}
            ).encode())
            add_bytes(tar, "manifest.json", json.dumps(entries).encode())
            add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        events.images(self.config, "save", list(by_image))

    def load(self, source: str | os.PathLike[str] | BinaryIO) -> list[tuple[ImageRecord, list[str]]]:
        """`docker load`: images from a Docker archive (manifest.json) or an OCI image layout tar,
        plain or gzip'd. Layers are verified against the configs' diff_ids; a failure takes back
        the layers this load added. Returns (image, tags) for each image."""
        import tarfile
        import tempfile

        from engine.image.reference import parse_reference

        if isinstance(source, (str, os.PathLike)):
            try:
                spool: BinaryIO = open(source, "rb")
            except FileNotFoundError:
                raise NotFound(f"no such file: {os.fspath(source)}") from None
        else:
            self.config.tmp_dir.mkdir(parents=True, exist_ok=True)
            spool = tempfile.TemporaryFile(dir=self.config.tmp_dir, prefix="load-")  # unlinked at once
            shutil.copyfileobj(source, spool, 1 << 20)
            spool.seek(0)
        created: list[str] = []
        loaded: list[tuple[ImageRecord, list[str]]] = []
        try:
            try:
                tar = tarfile.open(fileobj=spool, mode="r:*")
            except tarfile.TarError as exc:
                raise IntegrityError(f"not an image archive: {exc}") from None
            with tar:
                for config_name, layer_names, tags in _archive_images(tar):
                    config_bytes = _member_bytes(tar, config_name)
                    config = _parse_config(config_bytes)
                    diff_ids = config["rootfs"]["diff_ids"]
                    if len(diff_ids) != len(layer_names):
                        raise IntegrityError(f"archive lists {len(layer_names)} layers for an image of {len(diff_ids)}")
                    parent: str | None = None
                    for diff_id, (layer_name, media_type) in zip(diff_ids, layer_names, strict=True):
                        chain = chain_id(parent, diff_id)
                        if not self.has_layer(chain):
                            member = _member(tar, layer_name)
                            with tar.extractfile(member) as blob:  # type: ignore[union-attr]
                                self.add_layer(blob, media_type, parent, diff_id)
                            created.append(chain)
                        parent = chain
                    refs = []
                    for tag in tags:
                        ref = parse_reference(tag)
                        if ref.digest is None:
                            refs.append(ref)
                    record = self.add_image(config_bytes, refs)
                    loaded.append((record, [f"{r.familiar_name}:{r.tag_or_latest}" for r in refs]))
        except BaseException:
            if created:
                with contextlib.suppress(DockuiError, OSError):
                    self.release_unused_layers(created)
            raise
        finally:
            spool.close()
        if not loaded:
            raise IntegrityError("the archive holds no image")
        events.images(self.config, "load", [record.id for record, _ in loaded])
        return loaded


class _VerifyingReader:
    """A file-like view of layer_tar's chunks that checks their sha256 at the end."""

    def __init__(self, chunks: Iterator[bytes], digest: str) -> None:
        import hashlib

        self._chunks = chunks
        self._digest = digest
        self._hash = hashlib.sha256()
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._hash.update(chunk)
            self._buf += chunk
        if n < 0:
            data, self._buf = self._buf, b""
        else:
            data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def check(self) -> None:
        if self.read(1) or "sha256:" + self._hash.hexdigest() != self._digest:
            raise IntegrityError(f"layer {self._digest} no longer matches its diff_id (was the layer changed?)")


def _member(tar: Any, name: str) -> Any:
    try:
        return tar.getmember(name.removeprefix("./"))
    except KeyError:
        raise IntegrityError(f"the archive has no {name!r}") from None


def _member_bytes(tar: Any, name: str, limit: int = 64 << 20) -> bytes:
    member = _member(tar, name)
    if member.size > limit:
        raise IntegrityError(f"{name!r} in the archive is too large ({member.size} bytes)")
    f = tar.extractfile(member)
    if f is None:
        raise IntegrityError(f"{name!r} in the archive is not a file")
    with f:
        return f.read()


def _archive_images(tar: Any) -> Iterator[tuple[str, list[tuple[str, str | None]], list[str]]]:
    """(config path, [(layer path, media type)], tags) for each image of a Docker or OCI archive."""
    names = set(tar.getnames())
    if "manifest.json" in names:
        try:
            entries = json.loads(_member_bytes(tar, "manifest.json"))
        except ValueError:
            raise IntegrityError("the archive's manifest.json is not valid JSON") from None
        if not isinstance(entries, list):
            raise IntegrityError("the archive's manifest.json is not a list")
        for entry in entries:
            layers = [(str(name), None) for name in entry.get("Layers") or []]
            yield str(entry.get("Config", "")), layers, list(entry.get("RepoTags") or [])
        return
    if "index.json" not in names:
        raise IntegrityError("not an image archive: no manifest.json or index.json")

    def blob_path(descriptor: dict[str, Any]) -> str:
        return f"blobs/sha256/{hex_of(str(descriptor.get('digest', '')))}"

    def manifests(index_bytes: bytes, depth: int = 0) -> Iterator[tuple[dict[str, Any], str | None]]:
        index = json.loads(index_bytes)
        for descriptor in index.get("manifests") or []:
            name = (descriptor.get("annotations") or {}).get("io.containerd.image.name")
            data = _member_bytes(tar, blob_path(descriptor))
            if sha256_digest(data) != descriptor.get("digest"):
                raise IntegrityError(f"manifest {descriptor.get('digest')} does not match its digest")
            doc = json.loads(data)
            if "manifests" in doc and depth < 2:
                for inner, inner_name in manifests(data, depth + 1):
                    yield inner, inner_name or name
            elif "layers" in doc:
                yield doc, name

    try:
        for manifest, name in manifests(_member_bytes(tar, "index.json")):
            layers = [(blob_path(d), d.get("mediaType")) for d in manifest["layers"]]
            yield blob_path(manifest["config"]), layers, [name] if name else []
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"the archive's OCI index is malformed: {exc}") from None


# --- helpers -----------------------------------------------------------------------------------


def _parse_config(config_bytes: bytes) -> dict[str, Any]:
    try:
        config = json.loads(config_bytes)
    except ValueError as exc:
        raise IntegrityError(f"image config is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise IntegrityError("image config is not a JSON object")
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers" or not isinstance(rootfs.get("diff_ids"), list):
        raise IntegrityError('image config has no rootfs of type "layers" with diff_ids')
    for diff_id in rootfs["diff_ids"]:
        if not isinstance(diff_id, str) or not SHA256_RE.match(diff_id):
            raise IntegrityError(f"image config has an invalid diff_id: {diff_id!r}")
    return config


UNREFERENCED_MIN_AGE = 600.0  # seconds: see ImageStore.unreferenced_layers


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


def _corrupt_index(path: Path, flaw: str) -> str:
    return (
        f"the image index {path} is corrupt ({flaw}): move it aside (mv {path} {path}.bad) and the "
        "images stay, untagged (`dockui images -a`); `dockui tag IMAGE-ID NAME` or a pull names them again"
    )


def _repo_of(key: str) -> str:
    """The repository part of a repositories.json key (`host:5000/a/b:tag` -> `host:5000/a/b`)."""
    if "@" in key:
        return key.split("@", 1)[0]
    name, _, tail = key.rpartition(":")
    return name if "/" not in tail else key


def _drop_key(repos: dict[str, dict[str, str]], key: str) -> None:
    for refs in repos.values():
        refs.pop(key, None)


def _check_container_id(container_id: str) -> None:
    if not re.fullmatch(r"[0-9a-zA-Z_.-]{1,128}", container_id) or container_id in (".", ".."):
        raise InvalidArgument(f"invalid container ID: {container_id!r}")


def _write_synced(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_unsynced(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _lazy_unmount(path: Path) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.umount2(os.fsencode(path), 2)  # MNT_DETACH


def write_tar_split(path: Path, records: list[tuple]) -> None:
    """Docker's tar-split format: gzip'd JSON lines, type 1 = file reference, type 2 = raw segment."""
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
