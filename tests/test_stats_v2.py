"""engine.stats.sampler' cgroup v2 arithmetic against a faithful directory tree (tests/fixtures/cgroupv2_tree.py).

The CI kernel mounts cgroup v1, so v2 counters cannot be produced for real here. The tree holds
files named and formatted as a 6.x kernel's (cpu.stat usage_usec, memory.current, memory.stat
inactive_file, io.stat rbytes=/wbytes=, memory.events oom_kill, pids.current, "max"), plus a
/proc/stat lookalike, and the test advances the counters between two samples as the kernel would.
The real-kernel (v1) figures are tested in test_stats.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.stats.sampler import Sampler, StatsTarget
from tests.fixtures.cgroupv2_tree import CgroupV2Tree, cpu_stat, io_stat, memory_events, memory_stat

MiB = 1 << 20
HZ = os.sysconf("SC_CLK_TCK")


def test_v2_counters_rates_and_percentages(
    cgroupv2_tree: CgroupV2Tree, proc_stat_file: Callable[[int, int], Path], tmp_path: Path
) -> None:
    rel = "dockui/" + "b" * 64
    leaf = cgroupv2_tree.add_group(rel)
    w = cgroupv2_tree.write
    w(rel, "cpu.stat", cpu_stat(usage_usec=3_000_000, nr_periods=10, nr_throttled=2, throttled_usec=40_000))
    w(rel, "memory.current", f"{120 * MiB}\n")
    w(rel, "memory.stat", memory_stat(anon=80 * MiB, file=40 * MiB, inactive_file=30 * MiB, active_file=10 * MiB))
    w(rel, "memory.max", f"{256 * MiB}\n")
    w(rel, "memory.peak", f"{150 * MiB}\n")
    w(rel, "io.stat", io_stat({"254:0": (1_000_000, 2_000_000), "254:16": (500, 0)}))
    w(rel, "pids.current", "7\n")
    w(rel, "pids.max", "max\n")
    proc = proc_stat_file(10_000, 50_000)
    target = StatsTarget(id="b" * 64, name="web", cgroup_paths={"unified": leaf})
    config = EngineConfig(root=tmp_path / "root")
    with Sampler(config, lambda: [target], proc_root=proc, host=False) as sampler:
        first = sampler.sample().by_id["b" * 64]
        # One second later: the host's 2 CPUs ran 200 jiffies in all; the group used 0.5 s of CPU.
        w(rel, "cpu.stat", cpu_stat(usage_usec=3_500_000, nr_periods=20, nr_throttled=7, throttled_usec=90_000))
        w(rel, "io.stat", io_stat({"254:0": (1_000_000, 6_000_000), "254:16": (4_500, 0)}))
        w(rel, "memory.events", memory_events(oom_kill=1))
        w(rel, "pids.current", "9\n")
        proc_stat_file(10_000 + 100 * HZ // 100, 50_000 + 100 * HZ // 100)
        second = sampler.sample().by_id["b" * 64]

    assert first.cpu.percent == 0.0  # no previous sample yet
    assert first.cpu.usage_ns == 3_000_000_000
    cpu = second.cpu
    assert cpu.online_cpus == 2
    # docker: Δusage / Δsystem × online × 100 = 0.5 s / 2 s × 2 × 100 = 50 % (of one core)
    assert cpu.percent == pytest.approx(50.0)
    assert (cpu.nr_periods, cpu.nr_throttled, cpu.throttled_ns) == (20, 7, 90_000_000)
    mem = second.memory
    assert mem.raw_usage == 120 * MiB
    assert mem.inactive_file == 30 * MiB
    assert mem.usage == 90 * MiB  # memory.current − inactive_file
    assert mem.limit == 256 * MiB
    assert mem.percent == pytest.approx(90 / 256 * 100)
    assert mem.peak == 150 * MiB
    assert (first.memory.oom_kills, mem.oom_kills) == (0, 1)
    assert (second.pids_stats.current, second.pids_stats.limit) == (9, None)
    assert (second.pids, second.pids_limit, second.cpu_percent, second.memory_usage) == (9, None, cpu.percent, mem.usage)
    blk = second.block_io
    assert (blk.read_bytes, blk.write_bytes) == (1_004_500, 6_000_000)
    assert blk.write_rate == pytest.approx(4_000_000 / second.interval)
    assert blk.read_rate == pytest.approx(4_000 / second.interval)
    assert second.network is None  # no veth: --network none
    row = second.docker_row()
    assert row["CPUPerc"] == "50.00%"
    assert row["MemUsage"] == "90MiB / 256MiB"
    assert row["BlockIO"] == "1MB / 6MB"
    assert row["PIDs"] == "9"


def test_v2_unlimited_memory_reads_host_total_and_missing_peak(
    cgroupv2_tree: CgroupV2Tree, proc_stat_file: Callable[[int, int], Path], tmp_path: Path
) -> None:
    rel = "dockui/" + "c" * 64
    leaf = cgroupv2_tree.add_group(rel)
    (leaf / "memory.peak").unlink()  # kernels before 5.19 have no memory.peak
    cgroupv2_tree.write(rel, "memory.current", f"{10 * MiB}\n")
    proc = proc_stat_file(1, 1)
    (proc / "meminfo").write_text("MemTotal:        2048000 kB\nMemFree:  1000 kB\n")
    target = StatsTarget(id="c" * 64, name="idle", cgroup_paths={"unified": leaf})
    with Sampler(EngineConfig(root=tmp_path / "r"), lambda: [target], proc_root=proc, host=False) as sampler:
        mem = sampler.sample().by_id["c" * 64].memory
    assert mem.limit == 2048000 * 1024
    assert mem.peak is None
    assert mem.usage == 10 * MiB
