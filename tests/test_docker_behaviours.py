"""Docker behaviours dockui used to differ on (issue 11), as tables run against real containers: each
row is what a Docker user types and what Docker 20.10 answers."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import pytest

from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root


@dataclass(frozen=True)
class Case:
    what: str
    args: tuple[str, ...]  # after `run --rm --network none`
    code: int = 0
    stdout: str | None = None  # a substring of stdout, when given
    stderr: str | None = None  # a substring of stderr, when given
    not_stdout: str | None = None  # must not be in stdout


RUN_CASES = [
    Case("/.dockerenv exists in every container", ("busybox", "test", "-f", "/.dockerenv")),
    Case("--tmpfs without a size has no size limit", ("--tmpfs", "/t", "busybox", "grep", " /t ", "/proc/mounts"),
         stdout="tmpfs /t tmpfs rw,nosuid,nodev,noexec", not_stdout="size="),
    Case("--tmpfs with a size keeps it", ("--tmpfs", "/t:size=1m", "busybox", "grep", " /t ", "/proc/mounts"),
         stdout="size=1024k"),
    Case("no no_new_privs by default: setuid works for a non-root user",
         ("-u", "nobody", "busybox", "grep", "NoNewPrivs", "/proc/self/status"), stdout="NoNewPrivs:\t0"),
    Case("--security-opt no-new-privileges sets it",
         ("--security-opt", "no-new-privileges", "busybox", "grep", "NoNewPrivs", "/proc/self/status"),
         stdout="NoNewPrivs:\t1"),
    Case("--security-opt no-new-privileges:false leaves it off",
         ("--security-opt", "no-new-privileges:false", "busybox", "grep", "NoNewPrivs", "/proc/self/status"),
         stdout="NoNewPrivs:\t0"),
    Case("Docker's seccomp filter by default", ("busybox", "grep", "Seccomp:", "/proc/self/status"), stdout="Seccomp:\t2"),
    Case("--security-opt seccomp=unconfined: no filter",
         ("--security-opt", "seccomp=unconfined", "busybox", "grep", "Seccomp:", "/proc/self/status"), stdout="Seccomp:\t0"),
    Case("--security-opt label=disable is accepted", ("--security-opt", "label=disable", "busybox", "true")),
    Case("an unknown --security-opt is refused", ("--security-opt", "bogus", "busybox", "true"), code=125,
         stderr='Invalid --security-opt: "bogus"'),
    Case("--entrypoint '' without a command", ("--entrypoint", "", "busybox"), code=125, stderr="No command specified"),
    Case("--entrypoint '' with a command runs it", ("--entrypoint", "", "busybox", "echo", "hi"), stdout="hi\n"),
    Case("a long option is never abbreviated (--pids is not --pids-limit)", ("--pids", "5", "busybox", "true"),
         code=125, stderr="unrecognized arguments: --pids"),
]


def test_run_behaviours(engine: Engine) -> None:
    failures = []
    for case in RUN_CASES:
        result = engine.cli("run", "--rm", "--network", "none", *case.args)
        out, err = result.stdout.decode(), result.stderr.decode()
        ok = (result.returncode == case.code
              and (case.stdout is None or case.stdout in out)
              and (case.stderr is None or case.stderr in err)
              and (case.not_stdout is None or case.not_stdout not in out)
              and "Traceback" not in err)
        if not ok:
            failures.append(f"{case.what}: exit {result.returncode}, stdout {out!r}, stderr {err!r}")
    assert not failures, "\n".join(failures)
    assert engine.out("ps", "-aq") == ""  # the refused ones made nothing


def test_proc_self_cgroup_names_the_containers_cgroup(engine: Engine) -> None:
    """As Docker's (cgroup v1, the host's cgroup namespace): every hierarchy's line names
    `/<cgroup parent>/<full container ID>`, as Docker's `/docker/<ID>`."""
    out = engine.out("run", "--rm", "--network", "none", "busybox", "sh", "-c", "hostname; cat /proc/self/cgroup")
    short_id, *lines = out.splitlines()
    paths = {line.split(":", 2)[2] for line in lines}
    assert len(paths) == 1 and lines, out
    parent, full_id = paths.pop().strip("/").split("/")
    assert parent == engine.config.cgroup_parent and full_id.startswith(short_id) and len(full_id) == 64, out


def test_security_opt_seccomp_takes_a_profile_file(engine: Engine, tmp_path) -> None:  # noqa: ANN001
    """`--security-opt seccomp=<profile.json>`: Docker's profile format, its rules applied."""
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
    base = ("run", "--rm", "--network", "none")
    denied = engine.cli(*base, "--security-opt", f"seccomp={profile}", "busybox", "mkdir", "/made")
    assert denied.returncode == 1 and b"Operation not permitted" in denied.stderr, denied.stderr
    assert engine.out(*base, "--security-opt", f"seccomp={profile}", "busybox", "echo", "ok") == "ok\n"
    missing = engine.cli(*base, "--security-opt", f"seccomp={tmp_path / 'none.json'}", "busybox", "true")
    assert missing.returncode == 125 and b"Traceback" not in missing.stderr, missing.stderr


def test_no_new_privileges_from_the_config_file(engine: Engine) -> None:
    path = engine.env["DOCKUI_CONFIG"]
    with open(path) as f:
        settings = json.load(f)
    with open(path, "w") as f:
        json.dump({**settings, "no_new_privileges": True}, f)
    try:
        engine.out("create", "--name", "strict", "--network", "none", "busybox", "grep", "NoNewPrivs", "/proc/self/status")
        assert engine.inspect("strict")["HostConfig"]["SecurityOpt"] == ["no-new-privileges"]
        assert engine.out("start", "-a", "strict") == "NoNewPrivs:\t1\n"
        engine.out("rm", "strict")
    finally:
        with open(path, "w") as f:
            json.dump(settings, f)


# (what, -v/--mount flags, command, expected stdout)
COPY_UP_CASES = [
    ("a new named volume gets the image's content", ("-v", "etcvol:/etc"), "cat /etc/group | head -1", "root:x:0:\n"),
    ("an anonymous volume too", ("-v", "/etc"), "ls /etc/passwd", "/etc/passwd\n"),
    ("an image's content keeps its owner and mode", ("-v", "binvol:/bin"), "stat -c '%U %a' /bin/busybox", "root 755\n"),
    ("nocopy leaves it empty", ("-v", "emptyvol:/etc:nocopy"), "ls /etc/passwd 2>&1 || true", "ls: /etc/passwd: No such file or directory\n"),
    ("--mount volume-nocopy too", ("--mount", "type=volume,src=empty2,dst=/etc,volume-nocopy"), "test -e /etc/group || echo empty", "empty\n"),
    ("a path the image lacks: an empty volume", ("-v", "newvol:/nowhere"), "ls -A /nowhere | wc -l", "0\n"),
]


def test_volume_copy_up(engine: Engine) -> None:
    failures = []
    for what, flags, command, expected in COPY_UP_CASES:
        result = engine.cli("run", "--rm", "--network", "none", *flags, "busybox", "sh", "-c", command)
        if result.returncode != 0 or result.stdout.decode() != expected:
            failures.append(f"{what}: exit {result.returncode}, {result.stdout!r}, {result.stderr!r}")
    assert not failures, "\n".join(failures)
    # A volume that already holds data is never written over (Docker copies into an empty one only)
    engine.out("run", "--rm", "--network", "none", "-v", "etcvol:/etc", "busybox", "sh", "-c", "rm /etc/group; echo mine > /etc/own")
    assert engine.out("run", "--rm", "--network", "none", "-v", "etcvol:/etc", "busybox", "ls", "/etc") == "hostname\nhosts\nown\npasswd\nresolv.conf\n"
    for name in ("etcvol", "binvol", "emptyvol", "empty2", "newvol"):
        engine.out("volume", "rm", name)


def test_cli_behaviours(engine: Engine) -> None:
    base = ("--network", "none", "busybox")
    engine.out("run", "--name", "done", *base, "sh", "-c", "echo early; sleep 1.1; echo late")
    engine.out("run", "-d", "--name", "live", *base, "sleep", "60")
    rows = engine.out("ps", "-f", "status=exited", "--format", "{{.Names}}").split()
    assert rows == ["done"], "ps -f status=exited works without -a"
    assert engine.out("ps", "--format", "{{.Names}}").split() == ["live"]
    command = engine.out("ps", "-a", "--no-trunc", "-f", "name=done", "--format", "{{.Command}}")
    assert command == '"sh -c \'echo early; sleep 1.1; echo late\'"\n', "ps keeps the command's quoting"
    assert '"sh -c \'echo early; …"' in engine.out("ps", "-a", "-f", "name=done")

    assert engine.inspect("done")["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}

    env = dict(engine.env, SET_HERE="from-client")
    env.pop("UNSET_HERE", None)
    import subprocess

    result = subprocess.run(engine.argv("exec", "-e", "SET_HERE", "-e", "UNSET_HERE", "-e", "GIVEN=1", "live", "env"),
                            env=env, capture_output=True, check=True)
    lines = result.stdout.decode().splitlines()
    assert "SET_HERE=from-client" in lines and "GIVEN=1" in lines
    assert not [line for line in lines if line.startswith("UNSET_HERE")], "exec -e VAR with VAR unset leaves it out"

    today = time.strftime("%Y-%m-%d", time.localtime())
    tomorrow = time.strftime("%Y-%m-%d", time.localtime(time.time() + 86400))
    assert engine.out("logs", "--since", today, "done") == "early\nlate\n"
    assert engine.out("logs", "--since", tomorrow, "done") == ""
    assert engine.out("logs", "--until", today, "done") == ""
    assert engine.out("logs", "--until", tomorrow, "done") == "early\nlate\n"
    # A time without a zone is the client's local time, as the docker CLI reads it (here with a fraction)
    import calendar

    early = engine.out("logs", "-t", "done").split()[0]  # RFC 3339 in UTC
    midway = calendar.timegm(time.strptime(early[:19], "%Y-%m-%dT%H:%M:%S")) + float("0." + early[20:29]) + 0.5
    local = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(midway)) + f".{int(midway % 1 * 1e6):06d}"
    assert engine.out("logs", "--since", local, "done") == "late\n"
    bad = engine.cli("logs", "--since", "2024-13-45", "done")
    assert bad.returncode != 0 and "invalid value" in bad.stderr.decode() and "Traceback" not in bad.stderr.decode()
    engine.out("rm", "-f", "done", "live")
    assert os.path.exists(engine.config.root)


def test_network_connect_shows_in_inspect(engine: Engine) -> None:
    engine.out("network", "create", "side")
    try:
        engine.out("run", "-d", "--name", "joined", "busybox", "sleep", "60")
        engine.out("network", "connect", "--alias", "other-name", "side", "joined")
        networks = engine.inspect("joined")["NetworkSettings"]["Networks"]
        assert set(networks) == {"bridge", "side"}
        # ps's network filter matches every network the container is on, by name or ID, as Docker's
        side_id = engine.out("network", "inspect", "-f", "{{.Id}}", "side").strip()
        for wanted in ("side", side_id, "bridge"):
            assert engine.out("ps", "-f", f"network={wanted}", "--format", "{{.Names}}") == "joined\n", wanted
        assert engine.out("ps", "-a", "-f", "network=host", "--format", "{{.Names}}") == ""
        assert engine.out("ps", "-f", "since=joined", "--format", "{{.Names}}") == ""  # before/since on the CLI too
        address = networks["side"]["IPAddress"]
        assert networks["side"]["Aliases"] == ["other-name"] and address
        assert f"inet {address}/" in engine.out("exec", "joined", "ip", "-4", "addr", "show", "eth1")
        engine.out("network", "disconnect", "side", "joined")
        assert set(engine.inspect("joined")["NetworkSettings"]["Networks"]) == {"bridge"}
        engine.out("rm", "-f", "joined")
        # Docker refuses a container without a network of its own (moby#39345), with its words
        engine.out("create", "--name", "private", "--network", "none", "busybox", "true")
        refused = engine.cli("network", "connect", "side", "private")
        assert refused.returncode != 0 and refused.stderr.decode().strip().endswith(
            "container cannot be connected to multiple networks with one of the networks in private (none) mode")
        engine.out("rm", "private")
    finally:
        engine.cli("rm", "-f", "joined", "private")
        engine.out("network", "rm", "side")


def test_ctrl_p_ctrl_q_detaches_the_cli_and_the_container_runs_on(engine: Engine) -> None:
    """Docker's detach keys on dockui's own attached CLI (run -it, attach, attach --detach-keys):
    the CLI says "read escape sequence" and exits 0; the container keeps running."""
    import select
    import subprocess

    def detach(argv: tuple[str, ...], keys: bytes) -> tuple[int, bytes]:
        master, slave = os.openpty()
        cli = engine.popen(*argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        typed, seen = False, b""
        try:
            deadline = time.monotonic() + 15
            while cli.poll() is None and time.monotonic() < deadline:
                if select.select([master], [], [], 0.2)[0]:
                    seen += os.read(master, 4096)
                if not typed and (b"# " in seen or time.monotonic() > deadline - 13):  # sh's prompt came
                    os.write(master, b"echo hi\r" + keys)
                    typed = True
            code = cli.wait(5)
            while select.select([master], [], [], 0.2)[0]:
                seen += os.read(master, 4096)
            return code, seen
        except (OSError, subprocess.TimeoutExpired):
            cli.kill()
            cli.wait(5)
            return -1, seen
        finally:
            os.close(slave)
            os.close(master)

    code, seen = detach(("run", "-it", "--name", "det", "--network", "none", "busybox", "sh"), b"\x10\x11")
    assert code == 0 and b"read escape sequence" in seen, seen
    assert engine.inspect("det")["State"]["Running"] is True
    code, seen = detach(("attach", "det"), b"\x10\x11")
    assert code == 0 and b"read escape sequence" in seen, seen
    code, seen = detach(("attach", "--detach-keys", "ctrl-x", "det"), b"\x10\x18")  # ctrl-p alone goes through
    assert code == 0 and b"read escape sequence" in seen, seen
    assert engine.inspect("det")["State"]["Running"] is True
    engine.out("rm", "-f", "det")
