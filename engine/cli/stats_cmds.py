"""Verbs of this group are registered here (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:  # noqa: ARG001
    """Add this group's verbs to the top-level parser."""
