"""Engine API endpoints: networks (see docs/api.md).

Docker's network bodies and queries become `engine.api.networks` calls. Invariant: a body is
checked whole (types, driver, IPAM, refused options named) before anything is created, so a bad
request gets its 400 and leaves no bridge, address or record behind.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from engine.api import networks as api
from engine.errors import InvalidArgument
from engine.network.ipamconfig import SubnetRequest
from engine.service.context import engine_config, json_body, query_bool
from engine.service.filters import filter_pairs

routes = web.RouteTableDef()

_CREATE_FIELDS = {"Name", "CheckDuplicate", "Driver", "Internal", "Attachable", "Ingress", "IPAM", "EnableIPv6",
                  "EnableIPv4", "Options", "Labels", "Scope", "ConfigOnly", "ConfigFrom"}


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidArgument(f"{what}: the body must be a JSON object")
    return body


def _typed(body: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = body.get(key)
    if value is not None and not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise InvalidArgument(f"{what}: {key} must be {names.replace('str', 'a string').replace('dict', 'an object')}")
    return value


def _labels(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidArgument(f"{what}: Labels must be an object of strings")
    return dict(value)


def create_spec(body: Any) -> api.CreateNetwork:
    """Docker's NetworkCreateRequest -> CreateNetwork; what dockui cannot do is refused by name."""
    what = "network create"
    body = _object(body, what)
    unknown = sorted(set(body) - _CREATE_FIELDS)
    if unknown:
        raise InvalidArgument(f"{what}: unknown field {unknown[0]}")
    name = _typed(body, "Name", str, what)
    if not name:
        raise InvalidArgument(f"{what}: Name is required")
    driver = _typed(body, "Driver", str, what) or "bridge"
    if driver != "bridge":
        raise InvalidArgument(f"{what}: driver {driver!r} is not supported (bridge only)")
    for flag in ("Ingress", "ConfigOnly"):
        if _typed(body, flag, bool, what):
            raise InvalidArgument(f"{what}: {flag} is not supported")
    ipv6 = bool(_typed(body, "EnableIPv6", bool, what))
    if _typed(body, "EnableIPv4", bool, what) is False:  # API 1.48's; true is what every network has
        raise InvalidArgument(f"{what}: EnableIPv4 false (an IPv6-only network) is not supported")
    _typed(body, "Attachable", bool, what)  # a swarm notion: a local bridge takes any container anyway
    if _typed(body, "Options", dict, what):
        raise InvalidArgument(f"{what}: driver Options are not supported")
    internal = bool(_typed(body, "Internal", bool, what))
    _typed(body, "CheckDuplicate", bool, what)  # dockui always refuses a duplicate name (409)
    ipam = _typed(body, "IPAM", dict, what) or {}
    if (ipam.get("Driver") or "default") != "default":
        raise InvalidArgument(f"{what}: IPAM driver {ipam['Driver']!r} is not supported (default only)")
    if ipam.get("Options"):
        raise InvalidArgument(f"{what}: IPAM Options are not supported")
    configs = ipam.get("Config") or []
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        raise InvalidArgument(f"{what}: IPAM.Config must be a list of objects")
    requests = tuple(_ipam_config(c, what) for c in configs)
    if not ipv6:  # Docker ignores an IPv6 config of a network without IPv6
        requests = tuple(r for r in requests if r.version == 4)
    return api.CreateNetwork(name, internal=internal, labels=_labels(body.get("Labels"), what),
                             configs=requests, ipv6=ipv6)


_IPAM_CONFIG_FIELDS = ("Subnet", "IPRange", "Gateway", "AuxiliaryAddresses")


def _ipam_config(config: dict[str, Any], what: str) -> SubnetRequest:
    """One of IPAM.Config: Subnet, IPRange, Gateway, AuxiliaryAddresses (name -> address)."""
    extra = sorted(k for k, v in config.items() if k not in _IPAM_CONFIG_FIELDS and v)
    if extra:
        raise InvalidArgument(f"{what}: IPAM.Config.{extra[0]} is not supported")
    aux = _typed(config, "AuxiliaryAddresses", dict, what) or {}
    if not all(isinstance(v, str) for v in aux.values()):
        raise InvalidArgument(f"{what}: IPAM.Config.AuxiliaryAddresses must be an object of strings")
    return SubnetRequest(_typed(config, "Subnet", str, what) or None, _typed(config, "Gateway", str, what) or None,
                         _typed(config, "IPRange", str, what) or None, tuple(sorted(aux.items())))


@routes.get("/networks")
@routes.get("/networks/")  # moby routes both (moby/moby#24595)
async def list_networks(request: web.Request) -> web.Response:
    network_filter = api.NetworkFilter.parse(filter_pairs(request))
    docs = await asyncio.to_thread(api.list_networks, engine_config(request), network_filter)
    return web.json_response(docs)


@routes.post("/networks/create")
async def create(request: web.Request) -> web.Response:
    spec = create_spec(await json_body(request))
    net = await asyncio.to_thread(api.create, engine_config(request), spec)
    return web.json_response({"Id": net.id, "Warning": ""}, status=201)


@routes.post("/networks/prune")
async def prune(request: web.Request) -> web.Response:
    from engine.api.prune import NETWORK_KEYS, PruneFilter

    filters = PruneFilter.parse(filter_pairs(request), NETWORK_KEYS)
    removed = await asyncio.to_thread(api.prune, engine_config(request), filters)
    return web.json_response({"NetworksDeleted": removed or None})


@routes.get("/networks/{name:.+}")  # moby's {id:.+}: a name may hold "/"
async def inspect(request: web.Request) -> web.Response:
    doc = await asyncio.to_thread(api.inspect, engine_config(request), request.match_info["name"])
    return web.json_response(doc)


@routes.delete("/networks/{name:.+}")
async def remove(request: web.Request) -> web.Response:
    await asyncio.to_thread(api.remove, engine_config(request), request.match_info["name"])
    return web.Response(status=204)


def connection(network: str, body: Any) -> api.Connection:
    """Docker's NetworkConnectRequest: Container, EndpointConfig{IPAMConfig{IPv4Address,
    IPv6Address, LinkLocalIPs}, Aliases, Links, MacAddress}."""
    what = "network connect"
    body = _object(body, what)
    container = _typed(body, "Container", str, what)
    if not container:
        raise InvalidArgument(f"{what}: Container is required")
    endpoint = _typed(body, "EndpointConfig", dict, what) or {}
    aliases = _strings(endpoint, "Aliases", what)
    links = api.parse_links(_strings(endpoint, "Links", what))
    if endpoint.get("DriverOpts"):
        raise InvalidArgument(f"{what}: EndpointConfig.DriverOpts is not supported")
    mac = _typed(endpoint, "MacAddress", str, what) or None
    ipam = _typed(endpoint, "IPAMConfig", dict, what) or {}
    address = _typed(ipam, "IPv4Address", str, what) or None
    address6 = _typed(ipam, "IPv6Address", str, what) or None
    link_local = _strings(ipam, "LinkLocalIPs", what)
    return api.Connection(network, container, address, tuple(aliases), address6, mac, links, tuple(link_local))


def _strings(body: dict[str, Any], key: str, what: str) -> list[str]:
    values = _typed(body, key, list, what) or []
    if not all(isinstance(v, str) for v in values):
        raise InvalidArgument(f"{what}: EndpointConfig.{key} must be a list of strings")
    return values


@routes.post("/networks/{name:.+}/connect")
async def connect(request: web.Request) -> web.Response:
    spec = connection(request.match_info["name"], await json_body(request))
    await asyncio.to_thread(api.connect, engine_config(request), spec)
    return web.Response(status=200)


@routes.post("/networks/{name:.+}/disconnect")
async def disconnect(request: web.Request) -> web.Response:
    what = "network disconnect"
    body = _object(await json_body(request), what)
    container = _typed(body, "Container", str, what)
    if not container:
        raise InvalidArgument(f"{what}: Container is required")
    force = bool(_typed(body, "Force", bool, what)) or query_bool(request, "force")
    await asyncio.to_thread(api.disconnect, engine_config(request), request.match_info["name"], container, force)
    return web.Response(status=200)


def endpoint_links(network_mode: str, net: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A create body's `NetworkingConfig.EndpointsConfig[<its network>]` `Links` (docker-py's
    `create_endpoint_config(links=...)`, compose's service links on a user network) and
    `IPAMConfig.LinkLocalIPs`, checked, as the (HostConfig key, value)s the container keeps: on a
    user network each link is a name only this container resolves there (Docker's embedded DNS),
    the linked container may come later; each link-local address is one more of the interface's."""
    what = "NetworkingConfig.EndpointsConfig"
    configs = net.get("EndpointsConfig") if isinstance(net, dict) else None
    found: tuple[tuple[str, Any], ...] = ()
    for network, endpoint in (configs or {}).items() if isinstance(configs, dict) else ():
        if network not in (network_mode, "default") or not isinstance(endpoint, dict):
            continue
        links = _strings(endpoint, "Links", f"{what}[{network}]")
        if links:
            api.parse_links(links)
            found += ((api.ENDPOINT_LINKS, list(links)),)
        ipam = endpoint.get("IPAMConfig")
        link_local = _strings(ipam, "LinkLocalIPs", f"{what}[{network}].IPAMConfig") if isinstance(ipam, dict) else []
        if link_local:
            from engine.network import ipam as addresses

            found += ((api.ENDPOINT_LINK_LOCAL, addresses.parse_link_local(link_local)),)
    return found
