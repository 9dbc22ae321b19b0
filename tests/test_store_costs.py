"""Costs of #12 that grow with the store, kept down (bench/scale --costs has the figures): each
guard counts the work a verb does (files measured, configs parsed, mount tables read), never time.

- `volume prune` measures only the volumes it removes (Docker's SpaceReclaimed), not every one.
- `rmi` parses the removed image's config once.
- The mount points are read through one reader (engine.util.mountinfo), again only when the
  mount table changed since.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import EngineConfig


def test_volume_prune_measures_only_what_it_removes(engine_config: EngineConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.api import volumes as api_volumes
    from engine.container import volumes

    for i in range(5):  # named volumes with files: prune (without --all) keeps them, unmeasured
        kept = volumes.create_volume(engine_config, f"kept{i}")
        (kept.mountpoint / "big").write_bytes(b"k" * 4096)
    gone = volumes.create_volume(engine_config)  # anonymous, unused: pruned
    (gone.mountpoint / "file").write_bytes(b"g" * 1000)
    measured: list[Path] = []
    real = api_volumes._tree_size
    monkeypatch.setattr(api_volumes, "_tree_size", lambda path: measured.append(path) or real(path))
    removed, freed = api_volumes.prune(engine_config)
    assert removed == [gone.name]
    assert measured == [gone.mountpoint]  # before: every volume of the store, kept ones too
    assert freed == 1000
    assert sorted(v.name for v in volumes.list_volumes(engine_config)) == [f"kept{i}" for i in range(5)]



def _config_reads(monkeypatch: pytest.MonkeyPatch, path: Path) -> list[Path]:
    """Every read of `path` (an image's config) through Path.read_bytes, as the store reads it."""
    reads: list[Path] = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: (reads.append(self) if self == path else None, real(self))[1])
    return reads


@pytest.mark.parametrize("how", ["by-reference", "by-id", "forced-by-reference"])
def test_rmi_reads_the_image_config_once(engine_config: EngineConfig, busybox_imported, how: str,  # noqa: ANN001
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-use check, the conflict check and the deletion of its layers all ask for the image's
    chain IDs: read from its config once per removal (before: once per check, three times)."""
    from engine.container.usage import container_uses
    from engine.image.digest import hex_of
    from engine.image.store import ImageStore

    store = ImageStore(engine_config, containers=container_uses)
    image_id = busybox_imported.id
    reads = _config_reads(monkeypatch, store.imagedb / "content" / "sha256" / hex_of(image_id))
    ref = image_id if how == "by-id" else "busybox:latest"
    lines = store.remove(ref, force=how.startswith("forced"))
    assert lines[0] == "Untagged: busybox:latest" and f"Deleted: {image_id}" in lines
    assert len(reads) == 1, reads
    assert store.list_images() == [] and not store.has_layer(busybox_imported.chain_ids[0])
