"""Engine API endpoints: `POST /build` (the classic builder) and `POST /build/prune` (docs/build.md).

The body is the build context, a tar (plain or gzip), spooled under the root and unpacked into a
private directory there; the query is Docker's (`dockerfile`, `t` repeated, `buildargs`, `labels`,
`q`, `nocache`, `rm`, `forcerm`, `target`, `networkmode`, `pull`, `platform`). The build runs on a
worker thread through `engine.api.build`, its lines streamed as Docker sends them:
`{"stream": "Step 1/3 : FROM busybox\\n"}`, `{"aux": {"ID": "sha256:..."}}` at the end of each
stage, and a failure as the last line, `{"errorDetail": {"code": N, "message": ...}, "error": ...}`
(the docker CLI exits with that code).

Invariants: a request refused by its checks (a BuildKit session, a remote context, a bad Dockerfile,
a bad query value) is an HTTP error before the first line; the unpacked context is removed when the
build ends, whatever its outcome; a client that goes away cancels the build (its running RUN
container is removed; completed steps stay, as in Docker).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from pathlib import Path, PurePosixPath
from typing import Any

from aiohttp import web

from engine.api import build as api
from engine.config import EngineConfig
from engine.errors import InvalidArgument
from engine.service.context import SPAWNER, engine_config, json_response, query_bool
from engine.service.progress import Emit, Line, stream

routes = web.RouteTableDef()

# Query parameters of the docker CLI's classic build the builder does not act on; values other than
# these (Docker's own defaults) are refused by name rather than ignored.
IGNORED_AT_DEFAULT = {"memory": ("", "0"), "memswap": ("", "0"), "cpushares": ("", "0"), "cpusetcpus": ("",),
                      "cpusetmems": ("",), "cpuperiod": ("", "0"), "cpuquota": ("", "0"), "shmsize": ("", "0"),
                      "cgroupparent": ("",), "isolation": ("", "default"), "squash": ("", "0", "false"),
                      "extrahosts": ("",), "outputs": ("", "[]", "null"), "cachefrom": ("", "[]", "null"),
                      "ulimits": ("", "[]", "null"), "securityopt": ("", "[]", "null")}


def _json_map(request: web.Request, name: str) -> dict[str, Any]:
    raw = request.query.get(name)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: `[[[...` thousands deep
        raise InvalidArgument(f"invalid {name}: {raw[:200]!r} is not JSON") from None
    if value is None:  # Go's client sends a nil map as `null`
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str | None) for v in value.values()):
        raise InvalidArgument(f"invalid {name}: expected a JSON object of strings")
    return value


def _dockerfile_name(request: web.Request) -> str:
    name = request.query.get("dockerfile") or "Dockerfile"
    clean = PurePosixPath("/" + name)
    if ".." in clean.parts:
        raise InvalidArgument(f"the Dockerfile ({name}) must be within the build context")
    return str(clean).lstrip("/")


def _check_query(request: web.Request) -> None:
    if request.query.get("version") == "2":
        raise InvalidArgument("BuildKit is not supported by dockui: build with the classic builder "
                              "(DOCKER_BUILDKIT=0)")
    if request.query.get("remote"):
        raise InvalidArgument("a remote build context is not supported: dockui never reaches the network "
                              "(send the context as the body)")
    for name, defaults in IGNORED_AT_DEFAULT.items():
        if request.query.get(name, "") not in defaults:
            raise InvalidArgument(f"build option {name}={request.query[name]!r} is not supported by dockui's builder")


def _request(request: web.Request, context: Path, dockerfile: str) -> api.BuildRequest:
    if request.query.get("platform"):
        from engine.image.manifest import parse_platform

        parse_platform(request.query["platform"])  # a malformed specifier in moby's words; the builder says which it builds
    args = tuple((k, v) for k, v in _json_map(request, "buildargs").items() if v is not None)
    labels = tuple((k, v or "") for k, v in _json_map(request, "labels").items())
    return api.BuildRequest(
        context=context, dockerfile=dockerfile, tags=tuple(request.query.getall("t", [])), build_args=args,
        labels=labels, target=request.query.get("target") or None, no_cache=query_bool(request, "nocache"),
        network=request.query.get("networkmode") or "bridge", remove=query_bool(request, "rm", True),
        force_remove=query_bool(request, "forcerm"), pull=query_bool(request, "pull"),
        platform=request.query.get("platform") or None,
    )


def _unpack(config: EngineConfig, spool: Any) -> Path:
    from engine.build.context import unpack_context

    config.tmp_dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="build-context-", dir=config.tmp_dir))
    try:
        with spool:
            unpack_context(spool, root)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return root


def _read_dockerfile(root: Path, name: str) -> str:
    """The context's Dockerfile, its symlinks resolved inside the context only (the request's tar
    may make it a link to a host file or to /dev/zero)."""
    path = (root / name).resolve()
    if root.resolve() not in path.parents or not path.is_file():
        raise InvalidArgument(f"Cannot locate specified Dockerfile: {name}")
    return path.read_text(errors="replace")


@routes.post("/build")
async def build(request: web.Request) -> web.StreamResponse:
    import asyncio

    from engine.service.images import spool_body

    config = engine_config(request)
    _check_query(request)
    name = _dockerfile_name(request)
    quiet = query_bool(request, "q")
    spool = await spool_body(request, config)
    root = await asyncio.to_thread(_unpack, config, spool)
    try:
        dockerfile = await asyncio.to_thread(_read_dockerfile, root, name)
        build_request = api.check(_request(request, root, dockerfile))  # a 400 before the stream
        spawner = request.app[SPAWNER]

        def work(emit: Emit, cancel: threading.Event) -> tuple[Line, ...]:
            def say(text: str) -> None:
                if not quiet and text:
                    emit({"stream": text})

            output = api.BuildOutput(say, lambda image_id: emit({"aux": {"ID": image_id}}))
            try:
                result = api.build(config, build_request, output, spawner, cancel.is_set)  # type: ignore[arg-type]
            except api.StepFailed as exc:
                return (_failure(str(exc), exc.code),)
            except api.BuildCancelled:
                return ()
            return ({"stream": result.image_id + "\n"},) if quiet else ()

        return await stream(request, work)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _failure(message: str, code: int) -> Line:
    return {"errorDetail": {"code": code, "message": message}, "error": message}


@routes.post("/build/prune")
async def prune(request: web.Request) -> web.Response:
    import asyncio

    if request.query.get("filters") not in (None, "", "{}"):
        raise InvalidArgument("build cache prune filters are not supported by dockui")
    result = await asyncio.to_thread(api.prune_cache, engine_config(request))
    return json_response({"CachesDeleted": list(result.deleted), "SpaceReclaimed": result.space_reclaimed})
