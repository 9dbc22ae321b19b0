"""Docker's json-file logs: the monitor's writer, the reader's --tail/--since/-t, and `dockui logs`
returning exactly what the container wrote, stdout and stderr apart."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from engine.container import logs
from engine.container.monitor.watch import LogWriter
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - `engine` fixture

RFC3339NANO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$"


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_writer_emits_one_docker_entry_per_line_and_keeps_partial_lines(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    writer = LogWriter(str(path))
    writer.write("stdout", b"one\ntw")
    writer.write("stderr", b"err\n")
    writer.write("stdout", b"o\nthree")
    assert [(e["log"], e["stream"]) for e in _lines(path)] == [("one\n", "stdout"), ("err\n", "stderr"), ("two\n", "stdout")]
    writer.flush()  # EOF: the unterminated rest is written as is
    entries = _lines(path)
    assert (entries[-1]["log"], entries[-1]["stream"]) == ("three", "stdout")
    import re

    assert all(re.match(RFC3339NANO, e["time"]) for e in entries)
    assert set(entries[0]) == {"log", "stream", "time"}


def test_writer_splits_huge_lines_and_round_trips_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    writer = LogWriter(str(path))
    blob = b"\xff\xfe binary \xc3\xa9 " + b"x" * 40_000 + b"\n"
    writer.write("stdout", blob)
    writer.flush()
    entries = list(logs.read_entries(str(path))[0])  # read as taken: a list to count them
    assert b"".join(e.data for e in entries) == blob
    assert len(entries) == 3  # 16 KiB pieces, as Docker splits long lines


def test_writer_rotates_before_an_entry_would_pass_max_size_and_the_reader_goes_through_the_files(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    writer = LogWriter(str(path), max_size=300, max_file=3)
    for i in range(20):
        writer.write("stdout", f"entry-{i:02d}\n".encode())
    files = [Path(f"{path}{s}") for s in ("", ".1", ".2")]
    assert all(0 < f.stat().st_size <= 300 for f in files) and not Path(f"{path}.3").exists()
    entries, _ = logs.read_entries(str(path))
    texts = [e.data.decode() for e in entries]
    assert texts == [f"entry-{i:02d}\n" for i in range(20 - len(texts), 20)] and len(texts) >= 6
    truncating = LogWriter(str(tmp_path / "one.log"), max_size=300, max_file=1)
    for i in range(20):
        truncating.write("stderr", f"entry-{i:02d}\n".encode())
    assert not Path(f"{tmp_path}/one.log.1").exists()
    assert (tmp_path / "one.log").stat().st_size <= 300


def test_follow_waits_through_a_rotation_whose_new_file_is_not_there_yet(tmp_path: Path) -> None:
    """A rotation renames the log before it creates the new one: the follower must not take the
    missing name for a removed container (seen in CI: `logs -f` stopped at the first rotation)."""
    import threading

    path = tmp_path / "c-json.log"
    writer = LogWriter(str(path))
    writer.write("stdout", b"one\n")
    running = threading.Event()
    running.set()
    got: list[bytes] = []
    follower = threading.Thread(target=lambda: got.extend(
        e.data for e in logs.follow_entries(str(path), 0, running.is_set, poll=0.02)))
    follower.start()
    assert wait_until(lambda: got == [b"one\n"], timeout=5)
    os.close(writer.fd)
    os.rename(path, f"{path}.1")  # ... and for a moment there is no log at all
    time.sleep(0.2)
    LogWriter(str(path)).write("stdout", b"two\n")
    assert wait_until(lambda: got == [b"one\n", b"two\n"], timeout=5), got
    running.clear()
    follower.join(5)
    assert not follower.is_alive()


def test_log_options_follow_the_json_file_drivers_rules() -> None:
    from engine.errors import InvalidArgument

    assert logs.log_limits({}) == (0, 1)
    assert logs.log_limits({"max-size": "10m", "max-file": "3"}) == (10 * 1024 * 1024, 3)
    assert logs.log_limits({"max-file": "2"}) == (0, 2)  # accepted as Docker's json-file does: nothing rotates
    for bad, message in (({"compress": "true"}, "unknown log opt"),
                         ({"max-size": "1k", "max-file": "0"}, "less than 1"), ({"max-size": "lots"}, "invalid size")):
        with pytest.raises(InvalidArgument, match=message):
            logs.log_limits(bad)


def test_reader_tail_and_since(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    old = {"log": "old\n", "stream": "stdout", "time": "2020-01-01T00:00:00.000000001Z"}
    new = {"log": "new\n", "stream": "stderr", "time": "2030-01-01T00:00:00.5Z"}
    path.write_text(json.dumps(old) + "\n" + json.dumps(new) + "\n" + '{"log": "torn')
    entries, offset = logs.read_entries(str(path))
    assert [e.data for e in entries] == [b"old\n", b"new\n"]
    assert offset == path.read_bytes().rindex(b"\n") + 1  # the torn line is read on the next poll
    assert [e.data for e in logs.read_entries(str(path), tail=1)[0]] == [b"new\n"]
    assert list(logs.read_entries(str(path), tail=0)[0]) == []
    since = logs.parse_since("2025-06-01T00:00:00Z")
    assert [e.stream for e in logs.read_entries(str(path), since=since)[0]] == ["stderr"]
    assert abs(logs.parse_since("10m") - (time.time() - 600)) < 5
    assert logs.parse_since("1700000000") == 1700000000.0


@pytest.mark.root
def test_logs_returns_exactly_what_was_written_stdout_and_stderr_apart(engine: Engine) -> None:
    script = r"printf 'line one\n'; printf 'to stderr\n' >&2; printf '\303\251t\303\251\n'; printf 'no newline'; printf 'e2' >&2"
    cid = engine.out("run", "-d", "--network", "none", "busybox", "sh", "-c", script).strip()
    assert engine.out("wait", cid) == "0\n"
    result = engine.cli("logs", cid, check=True)
    assert result.stdout == "line one\nété\nno newline".encode()
    assert result.stderr == b"to stderr\ne2"
    tailed = engine.cli("logs", "--tail", "1", "-t", cid, check=True)  # the last entry of both streams
    assert tailed.stdout == b""
    stamp, _, text = tailed.stderr.partition(b" ")
    assert text == b"e2"
    import re

    assert re.match(RFC3339NANO, stamp.decode())
    raw = _lines(Path(engine.inspect(cid)["LogPath"]))
    assert {e["stream"] for e in raw} == {"stdout", "stderr"}
    engine.out("rm", cid)


@pytest.mark.root
def test_logs_follow_ends_when_the_container_exits(engine: Engine) -> None:
    cid = engine.out("run", "-d", "--network", "none", "busybox", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done").strip()
    started = time.monotonic()
    result = engine.cli("logs", "-f", cid, timeout=30, check=True)
    assert result.stdout == b"1\n2\n3\n"
    assert time.monotonic() - started < 15
    engine.out("rm", cid)


@pytest.mark.root
def test_logs_follow_goes_on_across_rotations(engine: Engine) -> None:
    script = "sleep 0.5; i=0; while [ $i -lt 40 ]; do echo line-$i; i=$((i+1)); sleep 0.05; done"
    cid = engine.out("run", "-d", "--network", "none", "--log-opt", "max-size=1k", "--log-opt", "max-file=2",
                     "busybox", "sh", "-c", script).strip()
    result = engine.cli("logs", "-f", cid, timeout=30, check=True)
    assert result.stdout.decode().splitlines() == [f"line-{i}" for i in range(40)]  # nothing lost, nothing twice
    log = Path(engine.inspect(cid)["LogPath"])
    assert Path(f"{log}.1").exists() and not Path(f"{log}.2").exists()
    engine.out("rm", cid)
