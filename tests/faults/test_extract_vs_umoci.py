"""Differential test of layer extraction against umoci, the OCI reference unpacker: layers with
every whiteout form are unpacked by dockui (its store's layers, seen through the read-only overlay a
container gets) and by `umoci unpack`, and the two trees are compared entry by entry: type, mode,
owner, size, content, symlink target, file mtime, and which paths are hard links of each other."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from engine.image.store import ImageStore
from tests.faults.scoreboard import score
from tests.fixtures.imagebuild import (
    build_image,
    directory,
    file,
    hardlink,
    opaque,
    symlink,
    tar_from_entries,
    whiteout,
)

pytestmark = pytest.mark.root
UMOCI = shutil.which("umoci")

LOWER = [
    directory("a"), directory("a/b"), file("a/b/one", "1"), directory("a/c"), file("a/c/two", "2"),
    directory("d"), file("d/three", "3"), directory("d/sub"), file("d/sub/four", "4"),
    file("e", "e was a file"), directory("f"), file("f/g", "g"), directory("h"), file("h/target", "linked"),
    hardlink("h/link", "h/target"), file("k", "old k"), file("k2", "old k2"), symlink("s", "a/c/two"),
    directory("o"), file("o/keep-not", "x"), file("m", "mode", mode=0o600, uid=1000, gid=50),
    directory("deep/er/est"), file("deep/er/est/leaf", "leaf"), directory("p"), file("p/old", "old"),
    directory("q"), file("q/old", "old"), file("r", "r"),
]
MIDDLE = [
    whiteout("a/b"),  # explicit whiteout of a directory
    opaque("d"), file("d/new", "new in d"),  # opaque directory, re-populated in the same layer
    directory("e"), file("e/inner", "e is a dir now"),  # file -> directory
    file("f", "f is a file now"),  # directory -> file
    whiteout("k"), file("k", "new k"),  # whiteout then re-creation in one layer: the new k stays
    file("k2", "new k2"), whiteout("k2"),  # re-creation then whiteout: still only lower layers lose it
    file("h/t2", "second"), hardlink("h/l2", "h/t2"), whiteout("h/target"),  # hard links beside whiteouts
    whiteout("nothing-here"),  # whiteout of what no lower layer has
    whiteout("s"), symlink("s", "d/new"),  # a symlink replaced
    opaque("o"),  # opaque, and nothing re-created
    whiteout("deep/er"),  # a whole subtree
    file("m", "mode", mode=0o4750, uid=0, gid=0),  # same name, new mode and owner
    whiteout("p"), directory("p"), file("p/fresh", "fresh"),  # whiteout, then the directory again
    directory("q"), file("q/fresh", "fresh"), whiteout("q"),  # the directory, then its whiteout
    whiteout("r"), file("r", "r again"), whiteout("r"),  # whiteout, re-creation, whiteout again
]
UPPER = [
    whiteout("h/t2"),  # the link's other name goes; h/l2 keeps the content
    opaque("a"), file("a/only", "only"),
    directory("deep"), file("deep/again", "again"),
    whiteout("e/inner"), file("e/inner2", "two"),
]
LAYERS = {"lower": LOWER, "middle": MIDDLE, "upper": UPPER}


def _entries(root: Path) -> dict[str, tuple]:
    """path -> (kind, mode, uid, gid, size, sha256 or link target, mtime for files, inode group)."""
    found: dict[str, tuple] = {}
    inodes: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            kind = stat.S_IFMT(st.st_mode)
            if stat.S_ISREG(st.st_mode):
                detail = hashlib.sha256(path.read_bytes()).hexdigest()
                group = inodes.setdefault((st.st_dev, st.st_ino), rel)  # first name of a hard-linked file
                found[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size, detail,
                              int(st.st_mtime), group)
            elif stat.S_ISLNK(st.st_mode):
                found[rel] = (kind, 0, st.st_uid, st.st_gid, 0, os.readlink(path), 0, rel)
            else:
                found[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, 0, "", 0, rel)
    return found


def _umoci_tree(image, work: Path) -> Path:
    layout = work / "layout"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    for data in [image.config, image.manifest] + [blob for _, blob in image.layers]:
        (blobs / hashlib.sha256(data).hexdigest()).write_bytes(data)
    descriptor = {"mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest),
                  "annotations": {"org.opencontainers.image.ref.name": "t"}}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [descriptor]}))
    bundle = work / "bundle"
    subprocess.run([UMOCI, "unpack", "--image", f"{layout}:t", str(bundle)], check=True, capture_output=True)
    return bundle / "rootfs"


@pytest.mark.skipif(UMOCI is None, reason="umoci is not installed (apt-get install umoci)")
def test_extraction_matches_umoci_entry_by_entry(engine_config, tmp_path: Path) -> None:
    tars = [tar_from_entries(entries) for entries in LAYERS.values()]
    image = build_image(tars, compression="gzip")
    reference = _umoci_tree(image, tmp_path)

    store = ImageStore(engine_config)
    parent = None
    for (layer, blob) in image.layers:
        parent = store.add_layer(io.BytesIO(blob), layer.media_type, parent, layer.diff_id)
    merged = tmp_path / "merged"
    merged.mkdir()
    lower = store._lower_of_chain(parent)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"ro,lowerdir={lower}", str(merged)], check=True,
                   cwd=engine_config.layers_dir)
    try:
        ours = _entries(merged)
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    theirs = _entries(reference)
    for path in sorted(set(ours) | set(theirs)):
        mine, ref = ours.get(path), theirs.get(path)
        score("extract", path, mine == ref, detail=f"dockui {mine} umoci {ref}")
    assert theirs["k"][5] == hashlib.sha256(b"new k").hexdigest() and "k2" in theirs and "a/b" not in theirs
