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

