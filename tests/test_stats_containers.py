"""Statistics of real dockui containers (`dockui run -d` of the busybox image built by the tests):
the Sampler's default source (engine.container.state) and `dockui stats`, end to end on the real kernel.

Uses the lifecycle tests' `engine` fixture: a fresh root, a unique cgroup parent and bridge, and a
teardown that fails if a container, mount, cgroup or process is left behind.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from engine.sandbox.cgroups import parent_dirs
from engine.stats.sampler import Sampler
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root
MiB = 1 << 20


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_cpu_of_limited_and_unlimited_containers(engine: Engine) -> None:
    loop = ["busybox", "sh", "-c", "while :; do :; done"]
    engine.out("run", "-d", "--name", "half", "--network", "none", "--cpus", "0.5", *loop)
    engine.out("run", "-d", "--name", "full", "--network", "none", *loop)
    # The test's own parent gets a large weight so the shared cores do not starve the 0.5 quota.
    for controller, parent in parent_dirs(engine.config).items():
        if controller == "cpu":
            (parent / "cpu.shares").write_text("10240")
    full_pid = engine.inspect("full")["State"]["Pid"]
    with Sampler(engine.config, host=False) as sampler:
        time.sleep(0.3)
        sampler.sample()
        ticks0, t0 = cpu_ticks(full_pid), time.monotonic()
        time.sleep(2.5)
        snap = sampler.sample()
        granted = (cpu_ticks(full_pid) - ticks0) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t0) * 100
    engine.out("rm", "-f", "half", "full")
    half, full = snap.get("half"), snap.get("full")
    assert half is not None and full is not None
    assert 40.0 <= half.cpu.percent <= 60.0, half.cpu
    assert half.cpu.nr_throttled > 0
    assert abs(full.cpu.percent - granted) <= 10.0, (full.cpu, granted)
    if granted >= 90:
        assert full.cpu.percent >= 85.0


def test_memory_pids_and_cli_json_of_a_container(engine: Engine) -> None:
    # 50 MiB in the container's /dev/shm (tmpfs: swap-backed, never "inactive file"), 3 processes.
    engine.out(
        "run", "-d", "--name", "mem", "--network", "none", "-m", "256m", "--pids-limit", "50", "busybox", "sh", "-c",
        "head -c 52428800 /dev/zero > /dev/shm/fill; sleep 60 & sleep 60 & touch /tmp/ready; wait",
    )
    record_pid = engine.inspect("mem")["State"]["Pid"]
    assert wait_until(lambda: os.path.exists(f"/proc/{record_pid}/root/tmp/ready"), timeout=20)
    with Sampler(engine.config, host=False) as sampler:
        stats = sampler.sample().get("mem")
    assert stats is not None
    assert stats.memory.usage >= 50 * MiB, stats.memory
    assert stats.memory.limit == 256 * MiB
    assert (stats.pids_stats.current, stats.pids_stats.limit) == (3, 50)
    lines = engine.out("stats", "--no-stream", "--format", "json").splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["Name"] for r in rows] == ["mem"]
    assert rows[0]["PIDs"] == "3" and rows[0]["MemUsage"].endswith(" / 256MiB")
    table = engine.out("stats", "--no-stream", "mem").splitlines()
    assert table[0].startswith("CONTAINER ID   NAME") and " mem " in table[1]
    # On a terminal the table is redrawn in place every second, like docker stats.
    frames = stats_on_a_tty(engine, seconds=2.3)
    engine.out("rm", "-f", "mem")
    assert frames.startswith(b"\033[2J\033[H")
    assert frames.count(b"\033[H") >= 2 and frames.count(b" mem ") >= 2


def stats_on_a_tty(engine: Engine, seconds: float) -> bytes:
    import pty
    import select
    import signal

    leader, follower = pty.openpty()
    proc = engine.popen("stats", stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    out = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if select.select([leader], [], [], 0.1)[0]:
            try:
                out += os.read(leader, 65536)
            except OSError:
                break
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)
    os.close(leader)
    return out


def test_ping_between_two_containers_raises_both_packet_counters(engine: Engine) -> None:
    engine.out("run", "-d", "--name", "pinger", "busybox", "sleep", "60")
    engine.out("run", "-d", "--name", "target", "busybox", "sleep", "60")
    b_ip = engine.inspect("target")["NetworkSettings"]["IPAddress"]
    veths = {name: engine.inspect(name)["NetworkSettings"]["HostVeth"] for name in ("pinger", "target")}
    assert b_ip and all(veths.values()), veths
    with Sampler(engine.config, host=False) as sampler:
        before = sampler.sample()
        result = engine.cli("exec", "pinger", "ping", "-q", "-c", "200", "-i", "0.01", "-W", "2", b_ip, timeout=60)
        after = sampler.sample()
    engine.out("rm", "-f", "pinger", "target")
    assert result.returncode == 0, result
    for name in ("pinger", "target"):
        old, new = before.get(name), after.get(name)
        assert old is not None and new is not None and old.network and new.network, (veths, old, new)
        assert new.network.tx_packets - old.network.tx_packets >= 200, (name, old.network, new.network)
        assert new.network.rx_packets - old.network.rx_packets >= 200, (name, old.network, new.network)


def test_a_container_exiting_mid_stream_disappears(engine: Engine) -> None:
    engine.out("run", "-d", "--name", "stays", "--network", "none", "busybox", "sleep", "60")
    engine.out("run", "-d", "--name", "brief", "--network", "none", "busybox", "sleep", "2")
    names: list[set[str]] = []
    with Sampler(engine.config, host=False) as sampler:
        for snap in sampler.stream(interval=0.25, count=60):
            names.append({c.name for c in snap.containers})
            if len(names) > 2 and names[-1] == {"stays"} and "brief" in names[0]:
                break
    assert "brief" in names[0] and "stays" in names[0]
    assert names[-1] == {"stays"}
    engine.out("rm", "-f", "brief", "stays")
