"""The docker CLI (28.x) against `dockui system service`, verb by verb, where dockui was found to
answer otherwise than Docker's daemon (moby's daemon/ and api/server/router are the reference):

- `docker events`: a stop is moby's kill with the stop signal, then SIGKILL when the timeout
  passes (kill, kill, die, stop); rm -f and restart likewise; die carries execDuration; exec_start
  its execID; update, top, commit (image create/tag, container commit), export, cp (archive-path,
  extract-to-dir), attach and a volume's unmount are events; a pull's `name` is the repository;
- a tar whose hard link points at nothing is Docker's `link OLD NEW: no such file or directory`,
  not a Python KeyError;
- every image-not-found message names the normalised reference (`No such image: x:latest`), and
  `save` follows moby's tarexport (a bare name saves every tag of it);
- a pull from a registry port nobody listens on fails at once ("connection refused"), without the
  back-off meant for a registry that failed half-way through.
"""

from __future__ import annotations

import io
import json
import socket
import tarfile
import time

import pytest

from tests.service_support import EventRow, Service, docker_events, service_fixture  # noqa: F401 - the `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root

def _container_actions(rows: list[EventRow], cid: str) -> list[str]:
    return [action for kind, action, actor, _ in rows if kind == "container" and actor == cid]


def _trapping(service: Service) -> str:
    """A container that exits on SIGTERM, once its trap is set (before that, sh as PID 1 ignores it)."""
    cid = service.docker_out("run", "-d", "busybox", "sh", "-c",
                             "trap 'exit 0' TERM; echo ready; while :; do sleep 0.1; done").strip()
    assert wait_until(lambda: service.docker_out("logs", cid) == "ready\n", timeout=20)
    return cid


def test_stop_restart_and_rm_f_are_kill_events_before_die(service: Service) -> None:
    since = time.time()
    # sleep as PID 1 ignores SIGTERM: stop's timeout passes and SIGKILL follows
    cid = service.docker_out("run", "-d", "--name", "stubborn", "-v", "sweepvol:/data", "busybox", "sleep", "300").strip()
    service.docker_out("stop", "-t", "1", "stubborn")
    service.docker_out("restart", "-t", "0", "stubborn")  # not running: start, restart
    service.docker_out("restart", "-t", "0", "stubborn")
    service.docker_out("rm", "-f", "stubborn")
    # a container that exits on SIGTERM: one kill, no SIGKILL
    polite = _trapping(service)
    service.docker_out("stop", "-t", "20", polite)
    service.docker_out("rm", polite)
    # a paused one: the kill thaws it, which moby's monitor logs as unpause
    frozen = _trapping(service)
    service.docker_out("pause", frozen)
    service.docker_out("stop", frozen)
    service.docker_out("rm", frozen)
    rows = docker_events(service, since)
    assert _container_actions(rows, frozen) == ["create", "start", "pause", "kill", "unpause", "die", "stop", "destroy"]
    assert _container_actions(rows, cid) == [
        "create", "start",
        "kill", "kill", "die", "stop",  # stop -t 1
        "start", "restart",
        "kill", "kill", "die", "stop", "start", "restart",  # restart -t 0
        "kill", "die", "destroy",  # rm -f
    ]
    signals = [attrs["signal"] for kind, action, actor, attrs in rows if actor == cid and action == "kill"]
    assert signals == ["15", "9", "15", "9", "9"]
    die = next(attrs for kind, action, actor, attrs in rows if actor == cid and action == "die")
    assert die["exitCode"] == "137" and die["execDuration"].isdigit() and die["name"] == "stubborn"
    assert _container_actions(rows, polite) == ["create", "start", "kill", "die", "stop", "destroy"]
    # the volume is unmounted before each die, as moby's Cleanup does it
    volume = [action for kind, action, actor, _ in rows if kind == "volume" and actor == "sweepvol"]
    assert volume == ["create", "mount", "unmount", "mount", "unmount", "mount", "unmount"]
    # --filter and --format over the same log
    kills = docker_events(service, since, event="kill", container="stubborn")
    assert [attrs["signal"] for *_, attrs in kills] == ["15", "9", "15", "9", "9"]
    service.docker_out("volume", "rm", "sweepvol")


def test_the_other_verbs_write_mobys_events(service: Service, tmp_path) -> None:  # noqa: ANN001
    since = time.time()
    cid = service.docker_out("run", "-d", "--name", "busy", "busybox", "sleep", "300").strip()
    service.docker_out("exec", "busy", "true")
    service.docker_out("update", "--cpu-shares", "512", "busy")
    service.docker_out("top", "busy")
    service.docker("cp", "busy:/etc/hostname", "-", check=True)
    (tmp_path / "f.txt").write_text("hi\n")
    service.docker_out("cp", str(tmp_path / "f.txt"), "busy:/tmp/")
    image_id = service.docker_out("commit", "-m", "msg", "busy", "sweep:one").strip()
    service.docker("export", "busy", check=True)
    service.docker_out("rm", "-f", "busy")
    attached = service.docker("run", "--rm", "busybox", "echo", "hi", check=True)
    assert attached.stdout == b"hi\n"
    rows = docker_events(service, since)
    assert _container_actions(rows, cid) == [
        "create", "start", "exec_create: true ", "exec_start: true ", "exec_die", "update", "top", "archive-path",
        "extract-to-dir", "pause", "commit", "unpause", "export", "kill", "die", "destroy"]
    execs = [attrs for kind, action, actor, attrs in rows if actor == cid and action.startswith("exec_")]
    assert len({attrs["execID"] for attrs in execs}) == 1  # exec_start names its exec too
    commit = next(attrs for kind, action, actor, attrs in rows if actor == cid and action == "commit")
    assert commit["imageID"] == image_id and commit["imageRef"] == "sweep:one" and commit["comment"] == "msg"
    images = [(action, actor, attrs["name"]) for kind, action, actor, attrs in rows if kind == "image"]
    assert images == [("create", image_id, image_id), ("tag", image_id, "sweep:one")]
    run_rm = [actor for kind, action, actor, _ in rows if kind == "container" and action == "attach"]
    assert len(run_rm) == 1  # docker run attaches before it starts the container
    assert _container_actions(rows, run_rm[0]) == ["create", "attach", "start", "die", "destroy"]
    service.docker_out("rmi", "sweep:one")


def _tar(*members: tuple[str, str | bytes]) -> bytes:
    """A tar of (name, data) files and (name, "=>target") hard links."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, str) and content.startswith("=>"):
                info.type, info.linkname = tarfile.LNKTYPE, content[2:]
                tar.addfile(info)
            else:
                data = content.encode() if isinstance(content, str) else content
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_a_hard_link_to_nothing_is_dockers_link_error(service: Service) -> None:
    service.docker_out("run", "-d", "--name", "cpbox", "busybox", "sleep", "300")
    try:
        broken = _tar(("link", "=>missing"))
        result = service.docker("cp", "-", "cpbox:/tmp", input=broken)
        assert result.returncode == 1
        assert result.stderr.decode().strip() == (
            "Error response from daemon: link /tmp/missing /tmp/link: no such file or directory")
        reply = service.request("PUT", "/containers/cpbox/archive?path=/tmp", broken)
        assert reply.status == 400 and "KeyError" not in reply.body.decode()
        # links to a file the archive wrote before, and to one the container already has
        good = _tar(("d/f", "hello"), ("d/sub/l2", "=>d/f"), ("l3", "=>etc/passwd"))
        service.docker("cp", "-", "cpbox:/", input=good, check=True)
        inodes = service.docker_out("exec", "cpbox", "stat", "-c", "%i %h", "/d/f", "/d/sub/l2", "/l3", "/etc/passwd").split("\n")
        assert inodes[0] == inodes[1] and inodes[0].endswith(" 2") and inodes[2] == inodes[3]
    finally:
        service.docker("rm", "-f", "cpbox")


def test_image_not_found_names_the_normalised_reference(service: Service) -> None:
    def error(*args: str) -> str:
        result = service.docker(*args)
        assert result.returncode != 0
        return result.stderr.decode().strip().splitlines()[0]

    missing = "Error response from daemon: No such image: nosuch:latest"
    assert error("image", "inspect", "nosuch") == missing
    assert error("rmi", "nosuch") == missing
    assert error("tag", "nosuch", "other") == missing
    assert error("history", "nosuch") == missing
    assert error("create", "--pull", "never", "nosuch") == missing
    assert error("run", "--pull", "never", "nosuch") == "docker: " + missing
    assert error("image", "inspect", "nosuch:1") == "Error response from daemon: No such image: nosuch:1"
    full = "0" * 64
    assert error("image", "inspect", full) == f"Error response from daemon: No such image: sha256:{full}"
    assert service.request("GET", "/images/nosuch/json").status == 404
    # save: moby's tarexport words (an ID-prefix search for a bare name, the reference store for a tag)
    assert error("save", "nosuch") == "Error response from daemon: No such image: nosuch"
    assert error("save", "nosuch:1") == "Error response from daemon: reference does not exist"


def test_save_of_a_bare_name_saves_every_tag(service: Service) -> None:
    service.docker_out("tag", "busybox", "busybox:extra")
    archive = service.docker("save", "busybox", check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert sorted(manifest[0]["RepoTags"]) == ["busybox:extra", "busybox:latest"]
    service.docker_out("rmi", "busybox:extra")


def test_a_pull_from_a_closed_port_fails_at_once(service: Service) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = service.docker("pull", f"127.0.0.1:{port}/nothing:here")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "Connection refused" in result.stderr.decode()
    assert elapsed < 5, f"a refused connection took {elapsed:.1f} s to report (the ping retried with back-off)"


def test_ps_limit_logs_details_and_cp_errors_as_dockers(service: Service) -> None:
    service.docker_out("run", "-d", "--name", "up", "busybox", "sleep", "300")
    service.docker_out("run", "--name", "done", "busybox", "echo", "hello")
    try:
        # moby's list: a limit counts stopped containers, as -a does (ps -l is the latest created)
        assert service.docker_out("ps", "--format", "{{.Names}}").split() == ["up"]
        assert service.docker_out("ps", "-l", "--format", "{{.Names}}").split() == ["done"]
        assert service.docker_out("ps", "-n", "2", "--format", "{{.Names}}").split() == ["done", "up"]
        # status implies -a, exited does not (moby's list; the docker CLI adds nothing)
        assert service.docker_out("ps", "--filter", "status=exited", "--format", "{{.Names}}").split() == ["done"]
        assert service.docker_out("ps", "--filter", "exited=0", "--format", "{{.Names}}").split() == []
        assert service.docker_out("ps", "-a", "--filter", "exited=0", "--format", "{{.Names}}").split() == ["done"]
        # --details: the entry's attributes (none) and a space before each line, as moby writes them
        assert service.docker_out("logs", "--details", "done") == " hello\n"
        stamped = service.docker_out("logs", "--details", "-t", "done")
        assert stamped.endswith("Z  hello\n") and stamped[:4].isdigit()
        # a missing path names the container as the client gave it
        missing = service.docker("cp", "done:/nonexist", "-")
        assert missing.stderr.decode().strip() == "Error response from daemon: Could not find the file /nonexist in container done"
    finally:
        service.docker("rm", "-f", "up", "done")


def test_prune_filters_until_and_labels(service: Service) -> None:
    """moby's prune filters for containers, images, volumes and networks (they were refused), and
    the `prune` event each prune logs (no actor; the bytes reclaimed)."""
    def names(*args: str) -> list[str]:
        return service.docker_out(*args).split()

    since = time.time()

    service.docker_out("run", "--name", "keeper", "--label", "keep=yes", "busybox", "true")
    service.docker_out("run", "--name", "dropped", "busybox", "true")
    service.docker_out("commit", "--change", "LABEL x=y", "keeper", "labelled:1")
    assert "Total reclaimed space" in service.docker_out("container", "prune", "-f", "--filter", "until=2000-01-01")
    service.docker_out("container", "prune", "-f", "--filter", "label!=keep=yes")
    assert names("ps", "-a", "--format", "{{.Names}}") == ["keeper"]
    service.docker_out("container", "prune", "-f", "--filter", "label=keep=yes", "--filter", "until=0s")
    assert names("ps", "-a", "--format", "{{.Names}}") == []
    refused = service.docker("container", "prune", "-f", "--filter", "nosuch=1")
    assert refused.stderr.decode().strip() == "Error response from daemon: invalid filter 'nosuch'"

    service.docker_out("image", "prune", "-a", "-f", "--filter", "label=x=y")
    assert names("images", "--format", "{{.Repository}}:{{.Tag}}") == ["busybox:latest"]

    service.docker_out("volume", "create", "--label", "a=b", "labelled")
    service.docker_out("volume", "create", "plain")
    service.docker_out("volume", "prune", "-a", "-f", "--filter", "label=a=b")
    assert names("volume", "ls", "-q") == ["plain"]
    service.docker_out("volume", "rm", "plain")

    service.docker_out("network", "create", "--label", "n=1", "labellednet")
    service.docker_out("network", "create", "plainnet")
    service.docker_out("network", "prune", "-f", "--filter", "until=2000-01-01")
    service.docker_out("network", "prune", "-f", "--filter", "label=n=1")
    assert "labellednet" not in names("network", "ls", "--format", "{{.Name}}")
    assert "plainnet" in names("network", "ls", "--format", "{{.Name}}")
    service.docker_out("network", "rm", "plainnet")
    pruned = [(kind, actor, attrs["reclaimed"]) for kind, action, actor, attrs in docker_events(service, since, event="prune")]
    assert [kind for kind, _, _ in pruned] == ["container"] * 3 + ["image", "volume", "network", "network"]
    assert all(actor == "" and reclaimed.isdigit() for _, actor, reclaimed in pruned)


def test_export_has_the_init_layer_and_a_bad_load_says_why(service: Service) -> None:
    service.docker_out("create", "--name", "exported", "busybox", "true")
    try:
        with tarfile.open(fileobj=io.BytesIO(service.docker("export", "exported", check=True).stdout)) as tar:
            names = tar.getnames()
        assert ".dockerenv" in names and "bin/busybox" in names  # Docker's init layer is part of the export
    finally:
        service.docker("rm", "exported")
    garbage = service.docker("load", input=b"garbage\n")
    assert garbage.returncode == 1
    assert garbage.stderr.decode().strip() == "not an image archive: the input is not a tar archive (plain or gzip'd)"


def test_ps_filters_ancestor_publish_expose_and_exposed_ports(service: Service) -> None:
    service.docker_out("tag", "busybox", "other/name:v1")
    service.docker_out("run", "-d", "--name", "ported", "-p", "9090:90", "--expose", "91", "busybox", "sleep", "300")
    service.docker_out("commit", "ported", "child:1")
    service.docker_out("run", "-d", "--name", "kid", "--network", "none", "--expose", "92", "child:1", "sleep", "300")
    try:
        def listed(*filters: str) -> list[str]:
            args = [arg for f in filters for arg in ("--filter", f)]
            return sorted(service.docker_out("ps", "-a", *args, "--format", "{{.Names}}").split())

        # ancestor: the image the reference names (by any of its names or its ID) and its children
        assert listed("ancestor=other/name:v1") == ["kid", "ported"]
        assert listed("ancestor=child:1") == ["kid"]
        assert listed("ancestor=nosuch") == []
        assert listed("publish=9090") == listed("publish=9000-9100/tcp") == ["ported"]
        assert listed("publish=90") == [] and listed("publish=9090/udp") == []
        assert listed("expose=90") == listed("expose=91") == ["ported"]
        assert listed("is-task=false") == ["kid", "ported"] and listed("is-task=true") == []
        assert listed("isolation=default") == ["kid", "ported"]
        bad = service.docker("ps", "--filter", "publish=x")
        assert bad.returncode == 1 and "invalid filter 'publish=x'" in bad.stderr.decode()
        # an exposed port is in Ports, bound to nothing (not on a network without endpoints)
        assert service.docker_out("inspect", "-f", "{{json .NetworkSettings.Ports}}", "ported").strip() == (
            '{"90/tcp":[{"HostIp":"0.0.0.0","HostPort":"9090"}],"91/tcp":null}')
        assert service.docker_out("ps", "--filter", "name=ported", "--format", "{{.Ports}}").strip() == (
            "91/tcp, 0.0.0.0:9090->90/tcp")
        assert service.docker_out("inspect", "-f", "{{json .NetworkSettings.Ports}}", "kid").strip() == "{}"
    finally:
        service.docker("rm", "-f", "ported", "kid")
        service.docker("rmi", "child:1", "other/name:v1")


def test_lifecycle_refusals_in_mobys_words(service: Service) -> None:
    cid = service.docker_out("create", "--name", "idle", "busybox", "sleep", "300").strip()
    service.docker_out("run", "-d", "--name", "busy", "busybox", "sleep", "300")
    try:
        def error(*args: str) -> str:
            result = service.docker(*args)
            assert result.returncode != 0
            return result.stderr.decode().strip().splitlines()[0].removeprefix("Error response from daemon: ")

        assert error("kill", "idle") == f"cannot kill container: idle: container {cid} is not running"
        assert error("pause", "idle") == f"container {cid} is not running"
        assert error("exec", "idle", "true") == f"container {cid} is not running"
        assert error("top", "idle") == f"container {cid} is not running"
        assert error("kill", "--signal", "FOO", "busy") == "Invalid signal: FOO"
        assert error("rm", "busy") == 'cannot remove container "busy": container is running: stop the container before removing or force remove'
        service.docker_out("pause", "busy")
        assert error("rm", "busy") == 'cannot remove container "busy": container is paused and must be unpaused first'
        service.docker_out("unpause", "busy")
        assert error("rename", "idle", "idle") == "Renaming a container with the same name as its current name"
        busy_id = service.docker_out("inspect", "-f", "{{.Id}}", "busy").strip()
        assert error("rename", "idle", "busy") == (
            'Error when allocating new name: Conflict. The container name "/busy" is already in use by container '
            f'"{busy_id}". You have to remove (or rename) that container to be able to reuse that name.')
        # rm -f of a --rm container: its monitor removes it after the kill; the rm succeeds all the same
        for _ in range(3):
            service.docker_out("run", "-d", "--rm", "--name", "gone", "busybox", "sleep", "300")
            assert service.docker_out("rm", "-f", "gone") == "gone\n"
    finally:
        service.docker("rm", "-f", "idle", "busy")


def test_image_list_counts_shared_size_when_asked(service: Service) -> None:
    """moby (API 1.42+): SharedSize with `shared-size=1`, else -1; Containers stays -1 below API 1.51
    (only `system df` counts them), as Docker 28's image list answers."""
    service.docker_out("create", "--name", "base", "busybox", "true")
    service.docker_out("commit", "base", "child:1")
    try:
        plain = {row["RepoTags"][0]: row for row in service.request("GET", "/v1.43/images/json").json()}
        assert plain["busybox:latest"]["SharedSize"] == -1 and plain["busybox:latest"]["Containers"] == -1
        shared = {row["RepoTags"][0]: row for row in service.request("GET", "/v1.43/images/json?shared-size=1").json()}
        base_size = shared["busybox:latest"]["Size"]
        assert shared["busybox:latest"]["SharedSize"] == shared["child:1"]["SharedSize"] == base_size
    finally:
        service.docker("rm", "base")
        service.docker("rmi", "child:1")


def test_cp_a_gives_the_copy_to_the_containers_user(service: Service, tmp_path) -> None:  # noqa: ANN001
    """moby's copyUIDGID: `cp -a` into a container with a Config.User chowns to that user (looked
    up in the container's /etc/passwd); without it the archive's numeric owners stay."""
    import os

    source = tmp_path / "owned"
    source.write_text("x\n")
    os.chown(source, 1234, 5678)
    service.docker_out("run", "-d", "--name", "asapp", "-u", "app", "busybox", "sleep", "300")
    try:
        service.docker_out("cp", "-a", str(source), "asapp:/tmp/with-a")
        service.docker_out("cp", str(source), "asapp:/tmp/without-a")
        owners = service.docker_out("exec", "asapp", "stat", "-c", "%u:%g", "/tmp/with-a", "/tmp/without-a").split()
        assert owners == ["1000:1000", "1234:5678"]
        service.engine.out("cp", "-a", str(source), "asapp:/tmp/dockui-a")  # dockui's own cp -a, the same rule
        assert service.docker_out("exec", "asapp", "stat", "-c", "%u:%g", "/tmp/dockui-a").strip() == "1000:1000"
    finally:
        service.docker("rm", "-f", "asapp")


def test_top_shows_the_whole_command_whatever_columns_the_caller_has(engine: Engine) -> None:
    """`ps` cuts its last column to COLUMNS: a service or CLI started from a shell that exports it
    must still list the whole command, as dockerd's does."""
    import subprocess

    cid = engine.out("run", "-d", "--network", "none", "busybox", "sh", "-c", "while true; do sleep 1; done").strip()
    narrow = subprocess.run(engine.argv("top", cid), env=dict(engine.env, COLUMNS="30"), capture_output=True,
                            text=True, timeout=30)
    assert narrow.returncode == 0 and "while true; do sleep 1; done" in narrow.stdout, narrow.stdout
    engine.out("rm", "-f", cid)
