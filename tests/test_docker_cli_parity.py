"""dockui's CLI beside the docker CLI (28.2.2) pointed at dockui's own service: the same verb on the
same engine prints the same stdout, the same error line and exits with the same status. Each case
names the docker/cli source that decided it (version.go's versionInfo and defaultVersionTemplate,
formatter/disk_usage.go, formatter/container.go, system/events.go's makeTemplate, exec.go and
hijack.go's escape proxy, moby's exec_detach)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.service_support import DOCKER, Service, pty_run, service_fixture  # noqa: F401
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401

pytestmark = pytest.mark.root

# What the clock moves between the two runs: a duration ("3 seconds ago", "Up About a minute")
_DURATION = re.compile(r"(Less than a second|About a minute|About an hour|\d+ (?:second|minute|hour|day|week|month|year)s?)")


def _same_times(text: str) -> str:
    """Durations as one word, and the table padding they changed as one gap."""
    return re.sub(r" {2,}", "  ", _DURATION.sub("T", text))


def _tag_rows_unordered(args: tuple[str, ...] | list[str], text: str) -> str:
    """`images`' rows sorted (a table's header kept first): docker lists an image's
    repositories in Go map order (formatter/image.go ranges over a map), so one image tagged in two
    repositories comes in either order."""
    if not args or args[0] != "images":
        return text
    lines = text.splitlines(keepends=True)
    head = lines[:1] if lines and lines[0].startswith("REPOSITORY") else []  # a table's header stays first
    return "".join(head + sorted(lines[len(head):]))


def _both(service: Service, *args: str, timeout: float = 30) -> tuple[tuple, tuple]:
    """(status, stdout, stderr) of `docker ARGS` and of `dockui ARGS` on the same engine."""
    theirs = service.docker(*args, timeout=timeout)
    ours = service.engine.cli(*args, timeout=timeout)
    return ((theirs.returncode, theirs.stdout.decode(), theirs.stderr.decode()),
            (ours.returncode, ours.stdout.decode(), ours.stderr.decode()))


def test_version_df_ps_and_events_as_the_docker_cli(service: Service) -> None:
    engine = service.engine
    engine.out("run", "-d", "--name", "dfrun", "--network", "none", "-v", "dfvol:/data", "busybox", "sleep", "60")
    engine.out("create", "--name", "idle", "busybox", "true")  # created on the default bridge
    since = time.time() - 5
    # version: Go's field names (.Server.APIVersion) and docker's JSON of the server's half
    for args in (["version", "--format", "{{json .Server}}"],
                 ["version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Platform.Name}}"],
                 ["version", "--format", "{{.Server.ApiVersion}}"],  # Go's error, status 1
                 ["version", "--format", "{{"]):  # status 64
        theirs, ours = _both(service, *args)
        assert ours == theirs, args
    theirs, ours = _both(service, "version")
    assert ours[1].split("\nServer:")[1] == theirs[1].split("\nServer:")[1]
    assert " API version:       " in ours[1] and "Go version:" in ours[1]  # the same template for the client
    theirs, ours = _both(service, "info")  # info.go's prettyPrintInfo: the server's part is the engine's
    assert _server_part(ours[1]) == _server_part(theirs[1]) and (ours[0], ours[2]) == (theirs[0], theirs[2])
    # system df, -v, their formats; ps's contexts (Networks of a created container, Platform)
    for args in (["system", "df"], ["system", "df", "--format", "json"], ["system", "df", "-v"],
                 ["system", "df", "-v", "--format", "json"], ["system", "df", "--format", "{{.Type}}: {{.Reclaimable}}"],
                 ["system", "df", "-v", "--format", "{{range .Volumes}}{{.Name}} {{.Links}}{{end}}"],
                 ["system", "df", "-v", "--format", "{{.Nope}}"],
                 ["ps", "-a", "--format", "json"], ["ps", "-a", "--format", "{{.Names}} {{.Networks}} {{.Platform}}"]):
        theirs, ours = _both(service, *args)
        assert [_same_times(x) if isinstance(x, str) else x for x in ours] == \
               [_same_times(x) if isinstance(x, str) else x for x in theirs], args
    # events: a template over events.Message, checked before anything is waited for
    window = ["events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}"]
    for fmt in ("{{json .}}", "{{.Actor}} {{.Status}} {{.Scope}}", "{{.}}", "json"):
        theirs, ours = _both(service, *window, "--format", fmt)
        assert ours == theirs and "dfrun" in ours[1], fmt
    for fmt in ("{{.Nope}}", "{{.Actor.ID.X}}", "{{"):  # no --until: a late check would wait for ever
        theirs, ours = _both(service, "events", "--format", fmt, timeout=10)
        assert ours == theirs and ours[0] == 64 and ours[2].startswith("Error parsing format: "), fmt
    engine.out("rm", "-f", "dfrun", "idle")
    engine.out("volume", "rm", "dfvol")


def _server_part(info: str) -> str:
    """docker info's Server section, its Runtimes in one order (docker ranges over a Go map)."""
    server = info.split("\nServer:")[1]
    return re.sub(r"^ Runtimes: (.*)$", lambda m: " Runtimes: " + " ".join(sorted(m.group(1).split())), server, flags=re.M)


def _exec_events(service: Service, since: float, action: str) -> list[str]:
    """The execIDs of the container events named `action` since `since`."""
    out = service.engine.out("events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
                             "--filter", f"event={action}", "--format", "{{json .}}")
    return [json.loads(line)["Actor"]["Attributes"]["execID"] for line in out.splitlines()]


def test_exec_detach_keys_leave_the_command_running(service: Service, tmp_path: Path) -> None:
    if DOCKER is None:
        pytest.skip("the docker CLI is not installed")
    engine = service.engine
    engine.out("run", "-d", "--name", "ex", "--network", "none", "busybox", "sleep", "300")
    since = time.time()
    ours = [*engine.argv("exec", "-it", "ex", "sh")]
    # the default keys (ctrl-p ctrl-q): the docker CLI's EscapeError, status 1; the shell runs on
    status, out = pty_run(ours, engine.env, [b"echo $((40+2))\r", b"\x10\x11"])
    assert status == 1 and b"42" in out and out.rstrip().endswith(b"read escape sequence"), out
    theirs_status, theirs_out = pty_run([DOCKER, "exec", "-it", "ex", "sh"], service.env,
                                         [b"echo $((40+2))\r", b"\x10\x11"])
    assert (theirs_status, theirs_out) == (status, out)
    # --detach-keys, and the config file's detachKeys when no flag is given (a ctrl-p is then typed through)
    status, out = pty_run([*engine.argv("exec", "-it", "--detach-keys", "ctrl-a,x", "ex", "sh")], engine.env,
                           [b"echo \x10$((1+1))\r", b"\x01x"])
    assert status == 1 and b"2" in out and out.rstrip().endswith(b"read escape sequence"), out
    docker_config = tmp_path / "dockercfg"
    docker_config.mkdir()
    (docker_config / "config.json").write_text(json.dumps({"detachKeys": "ctrl-e,e"}))
    status, out = pty_run(ours, dict(engine.env, DOCKER_CONFIG=str(docker_config)), [b"echo ok\r", b"\x05e"])
    assert status == 1 and out.rstrip().endswith(b"read escape sequence"), out
    bad = engine.cli("exec", "-i", "--detach-keys", "ctrl-bogus", "ex", "sh")
    assert (bad.returncode, bad.stderr.decode()) == (1, "Error: Invalid escape keys (ctrl-bogus) provided\n")
    for argv in ([DOCKER], engine.argv()):  # -it with stdin no terminal: CheckTty's refusal, before an exec is made
        piped = subprocess.run([*argv, "exec", "-it", "ex", "cat"], input=b"hi\n", capture_output=True,
                               env=service.env if argv == [DOCKER] else engine.env, timeout=30)
        assert (piped.returncode, piped.stdout, piped.stderr.decode().removeprefix("Error: ")) == \
            (1, b"", "the input device is not a TTY\n")
    # an API client that sends the keys itself (the docker CLI's own escape proxy keeps them, and
    # just hangs up): the engine lets it go, as moby's daemon-side proxy does
    api = service.client().api
    exec_id = api.exec_create("ex", ["sh"], stdin=True, tty=True)["Id"]
    sock = api.exec_start(exec_id, tty=True, socket=True)
    sock._sock.sendall(b"\x10\x11")
    assert wait_until(lambda: sock._sock.recv(4096) == b"", timeout=10)
    sock.close()
    # five shells left running; each one dockui let go of is an exec_detach (execID), none an exec_die yet
    assert wait_until(lambda: engine.out("exec", "ex", "sh", "-c", "ps -o args | grep -cx sh").strip() == "5", timeout=10)
    assert wait_until(lambda: len(_exec_events(service, since, "exec_detach")) == 4, timeout=10)
    detached = _exec_events(service, since, "exec_detach")
    assert exec_id in detached
    assert not set(detached) & set(_exec_events(service, since, "exec_die"))
    engine.out("rm", "-f", "ex")  # the shells die with the container: their helpers record it
    assert wait_until(lambda: set(detached) <= set(_exec_events(service, since, "exec_die")), timeout=10)


def _first_error_line(stderr: str) -> str:
    """The words of the first error line: docker's daemon errors read "Error response from daemon: ",
    its client's own none; dockui, one program, starts each with "Error: " (its one convention)."""
    line = (stderr.splitlines() or [""])[0]
    return line.removeprefix("Error response from daemon: ").removeprefix("Error: ").removeprefix("ERROR: ")


# Each: docker's stdout, status and the first line of its error, byte for byte (durations aside).
LIST_AND_INSPECT = [
    ["inspect", "--type", "network", "bridge", "--format", "{{.Name}} {{.Driver}}"],
    ["inspect", "pvol", "pnet", "--format", "{{.Name}}"],  # a volume, a network: docker looks for every kind
    ["inspect", "--type", "container", "nosuch"], ["inspect", "--type", "image", "nosuch"],
    ["inspect", "--type", "network", "nosuch"], ["inspect", "--type", "volume", "nosuch"],
    ["container", "inspect", "pvol"], ["inspect", "nosuch", "pvol", "--format", "{{.Name}}"],
    ["port", "ports"], ["port", "ports", "9000/udp"], ["port", "ports", "9000"], ["port", "ports", "x"],
    ["ps", "--format", "{{.Names}} {{.Ports}}"], ["top", "ports"],
    ["images", "--format", "json"], ["images", "-f", "bogus=1"], ["images", "-f", "dangling=maybe"],
    ["volume", "ls", "--format", "json"], ["volume", "ls", "-f", "name=pv"], ["volume", "ls", "-f", "dangling=true"],
    ["volume", "ls", "-f", "bogus=1"],
    ["network", "ls", "--format", "json"], ["network", "ls", "-f", "type=custom"], ["network", "ls", "-q", "-f", "name=pn"],
    ["network", "ls", "-f", "bogus=1"],
    ["history", "busybox"], ["history", "-q", "busybox"], ["history", "--human=false", "busybox"],
    ["history", "--format", "json", "busybox"],
    ["images", "-q"], ["network", "ls"], ["system", "prune", "--volumes", "--filter", "until=1h"],
    ["system", "prune", "-f", "--filter", "bogus=1"],
    ["network", "create", "-d", "overlay", "ovl"], ["events", "--since", "bogus", "--until", "1"],
    ["stats", "--no-stream", "--format", "{{.Container}} {{.Name}} {{.PIDs}}", "ports"],
    ["logs", "-n", "x", "ports"], ["rename", "nosuch", "x"], ["rm", "-f", "nosuch"], ["save", "nosuch"],
    ["tag", "busybox", "x@sha256:" + "0" * 64], ["load", "-i", "/nonexistent"],
    ["exec", "ports", "no-such-command"], ["exec", "-u", "nosuchuser", "ports", "true"], ["exec", "-t", "ports", "nosuch"],
]


def test_list_verbs_and_inspect_as_the_docker_cli(service: Service) -> None:
    engine = service.engine
    engine.out("volume", "create", "pvol")
    engine.out("network", "create", "pnet")
    engine.out("tag", "busybox", "pbox:1")  # a second tag: a second row (and ID) in images -q
    engine.out("run", "-d", "--name", "ports", "-p", "127.0.0.1:8000-8001:8000-8001", "-p", "127.0.0.1:9000:9000/udp",
               "--expose", "7000-7001", "busybox", "sleep", "60")
    failures = []
    for args in LIST_AND_INSPECT:
        theirs, ours = _both(service, *args)
        if (ours[0], _same_times(_tag_rows_unordered(args, ours[1])), _first_error_line(ours[2])) != \
                (theirs[0], _same_times(_tag_rows_unordered(args, theirs[1])), _first_error_line(theirs[2])):
            failures.append(f"{args}: docker {theirs}, dockui {ours}")
    assert not failures, "\n".join(failures)
    # a filter without `=` is the flag's error (125) for both; docker's words differ from argparse's
    for verb in (["ps"], ["images"], ["volume", "ls"], ["network", "ls"]):
        theirs, ours = _both(service, *verb, "--filter", "bogus")
        assert theirs[0] == ours[0] == 125 and "bad format of filter (expected name=value)" in ours[2]
    engine.out("rm", "-f", "ports")
    engine.out("network", "rm", "pnet")
    engine.out("volume", "rm", "pvol")
    engine.out("rmi", "pbox:1")
    theirs, ours = _both(service, "system", "prune", "-a", "--volumes", "--filter", "label=x")  # stdin at EOF: only asks
    assert ours == theirs and ours[1].endswith("  - label=x\n\nAre you sure you want to continue? [y/N] ")
