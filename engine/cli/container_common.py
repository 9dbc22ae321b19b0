"""What every container verb shares: the root check and reconcile they start with, Docker's
go-on-after-an-error rule for multi-container verbs, label flags as a mapping, and the client-side
part of `create`/`run` (whose refusals are the docker CLI's own: FlagError)."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from engine.config import EngineConfig
from engine.errors import DockuiError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any


def start_engine(config: EngineConfig, what: str) -> None:
    """Root check and the reconcile every container verb starts with."""
    from engine.cli import require_root
    from engine.container.reconcile import reconcile

    require_root(what)
    reconcile(config)


def for_each(refs: list[str], action: Any) -> int:
    """Docker's multi-container verbs: go on after an error, print each failure, exit 1 if any."""
    status = 0
    for ref in refs:
        try:
            action(ref)
        except DockuiError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            status = 1
    return status


def echo_each(refs: list[str], action: Any) -> int:
    """for_each for the verbs that print each name they acted on (stop, kill, rm, ...), as Docker's."""

    def one(ref: str) -> None:
        action(ref)
        print(ref)

    return for_each(refs, one)


def parse_labels(items: list[str]) -> dict[str, str]:
    labels = {}
    for item in items:
        key, _, value = item.partition("=")
        labels[key] = value
    return labels


@contextmanager
def client_side() -> Iterator[None]:
    """The flags read into RunOptions, as the docker CLI reads them before it asks the engine: a
    value refused in here is the client's refusal (FlagError: `create` exits 125 for it, 1 for the
    engine's). Another error (a Conflict: the --cidfile is there) stays what it is."""
    from engine.container.options import FlagError
    from engine.errors import InvalidArgument

    try:
        yield
    except FlagError:
        raise
    except InvalidArgument as exc:
        raise FlagError(str(exc)) from None
