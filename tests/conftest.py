"""Shared test set-up. Fixtures of each area live in tests/fixtures/ and are loaded as plugins.

Tests that need the kernel (namespaces, mounts, cgroups, netlink) are marked `root`, and skip with
a reason when not run as root, so a user without root can still run the rest.
"""

from __future__ import annotations

import os
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
def engine_config(tmp_path: Path) -> EngineConfig:
    """A config whose state lives in a fresh temp dir."""
    return EngineConfig(root=tmp_path / "root")
