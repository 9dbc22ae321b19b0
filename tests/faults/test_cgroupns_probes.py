"""Escape probes against the container's own cgroup directories, which `--cgroupns host` binds in
(and `private` re-mounts from inside its namespace) read-only: a container must not raise its own
limits, move itself or make a child group, climb with `..` to its parent's files, or remount them
writable. Each probe is a shell command that succeeds only if the container got through."""

from __future__ import annotations

import pytest

from tests.faults.scoreboard import score
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - `engine` fixture

pytestmark = pytest.mark.root

# The container's own group, on v1 (memory controller) or v2 (the unified hierarchy).
OWN = "d=/sys/fs/cgroup/memory; [ -d $d ] || d=/sys/fs/cgroup/unified; [ -d $d ] || d=/sys/fs/cgroup"
PROBES = {
    "raise-own-limit": f"{OWN}; f=$d/memory.limit_in_bytes; [ -f $f ] || f=$d/memory.max; "
                       "v=$(cat $f) && echo $v > $f",
    "write-own-procs": f"{OWN}; echo $$ > $d/cgroup.procs",
    "make-child-group": f"{OWN}; mkdir $d/escape-child",
    "climb-to-parent": f"{OWN}; ls $d/../../ | grep -q -v -e memory -e unified -e cpu -e pids -e devices -e blkio "
                       "-e freezer -e net -e perf -e hugetlb -e rdma -e misc -e systemd -e cpuset -e '^$' "
                       "&& ls $d/.. | grep -q '^[0-9a-f]\\{64\\}$'",
    "remount-rw": "mount -o remount,rw /sys/fs/cgroup",
    "mount-cgroup-fs": "mkdir -p /tmp/cg && mount -t cgroup2 none /tmp/cg",
    "release-agent": "for f in /sys/fs/cgroup/*/release_agent; do [ -w $f ] && exit 0; done; exit 1",
}


@pytest.mark.parametrize("mode", ["host", "private"])
def test_own_cgroup_directories_are_read_only(engine: Engine, mode: str) -> None:
    script = "; ".join(f"if ( {cmd} ) >/dev/null 2>&1; then echo {name}=GOT-THROUGH; else echo {name}=blocked; fi"
                       for name, cmd in PROBES.items())
    result = engine.cli("run", "--rm", "--network", "none", "--cgroupns", mode, "busybox", "sh", "-c", script)
    answers = dict(line.split("=", 1) for line in result.stdout.decode().split() if "=" in line)
    for name in PROBES:
        answer = answers.get(name, "no answer")
        score("escape", f"cgroupns-{mode}-{name}", answer in ("blocked", "GOT-THROUGH"),
              detail=f"{answer} {result.stderr!r}",
              escapes=[f"{name}: the container got through"] if answer == "GOT-THROUGH" else [])
