"""The verbs that change a container's state: stop, restart, kill, pause, unpause, wait, rm,
rename, prune, update, and `container stats`.
"""

from __future__ import annotations

import argparse
import sys

from engine.cli.container_common import echo_each, for_each, start_engine
from engine.config import EngineConfig
from engine.errors import DockuiError, InvalidArgument, NotFound


def cmd_stop(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.lifecycle import stop

    start_engine(config, "stop")
    if args.signal:
        from engine.image.imageconfig import parse_signal

        parse_signal(args.signal)
    return echo_each(args.containers, lambda ref: stop(config, ref, args.time, args.signal))


def cmd_restart(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.lifecycle import restart

    start_engine(config, "restart")
    return echo_each(args.containers, lambda ref: restart(config, ref, args.time))


def cmd_kill(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.lifecycle import kill

    start_engine(config, "kill")
    return echo_each(args.containers, lambda ref: kill(config, ref, args.signal))


def cmd_pause(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.lifecycle import pause

    start_engine(config, "pause")
    return echo_each(args.containers, lambda ref: pause(config, ref))


def cmd_unpause(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.lifecycle import unpause

    start_engine(config, "unpause")
    return echo_each(args.containers, lambda ref: unpause(config, ref))


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
        try:
            remove(config, ref, force=args.force, volumes=args.volumes)
        except NotFound as exc:
            if not args.force:
                raise
            print(f"Error: {exc}", file=sys.stderr)  # rm.go: with --force a missing one is said, not failed
            return
        print(ref)

    return for_each(args.containers, one)


def cmd_rename(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.lifecycle import rename

    if not args.container.strip("/") or not args.new_name.strip():
        raise InvalidArgument("Neither old nor new names may be empty")  # rename.go's check, before the engine's
    start_engine(config, "rename")
    try:
        rename(config, args.container, args.new_name)
    except DockuiError as exc:  # rename.go: the engine's error, then its own line
        print(f"Error: {exc}", file=sys.stderr)
        raise DockuiError(f"failed to rename container named {args.container}") from None
    return 0


def cmd_prune(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.api.containers import prune_reclaiming
    from engine.api.prune import CONTAINER_KEYS, from_flags
    from engine.cli.output import print_pruned

    filters = from_flags(args.filter, CONTAINER_KEYS)
    start_engine(config, "container prune")
    removed, freed = prune_reclaiming(config, filters)
    print_pruned("Deleted Containers:", removed, freed)
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
    return echo_each(args.containers, lambda ref: update(config, ref, change))


def cmd_container_stats(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.cli.stats_cmds import run_stats

    return run_stats(args, config)
