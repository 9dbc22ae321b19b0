"""A container never receives a host descriptor through `exec`: only pipes (or its own pty with -t).

Each test fails if `exec` hands the caller's own terminal or file to the container (the escape
the isolation rule in docs/isolation.md closes): a background process left behind by `exec`
must not be able to write to the caller's file or terminal after `exec` returned, nor read it.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from pathlib import Path

import pytest

from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root


def _read_available(fd: int, seconds: float) -> bytes:
    out = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([fd], [], [], left)[0]:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


def test_exec_output_to_a_host_file_reaches_the_container_as_a_pipe(engine: Engine, tmp_path: Path) -> None:
    engine.out("run", "-d", "--name", "fdbox", "--network", "none", "busybox", "sleep", "60")
    target = tmp_path / "host-output.txt"
    script = "for fd in 0 1 2; do readlink /proc/self/fd/$fd; done; (sleep 1; echo leaked) & echo first"
    try:
        with open(target, "wb") as out:
            started = time.monotonic()
            code = subprocess.run(engine.argv("exec", "fdbox", "sh", "-c", script), stdout=out,
                                  stderr=subprocess.PIPE, env=engine.env, timeout=30).returncode
            took = time.monotonic() - started
        assert code == 0
        assert took < 5  # the left-behind sleeper does not hold exec open
        time.sleep(1.5)  # the sleeper has now written "leaked": into a closed pipe, not into our file
        lines = target.read_text().splitlines()
        assert lines[0] == "/dev/null"  # no -i: the container's own /dev/null
        assert lines[1].startswith("pipe:[") and lines[2].startswith("pipe:[")
        assert lines[3:] == ["first"]
    finally:
        engine.out("rm", "-f", "fdbox")


def test_exec_from_a_terminal_gives_the_container_no_terminal(engine: Engine) -> None:
    engine.out("run", "-d", "--name", "ttybox", "--network", "none", "busybox", "sleep", "60")
    master, slave = os.openpty()
    script = "for fd in 0 1 2; do test -t $fd && echo TTY-$fd; done; readlink /proc/self/fd/0; " \
             "(sleep 1; echo leaked-late) & echo done-now"
    try:
        cli = engine.popen("exec", "-i", "ttybox", "sh", "-c", script, stdin=slave, stdout=slave, stderr=slave,
                           start_new_session=True)
        assert cli.wait(30) == 0
        seen = _read_available(master, 2.5)
        assert b"TTY-" not in seen
        assert b"pipe:[" in seen and b"done-now" in seen
        assert b"leaked-late" not in seen  # written after exec returned: never reaches our terminal
    finally:
        os.close(slave)
        os.close(master)
        engine.out("rm", "-f", "ttybox")


def test_exec_stdin_is_relayed_through_a_pipe(engine: Engine) -> None:
    engine.out("run", "-d", "--name", "inbox", "--network", "none", "busybox", "sleep", "60")
    try:
        result = engine.cli("exec", "-i", "inbox", "sh", "-c", "readlink /proc/self/fd/0 | cut -c1-5; cat",
                            input=b"typed line\n", check=True)
        assert result.stdout == b"pipe:\ntyped line\n"
        big = os.urandom(300_000).hex().encode()  # more than a pipe holds: the relay must not deadlock
        echoed = engine.cli("exec", "-i", "inbox", "sh", "-c", "cat | wc -c", input=big, check=True)
        assert echoed.stdout.strip() == str(len(big)).encode()
        assert engine.cli("exec", "inbox", "sh", "-c", "echo err >&2; exit 7").returncode == 7
    finally:
        engine.out("rm", "-f", "inbox")


def test_the_engine_refuses_a_host_file_as_exec_stdio(engine: Engine, tmp_path: Path) -> None:
    from engine.container import runtime
    from engine.errors import InvalidArgument

    engine.out("run", "-d", "--name", "guard", "--network", "none", "busybox", "sleep", "60")
    try:
        with open(tmp_path / "host-file", "wb") as f, pytest.raises(InvalidArgument, match="never handed"):
            runtime.exec_command(engine.config, "guard", ["true"], stdio=(None, f.fileno(), None))
        master, slave = os.openpty()  # the host's devpts
        try:
            with pytest.raises(InvalidArgument):
                runtime.exec_command(engine.config, "guard", ["true"], tty=True, stdio=(slave, slave, slave))
        finally:
            os.close(master)
            os.close(slave)
    finally:
        engine.out("rm", "-f", "guard")
