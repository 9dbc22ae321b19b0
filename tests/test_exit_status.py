"""The CLI's exit statuses, as the docker CLI gives them (cmd/docker/docker.go and cli/required.go):
a flag error is 125 for every verb (cobra's FlagErrorFunc returns a StatusError 125); a missing or
extra argument and an unknown verb are 1 (plain errors); an engine error is 125 for `run` (run.go
wraps it in a StatusError 125) and 1 for every other verb, `create` too: create.go's runCreate wraps
only its own parse() refusals in a StatusError 125 and returns createContainer's errors as they
are; a multi-name verb goes on past a failure and exits 1. Each row: the argv, the status, the first
line of stderr (a prefix) and, when given, the exact stdout. The rows run in order against one set
of containers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    status: int
    stderr: str  # the first line of stderr starts with this
    stdout: str | None = None  # the whole of stdout, when given
    last: str | None = None  # the last line of stderr, when given


CASES = [
    # usage: a flag is 125, the arguments and the verb are 1
    Case(("ps", "--bogus"), 125, "dockui ps: error: unrecognized arguments: --bogus"),
    Case(("rm", "--bogus", "one"), 125, "dockui rm: error: unrecognized arguments: --bogus"),
    Case(("stop", "-t", "abc", "one"), 125, "dockui stop: error: argument -t/--time/--timeout: invalid int value: 'abc'"),
    Case(("run", "-m", "lots", "busybox"), 125, "dockui run: error: argument -m/--memory: invalid size: 'lots'"),
    Case(("rm",), 1, "dockui rm: error: the following arguments are required: CONTAINER"),
    Case(("run",), 1, "dockui run: error: the following arguments are required: image"),
    Case(("network", "create"), 1, "dockui network create: error: the following arguments are required: name"),
    Case(("ps", "extra"), 1, "dockui ps: error: unrecognized arguments: extra"),
    Case(("no-such-verb",), 1, "dockui: error: argument COMMAND: invalid choice: 'no-such-verb'"),
    Case(("network", "no-such-verb"), 1, "dockui network: error: argument COMMAND: invalid choice: 'no-such-verb'"),
    Case(("volume",), 0, "usage: dockui volume", stdout=""),  # a group alone: its help on stderr, as docker's
    Case(("container",), 0, "usage: dockui container", stdout=""),
    # run: the engine's errors are 125 (run.go's toStatusError)
    Case(("run", "--rm", "--pull", "never", "no-such-image"), 125, "Error: No such image: no-such-image"),
    Case(("run", "--rm", "--name", "one", "--network", "none", "busybox"), 125, "Error: Conflict. The container name \"/one\" is already in use by container"),
    Case(("run", "--rm", "-p", "bad", "--network", "none", "busybox"), 125, "Error: invalid container port in 'bad'"),
    # create: the engine's errors are 1, its own parse()'s 125 (create.go's runCreate)
    Case(("create", "--name", "one", "--network", "none", "busybox"), 1, "Error: Conflict. The container name \"/one\" is already in use by container"),
    Case(("container", "create", "--pull", "never", "no-such-image"), 1, "Error: No such image: no-such-image"),
    Case(("create", "--ipc", "bogus", "busybox"), 1, "Error: invalid --ipc mode: 'bogus'"),  # the daemon's check
    Case(("create", "-w", "relative", "busybox"), 1, "Error: the working directory 'relative' is invalid"),
    Case(("create", "--entrypoint", "", "busybox"), 1, "Error: No command specified"),  # the daemon's words
    Case(("create", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", "busybox"), 1,
         "Error: sysctl 'net.ipv4.ip_forward' not allowed in host network namespace"),
    Case(("create", "-p", "bad", "busybox"), 125, "Error: invalid container port in 'bad'"),  # nat.ParsePortSpecs
    Case(("create", "--pull", "never", "--uts", "bogus", "no-such-image"), 125, "Error: --uts: invalid UTS mode"),  # before the image
    Case(("container", "create", "--rm", "--restart", "always", "busybox"), 125,
         "Error: conflicting options: cannot specify both --restart and --rm"),
    Case(("create", "--pid", "bogus", "busybox"), 125, "Error: --pid: invalid PID mode"),
    Case(("create", "--log-driver", "none", "--log-opt", "a=b", "busybox"), 125, "Error: invalid logging opts for driver none"),
    Case(("create", "--dns", "bad", "busybox"), 125, 'Error: invalid argument "bad" for "--dns" flag'),
    Case(("create", "--link", "a:b:c", "busybox"), 125, 'Error: invalid argument "a:b:c" for "--link" flag'),
    Case(("create", "--sysctl", "kernel.foo=1", "busybox"), 125, 'Error: invalid argument "kernel.foo=1" for "--sysctl" flag'),
    Case(("create", "--mount", "type=tmpfs", "busybox"), 125, 'Error: invalid argument for "--mount" flag: target is required'),
    Case(("create", "--security-opt", "bogus", "busybox"), 125, 'Error: Invalid --security-opt: "bogus"'),
    Case(("create", "--uts", "bogus", "busybox"), 125, "Error: --uts: invalid UTS mode"),
    Case(("create", "--device-cgroup-rule", "x", "busybox"), 125, "Error: invalid device cgroup format 'x'"),
    Case(("create", "--label-file", "/nonexistent", "busybox"), 125, "Error: open /nonexistent"),
    # every other verb: 1
    Case(("inspect", "nosuch"), 1, "Error: No such object: nosuch", stdout="[]\n"),
    Case(("logs", "nosuch"), 1, "Error: No such container: nosuch", stdout=""),
    Case(("exec", "nosuch", "true"), 1, "Error: No such container: nosuch", stdout=""),
    Case(("exec", "one", "true"), 1, "Error: container", stdout=""),  # not running (moby's errNotRunning)
    Case(("rename", "one", "two"), 1, "Error: Error when allocating new name: Conflict. The container name \"/two\" is already in use"),
    Case(("network", "rm", "nosuch"), 1, "Error: network nosuch not found"),
    Case(("volume", "rm", "nosuch"), 1, "Error: get nosuch: no such volume"),
    Case(("rmi", "nosuch"), 1, "Error: No such image: nosuch"),
    Case(("images", "-f", "bogus=1"), 1, "Error: invalid filter 'bogus'"),  # moby's words
    Case(("images", "-f", "bogus"), 125, "dockui images: error: argument -f/--filter: bad format of filter"),  # FilterOpt's flag error
    Case(("ps", "--filter", "bogus"), 125, "dockui ps: error: argument -f/--filter: bad format of filter"),
    Case(("container", "rm", "nosuch"), 1, "Error: No such container: nosuch"),
    # exec's command keeps its statuses (the exec's exit code); start's is an engine error: 1
    Case(("exec", "live", "no-such-command"), 127, 'exec: "no-such-command": executable file not found'),  # bare, as the stream's
    Case(("exec", "-u", "nosuchuser", "live", "true"), 126, "unable to find user nosuchuser"),  # the exec's 126
    Case(("exec", "-e", "=x", "live", "true"), 125, "dockui exec: error: argument -e/--env: invalid environment variable: =x"),
    Case(("run", "--rm", "--network", "none", "busybox", "no-such-command"), 127, "Error: "),
    Case(("start", "broken"), 1, "Error: "),
    # several names: each one is tried, the status is 1
    Case(("start", "c1", "nosuch", "c2"), 1, "Error: No such container: nosuch", stdout="c1\nc2\n",
         last="Error: No such container: nosuch"),  # one line per failure (docker adds a summary line)
    Case(("kill", "c1", "nosuch", "c2"), 1, "Error: No such container: nosuch", stdout="c1\nc2\n"),
    Case(("rm", "one", "nosuch", "two"), 1, "Error: No such container: nosuch", stdout="one\ntwo\n"),
    Case(("rm", "-f", "nosuch"), 0, "Error: No such container: nosuch", stdout=""),  # rm.go: said, not failed
    Case(("rename", "nosuch", "x"), 1, "Error: No such container: nosuch", last="Error: failed to rename container named nosuch"),
    Case(("logs", "-n", "x", "live"), 1, "Error: invalid value for tail: 'x'"),
    Case(("logs", "--since", "bogus", "live"), 1, 'Error: invalid value for "since": failed to parse value as time or duration'),
]


def test_exit_statuses_as_the_docker_cli(engine: Engine) -> None:
    for name in ("one", "two"):
        engine.out("create", "--name", name, "--network", "none", "busybox", "true")
    for name in ("c1", "c2"):
        engine.out("create", "--name", name, "--network", "none", "busybox", "sleep", "60")
    engine.out("run", "-d", "--name", "live", "--network", "none", "busybox", "sleep", "60")
    engine.out("create", "--name", "broken", "--network", "none", "busybox", "no-such-command")
    failures = []
    for case in CASES:
        result = engine.cli(*case.argv)
        out, err = result.stdout.decode(), result.stderr.decode()
        lines = err.splitlines() or [""]
        if (result.returncode != case.status or not lines[0].startswith(case.stderr) or "Traceback" in err
                or (case.stdout is not None and out != case.stdout) or (case.last is not None and lines[-1] != case.last)):
            failures.append(f"{' '.join(case.argv)}: exit {result.returncode}, stdout {out!r}, stderr {err!r}")
    assert not failures, "\n".join(failures)
    names = engine.out("ps", "-a", "--format", "{{.Names}} {{.State}}").splitlines()
    assert sorted(names) == ["broken created", "c1 exited", "c2 exited", "live running"]  # rm removed one and two
    engine.out("rm", "-f", "broken", "c1", "c2", "live")
