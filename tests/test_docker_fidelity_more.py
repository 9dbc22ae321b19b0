"""Small divergences from Docker (moby and docker/cli v28 are the reference), each checked through
the Engine API service with real clients (the docker CLI, docker-py) and through dockui's own CLI:

- `network create --label` (the API took Labels; the CLI had no flag);
- the events of dockui's own CLI: `exec` is an exec instance (exec_create, exec_start, exec_die
  with one execID; `-d` too), `run`/`attach` log `attach`, each window size a `resize`
  (height, width), the detach keys a `detach`;
- Config.AttachStdin/Stdout/Stderr as the client sent them;
- `--volumes-from CONTAINER:z` and moby's mode rules (one word of each kind, its words);
- a commit's `unpause` after its image create/tag and `commit` events (moby's deferred unpause);
- `GET /system/df` lists a container's link names in Names, as the container list does.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

from tests.service_support import EventRow, Service, docker_events, service_fixture  # noqa: F401 - the `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root

def _actions(rows: list[EventRow], actor: str) -> list[str]:
    return [action for kind, action, who, _ in rows if kind == "container" and who == actor]


# ------------------------------------------------------------------------------------------ network --label


def test_network_create_takes_labels(service: Service) -> None:
    engine = service.engine
    net_id = engine.out("network", "create", "--label", "tier=front", "--label", "bare", "labelled").strip()
    try:
        labels = json.loads(service.docker_out("network", "inspect", "-f", "{{json .Labels}}", "labelled"))
        assert labels == {"tier": "front", "bare": ""}
        assert service.docker_out("network", "ls", "-q", "--no-trunc", "--filter", "label=tier=front").split() == [net_id]
    finally:
        engine.cli("network", "rm", "labelled")


# ------------------------------------------------------------------------------------------ events


def test_dockui_exec_is_an_exec_instance_with_mobys_events(service: Service) -> None:
    engine = service.engine
    cid = engine.out("run", "-d", "--network", "none", "--name", "execd", "busybox", "sleep", "300").strip()
    try:
        since = time.time()
        assert engine.cli("exec", "execd", "sh", "-c", "echo out; exit 3").returncode == 3
        rows = docker_events(service, since, container=cid)
        assert _actions(rows, cid) == ["exec_create: sh -c echo out; exit 3", "exec_start: sh -c echo out; exit 3",
                                       "exec_die"]
        exec_ids = {attrs["execID"] for _, _, _, attrs in rows}
        assert len(exec_ids) == 1 and rows[-1][3]["exitCode"] == "3"
        reply = service.request("GET", f"/v1.43/exec/{exec_ids.pop()}/json")
        assert reply.status == 200 and reply.json()["ExitCode"] == 3 and reply.json()["Running"] is False

        since = time.time()
        assert engine.cli("exec", "-d", "execd", "sh", "-c", "sleep 0.2; exit 4").returncode == 0

        def died() -> list[dict[str, str]]:
            return [attrs for kind, action, _, attrs in docker_events(service, since, container=cid) if action == "exec_die"]

        assert wait_until(died, timeout=10)  # the background helper writes it when the command ends
        assert died()[0]["exitCode"] == "4"
    finally:
        engine.cli("rm", "-f", "execd")


def _pty_session(engine: Engine, *args: str, rows: int = 33, cols: int = 101) -> tuple[subprocess.Popen, int]:
    """`dockui ARGS` on a pty of `rows` x `cols` (stdin, stdout and stderr): the process and the master."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    process = engine.popen(*args, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    return process, master


def _read_until(master: int, wanted: bytes, timeout: float = 15, poke: bytes = b"") -> bytes:
    """What the pty shows until `wanted` (writing `poke` each half second while it has not come)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen and time.monotonic() < deadline:
        if poke:
            os.write(master, poke)
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                seen += os.read(master, 65536)
            except OSError:
                break
    return seen


def _detach(process: subprocess.Popen, master: int) -> bytes:
    """Type ctrl-p ctrl-q once the session relays (the shell's prompt came back through it)."""
    assert b"# " in _read_until(master, b"# ", poke=b"\r")
    os.write(master, b"\x10\x11")
    assert process.wait(timeout=15) == 0
    rest = _read_until(master, b"read escape sequence", timeout=2)
    os.close(master)
    return rest


def test_dockui_run_and_attach_log_attach_resize_and_detach(service: Service) -> None:
    engine = service.engine
    since = time.time()
    process, master = _pty_session(engine, "run", "-it", "--network", "none", "--name", "ttyd", "busybox", "sh")
    try:
        assert b"read escape sequence" in _detach(process, master)
        cid = engine.inspect("ttyd")["Id"]
        process, master = _pty_session(engine, "attach", "ttyd", rows=40, cols=120)
        assert b"read escape sequence" in _detach(process, master)
        rows = docker_events(service, since, container=cid, type="container")
        assert _actions(rows, cid) == ["create", "attach", "start", "resize", "detach", "attach", "resize", "detach"]
        sizes = [(attrs["height"], attrs["width"]) for _, action, _, attrs in rows if action == "resize"]
        assert sizes == [("33", "101"), ("40", "120")]
        assert engine.inspect("ttyd")["State"]["Running"]  # a detach leaves it running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        engine.cli("rm", "-f", "ttyd")


def test_dockui_run_attached_logs_attach_before_start(service: Service) -> None:
    engine = service.engine
    since = time.time()
    assert engine.out("run", "--name", "once", "busybox", "echo", "hi") == "hi\n"
    try:
        cid = engine.inspect("once")["Id"]
        assert _actions(docker_events(service, since, container=cid, type="container"), cid) == [
            "create", "attach", "start", "die"]
    finally:
        engine.cli("rm", "once")


# ------------------------------------------------------------------------------------------ Config.Attach*


def _attach_flags(run: object, ref: str) -> list[bool]:
    text = run("inspect", "-f", "{{json .Config.AttachStdin}} {{json .Config.AttachStdout}} {{json .Config.AttachStderr}}",  # type: ignore[operator]
               ref)
    return [json.loads(word) for word in text.split()]


def test_attach_flags_are_kept_as_the_client_sent_them(service: Service) -> None:
    engine = service.engine
    api = service.client().api
    made = []
    try:
        quiet = api.create_container("busybox", "true", detach=True, stdin_open=True)["Id"]  # docker-py: all false
        made.append(quiet)
        assert _attach_flags(service.docker_out, quiet) == [False, False, False]
        assert service.docker_out("inspect", "-f", "{{.Config.OpenStdin}}", quiet).strip() == "true"
        cases = [  # (who, argv, AttachStdin, AttachStdout, AttachStderr) as the docker CLI sends them
            (service.docker, ["create", "-i", "busybox", "true"], [True, True, True]),
            (service.docker, ["create", "-a", "stdout", "busybox", "true"], [False, True, False]),
            (service.docker, ["run", "-d", "-i", "busybox", "true"], [False, False, False]),
            (engine.cli, ["run", "-d", "-i", "busybox", "true"], [False, False, False]),
            (engine.cli, ["create", "-i", "busybox", "true"], [True, True, True]),
        ]
        for run, argv, wanted in cases:
            result = run(*argv, check=True)
            made.append(result.stdout.decode().split()[-1])
            assert _attach_flags(service.docker_out, made[-1]) == wanted, argv
            assert _attach_flags(engine.out, made[-1]) == wanted, argv
        assert engine.out("run", "-i", "-a", "stdout", "--name", "partial", "busybox", "echo", "x") == "x\n"
        made.append("partial")
        assert _attach_flags(engine.out, "partial") == [True, True, False]  # -i attaches stdin whatever -a says
    finally:
        engine.cli("rm", "-f", *made)


# ------------------------------------------------------------------------------------------ mount modes


def test_volumes_from_z_and_mobys_mode_rules(service: Service, tmp_path: Path) -> None:
    engine = service.engine
    engine.out("create", "--name", "src", "-v", f"{tmp_path}:/data", "busybox", "true")
    made = ["src"]
    try:
        for mode, rw in (("z", True), ("ro,z", False), ("Z,rw", True)):
            made.append(service.docker_out("create", "--volumes-from", f"src:{mode}", "busybox", "true").strip())
            mounts = json.loads(service.docker_out("inspect", "-f", "{{json .Mounts}}", made[-1]))
            assert [(m["Destination"], m["RW"]) for m in mounts] == [("/data", rw)], mode
        refused = [  # (argv after `create`, moby's message)
            (["--volumes-from", "src:z,Z"], "invalid mode: z,Z"),
            (["--volumes-from", "src:rshared"], "invalid mode: rshared"),
            (["--volumes-from", "src:nocopy"], "invalid mode: nocopy"),
            (["-v", f"{tmp_path}:/x:z,Z"], "invalid mode: z,Z"),
            (["-v", f"{tmp_path}:/x:rw,rw"], "invalid mode: rw,rw"),
            (["-v", f"{tmp_path}:/x:cached,delegated"], "invalid mode: cached,delegated"),
        ]
        for argv, message in refused:
            docker = service.docker("create", *argv, "busybox", "true")
            assert (docker.returncode, docker.stderr.decode().strip()) == (1, f"Error response from daemon: {message}")
            ours = engine.cli("create", *argv, "busybox", "true")
            assert ours.returncode != 0 and ours.stderr.decode().strip() == f"Error: {message}", argv
        ours = engine.cli("create", "-v", "/x:ro", "busybox", "true")
        assert ours.returncode != 0 and ours.stderr.decode().strip() == "Error: invalid volume specification: '/x:ro'"
        assert sorted(service.docker_out("ps", "-aq", "--no-trunc").split()) == sorted(
            engine.inspect(ref)["Id"] for ref in made)  # nothing refused was made
    finally:
        engine.cli("rm", "-f", *made)


# ------------------------------------------------------------------------------------------ commit, df


def test_commit_unpauses_after_its_events(service: Service) -> None:
    engine = service.engine
    cid = engine.out("run", "-d", "--network", "none", "--name", "committed", "busybox", "sleep", "300").strip()
    try:
        since = time.time()
        image_id = service.docker_out("commit", "committed", "fidelity:one").strip()
        rows = [(kind, action) for kind, action, actor, _ in docker_events(service, since)
                if actor in (cid, image_id) and kind in ("container", "image")]
        assert rows == [("container", "pause"), ("image", "create"), ("image", "tag"), ("container", "commit"),
                        ("container", "unpause")]
        assert engine.inspect("committed")["State"]["Status"] == "running"
    finally:
        engine.cli("rm", "-f", "committed")
        engine.cli("rmi", "fidelity:one")


def test_system_df_lists_link_names(service: Service) -> None:
    engine = service.engine
    engine.out("create", "--name", "db", "busybox", "true")
    engine.out("create", "--name", "web", "--link", "db:dbalias", "busybox", "true")
    try:
        usage = service.client().df()
        names = sorted(row["Names"] for row in usage["Containers"])
        assert names == [["/db", "/web/dbalias"], ["/web"]]
    finally:
        engine.cli("rm", "-f", "web", "db")


# ------------------------------------------------------------------------------------------ template errors


def test_template_errors_print_as_the_docker_cli_does(service: Service) -> None:
    """Go's words, bare (no "Error: "), the exit status, and info/version's newline after what the
    template wrote before it failed; the data's Go type named as the docker CLI's errors name it."""
    engine = service.engine
    engine.out("create", "--name", "tmpl", "--network", "none", "busybox", "true")
    try:
        cases = [
            ["images", "--format", "{{.Nope}}"],
            ["network", "ls", "--format", "{{.Nope}}"],
            ["ps", "-a", "--format", "{{.Names}} {{index .Labels 1}}"],
            ["inspect", "-f", "{{.State.Status}} {{.Nope}}", "tmpl"],
            ["info", "--format", "x{{.Nope}}"],
            ["version", "--format", "{{.Nope}}"],
            ["info", "--format", "{{"],
            ["version", "--format", "{{"],
        ]
        for argv in cases:
            docker, ours = service.docker(*argv), engine.cli(*argv)
            assert (ours.returncode, ours.stdout, ours.stderr) == (docker.returncode, docker.stdout, docker.stderr), argv
        assert engine.cli("info", "--format", "x{{.Nope}}").stderr == (
            b'template: :1:3: executing "" at <.Nope>: can\'t evaluate field Nope in type system.dockerInfo\n')
    finally:
        engine.cli("rm", "tmpl")



def test_the_services_attach_logs_detach_on_the_keys(service: Service) -> None:
    """A client whose input carries the detach keys (moby's copyEscapable sees them: its
    EscapeError) leaves the container running, and the service logs `detach` (daemon/attach.go)."""
    api = service.client().api
    cid = service.docker_out("run", "-dit", "--network", "none", "--name", "keys", "busybox", "sh").strip()
    try:
        since = time.time()
        sock = api.attach_socket(cid, params={"stdin": 1, "stdout": 1, "stream": 1, "detachKeys": "ctrl-p,ctrl-q"})
        raw = sock._sock  # docker-py: the socket under its SocketIO
        raw.sendall(b"\x10\x11")

        def detached() -> bool:
            return "detach" in _actions(docker_events(service, since, container=cid, type="container"), cid)

        assert wait_until(detached, timeout=10)
        raw.close()
        assert _actions(docker_events(service, since, container=cid, type="container"), cid) == ["attach", "detach"]
        assert service.engine.inspect("keys")["State"]["Running"]
    finally:
        service.engine.cli("rm", "-f", "keys")
