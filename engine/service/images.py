"""Engine API endpoints: images (see docs/api.md).

A translation between Docker's image endpoints and `engine.api.images`: the query and body in
Docker's words become typed calls, the results Docker's JSON. Pull, push, import and load stream
Docker's JSON progress (engine.service.progress); save streams the archive. Invariant: a request
that fails its checks (unknown image, bad reference, bad filter) gets its status and one-line
message before anything is written, and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
from typing import IO, Any

from aiohttp import web

from engine.api import images as api
from engine.config import EngineConfig
from engine.errors import DockuiError, InvalidArgument, NotFound
from engine.service.context import engine_config, json_response, query_bool
from engine.service.filters import filter_pairs
from engine.service.progress import Emit, Line, error_line, progress_line, push_aux, stream

TYPE_CHECKING = False
if TYPE_CHECKING:
    from engine.image.pull import PullEvent

routes = web.RouteTableDef()

_CHUNK = 1 << 20


def epoch(created: str) -> int:
    """Docker's `Created` seconds from an RFC3339 time (any fraction, Z or an offset); 0 if unreadable."""
    from engine.util.timefmt import parse_rfc3339

    return int(parse_rfc3339(created) or 0)


def summary(item: api.ListedImage, shared: dict[str, int] | None = None) -> dict[str, Any]:
    """One row of the list; SharedSize -1 (not computed) unless `shared` has it, as Docker's."""
    record = item.record
    return {
        "Id": record.id,
        "ParentId": record.parent,
        "RepoTags": list(item.repo_tags),
        "RepoDigests": list(item.repo_digests),
        "Created": epoch(record.created),
        "Size": record.size,
        "SharedSize": (shared or {}).get(record.id, -1),
        "VirtualSize": record.size,
        "Labels": item.labels or None,
        "Containers": -1,
    }


@routes.get("/images/json")
async def list_images(request: web.Request) -> web.Response:
    pairs = filter_pairs(request)
    legacy = request.query.get("filter")  # API < 1.25: a reference pattern
    if legacy:
        pairs.append(("reference", legacy))
    image_filter = api.ImageFilter.parse(pairs)
    config = engine_config(request)
    listed = await asyncio.to_thread(api.list_images, config, image_filter, query_bool(request, "all"))
    shared = await asyncio.to_thread(api.shared_sizes, config) if query_bool(request, "shared-size") else None
    return web.json_response([summary(item, shared) for item in listed])


@routes.get("/images/search")
async def search(request: web.Request) -> web.Response:  # noqa: ARG001
    """Refused in Docker's words (404): registries' search APIs are not used by dockui."""
    raise NotFound("image search is not supported: dockui pulls by reference and does not query registry search APIs")


# ---- create: pull or import ------------------------------------------------------------------------


def _pull_reference(from_image: str, tag: str) -> str:
    if not tag:
        return from_image
    if tag.startswith("sha256:"):
        return f"{from_image}@{tag}"
    return f"{from_image}:{tag}"


@routes.post("/images/create")
async def create(request: web.Request) -> web.StreamResponse:
    config = engine_config(request)
    from_image = request.query.get("fromImage", "")
    from_src = request.query.get("fromSrc", "")
    if from_image and from_src:
        raise InvalidArgument("fromImage and fromSrc are mutually exclusive")
    if from_src:
        return await _import(request, config, from_src)
    if not from_image:
        raise InvalidArgument("fromImage or fromSrc is required")
    ref = _pull_reference(from_image, request.query.get("tag", ""))
    from engine.image.reference import parse_reference

    parse_reference(ref)  # a bad reference is a 400 before the stream
    platform = request.query.get("platform") or None
    login = registry_login(request.headers.get("X-Registry-Auth", ""))

    def work(emit: Emit, cancel: threading.Event) -> tuple[Line, ...]:
        result = api.pull(config, ref, platform, progress=lambda event: emit(progress_line(event)), cancel=cancel,
                          login=login)
        return ({"status": result.status},)

    return await stream(request, work, held=lambda line: str(line.get("status", "")).startswith("Pulling from"))


async def spool_body(request: web.Request, config: EngineConfig) -> IO[bytes]:
    """The request body in an unlinked temp file under the root (archives can be large)."""
    config.tmp_dir.mkdir(parents=True, exist_ok=True)
    spool = tempfile.TemporaryFile(dir=config.tmp_dir, prefix="upload-")
    try:
        async for chunk in request.content.iter_chunked(_CHUNK):
            await asyncio.to_thread(spool.write, chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


async def _import(request: web.Request, config: EngineConfig, from_src: str) -> web.StreamResponse:
    if from_src != "-":
        raise InvalidArgument(f"importing from a URL is not supported (fromSrc={from_src!r}): send the tarball as the body with fromSrc=-")
    repo, tag = request.query.get("repo", ""), request.query.get("tag", "")
    ref = (f"{repo}:{tag}" if tag else repo) or None
    changes = request.query.getall("changes", [])
    from engine.image.changes import parse_changes

    parse_changes(changes)  # a bad instruction is a 400 before the body is read
    message = request.query.get("message", "")
    architecture = import_architecture(request.query.get("platform", ""))
    if ref is not None:
        from engine.image.reference import parse_reference

        parse_reference(ref)
    spool = await spool_body(request, config)

    def work(emit: Emit, cancel: threading.Event) -> tuple[Line, ...]:  # noqa: ARG001
        with spool:
            record = api.import_tarball(config, spool, ref, changes=changes, message=message, architecture=architecture)
        return ({"status": record.id},)

    return await stream(request, work)


def import_architecture(platform: str) -> str | None:
    """The architecture an import's `platform` names (None: the host's); linux only, as moby's."""
    from engine.image.manifest import parse_platform

    if not platform:
        return None
    parsed = parse_platform(platform).normalised()
    if parsed.os != "linux":
        raise InvalidArgument("operating system is not supported")
    return parsed.architecture


# ---- one image ---------------------------------------------------------------------------------------


@routes.get("/images/{name:.+}/json")
async def inspect(request: web.Request) -> web.Response:
    body = await asyncio.to_thread(api.inspect, engine_config(request), request.match_info["name"])
    return web.json_response(body)


@routes.get("/images/{name:.+}/history")
async def history(request: web.Request) -> web.Response:
    entries = await asyncio.to_thread(api.history, engine_config(request), request.match_info["name"])
    return web.json_response([
        {"Id": e.image_id, "Created": epoch(e.created), "CreatedBy": e.created_by, "Tags": list(e.tags) or None,
         "Size": e.size, "Comment": e.comment}
        for e in entries
    ])


@routes.post("/images/{name:.+}/tag")
async def tag(request: web.Request) -> web.Response:
    repo, tag_name = request.query.get("repo", ""), request.query.get("tag", "")
    if not repo:
        raise InvalidArgument("repo is required")
    target = f"{repo}:{tag_name}" if tag_name else repo
    _refuse_ambiguous(target)
    await asyncio.to_thread(api.tag, engine_config(request), request.match_info["name"], target)
    return web.Response(status=201)


def _refuse_ambiguous(target: str) -> None:
    """moby's router refuses a repository named like the digest algorithm: `sha256:abc...` would
    read as an image ID."""
    from engine.image.reference import parse_reference

    try:
        name = parse_reference(target).familiar_name
    except InvalidArgument:
        return  # api.tag says what is wrong with it
    if name == "sha256":
        raise InvalidArgument("refusing to create an ambiguous tag using digest algorithm as name")


@routes.delete("/images/{name:.+}")
async def remove(request: web.Request) -> web.Response:
    force = query_bool(request, "force")
    prune = not query_bool(request, "noprune")  # noprune: the untagged parents stay
    removals = await asyncio.to_thread(api.remove, engine_config(request), request.match_info["name"], force, prune)
    return web.json_response([{r.kind: r.value} for r in removals])


@routes.post("/images/prune")
async def prune(request: web.Request) -> web.Response:
    from engine.api.prune import IMAGE_KEYS, PruneFilter

    filters = PruneFilter.parse(filter_pairs(request), IMAGE_KEYS)
    all_images = filters.flag is False  # dangling=false: every unused image
    removals, freed = await asyncio.to_thread(api.prune, engine_config(request), all_images, filters)
    return web.json_response({"ImagesDeleted": [{r.kind: r.value} for r in removals] or None, "SpaceReclaimed": freed})


# ---- registries -----------------------------------------------------------------------------------


@routes.post("/images/{name:.+}/push")
async def push(request: web.Request) -> web.StreamResponse:
    config = engine_config(request)
    name, tag_name = request.match_info["name"], request.query.get("tag", "")
    ref = f"{name}:{tag_name}" if tag_name else name
    await asyncio.to_thread(api.resolve, config, ref)  # an unknown image is a 404 before the stream
    login = registry_login(request.headers.get("X-Registry-Auth", ""))

    def work(emit: Emit, cancel: threading.Event) -> tuple[Line, ...]:  # noqa: ARG001
        def progress(event: PullEvent) -> None:
            emit(progress_line(event))
            aux = push_aux(event)
            if aux is not None:
                emit(aux)

        api.push(config, ref, progress=progress, login=login)
        return ()

    return await stream(request, work, held=lambda line: str(line.get("status", "")).startswith("The push refers"))


@routes.get("/distribution/{name:.+}/json")
async def distribution(request: web.Request) -> web.Response:
    """Docker's distribution inspect: the registry's descriptor and platforms, nothing pulled."""
    login = registry_login(request.headers.get("X-Registry-Auth", ""))
    found = await asyncio.to_thread(api.distribution, engine_config(request), request.match_info["name"], login)
    platforms = [{"architecture": arch, "os": os_name, **({"variant": variant} if variant else {})}
                 for os_name, arch, variant in found.platforms]
    return json_response({"Descriptor": {"mediaType": found.media_type, "digest": found.digest, "size": found.size},
                          "Platforms": platforms})


def registry_login(header: str) -> api.RegistryLogin | None:
    """Docker's X-Registry-Auth: base64url of {"username", "password", "serveraddress"}; None when
    it carries no username (the docker CLI sends `{}` without a login): the stored credentials apply."""
    if not header.strip():
        return None
    import base64
    import json

    try:
        data = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, RecursionError):  # RecursionError: `[[[...` thousands deep
        raise InvalidArgument("X-Registry-Auth is not base64-encoded JSON") from None
    if not isinstance(data, dict) or not data.get("username"):
        return None
    if not isinstance(data["username"], str) or not isinstance(data.get("password", ""), str):
        raise InvalidArgument("X-Registry-Auth: username and password must be strings")
    return api.RegistryLogin(data["username"], data.get("password") or "")


# ---- archives ---------------------------------------------------------------------------------------


@routes.get("/images/get")
async def save_many(request: web.Request) -> web.StreamResponse:
    names = request.query.getall("names", [])
    if not names:
        raise InvalidArgument("names is required")
    return await _save(request, names)


@routes.get("/images/{name:.+}/get")
async def save_one(request: web.Request) -> web.StreamResponse:
    return await _save(request, [request.match_info["name"]])


async def _save(request: web.Request, names: list[str]) -> web.StreamResponse:
    """The archive is written to an unlinked temp file first, so a failure is still a status."""
    config = engine_config(request)
    config.tmp_dir.mkdir(parents=True, exist_ok=True)
    spool = tempfile.TemporaryFile(dir=config.tmp_dir, prefix="save-")
    try:
        await asyncio.to_thread(api.save, config, names, spool)
        spool.seek(0)
        response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
        await response.prepare(request)
        while chunk := await asyncio.to_thread(spool.read, _CHUNK):
            await response.write(chunk)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response
    finally:
        spool.close()


@routes.post("/images/load")
async def load(request: web.Request) -> web.StreamResponse:
    """Docker's `quiet` hides progress only (dockui's load has none): the loaded names are always said."""
    config = engine_config(request)
    spool = await spool_body(request, config)

    def work(emit: Emit, cancel: threading.Event) -> tuple[Line, ...]:  # noqa: ARG001
        with spool:
            try:
                loaded = api.load(config, spool)
            except DockuiError as exc:  # Docker answers 200 and says why in the stream (docker-py's ImageLoadError)
                return (error_line(exc),)
        lines = []
        for item in loaded:
            for name in item.tags or (None,):
                text = f"Loaded image: {name}\n" if name else f"Loaded image ID: {item.image_id}\n"
                lines.append({"stream": text})
        return tuple(lines)

    return await stream(request, work)
