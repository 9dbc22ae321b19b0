"""The only place the TUI touches the engine.

Every engine call is a plain, blocking function here; the app runs them in Textual thread workers
and gets results back as messages, so the UI thread never waits on the kernel, the disk or a
registry. Results are plain frozen dataclasses (the "view" of the engine the screens render), so
the recorded backend (tui/recorded.py) can feed the very same screens with fixed values.

Each engine module is imported lazily and guarded: if a piece of the engine is missing or broken,
the call raises `EngineUnavailable` with a sentence the UI shows instead of crashing.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from engine.cli.output import human_duration  # noqa: F401 - the images screen ages images with it
from engine.config import EngineConfig
from engine.errors import DockuiError, InvalidArgument

HISTORY = 300  # samples kept per container: 5 minutes at 1 Hz
LIVE_STATES = ("running", "paused", "restarting")
SHELLS = (("sh",), ("ash",), ("/bin/busybox", "sh"))  # what `e` tries, in order
SPARK_POINTS = 20  # samples a table sparkline shows


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

    cpu: tuple[float, ...] = ()
    mem: tuple[float, ...] = ()
    mem_limit: int | None = None
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
class ProcessTable:
    titles: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


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
    links: tuple[str, ...] = ()


@dataclass(frozen=True)
class BridgeView:
    name: str
    subnet: str
    gateway: str
    state: str
    mtu: int
    ports: tuple[PortView, ...] = ()


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
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def validate_reference(text: str) -> str:
    """The canonical form of an image reference, or InvalidArgument with the parser's words."""
    text = text.strip()
    if not text:
        raise InvalidArgument("an image reference is required (e.g. busybox)")
    try:
        reference = importlib.import_module("engine.image.reference")
    except ImportError as exc:
        raise EngineUnavailable(f"engine.image.reference is not available: {exc}") from exc
    return str(reference.parse_reference(text))


def validate_run(request: RunRequest) -> dict[str, str]:
    """Field name -> error message, empty when the request looks valid."""
    errors: dict[str, str] = {}
    try:
        validate_reference(request.image)
    except DockuiError as exc:
        errors["image"] = str(exc)
    if request.name and not _NAME.match(request.name):
        errors["name"] = "names are [a-zA-Z0-9][a-zA-Z0-9_.-]*"
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
        if not _NAME.match(value.split(":")[0]):
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
    if not value or value.startswith("0001-"):
        return None
    text = value.replace("Z", "+00:00")
    match = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", text)
    if match:
        frac = (match.group(2) or "")[:7]
        text = match.group(1) + frac + (match.group(3) or "")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def short_duration(seconds: float) -> str:
    """A compact age ("5 s", "12 min", "3 h", "4 d"): the STATUS column is 26 cells wide and
    Docker's words ("Exited (137) About a minute ago") do not fit it."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400 * 2:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


def state_text(status: str, exit_code: int | None, started: float | None, finished: float | None,
               now: float, oom_killed: bool = False) -> str:
    """The STATUS text, at most 26 characters for any value (a test checks)."""
    code = exit_code if exit_code is not None else "?"
    if status == "running" and started:
        return f"Up {short_duration(now - started)}"
    if status == "paused" and started:
        return f"Up {short_duration(now - started)} (Paused)"
    if status == "restarting":
        return "Restarting"
    if status in ("exited", "dead") and oom_killed:
        return f"Exited ({code}) · OOM killed"
    if status in ("exited", "dead") and finished:
        return f"Exited ({code}) {short_duration(now - finished)} ago"
    if status == "exited":
        return f"Exited ({code})"
    return status.capitalize()


def format_ports(ports: Any) -> str:
    """Docker's PORTS column from a `{"80/tcp": [{"HostIp": .., "HostPort": ..}]}` map (or a list)."""
    if not ports:
        return ""
    out = []
    if isinstance(ports, dict):
        for container_port, bindings in sorted(ports.items()):
            if not bindings:
                out.append(container_port)
                continue
            for b in bindings:
                host_ip = b.get("HostIp") or "0.0.0.0"
                out.append(f"{host_ip}:{b.get('HostPort')}->{container_port}")
    else:
        out = [str(p) for p in ports]
    return ", ".join(out)


# --------------------------------------------------------------------------------------------
# The interface the app calls (the recorded backend implements the same methods).


class Backend(Protocol):
    def snapshot(self) -> Snapshot: ...
    def stats_series(self, container_id: str) -> StatsSeries: ...
    def inspect(self, container_id: str) -> dict[str, Any]: ...
    def top(self, container_id: str) -> ProcessTable: ...
    def read_logs(self, container_id: str, cursor: int) -> tuple[list[LogLine], int]: ...
    def container_action(self, action: str, container_id: str) -> None: ...
    def images(self) -> list[ImageView]: ...
    def remove_image(self, reference: str) -> list[str]: ...
    def pull(self, reference: str, progress: Callable[[PullProgress], None], cancel: threading.Event) -> str: ...
    def run(self, request: RunRequest) -> str: ...
    def topology(self) -> list[BridgeView]: ...
    def import_host_busybox(self) -> str: ...
    def exec_command(self, container_id: str) -> list[str] | None: ...


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


def _engine(module: str) -> Any:
    """Import an engine module, or say in one sentence which piece is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EngineUnavailable(f"{module} is not available yet ({exc})") from exc
    except Exception as exc:  # a half-landed module that fails at import
        raise EngineUnavailable(f"{module} failed to load: {exc}") from exc


def _function(module: str, *names: str) -> Callable[..., Any]:
    mod = _engine(module)
    for name in names:
        fn = getattr(mod, name, None)
        if callable(fn):
            return fn
    raise EngineUnavailable(f"{module} has no {'/'.join(names)} yet")


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    """First present attribute or key: tolerant of dataclass vs dict results."""
    for name in names:
        if isinstance(obj, dict):
            if name in obj:
                return obj[name]
        elif hasattr(obj, name):
            return getattr(obj, name)
    return default


class EngineBackend:
    """The real engine, in-process. Keeps the stats sampler and per-container history between calls."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._sampler: Any = None
        self._sampler_error: str | None = None
        self._history: dict[str, dict[str, deque[float]]] = {}
        self._limits: dict[str, tuple[int | None, int | None]] = {}
        self._lock = threading.Lock()
        self._prev_net: dict[str, tuple[float, int, int]] = {}
        self._reconciled = False
        self._host_total = 0
        self._record_cache: dict[str, tuple[tuple[int, ...], Any]] = {}
        self._reconcile_error: str | None = None

    # ---- containers and stats

    def _containers(self) -> list[Any]:
        if not self._reconciled:
            # the TUI is an engine start: mark containers whose monitor died, clean after them
            self._reconciled = True
            try:
                _function("engine.container.runtime", "reconcile")(self.config)
            except Exception as exc:
                self._reconcile_error = f"reconcile failed: {exc}"
        state = _engine("engine.container.state")
        load = getattr(state, "load", None)
        if load is None:
            return list(_function("engine.container.state", "list_containers")(self.config))
        return self._cached_records(load)

    def _cached_records(self, load: Callable[..., Any]) -> list[Any]:
        """`list_containers`, but a record is parsed again only when its files changed (a stat per
        container per refresh instead of two JSON parses: 200 containers cost ~15 ms otherwise)."""
        records = []
        seen = set()
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
            if cached is not None and cached[0] == signature:
                record = cached[1]
            else:
                try:
                    record = load(self.config, entry.name)
                except (DockuiError, ValueError, KeyError, OSError):
                    continue
                self._record_cache[entry.name] = (signature, record)
            records.append(record)
            seen.add(entry.name)
        for gone in set(self._record_cache) - seen:
            del self._record_cache[gone]
        records.sort(key=lambda r: r.created, reverse=True)
        return records

    def _sample(self) -> Any:
        if self._sampler is None and self._sampler_error is None:
            try:
                self._sampler = _function("engine.stats.sampler", "Sampler")(self.config)
            except Exception as exc:
                self._sampler_error = str(exc)
        if self._sampler is None:
            raise EngineUnavailable(self._sampler_error or "engine.stats.sampler unavailable")
        return self._sampler.sample()

    def snapshot(self) -> Snapshot:
        problems: list[str] = []
        try:
            records = self._containers()
        except DockuiError as exc:
            records = []
            problems.append(str(exc))
        if self._reconcile_error:
            problems.append(self._reconcile_error)
        stats: dict[str, Any] = {}
        host: HostView | None = None
        try:
            snap = self._sample()
            per = _get(snap, "containers", default={}) or {}
            if isinstance(per, dict):
                stats = dict(per)
            else:
                stats = {_get(s, "id", "container_id"): s for s in per}
            host = _host_view(_get(snap, "host"))
            if host is not None:
                self._host_total = host.mem_total
        except Exception as exc:
            problems.append(f"live stats unavailable: {exc}")
            host = _host_from_psutil()
        now = time.time()
        views = []
        live: set[str] = set()
        with self._lock:
            for rec in records:
                cid = rec.id
                live.add(cid)
                st = stats.get(cid)
                hist = self._history.setdefault(cid, {k: deque(maxlen=HISTORY) for k in
                                                      ("cpu", "mem", "rx", "tx", "br", "bw", "pids")})
                cpu = mem = limit = pids = None
                if st is not None and rec.status == "running":
                    cpu = float(_get(st, "cpu_percent", default=0.0) or 0.0)
                    mem = int(_get(st, "memory_usage", "mem_usage", default=0) or 0)
                    limit = _get(st, "memory_limit", "mem_limit")
                    pids = _get(st, "pids", "pids_current")
                    hist["cpu"].append(cpu)
                    hist["mem"].append(float(mem))
                    hist["rx"].append(float(_get(st, "net_rx_rate", "rx_rate", default=0.0) or 0.0))
                    hist["tx"].append(float(_get(st, "net_tx_rate", "tx_rate", default=0.0) or 0.0))
                    hist["br"].append(float(_get(st, "blk_read_rate", "block_read_rate", default=0.0) or 0.0))
                    hist["bw"].append(float(_get(st, "blk_write_rate", "block_write_rate", default=0.0) or 0.0))
                    hist["pids"].append(float(pids or 0))
                    self._limits[cid] = (limit, _get(st, "pids_limit"))
                net = rec.network or {}
                live_now = rec.status in LIVE_STATES  # an exited container keeps no address, ports or figures
                started, finished = parse_time(rec.started_at), parse_time(rec.finished_at)
                oom = bool(getattr(rec, "oom_killed", False))
                views.append(ContainerView(
                    id=cid,
                    name=rec.name,
                    image=rec.image,
                    status=rec.status,
                    state_text=state_text(rec.status, rec.exit_code, started, finished, now, oom),
                    exit_code=rec.exit_code,
                    ip=str(net.get("IPAddress") or "") if live_now else "",
                    ports=format_ports(net.get("Ports")) if live_now else "",
                    created=rec.created,
                    labels=tuple(sorted(((rec.config or {}).get("Labels") or {}).items())),
                    cpu_percent=cpu,
                    mem_usage=mem,
                    mem_limit=limit,
                    pids=pids,
                    cpu_history=tuple(list(hist["cpu"])[-SPARK_POINTS:]) if live_now else (),
                    mem_history=tuple(list(hist["mem"])[-SPARK_POINTS:]) if live_now else (),
                    oom_killed=oom,
                    started_at=started,
                    finished_at=finished,
                ))
            for gone in set(self._history) - live:
                del self._history[gone]
        return Snapshot(tuple(views), host, tuple(problems))

    def stats_series(self, container_id: str) -> StatsSeries:
        with self._lock:
            hist = self._history.get(container_id)
            if not hist:
                return StatsSeries()
            mem_limit, pids_limit = self._limits.get(container_id, (None, None))
            if mem_limit and self._host_total and mem_limit >= self._host_total:
                mem_limit = None  # the sampler reports the host's memory for "no limit"
            return StatsSeries(cpu=tuple(hist["cpu"]), mem=tuple(hist["mem"]), mem_limit=mem_limit,
                               net_rx=tuple(hist["rx"]), net_tx=tuple(hist["tx"]), blk_read=tuple(hist["br"]),
                               blk_write=tuple(hist["bw"]), pids=tuple(hist["pids"]), pids_limit=pids_limit)

    def _record(self, container_id: str) -> Any:
        return _function("engine.container.state", "find_container")(self.config, container_id)

    def inspect(self, container_id: str) -> dict[str, Any]:
        record = self._record(container_id)
        try:
            fn = _function("engine.container.runtime", "inspect")
        except EngineUnavailable:
            return _as_dict(record)
        return fn(self.config, record)

    def top(self, container_id: str) -> ProcessTable:
        fn = _function("engine.container.runtime", "top")
        result = fn(self.config, container_id)
        titles = _get(result, "titles", "Titles")
        rows = _get(result, "processes", "Processes", "rows")
        if titles is None and isinstance(result, tuple) and len(result) == 2:
            titles, rows = result
        if titles is None:
            raise EngineUnavailable("engine.container.runtime.top returned an unexpected shape")
        return ProcessTable(tuple(str(t) for t in titles), tuple(tuple(str(c) for c in r) for r in rows or ()))

    def read_logs(self, container_id: str, cursor: int) -> tuple[list[LogLine], int]:
        """New lines of the json-file log after byte `cursor` (Docker's format, written by the monitor)."""
        return read_json_log(self.config.containers_dir / container_id / f"{container_id}-json.log", cursor)

    def container_action(self, action: str, container_id: str) -> None:
        if action not in ACTIONS:
            raise InvalidArgument(f"unknown action {action}")
        fn = _function("engine.container.runtime", action)
        if action == "remove":
            fn(self.config, container_id, force=True)  # the dialog asked first, and said it would kill
        else:
            fn(self.config, container_id)

    # ---- images

    def _store(self) -> Any:
        return _function("engine.image.store", "ImageStore")(self.config, containers=_function("engine.container.usage", "container_uses"))

    def images(self) -> list[ImageView]:
        store = self._store()
        views = []
        for rec in store.list_images():
            layers = tuple(LayerView(chain, diff, _layer_size(self.config, chain))
                           for chain, diff in zip(rec.chain_ids, rec.diff_ids, strict=False))
            tags = list(rec.repo_tags) or ["<none>:<none>"]
            for tag in tags:
                repo, _, t = tag.rpartition(":")
                if "/" in t or not repo:
                    repo, t = tag, "latest"
                views.append(ImageView(rec.id, repo, t, rec.created or "", rec.size, layers))
        views.sort(key=lambda v: (v.repository, v.tag))
        return views

    def remove_image(self, reference: str) -> list[str]:
        return list(self._store().remove(reference))

    def pull(self, reference: str, progress: Callable[[PullProgress], None], cancel: threading.Event) -> str:
        pull_image = _function("engine.image.pull", "pull_image")

        def on_event(event: Any) -> None:
            progress(PullProgress(event.layer, event.status, int(event.current or 0), int(event.total or 0)))

        record = pull_image(self.config, reference, None, on_event, cancel)
        return record.id

    def run(self, request: RunRequest) -> str:
        """`dockui run -d ...` through the CLI's own code path, as a subprocess (no fork of this threaded app)."""
        argv = [sys.executable, "-m", "tui.launcher", "--root", str(self.config.root), *request.argv()]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            message = (result.stderr.strip().splitlines() or [f"dockui run exited {result.returncode}"])[-1]
            raise DockuiError(message.removeprefix("Error: "))
        return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""

    def import_host_busybox(self) -> str:
        store = self._store()
        with tempfile.TemporaryDirectory(prefix="dockui-import-") as tmp:
            tar_path = Path(tmp) / "busybox.tar"
            build_busybox_rootfs_tar(tar_path)
            record = store.import_tarball(tar_path, "busybox:latest", changes={"Cmd": ["sh"]})
        return record.id

    # ---- network

    def topology(self) -> list[BridgeView]:
        bridges = _function("engine.network.endpoints", "topology")(self.config)
        names = {}
        try:
            names = {c.id: c for c in self._containers()}
        except DockuiError:
            pass
        now = time.monotonic()
        views = []
        for bridge in bridges:
            ports = []
            for port in _get(bridge, "ports", default=()) or ():
                cid = _get(port, "container_id", default="") or ""
                rx = int(_get(port, "rx_bytes", default=0) or 0)
                tx = int(_get(port, "tx_bytes", default=0) or 0)
                key = str(_get(port, "host_veth", "name", "veth", default=""))
                rx_rate = tx_rate = 0.0
                prev = self._prev_net.get(key)
                if prev and now > prev[0]:
                    rx_rate = max(0.0, (rx - prev[1]) / (now - prev[0]))
                    tx_rate = max(0.0, (tx - prev[2]) / (now - prev[0]))
                self._prev_net[key] = (now, rx, tx)
                rec = names.get(cid)
                net = (rec.network if rec else None) or {}
                links = tuple(str(x) for x in (net.get("Links") or ()))
                ports.append(PortView(
                    veth=key,
                    ifindex=int(_get(port, "ifindex", "host_ifindex", default=0) or 0),
                    state=str(_get(port, "oper_state", "state", default="?")),
                    container_id=cid,
                    container_name=str(_get(port, "container_name", default="") or (rec.name if rec else "")),
                    ip=str(_get(port, "address", "ip", "container_ip", default="") or ""),
                    mac=str(_get(port, "mac", "container_mac", default="") or ""),
                    # host-side counters are the container's, swapped
                    rx_rate=tx_rate,
                    tx_rate=rx_rate,
                    published=tuple(x for x in format_ports(net.get("Ports")).split(", ") if x),
                    links=links,
                ))
            addresses = _get(bridge, "addresses", default=()) or ()
            views.append(BridgeView(
                name=str(_get(bridge, "name")),
                subnet=str(_get(bridge, "subnet", default="")),
                gateway=str(_get(bridge, "gateway", default="") or (addresses[0] if addresses else "")),
                state=str(_get(bridge, "state", "oper_state", default="?")),
                mtu=int(_get(bridge, "mtu", default=0) or 0),
                ports=tuple(ports),
            ))
        return views

    # ---- exec

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


def _as_dict(obj: Any) -> dict[str, Any]:
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return dict(obj) if isinstance(obj, dict) else {"value": repr(obj)}


def _layer_size(config: EngineConfig, chain_id: str) -> int:
    path = config.image_dir / "layerdb" / "sha256" / chain_id.removeprefix("sha256:") / "size"
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


def _host_view(host: Any) -> HostView | None:
    if host is None:
        return _host_from_psutil()
    per_core = _get(host, "cpu_per_core", "cpu_percent_per_core", "per_cpu", default=()) or ()
    load = _get(host, "load", "load_avg", "loadavg", default=(0.0, 0.0, 0.0)) or (0.0, 0.0, 0.0)
    return HostView(tuple(float(x) for x in per_core),
                    int(_get(host, "mem_used", "memory_used", default=0) or 0),
                    int(_get(host, "mem_total", "memory_total", default=0) or 0),
                    tuple(float(x) for x in tuple(load)[:3]))  # type: ignore[arg-type]


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


def load_backend(config: EngineConfig) -> Backend:
    return EngineBackend(config)


def which(name: str) -> str | None:
    return shutil.which(name)


def iter_nonempty(values: Iterable[str]) -> list[str]:
    return [v.strip() for v in values if v.strip()]


def utc_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
