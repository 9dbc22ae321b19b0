"""Reading a container: Docker's `inspect` JSON of a record, and `top` (its processes as `ps` shows them).

Read-only: nothing here changes a record or the host.
"""

from __future__ import annotations

from pathlib import Path

from engine.config import EngineConfig
from engine.container.cleanup import best_effort, container_cgroup
from engine.container.mounts import mount_points
from engine.container.state import ContainerRecord, find_container
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

    result = subprocess.run(["ps", *args], capture_output=True, text=True, check=False)
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
    """Docker-like `inspect` JSON."""
    v2, host_config = record.to_disk()
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
    return {
        "Id": record.id,
        "Created": record.created,
        "Path": record.path,
        "Args": record.args,
        "State": record.state_dict(),
        "Image": record.image_id,
        "ResolvConfPath": str(d / "resolv.conf"),
        "HostnamePath": str(d / "hostname"),
        "HostsPath": str(d / "hosts"),
        "LogPath": "" if (host_config.get("LogConfig") or {}).get("Type") == "none" else str(record.log_path(config)),
        "Name": "/" + record.name,
        "RestartCount": record.restart_count,
        "Driver": "overlay2",
        "Platform": record.platform,
        "HostConfig": host_config | {"Links": _shown_links(config, record)},
        "GraphDriver": graph,
        "Mounts": mount_points(record),
        "Config": record.config,
        "NetworkSettings": _network_settings(config, record),
    }


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


def _network_settings(config: EngineConfig, record: ContainerRecord) -> dict[str, Any]:
    """The record's NetworkSettings (written at the start), with `Networks` as the container's
    endpoint record says now while it runs: `network connect`/`disconnect` change that record, not
    the container's, and Docker's inspect shows them at once."""
    settings = dict(record.network)
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
