"""`dockui pull`: resolve a reference to one image manifest, download its blobs, hand them to the store.

Layers download in parallel (bounded) into unlinked temp files, each verified (size + sha256) while
streaming. As soon as a download completes, its layer is extracted ("staged") into a private staging
dir, in parallel with other extractions (bounded) and with the remaining downloads: staging needs no
parent layer. Staged layers are then committed strictly in order, each on top of the one below.
Nothing becomes visible in the store until a layer is complete and verified (the store commits
atomically), and the image is registered last, so a failed, cancelled or killed pull leaves only
whole layers that the next pull reuses ("Already exists"); a failed or cancelled pull also takes
back the layers it committed and discards what it staged. The filesystem is flushed once, after
the last commit and before the image is registered; layers committed before that flush carry a
mark that tells a later pull, after a reboot, to extract them again (docs/store.md, "One flush per
pull").
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from engine import events as event_log  # `events` is the progress sink here
from engine.config import EngineConfig
from engine.diagnostics import get_logger
from engine.errors import DiskFull, DockuiError, IntegrityError, NotFound, RegistryError
from engine.image.digest import chain_ids as compute_chain_ids
from engine.image.manifest import (
    ACCEPT,
    ImageManifest,
    ManifestIndex,
    Platform,
    config_platform,
    host_platform,
    parse_manifest,
    parse_platform,
    select_platform,
    verify_digest,
)
from engine.image.reference import Reference, parse_reference
from engine.image.registry import Cancelled, RegistryClient, client_for
from engine.util.fsutil import atomic_write, atomic_write_json, read_json

if TYPE_CHECKING:
    from engine.image.store import ImageRecord, ImageStore, PullJournal, StagedLayer

log = get_logger(__name__)

DOWNLOAD_WORKERS = 3
# Layers extracted at once. Extraction of small files is mostly kernel time (the GIL is released),
# so two overlap well; more only add contention on this project's 2-core machines.
EXTRACT_WORKERS = 2
PROGRESS_INTERVAL = 0.1  # seconds between "Downloading"/"Extracting" events per layer
STALL_NOTICE = 5  # seconds without a byte between "Waiting for the registry" events per layer


@dataclass(frozen=True)
class PullEvent:
    """One line of docker-style progress. `layer` is the 12-hex short blob digest (None: whole image)."""

    layer: str | None
    status: str
    current: int = 0
    total: int = 0


ProgressFn = Callable[[PullEvent], None]


@dataclass
class ResolvedImage:
    """What a reference points at: the image manifest, and the digest the user's reference names."""

    reference: Reference
    manifest: ImageManifest
    top_digest: str  # index digest for a multi-arch image, else the manifest digest
    platform: Platform


def resolve(client: RegistryClient, reference: Reference, platform: str | None = None) -> ResolvedImage:
    """Fetch the manifest (and pick a platform from an index); verify digests along the way."""
    wanted = parse_platform(platform) if platform else host_platform()
    body, content_type, _ = client.get_manifest(reference.path, reference.manifest_ref, ACCEPT)
    if reference.digest:
        verify_digest(body, reference.digest)
    parsed = parse_manifest(body, content_type)
    top_digest = parsed.digest
    if isinstance(parsed, ManifestIndex):
        chosen = select_platform(parsed, wanted)
        body, content_type, _ = client.get_manifest(reference.path, chosen.digest, ACCEPT)
        verify_digest(body, chosen.digest)
        parsed = parse_manifest(body, content_type)
        if isinstance(parsed, ManifestIndex):
            raise IntegrityError(f"index {top_digest} points at another index {chosen.digest}: not supported")
    assert isinstance(parsed, ImageManifest)
    return ResolvedImage(reference, parsed, top_digest, wanted)


# -- v2 metadata: which registry blob a local layer came from (Docker's image/<driver>/distribution) --
def _distribution_dir(config: EngineConfig) -> Path:
    return config.image_dir / "distribution"


def record_blob_source(config: EngineConfig, diff_id: str, blob_digest: str, media_type: str,
                       source_repository: str) -> None:
    """Remember blob <-> diff_id so push can skip or cross-mount instead of recompressing."""
    base = _distribution_dir(config)
    hex_diff = diff_id.split(":", 1)[1]
    path = base / "v2metadata-by-diffid" / "sha256" / hex_diff
    entries = read_json(path, default=[]) or []
    entry = {"Digest": blob_digest, "SourceRepository": source_repository, "MediaType": media_type, "HMAC": ""}
    if entry not in entries:
        entries = [e for e in entries if not (e.get("Digest") == blob_digest
                                               and e.get("SourceRepository") == source_repository)]
        atomic_write_json(path, [entry, *entries][:20])
    by_digest = base / "diffid-by-digest" / "sha256" / blob_digest.split(":", 1)[1]
    try:
        known = by_digest.read_bytes() == diff_id.encode()
    except OSError:
        known = False
    if not known:  # an image pulled again rewrites nothing (two fsyncs per layer saved)
        atomic_write(by_digest, diff_id.encode())


def known_blob_sources(config: EngineConfig, diff_id: str) -> list[dict[str, str]]:
    path = _distribution_dir(config) / "v2metadata-by-diffid" / "sha256" / diff_id.split(":", 1)[1]
    try:
        entries = read_json(path, default=[]) or []
    except ValueError:
        return []
    return [e for e in entries if isinstance(e, dict) and e.get("Digest")]


# -- the pull ---------------------------------------------------------------------------------------
class _Progress:
    """Serialises events from the download threads and throttles byte counters."""

    def __init__(self, sink: ProgressFn | None) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self._last: dict[str | None, float] = {}
        self._seen: dict[str | None, tuple[str, int]] = {}

    def emit(self, layer: str | None, status: str, current: int = 0, total: int = 0, throttle: bool = False) -> None:
        if self._sink is None:
            return
        now = time.monotonic()
        with self._lock:
            if throttle:
                if self._seen.get(layer) == (status, current):
                    return
                if now - self._last.get(layer, 0.0) < PROGRESS_INTERVAL and current < total:
                    return
            self._last[layer] = now
            self._seen[layer] = (status, current)
            self._sink(PullEvent(layer, status, current, total))


class _CountingReader:
    """Reports how far the store has read a layer (the "Extracting" bar); stops it when cancelled."""

    def __init__(self, raw: IO[bytes], on_read: Callable[[int], None], stop: threading.Event | None = None) -> None:
        self._raw, self._on_read, self.done, self._stop = raw, on_read, 0, stop

    def read(self, n: int = -1) -> bytes:
        if self._stop is not None and self._stop.is_set():
            raise Cancelled("pull cancelled")
        data = self._raw.read(n)
        self.done += len(data)
        self._on_read(self.done)
        return data

    def readinto(self, buffer: Any) -> int:
        if self._stop is not None and self._stop.is_set():
            raise Cancelled("pull cancelled")
        count = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        self.done += count or 0
        self._on_read(self.done)
        return count

    def readable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class _EitherEvent(threading.Event):
    """Set by us (a failure elsewhere) or by the caller's cancel event."""

    def __init__(self, other: threading.Event | None) -> None:
        super().__init__()
        self._other = other

    def is_set(self) -> bool:
        return super().is_set() or (self._other is not None and self._other.is_set())


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def pull_image(config: EngineConfig, ref: str, platform: str | None = None,
               progress: ProgressFn | None = None, cancel: threading.Event | None = None,
               client: RegistryClient | None = None) -> ImageRecord:
    """Pull `ref` into the store and return its record (tagged, with its repo digest). `client`
    (the caller's, e.g. with a request's own credentials) replaces the shared one."""
    from engine.image.store import ImageStore

    reference = parse_reference(ref)
    if platform:
        parse_platform(platform)  # refuse a bad --platform before any network traffic
    client = client or client_for(config, reference.registry_host)
    store = ImageStore(config)
    events = _Progress(progress)
    if reference.digest is None:
        events.emit(None, f"{reference.tag_or_latest}: Pulling from {reference.path}")
    else:
        events.emit(None, f"Pulling from {reference.path}")
    try:
        resolved = resolve(client, reference, platform)
    except NotFound as exc:
        raise NotFound(f"pull access denied or manifest unknown for {reference.familiar()}: {exc}") from exc
    return _pull_resolved(config, client, store, resolved, events, cancel, explicit_platform=platform is not None)


def _pull_resolved(config: EngineConfig, client: RegistryClient, store: ImageStore, resolved: ResolvedImage,
                   events: _Progress, cancel: threading.Event | None, explicit_platform: bool) -> ImageRecord:
    reference, manifest = resolved.reference, resolved.manifest
    repository = reference.path
    config_bytes = client.fetch_blob_bytes(repository, manifest.config.digest, size=manifest.config.size)
    try:
        image_config = json.loads(config_bytes)
        diff_ids = list(image_config["rootfs"]["diff_ids"])
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"image config {manifest.config.digest} is malformed: {exc}") from exc
    if len(diff_ids) != len(manifest.layers):
        raise IntegrityError(f"image config lists {len(diff_ids)} diff_ids but the manifest has "
                             f"{len(manifest.layers)} layers")
    found = config_platform(image_config).normalised()
    wanted = resolved.platform.normalised()
    if (found.os, found.architecture) != (wanted.os, wanted.architecture):
        if explicit_platform:
            raise RegistryError(f"image {reference.familiar()} was found but its platform ({found}) does not "
                                f"match the requested platform ({wanted})")
        log.warning("the image's platform (%s) does not match the host platform (%s)", found, wanted)

    from engine.image.store import PullJournal

    journal = PullJournal(store)  # from here until the image is registered: see PullJournal
    try:
        record = _pull_layers(config, client, store, resolved, events, cancel, config_bytes, diff_ids, journal)
    finally:
        journal.close()
    PullJournal.forget_settled(store)  # a killed pull's layers this pull took over
    return record


def _pull_layers(config: EngineConfig, client: RegistryClient, store: ImageStore, resolved: ResolvedImage,
                 events: _Progress, cancel: threading.Event | None, config_bytes: bytes, diff_ids: list[str],
                 journal: PullJournal) -> ImageRecord:
    reference, manifest = resolved.reference, resolved.manifest
    repository = reference.path
    chains = compute_chain_ids(diff_ids)
    layers = list(manifest.layers)
    if store.torn_layers(chains):  # marked layers of a pull a reboot cut off: see sync_layers
        store.drop_torn_layers()
    missing = [i for i, chain in enumerate(chains) if not store.has_layer(chain)]
    _announce_layers(events, layers, missing, not missing and _has_image(store, manifest.config.digest))

    stop = _EitherEvent(cancel)
    _cap_malloc_arenas()
    config.tmp_dir.mkdir(parents=True, exist_ok=True)
    stalls = _StallWatch(events, config.registry_stall_timeout)

    transfer = _LayerTransfer(config, client, store, repository, layers, chains, events, stalls, stop)
    downloader = ThreadPoolExecutor(max_workers=DOWNLOAD_WORKERS, thread_name_prefix="pull")
    extractor = ThreadPoolExecutor(max_workers=EXTRACT_WORKERS, thread_name_prefix="pull-extract")
    downloads: dict[int, Future[BinaryIO]] = {i: downloader.submit(transfer.download, i) for i in missing}
    stagings: dict[int, Future[StagedLayer | None]] = {}
    created: list[str] = []  # layers this pull committed: rolled back if the pull fails
    try:
        parent: str | None = None
        for i, layer in enumerate(layers):
            if i not in downloads:
                parent = chains[i]
                continue
            staged = _staged_in_order(i, downloads, stagings, lambda j, blob: extractor.submit(transfer.stage, j, blob),
                                      cancel, stalls)
            short = _short(layer.digest)
            if staged is None:
                chain = chains[i]
            else:
                journal.add(chains[i])  # before the commit: a kill right after it still leaves it named
                with _full_disk_named(config, short):
                    chain = store.commit_layer(staged, parent, diff_ids[i], durable=False)
                created.append(chain)
            if chain != chains[i]:
                raise IntegrityError(f"layer {short}: store computed chain {chain}, expected {chains[i]}")
            record_blob_source(config, diff_ids[i], layer.digest, layer.media_type, reference.name)
            events.emit(short, "Pull complete")
            parent = chains[i]
        for i, layer in enumerate(layers):
            if i not in downloads:
                record_blob_source(config, diff_ids[i], layer.digest, layer.media_type, reference.name)
        with _full_disk_named(config, "the image's layers"):
            store.sync_layers(chains)  # the pull's one flush, before the image that trusts them
    except BaseException:
        stop.set()  # running downloads and extractions stop at their next read
        _abandon(downloads, stagings, (downloader, extractor))
        _release_layers(store, created)
        raise
    downloader.shutdown(wait=True)
    extractor.shutdown(wait=True)
    return _register_image(config, store, resolved, config_bytes, events, created)


def _cap_malloc_arenas() -> None:
    """At most 2 glibc malloc arenas for this process (docs/store.md, "Memory"): the pull's
    threads each churn 1 MiB buffers, and with an arena per thread the freed ones stay resident."""
    import ctypes

    try:
        ctypes.CDLL(None).mallopt(-8, 2)  # M_ARENA_MAX; threads already running keep their arena
    except (OSError, AttributeError):  # not glibc: nothing to cap
        pass


class _LayerTransfer:
    """One pull's per-layer work, run on its thread pools: `download` a blob into an unlinked
    temporary file (verified as it streams), `stage` it (extracted into the store's staging); both
    stop at their next read once `stop` is set."""

    def __init__(self, config: EngineConfig, client: RegistryClient, store: ImageStore, repository: str,
                 layers: list, chains: list[str], events: _Progress, stalls: _StallWatch, stop: threading.Event) -> None:
        self.config, self.client, self.store, self.repository = config, client, store, repository
        self.layers, self.chains, self.events, self.stalls, self.stop = layers, chains, events, stalls, stop

    def download(self, i: int) -> BinaryIO:
        layer = self.layers[i]
        short = _short(layer.digest)
        self.stalls.active(short)

        def on_bytes(count: int) -> None:
            self.stalls.active(short)
            self.events.emit(short, "Downloading", count, layer.size, throttle=True)

        try:
            out = tempfile.TemporaryFile(dir=self.config.tmp_dir, prefix="pull-")  # unlinked: a SIGKILL leaves nothing
        except OSError as exc:
            raise _disk_full(exc, self.config, short) from None
        try:
            try:
                with _full_disk_named(self.config, short):
                    self.client.download_blob(self.repository, layer.digest, out, size=layer.size, cancel=self.stop,
                                              progress=on_bytes, on_retry=lambda why: self.events.emit(short, why))
                    out.flush()  # (the file is buffered: its last bytes reach the disk here)
            finally:
                self.stalls.done(short)
            self.events.emit(short, "Verifying Checksum")
            self.events.emit(short, "Download complete")
            out.seek(0)
            return out
        except BaseException:
            with contextlib.suppress(OSError):  # its unwritten buffer would fail again (a full disk)
                out.close()
            raise

    def stage(self, i: int, blob: BinaryIO) -> StagedLayer | None:
        """Extract one downloaded layer into staging (None: the store has it already)."""
        layer = self.layers[i]
        short = _short(layer.digest)
        try:
            if self.store.has_layer(self.chains[i]):  # another pull committed it meanwhile
                return None
            self.events.emit(short, "Extracting", 0, layer.size)
            reader = _CountingReader(
                blob, lambda n: self.events.emit(short, "Extracting", n, layer.size, throttle=True), self.stop)
            with _full_disk_named(self.config, short):
                return self.store.stage_layer(reader, layer.media_type, sync=False)  # type: ignore[arg-type]
        finally:
            blob.close()


def _announce_layers(events: _Progress, layers: list, missing: list[int], up_to_date: bool) -> None:
    """Docker's first lines: "Already exists" for the layers the store has (none for an image it
    has whole), "Pulling fs layer" for the others, "Waiting" for those past the first downloads."""
    for i, layer in enumerate(layers):
        if i not in missing and not up_to_date:  # docker prints no layer lines for an image it has
            events.emit(_short(layer.digest), "Already exists")
    for i in missing:
        events.emit(_short(layers[i].digest), "Pulling fs layer")
    if missing:
        first_wave = set(missing[:DOWNLOAD_WORKERS])
        for i in missing:
            if i not in first_wave:
                events.emit(_short(layers[i].digest), "Waiting")


def _staged_in_order(i: int, downloads: dict[int, Future[BinaryIO]], stagings: dict[int, Future[StagedLayer | None]],
                     submit: Callable[[int, BinaryIO], Future[StagedLayer | None]],
                     cancel: threading.Event | None, stalls: _StallWatch) -> StagedLayer | None:
    """Layer i staged (None: the store had it): every finished download is handed to the
    extractors meanwhile, so layers download and extract in parallel and commit in order."""
    while True:
        if cancel is not None and cancel.is_set():
            raise Cancelled("pull cancelled")
        for j, future in downloads.items():
            if j not in stagings and future.done() and future.exception() is None:
                stagings[j] = submit(j, future.result())
        if i not in stagings and downloads[i].done():
            downloads[i].result()  # its download failed (errors surface in layer order)
        if i in stagings and stagings[i].done():
            return stagings[i].result()
        waiting = [f for j, f in downloads.items() if j not in stagings and not f.done()]
        if i in stagings:
            waiting.append(stagings[i])
        wait(waiting, timeout=0.25, return_when=FIRST_COMPLETED)  # timeout: notice `cancel`
        stalls.report()


def _abandon(downloads: dict[int, Future[BinaryIO]], stagings: dict[int, Future[StagedLayer | None]],
             pools: tuple[ThreadPoolExecutor, ...]) -> None:
    """A failed or cancelled pull: wait for its threads, close the blobs no extraction took and
    discard what was staged but not committed."""
    for future in [*downloads.values(), *stagings.values()]:
        future.cancel()
    for pool in pools:
        pool.shutdown(wait=True)
    for future in downloads.values():  # blobs no extraction took (closing twice is harmless)
        if future.done() and not future.cancelled() and future.exception() is None:
            future.result().close()
    for future in stagings.values():
        if future.done() and not future.cancelled() and future.exception() is None:
            leftover = future.result()
            if leftover is not None:
                leftover.discard()  # no-op for those already committed


def _register_image(config: EngineConfig, store: ImageStore, resolved: ResolvedImage, config_bytes: bytes,
                    events: _Progress, created: list[str]) -> ImageRecord:
    """The image's record, last (its layers go again if that fails), then Docker's Digest line."""
    reference = resolved.reference
    tags = [reference.with_tag(reference.tag_or_latest)] if reference.tag or not reference.digest else []
    digest_ref = reference.with_digest(resolved.top_digest)
    try:
        with _full_disk_named(config, "the image's record"):
            record = store.add_image(config_bytes, tags, digest_ref)
    except BaseException:
        _release_layers(store, created)
        raise
    events.emit(None, f"Digest: {resolved.top_digest}")
    pulled = tags[0] if tags else digest_ref
    event_log.image(config, "pull", pulled.familiar(), pulled.familiar_name)  # moby: name= the repository
    return record


class _StallWatch:
    """Says when a download has had no byte for a while ("Waiting for the registry (10 s without
    data)", every STALL_NOTICE seconds), so a stalled pull does not look hung; the registry client
    aborts the attempt at the config's stall timeout and resumes it."""

    def __init__(self, events: _Progress, stall_timeout: float) -> None:
        self._events = events
        self._every = max(1, min(STALL_NOTICE, int(stall_timeout / 2)))  # a notice before the abort
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}  # layer -> monotonic time of its last byte
        self._told: dict[str, int] = {}  # layer -> the stall notice last given, in seconds

    def active(self, layer: str) -> None:
        with self._lock:
            self._last[layer] = time.monotonic()
            self._told.pop(layer, None)

    def done(self, layer: str) -> None:
        with self._lock:
            self._last.pop(layer, None)

    def report(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = []
            for layer, last in self._last.items():
                step = int((now - last) // self._every * self._every)
                if step >= self._every and self._told.get(layer) != step:
                    self._told[layer] = step
                    due.append((layer, step))
        for layer, step in due:
            self._events.emit(layer, f"Waiting for the registry ({step} s without data)")


def _disk_full(exc: BaseException, config: EngineConfig, what: str) -> DiskFull:
    where = f"layer {what}" if len(what) == 12 else what
    return DiskFull(f"no space left on device while writing {where}: free space under {config.root} "
                    "(dockui rm, rmi, image prune) and pull again; nothing of this layer was kept")


@contextlib.contextmanager
def _full_disk_named(config: EngineConfig, what: str) -> Iterator[None]:
    """ENOSPC/EDQUOT, raw or as the cause of the store's IntegrityError, as one DiskFull line."""
    from engine.util.diskfull import is_full

    try:
        yield
    except (OSError, IntegrityError) as exc:
        if is_full(exc) or is_full(exc.__cause__ or exc):
            raise _disk_full(exc, config, what) from None
        raise


def _has_image(store: ImageStore, image_id: str) -> bool:
    try:
        store.resolve(image_id)
    except DockuiError:
        return False
    return True


def _release_layers(store: ImageStore, created: list[str]) -> None:
    """A failed pull leaves nothing: delete the layers it committed, unless something now uses them.

    Uses the store's chain release (the same as `rmi`), under its lock. A layer another pull is
    building on (a child layer exists) is kept.
    """
    if not created:
        return
    release = getattr(store, "release_unused_layers", None)
    try:
        if release is not None:
            release(created)
            return
        with store._locked():
            mine = set(created)
            for info_dir in store._layer_info_dirs():
                parent_file = info_dir / "parent"
                if info_dir.name not in {c.split(":", 1)[1] for c in mine} and parent_file.exists():
                    if parent_file.read_text().strip() in mine:
                        return
            store._release_chain(created[-1])
    except (OSError, DockuiError) as exc:  # the pull's own error matters more
        log.warning("could not remove the layers of the failed pull: %s", exc)


def pull_status(reference: Reference, previous_id: str | None, record: ImageRecord) -> str:
    """Docker's closing line."""
    name = reference.familiar()
    if reference.tag is None and reference.digest is None:
        name += ":latest"
    if previous_id == record.id:
        return f"Status: Image is up to date for {name}"
    return f"Status: Downloaded newer image for {name}"


def previous_image_id(config: EngineConfig, ref: str) -> str | None:
    from engine.image.store import ImageStore

    try:
        return ImageStore(config).resolve(ref).id
    except DockuiError:
        return None
