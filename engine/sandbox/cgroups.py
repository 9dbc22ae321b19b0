"""Cgroups for containers, v1 and v2: one group per container under `config.cgroup_parent`.

Why both: the CI machine mounts v1 (hybrid: v1 controllers plus a v2 tree holding only hugetlb, which
we treat as v1, as runc does), most current distributions mount pure v2. The version is detected once
per `fs_root`; a `Cgroup` knows its directories (`paths`: hierarchy -> dir on v1, "hybrid" -> its
dir in a hybrid host's cgroup2 tree, "unified" -> dir on v2) and writes limits the way runc does.
Invariant: on v1 a container has a group of its own in every hierarchy it can be shown (runc's
list), so neither /proc/<pid>/cgroup nor its /sys/fs/cgroup ever names another group; `cgroupns_mode`
holds Docker's default for `--cgroupns`. Nothing here forks: the runtime joins the group by pid.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from engine.config import DEFAULTS, EngineConfig
from engine.diagnostics import get_logger
from engine.errors import DockuiError, InvalidArgument

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any

    from engine.sandbox.security import DeviceRule

log = get_logger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
CFS_PERIOD_US = 100_000
MIN_MEMORY = 6 * 1024 * 1024  # Docker refuses less: "Minimum memory limit allowed is 6MB"
# v1 controllers a container gets a directory in (those mounted on this host).
V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")
# v1 hierarchies a container only joins (no limit written), as runc's fs manager does: with them the
# container has a group of its own in every hierarchy it sees, so neither /proc/self/cgroup nor
# /sys/fs/cgroup shows it the group of the engine or the host's root there.
V1_JOINED = ("hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc", "systemd")
# On a hybrid host (v1 controllers plus a cgroup2 tree at /sys/fs/cgroup/unified) the container also
# gets a group in that tree, as runc does (`0::/dockui/<id>`), under this key of `Cgroup.paths`
# ("unified" would mean a pure v2 host).
HYBRID = "hybrid"
HYBRID_DIR = "unified"
# v2 controllers enabled for the children of the parent group (those the kernel offers).
V2_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids")

def default_device_rules() -> tuple[str, ...]:
    """The device allow-list of an unprivileged container (engine.config DEFAULTS.device_rules)."""
    return DEFAULTS.device_rules


def device_rule_line(rule: str | DeviceRule) -> str:
    """One rule as `devices.allow` wants it ("c 1:3 rwm"), from its line or a DeviceRule."""
    return rule.strip() if isinstance(rule, str) else rule.v1_line()


@dataclass(frozen=True)
class Resources:
    """Limits as `docker run` takes them, in bytes/ints; None = not set.

    `memory_swap` is memory plus swap, like Docker's --memory-swap (-1 = unlimited swap; None with
    `memory` set = twice `memory`, Docker's default). `pids_limit` <= 0 means unlimited.
    """

    memory: int | None = None
    memory_swap: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    cpuset_cpus: str | None = None
    pids_limit: int | None = None
    blkio_weight: int | None = None
    memory_reservation: int | None = None  # a soft limit (v1 memory.soft_limit_in_bytes, v2 memory.low)
    oom_kill_disable: bool = False  # v1 memory.oom_control only (v2 has no such switch; Docker warns)
    cpu_period: int | None = None  # CFS period and quota in µs (--cpu-period/--cpu-quota; --cpus sets both)
    cpu_quota: int | None = None
    memory_swappiness: int | None = None  # v1 memory.swappiness, 0..100 (v2 has none: discarded at create)

    def validate(self) -> None:
        """Refuse what Docker refuses, with Docker's wording where it has one."""
        for name in ("memory", "memory_swap", "cpu_shares", "pids_limit", "memory_reservation", "cpu_period", "cpu_quota"):
            value = getattr(self, name)
            if value is not None and not -(1 << 63) <= value < 1 << 63:  # Docker's fields are int64s
                raise InvalidArgument(f"invalid {name.replace('_', ' ')} {value}: value out of range")
        if self.cpus and (self.cpu_period or self.cpu_quota):
            raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set")
        if self.cpu_period is not None and self.cpu_period != 0 and not 1000 <= self.cpu_period <= 1_000_000:
            raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
        if self.cpu_quota is not None and 0 < self.cpu_quota < 1000:
            raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
        if self.memory_reservation and self.memory_reservation < MIN_MEMORY:  # moby: any but 0, negatives too
            raise InvalidArgument("Minimum memory reservation allowed is 6MB")
        if self.memory and self.memory_reservation and self.memory_reservation > self.memory:
            raise InvalidArgument("Minimum memory limit can not be less than memory reservation limit, see usage")
        if self.memory and self.memory < MIN_MEMORY:
            raise InvalidArgument("Minimum memory limit allowed is 6MB")
        if self.memory_swap is not None and self.memory_swap not in (0, -1):
            if not self.memory:
                raise InvalidArgument(
                    "You should always set the Memory limit when using Memoryswap limit, see usage"
                )
            if self.memory_swap < self.memory:
                raise InvalidArgument(
                    "Minimum memoryswap limit should be larger than memory limit, see usage"
                )
        if self.cpus is not None and self.cpus != 0:
            online = os.cpu_count() or 1
            if not 0.01 <= self.cpus <= online:
                raise InvalidArgument(
                    f"Range of CPUs is from 0.01 to {online:.2f}, as there are only {online} CPUs available"
                )
        if self.cpu_shares is not None and self.cpu_shares < 0:
            raise InvalidArgument("invalid CPU shares: must be >= 0")
        if self.blkio_weight is not None and self.blkio_weight != 0 and not 10 <= self.blkio_weight <= 1000:
            raise InvalidArgument("Range of blkio weight is from 10 to 1000")
        if self.cpuset_cpus is not None:
            parse_cpu_list(self.cpuset_cpus)
        if self.memory_swappiness is not None and not 0 <= self.memory_swappiness <= 100:
            raise InvalidArgument(f"Invalid value: {self.memory_swappiness}, valid memory swappiness range is 0-100")


SWAPPINESS_DISCARDED = ("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. "
                        "Memory swappiness discarded.")


def memory_swappiness_supported(fs_root: Path = CGROUP_ROOT) -> bool:
    """Whether a container's swappiness can be set: v1's memory controller has memory.swappiness,
    cgroup v2 has no such file (moby's sysinfo reads the same file)."""
    return cgroup_version(fs_root) == 1 and (Path(fs_root) / "memory" / "memory.swappiness").exists()


def _write_v1_memory_extras(memory: Path, res: Resources) -> None:
    if res.memory_reservation:
        _write(memory / "memory.soft_limit_in_bytes", str(res.memory_reservation))
    if res.oom_kill_disable:
        _write(memory / "memory.oom_control", "1")
    if res.memory_swappiness is not None:
        _write(memory / "memory.swappiness", str(res.memory_swappiness))


def _write_v1_cfs(cpu: Path, res: Resources) -> None:
    """--cpu-period/--cpu-quota as given (the period first: the kernel checks quota against it)."""
    if res.cpu_period:
        _write(cpu / "cpu.cfs_period_us", str(res.cpu_period))
    if res.cpu_quota:
        _write(cpu / "cpu.cfs_quota_us", str(res.cpu_quota if res.cpu_quota > 0 else -1))


MAX_CPUS = 8192  # moby's defaultMaxCPUs: `0-9223372036854775807` must not be made into a set (CVE-2018-20699)


def parse_cpu_list(text: str, maximum: int | None = MAX_CPUS) -> set[int]:
    """"0-2,4" -> {0, 1, 2, 4}; InvalidArgument on nonsense or a CPU past `maximum`."""
    cpus: set[int] = set()
    try:
        for part in filter(None, text.strip().split(",")):
            lo, _, hi = part.partition("-")
            first, last = int(lo), int(hi or lo)
            if first < 0 or last < first:
                raise ValueError(part)
            if maximum is not None and last > maximum:
                raise InvalidArgument(f"Invalid value {text} for cpuset cpus: value of out range, maximum is {maximum}")
            cpus.update(range(first, last + 1))
    except ValueError:
        raise InvalidArgument(f"invalid value {text!r} for cpuset cpus") from None
    return cpus


def cpu_shares_to_weight(shares: int) -> int:
    """runc's ConvertCPUSharesToCgroupV2Value: [2, 262144] -> [1, 10000]; 0 stays unset."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """runc's ConvertBlkIOToIOWeightValue: [10, 1000] -> [1, 10000] (for io.weight, not io.bfq.weight)."""
    if weight == 0:
        return 0
    return 1 + ((weight - 10) * 9999) // 990


def cgroup_version(fs_root: Path = CGROUP_ROOT) -> int:
    """2 on a pure v2 host (cgroup.controllers at the root), else 1 (v1 and hybrid)."""
    return 2 if (Path(fs_root) / "cgroup.controllers").exists() else 1


def _write(path: Path, value: str) -> None:
    """One write(2) per value, as the kernel wants for cgroup files."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _write_each(path: Path, values: list[str]) -> None:
    """Several values into one file, a write(2) each (the kernel takes one rule per write)."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        for value in values:
            os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: Path) -> str:
    with open(path, "rb") as f:
        return f.read().decode()


def _flat_keyed(text: str) -> dict[str, int]:
    """Parse "key value" lines (memory.events, memory.oom_control, cpu.stat) into ints."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def _parent_parts(config: EngineConfig) -> tuple[str, ...]:
    parts = tuple(p for p in config.cgroup_parent.strip("/").split("/") if p)
    if not parts or any(p in (".", "..") for p in parts):
        raise InvalidArgument(f"invalid cgroup parent {config.cgroup_parent!r}")
    return parts


def hierarchy_root(fs_root: Path, key: str) -> Path:
    """Where the hierarchy of one `Cgroup.paths` key (v1) is mounted."""
    return Path(fs_root) / (HYBRID_DIR if key == HYBRID else key)


def parent_dirs(config: EngineConfig, fs_root: Path = CGROUP_ROOT) -> dict[str, Path]:
    """The parent group's directory per v1 hierarchy (controllers, joined-only ones, the hybrid
    host's cgroup2 tree) or {"unified": dir} (v2)."""
    fs_root = Path(fs_root)
    rel = Path(*_parent_parts(config))
    if cgroup_version(fs_root) == 2:
        return {"unified": fs_root / rel}
    dirs = {c: fs_root / c / rel for c in (*V1_CONTROLLERS, *V1_JOINED) if (fs_root / c).is_dir()}
    if (fs_root / HYBRID_DIR / "cgroup.procs").exists():
        dirs[HYBRID] = fs_root / HYBRID_DIR / rel
    return dirs


# --cgroupns: the container's own cgroup namespace (it sees its group as `/`) or the host's (it sees
# its group's full path, `/dockui/<id>`). Docker's default: private on a pure v2 host, host on a v1 or
# hybrid one, a privileged container on v1 always host (moby daemon_unix.go adaptContainerSettings);
# the config file's `default_cgroupns_mode` replaces the default as dockerd's --default-cgroupns-mode.
CGROUPNS_MODES = ("", "host", "private")


def cgroupns_mode(requested: str, configured: str = "", privileged: bool = False,
                  fs_root: Path = CGROUP_ROOT) -> str:
    """The mode a new container gets ("host" or "private"): `requested` (HostConfig.CgroupnsMode)
    if set, else Docker's default as above. InvalidArgument for a mode that is neither."""
    for value in (requested, configured):
        if value not in CGROUPNS_MODES:
            raise InvalidArgument(f"invalid cgroup namespace mode: {value} (use \"host\" or \"private\")")
    if requested:
        return requested
    v2 = cgroup_version(fs_root) == 2
    if privileged and not v2:
        return "host"
    return configured or ("private" if v2 else "host")


def open_cgroup(config: EngineConfig, container_id: str, fs_root: Path = CGROUP_ROOT) -> Cgroup:
    """The (maybe not yet created) group of one container."""
    if not container_id or "/" in container_id or container_id in (".", ".."):
        raise InvalidArgument(f"invalid container id {container_id!r} for a cgroup")
    parents = parent_dirs(config, fs_root)
    return Cgroup(
        version=cgroup_version(Path(fs_root)),
        fs_root=Path(fs_root),
        paths={c: p / container_id for c, p in parents.items()},
    )


class Cgroup:
    """One container's group. `paths` is what the state records and the stats sampler reads."""

    def __init__(self, version: int, fs_root: Path, paths: dict[str, Path]) -> None:
        self.version = version
        self.fs_root = fs_root
        self.paths = paths

    @classmethod
    def from_paths(cls, paths: dict[str, str | Path], fs_root: Path = CGROUP_ROOT) -> Cgroup:
        """Rebuild from recorded paths (e.g. ContainerRecord.cgroup_paths)."""
        clean = {k: Path(v) for k, v in paths.items()}
        return cls(2 if "unified" in clean else 1, Path(fs_root), clean)

    def __repr__(self) -> str:
        return f"Cgroup(v{self.version}, {self.paths})"

    # ------------------------------------------------------------------------------------ creation

    def create(
        self,
        resources: Resources | None = None,
        devices_allow: tuple[str, ...] | list[Any] | None = None,
        privileged: bool = False,
    ) -> None:
        """Make the directories and write the limits; on failure nothing is left behind."""
        resources = resources or Resources()
        resources.validate()
        try:
            if self.version == 2:
                self._create_v2(resources)
                self._create_v2_devices(devices_allow, privileged)
            else:
                self._create_v1(resources, devices_allow, privileged)
        except OSError as exc:
            with _suppress_oserror():
                self.destroy()
            raise DockuiError(f"cannot set up cgroup: {exc}") from exc
        except DockuiError:
            with _suppress_oserror():
                self.destroy()
            raise

    def _mkdirs_v1(self, controller: str, leaf: Path) -> None:
        """Create `leaf` (and any missing level above it); cpuset levels get cpus/mems first.

        The parent usually exists already (and has its cpus/mems): one mkdir then, not one per level.
        """
        try:
            leaf.mkdir()
        except FileExistsError:
            pass
        except FileNotFoundError:
            self._mkdirs_v1_levels(controller, leaf)
            return
        if controller == "cpuset" and not _inherit_cpuset(leaf):
            self._mkdirs_v1_levels(controller, leaf)  # a level above has none yet: fill from the top

    def _mkdirs_v1_levels(self, controller: str, leaf: Path) -> None:
        """Create every level from the controller root to `leaf`; cpuset levels get cpus/mems first."""
        root = hierarchy_root(self.fs_root, controller)
        rel = leaf.relative_to(root)
        current = root
        for part in rel.parts:
            current = current / part
            try:
                current.mkdir()
            except FileExistsError:
                pass
            if controller == "cpuset":
                _inherit_cpuset(current)

    def _create_v1(self, res: Resources, devices_allow: Any, privileged: bool) -> None:
        for controller, path in self.paths.items():
            self._mkdirs_v1(controller, path)
        self._write_v1_limits(res)
        p = self.paths
        if "devices" in p:
            if privileged:
                _write(p["devices"] / "devices.allow", "a")
            else:
                rules = default_device_rules() if devices_allow is None else devices_allow
                _write(p["devices"] / "devices.deny", "a")
                _write_each(p["devices"] / "devices.allow", [device_rule_line(rule) for rule in rules])

    def update(self, res: Resources) -> None:
        """Write the limits set in `res` into the existing group (`docker update`: the kernel
        applies them to the running processes at once); a limit the kernel refuses is one error."""
        res.validate()
        try:
            if self.version == 2:
                self._write_v2_limits(self.paths["unified"], res)
            else:
                self._write_v1_limits(res)
        except OSError as exc:
            raise DockuiError(f"cannot update the cgroup: {exc.strerror or exc}") from exc

    def _write_v1_limits(self, res: Resources) -> None:
        p = self.paths
        if "memory" in p and res.memory:
            swap = res.memory_swap if res.memory_swap not in (None, 0) else 2 * res.memory
            memsw = p["memory"] / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                # memsw is never below the memory limit: raise it first when the new limit needs it
                first_swap = int(memsw.read_text()) < res.memory if swap != -1 else True
                if first_swap:
                    _write(memsw, "-1" if swap == -1 else str(swap))
                _write(p["memory"] / "memory.limit_in_bytes", str(res.memory))
                if not first_swap:
                    _write(memsw, str(swap))
            else:
                _write(p["memory"] / "memory.limit_in_bytes", str(res.memory))
                if res.memory_swap not in (None, 0, -1):
                    log.warning("Your kernel does not support swap limit capabilities. Limitation discarded.")
        if "memory" in p:
            _write_v1_memory_extras(p["memory"], res)
        if "cpu" in p:
            if res.cpus:
                _write(p["cpu"] / "cpu.cfs_period_us", str(CFS_PERIOD_US))
                _write(p["cpu"] / "cpu.cfs_quota_us", str(max(1000, round(res.cpus * CFS_PERIOD_US))))
            _write_v1_cfs(p["cpu"], res)
            if res.cpu_shares:
                _write(p["cpu"] / "cpu.shares", str(max(2, res.cpu_shares)))
        if "cpuset" in p and res.cpuset_cpus:
            _check_cpuset(res.cpuset_cpus, p["cpuset"].parent / "cpuset.cpus")
            _write(p["cpuset"] / "cpuset.cpus", res.cpuset_cpus)
        if "pids" in p and res.pids_limit is not None:
            _write(p["pids"] / "pids.max", "max" if res.pids_limit <= 0 else str(res.pids_limit))
        if res.blkio_weight:
            target = None
            if "blkio" in p:
                for name in ("blkio.weight", "blkio.bfq.weight"):
                    if (p["blkio"] / name).exists():
                        target = p["blkio"] / name
                        break
            if target is None:
                log.warning(
                    "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."
                )
            else:
                _write(target, str(res.blkio_weight))
        if "blkio" in p:
            _activate_blkio_accounting(p["blkio"])

    def _create_v2(self, res: Resources) -> None:
        leaf = self.paths["unified"]
        rel = leaf.relative_to(self.fs_root)
        current = self.fs_root
        for part in rel.parts:
            _enable_v2_controllers(current)
            current = current / part
            try:
                current.mkdir()
            except FileExistsError:
                pass
        self._write_v2_limits(leaf, res)

    def _write_v2_limits(self, leaf: Path, res: Resources) -> None:
        if res.memory:
            _write(leaf / "memory.max", str(res.memory))
            swap_file = leaf / "memory.swap.max"
            if res.memory_swap == -1:
                swap = "max"
            elif res.memory_swap in (None, 0):
                swap = str(res.memory)  # Docker's default: as much swap as memory
            else:
                swap = str(res.memory_swap - res.memory)
            if swap_file.exists():
                _write(swap_file, swap)
            elif res.memory_swap not in (None, 0, -1):
                log.warning("Your kernel does not support swap limit capabilities. Limitation discarded.")
        if res.cpus:
            _write(leaf / "cpu.max", f"{max(1000, round(res.cpus * CFS_PERIOD_US))} {CFS_PERIOD_US}")
        elif res.cpu_period or res.cpu_quota:
            quota = str(res.cpu_quota) if res.cpu_quota and res.cpu_quota > 0 else "max"
            _write(leaf / "cpu.max", f"{quota} {res.cpu_period or CFS_PERIOD_US}")
        if res.memory_reservation:
            _write(leaf / "memory.low", str(res.memory_reservation))
        if res.oom_kill_disable:
            log.warning("Your kernel does not support OomKillDisable. OomKillDisable discarded.")
        if res.cpu_shares:
            _write(leaf / "cpu.weight", str(cpu_shares_to_weight(max(2, res.cpu_shares))))
        if res.cpuset_cpus:
            _check_cpuset(res.cpuset_cpus, leaf.parent / "cpuset.cpus.effective")
            _write(leaf / "cpuset.cpus", res.cpuset_cpus)
        if res.pids_limit is not None:
            _write(leaf / "pids.max", "max" if res.pids_limit <= 0 else str(res.pids_limit))
        if res.blkio_weight:
            if (leaf / "io.bfq.weight").exists():
                _write(leaf / "io.bfq.weight", str(res.blkio_weight))
            elif (leaf / "io.weight").exists():
                _write(leaf / "io.weight", f"default {blkio_weight_to_io_weight(res.blkio_weight)}")
            else:
                log.warning("Your kernel does not support Block I/O weight. Weight discarded.")

    def _create_v2_devices(self, devices_allow: Any, privileged: bool) -> None:
        """v2 has no devices.* files: the allow-list is an eBPF program attached to the group."""
        if privileged:
            return
        leaf = self.paths["unified"]
        if not _is_cgroup2(leaf):
            log.debug("%s is not on a cgroup2 filesystem: no device program attached", leaf)
            return
        rules = default_device_rules() if devices_allow is None else devices_allow
        attach_device_filter(leaf, [device_rule_line(r) for r in rules])

    # ------------------------------------------------------------------------------------ processes

    def _procs_dir(self) -> Path:
        for key in ("unified", "pids", "memory", "freezer", "cpu"):
            if key in self.paths:
                return self.paths[key]
        return next(iter(self.paths.values()))

    def add_process(self, pid: int) -> None:
        """Move `pid` (and, on v1, only that process) into every controller's directory."""
        for procs in self.procs_files():
            _write(procs, str(pid))

    def procs_files(self) -> list[Path]:
        """The `cgroup.procs` file of each hierarchy, once each (v1 may mount cpu and cpuacct
        together and link both names to it). What a process writes itself into to join."""
        seen: set[tuple[int, int]] = set()
        files = []
        for path in self.paths.values():
            st = os.stat(path)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            files.append(path / "cgroup.procs")
        return files

    def pids(self) -> list[int]:
        """Processes in the group and in any group below it (a privileged container may make
        some: its /sys/fs/cgroup is writable, as Docker's); empty when it does not exist."""
        pids: list[int] = []
        for directory in _subtree(self._procs_dir()):
            try:
                pids += [int(x) for x in _read(directory / "cgroup.procs").split()]
            except OSError:
                continue
        return pids

    def exists(self) -> bool:
        return any(p.is_dir() for p in self.paths.values())

    @property
    def frozen(self) -> bool:
        try:
            if self.version == 2:
                return _flat_keyed(_read(self.paths["unified"] / "cgroup.events")).get("frozen") == 1
            return _read(self.paths["freezer"] / "freezer.state").strip() == "FROZEN"
        except (KeyError, FileNotFoundError):
            return False

    def freeze(self, timeout: float = 5.0) -> None:
        """Stop every process in the group and wait until the kernel says it is frozen."""
        self._set_frozen(True, timeout)

    def thaw(self, timeout: float = 5.0) -> None:
        self._set_frozen(False, timeout)

    def _set_frozen(self, frozen: bool, timeout: float) -> None:
        if self.version == 2:
            control, value = self.paths["unified"] / "cgroup.freeze", "1" if frozen else "0"
        else:
            if "freezer" not in self.paths:
                raise DockuiError("the freezer cgroup controller is not mounted")
            control, value = self.paths["freezer"] / "freezer.state", "FROZEN" if frozen else "THAWED"
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            # v1 may stay FREEZING while a task is in an uninterruptible sleep; runc re-writes FROZEN.
            _write(control, value)
            if self.frozen == frozen:
                return
            if time.monotonic() > deadline:
                if frozen:
                    with _suppress_oserror():
                        self._set_frozen_once(False)
                raise DockuiError(f"cgroup did not become {'frozen' if frozen else 'thawed'} in {timeout:g}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _set_frozen_once(self, frozen: bool) -> None:
        if self.version == 2:
            _write(self.paths["unified"] / "cgroup.freeze", "1" if frozen else "0")
        else:
            _write(self.paths["freezer"] / "freezer.state", "FROZEN" if frozen else "THAWED")

    def oom_kill_count(self) -> int:
        """How many processes the kernel's OOM killer killed in this group (0 if unknown)."""
        try:
            if self.version == 2:
                return _flat_keyed(_read(self.paths["unified"] / "memory.events")).get("oom_kill", 0)
            return _flat_keyed(_read(self.paths["memory"] / "memory.oom_control")).get("oom_kill", 0)
        except (KeyError, FileNotFoundError):
            return 0

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        """Signal every process; frozen meanwhile (when possible) so none can fork away, as runc does."""
        if self.version == 2 and sig == signal.SIGKILL and (self.paths["unified"] / "cgroup.kill").exists():
            _write(self.paths["unified"] / "cgroup.kill", "1")
            return
        can_freeze = self.version == 2 or "freezer" in self.paths
        was_frozen = self.frozen
        if can_freeze and not was_frozen:
            try:
                self.freeze(timeout=2.0)
            except (DockuiError, OSError):
                can_freeze = False
        for pid in self.pids():
            with _suppress_oserror():
                os.kill(pid, sig)
        if can_freeze and not was_frozen:
            with _suppress_oserror():
                self.thaw(timeout=2.0)

    # ------------------------------------------------------------------------------------ removal

    def destroy(self, timeout: float = 3.0) -> None:
        """Remove every directory; processes still inside are killed first. Idempotent.

        rmdir fails with EBUSY while exiting processes drain from the group, so retry briefly.
        """
        if self.pids():
            with _suppress_oserror():
                if self.version == 1 and self.frozen:
                    self._set_frozen_once(False)
                self.kill_all(signal.SIGKILL)
        deadline = time.monotonic() + timeout
        # First each group as it is (a container's usually has none inside: no listing of ten
        # directories on every exit), then what refused with its subtree, groups made inside first.
        pending = _remove_groups(list(dict.fromkeys(self.paths.values())))
        while pending:
            pending = _remove_groups(list(dict.fromkeys(d for path in pending for d in _subtree(path))))
            if not pending:
                return
            if time.monotonic() > deadline:
                raise DockuiError(f"cgroup still busy after {timeout:g}s: {', '.join(map(str, pending))}")
            with _suppress_oserror():
                self.kill_all(signal.SIGKILL)
            time.sleep(0.02)


def _remove_groups(paths: list[Path]) -> list[Path]:
    """rmdir each group (gone already is fine); those still busy (processes draining, or groups
    inside); DockuiError for any other refusal."""
    still: list[Path] = []
    for path in paths:
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise DockuiError(f"cannot remove cgroup {path}: {exc}") from exc
            still.append(path)
    return still


def _subtree(directory: Path) -> list[Path]:
    """`directory` and every group below it, deepest first (rmdir order); [directory] when it has
    none or does not exist (one scandir: a container's group usually has no children)."""
    try:
        children = [Path(e.path) for e in os.scandir(directory) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return [directory]
    return [d for child in children for d in _subtree(child)] + [directory]


def _suppress_oserror() -> contextlib.suppress:
    return contextlib.suppress(OSError, DockuiError)


def _activate_blkio_accounting(blkio_dir: Path, sys_block: Path = Path("/sys/block")) -> None:
    """Make v1 count block I/O per group on this host's disks.

    Since Linux 6.10 blk-throttle (which keeps v1's blkio.throttle.io_service_bytes) starts on a disk
    only once some group configures a rule there; until then every group reads 0. A rule of 0 means
    "no limit", so writing "MAJ:MIN 0" starts the accounting without throttling anything.
    """
    for dev in block_devices(sys_block):
        with contextlib.suppress(OSError):
            _write(blkio_dir / "blkio.throttle.read_bps_device", f"{dev} 0")


_disks: dict[Path, tuple[float, list[str]]] = {}
DISKS_VALID_FOR = 5.0  # seconds (a monitor lists them while it waits for its context)


def block_devices(sys_block: Path = Path("/sys/block")) -> list[str]:
    """"MAJ:MIN" of the host's disks (those with a device), listed at most every DISKS_VALID_FOR s."""
    now = time.monotonic()
    cached = _disks.get(sys_block)
    if cached is not None and now - cached[0] < DISKS_VALID_FOR:
        return cached[1]
    devs = []
    try:
        for entry in os.scandir(sys_block):
            if os.path.exists(os.path.join(entry.path, "device")):
                with contextlib.suppress(OSError):
                    devs.append(_read(Path(entry.path, "dev")).strip())
    except OSError:
        return []
    _disks[sys_block] = (now, devs)
    return devs


def _check_cpuset(wanted: str, available_file: Path) -> None:
    available = _read(available_file).strip()
    have = parse_cpu_list(available, maximum=None)  # the kernel's own list
    if not parse_cpu_list(wanted, max([MAX_CPUS, *have])) <= have:
        raise InvalidArgument(f"Requested CPUs are not available - requested {wanted}, available: {available}")


def _inherit_cpuset(directory: Path) -> bool:
    """A v1 cpuset group starts with empty cpus/mems, and no task may join it until both are set.

    False (nothing written) when the parent has none to give.
    """
    for name in ("cpuset.cpus", "cpuset.mems"):
        if not _read(directory / name).strip():
            value = _read(directory.parent / name).strip()
            if not value:
                return False
            _write(directory / name, value)
    return True


def _enable_v2_controllers(directory: Path) -> None:
    """Turn on, for the children of `directory`, each controller dockui uses that it offers."""
    available = set(_read(directory / "cgroup.controllers").split())
    enabled = set(_read(directory / "cgroup.subtree_control").split())
    wanted = [c for c in V2_CONTROLLERS if c in available and c not in enabled]
    if wanted:
        _write(directory / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))


def cleanup_orphans(config: EngineConfig, keep_ids: set[str], fs_root: Path = CGROUP_ROOT) -> list[str]:
    """Destroy every container group under the parent whose id is not in `keep_ids` (reconcile)."""
    removed: set[str] = set()
    for parent in parent_dirs(config, fs_root).values():
        try:
            names = [e.name for e in os.scandir(parent) if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            continue
        for name in names:
            if name in keep_ids or name in removed:
                continue
            try:
                open_cgroup(config, name, fs_root).destroy()
                removed.add(name)
            except DockuiError as exc:
                log.warning("could not remove orphan cgroup %s: %s", name, exc)
    return sorted(removed)


def remove_parent(config: EngineConfig, fs_root: Path = CGROUP_ROOT) -> None:
    """Remove the parent group(s) if empty, deepest level first (tests; engine uninstall)."""
    parts = _parent_parts(config)
    for parent in parent_dirs(config, fs_root).values():
        for depth in range(len(parts)):
            with contextlib.suppress(FileNotFoundError, OSError):
                os.rmdir(parent.parents[depth - 1] if depth else parent)


# ------------------------------------------------------------------------------ v2 device filter
# Cgroup v2 checks device access with a BPF_PROG_TYPE_CGROUP_DEVICE program, as runc's devicefilter
# generates it: the context is {u32 access_type (access << 16 | type), u32 major, u32 minor}; the
# program returns 1 (allow) for the first matching rule, 0 (deny) otherwise.

_SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}.get(os.uname().machine, 321)
_BPF_PROG_LOAD, _BPF_PROG_ATTACH = 5, 8
_BPF_PROG_TYPE_CGROUP_DEVICE = 15
_BPF_CGROUP_DEVICE = 6
_BPF_F_ALLOW_MULTI = 2
_CGROUP2_SUPER_MAGIC = 0x63677270
_DEV_TYPES = {"b": 1, "c": 2}
_DEV_ACCESS = {"m": 1, "r": 2, "w": 4}


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    import struct

    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def device_filter_program(rules: list[str]) -> bytes:
    """eBPF bytecode allowing exactly `rules` ("c 1:3 rwm", "a *:* rwm", ...), denying the rest."""
    LDXW, AND32K, RSH32K, MOV32X, MOV32K, JNEK, JNEX, EXIT = 0x61, 0x54, 0x74, 0xBC, 0xB4, 0x55, 0x5D, 0x95
    prog = [
        _insn(LDXW, 2, 1, 0),  # r2 = type
        _insn(AND32K, 2, imm=0xFFFF),
        _insn(LDXW, 3, 1, 0),  # r3 = requested access
        _insn(RSH32K, 3, imm=16),
        _insn(LDXW, 4, 1, 4),  # r4 = major
        _insn(LDXW, 5, 1, 8),  # r5 = minor
    ]
    for rule in rules:
        kind, numbers, access = rule.split()
        major, _, minor = numbers.partition(":")
        checks: list[tuple[int, int, int, int]] = []  # (code, dst, src, imm) of jumps to the next block
        pre: list[bytes] = []
        if kind != "a":
            checks.append((JNEK, 2, 0, _DEV_TYPES[kind]))
        mask = sum(_DEV_ACCESS[c] for c in set(access))
        if mask != 7:  # requested access must be a subset: (r3 & mask) == r3
            pre = [_insn(MOV32X, 1, 3), _insn(AND32K, 1, imm=mask)]
            checks.append((JNEX, 1, 3, 0))
        if kind != "a" and major != "*":
            checks.append((JNEK, 4, 0, int(major)))
        if kind != "a" and minor not in ("*", ""):
            checks.append((JNEK, 5, 0, int(minor)))
        block: list[bytes] = []
        if mask != 7:
            # type check first (if any), then the access temp, then the access compare, then numbers
            first = [c for c in checks if c[1] == 2]
            rest = [c for c in checks if c[1] != 2]
            ordered: list[tuple[int, int, int, int] | bytes] = [*first, *pre, *rest]
        else:
            ordered = list(checks)
        tail = [_insn(MOV32K, 0, imm=1), _insn(EXIT)]
        n_after = len(tail)
        # Fill in jump offsets: each jump skips to just after this block.
        total = len(ordered) + n_after
        for i, item in enumerate(ordered):
            if isinstance(item, bytes):
                block.append(item)
            else:
                code, dst, src, imm = item
                block.append(_insn(code, dst, src, off=total - i - 1, imm=imm))
        prog += block + tail
    prog += [_insn(MOV32K, 0, imm=0), _insn(EXIT)]
    return b"".join(prog)


def _bpf(cmd: int, attr: bytes) -> int:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(attr, len(attr))
    result = libc.syscall(ctypes.c_long(_SYS_BPF), ctypes.c_int(cmd), buf, ctypes.c_uint(len(attr)))
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({cmd}): {os.strerror(err)}")
    return int(result)


def attach_device_filter(cgroup_dir: Path, rules: list[str]) -> None:
    """Load the allow-list program and attach it to `cgroup_dir` (detached by the kernel on rmdir)."""
    import ctypes
    import struct

    code = device_filter_program(rules)
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"Apache\0")

    def load(log_buf: ctypes.Array[ctypes.c_char] | None) -> int:
        attr = bytearray(128)
        struct.pack_into(
            "<IIQQIIQ",
            attr,
            0,
            _BPF_PROG_TYPE_CGROUP_DEVICE,
            len(code) // 8,
            ctypes.addressof(insns),
            ctypes.addressof(license_),
            1 if log_buf is not None else 0,  # log_level
            len(log_buf) if log_buf is not None else 0,
            ctypes.addressof(log_buf) if log_buf is not None else 0,
        )
        attr[48:64] = b"dockui_devices\0\0"
        struct.pack_into("<I", attr, 68, _BPF_CGROUP_DEVICE)  # expected_attach_type
        return _bpf(_BPF_PROG_LOAD, bytes(attr))

    try:
        prog_fd = load(None)
    except OSError as exc:
        log_buf = ctypes.create_string_buffer(1 << 20)  # load again, asking the verifier why
        with contextlib.suppress(OSError):
            os.close(load(log_buf))
        detail = log_buf.value.decode(errors="replace").strip()[-500:]
        raise DockuiError(f"cannot load the device filter (cgroup v2): {exc}{': ' + detail if detail else ''}") from exc
    try:
        dir_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            attach = bytearray(128)
            struct.pack_into("<IIII", attach, 0, dir_fd, prog_fd, _BPF_CGROUP_DEVICE, _BPF_F_ALLOW_MULTI)
            _bpf(_BPF_PROG_ATTACH, bytes(attach))
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise DockuiError(f"cannot attach the device filter to {cgroup_dir}: {exc}") from exc
    finally:
        os.close(prog_fd)


def _is_cgroup2(path: Path) -> bool:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(256)
    if libc.statfs(os.fsencode(path), buf) != 0:
        return False
    return int.from_bytes(buf.raw[:8], "little") == _CGROUP2_SUPER_MAGIC
