"""The container and volume verbs' parsers, with Docker's flags: run, create, start, stop, ps, logs, exec...

This module registers them (each verb's parser built only when it is used); the handlers live by
concern beside it: container_run (run/create/start/attach), container_lifecycle (stop, kill, rm,
update, ...), container_io (logs, exec), container_files (cp, diff, commit, export), container_list
(ps, inspect, top, port), volume_cmds. Handlers stay thin: flags become `RunOptions`, the work is in
engine.container. Every handler that touches containers calls `reconcile` first
(container_common.start_engine): there is no daemon to notice a dead monitor, so each CLI start does.
"""

from __future__ import annotations

import argparse

from engine.cli import env_flag, filter_flag
from engine.config import EngineConfig
from engine.errors import InvalidArgument
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


# ------------------------------------------------------------------------------------------ registration


class _on_use:  # noqa: N801 - reads as the call it stands for: handler=_on_use("container_run", "cmd_run")
    """A verb's handler, imported when the verb runs: a start loads the module of its own verb only
    (each handler module costs its unmarshalling; see "Import costs, said once" in docs/lifecycle.md)."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name
        self.__name__ = name  # named like the function it stands for

    def __call__(self, args: argparse.Namespace, config: EngineConfig) -> int:
        import importlib

        return getattr(importlib.import_module(f"engine.cli.{self.module}"), self.name)(args, config)



def register(subparsers: argparse._SubParsersAction, verb: str | None = None) -> None:
    """Add the container verbs (top level and under `container`) and `volume`.

    Given the verb being run, and it is one of the top-level verbs here, only its stub is added
    (`dockui run` needs no other: ~4 ms less on every start).

    Each verb's real parser is built only when it is used (argparse costs ~10 ms for all of these
    verbs, on every CLI start): the top-level verbs are stubs whose one argument takes the rest
    and parses it at once with the verb's own parser (so usage errors still come from parse_args),
    and the `container` group's parser is built when that group is used.
    """
    if verb == "volume":  # its group alone, as for a top-level verb (not the ~30 stubs and groups)
        _register_volume(subparsers)
        return
    if verb is not None:
        _register_verbs(subparsers, top_level=True, only=_STUBS, stub=verb)
        if verb in subparsers.choices:
            return
    if verb != "container":
        _register_verbs(subparsers, top_level=True, only=_STUBS)
    group = subparsers.add_parser("container", help="Manage containers (ls, rm, inspect, prune, ...)", add_help=False)
    group.add_argument("-h", "--help", action=_ContainerHelp, nargs=0, help="show this help message and exit")
    group.add_argument("rest", nargs=argparse.REMAINDER, help="COMMAND [ARG...]")
    group.set_defaults(handler=cmd_container, container_prog=group.prog)
    if verb != "container":
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
    p.add_argument("--ip6", help="IPv6 address (e.g., 2001:db8::33)")
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
                   help="Security options: no-new-privileges, seccomp=unconfined|<profile.json>, label=disable")
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
    p.add_argument("--cgroupns", default="", help="Cgroup namespace to use (host|private); default: "
                   "private on a cgroup v2 host, host on v1 (the config file's default_cgroupns_mode)")
    p.add_argument("--mac-address", default="", help="Container MAC address (e.g., 92:d0:c6:0a:29:33)")
    p.add_argument("--uts", default="", help="UTS namespace to use (host)")
    p.add_argument("--memory-swappiness", type=int, default=-1, help="Tune container memory swappiness (0 to 100)")
    p.add_argument("--device-cgroup-rule", action="append", default=[], help="Add a rule to the cgroup allowed devices list")
    p.add_argument("image", help="IMAGE")
    p.add_argument("command", nargs=argparse.REMAINDER, help="COMMAND [ARG...]")


def _add_run_only_flags(p: Any) -> None:
    p.add_argument("-d", "--detach", action="store_true", help="Run container in background and print container ID")
    p.add_argument("-a", "--attach", action="append", default=[], help="Attach to STDIN, STDOUT or STDERR")
    p.add_argument("--sig-proxy", default="true", help="Proxy received signals to the process")


RUN_HANDLER = _on_use("container_run", "cmd_run")
PS_HANDLER = _on_use("container_list", "cmd_ps")


def _register_verbs(
    sub: argparse._SubParsersAction, top_level: bool, only: str | None = None, stub: str | None = None
) -> None:
    """Every verb (only=None), one verb's real parser (only=its name), or stubs (only=_STUBS: all of
    them, or the one named by `stub`)."""
    # run and create share one set of flags (argparse copies parents' actions cheaply).
    run_flags = None
    if only in (None, "run", "create"):
        from engine.cli import ArgumentParser  # its HelpFormatter looks the terminal up once, not per flag

        run_flags = ArgumentParser(add_help=False)
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

    _add_run_only_flags(add("run", RUN_HANDLER, "Create and run a new container from an image"))
    add("create", _on_use("container_run", "cmd_create"), "Create a new container")

    p = add("start", _on_use("container_run", "cmd_start"), "Start one or more stopped containers")
    p.add_argument("-a", "--attach", action="store_true", help="Attach STDOUT/STDERR and forward signals")
    p.add_argument("-i", "--interactive", action="store_true", help="Attach container's STDIN")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = add("stop", _on_use("container_lifecycle", "cmd_stop"), "Stop one or more running containers")
    p.add_argument("-t", "--time", "--timeout", type=int, dest="time", help="Seconds to wait before killing it")
    p.add_argument("-s", "--signal", help="Signal to send to the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = add("restart", _on_use("container_lifecycle", "cmd_restart"), "Restart one or more containers")
    p.add_argument("-t", "--time", "--timeout", type=int, dest="time", help="Seconds to wait before killing it")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = add("kill", _on_use("container_lifecycle", "cmd_kill"), "Kill one or more running containers")
    p.add_argument("-s", "--signal", default="KILL", help="Signal to send to the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    for name, handler, text in (
        ("pause", _on_use("container_lifecycle", "cmd_pause"), "Pause all processes within one or more containers"),
        ("unpause", _on_use("container_lifecycle", "cmd_unpause"), "Unpause all processes within one or more containers"),
        ("wait", _on_use("container_lifecycle", "cmd_wait"), "Block until one or more containers stop, then print their exit codes"),
    ):
        p = add(name, handler, text)
        p.add_argument("containers", nargs="+", metavar="CONTAINER")
        if name == "wait":  # Docker's API conditions (engine.container.waiting)
            p.add_argument("--condition", default="not-running", choices=["not-running", "next-exit", "removed"],
                           help="What to wait for (default not-running)")
    p = add("rm", _on_use("container_lifecycle", "cmd_rm"), "Remove one or more containers", aliases=("remove",) if not top_level else ())
    p.add_argument("-f", "--force", action="store_true", help="Force the removal of a running container (uses SIGKILL)")
    p.add_argument("-v", "--volumes", action="store_true", help="Remove anonymous volumes associated with the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = add("logs", _on_use("container_io", "cmd_logs"), "Fetch the logs of a container")
    p.add_argument("-f", "--follow", action="store_true", help="Follow log output")
    p.add_argument("-n", "--tail", default="all", help="Number of lines to show from the end of the logs")
    p.add_argument("-t", "--timestamps", action="store_true", help="Show timestamps")
    p.add_argument("--details", action="store_true", help="Show extra details provided to logs")
    p.add_argument("--since", help="Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)")
    p.add_argument("--until", help="Show logs before a timestamp or relative time")
    p.add_argument("container", metavar="CONTAINER")
    p = add("exec", _on_use("container_io", "cmd_exec"), "Execute a command in a running container")
    p.add_argument("-d", "--detach", action="store_true", help="Detached mode: run command in the background")
    p.add_argument("--detach-keys", help="Override the key sequence for detaching a container")
    p.add_argument("-i", "--interactive", action="store_true", help="Keep STDIN open")
    p.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.add_argument("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])")
    p.add_argument("-w", "--workdir", help="Working directory inside the container")
    p.add_argument("-e", "--env", action="append", default=[], type=env_flag, help="Set environment variables")
    p.add_argument("--privileged", action="store_true", help="Give extended privileges to the command")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")
    p = add("ps", PS_HANDLER, "List containers", aliases=("ls", "list") if not top_level else ())
    _add_ps_flags(p)
    p = add("inspect", _on_use("container_list", "cmd_inspect"), "Return low-level information on containers (or images)")
    p.add_argument("-f", "--format", help="Format the output using a template ({{.State.Pid}}, {{json .Config}})")
    if top_level:  # `container inspect` is containers only (docker's has no --type)
        p.add_argument("--type", help="Only inspect objects of the given type (container, image, network, volume)")
    else:
        p.set_defaults(type="container")
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes")
    p.add_argument("names", nargs="+", metavar="NAME|ID")
    p = add("top", _on_use("container_list", "cmd_top"), "Display the running processes of a container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="[ps OPTIONS]")
    p = add("port", _on_use("container_list", "cmd_port"), "List port mappings or a specific mapping for the container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("private_port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")
    p = add("rename", _on_use("container_lifecycle", "cmd_rename"), "Rename a container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("new_name", metavar="NEW_NAME")
    p = add("commit", _on_use("container_files", "cmd_commit"), "Create a new image from a container's changes")
    p.add_argument("-a", "--author", default="", help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    p.add_argument("-m", "--message", default="", help="Commit message")
    p.add_argument("-c", "--change", action="append", default=[], help="Apply Dockerfile instruction to the created image")
    p.add_argument("-p", "--pause", default="true", choices=["true", "false"], help="Pause container during commit")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    p = add("attach", _on_use("container_run", "cmd_attach"), "Attach local standard input, output, and error streams to a running container")
    p.add_argument("--detach-keys", help="Override the key sequence for detaching a container")
    p.add_argument("--no-stdin", action="store_true", help="Do not attach STDIN")
    p.add_argument("--sig-proxy", default="true", help="Proxy all received signals to the process")
    p.add_argument("container", metavar="CONTAINER")
    p = add("export", _on_use("container_files", "cmd_export"), "Export a container's filesystem as a tar archive")
    p.add_argument("-o", "--output", help="Write to a file, instead of STDOUT")
    p.add_argument("container", metavar="CONTAINER")
    p = add("cp", _on_use("container_files", "cmd_cp"), "Copy files/folders between a container and the local filesystem")
    p.add_argument("-a", "--archive", action="store_true", help="Archive mode (copy all uid/gid information)")
    p.add_argument("-L", "--follow-link", action="store_true", help="Always follow symbol link in SRC_PATH")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress progress output")
    p.add_argument("source", metavar="SRC", help="CONTAINER:SRC_PATH, a local path, or - (a tar on stdin)")
    p.add_argument("destination", metavar="DEST", help="CONTAINER:DEST_PATH, a local path, or - (a tar on stdout)")
    p = add("update", _on_use("container_lifecycle", "cmd_update"), "Update configuration of one or more containers")
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
    p = add("diff", _on_use("container_files", "cmd_diff"), "Inspect changes to files or directories on a container's filesystem")
    p.add_argument("container", metavar="CONTAINER")
    if not top_level:
        p = add("stats", _on_use("container_lifecycle", "cmd_container_stats"), "Display a live stream of container(s) resource usage statistics")
        from engine.cli.stats_cmds import add_stats_flags

        add_stats_flags(p)
        p = add("prune", _on_use("container_lifecycle", "cmd_prune"), "Remove all stopped containers")
        p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
        p.add_argument("--filter", action="append", default=[], type=filter_flag, help="Provide filter values (until=, label=, label!=)")


def _add_ps_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="Show all containers (default shows just running)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display container IDs")
    p.add_argument("-f", "--filter", action="append", default=[], type=filter_flag, help="Filter output based on conditions provided")
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
    p.add_argument("-o", "--opt", action="append", default=[], help="Set driver specific options (type=, device=, o=)")
    p.set_defaults(handler=_on_use("volume_cmds", "cmd_volume_create"))
    p = sub.add_parser("ls", aliases=["list"], help="List volumes")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[], type=filter_flag,
                   help="Provide filter values (dangling=, driver=, label=, name=)")
    p.add_argument("--format", help="'json', or a Go template ({{.Name}}, 'table {{.Name}}\\t{{.Mountpoint}}')")
    p.set_defaults(handler=_on_use("volume_cmds", "cmd_volume_ls"))
    p = sub.add_parser("rm", aliases=["remove"], help="Remove one or more volumes")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("names", nargs="+", metavar="VOLUME")
    p.set_defaults(handler=_on_use("volume_cmds", "cmd_volume_rm"))
    p = sub.add_parser("inspect", help="Display detailed information on one or more volumes")
    p.add_argument("-f", "--format", help="Format the output using a Go template ({{.Mountpoint}})")
    p.add_argument("names", nargs="+", metavar="VOLUME")
    p.set_defaults(handler=_on_use("volume_cmds", "cmd_volume_inspect"))
    p = sub.add_parser("prune", help="Remove unused local volumes")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[], type=filter_flag, help="Provide filter values (label=, label!=, all=)")
    p.set_defaults(handler=_on_use("volume_cmds", "cmd_volume_prune"))


# ------------------------------------------------------------------------------------------ helpers


# ------------------------------------------------------------------------------------------ run, parsed fast


class _FlagTable:
    """The flags of a parser as data: takes the same add_argument calls (add_global_options,
    _add_run_flags, _add_run_only_flags), so the fast parse below knows every flag argparse does."""

    SIMPLE = ("store", "store_true", "append")

    def __init__(self) -> None:
        self.options: dict[str, tuple[str, str, Any, Any]] = {}  # option -> (dest, action, type, choices)
        self.defaults: dict[str, Any] = {}

    def add_argument(self, *names: str, **kwargs: Any) -> None:
        action = kwargs.get("action", "store")
        if not names[0].startswith("-"):  # the positionals: image and command, taken apart below
            return
        long_names = [n for n in names if n.startswith("--")]
        dest = kwargs.get("dest") or (long_names or names)[0].lstrip("-").replace("-", "_")
        if action in self.SIMPLE:
            self.defaults[dest] = kwargs.get("default", False if action == "store_true" else None)
        for name in names:
            self.options[name] = (dest, action if action in self.SIMPLE else "", kwargs.get("type"), kwargs.get("choices"))


def _fast_spec(verb: str) -> tuple[tuple[Any, ...], Any, bool] | None:
    """A verb fast_args parses (engine.cli.FAST_VERBS): the functions that add its flags, its
    handler, and whether IMAGE [COMMAND...] follows the flags."""
    if verb == "run":
        return (_add_run_flags, _add_run_only_flags), RUN_HANDLER, True
    if verb == "ps":
        return (_add_ps_flags,), PS_HANDLER, False
    return None


def fast_args(argv: list[str], verb: str = "run") -> argparse.Namespace | None:
    """`dockui [--root DIR] run FLAGS IMAGE [COMMAND...]` or `dockui [--root DIR] ps FLAGS` parsed
    without building argparse's parsers (~3 ms of every run or ps: see "Import costs" in
    docs/lifecycle.md), to the namespace argparse gives.

    Flags that take no value, take one (`--name x`, `--name=x`) or append one, in their long and
    short forms and clusters of short switches (`-it`), with their types and choices; anything else
    (help, `--`, a value that starts with `-`, a bad value, no image, an argument ps does not take)
    returns None, and argparse parses it (and says what is wrong). tests/test_cli_import_costs.py
    compares both parses.
    """
    from engine.cli import add_global_options

    spec = _fast_spec(verb)
    if spec is None:
        return None
    adders, handler, takes_image = spec
    table = _FlagTable()
    add_global_options(table)  # type: ignore[arg-type]
    for add in adders:
        add(table)
    values = {dest: list(default) if isinstance(default, list) else default for dest, default in table.defaults.items()}
    verb_seen = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg in ("-", "--"):
            if verb_seen or arg != verb:
                break
            verb_seen = True
            i += 1
            continue
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        dest, action, convert, choices = table.options.get(name, ("", "", None, None))
        if not action and not arg.startswith("--") and len(arg) > 2:  # -it, -dit
            switches = [table.options.get(f"-{c}", ("", "", None, None)) for c in arg[1:]]
            if all(s[1] == "store_true" for s in switches):
                values.update({s[0]: True for s in switches})
                i += 1
                continue
        is_global = dest in ("root", "log_level", "insecure_registry", "bip")
        if not action or is_global == verb_seen:  # unknown, or a global option after the verb (or the reverse)
            return None
        i += 1
        if action == "store_true":
            if eq:
                return None
            values[dest] = True
            continue
        if not eq:
            if i >= len(argv) or argv[i].startswith("-"):
                return None
            value, i = argv[i], i + 1
        try:
            converted = convert(value) if convert is not None else value
        except Exception:  # noqa: BLE001 - argparse says what is wrong with it
            return None
        if choices is not None and converted not in choices:
            return None
        if action == "append":
            values[dest].append(converted)
        else:
            values[dest] = converted
    if not verb_seen or (i < len(argv)) != takes_image or (takes_image and argv[i] in ("-", "--")):
        return None
    if takes_image:
        values.update(image=argv[i], command=argv[i + 1:])
    return argparse.Namespace(**{**values, "verb": verb, f"lazy_{verb}": None, "handler": handler})



# ------------------------------------------------------------------------------------------ run/create/start


# ------------------------------------------------------------------------------------------ simple verbs


# ------------------------------------------------------------------------------------------ logs


# ------------------------------------------------------------------------------------------ exec


# ------------------------------------------------------------------------------------------ ps


# ------------------------------------------------------------------------------------------ inspect, top, port


# ------------------------------------------------------------------------------------------ volumes


