"""Image builds through the one façade: the classic builder (engine.build) for the CLI and the service.

`build` runs a whole build and returns its result; its lines go to the caller's `BuildOutput` as
they are made. `prune_cache` is `docker builder prune`: the untagged images builds left (the cache).
Invariant: nothing here forks itself; a threaded caller passes its `Spawner` so RUN steps start
from a single-threaded helper (engine.container.spawner).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.build.builder import BuildOutput, BuildRequest, BuildResult
from engine.build.runner import BuildCancelled
from engine.build.steps import StepFailed
from engine.config import EngineConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from engine.container.spawner import Spawner

__all__ = ["BuildCancelled", "BuildOutput", "BuildRequest", "BuildResult", "CachePrune", "StepFailed", "build", "check",
           "prune_cache"]


def check(request: BuildRequest) -> BuildRequest:
    """The request with its options checked and its Dockerfile parsed: InvalidArgument before any
    work (a front end that streams can still answer with an error status)."""
    from engine.build.builder import check_request
    from engine.build.instructions import parse_plan

    parse_plan(request.dockerfile)
    return check_request(request)


def build(config: EngineConfig, request: BuildRequest, output: BuildOutput, spawner: Spawner | None = None,
          cancelled: Callable[[], bool] = lambda: False) -> BuildResult:
    from engine.build.builder import build as run_build
    from engine.container.reconcile import reconcile

    reconcile(config)
    return run_build(config, request, output, spawner, cancelled)


@dataclass(frozen=True)
class CachePrune:
    deleted: tuple[str, ...]
    space_reclaimed: int


def prune_cache(config: EngineConfig) -> CachePrune:
    from engine.build.cache import prune
    from engine.container.usage import container_uses
    from engine.image.store import ImageStore

    deleted, freed = prune(ImageStore(config, containers=container_uses))
    return CachePrune(tuple(deleted), freed)
