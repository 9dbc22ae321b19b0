"""Priming the kernel's cgroup-migration fast path while a container is being built.

Moving a process between cgroups can wait for an RCU grace period (5-15 ms); a prime taken a few
ms earlier makes the container's join cheap. Who primes when (the intermediate process of a monitor
forked ahead, or the `dockui` command's thread; the monitor while it waits for its context; the
caller of a monitor started otherwise) is described in docs/lifecycle.md. `primed_ahead` says the running monitor was forked
ahead and kept the path open itself.
"""

from __future__ import annotations

import os

primed_ahead = False  # this monitor was forked ahead and kept the migration fast path open itself


def prime_cgroup_migration(target: str | None = "") -> None:
    """Start the kernel's wait for cgroup migrations now, while the monitor builds the container.

    Moving a process between cgroups takes the global cgroup_threadgroup_rwsem for writing; when
    no migration happened in the last ~10 ms that waits for an RCU grace period (5-15 ms here,
    more on a busy host) while holding cgroup_mutex, in the monitor, in the start path (it moves
    the container's first process into its cgroup). The caller moves itself into the cgroup it is
    already in: nothing changes for it, but the lock's slow path is taken now, and a migration a
    few ms later finds it done. A monitor forked ahead (`run`) has its intermediate process take
    the first, slow prime and keeps the path open while it waits (_read_control); a monitor
    started otherwise is primed by its caller once the container's cgroup exists (`start`).
    `target` is the cgroup.procs file (prime_target), looked up here when not given.
    """
    if target == "":
        target = prime_target()
    if target is None:
        return
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def prime_target() -> str | None:
    """The cgroup.procs file of our own group in the pids hierarchy (or v2's), or None."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    target = None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):
            target = f"/sys/fs/cgroup/pids{path}"
        elif line.startswith("0::") and target is None and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            target = f"/sys/fs/cgroup{path}"  # cgroup v2 only
    return None if target is None else target.rstrip("/") + "/cgroup.procs"
