"""Container and volume verbs, with Docker's flags and output: run, create, start, stop, ps, logs, exec...

Handlers stay thin: flags become `RunOptions`, the work is in the engine.container modules, and the
attached-run relay (stdout/stderr apart, stdin, signals, a raw tty with its window size) is here.
Every handler that touches containers calls `reconcile` first: there is no daemon to notice
a dead monitor, so each CLI start does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time

from engine.cli.output import human_duration, print_formatted
from engine.config import EngineConfig
from engine.errors import DockuiError, InvalidArgument, NotFound
from engine.util.units import parse_size

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any

def _size_or_unlimited(text: str) -> int:
    return -1 if text.strip() == "-1" else parse_size(text)


def _flag_size(text: str) -> int:
    """parse_size for argparse: a bad value is a usage error (125) naming the flag, not a traceback."""
    try:
        return parse_size(text)
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _flag_size_or_unlimited(text: str) -> int:
    try:
        return _size_or_unlimited(text)
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _labels(items: list[str]) -> dict[str, str]:
    labels = {}
    for item in items:
        key, _, value = item.partition("=")
        labels[key] = value
    return labels


# ------------------------------------------------------------------------------------------ registration


def register(subparsers: argparse._SubParsersAction, verb: str | None = None) -> None:
    """Add the container verbs (top level and under `container`) and `volume`.

    Given the verb being run, and it is one of the top-level verbs here, only its stub is added
    (`dockui run` needs no other: ~4 ms less on every start).

    Each verb's real parser is built only when it is used (argparse costs ~10 ms for all of these
    verbs, on every CLI start): the top-level verbs are stubs whose one argument takes the rest
    and parses it at once with the verb's own parser (so usage errors still come from parse_args),
    and the `container` group's parser is built when that group is used.
    """
    if verb is not None:
        _register_verbs(subparsers, top_level=True, only=_STUBS, stub=verb)
        if verb in subparsers.choices:
            return
    _register_verbs(subparsers, top_level=True, only=_STUBS)
    group = subparsers.add_parser("container", help="Manage containers (ls, rm, inspect, prune, ...)", add_help=False)
    group.add_argument("-h", "--help", action=_ContainerHelp, nargs=0, help="show this help message and exit")
    group.add_argument("rest", nargs=argparse.REMAINDER, help="COMMAND [ARG...]")
    group.set_defaults(handler=cmd_container, container_prog=group.prog)
    _register_volume(subparsers)


_STUBS = "*stubs*"


class _LazyVerb(argparse.Action):
    """A stub verb's only argument: parse everything after the verb with the verb's real parser."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None) -> None:
        real = _verb_parser(parser.prog, self.dest.removeprefix("lazy_"))
        for key, value in vars(real.parse_args(values)).items():
            setattr(namespace, key, value)


class _Ignored:
    """Stands in for the parsers of verbs not being built: their arguments are not added."""

    def add_argument(self, *args: Any, **kwargs: Any) -> None:
        return None

    def set_defaults(self, **kwargs: Any) -> None:
        return None


def _verb_parser(prog: str, verb: str) -> argparse.ArgumentParser:
    """The full parser of one top-level verb (prog "dockui run")."""
    from engine.cli import ArgumentParser

    holder = ArgumentParser(prog=prog.rsplit(" ", 1)[0])
    sub = holder.add_subparsers(dest="verb_parsed", parser_class=ArgumentParser)
    _register_verbs(sub, top_level=True, only=verb)
    return sub.choices[verb]


def _container_parser(prog: str) -> argparse.ArgumentParser:
    from engine.cli import ArgumentParser

    parser = ArgumentParser(prog=prog, description="Manage containers")
    inner = parser.add_subparsers(dest="container_verb", metavar="COMMAND", parser_class=ArgumentParser)
    inner.required = True
    _register_verbs(inner, top_level=False)
    return parser


class _ContainerHelp(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None) -> None:
        _container_parser(parser.prog).print_help()
        parser.exit()


def cmd_container(args: argparse.Namespace, config: EngineConfig) -> int:
    """`dockui container VERB ...`: parse the rest with the group's own parser, then dispatch."""
    sub_args = _container_parser(args.container_prog).parse_args(args.rest)
    return sub_args.handler(sub_args, config)


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--interactive", action="store_true", help="Keep STDIN open")
    p.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.add_argument("--rm", action="store_true", help="Remove the container when it exits")
    p.add_argument("--name", help="Assign a name to the container")
    p.add_argument("-h", "--hostname", help="Container host name")
    p.add_argument("-e", "--env", action="append", default=[], help="Set environment variables")
    p.add_argument("--env-file", action="append", default=[], help="Read in a file of environment variables")
    p.add_argument("-w", "--workdir", help="Working directory inside the container")
    p.add_argument("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])")
    p.add_argument("--entrypoint", help="Overwrite the default ENTRYPOINT of the image")
    p.add_argument("-l", "--label", action="append", default=[], help="Set meta data on a container")
    p.add_argument("-v", "--volume", action="append", default=[], help="Bind mount a volume")
    p.add_argument("--mount", action="append", default=[], dest="mount_flags",
                   help="Attach a filesystem mount: type=bind|volume|tmpfs,source=...,target=...[,readonly]")
    p.add_argument("--tmpfs", action="append", default=[], help="Mount a tmpfs directory (DEST[:OPTIONS])")
    p.add_argument("--log-driver", default="json-file", help="Logging driver for the container (json-file)")
    p.add_argument("--log-opt", action="append", default=[], help="Log driver options: max-size=SIZE, max-file=N")
    p.add_argument("-m", "--memory", type=_flag_size, help="Memory limit")
    p.add_argument("--memory-swap", type=_flag_size_or_unlimited, help="Swap limit equal to memory plus swap: -1 unlimited")
    p.add_argument("--cpus", type=float, help="Number of CPUs")
    p.add_argument("-c", "--cpu-shares", type=int, help="CPU shares (relative weight)")
    p.add_argument("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)")
    p.add_argument("--pids-limit", type=int, help="Tune container pids limit (-1 for unlimited)")
    p.add_argument("--blkio-weight", type=int, help="Block IO (relative weight), between 10 and 1000")
    p.add_argument("--shm-size", type=_flag_size, help="Size of /dev/shm")
    p.add_argument("--cap-add", action="append", default=[], help="Add Linux capabilities")
    p.add_argument("--cap-drop", action="append", default=[], help="Drop Linux capabilities")
    p.add_argument("--privileged", action="store_true", help="Give extended privileges to this container")
    p.add_argument("--read-only", action="store_true", help="Mount the container's root filesystem as read only")
    p.add_argument("--restart", default="no", help="Restart policy: no, on-failure[:N], always, unless-stopped")
    p.add_argument("--network", "--net", default="bridge", help="Connect a container to a network")
    p.add_argument("--ip", help="IPv4 address (e.g., 172.30.100.104)")
    p.add_argument("--network-alias", "--net-alias", action="append", default=[], help="Add network-scoped alias for the container")
    p.add_argument("-p", "--publish", action="append", default=[], help="Publish a container's port(s) to the host")
    p.add_argument("-P", "--publish-all", action="store_true", help="Publish all exposed ports to random ports")
    p.add_argument("--link", action="append", default=[], help="Add link to another container")
    p.add_argument("--dns", action="append", default=[], help="Set custom DNS servers")
    p.add_argument("--dns-search", action="append", default=[], help="Set custom DNS search domains")
    p.add_argument("--dns-option", action="append", default=[], help="Set DNS options")
    p.add_argument("--add-host", action="append", default=[], help="Add a custom host-to-IP mapping (host:ip)")
    p.add_argument("--stop-signal", help="Signal to stop the container")
    p.add_argument("--stop-timeout", type=int, help="Timeout (in seconds) to stop a container")
    p.add_argument("--platform", help="Set platform if server is multi-platform capable")
    p.add_argument("--pull", default="missing", choices=["missing", "always", "never"], help="Pull image before running")
    p.add_argument("--security-opt", action="append", default=[],
                   help="Security options: no-new-privileges, seccomp=unconfined, label=disable")
    p.add_argument("--health-cmd", help="Command to run to check health")
    p.add_argument("--health-interval", help="Time between running the check (ms|s|m|h) (default 0s)")
    p.add_argument("--health-timeout", help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
    p.add_argument("--health-start-period", help="Start period for the container to initialize before starting "
                   "health-retries countdown (ms|s|m|h) (default 0s)")
    p.add_argument("--health-retries", type=int, help="Consecutive failures needed to report unhealthy")
    p.add_argument("--no-healthcheck", action="store_true", help="Disable any container-specified HEALTHCHECK")
    p.add_argument("--init", action="store_true", help="Run an init inside the container that forwards signals and reaps processes")
    p.add_argument("--ulimit", action="append", default=[], help="Ulimit options (NAME=SOFT[:HARD])")
    p.add_argument("--device", action="append", default=[], help="Add a host device to the container (HOST[:CONTAINER][:rwm])")
    p.add_argument("--group-add", action="append", default=[], help="Add additional groups to join")
    p.add_argument("--sysctl", action="append", default=[], help="Sysctl options (namespaced ones: net.*, kernel.shm*, ...)")
    p.add_argument("--cidfile", default="", help="Write the container ID to the file")
    p.add_argument("--volumes-from", action="append", default=[], help="Mount volumes from the specified container(s)")
    p.add_argument("--expose", action="append", default=[], help="Expose a port or a range of ports")
    p.add_argument("--label-file", action="append", default=[], help="Read in a line delimited file of labels")
    p.add_argument("--oom-kill-disable", action="store_true", help="Disable OOM Killer")
    p.add_argument("--memory-reservation", type=_flag_size, help="Memory soft limit")
    p.add_argument("--cpu-period", type=int, help="Limit CPU CFS (Completely Fair Scheduler) period")
    p.add_argument("--cpu-quota", type=int, help="Limit CPU CFS (Completely Fair Scheduler) quota")
    p.add_argument("--ipc", default="", help="IPC mode to use (private, shareable, host, container:NAME)")
    p.add_argument("--pid", default="", help="PID namespace to use (host, container:NAME)")
    p.add_argument("--mac-address", default="", help="Container MAC address (e.g., 92:d0:c6:0a:29:33)")
    p.add_argument("image", help="IMAGE")
    p.add_argument("command", nargs=argparse.REMAINDER, help="COMMAND [ARG...]")


def _register_verbs(
    sub: argparse._SubParsersAction, top_level: bool, only: str | None = None, stub: str | None = None
) -> None:
    """Every verb (only=None), one verb's real parser (only=its name), or stubs (only=_STUBS: all of
    them, or the one named by `stub`)."""
    # run and create share one set of flags (argparse copies parents' actions cheaply).
    run_flags = None
    if only in (None, "run", "create"):
        run_flags = argparse.ArgumentParser(add_help=False)
        run_flags.add_argument("--help", action="help", help="show this help message and exit")
        _add_run_flags(run_flags)

    def add(name: str, handler: Any, help_text: str, aliases: tuple[str, ...] = ()) -> Any:
        if only == _STUBS:
            if stub is not None and name != stub:
                return _Ignored()
            stub_parser = sub.add_parser(name, help=help_text, aliases=list(aliases), add_help=False, prefix_chars="\0")
            stub_parser.add_argument(f"lazy_{name}", nargs=argparse.REMAINDER, action=_LazyVerb, help=argparse.SUPPRESS)
            return _Ignored()
        if only is not None and name != only:
            return _Ignored()
        with_flags = name in ("run", "create")
        p = sub.add_parser(name, help=help_text, aliases=list(aliases), add_help=not with_flags,
                           parents=[run_flags] if with_flags else [])
        p.set_defaults(handler=handler)
        return p

    p = add("run", cmd_run, "Create and run a new container from an image")
    p.add_argument("-d", "--detach", action="store_true", help="Run container in background and print container ID")
    p.add_argument("-a", "--attach", action="append", default=[], help="Attach to STDIN, STDOUT or STDERR")
    p.add_argument("--sig-proxy", default="true", help="Proxy received signals to the process")
    add("create", cmd_create, "Create a new container")

    p = add("start", cmd_start, "Start one or more stopped containers")
    p.add_argument("-a", "--attach", action="store_true", help="Attach STDOUT/STDERR and forward signals")
    p.add_argument("-i", "--interactive", action="store_true", help="Attach container's STDIN")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = add("stop", cmd_stop, "Stop one or more running containers")
    p.add_argument("-t", "--time", "--timeout", type=int, dest="time", help="Seconds to wait before killing it")
    p.add_argument("-s", "--signal", help="Signal to send to the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = add("restart", cmd_restart, "Restart one or more containers")
    p.add_argument("-t", "--time", "--timeout", type=int, dest="time", help="Seconds to wait before killing it")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = add("kill", cmd_kill, "Kill one or more running containers")
    p.add_argument("-s", "--signal", default="KILL", help="Signal to send to the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    for name, handler, text in (
        ("pause", cmd_pause, "Pause all processes within one or more containers"),
        ("unpause", cmd_unpause, "Unpause all processes within one or more containers"),
        ("wait", cmd_wait, "Block until one or more containers stop, then print their exit codes"),
    ):
        p = add(name, handler, text)
        p.add_argument("containers", nargs="+", metavar="CONTAINER")
        if name == "wait":  # Docker's API conditions (engine.container.waiting)
            p.add_argument("--condition", default="not-running", choices=["not-running", "next-exit", "removed"],
                           help="What to wait for (default not-running)")
    p = add("rm", cmd_rm, "Remove one or more containers", aliases=("remove",) if not top_level else ())
    p.add_argument("-f", "--force", action="store_true", help="Force the removal of a running container (uses SIGKILL)")
    p.add_argument("-v", "--volumes", action="store_true", help="Remove anonymous volumes associated with the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = add("logs", cmd_logs, "Fetch the logs of a container")
    p.add_argument("-f", "--follow", action="store_true", help="Follow log output")
    p.add_argument("-n", "--tail", default="all", help="Number of lines to show from the end of the logs")
    p.add_argument("-t", "--timestamps", action="store_true", help="Show timestamps")
    p.add_argument("--since", help="Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)")
    p.add_argument("--until", help="Show logs before a timestamp or relative time")
    p.add_argument("container", metavar="CONTAINER")
    p = add("exec", cmd_exec, "Execute a command in a running container")
    p.add_argument("-d", "--detach", action="store_true", help="Detached mode: run command in the background")
    p.add_argument("-i", "--interactive", action="store_true", help="Keep STDIN open")
    p.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.add_argument("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])")
    p.add_argument("-w", "--workdir", help="Working directory inside the container")
    p.add_argument("-e", "--env", action="append", default=[], help="Set environment variables")
    p.add_argument("--privileged", action="store_true", help="Give extended privileges to the command")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")
    p = add("ps", cmd_ps, "List containers", aliases=("ls", "list") if not top_level else ())
    _add_ps_flags(p)
    p = add("inspect", cmd_inspect, "Return low-level information on containers (or images)")
    p.add_argument("-f", "--format", help="Format the output using a template ({{.State.Pid}}, {{json .Config}})")
    p.add_argument("--type", choices=["container", "image"], help="Only this type of object")
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes")
    p.add_argument("names", nargs="+", metavar="NAME|ID")
    p = add("top", cmd_top, "Display the running processes of a container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="[ps OPTIONS]")
    p = add("port", cmd_port, "List port mappings or a specific mapping for the container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("private_port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")
    p = add("rename", cmd_rename, "Rename a container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("new_name", metavar="NEW_NAME")
    p = add("commit", cmd_commit, "Create a new image from a container's changes")
    p.add_argument("-a", "--author", default="", help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    p.add_argument("-m", "--message", default="", help="Commit message")
    p.add_argument("-c", "--change", action="append", default=[], help="Apply Dockerfile instruction to the created image")
    p.add_argument("-p", "--pause", default="true", choices=["true", "false"], help="Pause container during commit")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    p = add("attach", cmd_attach, "Attach local standard input, output, and error streams to a running container")
    p.add_argument("--no-stdin", action="store_true", help="Do not attach STDIN")
    p.add_argument("--sig-proxy", default="true", help="Proxy all received signals to the process")
    p.add_argument("container", metavar="CONTAINER")
    p = add("export", cmd_export, "Export a container's filesystem as a tar archive")
    p.add_argument("-o", "--output", help="Write to a file, instead of STDOUT")
    p.add_argument("container", metavar="CONTAINER")
    p = add("cp", cmd_cp, "Copy files/folders between a container and the local filesystem")
    p.add_argument("-a", "--archive", action="store_true", help="Archive mode (copy all uid/gid information)")
    p.add_argument("-L", "--follow-link", action="store_true", help="Always follow symbol link in SRC_PATH")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress progress output")
    p.add_argument("source", metavar="SRC", help="CONTAINER:SRC_PATH, a local path, or - (a tar on stdin)")
    p.add_argument("destination", metavar="DEST", help="CONTAINER:DEST_PATH, a local path, or - (a tar on stdout)")
    p = add("update", cmd_update, "Update configuration of one or more containers")
    p.add_argument("-m", "--memory", type=_flag_size, help="Memory limit")
    p.add_argument("--memory-swap", type=_flag_size_or_unlimited, help="Swap limit equal to memory plus swap: -1 unlimited")
    p.add_argument("--memory-reservation", type=_flag_size, help="Memory soft limit")
    p.add_argument("--cpus", type=float, help="Number of CPUs")
    p.add_argument("-c", "--cpu-shares", type=int, help="CPU shares (relative weight)")
    p.add_argument("--cpu-period", type=int, help="Limit CPU CFS (Completely Fair Scheduler) period")
    p.add_argument("--cpu-quota", type=int, help="Limit CPU CFS (Completely Fair Scheduler) quota")
    p.add_argument("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)")
    p.add_argument("--pids-limit", type=int, help="Tune container pids limit (-1 for unlimited)")
    p.add_argument("--blkio-weight", type=int, help="Block IO (relative weight), between 10 and 1000")
    p.add_argument("--restart", help="Restart policy to apply when a container exits")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = add("diff", cmd_diff, "Inspect changes to files or directories on a container's filesystem")
    p.add_argument("container", metavar="CONTAINER")
    if not top_level:
        p = add("stats", cmd_container_stats, "Display a live stream of container(s) resource usage statistics")
        from engine.cli.stats_cmds import add_stats_flags

        add_stats_flags(p)
        p = add("prune", cmd_prune, "Remove all stopped containers")
        p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")


def _add_ps_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="Show all containers (default shows just running)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display container IDs")
    p.add_argument("-f", "--filter", action="append", default=[], help="Filter output based on conditions provided")
    p.add_argument("--format", help="'table' or 'json'")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-n", "--last", type=int, default=-1, help="Show n last created containers (includes all states)")
    p.add_argument("-l", "--latest", action="store_true", help="Show the latest created container (includes all states)")
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes")


def _register_volume(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("volume", help="Manage volumes")
    sub = group.add_subparsers(dest="volume_verb", metavar="COMMAND", parser_class=type(group))
    sub.required = True
    p = sub.add_parser("create", help="Create a volume")
    p.add_argument("name", nargs="?")
    p.add_argument("-d", "--driver", default="local")
    p.add_argument("--label", action="append", default=[])
    p.set_defaults(handler=cmd_volume_create)
    p = sub.add_parser("ls", aliases=["list"], help="List volumes")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--format", help="'json', or a Go template ({{.Name}}, 'table {{.Name}}\\t{{.Mountpoint}}')")
    p.set_defaults(handler=cmd_volume_ls)
    p = sub.add_parser("rm", aliases=["remove"], help="Remove one or more volumes")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("names", nargs="+", metavar="VOLUME")
    p.set_defaults(handler=cmd_volume_rm)
    p = sub.add_parser("inspect", help="Display detailed information on one or more volumes")
    p.add_argument("-f", "--format", help="Format the output using a Go template ({{.Mountpoint}})")
    p.add_argument("names", nargs="+", metavar="VOLUME")
    p.set_defaults(handler=cmd_volume_inspect)
    p = sub.add_parser("prune", help="Remove unused local volumes")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-f", "--force", action="store_true")
    p.set_defaults(handler=cmd_volume_prune)


# ------------------------------------------------------------------------------------------ helpers


def _engine(config: EngineConfig, what: str) -> None:
    """Root check and the reconcile every container verb starts with."""
    from engine.cli import require_root
    from engine.container.reconcile import reconcile

    require_root(what)
    reconcile(config)


def _for_each(refs: list[str], action: Any) -> int:
    """Docker's multi-container verbs: go on after an error, print each failure, exit 1 if any."""
    status = 0
    for ref in refs:
        try:
            action(ref)
        except DockuiError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            status = 1
    return status


def _run_options(args: argparse.Namespace, image_id: str = "") -> Any:
    from engine.container.health import from_flags as health_from_flags
    from engine.container.options import RunOptions

    if args.entrypoint == "" and not args.command:  # the docker CLI sends Entrypoint [""]: the image's Cmd goes too
        raise InvalidArgument("No command specified")
    return RunOptions(
        image=args.image,
        image_id=image_id,
        command=list(args.command),
        name=args.name,
        hostname=args.hostname,
        env=args.env,
        env_files=args.env_file,
        workdir=args.workdir,
        user=args.user,
        entrypoint=args.entrypoint,
        labels=_labels(_label_file_labels(args.label_file) + args.label),
        volumes=args.volume,
        mount_flags=args.mount_flags,
        tmpfs=args.tmpfs,
        log_driver=args.log_driver,
        log_opts=args.log_opt,
        memory=args.memory,
        memory_swap=args.memory_swap,
        cpus=args.cpus,
        cpu_shares=args.cpu_shares,
        cpuset_cpus=args.cpuset_cpus,
        pids_limit=args.pids_limit,
        blkio_weight=args.blkio_weight,
        shm_size=args.shm_size,
        cap_add=args.cap_add,
        cap_drop=args.cap_drop,
        privileged=args.privileged,
        read_only=args.read_only,
        restart=args.restart,
        network=args.network,
        ip=args.ip,
        network_aliases=args.network_alias,
        publish=args.publish,
        publish_all=args.publish_all,
        links=args.link,
        dns=args.dns,
        dns_search=args.dns_search,
        dns_options=args.dns_option,
        add_hosts=args.add_host,
        stop_signal=args.stop_signal,
        stop_timeout=args.stop_timeout,
        platform=args.platform,
        tty=args.tty,
        interactive=args.interactive,
        auto_remove=args.rm,
        security_opt=args.security_opt,
        healthcheck=health_from_flags(args.health_cmd, args.health_interval, args.health_timeout,
                                      args.health_start_period, args.health_retries, args.no_healthcheck),
        **_sandbox_flags(args),
    )


def _sandbox_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The flags read into Docker's HostConfig values (engine.container.options has the rules)."""
    from engine.container import options

    if args.cidfile and os.path.exists(args.cidfile):
        raise InvalidArgument(f"Container ID file found, make sure the other container isn't running or delete {args.cidfile}")
    return {
        "init": args.init,
        "ulimits": [options.parse_ulimit(u) for u in args.ulimit],
        "devices": [options.parse_device(d) for d in args.device],
        "group_add": list(args.group_add),
        "sysctls": dict(options.parse_sysctl(item) for item in args.sysctl),
        "cidfile": args.cidfile,
        "volumes_from": list(args.volumes_from),
        "expose": list(args.expose),
        "memory_reservation": args.memory_reservation,
        "oom_kill_disable": args.oom_kill_disable,
        "cpu_period": args.cpu_period,
        "cpu_quota": args.cpu_quota,
        "ipc": args.ipc,
        "pid": args.pid,
        "mac_address": args.mac_address,
    }


def _label_file_labels(paths: list[str]) -> list[str]:
    """`--label-file`: KEY=VALUE lines (blank lines and # comments skipped), before --label's."""
    labels = []
    for path in paths:
        try:
            with open(path) as f:
                labels += [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
        except OSError as exc:
            raise InvalidArgument(f"open {path}: {exc.strerror}") from None
    return labels


def _write_cidfile(args: argparse.Namespace, container_id: str) -> None:
    if args.cidfile:
        with open(args.cidfile, "x") as f:
            f.write(container_id)


def _local_image_for(record: Any, ref: str, platform: str | None) -> str:
    """The stored image's ID; NotFound (so --pull missing pulls the right one, as Docker does) when
    --platform names another platform than the stored image's."""
    if platform:
        from engine.image.manifest import config_platform, parse_platform

        wanted = parse_platform(platform).normalised()
        found = config_platform(record.config if isinstance(record.config, dict) else {}).normalised()
        if (found.os, found.architecture, found.variant) != (wanted.os, wanted.architecture, wanted.variant):
            raise NotFound(f"image with reference {ref} was found but does not match the specified platform: "
                           f"wanted {wanted}, actual: {found}")
    return record.id


def ensure_image(config: EngineConfig, ref: str, policy: str = "missing", platform: str | None = None) -> str:
    """Docker's `--pull`: look in the store, pull when absent (or always), with progress on stderr.

    Returns the image's ID: the container is made from that image even if the tag moves meanwhile."""
    from engine.image.store import ImageStore

    if policy != "always":
        try:
            return _local_image_for(ImageStore(config).resolve(ref), ref, platform)
        except NotFound:
            if policy == "never":
                raise
        print(f"Unable to find image '{ref}' locally", file=sys.stderr)
    from engine.image.pull import previous_image_id, pull_image, pull_status
    from engine.image.reference import parse_reference

    previous = previous_image_id(config, ref)
    last: dict[str | None, str] = {}

    def progress(event: Any) -> None:
        if event.layer is None:
            print(event.status, file=sys.stderr)
        elif last.get(event.layer) != event.status:
            last[event.layer] = event.status
            print(f"{event.layer}: {event.status}", file=sys.stderr)

    record = pull_image(config, ref, platform=platform, progress=progress)
    print(pull_status(parse_reference(ref), previous, record), file=sys.stderr)
    return record.id


# ------------------------------------------------------------------------------------------ run/create/start


def cmd_create(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.create import create

    _engine(config, "create")
    image_id = ensure_image(config, args.image, args.pull, args.platform)
    record = create(config, _run_options(args, image_id))
    _write_cidfile(args, record.id)
    print(record.id)
    return 0


def cmd_run(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.cli import require_root
    from engine.container.create import create
    from engine.container.reconcile import reconcile
    from engine.container.start import prepare_monitor, start

    require_root("run")
    if args.detach and args.rm and args.restart not in ("no", ""):
        raise InvalidArgument("Conflicting options: --restart and --rm")
    streams = _attach_streams(args.attach)
    if args.detach and streams is not None:
        raise InvalidArgument("Conflicting options: -a and -d")
    # The monitor is forked first: it loads its modules and reconciles on the other core while
    # we resolve the image and write the record (see PreparedMonitor).
    prepared = prepare_monitor(attach=not args.detach, reconcile_config=config, network=args.network)
    try:
        if prepared is None:
            reconcile(config)
        image_id = ensure_image(config, args.image, args.pull, args.platform)
        record = create(config, _run_options(args, image_id))
        _write_cidfile(args, record.id)
        if args.detach:
            start(config, record.id, interactive=args.interactive, prepared=prepared)
            print(record.id)
            _exit_now(0)
            return 0
        tty = args.tty and os.isatty(0)
        winsize = None
        if tty:
            size = os.get_terminal_size(0)
            winsize = (size.lines, size.columns)
        result = start(config, record.id, attach=True, interactive=args.interactive, winsize=winsize,
                               prepared=prepared)
    finally:
        if prepared is not None:
            prepared.discard()
    code = attach_session(config, result, interactive=args.interactive, tty=args.tty and tty,
                          proxy_signals=args.sig_proxy != "false", streams=streams)
    _exit_now(code)
    return code


def _attach_streams(values: list[str]) -> set[str] | None:
    """`run -a STREAM` (repeatable): the streams relayed; None (no -a) means all of them."""
    if not values:
        return None
    streams = {v.lower() for v in values}
    if not streams <= {"stdin", "stdout", "stderr"}:
        bad = sorted(streams - {"stdin", "stdout", "stderr"})[0]
        raise InvalidArgument(f"invalid argument \"{bad}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR")
    return streams


def _exit_now(code: int) -> None:
    """End the `dockui` process at once when the run is over (returns when it is not the command).

    The interpreter's teardown (every module and object of the engine freed one by one) takes
    ~15 ms after the container is gone and removed; nothing of ours is pending at that point
    (the monitor does the clean-up, no threads, no atexit work), so flush stdio and leave.
    Called in-process (tests, library use) it does nothing.
    """
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    is_command = (spec is not None and spec.name == "tui.launcher") or (
        getattr(getattr(main, "main", None), "__module__", "") == "tui.launcher")
    if not is_command:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def cmd_start(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.start import start
    from engine.container.state import find_container

    _engine(config, "start")
    if args.attach or args.interactive:
        if len(args.containers) > 1:
            raise InvalidArgument("you cannot start and attach multiple containers at once")
        record = find_container(config, args.containers[0])
        interactive = args.interactive and bool(record.config.get("OpenStdin"))
        winsize = None
        if record.config.get("Tty") and os.isatty(0):
            size = os.get_terminal_size(0)
            winsize = (size.lines, size.columns)
        result = start(config, record.id, attach=True, interactive=interactive, winsize=winsize)
        if result.attach is None:
            return 0
        return attach_session(config, result, interactive=interactive, tty=bool(record.config.get("Tty")) and os.isatty(0))

    def one(ref: str) -> None:
        start(config, ref)
        print(ref)

    return _for_each(args.containers, one)


def attach_session(
    config: EngineConfig, result: Any, interactive: bool, tty: bool, proxy_signals: bool = True,
    streams: set[str] | None = None,
) -> int:
    """Relay between our stdio and the monitor until the container exits; its exit code.

    `streams` (`run -a`): only these of stdin/stdout/stderr are relayed (None: all of them); what
    is not is still logged by the monitor, as Docker does."""
    session = _AttachedSession(result, tty, proxy_signals, streams)
    try:
        exit_code = session.relay(interactive and (streams is None or "stdin" in streams))
    finally:
        session.restore()
    if exit_code is None:  # the monitor died: the record (after reconcile) has the truth
        from engine.container.lifecycle import wait

        try:
            exit_code = wait(config, result.record.id)
        except NotFound:
            exit_code = 125
    return exit_code


class _AttachedSession:
    """Our side of an attached container: our signals forwarded to it (with a tty: only SIGTERM and
    SIGHUP, and window sizes), our stdin sent as frames, its output frames written to our
    stdout/stderr. `restore` puts the terminal and the signal handlers back."""

    def __init__(self, result: Any, tty: bool, proxy_signals: bool, streams: set[str] | None) -> None:
        from engine.container import monitor

        self.monitor = monitor
        self.relay_out = streams is None or "stdout" in streams
        self.relay_err = streams is None or "stderr" in streams
        self.sock = result.attach
        self.record = result.record
        self.reader = monitor.FrameReader()
        self.wake_r, self.wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self.pending: list[int] = []
        self.old_handlers: dict[int, Any] = {}
        self.saved_tty = None
        forwarded = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2]
        if tty:
            forwarded = [signal.SIGTERM, signal.SIGHUP]
        if proxy_signals or tty:
            for number in forwarded:
                self.old_handlers[number] = signal.signal(number, self._on_signal)
        if tty:
            import termios
            import tty as tty_mod

            self.saved_tty = termios.tcgetattr(0)
            tty_mod.setraw(0)
            self.old_handlers[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, self._on_signal)
            self.pending.append(signal.SIGWINCH)
            os.write(self.wake_w, b"s")

    def _on_signal(self, number: int, _frame: Any) -> None:
        self.pending.append(number)
        try:
            os.write(self.wake_w, b"s")
        except OSError:
            pass

    def send(self, kind: int, payload: bytes = b"") -> None:
        try:
            self.sock.sendall(self.monitor.frame(kind, payload))
        except OSError:
            pass

    def relay(self, stdin_open: bool) -> int | None:
        """Until the exit frame (its code) or the monitor's end of the socket closes (None)."""
        import select

        monitor = self.monitor
        while True:
            watched = [self.sock, self.wake_r] + ([0] if stdin_open else [])
            ready, _, _ = select.select(watched, [], [])
            if self.wake_r in ready:
                self._deliver_signals()
            if 0 in ready and stdin_open:
                data = os.read(0, 65536)
                if data:
                    self.send(monitor.FRAME_STDIN, data)
                else:
                    self.send(monitor.FRAME_STDIN_EOF)
                    stdin_open = False
            if self.sock in ready:
                data = self.sock.recv(65536)
                if not data:
                    return None
                exit_code = None
                for kind, payload in self.reader.feed(data):
                    if kind == monitor.FRAME_STDOUT:
                        if self.relay_out:
                            monitor.write_all(1, payload)
                    elif kind == monitor.FRAME_STDERR:
                        if self.relay_err:
                            monitor.write_all(2, payload)
                    elif kind == monitor.FRAME_EXIT:
                        exit_code = int.from_bytes(payload, "big", signed=True)
                if exit_code is not None:
                    return exit_code

    def _deliver_signals(self) -> None:
        """The signals caught since the last wake-up: a window size to the monitor, the others to
        the container's process."""
        from engine.container import state

        try:
            os.read(self.wake_r, 64)
        except OSError:
            pass
        while self.pending:
            number = self.pending.pop(0)
            if number == signal.SIGWINCH:
                size = os.get_terminal_size(0)
                self.send(self.monitor.FRAME_RESIZE, size.lines.to_bytes(2, "big") + size.columns.to_bytes(2, "big"))
            elif state.process_alive(self.record.pid, self.record.pid_start):
                try:
                    os.kill(self.record.pid, number)
                except ProcessLookupError:
                    pass

    def restore(self) -> None:
        if self.saved_tty is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, self.saved_tty)
        for number, handler in self.old_handlers.items():
            signal.signal(number, handler)
        self.sock.close()
        os.close(self.wake_r)
        os.close(self.wake_w)


# ------------------------------------------------------------------------------------------ simple verbs


def cmd_stop(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.lifecycle import stop

    _engine(config, "stop")
    if args.signal:
        from engine.image.imageconfig import parse_signal

        parse_signal(args.signal)

    def one(ref: str) -> None:
        stop(config, ref, args.time, args.signal)
        print(ref)

    return _for_each(args.containers, one)


def cmd_restart(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.lifecycle import restart

    _engine(config, "restart")

    def one(ref: str) -> None:
        restart(config, ref, args.time)
        print(ref)

    return _for_each(args.containers, one)


def cmd_kill(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.lifecycle import kill

    _engine(config, "kill")

    def one(ref: str) -> None:
        kill(config, ref, args.signal)
        print(ref)

    return _for_each(args.containers, one)


def cmd_pause(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.lifecycle import pause

    _engine(config, "pause")

    def one(ref: str) -> None:
        pause(config, ref)
        print(ref)

    return _for_each(args.containers, one)


def cmd_unpause(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.lifecycle import unpause

    _engine(config, "unpause")

    def one(ref: str) -> None:
        unpause(config, ref)
        print(ref)

    return _for_each(args.containers, one)


def cmd_wait(args: argparse.Namespace, config: EngineConfig) -> int:
    _engine(config, "wait")

    def one(ref: str) -> None:
        from engine.container.waiting import wait_for

        print(wait_for(config, ref, args.condition).status_code, flush=True)

    return _for_each(args.containers, one)


def cmd_rm(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.removal import remove

    _engine(config, "rm")

    def one(ref: str) -> None:
        remove(config, ref, force=args.force, volumes=args.volumes)
        print(ref)

    return _for_each(args.containers, one)


def cmd_commit(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.commit import commit
    from engine.image.changes import parse_changes

    _engine(config, "commit")
    record = commit(config, args.container, args.repository, message=args.message, author=args.author,
                    changes=parse_changes(args.change), pause=args.pause == "true")
    print(record.id)
    return 0


def cmd_attach(args: argparse.Namespace, config: EngineConfig) -> int:
    """`docker attach`: become the running container's attached client (its monitor takes one)."""
    import _socket

    from engine.container import monitor
    from engine.container.monitor.context import ATTACH_SOCKET
    from engine.container.start import StartResult
    from engine.container.state import find_container
    from engine.errors import Conflict

    _engine(config, "attach")
    record = find_container(config, args.container)
    if record.status == "paused":
        raise Conflict(f"You cannot attach to a paused container {record.name}, unpause it first")
    if record.status != "running":
        raise Conflict(f"You cannot attach to a stopped container {record.name}, start it first")
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    directory = os.open(record.dir(config), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    deadline = time.monotonic() + 2 * monitor.START_GRACE + 1  # a container just started: its listener comes
    try:  # through /proc/self/fd: a long engine root still fits a socket address
        while True:
            try:
                sock.connect(f"/proc/self/fd/{directory}/{ATTACH_SOCKET}")
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        greeting = b""
        while len(greeting) < 5 and (chunk := sock.recv(5 - len(greeting))):
            greeting += chunk
    except OSError as exc:
        sock.close()
        raise DockuiError(f"cannot attach to container {record.name}: {exc.strerror}") from None
    finally:
        os.close(directory)
    if greeting[:1] != bytes([monitor.FRAME_ATTACHED]):  # EOF at once: its monitor has a client
        sock.close()
        raise Conflict(f"container {record.name} already has an attached client")
    tty = bool(record.config.get("Tty")) and os.isatty(0)
    interactive = bool(record.config.get("OpenStdin")) and not args.no_stdin
    return attach_session(config, StartResult(record, sock), interactive=interactive, tty=tty,
                          proxy_signals=args.sig_proxy != "false")


def cmd_export(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.export import export

    _engine(config, "export")
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
    return _for_each([""], lambda _: _copy(args, config))


def _copy(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container import copy

    source, destination = copy.parse_target(args.source), copy.parse_target(args.destination)
    if (source.container is None) == (destination.container is None):
        raise InvalidArgument("copying between containers or between local paths is not supported: "
                              "one side must be CONTAINER:PATH, the other a local path or -")
    _engine(config, "cp")
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


def cmd_update(args: argparse.Namespace, config: EngineConfig) -> int:
    """docker update: the limits written live into a running container's cgroup, and the record."""
    from engine.container.update import Update, update

    change = Update(memory=args.memory, memory_swap=args.memory_swap, memory_reservation=args.memory_reservation,
                    cpus=args.cpus, cpu_shares=args.cpu_shares, cpu_period=args.cpu_period, cpu_quota=args.cpu_quota,
                    cpuset_cpus=args.cpuset_cpus, pids_limit=args.pids_limit, blkio_weight=args.blkio_weight,
                    restart=args.restart)
    if change.is_empty():
        raise InvalidArgument("you must provide one or more flags when using this command")
    _engine(config, "update")

    def one(ref: str) -> None:
        update(config, ref, change)
        print(ref)

    return _for_each(args.containers, one)


def cmd_diff(args: argparse.Namespace, config: EngineConfig) -> int:
    """docker diff: C (changed), A (added), D (deleted) paths of the container's writable layer
    (an error: status 1, as docker diff's)."""
    from engine.api import containers as api

    def one(ref: str) -> None:
        _engine(config, "diff")
        for change in api.changes(config, ref):
            print(f"{'CAD'[change.kind]} {change.path}")

    return _for_each([args.container], one)


def cmd_container_stats(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.cli.stats_cmds import run_stats

    return run_stats(args, config)


def cmd_rename(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.lifecycle import rename

    _engine(config, "rename")
    rename(config, args.container, args.new_name)
    return 0


def cmd_prune(args: argparse.Namespace, config: EngineConfig) -> int:  # noqa: ARG001
    from engine.container.removal import prune

    _engine(config, "container prune")
    removed = prune(config)
    print("Deleted Containers:")
    for cid in removed:
        print(cid)
    print()
    print("Total reclaimed space: 0B")
    return 0


# ------------------------------------------------------------------------------------------ logs


def cmd_logs(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container import logs, state

    _engine(config, "logs")
    record = state.find_container(config, args.container)
    path = str(record.log_path(config))
    tail = None if args.tail in ("all", "-1") else int(args.tail)
    since = logs.parse_since(args.since)
    until = logs.parse_since(args.until)
    entries, offset = logs.read_entries(path, tail, since)

    def emit(entry: Any) -> None:
        if until is not None and logs._entry_seconds(entry.time) > until:
            return
        data = entry.data
        if args.timestamps:
            data = entry.time.encode() + b" " + data
        fd = 2 if entry.stream == "stderr" else 1
        os.write(fd, data) if len(data) < 65536 else _write_big(fd, data)

    for entry in entries:
        emit(entry)
    if args.follow:

        def still_running() -> bool:
            try:
                return state.load(config, record.id).running
            except NotFound:
                return False

        try:
            for entry in logs.follow_entries(path, offset, still_running):
                emit(entry)
        except KeyboardInterrupt:
            return 0
    return 0


def _write_big(fd: int, data: bytes) -> None:
    from engine.container.monitor import write_all

    write_all(fd, data)


# ------------------------------------------------------------------------------------------ exec


def cmd_exec(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.exec import exec_command

    _engine(config, "exec")
    if not args.command:
        raise InvalidArgument("exec requires at least 2 arguments")
    tty = args.tty
    master = slave = None
    if tty:
        from engine.container.exec_io import open_container_pty
        from engine.container.state import find_container

        master, slave = open_container_pty(find_container(config, args.container).pid)
        if os.isatty(0):
            _copy_winsize(0, master)
        stdio = (slave, slave, slave)
        ours: tuple[int, ...] = (master,)
        theirs: tuple[int, ...] = (slave,)
    elif args.detach:
        stdio = (None, None, None)
        ours = theirs = ()
    else:
        # Pipes, never our own descriptors: a terminal or file handed to the container could be
        # read or reopened by whatever the command leaves running (docs/isolation.md).
        in_r, in_w = os.pipe2(os.O_CLOEXEC) if args.interactive else (None, None)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        stdio = (in_r, out_w, err_w)
        ours = tuple(fd for fd in (in_w, out_r, err_r) if fd is not None)
        theirs = tuple(fd for fd in stdio if fd is not None)
    try:
        pid = exec_command(
            config, args.container, args.command, env=_exec_env(args.env), workdir=args.workdir, user=args.user,
            tty=tty, stdio=stdio, privileged=args.privileged,
        )
    except BaseException:
        for fd in ours:
            os.close(fd)
        raise
    finally:
        for fd in theirs:
            os.close(fd)
    if args.detach:
        return 0
    if master is not None:
        _relay_pty(master, args.interactive)
    else:
        from engine.cli.relay import relay_exec_pipes

        relay_exec_pipes(pid, stdin_w=ours[0] if args.interactive else None, out_r=ours[-2], err_r=ours[-1])
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _exec_env(items: list[str]) -> list[str]:
    """`exec -e`: KEY=VALUE as given; a bare KEY takes our own value, or is left out when we have none (docker's)."""
    return [i if "=" in i else f"{i}={os.environ[i]}" for i in items if "=" in i or i in os.environ]


def _copy_winsize(source: int, target: int) -> None:
    import fcntl
    import termios

    fcntl.ioctl(target, termios.TIOCSWINSZ, fcntl.ioctl(source, termios.TIOCGWINSZ, bytes(8)))


def _relay_pty(master: int, interactive: bool) -> None:
    """Copy between our terminal and the exec's pty until the pty closes."""
    import select

    saved = None
    old_winch = None
    if os.isatty(0):  # raw, so the container's pty alone translates newlines (as docker does)
        import termios
        import tty as tty_mod

        saved = termios.tcgetattr(0)
        tty_mod.setraw(0)
        old_winch = signal.signal(signal.SIGWINCH, lambda *_: _copy_winsize(0, master))
    try:
        watched = [master] + ([0] if interactive else [])
        while True:
            ready, _, _ = select.select(watched, [], [])
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                os.write(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if not data:
                    watched.remove(0)
                    continue
                os.write(master, data)
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, saved)
            signal.signal(signal.SIGWINCH, old_winch)
        os.close(master)


# ------------------------------------------------------------------------------------------ ps




def status_text(record: Any, now: float | None = None) -> str:
    """Docker's STATUS column (engine.container.status, shared with the TUI)."""
    from engine.container.status import record_status_text

    return record_status_text(record, now)


def ports_text(record: Any) -> str:
    """Docker's PORTS column (engine.container.status, shared with the TUI)."""
    from engine.container.status import ports_text as text

    return text(record.network.get("Ports"))


def _command_text(record: Any, truncate: bool) -> str:
    from engine.container.status import command_text

    command = command_text(record)
    if truncate and len(command) > 20:
        command = command[:19] + "…"
    return f'"{command}"'


def _matches(record: Any, filters: list[str]) -> bool:
    groups: dict[str, list[str]] = {}
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidArgument(f"bad format of filter (expected name=value): {item}")
        groups.setdefault(key, []).append(value)
    for key, values in groups.items():
        if key == "status":
            ok = record.status in values
        elif key == "name":
            ok = any(re.search(v.lstrip("/"), record.name) for v in values)
        elif key == "id":
            ok = any(record.id.startswith(v) for v in values)
        elif key == "label":
            labels = record.config.get("Labels") or {}
            ok = all((k in labels and (not sep or labels[k] == v)) for k, sep, v in (x.partition("=") for x in values))
        elif key == "exited":
            ok = record.status == "exited" and str(record.exit_code) in values
        elif key == "ancestor":
            ok = record.image in values or record.image_id in values or any(record.image_id.startswith("sha256:" + v) for v in values)
        elif key == "network":
            ok = record.host_config.get("NetworkMode") in values
        elif key == "health":
            from engine.container import health

            ok = health.status_of(record.health) in [health.check_filter_value(v) for v in values]
        else:
            raise InvalidArgument(f"invalid filter '{key}'")
        if not ok:
            return False
    return True


def cmd_ps(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.state import list_containers

    if args.format and args.format.strip() not in ("table", "json") and not args.size:
        from engine.cli.formatters import empty_container_row
        from engine.cli.output import check_format

        check_format(args.format, empty_container_row())
    _engine(config, "ps")
    if args.quiet and not (args.filter or args.format or args.latest or args.size or args.last >= 0):
        return _ps_quiet(config, args)
    records = list_containers(config)
    if args.latest:
        records = records[:1]
    elif args.last >= 0:
        records = records[: args.last]
    elif not args.all and not any(f.startswith(("status=", "exited=")) for f in args.filter):  # docker: they imply -a
        records = [r for r in records if r.status in ("running", "paused", "restarting")]
    records = [r for r in records if _matches(r, args.filter)]
    if args.quiet and (not args.format or args.format.strip() in ("table", "json")):  # docker: a template wins over -q
        for r in records:
            print(r.id if args.no_trunc else r.short_id)
        return 0
    now = time.time()
    from engine.container.state import parse_rfc3339

    sizes = _ps_sizes(config, records) if args.size else {}
    if args.format and args.format.strip() != "table":
        return _print_ps_format(config, args, records, now, sizes)
    from engine.cli.output import print_table

    rows = [
        (
            r.id if args.no_trunc else r.short_id,
            r.image,
            _command_text(r, not args.no_trunc),
            human_duration(now - parse_rfc3339(r.created)) + " ago",
            status_text(r, now),
            ports_text(r),
            r.name,
            *([sizes[r.id]] if args.size else []),
        )
        for r in records
    ]
    headers = ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")
    print_table((*headers, "SIZE") if args.size else headers, rows)
    return 0


def _ps_quiet(config: EngineConfig, args: argparse.Namespace) -> int:
    """`ps -q` (`-a`) from the container index: IDs without reading every record; a running
    one's record is read to confirm it (the record is the truth)."""
    from engine.container.state import ACTIVE_STATUSES, list_entries, load
    from engine.errors import NotFound

    for entry in list_entries(config, () if args.all else ACTIVE_STATUSES):
        if not args.all:
            try:
                if load(config, entry.id).status not in ACTIVE_STATUSES:
                    continue
            except NotFound:
                continue
        print(entry.id if args.no_trunc else entry.id[:12])
    return 0


def _ps_sizes(config: EngineConfig, records: list[Any]) -> dict[str, str]:
    """`ps -s`: "<written> (virtual <written + image>)", in Docker's units, per container ID."""
    from engine.cli.output import human_size
    from engine.image.store import ImageStore

    store = ImageStore(config)
    image_sizes: dict[str, int] = {}
    result = {}
    for r in records:
        written, virtual = _container_sizes(store, r, image_sizes)
        result[r.id] = f"{human_size(written)} (virtual {human_size(virtual)})"
    return result


def _container_sizes(store: Any, record: Any, image_sizes: dict[str, int]) -> tuple[int, int]:
    """(bytes the container wrote, that plus its image): Docker's SizeRw and SizeRootFs.
    `image_sizes` caches image sizes across containers (an image removed meanwhile counts 0)."""
    if record.image_id not in image_sizes:
        try:
            image_sizes[record.image_id] = store.resolve(record.image_id).size
        except NotFound:
            image_sizes[record.image_id] = 0
    written = store.rw_layer_size(record.id)
    return written, written + image_sizes[record.image_id]


def _print_ps_format(config: EngineConfig, args: argparse.Namespace, records: list[Any], now: float,
                     sizes: dict[str, str]) -> int:
    """`ps --format`: `json` (docker's `{{json .}}` per container) or a Go template (`table ...` too)."""
    from engine.cli.formatters import CONTAINER_HEADERS, container_row
    from engine.cli.output import render_format
    from engine.container.state import parse_rfc3339
    from engine.image.store import ImageStore
    from engine.util.gofmt import go_json

    image_sizes: dict[str, int] = {}

    def size_of(record: Any) -> str:  # computed only if the template reads .Size, as docker asks for it
        if record.id in sizes:
            return sizes[record.id]
        from engine.cli.output import human_size

        written, virtual = _container_sizes(ImageStore(config), record, image_sizes)
        return f"{human_size(written)} (virtual {human_size(virtual)})" if virtual else human_size(written)

    rows = [
        container_row(r, trunc=not args.no_trunc, running_for=human_duration(now - parse_rfc3339(r.created)) + " ago",
                      status=status_text(r, now), ports=ports_text(r), size=lambda r=r: size_of(r))
        for r in records
    ]
    if args.format.strip() == "json":
        sys.stdout.write("".join(go_json(row.template_json()) + "\n" for row in rows))
    else:
        sys.stdout.write(render_format(args.format, rows, CONTAINER_HEADERS))
    return 0


# ------------------------------------------------------------------------------------------ inspect, top, port


def cmd_inspect(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container import state
    from engine.container.inspect import inspect

    _engine(config, "inspect")
    results = []
    status = 0
    for name in args.names:
        obj = None
        if args.type != "image":
            try:
                record = state.find_container(config, name)
                obj = inspect(config, record)
                if args.size:  # Docker's --size: what the container wrote, and that plus its image
                    from engine.image.store import ImageStore

                    obj["SizeRw"], obj["SizeRootFs"] = _container_sizes(ImageStore(config), record, {})
            except NotFound:
                obj = None
        if obj is None and args.type != "container":
            obj = _image_inspect(config, name)
        if obj is None:
            print(f"Error: No such object: {name}", file=sys.stderr)
            status = 1
            continue
        results.append(obj)
    return max(status, print_formatted(results, args.format))


def _image_inspect(config: EngineConfig, ref: str) -> dict[str, Any] | None:
    """`inspect` falls back to images, as docker's does (the store's `docker image inspect` object)."""
    from engine.image.store import ImageStore

    try:
        return ImageStore(config).inspect(ref)
    except DockuiError:
        return None


def cmd_top(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.cli.output import print_table
    from engine.container.inspect import top

    _engine(config, "top")
    headers, rows = top(config, args.container, args.ps_args or None)
    print_table(headers, rows)
    return 0


def cmd_port(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.state import find_container

    _engine(config, "port")
    record = find_container(config, args.container)
    ports = record.network.get("Ports") or {}
    wanted = args.private_port
    if wanted and "/" not in wanted:
        wanted += "/tcp"
    found = False
    for port, bindings in ports.items():
        if wanted and port != wanted:
            continue
        for b in bindings or []:
            found = True
            host_ip = b.get("HostIp") or "0.0.0.0"
            print(f"{host_ip}:{b.get('HostPort')}" if wanted else f"{port} -> {host_ip}:{b.get('HostPort')}")
    if wanted and not found:
        raise NotFound(f"No public port '{wanted}' published for {record.name}")
    return 0


# ------------------------------------------------------------------------------------------ volumes


def cmd_volume_create(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.volumes import create_volume

    if args.driver != "local":
        raise InvalidArgument(f"volume driver {args.driver!r} is not supported (only local)")
    volume = create_volume(config, args.name, _labels(args.label))
    print(volume.name)
    return 0


def cmd_volume_ls(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.cli.output import print_table
    from engine.container.volumes import list_volumes

    volumes = list_volumes(config)
    if args.quiet and (not args.format or args.format.strip() in ("table", "json")):  # docker: a template wins over -q
        for v in volumes:
            print(v.name)
    elif args.format and args.format.strip() == "json":
        for v in volumes:
            print(json.dumps({"Driver": "local", "Name": v.name, "Mountpoint": str(v.mountpoint), "Scope": "local"}))
    elif args.format and args.format.strip() != "table":  # a Go template (docker's volumeContext)
        from engine.cli.formatters import VOLUME_HEADERS, volume_row
        from engine.cli.output import render_format

        sys.stdout.write(render_format(args.format, [volume_row(v) for v in volumes], VOLUME_HEADERS))
    else:
        print_table(("DRIVER", "VOLUME NAME"), [("local", v.name) for v in volumes])
    return 0


def cmd_volume_rm(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.container.volumes import remove_volume

    def one(name: str) -> None:
        remove_volume(config, name, force=args.force)
        print(name)

    return _for_each(args.names, one)


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
    from engine.container.volumes import prune_volumes

    removed = prune_volumes(config, all_volumes=args.all)
    print("Deleted Volumes:")
    for name in removed:
        print(name)
    print()
    print("Total reclaimed space: 0B")
    return 0
