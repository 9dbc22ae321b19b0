"""A container's state, published ports and command in words, as `docker ps` prints them and the TUI
shows them: one text for both, so they never disagree (`compact` only shortens durations to fit the TUI's
26-cell STATUS column, and drops what cannot fit there).
"""

from __future__ import annotations

from engine.util.timefmt import parse_rfc3339
from engine.util.units import human_duration, short_duration

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from engine.container.state import ContainerRecord


def status_text(status: str, exit_code: int | None, started: float | None, finished: float | None,
                now: float, *, oom_killed: bool = False, reason: str = "", compact: bool = False) -> str:
    """Docker's STATUS: "Up 3 minutes", "Exited (137) 2 hours ago", "Removal In Progress" ...

    `started`/`finished` are epoch seconds (None when unset). `compact` (the TUI): "Up 3 min", the
    restart's age and a dead container's `reason` left out, an OOM kill said instead of the age.
    """
    def ago(then: float) -> str:
        return (short_duration if compact else human_duration)(now - then)

    code = exit_code if exit_code is not None else "?"
    if status in ("running", "paused"):
        if started is None:
            return status.capitalize()
        return f"Up {ago(started)}" + (" (Paused)" if status == "paused" else "")
    if status == "restarting":
        if compact or finished is None:
            return f"Restarting ({code})"
        return f"Restarting ({code}) {ago(finished)} ago"
    if status == "exited":
        if compact and oom_killed:
            return f"Exited ({code}) · OOM killed"
        return f"Exited ({code}) {ago(finished)} ago" if finished is not None else f"Exited ({code})"
    if status == "removing":
        return "Removal In Progress"
    if status == "dead":
        return f"Dead ({reason})" if reason and not compact else "Dead"
    return "Created"


def published_ports(record: ContainerRecord) -> dict:
    """NetworkSettings.Ports as Docker shows them now: a container that does not run holds none
    (Docker releases its ports at the stop; the record keeps them for the next start). A port it
    only exposes is there too, bound to nothing (`"91/tcp": null`, `ps`'s "91/tcp"), on a network
    with endpoints (not host, none or another container's)."""
    if not record.running:
        return {}
    ports = dict(record.network.get("Ports") or {})
    mode = record.host_config.get("NetworkMode") or "bridge"
    if mode not in ("host", "none") and not mode.startswith("container:"):
        for port in record.config.get("ExposedPorts") or {}:
            ports.setdefault(port if "/" in port else f"{port}/tcp", None)
    return ports


def ports_text(ports: dict | None) -> str:
    """NetworkSettings.Ports as `docker ps` lists them: "0.0.0.0:8080->80/tcp, 443/tcp"."""
    parts = []
    for port, bindings in (ports or {}).items():
        if not bindings:
            parts.append(port)
            continue
        for b in bindings:
            parts.append(f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}->{port}")
    return ", ".join(parts)


def record_status_text(record: ContainerRecord, now: float | None = None, compact: bool = False) -> str:
    """status_text of a container record (its RFC 3339 times read here)."""
    import time

    text = status_text(record.status, record.exit_code, parse_rfc3339(record.started_at),
                       parse_rfc3339(record.finished_at), time.time() if now is None else now,
                       oom_killed=record.oom_killed, reason=record.corrupt, compact=compact)
    if record.status == "running" and record.health:  # Docker's "Up 2 minutes (healthy)"
        from engine.container.health import status_suffix

        suffix = status_suffix(record.health)
        text += suffix.replace("health: ", "") if compact else suffix
    return text


def command_text(record: ContainerRecord) -> str:
    """The COMMAND of `ps` and the API's list: Docker's daemon joins Path and Args, an argument
    with a space single-quoted (`sh -c 'sleep 1; echo hi'`), so the quoting survives."""
    args = [f"'{arg}'" if " " in arg else arg for arg in record.args]
    return " ".join([record.path, *args])
