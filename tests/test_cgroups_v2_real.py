"""engine.sandbox.cgroups' v2 code on a REAL cgroup2 hierarchy.

A pure v2 host mounts it at /sys/fs/cgroup; this hybrid CI host mounts one at /sys/fs/cgroup/unified
with no resource controller enabled (only hugetlb), but the core of v2 works there for real: the eBPF
device filter, cgroup.freeze/cgroup.events, cgroup.kill, cgroup.procs and cpu.stat's usage. Those are
tested here against the kernel; the resource-limit files (memory.max, ...) are tested against a
faithful tree in test_cgroups_v2.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.sandbox.cgroups import (
    CGROUP_ROOT,
    Cgroup,
    Resources,
    _is_cgroup2,
    cgroup_version,
    open_cgroup,
)
from engine.stats.sampler import Sampler, StatsTarget
from tests.cgroup_support import spawn_in, throwaway_cgroup_config

pytestmark = pytest.mark.root


def real_cgroup2_root() -> Path | None:
    if cgroup_version(CGROUP_ROOT) == 2:
        return CGROUP_ROOT
    unified = CGROUP_ROOT / "unified"
    if (unified / "cgroup.controllers").exists() and _is_cgroup2(unified):
        return unified
    return None


V2_ROOT = real_cgroup2_root()
needs_cgroup2 = pytest.mark.skipif(V2_ROOT is None, reason="no cgroup2 hierarchy mounted")


@pytest.fixture
def v2_config(tmp_path: Path) -> Iterator[EngineConfig]:
    assert V2_ROOT is not None
    yield from throwaway_cgroup_config(tmp_path, V2_ROOT)


def host_block_device() -> str:
    """A block device node this test process may open (e.g. /dev/loop0): not on the allow-list."""
    for name in sorted(os.listdir("/sys/block")):
        path = f"/dev/{name}"
        try:
            os.close(os.open(path, os.O_RDONLY))
        except OSError:
            continue
        return path
    pytest.skip("no block device this process may open")


PROBE = """
import json, os, sys
out = {}
for path, flags in json.loads(sys.argv[1]):
    try:
        os.close(os.open(path, flags))
        out[path + ":" + str(flags)] = "ok"
    except OSError as exc:
        out[path + ":" + str(flags)] = exc.strerror
print(json.dumps(out))
"""


def probe(cg: Cgroup, opens: list[tuple[str, int]]) -> dict[str, str]:
    proc = spawn_in(cg, [sys.executable, "-c", PROBE, json.dumps(opens)], stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=20)
    return json.loads(out)


@needs_cgroup2
def test_device_allow_list_is_enforced_by_the_ebpf_filter(v2_config: EngineConfig) -> None:
    disk = host_block_device()
    opens = [("/dev/null", os.O_RDWR), ("/dev/zero", os.O_RDONLY), ("/dev/urandom", os.O_RDONLY), (disk, os.O_RDONLY)]
    assert V2_ROOT is not None
    default = open_cgroup(v2_config, "default", fs_root=V2_ROOT)
    default.create(Resources())
    result = probe(default, opens)
    assert result[f"/dev/null:{os.O_RDWR}"] == "ok"
    assert result[f"/dev/zero:{os.O_RDONLY}"] == "ok"
    assert result[f"/dev/urandom:{os.O_RDONLY}"] == "ok"
    assert result[f"{disk}:{os.O_RDONLY}"] == "Operation not permitted"  # even for root
    # A narrower list: /dev/null read-only, nothing else.
    narrow = open_cgroup(v2_config, "narrow", fs_root=V2_ROOT)
    narrow.create(Resources(), devices_allow=["c 1:3 r"])
    result = probe(narrow, [("/dev/null", os.O_RDONLY), ("/dev/null", os.O_WRONLY), ("/dev/zero", os.O_RDONLY)])
    assert list(result.values()) == ["ok", "Operation not permitted", "Operation not permitted"]
    # --privileged: no filter.
    privileged = open_cgroup(v2_config, "priv", fs_root=V2_ROOT)
    privileged.create(Resources(), privileged=True)
    assert probe(privileged, [(disk, os.O_RDONLY)]) == {f"{disk}:{os.O_RDONLY}": "ok"}
    for cg in (default, narrow, privileged):
        cg.destroy()
        assert not cg.exists()


@needs_cgroup2
def test_freeze_thaw_kill_and_destroy_on_real_cgroup2(v2_config: EngineConfig) -> None:
    assert V2_ROOT is not None
    cg = open_cgroup(v2_config, "life", fs_root=V2_ROOT)
    cg.create(Resources())
    shell = spawn_in(cg, ["/bin/sh", "-c", "sleep 60 & sleep 60 & wait"])
    deadline = time.monotonic() + 5
    while len(cg.pids()) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(cg.pids()) == 3 and shell.pid in cg.pids()
    cg.freeze()
    assert cg.frozen
    assert "frozen 1" in (cg.paths["unified"] / "cgroup.events").read_text()
    cg.thaw()
    assert not cg.frozen
    cg.kill_all(signal.SIGKILL)  # cgroup.kill
    assert shell.wait(timeout=5) == -signal.SIGKILL
    cg.destroy()
    assert not cg.exists()


@needs_cgroup2
def test_stats_cpu_from_real_cgroup2_cpu_stat(v2_config: EngineConfig) -> None:
    """cpu.stat usage_usec is a core v2 file: the v2 CPU path of the sampler, on the kernel."""
    assert V2_ROOT is not None
    cg = open_cgroup(v2_config, "busy", fs_root=V2_ROOT)
    cg.create(Resources())
    loop = spawn_in(cg, ["/bin/sh", "-c", "while :; do :; done"])
    targets = [StatsTarget(id="busy", name="busy", cgroup_paths=dict(cg.paths))]
    try:
        with Sampler(v2_config, lambda: targets, host=False) as sampler:
            time.sleep(0.2)
            sampler.sample()
            stat = Path(f"/proc/{loop.pid}/stat")
            ticks0, t0 = sum(map(int, stat.read_text().rsplit(")", 1)[1].split()[11:13])), time.monotonic()
            time.sleep(1.5)
            cpu = sampler.sample().by_id["busy"].cpu
            ticks1 = sum(map(int, stat.read_text().rsplit(")", 1)[1].split()[11:13]))
        granted = (ticks1 - ticks0) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t0) * 100
    finally:
        loop.kill()
        loop.wait()
        cg.destroy()
    assert cpu.usage_ns > 0
    assert abs(cpu.percent - granted) <= 10.0, (cpu, granted)
    assert cpu.percent > 20.0


PURE_V2_VIEW = ("grep '^0::' /proc/self/cgroup; ls -A /sys/fs/cgroup | grep -c '^cgroup.procs$'; "
                "find /sys/fs/cgroup/ -mindepth 1 -type d | wc -l; "
                "grep ' /sys/fs/cgroup ' /proc/self/mountinfo | while read -r _ _ _ root _ opts _ _ fs _; do echo $root ${opts%%,*} $fs; done; "
                "echo 1 2>/dev/null > /sys/fs/cgroup/cgroup.freeze || echo freeze-refused")


@needs_cgroup2
@pytest.mark.parametrize("mode", ["host", "private"])
def test_container_view_on_a_pure_v2_layout(v2_config: EngineConfig, tmp_path: Path, busybox_rootfs: Path,
                                            monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """/sys/fs/cgroup as a pure v2 host has it (one cgroup2 mount there), played with this host's
    real cgroup2 tree: the layout the process reads is replaced by a single cgroup2 hierarchy and its
    group is a real one in that tree. Private: cgroup2 mounted in its own namespace; host: its
    group's directory bound there. Either way a sibling group is out of sight, all read-only."""
    from engine.sandbox import process, rootfs
    from tests.test_process_support import make_spec, run_spec

    assert V2_ROOT is not None
    cg = open_cgroup(v2_config, "c" * 64, V2_ROOT)
    sibling = open_cgroup(v2_config, "s" * 64, V2_ROOT)
    cg.create(Resources(), privileged=True)
    sibling.create(Resources(), privileged=True)
    monkeypatch.setattr(rootfs, "host_cgroup_layout", lambda *_: ([rootfs.CgroupMount("", "cgroup2", "")], []))
    monkeypatch.setattr(process, "_ahead", process._Prepared())  # no layout read ahead by another test
    spec = make_spec(tmp_path, busybox_rootfs, ["sh", "-c", PURE_V2_VIEW], cgroupns=mode,
                     cgroup_procs=cg.procs_files())
    try:
        result = run_spec(spec)
    finally:
        cg.destroy()
        sibling.destroy()
    own = "/" + str(cg.paths["unified"].relative_to(V2_ROOT))
    expected = own if mode == "host" else "/"
    assert result.code == 0, result.err
    assert result.out.splitlines() == [f"0::{expected}", "1", "0", f"{expected} ro cgroup2", "freeze-refused"]
