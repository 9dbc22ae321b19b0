"""testcontainers-python (the version in .venv) through the Engine API service, as a project's test
suite uses it: a container with env, a read-only bind, a tmpfs, a published port and a command,
readied by composed wait strategies (log line, HTTP, port), then exec, logs, copies both ways,
status waits; containers on a user network reaching each other by alias; a sidecar in another's
network namespace; a fixed host port; an exit code awaited. And the Reaper: with Ryuk enabled and its image out of reach, the first start
fails with the pull's error and leaves nothing.

Two settings every test here makes (README, "Using Docker's tools with dockui"):
- Ryuk disabled: its image (testcontainers/ryuk) comes from Docker Hub.
- The host 127.0.0.1 in the docker_host connection mode: this machine has /.dockerenv, so
  testcontainers would otherwise reach published ports at the container network's gateway (the
  bridge's address on the host) instead of loopback.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from tests.service_support import Service, service_fixture  # noqa: F401 - the `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root


@pytest.fixture(name="tc")
def tc_fixture(service: Service, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """testcontainers' configuration pointed at the service (read once at import, so set on the object)."""
    config_module = pytest.importorskip("testcontainers.core.config")
    config = config_module.testcontainers_config
    monkeypatch.setenv("DOCKER_HOST", service.host)
    monkeypatch.setattr(config, "_ryuk_disabled", True)
    monkeypatch.setattr(config, "tc_host_override", "127.0.0.1")
    monkeypatch.setattr(config, "connection_mode_override", config_module.ConnectionMode.docker_host)
    return config


def test_container_env_bind_tmpfs_ports_waits_exec_logs_copies(service: Service, tc, tmp_path: Path) -> None:  # noqa: ANN001, ARG001
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import (
        CompositeWaitStrategy,
        ContainerStatusWaitStrategy,
        ExecWaitStrategy,
        HttpWaitStrategy,
        LogMessageWaitStrategy,
        PortWaitStrategy,
    )

    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("from-host\n")
    script = ("mkdir -p /www && echo $GREETING > /www/index.html && cp /in/in.txt /www/ && echo serving "
              "&& exec httpd -f -p 8080 -h /www")
    web = (DockerContainer("busybox").with_env("GREETING", "hi-tc").with_envs(A="1", B="2")
           .with_command(["sh", "-c", script]).with_exposed_ports(8080)
           .with_volume_mapping(str(shared), "/in", "ro").with_tmpfs_mount("/scratch", "size=1m")  # the option, not a bare size: README
           .with_kwargs(stop_signal="SIGKILL")
           .waiting_for(CompositeWaitStrategy(LogMessageWaitStrategy("serving"),
                                              HttpWaitStrategy(8080, "/index.html").for_status_code(200),
                                              PortWaitStrategy(8080)).with_startup_timeout(30)))
    with web:
        host, port = web.get_container_host_ip(), web.get_exposed_port(8080)
        assert host == "127.0.0.1" and int(port) > 0
        assert urllib.request.urlopen(f"http://{host}:{port}/in.txt", timeout=5).read() == b"from-host\n"
        assert tuple(web.exec(["sh", "-c", "echo $A$B; grep ' /scratch ' /proc/mounts | grep -c size=1024k"])) == (0, b"12\n1\n")
        assert web.exec("touch /in/x").exit_code != 0  # the bind is read-only
        assert web.get_logs() == (b"serving\n", b"")
        assert web.status == "running"
        ExecWaitStrategy(["test", "-f", "/www/index.html"]).wait_until_ready(web)
        ContainerStatusWaitStrategy().wait_until_ready(web)
        web.copy_into_container(b"copied\n", "/www/c.txt")
        assert urllib.request.urlopen(f"http://{host}:{port}/c.txt", timeout=5).read() == b"copied\n"
        web.copy_from_container("/www/index.html", tmp_path / "index.html")
        assert (tmp_path / "index.html").read_text() == "hi-tc\n"
    assert service.docker_out("ps", "-aq") == ""


def test_network_aliases_bound_port_and_exit_code(service: Service, tc) -> None:  # noqa: ANN001, ARG001
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

    with Network() as net:
        server = (DockerContainer("busybox").with_command("sh -c 'echo pong > /index.html; exec httpd -f -p 80 -h /'")
                  .with_network(net).with_network_aliases("alpha").with_kwargs(stop_signal="SIGKILL"))
        client = DockerContainer("busybox").with_command("sleep 300").with_network(net).with_kwargs(stop_signal="SIGKILL")
        with server, client:
            code, out = client.exec(["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://alpha/ && exit; sleep 0.2; done"])
            assert (code, out) == (0, b"pong\n")
            # A sidecar in the server's network namespace (compose's network_mode: service:x) has the
            # server's hostname, as Docker's: dockui gave it its own ID while /etc/hostname said the server's.
            sidecar = DockerContainer("busybox").with_command("sh -c 'hostname; cat /etc/hostname'").with_kwargs(
                network_mode=f"container:{server.get_wrapped_container().id}")
            sidecar.start()
            try:
                hostname = server.get_wrapped_container().attrs["Config"]["Hostname"]
                assert sidecar.wait() == 0 and sidecar.get_logs()[0] == f"{hostname}\n{hostname}\n".encode()
            finally:
                sidecar.stop()
    assert service.docker_out("network", "ls", "--filter", f"name={net.name}", "-q") == ""

    fixed = DockerContainer("busybox").with_command("sleep 300").with_bind_ports(8081, 0).with_kwargs(stop_signal="SIGKILL")
    with fixed:
        assert int(fixed.get_exposed_port(8081)) > 0
    short = DockerContainer("busybox").with_command("sh -c 'echo bye; exit 3'")
    short.start()
    try:
        assert short.wait() == 3
        assert short.get_logs() == (b"bye\n", b"")
    finally:
        short.stop()
    assert service.docker_out("ps", "-aq") == ""


def test_ryuk_enabled_without_its_image_fails_the_first_start_cleanly(service: Service, tc, registry,  # noqa: ANN001
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Ryuk on (the default) and its image out of reach (the test registry on loopback, which does not
    have it, standing in for Docker Hub offline): the start fails with the pull's error, nothing is created."""
    import docker
    from testcontainers.core.container import DockerContainer, Reaper

    monkeypatch.setattr(tc, "_ryuk_disabled", False)
    monkeypatch.setattr(tc, "ryuk_image", f"{registry.host}/testcontainers/ryuk:0.8.1")
    Reaper.delete_instance()
    try:
        with pytest.raises(docker.errors.APIError) as failed:
            DockerContainer("busybox").with_command("sleep 300").start()
        assert "testcontainers/ryuk" in str(failed.value)
    finally:
        Reaper.delete_instance()
    assert service.docker_out("ps", "-aq") == ""
