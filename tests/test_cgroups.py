"""engine.sandbox.cgroups on the real kernel: this machine's hierarchy (v1/hybrid here, v2 elsewhere).

Each test gets its own parent group (`dockui-test-<random>`) so engineers running tests at the same
time do not collide, and removes it (processes killed, directories gone) at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.errors import InvalidArgument
from engine.sandbox.cgroups import (
    CGROUP_ROOT,
    Cgroup,
    Resources,
    cgroup_version,
    cleanup_orphans,
    open_cgroup,
    parent_dirs,
)
from tests.cgroup_support import spawn_in, throwaway_cgroup_config

pytestmark = pytest.mark.root
V2 = cgroup_version() == 2


@pytest.fixture
def cg_config(tmp_path: Path) -> Iterator[EngineConfig]:
    yield from throwaway_cgroup_config(tmp_path)


def read(cg: Cgroup, controller: str, name: str) -> str:
    key = "unified" if V2 else controller
    return (cg.paths[key] / name).read_text().strip()


def test_limits_written_process_joins_and_destroy_removes(cg_config: EngineConfig) -> None:
    cg = open_cgroup(cg_config, "c" + uuid.uuid4().hex[:8])
    cg.create(Resources(memory=64 << 20, cpus=1.5, cpu_shares=512, pids_limit=50, cpuset_cpus="0"))
    proc = spawn_in(cg, ["sleep", "30"])
    try:
        assert proc.pid in cg.pids()
        if V2:
            assert read(cg, "memory", "memory.max") == str(64 << 20)
            assert read(cg, "cpu", "cpu.max") == "150000 100000"
        else:
            assert read(cg, "memory", "memory.limit_in_bytes") == str(64 << 20)
            assert read(cg, "cpu", "cpu.cfs_quota_us") == "150000"
            assert read(cg, "cpu", "cpu.cfs_period_us") == "100000"
            assert read(cg, "cpu", "cpu.shares") == "512"
            assert read(cg, "cpuset", "cpuset.mems") == (cg.paths["cpuset"].parent / "cpuset.mems").read_text().strip()
            # The device allow-list: everything denied, then the standard nodes.
            devices = read(cg, "devices", "devices.list").splitlines()
            assert "c 1:3 rwm" in devices and "a *:* rwm" not in devices
            assert "b 254:0 rwm" not in devices
            own = Path(f"/proc/{proc.pid}/cgroup").read_text()
            assert f"memory:/{cg_config.cgroup_parent}/" in own
        assert read(cg, "cpuset", "cpuset.cpus") == "0"
        assert read(cg, "pids", "pids.max") == "50"
        cg.freeze()
        assert cg.frozen
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert state in ("S", "D")  # frozen tasks sleep in the freezer
        cg.thaw()
        assert not cg.frozen
    finally:
        cg.destroy()
    assert proc.wait(timeout=5) == -signal.SIGKILL
    assert not cg.exists()
    cg.destroy()  # idempotent


def test_memory_hog_is_oom_killed_and_counted(cg_config: EngineConfig) -> None:
    cg = open_cgroup(cg_config, "oom")
    cg.create(Resources(memory=32 << 20, memory_swap=32 << 20))
    assert cg.oom_kill_count() == 0
    hog = spawn_in(cg, [sys.executable, "-c", "b = b'x' * (200 << 20); print('survived')"], stdout=subprocess.PIPE)
    out, _ = hog.communicate(timeout=30)
    assert hog.returncode == -signal.SIGKILL
    assert b"survived" not in out
    assert cg.oom_kill_count() >= 1
    cg.destroy()


def test_fork_bomb_stopped_by_pids_limit(cg_config: EngineConfig) -> None:
    cg = open_cgroup(cg_config, "bomb")
    cg.create(Resources(pids_limit=20))
    # Bounded: at most 300 attempts, each child sleeps; the limit must stop it at 20 tasks.
    bomb = spawn_in(
        cg,
        ["/bin/sh", "-c", "i=0; while [ $i -lt 300 ]; do sleep 60 & i=$((i+1)); done 2>/dev/null; wait"],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while bomb.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            if int(read(cg, "pids", "pids.current")) >= 20:
                break
        time.sleep(0.3)
        assert int(read(cg, "pids", "pids.current")) <= 20
        events = read(cg, "pids", "pids.events")
        assert int(events.split()[-1]) > 0  # "max N": forks refused
        # The host still forks fine.
        assert subprocess.run(["true"]).returncode == 0
    finally:
        cg.destroy()
        bomb.wait(timeout=5)
    assert not cg.exists()


def test_busy_loop_under_half_a_cpu_accrues_half_a_core(cg_config: EngineConfig) -> None:
    cg = open_cgroup(cg_config, "cpu")
    cg.create(Resources(cpus=0.5))
    # A large weight for the test's own parent, so the cores shared with other work do not starve
    # the loop below its quota: the cap is what is tested.
    parent = parent_dirs(cg_config)["unified" if V2 else "cpu"]
    (parent / ("cpu.weight" if V2 else "cpu.shares")).write_text("1000" if V2 else "10240")
    loop = spawn_in(cg, ["/bin/sh", "-c", "while :; do :; done"])
    try:
        usage_file = cg.paths["unified"] / "cpu.stat" if V2 else cg.paths["cpuacct"] / "cpuacct.usage"

        def usage_s() -> float:
            text = usage_file.read_text()
            return int(text.split()[1]) / 1e6 if V2 else int(text) / 1e9

        time.sleep(0.2)
        u0, t0 = usage_s(), time.monotonic()
        time.sleep(2.0)
        share = (usage_s() - u0) / (time.monotonic() - t0)
        assert 0.4 <= share <= 0.56, share  # the quota caps at 0.5 (+ one period of slack)
        throttled = read(cg, "cpu", "cpu.stat")
        assert "nr_throttled" in throttled and int(throttled.split("nr_throttled")[1].split()[0]) > 0
    finally:
        cg.destroy()
    loop.wait(timeout=5)


def test_kill_all_reaches_every_process(cg_config: EngineConfig) -> None:
    cg = open_cgroup(cg_config, "kill")
    cg.create(Resources())
    shell = spawn_in(cg, ["/bin/sh", "-c", "sleep 60 & sleep 60 & wait"])
    deadline = time.monotonic() + 5
    while len(cg.pids()) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(cg.pids()) == 3
    cg.kill_all(signal.SIGTERM)
    assert shell.wait(timeout=5) != 0
    deadline = time.monotonic() + 5
    while cg.pids() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cg.pids() == []
    cg.destroy()


def test_cleanup_orphans_keeps_the_living(cg_config: EngineConfig) -> None:
    keep, orphan = open_cgroup(cg_config, "keep"), open_cgroup(cg_config, "orphan")
    keep.create(Resources())
    orphan.create(Resources())
    sleeper = spawn_in(orphan, ["sleep", "60"])
    assert cleanup_orphans(cg_config, {"keep"}) == ["orphan"]
    assert keep.exists() and not orphan.exists()
    assert sleeper.wait(timeout=5) == -signal.SIGKILL
    keep.destroy()


def test_bad_limits_are_refused_and_leave_nothing(cg_config: EngineConfig) -> None:
    cg = open_cgroup(cg_config, "bad")
    for bad in (
        Resources(memory=1 << 20),
        Resources(memory=64 << 20, memory_swap=32 << 20),
        Resources(cpus=(os.cpu_count() or 1) + 1),
        Resources(cpuset_cpus="1-0"),
        Resources(blkio_weight=5),
    ):
        with pytest.raises(InvalidArgument):
            cg.create(bad)
        assert not cg.exists()
    with pytest.raises(InvalidArgument, match="Requested CPUs are not available"):
        cg.create(Resources(cpuset_cpus="0-511"))
    assert not cg.exists()
    with pytest.raises(InvalidArgument):
        open_cgroup(cg_config, "../escape")


def test_version_detection_of_this_host() -> None:
    expected = 2 if (CGROUP_ROOT / "cgroup.controllers").exists() else 1
    assert cgroup_version() == expected


@pytest.mark.skipif(V2, reason="v1 devices controller; v2 is in test_cgroups_v2_real.py")
def test_device_allow_list_enforced_by_v1_devices_controller(cg_config: EngineConfig) -> None:
    from tests.test_cgroups_v2_real import host_block_device, probe

    disk = host_block_device()
    cg = open_cgroup(cg_config, "dev")
    cg.create(Resources())
    result = probe(cg, [("/dev/null", os.O_RDWR), ("/dev/urandom", os.O_RDONLY), (disk, os.O_RDONLY)])
    assert list(result.values()) == ["ok", "ok", "Operation not permitted"]
    cg.destroy()
