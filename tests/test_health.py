"""Healthchecks: Docker's rules as pure values (durations, the result rule, the flags), then real
containers whose checker runs the probe inside them (`ps`, `inspect`, events, filters, timeouts, the
image's HEALTHCHECK, --no-healthcheck, stop and restart), and the Engine API through docker-py."""

from __future__ import annotations

import json
import os
import time

import pytest

from engine.container import health
from engine.container.health import Healthcheck
from engine.errors import InvalidArgument
from tests.service_support import Service, service_fixture  # noqa: F401 - the `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401


@pytest.mark.parametrize(("text", "ns", "shown"), [
    ("30s", 30_000_000_000, "30s"), ("1m30s", 90_000_000_000, "1m30s"), ("500ms", 500_000_000, "500ms"),
    ("0.2s", 200_000_000, "200ms"), ("1.5s", 1_500_000_000, "1.5s"), ("1h", 3_600_000_000_000, "1h0m0s"),
    ("0", 0, "0s"),
])
def test_go_durations(text: str, ns: int, shown: str) -> None:
    assert health.parse_duration(text) == ns
    assert health.format_duration(ns) == shown


@pytest.mark.parametrize("text", ["", "abc", "10", "1x", "s"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid duration"):
        health.parse_duration(text, "--health-interval")


def _result(code: int) -> dict:
    return {"Start": "s", "End": "e", "ExitCode": code, "Output": ""}


# (status before, streak before, exit code, retries, within the start period) -> (status, streak)
@pytest.mark.parametrize(("before", "streak", "code", "retries", "in_period", "after", "streak_after"), [
    ("starting", 0, 0, 3, False, "healthy", 0),
    ("starting", 0, 1, 3, False, "starting", 1),
    ("starting", 2, 1, 3, False, "unhealthy", 3),
    ("starting", 0, 1, 1, True, "starting", 0),  # the start period: failures do not count
    ("healthy", 0, 1, 1, True, "unhealthy", 1),  # ... only while still starting
    ("unhealthy", 5, 0, 3, False, "healthy", 0),
    ("healthy", 0, -1, 2, False, "healthy", 1),  # a timeout is a failure
])
def test_result_rule(before: str, streak: int, code: int, retries: int, in_period: bool, after: str,
                     streak_after: int) -> None:
    state = {"Status": before, "FailingStreak": streak, "Log": [_result(0)] * 5}
    new = health.with_result(state, _result(code), retries, in_period)
    assert (new["Status"], new["FailingStreak"]) == (after, streak_after)
    assert len(new["Log"]) == health.LOG_ENTRIES and new["Log"][-1]["ExitCode"] == code


def test_flags_and_merge() -> None:
    flags = health.from_flags(None, "0.2s", None, None, 2, False)
    image = Healthcheck(test=("CMD", "true"), interval=5_000_000_000, timeout=7_000_000_000)
    assert flags is not None
    assert flags.over(image) == Healthcheck(("CMD", "true"), 200_000_000, 7_000_000_000, 0, 2)
    assert health.from_flags(None, None, None, None, None, True) == Healthcheck(("NONE",))
    assert health.from_flags(None, None, None, None, None, False) is None
    assert Healthcheck.from_docker({"Test": ["CMD-SHELL", "x"], "Interval": 10**9}).to_docker() == {
        "Test": ["CMD-SHELL", "x"], "Interval": 10**9}
    for args, message in [
        (("true", None, None, None, None, True), "conflicts"),
        ((None, "-1s", None, None, None, False), "cannot be negative"),
        ((None, None, None, None, -1, False), "cannot be negative"),
        ((None, "10us", None, None, None, False), "less than 1ms"),
    ]:
        with pytest.raises(InvalidArgument, match=message):
            health.from_flags(*args)


# ------------------------------------------------------------------------------------------ real containers


def _health(engine: Engine, ref: str) -> dict:
    return engine.inspect(ref)["State"].get("Health") or {}


def _wait_status(engine: Engine, ref: str, status: str, timeout: float = 15) -> dict:
    found = wait_until(lambda: _health(engine, ref).get("Status") == status, timeout=timeout, interval=0.1)
    current = _health(engine, ref)
    assert found, f"{ref}: {status} expected, health is {current}"
    return current


def _checkers(cid: str) -> list[int]:
    """Live health checker processes of the container `cid`."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if b"engine.container.monitor.health" in argv and cid.encode() in argv:
                found.append(int(entry.name))
    return [pid for pid in found if _parent(pid) not in found]  # not a probe forked a moment ago


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except OSError:
        return 0


@pytest.mark.root
def test_healthchecks_of_real_containers(engine: Engine) -> None:
    run = ("run", "-d", "--network", "none")
    flaky = engine.out(*run, "--name", "flaky", "--health-cmd", "echo probe; test -f /tmp/ok",
                       "--health-interval", "0.1s", "--health-retries", "2", "busybox", "sleep", "60").strip()
    engine.out(*run, "--name", "slow", "--health-cmd", "sleep 5", "--health-timeout", "200ms",
               "--health-interval", "0.1s", "--health-retries", "1", "busybox", "sleep", "60")
    engine.out(*run, "--name", "patient", "--health-cmd", "exit 3", "--health-interval", "0.1s",
               "--health-retries", "1", "--health-start-period", "1h", "busybox", "sleep", "60")
    engine.out(*run, "--name", "later", "--health-cmd", "true", "--health-interval", "1h", "busybox", "sleep", "60")
    engine.out(*run, "--name", "plain", "busybox", "sleep", "60")

    # Starting: no probe yet (the interval comes first, as Docker's)
    assert _health(engine, "later") == {"Status": "starting", "FailingStreak": 0, "Log": []}
    assert "(health: starting)" in engine.out("ps", "-f", "name=later")
    assert "plain" not in engine.out("ps", "-f", "health=starting") and "later" in engine.out("ps", "-f", "health=starting")

    # Failing: unhealthy after `retries` failures in a row, the probe's output and exit code logged
    state = _wait_status(engine, "flaky", "unhealthy")
    assert state["FailingStreak"] >= 2 and 2 <= len(state["Log"]) <= 5
    assert {(r["ExitCode"], r["Output"]) for r in state["Log"]} == {(1, "probe\n")}
    assert "(unhealthy)" in engine.out("ps", "-f", "name=flaky")
    # ... and healthy once the probe passes
    engine.out("exec", "flaky", "touch", "/tmp/ok")
    state = _wait_status(engine, "flaky", "healthy")
    assert state["FailingStreak"] == 0 and state["Log"][-1]["ExitCode"] == 0
    assert "(healthy)" in engine.out("ps", "-f", "name=flaky")
    assert engine.out("ps", "-q", "-f", "health=healthy").split() == [flaky[:12]]

    # Overrunning its timeout: killed, ExitCode -1, Docker's message
    state = _wait_status(engine, "slow", "unhealthy")
    assert state["Log"][0]["ExitCode"] == -1
    assert state["Log"][0]["Output"] == "Health check exceeded timeout (200ms)"

    # Within the start period failures are logged but do not count
    wait_until(lambda: len(_health(engine, "patient").get("Log") or []) >= 2, interval=0.1)
    state = _health(engine, "patient")
    assert state["Status"] == "starting" and state["FailingStreak"] == 0 and state["Log"][0]["ExitCode"] == 3

    assert "plain" in engine.out("ps", "-f", "health=none") and "flaky" not in engine.out("ps", "-f", "health=none")
    assert "State.Health" not in json.dumps(engine.inspect("plain")["State"])
    assert "Health" not in engine.inspect("plain")["State"]

    # Events: each change of status once
    events = engine.out("events", "--since", "0", "--until", str(int(time.time()) + 1), "--filter", "container=flaky",
                        "--format", "{{.Action}}").split("\n")
    assert [e for e in events if e.startswith("health_status")] == ["health_status: unhealthy", "health_status: healthy"]

    # The checker lives as long as the container: gone with a stop, a fresh one after a start
    assert len(_checkers(flaky)) == 1
    engine.out("rm", "-f", "slow", "patient", "later", "plain")
    engine.out("stop", "-t", "0", "flaky")
    assert wait_until(lambda: not _checkers(flaky), timeout=5), _checkers(flaky)
    logged = len(_health(engine, "flaky")["Log"])
    engine.out("start", "flaky")
    assert wait_until(lambda: _health(engine, "flaky")["Log"][-1]["Start"] > engine.inspect("flaky")["State"]["StartedAt"],
                      interval=0.1), logged
    assert _health(engine, "flaky")["Status"] == "healthy" and len(_checkers(flaky)) == 1
    engine.out("rm", "-f", "flaky")


@pytest.mark.root
def test_image_healthcheck_and_no_healthcheck(engine: Engine) -> None:
    from engine.image.store import ImageStore
    from tests.fixtures.busybox import busybox_tarball

    check = {"Test": ["CMD-SHELL", "echo from-image"], "Interval": 100_000_000, "Retries": 2}
    ImageStore(engine.config).import_tarball(busybox_tarball(), "checked:latest",
                                             changes={"Cmd": ["sleep", "60"], "Healthcheck": check})
    engine.out("run", "-d", "--network", "none", "--name", "inherits", "checked")
    engine.out("run", "-d", "--network", "none", "--name", "overrides", "--health-retries", "5", "checked")
    engine.out("run", "-d", "--network", "none", "--name", "disabled", "--no-healthcheck", "checked")
    assert engine.inspect("inherits")["Config"]["Healthcheck"] == check
    assert engine.inspect("overrides")["Config"]["Healthcheck"] == {**check, "Retries": 5}
    assert engine.inspect("disabled")["Config"]["Healthcheck"]["Test"] == ["NONE"]
    state = _wait_status(engine, "inherits", "healthy")
    assert state["Log"][-1]["Output"] == "from-image\n"
    assert "Health" not in engine.inspect("disabled")["State"]
    assert "disabled" in engine.out("ps", "-f", "health=none")
    engine.out("rm", "-f", "inherits", "overrides", "disabled")


@pytest.mark.root
@pytest.mark.parametrize(("flags", "message"), [
    (("--no-healthcheck", "--health-cmd", "true"), "--no-healthcheck conflicts with --health-* options"),
    (("--health-interval", "soon"), 'invalid duration "soon"'),
    (("--health-timeout=-1s",), "--health-timeout cannot be negative"),
])
def test_bad_health_flags_change_nothing(engine: Engine, flags: tuple[str, ...], message: str) -> None:
    result = engine.cli("run", "-d", "--network", "none", *flags, "busybox", "true")
    assert result.returncode == 125 and message in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()
    assert engine.out("ps", "-aq") == ""


@pytest.mark.root
def test_healthcheck_through_the_api(service: Service) -> None:
    client = service.client()
    container = client.containers.run(
        "busybox", ["sleep", "60"], detach=True, network_mode="none",
        healthcheck={"test": ["CMD", "sh", "-c", "echo api-probe"], "interval": 100_000_000, "retries": 1})
    try:
        found = wait_until(lambda: client.api.inspect_container(container.id)["State"].get("Health", {}).get("Status")
                           == "healthy", interval=0.1)
        assert found, client.api.inspect_container(container.id)["State"]
        assert client.api.inspect_container(container.id)["State"]["Health"]["Log"][-1]["Output"] == "api-probe\n"
        listed = client.api.containers(filters={"health": "healthy"})
        assert [c["Id"] for c in listed] == [container.id] and "(healthy)" in listed[0]["Status"]
        assert client.api.containers(filters={"health": "unhealthy"}) == []
    finally:
        container.remove(force=True)


COMPOSE_FILE = """version: "2.4"
services:
  db:
    image: busybox
    command: ["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 300"]
    stop_signal: SIGKILL
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 200ms
      retries: 50
  web:
    image: busybox
    depends_on:
      db:
        condition: service_healthy
    command: ["sleep", "300"]
    stop_signal: SIGKILL
"""


@pytest.mark.root
def test_compose_waits_for_a_healthy_service(service: Service, tmp_path) -> None:  # noqa: ANN001
    """docker-compose (Debian's 1.29) through the Engine API: `depends_on: condition: service_healthy`
    starts web only once db's healthcheck passed."""
    import shutil
    import subprocess

    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([compose, "-p", "dkhc", *args], cwd=tmp_path, env=service.env, capture_output=True, timeout=120)

    try:
        up = run("up", "-d")
        assert up.returncode == 0, up.stderr.decode()
        client = service.client()
        db, web = (client.api.inspect_container(f"dkhc_{name}_1") for name in ("db", "web"))
        assert db["Config"]["Healthcheck"]["Test"] == ["CMD", "test", "-f", "/tmp/ready"]
        assert db["State"]["Health"]["Status"] == "healthy"
        # db is ready a second after its start at the earliest: web must not have started before
        from engine.util.timefmt import parse_rfc3339

        waited = parse_rfc3339(web["State"]["StartedAt"]) - parse_rfc3339(db["State"]["StartedAt"])
        assert waited >= 1.0, f"web started {waited:.2f} s after db, before db could be healthy"
    finally:
        down = run("down")
    assert down.returncode == 0, down.stderr.decode()


@pytest.mark.root
def test_testcontainers_waits_for_health(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """testcontainers' HealthcheckWaitStrategy reads State.Health through the Engine API."""
    pytest.importorskip("testcontainers")
    monkeypatch.setenv("DOCKER_HOST", service.host)
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")  # its reaper image is pulled from Docker Hub
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import HealthcheckWaitStrategy

    box = (DockerContainer("busybox").with_command("sh -c 'sleep 0.5; touch /tmp/up; exec sleep 300'")
           .with_kwargs(healthcheck={"test": ["CMD", "test", "-f", "/tmp/up"], "interval": 100_000_000, "retries": 50},
                        stop_signal="SIGKILL"))
    with box.waiting_for(HealthcheckWaitStrategy().with_startup_timeout(20)):
        state = box.get_wrapped_container().attrs["State"]
        assert state["Health"]["Status"] == "healthy"
    assert service.docker_out("ps", "-aq") == ""
