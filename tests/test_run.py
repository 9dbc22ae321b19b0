"""`dockui run` end to end on the real kernel: namespaces, overlay layer, limits, Docker's config
rules and exit statuses. Every test runs the real CLI in a subprocess against busybox."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root


def test_pid_1_and_a_clean_process_list(engine: Engine) -> None:
    result = engine.cli("run", "--rm", "--network", "none", "busybox", "ps", "-o", "pid,comm", check=True)
    rows = [line.split() for line in result.stdout.decode().splitlines()[1:]]
    assert rows == [["1", "ps"]]


def test_hostname_is_the_short_id_or_the_given_one(engine: Engine) -> None:
    assert engine.out("run", "--rm", "--network", "none", "-h", "box.test", "busybox", "hostname") == "box.test\n"
    cid = engine.out("create", "--network", "none", "busybox", "hostname").strip()
    result = engine.cli("start", "-a", cid, check=True)
    assert result.stdout.decode() == cid[:12] + "\n"
    assert engine.out("rm", cid[:8]) == cid[:8] + "\n"


def test_written_file_is_in_the_diff_dir_not_in_the_image_and_gone_after_rm(engine: Engine) -> None:
    cid = engine.out("create", "--network", "none", "busybox", "sh", "-c", "echo data > /written-here").strip()
    engine.cli("start", "-a", cid, check=True)
    info = engine.inspect(cid)
    upper = Path(info["GraphDriver"]["Data"]["UpperDir"])
    assert (upper / "written-here").read_text() == "data\n"
    lower = [Path(p) for p in info["GraphDriver"]["Data"]["LowerDir"].split(":")]
    assert lower and all(p.is_dir() and not (p / "written-here").exists() for p in lower)
    engine.out("rm", cid)
    assert not upper.exists()
    assert engine.cli("inspect", "--type", "container", cid).returncode == 1


def test_memory_limit_oom_kill_is_reported(engine: Engine) -> None:
    # `tail` keeps a line without a newline in memory: /dev/zero never ends one.
    result = engine.cli("run", "--name", "hog", "--network", "none", "-m", "32m", "busybox", "tail", "/dev/zero")
    assert result.returncode == 137, result.stderr
    state = engine.inspect("hog")["State"]
    assert state["OOMKilled"] is True
    assert state["ExitCode"] == 137
    assert engine.inspect("hog")["HostConfig"]["Memory"] == 32 * 1024 * 1024
    engine.out("rm", "hog")


def test_pids_limit_stops_a_fork_bomb(engine: Engine) -> None:
    # The inner shell dies at its first failed fork; its sleepers stay, the outer shell reports.
    script = "sh -c 'for i in $(seq 1 60); do sleep 30 & done'; echo spawned; exec sleep 30"
    cid = engine.out("run", "-d", "--network", "none", "--pids-limit", "20", "busybox", "sh", "-c", script).strip()
    from tests.test_lifecycle_support import wait_until

    assert wait_until(lambda: b"spawned" in engine.cli("logs", cid).stdout, timeout=20)
    info = engine.inspect(cid)
    pids = engine.out("top", cid).splitlines()[1:]
    assert 1 < len(pids) <= 20
    assert b"can't fork" in engine.cli("logs", cid).stderr
    assert info["State"]["Running"] is True
    # The host is unaffected: we can still start processes here.
    assert engine.cli("ps", "-q").returncode == 0
    engine.out("rm", "-f", cid)


RULES_IMAGE_CHANGES = {
    "Entrypoint": ["echo", "ep"],
    "Cmd": ["default"],
    "Env": ["A=image", "B=image"],
    "WorkingDir": "/tmp",
    "User": "app",
}


@pytest.fixture
def rules_image(engine: Engine) -> str:
    from engine.image.store import ImageStore
    from tests.fixtures.busybox import busybox_tarball

    ImageStore(engine.config).import_tarball(busybox_tarball(), "rules:latest", changes=RULES_IMAGE_CHANGES)
    return "rules"


@pytest.mark.parametrize(
    ("flags", "args", "expected"),
    [
        ([], [], "ep default\n"),  # Entrypoint + Cmd
        ([], ["x", "y"], "ep x y\n"),  # trailing args replace Cmd
        (["--entrypoint", "echo"], [], "\n"),  # --entrypoint drops the image Cmd
        (["--entrypoint", ""], ["echo", "reset"], "reset\n"),  # "" clears the Entrypoint
        (["--entrypoint", "pwd"], [], "/tmp\n"),  # image WorkingDir
        (["--entrypoint", "pwd", "-w", "/srv/new"], [], "/srv/new\n"),  # -w wins, created
        (["--entrypoint", "id"], [], "uid=1000(app) gid=1000(app) groups=50(staff),1000(app)\n"),  # image User + supplementary
        (["--entrypoint", "id", "-u", "nobody"], [], "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n"),
        (["--entrypoint", "id", "-u", "0:50"], [], "uid=0(root) gid=50(staff) groups=50(staff)\n"),
        (["--entrypoint", "sh", "-e", "B=cli", "-e", "C=cli"], ["-c", "echo $A $B $C $HOSTNAME"], "image cli cli rulesbox\n"),
    ],
)
def test_image_config_rules_through_run(engine: Engine, rules_image: str, flags: list[str], args: list[str], expected: str) -> None:
    result = engine.cli("run", "--rm", "--network", "none", "-h", "rulesbox", *flags, rules_image, *args, check=True)
    assert result.stdout.decode() == expected


def test_env_file_and_default_path(engine: Engine, tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=yes\nB=file\n")
    out = engine.out("run", "--rm", "--network", "none", "--env-file", str(env_file), "-e", "B=flag", "busybox", "env")
    env = dict(line.split("=", 1) for line in out.splitlines())
    assert env["FROM_FILE"] == "yes" and env["B"] == "flag"
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert env["HOME"] == "/root"


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["busybox", "true"], 0),
        (["busybox", "sh", "-c", "exit 3"], 3),
        (["busybox", "/etc"], 126),  # a directory: cannot be invoked
        (["busybox", "no-such-command"], 127),
        (["--restart", "sometimes", "busybox", "true"], 125),  # dockui itself refuses
        (["--pull", "never", "no-such-image"], 125),
    ],
)
def test_exit_statuses(engine: Engine, args: list[str], status: int) -> None:
    result = engine.cli("run", "--rm", "--network", "none", *args)
    assert result.returncode == status, result.stderr
    if status >= 125:
        assert result.stderr.startswith(b"Error") or b"error" in result.stderr
    assert engine.out("ps", "-aq") == ""  # --rm cleaned up, even after a failed start


def test_attached_run_keeps_stdout_and_stderr_apart_and_passes_stdin(engine: Engine) -> None:
    result = engine.cli(
        "run", "-i", "--rm", "--network", "none", "busybox", "sh", "-c", "echo out; echo err >&2; cat; exit 4",
        input=b"from stdin\n",
    )
    assert result.returncode == 4
    assert result.stdout == b"out\nfrom stdin\n"
    assert result.stderr == b"err\n"


def test_rm_flag_removes_the_container_and_its_layer(engine: Engine) -> None:
    engine.cli("run", "--rm", "--network", "none", "busybox", "true", check=True)
    assert engine.out("ps", "-aq") == ""
    layers = [p for p in engine.config.layers_dir.iterdir() if p.name != "l" and not p.name.startswith(".")]
    from engine.image.store import ImageStore

    image_layers = {p.parent for p in ImageStore(engine.config).layer_dirs(ImageStore(engine.config).resolve("busybox").id)}
    assert set(layers) == image_layers


def test_run_pulls_a_missing_image(engine: Engine, busybox_in_registry: str) -> None:
    host = busybox_in_registry.split("/", 1)[0]
    result = engine.cli("--insecure-registry", host, "run", "--rm", "--network", "none", busybox_in_registry, "true", timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"Unable to find image '{busybox_in_registry}' locally".encode() in result.stderr
    assert b"Digest: sha256:" in result.stderr
    assert f"Status: Downloaded newer image for {busybox_in_registry}".encode() in result.stderr
    images = json.loads(engine.out("inspect", "--type", "image", busybox_in_registry))
    assert images[0]["Id"].startswith("sha256:")


def _read_until(fd: int, needle: bytes, timeout: float = 15) -> bytes:
    import select
    import time

    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


def _set_size(fd: int, rows: int, cols: int) -> None:
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def test_tty_run_gets_a_real_pty_with_the_window_size_and_its_changes(engine: Engine) -> None:
    import signal

    master, slave = os.openpty()
    _set_size(slave, 30, 100)
    script = "trap 'stty size' WINCH; tty; stty size; echo ready; while true; do sleep 0.1; done"
    cli = engine.popen("run", "-t", "--name", "term", "--network", "none", "busybox", "sh", "-c", script,
                       stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        out = _read_until(master, b"ready")
        assert b"/dev/pts/0\r\n30 100\r\nready" in out  # its own devpts, as with Docker
        _set_size(master, 40, 120)
        cli.send_signal(signal.SIGWINCH)  # what the kernel sends the terminal's foreground group
        assert b"40 120" in _read_until(master, b"40 120")
        pty_in_exec = engine.cli("exec", "term", "sh", "-c", "test -t 0 || echo no-tty").stdout
        assert pty_in_exec == b"no-tty\n"  # without -t, no terminal
    finally:
        engine.out("rm", "-f", "term")
        cli.wait(15)
        os.close(master)


def test_exec_tty_comes_from_the_containers_devpts(engine: Engine) -> None:
    engine.out("run", "-d", "--name", "host1", "--network", "none", "busybox", "sleep", "60")
    master, slave = os.openpty()
    _set_size(slave, 25, 90)
    cli = engine.popen("exec", "-t", "host1", "sh", "-c", "tty; stty size", stdin=slave, stdout=slave, stderr=slave,
                       start_new_session=True)
    os.close(slave)
    try:
        out = _read_until(master, b"90")
        assert cli.wait(15) == 0
        assert b"/dev/pts/0\r\n25 90" in out
    finally:
        os.close(master)
        engine.out("rm", "-f", "host1")


def test_run_attach_flag_relays_only_the_streams_named(engine: Engine) -> None:
    script = "echo out; echo err >&2; exit 3"
    only_out = engine.cli("run", "--rm", "--network", "none", "-a", "stdout", "busybox", "sh", "-c", script)
    assert (only_out.returncode, only_out.stdout, only_out.stderr) == (3, b"out\n", b"")
    only_err = engine.cli("run", "--rm", "--network", "none", "-a", "STDERR", "busybox", "sh", "-c", script)
    assert (only_err.returncode, only_err.stdout, only_err.stderr) == (3, b"", b"err\n")
    both = engine.cli("run", "--rm", "--network", "none", "-i", "-a", "stdin", "-a", "stdout", "busybox", "cat",
                      input=b"typed\n")
    assert (both.returncode, both.stdout) == (0, b"typed\n")
    bad = engine.cli("run", "--rm", "--network", "none", "-a", "stdio", "busybox", "true")
    assert bad.returncode == 125 and b"valid streams are STDIN, STDOUT and STDERR" in bad.stderr
    conflict = engine.cli("run", "-d", "--network", "none", "-a", "stdout", "busybox", "true")
    assert conflict.returncode == 125 and b"Conflicting options: -a and -d" in conflict.stderr
    assert engine.out("ps", "-aq") == ""


def test_attached_run_forwards_signals_to_the_container(engine: Engine) -> None:
    import signal
    import subprocess

    cli = engine.popen("run", "--rm", "--network", "none", "busybox", "sh", "-c",
                       "trap 'echo got-term; exit 9' TERM; echo ready; sleep 60 & wait",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert cli.stdout.readline() == b"ready\n"
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(15) == 9
        assert cli.stdout.read() == b"got-term\n"
    finally:
        if cli.poll() is None:
            cli.kill()
        cli.stdout.close()
        cli.stderr.close()


def test_monitor_started_as_a_fresh_interpreter(engine: Engine) -> None:
    """The path a threaded caller (the TUI) takes: no fork of the caller, a new interpreter."""
    import subprocess

    env = dict(engine.env, DOCKUI_MONITOR_SPAWN="exec")
    result = subprocess.run(engine.argv("run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo via-exec; exit 5"),
                            env=env, capture_output=True, timeout=60)
    assert (result.returncode, result.stdout) == (5, b"via-exec\n")
    cid = subprocess.run(engine.argv("run", "-d", "--network", "none", "busybox", "sleep", "30"), env=env,
                         capture_output=True, timeout=60, check=True).stdout.decode().strip()
    from engine.container import state

    monitor_pid = state.load(engine.config, cid).monitor_pid
    with open(f"/proc/{monitor_pid}/status") as f:
        assert next(line for line in f if line.startswith("PPid:")).split()[1] != str(os.getpid())
    engine.out("rm", "-f", cid)


def test_default_bridge_network_through_run(engine: Engine) -> None:
    """The start path plugs the veth in before the user's process runs (network.attach in
    on_namespaces_ready): the very first command already sees its address."""
    out = engine.out("run", "--rm", "--name", "bridged", "busybox", "sh", "-c",
                     "ip -4 -o addr show eth0 | awk '{print $4}'; hostname; tail -1 /etc/hosts")
    address, hostname, hosts_line = out.splitlines()
    ip = address.split("/")[0]
    assert ip.count(".") == 3 and hosts_line.split() == [ip, hostname]  # Docker's: the hostname, not the name
    assert not [n for n in os.listdir("/sys/class/net") if n.startswith("veth") and
                Path(f"/sys/class/net/{n}/master").exists() and
                os.path.basename(os.readlink(f"/sys/class/net/{n}/master")) == engine.config.bridge_name]


def test_rm_containers_mount_their_layer_volatile_and_others_do_not(engine: Engine) -> None:
    # --rm: no sync of the host filesystem when the container's mount namespace goes (as podman).
    line = engine.out("run", "--rm", "--network", "none", "busybox", "grep", " / / ", "/proc/self/mountinfo")
    assert " overlay " in line and "volatile" in line
    line = engine.out("run", "--name", "kept", "--network", "none", "busybox", "grep", " / / ", "/proc/self/mountinfo")
    assert " overlay " in line and "volatile" not in line
    engine.out("rm", "kept")


def test_attached_run_delivers_all_output_before_it_exits(engine: Engine) -> None:
    # The CLI leaves without interpreter teardown: everything written must still arrive.
    result = engine.cli("run", "--rm", "--network", "none", "busybox", "sh", "-c", "seq 1 200000; seq 1 3 >&2; exit 4")
    assert result.returncode == 4
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 200000 and lines[-1] == "200000"
    assert result.stderr.decode() == "1\n2\n3\n"


def test_a_run_that_fails_before_start_leaves_no_monitor_waiting(engine: Engine) -> None:
    from tests.test_lifecycle_support import engine_processes, wait_until

    result = engine.cli("run", "--rm", "--pull", "never", "--network", "none", "no-such-image", "true")
    assert result.returncode == 125 and b"No such image" in result.stderr
    assert wait_until(lambda: not engine_processes(engine.config.root), timeout=5)
    assert engine.out("ps", "-aq") == ""


def test_prepared_monitor_is_used_by_start_and_discard_is_idempotent(engine: Engine) -> None:
    """Run in a fresh single-threaded interpreter: the engine refuses to fork from a threaded one
    (pytest's own process has threads), so the body is a script."""
    import dataclasses
    import subprocess
    import sys

    fields = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(engine.config).items()}
    script = f"""
import os
from pathlib import Path
from engine.container import runtime
from engine.container import state
from engine.config import EngineConfig

fields = {fields!r}
config = EngineConfig(**{{k: Path(v) if k in ("root", "certs_dir") else v for k, v in fields.items()}})
record = runtime.create(config, runtime.RunOptions(image="busybox", command=["sleep", "30"], network="none"))
prepared = runtime.prepare_monitor(attach=False)
assert prepared is not None and not prepared.used
try:
    started = runtime.start(config, record.id, prepared=prepared)
finally:
    prepared.discard()
assert prepared.used and started.record.status == "running"
monitor_pid = state.load(config, record.id).monitor_pid
assert monitor_pid != os.getpid() and state.process_alive(monitor_pid, started.record.monitor_start)
with open(f"/proc/{{monitor_pid}}/stat") as f:
    assert int(f.read().rsplit(")", 1)[1].split()[1]) != os.getpid()  # not our child: double-forked
runtime.remove(config, record.id, force=True)

unused = runtime.prepare_monitor(attach=True)  # never launched: its process goes away on discard
assert unused is not None
unused.discard()
unused.discard()
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr


def test_the_commands_monitor_is_claimed_at_create_and_a_start_meanwhile_defers_to_it(engine: Engine) -> None:
    """`run` as the command (its monitor is its own child) writes the claim with the record: a
    `start` from another process meanwhile waits for that monitor's outcome instead of starting a
    second one; a claimed container whose monitor is never launched (the CLI died, or failed
    before its start) is left startable, and an --rm one is removed by the next reconcile."""
    import dataclasses
    import subprocess
    import sys

    fields = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(engine.config).items()}
    script = f"""
import os, subprocess, time
from pathlib import Path
import engine
from engine.config import EngineConfig
from engine.container import state
from engine.container.create import create
from engine.container.options import RunOptions
from engine.container.reconcile import reconcile
from engine.container.removal import remove
from engine.container.start import prepare_monitor, start

engine.running_as_command = True  # as the `dockui` command: the monitor is forked once, our child
fields = {fields!r}
config = EngineConfig(**{{k: Path(v) if k in ("root", "certs_dir") else v for k, v in fields.items()}})
prepared = prepare_monitor(attach=False, reconcile_config=config)
assert prepared.monitor[0] > 0 and state.process_alive(*prepared.monitor)
record = create(config, RunOptions(image="busybox", command=["sleep", "30"], network="none"), prepared.claim)
assert (record.monitor_pid, record.monitor_start) == prepared.monitor
other = subprocess.Popen({engine.argv()!r} + ["start", record.id], env={engine.env!r},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
time.sleep(0.3)  # the other start finds the claim and waits for its outcome
started = start(config, record.id, prepared=prepared, created=record)
prepared.discard()
out, err = other.communicate(timeout=30)
assert other.returncode == 0, err
now = state.load(config, record.id)
assert started.record.status == now.status == "running" and now.monitor_pid == prepared.monitor[0]
remove(config, record.id, force=True)

for auto_remove in (False, True):
    unused = prepare_monitor(attach=False)
    kept = create(config, RunOptions(image="busybox", command=["true"], network="none", auto_remove=auto_remove),
                  unused.claim)
    unused.discard()  # never launched: its monitor leaves on EOF, touching nothing
    deadline = time.monotonic() + 10
    while state.process_alive(*unused.monitor) and time.monotonic() < deadline:
        time.sleep(0.02)
    reconcile(config)
    if auto_remove:
        assert kept.id not in [r.id for r in state.list_containers(config)]
    else:
        assert state.load(config, kept.id).status == "created"
        assert start(config, kept.id).record.id == kept.id
        remove(config, kept.id, force=True)
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=90,
                            cwd=Path(__file__).resolve().parent.parent, env=engine.env)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr


def test_verb_parsers_are_built_on_use_and_still_refuse_bad_flags(engine: Engine) -> None:
    from engine.cli import build_parser

    help_text = engine.out("--help")
    assert all(f"    {verb} " in help_text for verb in ("run", "create", "ps", "logs", "exec", "rename"))
    bad_size = engine.cli("run", "-m", "lots", "busybox", "true")
    assert bad_size.returncode == 125 and b"argument -m/--memory: invalid size: 'lots'" in bad_size.stderr
    unknown = engine.cli("ps", "--no-such-flag")
    assert unknown.returncode == 125 and b"dockui ps: error: unrecognized arguments: --no-such-flag" in unknown.stderr
    assert b"usage: dockui logs" in engine.cli("logs").stderr
    # in-process parse (the TUI's run dialog checks requests this way): the verb's real flags
    args = build_parser().parse_args(["run", "--rm", "-m", "32m", "--name", "x", "busybox", "echo", "-n", "hi"])
    assert (args.rm, args.memory, args.name, args.image, args.command) == (True, 32 * 1024**2, "x", "busybox", ["echo", "-n", "hi"])
    assert args.handler.__name__ == "cmd_run"
    assert engine.out("ps", "-aq") == ""
