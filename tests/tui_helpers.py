"""Helpers shared by the TUI tests: build an app and wait until the visible screen has drawn its data."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from engine.config import EngineConfig
from tui.app import DockuiApp
from tui.recorded import RecordedBackend
from tui.screens.base import DataScreen


def recorded_app(root: Path, *, empty: bool = False, interval: float = 0.0) -> DockuiApp:
    """An app on the recorded backend with no refresh timer (refreshes happen on screen changes only)."""
    return DockuiApp(EngineConfig(root=root), backend=RecordedBackend(empty=empty), refresh_interval=interval,
                     clock=False)


async def settle(pilot: Pilot, timeout: float = 5.0) -> None:
    """Wait until no refresh is in flight and the screen under any dialog has drawn at least once."""
    app: DockuiApp = pilot.app  # type: ignore[assignment]
    waited = 0.0
    while waited < timeout:
        await pilot.pause(0.02)
        waited += 0.02
        target = app._target()
        if not app._in_flight and not app._again and (target is None or target.loaded):
            break
    await app.workers.wait_for_complete()
    await pilot.pause()


async def until(pilot: Pilot, predicate, timeout: float = 10.0, step: float = 0.05) -> bool:  # noqa: ANN001
    waited = 0.0
    while waited < timeout:
        if predicate():
            return True
        await pilot.pause(step)
        waited += step
    return bool(predicate())


def run_async(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test with asyncio (no pytest-asyncio in the venv)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


__all__ = ["DataScreen", "recorded_app", "run_async", "settle", "until"]
