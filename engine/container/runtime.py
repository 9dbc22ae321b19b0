"""The former `engine.container.runtime` namespace, kept as a compatibility surface for callers that
have not moved to the container verbs' own modules yet: each public name resolves, on first use, to
its home below (so importing this module costs nothing on the start path).

New code imports from the homes directly: options (RunOptions, restart policy, resources), create,
start (start, prepare_monitor), lifecycle (stop, kill, restart, pause, unpause, wait, rename),
removal (remove, prune), inspect (inspect, top), exec (exec_command), reconcile, cleanup
(unmount_rootfs), monitor.context (the attach socket, the start context) and monitor.start/finish
(the monitor's stages 1 and 3).
"""

from __future__ import annotations

import importlib

_HOMES = {
    "RunOptions": "options",
    "RESTART_POLICIES": "options",
    "DEFAULT_STOP_TIMEOUT": "options",
    "parse_restart_policy": "options",
    "resources_of": "options",
    "network_kind": "options",
    "create": "create",
    "StartResult": "start",
    "START_REPORT_TIMEOUT": "start",
    "start": "start",
    "PreparedMonitor": "start",
    "prepare_monitor": "start",
    "stop": "lifecycle",
    "kill": "lifecycle",
    "restart": "lifecycle",
    "pause": "lifecycle",
    "unpause": "lifecycle",
    "wait": "lifecycle",
    "rename": "lifecycle",
    "remove": "removal",
    "prune": "removal",
    "inspect": "inspect",
    "top": "inspect",
    "exec_command": "exec",
    "reconcile": "reconcile",
    "unmount_rootfs": "cleanup",
    "ATTACH_SOCKET": "monitor.context",
    "CGROUP_READY_LINE": "monitor.context",
    "attach_socketpair": "monitor.context",
    "config_to_json": "monitor.context",
    "config_from_json": "monitor.context",
    "monitor_start": "monitor.start",
    "monitor_finish": "monitor.finish",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"engine.container.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
