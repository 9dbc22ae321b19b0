"""Live statistics: one Sampler reads every container's cgroup counters and hands out snapshots.

Why one sampler: the CLI and every TUI widget read the same numbers, so one reader per process keeps
the cost flat. It keeps each counter file open and re-reads it with pread (no open/close per sample),
reads the rarely-changing limits only every few rounds, reads all veth counters with one read of
/proc/net/dev, and computes rates between consecutive samples. Snapshots are frozen dataclasses, safe
to pass between threads. Numbers mean the same on cgroup v1 and v2 (see docs/stats.md).
"""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from engine.config import EngineConfig
from engine.diagnostics import get_logger
from engine.util.units import binary_size, decimal_size  # re-exported: docker stats prints with them

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any

log = get_logger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_ROOT = Path("/proc")
V1_UNLIMITED = 1 << 62  # v1 reports "unlimited" as PAGE_COUNTER_MAX pages (~9.2e18)
SLOW_EVERY = 10  # limits are re-read every SLOW_EVERY rounds
READ_SIZE = 16384


# -------------------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class StatsTarget:
    """What to sample: a container's cgroup directories and its host-side veth (None without one)."""

    id: str
    name: str
    cgroup_paths: Mapping[str, Path]
    host_veth: str | None = None
    status: str = "running"


@dataclass(frozen=True)
class CpuStats:
    usage_ns: int  # cumulative CPU time of the group
    percent: float  # docker stats': Δusage / Δsystem × online CPUs × 100 (100 = one full core)
    online_cpus: int
    nr_periods: int
    nr_throttled: int
    throttled_ns: int


@dataclass(frozen=True)
class MemoryStats:
    usage: int  # bytes in use, without inactive page cache (what docker stats shows)
    raw_usage: int  # the kernel's usage counter, page cache included
    inactive_file: int
    limit: int  # the group's limit, or the host's memory when unlimited
    percent: float
    peak: int | None  # high-water mark (v1 max_usage_in_bytes, v2 memory.peak); None if unknown
    oom_kills: int


@dataclass(frozen=True)
class PidsStats:
    current: int
    limit: int | None  # None = unlimited


@dataclass(frozen=True)
class BlockIOStats:
    read_bytes: int
    write_bytes: int
    read_rate: float  # bytes per second since the previous sample
    write_rate: float


@dataclass(frozen=True)
class NetworkStats:
    """The container's view: rx is what the container received (the host veth's tx)."""

    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int
    rx_rate: float  # bytes per second
    tx_rate: float


@dataclass(frozen=True)
class ContainerStats:
    id: str
    name: str
    status: str
    cpu: CpuStats
    memory: MemoryStats
    pids_stats: PidsStats
    block_io: BlockIOStats
    network: NetworkStats | None
    interval: float  # seconds since this container's previous sample (0 on its first)

    # Flat views of the headline figures, for consumers that want one number (the TUI's columns).
    @property
    def cpu_percent(self) -> float:
        return self.cpu.percent

    @property
    def memory_usage(self) -> int:
        return self.memory.usage

    @property
    def memory_limit(self) -> int:
        return self.memory.limit

    @property
    def pids(self) -> int:
        return self.pids_stats.current

    @property
    def pids_limit(self) -> int | None:
        return self.pids_stats.limit

    @property
    def net_rx_rate(self) -> float:
        return self.network.rx_rate if self.network else 0.0

    @property
    def net_tx_rate(self) -> float:
        return self.network.tx_rate if self.network else 0.0

    @property
    def blk_read_rate(self) -> float:
        return self.block_io.read_rate

    @property
    def blk_write_rate(self) -> float:
        return self.block_io.write_rate

    def docker_row(self) -> dict[str, str]:
        """The row of `docker stats`, with Docker's field names (as in its `--format json`)."""
        net = self.network
        return {
            "BlockIO": f"{decimal_size(self.block_io.read_bytes)} / {decimal_size(self.block_io.write_bytes)}",
            "CPUPerc": f"{self.cpu.percent:.2f}%",
            "Container": self.id[:12],
            "ID": self.id[:12],
            "MemPerc": f"{self.memory.percent:.2f}%",
            "MemUsage": f"{binary_size(self.memory.usage)} / {binary_size(self.memory.limit)}",
            "Name": self.name,
            "NetIO": f"{decimal_size(net.rx_bytes)} / {decimal_size(net.tx_bytes)}" if net else "0B / 0B",
            "PIDs": str(self.pids_stats.current),
        }


@dataclass(frozen=True)
class HostStats:
    cpu_percent_per_core: tuple[float, ...]
    cpu_percent: float  # all cores averaged (100 = every core busy)
    memory_total: int
    memory_used: int
    memory_percent: float
    load: tuple[float, float, float]
    disk_read_rate: float  # bytes per second
    disk_write_rate: float
    net_rx_rate: float
    net_tx_rate: float


@dataclass(frozen=True)
class StatsSnapshot:
    taken_at: float  # time.time()
    monotonic: float
    containers: tuple[ContainerStats, ...]
    host: HostStats | None
    cost_cpu_s: float = 0.0  # CPU time this round cost the sampling process
    by_id: Mapping[str, ContainerStats] = field(default_factory=dict, compare=False, repr=False)
    skipped: frozenset[str] = field(default=frozenset(), compare=False)  # left for a later round (`focus`)

    def get(self, id_or_name: str) -> ContainerStats | None:
        hit = self.by_id.get(id_or_name)
        if hit:
            return hit
        for c in self.containers:
            if c.name == id_or_name or c.id.startswith(id_or_name):
                return c
        return None


# -------------------------------------------------------------------------------------- reading


def _pread_all(fd: int, complete_below: int = 2048) -> bytes:
    """The whole file from offset 0. A seq_file hands out at most about a page per read, so a read
    of `complete_below` bytes or more may be partial: read on to EOF then. Small counter files
    (the usual case) cost one syscall."""
    data = os.pread(fd, READ_SIZE, 0)
    if len(data) < complete_below:
        return data
    chunks = [data]
    offset = len(data)
    while True:
        more = os.pread(fd, READ_SIZE, offset)
        if not more:
            return b"".join(chunks)
        chunks.append(more)
        offset += len(more)


def _keyed(data: bytes, key: bytes) -> int:
    """The value of `key` in "key value" lines (0 if absent). Cheap: no full parse."""
    at = data.find(b"\n" + key + b" ")
    if at < 0:
        if not data.startswith(key + b" "):
            return 0
        start = len(key) + 1
    else:
        start = at + len(key) + 2
    end = data.find(b"\n", start)
    return int(data[start : end if end >= 0 else None])


def _limit_value(data: bytes) -> int | None:
    text = data.strip()
    if not text or text == b"max":
        return None
    value = int(text)
    return None if value >= V1_UNLIMITED else value


def _blkio_v1(data: bytes) -> tuple[int, int]:
    read = write = 0
    for line in data.splitlines():
        parts = line.split()
        if len(parts) == 3:
            if parts[1] == b"Read":
                read += int(parts[2])
            elif parts[1] == b"Write":
                write += int(parts[2])
    return read, write


def _io_stat_v2(data: bytes) -> tuple[int, int]:
    read = write = 0
    for line in data.splitlines():
        for item in line.split()[1:]:
            if item.startswith(b"rbytes="):
                read += int(item[7:])
            elif item.startswith(b"wbytes="):
                write += int(item[7:])
    return read, write


def parse_net_dev(data: bytes) -> dict[str, tuple[int, int, int, int]]:
    """/proc/net/dev -> {iface: (rx_bytes, rx_packets, tx_bytes, tx_packets)} as the interface sees it."""
    out: dict[str, tuple[int, int, int, int]] = {}
    for line in data.splitlines()[2:]:
        name, _, rest = line.partition(b":")
        f = rest.split()
        if len(f) >= 10:
            out[name.strip().decode()] = (int(f[0]), int(f[1]), int(f[8]), int(f[9]))
    return out


# Files per version: key -> (controller, file name). SLOW_KEYS are re-read every SLOW_EVERY rounds
# (limits; the peak, which in between is raised to the usage read each round).
V1_FILES = {
    "cpu_usage": ("cpuacct", "cpuacct.usage"),
    "cpu_stat": ("cpu", "cpu.stat"),
    "mem_usage": ("memory", "memory.usage_in_bytes"),
    "mem_stat": ("memory", "memory.stat"),
    "mem_peak": ("memory", "memory.max_usage_in_bytes"),
    "oom": ("memory", "memory.oom_control"),
    "pids_current": ("pids", "pids.current"),
    "blkio": ("blkio", "blkio.throttle.io_service_bytes"),
    "mem_limit": ("memory", "memory.limit_in_bytes"),
    "pids_max": ("pids", "pids.max"),
}
V2_FILES = {
    "cpu_stat": ("unified", "cpu.stat"),
    "mem_usage": ("unified", "memory.current"),
    "mem_stat": ("unified", "memory.stat"),
    "mem_peak": ("unified", "memory.peak"),
    "oom": ("unified", "memory.events"),
    "pids_current": ("unified", "pids.current"),
    "blkio": ("unified", "io.stat"),
    "mem_limit": ("unified", "memory.max"),
    "pids_max": ("unified", "pids.max"),
}
SLOW_KEYS = ("mem_limit", "pids_max", "mem_peak")

# What a round reads. FULL: every counter, every round (`dockui stats`, the API, the detail screen).
# TABLE: what a table of CPU and memory shows: the CPU and memory usage every round; memory.stat
# (for inactive_file, which docker subtracts) and the limits every SLOW_EVERY rounds; no block I/O,
# OOM, pids or throttling counters (they read as 0, and the files are not even opened).
FULL = "full"
TABLE = "table"
LEVELS = (FULL, TABLE)
_TABLE_KEYS = ("cpu_usage", "cpu_stat", "mem_usage", "mem_stat", "mem_limit")


class ContainerGone(Exception):
    """The container's cgroup disappeared between two samples."""


@dataclass
class _Raw:
    """One container's counters at one instant."""

    at: float
    cpu_usage_ns: int
    nr_periods: int
    nr_throttled: int
    throttled_ns: int
    mem_usage: int
    inactive_file: int
    mem_peak: int | None
    oom_kills: int
    pids_current: int
    blk_read: int
    blk_write: int
    mem_limit: int | None
    pids_limit: int | None
    net: tuple[int, int, int, int] | None  # container view: rx_bytes, rx_packets, tx_bytes, tx_packets


class _CgroupReader:
    """Open descriptors on one container's counter files, re-read with pread."""

    def __init__(self, target: StatsTarget, level: str = FULL) -> None:
        self.target = target
        self.v2 = "unified" in target.cgroup_paths
        self.table = level == TABLE
        files = V2_FILES if self.v2 else V1_FILES
        if self.table:
            keys = _TABLE_KEYS if self.v2 else tuple(k for k in _TABLE_KEYS if k != "cpu_stat")  # v1: cpuacct.usage
            files = {k: v for k, v in files.items() if k in keys}
        self.inactive_file = 0
        self.fds: dict[str, int] = {}
        self.rounds = 0
        self.mem_limit: int | None = None
        self.pids_limit: int | None = None
        self.mem_peak: int | None = None
        try:
            for key, (controller, name) in files.items():
                directory = target.cgroup_paths.get(controller)
                if directory is None:
                    continue
                try:
                    self.fds[key] = os.open(Path(directory) / name, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    if key in ("cpu_usage", "cpu_stat", "mem_usage") and not Path(directory).is_dir():
                        raise ContainerGone(target.id) from None
                    # an optional file this kernel lacks (memory.peak before 5.19, ...)
        except BaseException:
            self.close()
            raise
        if not self.fds:
            raise ContainerGone(target.id)

    def close(self) -> None:
        for fd in self.fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds.clear()

    def _get(self, key: str) -> bytes | None:
        fd = self.fds.get(key)
        if fd is None:
            return None
        try:
            return _pread_all(fd)
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENOENT, errno.ESTALE, errno.EBADF):
                raise ContainerGone(self.target.id) from None
            raise

    def read(self, now: float, net: tuple[int, int, int, int] | None) -> _Raw:
        get = self._get
        if self.rounds % SLOW_EVERY == 0:
            limit = get("mem_limit")
            self.mem_limit = _limit_value(limit) if limit is not None else None
            pmax = get("pids_max")
            self.pids_limit = _limit_value(pmax) if pmax is not None else None
            peak_raw = get("mem_peak")
            self.mem_peak = int(peak_raw) if peak_raw and peak_raw.strip().isdigit() else None
        stat_round = not self.table or self.rounds % SLOW_EVERY == 0
        self.rounds += 1
        cpu_stat = get("cpu_stat") or b""
        mem_stat = (get("mem_stat") or b"") if stat_round else None
        if self.v2:
            usage_ns = _keyed(cpu_stat, b"usage_usec") * 1000
            throttled_ns = _keyed(cpu_stat, b"throttled_usec") * 1000
            if mem_stat is not None:
                self.inactive_file = _keyed(mem_stat, b"inactive_file")
            blk = _io_stat_v2(get("blkio") or b"")
        else:
            usage_raw = get("cpu_usage")
            usage_ns = int(usage_raw) if usage_raw else 0
            throttled_ns = _keyed(cpu_stat, b"throttled_time")
            if mem_stat is not None:
                self.inactive_file = _keyed(mem_stat, b"total_inactive_file")
            blk = _blkio_v1(get("blkio") or b"")
        inactive = self.inactive_file
        mem_usage = get("mem_usage")
        usage = int(mem_usage) if mem_usage else 0
        if self.mem_peak is not None and usage > self.mem_peak:
            self.mem_peak = usage  # the kernel's mark moved too; re-read every SLOW_EVERY rounds
        pids = get("pids_current")
        return _Raw(
            at=now,
            cpu_usage_ns=usage_ns,
            nr_periods=_keyed(cpu_stat, b"nr_periods"),
            nr_throttled=_keyed(cpu_stat, b"nr_throttled"),
            throttled_ns=throttled_ns,
            mem_usage=usage,
            inactive_file=inactive,
            mem_peak=self.mem_peak,
            oom_kills=_keyed(get("oom") or b"", b"oom_kill"),
            pids_current=int(pids) if pids else 0,
            blk_read=blk[0],
            blk_write=blk[1],
            mem_limit=self.mem_limit,
            pids_limit=self.pids_limit,
            net=net,
        )


def _rate(new: int, old: int, seconds: float) -> float:
    return max(0, new - old) / seconds if seconds > 0 else 0.0


# -------------------------------------------------------------------------------------- targets


RESCAN_SECONDS = 10.0  # the record scan behind the index's signature (a writer killed half-way)


def state_targets(config: EngineConfig) -> Callable[[], list[StatsTarget]]:
    """Targets from the container state on disk: running and paused containers with a cgroup.

    Re-reads the records only when the container index's signature changed (every record write
    appends to the index: two stats a round), or, at least every RESCAN_SECONDS and whenever there
    is no index, when a container directory or record file changed (a stat per container instead
    of a JSON parse per container per round).
    """
    cache: dict[str, Any] = {"signature": None, "targets": [], "index": None, "scanned": 0.0}

    def signature() -> tuple[Any, ...]:
        from engine.container.index import signature as index_signature

        now = time.monotonic()
        index = index_signature(config.containers_dir)
        if index is not None and index == cache["index"] and now - cache["scanned"] < RESCAN_SECONDS:
            return cache["signature"]
        cache["index"], cache["scanned"] = index, now
        items: list[Any] = []
        try:
            with os.scandir(config.containers_dir) as entries:
                for entry in entries:
                    if len(entry.name) != 64:
                        continue
                    try:
                        st = os.stat(os.path.join(entry.path, "config.v2.json"))
                        items.append((entry.name, st.st_mtime_ns, st.st_ino))
                    except OSError:
                        items.append((entry.name, 0, 0))
        except FileNotFoundError:
            pass
        return tuple(sorted(items))

    def source() -> list[StatsTarget]:
        sig = signature()
        if sig == cache["signature"]:
            return cache["targets"]
        try:
            from engine.container.state import list_containers
        except ImportError:  # the lifecycle module is not there: nothing runs
            return []
        targets = [
            StatsTarget(
                id=r.id,
                name=r.name,
                cgroup_paths={k: Path(v) for k, v in r.cgroup_paths.items()},
                host_veth=(r.network or {}).get("HostVeth") or None,
                status=r.status,
            )
            for r in list_containers(config)
            if r.status in ("running", "paused", "restarting") and r.cgroup_paths
        ]
        cache["signature"], cache["targets"] = sig, targets
        return targets

    return source


# -------------------------------------------------------------------------------------- sampler


class Sampler:
    """The statistics stream. `sample()` is thread-safe; `stream()` for the CLI, `subscribe()` or
    `astream()` for the TUI. Containers come and go between samples without errors.
    """

    def __init__(
        self,
        config: EngineConfig,
        targets: Callable[[], list[StatsTarget]] | None = None,
        *,
        proc_root: Path = PROC_ROOT,
        host: bool = True,
        level: str = FULL,
    ) -> None:
        """`level`: what each round reads (FULL or TABLE, see LEVELS)."""
        if level not in LEVELS:
            raise ValueError(f"stats level {level!r} is not one of {', '.join(LEVELS)}")
        self.level = level  # set_level changes it between rounds
        self.config = config
        self._targets = targets or state_targets(config)
        self._proc_root = Path(proc_root)
        self._host_enabled = host
        self._lock = threading.Lock()
        self._readers: dict[str, _CgroupReader] = {}
        self._previous: dict[str, _Raw] = {}
        self._system_at: dict[str, int] = {}  # the host's CPU ns at each container's last read
        self._round = 0
        self._previous_system: tuple[int, float] | None = None
        self._proc_stat_fd = os.open(self._proc_root / "stat", os.O_RDONLY | os.O_CLOEXEC)
        self._net_dev_fd: int | None = None
        self._host_memory = _host_memory(self._proc_root)
        self._host_prev: dict[str, Any] | None = None
        self.latest: StatsSnapshot | None = None
        self._subscribers: list[Callable[[StatsSnapshot], None]] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # ---------------------------------------------------------------------- one round

    def _system_cpu(self) -> tuple[int, int]:
        """(ns of CPU time the whole host spent, online CPUs) from /proc/stat, as docker does."""
        data = _pread_all(self._proc_stat_fd)
        first, _, rest = data.partition(b"\n")
        jiffies = sum(int(x) for x in first.split()[1:8])  # user nice system idle iowait irq softirq
        online = rest.count(b"\ncpu") + (1 if rest.startswith(b"cpu") else 0)
        return jiffies * (1_000_000_000 // os.sysconf("SC_CLK_TCK")), max(1, online)

    def _net_counters(self, wanted: bool) -> dict[str, tuple[int, int, int, int]]:
        if not wanted:
            return {}
        if self._net_dev_fd is None:
            self._net_dev_fd = os.open(self._proc_root / "net" / "dev", os.O_RDONLY | os.O_CLOEXEC)
        return parse_net_dev(_pread_all(self._net_dev_fd, complete_below=0))

    def sample(self, focus: Collection[str] | None = None, every: int = 1) -> StatsSnapshot:
        """Read every target once; rates are relative to the previous call.

        `focus`: the containers a screen shows. The others are read every `every` rounds only (each
        in its own round of the cycle, so the cost is spread), are left out of the rounds that skip
        them and named in `skipped`; their rates, CPU % included, then cover the time since their
        own last read."""
        with self._lock:
            self._round += 1
            cpu0 = time.process_time()
            try:
                targets = self._targets()
            except Exception as exc:  # a broken state file must not stop the stream
                log.warning("stats: cannot list containers: %s", exc)
                targets = []
            by_id = {t.id: t for t in targets}
            for gone in set(self._readers) - set(by_id):
                self._drop(gone)
            now = time.monotonic()
            system_ns, online = self._system_cpu()
            net = self._net_counters(any(t.host_veth for t in targets))
            prev_system = self._previous_system
            system_delta = system_ns - prev_system[0] if prev_system else 0
            self._previous_system = (system_ns, now)
            results: list[ContainerStats] = []
            skipped: set[str] = set()
            for target in targets:
                reader = self._readers.get(target.id)
                if (focus is not None and every > 1 and reader is not None and target.id not in focus
                        and target.id in self._system_at and (self._round + hash(target.id)) % every):
                    skipped.add(target.id)
                    continue
                if reader is None or reader.target != target:
                    if reader is not None:
                        self._drop(target.id)
                    try:
                        reader = self._readers[target.id] = _CgroupReader(target, self.level)
                    except (ContainerGone, OSError):
                        continue
                veth = net.get(target.host_veth) if target.host_veth else None
                # The host end's tx is what the container received, and the other way round.
                container_net = (veth[2], veth[3], veth[0], veth[1]) if veth else None
                try:
                    raw = reader.read(now, container_net)
                except ContainerGone:
                    self._drop(target.id)
                    continue
                except (OSError, ValueError) as exc:
                    log.debug("stats: %s: %s", target.id[:12], exc)
                    self._drop(target.id)
                    continue
                since = system_ns - self._system_at.get(target.id, system_ns - system_delta)
                results.append(self._cook(target, raw, self._previous.get(target.id), since, online))
                self._previous[target.id] = raw
                self._system_at[target.id] = system_ns
            host = self._host_stats(now) if self._host_enabled else None
            snapshot = StatsSnapshot(
                taken_at=time.time(),
                monotonic=now,
                containers=tuple(results),
                host=host,
                cost_cpu_s=time.process_time() - cpu0,
                by_id={c.id: c for c in results},
                skipped=frozenset(skipped),
            )
            self.latest = snapshot
            return snapshot

    def set_level(self, level: str) -> None:
        """Read FULL or TABLE from the next round on (a screen showing more, or less, than a
        table); the rates carry on from the previous round."""
        if level not in LEVELS:
            raise ValueError(f"stats level {level!r} is not one of {', '.join(LEVELS)}")
        with self._lock:
            if level != self.level:
                self.level = level
                for reader in self._readers.values():
                    reader.close()
                self._readers.clear()

    def _drop(self, container_id: str) -> None:
        reader = self._readers.pop(container_id, None)
        if reader:
            reader.close()
        self._previous.pop(container_id, None)
        self._system_at.pop(container_id, None)

    def _cook(
        self, target: StatsTarget, raw: _Raw, prev: _Raw | None, system_delta: int, online: int
    ) -> ContainerStats:
        seconds = raw.at - prev.at if prev else 0.0
        percent = 0.0
        if prev and system_delta > 0 and raw.cpu_usage_ns >= prev.cpu_usage_ns:
            percent = (raw.cpu_usage_ns - prev.cpu_usage_ns) / system_delta * online * 100.0
        usage = raw.mem_usage - raw.inactive_file if raw.inactive_file < raw.mem_usage else raw.mem_usage
        limit = min(raw.mem_limit, self._host_memory) if raw.mem_limit else self._host_memory
        network = None
        if raw.net is not None:
            rx_b, rx_p, tx_b, tx_p = raw.net
            p_net = prev.net if prev and prev.net else raw.net
            network = NetworkStats(
                rx_bytes=rx_b,
                tx_bytes=tx_b,
                rx_packets=rx_p,
                tx_packets=tx_p,
                rx_rate=_rate(rx_b, p_net[0], seconds),
                tx_rate=_rate(tx_b, p_net[2], seconds),
            )
        return ContainerStats(
            id=target.id,
            name=target.name,
            status=target.status,
            cpu=CpuStats(raw.cpu_usage_ns, percent, online, raw.nr_periods, raw.nr_throttled, raw.throttled_ns),
            memory=MemoryStats(
                usage=usage,
                raw_usage=raw.mem_usage,
                inactive_file=raw.inactive_file,
                limit=limit,
                percent=usage / limit * 100.0 if limit else 0.0,
                peak=raw.mem_peak,
                oom_kills=raw.oom_kills,
            ),
            pids_stats=PidsStats(raw.pids_current, raw.pids_limit),
            block_io=BlockIOStats(
                raw.blk_read,
                raw.blk_write,
                _rate(raw.blk_read, prev.blk_read, seconds) if prev else 0.0,
                _rate(raw.blk_write, prev.blk_write, seconds) if prev else 0.0,
            ),
            network=network,
            interval=seconds,
        )

    def _host_stats(self, now: float) -> HostStats:
        import psutil  # lazily: `dockui --help` must not pay for it

        per_cpu = psutil.cpu_times(percpu=True)
        busy_idle = [(sum(t) - t.idle - getattr(t, "iowait", 0.0), sum(t)) for t in per_cpu]
        disk = psutil.disk_io_counters()
        net = psutil.net_io_counters()
        vm = psutil.virtual_memory()
        prev = self._host_prev
        current = {
            "at": now,
            "cpu": busy_idle,
            "disk": (disk.read_bytes, disk.write_bytes) if disk else (0, 0),
            "net": (net.bytes_recv, net.bytes_sent) if net else (0, 0),
        }
        self._host_prev = current
        seconds = now - prev["at"] if prev else 0.0
        percents: list[float] = []
        for i, (busy, total) in enumerate(busy_idle):
            if prev and i < len(prev["cpu"]) and total > prev["cpu"][i][1]:
                percents.append(100.0 * (busy - prev["cpu"][i][0]) / (total - prev["cpu"][i][1]))
            else:
                percents.append(0.0)
        old = prev or current
        return HostStats(
            cpu_percent_per_core=tuple(min(100.0, max(0.0, p)) for p in percents),
            cpu_percent=sum(percents) / len(percents) if percents else 0.0,
            memory_total=vm.total,
            memory_used=vm.total - vm.available,
            memory_percent=vm.percent,
            load=os.getloadavg(),
            disk_read_rate=_rate(current["disk"][0], old["disk"][0], seconds),
            disk_write_rate=_rate(current["disk"][1], old["disk"][1], seconds),
            net_rx_rate=_rate(current["net"][0], old["net"][0], seconds),
            net_tx_rate=_rate(current["net"][1], old["net"][1], seconds),
        )

    # ---------------------------------------------------------------------- consumers

    def stream(
        self, interval: float = 1.0, stop: threading.Event | None = None, count: int | None = None
    ) -> Iterator[StatsSnapshot]:
        """Snapshots every `interval` seconds; the first one already has rates (a priming read
        happens `min(interval, 0.5)` s before it unless this sampler has sampled before)."""
        stop = stop or threading.Event()
        if self.latest is None:
            self.sample()
            if stop.wait(min(interval, 0.5)):
                return
        produced = 0
        next_at = time.monotonic()
        while not stop.is_set():
            yield self.sample()
            produced += 1
            if count is not None and produced >= count:
                return
            next_at += interval
            delay = next_at - time.monotonic()
            if delay < 0:  # fell behind (suspended?): do not burst to catch up
                next_at, delay = time.monotonic(), 0
            if stop.wait(delay):
                return

    def subscribe(self, callback: Callable[[StatsSnapshot], None], interval: float = 1.0) -> Callable[[], None]:
        """Call `callback(snapshot)` from a background thread every `interval` s; returns unsubscribe.

        Every subscriber shares the one thread and the one reading of the counters.
        """
        with self._lock:
            self._subscribers.append(callback)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._run, args=(interval,), name="dockui-stats", daemon=True
                )
                self._thread.start()

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)
                last = not self._subscribers
            if last:
                self._stop.set()

        return unsubscribe

    def _run(self, interval: float) -> None:
        for snapshot in self.stream(interval, self._stop):
            for callback in list(self._subscribers):
                try:
                    callback(snapshot)
                except Exception:  # one consumer's bug must not stop the others
                    log.exception("stats subscriber failed")

    async def astream(self, interval: float = 1.0) -> AsyncIterator[StatsSnapshot]:
        """The stream for asyncio code (Textual): the reads run in a worker thread."""
        if self.latest is None:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(min(interval, 0.5))
        while True:
            started = time.monotonic()
            yield await asyncio.to_thread(self.sample)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)
        with self._lock:
            for cid in list(self._readers):
                self._drop(cid)
            for fd in (self._proc_stat_fd, self._net_dev_fd):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._net_dev_fd = None

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _host_memory(proc_root: Path) -> int:
    try:
        with open(proc_root / "meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
