"""The `volume` verbs: create, ls, inspect, rm, prune (named volumes under <root>/volumes/).
"""

from __future__ import annotations

import argparse
import sys

from engine.cli.container_common import for_each, parse_labels
from engine.cli.output import print_formatted
from engine.config import EngineConfig
from engine.errors import InvalidArgument, NotFound

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from engine.container.volumes import Volume


def cmd_volume_create(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.api.volumes import CreateVolume, create

    if args.driver != "local":
        raise InvalidArgument(f"volume driver {args.driver!r} is not supported (only local)")
    options = parse_labels(args.opt)  # the same KEY=VALUE map flag as --label
    volume = create(config, CreateVolume(args.name, parse_labels(args.label), options))
    print(volume.name)
    return 0


def cmd_volume_ls(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.cli.output import print_table

    volumes = _listed_volumes(config, args.filter)
    if args.quiet and (not args.format or args.format.strip() in ("table", "json")):  # docker: a template wins over -q
        for v in volumes:
            print(v.name)
    elif args.format and args.format.strip() == "json":  # docker's `{{json .}}` of each volumeContext
        from engine.cli.formatters import volume_row
        from engine.util.gofmt import go_json

        sys.stdout.write("".join(go_json(volume_row(v).template_json()) + "\n" for v in volumes))
    elif args.format and args.format.strip() != "table":  # a Go template (docker's volumeContext)
        from engine.cli.formatters import VOLUME_HEADERS, volume_row
        from engine.cli.output import render_format

        sys.stdout.write(render_format(args.format, [volume_row(v) for v in volumes], VOLUME_HEADERS))
    else:
        print_table(("DRIVER", "VOLUME NAME"), [("local", v.name) for v in volumes])
    return 0


def _listed_volumes(config: EngineConfig, filters: list[str]) -> list[Volume]:
    """The volumes, through --filter as the Engine API applies them (engine.api.volumes)."""
    if not filters:
        from engine.container.volumes import list_volumes

        return list_volumes(config)
    from engine.api.volumes import VolumeFilter, list_volumes
    from engine.container.filters import filter_words

    return list_volumes(config, VolumeFilter.parse(filter_words(filters)))


def cmd_volume_rm(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.volumes import remove_volume

    def one(name: str) -> None:
        remove_volume(config, name, force=args.force)
        print(name)

    return for_each(args.names, one)


def cmd_volume_inspect(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.volumes import get_volume

    results = []
    status = 0
    for name in args.names:
        try:
            results.append(get_volume(config, name).inspect())
        except NotFound as exc:
            print(f"Error: {exc}", file=sys.stderr)
            status = 1
    return max(status, print_formatted(results, args.format))


def cmd_volume_prune(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.api.prune import VOLUME_KEYS, from_flags
    from engine.api.volumes import prune
    from engine.cli.output import print_pruned

    filters = from_flags(args.filter, VOLUME_KEYS)
    removed, freed = prune(config, all_volumes=args.all or filters.flag is True, filters=filters)
    print_pruned("Deleted Volumes:", removed, freed)
    return 0
