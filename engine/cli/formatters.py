"""Docker's formatter contexts: what a `--format` template reads for each object a verb lists.

Owns, per list verb, the typed row (`Row`: Docker's computed placeholders such as `.RunningFor`,
`.Networks`, `.LocalVolumes`, labels as `a=1,b=2`, `.Label "k"`), the column titles a `table`
template's header shows (docker/cli's SubHeaderContext maps, 20.10), and for `inspect` which JSON
objects are Go maps in Docker's API types (`inspect_value`): they print as `map[k:v]`, their
missing keys are `<no value>` and `index` of a missing label is "" — everything else is a struct.

Imported only when `--format` is a template (it loads engine.util.gotemplate).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from engine.util.gofmt import NO_VALUE, GoMap, NilSlice, go_quote
from engine.util.gotemplate import GoFunc, TemplateData

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any


@dataclass(frozen=True)
class Row(TemplateData):
    """One listed object as Docker's formatter context: `.Name` reads `fields` (a callable is
    computed when first read, as ps's `.Size`); `labels` gives the `.Label "k"` method."""

    type_name: str  # Docker's context type, as Go's errors name it
    fields: Mapping[str, str | None | Callable[[], str]]
    labels: Mapping[str, str] | None = None
    _computed: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def go_type(self) -> str:  # type: ignore[override]
        return self.type_name

    def template_field(self, name: str) -> Any:
        value = self.fields.get(name, NO_VALUE)
        if callable(value):
            if name not in self._computed:
                self._computed[name] = value()
            return self._computed[name]
        return value

    def template_method(self, name: str) -> GoFunc | None:
        if name == "Label" and self.labels is not None:
            labels = self.labels
            return GoFunc(lambda key: labels.get(key, ""), ("string",))
        return None

    def template_json(self) -> Any:
        """docker's MarshalJSON of a context (`--format json`, `{{json .}}`): every field, keys
        sorted, by json.Marshal, which escapes <, > and & (a `<none>` tag is "\u003cnone\u003e")."""
        from engine.util.gofmt import RawJSON, go_json

        text = go_json(self._values())
        return RawJSON(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))

    def _values(self) -> GoMap:
        return GoMap({name: self.template_field(name) for name in self.fields}, elem="string")

    def __str__(self) -> str:
        from engine.util.gofmt import sprint_value

        return sprint_value(self._values())


class HeaderContext(GoMap):
    """docker/cli's SubHeaderContext: the column titles by field name, and `.Label "a.b-c"`
    titled by its last dot-separated part with - and _ as spaces ("b c")."""

    def template_method(self, name: str) -> GoFunc | None:
        if name == "Label":
            return GoFunc(lambda key: key.split(".")[-1].replace("-", " ").replace("_", " "), ("string",))
        return None


CONTAINER_HEADERS = HeaderContext({
    "ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
    "Labels": "LABELS", "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS",
    "Platform": "PLATFORM",
}, elem="string")

IMAGE_HEADERS = HeaderContext({
    "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS", "VirtualSize": "SIZE",
    "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
}, elem="string")

STATS_HEADERS = HeaderContext({
    "Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID", "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}, elem="string")

VOLUME_HEADERS = HeaderContext({
    "Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT", "Labels": "LABELS",
    "Links": "LINKS", "Size": "SIZE", "ID": "ID", "Group": "GROUP", "Availability": "AVAILABILITY", "Status": "STATUS",
}, elem="string")

NETWORK_HEADERS = HeaderContext({
    "ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
    "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT", "IPv4": "IPV4",
}, elem="string")


def go_time(epoch: float) -> str:
    """Go's time.Time.String() in local time: `2024-05-01 10:11:12 +0000 UTC`, a fraction of a
    second (`10:11:12.756386`) only when there is one (pass whole seconds for time.Unix(s, 0)'s)."""
    from datetime import datetime

    local = datetime.fromtimestamp(epoch).astimezone()
    fraction = f".{local.microsecond:06d}".rstrip("0") if local.microsecond else ""
    return f"{local:%Y-%m-%d %H:%M:%S}{fraction} {local:%z} {local.tzname()}"


def ellipsis(text: str, width: int) -> str:
    """docker's Ellipsis: at most `width` characters, the last one `…` when cut."""
    if len(text) <= width:
        return text
    return text[: width - 1] + "…" if width > 1 else text[:width]


def labels_text(labels: Mapping[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in (labels or {}).items())


def container_row(record: Any, *, trunc: bool, running_for: str, status: str, ports: str,
                  size: Callable[[], str], names: str | None = None) -> Row:
    """ps's ContainerContext (docker/cli formatter/container.go) for one container record;
    `names`: the `.Names` text (container_list.names_text), else the container's own name."""
    from engine.container.state import parse_rfc3339

    created = parse_rfc3339(record.created)
    from engine.container.status import command_text

    command = command_text(record)
    labels = record.config.get("Labels") or {}
    mounts = []
    for m in record.mounts:
        if m.get("Type") == "tmpfs" and m.get("Destination") in (record.host_config.get("Tmpfs") or {}):
            continue  # a --tmpfs is no MountPoint in Docker (engine.container.mounts.mount_points)
        name = m.get("Name") or m.get("Source", "")
        mounts.append(ellipsis(name, 15) if trunc else name)
    from engine.container.inspect import listed_networks  # the planned ones too, before the first start

    networks = list(listed_networks(record))
    mode = record.host_config.get("NetworkMode", "")
    if not networks and mode in ("host", "none"):  # docker lists these as the container's network
        networks = [mode]
    fields: dict[str, str | Callable[[], str]] = {
        "ID": record.id[:12] if trunc else record.id,
        "Names": record.name.lstrip("/") if names is None else names,
        "Image": record.image or "<no image>",
        "Command": go_quote(ellipsis(command, 20) if trunc else command),
        "CreatedAt": go_time(int(created)),  # time.Unix(Created, 0): whole seconds
        "RunningFor": running_for,
        "Ports": ports,
        "State": record.status,
        "Status": status,
        "Size": size,
        "Labels": labels_text(labels),
        "Mounts": ",".join(mounts),
        "LocalVolumes": str(sum(1 for m in record.mounts if m.get("Type") == "volume")),
        "Networks": ",".join(networks),
        "Platform": None,  # docker 28's *platforms.Platform, nil in a list's rows (json: null)
    }
    return Row("*formatter.ContainerContext", fields, labels)


def empty_container_row() -> Row:
    """docker ps checks a template against an empty ContainerContext before listing anything."""
    return Row("*formatter.ContainerContext", {**dict.fromkeys(CONTAINER_HEADERS, ""), "Platform": None}, {})


def image_row(fields: Mapping[str, str], labels: Mapping[str, str] | None = None) -> Row:
    """images' imageContext over the row `images --format json` prints."""
    return Row("*formatter.imageContext", dict(fields), labels)


def stats_row(fields: Mapping[str, str]) -> Row:
    """stats' statsContext over a sampler row (docker_row)."""
    return Row("*container.statsContext", dict(fields))


def volume_row(volume: Any, links: str = "N/A", size: str = "N/A") -> Row:
    """volume ls's volumeContext (docker 28's, with the cluster volume's Availability, Group and
    Status as N/A); system df -v gives its links and size."""
    labels = volume.labels or {}
    return Row("*formatter.volumeContext", {
        "Availability": "N/A", "Driver": "local", "Group": "N/A", "Labels": labels_text(labels), "Links": links,
        "Mountpoint": str(volume.mountpoint), "Name": volume.name, "Scope": "local", "Size": size, "Status": "N/A",
    }, labels)


def network_row(*, network_id: str, name: str, driver: str, internal: bool, created: float | None,
                labels: Mapping[str, str] | None, ipv6: bool = False) -> Row:
    """network ls's networkContext."""
    return Row("*network.networkContext", {
        "ID": network_id, "Name": name, "Driver": driver, "Scope": "local", "IPv4": "false",  # no EnableIPv4 in API 1.43
        "IPv6": "true" if ipv6 else "false",
        "Internal": "true" if internal else "false", "Labels": labels_text(labels),
        "CreatedAt": go_time(created) if created is not None else "0001-01-01 00:00:00 +0000 UTC",
    }, labels or {})


# Docker API fields whose Go type is a map (all other JSON objects are structs): string maps first.
_STRING_MAPS = frozenset({"Labels", "Options", "DriverOpts", "Data", "Sysctls", "StorageOpt", "Tmpfs", "Annotations",
                          "AuxiliaryAddresses"})
_MAPS = frozenset({"Ports", "Networks", "ExposedPorts", "Volumes", "Containers", "Status", "Services", "Peers"})
# ... and fields whose Go type is a slice: null there is a nil slice (printed [], as docker prints it)
_SLICES = frozenset({
    "Cmd", "Entrypoint", "Env", "Shell", "OnBuild", "Links", "Binds", "Dns", "DnsOptions", "DnsSearch",
    "ExtraHosts", "CapAdd", "CapDrop", "GroupAdd", "SecurityOpt", "VolumesFrom", "Devices", "DeviceRequests",
    "Ulimits", "Mounts", "Aliases", "Layers", "RepoTags", "RepoDigests", "MaskedPaths", "ReadonlyPaths", "Config",
})


@dataclass(frozen=True)
class OmitEmptyStruct(TemplateData):
    """A Go struct whose omitempty fields Docker's JSON leaves out when empty (a bind's MountPoint
    has no `Name`): a template reads them as their zero value, as the docker CLI's typed inspect
    does, `{{.}}` prints every field in order and `json` encodes what was sent."""

    type_name: str
    fields: Mapping[str, Any]  # every field, zero values filled in
    sent: Mapping[str, Any]

    @property
    def go_type(self) -> str:  # type: ignore[override]
        return self.type_name

    def template_field(self, name: str) -> Any:
        return self.fields.get(name, NO_VALUE)

    def template_json(self) -> Any:
        return self.sent

    def __str__(self) -> str:
        from engine.util.gofmt import sprint_value

        return sprint_value(dict(self.fields))


# (field, parent) -> the Go struct of each element and its fields' zero values, in the struct's order
_OMITEMPTY_ITEMS: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("Mounts", ""): ("container.MountPoint", {"Type": "", "Name": "", "Source": "", "Destination": "", "Driver": "",
                                              "Mode": "", "RW": False, "Propagation": ""}),
    ("Mounts", "HostConfig"): ("mount.Mount", {"Type": "", "Source": "", "Target": "", "ReadOnly": False,
                                               "Consistency": "", "BindOptions": None, "VolumeOptions": None,
                                               "ImageOptions": None, "TmpfsOptions": None, "ClusterOptions": None}),
}


def _omitempty(type_name: str, zero: dict[str, Any], sent: dict[str, Any]) -> OmitEmptyStruct:
    return OmitEmptyStruct(type_name, {**zero, **sent}, sent)


def inspect_value(obj: Any, key: str = "", parent: str = "") -> Any:
    """An inspect object (decoded JSON) with each of Docker's map-typed fields as a GoMap (a nil one
    for null), null slices as NilSlice, and the structs whose empty fields the JSON omits
    (MountPoint, mount.Mount, HostConfig's `Mounts`) reading those as their zero value."""
    if obj is None:
        if key in _STRING_MAPS or key in _MAPS:
            return GoMap(elem="string" if key in _STRING_MAPS else "interface {}", is_nil=True)
        if key in _SLICES and not (key == "Config" and parent != "IPAM"):
            return NilSlice()
        return None
    if isinstance(obj, list):
        items = [inspect_value(v) for v in obj]
        struct = _OMITEMPTY_ITEMS.get((key, parent))
        return [_omitempty(*struct, v) if struct and isinstance(v, dict) else v for v in items]
    if not isinstance(obj, dict):
        return obj
    converted = {k: inspect_value(v, k, key) for k, v in obj.items()}
    if key == "HostConfig" and not parent and "Mounts" not in converted:  # omitempty: a nil slice
        return _omitempty("*container.HostConfig", {**converted, "Mounts": NilSlice()}, converted)
    if key in _STRING_MAPS or (key == "Config" and parent == "LogConfig"):
        return GoMap(converted, elem="string")
    if key in _MAPS:
        return GoMap(converted)
    return converted


# ------------------------------------------------------------------------------------------ version
# docker version's template data (cli/command/system/version.go): versionInfo{Client clientVersion,
# Server *types.Version}. A template reads Go's field names (`.Server.APIVersion`, `.Client.Os`);
# `json` encodes the structs' JSON names in their order, empty `omitempty` fields left out.

def _go_struct(type_name: str, fields: Mapping[str, Any], json_names: Mapping[str, str] | None = None,
               omitempty: frozenset[str] = frozenset()) -> OmitEmptyStruct:
    """A Go struct: its fields by Go name in order, and the JSON encoding/json gives of them."""
    names = json_names or {}
    sent = {names.get(k, k): v for k, v in fields.items() if not (k in omitempty and _is_empty(v))}
    return OmitEmptyStruct(type_name, dict(fields), sent)


def _is_empty(value: Any) -> bool:
    return value is None or value is False or value in ("", 0) or (isinstance(value, list | dict) and not value)


_CLIENT_OMITEMPTY = frozenset({"Platform", "Version", "APIVersion", "DefaultAPIVersion", "GitCommit", "GoVersion",
                               "Os", "Arch", "BuildTime"})
_SERVER_OMITEMPTY = frozenset({"Platform", "Components", "MinAPIVersion", "KernelVersion", "Experimental", "BuildTime"})


def version_info(client: Mapping[str, Any], server: Mapping[str, Any]) -> OmitEmptyStruct:
    """system.versionInfo of the API's two documents (engine.api.info: client_version, version)."""
    platform = (client.get("Platform") or {}).get("Name", "")
    client_struct = _go_struct("system.clientVersion", {
        "Platform": _go_struct("*system.platformInfo", {"Name": platform}) if platform else None,
        "Version": client.get("Version", ""), "APIVersion": client.get("ApiVersion", ""),
        "DefaultAPIVersion": client.get("DefaultAPIVersion", ""), "GitCommit": client.get("GitCommit", ""),
        "GoVersion": client.get("GoVersion", ""), "Os": client.get("Os", ""), "Arch": client.get("Arch", ""),
        "BuildTime": client.get("BuildTime", ""), "Context": client.get("Context", ""),
    }, {"APIVersion": "ApiVersion"}, _CLIENT_OMITEMPTY)
    components = [_go_struct("types.ComponentVersion", {
        "Name": c.get("Name", ""), "Version": c.get("Version", ""),
        "Details": GoMap({k: str(v) for k, v in (c.get("Details") or {}).items()}, elem="string"),
    }, omitempty=frozenset({"Details"})) for c in server.get("Components") or ()]
    server_struct = _go_struct("*types.Version", {
        "Platform": _go_struct("struct { Name string }", {"Name": (server.get("Platform") or {}).get("Name", "")}),
        "Components": components, "Version": server.get("Version", ""), "APIVersion": server.get("ApiVersion", ""),
        "MinAPIVersion": server.get("MinAPIVersion", ""), "GitCommit": server.get("GitCommit", ""),
        "GoVersion": server.get("GoVersion", ""), "Os": server.get("Os", ""), "Arch": server.get("Arch", ""),
        "KernelVersion": server.get("KernelVersion", ""), "Experimental": bool(server.get("Experimental")),
        "BuildTime": server.get("BuildTime", ""),
    }, {"APIVersion": "ApiVersion"}, _SERVER_OMITEMPTY)
    return _go_struct("system.versionInfo", {"Client": client_struct, "Server": server_struct})


def _details_order(component: Any) -> list[str]:
    details = component.template_field("Details") if isinstance(component, TemplateData) else {}
    return sorted(details or ())


# version's own function (getDetailsOrder: a component's Details keys, sorted), for every template
VERSION_FUNCS = {"getDetailsOrder": GoFunc(_details_order, ("any",))}

# cli/command/system/version.go's defaultVersionTemplate, as docker prints `version` without --format
DEFAULT_VERSION_TEMPLATE = """{{with .Client -}}
Client:{{if ne .Platform nil}}{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}{{end}}
 Version:\t{{.Version}}
 API version:\t{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Go version:\t{{.GoVersion}}
 Git commit:\t{{.GitCommit}}
 Built:\t{{.BuildTime}}
 OS/Arch:\t{{.Os}}/{{.Arch}}
 Context:\t{{.Context}}
{{- end}}

{{- if ne .Server nil}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine" }}
  Version:\t{{.Version}}
  API version:\t{{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:\t{{index .Details "GoVersion"}}
  Git commit:\t{{index .Details "GitCommit"}}
  Built:\t{{index .Details "BuildTime"}}
  OS/Arch:\t{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:\t{{index .Details "Experimental"}}
  {{- else }}
  Version:\t{{$component.Version}}
  {{- $detailsOrder := getDetailsOrder $component}}
  {{- range $key := $detailsOrder}}
  {{$key}}:\t{{index $component.Details $key}}
   {{- end}}
  {{- end}}
 {{- end}}
 {{- end}}{{- end}}"""


# ------------------------------------------------------------------------------------------ events
def event_message(doc: Mapping[str, Any]) -> OmitEmptyStruct:
    """events.Message of an event's API document (engine.eventlog.Event.to_docker; {} for the empty
    one docker's events runs a template on first): Go's field names for a template, the API's
    (`status`, `id`, `timeNano`, ...) for `json`."""
    actor = doc.get("Actor") or {}
    attributes = actor.get("Attributes")
    actor_struct = _go_struct("events.Actor", {
        "ID": actor.get("ID", ""),
        "Attributes": GoMap(attributes or {}, elem="string", is_nil=attributes is None),
    })
    return _go_struct("*events.Message", {
        "Status": doc.get("status", ""), "ID": doc.get("id", ""), "From": doc.get("from", ""),
        "Type": doc.get("Type", ""), "Action": doc.get("Action", ""), "Actor": actor_struct,
        "Scope": doc.get("scope", ""), "Time": doc.get("time", 0), "TimeNano": doc.get("timeNano", 0),
    }, _EVENT_JSON_NAMES, frozenset(_EVENT_JSON_NAMES))


_EVENT_JSON_NAMES = {"Status": "status", "ID": "id", "From": "from", "Scope": "scope", "Time": "time",
                     "TimeNano": "timeNano"}  # each `json:",omitempty"`

