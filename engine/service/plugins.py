"""Engine API endpoints of managed plugins, answered as a Docker engine with no plugin installed.

dockui has no plugin system (volume and network drivers are built in: `local` and `bridge`). A
Docker engine on which no plugin was ever installed lists `[]` for `GET /plugins` and answers any
operation on a named plugin with 404 `plugin "NAME" not found`; those answers are given here, so
tools that list plugins (moby's integration suite protects them before every test, `docker plugin
ls`, `docker info`) work unchanged. Installing one (`pull`, `create`, `privileges`, which reads a
remote plugin's manifest) is refused with 501. Invariant: nothing here changes any state.
"""

from __future__ import annotations

from aiohttp import web

from engine.errors import InvalidArgument, NotFound, NotSupported
from engine.service.context import json_response, query_filters

routes = web.RouteTableDef()

FILTERS = ("capability", "enable")  # the keys Docker's plugin list accepts
REFUSED = "plugins are not supported by dockui (volume and network drivers are built in): installing one is refused"


@routes.get("/plugins")
async def list_plugins(request: web.Request) -> web.Response:
    for key in query_filters(request):
        if key not in FILTERS:
            raise InvalidArgument(f"invalid filter '{key}'")
    return json_response([])


@routes.route("*", "/plugins/{verb:pull|create|privileges}")
async def install_plugin(request: web.Request) -> web.Response:  # noqa: ARG001
    raise NotSupported(REFUSED)


@routes.route("*", "/plugins/{name:.+}/{verb:json|enable|disable|push|set|upgrade}")
async def named_plugin(request: web.Request) -> web.Response:
    raise NotFound(f'plugin "{request.match_info["name"]}" not found')


@routes.delete("/plugins/{name:.+}")
async def remove_plugin(request: web.Request) -> web.Response:
    raise NotFound(f'plugin "{request.match_info["name"]}" not found')
