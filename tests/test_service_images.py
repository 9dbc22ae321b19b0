"""The Engine API's image and system endpoints through real clients: the docker CLI and docker-py
against `dockui system service` (tests/service_support.py), a real registry (tests/fixtures), and
raw requests for the statuses and one-line messages of bad input.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from engine.errors import NotFound
from engine.image.store import ImageStore
from tests.fixtures.busybox import busybox_tarball
from tests.fixtures.imagebuild import build_image, client_for_test, file, tar_from_entries, upload_image
from tests.service_support import DOCKER, Service, service_fixture  # noqa: F401
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401

pytestmark = [pytest.mark.root, pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed")]


def _ids(service: Service) -> list[str]:
    return [i.id for i in ImageStore(service.engine.config).list_images()]


def _message(reply) -> str:  # noqa: ANN001
    body = reply.json()
    assert set(body) == {"message"} and "\n" not in body["message"]
    return body["message"]


def test_images_inspect_history_tag_and_rmi(service: Service) -> None:
    busybox = ImageStore(service.engine.config).resolve("busybox")
    service.docker_out("tag", "busybox", "svc/test:v1")
    listed = service.docker_out("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").splitlines()
    assert f"busybox:latest {busybox.short_id}" in listed and f"svc/test:v1 {busybox.short_id}" in listed
    assert service.docker_out("images", "-f", "reference=svc/*", "--format", "{{.Repository}}:{{.Tag}}").split() == ["svc/test:v1"]
    assert service.docker_out("images", "-q", "-f", "dangling=true") == ""
    inspected = json.loads(service.docker_out("image", "inspect", "svc/test:v1"))[0]
    assert inspected["Id"] == busybox.id and sorted(inspected["RepoTags"]) == ["busybox:latest", "svc/test:v1"]
    assert inspected["Config"]["Cmd"] == ["sh"]
    history = service.docker_out("history", "--no-trunc", "--format", "{{.ID}} {{.Size}}", "busybox").splitlines()
    assert history[0].startswith(busybox.id)

    removed = service.docker("rmi", "svc/test:v1", check=True)
    assert removed.stdout.decode().strip() == "Untagged: svc/test:v1"
    assert busybox.id in _ids(service)

    missing = service.docker("rmi", "nosuch")
    assert missing.returncode == 1 and b"No such image: nosuch" in missing.stderr
    reply = service.request("DELETE", "/v1.43/images/nosuch")
    assert reply.status == 404 and _message(reply) == "No such image: nosuch:latest"  # moby's ErrImageDoesNotExist

    # An image a container uses: Docker's 409 unless forced, and nothing changes.
    service.engine.out("create", "--name", "user1", "--network", "none", "busybox", "true")
    reply = service.request("DELETE", f"/v1.43/images/{busybox.id}")
    assert reply.status == 409 and "used by stopped container" in _message(reply)
    assert busybox.id in _ids(service)


def test_bad_image_requests_get_dockers_status_and_change_nothing(service: Service) -> None:
    before = _ids(service)
    cases = [
        ("POST", "/v1.43/images/create", 400, "fromImage or fromSrc is required"),
        ("POST", "/v1.43/images/create?fromImage=Bad%20Name", 400, None),
        ("GET", "/v1.43/images/json?filters=%7Bnot-json", 400, "invalid filters"),
        ("GET", "/v1.43/images/json?filters=%7B%22colour%22%3A%5B%22red%22%5D%7D", 400, "invalid filter 'colour'"),
        ("POST", "/v1.43/images/busybox/tag", 400, "repo is required"),
        ("POST", "/v1.43/images/busybox/tag?repo=x&tag=sha256:abc", 400, None),
        ("GET", "/v1.43/images/nosuch/history", 404, "No such image: nosuch"),
        ("GET", "/v1.43/images/get?names=nosuch", 404, "No such image: nosuch"),
        ("POST", "/v1.43/images/nosuch/push", 404, "No such image: nosuch"),
        ("POST", "/v1.43/images/prune?filters=%7B%22colour%22%3A%5B%22red%22%5D%7D", 400, "invalid filter 'colour'"),
        ("POST", "/v1.43/images/prune?filters=%7B%22until%22%3A%5B%22soon%22%5D%7D", 400,
         'failed to parse value as time or duration: "soon"'),
        ("POST", "/v1.43/images/create?fromSrc=http://example.invalid/x.tar", 400, "importing from a URL"),
        ("GET", "/v1.43/images/search?term=busybox", 404, "image search is not supported"),
    ]
    for method, path, status, text in cases:
        reply = service.request(method, path)
        assert reply.status == status, (path, reply.status, reply.body)
        message = _message(reply)
        assert text is None or text in message, (path, message)
    reply = service.request("POST", "/v1.43/images/load", body=b"this is not a tar archive")
    # Docker answers a bad archive with 200 and the error as the stream's line (docker-py's ImageLoadError)
    line = json.loads(reply.body.splitlines()[-1])
    assert reply.status == 200 and "not an image archive" in line["error"] and line["errorDetail"]["message"] == line["error"]
    assert _ids(service) == before


def test_pull_push_and_login_against_a_real_registry(service: Service, busybox_in_registry: str, registry,  # noqa: ANN001
                                                    registry_token, tmp_path: Path) -> None:  # noqa: ANN001
    fresh = f"{registry.host}/svc/fresh:v1"
    client = client_for_test(registry.host, tmp_path)
    try:
        upload_image(client, "svc/fresh", build_image([tar_from_entries([file("fresh", f"{time.time_ns()}")])]), tag="v1")
    finally:
        client.close()
    t0 = time.time()
    pulled = service.docker("pull", fresh, check=True).stdout.decode()
    assert "Pulling fs layer" in pulled and "Pull complete" in pulled and "Digest: sha256:" in pulled
    assert f"Status: Downloaded newer image for {fresh}" in pulled
    ref = busybox_in_registry
    pulled = service.docker("pull", ref, check=True).stdout.decode()
    assert "Already exists" in pulled and f"Status: Downloaded newer image for {ref}" in pulled
    assert ImageStore(service.engine.config).resolve(ref).repo_digests
    again = service.docker_out("pull", ref)
    assert f"Status: Image is up to date for {ref}" in again

    # Docker's JSON progress lines, as docker-py reads them
    client = service.client()
    try:
        lines = list(client.api.pull(ref.rsplit(":", 1)[0], tag="latest", stream=True, decode=True))
        assert lines[0] == {"status": "Pulling from library/busybox", "id": "latest"}
        assert lines[-1]["status"].startswith("Status: Image is up to date")
        image = client.images.pull(ref.rsplit(":", 1)[0], tag="latest")
        assert ref in image.tags
        assert any(ref in i.tags for i in client.images.list())
    finally:
        client.close()

    # An unknown repository: Docker's 404 before any stream, and no image.
    before = _ids(service)
    reply = service.request("POST", f"/v1.43/images/create?fromImage={registry.host}/nope/nothing&tag=v1")
    assert reply.status == 404 and "nope/nothing" in _message(reply)
    failed = service.docker("pull", f"{registry.host}/nope/nothing:v1")
    assert failed.returncode == 1 and b"nope/nothing" in failed.stderr
    assert _ids(service) == before

    # push a new tag, then pull it back by name after removing it
    target = f"{registry.host}/svc/pushed:v1"
    service.docker_out("tag", "busybox", target)
    pushed = service.docker_out("push", target)
    assert "v1: digest: sha256:" in pushed
    service.docker_out("rmi", target)
    assert f"Status: Downloaded newer image for {target}" in service.docker_out("pull", target)

    events = service.docker_out("events", "--since", f"{t0:.3f}", "--until", f"{time.time():.3f}",
                                "--filter", "type=image", "--format", "{{.Action}} {{.Actor.ID}}").splitlines()
    assert f"pull {ref}" in events and f"push {target}" in events and f"pull {target}" in events

    # login checks credentials against the registry (token auth: a wrong password is refused), and
    # push then uses the credentials the docker CLI sends (X-Registry-Auth): anonymous users may only pull
    private = f"{registry_token.host}/alice/pushed:v1"
    service.docker_out("tag", "busybox", private)
    refused = service.docker("push", private)
    assert refused.returncode == 1 and b"unauthorized" in refused.stdout + refused.stderr
    good = service.docker("login", registry_token.host, "-u", registry_token.username, "--password-stdin",
                          input=registry_token.password.encode())
    assert good.returncode == 0 and b"Login Succeeded" in good.stdout, good.stderr
    assert "v1: digest: sha256:" in service.docker_out("push", private)
    service.docker_out("rmi", private)
    asked = len(registry_token.token_server.requests)
    assert "Downloaded newer image" in service.docker_out("pull", private)  # as alice: the CLI sends her login
    assert any(account == registry_token.username for account, _ in registry_token.token_server.requests[asked:])
    reply = service.request("POST", "/v1.43/auth", body={"username": registry_token.username, "password": "wrong",
                                                       "serveraddress": registry_token.host})
    assert reply.status == 401 and "\n" not in _message(reply)


def test_save_load_and_import(service: Service, tmp_path: Path) -> None:
    busybox = ImageStore(service.engine.config).resolve("busybox")
    archive = tmp_path / "bb.tar"
    service.docker_out("save", "-o", str(archive), "busybox")
    assert archive.stat().st_size > 1_000_000
    service.docker_out("rmi", "busybox")
    with pytest.raises(NotFound):
        ImageStore(service.engine.config).resolve("busybox")
    loaded = service.docker_out("load", "-i", str(archive))
    assert loaded.strip() == "Loaded image: busybox:latest"
    assert ImageStore(service.engine.config).resolve("busybox").id == busybox.id

    imported = service.docker("import", "--change", "CMD [\"true\"]", "-", "svc/imported:v1",
                              input=busybox_tarball().read_bytes(), check=True)
    image_id = imported.stdout.decode().strip()
    record = ImageStore(service.engine.config).resolve("svc/imported:v1")
    assert image_id == record.id and record.config["config"]["Cmd"] == ["true"]

    # list filters on these images, then prune: a dangling image (imported without a name) goes first
    dangling = service.docker("import", "-m", "no name", "-", input=busybox_tarball().read_bytes(), check=True)
    dangling_id = dangling.stdout.decode().strip()
    short = service.docker_out("images", "-q", "--no-trunc", "-f", "dangling=true").split()
    assert short == [dangling_id]
    newer = service.docker_out("images", "--format", "{{.Repository}}", "-f", "since=busybox").split()
    assert "svc/imported" in newer and "busybox" not in newer
    assert service.docker_out("images", "--format", "{{.Repository}}", "-f", "before=svc/imported:v1").split() == ["busybox"]
    assert f"deleted: {dangling_id}" in service.docker_out("image", "prune", "-f")
    assert dangling_id not in _ids(service)
    service.engine.out("create", "--name", "keeper", "--network", "none", "busybox", "true")
    pruned = service.docker_out("image", "prune", "-a", "-f")
    assert "untagged: svc/imported:v1" in pruned and f"deleted: {record.id}" in pruned
    assert _ids(service) == [busybox.id]  # the image a container uses stays


def test_system_df_and_events_stream(service: Service) -> None:
    t0 = time.time()
    result = service.engine.cli("run", "--rm", "--name", "dfev", "--label", "suite=api", "--network", "none",
                                "busybox", "sh", "-c", "exit 4")
    assert result.returncode == 4
    t1 = time.time()
    df = service.docker_out("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}").splitlines()
    assert "Images 1 0" in df and "Containers 0 0" in df

    got = service.docker_out("events", "--since", f"{t0:.3f}", "--until", f"{t1:.3f}", "--filter", "container=dfev",
                             "--format", "{{.Status}} {{json .Actor.Attributes}}").splitlines()
    assert [line.split()[0] for line in got] == ["create", "attach", "start", "die", "destroy"]  # as `docker run`
    died = json.loads(got[3].split(" ", 1)[1])
    assert died.pop("execDuration").isdigit()
    assert died == {"exitCode": "4", "image": "busybox", "name": "dfev", "suite": "api"}
    labelled = service.docker_out("events", "--since", f"{t0:.3f}", "--until", f"{t1:.3f}", "--filter", "label=suite=api",
                                  "--filter", "event=die", "--format", "{{.Action}}")
    assert labelled.split() == ["die"]

    # following: a live stream sees a volume being created, and other requests go on meanwhile
    follow = subprocess.Popen([DOCKER, "events", "--filter", "type=volume", "--format", "{{.Action}} {{.Actor.ID}}"],
                              stdout=subprocess.PIPE, env=service.env)
    try:
        time.sleep(0.5)
        service.docker_out("volume", "create", "evfollow")
        assert follow.stdout is not None
        assert follow.stdout.readline().decode().strip() == "create evfollow"
        assert service.request("GET", "/_ping").status == 200
    finally:
        follow.terminate()
        follow.wait(timeout=10)
        service.docker("volume", "rm", "evfollow")
    client = service.client()
    try:
        seen = list(client.events(since=int(t0), until=int(t1) + 1, decode=True, filters={"event": "destroy", "type": "container"}))
        assert [e["Actor"]["Attributes"]["name"] for e in seen] == ["dfev"]
    finally:
        client.close()
    # exec instances: created, started and ended, the end with its exit code
    service.engine.out("run", "-d", "--name", "exev", "--network", "none", "busybox", "sleep", "60")
    t2 = time.time()
    assert service.docker("exec", "exev", "sh", "-c", "exit 5").returncode == 5
    df = service.docker_out("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}").splitlines()
    assert "Images 1 1" in df and "Containers 1 1" in df
    verbose = service.docker_out("system", "df", "-v")
    assert "exev" in verbose and "Up " in verbose
    execs = service.docker_out("events", "--since", f"{t2:.3f}", "--until", f"{time.time():.3f}", "--filter", "container=exev",
                               "--format", "{{.Action}}|{{json .Actor.Attributes}}").splitlines()
    actions = [line.split("|")[0] for line in execs]
    assert actions == ["exec_create: sh -c exit 5", "exec_start: sh -c exit 5", "exec_die"], execs
    died = json.loads(execs[2].split("|")[1])
    assert died["exitCode"] == "5" and died["execID"] == json.loads(execs[0].split("|")[1])["execID"]
    assert service.docker_out("events", "--since", f"{t2:.3f}", "--until", f"{time.time():.3f}", "--filter",
                              "event=exec_start", "--format", "{{.Action}}").strip() == "exec_start: sh -c exit 5"
    reply = service.request("GET", "/v1.43/events?since=yesterday")
    assert reply.status == 400 and "since" in _message(reply)


class SlowProxy:
    """A TCP proxy to the registry that forwards responses at `rate` bytes/s and counts them, so a
    pull takes seconds and the test can leave in the middle of it."""

    def __init__(self, target: tuple[str, int], rate: int) -> None:
        self.target, self.rate = target, rate
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sent = 0
        self.open = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.open += 1
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, slow: bool) -> None:
        try:
            while chunk := source.recv(16384):
                sink.sendall(chunk)
                if slow:
                    with self.lock:
                        self.sent += len(chunk)
                    time.sleep(len(chunk) / self.rate)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            if slow:
                with self.lock:
                    self.open -= 1
            source.close()

    def close(self) -> None:
        self.listener.close()


def test_a_client_gone_mid_pull_leaves_the_store_as_it_was(service: Service, registry, tmp_path: Path) -> None:  # noqa: ANN001
    """The client reads the first progress lines and hangs up: the pull stops at its next read,
    nothing of it stays in the store (no image, no layer, no staging), and pulling again works."""
    big = os.urandom(6 << 20)  # incompressible: 6 MiB on the wire at 2 MiB/s
    image = build_image([tar_from_entries([file("big", big)])])
    client = client_for_test(registry.host, tmp_path)
    try:
        upload_image(client, "svc/big", image, tag="v1")
    finally:
        client.close()
    host, port = registry.host.split(":")
    proxy = SlowProxy((host, int(port)), rate=2 << 20)
    store = ImageStore(service.engine.config)
    layers_before = sorted(p.name for p in store._layer_info_dirs())
    ref = f"127.0.0.1:{proxy.port}/svc/big"
    try:
        conn = socket.socket(socket.AF_UNIX)
        conn.connect(str(service.socket_path))
        conn.sendall(f"POST /v1.43/images/create?fromImage={ref}&tag=v1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
        seen = b""
        while b"Downloading" not in seen:
            chunk = conn.recv(4096)
            assert chunk, seen
            seen += chunk
        conn.close()
        assert wait_until(lambda: proxy.open == 0, timeout=10), "the pull went on reading after the client left"
        assert proxy.sent < len(big), proxy.sent
        with pytest.raises(NotFound):
            store.resolve(f"{ref}:v1")
        assert sorted(p.name for p in store._layer_info_dirs()) == layers_before
        assert not (service.engine.config.layers_dir / ".staging").exists() or not any(
            (service.engine.config.layers_dir / ".staging").iterdir())
    finally:
        proxy.close()
    pulled = service.docker_out("pull", f"{registry.host}/svc/big:v1", timeout=120)
    assert "Pull complete" in pulled
