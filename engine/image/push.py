"""`dockui push`: upload an image from the store to a registry.

For each layer, cheapest first: a blob the target repository already has (HEAD) is skipped; a blob
known (from pull/push metadata) to live in another repository of the same registry is cross-mounted;
otherwise the store's exact original tar (`ImageStore.layer_tar`) is gzip-compressed into a temp file
(hashing as it goes) and uploaded, monolithic or in chunks. Then the config blob, then the manifest,
which a registry accepts only once every blob it names is present.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from engine import events
from engine.config import EngineConfig
from engine.errors import DockuiError, IntegrityError, InvalidArgument
from engine.image.digest import hex_of, sha256_digest
from engine.image.manifest import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
)
from engine.image.pull import ProgressFn, PullEvent, known_blob_sources, record_blob_source
from engine.image.reference import parse_reference
from engine.image.registry import RegistryClient, client_for

if TYPE_CHECKING:
    from engine.image.store import ImageStore

UPLOAD_WORKERS = 3
GZIP_LEVEL = 6  # Go's gzip.DefaultCompression, what Docker uses for pushed layers
_OCI_TO_DOCKER = {OCI_LAYER_GZIP: DOCKER_LAYER_GZIP}


@dataclass(frozen=True)
class PushedLayer:
    media_type: str
    digest: str
    size: int


class _HashingWriter:
    """File writer that hashes and counts what goes through (the compressed blob)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.hasher, self.size = raw, hashlib.sha256(), 0

    def write(self, data: Any) -> int:
        data = bytes(data)
        self.hasher.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def config_bytes_of(config: EngineConfig, image_id: str) -> bytes:
    """The image config exactly as stored (its sha256 is the image ID)."""
    data = (config.image_dir / "imagedb" / "content" / "sha256" / hex_of(image_id)).read_bytes()
    if sha256_digest(data) != image_id:
        raise IntegrityError(f"stored config of {image_id} is corrupt")
    return data


def _push_layer(config: EngineConfig, store: ImageStore, client: RegistryClient, repository: str,
                registry_host_name: str, chain: str, diff_id: str, emit: ProgressFn,
                chunk_size: int | None) -> PushedLayer:
    short = _short(diff_id)
    emit(PullEvent(short, "Preparing"))
    target_name = f"{registry_host_name}/{repository}"
    sources = [s for s in known_blob_sources(config, diff_id)
               if s.get("MediaType", DOCKER_LAYER_GZIP) in (DOCKER_LAYER_GZIP, OCI_LAYER_GZIP)]
    # 1. Already in this repository?  2. In another repository of this registry: mount it.
    for source in sources:
        source_host, _, source_repo = str(source.get("SourceRepository", "")).partition("/")
        if source_host != registry_host_name:
            continue
        digest = source["Digest"]
        size = client.blob_size(repository, digest)
        if size is not None:
            emit(PullEvent(short, "Layer already exists"))
            return PushedLayer(source.get("MediaType", DOCKER_LAYER_GZIP), digest, size)
        if source_repo and source_repo != repository:
            try:
                mounted = client.mount_blob(repository, digest, source_repo)
            except DockuiError:
                continue
            if mounted:
                size = client.blob_size(repository, digest)
                if size is not None:
                    emit(PullEvent(short, f"Mounted from {source_repo}"))
                    record_blob_source(config, diff_id, digest, source.get("MediaType", DOCKER_LAYER_GZIP),
                                       target_name)
                    return PushedLayer(source.get("MediaType", DOCKER_LAYER_GZIP), digest, size)
    # 3. Compress the original tar and upload it.
    with tempfile.TemporaryFile(dir=config.tmp_dir, prefix="push-") as tmp:
        writer = _HashingWriter(tmp)
        tar_hash = hashlib.sha256()
        with gzip.GzipFile(filename="", mode="wb", fileobj=writer, compresslevel=GZIP_LEVEL, mtime=0) as gz:  # type: ignore[arg-type]
            for chunk in store.layer_tar(chain):
                tar_hash.update(chunk)
                gz.write(chunk)
        if "sha256:" + tar_hash.hexdigest() != diff_id:
            raise IntegrityError(f"layer {short}: stored content no longer matches its diff_id {diff_id}")
        tmp.flush()
        digest, size = "sha256:" + writer.hasher.hexdigest(), writer.size

        def reopen() -> IO[bytes]:
            tmp.seek(0)
            return _NoClose(tmp)

        result = client.upload_blob(
            repository, digest, size, reopen, chunk_size=chunk_size,
            progress=lambda n: emit(PullEvent(short, "Pushing", n, size)),
        )
    emit(PullEvent(short, "Layer already exists" if result.outcome == "exists" else "Pushed"))
    record_blob_source(config, diff_id, digest, DOCKER_LAYER_GZIP, target_name)
    return PushedLayer(DOCKER_LAYER_GZIP, digest, size)


class _NoClose:
    """Lets `with open_data() as f` leave our temp file open for a retry."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw

    def __enter__(self) -> IO[bytes]:
        return self._raw

    def __exit__(self, *exc: object) -> None:
        return None


def push_image(config: EngineConfig, ref: str, progress: ProgressFn | None = None,
               chunk_size: int | None = None, client: RegistryClient | None = None) -> str:
    """Push the image `ref` names in the store to its registry; returns the manifest digest.
    `client` (the caller's, e.g. with a request's own credentials) replaces the shared one."""
    from engine.image.store import ImageStore

    reference = parse_reference(ref)
    if reference.digest:
        raise InvalidArgument(f"cannot push a digest reference ({ref}): push a tag")
    store = ImageStore(config)
    record = store.resolve(ref)
    client = client or client_for(config, reference.registry_host)
    repository = reference.path
    lock = threading.Lock()

    def emit(event: PullEvent) -> None:
        if progress is not None:
            with lock:
                progress(event)

    emit(PullEvent(None, f"The push refers to repository [{reference.name}]"))
    config.tmp_dir.mkdir(parents=True, exist_ok=True)
    layer_args = list(zip(record.chain_ids, record.diff_ids, strict=True))
    with ThreadPoolExecutor(max_workers=UPLOAD_WORKERS, thread_name_prefix="push") as executor:
        futures = [executor.submit(_push_layer, config, store, client, repository, reference.domain, chain,
                                   diff_id, emit, chunk_size) for chain, diff_id in layer_args]
        layers = [f.result() for f in futures]

    image_config = config_bytes_of(config, record.id)
    oci = any(layer.media_type not in (DOCKER_LAYER_GZIP,) for layer in layers)
    config_type = OCI_CONFIG if oci else DOCKER_CONFIG
    client.upload_blob(repository, record.id, len(image_config), lambda: _bytes_io(image_config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
        "config": {"mediaType": config_type, "size": len(image_config), "digest": record.id},
        "layers": [{"mediaType": layer.media_type if not oci else _oci_type(layer.media_type),
                    "size": layer.size, "digest": layer.digest} for layer in layers],
    }
    body = json.dumps(manifest, indent=3).encode()
    digest = client.put_manifest(repository, reference.tag_or_latest, body, manifest["mediaType"])
    emit(PullEvent(None, f"{reference.tag_or_latest}: digest: {digest} size: {len(body)}"))
    events.image(config, "push", reference.with_tag(reference.tag_or_latest).familiar(), reference.familiar_name)
    # Remember where the image now lives, so `images --digests` and later pulls agree.
    store.add_image(image_config, [], reference.with_digest(digest))
    return digest


def _oci_type(media_type: str) -> str:
    return OCI_LAYER_GZIP if media_type == DOCKER_LAYER_GZIP else media_type


def _bytes_io(data: bytes) -> IO[bytes]:
    import io

    return io.BytesIO(data)
