"""Where moby's own API integration suite (`integration/` of v24.0.9, run by contrib/moby_suite.py)
found dockui's Engine API service diverging from Docker's, each behaviour checked here with the
docker CLI, docker-py or raw HTTP against `dockui system service` (one test per divergence, named
after the moby test that found it in its docstring):

- plugins listed as on an engine with none installed; JSON bodies checked as moby's ReadJSON;
  `null` build maps from Go's client; `/networks/`; update's PidsLimit and empty body;
- /info's SystemTime in nanoseconds (events between two daemon times); volume prune before 1.42;
  `sha256` refused as a repository; copy edge cases (not-a-directory words, empty upload, `/`);
- create's checks (links, volumes-from, IPC/PID modes, IPC default for old clients, platform,
  tmpfs targets, Config.Volumes yielding to a tmpfs), ConsoleSize, MaskedPaths/ReadonlyPaths,
  Annotations; stop with a negative timeout; restart of an --rm container; a health probe's
  output at its timeout; commit --change merged into the container's config; import and build
  platform specifiers; a Dockerfile of comments only.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.service_support import Service, service_fixture  # noqa: F401 - the `service` fixture
from tests.test_lifecycle_support import engine_fixture, wait_until  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root


def test_plugins_listed_as_none_installed(service: Service) -> None:
    import docker

    client = service.client()
    try:
        assert client.plugins.list() == []
        with pytest.raises(docker.errors.NotFound, match='plugin "nosuch" not found'):
            client.plugins.get("nosuch")
    finally:
        client.close()
    assert service.docker_out("plugin", "ls", "--format", "{{.Name}}") == ""
    refused = service.request("POST", "/v1.43/plugins/pull?remote=vieux/sshfs", body={})
    assert refused.status == 501, refused.body
    bad = service.request("GET", '/v1.43/plugins?filters={"nope":["x"]}')
    assert bad.status == 400 and b"invalid filter 'nope'" in bad.body


def test_json_bodies_checked_as_dockers_read_json(service: Service) -> None:
    """moby's Test*InvalidJSON: a body that is not application/json, malformed JSON and content after
    the document are 400s in Docker's (Go's) words, on every endpoint that reads a JSON body."""
    for path in ("/containers/create", "/networks/bridge/connect", "/volumes/create", "/commit"):
        wrong_type = service.request("POST", f"/v1.43{path}", b"{}", headers={"Content-Type": "text/plain"})
        assert wrong_type.status == 400, (path, wrong_type.body)
        assert wrong_type.json()["message"] == "unsupported Content-Type header (text/plain): must be 'application/json'"
        bad = service.request("POST", f"/v1.43{path}", b"{invalid json", headers={"Content-Type": "application/json"})
        assert bad.status == 400
        assert bad.json()["message"] == "invalid JSON: invalid character 'i' looking for beginning of object key string"
        trailing = service.request("POST", f"/v1.43{path}", b"{} trailing content",
                                   headers={"Content-Type": "application/json; charset=utf-8"})
        assert trailing.status == 400 and trailing.json()["message"] == "unexpected content after JSON"
    assert service.docker_out("volume", "ls", "-q") == ""


def test_go_clients_null_build_maps_and_network_list_slash(service: Service) -> None:
    """moby's TestCopyFromContainer and TestVolumePruneAnonFromImage build through Go's client, which
    sends an unset buildargs/labels map as `null`; TestNetworkList lists `/networks/` too."""
    import io
    import tarfile

    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        dockerfile = b"FROM busybox\nLABEL moby=null-maps\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    reply = service.request("POST", "/v1.43/build?t=nullmaps:1&buildargs=null&labels=null", context.getvalue(),
                            headers={"Content-Type": "application/x-tar"}, timeout=120)
    assert reply.status == 200 and b'"error"' not in reply.body, reply.body
    try:
        assert service.docker_out("image", "inspect", "-f", "{{.Config.Labels.moby}}", "nullmaps:1").strip() == "null-maps"
    finally:
        service.docker("image", "rm", "nullmaps:1")
    listed = service.request("GET", "/v1.43/networks/")
    assert listed.status == 200 and {"bridge", "host", "none"} <= {n["Name"] for n in listed.json()}


def test_update_pids_limit_as_dockers_router(service: Service) -> None:
    """moby's TestUpdatePidsLimit: an update naming nothing else is taken; PidsLimit 0 or negative is
    unlimited (inspect says 0, the cgroup says max); below API 1.40 PidsLimit is ignored."""
    import docker

    client = docker.APIClient(base_url=service.host, version="1.43", timeout=30)
    cid = client.create_container("busybox", "sleep 60", host_config=client.create_host_config(pids_limit=32))["Id"]
    try:
        client.start(cid)

        def update(version: str, body: dict) -> int:
            return service.request("POST", f"/v{version}/containers/{cid}/update", body).status

        def limit() -> tuple[int, str]:
            read = client.exec_create(cid, "cat /sys/fs/cgroup/pids/pids.max")["Id"]
            return client.inspect_container(cid)["HostConfig"]["PidsLimit"], client.exec_start(read).decode().strip()

        assert update("1.43", {}) == 200  # nothing named: Docker's daemon takes it (the CLI refuses)
        assert update("1.39", {"PidsLimit": 16}) == 200
        assert limit() == (32, "32")
        assert update("1.43", {"PidsLimit": -1}) == 200
        assert limit() == (0, "max")
        assert update("1.43", {"PidsLimit": 16}) == 200
        assert limit() == (16, "16")
        assert service.request("POST", "/v1.43/containers/nosuch/update", {}).status == 404
    finally:
        client.remove_container(cid, force=True)
        client.close()


def _daemon_unix_time(client) -> str:  # noqa: ANN001 - a docker.APIClient
    """moby's request.DaemonUnixTime: the daemon's clock from /info, as `seconds.nanoseconds`."""
    from datetime import datetime

    text = client.info()["SystemTime"]
    whole, _, frac = text.rstrip("Z").partition(".")
    seconds = int(datetime.fromisoformat(whole + "+00:00").timestamp())
    return f"{seconds}.{frac.ljust(9, '0')[:9]}"


def test_events_between_two_daemon_times(service: Service) -> None:
    """moby's TestPause and TestEventsVolumeCreate read events between two readings of the daemon's
    clock (/info's SystemTime): it must carry nanoseconds, or `until` falls before what just happened."""
    import docker

    client = docker.APIClient(base_url=service.host, version="1.43", timeout=30)
    try:
        since = _daemon_unix_time(client)
        client.create_volume("moby-events")
        until = _daemon_unix_time(client)
        events = list(client.events(since=since, until=until, decode=True,
                                    filters={"type": "volume", "event": "create", "volume": "moby-events"}))
        assert [e["Action"] for e in events] == ["create"], events
    finally:
        client.remove_volume("moby-events")
        client.close()


def test_volume_prune_takes_named_volumes_before_api_142(service: Service) -> None:
    """moby's TestVolumePruneAnonymous: since API 1.42 a prune keeps named volumes unless all=true;
    an older client's prune takes every unused local volume, as before."""
    import docker

    new = docker.APIClient(base_url=service.host, version="1.43", timeout=30)
    old = docker.APIClient(base_url=service.host, version="1.41", timeout=30)
    try:
        anonymous = new.create_volume()["Name"]
        new.create_volume("moby-named")
        assert new.prune_volumes()["VolumesDeleted"] == [anonymous]
        anonymous = new.create_volume()["Name"]
        assert sorted(old.prune_volumes()["VolumesDeleted"]) == sorted([anonymous, "moby-named"])
        assert new.volumes()["Volumes"] in (None, [])
    finally:
        for volume in new.volumes()["Volumes"] or []:
            new.remove_volume(volume["Name"], force=True)
        new.close()
        old.close()


def test_tag_named_like_the_digest_algorithm_refused(service: Service) -> None:
    """moby's TestTagUsingDigestAlgorithmAsName: `sha256:sometag` would read as an image ID."""
    refused = service.docker("tag", "busybox", "sha256:sometag")
    assert refused.returncode == 1
    assert b"refusing to create an ambiguous tag using digest algorithm as name" in refused.stderr
    assert b"sha256" not in service.docker("images", "--format", "{{.Repository}}").stdout


def test_copy_edge_cases_as_docker(service: Service) -> None:
    """moby's TestCopy*PathIsNotDir and TestCopyEmptyFile: a path through a file says `not a
    directory` in Go's words (no Python errno text), and an empty upload extracts nothing, fine."""
    import docker

    client = docker.APIClient(base_url=service.host, version="1.43", timeout=30)
    cid = client.create_container("busybox", "true")["Id"]
    try:
        with pytest.raises(docker.errors.APIError) as got:
            client.get_archive(cid, "/etc/passwd/")
        assert "not a directory" in str(got.value) and "Errno" not in str(got.value)
        with pytest.raises(docker.errors.APIError) as put:
            client.put_archive(cid, "/etc/passwd/", b"")
        assert "not a directory" in str(put.value) and "Errno" not in str(put.value)
        assert client.put_archive(cid, "/", b"") is True
    finally:
        client.remove_container(cid, force=True)
        client.close()


def test_copy_of_root_keeps_dockers_names(service: Service, tmp_path: Path) -> None:
    """moby's TestCopyFromContainer: an archive of `/` names its entries `/`, `/bin/busybox`; and
    `dockui cp CTR:/ DIR` takes those names (it stopped with an internal error on the bare `/`)."""
    import io
    import subprocess
    import tarfile

    import docker

    client = docker.APIClient(base_url=service.host, version="1.43", timeout=60)
    cid = client.create_container("busybox", "true")["Id"]
    try:
        stream, stat = client.get_archive(cid, "/")
        names = tarfile.open(fileobj=io.BytesIO(b"".join(stream)), mode="r:").getnames()
        assert stat["name"] == "/" and names[0] == "", names[:5]  # tarfile reads the "/" directory as ""
        assert "/bin/busybox" in names and "bin/busybox" not in names, names[:5]
        stream, _ = client.get_archive(cid, "/etc")
        assert "etc/passwd" in tarfile.open(fileobj=io.BytesIO(b"".join(stream)), mode="r:").getnames()
        out = tmp_path / "root-copy"
        copied = subprocess.run(service.engine.argv("cp", f"{cid}:/", str(out)), env=service.engine.env,
                                capture_output=True, timeout=60)
        assert copied.returncode == 0, copied.stderr
        assert (out / "bin" / "sh").stat().st_ino == (out / "bin" / "busybox").stat().st_ino  # hard links kept
    finally:
        client.remove_container(cid, force=True)
        client.close()


def test_create_checks_as_dockers_daemon(service: Service) -> None:
    """moby's TestCreateLinkToNonExistingContainer, TestCreateVolumesFromNonExistingContainer,
    TestCreateInvalidHostConfig and TestIpcModeOlderClient: a legacy link or volumes-from naming no
    container is a 400 at create; IpcMode/PidMode refused in the daemon's words; a client older than
    API 1.40 gets a shareable IPC namespace by default."""
    import docker

    client = docker.APIClient(base_url=service.host, version="1.43", timeout=30)
    old = docker.APIClient(base_url=service.host, version="1.39", timeout=30)
    made: list[str] = []
    try:
        for host, words in [({"Links": ["no-such-container"]}, "could not get container for no-such-container"),
                            ({"VolumesFrom": ["nosuchcontainer"]}, "nosuchcontainer"),
                            ({"IpcMode": "invalid"}, "invalid IPC mode: invalid"),
                            ({"PidMode": "container"}, "invalid PID mode: container")]:
            reply = service.request("POST", "/v1.43/containers/create", {"Image": "busybox", "HostConfig": host})
            assert reply.status == 400 and words in reply.json()["message"], (host, reply.status, reply.body)
        assert client.containers(all=True) == []
        made.append(client.create_container("busybox", "true")["Id"])
        made.append(old.create_container("busybox", "true")["Id"])
        modes = [client.inspect_container(cid)["HostConfig"]["IpcMode"] for cid in made]
        assert modes == ["private", "shareable"]
    finally:
        for cid in made:
            client.remove_container(cid, force=True)
        client.close()
        old.close()


def test_stop_with_negative_timeout_waits(service: Service) -> None:
    """moby's TestStopContainerWithTimeout/-1: a negative timeout never kills (moby#35311); the
    container's shell (PID 1, no TERM handler) ends by itself with 42."""
    import docker

    client = docker.APIClient(base_url=service.host, version="1.43", timeout=30)
    cid = client.create_container("busybox", ["sh", "-c", "sleep 2 && exit 42"])["Id"]
    try:
        client.start(cid)
        client.stop(cid, timeout=-1)
        assert client.inspect_container(cid)["State"]["ExitCode"] == 42
    finally:
        client.remove_container(cid, force=True)
        client.close()


def test_restart_keeps_an_autoremove_container(service: Service) -> None:
    """moby's TestContainerWithAutoRemoveCanBeRestarted: `restart` of an --rm container keeps it
    (Docker's HasBeenManuallyRestarted); a kill or stop after that removes it."""
    import docker

    client = docker.APIClient(base_url=service.host, version="1.43", timeout=30)
    try:
        for end in ("kill", "stop"):
            cid = client.create_container("busybox", "top", host_config=client.create_host_config(auto_remove=True))["Id"]
            client.start(cid)
            client.restart(cid, timeout=0)
            assert client.inspect_container(cid)["State"]["Running"] is True
            client.kill(cid) if end == "kill" else client.stop(cid, timeout=0)
            assert wait_until(lambda: not client.containers(all=True, filters={"id": cid}), timeout=10), end  # noqa: B023
    finally:
        for c in client.containers(all=True):
            client.remove_container(c["Id"], force=True)
        client.close()


def test_tmpfs_targets_as_dockers_daemon(service: Service) -> None:
    """moby's TestCreateTmpfsMountsTarget and TestCreateTmpfsOverrideAnonymousVolume: a relative
    Tmpfs target and `//` are 400s in moby's words; a tmpfs at a Config.Volumes path replaces the
    anonymous volume (no 'Duplicate mount point', no volume made)."""
    import docker

    client = docker.APIClient(base_url=service.host, version="1.43", timeout=30)
    try:
        for target, words in [(".", "mount path must be absolute"), ("foo", "mount path must be absolute"),
                              ("/", "destination can't be '/'"), ("//", "destination can't be '/'")]:
            reply = service.request("POST", "/v1.43/containers/create",
                                    {"Image": "busybox", "HostConfig": {"Tmpfs": {target: ""}}})
            assert reply.status == 400 and words in reply.json()["message"], (target, reply.body)
        cid = client.create_container(
            "busybox", ["sh", "-c", "mount | grep ' /foo type tmpfs' && mount | grep ' /bar type tmpfs'"],
            volumes=["/foo", "/bar"], host_config=client.create_host_config(tmpfs={"/foo": "", "/bar": "size=999"}))["Id"]
        assert client.inspect_container(cid)["Mounts"] == []
        client.start(cid)
        assert client.wait(cid, timeout=30)["StatusCode"] == 0, client.logs(cid)
        client.remove_container(cid, v=True)
        assert client.volumes()["Volumes"] in (None, [])
    finally:
        for c in client.containers(all=True):
            client.remove_container(c["Id"], force=True, v=True)
        client.close()


def test_create_with_a_platform_the_image_is_not_of(service: Service) -> None:
    """moby's TestCreateDifferentPlatform: create never pulls, so an image of another OS or CPU is
    a 404 naming both platforms; the image's own platform creates."""
    from engine.image.manifest import host_platform

    arch = host_platform().architecture
    for platform in ("linuxDifferentOS/" + arch, "linux/" + arch + "DifferentArch"):
        reply = service.request("POST", f"/v1.43/containers/create?platform={platform}", {"Image": "busybox:latest"})
        assert reply.status == 404, reply.body
        assert reply.json()["message"] == ("image with reference busybox:latest was found but does not match the "
                                           f"specified platform: wanted {platform}, actual: linux/{arch}")
    made = service.request("POST", f"/v1.43/containers/create?platform=linux/{arch}", {"Image": "busybox:latest"})
    assert made.status == 201, made.body
    service.docker("rm", made.json()["Id"])


def test_health_probe_overrun_keeps_its_output(service: Service) -> None:
    """moby's TestHealthCheckProcessKilled: a probe killed at its timeout logs moby's message followed
    by what it wrote before ('Health check exceeded timeout (500ms): logs logs logs')."""
    import docker

    client = docker.APIClient(base_url=service.host, version="1.43", timeout=30)
    healthcheck = {"Test": ["CMD", "sh", "-c", 'echo "logs logs logs"; sleep 60'], "Interval": 100_000_000,
                   "Timeout": 500_000_000, "Retries": 1}
    cid = client.create_container("busybox", "top", healthcheck=healthcheck)["Id"]
    try:
        client.start(cid)

        def logged() -> list[str]:
            return [e["Output"] for e in (client.inspect_container(cid)["State"].get("Health") or {}).get("Log") or []]

        assert wait_until(lambda: logged(), timeout=20), "no probe was logged"
        assert logged()[0] == "Health check exceeded timeout (500ms): logs logs logs\n"
    finally:
        client.remove_container(cid, force=True)
        client.close()


def test_commit_changes_merge_into_the_containers_config(service: Service) -> None:
    """moby's TestCommitInheritsEnv: `commit --change 'ENV PATH=/usr/bin:$PATH'` expands against the
    container's Env and keeps its other variables; LABEL adds to the labels there."""
    service.docker_out("create", "--name", "envsrc", "-e", "KEEP=1", "-l", "old=1", "busybox", "true")
    try:
        service.docker_out("commit", "-c", "ENV PATH=/bin", "envsrc", "moby-env:1")
        service.docker_out("create", "--name", "envsrc2", "moby-env:1", "true")
        service.docker_out("commit", "-c", "ENV PATH=/usr/bin:$PATH", "-c", "LABEL new=2", "envsrc2", "moby-env:2")
        env = service.docker_out("image", "inspect", "-f", "{{json .Config.Env}}", "moby-env:2").strip()
        assert env == '["KEEP=1","PATH=/usr/bin:/bin"]'
        labels = service.docker_out("image", "inspect", "-f", "{{json .Config.Labels}}", "moby-env:2").strip()
        assert labels == '{"new":"2","old":"1"}'
    finally:
        service.docker("rm", "-f", "envsrc", "envsrc2")
        service.docker("rmi", "moby-env:2", "moby-env:1")


def test_console_size_of_create_and_exec_create(service: Service) -> None:
    """moby's TestRunConsoleSize and TestExecConsoleSize: ConsoleSize [height, width] sizes the tty
    from its first byte, given at container create (no attach needed) or at exec create."""
    import docker

    client = docker.APIClient(base_url=service.host, version="1.43", timeout=30)
    made = service.request("POST", "/v1.43/containers/create", {
        "Image": "busybox", "Tty": True, "Cmd": ["stty", "size"], "HostConfig": {"ConsoleSize": [123, 57]}})
    cid = made.json()["Id"]
    try:
        assert client.inspect_container(cid)["HostConfig"]["ConsoleSize"] == [123, 57]
        client.start(cid)
        client.wait(cid, timeout=30)
        assert client.logs(cid).strip() == b"123 57"
        runner = client.create_container("busybox", "top")["Id"]
        client.start(runner)
        exec_id = service.request("POST", f"/v1.43/containers/{runner}/exec", {
            "Cmd": ["stty", "size"], "Tty": True, "ConsoleSize": [57, 123]}).json()["Id"]
        assert client.exec_start(exec_id, tty=True).strip() == b"57 123"
    finally:
        for c in client.containers(all=True):
            client.remove_container(c["Id"], force=True)
        client.close()


def test_masked_paths_and_annotations_as_given(service: Service) -> None:
    """moby's TestCreateWithCustomMaskedPaths/ReadonlyPaths, TestInspectAnnotations and
    TestCreateInvalidHostConfig: inspect shows moby's default MaskedPaths/ReadonlyPaths (none when
    privileged), a list given at create replaces them in inspect and in the container ([]: nothing
    masked); Annotations are kept as given, an empty key refused in moby's words."""
    import docker

    from engine.config import DEFAULTS

    client = docker.APIClient(base_url=service.host, version="1.43", timeout=30)
    probe = ["sh", "-c", "wc -c < /proc/timer_list"]

    def create(host: dict) -> str:
        made = service.request("POST", "/v1.43/containers/create", {"Image": "busybox", "Cmd": probe, "HostConfig": host})
        assert made.status == 201, made.body
        return made.json()["Id"]

    try:
        default, unmasked, keys = create({}), create({"MaskedPaths": [], "ReadonlyPaths": []}), \
            create({"MaskedPaths": ["/proc/keys"], "Annotations": {"hello": "world"}})
        privileged = create({"Privileged": True})
        host = {cid: client.inspect_container(cid)["HostConfig"] for cid in (default, unmasked, keys, privileged)}
        assert host[default]["MaskedPaths"] == list(DEFAULTS.masked_paths)
        assert host[default]["ReadonlyPaths"] == list(DEFAULTS.readonly_paths)
        assert (host[unmasked]["MaskedPaths"], host[unmasked]["ReadonlyPaths"]) == ([], [])
        assert host[keys]["MaskedPaths"] == ["/proc/keys"] and host[keys]["Annotations"] == {"hello": "world"}
        assert host[privileged]["MaskedPaths"] is None
        sizes = {}
        for cid in (default, unmasked, keys):
            client.start(cid)
            assert client.wait(cid, timeout=30)["StatusCode"] == 0, client.logs(cid)
            sizes[cid] = int(client.logs(cid).strip())
        assert sizes[default] == 0 and sizes[unmasked] > 0 and sizes[keys] > 0  # /proc/timer_list masked or not
        refused = service.request("POST", "/v1.43/containers/create",
                                  {"Image": "busybox", "HostConfig": {"Annotations": {"": "a"}}})
        assert refused.status == 400
        assert refused.json()["message"] == "invalid Annotations: the empty string is not permitted as an annotation key"
    finally:
        for c in client.containers(all=True):
            client.remove_container(c["Id"], force=True)
        client.close()


def test_import_platform_as_dockers(service: Service) -> None:
    """moby's TestImportWithCustomPlatform: an import's platform sets the image's architecture
    (linux only); a malformed one, another OS or an unknown name is refused in moby's words."""
    import io
    import tarfile

    from engine.image.manifest import host_platform

    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("empty"), io.BytesIO(b""))

    def imported(platform: str):  # noqa: ANN202 - the reply
        return service.request("POST", f"/v1.43/images/create?fromSrc=-&repo=moby-import&tag=t&platform={platform}",
                               layer.getvalue(), headers={"Content-Type": "application/x-tar"})

    try:
        for platform, arch in (("linux", host_platform().architecture), ("LINUX", host_platform().architecture),
                               ("linux/sparc64", "sparc64")):
            assert imported(platform).status == 200
            image = service.request("GET", "/v1.43/images/moby-import:t/json").json()
            assert (image["Os"], image["Architecture"]) == ("linux", arch), platform
        for platform, words in (("%20%20", "is an invalid component"), ("/", "is an invalid component"),
                                ("macos", "operating system is not supported"),
                                ("macos/arm64", "operating system is not supported"),
                                ("nintendo64", "unknown operating system or architecture")):
            reply = imported(platform)
            assert reply.status == 400 and words in reply.json()["message"], (platform, reply.body)
    finally:
        service.docker("rmi", "moby-import:t")


def test_build_refusals_in_mobys_words(service: Service) -> None:
    """moby's TestBuildPlatformInvalid and TestBuildWithEmptyDockerfile: a platform no one knows and a
    Dockerfile of comments or blank lines only are 400s in moby's words (an empty one 'cannot be empty')."""
    import io
    import tarfile

    def context(dockerfile: bytes) -> bytes:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as tar:
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(dockerfile)
            tar.addfile(info, io.BytesIO(dockerfile))
        return out.getvalue()

    for query, dockerfile, words in (("platform=foobar", b"FROM busybox\n", "unknown operating system or architecture"),
                                     ("", b"# this is a comment", "file with no instructions"),
                                     ("", b"\n\n   \n", "file with no instructions"),
                                     ("", b"", "cannot be empty")):
        reply = service.request("POST", f"/v1.43/build?{query}", context(dockerfile),
                                headers={"Content-Type": "application/x-tar"}, timeout=60)
        assert reply.status == 400 and words in reply.json()["message"], (query, dockerfile, reply.body)


def test_nis_domainname_of_the_uts_namespace(service: Service) -> None:
    """moby's TestNISDomainname: Config.Domainname is the container's NIS domain name (its own UTS
    namespace), kept for inspect; it was refused."""
    import docker

    client = docker.APIClient(base_url=service.host, version="1.43", timeout=30)
    cid = client.create_container("busybox", ["cat", "/proc/sys/kernel/hostname", "/proc/sys/kernel/domainname"],
                                  hostname="foobar", domainname="baz.example")["Id"]
    try:
        config = client.inspect_container(cid)["Config"]
        assert (config["Hostname"], config["Domainname"]) == ("foobar", "baz.example")
        client.start(cid)
        assert client.wait(cid, timeout=30)["StatusCode"] == 0, client.logs(cid)
        assert client.logs(cid).split() == [b"foobar", b"baz.example"]
    finally:
        client.remove_container(cid, force=True)
        client.close()
