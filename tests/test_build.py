"""`dockui build` on the real kernel: busybox from tests/fixtures, RUN in real containers, the images
run afterwards. The `engine` fixture's teardown fails a test that leaves a process, a mount or a
cgroup; each test checks the containers itself (Docker's rules say which may stay)."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401

pytestmark = pytest.mark.root

MULTI_STAGE = """\
# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM ${BASE} AS builder
ARG GREETING=hello
WORKDIR /src
COPY app/ ./
RUN echo "$GREETING from $(cat name.txt)" > /src/out.txt \\
    && ls /src > /tmp/listing.txt && mv /tmp/listing.txt /src/

FROM busybox
ENV APP_HOME=/app MODE=prod
WORKDIR $APP_HOME
COPY --from=builder /src/out.txt /src/listing.txt ./
COPY --chown=app:app app/name.txt /home/app/
LABEL org.example.mode="${MODE:-dev}" org.example.home=${APP_HOME:+set}
EXPOSE 8080 53/udp
USER app
CMD ["cat", "/app/out.txt"]
"""


def make_context(root: Path, dockerfile: str = MULTI_STAGE) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "app" / "name.txt").write_text("dockui\n")
    (root / "app" / "secret.key").write_text("never copied\n")
    (root / "app" / "debug.log").write_text("never copied\n")
    (root / ".dockerignore").write_text("**/*.log\napp/secret.key\n")
    (root / "Dockerfile").write_text(dockerfile)
    return root


def containers(engine: Engine) -> list[str]:
    return engine.out("ps", "-aq").split()


def build(engine: Engine, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return engine.cli("build", *args, timeout=timeout)


def test_multi_stage_build_runs_what_the_dockerfile_says(engine: Engine, tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx")
    result = build(engine, "-t", "app:1", "--build-arg", "GREETING=hi", str(context))
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert out.startswith("Step 1/15 : ARG BASE=busybox\nStep 2/15 : FROM ${BASE} AS builder\n ---> ")
    assert " ---> Running in " in out and "Removing intermediate container " in out
    assert out.rstrip().endswith("Successfully tagged app:1")
    image_id = out.split("Successfully built ")[1].split()[0]
    assert len(image_id) == 12 and all(c in "0123456789abcdef" for c in image_id)
    assert containers(engine) == []  # --rm (the default) removed the RUN's container

    assert engine.out("run", "--rm", "--network", "none", "app:1") == "hi from dockui\n"
    shown = engine.out("run", "--rm", "--network", "none", "app:1", "sh", "-c",
                       "id -u; pwd; cat listing.txt; ls -n /home/app/name.txt; echo $MODE; ls -ld /tmp")
    lines = shown.splitlines()
    assert lines[0] == "1000" and lines[1] == "/app"
    assert lines[2:4] == ["name.txt", "out.txt"]  # .dockerignore kept secret.key and debug.log out
    assert " 1000 " in lines[4] and lines[5] == "prod"
    assert lines[6].startswith("drwxrwxrwt")  # COPY's parent directories keep the image's attributes
    config = json.loads(engine.out("image", "inspect", "app:1"))[0]["Config"]
    assert config["User"] == "app" and config["WorkingDir"] == "/app" and config["Cmd"] == ["cat", "/app/out.txt"]
    assert "APP_HOME=/app" in config["Env"] and any(e.startswith("PATH=") for e in config["Env"])
    assert config["Labels"] == {"org.example.mode": "prod", "org.example.home": "set"}
    assert config["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    history = engine.out("history", "--no-trunc", "app:1")
    assert "/bin/sh -c #(nop)  USER app" in history


def test_rebuild_hits_the_cache_and_a_changed_file_misses(engine: Engine, tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx")
    first = build(engine, "-t", "app:1", str(context))
    assert first.returncode == 0, first.stderr.decode()
    first_id = first.stdout.decode().split("Successfully built ")[1].split()[0]

    (context / "app" / "debug.log").write_text("ignored, so no miss\n")
    again = build(engine, "-t", "app:1", str(context)).stdout.decode()
    assert again.count(" ---> Using cache") == 12  # every step but the two FROMs and the meta ARG
    assert "Running in" not in again
    assert again.split("Successfully built ")[1].split()[0] == first_id

    (context / "app" / "name.txt").write_text("changed\n")
    changed = build(engine, "-t", "app:1", str(context)).stdout.decode()
    step5 = changed.split("Step 5/15 : ")[1].split("Step 6/15")[0]
    assert "Using cache" not in step5  # the COPY of the changed file misses ...
    assert "Running in" in changed.split("Step 6/15 : ")[1].split("Step 7/15")[0]  # ... and so does every later step
    assert engine.out("run", "--rm", "--network", "none", "app:1") == "hello from changed\n"

    no_cache = build(engine, "--no-cache", "-q", str(context))
    assert no_cache.returncode == 0 and no_cache.stdout.decode().startswith("sha256:")
    assert len(no_cache.stdout.decode().split()) == 1  # -q: only the ID
    assert containers(engine) == []


def test_failing_run_exits_with_its_code_and_keeps_only_what_docker_keeps(engine: Engine, tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox\nENV STEP=one\nRUN echo before && false\nRUN echo never\n")
    result = build(engine, str(context))
    assert result.returncode == 1
    assert result.stderr.decode().strip() == "The command '/bin/sh -c echo before && false' returned a non-zero code: 1"
    assert "before\n" in result.stdout.decode() and "never" not in result.stdout.decode()
    # Docker's --rm removes intermediate containers after a *successful* step only: the failed one stays.
    left = containers(engine)
    assert len(left) == 1
    assert engine.inspect(left[0])["State"]["ExitCode"] == 1
    engine.out("rm", left[0])

    (context / "Dockerfile").write_text("FROM busybox\nRUN exit 3\n")
    forced = build(engine, "--force-rm", str(context))
    assert forced.returncode == 3  # the docker CLI exits with the RUN's code
    assert "returned a non-zero code: 3" in forced.stderr.decode()
    assert containers(engine) == []  # --force-rm: none left
    dangling = engine.out("images", "-q", "--filter", "dangling=true").split()
    assert dangling  # the ENV step's image stays, as Docker's completed steps do (the cache)


def test_scratch_exec_form_add_tar_onbuild_and_refusals(engine: Engine, tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "busybox").write_bytes(Path("/bin/busybox").read_bytes())
    (context / "busybox").chmod(0o755)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        data = b"from the archive\n"
        info = tarfile.TarInfo("pkg/data.txt")
        info.size, info.uid, info.gid = len(data), 7, 8
        tar.addfile(info, io.BytesIO(data))
    (context / "pkg.tar.gz").write_bytes(archive.getvalue())
    (context / "Dockerfile").write_text(
        "FROM scratch\n"
        "COPY busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && mkdir -p /opt"]\n'
        "ADD pkg.tar.gz /opt/\n"
        "ONBUILD RUN echo triggered > /triggered\n"
        'SHELL ["/bin/sh", "-c"]\n'
        "STOPSIGNAL SIGINT\n"
        'HEALTHCHECK --interval=5s --retries=2 CMD ["true"]\n'
        "VOLUME /data\n"
        'ENTRYPOINT ["cat"]\n'
    )
    base = build(engine, "-t", "base:1", str(context))
    assert base.returncode == 0, base.stdout.decode() + base.stderr.decode()
    assert engine.out("run", "--rm", "--network", "none", "base:1", "/opt/pkg/data.txt") == "from the archive\n"
    owners = engine.out("run", "--rm", "--network", "none", "--entrypoint", "stat", "base:1", "-c", "%u:%g",
                        "/opt/pkg/data.txt")
    assert owners.strip() == "7:8"  # ADD extracted the local archive, owners kept

    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "busybox").write_bytes((context / "busybox").read_bytes())
    (bare / "busybox").chmod(0o755)
    (bare / "Dockerfile").write_text('FROM scratch\nCOPY busybox /busybox\nRUN ["/busybox", "true"]\n')
    assert build(engine, "-t", "bare:1", str(bare)).returncode == 0
    # The mount points the runtime made for the RUN (/proc, /etc/hosts, ...) are not the RUN's changes.
    assert len(json.loads(engine.out("image", "inspect", "bare:1"))[0]["RootFS"]["Layers"]) == 1

    child = tmp_path / "child"
    child.mkdir()
    (child / "Dockerfile").write_text("FROM base:1\nRUN cat /triggered\n")
    built = build(engine, "-t", "child:1", str(child)).stdout.decode()
    assert "# Executing 1 build trigger\n" in built and "triggered\n" in built
    config = json.loads(engine.out("image", "inspect", "child:1"))[0]["Config"]
    assert not config.get("OnBuild") and config["StopSignal"] == "SIGINT" and config["Entrypoint"] == ["cat"]
    assert config["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 5_000_000_000, "Retries": 2}
    assert config["Volumes"] == {"/data": {}}

    (child / "Dockerfile").write_text("FROM busybox\nADD http://127.0.0.1:1/x /x\n")
    refused = build(engine, str(child))
    assert refused.returncode == 1 and "remote sources are not supported" in refused.stderr.decode()
    assert len(refused.stderr.decode().strip().splitlines()) == 1
    platform = build(engine, "--platform", "linux/arm64", str(child))
    assert platform.returncode == 1 and "linux/amd64 images only" in platform.stderr.decode()
    (child / "Dockerfile").write_text("FROM --platform=linux/s390x busybox\n")
    assert "linux/amd64 images only" in build(engine, str(child)).stderr.decode()
    (child / "Dockerfile").write_text("FROM busybox\n")  # the host's platform, in containerd's other spellings
    assert all(build(engine, "-q", "--platform", named, str(child)).returncode == 0 for named in ("amd64", "linux/x86_64"))
    assert containers(engine) == []
    assert engine.out("volume", "ls", "-q") == ""  # the RUN under VOLUME /data took its anonymous volume along


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_build_removes_its_running_container(engine: Engine, tmp_path: Path, sig: signal.Signals) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox\nRUN echo started && sleep 60\n")
    process = engine.popen("build", str(context), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: len(containers(engine)) == 1 and engine.inspect(containers(engine)[0])["State"]["Running"],
                          timeout=30)
        process.send_signal(sig)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert containers(engine) == []


def test_run_network_is_the_bridge_unless_asked(engine: Engine, tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN ls /sys/class/net > /nets && fds=\"$(stat -L -c %t,%T /proc/$$/fd/0) $(readlink /proc/$$/fd/1)"
        " $(readlink /proc/$$/fd/2)\" && echo $fds > /fds\n"
        'CMD ["cat", "/nets"]\n'
    )
    assert build(engine, "--network", "none", "-t", "nets:none", str(context)).returncode == 0
    assert engine.out("run", "--rm", "--network", "none", "nets:none") == "lo\n"
    # The descriptor rule (docs/isolation.md): the RUN's shell holds the null device (1,3) and pipes only.
    stdin, stdout, stderr = engine.out("run", "--rm", "--network", "none", "nets:none", "cat", "/fds").split()
    assert stdin == "1,3" and stdout.startswith("pipe:[") and stderr.startswith("pipe:[")
    bridged = build(engine, "--no-cache", "--rm=false", "-t", "nets:bridge", str(context))  # the bridge: Docker's default
    assert bridged.returncode == 0, bridged.stderr.decode()
    assert "Removing intermediate container" not in bridged.stdout.decode()
    kept = containers(engine)  # --rm=false: the RUN's container stays, as Docker's
    assert len(kept) == 1 and engine.inspect(kept[0])["State"]["ExitCode"] == 0
    engine.out("rm", kept[0])
    assert engine.out("run", "--rm", "--network", "none", "nets:bridge") == "eth0\nlo\n"
    refused = build(engine, "--network", "container:x", str(context))
    assert refused.returncode == 1 and "use none, bridge or host" in refused.stderr.decode()
    assert containers(engine) == []

