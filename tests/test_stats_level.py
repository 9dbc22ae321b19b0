"""The sampler's TABLE level (engine.stats.sampler.LEVELS): CPU and memory as FULL reads them, on a
real process in a real cgroup, from fewer files (block I/O, OOM, pids, throttling never opened)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.sandbox.cgroups import Resources, open_cgroup
from engine.stats.sampler import FULL, SLOW_EVERY, TABLE, Sampler, StatsTarget
from tests.cgroup_support import spawn_in, throwaway_cgroup_config

pytestmark = pytest.mark.root
MiB = 1 << 20


@pytest.fixture
def cg_config(tmp_path: Path) -> Iterator[EngineConfig]:
    yield from throwaway_cgroup_config(tmp_path)


def test_table_level_reads_cpu_and_memory_from_fewer_files(cg_config: EngineConfig) -> None:
    cg = open_cgroup(cg_config, "level")
    cg.create(Resources(memory=256 * MiB, pids_limit=50))
    script = ("import sys; b = bytearray(b'x') * (40 << 20); sys.stdout.write('ready\\n'); sys.stdout.flush(); "
              "x = 0\nwhile True: x += 1")  # touches 40 MiB, then burns CPU
    proc = spawn_in(cg, [sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        targets = [StatsTarget(id="level", name="level", cgroup_paths=dict(cg.paths), host_veth=None)]
        with Sampler(cg_config, lambda: targets, host=False) as full, \
                Sampler(cg_config, lambda: targets, host=False, level=TABLE) as table:
            for _ in range(SLOW_EVERY + 1):  # past a round where TABLE skips memory.stat
                a, b = full.sample().by_id["level"], table.sample().by_id["level"]
            opened = set(table._readers["level"].fds)
            assert set(full._readers["level"].fds) > opened
            table.set_level(FULL)  # a screen that shows everything: every counter from the next round
            time.sleep(0.05)  # a few clock ticks of /proc/stat, for a CPU rate
            c = table.sample().by_id["level"]
            assert set(table._readers["level"].fds) == set(full._readers["level"].fds)
    finally:
        proc.kill()
        proc.wait()
    assert not opened & {"blkio", "oom", "pids_current", "pids_max", "mem_peak"}, opened
    assert b.cpu.usage_ns > 0 and abs(b.cpu.usage_ns - a.cpu.usage_ns) < 0.2 * a.cpu.usage_ns
    assert b.memory.usage >= 40 * MiB and abs(b.memory.usage - a.memory.usage) < 4 * MiB
    assert b.memory.limit == a.memory.limit == 256 * MiB
    assert a.pids_stats.current == 1 and b.pids_stats.current == 0  # not read at TABLE
    assert c.pids_stats.current == 1 and c.cpu.percent > 0  # the rate went on across the change


def test_unknown_level_is_refused(cg_config: EngineConfig) -> None:
    with pytest.raises(ValueError, match="not one of full, table"):
        Sampler(cg_config, lambda: [], host=False, level="everything")
