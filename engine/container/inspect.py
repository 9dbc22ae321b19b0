"""Reading a container: Docker's `inspect` JSON of a record, and `top` (its processes as `ps` shows them).

Read-only: nothing here changes a record or the host. `inspect` builds a new document: what it
takes from the record is deep-copied where it enters, and the shaping makes new dicts, so neither
it nor a caller editing the document (the service adds SizeRw) changes the record the index may
keep in memory and the next save writes.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from engine.config import DEFAULTS, EngineConfig
from engine.container.cleanup import best_effort, container_cgroup
from engine.container.logs import keeps_no_log
from engine.container.mounts import mount_points
from engine.container.state import PENDING_NETWORKS, ContainerRecord, find_container
from engine.errors import Conflict, DockuiError, InvalidArgument

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any


def top(config: EngineConfig, ref: str, ps_args: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """The container's processes as `ps -ef` shows them (host pids, like Docker)."""
    record = find_container(config, ref)
    if not record.running:
        raise Conflict(f"container {record.id} is not running")  # moby's GetRunningTask
    pids = container_cgroup(config, record).pids()
    if not pids:
        return _listed(config, record, [], [])
    args = ps_args or ["-ef"]
    import subprocess

    # Without COLUMNS (a service started from a shell may have one): ps would cut CMD to that width.
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    result = subprocess.run(["ps", *args], capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise DockuiError(f"ps: {result.stderr.strip()}")
    lines = result.stdout.splitlines()
    headers = lines[0].split()
    if "PID" not in headers:
        raise InvalidArgument("Couldn't find PID field in ps output")
    pid_col = headers.index("PID")
    wanted = set(pids)
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(headers) - 1)
        if len(fields) > pid_col and fields[pid_col].isdigit() and int(fields[pid_col]) in wanted:
            rows.append(fields)
    return _listed(config, record, headers, rows)


def _listed(config: EngineConfig, record: ContainerRecord, headers: list[str], rows: list[list[str]],
            ) -> tuple[list[str], list[list[str]]]:
    """moby logs a `top` event once the processes are listed."""
    from engine import events

    events.container(config, "top", record)
    return headers, rows


def inspect(config: EngineConfig, record: ContainerRecord) -> dict[str, Any]:
    """Docker's `inspect` JSON of the record: every key of Docker's, the planned networks of a
    container that never ran (one document for the CLI and the Engine API)."""
    d = record.dir(config)
    rw = Path(record.rw_layer) if record.rw_layer else None
    graph: dict[str, Any] = {"Name": "overlay2", "Data": None}
    if rw is not None:
        lower = ""
        with best_effort():
            from engine.image.store import ImageStore

            lower = ":".join(str(p) for p in reversed(ImageStore(config).layer_dirs(record.image_id)))
        graph["Data"] = {
            "LowerDir": lower,
            "UpperDir": str(rw / "diff"),
            "WorkDir": str(rw / "work"),
            "MergedDir": str(rw / "merged"),
        }
    data = {
        "Id": record.id,
        "Created": record.created,
        "Path": record.path,
        "Args": list(record.args),
        "State": copy.deepcopy(record.state_dict()),
        "Image": record.image_id,
        "ResolvConfPath": str(d / "resolv.conf"),
        "HostnamePath": str(d / "hostname"),
        "HostsPath": str(d / "hosts"),
        "LogPath": "" if keeps_no_log(record) else str(record.log_path(config)),
        "Name": "/" + record.name,
        "RestartCount": record.restart_count,
        "Driver": "overlay2",
        "Platform": record.platform,
        "HostConfig": copy.deepcopy(record.host_config) | {"Links": _shown_links(config, record),
                                                           "PortBindings": _port_bindings(record)},
        "GraphDriver": graph,
        "Mounts": mount_points(record),
        "Config": copy.deepcopy(record.config),
        "NetworkSettings": _network_settings(config, record),
    }
    _network_entries(data, record)
    return _docker_shape(data, record)


def _shown_links(config: EngineConfig, record: ContainerRecord) -> list[str] | None:
    """HostConfig.Links as moby's inspect shows them ("/db:/web/alias"), each link's container
    resolved now (its current name; a link to a container removed since is not shown, as moby's
    link index forgets it). The record keeps the links as given: the next start reads them."""
    given = record.host_config.get("Links") or []
    if not given:
        return None
    from engine.network import links

    children = []
    for text in given:
        try:
            child = find_container(config, links.parse_link(text)[0])
        except DockuiError:
            continue
        children.append(links.Linker(child.id, child.name))
    return links.shown_links(children, links.Linker(record.id, record.name, tuple(given))) or None


def _port_bindings(record: ContainerRecord) -> dict[str, list[dict[str, str]]]:
    """HostConfig.PortBindings as Docker keeps them, from the record's `-p` specs (PublishSpecs): each
    container port ("80/tcp") with its host bindings, HostIp "" for every address and HostPort ""
    for any free port; a range is one entry per port, as the docker CLI sends it."""
    from engine.network.portmap import parse_publish

    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in record.host_config.get("PublishSpecs") or []:
        try:
            requests = parse_publish(spec)
        except DockuiError:  # checked at create: a record written otherwise shows what it can
            continue
        for req in requests:
            bindings.setdefault(f"{req.container_port}/{req.proto}", []).append(
                {"HostIp": req.host_ip, "HostPort": str(req.host_port) if req.host_port else ""})
    return bindings


def _network_settings(config: EngineConfig, record: ContainerRecord) -> dict[str, Any]:
    """The record's NetworkSettings (written at the start), with `Networks` as the container's
    endpoint record says now while it runs: `network connect`/`disconnect` change that record, not
    the container's, and Docker's inspect shows them at once."""
    settings = copy.deepcopy(record.network)
    if record.status not in ("running", "paused"):
        return _released(config, record, settings)
    from engine.container.status import published_ports

    settings["Ports"] = published_ports(record)  # an exposed port too, bound to nothing (Docker's null)
    from engine.network.records import load_record

    with best_effort():
        rec = load_record(config, record.id)
        if rec and rec.attached and rec.pid == record.pid:
            started = settings.get("Networks") or {}
            settings["Networks"] = {ep.network: {**(started.get(ep.network) or {}), **ep.settings()} for ep in rec.endpoints}
    return settings


def _released(config: EngineConfig, record: ContainerRecord, settings: dict[str, Any]) -> dict[str, Any]:
    """A container that does not run holds no address and no published port, as Docker's releases
    them at its stop, but keeps its networks with their aliases (its endpoint record keeps them for
    the next start; compose reads them to decide which networks to reconnect before a start)."""
    from engine.network.records import load_record

    settings |= {"Ports": {}, "IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "MacAddress": ""}
    rec = None
    with best_effort():
        rec = load_record(config, record.id)
    if rec is None or not rec.endpoints:  # never ran, or none/host/container: modes
        return settings
    started = settings.get("Networks") or {}
    settings["Networks"] = {
        ep.network: {
            **(started.get(ep.network) or {}), **ep.settings(),
            "IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "MacAddress": "", "EndpointID": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPv6Gateway": "",
        }
        for ep in rec.endpoints
    }
    return settings


def _network_entries(data: dict[str, Any], record: ContainerRecord) -> None:
    """Docker lists the networks a container will join before it runs (compose reads them after
    create): an entry per network, with its aliases, until the monitor records the real ones."""
    settings = data.setdefault("NetworkSettings", {})
    if settings.get("Networks"):
        return
    mode = record.host_config.get("NetworkMode") or "bridge"
    if mode.startswith("container:") or mode == "none":
        settings["Networks"] = {} if mode.startswith("container:") else {"none": _endpoint_entry([])}
        return
    settings["Networks"] = {mode: _endpoint_entry(list(record.host_config.get("NetworkAliases") or []))}
    for entry in record.host_config.get(PENDING_NETWORKS) or []:  # connected before its first start
        from engine.container.pending_networks import PendingNetwork

        settings["Networks"][entry["Network"]] = (_endpoint_entry(list(entry.get("Aliases") or []))
                                                  | PendingNetwork.from_json(entry).settings())


# Docker's inspect has these keys whatever the container asked for; dockui's record keeps only what
# it acts on, so the rest are filled in with the values Docker reports for a container that did not
# set them (clients index them directly: docker-py reads HostConfig.Isolation and Runtime).
HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "VolumeDriver": "", "ConsoleSize": [0, 0], "Cgroup": "", "CgroupParent": "", "OomScoreAdj": 0,
    "UTSMode": "", "UsernsMode": "", "Runtime": "runc", "Isolation": "", "BlkioWeightDevice": [],
    "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [],
    "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetMems": "", "DeviceCgroupRules": None,
    "DeviceRequests": None, "MemorySwappiness": None, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0,
    "IOMaximumBandwidth": 0,
}
NETWORK_SETTINGS_DEFAULTS: dict[str, Any] = {
    "SandboxID": "", "SandboxKey": "", "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
    "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None, "EndpointID": "", "GlobalIPv6Address": "",
    "GlobalIPv6PrefixLen": 0, "IPv6Gateway": "", "Ports": {},
}
TOP_LEVEL_DEFAULTS: dict[str, Any] = {"MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": None}


def _docker_shape(data: dict[str, Any], record: ContainerRecord) -> dict[str, Any]:
    """A new document with every key of Docker's inspect present (Docker's value when dockui has
    none), and each network entry with Docker's endpoint keys; the primary network's IPAMConfig is
    the address the create asked for (Docker's `--ip`)."""
    settings = _with_defaults(data["NetworkSettings"], NETWORK_SETTINGS_DEFAULTS)
    mode = record.host_config.get("NetworkMode") or "bridge"
    primary = "bridge" if mode == "default" else mode
    settings["Networks"] = {name: _shaped_entry(entry, record) if name == primary else _with_defaults(entry, ENDPOINT)
                            for name, entry in (settings.get("Networks") or {}).items()}
    host = _with_defaults(data["HostConfig"], HOST_CONFIG_DEFAULTS)
    for key, paths in (("MaskedPaths", DEFAULTS.masked_paths), ("ReadonlyPaths", DEFAULTS.readonly_paths)):
        if host.get(key) is None:  # moby fills them in at create (none for a privileged container)
            host[key] = None if host.get("Privileged") else list(paths)
    return _with_defaults(data, TOP_LEVEL_DEFAULTS) | {"HostConfig": host, "NetworkSettings": settings}


def _with_defaults(section: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """`section` then each default it lacks (Docker's key order: the keys dockui keeps come first)."""
    return section | {key: copy.deepcopy(value) for key, value in defaults.items() if key not in section}


def _shaped_entry(entry: dict[str, Any], record: ContainerRecord) -> dict[str, Any]:
    """The primary network's entry: every EndpointSettings key, the create's `--ip` as IPAMConfig
    and its endpoint driver options (kept by engine.service) when the entry has none."""
    shaped = _with_defaults(entry, ENDPOINT)
    asked_ip = record.host_config.get("IPAddress")
    driver_opts = record.host_config.get("EndpointDriverOpts")
    if asked_ip and not shaped.get("IPAMConfig"):
        shaped["IPAMConfig"] = {"IPv4Address": asked_ip}
    if driver_opts and not shaped.get("DriverOpts"):
        shaped["DriverOpts"] = dict(driver_opts)
    return shaped


def listed_networks(record: ContainerRecord) -> dict[str, Any]:
    """The Networks of a `containers/json` row: as inspect lists them (the planned ones before the
    first start), each with every key of Docker's EndpointSettings."""
    data: dict[str, Any] = {"NetworkSettings": {"Networks": copy.deepcopy(record.network.get("Networks") or {})}}
    _network_entries(data, record)
    return {name: ENDPOINT | entry for name, entry in data["NetworkSettings"]["Networks"].items()}


def _endpoint_entry(aliases: list[str]) -> dict[str, Any]:
    return ENDPOINT | {"Aliases": aliases or None}


# Docker's EndpointSettings keys, with its values for an endpoint that has none.
ENDPOINT: dict[str, Any] = {
    "IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "", "EndpointID": "", "Gateway": "",
    "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
    "MacAddress": "", "DriverOpts": None,
}
