"""The monitor's stage 2 in C (engine/container/monitor/native/dockui-watch.c) is a drop-in for the Python `watch`:
the same json-file log bytes, the same attach relay and exit code, and it really is the process image.

The test compiles the source itself (as .ci/install does) and selects it with DOCKUI_WATCH=<path>;
DOCKUI_WATCH=python selects the Python stage for the comparison."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from engine.container import state
from tests.test_lifecycle_support import REPO, Engine, engine_fixture, wait_until  # noqa: F401 - `engine` fixture

SOURCE = REPO / "engine" / "container" / "monitor" / "native" / "dockui-watch.c"
TIME_FIELD = re.compile(rb',"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"\}$')

# Lives past the start stage's 250 ms relay, so stage 2 writes everything below.
TRICKY = (
    "sleep 0.6; "
    r"printf 'caf\303\251 \360\237\230\200 \342\200\250 done\n'; "  # unicode, astral (surrogate pair), U+2028
    r"printf 'bad \377\376 \355\240\200 \300\257 \342\202A \360\237\230\n'; "  # invalid UTF-8 of every kind
    r"printf 'ctl \001\033[31m\t\r\b\f\177 \"q\" \\ / end\n' >&2; "  # control chars, quote, backslash
    r"head -c 16383 /dev/zero | tr '\0' x; printf '\342\202\254'; "  # 16 KiB pieces, one splitting the euro
    r"head -c 20000 /dev/zero | tr '\0' y; "
    r"printf 'err part' >&2; sleep 0.1; printf ' two\n' >&2; "  # a line in two writes
    r"printf 'tail without newline'; printf 'e-tail' >&2; "
    "sleep 0.6; exit 3"
)


def _engine_with(engine: Engine, watch: str) -> Engine:
    return replace(engine, env=dict(engine.env, DOCKUI_WATCH=watch))


@pytest.fixture(name="native_watch", scope="module")
def native_watch_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed (.ci/install installs it)")
    binary = tmp_path_factory.mktemp("native") / "dockui-watch"
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-o", str(binary), str(SOURCE)], check=True)
    return binary


def _log_lines(engine: Engine, cid: str) -> list[bytes]:
    record = state.find_container(engine.config, cid)
    return [TIME_FIELD.sub(b"}", line) for line in record.log_path(engine.config).read_bytes().splitlines()]


def _run_tricky(engine: Engine, expected_exe: str | None) -> list[bytes]:
    cid = engine.out("run", "-d", "--network", "none", "busybox", "sh", "-c", TRICKY).strip()
    monitor_pid = state.find_container(engine.config, cid).monitor_pid
    assert monitor_pid > 0

    def exe() -> str:
        try:
            return os.readlink(f"/proc/{monitor_pid}/exe")
        except OSError:
            return ""

    if expected_exe is not None:  # stage 1 is python; after its 250 ms it becomes stage 2
        assert wait_until(lambda: exe() == expected_exe, timeout=10), exe()
    assert engine.out("wait", cid) == "3\n"
    lines = _log_lines(engine, cid)
    engine.out("rm", cid)
    return lines


def _run_rotated(engine: Engine) -> tuple[list[int], list[str]]:
    """200 lines into a log rotated at 1 KiB with 3 files: the files' sizes, what `logs` gives."""
    script = "sleep 0.6; i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done; sleep 0.3"
    cid = engine.out("run", "-d", "--network", "none", "--log-opt", "max-size=1k", "--log-opt", "max-file=3",
                     "busybox", "sh", "-c", script).strip()
    assert engine.out("wait", cid) == "0\n"
    log = engine.config.containers_dir / cid / f"{cid}-json.log"
    sizes = [Path(f"{log}{suffix}").stat().st_size for suffix in ("", ".1", ".2")]
    assert not Path(f"{log}.3").exists()
    out = engine.out("logs", cid).splitlines()
    engine.out("rm", cid)
    return sizes, out


@pytest.mark.root
def test_both_stages_rotate_the_log_as_dockers_json_file_driver(engine: Engine, native_watch: Path) -> None:
    for watch in (str(native_watch), "python"):
        sizes, out = _run_rotated(_engine_with(engine, watch))
        assert all(0 < size <= 1024 for size in sizes), (watch, sizes)
        # whole entries only (never one split across files); the newest lines, in order, to the last
        assert out == [f"line-{i}" for i in range(200 - len(out), 200)], (watch, out[:3])
        assert 25 <= len(out) <= 45, (watch, len(out))


@pytest.mark.root
def test_c_stage_writes_the_same_log_bytes_as_the_python_stage(engine: Engine, native_watch: Path) -> None:
    native = _run_tricky(_engine_with(engine, str(native_watch)), str(native_watch))
    python = _run_tricky(_engine_with(engine, "python"), None)
    assert len(native) == 8  # 3 lines, 2 pieces of the long stdout line + its rest at EOF, 2 on stderr
    joined = b"\n".join(native)
    assert rb'x\udce2","stream":"stdout"}' + b"\n" + rb'{"log":"\udc82\udcacyyy' in joined
    for stream in (b'"stream":"stdout"', b'"stream":"stderr"'):
        assert [x for x in native if stream in x] == [x for x in python if stream in x]
    assert sorted(native) == sorted(python)
    assert rb'"caf\u00e9 \ud83d\ude00 \u2028 done\n"' in native[0]
    assert rb"\udcff\udcfe \udced\udca0\udc80 \udcc0\udcaf \udce2\udc82A \udcf0\udc9f\udc98\n" in joined


@pytest.mark.root
@pytest.mark.parametrize("which", ["native", "python"])
def test_attached_run_relays_stdin_stdout_stderr_and_exit_code(engine: Engine, native_watch: Path, which: str) -> None:
    eng = _engine_with(engine, str(native_watch) if which == "native" else "python")
    script = "sleep 0.6; cat; printf 'to stderr\\n' >&2; exit 7"
    data = b"hello \x00\xff\n" + b"y" * 70_000
    result = eng.cli("run", "-i", "--rm", "--network", "none", "busybox", "sh", "-c", script, input=data)
    assert (result.returncode, result.stdout, result.stderr) == (7, data, b"to stderr\n")


@pytest.mark.root
@pytest.mark.parametrize("which", ["native", "python"])
def test_tty_run_relays_keys_window_changes_and_exit_through_stage_two(engine: Engine, native_watch: Path,
                                                                       which: str) -> None:
    import fcntl
    import select
    import signal
    import struct
    import termios
    import time

    eng = _engine_with(engine, str(native_watch) if which == "native" else "python")
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    script = "sleep 0.6; echo ready; read line; echo got:$line; trap 'stty size; exit 5' WINCH; echo set; while true; do sleep 0.1; done"
    cli = eng.popen("run", "-t", "-i", "--rm", "--network", "none", "busybox", "sh", "-c", script,
                    stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    # The test keeps its own slave descriptor open until the end: once every slave is closed, Linux
    # may answer a master read with EIO before its flip buffer has delivered the last output, so
    # the container's final "40 120" could be lost to a race of the pty layer, not of dockui.

    def read_until(needle: bytes) -> bytes:
        data, deadline = b"", time.monotonic() + 15
        while needle not in data and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    data += os.read(master, 4096)
                except OSError:
                    break
        return data

    try:
        assert b"ready" in read_until(b"ready")  # printed after stage 1's 250 ms: stage 2 relays it
        os.write(master, b"hello\r")
        assert b"got:hello" in read_until(b"set"), cli.poll()
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        cli.send_signal(signal.SIGWINCH)
        assert b"40 120" in read_until(b"40 120")
        assert cli.wait(15) == 5
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait(5)
        os.close(slave)
        os.close(master)


def test_stage_two_choice_follows_dockui_watch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    from engine.container.monitor.stages import native_watch

    monkeypatch.setenv("DOCKUI_WATCH", "python")
    assert native_watch() is None
    binary = tmp_path / "dockui-watch"
    binary.write_bytes(b"")
    monkeypatch.setenv("DOCKUI_WATCH", str(binary))
    assert native_watch() is None  # not executable: the Python stage
    binary.chmod(0o755)
    assert native_watch() == str(binary)
    monkeypatch.delenv("DOCKUI_WATCH")
    default = os.path.join(sys.prefix, "libexec", "dockui-watch")
    assert native_watch() == (default if os.access(default, os.X_OK) else None)


@pytest.mark.root
def test_attach_to_a_running_container_through_either_stage(engine: Engine, native_watch: Path) -> None:
    script = "echo started; while read l; do echo got:$l; [ \"$l\" = bye ] && exit 7; done"
    for watch in (str(native_watch), "python"):
        eng = _engine_with(engine, watch)
        eng.out("run", "-d", "-i", "--name", "att", "--network", "none", "busybox", "sh", "-c", script)
        assert wait_until(lambda e=eng: e.out("logs", "att") == "started\n")
        time.sleep(0.4)  # past the start stage's 250 ms: the watch stage (C or Python) takes the client
        client = eng.popen("attach", "att", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            client.stdin.write(b"hi\n")
            client.stdin.flush()
            assert client.stdout.readline() == b"got:hi\n"  # attached: stdin in, stdout out
            second = eng.cli("attach", "att")
            assert second.returncode == 1 and b"already has an attached client" in second.stderr
            client.stdin.write(b"bye\n")
            client.stdin.close()
            assert client.stdout.read() == b"got:bye\n"
            assert client.wait(15) == 7  # the container's own exit code, as docker attach gives it
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
        record_dir = next(eng.config.containers_dir.glob("*/config.v2.json")).parent
        assert not (record_dir / "attach.sock").exists()  # no listener once it stopped
        stopped = eng.cli("attach", "att")
        assert stopped.returncode == 1 and b"start it first" in stopped.stderr
        eng.out("rm", "att")


def test_c_stage_keys_are_monitor_context_fields() -> None:
    """The C stage names every context key it reads or writes once (KEY_*), each a MonitorContext
    field; and the context survives its argv round trip, as it does from stage to stage."""
    from engine.container.monitor.context import FIELDS, MonitorContext

    source = SOURCE.read_text()
    keys = dict(re.findall(r'#define (KEY_\w+) "(\w+)"', source))
    assert set(keys.values()) <= set(FIELDS), set(keys.values()) - set(FIELDS)
    assert {"pid", "pty_fd", "out_fd", "err_fd", "in_fd", "attach_fd", "listen_fd", "log_path", "exit_code"} <= set(
        keys.values())
    # no key spelled out anywhere else: every ctx_* call goes through a KEY_ name
    assert re.findall(r'ctx_(?:fd|find|set|pop)\("', source) == []
    ctx = MonitorContext(id="c" * 64, config="{}", open_stdin=True, winsize="24x80", status_fd=5, pid=42,
                         log_path="/x/y-json.log", log_max_size=1024, exit_code=3)
    assert MonitorContext.from_argv(ctx.to_argv()) == ctx
    assert [arg.partition("=")[0] for arg in ctx.to_argv()] == list(FIELDS)
    assert ctx.fds() == [5]
    with pytest.raises(ValueError):
        MonitorContext.from_argv(["bogus=1"])
    with pytest.raises(TypeError):
        MonitorContext(pid="42")
