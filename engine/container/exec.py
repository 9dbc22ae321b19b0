"""`exec`: a command inside a running container (all its namespaces and its cgroup), as Docker runs it.

The container never gets a host descriptor (engine.sandbox.process.exec_in_container refuses one;
docs/isolation.md); the caller relays pipes.
"""

from __future__ import annotations

from engine import events
from engine.config import EngineConfig
from engine.container import state
from engine.container.state import find_container
from engine.errors import Conflict, InvalidArgument


def exec_command(
    config: EngineConfig,
    ref: str,
    argv: list[str],
    env: list[str] | None = None,
    workdir: str | None = None,
    user: str | None = None,
    tty: bool = False,
    stdio: tuple[int | None, int | None, int | None] = (None, None, None),
    privileged: bool = False,
    exec_id: str = "",
) -> int:
    """Start `argv` inside the running container (its namespaces and cgroup); the host pid to wait for.

    Forks: call it from a single-threaded process (the CLI), not from the TUI.
    """
    from engine.container.hostflags import seccomp_filter
    from engine.image import imageconfig
    from engine.sandbox import process, security

    record = find_container(config, ref)
    if record.status == "paused":
        raise Conflict(f"Container {record.id} is paused, unpause the container before exec")
    if record.status != "running" or not state.process_alive(record.pid, record.pid_start):
        raise Conflict(f"container {record.id} is not running")  # moby's errNotRunning
    if not argv:
        raise InvalidArgument("No exec command specified")
    base_env = imageconfig.process_env(record.config.get("Env") or [], record.config.get("Hostname", ""), tty)
    full_env = imageconfig.replace_or_append_env(base_env, list(env or []))
    events.container(config, events.exec_action("exec_start", argv), record, **({"execID": exec_id} if exec_id else {}))
    return process.exec_in_container(
        record.pid,
        argv,
        full_env,
        workdir or record.config.get("WorkingDir") or "/",
        user if user is not None else record.config.get("User") or "",
        tty,
        stdio,
        capabilities=security.capabilities_for(privileged=True) if privileged else None,
        seccomp_filter=seccomp_filter(record.host_config),  # the container's profile, if it has one
        wait=False,
    )
