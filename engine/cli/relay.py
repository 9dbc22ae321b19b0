"""Relaying a non-terminal `exec`'s pipes to the caller's own stdio: see engine.container.exec_io,
where the relay lives (the Engine API service's exec helper uses it too)."""

from __future__ import annotations

from engine.container.exec_io import DRAIN_SECONDS, relay_exec_pipes

__all__ = ["DRAIN_SECONDS", "relay_exec_pipes"]
