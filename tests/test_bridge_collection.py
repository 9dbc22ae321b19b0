"""Another root's idle default bridge is collected (its subnet given back, see
engine.network.networks.collect_abandoned_bridges), but never while that root is at work on its
network: two roots interleaved, in a network namespace of our own (and its own sysfs), each
step in a fixed order.

The flake this pins down (tests/faults/test_hostile_networks.py, under `pytest -n 2`): root A's
`network create` collected root B's idle bridge while B's teardown was removing it. A bridge's
deletion takes its `brif` directory away before its /sys/class/net entry, so B's remove_bridges
saw no bridge to delete (no `brif`), and B's check a moment later still saw the entry: "bridges
left behind". Collection now holds B's network lock (taken without waiting: B busy is left
alone) from its check that B holds no endpoint to the end of the deletion.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.root
REPO = Path(__file__).resolve().parent.parent


def _in_own_netns(tmp_path: Path, code: str) -> dict:
    proc = subprocess.run(
        ["unshare", "-n", "-m", "sh", "-c", 'mount -t sysfs sysfs /sys && exec "$@"', "sh", sys.executable, "-c",
         textwrap.dedent(code)],
        capture_output=True, text=True, cwd=REPO, timeout=60,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DOCKUI_NET_HOST_LOCK": str(tmp_path / "host.lock")},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_root_busy_with_its_network_keeps_its_bridge_from_another_roots_collection(tmp_path: Path) -> None:
    seen = _in_own_netns(tmp_path, f"""
        import fcntl, json, os, threading
        from pathlib import Path
        from engine.config import EngineConfig
        from engine.network import ipam, networks
        from engine.network import endpoints as network
        tmp = Path({str(tmp_path)!r})
        a = EngineConfig(root=tmp / "a", bridge_name="dkrca")
        b = EngineConfig(root=tmp / "b", bridge_name="dkrcb")
        bridge = Path("/sys/class/net/dkrcb")
        seen = {{}}
        network.get_network(b, "bridge")  # B made its bridge and holds no container: idle
        # 1. B is inside a network operation (its teardown's remove_bridges, a prepare): its lock held
        with ipam.lock(b):
            network.create_network(a, "one")  # A's create collects what it finds abandoned
            seen["kept_while_b_works"] = bridge.exists()
        # 2. B idle again: its bridge is collected, as before (its subnet back in the pool)
        network.create_network(a, "two")
        seen["collected_once_idle"] = not bridge.exists()
        # 3. A collecting while B removes its bridge itself: B's removal waits for A's deletion to
        #    end (or A leaves it to B), and B's check afterwards sees no bridge, never half of one
        network.get_network(b, "bridge")
        real_delete = networks.delete_link
        deleting, resume = threading.Event(), threading.Event()
        def slow_delete(ipr, name):
            if name == "dkrcb" and threading.current_thread() is collector:  # A's deletion, paused
                deleting.set()
                resume.wait(5)
            return real_delete(ipr, name)
        networks.delete_link = slow_delete
        collector = threading.Thread(target=network.create_network, args=(a, "three"))
        collector.start()
        seen["a_deleting"] = deleting.wait(5)
        removed_by_b = []
        remover = threading.Thread(target=lambda: removed_by_b.extend(networks.remove_bridges(b)))
        remover.start()
        remover.join(0.5)
        seen["b_waited_for_a"] = remover.is_alive()
        resume.set()
        collector.join()
        remover.join()
        seen["b_found_it_gone"] = removed_by_b == []  # it looked only after A's deletion had ended
        seen["gone_after_both"] = not bridge.exists()
        # 4. B's network state gone while its root stays (a wiped or unmounted root: no lock to
        #    take, nothing of B can use the bridge): abandoned, so collected
        networks.delete_link = real_delete
        network.get_network(b, "bridge")
        import shutil
        shutil.rmtree(b.root / "network")
        network.create_network(a, "four")
        seen["collected_without_state"] = not bridge.exists() and b.root.exists()
        print(json.dumps(seen))
    """)
    assert seen == {"kept_while_b_works": True, "collected_once_idle": True, "a_deleting": True,
                    "b_waited_for_a": True, "b_found_it_gone": True, "gone_after_both": True,
                    "collected_without_state": True}, seen
