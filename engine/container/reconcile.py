"""`reconcile`, run before every verb that touches containers (there is no daemon to notice a death):
the clean-up (engine.container.sweep: dead monitors' containers marked exited and cleaned, an --rm
one removed, stale cgroups and mounts removed), then the restart policies of the containers it found
dead, as Docker's daemon applies them when it comes back.

Above `start` (which it calls), so the start path never imports it: the monitor forked ahead and
the removal inside a monitor run `sweep`, which starts nothing.
"""

from __future__ import annotations

import os

from engine.config import EngineConfig
from engine.container import state
from engine.container.cleanup import best_effort
from engine.container.sweep import policy_restarts, sweep
from engine.errors import NotFound


def reconcile(config: EngineConfig, restart_policies: bool = True) -> list[str]:
    """`sweep`, then each container it found dead started again as its restart policy says (unless
    `restart_policies` is off); the IDs it cleaned."""
    cleaned = sweep(config)
    if _user_networks(config):
        with best_effort():  # the embedded DNS's resolver, if it died while containers need it (docs/network.md)
            from engine.network.dns.client import revive

            revive(config)
    if restart_policies:
        for container_id in cleaned:
            try:
                record = state.load(config, container_id)
            except NotFound:
                continue
            if record.host_config.get("AutoRemove") or not policy_restarts(record):
                continue
            # Only to restart one: see "Import costs" in docs/lifecycle.md.
            from engine.container.start import start

            with best_effort():
                start(config, container_id)
    return cleaned


def _user_networks(config: EngineConfig) -> bool:
    """A network beside the default bridge exists: only then can the embedded DNS's resolver be
    needed (revive's own first test, made before its module, with `socket` and `zlib`, is loaded)."""
    try:
        return any(name != "bridge.json" for name in os.listdir(config.network_dir / "networks"))
    except OSError:
        return False
