"""What the container side tells the image store about its containers: which image each was made
from and whether it runs (`container_uses`, passed as `ImageStore(config, containers=...)`).

The store decides with it whether an image may be removed and which rw layers are orphans; it never
reads container records itself, so engine.image does not depend on engine.container.
"""

from __future__ import annotations

import os

from engine.config import EngineConfig

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from engine.image.store import ContainerUse


def container_uses(config: EngineConfig) -> list[ContainerUse]:
    """Every listed container (image and running?), then every other directory holding a record
    file (a record `state` cannot list still owns its rw layer)."""
    from engine.container import state
    from engine.image.store import ContainerUse

    uses = []
    for container in state.list_containers(config):
        running = container.status in ("running", "paused", "restarting")
        if running and container.pid and container.pid_start:
            running = state.process_alive(container.pid, container.pid_start)  # a crashed engine may have left "running"
        uses.append(ContainerUse(container.id, container.image_id, running))
    listed = {u.id for u in uses}
    try:
        entries = list(os.scandir(config.containers_dir))
    except FileNotFoundError:
        entries = []
    for entry in entries:
        if entry.name not in listed and os.path.exists(os.path.join(entry.path, "config.v2.json")):
            uses.append(ContainerUse(entry.name, None, False))
    return uses
