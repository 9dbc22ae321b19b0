"""The engine's events log (engine/events.py, read through engine/eventlog.py): written by the real verbs wherever they run, bounded
by rotation, safe for concurrent appenders, read back with Docker's filters and followed across
rotations; and `dockui events` on top of it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import eventlog, events
from engine.config import EngineConfig
from engine.eventlog import Event, EventFilter
from tests.test_lifecycle_support import REPO, Engine, engine_fixture, wait_until  # noqa: F401


def _actions(config: EngineConfig, type_: str, actor: str | None = None) -> list[str]:
    return [e.action for e in eventlog.read_events(config, 0) if e.type == type_ and (actor is None or e.actor_id == actor)]


# ---- written by the real verbs ---------------------------------------------------------------------


@pytest.mark.root
def test_container_verbs_write_their_events_in_order(engine: Engine) -> None:
    """run --rm through the CLI (the monitor writes start and die), then a detached container
    paused, renamed, killed and removed; each event carries Docker's attributes."""
    result = engine.cli("run", "--rm", "--network", "none", "--label", "team=a", "busybox", "sh", "-c", "exit 3")
    assert result.returncode == 3, result.stderr
    created = [e for e in eventlog.read_events(engine.config, 0) if e.type == "container"]
    cid = created[0].actor_id
    assert [e.action for e in created] == ["create", "attach", "start", "die", "destroy"]  # moby's, as `docker run`
    die = created[3]
    assert die.attributes["exitCode"] == "3"
    assert die.attributes["image"] == "busybox" and die.attributes["team"] == "a"
    assert die.to_docker()["from"] == "busybox" and die.to_docker()["status"] == "die" and die.to_docker()["id"] == cid

    cid2 = engine.out("run", "-d", "--name", "ev1", "--network", "none", "-v", "evvol:/data", "busybox", "sleep", "30").strip()
    engine.out("pause", "ev1")
    engine.out("unpause", "ev1")
    engine.out("rename", "ev1", "ev2")
    engine.out("restart", "-t", "0", "ev2")
    engine.out("kill", "ev2")
    wait_until(lambda: "die" in _actions(engine.config, "container", cid2))
    engine.out("rm", "ev2")
    # restart -t 0: moby's stop is a kill with the stop signal, then SIGKILL once the timeout passed
    assert _actions(engine.config, "container", cid2) == [
        "create", "start", "pause", "unpause", "rename", "kill", "kill", "die", "stop", "start", "restart", "kill", "die",
        "destroy"]
    mine = [e for e in eventlog.read_events(engine.config, 0) if e.actor_id == cid2]
    rename = next(e for e in mine if e.action == "rename")
    assert rename.attributes["name"] == "ev2" and rename.attributes["oldName"] == "ev1"
    assert [e.attributes["signal"] for e in mine if e.action == "kill"] == ["15", "9", "9"]
    assert next(e for e in mine if e.action == "die").attributes["exitCode"] == "137"
    mount = [e for e in eventlog.read_events(engine.config, 0) if e.type == "volume" and e.action == "mount"]
    assert mount and mount[0].actor_id == "evvol" and mount[0].attributes["container"] == cid2
    assert mount[0].attributes["destination"] == "/data"
    assert _actions(engine.config, "volume", "evvol")[:3] == ["create", "mount", "unmount"]
    from engine.container.volumes import remove_volume

    remove_volume(engine.config, "evvol")
    assert _actions(engine.config, "volume", "evvol")[-1] == "destroy"


@pytest.mark.root
def test_image_and_network_verbs_write_their_events(engine: Engine) -> None:
    engine.out("tag", "busybox", "evtest:v1")
    engine.out("rmi", "evtest:v1")
    image_events = [e for e in eventlog.read_events(engine.config, 0) if e.type == "image"]
    assert [e.action for e in image_events][-2:] == ["tag", "untag"]
    assert image_events[-2].attributes["name"] == "evtest:v1"
    assert image_events[-2].actor_id.startswith("sha256:")

    subnet = "10.213.61.0/24"
    net_id = engine.out("network", "create", "--subnet", subnet, "evnet").strip()
    engine.out("run", "--rm", "--network", "evnet", "busybox", "true")  # joins as it starts, leaves as it stops
    cid = next(e.actor_id for e in eventlog.read_events(engine.config, 0) if e.type == "container")
    engine.out("network", "rm", "evnet")
    net_events = [e for e in eventlog.read_events(engine.config, 0) if e.type == "network"]
    assert [e.action for e in net_events] == ["create", "connect", "disconnect", "destroy"]
    assert all(e.actor_id == net_id and e.attributes["name"] == "evnet" for e in net_events)
    assert net_events[1].attributes == {"name": "evnet", "type": "bridge", "container": cid} == net_events[2].attributes


# ---- the log's own invariants -------------------------------------------------------------------------


def test_the_log_is_bounded_and_readers_see_both_generations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = EngineConfig(root=tmp_path)
    monkeypatch.setattr(events, "MAX_BYTES", 4096)
    for i in range(400):
        events.emit(config, "volume", "create", f"v{i}")
    path = Path(events.log_path(config))
    current, previous = path.stat().st_size, Path(str(path) + ".1").stat().st_size
    line = len(path.read_bytes().splitlines()[0]) + 1
    assert current <= 4096 + line and previous <= 4096 + line  # each generation stops one line past the cap
    kept = eventlog.read_events(config, 0)
    names = [e.actor_id for e in kept]
    assert names == [f"v{i}" for i in range(400 - len(names), 400)]  # the newest, in order, none lost between
    assert len(names) >= 4096 // line


def test_concurrent_appenders_never_tear_a_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four processes append 300 events each while the log rotates under them: every line kept
    parses, and with a cap too large to rotate, every event is there once."""
    code = (
        "import sys\n"
        "from engine import events\nfrom engine.config import EngineConfig\n"
        "events.MAX_BYTES = int(sys.argv[2])\n"
        "config = EngineConfig(root=sys.argv[1])\n"
        "for i in range(300):\n"
        "    events.emit(config, 'container', 'start', f'{sys.argv[3]}-{i}', {'pad': 'x' * 200})\n"
    )
    for cap, root in ((1 << 30, tmp_path / "big"), (8192, tmp_path / "small")):
        procs = [subprocess.Popen([sys.executable, "-c", code, str(root), str(cap), f"w{n}"], cwd=REPO) for n in range(4)]
        assert all(p.wait(timeout=60) == 0 for p in procs)
        raw = b"".join(Path(p).read_bytes() for p in (events.log_path(EngineConfig(root=root)) + ".1",
                                                      events.log_path(EngineConfig(root=root))) if Path(p).exists())
        for line in raw.splitlines():
            json.loads(line)  # no torn or interleaved line
        ids = [e.actor_id for e in eventlog.read_events(EngineConfig(root=root), 0)]
        if cap > 8192:
            assert sorted(ids) == sorted(f"w{n}-{i}" for n in range(4) for i in range(300))
        else:
            assert len(raw) <= 2 * (8192 + 4 * 400)


def test_follower_reads_across_a_rotation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = EngineConfig(root=tmp_path)
    events.emit(config, "image", "pull", "before:latest")
    follower = eventlog.Follower(config)
    monkeypatch.setattr(events, "MAX_BYTES", 2048)
    got: list[str] = []
    for i in range(60):  # a rotation every ~11 events, polls every 5: each rotation falls between polls
        events.emit(config, "image", "tag", f"img{i}")
        if i % 5 == 0:
            got += [e.actor_id for e in follower.poll()]
    got += [e.actor_id for e in follower.poll()]
    follower.close()
    assert Path(events.log_path(config) + ".1").exists()
    assert got == [f"img{i}" for i in range(60)]  # nothing lost at a rotation, "before" not repeated


def test_an_unwritable_log_loses_the_event_not_the_verb(tmp_path: Path) -> None:
    (tmp_path / "events").write_text("not a directory")
    events.emit(EngineConfig(root=tmp_path), "volume", "create", "v")  # no exception
    assert eventlog.read_events(EngineConfig(root=tmp_path), 0) == []


def _event(type_: str, action: str, actor: str, **attrs: str) -> Event:
    return Event(type_, action, actor, attrs, time_nano=1)


def test_filters_follow_dockers_rules() -> None:
    start = _event("container", "start", "abc123", name="web", image="busybox:latest", tier="front")
    exec_start = _event("container", "exec_start: sh -c ls", "abc123", name="web", image="busybox")
    pull = _event("image", "pull", "busybox:latest", name="busybox:latest")
    net = _event("network", "connect", "n1d", name="front", type="bridge", container="abc123")
    parse = EventFilter.parse
    assert parse([("container", "web")]).matches(start) and parse([("container", "abc")]).matches(start)
    assert not parse([("container", "web")]).matches(net)  # another type's event never matches container=
    assert parse([("event", "exec_start")]).matches(exec_start) and not parse([("event", "exec")]).matches(exec_start)
    assert parse([("image", "busybox")]).matches(start) and parse([("image", "busybox")]).matches(pull)
    assert parse([("label", "tier=front")]).matches(start) and parse([("label", "tier")]).matches(start)
    assert not parse([("label", "tier"), ("label", "zone")]).matches(start)  # labels AND
    assert parse([("type", "image"), ("type", "network")]).matches(net)  # one key's values OR
    assert not parse([("type", "image"), ("event", "connect"), ("network", "front")]).matches(pull)
    assert parse([("network", "front"), ("event", "connect")]).matches(net)
    with pytest.raises(Exception, match="invalid filter 'colour'"):
        parse([("colour", "red")])
    with pytest.raises(Exception, match="type=box"):
        parse([("type", "box")])


# ---- dockui events -------------------------------------------------------------------------------------


def test_cli_events_history_filters_and_formats(tmp_path: Path) -> None:
    config = EngineConfig(root=tmp_path)
    events.emit(config, "volume", "create", "old")
    time.sleep(0.01)
    since = time.time()
    events.emit(config, "volume", "create", "a", {"driver": "local"})
    events.emit(config, "network", "create", "n1", {"name": "net1", "type": "bridge"})
    events.emit(config, "volume", "destroy", "a", {"driver": "local"})
    env = dict(os.environ, PYTHONPATH=str(REPO))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tui.launcher", "--root", str(tmp_path), "events", *args],
                              capture_output=True, text=True, env=env, cwd=REPO, timeout=30)

    until = f"{time.time():.9f}"
    plain = run("--since", f"{since:.9f}", "--until", until)
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert len(lines) == 3 and " volume create a (driver=local)" in lines[0] and " network create n1 " in lines[1]
    # the docker CLI's time: local, Go's RFC3339 with nanoseconds, UTC written "Z"
    env["TZ"] = "UTC"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", run("--since", f"{since:.9f}", "--until", until).stdout.split()[0])
    env["TZ"] = "Asia/Kolkata"
    assert run("--since", f"{since:.9f}", "--until", until).stdout.split()[0].endswith("+05:30")
    del env["TZ"]
    templ = run("--since", f"{since:.9f}", "--until", until, "-f", "type=volume", "--format", "{{.Type}}/{{.Action}}/{{.Actor.ID}}")
    assert templ.stdout.splitlines() == ["volume/create/a", "volume/destroy/a"]
    as_json = run("--since", "1h", "--until", until, "-f", "event=destroy", "--format", "json")
    assert [json.loads(x)["Actor"]["ID"] for x in as_json.stdout.splitlines()] == ["a"]
    bad = run("-f", "colour=red")
    assert bad.returncode == 1 and bad.stderr.strip() == "Error: invalid filter 'colour'"


@pytest.mark.root
def test_cli_events_as_a_user_without_rights_is_one_line(tmp_path: Path) -> None:
    root = tmp_path / "root"
    events.emit(EngineConfig(root=root), "volume", "create", "v")  # the log: 0600 in a 0700 directory
    os.chmod(tmp_path, 0o755)
    os.chmod(root, 0o755)
    env = {k: v for k, v in os.environ.items() if k != "DOCKUI_CONFIG"} | {"PYTHONPATH": str(REPO), "HOME": "/tmp"}
    for args in (["--since", "1h", "--until", "0s"], ["--until", "0s"]):
        result = subprocess.run([sys.executable, "-m", "tui.launcher", "--root", str(root), "events", *args],
                                capture_output=True, text=True, cwd=REPO, timeout=30, user=65534, env=env)
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: the events log {root}/events/events.log"), lines
        assert lines[0].endswith("is readable by root only: run it with sudo")


def test_cli_events_follows_until_interrupted(tmp_path: Path) -> None:
    config = EngineConfig(root=tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "tui.launcher", "--root", str(tmp_path), "events", "--format",
                             "{{.Action}} {{.Actor.ID}}"], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        time.sleep(1.0)  # the follower starts at the end of the log: give the interpreter time to get there
        events.emit(config, "image", "pull", "live:1")
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "pull live:1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
