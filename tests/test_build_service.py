"""`POST /build` through real clients against the Engine API service: the docker CLI's classic
builder (DOCKER_BUILDKIT=0), docker-py's `images.build`, docker-compose 1.29's `build:` and
testcontainers' `DockerImage`; the images they build run afterwards. Also the raw endpoint's
refusals and `POST /build/prune`."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.service_support import Service, service_fixture  # noqa: F401
from tests.test_build import make_context
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401

pytestmark = pytest.mark.root


def context_tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def output_of(service: Service, image: str, *command: str) -> str:
    """What a container of `image` printed, read from its log (not from the attached stream: see
    docs/build.md, "Tests")."""
    import secrets

    name = f"out-{secrets.token_hex(3)}"
    service.docker_out("run", "--name", name, "--network", "none", image, *command)
    try:
        return service.docker_out("logs", name)
    finally:
        service.docker_out("rm", name)


def stream_lines(body: bytes) -> list[dict]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def test_docker_cli_classic_build(service: Service, tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx")
    env = {"DOCKER_BUILDKIT": "0"}
    built = subprocess.run([shutil.which("docker") or "docker", "build", "-t", "x", "--build-arg", "GREETING=hey",
                            "--iidfile", str(tmp_path / "iid"), str(context)],
                           env={**service.env, **env}, capture_output=True, timeout=180)
    out = built.stdout.decode()
    assert built.returncode == 0, out + built.stderr.decode()
    assert "Step 6/15 : RUN " in out and " ---> Running in " in out and "Successfully tagged x:latest" in out
    assert (tmp_path / "iid").read_text().startswith("sha256:")  # from the aux record
    assert output_of(service, "x") == "hey from dockui\n"
    assert service.docker_out("ps", "-aq") == ""

    failing = tmp_path / "failing.Dockerfile"  # outside the context: the CLI appends it to the tar
    failing.write_text("FROM busybox\nRUN exit 2\n")
    failed = subprocess.run([shutil.which("docker") or "docker", "build", "--force-rm", "-f", str(failing), str(context)],
                            env={**service.env, **env}, capture_output=True, timeout=120)
    assert failed.returncode == 2
    assert "The command '/bin/sh -c exit 2' returned a non-zero code: 2" in failed.stderr.decode()
    assert service.docker_out("ps", "-aq") == ""

    pruned = service.request("POST", "/build/prune")
    assert pruned.status == 200 and pruned.json()["CachesDeleted"]  # the untagged step images
    assert service.docker_out("images", "-q", "--filter", "dangling=true") == ""
    assert output_of(service, "x") == "hey from dockui\n"  # x itself stays


def test_docker_py_and_testcontainers_build(service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import docker

    context = make_context(tmp_path / "ctx")
    client = service.client(timeout=180)
    image, logs = client.images.build(path=str(context), tag="py:1", rm=True, buildargs={"GREETING": "py"})
    assert "py:1" in image.tags and any("Successfully built" in line.get("stream", "") for line in logs)
    assert client.containers.run("py:1", remove=True, network_mode="none") == b"py from dockui\n"
    (context / "Dockerfile").write_text("FROM busybox\nRUN echo oops >&2 && false\n")
    with pytest.raises(docker.errors.BuildError, match="returned a non-zero code: 1"):
        client.images.build(path=str(context), forcerm=True)
    assert client.containers.list(all=True) == []

    testcontainers = pytest.importorskip("testcontainers.core.image")
    monkeypatch.setenv("DOCKER_HOST", service.host)
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")  # its reaper image is pulled from Docker Hub
    (context / "Dockerfile").write_text("FROM busybox\nCOPY app/name.txt /name.txt\nCMD [\"cat\", \"/name.txt\"]\n")
    with testcontainers.DockerImage(path=str(context), tag="tc:1", rm=True) as built:
        assert client.containers.run(str(built), remove=True, network_mode="none") == b"dockui\n"
    assert not client.images.list(name="tc")  # clean_up removed it


def test_compose_build(service: Service, tmp_path: Path) -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    make_context(tmp_path / "app")
    (tmp_path / "docker-compose.yml").write_text(
        "version: '3'\n"
        "services:\n"
        "  app:\n"
        "    build:\n"
        "      context: ./app\n"
        "      args:\n"
        "        GREETING: compose\n"
        "    image: composed:1\n"
        "    network_mode: none\n"
    )

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([compose, "-p", "dkbuild", *args], cwd=tmp_path, env=service.env, capture_output=True,
                              timeout=180)

    built = run("build")
    assert built.returncode == 0, built.stdout.decode() + built.stderr.decode()
    assert output_of(service, "composed:1") == "compose from dockui\n"
    assert service.docker_out("ps", "-aq") == ""


def test_raw_build_endpoint_refusals_and_stream(service: Service) -> None:
    ping = service.request("GET", "/_ping")
    assert ping.headers["builder-version"] == "1"
    headers = {"Content-Type": "application/x-tar"}
    good = context_tar({"Dockerfile": b"FROM busybox\nLABEL a=b\n"})
    buildkit = service.request("POST", "/v1.43/build?version=2", good, headers)
    assert buildkit.status == 400 and "DOCKER_BUILDKIT=0" in buildkit.json()["message"]
    bad = service.request("POST", "/build", context_tar({"Dockerfile": b"FROM busybox\nBOGUS x\n"}), headers)
    assert bad.status == 400 and "unknown instruction: BOGUS" in bad.json()["message"]
    missing = service.request("POST", "/build?dockerfile=nope", good, headers)
    assert missing.status == 400 and "Cannot locate specified Dockerfile: nope" in missing.json()["message"]
    remote = service.request("POST", "/build?remote=http://127.0.0.1:1/x.git", b"", headers)
    assert remote.status == 400
    hostile = service.request("POST", "/build", context_tar({"../escape": b"x", "Dockerfile": b"FROM busybox\n"}), headers)
    assert hostile.status == 400 and "leaves it" in hostile.json()["message"]

    streamed = service.request("POST", "/build?t=raw:1&labels=%7B%22c%22%3A%22d%22%7D", good, headers, timeout=60)
    lines = stream_lines(streamed.body)
    assert streamed.status == 200
    assert {"stream": "Step 1/3 : FROM busybox\n"} in lines and {"stream": "Step 3/3 : LABEL c=d\n"} in lines
    aux = [line["aux"]["ID"] for line in lines if "aux" in line]
    assert len(aux) == 1 and aux[0].startswith("sha256:")
    assert json.loads(service.docker_out("image", "inspect", "raw:1"))[0]["Config"]["Labels"] == {"a": "b", "c": "d"}
    quiet = stream_lines(service.request("POST", "/build?q=1", good, headers, timeout=60).body)
    quiet_id = [line["aux"]["ID"] for line in quiet if "aux" in line][-1]
    assert quiet[-1] == {"stream": quiet_id + "\n"} and not any("Step" in line.get("stream", "") for line in quiet)
    failing = stream_lines(service.request("POST", "/build?forcerm=1", context_tar(
        {"Dockerfile": b"FROM busybox\nRUN exit 4\n"}), headers, timeout=60).body)
    message = "The command '/bin/sh -c exit 4' returned a non-zero code: 4"
    assert failing[-1] == {"errorDetail": {"code": 4, "message": message}, "error": message}


def test_client_hanging_up_cancels_the_build(service: Service) -> None:
    from tests.service_support import UnixHTTPConnection
    from tests.test_lifecycle_support import wait_until

    body = context_tar({"Dockerfile": b"FROM busybox\nRUN echo started && sleep 60\n"})
    conn = UnixHTTPConnection(str(service.socket_path), 60)
    try:
        conn.request("POST", "/build", body=body, headers={"Content-Type": "application/x-tar"})
        response = conn.getresponse()
        seen = b""
        while b"started" not in seen:
            line = response.fp.readline()
            assert line, seen
            seen += line
        assert len(service.docker_out("ps", "-aq").split()) == 1  # the RUN's container
    finally:
        conn.close()
    assert wait_until(lambda: service.docker_out("ps", "-aq") == "", timeout=20)
