"""The Engine API service's containers and exec, driven by real clients (the docker CLI, docker-py)
and raw HTTP against `dockui system service` on a socket of its own."""

from __future__ import annotations

import json
import os

import pytest

from tests.service_support import Service, service_fixture  # noqa: F401 - the `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root


def test_ping_version_info_report_the_engine(service: Service) -> None:
    ping = service.request("GET", "/_ping")
    assert ping.status == 200 and ping.body == b"OK"
    assert ping.headers["api-version"] == "1.43" and ping.headers["ostype"] == "linux"
    head = service.request("HEAD", "/v1.43/_ping")
    assert head.status == 200 and head.headers["docker-experimental"] == "false"
    info = service.request("GET", "/v1.41/info").json()
    assert info["Images"] == 1 and info["Containers"] == 0
    assert info["NCPU"] == os.cpu_count() and info["MemTotal"] > 0 and info["Driver"] == "overlay2"
    assert info["KernelVersion"] == os.uname().release and info["DockerRootDir"] == str(service.engine.config.root)
    assert dict(info["DriverStatus"])["Backing Filesystem"] in ("extfs", "xfs", "btrfs", "tmpfs", "overlay")
    version = service.docker_out("version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}")
    assert version.split() == ["1.43", "1.24"]


def test_docker_cli_detached_lifecycle(service: Service) -> None:
    cid = service.docker_out("run", "-d", "--name", "web", "busybox", "sh", "-c", "echo hello; echo oops >&2; sleep 300").strip()
    assert len(cid) == 64
    ps = service.docker_out("ps", "--format", "{{.ID}} {{.Names}} {{.Status}}")
    assert ps.startswith(cid[:12] + " web Up")
    assert wait_until(lambda: service.docker("logs", "web").stdout == b"hello\n")
    logs = service.docker("logs", "web")
    assert logs.stdout == b"hello\n" and logs.stderr == b"oops\n"
    inspect = json.loads(service.docker_out("inspect", "web"))[0]
    assert inspect["Id"] == cid and inspect["State"]["Running"] is True and inspect["Name"] == "/web"
    assert service.docker_out("stop", "-t", "1", "web").strip() == "web"
    assert json.loads(service.docker_out("inspect", "web"))[0]["State"]["Status"] == "exited"
    assert service.docker_out("ps", "-q") == ""
    assert service.docker_out("ps", "-aq", "--no-trunc").strip() == cid
    assert service.docker_out("rm", "web").strip() == "web"
    assert service.docker_out("ps", "-aq") == ""


def test_docker_cli_foreground_run_streams_and_exit_codes(service: Service) -> None:
    result = service.docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (result.returncode, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
    piped = service.docker("run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done")
    assert piped.returncode == 0 and piped.stdout == b"done\n"
    fed = service.docker("run", "-i", "--rm", "busybox", "tr", "a-z", "A-Z", input=b"piped input\n")
    assert (fed.returncode, fed.stdout) == (0, b"PIPED INPUT\n")
    kept = service.docker("run", "--name", "kept", "busybox", "sh", "-c", "echo kept")
    assert (kept.returncode, kept.stdout) == (0, b"kept\n")
    assert service.docker_out("ps", "-a", "--format", "{{.Names}} {{.Status}}").startswith("kept Exited (0)")
    assert service.docker_out("wait", "kept").strip() == "0"
    assert service.docker_out("rm", "kept").strip() == "kept"
    missing = service.docker("run", "--rm", "busybox", "/no/such/binary")
    assert missing.returncode == 127 and b"no such file or directory" in missing.stderr
    denied = service.docker("run", "--rm", "busybox", "/etc/passwd")
    assert denied.returncode == 126 and b"permission denied" in denied.stderr
    assert service.docker_out("ps", "-aq") == ""  # the --rm runs removed themselves, failed starts too


def test_docker_cli_exec_codes_stdin_and_inspect(service: Service) -> None:
    service.docker_out("run", "-d", "--name", "box", "busybox", "sleep", "300")
    done = service.docker("exec", "box", "sh", "-c", "echo in-exec; echo e >&2; exit 4")
    assert (done.returncode, done.stdout, done.stderr) == (4, b"in-exec\n", b"e\n")
    fed = service.docker("exec", "-i", "box", "cat", input=b"abc\n")
    assert (fed.returncode, fed.stdout) == (0, b"abc\n")
    missing = service.docker("exec", "box", "/no/such/command")
    assert missing.returncode in (126, 127) and missing.stderr
    # exec instances stay inspectable after they end (what docker-py's exec_run reads)
    created = service.request("POST", "/v1.43/containers/box/exec", {"Cmd": ["sh", "-c", "exit 7"]})
    assert created.status == 201
    exec_id = created.json()["Id"]
    started = service.request("POST", f"/v1.43/exec/{exec_id}/start", {"Detach": True})
    assert started.status == 200
    assert wait_until(lambda: service.request("GET", f"/exec/{exec_id}/json").json()["ExitCode"] is not None, timeout=10)
    body = service.request("GET", f"/exec/{exec_id}/json").json()
    assert body["ExitCode"] == 7 and body["ProcessConfig"]["entrypoint"] == "sh" and body["Pid"] > 0
    again = service.request("POST", f"/v1.43/exec/{exec_id}/start", {"Detach": True})
    assert again.status == 409
    assert service.docker("stop", "-t", "0", "box").returncode == 0
    refused = service.docker("exec", "box", "true")
    assert refused.returncode != 0 and b"not running" in refused.stderr
    service.docker_out("rm", "box")


def _pty_session(service: Service, argv: list[str], keys: list[bytes], timeout: float = 20) -> tuple[int, bytes]:
    """The docker CLI on a 30x100 pty (tests.service_support.pty_run), typing `keys` one by one at
    the prompt; its exit status and everything it printed."""
    from tests.service_support import DOCKER, pty_run

    if DOCKER is None:
        pytest.skip("the docker CLI is not installed")
    return pty_run([DOCKER, *argv], service.env, keys, timeout)


def test_docker_cli_run_it_and_exec_it_through_a_pty(service: Service) -> None:
    code, output = _pty_session(service, ["run", "-it", "--rm", "busybox", "sh"],
                                [b"echo $((6*7)); tty; stty size\n", b"exit 5\n"])
    assert code == 5, output
    assert b"42" in output and b"/dev/pts/0" in output and b"30 100" in output
    code, output = _pty_session(service, ["run", "-it", "--name", "left", "busybox", "sh"], [b"\x10\x11"])
    assert code == 0, output  # Ctrl-P Ctrl-Q: the client detached, the container runs on
    assert service.docker_out("inspect", "-f", "{{.State.Running}}", "left").strip() == "true"
    service.docker_out("rm", "-f", "left")
    service.docker_out("run", "-d", "--name", "term", "busybox", "sleep", "300")
    code, output = _pty_session(service, ["exec", "-it", "term", "sh"], [b"stty size; echo $((2+3))x\n", b"exit 2\n"])
    assert code == 2, output
    assert b"5x" in output and b"30 100" in output
    service.docker_out("rm", "-f", "term")


def test_docker_cli_logs_follow_stats_top_and_state_verbs(service: Service) -> None:
    import subprocess

    from tests.service_support import DOCKER

    service.docker_out("run", "-d", "--name", "talk", "busybox", "sh", "-c",
                       "i=0; while [ $i -lt 30 ]; do echo line$i; i=$((i+1)); sleep 0.1; done; sleep 300")
    follower = subprocess.Popen([DOCKER, "logs", "-f", "--tail", "1", "talk"], stdout=subprocess.PIPE, env=service.env)
    try:
        assert follower.stdout is not None
        first = follower.stdout.readline()
        assert first.startswith(b"line")
        later = [follower.stdout.readline() for _ in range(3)]
        assert all(line.startswith(b"line") for line in later)
        # a second client is served while the follower streams
        assert service.docker_out("ps", "--format", "{{.Names}}").strip() == "talk"
        stats = service.docker_out("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", "talk")
        name, usage, *_rest, pids = stats.split()
        assert name == "talk" and usage.endswith("B") and int(pids) >= 1
        top = service.docker_out("top", "talk")
        assert "sleep" in top or "sh" in top
        service.docker_out("pause", "talk")
        assert "(Paused)" in service.docker_out("ps", "--format", "{{.Status}}")
        service.docker_out("unpause", "talk")
        service.docker_out("rename", "talk", "talk2")
        service.docker_out("stop", "-t", "1", "talk2")
        follower.wait(timeout=15)  # the follow ends with the container
    finally:
        if follower.poll() is None:
            follower.kill()
        follower.wait()
    tail = service.docker("logs", "--tail", "2", "talk2").stdout.splitlines()
    assert tail == [b"line28", b"line29"]
    service.docker_out("rm", "talk2")


def test_docker_cli_cp_both_ways_diff_and_export(service: Service, tmp_path) -> None:  # noqa: ANN001
    import subprocess
    import tarfile

    service.docker_out("run", "-d", "--name", "files", "busybox", "sh", "-c",
                       "echo inside > /tmp/f; mkdir /d; echo a > /d/a; ln -s /etc/passwd /lnk; sleep 300")
    assert wait_until(lambda: service.docker("exec", "files", "test", "-L", "/lnk").returncode == 0)
    service.docker_out("cp", "files:/tmp/f", str(tmp_path / "f"))
    assert (tmp_path / "f").read_text() == "inside\n"
    service.docker_out("cp", "files:/d", str(tmp_path / "d"))
    assert (tmp_path / "d" / "a").read_text() == "a\n"
    service.docker_out("cp", "files:/lnk", str(tmp_path / "lnk"))
    assert (tmp_path / "lnk").is_symlink() and str((tmp_path / "lnk").readlink()) == "/etc/passwd"  # the link, not the host's file
    (tmp_path / "host.txt").write_text("from host\n")
    service.docker_out("cp", str(tmp_path / "host.txt"), "files:/tmp/")
    assert service.docker_out("exec", "files", "cat", "/tmp/host.txt") == "from host\n"
    missing = service.docker("cp", "files:/no/such", str(tmp_path / "x"))
    assert missing.returncode != 0 and b"Could not find the file /no/such" in missing.stderr
    diff = service.docker_out("diff", "files").splitlines()
    assert "A /d/a" in diff and "A /tmp/host.txt" in diff and "C /tmp" in diff
    service.docker_out("stop", "-t", "0", "files")
    # a stopped container: through its overlay, mounted only in the helper's own namespace
    service.docker_out("cp", str(tmp_path / "host.txt"), "files:/")
    service.docker_out("cp", "files:/host.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "from host\n"
    export = subprocess.run([*_docker(service), "export", "files"], capture_output=True, env=service.env, timeout=60)
    assert export.returncode == 0
    names = tarfile.open(fileobj=__import__("io").BytesIO(export.stdout)).getnames()
    assert "host.txt" in names and "bin/busybox" in names
    service.docker_out("rm", "files")


def _docker(service: Service) -> list[str]:
    from tests.service_support import DOCKER

    if DOCKER is None:
        pytest.skip("the docker CLI is not installed")
    return [DOCKER]


def test_docker_py_run_logs_stats_exec_wait(service: Service) -> None:
    import docker

    client = service.client()
    try:
        assert client.api.api_version == "1.43"
        assert client.containers.run("busybox", ["sh", "-c", "echo hi; echo err >&2"], remove=True) == b"hi\n"
        with pytest.raises(docker.errors.ContainerError) as failed:
            client.containers.run("busybox", ["sh", "-c", "exit 2"], remove=True)
        assert failed.value.exit_status == 2
        box = client.containers.run("busybox", ["sh", "-c", "for i in 1 2 3; do echo l$i; sleep 0.1; done; sleep 300"],
                                    detach=True, name="pybox")
        stream = box.logs(stream=True, follow=True)
        assert [next(stream) for _ in range(3)] == [b"l1\n", b"l2\n", b"l3\n"]
        stats = box.stats(stream=False)
        assert stats["cpu_stats"]["cpu_usage"]["total_usage"] > 0 and stats["cpu_stats"]["system_cpu_usage"] > 0
        assert stats["precpu_stats"]["cpu_usage"]["total_usage"] > 0 and stats["cpu_stats"]["online_cpus"] >= 1
        assert stats["memory_stats"]["usage"] > 0 and stats["memory_stats"]["limit"] > 0
        assert stats["pids_stats"]["current"] >= 1 and "blkio_stats" in stats and stats["read"] != stats["preread"]
        assert box.exec_run(["sh", "-c", "echo x; exit 3"]) == (3, b"x\n")
        assert box.exec_run(["sh", "-c", "echo x; echo y >&2"], demux=True) == (0, (b"x\n", b"y\n"))
        box.reload()
        assert box.status == "running" and box.attrs["Config"]["Cmd"][0] == "sh"
        box.kill()
        assert box.wait() == {"StatusCode": 137, "Error": None} or box.wait()["StatusCode"] == 137
        box.remove()
        with pytest.raises(docker.errors.NotFound):
            client.containers.get("pybox")
        assert client.containers.list(all=True) == []
    finally:
        client.close()


# ------------------------------------------------------------------------------------------ faults


def _container_count(service: Service) -> int:
    from engine.container import state

    return len(state.list_containers(service.engine.config))


def test_bad_requests_get_dockers_status_and_create_nothing(service: Service) -> None:
    create = "/v1.43/containers/create"
    cases = [
        (create, b"{not json", 400, "invalid JSON"),
        (create, {"Image": "busybox", "Cmd": 5}, 400, "Config.Cmd"),
        (create, {"Image": "busybox", "HostConfig": {"Devices": [{"PathOnHost": "/etc/passwd"}]}}, 400, "not a device node"),
        (create, {"Image": "busybox", "HostConfig": {"UTSMode": "sideways"}}, 400, "invalid UTS mode: sideways"),
        (create, {"Image": "busybox", "HostConfig": {"UsernsMode": "private"}}, 400, "HostConfig.UsernsMode"),
        (create, {"Image": "no-such-image"}, 404, "No such image"),
        ("/v1.12/containers/create", {"Image": "busybox"}, 400, "too old"),
        ("/v1.99/containers/create", {"Image": "busybox"}, 400, "too new"),
        (create, b'{"Image": "busybox", "Env": ["' + b"x" * (5 << 20) + b'"]}', 413, "over the limit"),
    ]
    for path, body, status, words in cases:
        reply = service.request("POST", path, body if isinstance(body, bytes) else body,
                                headers={"Content-Type": "application/json"})
        assert reply.status == status, (path, reply.status, reply.body[:200])
        message = reply.json()["message"]
        assert words in message and "\n" not in message and "Traceback" not in message
    assert _container_count(service) == 0
    for method, path in [("GET", "/containers/nope/json"), ("POST", "/containers/nope/start"),
                         ("POST", "/containers/nope/stop"), ("GET", "/containers/nope/logs?stdout=1"),
                         ("DELETE", "/containers/nope"), ("POST", "/containers/nope/exec"), ("GET", "/exec/abc/json")]:
        reply = service.request(method, "/v1.43" + path, {"Cmd": ["true"]} if path.endswith("exec") else None)
        assert reply.status == 404 and reply.json()["message"], (path, reply.status)
    missing = service.request("POST", "/v1.43/containers/nope/update", {"Memory": 64 << 20})
    assert missing.status == 404 and "No such container" in missing.json()["message"]
    first = service.request("POST", create + "?name=twin", {"Image": "busybox"})
    assert first.status == 201
    second = service.request("POST", create + "?name=twin", {"Image": "busybox"})
    assert second.status == 409 and "twin" in second.json()["message"]
    assert _container_count(service) == 1
    assert service.docker("run", "--name", "twin", "busybox", "true").returncode != 0
    assert service.request("DELETE", "/containers/twin").status == 204
    assert _container_count(service) == 0


def test_service_killed_containers_run_on_and_a_new_service_follows_them(service: Service) -> None:
    import signal
    import subprocess

    from tests.service_support import DOCKER

    if DOCKER is None:
        pytest.skip("the docker CLI is not installed")
    service.docker_out("run", "-d", "--name", "survivor", "busybox", "sh", "-c",
                       "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.1; done")
    follower = subprocess.Popen([DOCKER, "logs", "-f", "survivor"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                env=service.env)
    assert follower.stdout is not None
    assert follower.stdout.readline().startswith(b"tick")
    helpers = _spawners_of(service.process.pid)
    assert len(helpers) == 1  # the start helper (engine.container.spawner)
    service.process.send_signal(signal.SIGKILL)
    service.process.wait()
    follower.wait(timeout=10)  # its stream ended with the service
    assert wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in helpers), timeout=10)  # and its helper
    assert service.socket_path.exists()  # a killed service leaves its socket; the next one replaces it
    service.restart()
    assert service.docker_out("ps", "--format", "{{.Names}} {{.State}}").strip() == "survivor running"
    again = subprocess.Popen([DOCKER, "logs", "-f", "--tail", "0", "survivor"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env=service.env)
    try:
        assert again.stdout is not None
        assert again.stdout.readline().startswith(b"tick")
    finally:
        again.kill()
        again.wait()
    service.docker_out("rm", "-f", "survivor")


def _spawners_of(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if ppid == pid and b"engine.container.spawner" in cmdline:
            found.append(int(entry.name))
    return found


def test_a_client_leaving_mid_stream_ends_only_its_stream(service: Service) -> None:
    import subprocess
    import time

    from tests.service_support import DOCKER

    if DOCKER is None:
        pytest.skip("the docker CLI is not installed")
    service.docker_out("run", "-d", "--name", "chatty", "busybox", "sh", "-c",
                       "i=0; while true; do echo n$i; i=$((i+1)); sleep 0.05; done")
    followers = [subprocess.Popen([DOCKER, "logs", "-f", "chatty"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  env=service.env) for _ in range(2)]
    stats = subprocess.Popen([DOCKER, "stats", "chatty"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=service.env)
    try:
        for f in followers:
            assert f.stdout is not None and f.stdout.readline().startswith(b"n")
        followers[0].kill()
        followers[0].wait()
        stats.kill()
        stats.wait()
        time.sleep(0.3)
        assert followers[1].stdout is not None
        assert followers[1].stdout.readline().startswith(b"n")  # the other stream goes on
        assert service.docker_out("inspect", "-f", "{{.State.Running}}", "chatty").strip() == "true"
    finally:
        for p in (*followers, stats):
            if p.poll() is None:
                p.kill()
            p.wait()
    service.docker_out("rm", "-f", "chatty")


def test_socket_is_for_root_and_group_dockui_only(service: Service) -> None:
    import grp
    import os
    import stat
    import subprocess

    from tests.service_support import DOCKER, stop_service

    if DOCKER is None:
        pytest.skip("the docker CLI is not installed")
    made_group = False
    try:
        grp.getgrnam("dockui")
    except KeyError:
        subprocess.run(["groupadd", "--system", "dockui"], check=True)
        made_group = True
        stop_service(service)
        service.restart()
    suffix = os.urandom(3).hex()
    member, outsider = f"dkin{suffix}", f"dkout{suffix}"
    try:
        subprocess.run(["useradd", "--no-create-home", "-G", "dockui", member], check=True)
        subprocess.run(["useradd", "--no-create-home", outsider], check=True)
        st = service.socket_path.stat()
        assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_uid == 0 and st.st_gid == grp.getgrnam("dockui").gr_gid
        os.chmod(service.socket_path.parent, 0o711)  # the temp dir is 0700: let the users reach the socket

        def as_user(user: str) -> subprocess.CompletedProcess:
            env = {"DOCKER_HOST": service.host, "DOCKER_CONFIG": "/nonexistent", "PATH": os.environ["PATH"], "HOME": "/"}
            return subprocess.run(["runuser", "-u", user, "--", DOCKER, "ps", "-a"], capture_output=True, env=env, timeout=30)

        allowed = as_user(member)
        assert allowed.returncode == 0, allowed.stderr
        assert allowed.stdout.startswith(b"CONTAINER ID")
        refused = as_user(outsider)
        assert refused.returncode != 0 and b"permission denied" in refused.stderr
    finally:
        for user in (member, outsider):
            subprocess.run(["userdel", user], capture_output=True)
        if made_group:
            subprocess.run(["groupdel", "dockui"], capture_output=True)


def test_bad_hosts_are_refused_in_one_line_and_touch_nothing(service: Service, tmp_path) -> None:  # noqa: ANN001
    engine = service.engine
    result = engine.cli("system", "service", "-H", "tcp://127.0.0.1:2375")
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "tcp:// listeners are not supported" in lines[0]
    precious = tmp_path / "precious"
    precious.write_text("keep me")
    result = engine.cli("system", "service", "-H", f"unix://{precious}")
    assert result.returncode == 1 and b"is not a socket" in result.stderr
    assert precious.read_text() == "keep me"
    result = engine.cli("system", "service", "-H", service.host)  # the fixture's service is on it
    assert result.returncode == 1 and b"in use by another service" in result.stderr
    assert service.request("GET", "/_ping").status == 200


def test_socket_activation_and_idle_timeout(engine: Engine) -> None:
    """As systemd passes it: a listening socket on fd 3, LISTEN_PID our pid, LISTEN_FDS=1; with
    --timeout the service exits once idle and leaves the socket (systemd's) in place."""
    import subprocess
    import sys
    import tempfile
    import time
    from pathlib import Path

    from tests.service_support import UnixHTTPConnection

    workdir = Path(tempfile.mkdtemp(prefix="dkact-"))
    path = workdir / "act.sock"
    launcher = (
        "import os, socket, sys\n"
        "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(16)\n"
        "os.dup2(s.fileno(), 3); os.set_inheritable(3, True)\n"
        "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1')\n"
        "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])\n"
    )
    argv = [sys.executable, "-c", launcher, str(path), *engine.argv("system", "service", "--timeout", "1")[1:]]
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=engine.env, stderr=subprocess.PIPE)
    try:
        assert wait_until(path.exists, timeout=10)
        conn = UnixHTTPConnection(str(path), 10)
        conn.request("GET", "/_ping")
        assert conn.getresponse().read() == b"OK"
        conn.close()
        assert proc.wait(timeout=20) == 0
        assert time.monotonic() - started >= 1.0
        assert b"systemd socket" in (proc.stderr.read() if proc.stderr else b"")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in (path, workdir):
            if p.is_dir():
                p.rmdir()
            elif p.exists():
                p.unlink()


def test_docker_cli_start_attached_and_attach_to_a_running_container(service: Service) -> None:
    service.docker_out("create", "--name", "later", "busybox", "sh", "-c", "echo started-attached; exit 6")
    started = service.docker("start", "-a", "later")
    assert (started.returncode, started.stdout) == (6, b"started-attached\n")
    service.docker_out("rm", "later")
    service.docker_out("run", "-d", "-it", "--name", "shell", "busybox", "sh")
    code, output = _pty_session(service, ["attach", "shell"], [b"echo $((3*3))z\n", b"exit 4\n"])
    assert code == 4, output
    assert b"9z" in output
    assert service.docker_out("wait", "shell").strip() == "4"
    service.docker_out("rm", "shell")


def test_network_aliases_from_the_create_body_resolve_for_peers(service: Service) -> None:
    service.docker_out("network", "create", "--internal", "aliasnet")
    try:
        service.docker_out("run", "-d", "--name", "db-server", "--network", "aliasnet", "--network-alias", "db",
                           "busybox", "sleep", "300")
        peer = service.docker("run", "--rm", "--network", "aliasnet", "busybox", "ping", "-c", "1", "-W", "2", "db")
        assert peer.returncode == 0, peer.stdout + peer.stderr
        refused = service.request("POST", "/v1.43/containers/create", {
            "Image": "busybox", "NetworkingConfig": {"EndpointsConfig": {"bridge": {"Aliases": ["x"]}}}})
        assert refused.status == 400 and "user-defined networks" in refused.json()["message"]
        service.docker_out("rm", "-f", "db-server")
    finally:
        service.docker("network", "rm", "aliasnet")


def test_wait_conditions_and_log_queries_over_raw_http(service: Service) -> None:
    import struct
    import threading
    import time

    created = service.request("POST", "/v1.43/containers/create?name=cond",
                              {"Image": "busybox", "Cmd": ["sh", "-c", "echo one; echo two >&2; echo three; exit 3"]})
    assert created.status == 201
    assert service.request("POST", "/containers/cond/wait?condition=not-running").json() == {"StatusCode": 0}
    results: dict[str, object] = {}

    def waiter(condition: str) -> None:
        results[condition] = service.request("POST", f"/containers/cond/wait?condition={condition}", timeout=30).json()

    threads = [threading.Thread(target=waiter, args=(c,)) for c in ("next-exit", "removed")]
    for t in threads:
        t.start()
    time.sleep(0.3)  # long enough for a wrong answer to arrive: both wait for what has not happened yet
    assert not results
    assert service.request("POST", "/containers/cond/start").status == 204
    threads[0].join(timeout=20)
    assert results["next-exit"] == {"StatusCode": 3}
    assert "removed" not in results
    assert service.request("POST", "/containers/cond/wait?condition=bogus").status == 400

    def frames(body: bytes) -> list[tuple[int, bytes]]:
        out = []
        while body:
            stream, size = struct.unpack(">BxxxL", body[:8])
            out.append((stream, body[8:8 + size]))
            body = body[8 + size:]
        return out

    logs = service.request("GET", "/containers/cond/logs?stdout=1&stderr=1")
    assert logs.headers["content-type"] == "application/vnd.docker.multiplexed-stream"
    got = frames(logs.body)  # stdout and stderr are separate pipes: their relative order is not kept
    assert [f for f in got if f[0] == 1] == [(1, b"one\n"), (1, b"three\n")] and (2, b"two\n") in got
    assert frames(service.request("GET", "/containers/cond/logs?stdout=1").body) == [(1, b"one\n"), (1, b"three\n")]
    assert frames(service.request("GET", "/containers/cond/logs?stdout=1&stderr=1&tail=1").body) == [got[-1]]
    stamped = frames(service.request("GET", "/containers/cond/logs?stderr=1&timestamps=1").body)
    assert len(stamped) == 1 and stamped[0][1].endswith(b"Z two\n") and stamped[0][1][:4].isdigit()
    assert service.request("GET", "/containers/cond/logs?stdout=1&since=4102444800").body == b""  # 2100-01-01
    assert service.request("GET", "/containers/cond/logs").status == 400  # no stream chosen
    assert service.request("DELETE", "/containers/cond").status == 204
    threads[1].join(timeout=20)
    assert results["removed"] == {"StatusCode": 3}


def test_testcontainers_runs_waits_for_logs_and_execs(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("testcontainers")
    monkeypatch.setenv("DOCKER_HOST", service.host)
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")  # its reaper image is pulled from Docker Hub
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    box = DockerContainer("busybox").with_command("sh -c 'echo ready; sleep 300'").with_exposed_ports(8080)
    with box.waiting_for(LogMessageWaitStrategy("ready")):
        assert int(box.get_exposed_port(8080)) > 0
        assert box.exec(["echo", "hi"]) == (0, b"hi\n")
    assert service.docker_out("ps", "-aq") == ""


def test_dockui_wait_condition_on_the_cli(engine: Engine) -> None:
    import subprocess

    engine.out("create", "--name", "later", "busybox", "sh", "-c", "sleep 1; exit 9")  # the waiter starts meanwhile
    waiter = engine.popen("wait", "--condition", "next-exit", "later", stdout=subprocess.PIPE)
    try:
        assert waiter.stdout is not None
        engine.out("start", "later")
        assert waiter.stdout.readline() == b"9\n"
    finally:
        waiter.wait(timeout=20)
    assert engine.out("wait", "later") == "9\n"
    assert engine.cli("wait", "--condition", "bogus", "later").returncode == 125
    engine.out("rm", "later")


def test_docker_cli_commit_makes_an_image_from_the_container(service: Service) -> None:
    service.docker_out("run", "-d", "--name", "base", "busybox", "sh", "-c", "echo committed > /marker; sleep 300")
    assert wait_until(lambda: service.docker("exec", "base", "test", "-f", "/marker").returncode == 0)
    image_id = service.docker_out("commit", "-c", 'CMD ["cat", "/marker"]', "-m", "a message", "base", "mine:v1").strip()
    assert image_id.startswith("sha256:")
    assert service.docker_out("run", "--rm", "mine:v1") == "committed\n"
    with_body = service.request("POST", "/commit?container=base&repo=mine&tag=v2", {"Cmd": ["true"]})  # docker-py's conf
    assert with_body.status == 201
    assert service.docker_out("image", "inspect", "--format", "{{json .Config.Cmd}}", "mine:v2").strip() == '["true"]'
    service.docker_out("rm", "-f", "base")
    service.docker_out("rmi", "mine:v1", "mine:v2")


def test_docker_compose_up_resolves_services_by_name(service: Service, tmp_path) -> None:  # noqa: ANN001
    import shutil
    import subprocess

    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    (tmp_path / "docker-compose.yml").write_text(
        'version: "3"\n'
        "services:\n"
        "  web:\n"
        "    image: busybox\n"
        '    command: sh -c "echo web-up; sleep 300"\n'
        "  client:\n"
        "    image: busybox\n"
        '    command: sh -c "ping -c 1 -W 2 web && echo resolved-web; sleep 300"\n'
        "networks:\n"
        "  default:\n"
        "    internal: true\n"  # nothing leaves the host's namespaces the test made
    )

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([compose, "-p", "dkapitest", *args], cwd=tmp_path, env=service.env,
                              capture_output=True, timeout=120)

    try:
        up = run("up", "-d")
        assert up.returncode == 0, up.stderr.decode()[-2000:]
        assert wait_until(lambda: b"resolved-web" in run("logs", "client").stdout, timeout=20)
        assert b"web-up" in run("logs", "web").stdout
    finally:
        down = run("down", "-t", "1")
    assert down.returncode == 0, down.stderr.decode()[-2000:]
    assert service.docker_out("ps", "-aq") == ""


def test_list_filters_limit_and_size(service: Service) -> None:
    import urllib.parse

    def names(query: dict) -> list[str]:
        params = {k: (json.dumps(v) if k == "filters" else v) for k, v in query.items()}
        reply = service.request("GET", "/v1.43/containers/json?" + urllib.parse.urlencode(params))
        assert reply.status == 200, reply.body
        return sorted(n for row in reply.json() for n in row["Names"])

    for name, label in (("alpha", "tier=front"), ("beta", "tier=back")):
        body = {"Image": "busybox", "Cmd": ["true"], "Labels": dict([label.split("=")])}
        assert service.request("POST", f"/containers/create?name={name}", body).status == 201
    assert names({}) == []  # neither runs
    assert names({"all": "1"}) == ["/alpha", "/beta"]
    assert names({"all": "1", "limit": "1"}) == ["/beta"]  # newest first
    assert names({"filters": {"label": ["tier=front"]}, "all": "1"}) == ["/alpha"]
    assert names({"filters": {"status": ["created"]}}) == ["/alpha", "/beta"]
    assert names({"filters": {"name": ["alp"]}, "all": "1"}) == ["/alpha"]
    assert names({"filters": {"ancestor": ["busybox"]}, "all": "1"}) == ["/alpha", "/beta"]
    assert names({"filters": {"before": ["beta"]}, "all": "1"}) == ["/alpha"]
    rows = service.request("GET", "/containers/json?all=1&size=1").json()
    assert all(row["SizeRw"] >= 0 and row["SizeRootFs"] >= row["SizeRw"] for row in rows)
    bad = service.request("GET", "/containers/json?filters=" + urllib.parse.quote('{"bogus": ["x"]}'))
    assert bad.status == 400 and "bogus" in bad.json()["message"]
    for name in ("alpha", "beta"):
        assert service.request("DELETE", f"/containers/{name}").status == 204


def test_a_client_gone_during_create_leaves_a_whole_container_or_none(service: Service) -> None:
    import socket

    from engine.container import state

    body = json.dumps({"Image": "busybox", "Cmd": ["true"]}).encode()
    for i in range(5):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(service.socket_path))
        sock.sendall(b"POST /v1.43/containers/create?name=gone%d HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % (i, len(body)) + body)
        sock.close()  # before the answer
    assert service.request("GET", "/_ping").status == 200
    config = service.engine.config
    assert wait_until(lambda: len(state.list_containers(config)) == 5, timeout=10)  # the requests were whole
    for record in state.list_containers(config):
        inspect = service.request("GET", f"/containers/{record.id}/json")
        assert inspect.status == 200 and inspect.json()["State"]["Status"] == "created"
        assert service.request("DELETE", f"/containers/{record.id}").status == 204
    # Container directories only: a dot-directory is the engine's own bookkeeping (a removal's trash)
    dirs = [p for p in service.engine.config.containers_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert dirs == []  # no half-made container left


def test_a_dead_start_helper_is_replaced(service: Service) -> None:
    import signal

    helpers = _spawners_of(service.process.pid)
    assert len(helpers) == 1
    os.kill(helpers[0], signal.SIGKILL)
    assert wait_until(lambda: not _spawners_of(service.process.pid), timeout=10)
    result = service.docker("run", "--rm", "busybox", "echo", "still starts")
    assert (result.returncode, result.stdout) == (0, b"still starts\n"), result.stderr
    assert len(_spawners_of(service.process.pid)) == 1  # a new helper took its place
    service.docker_out("run", "-d", "--name", "bg", "busybox", "sleep", "300")
    assert service.docker_out("exec", "bg", "echo", "ok") == "ok\n"
    service.docker_out("rm", "-f", "bg")


def test_a_vanished_attach_client_frees_the_containers_attach_slot(service: Service) -> None:
    import signal
    import subprocess
    import time

    from tests.service_support import DOCKER

    if DOCKER is None:
        pytest.skip("the docker CLI is not installed")
    service.docker_out("run", "-d", "--name", "quiet", "busybox", "sleep", "300")  # never writes

    def attach() -> subprocess.Popen:
        return subprocess.Popen([DOCKER, "attach", "--no-stdin", "--sig-proxy=false", "quiet"], env=service.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    first = attach()
    time.sleep(1.0)  # attached (a refused attach exits at once)
    assert first.poll() is None
    first.send_signal(signal.SIGKILL)
    first.wait()
    deadline = time.monotonic() + 5
    while True:  # the next client gets the slot once the service noticed the first is gone
        second = attach()
        time.sleep(1.0)
        if second.poll() is None or time.monotonic() > deadline:
            break
    try:
        assert second.poll() is None, second.stderr.read() if second.stderr else b""
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait()
    service.docker_out("rm", "-f", "quiet")
