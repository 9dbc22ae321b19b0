"""`dockui cp` (both ways, Docker's archive rules, running and stopped), `diff`, and the verbs added
beside them (`history`, `container stats`, `image pull`/`push`, `system prune`): real containers from
busybox, the real registry fixture, the CLI as a user types it."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from tests.test_lifecycle_support import engine_fixture  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root


def _host_tree(base: Path) -> Path:
    (base / "dir" / "sub").mkdir(parents=True)
    (base / "dir" / "sub" / "f").write_text("hi\n")
    (base / "dir" / "top").write_text("top\n")
    (base / "file").write_text("file\n")
    return base


def _tree(engine, container: str, path: str) -> list[str]:  # noqa: ANN001
    return sorted(engine.out("exec", container, "find", path).split())


def test_cp_into_and_out_of_a_container_with_dockers_rules(engine, tmp_path: Path) -> None:  # noqa: ANN001, F811
    host = _host_tree(tmp_path / "h")
    engine.out("run", "-d", "--name", "c1", "-v", "cpvol:/vol", "busybox", "sleep", "300")
    # Into a running container: a directory into an existing directory, its contents with `/.`,
    # a file under a new name, and a tar stream on stdin.
    engine.out("cp", str(host / "dir"), "c1:/tmp")
    engine.out("cp", f"{host / 'dir'}/.", "c1:/opt/")
    engine.out("cp", str(host / "file"), "c1:/tmp/renamed")
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w") as tar:
        tar.add(host / "file", arcname="streamed")
    engine.cli("cp", "-", "c1:/root", input=stream.getvalue(), check=True)
    assert _tree(engine, "c1", "/tmp") == ["/tmp", "/tmp/dir", "/tmp/dir/sub", "/tmp/dir/sub/f", "/tmp/dir/top", "/tmp/renamed"]
    assert _tree(engine, "c1", "/opt") == ["/opt", "/opt/sub", "/opt/sub/f", "/opt/top"]
    assert engine.out("exec", "c1", "cat", "/tmp/renamed", "/root/streamed") == "file\nfile\n"
    # Owned by root in the container unless -a keeps the source's owners.
    os.chown(host / "file", 1000, 1000)
    engine.out("cp", str(host / "file"), "c1:/tmp/rootowned")
    engine.out("cp", "-a", str(host / "file"), "c1:/tmp/kept")
    assert engine.out("exec", "c1", "stat", "-c", "%u:%g", "/tmp/rootowned", "/tmp/kept").split() == ["0:0", "1000:1000"]

    # Out of it: into an existing directory, to a new name, contents only, a file, a tar on stdout.
    out = tmp_path / "out"
    out.mkdir()
    engine.out("cp", "c1:/tmp/dir", str(out))
    engine.out("cp", "c1:/tmp/dir", str(out / "newdir"))
    engine.out("cp", "c1:/tmp/dir/.", str(out / "contents"))
    engine.out("cp", "c1:/etc/passwd", str(out / "pw"))
    found = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert found == ["contents", "contents/sub", "contents/sub/f", "contents/top", "dir", "dir/sub", "dir/sub/f",
                     "dir/top", "newdir", "newdir/sub", "newdir/sub/f", "newdir/top", "pw"]
    assert (out / "pw").read_text().startswith("root:x:0:0")
    streamed = engine.cli("cp", "c1:/tmp/dir", "-", check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(streamed)) as tar:
        assert sorted(m.name for m in tar) == ["dir", "dir/sub", "dir/sub/f", "dir/top"]

    # -L follows a symbolic link SRC (in the container, or on the host) and keeps the link's name.
    engine.out("exec", "c1", "ln", "-s", "/etc/passwd", "/tmp/pwlink")
    links = tmp_path / "links"
    links.mkdir()
    engine.out("cp", "c1:/tmp/pwlink", str(links))
    engine.out("cp", "-L", "c1:/tmp/pwlink", str(links / "followed"))
    assert os.readlink(links / "pwlink") == "/etc/passwd"
    assert not (links / "followed").is_symlink() and (links / "followed").read_text().startswith("root:x:0:0")
    with tarfile.open(fileobj=io.BytesIO(engine.cli("cp", "-L", "c1:/tmp/pwlink", "-", check=True).stdout)) as tar:
        assert [(m.name, m.isfile()) for m in tar] == [("pwlink", True)]
    engine.out("exec", "c1", "ln", "-s", "/opt", "/optlink")  # a destination link is followed
    engine.out("cp", str(host / "file"), "c1:/optlink")
    assert engine.out("exec", "c1", "sh", "-c", "readlink /optlink; cat /opt/file") == "/opt\nfile\n"
    (host / "hostlink").symlink_to(host / "file")
    engine.out("cp", "-L", str(host / "hostlink"), "c1:/tmp")
    engine.out("cp", str(host / "hostlink"), "c1:/root")
    assert engine.out("exec", "c1", "sh", "-c", "cat /tmp/hostlink; readlink /root/hostlink") == f"file\n{host / 'file'}\n"

    # Errors: one line, nothing written.
    before = sorted(out.rglob("*"))
    for args, message in (
        (("c1:/nope", str(out)), "Could not find the file /nope"),
        (("c1:/tmp/dir", str(out / "pw")), "cannot copy directory to a file"),
        (("c1:/etc/passwd", str(out / "missing") + "/"), "does not exist"),
        ((str(tmp_path / "nope"), "c1:/tmp"), "no such file or directory"),
        ((str(host / "dir"), "c1:/tmp/renamed"), "cannot copy directory to a file"),
        ((str(host / "file"), "c1:/no/such/dir/x"), "Could not find the file /no/such/dir"),
        ((str(host / "file"), str(out)), "one side must be CONTAINER:PATH"),
    ):
        result = engine.cli("cp", *args)
        assert result.returncode == 1, (args, result.returncode)  # as docker cp
        assert message in result.stderr.decode() and len(result.stderr.decode().splitlines()) == 1, result.stderr
    assert sorted(out.rglob("*")) == before
    # An archive member that would leave the destination is refused.
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w") as tar:
        info = tarfile.TarInfo("../escape")
        tar.addfile(info, io.BytesIO(b""))
    refused = engine.cli("cp", "-", "c1:/tmp", input=evil.getvalue())
    assert refused.returncode == 1 and b"leave the destination" in refused.stderr
    assert "/escape" not in engine.out("exec", "c1", "ls", "/")

    # A stopped container: read and written through its layer, seen when it starts again.
    engine.out("stop", "-t", "0", "c1")
    engine.out("cp", "c1:/tmp/renamed", str(out / "from-stopped"))
    assert (out / "from-stopped").read_text() == "file\n"
    engine.out("cp", str(host / "file"), "c1:/written-stopped")
    engine.out("cp", str(host / "file"), "c1:/vol/in-volume")  # into its volume, as it will see it
    engine.out("cp", "c1:/vol/in-volume", str(out / "from-volume"))
    assert (out / "from-volume").read_text() == "file\n"
    engine.out("start", "c1")
    assert engine.out("exec", "c1", "cat", "/written-stopped", "/vol/in-volume") == "file\nfile\n"

    # docker diff: A/C/D from the container's layer.
    engine.out("exec", "c1", "rm", "/etc/group")
    engine.out("exec", "c1", "sh", "-c", "echo x >> /etc/passwd")
    diff = engine.out("diff", "c1").splitlines()
    for line in ("C /etc", "D /etc/group", "C /etc/passwd", "A /tmp/renamed", "A /opt", "A /written-stopped", "C /tmp"):
        assert line in diff, (line, diff)
    assert engine.out("container", "diff", "c1") == "\n".join(diff) + "\n"
    missing = engine.cli("diff", "nosuch")
    assert missing.returncode == 1 and missing.stderr == b"Error: No such container: nosuch\n"
    engine.out("rm", "-f", "c1")
    engine.out("volume", "rm", "cpvol")


def test_history_container_stats_and_system_prune(engine) -> None:  # noqa: ANN001, F811
    assert engine.out("history", "busybox") == engine.out("image", "history", "busybox")
    assert engine.out("history", "busybox").startswith("IMAGE")
    engine.out("run", "-d", "--name", "live", "busybox", "sleep", "300")
    stats = engine.out("container", "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "live")
    assert stats == "live 1\n"
    engine.out("run", "--name", "stopped", "busybox", "sh", "-c", "head -c 300000 /dev/zero > /big")
    engine.out("network", "create", "unusednet")
    engine.out("tag", "busybox", "other:tag")
    # No confirmation (stdin at EOF): nothing removed.
    asked = engine.cli("system", "prune", input=b"")
    assert asked.returncode == 0 and b"WARNING! This will remove" in asked.stdout
    assert "stopped" in engine.out("ps", "-a", "--format", "{{.Names}}")
    pruned = engine.out("system", "prune", "-f")
    assert "Deleted Containers:" in pruned and "Deleted Networks:\nunusednet" in pruned
    assert pruned.rstrip().splitlines()[-1] == "Total reclaimed space: 300kB"  # what the container wrote
    assert engine.out("ps", "-a", "--format", "{{.Names}}") == "live\n"
    assert "unusednet" not in engine.out("network", "ls")
    assert "other" in engine.out("images")  # tagged, in use: kept without -a
    engine.out("rm", "-f", "live")
    engine.out("rmi", "other:tag")
    engine.out("system", "prune", "-a", "-f")
    assert engine.out("images", "-q") == ""


def test_image_pull_and_push(engine, registry) -> None:  # noqa: ANN001, F811
    ref = f"{registry.host}/cpdiff/bb:v1"
    engine.out("tag", "busybox", ref)
    engine.out("image", "push", "-q", ref)
    engine.out("rmi", ref)
    pulled = engine.cli("image", "pull", "-q", ref, check=True)
    assert pulled.stdout.decode().strip() == ref
    assert json.loads(engine.out("image", "inspect", ref))[0]["Id"] == json.loads(engine.out("image", "inspect", "busybox"))[0]["Id"]
    missing = engine.cli("image", "pull", f"{registry.host}/cpdiff/none:v1")
    assert missing.returncode != 0 and len(missing.stderr.decode().splitlines()) == 1
