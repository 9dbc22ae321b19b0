"""`update`: change a container's resource limits and restart policy, running or not.

The new values go into the record's HostConfig (under the record's lock, so a concurrent start or
exit reads either the old or the new policy and limits, never half of each) and, while the
container runs, into its cgroup at once: the kernel applies them to the live processes. A later
start (or a restart by its policy) creates the cgroup from the record, so the values stay.

Invariant: the merged values are checked with Docker's rules before anything is written; when the
kernel refuses a limit (a memory limit below what the container uses now), the record keeps its
old values and the error is one line.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from engine.config import EngineConfig
from engine.container import state
from engine.container.options import parse_restart_policy, resources_of
from engine.container.state import ContainerRecord
from engine.errors import InvalidArgument

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any


@dataclass(frozen=True)
class Update:
    """What `docker update` may change; None: unchanged. Sizes in bytes, `cpus` in CPUs,
    `pids_limit` <= 0 unlimited, `restart` Docker's policy text."""

    memory: int | None = None
    memory_swap: int | None = None
    memory_reservation: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    cpu_period: int | None = None
    cpu_quota: int | None = None
    cpuset_cpus: str | None = None
    pids_limit: int | None = None
    blkio_weight: int | None = None
    restart: str | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


# Update fields -> HostConfig keys (cpus is NanoCpus, restart is RestartPolicy: converted below).
HOST_KEYS = {"memory": "Memory", "memory_swap": "MemorySwap", "memory_reservation": "MemoryReservation",
             "cpu_shares": "CpuShares", "cpu_period": "CpuPeriod", "cpu_quota": "CpuQuota",
             "cpuset_cpus": "CpusetCpus", "pids_limit": "PidsLimit", "blkio_weight": "BlkioWeight"}


def merged_host_config(host_config: dict[str, Any], change: Update) -> dict[str, Any]:
    """The HostConfig after `change`, checked as create checks it (InvalidArgument otherwise)."""
    if change.cpus and (change.cpu_period or change.cpu_quota):
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set")
    merged = dict(host_config)
    for name, key in HOST_KEYS.items():
        value = getattr(change, name)
        if value is not None:
            merged[key] = value
    if change.cpus is not None:
        from engine.container.create import nano_cpus

        merged["NanoCpus"] = nano_cpus(change.cpus)
        if change.cpus:  # --cpus replaces a period/quota pair, as one CFS setting
            merged["CpuPeriod"] = merged["CpuQuota"] = 0
    elif change.cpu_period is not None or change.cpu_quota is not None:
        merged["NanoCpus"] = 0
    if change.memory is not None and change.memory_swap is None:
        swap = merged.get("MemorySwap") or 0
        if swap > 0 and change.memory > swap:
            raise InvalidArgument("Memory limit should be smaller than already set memoryswap limit, "
                                  "update the memoryswap at the same time")
    if change.restart is not None:
        if merged.get("AutoRemove") and change.restart not in ("", "no"):
            raise InvalidArgument("Restart policy cannot be updated because AutoRemove is enabled for the container")
        merged["RestartPolicy"] = parse_restart_policy(change.restart)
    resources_of(merged).validate()
    return merged


def update(config: EngineConfig, ref: str, change: Update) -> ContainerRecord:
    """Apply `change` to the container `ref` (see the module docstring); the saved record."""
    if change.is_empty():
        raise InvalidArgument("you must provide one or more flags when using this command")
    record = state.find_container(config, ref)
    with state.locked(config, record.id) as r:
        merged = merged_host_config(r.host_config, change)
        if r.status in ("running", "paused", "restarting") and r.cgroup_paths:
            _write_live(r, change, merged)
        r.host_config = merged
        state.save(config, r, durable=True)  # hostconfig.json too: written at create, and by update only
    from engine import events

    events.container(config, "update", r)
    return r


def _write_live(record: ContainerRecord, change: Update, merged: dict[str, Any]) -> None:
    """Only the limits named in `change`, into the running container's cgroup."""
    from engine.sandbox.cgroups import Cgroup, Resources

    group = Cgroup.from_paths(record.cgroup_paths)
    full = resources_of(merged)
    wanted = {
        "memory": full.memory if change.memory is not None or change.memory_swap is not None else None,
        "memory_swap": full.memory_swap if change.memory is not None or change.memory_swap is not None else None,
        "memory_reservation": full.memory_reservation if change.memory_reservation is not None else None,
        "cpus": full.cpus if change.cpus is not None else None,
        "cpu_shares": full.cpu_shares if change.cpu_shares is not None else None,
        "cpu_period": full.cpu_period if change.cpu_period is not None else None,
        "cpu_quota": full.cpu_quota if change.cpu_quota is not None else None,
        "cpuset_cpus": full.cpuset_cpus if change.cpuset_cpus is not None else None,
        "pids_limit": change.pids_limit,
        "blkio_weight": full.blkio_weight if change.blkio_weight is not None else None,
    }
    if change.cpus == 0 and not full.cpu_quota:  # --cpus 0: no CFS limit any more
        wanted["cpu_quota"] = -1
    group.update(Resources(**wanted))
