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
from tests.test_lifecycle_support import engine_fixture  # noqa: F401 - the `engine` fixture


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

    listings = []
    store = ImageStore(engine_config, containers=lambda config: (listings.append(1), container_uses(config))[1])
    image_id = busybox_imported.id
    reads = _config_reads(monkeypatch, store.imagedb / "content" / "sha256" / hex_of(image_id))
    ref = image_id if how == "by-id" else "busybox:latest"
    lines = store.remove(ref, force=how.startswith("forced"))
    assert lines[0] == "Untagged: busybox:latest" and f"Deleted: {image_id}" in lines
    assert len(reads) == 1, reads
    assert len(listings) == 1  # every container record read once (orphan rw layers and users from one reading)
    assert store.list_images() == [] and not store.has_layer(busybox_imported.chain_ids[0])


def test_rmi_collects_an_orphan_rw_layer_from_the_same_reading(engine_config: EngineConfig, busybox_imported) -> None:  # noqa: ANN001
    """A rw layer no record owns (a `run` killed between its layer and its record) does not keep
    the image's layers: it goes first, then the image and its layers."""
    from engine.container.usage import container_uses
    from engine.image.store import ImageStore

    store = ImageStore(engine_config, containers=container_uses)
    store.create_rw_layer("f" * 64, busybox_imported.id)
    lines = store.remove("busybox:latest")
    assert lines == ["Untagged: busybox:latest", f"Deleted: {busybox_imported.id}",
                     *(f"Deleted: {c}" for c in reversed(busybox_imported.chain_ids))]
    assert not (store.layerdb / "mounts" / ("f" * 64)).exists()


# ------------------------------------------------------------------------------------- the mount table

# Run in a mount namespace of its own (`unshare -m`, private): no other test's mount changes the
# table it reads, so its count of reads is exact. Prints the opens and parses of mountinfo.
MOUNT_PROBES = """
import builtins, json, os, subprocess, sys, tempfile
from engine.util import mountinfo
opens, parses = [], []
real_open, real_os_open, real_parse = builtins.open, os.open, mountinfo._parse
def counted(path):
    if str(path) == "/proc/self/mountinfo":
        opens.append(os.getpid())
builtins.open = lambda path, *a, **k: (counted(path), real_open(path, *a, **k))[1]
os.open = lambda path, *a, **k: (counted(path), real_os_open(path, *a, **k))[1]
mountinfo._parse = lambda fd: (parses.append(os.getpid()), real_parse(fd))[1]
"""


def _in_own_mount_namespace(code: str, env: dict[str, str] | None = None) -> dict:
    import json
    import subprocess
    import sys

    result = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-c", MOUNT_PROBES + code],
                            capture_output=True, text=True, timeout=60, env=env, cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.root
def test_the_mount_table_is_read_once_per_session_and_again_only_after_a_change(tmp_path: Path) -> None:
    code = f"""
from pathlib import Path
from engine.container import cleanup, volumes
d = {str(tmp_path)!r}
seen = {{}}
fds = lambda: len(os.listdir("/proc/self/fd"))
before = fds()
volumes.is_mounted(d); volumes.is_mounted(d)
seen["outside_a_session"] = (len(opens), len(parses), fds() - before)  # each lookup reads; nothing kept
with mountinfo.session():
    del opens[:], parses[:]
    seen["asked"] = [volumes.is_mounted(d), bool(volumes.mounts_under("/proc")), cleanup._is_mountpoint(Path("/proc")),
                     "/" in cleanup.mountpoints()]
    with mountinfo.session():  # nested: the same table
        volumes.is_mounted(d)
    seen["reads_then"] = (len(opens), len(parses))
    subprocess.run(["mount", "-t", "tmpfs", "probe", d], check=True)
    seen["after_mount"] = [volumes.is_mounted(d), volumes.mounts_under(d)]
    seen["reads_after_mount"] = len(parses)
    volumes.is_mounted(d)
    seen["reads_unchanged"] = len(parses)
    pid = os.fork()
    if pid == 0:  # the child reads for itself and consumes its own change events, never its parent's
        volumes.is_mounted(d)
        subprocess.run(["umount", d], check=True)
        volumes.is_mounted(d)
        os._exit(0 if [p for p in opens if p == os.getpid()] == [os.getpid()] else 3)  # it opened its own, once
    _, status = os.waitpid(pid, 0)
    seen["child_status"] = os.waitstatus_to_exitcode(status)
    seen["parent_sees_the_child_s_unmount"] = not volumes.is_mounted(d)
    seen["parent_opens"] = len(opens)
seen["kept_after_the_session"] = fds() - before
print(json.dumps(seen))
"""
    seen = _in_own_mount_namespace(code)
    assert seen["outside_a_session"] == [2, 2, 0]
    assert seen["asked"] == [False, True, True, True]
    assert seen["reads_then"] == [1, 1]  # five questions, one read
    assert seen["after_mount"] == [True, [str(tmp_path)]] and seen["reads_after_mount"] == 2
    assert seen["reads_unchanged"] == 2
    assert seen["child_status"] == 0, "the child used its parent's file (and its change events)"
    assert seen["parent_sees_the_child_s_unmount"] and seen["parent_opens"] == 1
    assert seen["kept_after_the_session"] == 0  # a long-lived process holds no descriptor between sessions


@pytest.mark.root
def test_rm_v_reads_the_mount_table_once(engine) -> None:  # noqa: ANN001
    """`rm -v` asks three times: the reconcile's stale mounts (every verb's, on its own), then the
    removal's rootfs and anything mounted in its anonymous volume before it is deleted: those two
    from one read, the table unchanged in between (before: three reads, by two parsers)."""
    name = "mount-reads"
    engine.out("create", "--name", name, "--network", "none", "-v", "/data", "busybox", "true")
    code = f"""
from tui import launcher
status = launcher.main(["--root", {str(engine.config.root)!r}, "rm", "-v", {name!r}])
print(json.dumps({{"status": status, "opens": len(opens), "parses": len(parses)}}))
"""
    seen = _in_own_mount_namespace(code, env=engine.env)
    assert seen == {"status": 0, "opens": 2, "parses": 2}, seen
    assert engine.out("volume", "ls", "-q") == ""
