"""engine.stats.sampler on the real kernel: real cgroups with real processes, a real veth/bridge network
between two network namespaces this test creates, real block I/O on the disk under /var/tmp.

The targets are built here (cgroup dirs + host veth), the way the state module hands them over for
real containers. The v2 arithmetic is in test_stats_v2.py (faithful directory tree).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cli.stats_cmds import HEADERS, render_table, rows_for
from engine.config import EngineConfig
from engine.sandbox.cgroups import (
    Cgroup,
    Resources,
    cgroup_version,
    cleanup_orphans,
    open_cgroup,
    parent_dirs,
    remove_parent,
)
from engine.stats.sampler import Sampler, StatsTarget, binary_size, decimal_size
from tests.cgroup_support import spawn_in, throwaway_cgroup_config

pytestmark = pytest.mark.root
MiB = 1 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK")


@pytest.fixture
def cg_config(tmp_path: Path) -> Iterator[EngineConfig]:
    yield from throwaway_cgroup_config(tmp_path)


def group(config: EngineConfig, name: str, resources: Resources | None = None) -> Cgroup:
    cg = open_cgroup(config, name)
    cg.create(resources or Resources())
    return cg


def target(cg: Cgroup, name: str, veth: str | None = None) -> StatsTarget:
    return StatsTarget(id=name, name=name, cgroup_paths=dict(cg.paths), host_veth=veth)


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _boost(cg_config: EngineConfig) -> None:
    """Give the test's own parent group a large CPU weight, so that the 2 cores being shared with
    other engineers' work do not starve a loop below its 0.5 quota (the cap is what is tested)."""
    for controller, parent in parent_dirs(cg_config).items():
        if controller == "cpu":
            (parent / "cpu.shares").write_text("10240")
        elif controller == "unified":
            (parent / "cpu.weight").write_text("1000")


def test_cpu_percent_limited_and_unlimited(cg_config: EngineConfig, tmp_path: Path) -> None:
    half = group(cg_config, "half", Resources(cpus=0.5))
    _boost(cg_config)
    # The unlimited loop lives under a second, ordinary parent: it takes what the machine gives it.
    other = EngineConfig(root=tmp_path / "other", cgroup_parent=cg_config.cgroup_parent + "-b")
    full = group(other, "full")
    loops = [spawn_in(cg, ["/bin/sh", "-c", "while :; do :; done"]) for cg in (half, full)]
    targets = [target(half, "half"), target(full, "full")]
    try:
        with Sampler(cg_config, lambda: targets, host=False) as sampler:
            time.sleep(0.3)
            sampler.sample()
            ticks0, t0 = cpu_ticks(loops[1].pid), time.monotonic()
            time.sleep(2.5)
            snap = sampler.sample()
            granted = (cpu_ticks(loops[1].pid) - ticks0) / CLK_TCK / (time.monotonic() - t0) * 100
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
        cleanup_orphans(other, set())
        remove_parent(other)
    limited, unlimited = snap.by_id["half"].cpu, snap.by_id["full"].cpu
    assert limited.online_cpus == os.cpu_count()
    assert 40.0 <= limited.percent <= 60.0, limited
    assert limited.nr_throttled > 0 and limited.throttled_ns > 0
    # The unlimited loop reads the CPU time the kernel actually granted it (other engineers share
    # these 2 cores), which is about one core when the machine is quiet.
    assert abs(unlimited.percent - granted) <= 10.0, (unlimited.percent, granted)
    assert unlimited.nr_periods == 0  # no quota, no CFS bandwidth periods
    if granted >= 90:
        assert unlimited.percent >= 85.0


def test_memory_counts_touched_pages_not_read_page_cache(cg_config: EngineConfig) -> None:
    data = Path(f"/var/tmp/dockui-stats-{uuid.uuid4().hex[:8]}")
    try:
        with open(data, "wb") as f:  # 40 MiB on the disk, then dropped from the page cache
            for _ in range(40):
                f.write(os.urandom(MiB))
            f.flush()
            os.fsync(f.fileno())
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        cg = group(cg_config, "mem", Resources(memory=512 * MiB))
        script = (
            f"open({str(data)!r}, 'rb').read(); "  # read once: its page cache lands on the inactive list
            "import sys, time; b = bytearray(b'x') * (50 << 20); "  # touches 50 MiB
            "sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(30)"
        )
        proc = spawn_in(cg, [sys.executable, "-c", script], stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        with Sampler(cg_config, lambda: [target(cg, "mem")], host=False) as sampler:
            mem = sampler.sample().by_id["mem"].memory
        proc.kill()
        proc.wait()
    finally:
        data.unlink(missing_ok=True)
    assert mem.usage >= 50 * MiB, mem
    assert mem.inactive_file >= 30 * MiB, mem  # the file's cache was charged to the group...
    assert mem.usage < 50 * MiB + 30 * MiB, mem  # ...but is not counted as usage
    assert mem.raw_usage >= mem.usage + 30 * MiB
    assert mem.limit == 512 * MiB
    assert mem.percent == pytest.approx(mem.usage / (512 * MiB) * 100)
    assert mem.peak is not None and mem.peak >= mem.raw_usage


def test_pids_equal_processes_started(cg_config: EngineConfig) -> None:
    cg = group(cg_config, "pids", Resources(pids_limit=64))
    shell = spawn_in(cg, ["/bin/sh", "-c", "sleep 30 & sleep 30 & sleep 30 & sleep 30 & wait"])
    deadline = time.monotonic() + 5
    while len(cg.pids()) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    with Sampler(cg_config, lambda: [target(cg, "pids")], host=False) as sampler:
        pids = sampler.sample().by_id["pids"].pids_stats
    listed = cg.pids()
    cg.kill_all(signal.SIGKILL)
    shell.wait()
    assert pids.current == 5 == len(listed)  # the shell and its four children
    assert pids.limit == 64


def test_dd_with_fsync_raises_block_io_writes(cg_config: EngineConfig) -> None:
    if cgroup_version() == 1 and not Path("/sys/fs/cgroup/blkio").is_dir():
        pytest.skip("no blkio controller mounted")
    out = Path(f"/var/tmp/dockui-dd-{uuid.uuid4().hex[:8]}")  # a real disk, not overlay/tmpfs
    cg = group(cg_config, "dd")
    try:
        with Sampler(cg_config, lambda: [target(cg, "dd")], host=False) as sampler:
            before = sampler.sample().by_id["dd"].block_io
            dd = spawn_in(cg, ["dd", "if=/dev/zero", f"of={out}", "bs=1M", "count=20", "conv=fsync"], stderr=subprocess.DEVNULL)
            assert dd.wait(timeout=30) == 0
            after = sampler.sample().by_id["dd"].block_io
    finally:
        out.unlink(missing_ok=True)
    assert after.write_bytes - before.write_bytes >= 20 * MiB, (before, after)
    assert after.write_rate > 0


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def two_netns() -> Iterator[tuple[list[str], list[str], str]]:
    """Two network namespaces on a bridge (no address on the host side), like two containers.

    Yields (netns names, host veth names, address of the second). Traffic stays inside them.
    """
    tag = uuid.uuid4().hex[:6]
    ns = [f"dkst-{tag}-a", f"dkst-{tag}-b"]
    veths = [f"vethdk{tag}a", f"vethdk{tag}b"]
    bridge = f"dkbr{tag}"
    subnet = f"10.{200 + int(tag[:2], 16) % 50}.{int(tag[2:4], 16)}"
    # 40 idle bridges first: /proc/net/dev then spans more than the page a seq_file read returns,
    # and the veths come after it (the sampler must read the whole file).
    dummies = [f"dkdm{tag}{i:02d}" for i in range(40)]
    try:
        subprocess.run(["ip", "-batch", "-"], input="".join(f"link add {d} type bridge\n" for d in dummies).encode(), check=True)
        _ip("link", "add", bridge, "type", "bridge")
        _ip("link", "set", bridge, "up")
        for i, (name, veth) in enumerate(zip(ns, veths, strict=True)):
            _ip("netns", "add", name)
            _ip("link", "add", veth, "type", "veth", "peer", "name", f"dkp{tag}{i}")
            _ip("link", "set", f"dkp{tag}{i}", "netns", name)
            _ip("link", "set", veth, "master", bridge)
            _ip("link", "set", veth, "up")
            _ip("-n", name, "link", "set", f"dkp{tag}{i}", "name", "eth0")
            _ip("-n", name, "addr", "add", f"{subnet}.{i + 2}/24", "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")
            _ip("-n", name, "link", "set", "lo", "up")
        yield ns, veths, f"{subnet}.3"
    finally:
        for name in ns:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        for veth in veths:
            subprocess.run(["ip", "link", "del", veth], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        subprocess.run(["ip", "-batch", "-"], input="".join(f"link del {d}\n" for d in dummies).encode(), capture_output=True)


def test_ping_between_two_namespaces_raises_both_packet_counters(
    cg_config: EngineConfig, two_netns: tuple[list[str], list[str], str]
) -> None:
    ns, veths, peer_ip = two_netns
    cgs = [group(cg_config, f"net{i}") for i in range(2)]
    # The responder side: a process in the second namespace and group (so both are "containers").
    sleeper = spawn_in(cgs[1], ["ip", "netns", "exec", ns[1], "sleep", "30"])
    targets = [target(cg, f"net{i}", veths[i]) for i, cg in enumerate(cgs)]
    with Sampler(cg_config, lambda: targets, host=False) as sampler:
        before = sampler.sample()
        ping = spawn_in(
            cgs[0],
            ["ip", "netns", "exec", ns[0], "ping", "-q", "-c", "200", "-i", "0.01", "-W", "1", peer_ip],
            stdout=subprocess.PIPE,
        )
        out, _ = ping.communicate(timeout=30)
        after = sampler.sample()
    sleeper.kill()
    sleeper.wait()
    assert ping.returncode == 0, out
    for i in range(2):
        b, a = before.by_id[f"net{i}"].network, after.by_id[f"net{i}"].network
        assert a is not None and b is not None
        assert a.tx_packets - b.tx_packets >= 200, (i, b, a)
        assert a.rx_packets - b.rx_packets >= 200, (i, b, a)
        assert a.rx_bytes - b.rx_bytes >= 200 * 84 and a.rx_rate > 0
    # Direction: the pinger sent the requests its peer received.
    sent = after.by_id["net0"].network.tx_bytes - before.by_id["net0"].network.tx_bytes  # type: ignore[union-attr]
    got = after.by_id["net1"].network.rx_bytes - before.by_id["net1"].network.rx_bytes  # type: ignore[union-attr]
    assert abs(sent - got) < 200 * 84 // 2


def test_container_leaving_and_joining_mid_stream(cg_config: EngineConfig) -> None:
    first, second = group(cg_config, "first"), group(cg_config, "second")
    procs = [spawn_in(first, ["sleep", "30"])]
    targets = [target(first, "first")]
    seen: list[set[str]] = []
    with Sampler(cg_config, lambda: list(targets), host=True) as sampler:
        for n, snap in enumerate(sampler.stream(interval=0.1, count=4)):
            seen.append({c.id for c in snap.containers})
            assert snap.host is not None and len(snap.host.cpu_percent_per_core) == os.cpu_count()
            if n == 0:  # the first exits and its group goes, but the source still lists it
                first.destroy()
                procs.append(spawn_in(second, ["sleep", "30"]))
                targets.append(target(second, "second"))
            if n == 2:
                targets.remove(targets[0])
        assert sampler._readers.keys() == {"second"}  # no descriptor kept for the gone one
    for proc in procs:
        proc.kill()
        proc.wait()
    assert seen[0] == {"first"}
    assert seen[1:] == [{"second"}] * 3


def test_table_and_json_rows_like_docker(cg_config: EngineConfig) -> None:
    cg = group(cg_config, "fmt", Resources(memory=64 * MiB))
    proc = spawn_in(cg, ["sleep", "30"])
    cid = "f" * 64
    targets = [StatsTarget(id=cid, name="web", cgroup_paths=dict(cg.paths))]
    with Sampler(cg_config, lambda: targets, host=False) as sampler:
        snap = sampler.sample()
    proc.kill()
    proc.wait()
    rows = rows_for(snap, [(cid, "web"), ("e" * 64, "stopped")])
    assert rows[0]["ID"] == cid[:12] and rows[0]["Name"] == "web" and rows[0]["PIDs"] == "1"
    assert rows[0]["MemUsage"].endswith(" / 64MiB")
    assert rows[1] == {**rows[1], "CPUPerc": "0.00%", "MemUsage": "0B / 0B", "PIDs": "0"}
    json.loads(json.dumps(rows[0]))
    text = render_table(rows).splitlines()
    assert text[0].split("   ")[0] == HEADERS[0] and text[1].startswith(cid[:12] + "   web")
    assert binary_size(1.5 * MiB) == "1.5MiB" and binary_size(2087354368) == "1.944GiB"
    assert decimal_size(648) == "648B" and decimal_size(1234) == "1.23kB"
