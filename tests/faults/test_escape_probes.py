"""Escape probes from inside a default container: each is something a container must not be able
to do to its host; one that succeeds is an escape on the scoreboard. Writes go back with the value
already there, so a probe that got through changes nothing."""

from __future__ import annotations

import pytest

from tests.faults.scoreboard import score
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - `engine` fixture

pytestmark = pytest.mark.root

# name -> shell command that succeeds (exit 0) only if the container got through
PROBES = {
    "mount-tmpfs": "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m",
    "proc-sys-write": "cat /proc/sys/kernel/printk > /tmp/v && cat /tmp/v > /proc/sys/kernel/printk",
    "core-pattern-write": "cat /proc/sys/kernel/core_pattern > /tmp/v && cat /tmp/v > /proc/sys/kernel/core_pattern",
    "sysrq-trigger": "printf '' > /proc/sysrq-trigger && test -w /proc/sysrq-trigger",
    "kcore-read": "head -c 1 /proc/kcore > /dev/null",
    "block-device-read": "set -- $(sed -n 3p /proc/partitions) && mknod /tmp/disk b $1 $2 && head -c 1 /tmp/disk > /dev/null",
    "dev-mem-read": "mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem > /dev/null",
    "cgroup-write": "mkdir /sys/fs/cgroup/escape 2>/dev/null || mkdir /sys/fs/cgroup/memory/escape",
    "sys-write": "cat /sys/kernel/uevent_helper > /tmp/v && cat /tmp/v > /sys/kernel/uevent_helper",
    "user-namespace": "unshare -U true",
    "host-fds": "test $(ls /proc/self/fd | wc -l) -gt 4",
    "host-pid-visible": "cat /proc/[0-9]*/cmdline | tr '\\0' ' ' | grep -q 'py[t]est'",  # the test runner's (a pattern that does not match itself)
    "kernel-module": "rmmod dockui_no_such_module 2>&1 | grep -qv 'not permitted'",
    "setns-host-net": "nsenter -t 1 -n true && test -e /sys/class/net/docker0 -o -e /sys/class/net/dockui0",
}


def test_default_container_cannot_reach_its_host(engine: Engine) -> None:
    script = "; ".join(f"if ( {cmd} ) >/dev/null 2>&1; then echo {name}=GOT-THROUGH; else echo {name}=blocked; fi"
                       for name, cmd in PROBES.items())
    result = engine.cli("run", "--rm", "--network", "none", "busybox", "sh", "-c", script)
    answers = dict(line.split("=", 1) for line in result.stdout.decode().split() if "=" in line)
    for name in PROBES:
        answer = answers.get(name, "no answer")
        score("escape", name, answer in ("blocked", "GOT-THROUGH"), detail=f"{answer} {result.stderr!r}",
              escapes=[f"{name}: the container got through"] if answer == "GOT-THROUGH" else [])
