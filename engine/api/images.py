"""Images: the typed calls the front ends make (list with filters, inspect, pull, push, remove, tag,
import, save, load, history, prune, login).

Every verb is the engine's own (engine.image.store, pull, push, registry); this module only checks
typed arguments, selects and shapes. requests is loaded only by the calls that reach a registry.
"""

from __future__ import annotations

import contextlib
import fnmatch
from dataclasses import dataclass

from engine.config import EngineConfig
from engine.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any, BinaryIO

    from engine.api.prune import PruneFilter
    from engine.image.pull import PullEvent
    from engine.image.registry import RegistryClient
    from engine.image.store import ImageRecord, ImageStore

IMAGE_FILTER_KEYS = ("dangling", "reference", "label", "before", "since")


def _store(config: EngineConfig) -> ImageStore:
    from engine.container.usage import container_uses
    from engine.image.store import ImageStore

    return ImageStore(config, containers=container_uses)


# ---- list ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageFilter:
    """Docker's image list filters: dangling=true|false, reference=PATTERN (glob on the familiar
    `name:tag` or name), label=KEY[=VALUE] (all must match), before=/since=IMAGE (by creation)."""

    dangling: bool | None = None
    references: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    before: str | None = None
    since: str | None = None

    @classmethod
    def parse(cls, pairs: Iterable[tuple[str, str]]) -> ImageFilter:
        dangling: bool | None = None
        references: list[str] = []
        labels: list[str] = []
        before = since = None
        for key, value in pairs:
            if key not in IMAGE_FILTER_KEYS:
                raise InvalidArgument(f"invalid filter '{key}'")
            if key == "dangling":
                if value.lower() not in ("true", "false", "1", "0"):
                    raise InvalidArgument(f"invalid filter 'dangling={value}'")
                dangling = value.lower() in ("true", "1")
            elif key == "reference":
                references.append(value)
            elif key == "label":
                labels.append(value)
            elif key == "before":
                before = value
            else:
                since = value
        return cls(dangling, tuple(references), tuple(labels), before, since)


@dataclass(frozen=True)
class ListedImage:
    """An image as a list shows it: its record, and its tags (only those a reference filter matched)."""

    record: ImageRecord
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]

    @property
    def labels(self) -> dict[str, str]:
        return (self.record.config.get("config") or {}).get("Labels") or {}


def _reference_matches(tag: str, pattern: str) -> bool:
    name = tag.rsplit("@", 1)[0]
    repo = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(repo, pattern)


def _labels_match(labels: dict[str, str], wanted: tuple[str, ...]) -> bool:
    for spec in wanted:
        key, sep, value = spec.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def shared_sizes(config: EngineConfig) -> dict[str, int]:
    """Image ID -> the bytes of its layers that another image uses too (moby's SharedSize, which
    `GET /images/json?shared-size=1` and `system df` report), counted over every stored image."""
    store = _store(config)
    return shared_bytes(store.list_images(), lambda chain: store.layer_info(chain).size)


def shared_bytes(records: Iterable[ImageRecord], layer_size: Callable[[str], int]) -> dict[str, int]:
    """Image ID -> the bytes of its layers that another of `records` uses too; `layer_size` is
    asked only for such shared layers."""
    records = list(records)
    users: dict[str, int] = {}
    for record in records:
        for chain in record.chain_ids:
            users[chain] = users.get(chain, 0) + 1
    sizes = {chain: layer_size(chain) for chain, count in users.items() if count > 1}
    return {record.id: sum(sizes.get(chain, 0) for chain in record.chain_ids) for record in records}


def list_images(config: EngineConfig, image_filter: ImageFilter | None = None,
                all_images: bool = False) -> list[ListedImage]:
    """The images (newest first) that pass the filter, as Docker's image list selects them:
    intermediate images (untagged, with a child image: a build's steps) only with `all_images`;
    `dangling=true` the untagged images without a child, `dangling=false` the named ones."""
    from engine.image.store.images import children_by_parent

    flt = image_filter or ImageFilter()
    store = _store(config)
    records = store.list_images()
    children = children_by_parent(records)
    before = store.resolve(flt.before).created if flt.before else None
    since = store.resolve(flt.since).created if flt.since else None
    listed = []
    for record in records:
        if flt.dangling and record.id in children:
            continue  # dangling=true lists only images no other image builds on
        labels = (record.config.get("config") or {}).get("Labels") or {}
        if flt.labels and not _labels_match(labels, flt.labels):
            continue
        if before is not None and not record.created < before:
            continue
        if since is not None and not record.created > since:
            continue
        tags, digests = tuple(record.repo_tags), tuple(record.repo_digests)
        if flt.references:
            tags = tuple(t for t in tags if any(_reference_matches(t, p) for p in flt.references))
            digests = tuple(d for d in digests if any(_reference_matches(d, p) for p in flt.references))
        if not tags and not digests:
            if record.id in children and not all_images:
                continue  # intermediate
            if flt.dangling is False or flt.references:
                continue
        elif flt.dangling and tags:
            continue
        listed.append(ListedImage(record, tags, digests))
    return listed


def resolve(config: EngineConfig, ref: str) -> ImageRecord:
    return _store(config).resolve(ref)


# Docker's zero container config: what API 1.43's image inspect shows as ContainerConfig for an image
# whose config has no `container_config` (docker-compose 1.x reads ContainerConfig.Volumes).
EMPTY_CONTAINER_CONFIG: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None, "Cmd": None,
    "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None,
}


def inspect(config: EngineConfig, ref: str) -> dict[str, Any]:
    """Docker's image inspect document, with the keys API 1.43 still has (`Container`,
    `ContainerConfig` from the image config's legacy fields, `VirtualSize`)."""
    store = _store(config)
    data = store.inspect(ref)
    raw = store.resolve(data["Id"]).config or {}
    data.setdefault("Container", raw.get("container") or "")
    data.setdefault("ContainerConfig", raw.get("container_config") or dict(EMPTY_CONTAINER_CONFIG))
    data.setdefault("VirtualSize", data.get("Size", 0))
    return data


@dataclass(frozen=True)
class HistoryEntry:
    """One line of an image's history, newest first; `image_id` only on the top one (`<missing>`
    below it, as Docker says for layers that are not images of their own)."""

    image_id: str
    created: str
    created_by: str
    size: int
    comment: str
    tags: tuple[str, ...]


def history(config: EngineConfig, ref: str) -> list[HistoryEntry]:
    """Docker's image history: the config's history, newest first, each entry's layer size; the
    IDs (and tags) by walking the parent chain, one image per entry from the top (a build makes
    one image, and one history entry, per step), `<missing>` where the chain ends."""
    store = _store(config)
    record = store.resolve(ref)
    sizes = [store.layer_info(chain).size for chain in record.chain_ids]
    entries = []
    layer = 0
    for item in record.config.get("history") or []:
        size = 0
        if not item.get("empty_layer") and layer < len(sizes):
            size, layer = sizes[layer], layer + 1
        entries.append(HistoryEntry("<missing>", item.get("created", ""), item.get("created_by", ""), size,
                                    item.get("comment", ""), ()))
    entries.reverse()
    image: ImageRecord | None = record
    for index, entry in enumerate(entries):
        if image is None:
            break
        entries[index] = HistoryEntry(image.id, entry.created, entry.created_by, entry.size, entry.comment,
                                      tuple(image.repo_tags))
        image = _stored_parent(store, image)
    return entries


def _stored_parent(store: ImageStore, record: ImageRecord) -> ImageRecord | None:
    from engine.errors import NotFound

    if not record.parent:
        return None
    try:
        return store.resolve(record.parent)
    except NotFound:
        return None  # removed meanwhile: the chain ends there, as Docker's walk does


# ---- changes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Removal:
    """One line of `rmi`'s report: kind is "Untagged" or "Deleted"."""

    kind: str
    value: str


def remove(config: EngineConfig, ref: str, force: bool = False, prune: bool = True) -> list[Removal]:
    """`rmi`: untag, and delete the image, the layers nothing else uses and (unless `prune` is
    False, Docker's `noprune`) its untagged parents that nothing else uses, up the chain."""
    out = []
    for line in _store(config).remove(ref, force=force, prune=prune):
        kind, _, value = line.partition(": ")
        out.append(Removal(kind, value))
    return out


def tag(config: EngineConfig, source: str, target: str) -> ImageRecord:
    return _store(config).tag(source, target)


def prune(config: EngineConfig, all_images: bool = False, filters: PruneFilter | None = None,
          ) -> tuple[list[Removal], int]:
    """Remove dangling images (every unused one with `all_images`; those the filters, until and
    label, let go): the removals and the bytes freed."""
    store = _store(config)
    before = _layer_sizes(store)
    selected = None if filters is None else (
        lambda record: filters.selects_created(record.created, (record.config.get("config") or {}).get("Labels")))
    removals = [Removal(*line.split(": ", 1)) for line in store.prune(all_images=all_images, selected=selected)]
    after = _layer_sizes(store)
    freed = sum(size for chain, size in before.items() if chain not in after)
    from engine.api.prune import log_prune

    log_prune(config, "image", freed)
    return removals, freed


def _layer_sizes(store: ImageStore) -> dict[str, int]:
    sizes = {}
    for path in store._layer_info_dirs():
        try:
            sizes[path.name] = int((path / "size").read_text())
        except (OSError, ValueError):
            continue
    return sizes


def import_tarball(config: EngineConfig, source: BinaryIO, ref: str | None, changes: Iterable[str] = (),
                   message: str = "", architecture: str | None = None) -> ImageRecord:
    """A root filesystem tarball as a one-layer image; `changes` are Dockerfile instructions
    (`CMD ["sh"]`, `ENV A=1`), as `docker import --change` gives them."""
    from engine.image.changes import parse_changes

    return _store(config).import_tarball(source, ref, changes=parse_changes(list(changes)), message=message,
                                         architecture=architecture)


def save(config: EngineConfig, refs: list[str], out: BinaryIO) -> None:
    """Every name is resolved (by moby's rules for save) before a byte is written: see Archives.save."""
    _store(config).save(refs, out)


@dataclass(frozen=True)
class Loaded:
    """One image `load` stored, with the names it was given (none: `Loaded image ID:`)."""

    image_id: str
    tags: tuple[str, ...]


def load(config: EngineConfig, source: BinaryIO) -> list[Loaded]:
    return [Loaded(record.id, tuple(tags)) for record, tags in _store(config).load(source)]


# ---- registries ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryLogin:
    """Credentials a request brings (Docker's X-Registry-Auth), used instead of the stored ones."""

    username: str
    password: str


@dataclass(frozen=True)
class PullResult:
    """What a pull gives back: the reference, the image stored, and Docker's last line."""

    reference: str  # the full reference pulled (docker.io/library/busybox:latest)
    record: ImageRecord
    status: str  # Docker's closing "Status: ..." line


def pull(config: EngineConfig, ref: str, platform: str | None = None,
         progress: Callable[[PullEvent], None] | None = None, cancel: threading.Event | None = None,
         login: RegistryLogin | None = None) -> PullResult:
    """Pull an image (with `login`'s credentials instead of the stored ones when given)."""
    from engine.image.pull import previous_image_id, pull_image, pull_status
    from engine.image.reference import parse_reference

    reference = parse_reference(ref)
    previous = previous_image_id(config, ref)
    with _registry_client(config, reference.registry_host, login) as client:
        record = pull_image(config, ref, platform=platform, progress=progress, cancel=cancel, client=client)
    return PullResult(str(reference), record, pull_status(reference, previous, record))


@contextlib.contextmanager
def _registry_client(config: EngineConfig, host: str, login: RegistryLogin | None) -> Iterator[RegistryClient | None]:
    """A client of the request's own (closed after) when it brings credentials; else None: the
    engine's shared client with the stored credentials."""
    if login is None:
        yield None
        return
    from engine.image.auth import Credentials
    from engine.image.registry import RegistryClient

    client = RegistryClient(config, host, credentials=Credentials(login.username, login.password),
                            use_stored_credentials=False)
    try:
        yield client
    finally:
        client.close()


@dataclass(frozen=True)
class Distribution:
    """What a registry says a reference is, without pulling it (Docker's distribution inspect):
    the top descriptor (an index's for a multi-platform image) and the platforms it offers."""

    media_type: str
    digest: str
    size: int
    platforms: tuple[tuple[str, str, str], ...]  # (os, architecture, variant)


def distribution(config: EngineConfig, ref: str, login: RegistryLogin | None = None) -> Distribution:
    """The reference's manifest from its registry; an image manifest's platform is its config's."""
    import json

    from engine.image.manifest import ACCEPT, ManifestIndex, parse_manifest, verify_digest
    from engine.image.reference import parse_reference
    from engine.image.registry import client_for

    reference = parse_reference(ref)
    with _registry_client(config, reference.registry_host, login) as own:
        client = own or client_for(config, reference.registry_host)
        body, content_type, _ = client.get_manifest(reference.path, reference.manifest_ref, ACCEPT)
        if reference.digest:
            verify_digest(body, reference.digest)
        parsed = parse_manifest(body, content_type)
        if isinstance(parsed, ManifestIndex):
            platforms = tuple((d.platform.os, d.platform.architecture, d.platform.variant)
                              for d in parsed.manifests if d.platform is not None)
        else:
            image_config = json.loads(client.fetch_blob_bytes(reference.path, parsed.config.digest,
                                                              size=parsed.config.size))
            platforms = ((str(image_config.get("os", "")), str(image_config.get("architecture", "")),
                          str(image_config.get("variant", "") or "")),)
    return Distribution(parsed.media_type, parsed.digest, len(body), platforms)


def push(config: EngineConfig, ref: str, progress: Callable[[PullEvent], None] | None = None,
         login: RegistryLogin | None = None) -> str:
    """Push the image to its registry; returns the manifest digest."""
    from engine.image.push import push_image
    from engine.image.reference import parse_reference

    with _registry_client(config, parse_reference(ref).registry_host, login) as client:
        return push_image(config, ref, progress=progress, client=client)


def check_login(config: EngineConfig, server: str, username: str, password: str) -> None:
    """Prove credentials against a registry as `dockui login` does (nothing is stored)."""
    if not username or not password:
        raise InvalidArgument("username and password are required")
    host = server.removeprefix("https://").removeprefix("http://").split("/", 1)[0] or "docker.io"
    if host in ("docker.io", "index.docker.io", "registry.hub.docker.com"):
        host = "registry-1.docker.io"
    with _registry_client(config, host, RegistryLogin(username, password)) as client:
        assert client is not None  # a login always gets a client of its own
        client.check_login()


@dataclass(frozen=True)
class ImageLayer:
    """One layer of an image, bottom to top: its chainID, diffID and unpacked size in bytes."""

    chain_id: str
    diff_id: str
    size: int


def layers(config: EngineConfig, ref: str) -> list[ImageLayer]:
    """The image's layers, bottom first, with the sizes the layer database records."""
    store = _store(config)
    record = store.resolve(ref)
    return [ImageLayer(chain, diff, store.layer_info(chain).size)
            for chain, diff in zip(record.chain_ids, record.diff_ids, strict=False)]
