"""A deterministic recorded engine state: the same views the real backend returns, with fixed values.

Feeds the snapshot tests, the screenshots of screens that need no kernel, and the refresh-cost
benchmark (scaled to N containers). No clocks and no randomness: every call returns the same data
until an action changes it, and actions change it the same way every time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from engine.errors import Conflict, InvalidArgument, NotFound
from tui.backend import (
    STOPPED_STATES,
    BridgeView,
    ConfigView,
    ContainerView,
    EventView,
    HistoryView,
    HostView,
    ImageView,
    LayerView,
    LogLine,
    MountView,
    NetworkView,
    PortView,
    ProcessTable,
    PullProgress,
    RunRequest,
    Snapshot,
    StatsSeries,
    VolumeView,
    allowed_actions,
    validate_reference,
)

MIB = 1 << 20
HOST = HostView(cpu_per_core=(37.5, 12.0), mem_used=1_234 * MIB, mem_total=3_900 * MIB, load=(0.42, 0.37, 0.30))


def _wave(base: float, amplitude: float, n: int, phase: int = 0) -> tuple[float, ...]:
    """A fixed saw-and-step pattern: looks alive, is the same every run."""
    pattern = (0, 3, 5, 8, 6, 2, 1, 4, 7, 9, 5, 3, 2, 6, 8, 4, 1, 0, 2, 5)
    return tuple(round(base + amplitude * pattern[(i + phase) % len(pattern)] / 9, 2) for i in range(n))


def _id(seed: int) -> str:
    return (f"{seed:02x}" + "3f9c2a7be41d05c8" * 4)[:64]


_BASE_CONTAINERS: tuple[ContainerView, ...] = (
    ContainerView(_id(0xA1), "web", "busybox:latest", "running", "Up 2 hours", None, "172.17.0.2",
                  "127.0.0.1:8080->80/tcp", "2026-11-28T18:01:02Z",
                  (("com.docker.compose.project", "shop"), ("com.docker.compose.service", "web"), ("tier", "front")),
                  12.5, 3_355_443, 64 * MIB, 3, project="shop", attachable=True),
    ContainerView(_id(0xB2), "db", "localhost:5000/demo/kv:1.2", "running", "Up 47 minutes (healthy)", None,
                  "172.17.0.3", "", "2026-11-28T19:10:00Z",
                  (("com.docker.compose.project", "shop"), ("com.docker.compose.service", "db"), ("tier", "back")),
                  48.1, 38 * MIB, None, 7, health="healthy", project="shop"),
    ContainerView(_id(0xC3), "worker", "busybox:latest", "paused", "Up 12 minutes (Paused)", None, "172.17.0.4", "",
                  "2026-11-28T19:40:00Z", (), 0.0, 1_200_000, None, 2),
    ContainerView(_id(0xD4), "nightly-job", "busybox:latest", "exited", "Exited (0) 3 hours ago", 0, "", "",
                  "2026-11-28T16:00:00Z", (("schedule", "nightly"),)),
    ContainerView(_id(0xE5), "hog", "busybox:latest", "exited", "Exited (137) · OOM killed", 137, "", "",
                  "2026-11-28T20:00:00Z", (), oom_killed=True),
    ContainerView(_id(0xF6), "fresh", "busybox:latest", "created", "Created", None, "", "",
                  "2026-11-28T20:10:00Z", ()),
)

# web runs as `--cpus 0.5 -m 64m --pids-limit 100`: its plots show all three limits as lines
_CPU_QUOTAS = {"web": 50.0}
_PIDS_LIMITS = {"web": 100}

_IMAGES: tuple[ImageView, ...] = (
    ImageView("sha256:" + "7b3ccabffc97de872a30dfd234fd972a66d247c8cfc69b0550f276481852627c", "busybox", "latest",
              "2026-11-01T10:00:00Z", 2_187_464,
              (LayerView("sha256:" + "95c4a60383f7b6eb6f7b8e153a07cd6e896de0476763bef39d0f6cf3400624bd",
                         "sha256:" + "95c4a60383f7b6eb6f7b8e153a07cd6e896de0476763bef39d0f6cf3400624bd", 2_187_464),)),
    ImageView("sha256:" + "4e1f0b8d9c2a73e5f6b7a8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3", "localhost:5000/demo/kv",
              "1.2", "2026-11-20T08:30:00Z", 14_680_064,
              (LayerView("sha256:" + "95c4a60383f7b6eb6f7b8e153a07cd6e896de0476763bef39d0f6cf3400624bd",
                         "sha256:" + "95c4a60383f7b6eb6f7b8e153a07cd6e896de0476763bef39d0f6cf3400624bd", 2_187_464),
               LayerView("sha256:" + "c1d2e3f405a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2",
                         "sha256:" + "a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8", 12_492_600))),
    ImageView("sha256:" + "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9", "<none>", "<none>",
              "2026-10-02T12:00:00Z", 5_000_000, ()),
)

_VOLUMES: tuple[VolumeView, ...] = (
    VolumeView("data", "local", "/var/lib/dockui/volumes/data/_data", "2026-11-28T18:00:00Z", (("tier", "front"),),
               5_242_880, ("web",)),
    VolumeView("scratch", "local", "/var/lib/dockui/volumes/scratch/_data", "2026-11-27T09:00:00Z", (), 0, ()),
    VolumeView("4f1c" + "0a9e" * 15, "local", "/var/lib/dockui/volumes/4f1c0a9e/_data", "2026-11-28T16:00:00Z", (),
               12_288, ("nightly-job",), True),
)

_NETWORKS: tuple[NetworkView, ...] = (
    NetworkView("bridge", "e4dce10ffb42" + "0" * 52, "bridge", "172.17.0.0/16", "172.17.0.1", False,
                ("db", "web", "worker"), True),
    NetworkView("host", "b44023cafba8" + "0" * 52, "host", "", "", False, (), True),
    NetworkView("none", "5d8c2389d94a" + "0" * 52, "none", "", "", False, (), True),
    NetworkView("backend", "9a7c31e0b2d4" + "0" * 52, "bridge", "172.18.0.0/16", "172.18.0.1", False, ("db",), False),
    NetworkView("unused", "77e0c1d2a3b4" + "0" * 52, "bridge", "172.19.0.0/16", "172.19.0.1", True, (), False),
)

_LOG = tuple(
    LogLine("stderr" if i % 7 == 3 else "stdout", f"2026-11-28T18:01:{i:02d}.000000000Z",
            (f"GET /index.html 200 {512 + i} bytes" if i % 7 != 3 else f"warning: slow request #{i} took 1.{i:02d}s"))
    for i in range(40)
)


_EVENTS: tuple[EventView, ...] = tuple(
    EventView(1_764_356_400.0 + i * 7, kind, action, _id(seed), name, details)
    for i, (kind, action, seed, name, details) in enumerate((
        ("image", "pull", 0x11, "busybox:latest", ""),
        ("network", "connect", 0x12, "bridge", f"container={_id(0xA1)[:12]} type=bridge"),
        ("container", "create", 0xA1, "web", "image=busybox:latest tier=front"),
        ("container", "start", 0xA1, "web", "image=busybox:latest tier=front"),
        ("container", "start", 0xB2, "db", "image=localhost:5000/demo/kv:1.2 tier=back"),
        ("container", "health_status: healthy", 0xB2, "db", "image=localhost:5000/demo/kv:1.2 tier=back"),
        ("container", "oom", 0xE5, "hog", "image=busybox:latest"),
        ("container", "die", 0xE5, "hog", "exitCode=137 image=busybox:latest"),
        ("container", "pause", 0xC3, "worker", "image=busybox:latest"),
        ("volume", "mount", 0x13, "", "container=" + _id(0xA1)[:12] + " destination=/data driver=local"),
    ))
)


class RecordedBackend:
    """Implements tui.backend.Backend over fixed data. `scale` replicates the containers (for the bench)."""

    def __init__(self, scale: int = 0, empty: bool = False) -> None:
        base = () if empty else _BASE_CONTAINERS
        containers = list(base)
        if scale > len(base) and base:
            for i in range(len(base), scale):
                src = base[i % len(base)]
                containers.append(replace(src, id=_id(i + 0x100)[:64], name=f"{src.name}-{i}",
                                          ip=f"172.17.{(i + 2) // 250}.{(i + 2) % 250 + 2}" if src.ip else ""))
        self._containers = {c.id: c for c in containers}
        self._order = [c.id for c in containers]
        self._images = [] if empty else list(_IMAGES)
        self._volumes = [] if empty else list(_VOLUMES)
        self._networks = list(_NETWORKS[:3]) if empty else list(_NETWORKS)
        self._lock = threading.Lock()
        self.calls: list[tuple[str, str]] = []  # what the UI asked for, for Pilot tests
        self._events_given = False

    def events(self) -> list[EventView]:
        """The fixed events once (the first call is the backlog), then none."""
        given, self._events_given = self._events_given, True
        return [] if given else list(_EVENTS)

    def snapshot(self, focus: frozenset[str] | None = None) -> Snapshot:
        views = []
        with self._lock:
            for n, cid in enumerate(self._order):
                c = self._containers[cid]
                if c.status == "running":
                    c = replace(c, cpu_history=_wave((c.cpu_percent or 0) * 0.6, (c.cpu_percent or 1) * 0.8, 20, n),
                                mem_history=_wave((c.mem_usage or 0) * 0.8, (c.mem_usage or 0) * 0.2, 20, n + 3))
                views.append(c)
        return Snapshot(tuple(views), HOST, ())

    def stats_series(self, container_id: str) -> StatsSeries:
        c = self._find(container_id)
        if c.status != "running":
            return StatsSeries()
        n = 120
        return StatsSeries(cpu=_wave((c.cpu_percent or 0) * 0.6, (c.cpu_percent or 1) * 0.8, n),
                           mem=_wave((c.mem_usage or 0) * 0.8, (c.mem_usage or 0) * 0.2, n, 3),
                           mem_limit=c.mem_limit, cpu_limit=_CPU_QUOTAS.get(c.name),
                           net_rx=_wave(1000, 40000, n, 5), net_tx=_wave(500, 9000, n, 7),
                           blk_read=_wave(0, 4096, n, 11), blk_write=_wave(0, 65536, n, 13),
                           pids=tuple(float(c.pids or 0) for _ in range(n)), pids_limit=_PIDS_LIMITS.get(c.name))

    def show_detail_stats(self, shown: bool) -> None:
        self.calls.append(("stats_level", "full" if shown else "table"))

    def _find(self, name_or_id: str) -> ContainerView:
        with self._lock:
            for c in self._containers.values():
                if c.id.startswith(name_or_id) or c.name == name_or_id:
                    return c
        raise NotFound(f"No such container: {name_or_id}")

    def inspect(self, container_id: str) -> dict[str, Any]:
        c = self._find(container_id)
        return {
            "Id": c.id,
            "Created": c.created,
            "Path": "httpd",
            "Args": ["-f", "-p", "80"],
            "State": {"Status": c.status, "Running": c.status == "running", "Paused": c.status == "paused",
                      "OOMKilled": c.exit_code == 137, "Pid": 4242 if c.status in ("running", "paused") else 0,
                      "ExitCode": c.exit_code or 0},
            "Image": "sha256:" + "7b3ccabffc97de872a30dfd234fd972a66d247c8cfc69b0550f276481852627c",
            "Name": "/" + c.name,
            "Config": {"Hostname": c.id[:12], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                                       "MODE=demo", f"NAME={c.name}"],
                       "Cmd": ["httpd", "-f", "-p", "80"], "Image": c.image, "Labels": dict(c.labels)},
            "HostConfig": {"Memory": c.mem_limit or 0, "NanoCpus": 0, "PidsLimit": None,
                           "Binds": ["/srv/www:/www:ro"], "NetworkMode": "bridge"},
            "Mounts": [{"Type": "bind", "Source": "/srv/www", "Destination": "/www", "Mode": "ro", "RW": False},
                       {"Type": "volume", "Name": "data", "Source": "/var/lib/dockui/volumes/data/_data",
                        "Destination": "/data", "Mode": "", "RW": True}],
            "NetworkSettings": {"IPAddress": c.ip, "MacAddress": _mac(c.ip), "Gateway": "172.17.0.1" if c.ip else ""},
        }

    def top(self, container_id: str) -> ProcessTable:
        c = self._find(container_id)
        self.calls.append(("top", c.name))
        if c.status not in ("running", "paused"):
            raise Conflict(f"Container {c.name} is not running")
        return ProcessTable(("PID", "USER", "TIME", "CMD"),
                            (("4242", "root", "00:00:01", "httpd -f -p 80"),
                             ("4301", "root", "00:00:00", "sh -c sleep 3600"),
                             ("4302", "nobody", "00:00:00", "sleep 3600")))

    def container_config(self, container_id: str) -> ConfigView:
        c = self._find(container_id)
        self.calls.append(("config", c.name))
        live = c.status in ("running", "paused")
        return ConfigView(
            image=c.image, entrypoint=(), command=("httpd", "-f", "-p", "80"), working_dir="/www", user="",
            tty=c.attachable, stdin_open=c.attachable,
            env=(("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"), ("MODE", "demo"),
                 ("NAME", c.name)),
            ports=tuple(p for p in c.ports.split(", ") if p),
            mounts=(MountView("volume", "data", "/data", False), MountView("bind", "/srv/www", "/www", True)),
            networks=(("bridge", c.ip if live else ""),) + ((("backend", "172.18.0.2" if live else ""),)
                                                              if c.name == "db" else ()),
            restart_policy="unless-stopped" if c.project else "no", labels=c.labels,
            memory_limit=c.mem_limit or 0, cpu_limit=_CPU_QUOTAS.get(c.name), pids_limit=_PIDS_LIMITS.get(c.name, 0))

    def prune_containers(self, container_ids: tuple[str, ...]) -> list[str]:
        removed = []
        for cid in container_ids:
            c = self._find(cid)
            if c.status in STOPPED_STATES:
                self.container_action("remove", cid)
                removed.append(c.name)
        return [f"removed {', '.join(removed)}" if removed else "nothing to remove"]

    def read_logs(self, container_id: str, cursor: int) -> tuple[list[LogLine], int]:
        self._find(container_id)
        return list(_LOG[cursor:]), len(_LOG)

    def container_action(self, action: str, container_id: str) -> None:
        c = self._find(container_id)
        self.calls.append((action, c.name))
        allowed = allowed_actions(c.status) | ({"unpause"} if c.status == "paused" else set())
        if action not in allowed:
            raise Conflict(f"cannot {action} container {c.name}: it is {c.status}")
        with self._lock:
            if action == "remove":
                del self._containers[c.id]
                self._order.remove(c.id)
                return
            status, text, code = {
                "start": ("running", "Up Less than a second", None),
                "restart": ("running", "Up Less than a second", None),
                "unpause": ("running", "Up 12 minutes", None),
                "stop": ("exited", "Exited (0) Less than a second ago", 0),
                "kill": ("exited", "Exited (137) Less than a second ago", 137),
                "pause": ("paused", "Up 12 minutes (Paused)", None),
            }[action]
            self._containers[c.id] = replace(c, status=status, state_text=text, exit_code=code,
                                             cpu_percent=1.0 if status == "running" else None,
                                             mem_usage=1_000_000 if status == "running" else None)

    def oom_kill(self, name: str) -> None:
        """The kernel's OOM killer ends a running container (for the dead-container states)."""
        c = self._find(name)
        with self._lock:
            self._containers[c.id] = replace(c, status="exited", state_text="Exited (137) · OOM killed",
                                             exit_code=137, ip="", ports="", cpu_percent=None, mem_usage=None,
                                             mem_limit=None, pids=None, oom_killed=True)

    def images(self) -> list[ImageView]:
        with self._lock:
            return [replace(image, used_by=tuple(sorted(c.name for c in self._containers.values()
                                                         if c.image == image.reference)))
                    for image in self._images]

    def remove_image(self, reference: str, force: bool = False) -> list[str]:
        self.calls.append(("rmi -f" if force else "rmi", reference))
        for image in self.images():
            if reference in (image.reference, image.id) or image.id.removeprefix("sha256:").startswith(reference):
                if image.used_by and not force:
                    raise Conflict(f"conflict: unable to remove repository reference {reference!r} "
                                   f"(must force) - container {image.used_by[0]} is using its referenced image")
                with self._lock:
                    self._images = [i for i in self._images if i.id != image.id]
                return [f"Untagged: {image.reference}", f"Deleted: {image.id}"]
        raise NotFound(f"No such image: {reference}")

    def image_history(self, reference: str) -> list[HistoryView]:
        image = next((i for i in self.images() if i.reference == reference or i.id == reference), None)
        if image is None:
            raise NotFound(f"No such image: {reference}")
        rows = [HistoryView("<missing>", "2026-11-01T09:59:00Z", f"/bin/sh -c #(nop) ADD file:{layer.diff_id[7:19]} in /",
                            layer.size, "") for layer in image.layers]
        rows.append(HistoryView("<missing>", "2026-11-01T10:00:00Z", '/bin/sh -c #(nop)  CMD ["sh"]', 0, ""))
        rows.reverse()
        rows[0] = replace(rows[0], image_id=image.id)
        return rows

    def prune_images(self) -> list[str]:
        self.calls.append(("image prune", ""))
        with self._lock:
            dangling = [i for i in self._images if i.repository == "<none>"]
            self._images = [i for i in self._images if i.repository != "<none>"]
        return [f"Deleted: {i.id}" for i in dangling] + ["Total reclaimed space: 5MB"]

    def volumes(self) -> list[VolumeView]:
        with self._lock:
            return list(self._volumes)

    def inspect_volume(self, name: str) -> dict[str, Any]:
        volume = next((v for v in self.volumes() if v.name == name), None)
        if volume is None:
            raise NotFound(f"get {name}: no such volume")
        return {"CreatedAt": volume.created, "Driver": "local", "Labels": dict(volume.labels) or None,
                "Mountpoint": volume.mountpoint, "Name": volume.name, "Options": None, "Scope": "local"}

    def remove_volume(self, name: str) -> list[str]:
        self.calls.append(("volume rm", name))
        volume = next((v for v in self.volumes() if v.name == name), None)
        if volume is None:
            raise NotFound(f"get {name}: no such volume")
        if volume.used_by:
            raise Conflict(f"remove {name}: volume is in use - [{volume.used_by[0]}]")
        with self._lock:
            self._volumes.remove(volume)
        return []

    def prune_volumes(self) -> list[str]:
        self.calls.append(("volume prune", ""))
        with self._lock:
            unused = [v for v in self._volumes if not v.used_by]
            self._volumes = [v for v in self._volumes if v.used_by]
        return [v.name for v in unused] + ["Total reclaimed space: 0B"]

    def networks(self) -> list[NetworkView]:
        with self._lock:
            return list(self._networks)

    def _network(self, name: str) -> NetworkView:
        for net in self.networks():
            if net.name == name or net.id.startswith(name):
                return net
        raise NotFound(f"network {name} not found")

    def create_network(self, name: str, subnet: str = "") -> list[str]:
        self.calls.append(("network create", name))
        if any(n.name == name for n in self.networks()):
            raise Conflict(f"network with name {name} already exists")
        net = NetworkView(name, _id(0x60 + len(self._networks)), "bridge", subnet or "172.20.0.0/16",
                          "172.20.0.1", False, (), False)
        with self._lock:
            self._networks.append(net)
        return [f"{name}: {net.subnet}"]

    def remove_network(self, name: str) -> list[str]:
        self.calls.append(("network rm", name))
        net = self._network(name)
        if net.builtin:
            raise Conflict(f"{name} is a pre-defined network and cannot be removed")
        if net.containers:
            raise Conflict(f"error while removing network: network {name} has active endpoints")
        with self._lock:
            self._networks.remove(net)
        return []

    def prune_networks(self) -> list[str]:
        self.calls.append(("network prune", ""))
        with self._lock:
            unused = [n for n in self._networks if not n.builtin and not n.containers]
            self._networks = [n for n in self._networks if n not in unused]
        return [n.name for n in unused]

    def connect(self, network: str, container: str) -> list[str]:
        self.calls.append(("network connect", f"{network} {container}"))
        net, c = self._network(network), self._find(container)
        with self._lock:
            self._networks[self._networks.index(net)] = replace(net, containers=tuple(sorted({*net.containers, c.name})))
        return []

    def disconnect(self, network: str, container: str) -> list[str]:
        self.calls.append(("network disconnect", f"{network} {container}"))
        net, c = self._network(network), self._find(container)
        if c.name not in net.containers:
            raise NotFound(f"container {c.name} is not connected to network {net.name}")
        with self._lock:
            self._networks[self._networks.index(net)] = replace(net, containers=tuple(n for n in net.containers
                                                                                    if n != c.name))
        return []

    def pull(self, reference: str, progress: Callable[[PullProgress], None], cancel: threading.Event) -> str:
        canonical = validate_reference(reference)
        layers = (("95c4a60383f7", 2_187_464, "Already exists"), ("c1d2e3f405a6", 12_492_600, None),
                  ("5e6f7a8b9c0d", 731_000, None))
        for layer, total, status in layers:
            progress(PullProgress(layer, status or "Pulling fs layer", 0, total))
        for layer, total, status in layers:
            if status:
                continue
            for step in (1, 2, 3, 4):
                if cancel.is_set():
                    raise InvalidArgument("pull cancelled")
                progress(PullProgress(layer, "Downloading", total * step // 4, total))
            progress(PullProgress(layer, "Verifying Checksum", total, total))
            progress(PullProgress(layer, "Download complete", total, total))
            progress(PullProgress(layer, "Extracting", total, total))
            progress(PullProgress(layer, "Pull complete", total, total))
        self.calls.append(("pull", canonical))
        return "sha256:" + "4e1f0b8d9c2a73e5f6b7a8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3"

    def run(self, request: RunRequest) -> str:
        self.calls.append(("run", " ".join(request.argv())))
        cid = _id(0x42 + len(self._order))
        name = request.name or f"recorded_{len(self._order)}"
        with self._lock:
            self._containers[cid] = ContainerView(cid, name, request.image, "running", "Up Less than a second", None,
                                                  "172.17.0.9", ", ".join(request.publish), "2026-11-28T20:15:00Z")
            self._order.append(cid)
        return cid

    def topology(self) -> list[BridgeView]:
        ports = []
        second = []
        with self._lock:
            for n, cid in enumerate(self._order):
                c = self._containers[cid]
                if not c.ip or c.status not in ("running", "paused"):
                    continue
                ports.append(PortView(f"veth{cid[:7]}", 10 + n, "up", cid, c.name, c.ip + "/16", _mac(c.ip),
                                      1_536.0 * (n + 1), 512.0 * (n + 1),
                                      tuple(p for p in c.ports.split(", ") if p),
                                      ("/db:/web/database",) if c.name == "web" else ()))
                if c.name == "db":
                    second.append(PortView(f"veth{cid[1:8]}", 40 + n, "up", cid, c.name, "172.18.0.2/16",
                                           _mac("172.18.0.2"), 256.0, 128.0, (), (), "eth1"))
        return [BridgeView("dockui0", "172.17.0.0/16", "172.17.0.1", "up", 1500, tuple(ports), "bridge"),
                BridgeView("br-9a7c31e0b2d4", "172.18.0.0/16", "172.18.0.1", "up", 1500, tuple(second), "backend")]

    def import_host_busybox(self) -> str:
        with self._lock:
            self._images.append(_IMAGES[0])
        self.calls.append(("import", "busybox:latest"))
        return _IMAGES[0].id

    def exec_command(self, container_id: str) -> list[str] | None:
        self.calls.append(("exec", self._find(container_id).name))
        return None

    def attach_command(self, container_id: str) -> list[str] | None:
        self.calls.append(("attach", self._find(container_id).name))
        return None


def _mac(ip: str) -> str:
    if not ip:
        return ""
    return "02:42:" + ":".join(f"{int(o):02x}" for o in ip.split("/")[0].split("."))
