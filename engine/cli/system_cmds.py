"""`dockui system ...` verbs: `system service` (the Docker Engine API on a Unix socket), `system df`;
and `events`, `info`, `version`.

A plain verb module: `register(subparsers, verb)` adds the verbs, each handler is
`handler(args, config) -> int`. aiohttp is imported only by `system service`'s handler.
"""

from __future__ import annotations

import argparse

from engine.config import EngineConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from engine.eventlog import Event


def register(subparsers: argparse._SubParsersAction, verb: str | None = None) -> None:  # noqa: ARG001
    from engine.cli import ArgumentParser

    group = subparsers.add_parser("system", help="Manage dockui (the Engine API service, ...)")
    sub = group.add_subparsers(dest="system_verb", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    p = sub.add_parser("service", help="Serve the Docker Engine API on a Unix socket (foreground)")
    p.add_argument("-H", "--host", default=None, metavar="unix:///PATH",
                   help="the socket to listen on (default unix:///run/dockui.sock)")
    p.add_argument("-t", "--timeout", type=float, default=0, metavar="SECONDS",
                   help="exit after this many seconds without a connection (0: never)")
    p.set_defaults(handler=cmd_system_service)
    _add_system_df(sub.add_parser("df", help="Show disk usage (images, containers, volumes)"))
    p = sub.add_parser("prune", help="Remove unused data (stopped containers, unused networks, dangling images)")
    p.add_argument("-a", "--all", action="store_true", help="Remove all unused images not just dangling ones")
    p.add_argument("--volumes", action="store_true", help="Prune anonymous volumes")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.set_defaults(handler=cmd_system_prune)
    _add_events(subparsers.add_parser("events", help="Get real time events from the engine"))
    _add_info(subparsers.add_parser("info", help="Display system-wide information"))
    _add_version(subparsers.add_parser("version", help="Show the dockui version information"))


def cmd_system_service(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.cli import require_root
    from engine.service import server

    host = args.host or server.DEFAULT_HOST
    server.parse_host(host)  # a tcp:// address is refused before the root check
    require_root("system service")
    return server.run(config, host, args.timeout)


# ---- system df, events, info, version -------------------------------------------------------------
# The figures come from engine.api (system, info): the same calls the service's endpoints make.


def _add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", help="'json' for JSON, or a Go-like template ({{.Type}}, {{json .}})")


def _add_system_df(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true", help="show detailed information on space usage")
    _add_format(p)
    p.set_defaults(handler=cmd_system_df)


def _add_events(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", help="show events since a timestamp (Unix, RFC3339) or a duration ago (10m)")
    p.add_argument("--until", help="stream events until this timestamp or duration ago, then exit")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="container=, event=, image=, label=, network=, type=, volume=, scope=")
    _add_format(p)
    p.set_defaults(handler=cmd_events)


def _add_info(p: argparse.ArgumentParser) -> None:
    _add_format(p)
    p.set_defaults(handler=cmd_info)


def _add_version(p: argparse.ArgumentParser) -> None:
    _add_format(p)
    p.set_defaults(handler=cmd_version)


def _print_object(obj: object, template: str) -> None:
    """`--format json` is the docker CLI's `{{json .}}` (Go's compact encoding), else a template."""
    from engine.cli.output import render_template

    print(render_template("{{json .}}" if template.strip() == "json" else template, obj))


def _print_struct(doc: dict, template: str, go_type: str, name: str = "") -> None:
    """info's and version's `--format`: JSON as before, a template as the docker CLI runs it
    (engine.cli.output.print_template: the Go type's name in errors, the newline printed anyway)."""
    if template.strip() == "json":
        _print_object(doc, template)
        return
    from engine.cli.output import print_template

    print_template(template, doc, go_type=go_type, name=name)


def cmd_system_prune(args: argparse.Namespace, config: EngineConfig) -> int:
    """docker system prune: containers, then networks, (volumes,) then images, as Docker orders
    them (a removed container frees its network, volumes and image); the same engine.api calls as
    each `prune` verb."""
    import sys

    from engine.api import containers, images, networks, volumes
    from engine.cli import require_root
    from engine.cli.output import human_size, print_removed

    require_root("system prune")
    if not args.force:  # Docker asks on stdin, terminal or not: no answer (EOF) removes nothing
        print(f"WARNING! This will remove:\n{_prune_scope(args)}\nAre you sure you want to continue? [y/N] ",
              end="", flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            print()
            return 0
    written = {r.id: containers.container_sizes(config, r).rw
               for r in containers.list_containers(config, containers.ContainerQuery(all=True)) if not r.running}
    removed = containers.prune(config)
    sections = [("Deleted Containers", removed), ("Deleted Networks", networks.prune(config))]
    freed = sum(written.get(cid, 0) for cid in removed)  # what the removed containers wrote
    if args.volumes:
        removed_volumes, volume_bytes = volumes.prune(config)
        freed += volume_bytes
        sections.append(("Deleted Volumes", removed_volumes))
    removals, image_bytes = images.prune(config, all_images=args.all)
    sections.append(("Deleted Images", [f"{r.kind.lower()}: {r.value}" for r in removals]))
    for title, names in sections:
        print_removed(f"{title}:", names)
    print(f"Total reclaimed space: {human_size(freed + image_bytes)}")
    return 0


def _prune_scope(args: argparse.Namespace) -> str:
    lines = ["all stopped containers", "all networks not used by at least one container"]
    if args.volumes:
        lines.append("all anonymous volumes not used by at least one container")
    lines.append("all images without at least one container associated to them" if args.all else "all dangling images")
    return "".join(f"  - {line}\n" for line in lines)


def cmd_system_df(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.api import system
    from engine.cli.output import human_size, print_table

    usage = system.disk_usage(config)
    active_images = [i for i in usage.images if i.containers]
    unused_layers = usage.layers_size - usage.active_layers_size
    running = [c for c in usage.containers if c.record.running]
    used_volumes = [v for v in usage.volumes if v.ref_count]
    rows = [
        ("Images", len(usage.images), len(active_images), usage.layers_size, unused_layers),
        ("Containers", len(usage.containers), len(running), sum(c.size_rw for c in usage.containers),
         sum(c.size_rw for c in usage.containers if not c.record.running)),
        ("Local Volumes", len(usage.volumes), len(used_volumes), sum(v.size for v in usage.volumes),
         sum(v.size for v in usage.volumes if not v.ref_count)),
    ]
    if args.format:
        for kind, total, active, size, reclaimable in rows:
            _print_object({"Type": kind, "TotalCount": total, "Active": active, "Size": human_size(size),
                           "Reclaimable": _reclaimable(reclaimable, size)}, args.format)
        return 0
    print_table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
                [(k, t, a, human_size(s), _reclaimable(r, s)) for k, t, a, s, r in rows])
    if args.verbose:
        print("\nImages space usage:\n")
        print_table(["IMAGE ID", "TAGS", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"], [
            (i.record.short_id, ", ".join(i.record.repo_tags) or "<none>", human_size(i.record.size),
             human_size(i.shared_size), human_size(i.record.size - i.shared_size), i.containers) for i in usage.images])
        print("\nContainers space usage:\n")
        print_table(["CONTAINER ID", "IMAGE", "SIZE", "STATUS", "NAMES"], [
            (c.record.short_id, c.record.image, human_size(c.size_rw), c.record.status, c.record.name)
            for c in usage.containers])
        print("\nLocal Volumes space usage:\n")
        print_table(["VOLUME NAME", "LINKS", "SIZE"], [(v.volume.name, v.ref_count, human_size(v.size)) for v in usage.volumes])
    return 0



def _reclaimable(reclaimable: int, size: int) -> str:
    from engine.cli.output import human_size

    return f"{human_size(reclaimable)} ({round(100 * reclaimable / size) if size else 0}%)"


def cmd_events(args: argparse.Namespace, config: EngineConfig) -> int:
    """The logged events since --since, then live ones until --until or until interrupted."""
    import sys
    import time

    from engine.api import system
    from engine.container.filters import filter_words

    query = system.EventQuery(
        system.parse_event_time(args.since) if args.since else None,
        system.parse_event_time(args.until) if args.until else None,
        system.EventFilter.parse(filter_words(args.filter)),
    )
    stream = system.EventStream(config, query)
    try:
        for event in stream.backlog:
            _print_event(event, args.format)
        while not query.ended:
            sys.stdout.flush()
            time.sleep(0.1)
            for event in stream.poll():
                _print_event(event, args.format)
        for event in stream.poll():
            _print_event(event, args.format)
    finally:
        stream.close()
    return 0


def _print_event(event: Event, template: str | None) -> None:
    """Docker's line: `TIME TYPE ACTION ID (k=v, ...)`, or JSON, or a template on Docker's field names."""
    from datetime import datetime

    doc = event.to_docker()
    if template:
        if template.strip() == "json":
            _print_object(doc, template)
            return
        go_names = {"Status": doc.get("status", ""), "ID": doc.get("id", ""), "From": doc.get("from", ""),
                    "Type": doc["Type"], "Action": doc["Action"], "Actor": doc["Actor"], "Scope": doc["scope"],
                    "Time": doc["time"], "TimeNano": doc["timeNano"]}
        _print_object(go_names, template)
        return
    nanos = event.time_nano
    stamp = datetime.fromtimestamp(nanos // 1_000_000_000).astimezone()
    offset = stamp.strftime("%z")
    zone = "Z" if offset in ("+0000", "-0000") else f"{offset[:3]}:{offset[3:]}"  # Go's Z07:00: UTC is "Z"
    when = stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos % 1_000_000_000:09d}{zone}"
    attributes = ", ".join(f"{k}={v}" for k, v in sorted(event.attributes.items()))
    print(f"{when} {event.type} {event.action} {event.actor_id}" + (f" ({attributes})" if attributes else ""), flush=True)


def cmd_info(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.api import info
    from engine.cli.output import human_size

    doc = info.info(config)
    if args.format:
        _print_struct(doc, args.format, "system.dockerInfo")
        return 0
    lines = [
        "Server:",
        f" Containers: {doc['Containers']}",
        f"  Running: {doc['ContainersRunning']}",
        f"  Paused: {doc['ContainersPaused']}",
        f"  Stopped: {doc['ContainersStopped']}",
        f" Images: {doc['Images']}",
        f" Server Version: {doc['ServerVersion']}",
        f" Storage Driver: {doc['Driver']}",
        f" Logging Driver: {doc['LoggingDriver']}",
        f" Cgroup Driver: {doc['CgroupDriver']}",
        f" Cgroup Version: {doc['CgroupVersion']}",
        f" Kernel Version: {doc['KernelVersion']}",
        f" Operating System: {doc['OperatingSystem']}",
        f" OSType: {doc['OSType']}",
        f" Architecture: {doc['Architecture']}",
        f" CPUs: {doc['NCPU']}",
        f" Total Memory: {human_size(doc['MemTotal'])}",
        f" Name: {doc['Name']}",
        f" ID: {doc['ID']}",
        f" Docker Root Dir: {doc['DockerRootDir']}",
        f" Live Restore Enabled: {str(doc['LiveRestoreEnabled']).lower()}",
    ]
    print("\n".join(lines))
    return 0


def cmd_version(args: argparse.Namespace, config: EngineConfig) -> int:  # noqa: ARG001
    """docker version: its template (version.go's defaultVersionTemplate, or --format) over the
    versionInfo struct (Go's field names: `{{.Server.APIVersion}}`), through its tabwriter."""
    from engine.api import info
    from engine.cli.formatters import DEFAULT_VERSION_TEMPLATE, VERSION_FUNCS, version_info
    from engine.cli.output import print_template

    template = args.format or DEFAULT_VERSION_TEMPLATE
    if template.strip() == "json":
        template = "{{json .}}"
    print_template(template, version_info(info.client_version(), info.version()), name="version",
                   funcs=VERSION_FUNCS, aligned=True)
    return 0
