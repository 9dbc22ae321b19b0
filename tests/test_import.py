"""`import`: a root filesystem tarball becomes a one-layer image in Docker's store layout."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.errors import IntegrityError, NotFound
from engine.image.store import ImageStore, host_architecture

pytestmark = pytest.mark.root


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_busybox_import_lays_out_the_store_like_docker(engine_config: EngineConfig, busybox_imported, busybox_tar: Path) -> None:
    store = ImageStore(engine_config)
    image_dir = engine_config.image_dir
    tar_bytes = busybox_tar.read_bytes()
    diff_id = _sha256(tar_bytes)

    assert busybox_imported.diff_ids == [diff_id]
    assert busybox_imported.chain_ids == [diff_id]  # a single layer's chain ID is its diff ID
    assert busybox_imported.repo_tags == ["busybox:latest"]
    repos = json.loads((image_dir / "repositories.json").read_text())
    assert repos == {"Repositories": {"busybox": {"busybox:latest": busybox_imported.id}}}

    config_bytes = (image_dir / "imagedb/content/sha256" / busybox_imported.id[7:]).read_bytes()
    assert _sha256(config_bytes) == busybox_imported.id
    config = json.loads(config_bytes)
    assert config["rootfs"] == {"type": "layers", "diff_ids": [diff_id]}
    assert config["os"] == "linux" and config["architecture"] == host_architecture()
    assert config["config"] == {"Cmd": ["sh"]}
    assert (image_dir / "imagedb/metadata/sha256" / busybox_imported.id[7:] / "lastUpdated").is_file()

    layer = image_dir / "layerdb/sha256" / diff_id[7:]
    assert (layer / "diff").read_text() == diff_id
    assert not (layer / "parent").exists()
    cache_id = (layer / "cache-id").read_text()
    diff = engine_config.layers_dir / cache_id / "diff"
    link = (engine_config.layers_dir / cache_id / "link").read_text()
    assert len(link) == 26
    assert os.readlink(engine_config.layers_dir / "l" / link) == f"../{cache_id}/diff"
    assert store.lowerdir_option(busybox_imported.id) == f"l/{link}"
    assert store.layer_dirs(busybox_imported.id) == [diff]

    busybox = diff / "bin/busybox"
    assert busybox.read_bytes() == Path("/bin/busybox").read_bytes()
    assert os.stat(diff / "bin/sh").st_ino == busybox.stat().st_ino  # applets are hard links
    assert stat.S_IMODE(os.stat(diff / "tmp").st_mode) == 0o1777
    assert os.stat(diff / "home/app").st_uid == 1000
    assert "app:x:1000:1000" in (diff / "etc/passwd").read_text()
    assert int((layer / "size").read_text()) == busybox_imported.size >= busybox.stat().st_size

    # push needs the very same bytes back
    assert _sha256(b"".join(store.layer_tar(diff_id))) == diff_id


@pytest.mark.parametrize("compression", ["gzip", "gzip-multi-member", "zstd"])
def test_compressed_tarballs_import_to_the_same_layer(
    engine_config: EngineConfig, busybox_tar: Path, tmp_path: Path, compression: str
) -> None:
    raw = busybox_tar.read_bytes()
    if compression == "gzip":
        data = gzip.compress(raw, compresslevel=1)
    elif compression == "gzip-multi-member":  # as pigz or `cat a.gz b.gz` make; Go reads them all
        half = len(raw) // 2
        data = gzip.compress(raw[:half], compresslevel=1) + gzip.compress(raw[half:], compresslevel=9) + bytes(100)
    else:
        import zstandard

        data = zstandard.ZstdCompressor(level=1).compress(raw)
    path = tmp_path / f"rootfs.tar.{compression}"
    path.write_bytes(data)
    record = ImageStore(engine_config).import_tarball(path, "example.com:5000/ns/imported:v1")
    assert record.diff_ids == [_sha256(raw)]
    assert record.repo_tags == ["example.com:5000/ns/imported:v1"]
    assert record.config["history"][0]["comment"] == f"Imported from {path}"
    assert "Cmd" not in record.config["config"]  # docker import sets no command


def test_import_from_a_stream_and_of_garbage(engine_config: EngineConfig, busybox_tar: Path) -> None:
    store = ImageStore(engine_config)
    record = store.import_tarball(io.BytesIO(busybox_tar.read_bytes()), "streamed")
    assert store.resolve("streamed:latest").id == record.id
    with pytest.raises(IntegrityError):
        store.import_tarball(io.BytesIO(b"this is not a tar archive" * 40), "garbage")
    with pytest.raises(NotFound):
        store.resolve("garbage")
    with pytest.raises(NotFound):
        store.import_tarball(Path("/nonexistent.tar"), "missing")
    assert [r.repo_tags for r in store.list_images()] == [["streamed:latest"]]
    layer = store.layer_info(record.chain_ids[0])
    assert sorted(p.name for p in engine_config.layers_dir.iterdir()) == [layer.cache_id, "l"]


# --- the image verbs ------------------------------------------------------------------------------


def dockui(config: EngineConfig, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from engine.cli import main

    capsys.readouterr()
    status = main(["--root", str(config.root), *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_image_verbs(engine_config: EngineConfig, busybox_tar: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = dockui(
        engine_config, capsys, "import", "-c", 'CMD ["sh"]', "-c", "ENV A=1 B=two", "-c", "WORKDIR /tmp", str(busybox_tar), "busybox"
    )
    assert status == 0
    image_id = out.strip()
    assert image_id.startswith("sha256:") and ImageStore(engine_config).resolve("busybox").id == image_id
    assert dockui(engine_config, capsys, "tag", "busybox", "localhost:5000/team/bb:v1")[0] == 0

    status, out, _ = dockui(engine_config, capsys, "images")
    lines = out.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert [line.split()[:3] for line in lines[1:]] == [["busybox", "latest", image_id[7:19]], ["localhost:5000/team/bb", "v1", image_id[7:19]]]
    assert dockui(engine_config, capsys, "images", "-q")[1] == (image_id[7:19] + "\n") * 2  # one per tag, as docker's
    rows = [json.loads(line) for line in dockui(engine_config, capsys, "image", "ls", "--format", "json")[1].splitlines()]
    assert {(r["Repository"], r["Tag"], r["ID"]) for r in rows} == {("busybox", "latest", image_id[7:19]), ("localhost:5000/team/bb", "v1", image_id[7:19])}

    status, out, _ = dockui(engine_config, capsys, "image", "inspect", "busybox")
    [obj] = json.loads(out)
    assert obj["Id"] == image_id and obj["RepoTags"] == ["busybox:latest", "localhost:5000/team/bb:v1"]
    assert obj["Config"] == {"Cmd": ["sh"], "Env": ["A=1", "B=two"], "WorkingDir": "/tmp"}
    assert obj["RootFS"] == {"Type": "layers", "Layers": [_sha256(busybox_tar.read_bytes())]}
    assert obj["GraphDriver"]["Name"] == "overlay2" and Path(obj["GraphDriver"]["Data"]["UpperDir"], "bin/busybox").is_file()
    assert obj["Os"] == "linux" and obj["Size"] > 1_000_000
    status, out, err = dockui(engine_config, capsys, "image", "inspect", "--format", "{{.Id}}", "busybox", "nosuch")
    assert (status, out) == (1, image_id + "\n") and "No such image: nosuch" in err

    status, out, _ = dockui(engine_config, capsys, "rmi", "busybox")
    assert (status, out) == (0, "Untagged: busybox:latest\n")
    status, out, _ = dockui(engine_config, capsys, "image", "rm", image_id[7:15])
    assert status == 0 and out.splitlines() == ["Untagged: localhost:5000/team/bb:v1", f"Deleted: {image_id}", f"Deleted: {_sha256(busybox_tar.read_bytes())}"]
    status, _, err = dockui(engine_config, capsys, "rmi", "busybox")
    assert status == 1 and "No such image: busybox" in err
    assert dockui(engine_config, capsys, "images", "-q")[1] == ""


def test_import_errors_are_one_clear_line(engine_config: EngineConfig, tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"\x1f\x8b" + b"not really gzip" * 50)
    root = ["--root", str(engine_config.root)]
    for argv, message in (
        ([str(bad), "x"], "not valid compressed data"),
        ([str(tmp_path / "missing.tar"), "x"], "no such file"),
        (["-c", "RUN make", str(bad), "x"], "RUN is not a valid change command"),
        ([str(bad), "UPPER"], "must be lowercase"),
    ):
        result = subprocess.run([sys.executable, "-m", "tui.launcher", *root, "import", *argv], capture_output=True, text=True)
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("Error: ") and message in result.stderr and "Traceback" not in result.stderr
    assert ImageStore(engine_config).list_images() == []


# --- save / load ------------------------------------------------------------------------------------


def test_save_and_load_round_trip_and_interoperate_with_skopeo(
    engine_config: EngineConfig, busybox_imported, tmp_path: Path
) -> None:
    import subprocess

    store = ImageStore(engine_config)
    store.tag("busybox", "localhost:5000/team/bb:v1")
    archive = tmp_path / "saved.tar"
    with archive.open("wb") as out:
        store.save(["busybox", "localhost:5000/team/bb:v1"], out)

    # skopeo reads it both as a Docker archive and as an OCI layout archive
    for source in (f"docker-archive:{archive}", f"oci-archive:{archive}:v1"):
        result = subprocess.run(["skopeo", "inspect", source], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["Layers"] == busybox_imported.diff_ids

    other = ImageStore(EngineConfig(root=tmp_path / "other"))
    loaded = other.load(archive)
    assert [(r.id, tags) for r, tags in loaded] == [(busybox_imported.id, ["busybox:latest", "localhost:5000/team/bb:v1"])]
    assert other.resolve("localhost:5000/team/bb:v1").id == busybox_imported.id
    chain = busybox_imported.chain_ids[0]
    assert b"".join(other.layer_tar(chain)) == b"".join(store.layer_tar(chain))

    # and what skopeo writes (legacy Docker layout; OCI with gzip'd layers) loads here
    rewritten = tmp_path / "skopeo-docker.tar"
    oci = tmp_path / "skopeo-oci.tar"
    subprocess.run(["skopeo", "copy", "-q", f"docker-archive:{archive}", f"docker-archive:{rewritten}:localhost/sk/bb:v2"], check=True)
    subprocess.run(["skopeo", "copy", "-q", f"docker-archive:{archive}", f"oci-archive:{oci}:v3"], check=True)
    third = ImageStore(EngineConfig(root=tmp_path / "third"))
    with rewritten.open("rb") as stream:  # not seekable from the loader's point of view: spooled
        [(record, tags)] = third.load(io.BufferedReader(io.BytesIO(stream.read())))
    assert (record.id, tags) == (busybox_imported.id, ["localhost/sk/bb:v2"])
    [(oci_record, oci_tags)] = third.load(oci)
    assert oci_record.diff_ids == busybox_imported.diff_ids and oci_tags == []
    spool_dir = tmp_path / "third" / "tmp"
    assert not spool_dir.exists() or list(spool_dir.iterdir()) == []  # the spooled stream is gone


def test_save_and_load_verbs(engine_config: EngineConfig, busybox_imported, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "out" / "bb.tar"
    archive.parent.mkdir()
    assert dockui(engine_config, capsys, "save", "-o", str(archive), "busybox")[0] == 0
    assert [p.name for p in archive.parent.iterdir()] == ["bb.tar"]  # written under a temp name, then renamed
    status, _, err = dockui(engine_config, capsys, "save", "-o", str(tmp_path / "none.tar"), "busybox", "nosuch")
    assert status == 1 and "No such image: nosuch" in err and not (tmp_path / "none.tar").exists()
    other = EngineConfig(root=tmp_path / "other")
    status, out, _ = dockui(other, capsys, "load", "-i", str(archive))
    assert (status, out) == (0, "Loaded image: busybox:latest\n")
    assert ImageStore(other).resolve("busybox").id == busybox_imported.id


def test_load_of_a_tampered_archive_stores_nothing(engine_config: EngineConfig, busybox_imported, tmp_path: Path) -> None:
    import tarfile

    archive = tmp_path / "saved.tar"
    with archive.open("wb") as out:
        ImageStore(engine_config).save(["busybox"], out)
    tampered = tmp_path / "tampered.tar"
    layer_name = "blobs/sha256/" + busybox_imported.diff_ids[0][7:]
    with tarfile.open(archive) as src, tarfile.open(tampered, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            if member.name == layer_name:
                data = data.replace(b"app:x:1000", b"app:x:0000")  # same size, different content
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    other_config = EngineConfig(root=tmp_path / "other")
    other = ImageStore(other_config)
    with pytest.raises(IntegrityError, match="does not match its diff_id"):
        other.load(tampered)
    assert other.list_images() == []
    assert list((other_config.image_dir / "layerdb" / "sha256").iterdir()) == []
    with pytest.raises(IntegrityError, match="not an image archive"):
        other.load(io.BytesIO(b"garbage" * 100))


def test_history_and_prune_verbs(engine_config: EngineConfig, busybox_tar: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = dockui(engine_config, capsys, "import", "-m", "first import", str(busybox_tar), "keep:1")
    kept = out.strip()
    status, out, _ = dockui(engine_config, capsys, "import", str(busybox_tar))  # no name: dangling
    dangling = out.strip()
    assert status == 0 and dangling != kept  # same layer, different config (created, comment)
    status, out, _ = dockui(engine_config, capsys, "image", "history", "keep:1")
    assert status == 0 and out.splitlines()[1].split()[0] == kept[7:19] and "first import" in out
    assert "<none>" in dockui(engine_config, capsys, "images")[1]
    assert dockui(engine_config, capsys, "images", "-q", "--filter", "dangling=true")[1] == dangling[7:19] + "\n"
    assert dockui(engine_config, capsys, "images", "-q", "-f", "dangling=false", "-f", "reference=ke*:*")[1] == kept[7:19] + "\n"
    assert dockui(engine_config, capsys, "images", "-q", "-f", "reference=nomatch*")[1] == ""
    assert dockui(engine_config, capsys, "images", "-f", "bogus=1")[0] == 1
    status, out, _ = dockui(engine_config, capsys, "image", "prune", "-f")
    assert status == 0 and out.splitlines()[:2] == ["Deleted Images:", f"deleted: {dangling}"]
    assert out.rstrip().endswith("Total reclaimed space: 0B")  # the layer is shared with keep:1
    assert [r.id for r in ImageStore(engine_config).list_images()] == [kept]
    from engine.cli.output import human_size

    layer_size = ImageStore(engine_config).resolve(kept).size
    status, out, _ = dockui(engine_config, capsys, "image", "prune", "-a", "-f")
    assert f"deleted: {kept}" in out and f"Total reclaimed space: {human_size(layer_size)}" in out
    assert ImageStore(engine_config).list_images() == []
