"""Shared test set-up. Fixtures of each area live in tests/fixtures/ and are loaded as plugins.

Tests that need the kernel (namespaces, mounts, cgroups, netlink) are marked `root`, and skip with
a reason when not run as root, so a user without root can still run the rest.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import EngineConfig

pytest_plugins = [
    "tests.fixtures.busybox",
    "tests.fixtures.registry",
    "tests.fixtures.imagebuild",
    "tests.fixtures.cgroupv2_tree",
]

IS_ROOT = os.geteuid() == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="needs root (namespaces, mounts, cgroups, netlink): run the suite with sudo")
    for item in items:
        if "root" in item.keywords and not IS_ROOT:
            item.add_marker(skip)


@pytest.fixture
def engine_config(tmp_path: Path) -> Iterator[EngineConfig]:
    """A config whose state lives in a fresh temp dir, with a cgroup parent of its own (not the
    shared default `dockui`): a test that starts containers must leave no parent behind."""
    from tests.cgroup_support import parent_left_behind

    config = EngineConfig(root=tmp_path / "root", cgroup_parent=f"dockui-t-{os.urandom(4).hex()}")
    yield config
    left = parent_left_behind(config)
    assert not left, f"cgroup parent left behind (now removed): {left}"


@pytest.fixture(scope="session", autouse=True)
def suite_cgroup_parent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Keep the run off the default cgroup parent `dockui`, which every engine on the host shares.

    Engine processes that tests start without a config file of their own (`dockui` verbs, the TUI:
    anything reading EngineConfig.load) get, through DOCKUI_CONFIG, a parent unique to this run;
    the run fails if it is left behind. The default parent itself is only watched: another user's
    `dockui` on this host may create it during the run, so its appearance is a warning.
    """
    from engine.sandbox.cgroups import parent_dirs
    from tests.cgroup_support import parent_left_behind

    parent = f"dockui-suite-{os.urandom(4).hex()}"
    config_file = tmp_path_factory.mktemp("suite-config") / "dockui.json"
    config_file.write_text(json.dumps({"cgroup_parent": parent}))
    default_dirs = parent_dirs(EngineConfig()).values()
    default_existed = any(d.exists() for d in default_dirs)
    previous = os.environ.get("DOCKUI_CONFIG")
    os.environ["DOCKUI_CONFIG"] = str(config_file)
    yield parent
    if previous is None:
        os.environ.pop("DOCKUI_CONFIG", None)
    else:
        os.environ["DOCKUI_CONFIG"] = previous
    if not default_existed and any(d.exists() for d in default_dirs):
        warnings.warn(
            "the default cgroup parent `dockui` appeared during the run: a test that starts containers "
            "with EngineConfig()'s default cgroup_parent, or another user's dockui on this host",
            pytest.PytestWarning,
            stacklevel=1,
        )
    left = parent_left_behind(EngineConfig(cgroup_parent=parent))
    assert not left, f"a test ran the engine without a config of its own and left its cgroup parent (now removed): {left}"
