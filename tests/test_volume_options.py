"""Volumes of the local driver with options (`volume create -o type=... -o device=... -o o=...`):
mounted on `_data` only while a container uses them, as Docker's driver does, on the real kernel.

The CLI and the docker CLI against the service both make them; teardown (the `engine` fixture)
fails on any mount left under the root.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from engine.container import state
from engine.container.volumes import is_mounted, mount_options
from tests.service_support import Service, service_fixture  # noqa: F401 - `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - `engine` fixture

pytestmark = pytest.mark.root


def _data(engine: Engine, name: str) -> Path:
    return engine.config.volumes_dir / name / "_data"


def test_mount_options_read_as_moby_reads_them() -> None:
    assert mount_options("size=8m,uid=1000") == (0, "size=8m,uid=1000")
    assert mount_options("bind,ro") == (4096 | 1, "")
    assert mount_options("rbind,rw,nosuid") == (4096 | 16384 | 2, "")
    assert mount_options("defaults,ro,rw,noexec,mode=0755") == (8, "mode=0755")
    assert mount_options("") == (0, "")


def test_a_tmpfs_volume_is_mounted_while_used_and_its_users_are_counted(engine: Engine) -> None:
    engine.out("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=8m,mode=0750", "tv")
    doc = json.loads(engine.out("volume", "inspect", "tv"))[0]
    assert doc["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=8m,mode=0750"}
    data = _data(engine, "tv")
    assert not is_mounted(data)
    out = engine.out("run", "--rm", "--network", "none", "-v", "tv:/data", "busybox",
                     "sh", "-c", "stat -c %a /data; df -k /data | tail -1; echo x > /data/f")
    mode, df = out.splitlines()
    assert mode == "750" and df.split()[0] == "tmpfs" and df.split()[1] == "8192"
    assert not is_mounted(data)  # the only user is gone
    a = engine.out("run", "-d", "--network", "none", "-v", "tv:/data", "busybox", "sleep", "60").strip()
    b = engine.out("run", "-d", "--network", "none", "-v", "tv:/data", "busybox", "sleep", "60").strip()
    assert engine.out("exec", a, "ls", "/data") == ""  # a fresh tmpfs: the first run's file went with it
    engine.out("exec", a, "sh", "-c", "echo shared > /data/s")
    assert engine.out("exec", b, "cat", "/data/s") == "shared\n"  # one mount, two users
    engine.out("stop", "-t", "0", a)
    assert is_mounted(data)  # b still uses it
    assert engine.out("exec", b, "cat", "/data/s") == "shared\n"
    busy = engine.cli("volume", "rm", "-f", "tv")  # as Docker: -f never removes a volume in use
    assert busy.returncode == 1 and b"volume is in use" in busy.stderr
    engine.out("stop", "-t", "0", b)
    assert not is_mounted(data)
    engine.out("rm", a, b)
    engine.out("volume", "rm", "tv")
    assert engine.cli("volume", "rm", "-f", "tv").returncode == 0  # -f: a missing volume is no error
    assert not data.parent.exists()


def test_a_bound_directory_is_read_only_when_asked_and_survives_the_volume(engine: Engine, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "keep").write_text("kept\n")
    engine.out("volume", "create", "-o", "type=none", "-o", "o=bind,ro", "-o", f"device={source}", "bv")
    result = engine.cli("run", "--rm", "--network", "none", "-v", "bv:/b", "busybox",
                        "sh", "-c", "cat /b/keep; touch /b/x")
    assert result.returncode == 1 and result.stdout == b"kept\n" and b"Read-only file system" in result.stderr
    cid = engine.out("run", "-d", "--network", "none", "-v", "bv:/b", "busybox", "sleep", "60").strip()
    assert is_mounted(_data(engine, "bv"))
    engine.out("rm", "-f", cid)
    engine.out("volume", "rm", "bv")  # unmounts nothing (already unmounted) and deletes only its own dir
    assert (source / "keep").read_text() == "kept\n" and not (source / "x").exists()


def test_bad_options_are_refused_and_a_failed_mount_fails_the_start(engine: Engine) -> None:
    for opts, message in (
        (["-o", "foo=bar"], b'invalid option: "foo"'),
        (["-o", "type=tmpfs"], b'missing required option: "device"'),
        (["-o", "o=size=1m", "-o", "type=tmpfs"], b'missing required option: "device"'),
        (["-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "size=10m"], b"quota size requested but no quota support"),
    ):
        result = engine.cli("volume", "create", *opts, "bad")
        assert result.returncode == 1 and message in result.stderr, (opts, result.stderr)
        assert b"Traceback" not in result.stderr
    assert engine.out("volume", "ls", "-q") == ""
    engine.out("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=zz", "wrong")
    result = engine.cli("run", "--rm", "--network", "none", "-v", "wrong:/w", "busybox", "true")
    assert result.returncode == 125
    assert b"error while mounting volume" in result.stderr and b"invalid argument" in result.stderr
    assert not is_mounted(_data(engine, "wrong"))
    engine.out("volume", "rm", "wrong")


def test_a_killed_monitor_leaves_the_mount_to_the_next_command(engine: Engine) -> None:
    engine.out("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "kv")
    cid = engine.out("run", "-d", "--network", "none", "-v", "kv:/k", "busybox", "sleep", "60").strip()
    record = state.find_container(engine.config, cid)
    assert is_mounted(_data(engine, "kv"))
    os.kill(record.monitor_pid, signal.SIGKILL)
    assert wait_until(lambda: not state.process_alive(record.monitor_pid, record.monitor_start))
    engine.out("ps", "-a")  # any command reconciles: the container is cleaned up, and its volume
    assert wait_until(lambda: not is_mounted(_data(engine, "kv")))
    engine.out("rm", "-f", cid)
    engine.out("volume", "rm", "kv")


def test_the_docker_cli_makes_and_uses_a_volume_with_options(service: Service) -> None:
    service.docker("volume", "create", "--driver", "local", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
                   "--opt", "o=size=4m", "dv", check=True)
    fmt = service.docker("volume", "inspect", "-f", "{{.Options.type}} {{.Options.o}}", "dv", check=True)
    assert fmt.stdout == b"tmpfs size=4m\n"
    out = service.docker("run", "--rm", "--network", "none", "-v", "dv:/d", "busybox", "sh", "-c",
                         "df -k /d | tail -1", check=True)
    assert out.stdout.split()[:2] == [b"tmpfs", b"4096"]
    bad = service.docker("volume", "create", "--opt", "nope=1", "xv")
    assert bad.returncode == 1 and b"invalid option" in bad.stderr and b"nope" in bad.stderr
    service.docker("volume", "rm", "dv", check=True)


def test_an_option_volume_gets_no_copy_hidden_under_its_mount(engine: Engine) -> None:
    engine.out("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "cv")
    engine.out("volume", "create", "plain")
    cid = engine.out("create", "--network", "none", "-v", "cv:/etc", "-v", "plain:/bin", "busybox", "true").strip()
    assert not any(_data(engine, "cv").iterdir())  # nothing written where the tmpfs will cover it
    assert any(_data(engine, "plain").iterdir())  # a plain volume is still filled from the image
    engine.out("rm", cid)
    engine.out("volume", "rm", "cv", "plain")


def test_rm_v_keeps_an_anonymous_volume_another_container_mounts(engine: Engine) -> None:
    engine.out("create", "--name", "va", "--network", "none", "-v", "/data", "busybox", "true")
    engine.out("create", "--name", "vb", "--network", "none", "--volumes-from", "va", "busybox", "true")
    (name,) = engine.out("volume", "ls", "-q").split()
    engine.out("rm", "-v", "va")
    assert engine.out("volume", "ls", "-q").split() == [name]  # vb still mounts it
    engine.out("rm", "-v", "vb")
    assert engine.out("volume", "ls", "-q") == ""


COMPOSE_FILE = """version: "2.4"
services:
  app:
    image: busybox
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    network_mode: none
    volumes: ["scratch:/scratch", "shared:/shared"]
volumes:
  scratch:
    driver_opts: {type: tmpfs, device: tmpfs, o: "size=2m"}
  shared:
    driver_opts: {type: none, o: bind, device: "SOURCE"}
"""


def test_compose_driver_opts_mount_a_tmpfs_and_a_host_directory(service: Service, tmp_path: Path) -> None:
    import shutil
    import subprocess

    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    source = tmp_path / "shared"
    source.mkdir()
    (source / "hello").write_text("from the host\n")
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE.replace("SOURCE", str(source)))

    def compose(*args: str) -> str:
        done = subprocess.run([binary, "-p", "volopts", *args], cwd=tmp_path, env=service.env,
                              capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()

    try:
        compose("up", "-d")
        out = compose("exec", "-T", "app", "sh", "-c", "df -k /scratch | tail -1; cat /shared/hello")
        assert out.split()[:2] == ["tmpfs", "2048"] and out.endswith("from the host\n")
        fmt = service.docker("volume", "inspect", "-f", "{{.Options.type}}", "volopts_scratch", check=True)
        assert fmt.stdout == b"tmpfs\n"
    finally:
        compose("down", "-v", "-t", "0")
    assert (source / "hello").read_text() == "from the host\n"
    assert service.docker("volume", "ls", "-q", check=True).stdout == b""
