"""Engine API endpoints of swarm mode, answered as a Docker engine that is not in a swarm.

dockui runs containers on one host and has no swarm mode. Docker's own engine outside a swarm
answers the swarm-scoped endpoints (nodes, services, tasks, secrets, configs, swarm inspect) with
503 and "This node is not a swarm manager..."; `swarm leave` with 503 "This node is not part of a
swarm" (which clients treat as done when they force it). Those answers are given here word for
word, so `docker info`, `docker node ls` and docker-py's teardowns behave as with Docker. Joining or
creating a swarm is refused with 501 (dockui refuses it on purpose). Invariant: nothing here
changes any state.
"""

from __future__ import annotations

from aiohttp import web

from engine.service.context import json_response

routes = web.RouteTableDef()

NOT_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this '
               "node to swarm and try again.")
NOT_IN_SWARM = "This node is not part of a swarm"
REFUSED = "swarm mode is not supported by dockui (a single-host engine): swarm init and join are refused"
UNAVAILABLE = 503
NOT_IMPLEMENTED = 501


def _answer(status: int, message: str):  # noqa: ANN202 - an aiohttp handler
    async def handler(request: web.Request) -> web.Response:  # noqa: ARG001
        return json_response({"message": message}, status=status)

    return handler


for _path in ("/swarm/init", "/swarm/join"):
    routes.post(_path)(_answer(NOT_IMPLEMENTED, REFUSED))
routes.post("/swarm/leave")(_answer(UNAVAILABLE, NOT_IN_SWARM))
for _path in ("/swarm", "/swarm/update", "/swarm/unlock", "/swarm/unlockkey"):
    routes.route("*", _path)(_answer(UNAVAILABLE, NOT_MANAGER))
for _area in ("nodes", "services", "tasks", "secrets", "configs"):
    routes.route("*", f"/{_area}")(_answer(UNAVAILABLE, NOT_MANAGER))
    routes.route("*", f"/{_area}/{{tail:.*}}")(_answer(UNAVAILABLE, NOT_MANAGER))
