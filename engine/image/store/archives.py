"""Archives: `docker import` (a root filesystem tarball), `docker save` and `docker load`.

`save` writes Docker's format (an OCI image layout plus Docker's manifest.json), each layer as its
exact original uncompressed tar rebuilt from the layer's tar-split and files; `load` reads a
Docker archive or an OCI layout tar (plain or gzip'd); `import_tarball` makes a one-layer image.

Invariant: an archive adds layers and images only through the store's own verbs (`add_layer`,
`add_image`), so what it publishes is verified and atomic as a pull's is: every layer against its
diff_id (on `save` too: a layer whose files changed is refused), and a `load` that fails takes
back the layers it added.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from engine import events
from engine.errors import DockuiError, IntegrityError, InvalidArgument, NotFound
from engine.image.digest import chain_id, hex_of, sha256_digest
from engine.image.store.images import _parse_config, host_architecture, now_rfc3339
from engine.image.store.layers import LayerStore, read_tar_split

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any, BinaryIO

    from engine.image.store.images import ImageRecord


class Archives(LayerStore):
    """`docker import`, `save` and `load`. A mixin of ImageStore: it adds layers and images through
    the store's own verbs, so an archive is published exactly as a pull is."""

    # --- import -----------------------------------------------------------------------------------

    def import_tarball(
        self,
        path: str | os.PathLike[str] | BinaryIO,
        ref: str | None,
        changes: dict[str, Any] | None = None,
        message: str = "",
        architecture: str | None = None,
    ) -> ImageRecord:
        """`docker import`: a root filesystem tarball (plain, gzip or zstd) becomes a one-layer image.

        `changes` are merged into the image's `config` (e.g. {"Cmd": ["sh"]}, like `--change`);
        `architecture` is the image's (`--platform linux/ARCH`; default the host's).
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
            "architecture": architecture or host_architecture(),
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

    # --- archives: docker save / docker load ------------------------------------------------------

    def layer_tar_size(self, chain_id: str) -> int:
        """Size of `layer_tar(chain_id)`, from the tar-split alone (a tar header needs it first)."""
        from base64 import b64decode

        total = 0
        for record in read_tar_split(self._layer_path(chain_id) / "tar-split.json.gz"):
            total += len(b64decode(record["payload"])) if record["type"] == 2 else record["size"]
        return total

    def save(self, refs: list[str], out: BinaryIO) -> None:
        """`docker save`: write the images as one tar in Docker's format (an OCI image layout plus
        Docker's manifest.json), with every layer as its exact original uncompressed tar."""
        import tarfile

        plan = _SavePlan()
        for image_id, repo_tags in self._save_targets(refs).items():
            self._plan_image(plan, image_id, repo_tags)
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for name in ("blobs", "blobs/sha256"):
                info = tarfile.TarInfo(name)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
                tar.addfile(info)
            for digest, blob in plan.blobs.items():
                self._write_blob(tar, f"blobs/sha256/{hex_of(digest)}", digest, blob)
            _add_bytes(tar, "index.json", json.dumps(
                {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": plan.index}
            ).encode())
            _add_bytes(tar, "manifest.json", json.dumps(plan.entries).encode())
            _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        events.images(self.config, "save", plan.image_ids)

    def _save_targets(self, refs: list[str]) -> dict[str, list[str]]:
        """Image ID -> the tags named for it, in the order given (one manifest.json entry per
        image, as Docker writes; an ID or digest names the image without a tag)."""
        by_image: dict[str, list[str]] = {}
        for ref in refs:
            for image_id, key in self._save_names(ref):
                tags = by_image.setdefault(image_id, [])
                if key is not None and "@" not in key and key not in tags:
                    tags.append(key)
        return by_image

    def _save_names(self, ref: str) -> list[tuple[str, str | None]]:
        """What one name given to `save` stands for, by moby's rules (tarexport parseNames): a bare
        repository name, every tag of it (`docker save busybox` saves busybox:1 and :latest), else
        an image ID prefix (`No such image: x` when neither); `name:tag` or `name@digest`, that
        reference only (`reference does not exist` when missing); an ID, that image."""
        from engine.image.reference import parse_reference
        from engine.image.store.images import _ID_PREFIX_RE

        try:
            parsed = parse_reference(ref)
        except InvalidArgument:
            return [self._lookup(ref)]  # a full ID (or text no name can be): the image store says
        by_id = parsed.familiar_name == "sha256"  # `sha256:abc`: an ID prefix, as moby reads it
        if by_id or (parsed.tag is None and parsed.digest is None):
            named = {} if by_id else self._read_repositories().get(parsed.familiar_name, {})
            if named:
                return [(image_id, key) for key, image_id in sorted(named.items())]
            if not _ID_PREFIX_RE.match(ref):
                raise NotFound(f"No such image: {ref}")
            image_id, _ = self._lookup(ref)
            return [(image_id, None)]
        try:
            return [self._lookup(parsed.familiar())]
        except NotFound:
            raise NotFound("reference does not exist") from None

    def _plan_image(self, plan: _SavePlan, image_id: str, repo_tags: list[str]) -> None:
        """Add one image's config, layers, OCI manifest, index entries and manifest.json entry."""
        from engine.image.reference import parse_reference

        record = self._record(image_id)
        config_bytes = (self.imagedb / "content" / "sha256" / hex_of(image_id)).read_bytes()
        plan.image_ids.append(image_id)
        plan.blobs[image_id] = _Blob(data=config_bytes)
        layers = []
        for diff_id, chain in zip(record.diff_ids, record.chain_ids, strict=True):
            plan.blobs.setdefault(diff_id, _Blob(chain=chain))
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
        plan.blobs[manifest_digest] = _Blob(data=manifest)
        descriptor = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
                      "size": len(manifest)}
        for tag in repo_tags or [None]:
            entry: dict[str, Any] = dict(descriptor)
            if tag is not None:
                full = parse_reference(tag)
                entry["annotations"] = {
                    "io.containerd.image.name": str(full),
                    "org.opencontainers.image.ref.name": full.tag_or_latest,
                }
            plan.index.append(entry)
        plan.entries.append(
            {
                "Config": f"blobs/sha256/{hex_of(image_id)}",
                "RepoTags": repo_tags or None,
                "Layers": [f"blobs/sha256/{hex_of(d)}" for d in record.diff_ids],
            }
        )

    def _write_blob(self, tar: Any, name: str, digest: str, blob: _Blob) -> None:
        """One blob: bytes as they are, a layer rebuilt from its tar-split and verified as it goes."""
        import tarfile

        if blob.data is not None:
            _add_bytes(tar, name, blob.data)
            return
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = self.layer_tar_size(blob.chain), 0o644, 0
        reader = _VerifyingReader(self.layer_tar(blob.chain), digest)
        tar.addfile(info, reader)
        reader.check()

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
            import shutil

            shutil.copyfileobj(source, spool, 1 << 20)
            spool.seek(0)
        created: list[str] = []
        loaded: list[tuple[ImageRecord, list[str]]] = []
        try:
            try:
                tar = tarfile.open(fileobj=spool, mode="r:*")
            except tarfile.TarError:  # tarfile's text lists each method it tried: one line instead
                raise IntegrityError("not an image archive: the input is not a tar archive (plain or gzip'd)") from None
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


@dataclass(frozen=True)
class _Blob:
    """A blob of a saved archive: bytes (a config or manifest) or a layer by its chain ID."""

    data: bytes | None = None
    chain: str = ""


@dataclass
class _SavePlan:
    """What `save` writes, gathered before the first byte: blobs by digest (each once), index.json's
    manifests, manifest.json's entries, and the images saved (for the event)."""

    blobs: dict[str, _Blob] = field(default_factory=dict)
    index: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    image_ids: list[str] = field(default_factory=list)


def _add_bytes(tar: Any, name: str, data: bytes) -> None:
    import tarfile

    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


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
