"""A realistic docker-compose (Debian's 1.29) project through the Engine API service, driven over
its whole life: config, build, up, ps, logs (followed, interrupted), exec (with and without a tty),
run --rm, top, port, scale, restart, stop/start, pause/unpause, kill, a changed service recreated
alone (the named volume's data kept), events, rm, down -v --remove-orphans, and then nothing left
(containers, networks, volumes, veths, bridges, resolvers, cgroups).

One project, one test: each step builds on the state the previous one left, as a user's session
does. The divergences from Docker it found are asserted where they showed (see the comments).
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.service_support import Service, service_fixture  # noqa: F401 - the `service` fixture
from tests.test_dns import _resolver_pids
from tests.test_lifecycle_support import Engine, cgroup_dirs, engine_fixture, wait_until  # noqa: F401

pytestmark = pytest.mark.root

PROJECT = "dkcp"
COMPOSE_FILE = """version: "2.4"
services:
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo web-ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: ["127.0.0.1::8080"]
    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://127.0.0.1:8080/"]
      interval: 300ms
      retries: 30
    networks:
      front: {}
      back:
        aliases: [www]
    labels:
      tier: front
    stop_signal: SIGKILL
  db:
    image: busybox
    env_file: db.env
    command: ["sh", "-c", "[ -f /data/seed ] || echo \\"$$DB_NAME seeded\\" > /data/seed; exec sleep 3600"]
    volumes: ["dbdata:/data"]
    networks: [back]
    init: true
    stop_grace_period: 2s
  worker:
    image: busybox
    command: ["sh", "-c", "echo worker-start; while true; do echo tick; sleep 1; done"]
    depends_on:
      web:
        condition: service_healthy
      db:
        condition: service_started
    restart: unless-stopped
    user: "1000:1000"  # its init runs as another user than the exec helper (prlimit() would need CAP_SYS_RESOURCE)
    volumes_from: [db]
    networks:
      back:
        aliases: [jobs]
    tmpfs: ["/scratch:size=1m"]
    ulimits:
      nofile: {soft: 1024, hard: 2048}
    cap_drop: [NET_RAW]
    labels:
      tier: back
    logging:
      driver: json-file
      options: {max-size: "1m", max-file: "2"}
    stop_signal: SIGTERM
    stop_grace_period: 1s
    init: true
  app:
    build:
      context: ./app
      args: {GREETING: hello-from-build}
    image: dkcp-app:1
    command: ["sh", "-c", "cat /greeting; exec sleep 3600"]
    networks: [back]
    stop_signal: SIGKILL
volumes:
  dbdata: {}
networks:
  front: {}
  back:
    internal: true
"""
EXTRA_FILE = """version: "2.4"
services:
  extra:
    image: busybox
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    networks: [back]
"""
DOCKERFILE = "FROM busybox\nARG GREETING=none\nRUN echo \"$GREETING\" > /greeting\nLABEL role=app\n"


class Project:
    def __init__(self, service: Service, workdir: Path, binary: str) -> None:
        self.service, self.workdir, self.binary = service, workdir, binary

    def run(self, *args: str, files: tuple[str, ...] = (), timeout: float = 60) -> subprocess.CompletedProcess:
        argv = [self.binary, "-p", PROJECT, *(a for f in files for a in ("-f", f)), *args]
        return subprocess.run(argv, cwd=self.workdir, env=self.service.env, capture_output=True, timeout=timeout)

    def ok(self, *args: str, files: tuple[str, ...] = ()) -> str:
        done = self.run(*args, files=files)
        assert done.returncode == 0, f"docker-compose {' '.join(args)}:\n{done.stdout.decode()}\n{done.stderr.decode()}"
        return done.stdout.decode()

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:  # noqa: ANN003
        return subprocess.Popen([self.binary, "-p", PROJECT, *args], cwd=self.workdir, env=self.service.env, **kwargs)

    def inspect(self, name: str) -> dict:
        return json.loads(self.service.docker_out("inspect", f"{PROJECT}_{name}"))[0]

    def ids(self) -> dict[str, str]:
        out = self.service.docker_out("ps", "-a", "--no-trunc", "--format", "{{.Names}} {{.ID}}")
        return dict(line.split() for line in out.splitlines())


@pytest.fixture(name="project")
def project_fixture(service: Service, tmp_path: Path):  # noqa: ANN201
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE)
    (tmp_path / "extra.yml").write_text(EXTRA_FILE)
    (tmp_path / "db.env").write_text("DB_NAME=inventory\nDB_USER=admin\n")
    project = Project(service, tmp_path, binary)
    try:
        yield project
    finally:
        project.run("down", "-v", "--remove-orphans", "-t", "0", files=("docker-compose.yml", "extra.yml"))


def test_compose_project_lifecycle(project: Project, service: Service) -> None:
    config = project.ok("config")
    assert "DB_NAME: inventory" in config and "internal: true" in config and "GREETING: hello-from-build" in config
    assert "Successfully tagged dkcp-app:1" in project.ok("build")

    _up_and_inspect(project, service)
    _logs_exec_run_top_port(project)
    _scale_restart_stop_start(project, service)
    _pause_and_kill(project, service)
    _recreate_one_service(project)
    _events_rm_and_down(project, service)


def _up_and_inspect(project: Project, service: Service) -> None:
    project.ok("up", "-d")
    ps = project.ok("ps")
    assert ps.count(" Up") == 4 and "Up (healthy)" in ps, ps
    worker = project.inspect("worker_1")
    host = worker["HostConfig"]
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}] and host["CapDrop"] == ["NET_RAW"]
    assert host["Tmpfs"] == {"/scratch": "size=1m"} and host["Init"] is True
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "2", "max-size": "1m"}}
    assert host["RestartPolicy"]["Name"] == "unless-stopped" and len(host["VolumesFrom"]) == 1
    assert worker["Config"]["StopSignal"] == "SIGTERM" and worker["Config"]["StopTimeout"] == 1
    assert worker["Config"]["Labels"]["tier"] == "back"
    assert "jobs" in worker["NetworkSettings"]["Networks"][f"{PROJECT}_back"]["Aliases"]
    assert service.docker_out("network", "inspect", "-f", "{{.Internal}}", f"{PROJECT}_back").strip() == "true"


def _logs_exec_run_top_port(project: Project) -> None:
    assert "hello-from-build" in project.ok("logs", "--no-color", "--tail", "5", "app")
    follow = project.popen("logs", "-f", "--no-color", "--tail", "2", "worker", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert follow.stdout is not None
        lines = [follow.stdout.readline() for _ in range(4)]  # Attaching..., 2 of the tail, then a new tick
        assert all(b"tick" in line or b"worker-start" in line for line in lines[1:]), lines
    finally:
        follow.send_signal(signal.SIGINT)
        follow.wait(timeout=10)

    # exec -T: the container's settings hold in the exec too. Docker's exec takes the container's
    # rlimits (its spec), so `ulimit -n` is the service's nofile: dockui's exec had the limits of the
    # process that started it (the service's) until exec_in_container copied the init's.
    out = project.ok("exec", "-T", "worker", "sh", "-c",
                     "ulimit -n; ulimit -Hn; cat /data/seed; grep CapBnd /proc/self/status; mount | grep -c ' /scratch '; "
                     "cat /proc/1/cmdline | tr '\\0' ' '")
    lines = out.splitlines()
    assert lines[:3] == ["1024", "2048", "inventory seeded"], out  # volumes_from: db's named volume
    assert not int(lines[3].split()[1], 16) & (1 << 13) and lines[4] == "1", out  # CAP_NET_RAW dropped; the tmpfs
    assert lines[5].startswith("/sbin/docker-init -- sh -c"), out
    lookup = project.ok("exec", "-T", "worker", "sh", "-c", "nslookup www && nslookup jobs")
    assert lookup.count("Name:") == 2, lookup  # web's alias and the worker's own, on the internal network

    main, secondary = pty.openpty()  # exec without -T: the docker CLI's `exec -it` on a terminal
    try:
        with_tty = project.popen("exec", "worker", "sh", "-c", "tty; echo tty-done",
                                 stdin=secondary, stdout=secondary, stderr=secondary)
        os.close(secondary)
        assert with_tty.wait(timeout=30) == 0
        seen = _drain(main)
        assert b"/dev/pts/" in seen and b"tty-done" in seen, seen
    finally:
        os.close(main)

    run = project.run("run", "--rm", "db", "sh", "-c", "cat /data/seed; echo $DB_USER")
    assert (run.returncode, run.stdout) == (0, b"inventory seeded\nadmin\n"), run.stderr
    assert not [n for n in project.ids() if "run" in n]  # --rm removed it

    top = project.ok("top", "worker")
    assert "docker-init" in top and "while true" in top
    port = project.ok("port", "web", "8080").strip()
    assert port.startswith("127.0.0.1:")
    body = urllib.request.urlopen(f"http://{port}/", timeout=5).read()  # loopback only
    assert body == b"web-ok\n"


def _drain(fd: int) -> bytes:
    data = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: every writer of the terminal is gone
            return data
        if not chunk:
            return data
        data += chunk


def _scale_restart_stop_start(project: Project, service: Service) -> None:
    project.ok("up", "-d", "--scale", "worker=3")
    assert sorted(n for n in project.ids() if "worker" in n) == [f"{PROJECT}_worker_{i}" for i in (1, 2, 3)]
    jobs = project.ok("exec", "-T", "--index", "3", "worker", "nslookup", "jobs")
    assert jobs.count("Name:\tjobs") == 3, jobs  # every replica answers to the alias
    project.ok("scale", "worker=1")
    started = project.inspect("worker_1")["State"]["StartedAt"]
    project.ok("restart", "-t", "1", "worker")
    assert project.inspect("worker_1")["State"]["StartedAt"] != started

    project.ok("stop", "-t", "1")
    ps = project.ok("ps")
    assert " Up" not in ps and "Exit 137" in ps and "Exit 143" in ps, ps  # SIGKILL'd web/app; init forwards SIGTERM
    # A stopped container holds no published port and no address, and keeps its networks and their
    # aliases (Docker's releaseNetwork). dockui listed the port still, and only the first network
    # without aliases, so compose's start did not disconnect web from its second network before
    # reconnecting it and failed: "endpoint with name dkcp_web_1 already exists in network dkcp_front".
    assert service.docker_out("ps", "-a", "--filter", f"name={PROJECT}_web_1", "--format", "{{.Ports}}").strip() == ""
    web = project.inspect("web_1")["NetworkSettings"]
    assert web["Ports"] == {} and web["IPAddress"] == ""
    assert sorted(web["Networks"]) == [f"{PROJECT}_back", f"{PROJECT}_front"]
    assert "www" in web["Networks"][f"{PROJECT}_back"]["Aliases"] and web["Networks"][f"{PROJECT}_back"]["IPAddress"] == ""
    project.ok("start")
    ps = project.ok("ps")
    assert ps.count(" Up") == 4, ps
    assert project.ok("port", "web", "8080").startswith("127.0.0.1:")


def _pause_and_kill(project: Project, service: Service) -> None:
    project.ok("pause", "worker")
    assert project.inspect("worker_1")["State"]["Status"] == "paused"
    project.ok("unpause", "worker")
    assert project.inspect("worker_1")["State"]["Status"] == "running"

    # A signal other than the container's StopSignal (SIGTERM here) keeps the restart policy: init
    # hands SIGUSR1 to sh, which dies of it, and unless-stopped brings the worker back.
    project.ok("kill", "-s", "SIGUSR1", "worker")
    assert wait_until(lambda: project.inspect("worker_1")["RestartCount"] == 1, timeout=10)
    assert wait_until(lambda: project.inspect("worker_1")["State"]["Status"] == "running", timeout=10)
    # SIGKILL is final until the next start (moby's killWithSignal: ExitOnNext): dockui restarted it.
    project.ok("kill", "-s", "SIGKILL", "worker")
    assert wait_until(lambda: project.inspect("worker_1")["State"]["Status"] == "exited", timeout=10)
    time.sleep(1.0)  # the first restart of a policy comes within 0.1 s: none may come
    state = project.inspect("worker_1")
    assert (state["State"]["Status"], state["State"]["ExitCode"], state["RestartCount"]) == ("exited", 137, 1)
    project.ok("start", "worker")


def _recreate_one_service(project: Project) -> None:
    before = project.ids()
    compose_file = project.workdir / "docker-compose.yml"
    compose_file.write_text(COMPOSE_FILE.replace("cat /greeting; exec", "cat /greeting; echo changed; exec"))
    project.ok("up", "-d")
    after = project.ids()
    changed = {name for name in after if before.get(name) != after[name]}
    assert changed == {f"{PROJECT}_app_1"}, (before, after)
    (project.workdir / "db.env").write_text("DB_NAME=other\nDB_USER=root\n")
    project.ok("up", "-d")
    assert project.ids()[f"{PROJECT}_db_1"] != after[f"{PROJECT}_db_1"]
    kept = project.ok("exec", "-T", "db", "sh", "-c", "cat /data/seed; echo $DB_USER")
    assert kept == "inventory seeded\nroot\n"  # the named volume outlived the container


def _events_rm_and_down(project: Project, service: Service) -> None:
    events = project.popen("events", "--json", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)  # compose subscribes after it read the project's containers
        project.ok("restart", "-t", "0", "app")
        assert events.stdout is not None
        seen = []
        while not any(e["action"] == "start" and e["service"] == "app" for e in seen):
            line = events.stdout.readline()
            assert line, seen
            seen.append(json.loads(line))
        assert {"die", "stop", "start"} <= {e["action"] for e in seen if e["service"] == "app"}
    finally:
        events.terminate()
        events.wait(timeout=10)

    project.ok("rm", "-f", "-s", "worker")
    assert f"{PROJECT}_worker_1" not in project.ids()
    project.ok("up", "-d", "--no-deps", "extra", files=("docker-compose.yml", "extra.yml"))
    config = service.engine.config
    networks = {n: json.loads((config.root / "network" / "networks" / f"{n}.json").read_text())
                for n in (f"{PROJECT}_front", f"{PROJECT}_back")}
    from engine.network.records import veth_name

    veths = {veth_name(cid, net["id"]) for cid in project.ids().values() for net in networks.values()}
    project.ok("down", "-v", "--remove-orphans", "-t", "1")
    assert service.docker_out("ps", "-aq") == ""
    assert sorted(service.docker_out("network", "ls", "--format", "{{.Name}}").split()) == ["bridge", "host", "none"]
    assert service.docker_out("volume", "ls", "-q") == ""
    assert [n for n in veths | {net["bridge"] for net in networks.values()} if Path("/sys/class/net", n).exists()] == []
    assert list((config.root / "network" / "endpoints").iterdir()) == []
    assert wait_until(lambda: not _resolver_pids(service.engine), timeout=10), _resolver_pids(service.engine)
    assert cgroup_dirs(config) == []
