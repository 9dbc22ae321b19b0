"""`pull` against the real registry: formats, platforms, digests, corruption, crashes and concurrency.

Pulling extracts layers (owners, device nodes, xattrs), so these tests need root.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.errors import IntegrityError, NotFound, RegistryError
from engine.image.manifest import Platform, host_platform
from engine.image.pull import pull_image
from engine.image.store import ImageStore
from tests.fixtures.imagebuild import (
    BuiltImage,
    build_image,
    client_for_test,
    directory,
    file,
    hardlink,
    symlink,
    tar_from_entries,
    upload_image,
    upload_index,
)

pytestmark = pytest.mark.root


def push(registry, tmp_path: Path, repository: str, image: BuiltImage, tag: str | None = "latest") -> str:
    client = client_for_test(registry.host, tmp_path / "client")
    try:
        return upload_image(client, repository, image, tag=tag)
    finally:
        client.close()


def unique_layer(label: str, size: int = 4096) -> bytes:
    return tar_from_entries([file(f"{label}.bin", os.urandom(size))])


def blob_data_path(registry, digest: str) -> Path:
    hexpart = digest.split(":", 1)[1]
    return registry.root / "storage" / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexpart[:2] / hexpart / "data"


def assert_nothing_stored(config: EngineConfig) -> None:
    assert ImageStore(config).list_images() == []
    layerdb = config.image_dir / "layerdb" / "sha256"
    assert not layerdb.exists() or list(layerdb.iterdir()) == []
    if config.layers_dir.exists():
        assert sorted(p.name for p in config.layers_dir.iterdir() if not p.name.startswith(".")) in ([], ["l"])
        assert not (config.layers_dir / "l").exists() or list((config.layers_dir / "l").iterdir()) == []
    assert not config.tmp_dir.exists() or list(config.tmp_dir.iterdir()) == []


def dockui(root: Path, *args: str, **kw) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_CONFIG": str(root.parent / "no-docker-config")}
    return subprocess.run([sys.executable, "-m", "tui.launcher", "--root", str(root), *args],
                          capture_output=True, text=True, env=env, timeout=120, **kw)


def test_pull_busybox_cli_output_and_store(busybox_in_registry: str, busybox_built: BuiltImage, tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = dockui(root, "pull", busybox_in_registry)
    assert result.returncode == 0, result.stderr
    short = json.loads(busybox_built.manifest)["layers"][0]["digest"][7:19]
    assert result.stdout.splitlines() == [
        "latest: Pulling from library/busybox",
        f"{short}: Pulling fs layer",
        f"{short}: Verifying Checksum",
        f"{short}: Download complete",
        f"{short}: Pull complete",
        f"Digest: {busybox_built.digest}",
        f"Status: Downloaded newer image for {busybox_in_registry}",
        busybox_in_registry,
    ]
    up_to_date = dockui(root, "pull", busybox_in_registry)
    assert up_to_date.stdout.splitlines() == [
        "latest: Pulling from library/busybox",
        f"Digest: {busybox_built.digest}",
        f"Status: Image is up to date for {busybox_in_registry}",
        busybox_in_registry,
    ]
    again = dockui(root, "pull", "-q", busybox_in_registry)
    assert again.returncode == 0 and again.stdout == busybox_in_registry + "\n"

    store = ImageStore(EngineConfig(root=root))
    record = store.resolve(busybox_in_registry)
    assert record.id == busybox_built.image_id
    assert record.diff_ids == busybox_built.diff_ids
    from engine import eventlog

    # moby's pull event: the reference as Actor, the repository as `name`
    pulls = [e for e in eventlog.read_events(EngineConfig(root=root), 0) if e.type == "image" and e.action == "pull"]
    assert {(e.actor_id, e.attributes["name"]) for e in pulls} == {
        (busybox_in_registry, busybox_in_registry.rsplit(":", 1)[0])}
    assert record.repo_tags == [busybox_in_registry]
    name = busybox_in_registry.rsplit(":", 1)[0]
    assert record.repo_digests == [f"{name}@{busybox_built.digest}"]
    diff = store.layer_dirs(record.id)[0]
    assert os.access(diff / "bin" / "busybox", os.X_OK)
    assert (diff / "bin" / "sh").stat().st_ino == (diff / "bin" / "busybox").stat().st_ino  # hard link kept
    assert b"".join(store.layer_tar(record.chain_ids[0])) == busybox_built.layers[0][0].tar


def test_pull_oci_layers_gzip_zstd_and_plain(registry, tmp_path: Path) -> None:
    tars = [
        tar_from_entries([directory("data"), file("data/a", "gzip layer"), file("data/big", os.urandom(300_000))]),
        tar_from_entries([file("data/b", "zstd layer", 0o4755, uid=1, gid=2), symlink("data/link", "b")]),
        tar_from_entries([file("data/c", "plain layer"), hardlink("data/c2", "data/c")]),
    ]
    image = build_image(tars, compression=["gzip", "zstd", "none"], oci=True)
    push(registry, tmp_path, "test/oci-mixed", image, tag="v1")
    config = EngineConfig(root=tmp_path / "root")
    events = []
    record = pull_image(config, f"{registry.host}/test/oci-mixed:v1", progress=events.append)
    assert record.id == image.image_id
    top = ImageStore(config).layer_dirs(record.id)
    assert (top[0] / "data" / "a").read_text() == "gzip layer"
    st = (top[1] / "data" / "b").stat()
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o4755, 1, 2)
    assert os.readlink(top[1] / "data" / "link") == "b"
    assert (top[2] / "data" / "c2").stat().st_ino == (top[2] / "data" / "c").stat().st_ino
    statuses = [(e.layer, e.status) for e in events if e.layer]
    for layer in {e.layer for e in events if e.layer}:
        mine = [s for lay, s in statuses if lay == layer]
        assert mine[0] == "Pulling fs layer" and mine[-1] == "Pull complete"
        assert mine.index("Download complete") < mine.index("Extracting")
    downloading = [e for e in events if e.status == "Downloading"]
    assert downloading and all(0 < e.current <= e.total for e in downloading)


def _platform_image(plat: Platform) -> BuiltImage:
    return build_image([tar_from_entries([file("platform", str(plat))])], platform=plat)


def test_multi_arch_selection(registry, tmp_path: Path) -> None:
    host = host_platform()
    others = [Platform("linux", "arm64", "v8"), Platform("linux", "arm", "v7"), Platform("linux", "arm", "v6")]
    platforms = [host] + [p for p in others if p.architecture != host.architecture]
    images = [_platform_image(p) for p in platforms]
    index_digest = upload_index(client_for_test(registry.host, tmp_path / "c"), "test/multi", images, tag="v1")
    ref = f"{registry.host}/test/multi:v1"

    config = EngineConfig(root=tmp_path / "root")
    record = pull_image(config, ref)
    assert record.id == images[0].image_id
    assert record.repo_digests == [f"{registry.host}/test/multi@{index_digest}"]  # the index digest, as Docker

    arm64 = pull_image(config, ref, platform="linux/arm64")
    assert arm64.config["architecture"] == "arm64"
    assert (ImageStore(config).layer_dirs(arm64.id)[0] / "platform").read_text() == "linux/arm64/v8"
    armv7 = pull_image(EngineConfig(root=tmp_path / "root2"), ref, platform="linux/arm/v7")
    assert armv7.config.get("variant") == "v7"
    with pytest.raises(RegistryError, match=r"no matching manifest for linux/s390x"):
        pull_image(EngineConfig(root=tmp_path / "root3"), ref, platform="linux/s390x")

    # Docker manifest list flavour, by digest.
    docker_images = [build_image([tar_from_entries([file("p", str(p))])], oci=False, platform=p) for p in platforms]
    list_digest = upload_index(client_for_test(registry.host, tmp_path / "c"), "test/multi-docker", docker_images,
                               tag="v1", oci=False)
    by_digest = pull_image(EngineConfig(root=tmp_path / "root4"), f"{registry.host}/test/multi-docker@{list_digest}")
    assert by_digest.id == docker_images[0].image_id
    assert by_digest.repo_tags == []


def test_manifest_fetched_by_digest_must_hash_to_it(registry, tmp_path: Path) -> None:
    image = build_image([unique_layer("bydigest")])
    digest = push(registry, tmp_path, "test/bydigest", image, tag="v1")
    stored = blob_data_path(registry, digest)
    original = stored.read_bytes()
    tampered = original.replace(b"   ", b"\t  ", 1)  # same JSON, same length, other bytes
    assert tampered != original
    stored.write_bytes(tampered)
    config = EngineConfig(root=tmp_path / "root")
    try:
        with pytest.raises(IntegrityError, match="manifest digest mismatch"):
            pull_image(config, f"{registry.host}/test/bydigest@{digest}")
        assert_nothing_stored(config)
    finally:
        stored.write_bytes(original)
    record = pull_image(config, f"{registry.host}/test/bydigest@{digest}")
    assert record.repo_digests == [f"{registry.host}/test/bydigest@{digest}"]


def test_blob_digest_mismatch_stores_nothing(registry, tmp_path: Path) -> None:
    base = tar_from_entries([file("base.bin", os.urandom(50_000))])
    bad = unique_layer("corrupt", 200_000)
    image = build_image([base, bad], compression="none")
    push(registry, tmp_path, "test/corrupt", image)
    layer_digest = json.loads(image.manifest)["layers"][1]["digest"]
    stored = blob_data_path(registry, layer_digest)
    data = bytearray(stored.read_bytes())
    data[150_000] ^= 0xFF
    stored.write_bytes(bytes(data))
    config = EngineConfig(root=tmp_path / "root")
    events = []
    with pytest.raises(IntegrityError, match=f"blob digest mismatch: expected {layer_digest}"):
        pull_image(config, f"{registry.host}/test/corrupt:latest", progress=events.append)
    base_short = json.loads(image.manifest)["layers"][0]["digest"][7:19]
    assert (base_short, "Pull complete") in [(e.layer, e.status) for e in events]
    assert_nothing_stored(config)  # the good base layer, committed first, is rolled back too


def test_truncated_or_oversized_blob_is_rejected(registry, tmp_path: Path) -> None:
    layer = unique_layer("short", 100_000)
    image = build_image([layer])
    real = json.loads(image.manifest)["layers"][0]
    for declared, message in ((real["size"] + 1000, "truncated"), (real["size"] - 1000, "larger than")):
        bad = build_image([layer], manifest_override={"layers": [{**real, "size": declared}]})
        bad.layers = image.layers
        push(registry, tmp_path, "test/truncated", bad, tag=f"s{declared}")
        config = EngineConfig(root=tmp_path / f"root{declared}")
        with pytest.raises(IntegrityError, match=message):
            pull_image(config, f"{registry.host}/test/truncated:s{declared}")
        assert_nothing_stored(config)


def test_unknown_manifest_and_schema1_are_clear_errors(registry, tmp_path: Path) -> None:
    config = EngineConfig(root=tmp_path / "root")
    with pytest.raises(NotFound, match="manifest unknown"):
        pull_image(config, f"{registry.host}/test/nothing-here:v1")
    client = client_for_test(registry.host, tmp_path / "c")
    image = build_image([unique_layer("artifact")])
    upload_image(client, "test/artifact", image, tag=None)
    artifact = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.example.thing.v1+json",
                                      "digest": image.image_id, "size": len(image.config)},
                           "layers": json.loads(image.manifest)["layers"]}).encode()
    client.put_manifest("test/artifact", "v1", artifact, "application/vnd.oci.image.manifest.v1+json")
    with pytest.raises(RegistryError, match="not a container image"):
        pull_image(config, f"{registry.host}/test/artifact:v1")
    assert_nothing_stored(config)


def _slow_image(registry, tmp_path: Path, name: str, layers: int = 3, size: int = 3_000_000) -> BuiltImage:
    tars = [tar_from_entries([file(f"l{i}/blob", os.urandom(size))] +
                             [file(f"l{i}/small{j}", f"{i}-{j}") for j in range(300)]) for i in range(layers)]
    image = build_image(tars, compression="gzip")
    push(registry, tmp_path, name, image)
    return image


def test_sigkill_during_pull_then_clean_repull(registry, tmp_path: Path) -> None:
    image = _slow_image(registry, tmp_path, "test/killed")
    ref = f"{registry.host}/test/killed:latest"
    root = tmp_path / "root"
    staging = root / "overlay2" / ".staging"
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "nodocker")}
    # Kill once in the middle of extracting a layer (a staging dir exists), once between two layers.
    for moment in ("while extracting", "after a layer"):
        process = subprocess.Popen([sys.executable, "-m", "tui.launcher", "--root", str(root), "pull", ref],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        assert process.stdout is not None
        caught = False
        if moment == "while extracting":
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and process.poll() is None:
                if staging.is_dir() and any(p.is_dir() for p in staging.iterdir()):
                    process.send_signal(signal.SIGKILL)
                    caught = True
                    break
                time.sleep(0.001)
        else:
            for line in process.stdout:
                if line.endswith(": Pull complete\n"):
                    process.send_signal(signal.SIGKILL)
                    caught = True
                    break
        process.wait()
        process.stdout.close()
        assert caught and process.returncode == -signal.SIGKILL, f"the pull ended before the kill ({moment})"
    config = EngineConfig(root=root)
    events = []
    record = pull_image(config, ref, progress=events.append)
    assert record.id == image.image_id
    store = ImageStore(config)
    for chain, layer in zip(record.chain_ids, image.layers, strict=True):
        assert b"".join(store.layer_tar(chain)) == layer[0].tar
    layer_dirs = {p.name for p in config.layers_dir.iterdir() if not p.name.startswith(".")} - {"l"}
    assert len(layer_dirs) == len(image.layers)  # no half layer left behind
    assert not staging.exists() or list(staging.iterdir()) == []
    assert len(list((config.layers_dir / "l").iterdir())) == len(image.layers)
    assert list(config.tmp_dir.iterdir()) == []


def test_two_concurrent_pulls_share_a_base_layer(registry, tmp_path: Path) -> None:
    base = tar_from_entries([file("base/blob", os.urandom(3_000_000))] + [file(f"base/f{i}", str(i)) for i in range(500)])
    first = build_image([base, unique_layer("first")])
    second = build_image([base, unique_layer("second")])
    push(registry, tmp_path, "test/share-a", first)
    push(registry, tmp_path, "test/share-b", second)
    root = tmp_path / "root"
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "nodocker")}
    processes = [subprocess.Popen([sys.executable, "-m", "tui.launcher", "--root", str(root), "pull", "-q",
                                   f"{registry.host}/test/{name}:latest"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env) for name in ("share-a", "share-b")]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    store = ImageStore(EngineConfig(root=root))
    ids = {r.id for r in store.list_images()}
    assert ids == {first.image_id, second.image_id}
    chains = set(store.resolve(f"{registry.host}/test/share-a").chain_ids) | set(
        store.resolve(f"{registry.host}/test/share-b").chain_ids)
    assert len(chains) == 3
    assert len(list((root / "image" / "overlay2" / "layerdb" / "sha256").iterdir())) == 3
    assert len({p.name for p in (root / "overlay2").iterdir() if not p.name.startswith(".")} - {"l"}) == 3


def test_cancel_stops_the_pull_and_stores_nothing(registry, tmp_path: Path) -> None:
    import threading

    from engine.image.registry import Cancelled

    image = build_image([unique_layer("cancel-a", 3_000_000), unique_layer("cancel-b", 3_000_000)], compression="none")
    push(registry, tmp_path, "test/cancel", image)
    config = EngineConfig(root=tmp_path / "root")
    cancel = threading.Event()
    seen = []

    def progress(event) -> None:
        seen.append(event.status)
        if event.status == "Pull complete":
            cancel.set()

    with pytest.raises(Cancelled):
        pull_image(config, f"{registry.host}/test/cancel:latest", progress=progress, cancel=cancel)
    assert seen.count("Pull complete") == 1
    assert_nothing_stored(config)


def test_a_malicious_later_layer_fails_the_pull_and_leaves_nothing(registry, tmp_path: Path) -> None:
    """Layers are extracted in parallel and committed in order: when one fails, the layers below it
    (committed or merely staged) are taken back and no staging dir is left."""
    base = tar_from_entries([file(f"base/f{i}", str(i)) for i in range(400)])
    evil = tar_from_entries([file("ok.txt", "fine"), file("../escape.txt", "out")])
    image = build_image([base, unique_layer("middle", 500_000), evil, unique_layer("above")])
    push(registry, tmp_path, "test/evil-later", image)
    config = EngineConfig(root=tmp_path / "root")
    with pytest.raises(IntegrityError, match="climbs out of the layer"):
        pull_image(config, f"{registry.host}/test/evil-later:latest")
    assert_nothing_stored(config)
    assert not (config.layers_dir / ".staging").exists()
    assert not (tmp_path / "escape.txt").exists() and not (config.layers_dir / "escape.txt").exists()


def test_a_pull_flushes_once_and_leaves_no_unsynced_marks(registry, tmp_path: Path, monkeypatch) -> None:
    """Layers are committed as they are extracted but flushed once, at the end (docs/store.md)."""
    from engine.image import extract

    image = build_image([unique_layer("flush-a", 200_000), unique_layer("flush-b"), unique_layer("flush-c")])
    push(registry, tmp_path, "test/flush-once", image)
    config = EngineConfig(root=tmp_path / "root")
    flushed: list[Path] = []
    real = extract.syncfs
    monkeypatch.setattr(extract, "syncfs", lambda path: (flushed.append(path), real(path)))
    record = pull_image(config, f"{registry.host}/test/flush-once:latest")
    assert len(flushed) == 1
    layerdb = config.image_dir / "layerdb" / "sha256"
    assert [p for p in layerdb.glob("*/unsynced")] == []
    assert len(record.chain_ids) == 3
    pull_image(config, f"{registry.host}/test/flush-once:latest")  # up to date: nothing to flush
    assert len(flushed) == 1


def _commit_unsynced(store: ImageStore, tar: bytes, parent: str | None, boot: str) -> str:
    """A layer as a pull commits it before its flush, its mark rewritten to name another boot:
    what a pull cut off by a power loss leaves behind."""
    import io

    chain = store.commit_layer(store.stage_layer(io.BytesIO(tar), None, sync=False), parent, None, durable=False)
    (store._layer_path(chain) / "unsynced").write_text(boot)
    return chain


def test_layers_committed_before_a_flush_a_reboot_cut_off_are_extracted_again(registry, tmp_path: Path) -> None:
    base, top = unique_layer("torn-base", 100_000), unique_layer("torn-top")
    image = build_image([base, top])
    push(registry, tmp_path, "test/torn", image)
    config = EngineConfig(root=tmp_path / "root")
    store = ImageStore(config)
    chain = _commit_unsynced(store, image.layers[0][0].tar, None, "a-boot-before-this-one")
    cache_id = store.layer_info(chain).cache_id
    data = next((config.layers_dir / cache_id / "diff").iterdir())
    data.write_bytes(b"")  # what a crash may leave of a file whose pages were never written
    (store._layer_path(chain) / "size").write_bytes(b"\x00\x00")  # and of unsynced metadata
    record = pull_image(config, f"{registry.host}/test/torn:latest")
    assert record.chain_ids[0] == chain
    assert store.layer_info(chain).cache_id != cache_id  # extracted again, not reused
    assert not (config.layers_dir / cache_id).exists()
    assert b"".join(store.layer_tar(chain)) == image.layers[0][0].tar
    assert list((config.image_dir / "layerdb" / "sha256").glob("*/unsynced")) == []


def test_a_marked_layer_an_image_uses_is_kept(registry, tmp_path: Path) -> None:
    """A mark of an earlier boot on a layer some image uses: that image's pull flushed after the
    layer was committed (it found it there), so the layer is whole and only the mark goes."""
    image = build_image([unique_layer("kept-base", 50_000)])
    push(registry, tmp_path, "test/kept", image)
    config = EngineConfig(root=tmp_path / "root")
    record = pull_image(config, f"{registry.host}/test/kept:latest")
    store = ImageStore(config)
    mark = store._layer_path(record.chain_ids[0]) / "unsynced"
    mark.write_text("a-boot-before-this-one")
    cache_id = store.layer_info(record.chain_ids[0]).cache_id
    orphan = _commit_unsynced(store, unique_layer("kept-orphan"), record.chain_ids[0], "a-boot-before-this-one")
    assert store.torn_layers(record.chain_ids)
    assert store.drop_torn_layers() == [orphan]
    assert not mark.exists() and store.layer_info(record.chain_ids[0]).cache_id == cache_id
    assert not store.has_layer(orphan)
