"""The verbs that read or write a container's filesystem: commit, export, cp, diff.
"""

from __future__ import annotations

import argparse
import os
import sys

from engine.cli.container_common import for_each, start_engine
from engine.config import EngineConfig
from engine.errors import InvalidArgument

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    pass


def cmd_commit(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.commit import commit
    from engine.image.changes import parse_changes

    start_engine(config, "commit")
    record = commit(config, args.container, args.repository, message=args.message, author=args.author,
                    changes=parse_changes(args.change), pause=args.pause == "true")
    print(record.id)
    return 0


def cmd_export(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.export import export

    start_engine(config, "export")
    if args.output:
        from engine.container.state import find_container

        find_container(config, args.container)  # no such container: no file left behind
        with open(args.output, "wb") as out:
            export(config, args.container, out)
        return 0
    if os.isatty(1):
        raise InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    export(config, args.container, sys.stdout.buffer)
    sys.stdout.flush()
    return 0


def cmd_cp(args: argparse.Namespace, config: EngineConfig) -> int:
    """docker cp: exactly one side names a container (engine.container.copy has Docker's rules);
    an error is one line and status 1, as docker cp's."""
    return for_each([""], lambda _: _copy(args, config))


def _copy(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container import copy

    source, destination = copy.parse_target(args.source), copy.parse_target(args.destination)
    if (source.container is None) == (destination.container is None):
        raise InvalidArgument("copying between containers or between local paths is not supported: "
                              "one side must be CONTAINER:PATH, the other a local path or -")
    start_engine(config, "cp")
    if source.container is not None:
        if destination.path == "-" and os.isatty(1):
            raise InvalidArgument("cowardly refusing to write a tar archive to a terminal: redirect it")
        copy.copy_from_container(config, source.container, source.path, destination.path, sys.stdout.buffer,
                                 follow_link=args.follow_link)
    else:
        assert destination.container is not None
        copy.copy_to_container(config, destination.container, source.path, destination.path, sys.stdin.buffer,
                               keep_owner=args.archive, follow_link=args.follow_link)
    return 0


def cmd_diff(args: argparse.Namespace, config: EngineConfig) -> int:
    """docker diff: C (changed), A (added), D (deleted) paths of the container's writable layer
    (an error: status 1, as docker diff's)."""
    from engine.api import containers as api

    def one(ref: str) -> None:
        start_engine(config, "diff")
        for change in api.changes(config, ref):
            print(f"{'CAD'[change.kind]} {change.path}")

    return for_each([args.container], one)
