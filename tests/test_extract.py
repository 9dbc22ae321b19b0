"""Layer extraction: malicious tars are refused with nothing stored, good ones land faithfully,
whiteouts work under a real overlayfs mount, and the original tar comes back byte for byte."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.errors import IntegrityError
from engine.image.reference import parse_reference
from engine.image.store import ImageStore

pytestmark = pytest.mark.root

MTIME = 1_600_000_000


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **attrs: object) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime = MTIME
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    if kind in (tarfile.REGTYPE, tarfile.AREGTYPE):
        info.size = len(data)
    return info, data


def make_tar(members: list[tuple], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def store_is_empty(config: EngineConfig) -> bool:
    layers = [p.name for p in config.layers_dir.iterdir()] if config.layers_dir.exists() else []
    layerdb = config.image_dir / "layerdb" / "sha256"
    return (
        sorted(layers) in ([], ["l"])
        and (not layerdb.exists() or not any(layerdb.iterdir()))
        and (not (config.layers_dir / "l").exists() or not any((config.layers_dir / "l").iterdir()))
    )


# --- malicious layers --------------------------------------------------------------------------


def _malicious_cases(outside: Path) -> dict[str, list[tuple]]:
    out = str(outside)
    return {
        "dotdot": [member("../escaped", data=b"x")],
        "dotdot-deep": [member("a/", tarfile.DIRTYPE), member("a/../../escaped", data=b"x")],
        "absolute-path": [member(f"{out}/escaped", data=b"x")],
        "symlink-out-relative": [member("etc", tarfile.DIRTYPE), member("etc/link", tarfile.SYMTYPE, linkname="../../../escaped")],
        "symlinked-parent": [member("evil", tarfile.SYMTYPE, linkname=out), member("evil/escaped", data=b"x")],
        "symlink-chain-parent": [
            member("a", tarfile.SYMTYPE, linkname="b"),
            member("b", tarfile.SYMTYPE, linkname=out),
            member("a/escaped", data=b"x"),
        ],
        "symlinked-parent-dir-entry": [member("evil", tarfile.SYMTYPE, linkname=out), member("evil/sub", tarfile.DIRTYPE)],
        "hardlink-out-relative": [member("passwd", tarfile.LNKTYPE, linkname="../../../../etc/passwd")],
        "hardlink-absolute": [member("passwd", tarfile.LNKTYPE, linkname="/etc/passwd")],
        "hardlink-through-symlink": [
            member("evil", tarfile.SYMTYPE, linkname=out),
            member("stolen", tarfile.LNKTYPE, linkname="evil/secret"),
        ],
        "whiteout-through-symlink": [member("evil", tarfile.SYMTYPE, linkname=out), member("evil/.wh.secret")],
        "opaque-through-symlink": [member("evil", tarfile.SYMTYPE, linkname=out), member("evil/.wh..wh..opq")],
        "whiteout-of-parent": [member("a", tarfile.DIRTYPE), member("a/.wh..")],
        "overlay-xattr": [member("d", tarfile.DIRTYPE, pax_headers={"SCHILY.xattr.trusted.overlay.redirect": "/etc"})],
    }


MALICIOUS = [
    "dotdot",
    "dotdot-deep",
    "absolute-path",
    "symlink-out-relative",
    "symlinked-parent",
    "symlink-chain-parent",
    "symlinked-parent-dir-entry",
    "hardlink-out-relative",
    "hardlink-absolute",
    "hardlink-through-symlink",
    "whiteout-through-symlink",
    "opaque-through-symlink",
    "whiteout-of-parent",
    "overlay-xattr",
]


@pytest.mark.parametrize("case", MALICIOUS)
def test_malicious_layer_is_refused_and_nothing_is_stored(engine_config: EngineConfig, tmp_path: Path, case: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("keep me")
    data = make_tar(_malicious_cases(outside)[case])
    store = ImageStore(engine_config)
    with pytest.raises(IntegrityError) as error:
        store.add_layer(io.BytesIO(data), "application/vnd.oci.image.layer.v1.tar", None, sha256(data))
    assert "layer" in str(error.value)
    assert store_is_empty(engine_config)
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_text() == "keep me"
    assert not os.path.lexists(tmp_path / "escaped") and not os.path.lexists(engine_config.root / "escaped")
    assert "trusted.overlay.opaque" not in os.listxattr(outside)


def test_truncated_and_corrupt_layers_are_refused(engine_config: EngineConfig) -> None:
    good = make_tar([member("big", data=os.urandom(10_000))])
    store = ImageStore(engine_config)
    for bad in (good[:5000], good[:700], good[:100]):
        with pytest.raises(IntegrityError):
            store.add_layer(io.BytesIO(bad), None, None, None)
    corrupt = bytearray(good)
    corrupt[148:156] = b"0000000\x00"  # header checksum
    with pytest.raises(IntegrityError, match="not a valid tar"):
        store.add_layer(io.BytesIO(bytes(corrupt)), None, None, None)
    import gzip

    with pytest.raises(IntegrityError, match="compressed"):
        store.add_layer(io.BytesIO(gzip.compress(good)[:-40]), "application/vnd.oci.image.layer.v1.tar+gzip", None, None)
    import zstandard

    zstd = zstandard.ZstdCompressor().compress(good)
    for bad in (zstd[:-3], zstd[: len(zstd) // 2]):  # zstandard's own stream reader would just stop
        with pytest.raises(IntegrityError, match="compressed"):
            store.add_layer(io.BytesIO(bad), "application/vnd.oci.image.layer.v1.tar+zstd", None, None)
    with pytest.raises(IntegrityError, match="does not match its diff_id"):
        store.add_layer(io.BytesIO(good), None, None, "sha256:" + "0" * 64)
    assert store_is_empty(engine_config)


def test_oversized_metadata_and_trailers_are_refused(engine_config: EngineConfig) -> None:
    """Small compressed blobs that would balloon in memory (Go's archive/tar limits PAX data too)."""
    import gzip

    store = ImageStore(engine_config)
    huge_pax = make_tar([member("f", data=b"x", pax_headers={"comment": "y" * (1 << 20)})])
    with pytest.raises(IntegrityError, match="extended header"):
        store.add_layer(io.BytesIO(gzip.compress(huge_pax, 1)), None, None, None)
    bomb = gzip.compress(make_tar([member("f", data=b"x")]) + bytes(17 << 20), 1)
    assert len(bomb) < 100_000
    with pytest.raises(IntegrityError, match="after its end-of-archive"):
        store.add_layer(io.BytesIO(bomb), None, None, None)
    assert store_is_empty(engine_config)


def test_duplicates_replace_rather_than_write_through(engine_config: EngineConfig, tmp_path: Path) -> None:
    """A later entry wins, and replaces a symlink instead of following it out of the layer."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target").write_text("keep me")
    data = make_tar([
        member("x", data=b"first"),
        member("x", tarfile.SYMTYPE, linkname=str(outside / "target")),
        member("x", data=b"last"),
        member("d", data=b"a file first"),
        member("d", tarfile.DIRTYPE),
        member("d/inner", data=b"inner"),
        member("keep", data=b"old content"),
        member("keep-link", tarfile.LNKTYPE, linkname="keep"),
        member("keep", data=b"new content"),
    ])
    store = ImageStore(engine_config)
    chain = store.add_layer(io.BytesIO(data), None, None, sha256(data))
    diff = engine_config.layers_dir / store.layer_info(chain).cache_id / "diff"
    assert (outside / "target").read_text() == "keep me"
    assert (diff / "x").read_bytes() == b"last" and not (diff / "x").is_symlink()
    assert (diff / "d").is_dir() and (diff / "d" / "inner").read_bytes() == b"inner"
    assert (diff / "keep").read_bytes() == b"new content"
    assert (diff / "keep-link").read_bytes() == b"old content"  # Docker unlinks before re-creating
    assert b"".join(store.layer_tar(chain)) == data  # overwritten contents were kept in the tar-split


# --- faithful extraction -----------------------------------------------------------------------


def test_extraction_keeps_modes_owners_times_xattrs_and_special_files(engine_config: EngineConfig) -> None:
    long_dir = "deep/" + "d" * 120
    members = [
        member("./", tarfile.DIRTYPE, mode=0o755),
        member("bin", tarfile.DIRTYPE, mode=0o711, uid=0, gid=0, mtime=MTIME + 1),
        member("bin/su", data=b"#!/bin/sh\n", mode=0o4755, uid=0, gid=0),
        member("bin/wall", data=b"wall", mode=0o2755, uid=0, gid=5),
        member("tmp", tarfile.DIRTYPE, mode=0o1777),
        member("home/u", tarfile.DIRTYPE, mode=0o750, uid=1000, gid=1001, mtime=MTIME + 2),
        member("home/u/notes", data=b"n" * 5000, mode=0o600, uid=1000, gid=1001, mtime=MTIME + 3),
        member("home/u/ro", data=b"ro", mode=0o444, uid=1000, gid=1001),
        member("link-abs", tarfile.SYMTYPE, linkname="/bin/su", uid=7, gid=8, mtime=MTIME + 4),
        member("home/u/link-rel", tarfile.SYMTYPE, linkname="../../bin/su"),
        member("bin/su-hard", tarfile.LNKTYPE, linkname="bin/su"),
        member("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666),
        member("dev/loop9", tarfile.BLKTYPE, devmajor=7, devminor=9, mode=0o660, gid=6),
        member("run/fifo", tarfile.FIFOTYPE, mode=0o620),
        member(f"{long_dir}/" + "f" * 150, data=b"long name"),
        member("caps", data=b"cap", pax_headers={"SCHILY.xattr.user.comment": "hello", "SCHILY.xattr.trusted.note": "t"}),
        member("héllo-ünïcode", data=b"utf8"),
        member("empty", data=b""),
        member("sg", tarfile.DIRTYPE, mode=0o2775, gid=50),
        member("sg/root-file", data=b"r", mode=0o640),  # must not inherit the setgid dir's group
        member("world-writable", data=b"w", mode=0o666),  # wider than the umask allows at creation
    ]
    data = make_tar(members)
    store = ImageStore(engine_config)
    chain = store.add_layer(io.BytesIO(data), None, None, sha256(data))
    diff = engine_config.layers_dir / store.layer_info(chain).cache_id / "diff"

    def st(path: str) -> os.stat_result:
        return os.lstat(diff / path)

    assert stat.S_IMODE(st("bin").st_mode) == 0o711 and st("bin").st_mtime == MTIME + 1
    assert stat.S_IMODE(st("bin/su").st_mode) == 0o4755
    assert stat.S_IMODE(st("bin/wall").st_mode) == 0o2755 and st("bin/wall").st_gid == 5
    assert stat.S_IMODE(st("tmp").st_mode) == 0o1777
    home = st("home/u")
    assert (home.st_uid, home.st_gid, stat.S_IMODE(home.st_mode), home.st_mtime) == (1000, 1001, 0o750, MTIME + 2)
    notes = st("home/u/notes")
    assert (notes.st_uid, notes.st_size, stat.S_IMODE(notes.st_mode), notes.st_mtime) == (1000, 5000, 0o600, MTIME + 3)
    assert stat.S_IMODE(st("home/u/ro").st_mode) == 0o444
    assert os.readlink(diff / "link-abs") == "/bin/su"
    assert (st("link-abs").st_uid, st("link-abs").st_gid, st("link-abs").st_mtime) == (7, 8, MTIME + 4)
    assert os.readlink(diff / "home/u/link-rel") == "../../bin/su"
    assert st("bin/su-hard").st_ino == st("bin/su").st_ino and st("bin/su").st_nlink == 2
    null = st("dev/null")
    assert stat.S_ISCHR(null.st_mode) and (os.major(null.st_rdev), os.minor(null.st_rdev)) == (1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    loop = st("dev/loop9")
    assert stat.S_ISBLK(loop.st_mode) and os.minor(loop.st_rdev) == 9 and loop.st_gid == 6
    assert stat.S_ISFIFO(st("run/fifo").st_mode) and stat.S_IMODE(st("run/fifo").st_mode) == 0o620
    assert (diff / long_dir / ("f" * 150)).read_bytes() == b"long name"
    assert os.getxattr(diff / "caps", "user.comment") == b"hello"
    assert os.getxattr(diff / "caps", "trusted.note") == b"t"
    assert (diff / "héllo-ünïcode").read_bytes() == b"utf8"
    assert st("empty").st_size == 0
    assert (st("sg").st_gid, stat.S_IMODE(st("sg").st_mode)) == (50, 0o2775)
    assert (st("sg/root-file").st_uid, st("sg/root-file").st_gid, stat.S_IMODE(st("sg/root-file").st_mode)) == (0, 0, 0o640)
    assert stat.S_IMODE(st("world-writable").st_mode) == 0o666
    assert b"".join(store.layer_tar(chain)) == data


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_other_tar_formats_round_trip(engine_config: EngineConfig, fmt: int) -> None:
    name = "p" * 60 + "/" + "q" * 90 if fmt == tarfile.USTAR_FORMAT else "g" * 200
    data = make_tar([member("dir", tarfile.DIRTYPE), member(name, data=b"z" * 1000), member("l", tarfile.SYMTYPE, linkname="dir")], fmt)
    data += b"\0" * 4096  # extra end-of-archive padding, as some writers emit
    store = ImageStore(engine_config)
    chain = store.add_layer(io.BytesIO(data), None, None, sha256(data))
    assert (engine_config.layers_dir / store.layer_info(chain).cache_id / "diff" / name).read_bytes() == b"z" * 1000
    assert b"".join(store.layer_tar(chain)) == data


# --- whiteouts under a real overlayfs mount ------------------------------------------------------


def _tree(root: Path) -> dict[str, str]:
    result = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                result[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                result[rel] = "dir"
            else:
                result[rel] = path.read_text()
    return result


def test_whiteouts_and_opaque_dirs_merge_as_expected_under_overlayfs(engine_config: EngineConfig) -> None:
    base = make_tar([
        member("a", tarfile.DIRTYPE),
        member("a/keep", data=b"keep"),
        member("a/gone", data=b"gone"),
        member("d", tarfile.DIRTYPE),
        member("d/old1", data=b"old1"),
        member("d/sub", tarfile.DIRTYPE),
        member("d/sub/old2", data=b"old2"),
        member("f", data=b"v1"),
        member("tree", tarfile.DIRTYPE),
        member("tree/x", data=b"x"),
        member("s", tarfile.SYMTYPE, linkname="f"),
    ])
    middle = make_tar([
        member("f", data=b"v2"),
        member("a/.wh.gone"),
        member(".wh.tree"),
        member("d", tarfile.DIRTYPE),
        member("d/.wh..wh..opq"),
        member("d/new", data=b"new"),
        member("b", tarfile.DIRTYPE),
        member("b/added", data=b"added"),
    ])
    top = make_tar([member("tree", data=b"now a file"), member(".wh.s"), member("a/.wh.keep"), member("a/fresh", data=b"fresh")])
    store = ImageStore(engine_config)
    parent = None
    for data in (base, middle, top):
        parent = store.add_layer(io.BytesIO(data), None, parent, sha256(data))
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha256(d) for d in (base, middle, top)]}}
    image = store.add_image(json.dumps(config).encode(), [parse_reference("layered:1")])
    assert image.chain_ids[-1] == parent

    middle_diff = store.layer_dirs(image.id)[1]
    whiteout = os.lstat(middle_diff / "a" / "gone")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert os.getxattr(middle_diff / "d", "trusted.overlay.opaque") == b"y"
    assert not os.path.lexists(middle_diff / "a" / ".wh.gone")

    rw = store.create_rw_layer("dockuitestoverlay", image.id)
    merged = rw / "merged"
    lower = store.lowerdir_option(image.id)
    assert lower.count(":") == 2 and all(part.startswith("l/") for part in lower.split(":"))
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={rw}/diff,workdir={rw}/work", str(merged)],
        cwd=engine_config.layers_dir,
        check=True,
    )
    try:
        assert _tree(merged) == {
            "a": "dir",
            "a/fresh": "fresh",
            "b": "dir",
            "b/added": "added",
            "d": "dir",
            "d/new": "new",
            "f": "v2",
            "tree": "now a file",
        }
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    store.remove_rw_layer("dockuitestoverlay")
    assert not rw.exists()


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT])
def test_header_parser_agrees_with_tarfile(fmt: int) -> None:
    from engine.image.extract import parse_header

    members = [
        member("plain", data=b"abc", mode=0o4755, uid=1000, gid=1001, mtime=MTIME),
        member("dir/", tarfile.DIRTYPE, mode=0o1777),
        member("a" * 50 + "/" + "b" * 90, data=b"prefixed name"),
        member("dev", tarfile.CHRTYPE, devmajor=136, devminor=4),
        member("sym", tarfile.SYMTYPE, linkname="target/elsewhere"),
        member("hard", tarfile.LNKTYPE, linkname="plain"),
    ]
    if fmt == tarfile.GNU_FORMAT:
        members.append(member("bigid", data=b"", uid=3_000_000_000))  # base-256 in GNU headers
    blob = make_tar(members, fmt)
    offset, compared = 0, 0
    while offset < len(blob) and blob[offset : offset + 512] != bytes(512):
        block = blob[offset : offset + 512]
        ours, theirs = parse_header(block), tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        fields = ("name", "linkname", "type", "mode", "uid", "gid", "size", "mtime", "devmajor", "devminor")
        assert {f: getattr(ours, f) for f in fields} == {f: getattr(theirs, f) for f in fields}
        compared += 1
        size = theirs.size if theirs.type not in (tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.DIRTYPE, tarfile.CHRTYPE) else 0
        offset += 512 + -(-size // 512) * 512
    assert compared >= len(members)
    bad = bytearray(make_tar(members[:1], fmt)[:512])
    bad[0] ^= 1
    with pytest.raises(IntegrityError, match="checksum"):
        parse_header(bytes(bad))


def test_modes_do_not_depend_on_the_umask(engine_config: EngineConfig, tmp_path: Path) -> None:
    """The fast path creates files with their final mode: a strict umask must not leak into layers."""
    import sys

    data = make_tar([member("implicit/dir/file", data=b"x", mode=0o644), member("d", tarfile.DIRTYPE, mode=0o755), member("x", data=b"", mode=0o755)])
    path = tmp_path / "layer.tar"
    path.write_bytes(data)
    code = (
        "import os, sys; from pathlib import Path; os.umask(0o077)\n"
        "from engine.config import EngineConfig; from engine.image.store import ImageStore\n"
        "s = ImageStore(EngineConfig(root=Path(sys.argv[1])))\n"
        "print(s.add_layer(open(sys.argv[2], 'rb'), None, None, None))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(engine_config.root), str(path)], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0, result.stderr
    diff = engine_config.layers_dir / ImageStore(engine_config).layer_info(result.stdout.strip()).cache_id / "diff"
    modes = {p: stat.S_IMODE(os.lstat(diff / p).st_mode) for p in ("implicit", "implicit/dir", "implicit/dir/file", "d", "x")}
    assert modes == {"implicit": 0o755, "implicit/dir": 0o755, "implicit/dir/file": 0o644, "d": 0o755, "x": 0o755}
