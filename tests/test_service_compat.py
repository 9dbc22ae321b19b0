"""Where docker-py's own integration suite found dockui's Engine API service diverging from Docker's,
each behaviour checked here with docker-py or the docker CLI against `dockui system service`
(docs/api.md "docker-py's integration suite" has the scoreboard and how to rerun the suite).

- hijacked streams start after the client has read the response headers (docker-py reads them
  through a buffered parser and then takes the raw socket: bytes that came with the headers were
  lost), and an exec's framing follows the start request's `Tty`, as Docker's;
- detach keys (default ctrl-p,ctrl-q; `detachKeys` as docker-py spells it) on a tty's input;
- swarm endpoints answer as a Docker engine that is in no swarm;
- inspect's keys, the log driver refusal, a link removal naming no link, `KEY` without a value in Env;
- wait wakes at an exit its restart policy follows; commit and pause of a container that exits
  meanwhile; prune's SpaceReclaimed; a bad image archive said in the load stream;
- `network connect` before a container's first start, and a forced disconnect of a container that
  is not on the network.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from tests.service_support import DOCKER, Service, service_fixture  # noqa: F401 - the `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root

CTRL_P, CTRL_Q, CTRL_X = b"\x10", b"\x11", b"\x18"


def _api(service: Service):  # noqa: ANN202 - a docker.APIClient
    import docker

    return docker.APIClient(base_url=service.host, version="1.43", timeout=30)


def _closed_after(sock: socket.socket, keys: list[bytes]) -> bool:
    """Type `keys` one by one, then True once the service has closed the connection."""
    for key in keys:
        sock.sendall(key)
        time.sleep(0.2)
    sock.settimeout(5)
    try:
        while sock.recv(4096):  # the tty's echo of what came before, then EOF
            pass
    except OSError:
        pass
    try:
        sock.sendall(b"after detach\n")
        sock.sendall(b"after detach\n")
    except OSError:
        return True
    return False


def _cli_detach(service: Service, cid: str) -> bytes:
    """`docker attach` on a pseudo-terminal, then ctrl-p ctrl-q typed: what the CLI printed."""
    with subprocess.Popen(["script", "-qfc", f"docker attach {cid}", "/dev/null"], env=service.env,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as typing:
        assert typing.stdin is not None
        time.sleep(1.0)  # attached (the CLI answers nothing before the first output)
        typing.stdin.write(CTRL_P + CTRL_Q)
        typing.stdin.flush()
        time.sleep(1.0)
        try:
            out, _ = typing.communicate(timeout=20)  # the CLI exits once detached; script then ends
        except subprocess.TimeoutExpired:
            typing.kill()
            out, _ = typing.communicate()
    return out


def test_streams_start_after_the_headers_and_exec_framing_follows_the_start(service: Service) -> None:
    api = _api(service)
    try:
        for _ in range(5):  # the lost bytes were a race: several rounds
            cid = api.create_container("busybox", "echo hello")["Id"]
            api.start(cid)
            assert api.wait(cid)["StatusCode"] == 0
            assert api.attach(cid, stream=False, logs=True) == b"hello\n"
            api.remove_container(cid)
        cid = api.create_container("busybox", "cat", stdin_open=True)["Id"]
        api.start(cid)
        script = "echo hello out; sleep 0.3; echo hello err >&2"
        tty_exec = api.exec_create(cid, ["sh", "-c", script], tty=True)
        assert api.exec_start(tty_exec) == b"hello out\r\nhello err\r\n"  # start without Tty: framed, read whole
        raw = api.exec_create(cid, ["printf", "yay"], tty=True)
        sock = api.exec_start(raw, tty=True, socket=True)
        sock = getattr(sock, "_sock", sock)
        sock.settimeout(10)
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        sock.close()
        assert data == b"yay"  # start with Tty: raw bytes, no frame header
        plain = api.exec_create(cid, ["sh", "-c", script])
        assert api.exec_start(plain, demux=True) == (b"hello out\n", b"hello err\n")
    finally:
        for c in api.containers(all=True):
            api.remove_container(c["Id"], force=True)
        api.close()


def test_detach_keys_let_the_client_go_and_the_container_run_on(service: Service) -> None:
    api = _api(service)
    try:
        cid = api.create_container("busybox", "cat", stdin_open=True, tty=True)["Id"]
        api.start(cid)
        sock = api.attach_socket(cid, {"stdin": 1, "stream": 1})
        assert _closed_after(getattr(sock, "_sock", sock), [CTRL_P, CTRL_Q])
        sock = api.attach_socket(cid, {"stdin": 1, "stream": 1, "detachKeys": "ctrl-x"})
        assert _closed_after(getattr(sock, "_sock", sock), [CTRL_X])
        assert api.inspect_container(cid)["State"]["Running"] is True  # cat still has its stdin
        if shutil.which("script") and DOCKER:  # the docker CLI on a terminal (util-linux's script)
            typed = _cli_detach(service, cid)
            assert b"read escape sequence" in typed  # the CLI's words when the service lets it go
            assert api.inspect_container(cid)["State"]["Running"] is True
        api._general_configs["detachKeys"] = "ctrl-p"  # docker-py sends it as `detachKeys`
        exec_id = api.exec_create(cid, "cat", stdin=True, tty=True)
        sock = api.exec_start(exec_id, tty=True, socket=True)
        assert _closed_after(getattr(sock, "_sock", sock), [CTRL_P])
        bad = service.request("POST", f"/containers/{cid}/exec", {"Cmd": ["true"], "DetachKeys": "ctrl-nope"})
        assert (bad.status, bad.json()["message"]) == (400, "Invalid detach keys (ctrl-nope) provided")
    finally:
        for c in api.containers(all=True):
            api.remove_container(c["Id"], force=True)
        api.close()


def test_swarm_endpoints_answer_as_docker_outside_a_swarm(service: Service) -> None:
    api = _api(service)
    try:
        assert api.leave_swarm(force=True) is True  # docker-py treats Docker's 503 as done
        nodes = service.docker("node", "ls")
        assert nodes.returncode != 0 and b"This node is not a swarm manager." in nodes.stderr
        for path in ("/services", "/secrets/x", "/configs", "/tasks", "/swarm"):
            reply = service.request("GET", f"/v1.43{path}")
            assert reply.status == 503 and reply.json()["message"].startswith("This node is not a swarm manager.")
        init = service.request("POST", "/swarm/init", {"ListenAddr": "0.0.0.0:2377"})
        assert init.status == 501 and "not supported by dockui" in init.json()["message"]
    finally:
        api.close()


def test_inspect_keys_and_refusals_in_dockers_words(service: Service) -> None:
    import docker

    api = _api(service)
    try:
        cid = api.create_container("busybox", "env", environment=["DOCKUI_CONFIG", "SET=1"],
                                   host_config=api.create_host_config(isolation="default", runtime="runc"))["Id"]
        data = api.inspect_container(cid)
        host = data["HostConfig"]
        assert (host["Isolation"], host["Runtime"], host["UTSMode"], host["CgroupParent"]) == ("default", "runc", "", "")
        assert data["ExecIDs"] is None and data["AppArmorProfile"] == ""
        entry = data["NetworkSettings"]["Networks"]["bridge"]
        assert {"IPAMConfig", "Links", "DriverOpts", "EndpointID", "GlobalIPv6Address"} <= set(entry)
        assert {"SandboxKey", "EndpointID", "SecondaryIPAddresses"} <= set(data["NetworkSettings"])
        [row] = api.containers(all=True)
        assert {"IPAMConfig", "Aliases", "EndpointID", "DriverOpts"} <= set(row["NetworkSettings"]["Networks"]["bridge"])
        image = api.inspect_image("busybox")
        assert image["ContainerConfig"]["Volumes"] is None and image["VirtualSize"] == image["Size"]  # compose 1.x reads them
        assert image["Container"] == ""
        api.start(cid)
        api.wait(cid)
        out = api.logs(cid).decode()
        assert "SET=1" in out and "DOCKUI_CONFIG" not in out  # never the service's own environment
        with pytest.raises(docker.errors.APIError) as bad_driver:
            api.create_container("busybox", "true", host_config=api.create_host_config(
                log_config=docker.types.LogConfig(type="asdf")))
        assert bad_driver.value.explanation == "logger: no log driver named 'asdf' is registered"
        with pytest.raises(docker.errors.APIError) as linklocal:  # a bad one refused in moby's words, not dropped
            api.create_container("busybox", "true", networking_config=api.create_networking_config(
                {"bridge": api.create_endpoint_config(link_local_ips=["0.0.0.0"])}))
        assert linklocal.value.status_code == 400 and "invalid link-local IP address: 0.0.0.0" in linklocal.value.explanation
        sideways = docker.types.Mount(type="bind", source="/tmp", target="/host", propagation="sideways")
        with pytest.raises(docker.errors.APIError) as propagation:  # refused in Docker's words, not dropped
            api.create_container("busybox", "true", host_config=api.create_host_config(mounts=[sideways]))
        assert "invalid propagation mode: sideways" in propagation.value.explanation
        with pytest.raises(docker.errors.APIError) as link:  # no such link: moby's 404 (tests/test_service_links.py)
            api.remove_container(f"{cid}/alias", link=True)
        assert link.value.status_code == 404 and f"No such container: {cid}/alias" in link.value.explanation
        missing = service.docker("inspect", "--type", "container", "nope")
        assert missing.returncode == 1 and b"No such container: nope" in missing.stderr
        mount = docker.types.Mount(type="volume", source="labelled", target="/data", labels={"com.example": "yes"})
        vcid = api.create_container("busybox", "true", host_config=api.create_host_config(mounts=[mount]))["Id"]
        assert api.inspect_volume("labelled")["Labels"] == {"com.example": "yes"}  # the mount made it, labelled
        [made] = api.inspect_container(vcid)["Mounts"]
        assert (made["Name"], made["Destination"], made["RW"]) == ("labelled", "/data", True)
    finally:
        for c in api.containers(all=True):
            api.remove_container(c["Id"], force=True)
        for v in (api.volumes().get("Volumes") or []):
            api.remove_volume(v["Name"])
        api.close()


def test_waits_commits_prunes_and_loads_as_docker(service: Service) -> None:
    import docker

    api = _api(service)
    client = docker.DockerClient(base_url=service.host, version="1.43", timeout=30)
    try:
        always = api.create_container("busybox", ["sleep", "1"], host_config=api.create_host_config(
            restart_policy={"Name": "always"}, network_mode="none"))["Id"]
        api.start(always)
        assert api.wait(always, timeout=20)["StatusCode"] == 0  # woken at the exit its policy follows
        with pytest.raises(docker.errors.APIError) as running:
            api.remove_container(always)
        assert running.value.status_code == 409 and "stop the container before" in running.value.explanation.lower()
        api.remove_container(always, force=True)
        for _ in range(3):  # a short run ends while it is paused for the commit
            short = api.create_container("busybox", ["touch", "/made"])["Id"]
            api.start(short)
            image = api.commit(short, repository="committed", tag="x")["Id"]
            api.wait(short)
            api.remove_container(short)
            api.remove_image(image)
        writer = api.create_container("busybox", ["sh", "-c", "echo hello > /data.txt"])["Id"]
        api.start(writer)
        api.wait(writer)
        pruned = api.prune_containers()
        assert pruned["ContainersDeleted"] == [writer] and pruned["SpaceReclaimed"] > 0
        with pytest.raises(docker.errors.ImageLoadError):
            client.images.load(b"not an image archive")
        assert [i["RepoTags"] for i in api.images()] == [["busybox:latest"]]  # nothing half-loaded
    finally:
        for c in api.containers(all=True):
            api.remove_container(c["Id"], force=True)
        client.close()
        api.close()


def test_network_connect_before_the_first_start(service: Service) -> None:
    import docker

    api = _api(service)
    try:
        api.create_network("front")
        api.create_network("back")
        endpoint = api.create_networking_config({"front": api.create_endpoint_config(driver_opt={"key1": "a"})})
        cid = api.create_container("busybox", "sleep 300", networking_config=endpoint,
                                   host_config=api.create_host_config(network_mode="front"))["Id"]
        api.connect_container_to_network(cid, "back", aliases=["db"])  # compose's order: create, connect, start
        networks = api.inspect_container(cid)["NetworkSettings"]["Networks"]
        assert set(networks) == {"front", "back"} and networks["back"]["Aliases"] == ["db"]
        assert networks["front"]["DriverOpts"] == {"key1": "a"}  # kept and shown, as Docker's
        with pytest.raises(docker.errors.APIError):
            api.connect_container_to_network(cid, "back")  # already connected, as Docker's 409
        api.start(cid)
        assert list(api.inspect_network("back")["Containers"]) == [cid]
        exec_id = api.exec_create(cid, ["cat", "/proc/net/dev"])
        interfaces = api.exec_start(exec_id).decode()
        assert "eth0:" in interfaces and "eth1:" in interfaces
        api.disconnect_container_from_network(cid, "back")
        with pytest.raises(docker.errors.APIError):  # not on it: an error even forced, as Docker's
            api.disconnect_container_from_network(cid, "back", force=True)
    finally:
        for c in api.containers(all=True):
            api.remove_container(c["Id"], force=True)
        for n in ("front", "back"):
            try:
                api.remove_network(n)
            except docker.errors.APIError:
                pass
        api.close()


def test_distribution_inspect_asks_the_registry(service: Service, busybox_in_registry: str, busybox_built) -> None:  # noqa: ANN001
    import docker

    from engine.image.manifest import DOCKER_MANIFEST, host_platform

    api = _api(service)
    try:
        found = api.inspect_distribution(busybox_in_registry)
        assert found["Descriptor"] == {"mediaType": DOCKER_MANIFEST, "digest": busybox_built.digest,
                                       "size": len(busybox_built.manifest)}
        assert found["Platforms"] == [{"architecture": host_platform().architecture, "os": "linux"}]
        with pytest.raises(docker.errors.NotFound):
            api.inspect_distribution(busybox_in_registry.replace(":latest", ":nosuchtag"))
        assert [i["RepoTags"] for i in api.images()] == [["busybox:latest"]]  # nothing pulled
    finally:
        api.close()
