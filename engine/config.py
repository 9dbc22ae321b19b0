"""Engine configuration: where the state lives and the knobs shared by every module.

One `EngineConfig` is built by the CLI (or the TUI) from flags and the environment and handed to
each subsystem; nothing reads globals.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_ROOT = Path("/var/lib/dockui")
CONFIG_FILE = Path("/etc/dockui/config.json")
CERTS_DIR = Path("/etc/dockui/certs.d")


@dataclass
class EngineConfig:
    """Settings shared by the engine's modules.

    `bridge_name` and `cgroup_parent` are configurable so that tests (and a second engine on one
    host) can keep their kernel objects apart.
    """

    root: Path = DEFAULT_ROOT
    log_level: str = "warning"
    insecure_registries: list[str] = field(default_factory=list)
    certs_dir: Path = CERTS_DIR
    bridge_name: str = "dockui0"
    bridge_ip: str | None = None  # --bip, e.g. "172.18.0.1/16"
    cgroup_parent: str = "dockui"
    auth_config: Path | None = None  # Docker-compatible config.json with "auths"

    # Standard places under the root. Layout follows Docker's.
    @property
    def image_dir(self) -> Path:
        return self.root / "image" / "overlay2"

    @property
    def layers_dir(self) -> Path:
        return self.root / "overlay2"

    @property
    def containers_dir(self) -> Path:
        return self.root / "containers"

    @property
    def volumes_dir(self) -> Path:
        return self.root / "volumes"

    @property
    def network_dir(self) -> Path:
        return self.root / "network"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @classmethod
    def load(cls, root: str | os.PathLike[str] | None = None, **overrides: object) -> EngineConfig:
        """Build a config from the config file, `DOCKUI_ROOT`, then explicit arguments (in that order)."""
        values: dict[str, object] = {}
        config_file = Path(os.environ.get("DOCKUI_CONFIG", CONFIG_FILE))
        if config_file.is_file():
            try:
                data = json.loads(config_file.read_text())
            except (OSError, ValueError):
                data = {}
            for key in ("insecure_registries", "bridge_name", "bridge_ip", "cgroup_parent"):
                if key in data:
                    values[key] = data[key]
        env_root = os.environ.get("DOCKUI_ROOT")
        if env_root:
            values["root"] = Path(env_root)
        if root is not None:
            values["root"] = Path(root)
        for key, value in overrides.items():
            if value is not None:
                values[key] = value
        return cls(**values)  # type: ignore[arg-type]
