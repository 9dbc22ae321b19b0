"""The verbs that change a container's state: stop, restart, kill, pause, unpause, wait, rm,
rename, prune, update, and `container stats`.
"""

from __future__ import annotations

import argparse

from engine.cli.container_common import for_each, start_engine
from engine.config import EngineConfig
from engine.errors import InvalidArgument

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    pass


def cmd_stop(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.lifecycle import stop

    start_engine(config, "stop")
    if args.signal:
        from engine.image.imageconfig import parse_signal

        parse_signal(args.signal)

    def one(ref: str) -> None:
        stop(config, ref, args.time, args.signal)
        print(ref)

    return for_each(args.containers, one)


def cmd_restart(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.lifecycle import restart

    start_engine(config, "restart")

    def one(ref: str) -> None:
        restart(config, ref, args.time)
        print(ref)

    return for_each(args.containers, one)


def cmd_kill(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.lifecycle import kill

    start_engine(config, "kill")

    def one(ref: str) -> None:
        kill(config, ref, args.signal)
        print(ref)

    return for_each(args.containers, one)


def cmd_pause(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.lifecycle import pause

    start_engine(config, "pause")

    def one(ref: str) -> None:
        pause(config, ref)
        print(ref)

    return for_each(args.containers, one)


def cmd_unpause(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.lifecycle import unpause

    start_engine(config, "unpause")

    def one(ref: str) -> None:
        unpause(config, ref)
        print(ref)

    return for_each(args.containers, one)


def cmd_wait(args: argparse.Namespace, config: EngineConfig) -> int:
    start_engine(config, "wait")

    def one(ref: str) -> None:
        from engine.container.waiting import wait_for

        print(wait_for(config, ref, args.condition).status_code, flush=True)

    return for_each(args.containers, one)


def cmd_rm(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.removal import remove

    start_engine(config, "rm")

    def one(ref: str) -> None:
        remove(config, ref, force=args.force, volumes=args.volumes)
        print(ref)

    return for_each(args.containers, one)


def cmd_rename(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.lifecycle import rename

    start_engine(config, "rename")
    rename(config, args.container, args.new_name)
    return 0


def cmd_prune(args: argparse.Namespace, config: EngineConfig) -> int:  # noqa: ARG001
    from engine.container.removal import prune

    start_engine(config, "container prune")
    removed = prune(config)
    print("Deleted Containers:")
    for cid in removed:
        print(cid)
    print()
    print("Total reclaimed space: 0B")
    return 0


def cmd_update(args: argparse.Namespace, config: EngineConfig) -> int:
    """docker update: the limits written live into a running container's cgroup, and the record."""
    from engine.container.update import Update, update

    change = Update(memory=args.memory, memory_swap=args.memory_swap, memory_reservation=args.memory_reservation,
                    cpus=args.cpus, cpu_shares=args.cpu_shares, cpu_period=args.cpu_period, cpu_quota=args.cpu_quota,
                    cpuset_cpus=args.cpuset_cpus, pids_limit=args.pids_limit, blkio_weight=args.blkio_weight,
                    restart=args.restart)
    if change.is_empty():
        raise InvalidArgument("you must provide one or more flags when using this command")
    start_engine(config, "update")

    def one(ref: str) -> None:
        update(config, ref, change)
        print(ref)

    return for_each(args.containers, one)


def cmd_container_stats(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.cli.stats_cmds import run_stats

    return run_stats(args, config)
