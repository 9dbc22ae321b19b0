"""`dockui system ...` verbs: `system service` (the Docker Engine API on a Unix socket), `system df`;
and `events`, `info`, `version`.

A plain verb module: `register(subparsers, verb)` adds the verbs, each handler is
`handler(args, config) -> int`. aiohttp is imported only by `system service`'s handler.
"""

from __future__ import annotations

import argparse

from engine.cli import filter_flag
from engine.config import EngineConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from engine.eventlog import Event
    from engine.util.gotemplate import Template


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
    p.add_argument("--filter", action="append", default=[], type=filter_flag,
                   help="Provide filter values (e.g. 'label=<key>=<value>')")
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
    p.add_argument("-f", "--filter", action="append", default=[], type=filter_flag, metavar="KEY=VALUE",
                   help="container=, event=, image=, label=, network=, type=, volume=, scope=")
    _add_format(p)
    p.set_defaults(handler=cmd_events)


def _add_info(p: argparse.ArgumentParser) -> None:
    _add_format(p)
    p.set_defaults(handler=cmd_info)


def _add_version(p: argparse.ArgumentParser) -> None:
    _add_format(p)
    p.set_defaults(handler=cmd_version)


def cmd_system_prune(args: argparse.Namespace, config: EngineConfig) -> int:
    """docker system prune (system/prune.go): containers, then networks, (volumes,) then images,
    each with --filter, as Docker orders them (a removed container frees its network, volumes and
    image); the same engine.api calls as each `prune` verb. Without --force, docker's question."""
    import sys

    from engine.api import containers, images, networks, volumes
    from engine.api.prune import CONTAINER_KEYS, IMAGE_KEYS, NETWORK_KEYS, VOLUME_KEYS, from_flags
    from engine.cli import require_root
    from engine.cli.output import human_size, print_removed
    from engine.errors import InvalidArgument

    if args.volumes and any(word.partition("=")[0] == "until" for word in args.filter):
        raise InvalidArgument('The "until" filter is not supported with "--volumes"')  # prune.go's check, first
    require_root("system prune")
    if not args.force:  # Docker asks on stdin, terminal or not: no answer (EOF) removes nothing
        print(_prune_question(args), end="", flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    removed, freed = containers.prune_reclaiming(config, from_flags(args.filter, CONTAINER_KEYS))
    sections = [("Deleted Containers", removed), ("Deleted Networks", networks.prune(config, from_flags(args.filter, NETWORK_KEYS)))]
    if args.volumes:
        removed_volumes, volume_bytes = volumes.prune(config, filters=from_flags(args.filter, VOLUME_KEYS))
        freed += volume_bytes
        sections.append(("Deleted Volumes", removed_volumes))
    removals, image_bytes = images.prune(config, all_images=args.all, filters=from_flags(args.filter, IMAGE_KEYS))
    sections.append(("Deleted Images", [f"{r.kind.lower()}: {r.value}" for r in removals]))
    for title, names in sections:
        print_removed(f"{title}:", names)
    print(f"Total reclaimed space: {human_size(freed + image_bytes)}")
    return 0


def _prune_question(args: argparse.Namespace) -> str:
    """prune.go's confirmationMessage: what goes (the build cache too: docker always asks for it),
    the filters it is limited to (label, label!, until), then the question."""
    lines = ["all stopped containers", "all networks not used by at least one container"]
    if args.volumes:
        lines.append("all anonymous volumes not used by at least one container")
    lines.append("all images without at least one container associated to them" if args.all else "all dangling images")
    lines.append("all build cache" if args.all else "unused build cache")
    text = "WARNING! This will remove:\n" + "".join(f"  - {line}\n" for line in lines)
    shown = sorted(word for word in args.filter if word.partition("=")[0] in ("label", "label!", "until"))
    if shown:
        text += "\n  Items to be pruned will be filtered with:\n" + "".join(f"  - {word}\n" for word in shown)
    return text + "\nAre you sure you want to continue? [y/N] "


def cmd_system_df(args: argparse.Namespace, config: EngineConfig) -> int:
    """docker system df [-v]: engine.api.system's usage through docker's disk_usage formatter."""
    from engine.api import system
    from engine.cli.disk_usage import print_disk_usage

    print_disk_usage(system.disk_usage(config), args.format or "", args.verbose)
    return 0


def cmd_events(args: argparse.Namespace, config: EngineConfig) -> int:
    """The logged events since --since, then live ones until --until or until interrupted; a
    --format template is checked before anything is read (events.go's makeTemplate)."""
    import sys
    import time

    from engine.api import system
    from engine.container.filters import filter_words

    template = _event_template(args.format)
    query = system.EventQuery(
        _event_time(system, args.since), _event_time(system, args.until),
        system.EventFilter.parse(filter_words(args.filter)),
    )
    stream = system.EventStream(config, query)
    try:
        for event in stream.backlog:
            _print_event(event, template)
        while not query.ended:
            sys.stdout.flush()
            time.sleep(0.1)
            for event in stream.poll():
                _print_event(event, template)
        for event in stream.poll():
            _print_event(event, template)
    finally:
        stream.close()
    return 0


def _event_time(system: Any, text: str | None) -> int | None:
    """--since/--until as the docker CLI reads them (GetTimestamp's words when it cannot)."""
    if not text:
        return None
    from engine.errors import InvalidArgument

    try:
        return system.parse_event_time(text)
    except InvalidArgument:
        raise InvalidArgument(f'failed to parse value as time or duration: "{text}"') from None


def _event_template(text: str | None) -> Template | None:
    """events.go's makeTemplate: None for docker's own lines; else the template (`json` is
    `{{json .}}`), parsed and run once on an empty events.Message, so a bad one fails at once,
    before any event is waited for: FormatError("Error parsing format: ...", 64)."""
    if not text:
        return None
    from engine.cli.formatters import event_message
    from engine.cli.output import FormatError
    from engine.util import gotemplate

    try:
        template = gotemplate.parse("{{json .}}" if text == "json" else text)
        template.execute(event_message({}))
    except (gotemplate.TemplateError, gotemplate.ExecError) as exc:
        raise FormatError(f"Error parsing format: {exc}", 64) from None
    return template


def _print_event(event: Event, template: Template | None) -> None:
    """Docker's line: `TIME TYPE ACTION ID (k=v, ...)`, or the template over its events.Message
    (formatEvent: what it wrote and a newline even when it fails on this event, then the error)."""
    import sys
    from datetime import datetime

    if template is not None:
        from engine.cli.formatters import event_message
        from engine.cli.output import FormatError
        from engine.util import gotemplate

        try:
            text = template.execute(event_message(event.to_docker()))
        except gotemplate.ExecError as exc:
            sys.stdout.write(exc.partial + "\n")
            raise FormatError(str(exc)) from None
        sys.stdout.write(text + "\n")
        return
    nanos = event.time_nano
    stamp = datetime.fromtimestamp(nanos // 1_000_000_000).astimezone()
    offset = stamp.strftime("%z")
    zone = "Z" if offset in ("+0000", "-0000") else f"{offset[:3]}:{offset[3:]}"  # Go's Z07:00: UTC is "Z"
    when = stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos % 1_000_000_000:09d}{zone}"
    attributes = ", ".join(f"{k}={v}" for k, v in sorted(event.attributes.items()))
    print(f"{when} {event.type} {event.action} {event.actor_id}" + (f" ({attributes})" if attributes else ""), flush=True)


def cmd_info(args: argparse.Namespace, config: EngineConfig) -> int:
    """docker info: --format over the system.dockerInfo document, else the docker CLI's own print
    of it (info.go's prettyPrintInfo): the client's lines, then the server's; warnings on stderr."""
    import sys

    from engine import __version__
    from engine.api import info

    doc = info.info(config)
    if args.format:
        from engine.cli.output import print_template

        print_template(args.format, doc, go_type="system.dockerInfo")
        return 0
    print(f"Client:\n Version:    {__version__}\n Context:    default\n Debug Mode: false\n\nServer:")
    sys.stdout.write("".join(line + "\n" for line in _server_info_lines(doc)) + "\n")
    sys.stdout.flush()
    for warning in doc.get("Warnings") or ():
        print(warning, file=sys.stderr)
    return 0


def _server_info_lines(doc: dict) -> list[str]:
    """info.go's prettyPrintServerInfo, line by line (Go's Println: operands joined by a space;
    fprintlnNonEmpty leaves out an empty value's line). Swarm is inactive here: no swarm lines."""
    from engine.util.units import binary_size

    def go(value: object) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    lines: list[str] = []

    def line(label: str, *values: object, non_empty: bool = False) -> None:
        if non_empty and all(go(v) == "" for v in values):
            return
        lines.append(" ".join([label, *(go(v) for v in values)]))

    line(" Containers:", doc["Containers"])
    line("  Running:", doc["ContainersRunning"])
    line("  Paused:", doc["ContainersPaused"])
    line("  Stopped:", doc["ContainersStopped"])
    line(" Images:", doc["Images"])
    line(" Server Version:", doc.get("ServerVersion", ""), non_empty=True)
    line(" Storage Driver:", doc.get("Driver", ""), non_empty=True)
    lines += [f"  {key}: {value}" for key, value in doc.get("DriverStatus") or ()]
    lines += [f" {key}: {value}" for key, value in doc.get("SystemStatus") or ()]
    line(" Logging Driver:", doc.get("LoggingDriver", ""), non_empty=True)
    line(" Cgroup Driver:", doc.get("CgroupDriver", ""), non_empty=True)
    line(" Cgroup Version:", doc.get("CgroupVersion", ""), non_empty=True)
    plugins = doc.get("Plugins") or {}
    line(" Plugins:")
    line("  Volume:", " ".join(plugins.get("Volume") or ()))
    line("  Network:", " ".join(plugins.get("Network") or ()))
    if plugins.get("Authorization"):
        line("  Authorization:", " ".join(plugins["Authorization"]))
    line("  Log:", " ".join(plugins.get("Log") or ()))
    line(" Swarm:", (doc.get("Swarm") or {}).get("LocalNodeState", ""))
    if doc.get("Runtimes"):
        line(" Runtimes:", " ".join(doc["Runtimes"]))
        line(" Default Runtime:", doc.get("DefaultRuntime", ""))
    if doc.get("OSType") == "linux":
        line(" Init Binary:", doc.get("InitBinary", ""))
        for name, key in (("containerd", "ContainerdCommit"), ("runc", "RuncCommit"), ("init", "InitCommit")):
            line(f" {name} version:", (doc.get(key) or {}).get("ID", ""))
        lines += _security_option_lines(doc.get("SecurityOptions") or ())
    line(" Kernel Version:", doc.get("KernelVersion", ""), non_empty=True)
    line(" Operating System:", doc.get("OperatingSystem", ""), non_empty=True)
    line(" OSType:", doc.get("OSType", ""), non_empty=True)
    line(" Architecture:", doc.get("Architecture", ""), non_empty=True)
    line(" CPUs:", doc.get("NCPU", 0))
    line(" Total Memory:", binary_size(doc.get("MemTotal", 0)))
    line(" Name:", doc.get("Name", ""), non_empty=True)
    line(" ID:", doc.get("ID", ""), non_empty=True)
    line(" Docker Root Dir:", doc.get("DockerRootDir", ""))
    line(" Debug Mode:", bool(doc.get("Debug")))
    for label, key in ((" HTTP Proxy:", "HttpProxy"), (" HTTPS Proxy:", "HttpsProxy"), (" No Proxy:", "NoProxy")):
        line(label, doc.get(key, ""), non_empty=True)
    if doc.get("Labels"):
        line(" Labels:")
        lines += [f"  {label}" for label in doc["Labels"]]
    line(" Experimental:", bool(doc.get("ExperimentalBuild")))
    registry = doc.get("RegistryConfig") or {}
    if registry.get("InsecureRegistryCIDRs") or registry.get("IndexConfigs"):
        line(" Insecure Registries:")
        lines += [f"  {name}" for name, index in (registry.get("IndexConfigs") or {}).items() if not index.get("Secure")]
        lines += [f"  {cidr}" for cidr in registry.get("InsecureRegistryCIDRs") or ()]
    if registry.get("Mirrors"):
        line(" Registry Mirrors:")
        lines += [f"  {mirror}" for mirror in registry["Mirrors"]]
    line(" Live Restore Enabled:", bool(doc.get("LiveRestoreEnabled")))
    return lines


def _security_option_lines(options: list[str] | tuple[str, ...]) -> list[str]:
    """system.DecodeSecurityOptions, as info prints them: each name, then its profile."""
    lines = [" Security Options:"] if options else []
    for option in options:
        fields = dict(pair.partition("=")[::2] for pair in option.split(","))
        lines.append("  " + fields.get("name", ""))
        if "profile" in fields:
            lines.append("   Profile: " + fields["profile"])
    return lines


def cmd_version(args: argparse.Namespace, config: EngineConfig) -> int:  # noqa: ARG001
    """docker version: its template (version.go's defaultVersionTemplate, or --format) over the
    versionInfo struct (Go's field names: `{{.Server.APIVersion}}`), through its tabwriter."""
    from engine.api import info
    from engine.cli.formatters import DEFAULT_VERSION_TEMPLATE, VERSION_FUNCS, version_info
    from engine.cli.output import print_template

    print_template(args.format or DEFAULT_VERSION_TEMPLATE, version_info(info.client_version(), info.version()), name="version",
                   funcs=VERSION_FUNCS, aligned=True)
    return 0
