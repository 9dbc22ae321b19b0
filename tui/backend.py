"""The only place the TUI touches the engine.

One module of ~950 lines on purpose: it is the TUI's whole seam with the engine (the views the
screens render, the calls behind them, the cached records and rates), kept in one place so that the
recorded backend (tui/recorded.py) mirrors exactly one surface.

Every engine call is a plain, blocking function here; the app runs them in Textual thread workers
and gets results back as messages, so the UI thread never waits on the kernel, the disk or a
registry. Results are plain frozen dataclasses (the "view" of the engine the screens render), so
the recorded backend (tui/recorded.py) can feed the very same screens with fixed values.

The engine is reached only through its typed façade (engine.api) and its typed records
(ContainerRecord, the sampler's StatsSnapshot): no attribute is guessed, no verb runs as a `dockui`
subprocess except the interactive shell of `e` and the attach client of `a`, which must own the terminal. The modules the engine
loads lazily (the stats sampler, netlink) may fail to import: that becomes `EngineUnavailable`, a
sentence the screen shows instead of a crash.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from engine.api import containers as api_containers
from engine.api import images as api_images
from engine.api import networks as api_networks
from engine.api import volumes as api_volumes
from engine.config import EngineConfig
from engine.container.index import signature as index_signature
from engine.container.logs import readable_log
from engine.container.names import valid_name
from engine.container.options import RunOptions, resolve_client_env
from engine.container.state import ContainerRecord
from engine.container.state import load as load_record
from engine.container.status import ports_text, published_ports, record_status_text, status_text
from engine.errors import DockuiError, InvalidArgument, NotFound
from engine.image.reference import parse_reference
from engine.util.timefmt import parse_rfc3339
from engine.util.units import human_duration, human_size, parse_size

if TYPE_CHECKING:
    from engine.api.system import EventStream
    from engine.eventlog import Event
    from engine.image.pull import PullEvent
    from engine.stats.sampler import ContainerStats, HostStats, Sampler, StatsSnapshot

__all__ = ["human_duration"]  # the images screen ages images with it

HISTORY = 300  # samples kept per container: 5 minutes at 1 Hz
LIVE_STATES = ("running", "paused", "restarting")
STOPPED_STATES = ("exited", "created", "dead")  # what `container prune` removes (the home screen's X)
SHELLS = (("sh",), ("ash",), ("/bin/busybox", "sh"))  # what `e` tries, in order
TOP_PS_ARGS = ("-eo", "pid,user,time,cmd")  # the Top tab's columns: PID USER TIME CMD
SPARK_POINTS = 20  # samples a table sparkline shows
EVENTS_BACKLOG = 3600.0  # seconds of past events the events screen opens with
OFFSCREEN_EVERY = 5  # rounds between two reads of a table row that is not on screen
RECONCILE_INTERVAL = 10.0  # seconds between the session's reconciles (restart policies of dead monitors)


class EngineUnavailable(DockuiError):
    """A part of the engine the TUI needs is not installed or failed to import."""


# --------------------------------------------------------------------------------------------
# Views: what the screens render.


@dataclass(frozen=True)
class HostView:
    cpu_per_core: tuple[float, ...]
    mem_used: int
    mem_total: int
    load: tuple[float, float, float]


@dataclass(frozen=True)
class ContainerView:
    id: str
    name: str
    image: str
    status: str  # created|running|paused|restarting|exited|dead
    state_text: str  # "Up 3 minutes", "Exited (137) 2 hours ago"
    exit_code: int | None
    ip: str
    ports: str
    created: str
    labels: tuple[tuple[str, str], ...] = ()
    cpu_percent: float | None = None  # of one core, as docker stats counts it
    mem_usage: int | None = None
    mem_limit: int | None = None
    pids: int | None = None
    cpu_history: tuple[float, ...] = ()
    mem_history: tuple[float, ...] = ()
    oom_killed: bool = False  # the kernel's OOM killer ended it (State.OOMKilled)
    started_at: float | None = None  # epoch seconds, for sorting by uptime
    finished_at: float | None = None
    pending: str = ""  # an action the app is waiting for ("stop", "restart", ...); set by the app
    image_id: str = ""
    health: str = ""  # a running container's health check: healthy|unhealthy|starting; "" without one
    project: str = ""  # its compose project (the com.docker.compose.project label); "" for none
    attachable: bool = False  # run with -i -t (Tty and OpenStdin): `a` attaches, ctrl-p ctrl-q detaches

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def is_live(self) -> bool:
        """Has processes (and so figures, an address and ports) right now."""
        return self.status in LIVE_STATES

    @property
    def mem_percent(self) -> float | None:
        if self.mem_usage is None or not self.mem_limit:
            return None
        return 100.0 * self.mem_usage / self.mem_limit


@dataclass(frozen=True)
class Snapshot:
    """One refresh of the home screen."""

    containers: tuple[ContainerView, ...]
    host: HostView | None
    problems: tuple[str, ...] = ()  # engine pieces that could not answer, in words


@dataclass(frozen=True)
class StatsSeries:
    """A container's recent samples, oldest first, for the Stats tab's plots."""

    cpu: tuple[float, ...] = ()  # percent of one core
    mem: tuple[float, ...] = ()
    mem_limit: int | None = None
    cpu_limit: float | None = None  # the CPU quota in percent of one core (`--cpus 0.5`: 50.0)
    net_rx: tuple[float, ...] = ()  # bytes/s
    net_tx: tuple[float, ...] = ()
    blk_read: tuple[float, ...] = ()  # bytes/s
    blk_write: tuple[float, ...] = ()
    pids: tuple[float, ...] = ()
    pids_limit: int | None = None


@dataclass(frozen=True)
class LogLine:
    stream: str  # stdout|stderr
    time: str  # RFC3339 as written by the monitor
    text: str


@dataclass(frozen=True)
class EventView:
    """One engine event, as the events screen lists it."""

    time: float  # epoch seconds
    type: str  # container|image|network|volume
    action: str  # start, die, health_status: healthy, ...
    actor_id: str
    name: str  # the actor's name attribute ("" when it has none)
    details: str  # the other attributes, `key=value` joined (labels included)


@dataclass(frozen=True)
class ProcessTable:
    titles: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class MountView:
    type: str  # bind|volume|tmpfs
    source: str  # the host path, or the volume's name
    destination: str
    read_only: bool


@dataclass(frozen=True)
class ConfigView:
    """What a container was made with, as lazydocker's Config tab shows it: from its record (the
    engine's ContainerRecord), not from the inspect document."""

    image: str
    entrypoint: tuple[str, ...]
    command: tuple[str, ...]
    working_dir: str
    user: str
    tty: bool
    stdin_open: bool
    env: tuple[tuple[str, str], ...]
    ports: tuple[str, ...]  # "127.0.0.1:8080->80/tcp"; published now, or as asked while it does not run
    mounts: tuple[MountView, ...]
    networks: tuple[tuple[str, str], ...]  # (network, its address there; "" until it runs)
    restart_policy: str  # "no", "always", "unless-stopped", "on-failure:3"
    labels: tuple[tuple[str, str], ...]
    memory_limit: int = 0  # bytes; 0: none
    cpu_limit: float | None = None  # percent of one core
    pids_limit: int = 0


@dataclass(frozen=True)
class LayerView:
    chain_id: str
    diff_id: str
    size: int


@dataclass(frozen=True)
class ImageView:
    id: str
    repository: str
    tag: str
    created: str
    size: int
    layers: tuple[LayerView, ...] = ()
    used_by: tuple[str, ...] = ()  # names of the containers made from it (running or not)

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}" if self.repository != "<none>" else self.id


@dataclass(frozen=True)
class PortView:
    """A bridge port: the host end of a veth and the container behind it."""

    veth: str
    ifindex: int
    state: str
    container_id: str
    container_name: str
    ip: str
    mac: str
    rx_rate: float  # bytes/s as the container sees it
    tx_rate: float
    published: tuple[str, ...] = ()
    links: tuple[str, ...] = ()  # Docker's "/target:/this/alias", only targets on this same network
    ifname: str = "eth0"  # the interface inside the container (eth1 on its second network)


@dataclass(frozen=True)
class BridgeView:
    name: str
    subnet: str
    gateway: str
    state: str
    mtu: int
    ports: tuple[PortView, ...] = ()
    network: str = ""  # the network's name (`bridge` for the default one)


@dataclass(frozen=True)
class HistoryView:
    """One line of an image's history, newest first."""

    image_id: str  # "<missing>" below the top line, as Docker says
    created: str
    created_by: str
    size: int
    comment: str


@dataclass(frozen=True)
class VolumeView:
    name: str
    driver: str
    mountpoint: str
    created: str
    labels: tuple[tuple[str, str], ...]
    size: int
    used_by: tuple[str, ...]  # names of the containers that mount it
    anonymous: bool = False


@dataclass(frozen=True)
class NetworkView:
    name: str
    id: str
    driver: str
    subnet: str
    gateway: str
    internal: bool
    containers: tuple[str, ...]  # names of the containers attached
    builtin: bool  # bridge, host, none: cannot be removed

    @property
    def short_id(self) -> str:
        return self.id[:12]


@dataclass(frozen=True)
class PullProgress:
    """The engine's PullEvent, as the dialog needs it."""

    layer: str | None
    status: str
    current: int
    total: int


@dataclass
class RunRequest:
    """What the Run dialog asks for; turned into `dockui run` arguments and validated by the CLI's parser."""

    image: str
    name: str = ""
    command: str = ""
    env: list[str] = field(default_factory=list)
    publish: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    memory: str = ""
    cpus: str = ""
    pids_limit: str = ""
    network: str = ""
    links: list[str] = field(default_factory=list)
    detach: bool = True
    remove: bool = False

    def options(self) -> RunOptions:
        """The engine's typed create options (what `dockui run -d` builds from the same flags)."""
        import shlex

        return RunOptions(
            image=self.image.strip(), command=shlex.split(self.command), name=self.name or None,
            env=resolve_client_env(list(self.env), os.environ),  # as the CLI: the client resolves `KEY`
            publish=list(self.publish), volumes=list(self.volumes), links=list(self.links),
            memory=parse_size(self.memory) if self.memory else None,
            cpus=float(self.cpus) if self.cpus else None,
            pids_limit=int(self.pids_limit) if self.pids_limit else None,
            network=self.network or "bridge", auto_remove=self.remove,
        )

    def argv(self) -> list[str]:
        """The equivalent `dockui run` arguments (also shown to the user)."""
        args = ["run"]
        if self.detach:
            args.append("-d")
        if self.remove:
            args.append("--rm")
        if self.name:
            args += ["--name", self.name]
        for flag, values in (("-e", self.env), ("-p", self.publish), ("-v", self.volumes), ("--link", self.links)):
            for value in values:
                args += [flag, value]
        for flag, value in (("--memory", self.memory), ("--cpus", self.cpus), ("--pids-limit", self.pids_limit),
                            ("--network", self.network)):
            if value:
                args += [flag, value]
        args.append(self.image)
        if self.command:
            import shlex

            args += shlex.split(self.command)
        return args


# --------------------------------------------------------------------------------------------
# Validation shared by the dialogs (mirrors the CLI's rules; the CLI parser has the last word).

_SIZE = re.compile(r"^\d+(\.\d+)?[bkmg]?$", re.I)
_PORT = re.compile(r"^((\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:]+\]):)?(\d{1,5}:)?\d{1,5}(-\d{1,5})?(/(tcp|udp|sctp))?$")
_ENV = re.compile(r"^[^=\s][^=]*(=.*)?$")


def validate_reference(text: str) -> str:
    """The canonical form of an image reference, or InvalidArgument with the parser's words."""
    text = text.strip()
    if not text:
        raise InvalidArgument("an image reference is required (e.g. busybox)")
    return str(parse_reference(text))


def validate_run(request: RunRequest) -> dict[str, str]:
    """Field name -> error message, empty when the request looks valid."""
    errors: dict[str, str] = {}
    try:
        validate_reference(request.image)
    except DockuiError as exc:
        errors["image"] = str(exc)
    if request.name and not valid_name(request.name):
        errors["name"] = "names are [a-zA-Z0-9][a-zA-Z0-9_.-]+ (two characters at least)"
    for value in request.env:
        if not _ENV.match(value):
            errors["env"] = f"bad -e value {value!r}: KEY=VALUE"
    for value in request.publish:
        if not _PORT.match(value):
            errors["publish"] = f"bad -p value {value!r}: [hostIP:][hostPort:]containerPort[/proto]"
        else:
            numbers = [int(n) for n in re.findall(r"(?<![.\d])\d{1,5}(?![.\d])", value.split("]")[-1])]
            if any(n == 0 or n > 65535 for n in numbers):
                errors["publish"] = f"bad -p value {value!r}: ports are 1-65535"
    for value in request.volumes:
        parts = value.split(":")
        if len(parts) not in (2, 3) or not parts[1].startswith("/") or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            errors["volumes"] = f"bad -v value {value!r}: SRC:/container/path[:ro|rw]"
    if request.memory and not _SIZE.match(request.memory):
        errors["memory"] = f"bad memory {request.memory!r}: e.g. 64m, 1g"
    if request.cpus:
        try:
            if float(request.cpus) <= 0:
                raise ValueError
        except ValueError:
            errors["cpus"] = f"bad cpus {request.cpus!r}: a positive number, e.g. 0.5"
    if request.pids_limit:
        try:
            int(request.pids_limit)
        except ValueError:
            errors["pids_limit"] = f"bad pids limit {request.pids_limit!r}: an integer"
    for value in request.links:
        if not valid_name(value.split(":")[0]):
            errors["links"] = f"bad --link value {value!r}: NAME[:ALIAS]"
    if request.network and not re.match(r"^(bridge|none|host|container:.+|[a-zA-Z0-9][a-zA-Z0-9_.-]*)$", request.network):
        errors["network"] = f"bad network {request.network!r}"
    if not errors:
        errors.update(_cli_parse_errors(request))
    return errors


def _cli_parse_errors(request: RunRequest) -> dict[str, str]:
    """Run the CLI's own argparse over the request, so the dialog refuses what `dockui run` refuses."""
    try:
        from engine.cli import build_parser

        parser = build_parser()
    except Exception:  # the CLI's run verb may not be there yet: the checks above stand
        return {}
    import contextlib
    import io

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(request.argv())
    except SystemExit:
        lines = [ln for ln in stderr.getvalue().splitlines() if "error:" in ln]
        return {"form": lines[-1].split("error:", 1)[1].strip() if lines else "dockui run refuses these options"}
    return {}


# --------------------------------------------------------------------------------------------
# Formatting helpers shared with the recorded backend.




def parse_time(value: str | None) -> float | None:
    """RFC3339 (with nanoseconds) -> epoch seconds; None for empty or Go's zero time."""
    return parse_rfc3339(value)


def state_text(status: str, exit_code: int | None, started: float | None, finished: float | None,
               now: float, oom_killed: bool = False) -> str:
    """The STATUS text, at most 26 characters for any value (a test checks)."""
    return status_text(status, exit_code, started, finished, now, oom_killed=oom_killed, compact=True)


# --------------------------------------------------------------------------------------------
# The interface the app calls (the recorded backend implements the same methods).


class Backend(Protocol):
    def snapshot(self, focus: frozenset[str] | None = None) -> Snapshot: ...
    def stats_series(self, container_id: str) -> StatsSeries: ...
    def show_detail_stats(self, shown: bool) -> None: ...
    def inspect(self, container_id: str) -> dict[str, Any]: ...
    def events(self) -> list[EventView]: ...
    def top(self, container_id: str) -> ProcessTable: ...
    def container_config(self, container_id: str) -> ConfigView: ...
    def prune_containers(self, container_ids: tuple[str, ...]) -> list[str]: ...
    def read_logs(self, container_id: str, cursor: int) -> tuple[list[LogLine], int]: ...
    def container_action(self, action: str, container_id: str) -> None: ...
    def images(self) -> list[ImageView]: ...
    def remove_image(self, reference: str, force: bool = False) -> list[str]: ...
    def image_history(self, reference: str) -> list[HistoryView]: ...
    def prune_images(self) -> list[str]: ...
    def volumes(self) -> list[VolumeView]: ...
    def inspect_volume(self, name: str) -> dict[str, Any]: ...
    def remove_volume(self, name: str) -> list[str]: ...
    def prune_volumes(self) -> list[str]: ...
    def networks(self) -> list[NetworkView]: ...
    def create_network(self, name: str, subnet: str = "") -> list[str]: ...
    def remove_network(self, name: str) -> list[str]: ...
    def prune_networks(self) -> list[str]: ...
    def connect(self, network: str, container: str) -> list[str]: ...
    def disconnect(self, network: str, container: str) -> list[str]: ...
    def pull(self, reference: str, progress: Callable[[PullProgress], None], cancel: threading.Event) -> str: ...
    def run(self, request: RunRequest) -> str: ...
    def topology(self) -> list[BridgeView]: ...
    def import_host_busybox(self) -> str: ...
    def exec_command(self, container_id: str) -> list[str] | None: ...
    def attach_command(self, container_id: str) -> list[str] | None: ...


ACTIONS = ("start", "stop", "restart", "kill", "pause", "unpause", "remove")


def allowed_actions(status: str) -> set[str]:
    """Which container actions make sense in a state (the rest are not offered)."""
    return {
        "running": {"stop", "restart", "kill", "pause", "exec", "remove"},
        "paused": {"unpause", "kill", "stop", "remove"},
        "restarting": {"stop", "kill", "remove"},
        "created": {"start", "remove"},
        "exited": {"start", "restart", "remove"},
        "dead": {"remove"},
    }.get(status, {"remove"})


HISTORY_KEYS = ("cpu", "mem", "rx", "tx", "br", "bw", "pids")
COMPOSE_PROJECT = "com.docker.compose.project"  # the label docker-compose (v1 and v2) sets
COMPOSE_SERVICE = "com.docker.compose.service"


@dataclass(frozen=True)
class _RecordFacts:
    """What a row takes from one version of a record without the clock: parsed once per version
    (the cached record object), not on every refresh (times, labels, ports: ~10 µs a row)."""

    record: ContainerRecord
    started: float | None
    finished: float | None
    labels: tuple[tuple[str, str], ...]
    ip: str
    ports: str
    cpu_limit: float | None
    health: str
    project: str
    attachable: bool

    @classmethod
    def of(cls, rec: ContainerRecord) -> _RecordFacts:
        labels = rec.config.get("Labels") or {}
        return cls(rec, parse_time(rec.started_at), parse_time(rec.finished_at), tuple(sorted(labels.items())),
                   str(rec.network.get("IPAddress") or ""), ports_text(published_ports(rec)),
                   cpu_quota_percent(rec.host_config), str((rec.health or {}).get("Status") or ""),
                   str(labels.get(COMPOSE_PROJECT) or ""), is_attachable(rec))


def is_attachable(rec: ContainerRecord) -> bool:
    """Run with -i -t: the only containers Docker's attach can detach from (its detach keys are read
    on a terminal's input), and so the only ones `a` offers (lazydocker's rule too)."""
    return bool(rec.config.get("Tty")) and bool(rec.config.get("OpenStdin"))


def config_view(rec: ContainerRecord) -> ConfigView:
    """The Config tab of a container record."""
    config, host = rec.config, rec.host_config
    env = tuple((name, value) for name, _, value in (str(item).partition("=") for item in config.get("Env") or []))
    ports = _port_list(published_ports(rec)) or _port_list(host.get("PortBindings"))
    policy = host.get("RestartPolicy") or {}
    restart = str(policy.get("Name") or "no")
    if restart == "on-failure" and policy.get("MaximumRetryCount"):
        restart += f":{policy['MaximumRetryCount']}"
    mounts = tuple(MountView(str(m.get("Type") or ""), str(m.get("Name") or m.get("Source") or ""),
                             str(m.get("Destination") or ""), not m.get("RW", True))
                   for m in sorted(rec.mounts, key=lambda m: str(m.get("Destination") or "")))
    networks = tuple(sorted((name, str((entry or {}).get("IPAddress") or "") if rec.running else "")
                            for name, entry in api_containers.listed_networks(rec).items()))
    return ConfigView(
        image=rec.image, entrypoint=tuple(config.get("Entrypoint") or ()), command=tuple(config.get("Cmd") or ()),
        working_dir=str(config.get("WorkingDir") or ""), user=str(config.get("User") or ""),
        tty=bool(config.get("Tty")), stdin_open=bool(config.get("OpenStdin")), env=env,
        ports=ports, mounts=mounts, networks=networks, restart_policy=restart,
        labels=tuple(sorted((config.get("Labels") or {}).items())), memory_limit=int(host.get("Memory") or 0),
        cpu_limit=cpu_quota_percent(host), pids_limit=max(0, int(host.get("PidsLimit") or 0)))


def _port_list(ports: dict[str, Any] | None) -> tuple[str, ...]:
    """Ports as `ps` lists them (ports_text), one item each: ("127.0.0.1:8080->80/tcp", "443/tcp")."""
    return tuple(p for p in ports_text(ports).split(", ") if p)


def _unavailable(exc: ImportError) -> EngineUnavailable:
    """A module the engine loads lazily (the sampler, netlink) failed to import: one sentence."""
    return EngineUnavailable(f"{exc.name or 'an engine module'} is not available ({exc})")


class EngineBackend:
    """The real engine, in-process, through its typed façade (engine.api). Keeps the stats sampler
    and per-container history between calls.

    Nothing here forks: the engine's start path sees this process's threads and launches each
    container's monitor as a fresh interpreter (engine/container/start.py, `_may_fork`)."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._sampler: Sampler | None = None
        self._sampler_error: str | None = None
        self._history: dict[str, dict[str, deque[float]]] = {}
        self._limits: dict[str, tuple[int | None, int | None]] = {}
        self._cpu_limits: dict[str, float | None] = {}
        # The sampler reads only CPU and memory (TABLE) unless a detail screen shows the rest (FULL);
        # _full_rounds counts the FULL rounds in a row: block I/O rates need two (the first compares
        # with a TABLE round, which reads no block I/O).
        self._detail_shown = False
        self._full_rounds = 0
        self._lock = threading.Lock()
        self._prev_net: dict[str, tuple[float, int, int]] = {}
        self._reconciled_at: float | None = None
        self._host_total = 0
        self._record_cache: dict[str, tuple[tuple[int, ...], ContainerRecord]] = {}
        self._records: tuple[ContainerRecord, ...] = ()
        self._fixed: dict[str, _RecordFacts] = {}
        self._last_stats: dict[str, ContainerStats] = {}
        self._events: EventStream | None = None
        self._records_signature: tuple[int, ...] | None = None
        self._records_scanned_at = 0.0
        self._reconcile_error: str | None = None

    # ---- containers and stats

    def _containers(self) -> list[ContainerRecord]:
        now = time.monotonic()
        if self._reconciled_at is None or now - self._reconciled_at >= RECONCILE_INTERVAL:
            # as every CLI verb does (there is no daemon): mark containers whose monitor died, clean
            # after them, restart them as their policy says, finish what a killed verb left
            self._reconciled_at = now
            try:
                api_containers.reconcile(self.config)
            except Exception as exc:
                self._reconcile_error = f"reconcile failed: {exc}"
        return self._cached_records()

    def _cached_records(self) -> list[ContainerRecord]:
        """Every container record. While the container index's signature is unchanged no record
        changed (every record write appends to the index), so the list is reused without touching
        the records: two stats per refresh. Otherwise, and at least every RECONCILE_INTERVAL (a
        writer killed half-way leaves no trace in the signature), a record is parsed again only when
        its files changed (a stat per container instead of two JSON parses: 200 containers cost
        ~15 ms otherwise)."""
        now = time.monotonic()
        signature = index_signature(self.config.containers_dir)
        if (signature is not None and signature == self._records_signature
                and now - self._records_scanned_at < RECONCILE_INTERVAL):
            return list(self._records)
        records = self._scan_records()
        self._records, self._records_signature, self._records_scanned_at = tuple(records), signature, now
        return records

    def _scan_records(self) -> list[ContainerRecord]:
        records = []
        seen = set()
        now_ns = time.time_ns()
        try:
            entries = list(os.scandir(self.config.containers_dir))
        except FileNotFoundError:
            entries = []
        for entry in entries:
            if len(entry.name) != 64:
                continue
            try:
                st = os.stat(os.path.join(entry.path, "config.v2.json"))
            except OSError:
                continue  # being created or removed right now
            try:
                hc = os.stat(os.path.join(entry.path, "hostconfig.json"))
                hc_sig: tuple[int, ...] = (hc.st_mtime_ns, hc.st_ino, hc.st_size)
            except OSError:
                hc_sig = ()
            signature = (st.st_mtime_ns, st.st_ino, st.st_size, *hc_sig)
            cached = self._record_cache.get(entry.name)
            # Two saves within one timestamp tick can leave the same signature (a renamed-over
            # file's inode reused, "created" and "running" of one length): a record written in the
            # last two seconds is always read again.
            settled = now_ns - st.st_mtime_ns > 2_000_000_000
            if cached is not None and cached[0] == signature and settled:
                record = cached[1]
            else:
                try:
                    record = load_record(self.config, entry.name)
                except (DockuiError, ValueError, KeyError, OSError):
                    continue
                self._record_cache[entry.name] = (signature, record)
            records.append(record)
            seen.add(entry.name)
        for gone in set(self._record_cache) - seen:
            del self._record_cache[gone]
        records.sort(key=lambda r: r.created, reverse=True)
        return records

    def show_detail_stats(self, shown: bool) -> None:
        """A detail screen opened (sample everything: block I/O, pids) or closed (CPU and memory
        only, what the tables show). Takes effect at the next round; never blocks the caller."""
        self._detail_shown = shown

    def _sample(self, focus: frozenset[str] | None = None) -> StatsSnapshot:
        if self._sampler is None and self._sampler_error is None:
            try:
                from engine.stats.sampler import FULL, TABLE, Sampler

                self._sampler = Sampler(self.config, level=FULL if self._detail_shown else TABLE)
            except ImportError as exc:
                self._sampler_error = str(_unavailable(exc))
            except Exception as exc:
                self._sampler_error = f"the stats sampler failed to start: {exc}"
        if self._sampler is None:
            raise EngineUnavailable(self._sampler_error or "the stats sampler is unavailable")
        from engine.stats.sampler import FULL, TABLE  # loaded with the sampler above

        level = FULL if self._detail_shown else TABLE
        if self._sampler.level != level:
            self._sampler.set_level(level)
        # The table's rows off screen are read every OFFSCREEN_EVERY rounds (a FULL round, for the
        # detail screen, reads everything: it has no rows off screen to spare).
        if focus is not None and level == TABLE:
            snapshot = self._sampler.sample(focus, OFFSCREEN_EVERY)
        else:
            snapshot = self._sampler.sample()
        self._full_rounds = self._full_rounds + 1 if level == FULL else 0
        return snapshot

    def snapshot(self, focus: frozenset[str] | None = None) -> Snapshot:
        """Every container with its figures. `focus`: the rows a screen shows; the others' figures
        are read every OFFSCREEN_EVERY seconds and held in between (their history too, so that its
        timeline stays one sample a second)."""
        problems: list[str] = []
        try:
            records = self._containers()
        except DockuiError as exc:
            records = []
            problems.append(str(exc))
        if self._reconcile_error:
            problems.append(self._reconcile_error)
        stats: dict[str, ContainerStats] = {}
        host: HostView | None = None
        try:
            snap = self._sample(focus)
            stats = {s.id: s for s in snap.containers}
            for held in snap.skipped:
                if held in self._last_stats:
                    stats[held] = self._last_stats[held]
            self._last_stats = stats
            host = _host_view(snap.host) if snap.host is not None else _host_from_psutil()
            self._host_total = host.mem_total
        except Exception as exc:
            problems.append(f"live stats unavailable: {exc}")
            host = _host_from_psutil()
        now = time.time()
        with self._lock:
            views = [self._view(rec, stats.get(rec.id), now) for rec in records]
            for gone in set(self._history) - {rec.id for rec in records}:
                del self._history[gone]
                self._fixed.pop(gone, None)
                self._limits.pop(gone, None)
                self._cpu_limits.pop(gone, None)
        return Snapshot(tuple(views), host, tuple(problems))

    def _view(self, rec: ContainerRecord, st: ContainerStats | None, now: float) -> ContainerView:
        """One row: the record, and its figures when it runs (an exited container keeps no address,
        ports, figures or sparklines)."""
        hist = self._history.get(rec.id)
        if hist is None:
            hist = self._history[rec.id] = {k: deque(maxlen=HISTORY) for k in HISTORY_KEYS}
            hist["cpu_spark"], hist["mem_spark"] = deque(maxlen=SPARK_POINTS), deque(maxlen=SPARK_POINTS)
        fixed = self._fixed.get(rec.id)
        if fixed is None or fixed.record is not rec:  # parsed once per record version, not per refresh
            fixed = self._fixed[rec.id] = _RecordFacts.of(rec)
        cpu: float | None = None
        mem = limit = pids = None
        if st is not None and rec.status == "running":
            cpu, mem, limit = st.cpu_percent, st.memory_usage, st.memory_limit
            for key, value in (("cpu", cpu), ("mem", mem), ("rx", st.net_rx_rate), ("tx", st.net_tx_rate),
                               ("cpu_spark", cpu), ("mem_spark", mem)):
                hist[key].append(float(value))
            self._record_full_figures(rec.id, st, hist)
            pids = st.pids if self._full_rounds else None
            pids_limit = st.pids_limit if self._full_rounds else self._limits.get(rec.id, (None, None))[1]
            self._limits[rec.id] = (limit, pids_limit)
            self._cpu_limits[rec.id] = fixed.cpu_limit
        live_now = rec.status in LIVE_STATES
        return ContainerView(
            id=rec.id,
            name=rec.name,
            image=rec.image,
            status=rec.status,
            state_text=record_status_text(rec, now, compact=True),  # the one STATUS text, `ps`'s too
            exit_code=rec.exit_code,
            ip=fixed.ip if live_now else "",
            ports=fixed.ports if live_now else "",
            created=rec.created,
            labels=fixed.labels,
            cpu_percent=cpu,
            mem_usage=mem,
            mem_limit=limit,
            pids=pids,
            cpu_history=tuple(hist["cpu_spark"]) if live_now else (),
            mem_history=tuple(hist["mem_spark"]) if live_now else (),
            oom_killed=rec.oom_killed,
            started_at=fixed.started,
            finished_at=fixed.finished,
            image_id=rec.image_id,
            health=fixed.health if rec.status == "running" else "",
            project=fixed.project,
            attachable=fixed.attachable,
        )

    def _record_full_figures(self, container_id: str, st: ContainerStats, hist: dict[str, deque[float]]) -> None:
        """Block I/O and pids, which only FULL rounds read. A TABLE round empties their history
        rather than leave a gap in it: the plots show them since the detail screen opened."""
        if not self._full_rounds:
            for key in ("br", "bw", "pids"):
                hist[key].clear()
            return
        hist["pids"].append(float(st.pids))
        if self._full_rounds >= 2:
            hist["br"].append(st.blk_read_rate)
            hist["bw"].append(st.blk_write_rate)

    def stats_series(self, container_id: str) -> StatsSeries:
        with self._lock:
            hist = self._history.get(container_id)
            if not hist:
                return StatsSeries()
            mem_limit, pids_limit = self._limits.get(container_id, (None, None))
            if mem_limit and self._host_total and mem_limit >= self._host_total:
                mem_limit = None  # the sampler reports the host's memory for "no limit"
            return StatsSeries(cpu=tuple(hist["cpu"]), mem=tuple(hist["mem"]), mem_limit=mem_limit,
                               cpu_limit=self._cpu_limits.get(container_id),
                               net_rx=tuple(hist["rx"]), net_tx=tuple(hist["tx"]), blk_read=tuple(hist["br"]),
                               blk_write=tuple(hist["bw"]), pids=tuple(hist["pids"]), pids_limit=pids_limit)

    def inspect(self, container_id: str) -> dict[str, Any]:
        return api_containers.inspect(self.config, container_id)

    def events(self) -> list[EventView]:
        """The engine's events since the last call: the last EVENTS_BACKLOG seconds on the first
        one. One follower of the log for the session (engine.api.system.EventStream), polled only
        while the events screen is shown."""
        from engine.api import system as api_system

        if self._events is None:
            since = time.time_ns() - int(EVENTS_BACKLOG * 1e9)
            self._events = api_system.EventStream(self.config, api_system.EventQuery(since_ns=since))
            found = list(self._events.backlog) + self._events.poll()
        else:
            found = self._events.poll()
        return [_event_view(e) for e in found]

    def top(self, container_id: str) -> ProcessTable:
        """The container's processes as `dockui top ID -eo pid,user,time,cmd` lists them (host pids,
        as Docker's top): read only while the Top tab is on view."""
        titles, rows = api_containers.top(self.config, container_id, list(TOP_PS_ARGS))
        return ProcessTable(tuple(titles), tuple(tuple(row) for row in rows))

    def container_config(self, container_id: str) -> ConfigView:
        return config_view(api_containers.find(self.config, container_id))

    def prune_containers(self, container_ids: tuple[str, ...]) -> list[str]:
        """Remove the stopped containers the question named (not whatever is stopped by the time the
        user says yes): without force, so one started since is refused by the engine, and named."""
        removed, refused = [], []
        for cid in container_ids:
            try:
                removed.append(api_containers.remove(self.config, cid).name)
            except NotFound:
                continue  # gone already
            except DockuiError as exc:
                refused.append(str(exc))
        if refused:
            raise DockuiError("; ".join(refused) + (f" (removed {', '.join(removed)})" if removed else ""))
        return [f"removed {', '.join(removed)}" if removed else "nothing to remove"]

    def read_logs(self, container_id: str, cursor: int) -> tuple[list[LogLine], int]:
        """New lines of the json-file log after byte `cursor` (Docker's format, written by the monitor);
        Docker's error for a container whose log driver keeps nothing (`--log-driver none`)."""
        record = api_containers.find(self.config, container_id)
        return read_json_log(Path(readable_log(self.config, record)), cursor)

    def container_action(self, action: str, container_id: str) -> None:
        calls: dict[str, Callable[[EngineConfig, str], object]] = {
            "start": api_containers.start, "stop": api_containers.stop, "restart": api_containers.restart,
            "kill": api_containers.kill, "pause": api_containers.pause, "unpause": api_containers.unpause,
            # the dialog asked first, and said a running container would be killed
            "remove": lambda config, ref: api_containers.remove(config, ref, force=True),
        }
        if action not in calls:
            raise InvalidArgument(f"unknown action {action}")
        calls[action](self.config, container_id)

    # ---- images

    def images(self) -> list[ImageView]:
        users: dict[str, list[str]] = {}
        for rec in self._cached_records():
            users.setdefault(rec.image_id, []).append(rec.name)
        views = []
        for listed in api_images.list_images(self.config):
            rec = listed.record
            layers = tuple(LayerView(layer.chain_id, layer.diff_id, layer.size)
                           for layer in api_images.layers(self.config, rec.id))
            used_by = tuple(sorted(users.get(rec.id, ())))
            for tag in listed.repo_tags or ("<none>:<none>",):
                repo, _, t = tag.rpartition(":")
                if "/" in t or not repo:
                    repo, t = tag, "latest"
                views.append(ImageView(rec.id, repo, t, rec.created or "", rec.size, layers, used_by))
        views.sort(key=lambda v: (v.repository, v.tag))
        return views

    def remove_image(self, reference: str, force: bool = False) -> list[str]:
        return [f"{r.kind}: {r.value}" for r in api_images.remove(self.config, reference, force=force)]

    def image_history(self, reference: str) -> list[HistoryView]:
        return [HistoryView(h.image_id, h.created, h.created_by, h.size, h.comment)
                for h in api_images.history(self.config, reference)]

    def prune_images(self) -> list[str]:
        removals, freed = api_images.prune(self.config)
        return [f"{r.kind}: {r.value}" for r in removals] + [f"Total reclaimed space: {human_size(freed)}"]

    def pull(self, reference: str, progress: Callable[[PullProgress], None], cancel: threading.Event) -> str:
        def on_event(event: PullEvent) -> None:
            progress(PullProgress(event.layer, event.status, int(event.current or 0), int(event.total or 0)))

        return api_images.pull(self.config, reference, progress=on_event, cancel=cancel).record.id

    def run(self, request: RunRequest) -> str:
        """Create and start the container through the API, in this process (what `dockui run -d`
        does): the start path launches the monitor as a fresh interpreter, since this app has threads."""
        options = request.options()
        try:
            api_images.resolve(self.config, options.image)
        except NotFound:  # as `run` does (--pull missing): the image is pulled first
            api_images.pull(self.config, options.image)
        record = api_containers.create(self.config, options)
        api_containers.start(self.config, record.id)
        return record.id

    def import_host_busybox(self) -> str:
        with tempfile.TemporaryDirectory(prefix="dockui-import-") as tmp:
            tar_path = Path(tmp) / "busybox.tar"
            build_busybox_rootfs_tar(tar_path)
            with open(tar_path, "rb") as source:
                record = api_images.import_tarball(self.config, source, "busybox:latest", changes=['CMD ["sh"]'])
        return record.id

    # ---- volumes

    def volumes(self) -> list[VolumeView]:
        names = {rec.id: rec.name for rec in self._cached_records()}
        users = api_volumes.used_by(self.config)
        sizes = api_volumes.sizes(self.config)
        return [VolumeView(v.name, "local", str(v.mountpoint), v.created_at, tuple(sorted(v.labels.items())),
                           sizes.get(v.name, 0), tuple(sorted(names.get(c, c[:12]) for c in users.get(v.name, ()))),
                           v.anonymous)
                for v in api_volumes.list_volumes(self.config)]

    def inspect_volume(self, name: str) -> dict[str, Any]:
        return api_volumes.inspect(self.config, name)

    def remove_volume(self, name: str) -> list[str]:
        api_volumes.remove(self.config, name)
        return []

    def prune_volumes(self) -> list[str]:
        removed, freed = api_volumes.prune(self.config, all_volumes=True)
        return [*removed, f"Total reclaimed space: {human_size(freed)}"]

    # ---- networks

    def networks(self) -> list[NetworkView]:
        views = []
        for doc in api_networks.list_networks(self.config):
            ipam = (doc["IPAM"]["Config"] or [{}])[0]
            views.append(NetworkView(doc["Name"], doc["Id"], doc["Driver"], ipam.get("Subnet", ""),
                                     ipam.get("Gateway", ""), bool(doc["Internal"]),
                                     tuple(sorted(c["Name"] for c in doc["Containers"].values())),
                                     doc["Name"] in api_networks.BUILTIN))
        return views

    def create_network(self, name: str, subnet: str = "") -> list[str]:
        net = api_networks.create(self.config, api_networks.CreateNetwork(name, subnet=subnet or None))
        return [f"{net.name}: {net.subnet}"]

    def remove_network(self, name: str) -> list[str]:
        api_networks.remove(self.config, name)
        return []

    def prune_networks(self) -> list[str]:
        return api_networks.prune(self.config)

    def connect(self, network: str, container: str) -> list[str]:
        api_networks.connect(self.config, api_networks.Connection(network, container))
        return []

    def disconnect(self, network: str, container: str) -> list[str]:
        api_networks.disconnect(self.config, network, container)
        return []

    def topology(self) -> list[BridgeView]:
        try:
            topo = api_networks.topology(self.config)
        except ImportError as exc:
            raise _unavailable(exc) from exc
        published = {rec.id: _port_list(published_ports(rec))
                     for rec in self._cached_records()}
        now = time.monotonic()
        views = []
        for bridge in topo.bridges:
            ports = []
            for port in bridge.ports:
                rx_rate, tx_rate = self._rates(port.host_veth, now, port.rx_bytes, port.tx_bytes)
                iface = topo.interfaces.get(port.host_veth)
                ports.append(PortView(
                    veth=port.host_veth,
                    ifindex=port.ifindex,
                    state=port.oper_state,
                    container_id=port.container_id,
                    container_name=port.container_name,
                    ip=f"{iface.ip}/{iface.prefixlen}" if iface else port.ip,
                    mac=port.mac,
                    rx_rate=tx_rate,  # host-side counters are the container's, swapped
                    tx_rate=rx_rate,
                    # ports are published on the container's first interface only
                    published=published.get(port.container_id, ()) if iface and iface.ifname == "eth0" else (),
                    links=tuple(f"/{name}:/{port.container_name}/{alias}" for name, alias in iface.links) if iface else (),
                    ifname=iface.ifname if iface else "?",
                ))
            views.append(BridgeView(name=bridge.name, subnet=bridge.subnet,
                                    gateway=bridge.gateway or (bridge.addresses[0] if bridge.addresses else ""),
                                    state=bridge.state, mtu=bridge.mtu, ports=tuple(ports), network=bridge.network))
        return views

    def _rates(self, veth: str, now: float, rx: int, tx: int) -> tuple[float, float]:
        rx_rate = tx_rate = 0.0
        prev = self._prev_net.get(veth)
        if prev and now > prev[0]:
            rx_rate = max(0.0, (rx - prev[1]) / (now - prev[0]))
            tx_rate = max(0.0, (tx - prev[2]) / (now - prev[0]))
        self._prev_net[veth] = (now, rx, tx)
        return rx_rate, tx_rate

    # ---- exec and attach

    def attach_command(self, container_id: str) -> list[str] | None:
        """`dockui attach ID` as a child process owning the terminal while the app is suspended (its
        attach client reads the detach keys, ctrl-p ctrl-q, as Docker's)."""
        return [sys.executable, "-m", "tui.launcher", "--root", str(self.config.root), "attach", container_id]

    def exec_command(self, container_id: str) -> list[str] | None:
        """`dockui exec -it ID <shell>` as a child process (it owns the terminal while the app is suspended),
        with the first of SHELLS that runs in the container: images without `sh` are common. Blocking
        (a worker calls it); DockuiError naming what was tried when none runs."""
        base = [sys.executable, "-m", "tui.launcher", "--root", str(self.config.root), "exec"]
        last = ""
        for shell in SHELLS:
            try:
                probe = subprocess.run([*base, container_id, *shell, "-c", "exit 0"], capture_output=True,
                                       text=True, timeout=15, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                last = f"{' '.join(shell)} did not answer in 15 s"
                continue
            if probe.returncode == 0:
                return [*base, "-i", "-t", container_id, *shell]
            last = (probe.stderr.strip().splitlines() or [f"exit status {probe.returncode}"])[-1]
        tried = ", ".join(" ".join(shell) for shell in SHELLS)
        raise DockuiError(f"no shell runs in the container (tried {tried}): {last.removeprefix('Error: ')}")


# --------------------------------------------------------------------------------------------


def cpu_quota_percent(host_config: dict[str, Any]) -> float | None:
    """The CPU quota of a HostConfig in percent of one core (`--cpus 0.5` and `--cpu-quota 50000
    --cpu-period 100000` are both 50.0); None without one."""
    nano = host_config.get("NanoCpus") or 0
    if nano > 0:
        return nano / 1e7
    quota, period = host_config.get("CpuQuota") or 0, host_config.get("CpuPeriod") or 100_000
    return quota / period * 100.0 if quota > 0 and period > 0 else None


_LONG_ID = re.compile(r"\b((?:sha256:)?[0-9a-f]{12})[0-9a-f]{52}\b")  # IDs as the tables show them: 12 hex


def _event_view(event: Event) -> EventView:
    attributes = dict(event.attributes)
    name = attributes.pop("name", "") or (event.actor_id if event.type == "volume" else "")  # a volume's ID is its name
    details = " ".join(f"{k}={v}" for k, v in sorted(attributes.items()))
    return EventView(event.time_nano / 1e9, event.type, event.action, event.actor_id,
                     _LONG_ID.sub(r"\1", name), _LONG_ID.sub(r"\1", details))


def _host_view(host: HostStats) -> HostView:
    return HostView(host.cpu_percent_per_core, host.memory_used, host.memory_total, host.load)


def _host_from_psutil() -> HostView:
    import psutil

    mem = psutil.virtual_memory()
    return HostView(tuple(psutil.cpu_percent(percpu=True)), mem.total - mem.available, mem.total,
                    tuple(os.getloadavg()))  # type: ignore[arg-type]


def read_json_log(path: Path, cursor: int, limit_bytes: int = 1 << 20) -> tuple[list[LogLine], int]:
    """Parse Docker json-file lines from byte `cursor`; returns (lines, new cursor). Bounded per call."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if cursor > size:  # rotated or truncated
                cursor = 0
            f.seek(cursor)
            data = f.read(limit_bytes)
    except FileNotFoundError:
        return [], cursor
    end = data.rfind(b"\n")
    if end < 0:
        return [], cursor
    lines = []
    for raw in data[: end + 1].splitlines():
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        lines.append(LogLine(obj.get("stream", "stdout"), obj.get("time", ""), str(obj.get("log", "")).rstrip("\n")))
    return lines, cursor + end + 1


def busybox_applets(busybox: str = "/bin/busybox") -> list[str]:
    out = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def build_busybox_rootfs_tar(dest: Path, busybox: str = "/bin/busybox") -> None:
    """A minimal root filesystem from the host's busybox-static: the binary, its applet links, passwd/group."""
    if not Path(busybox).is_file():
        raise EngineUnavailable(f"{busybox} not found: install busybox-static (apt-get install busybox-static)")

    def add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = mode
        tar.addfile(info)

    def add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
        import io

        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = mode
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(dest, "w") as tar:
        for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "tmp", "proc", "sys", "dev", "var"):
            add_dir(tar, d, 0o1777 if d == "tmp" else 0o755)
        info = tar.gettarinfo(busybox, arcname="bin/busybox")
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        with open(busybox, "rb") as f:
            tar.addfile(info, f)
        for applet in busybox_applets(busybox):
            name = applet.lstrip("/")
            if name == "bin/busybox" or not name:
                continue
            link = tarfile.TarInfo(name)
            link.type = tarfile.SYMTYPE
            link.linkname = "/bin/busybox"
            tar.addfile(link)
        add_file(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        add_file(tar, "etc/group", b"root:x:0:\nnogroup:x:65534:\n")
