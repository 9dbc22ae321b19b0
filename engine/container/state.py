"""Container state on disk: `<root>/containers/<id>/config.v2.json` + `hostconfig.json`, as Docker keeps it.

There is no daemon, so the files are the only truth. Every change is a read-modify-write under the
container's flock (`<dir>/.lock`), written atomically; names are made unique under one global lock
(`<root>/containers/.names.lock`). Several CLIs, TUIs and monitors can therefore work at once.
Fields dockui needs beyond Docker's (the monitor's pid, process start times) live under "Dockui".

A record that cannot be read (not JSON, a field of the wrong type, another container's ID) is never
skipped or fatal: `load` returns a stand-in in state "dead" whose `error` (and `corrupt`) says
which file and why, so `ps -a` shows it, `inspect` explains it and `rm -f` removes it with its
layer. Such a stand-in is never written back (its removal is held by the removal lock alone).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.config import EngineConfig
from engine.container import index
from engine.container.names import NAME_RE, validate_name
from engine.errors import Conflict, InvalidArgument, NotFound
from engine.util import timefmt
from engine.util.fsutil import file_lock, fsync_dir, read_json
from engine.util.timefmt import now_rfc3339 as now_rfc3339  # re-exported: records are stamped with it

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"
STATUSES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")
ACTIVE_STATUSES = ("running", "paused", "restarting")
ID_RE = re.compile(r"^[0-9a-f]{64}$")


def parse_rfc3339(value: str) -> float:
    """Seconds since the epoch of a record's RFC 3339 time; 0 for Docker's zero time (or none)."""
    return timefmt.parse_rfc3339(value) or 0.0


def process_start_ticks(pid: int) -> int:
    """The start time of `pid` in clock ticks since boot (field 22 of /proc/pid/stat); 0 if gone.

    A pid plus its start time names one process for good, even after the pid is reused.
    """
    if pid <= 0:
        return 0
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    fields = data[data.rindex(b")") + 2 :].split()
    if fields[0] == b"Z":  # a zombie has exited; its parent just has not reaped it
        return 0
    return int(fields[19])


def process_alive(pid: int, start_ticks: int) -> bool:
    return pid > 0 and start_ticks > 0 and process_start_ticks(pid) == start_ticks


# A HostConfig key of the record: the networks a never-started container was connected to (Docker
# allows `network connect` before the first start), joined by engine.api.networks.pending_joined.
PENDING_NETWORKS = "PendingNetworks"


@dataclass
class ContainerRecord:
    """One container, as the CLI, TUI and monitor see it. `config`/`host_config` are Docker's dicts."""

    id: str
    name: str
    image: str  # as the user gave it
    image_id: str
    created: str
    status: str = "created"
    pid: int = 0
    exit_code: int = 0
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    oom_killed: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    host_config: dict[str, Any] = field(default_factory=dict)
    network: dict[str, Any] = field(default_factory=dict)
    cgroup_paths: dict[str, str] = field(default_factory=dict)
    path: str = ""
    args: list[str] = field(default_factory=list)
    restart_count: int = 0
    error: str = ""
    mounts: list[dict[str, Any]] = field(default_factory=list)
    rw_layer: str = ""
    pid_start: int = 0
    monitor_pid: int = 0
    monitor_start: int = 0
    stop_requested: bool = False  # set by stop/kill: the restart policy must not bring it back
    restart_requested: bool = False  # set by restart: the exit its stop causes keeps an --rm container
    platform: str = "linux"
    corrupt: str = ""  # why the files could not be read (a stand-in made by `load`); never saved
    creator_pid: int = 0  # the process creating it, until create's last save: a dead one left it half made
    creator_start: int = 0
    health: dict[str, Any] = field(default_factory=dict)  # State.Health (engine.container.health); {}: no check

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def dir(self, config: EngineConfig) -> Path:
        return config.containers_dir / self.id

    def log_path(self, config: EngineConfig) -> Path:
        return self.dir(config) / f"{self.id}-json.log"

    @property
    def running(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def state_dict(self) -> dict[str, Any]:
        return {
            "Status": self.status,
            "Running": self.status in ("running", "paused"),
            "Paused": self.status == "paused",
            "Restarting": self.status == "restarting",
            "OOMKilled": self.oom_killed,
            "Dead": self.status == "dead",
            "Pid": self.pid if self.status in ("running", "paused") else 0,
            "ExitCode": self.exit_code,
            "Error": self.error,
            "StartedAt": self.started_at,
            "FinishedAt": self.finished_at,
            **({"Health": self.health} if self.health else {}),
        }

    def to_disk(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(config.v2.json, hostconfig.json), laid out as Docker's."""
        v2 = {
            "ID": self.id,
            "Created": self.created,
            "Path": self.path,
            "Args": self.args,
            "Config": self.config,
            "State": self.state_dict(),
            "Image": self.image_id,
            "ImageName": self.image,
            "NetworkSettings": self.network,
            "Name": "/" + self.name,
            "Driver": "overlay2",
            "Platform": self.platform,
            "RestartCount": self.restart_count,
            "MountPoints": {m["Destination"]: m for m in self.mounts},
            "Dockui": {
                "CgroupPaths": self.cgroup_paths,
                "RWLayer": self.rw_layer,
                "PidStart": self.pid_start,
                "MonitorPid": self.monitor_pid,
                "MonitorStart": self.monitor_start,
                "StopRequested": self.stop_requested,
                **({"RestartRequested": True} if self.restart_requested else {}),
                **({"CreatorPid": self.creator_pid, "CreatorStart": self.creator_start} if self.creator_pid else {}),
            },
        }
        return v2, self.host_config

    @classmethod
    def from_disk(cls, v2: dict[str, Any], host_config: dict[str, Any]) -> ContainerRecord:
        state = v2.get("State", {})
        extra = v2.get("Dockui", {})
        return cls(
            id=v2["ID"],
            name=v2.get("Name", "").lstrip("/"),
            image=v2.get("ImageName", ""),
            image_id=v2.get("Image", ""),
            created=v2.get("Created", ZERO_TIME),
            status=state.get("Status", "created"),
            pid=state.get("Pid", 0),
            exit_code=state.get("ExitCode", 0),
            started_at=state.get("StartedAt", ZERO_TIME),
            finished_at=state.get("FinishedAt", ZERO_TIME),
            oom_killed=state.get("OOMKilled", False),
            error=state.get("Error", ""),
            health=state.get("Health") or {},
            config=v2.get("Config", {}),
            host_config=host_config or {},
            network=v2.get("NetworkSettings", {}),
            path=v2.get("Path", ""),
            args=v2.get("Args", []),
            restart_count=v2.get("RestartCount", 0),
            mounts=list(v2.get("MountPoints", {}).values()),
            platform=v2.get("Platform", "linux"),
            cgroup_paths=extra.get("CgroupPaths", {}),
            rw_layer=extra.get("RWLayer", ""),
            pid_start=extra.get("PidStart", 0),
            monitor_pid=extra.get("MonitorPid", 0),
            monitor_start=extra.get("MonitorStart", 0),
            stop_requested=extra.get("StopRequested", False),
            restart_requested=extra.get("RestartRequested", False),
            creator_pid=extra.get("CreatorPid", 0),
            creator_start=extra.get("CreatorStart", 0),
        )

    @property
    def half_created(self) -> bool:
        """Its `create` was killed before the record was complete (no layer, files or volumes yet)."""
        return self.status == "created" and self.creator_pid > 0 and not process_alive(self.creator_pid, self.creator_start)


# ---------------------------------------------------------------------------------------------- files


def _names_lock(config: EngineConfig) -> Path:
    return config.containers_dir / ".names.lock"


def load(config: EngineConfig, container_id: str) -> ContainerRecord:
    """Read one container's record by its full ID (NotFound when it is gone).

    A record that cannot be read comes back as a "dead" stand-in that says why (see the module).
    """
    d = config.containers_dir / container_id
    try:
        v2 = _read_state_file(d / "config.v2.json")
    except _Unreadable as exc:
        return _stand_in(d, container_id, str(exc), None)
    if v2 is None:
        raise NotFound(f"No such container: {container_id}")
    try:
        host_config = _read_state_file(d / "hostconfig.json") or {}
        _check_record(v2, host_config, container_id)
        return ContainerRecord.from_disk(v2, host_config)
    except _Unreadable as exc:
        return _stand_in(d, container_id, str(exc), v2)


class _Unreadable(Exception):
    """A state file that is not what its writer writes; the message names the file and the flaw."""


def _read_state_file(path: Path) -> Any:
    """The JSON in `path` (None when missing); _Unreadable when it is not JSON."""
    try:
        return read_json(path)
    except IsADirectoryError:
        raise _Unreadable(f"{path.name} is a directory") from None
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        where = f"line {exc.lineno} column {exc.colno}: {exc.msg}" if hasattr(exc, "lineno") else "not UTF-8"
        raise _Unreadable(f"{path.name} is not valid JSON ({where})") from None


# Types the fields of config.v2.json must have for from_disk (keys may be missing: defaults apply).
_V2_TYPES: dict[str, type | tuple[type, ...]] = {
    "ID": str, "Name": str, "ImageName": str, "Image": str, "Created": str, "Path": str, "Args": list,
    "Config": dict, "State": dict, "NetworkSettings": dict, "RestartCount": int, "MountPoints": dict,
    "Platform": str, "Dockui": dict,
}
_STATE_TYPES: dict[str, type | tuple[type, ...]] = {
    "Status": str, "Pid": int, "ExitCode": int, "StartedAt": str, "FinishedAt": str, "OOMKilled": bool,
    "Error": str, "Health": dict,
}
_DOCKUI_TYPES: dict[str, type | tuple[type, ...]] = {
    "CgroupPaths": dict, "RWLayer": str, "PidStart": int, "MonitorPid": int, "MonitorStart": int,
    "StopRequested": bool, "CreatorPid": int, "CreatorStart": int,
}


def _check_record(v2: Any, host_config: Any, container_id: str) -> None:
    """_Unreadable unless the files hold what `to_disk` writes, for this container."""
    if not isinstance(v2, dict):
        raise _Unreadable(f"config.v2.json holds {type(v2).__name__}, not an object")
    if not isinstance(host_config, dict):
        raise _Unreadable(f"hostconfig.json holds {type(host_config).__name__}, not an object")
    for where, obj, types in (
        ("", v2, _V2_TYPES),
        ("State.", v2.get("State"), _STATE_TYPES),
        ("Dockui.", v2.get("Dockui"), _DOCKUI_TYPES),
    ):
        for key, kind in types.items():
            if isinstance(obj, dict) and key in obj and not isinstance(obj[key], kind):
                raise _Unreadable(f"config.v2.json: {where}{key} is {type(obj[key]).__name__}, not {kind.__name__}")
    if v2.get("ID") != container_id:
        raise _Unreadable(f"config.v2.json names container {str(v2.get('ID'))[:64]!r}, not its directory's")
    status = v2.get("State", {}).get("Status", "created")
    if status not in STATUSES:
        raise _Unreadable(f"config.v2.json: State.Status {status!r} is not a container state")
    if not all(isinstance(m, dict) and isinstance(m.get("Destination"), str) for m in v2.get("MountPoints", {}).values()):
        raise _Unreadable("config.v2.json: a MountPoints entry has no Destination")


def _stand_in(d: Path, container_id: str, reason: str, v2: Any) -> ContainerRecord:
    """The "dead" record `ps -a` shows for files that cannot be read; what could be read is kept."""
    salvaged = v2 if isinstance(v2, dict) else {}

    def text(key: str) -> str:
        value = salvaged.get(key)
        return value if isinstance(value, str) else ""

    try:
        mtime = os.stat(d).st_mtime
        created = timefmt.format_rfc3339(int(mtime * 1_000_000_000))
    except OSError:
        created = ZERO_TIME
    name = text("Name").lstrip("/")
    return ContainerRecord(
        id=container_id,
        name=name if NAME_RE.match(name or "-") else "",
        image=text("ImageName"),
        image_id=text("Image"),
        created=created,
        status="dead",
        error=f"corrupt record: {reason}; `dockui rm -f {container_id[:12]}` removes the container",
        corrupt=reason,
    )


def save(config: EngineConfig, record: ContainerRecord, durable: bool = False, fsync: bool = True,
         host_config: bool = False) -> None:
    """Write the record atomically (temp file + rename: readers see old or new, never a mix).

    `durable` (at the end of create) also writes hostconfig.json, and fsyncs both files and the
    directory once; `host_config` writes hostconfig.json too (a change after create: `update`,
    network aliases, a restart policy), without the fsyncs. Status changes skip the fsync: they only matter
    while processes live, and after a power loss reconcile rebuilds them anyway; a start then
    costs ~10 fsyncs less. `fsync=False` skips them at create too (an --rm container: after a
    power loss reconcile removes it, as Docker's daemon does on restart).
    """
    if durable:  # the end of create: complete from now on
        record.creator_pid = record.creator_start = 0
    v2, host_config_json = record.to_disk()
    d = config.containers_dir / record.id
    index.dirty(config.containers_dir, record.id)  # the index is a cache: engine.container.index
    if durable:
        d.mkdir(parents=True, exist_ok=True)  # as fsutil.atomic_write did for callers outside create
        _write_files(d, {"hostconfig.json": host_config_json, "config.v2.json": v2}, fsync=fsync)
    elif host_config:
        _write_files(d, {"hostconfig.json": host_config_json, "config.v2.json": v2}, fsync=False)
    else:
        _write_files(d, {"config.v2.json": v2}, fsync=False)
    index.put(config.containers_dir, index_entry(record))


def _write_files(d: Path, files: dict[str, Any], fsync: bool) -> None:
    """Each file through a temp file and a rename, in order (hostconfig.json before the record,
    so a reader never finds a record without it); with `fsync`, one directory fsync for all.

    On a full disk, util.diskfull's fallbacks: an exit or a removal is still recorded."""
    from engine.util.diskfull import write_despite_full

    for name, obj in files.items():
        data = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
        write_despite_full(d.parent.parent, d / name, data, lambda n=name, b=data: _replace(d, n, b, fsync))
    if fsync:
        fsync_dir(d)


def _replace(d: Path, name: str, data: bytes, fsync: bool) -> None:
    tmp = d / f".{name}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, d / name)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def locked(config: EngineConfig, container_id: str) -> Iterator[ContainerRecord]:
    """Hold the container's lock, yield its fresh record and save it afterwards (unless removed)."""
    d = config.containers_dir / container_id
    try:  # not fsutil.file_lock: it would re-create the directory of a container just removed
        fd = os.open(d / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"No such container: {container_id}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        record = load(config, container_id)
        # Serialized, not the dicts themselves: those share the record's Config, HostConfig and
        # NetworkSettings, so a change made in place would compare equal and never be saved.
        before = _snapshot(record)
        yield record
        after = _snapshot(record)
        if after != before and not record.corrupt:  # a stand-in is never written back
            save(config, record, host_config=after[1] != before[1])
    finally:
        os.close(fd)


def _snapshot(record: ContainerRecord) -> tuple[str, str]:
    v2, host_config = record.to_disk()
    return json.dumps(v2, separators=(",", ":"), default=str), json.dumps(host_config, separators=(",", ":"))


_REMOVALS_HELD: dict[tuple[str, int], list[int]] = {}  # (container ID, thread) -> [fd, depth]


@contextlib.contextmanager
def removal(config: EngineConfig, container_id: str) -> Iterator[None]:
    """Hold the container's removal lock (`<dir>/.removing`) while it is being removed.

    Conflict ("already in progress", as Docker says it) while another live process holds it; a
    process killed half-way through a removal leaves "removing" with the lock free, which the next
    `rm` or `reconcile` takes over and finishes. Re-entrant within one thread (flock is not: a
    second open file description would conflict with the first); another thread of the process
    (the API service's) is another remover.
    """
    from _thread import get_ident

    key = (container_id, get_ident())
    held = _REMOVALS_HELD.get(key)
    if held is not None:
        held[1] += 1
        try:
            yield
        finally:
            held[1] -= 1
        return
    try:  # not fsutil.file_lock: it would re-create the directory of a container just removed
        fd = os.open(config.containers_dir / container_id / ".removing", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"No such container: {container_id}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(f"removal of container {container_id} is already in progress") from None
        _REMOVALS_HELD[key] = [fd, 1]
        yield
    finally:
        _REMOVALS_HELD.pop(key, None)
        os.close(fd)


def removal_abandoned(config: EngineConfig, container_id: str) -> bool:
    """True when no live process holds the container's removal lock (see `removal`); a lock file
    that cannot be opened counts as held."""
    return not _lock_held(config.containers_dir / container_id / ".removing", unreadable=True)


def orphan_dirs(config: EngineConfig, min_age: float = 2.0) -> list[Path]:
    """Container directories without a record and not locked: what a `create` killed between its
    mkdir and its record left (create does both under the names lock, so a directory seen without
    a record while that lock is free, and still without one after, is abandoned), or what a killed
    removal of an older release left (older than `min_age` seconds)."""
    # Only where the index cannot vouch for a record: create and removal mark an ID first.
    candidates = [config.containers_dir / name for name in index.unvouched(config.containers_dir)]
    candidates = [path for path in candidates if _recordless_dir(path)]
    if not candidates:
        return []
    names_free = not _lock_held(_names_lock(config), unreadable=True)
    now = time.time()
    found = []
    for path in candidates:
        with contextlib.suppress(OSError):
            young = now - os.lstat(path).st_mtime < min_age
            if (names_free or not young) and not _lock_held(path / ".lock") and _recordless_dir(path):
                found.append(path)
    return found


def _recordless_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode) and not os.path.exists(path / "config.v2.json")
    except OSError:
        return False


def _lock_held(path: Path, unreadable: bool = False) -> bool:
    """Whether a live process holds the flock on `path`: False when the file is missing,
    `unreadable` when it cannot be opened otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:
        return unreadable
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def update(config: EngineConfig, container_id: str, change: Callable[[ContainerRecord], None]) -> ContainerRecord:
    """Apply `change` to the record under its lock; return the saved record."""
    with locked(config, container_id) as record:
        change(record)
    return record


def list_containers(config: EngineConfig) -> list[ContainerRecord]:
    """Every container with a complete record, newest first (like `docker ps -a`)."""
    records = []
    try:
        entries = list(os.scandir(config.containers_dir))
    except FileNotFoundError:
        return []
    for entry in entries:
        if not ID_RE.match(entry.name):
            continue
        try:
            records.append(load(config, entry.name))
        except (NotFound, NotADirectoryError):
            continue  # being created or removed right now
    records.sort(key=lambda r: r.created, reverse=True)
    return records


def find_container(config: EngineConfig, name_or_id_prefix: str) -> ContainerRecord:
    """Resolve a full ID, a name (with or without '/'), or an unambiguous ID prefix, as Docker does."""
    ref = name_or_id_prefix.strip()
    if not ref:
        raise InvalidArgument("container name or ID must not be empty")
    if ID_RE.match(ref):
        with contextlib.suppress(NotFound):
            return load(config, ref)
    name = ref.lstrip("/")
    named = index.names(config.containers_dir, _index_loader(config))  # the index names the candidate,
    if name in named:  # its record is the answer
        with contextlib.suppress(NotFound):
            record = load(config, named[name])
            if record.name == name:
                return record
        return _find_by_records(config, ref)  # the index was behind (a record changed by hand)
    if re.fullmatch(r"[0-9a-f]+", ref):
        matches = [cid for cid in index.ids(config.containers_dir, _index_loader(config)) if cid.startswith(ref)]
        if len(matches) == 1:
            return load(config, matches[0])
        if len(matches) > 1:
            raise InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
    raise NotFound(f"No such container: {ref}")


def _find_by_records(config: EngineConfig, ref: str) -> ContainerRecord:
    for record in list_containers(config):
        if record.name == ref.lstrip("/"):
            return record
    raise NotFound(f"No such container: {ref}")


def index_entry(record: ContainerRecord) -> index.Entry:
    """What the container index keeps of `record`."""
    return index.Entry(record.id, record.status, record.name, record.created, record.pid, record.pid_start,
                       record.monitor_pid, record.monitor_start, record.creator_pid, record.creator_start)


def list_entries(config: EngineConfig, statuses: tuple[str, ...] = (), processes: bool = False) -> list[index.Entry]:
    """The containers' index entries (all, or as index.entries selects them), newest first:
    `list_containers` for callers that need only names, IDs, statuses and process identities."""
    return index.entries(config.containers_dir, _index_loader(config), statuses, processes)


def _index_loader(config: EngineConfig) -> Callable[[str], index.Entry | None]:
    def entry_of(container_id: str) -> index.Entry | None:
        try:
            return index_entry(load(config, container_id))
        except (NotFound, NotADirectoryError):
            return None

    return entry_of


@contextlib.contextmanager
def names_locked(config: EngineConfig) -> Iterator[set[str]]:
    """Hold the global names lock; yield the names in use (for create and rename)."""
    with file_lock(_names_lock(config)):
        yield set(index.names(config.containers_dir, _index_loader(config)))


def create_record(config: EngineConfig, record: ContainerRecord, generate: Callable[[int], str]) -> ContainerRecord:
    """Write a new container's record, giving it a unique name (its own or a generated one)."""
    with names_locked(config) as taken:
        if record.name:
            if record.name in taken:
                other = index.names(config.containers_dir, _index_loader(config))[record.name]
                raise Conflict(
                    f'Conflict. The container name "/{record.name}" is already in use by container "{other}". '
                    "You have to remove (or rename) that container to be able to reuse that name."
                )
        else:
            for attempt in range(20):
                candidate = generate(attempt)
                if candidate not in taken:
                    record.name = candidate
                    break
            else:
                raise Conflict("could not generate a unique container name")
        d = config.containers_dir / record.id
        d.mkdir(parents=True, mode=0o700)
        # Until create's last save: a create killed before it leaves a record reconcile removes.
        record.creator_pid, record.creator_start = os.getpid(), process_start_ticks(os.getpid())
        # Not fsynced yet: create() makes the finished record durable (one set of fsyncs, not two).
        v2, host_config = record.to_disk()
        index.dirty(config.containers_dir, record.id)
        _write_files(d, {"hostconfig.json": host_config, "config.v2.json": v2}, fsync=False)
        index.put(config.containers_dir, index_entry(record))
    return record


def rename_record(config: EngineConfig, container_id: str, new_name: str) -> None:
    new_name = validate_name(new_name)
    with names_locked(config) as taken:
        if new_name in taken:
            raise Conflict(f'The container name "/{new_name}" is already in use')

        def apply(record: ContainerRecord) -> None:
            record.name = new_name

        update(config, container_id, apply)


def trash_dir(config: EngineConfig) -> Path:
    """Where a removal moves a container's directory before deleting it (same filesystem)."""
    return config.containers_dir / ".trash"


def delete_record(config: EngineConfig, container_id: str, empty_later: list[Path] | None = None) -> None:
    """Remove the container's directory (logs, hosts files, record) for good.

    Under the container's lock, the directory is first renamed into the trash (one atomic step:
    the container is gone for every reader, and whoever waits for the lock then finds no container
    instead of writing into a directory being deleted), then deleted. A removal killed after the
    rename leaves only a trash entry, which the next command's sweep deletes whatever its age
    (empty_trash); before it, the record is whole and the removal can be done again. With
    `empty_later`, the trash entry is appended to it for the caller to delete when it has time
    (the monitor of an --rm container: after the exit went out).
    """
    d = config.containers_dir / container_id
    try:
        fd = os.open(d / ".lock", os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        _delete_tree(config, d)
        index.drop(config.containers_dir, container_id)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        index.dirty(config.containers_dir, container_id)
        _delete_tree(config, d, empty_later)
        index.drop(config.containers_dir, container_id)
    finally:
        os.close(fd)


def _delete_tree(config: EngineConfig, d: Path, empty_later: list[Path] | None = None) -> None:
    import shutil  # on use: its bz2/lzma probes cost every verb ~1.5 ms (docs/lifecycle.md)

    trash = trash_dir(config)
    tomb = trash / f"{d.name}.{os.getpid()}"
    try:
        os.makedirs(trash, exist_ok=True)
        os.rename(d, tomb)
    except FileNotFoundError:
        return
    except OSError:  # (a full disk refusing the trash directory): delete in place, record first
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
            os.unlink(d / "config.v2.json")
        tomb = d
    if empty_later is not None and tomb != d:
        empty_later.append(tomb)
        return
    shutil.rmtree(tomb, ignore_errors=True)


def empty_trash(config: EngineConfig) -> bool:
    """Delete what killed removals left in the trash; whether there was anything (one listdir of
    a directory that is empty but for a removal in progress, whose entries may go twice)."""
    trash = trash_dir(config)
    try:
        names = os.listdir(trash)
    except FileNotFoundError:
        return False
    if not names:
        return False
    import shutil

    for name in names:
        shutil.rmtree(trash / name, ignore_errors=True)
    return True
