"""engine.sandbox.cgroups' cgroup v2 code against a faithful directory tree (tests/fixtures/cgroupv2_tree.py).

The CI kernel mounts cgroup v1 (hybrid), so v2 cannot run for real here: these tests check what
dockui writes into, and reads from, files named and formatted as a 6.x kernel's /sys/fs/cgroup.
The v1 paths are tested on the real kernel in test_cgroups.py.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.errors import DockuiError, InvalidArgument
from engine.sandbox.cgroups import (
    Cgroup,
    Resources,
    blkio_weight_to_io_weight,
    cgroup_version,
    cgroupns_mode,
    cpu_shares_to_weight,
    open_cgroup,
)
from tests.fixtures.cgroupv2_tree import CgroupV2Tree, memory_events

CID = "a" * 64


@pytest.fixture
def v2(cgroupv2_tree: CgroupV2Tree, tmp_path: Path) -> tuple[CgroupV2Tree, EngineConfig, Cgroup]:
    config = EngineConfig(root=tmp_path / "root", cgroup_parent="dockui")
    cgroupv2_tree.add_group(f"dockui/{CID}")  # what mkdir would show
    return cgroupv2_tree, config, open_cgroup(config, CID, fs_root=cgroupv2_tree.root)


def test_detects_v2_and_hybrid_as_v1(cgroupv2_tree: CgroupV2Tree, tmp_path: Path) -> None:
    assert cgroup_version(cgroupv2_tree.root) == 2
    hybrid = tmp_path / "hybrid"
    (hybrid / "unified").mkdir(parents=True)
    (hybrid / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    (hybrid / "memory").mkdir()
    assert cgroup_version(hybrid) == 1


def test_limits_are_written_in_v2_syntax(v2: tuple[CgroupV2Tree, EngineConfig, Cgroup]) -> None:
    tree, _, cg = v2
    assert cg.paths == {"unified": tree.root / "dockui" / CID}
    cg.create(
        Resources(
            memory=256 << 20,
            memory_swap=384 << 20,
            cpus=0.5,
            cpu_shares=1024,
            cpuset_cpus="1",
            pids_limit=20,
            blkio_weight=500,
        )
    )
    leaf = cg.paths["unified"]
    # Controllers are enabled for the children of the root and of the parent.
    for level in (tree.root, tree.root / "dockui"):
        enabled = (level / "cgroup.subtree_control").read_text().split()
        assert {"+cpu", "+memory", "+pids", "+io", "+cpuset"} <= set(enabled)
        assert "+hugetlb" not in enabled
    assert (leaf / "memory.max").read_text() == str(256 << 20)
    assert (leaf / "memory.swap.max").read_text() == str(128 << 20)  # swap only, not memory+swap
    assert (leaf / "cpu.max").read_text() == "50000 100000"
    assert (leaf / "cpu.weight").read_text() == "39"  # runc: 1 + (1024-2)*9999/262142
    assert (leaf / "cpuset.cpus").read_text() == "1"
    assert (leaf / "pids.max").read_text() == "20"
    assert (leaf / "io.weight").read_text() == f"default {blkio_weight_to_io_weight(500)}"


def test_unlimited_values_and_docker_swap_default(v2: tuple[CgroupV2Tree, EngineConfig, Cgroup]) -> None:
    _, _, cg = v2
    cg.create(Resources(memory=64 << 20, pids_limit=0))
    leaf = cg.paths["unified"]
    assert (leaf / "pids.max").read_text() == "max"
    assert (leaf / "memory.swap.max").read_text() == str(64 << 20)  # Docker: swap = memory when unset
    assert (leaf / "cpu.max").read_text() == "max 100000\n"  # untouched


def test_bfq_weight_preferred_when_present(v2: tuple[CgroupV2Tree, EngineConfig, Cgroup]) -> None:
    _, _, cg = v2
    (cg.paths["unified"] / "io.bfq.weight").write_text("default 100\n")
    cg.create(Resources(blkio_weight=300))
    assert (cg.paths["unified"] / "io.bfq.weight").read_text() == "300"


def test_cpuset_outside_the_parent_is_refused(v2: tuple[CgroupV2Tree, EngineConfig, Cgroup]) -> None:
    _, _, cg = v2
    with pytest.raises(InvalidArgument, match="Requested CPUs are not available"):
        cg.create(Resources(cpuset_cpus="3"))


def test_conversions_match_runc() -> None:
    assert cpu_shares_to_weight(2) == 1
    assert cpu_shares_to_weight(262144) == 10000
    assert cpu_shares_to_weight(1024) == 39
    assert blkio_weight_to_io_weight(10) == 1
    assert blkio_weight_to_io_weight(1000) == 10000


def test_processes_oom_count_and_kill(v2: tuple[CgroupV2Tree, EngineConfig, Cgroup]) -> None:
    tree, _, cg = v2
    cg.create(Resources())
    cg.add_process(4242)
    assert (cg.paths["unified"] / "cgroup.procs").read_text() == "4242"
    (cg.paths["unified"] / "cgroup.procs").write_text("4242\n4243\n")
    assert cg.pids() == [4242, 4243]
    assert cg.oom_kill_count() == 0
    tree.write(f"dockui/{CID}", "memory.events", memory_events(oom_kill=2))
    assert cg.oom_kill_count() == 2
    cg.kill_all(signal.SIGKILL)  # v2 >= 5.14: one write to cgroup.kill
    assert (cg.paths["unified"] / "cgroup.kill").read_text() == "1"


def test_freeze_waits_for_the_kernel(v2: tuple[CgroupV2Tree, EngineConfig, Cgroup]) -> None:
    _, _, cg = v2
    cg.create(Resources())
    leaf = cg.paths["unified"]

    def kernel() -> None:  # the kernel reports "frozen 1" in cgroup.events a moment after the write
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if (leaf / "cgroup.freeze").read_text().strip() == "1":
                time.sleep(0.05)
                (leaf / "cgroup.events").write_text("populated 1\nfrozen 1\n")
                return
            time.sleep(0.005)

    helper = threading.Thread(target=kernel)
    helper.start()
    cg.freeze(timeout=3)
    helper.join()
    assert cg.frozen
    # A kernel that never reports the transition: freeze gives up, and leaves the group thawed.
    (leaf / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    with pytest.raises(DockuiError, match="did not become frozen"):
        cg.freeze(timeout=0.2)
    assert (leaf / "cgroup.freeze").read_text() == "0"


def test_cgroupns_default_follows_dockers_rule(cgroupv2_tree: CgroupV2Tree, tmp_path: Path) -> None:
    """moby adaptContainerSettings: private on a pure v2 host, host on v1/hybrid, a privileged
    container on v1 always host; the config file's default replaces the rest; a flag wins."""
    hybrid = tmp_path / "hybrid"
    (hybrid / "unified").mkdir(parents=True)
    (hybrid / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    (hybrid / "memory").mkdir()
    v2 = cgroupv2_tree.root
    cases = [
        # (requested, configured, privileged, fs_root) -> mode
        (("", "", False, v2), "private"),
        (("", "", True, v2), "private"),
        (("", "host", False, v2), "host"),
        (("", "", False, hybrid), "host"),
        (("", "private", False, hybrid), "private"),
        (("", "private", True, hybrid), "host"),
        (("private", "", True, hybrid), "private"),
        (("host", "private", False, v2), "host"),
    ]
    assert [cgroupns_mode(*args) for args, _ in cases] == [mode for _, mode in cases]
    for bad in (("shared", "", False, v2), ("", "none", False, v2)):
        with pytest.raises(InvalidArgument, match="invalid cgroup namespace mode"):
            cgroupns_mode(*bad)  # type: ignore[arg-type]


def test_hybrid_host_groups_join_every_hierarchy(tmp_path: Path) -> None:
    """On v1/hybrid the container gets a directory in each mounted hierarchy (runc's list), the
    hybrid cgroup2 tree under the "hybrid" key: never read as a v2 group."""
    root = tmp_path / "hybrid"
    for name in ("memory", "pids", "systemd", "unified"):
        (root / name).mkdir(parents=True)
    (root / "unified" / "cgroup.procs").write_text("")
    config = EngineConfig(root=tmp_path / "r", cgroup_parent="dockui")
    cg = open_cgroup(config, CID, fs_root=root)
    assert cg.version == 1
    assert {k: str(v.relative_to(root)) for k, v in cg.paths.items()} == {
        "memory": f"memory/dockui/{CID}", "pids": f"pids/dockui/{CID}", "systemd": f"systemd/dockui/{CID}",
        "hybrid": f"unified/dockui/{CID}"}
    assert Cgroup.from_paths(cg.paths, root).version == 1
