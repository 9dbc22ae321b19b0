"""Images and their names: imagedb (each image's config, byte for byte) and repositories.json.

    <root>/image/overlay2/repositories.json          names -> image IDs (tags and repo@sha256 digests)
    <root>/image/overlay2/imagedb/content/sha256/<id>   the image config, byte for byte
    <root>/image/overlay2/imagedb/metadata/sha256/<id>/ lastUpdated (and parent, for built images)

Owns adding an image, looking one up by name, ID or ID prefix, `inspect`, `tag`, `rmi` and
`image prune`, and the overlay `lowerdir=` of an image for the runtime.

Parent images (Docker's legacy builder: each build step's image is the parent of the next) are
linked by the `parent` metadata file; an image's children are the images whose link names it.
An untagged image with children is an intermediate image (hidden by `images` without -a, not
dangling); `rmi` follows Docker's daemon/images/image_delete.go: an image with children is never
deleted (a hard conflict, not even forced), and deleting an image deletes its untagged parents
up the chain that nothing else uses (unless `noprune`).

Invariant: an image is recorded only once all its layers are stored (checked under the store
lock), and repositories.json names only recorded images. The file is rewritten whole and
atomically, and never over a copy it cannot read (CorruptState instead), so no tag is lost
silently. `rmi` refuses while a container uses the image (the container side says which do),
and no removal leaves a `parent` link naming a deleted image.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from engine import events
from engine.errors import Conflict, CorruptState, IntegrityError, InvalidArgument, NotFound
from engine.image.digest import SHA256_RE, chain_ids, hex_of, sha256_digest
from engine.image.store.layers import LayerStore
from engine.util import timefmt
from engine.util.fsutil import atomic_write, atomic_write_json, read_json

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from collections.abc import Container, Iterable, Sequence
    from pathlib import Path
    from typing import Any

    from engine.image.reference import Reference
    from engine.image.store.rwlayers import ContainerUse


_ID_PREFIX_RE = re.compile(r"^(?:sha256:)?([0-9a-f]{1,64})$")
_FULL_ID_RE = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")


def missing_image(ref_or_id: str) -> NotFound:
    """Docker's ErrImageDoesNotExist, worded as moby words it: the reference normalised, a bare name
    with its default tag (`No such image: busybox:latest`), a full ID as its digest
    (`sha256:...`), a digest reference as given; text that is no reference at all, as given."""
    from engine.image.reference import parse_reference

    full_id = _FULL_ID_RE.match(ref_or_id)
    if full_id:
        return NotFound(f"No such image: sha256:{full_id.group(1)}")
    try:
        ref = parse_reference(ref_or_id)
    except InvalidArgument:
        return NotFound(f"No such image: {ref_or_id}")
    if not ref.tag and not ref.digest:
        ref = ref.with_tag(ref.tag_or_latest)
    return NotFound(f"No such image: {ref.familiar()}")


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
    parent: str = ""  # the parent image's ID (a build step's previous image), "" for none

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[1][:12]


class ImageIndex(LayerStore):
    """Images (imagedb) and their names (repositories.json): add, look up, inspect, tag, rmi, prune.
    A mixin of ImageStore: `remove` asks the rw layers' side which containers use an image."""

    # --- images -----------------------------------------------------------------------------------

    def add_image(
        self, config_bytes: bytes, tags: list[Reference], digest_ref: Reference | None = None,
        parent: str | None = None,
    ) -> ImageRecord:
        """Record an image whose layers are all stored, and point `tags` (and `digest_ref`) at it.
        `parent`: the image it was made from (a build step's or a commit's), linked under the same
        lock, so the parent is never a childless, untagged (dangling) image that a concurrent
        `image prune` may take in between; "" records a step on `scratch`."""
        config = _parse_config(config_bytes)
        chains = chain_ids(config["rootfs"]["diff_ids"])
        image_id = sha256_digest(config_bytes)
        self._ensure_dirs()
        with self._locked():
            for chain in chains:
                if not self.has_layer(chain):
                    raise IntegrityError(f"image {image_id[:19]} needs layer {chain}, which is not in the store")
            if parent and not (self.imagedb / "content" / "sha256" / hex_of(parent)).is_file():
                raise NotFound(f"No such image: {parent} (the parent of image {image_id[:19]})")
            content = self.imagedb / "content" / "sha256" / hex_of(image_id)
            if not content.exists():
                atomic_write(content, config_bytes, 0o600)
            metadata = self.imagedb / "metadata" / "sha256" / hex_of(image_id)
            atomic_write(metadata / "lastUpdated", now_rfc3339().encode())
            if parent is not None:
                atomic_write(metadata / "parent", parent.encode(), 0o600)
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

    def _parent_link(self, image_id: str, stored: Container[str] | None = None) -> str:
        """The image's parent (Docker's `parent` metadata file, written by the builder), or "" when
        it has none or names an image no longer stored. `stored`: the stored image IDs, when the
        caller has them (else the parent's config file is looked for)."""
        try:
            with open(self.imagedb / "metadata" / "sha256" / hex_of(image_id) / "parent") as f:
                parent = f.read().strip()
        except (OSError, ValueError):
            return ""
        if not SHA256_RE.match(parent) or parent == image_id:
            return ""
        if stored is not None:
            return parent if parent in stored else ""
        return parent if (self.imagedb / "content" / "sha256" / hex_of(parent)).is_file() else ""

    def _record(self, image_id: str, repos: dict[str, dict[str, str]] | None = None,
                stored: Container[str] | None = None) -> ImageRecord:
        config = self._config(image_id)
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
            parent=self._parent_link(image_id, stored),
        )

    def list_images(self) -> list[ImageRecord]:
        """Every image, intermediate ones included (`images` hides those: see children_by_parent),
        newest first."""
        repos = self._read_repositories()
        records = []
        image_ids = self._image_ids()
        stored = set(image_ids)
        for image_id in image_ids:
            with contextlib.suppress(NotFound, ValueError):
                records.append(self._record(image_id, repos, stored))
        records.sort(key=lambda r: (r.created, r.id), reverse=True)
        return records

    def _lookup(self, ref_or_id: str) -> tuple[str, str | None]:
        """(image ID, the repositories.json key it was found under, or None when found by ID)."""
        text = ref_or_id.strip()
        if re.fullmatch(r"(?:sha256:)?[0-9a-f]{64}", text):
            image_id = "sha256:" + text.removeprefix("sha256:")
            if (self.imagedb / "content" / "sha256" / hex_of(image_id)).exists():
                return image_id, None
            raise missing_image(text)
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
        raise missing_image(text)

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
            "Parent": record.parent,
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

    # --- layer dirs for the runtime ---------------------------------------------------------------

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

    # --- removal ----------------------------------------------------------------------------------

    def _removal_view(self) -> _RemovalView:
        """What a removal decides on, read once under the store lock: names, parent links, and
        which containers use which image (records, and rw layers whose record is not listed).
        The containers are read once: the rw layers no record owns (orphans a killed `run` or
        `rm` left) are collected from the same reading, before anything is decided."""
        mounts = self._mount_parents()  # the layers first: a record is written before its layer
        uses = self._container_uses()
        for orphan in self._collect_orphans_locked(mounts, uses):
            mounts.pop(orphan, None)
        image_ids = self._image_ids()
        stored = set(image_ids)
        parents = {}
        for image_id in image_ids:
            parent = self._parent_link(image_id, stored)
            if parent:
                parents[image_id] = parent
        return _RemovalView(self._read_repositories(), parents, uses, mounts, self._chain_ids)

    def _chain_ids(self, image_id: str) -> list[str]:
        """The image's layer chain IDs, bottom to top, from its config (NotFound when it is gone)."""
        return chain_ids(list(self._config(image_id).get("rootfs", {}).get("diff_ids", [])))

    def _config(self, image_id: str) -> dict[str, Any]:
        """The image's config, as stored (NotFound when it is gone)."""
        try:
            return json.loads((self.imagedb / "content" / "sha256" / hex_of(image_id)).read_bytes())
        except FileNotFoundError:
            raise NotFound(f"No such image: {image_id}") from None

    def remove(self, ref: str, force: bool = False, prune: bool = True) -> list[str]:
        """`docker rmi` as Docker's ImageDelete: untag, delete the image and the layers nothing else
        uses, then (with `prune`, Docker's default) its untagged parents up the chain that nothing
        else uses: no tag, no other child, no container.

        Returns Docker's `Untagged: ...` / `Deleted: ...` lines. Refuses (Conflict) while a
        container uses the image, unless `force` and the container is not running, and always
        while images are built on it (`image has dependent child images`, cannot be forced). By
        reference, the reference goes and the image is deleted only when nothing stops it.
        """
        self._ensure_dirs()
        with self._locked():
            view = self._removal_view()  # (first: orphan rw layers go even when `ref` names nothing)
            image_id, key = self._lookup(ref)
            refs = view.refs_of(image_id)
            lines: list[str] = []
            if key is not None:
                if not force and _single_reference(refs):
                    using = view.using(image_id, view.chains_of(image_id))
                    if using:
                        raise Conflict(
                            f'conflict: unable to remove repository reference "{ref}" (must force) - container '
                            f"{using[0][0][:12]} is using its referenced image {_short(image_id)}"
                        )
                lines.extend(self._untag(view, key, refs))
                if view.refs_of(image_id):
                    events.image_removal(self.config, image_id, lines)
                    return lines
                quiet = True  # the reference went; the image stays if anything else needs it
            else:
                if _single_reference(refs):
                    conflict = self._conflict(image_id, view, soft=not force, references=False)
                    if conflict is not None:
                        raise Conflict(conflict.message)
                    lines.extend(self._untag_all(view, image_id))
                quiet = False
            self._delete_chain(image_id, view, lines, force=force, prune=prune, quiet=quiet)
            return lines

    def _untag(self, view: _RemovalView, key: str, refs: list[str]) -> list[str]:
        """Drop one reference; a tag that was its repository's last takes the repository's digest
        references with it (as Docker does). Written at once; the `Untagged:` lines."""
        _drop_key(view.repos, key)
        lines = [f"Untagged: {key}"]
        if "@" not in key:
            name = _repo_of(key)
            if not any(r != key and "@" not in r and _repo_of(r) == name for r in refs):
                for digest_key in [r for r in refs if "@" in r and _repo_of(r) == name]:
                    _drop_key(view.repos, digest_key)
                    lines.append(f"Untagged: {digest_key}")
        self._write_repositories(view.repos)
        return lines

    def _untag_all(self, view: _RemovalView, image_id: str) -> list[str]:
        refs = view.refs_of(image_id)
        for key in refs:
            _drop_key(view.repos, key)
        if refs:
            self._write_repositories(view.repos)
        return [f"Untagged: {key}" for key in refs]

    def _conflict(self, image_id: str, view: _RemovalView, soft: bool, references: bool = True) -> _DeleteConflict | None:
        """Docker's checkImageDeleteConflict: hard (child images, a running container) always;
        soft (references left, a stopped container) when `soft`. Caller holds the lock."""
        if view.children_of(image_id):
            return _DeleteConflict(image_id, True, False, "image has dependent child images")
        using = view.using(image_id, view.chains_of(image_id))
        running = [cid for cid, is_running in using if is_running]
        if running:
            return _DeleteConflict(image_id, True, True, f"image is being used by running container {running[0][:12]}")
        if soft and references and view.refs_of(image_id):
            return _DeleteConflict(image_id, False, False, "image is referenced in multiple repositories")
        if soft and using:
            return _DeleteConflict(image_id, False, True, f"image is being used by stopped container {using[0][0][:12]}")
        return None

    def _delete_chain(self, image_id: str, view: _RemovalView, lines: list[str], force: bool, prune: bool,
                      quiet: bool) -> None:
        """Docker's imageDeleteHelper, its recursion as a loop: delete the image unless a conflict
        stops it (raised, or with `quiet` swallowed as Docker does), then with `prune` its parent,
        quietly and unforced, and so on up. Appends the report lines; an event per image."""
        start = 0  # the first image's report includes the untag lines before it
        while True:
            conflict = self._conflict(image_id, view, soft=not force)
            if conflict is not None:
                events.image_removal(self.config, image_id, lines[start:])
                if quiet and (conflict.used or not view.dangling(image_id)):
                    return
                raise Conflict(conflict.message)
            lines.extend(self._untag_all(view, image_id))  # forced past a soft conflict: every name goes
            lines.extend(self._delete_image(image_id, view.chains_of(image_id)))
            events.image_removal(self.config, image_id, lines[start:])
            parent = view.forget(image_id)
            if not prune or not parent:
                return
            image_id, force, quiet, start = parent, False, True, len(lines)

    def _delete_image(self, image_id: str, chains: list[str]) -> list[str]:
        """Delete the config and the image's layers (`chains`) that nothing else uses (caller
        holds the lock)."""
        import shutil

        hex_id = hex_of(image_id)
        (self.imagedb / "content" / "sha256" / hex_id).unlink(missing_ok=True)
        shutil.rmtree(self.imagedb / "metadata" / "sha256" / hex_id, ignore_errors=True)
        lines = [f"Deleted: {image_id}"]
        used = self._used_layers(exclude_image=image_id)
        for chain in reversed(chains):
            if chain in used or not self.has_layer(chain):
                continue
            self._delete_layer(chain)
            lines.append(f"Deleted: {chain}")
        return lines

    def prune(self, all_images: bool = False, selected: Callable[[ImageRecord], bool] | None = None) -> list[str]:
        """Docker's ImagePrune: the dangling images (no tag, no child image), or with `all_images`
        every image that is not intermediate, each removed as an unforced `rmi` (by its references,
        or by ID when it has none), so what a container uses stays and each removal takes its
        untagged parents along; then the layers no image or container uses (what a killed pull
        left: see PullJournal). Children before parents, so a chain goes in one pass. `selected`: prune's
        filters (until, label): an image it keeps is not removed."""
        lines: list[str] = []
        records = self.list_images()
        children = children_by_parent(records)
        for record in _descendants_first(records):
            refs = record.repo_tags + record.repo_digests
            if children.get(record.id) and (not refs or not all_images):
                continue  # intermediate (goes with its last child), or not dangling
            if refs and record.repo_tags and not all_images:
                continue
            if selected is not None and not selected(record):
                continue
            for name in refs or [record.id]:
                try:
                    lines.extend(self.remove(name))
                except (NotFound, Conflict):
                    continue  # in use (kept, as Docker keeps it), or gone with a child's chain
        self.collect_orphan_rw_layers()
        lines.extend(f"Deleted: {chain}" for chain in self.prune_unreferenced_layers())
        return lines


@dataclass
class _DeleteConflict:
    """Why an image cannot be deleted (Docker's imageDeleteConflict): `hard` ones even forced;
    `used`: a container uses the image."""

    image_id: str
    hard: bool
    used: bool
    reason: str

    @property
    def message(self) -> str:
        forced = "cannot be forced" if self.hard else "must be forced"
        return f"conflict: unable to delete {_short(self.image_id)} ({forced}) - {self.reason}"


@dataclass
class _RemovalView:
    """One removal's reading of the store (under its lock), kept current as it untags and deletes.
    An image's chain IDs are read from its config once per removal (`chains_of`), however many of
    the removal's checks (in use? conflict? which layers go?) ask for them."""

    repos: dict[str, dict[str, str]]
    parents: dict[str, str]  # image -> its stored parent
    uses: Sequence[ContainerUse]
    mounts: dict[str, str]  # container -> the chain ID its rw layer sits on
    read_chains: Callable[[str], list[str]]  # image -> its chain IDs, from its config file
    children: dict[str, set[str]] = field(default_factory=dict)
    chains: dict[str, list[str]] = field(default_factory=dict)  # read_chains's answers so far

    def __post_init__(self) -> None:
        for child, parent in self.parents.items():
            self.children.setdefault(parent, set()).add(child)

    def refs_of(self, image_id: str) -> list[str]:
        """The repositories.json keys naming the image, tags first (sorted)."""
        keys = [key for refs in self.repos.values() for key, value in refs.items() if value == image_id]
        return sorted(keys, key=lambda k: ("@" in k, k))

    def children_of(self, image_id: str) -> set[str]:
        return self.children.get(image_id, set())

    def chains_of(self, image_id: str) -> list[str]:
        if image_id not in self.chains:
            self.chains[image_id] = self.read_chains(image_id)
        return self.chains[image_id]

    def dangling(self, image_id: str) -> bool:
        return not self.refs_of(image_id) and not self.children_of(image_id)

    def using(self, image_id: str, chains: list[str]) -> list[tuple[str, bool]]:
        """(container ID, running?) for containers made from this image, and for rw layers on its
        top layer whose record is not a listed container (`ps -a` shows it as dead, so it may be
        named; a rw layer with no record at all is an orphan, collected before)."""
        using = {u.id: u.running for u in self.uses if u.image_id == image_id}
        known = {u.id for u in self.uses if u.image_id is not None}
        recorded = {u.id for u in self.uses}
        top = chains[-1] if chains else None
        for cid, parent in self.mounts.items():
            if top and parent == top and cid not in known and cid in recorded:
                using.setdefault(cid, False)
        return sorted(using.items())

    def forget(self, image_id: str) -> str:
        """The image was deleted: it is no longer its parent's child. Returns that parent ("" if none)."""
        parent = self.parents.pop(image_id, "")
        if parent:
            self.children_of(parent).discard(image_id)
        return parent


def children_by_parent(records: Iterable[ImageRecord]) -> dict[str, list[str]]:
    """Parent image ID -> the IDs of its child images, among `records` (every stored image, for
    Docker's rules: an untagged image with a child is intermediate, one without is dangling)."""
    children: dict[str, list[str]] = {}
    for record in records:
        if record.parent:
            children.setdefault(record.parent, []).append(record.id)
    return children


def _descendants_first(records: list[ImageRecord]) -> list[ImageRecord]:
    """Deepest in its parent chain first (a child before its parent), newest first among equals."""
    parent_of = {r.id: r.parent for r in records}

    def depth(image_id: str) -> int:
        steps, seen = 0, {image_id}
        while parent_of.get(image_id) and parent_of[image_id] not in seen:
            image_id = parent_of[image_id]
            seen.add(image_id)
            steps += 1
        return steps

    return sorted(records, key=lambda r: depth(r.id), reverse=True)  # stable: newest first kept


def _single_reference(refs: list[str]) -> bool:
    """Docker's isSingleReference: at least one reference, at most one tag, and all of them in one
    repository (a tag's repository's digests count as the same reference)."""
    if len(refs) <= 1:
        return len(refs) == 1
    tags = [r for r in refs if "@" not in r]
    if len(tags) > 1:
        return False
    digest_repos = {_repo_of(r) for r in refs if "@" in r}
    single = tags[0] if tags else refs[0]
    return len(digest_repos) == 1 and _repo_of(single) in digest_repos


def _short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


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
