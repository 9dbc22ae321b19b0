"""What every container verb shares: the root check and reconcile they start with, Docker's
go-on-after-an-error rule for multi-container verbs, and label flags as a mapping."""

from __future__ import annotations

import sys

from engine.config import EngineConfig
from engine.errors import DockuiError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
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
