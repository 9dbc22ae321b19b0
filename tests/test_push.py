"""`push` from the store to the real registry, and interop with skopeo in both directions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.errors import InvalidArgument
from engine.image.pull import pull_image
from engine.image.push import push_image
from engine.image.store import ImageStore
from tests.fixtures.busybox import import_busybox
from tests.fixtures.imagebuild import BuiltImage, build_image, file, sha256, tar_from_entries

pytestmark = pytest.mark.root
SKOPEO = shutil.which("skopeo")
needs_skopeo = pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed (apt-get install skopeo)")


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    assert SKOPEO is not None
    return subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True, text=True, timeout=120)


def test_push_from_store_then_pull_back(registry, tmp_path: Path) -> None:
    config = EngineConfig(root=tmp_path / "root")
    record = import_busybox(config, "busybox:latest")
    target = f"{registry.host}/pushed/busybox:v1"
    ImageStore(config).tag("busybox:latest", target)
    events = []
    digest = push_image(config, target, progress=events.append)
    statuses = [e.status for e in events]
    assert statuses[0] == f"The push refers to repository [{registry.host}/pushed/busybox]"
    assert "Pushed" in statuses and statuses[-1].startswith(f"v1: digest: {digest} size: ")

    again = []
    assert push_image(config, target, progress=again.append) == digest  # deterministic, blobs skipped
    assert "Layer already exists" in [e.status for e in again] and "Pushed" not in [e.status for e in again]

    fresh = EngineConfig(root=tmp_path / "fresh")
    pulled = pull_image(fresh, target)
    assert pulled.id == record.id and pulled.diff_ids == record.diff_ids
    assert f"{registry.host}/pushed/busybox@{digest}" in ImageStore(config).resolve(target).repo_digests

    # Same registry, other repository: the blob is mounted, not uploaded again.
    other = f"{registry.host}/mounted/busybox:v1"
    ImageStore(fresh).tag(target, other)
    mounted = []
    push_image(fresh, other, progress=mounted.append)
    assert "Mounted from pushed/busybox" in [e.status for e in mounted]


def test_chunked_push_and_digest_refs_refused(registry, tmp_path: Path) -> None:
    config = EngineConfig(root=tmp_path / "root")
    import_busybox(config, "busybox:latest")
    target = f"{registry.host}/chunked/busybox:v1"
    ImageStore(config).tag("busybox:latest", target)
    digest = push_image(config, target, chunk_size=256 * 1024)
    fresh = EngineConfig(root=tmp_path / "fresh")
    assert pull_image(fresh, f"{registry.host}/chunked/busybox@{digest}").repo_digests
    with pytest.raises(InvalidArgument, match="cannot push a digest reference"):
        push_image(config, f"{registry.host}/chunked/busybox@{digest}")


def write_oci_layout(image: BuiltImage, directory: Path, tag: str) -> None:
    """An OCI image layout (the format `skopeo copy oci:DIR` reads)."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for data in [image.config, image.manifest] + [blob for _, blob in image.layers]:
        (blobs / sha256(data)[7:]).write_bytes(data)
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    (directory / "index.json").write_text(json.dumps(index))


@needs_skopeo
def test_skopeo_push_then_dockui_pull(registry, busybox_layer: bytes, tmp_path: Path) -> None:
    layer2 = tar_from_entries([file("etc/motd", "pushed by skopeo\n")])
    image = build_image([busybox_layer, layer2], compression=["gzip", "zstd"], oci=True)
    write_oci_layout(image, tmp_path / "layout", "v1")
    result = skopeo("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'layout'}:v1",
                    f"docker://{registry.host}/interop/from-skopeo:v1")
    assert result.returncode == 0, result.stderr
    config = EngineConfig(root=tmp_path / "root")
    record = pull_image(config, f"{registry.host}/interop/from-skopeo:v1")
    assert record.id == image.image_id
    assert (ImageStore(config).layer_dirs(record.id)[1] / "etc" / "motd").read_text() == "pushed by skopeo\n"


@needs_skopeo
def test_dockui_push_then_skopeo_copy(registry, tmp_path: Path) -> None:
    config = EngineConfig(root=tmp_path / "root")
    record = import_busybox(config, "busybox:latest")
    target = f"{registry.host}/interop/from-dockui:v1"
    ImageStore(config).tag("busybox:latest", target)
    digest = push_image(config, target)
    inspect = skopeo("inspect", "--tls-verify=false", f"docker://{target}")
    assert inspect.returncode == 0, inspect.stderr
    assert json.loads(inspect.stdout)["Digest"] == digest
    # skopeo verifies every blob digest while copying; the config's diff_ids must be ours.
    copied = skopeo("copy", "--src-tls-verify=false", f"docker://{target}", f"oci:{tmp_path / 'out'}:v1")
    assert copied.returncode == 0, copied.stderr
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    manifest = json.loads((tmp_path / "out" / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_bytes())
    image_config = json.loads((tmp_path / "out" / "blobs" / "sha256" / manifest["config"]["digest"][7:]).read_bytes())
    assert image_config["rootfs"]["diff_ids"] == record.diff_ids


def test_cli_push_output(registry, tmp_path: Path) -> None:
    config = EngineConfig(root=tmp_path / "root")
    import_busybox(config, "busybox:latest")
    target = f"{registry.host}/cli/busybox:v2"
    ImageStore(config).tag("busybox:latest", target)
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "nodocker")}
    result = subprocess.run([sys.executable, "-m", "tui.launcher", "--root", str(config.root), "push", target],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"The push refers to repository [{registry.host}/cli/busybox]"
    assert lines[-1].startswith("v2: digest: sha256:") and " size: " in lines[-1]
    assert any(line.endswith(": Pushed") or line.endswith(": Layer already exists") for line in lines)
    missing = subprocess.run([sys.executable, "-m", "tui.launcher", "--root", str(config.root), "push",
                              f"{registry.host}/cli/nothing:v1"], capture_output=True, text=True, env=env)
    assert missing.returncode == 1 and "No such image" in missing.stderr
