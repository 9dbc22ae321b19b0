"""`dockui stats`: docker stats' table (refreshed in place on a terminal) or one JSON object per
container per sample. The numbers come from the shared engine.stats.sampler.Sampler."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from engine.config import EngineConfig
from engine.errors import InvalidArgument

if TYPE_CHECKING:
    from engine.stats.sampler import StatsSnapshot

HEADERS = ("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS")
ROW_KEYS = ("ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs")
CLEAR_SCREEN = "\033[2J\033[H"


def register(subparsers: argparse._SubParsersAction, verb: str | None = None) -> None:  # noqa: ARG001
    """Add `stats` to the top-level parser."""
    parser = subparsers.add_parser(
        "stats", help="Display a live stream of container(s) resource usage statistics"
    )
    add_stats_flags(parser)
    parser.set_defaults(handler=run_stats)


def add_stats_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of `stats` (also `container stats`)."""
    parser.add_argument("-a", "--all", action="store_true", help="Show all containers (default shows just running)")
    parser.add_argument(
        "--no-stream", action="store_true", help="Disable streaming stats and only pull the first result"
    )
    parser.add_argument("--no-trunc", action="store_true", help="Do not truncate output")
    parser.add_argument("--format", default="table", help='"table" (default), "json" or a Go template ({{.Name}} {{.CPUPerc}})')
    parser.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("containers", nargs="*", metavar="CONTAINER")


def zero_row(container_id: str, name: str) -> dict[str, str]:
    """What docker stats shows for a container that is not running."""
    return {
        "BlockIO": "0B / 0B",
        "CPUPerc": "0.00%",
        "Container": container_id[:12],
        "ID": container_id[:12],
        "MemPerc": "0.00%",
        "MemUsage": "0B / 0B",
        "Name": name,
        "NetIO": "0B / 0B",
        "PIDs": "0",
    }


def rows_for(
    snapshot: StatsSnapshot, wanted: list[tuple[str, str]] | None, no_trunc: bool = False
) -> list[dict[str, str]]:
    """Docker's rows: every sampled container, or exactly `wanted` [(id, name)] in that order
    (zeros for those not running)."""
    if wanted is None:
        rows = [c.docker_row() for c in snapshot.containers]
        ids = [c.id for c in snapshot.containers]
    else:
        rows, ids = [], []
        for cid, name in wanted:
            stats = snapshot.by_id.get(cid)
            rows.append(stats.docker_row() if stats else zero_row(cid, name))
            ids.append(cid)
    if no_trunc:  # .Container stays the short ID (or the name given: run_stats), as docker's
        for row, cid in zip(rows, ids, strict=True):
            row["ID"] = cid
    return rows


def render_table(rows: Iterable[dict[str, str]]) -> str:
    """Columns padded as docker's tabwriter pads them (3 spaces between columns, 10 wide at least)."""
    from engine.util.tabwriter import tabwrite

    table = [list(HEADERS)] + [[row[k] for k in ROW_KEYS] for row in rows]
    return tabwrite("".join("\t".join(r) + "\n" for r in table), minwidth=10, padding=3)


def _selection(args: argparse.Namespace, config: EngineConfig) -> Callable[[], list[tuple[str, str]] | None]:
    """Which containers to show: None = whatever runs; else a list of (id, name), re-read per sample."""
    if args.containers:
        from engine.container.state import find_container

        records = [find_container(config, ref) for ref in args.containers]
        fixed = [(r.id, r.name) for r in records]
        return lambda: fixed
    if args.all:
        from engine.container.state import list_containers

        return lambda: [(r.id, r.name) for r in list_containers(config)]
    return lambda: None


def run_stats(args: argparse.Namespace, config: EngineConfig) -> int:
    render = _template_renderer(args.format) if args.format not in ("table", "json") else None
    if args.interval <= 0:
        raise InvalidArgument("--interval must be positive")
    from engine.stats.sampler import Sampler, state_targets

    try:  # the sampler only logs what it cannot read; a user without the rights gets one line
        os.listdir(config.containers_dir)
    except FileNotFoundError:
        pass
    selection = _selection(args, config)
    source = state_targets(config)
    wanted_ids = None
    if args.containers:
        wanted_ids = {cid for cid, _ in selection() or []}

    def targets() -> list:
        found = source()
        return [t for t in found if wanted_ids is None or t.id in wanted_ids]

    out = sys.stdout
    redraw = args.format.startswith("table") and not args.no_stream and out.isatty()
    first = True
    with Sampler(config, targets, host=False) as sampler:
        for snapshot in sampler.stream(args.interval, count=1 if args.no_stream else None):
            rows = rows_for(snapshot, selection(), args.no_trunc)
            for row, ref in zip(rows, args.containers, strict=False):  # stats.go's NewStats(name as given)
                row["Container"] = ref
            if args.format == "json":
                for row in rows:
                    out.write(json.dumps(row, separators=(",", ":")) + "\n")
            elif redraw:
                out.write(redraw_frame(render(rows) if render else render_table(rows), first))
            else:
                out.write(render(rows) if render else render_table(rows))
            out.flush()
            first = False
    return 0


def _template_renderer(template: str) -> Callable[[list[dict[str, str]]], str]:
    """`--format` as a Go template (docker's statsContext): checked before sampling starts."""
    from engine.cli.formatters import STATS_HEADERS, stats_row
    from engine.cli.output import render_format

    def render(rows: list[dict[str, str]]) -> str:
        return render_format(template, [stats_row(row) for row in rows], STATS_HEADERS)

    render([])  # a template that does not parse fails now, not after the first sample
    return render


def redraw_frame(table: str, first: bool) -> str:
    """The table drawn over the previous one in place: home, each line cleared to its end, the rest
    of the screen cleared (no full-screen clear after the first frame, so no flicker)."""
    return (CLEAR_SCREEN if first else "\033[H") + table.replace("\n", "\033[K\n") + "\033[J"
