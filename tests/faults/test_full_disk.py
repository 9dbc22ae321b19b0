"""A full filesystem under the state root (a 40 MiB tmpfs): exits are still recorded; ps, logs,
inspect, rm -f and rmi keep working and free space; a pull fails with one line and leaves the store
as it was; no traceback anywhere."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.scoreboard import one_line_error, score, stderr_escapes
from tests.fixtures.imagebuild import build_image, client_for_test, file, tar_from_entries, upload_image
from tests.test_lifecycle_support import Engine, engine_fixture, remove_root_bridges, wait_until  # noqa: F401 - `engine` fixture

pytestmark = pytest.mark.root


@pytest.fixture
def small_engine(engine_config, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The `engine` fixture, its root on a tmpfs of its own (mounted before busybox is imported)."""
    root = engine_config.root
    root.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m,mode=0710", "dockui-full", str(root)], check=True)
    bridges: list[str] = []
    try:
        engine = request.getfixturevalue("engine")
        yield engine
        # pytest ends this fixture before the engine it asked for (the last one set up goes first),
        # so the engine's teardown finds the root unmounted and empty: this root's bridge goes here,
        # while the network records naming it are still there.
        bridges = remove_root_bridges(engine.config)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)
    assert bridges == [], f"bridges left behind: {bridges}"


def _fill(root: Path) -> Path:
    filler = root / "filler"
    chunk = b"\0" * (1 << 16)
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError:
            pass
    with open(root / "filler-small", "wb", buffering=0) as f:  # the last bytes, down to a block
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass
    return filler


def _store_files(engine: Engine) -> dict[str, list[str]]:
    config = engine.config
    places = {"staging": config.layers_dir / ".staging", "layerdb-tmp": config.image_dir / "layerdb" / "tmp",
              "tmp": config.tmp_dir, "layers": config.image_dir / "layerdb" / "sha256"}
    return {k: sorted(os.listdir(p)) if p.is_dir() else [] for k, p in places.items()}


def test_full_state_root(small_engine: Engine, registry, tmp_path: Path) -> None:
    engine = small_engine
    image = build_image([tar_from_entries([file("blob.bin", os.urandom(3 << 20))])], compression="gzip")
    upload_image(client_for_test(registry.host, tmp_path / "c"), "faults/big", image)
    chatty = engine.out("run", "-d", "busybox", "sh", "-c",
                        "while true; do echo chatter-chatter-chatter; sleep 0.01; done").strip()
    quitter = engine.out("run", "-d", "busybox", "sh", "-c", "sleep 2; exit 3").strip()
    engine.cli("tag", "busybox", "spare:1", check=True)
    before = _store_files(engine)
    assert chatty in "".join(p.read_text() for p in engine.config.network_dir.rglob("*.json"))  # it has an address
    filler = _fill(engine.config.root)
    assert os.statvfs(engine.config.root).f_bavail == 0

    # the exit of a container that ends on its own, and of one stopped, are recorded
    wait_until(lambda: engine.inspect(quitter)["State"]["Status"] == "exited", timeout=15)
    state = engine.inspect(quitter)["State"]
    score("disk", "exit-recorded", state["ExitCode"] == 3 and state["Error"] == "", detail=str(state))
    stop = engine.cli("stop", "-t", "1", chatty)
    state = engine.inspect(chatty)["State"]
    score("disk", "stop-recorded", stop.returncode == 0 and state["Status"] == "exited" and state["ExitCode"] in (137, 143)
          and state["Error"] == "", detail=f"{stop.stderr!r} {state}", escapes=stderr_escapes(stop.stderr))

    # the first thing a user tries: an untag (the image index rewritten on a full disk)
    untag = engine.cli("rmi", "spare:1")
    score("disk", "rmi-untag", untag.returncode == 0 and b"Untagged: spare:1" in untag.stdout
          and "spare" not in engine.out("images"), detail=repr(untag.stderr), escapes=stderr_escapes(untag.stderr))

    # reading verbs
    for verb in (["ps", "-a"], ["logs", "--tail", "1", chatty], ["inspect", quitter], ["images"]):
        result = engine.cli(*verb)
        score("disk", verb[0], result.returncode == 0 and result.stdout, detail=repr(result.stderr),
              escapes=stderr_escapes(result.stderr))

    # a pull: one line, nothing left behind
    pull = engine.cli("pull", f"{registry.host}/faults/big")
    err = pull.stderr.decode()
    after = _store_files(engine)
    score("disk", "pull", pull.returncode == 1 and one_line_error(err) and "no space left on device while writing layer" in err,
          detail=err, leaks=[f"{k}: {after[k]}" for k in after if after[k] != before[k]], escapes=stderr_escapes(err))

    # removal frees space
    rm = engine.cli("rm", "-f", chatty, quitter)
    gone = not (engine.config.containers_dir / chatty).exists() and not (engine.config.containers_dir / quitter).exists()
    network_state = "".join(p.read_text() for p in engine.config.network_dir.rglob("*.json"))
    held = [f"network record or address of {c[:12]}" for c in (chatty, quitter) if c in network_state]
    score("disk", "rm-f", rm.returncode == 0 and gone, detail=repr(rm.stderr), leaks=held,
          escapes=stderr_escapes(rm.stderr))
    rmi = engine.cli("rmi", "busybox")
    score("disk", "rmi", rmi.returncode == 0 and b"Deleted:" in rmi.stdout, detail=repr(rmi.stderr),
          escapes=stderr_escapes(rmi.stderr))
    assert os.statvfs(engine.config.root).f_bavail > 0

    # with room again, the same pull works from the clean store
    filler.unlink()
    (engine.config.root / "filler-small").unlink()
    engine.cli("pull", f"{registry.host}/faults/big", check=True)
    assert json.loads(engine.out("image", "inspect", f"{registry.host}/faults/big"))[0]["Id"] == image.image_id


def test_the_container_index_never_stops_a_record_write_on_a_full_disk(small_engine: Engine) -> None:
    """Every record write appends to <root>/containers/index; once that needs a block the full disk
    does not have, the write goes on without the index (readers rebuild it from the records)."""
    engine = small_engine
    cid = engine.out("create", "--name", "idx-a", "--network", "none", "busybox", "true").strip()
    filler = _fill(engine.config.root)
    renames = [engine.cli("rename", f"idx-{'ab'[i % 2]}", f"idx-{'ba'[i % 2]}") for i in range(40)]
    failed = [r.stderr for r in renames if r.returncode != 0]
    listed = engine.cli("ps", "-a", "--format", "{{.Names}}")
    score("disk", "index-append-full", not failed and listed.stdout == b"idx-a\n",
          detail=f"{failed[:1]} {listed.stdout!r} {listed.stderr!r}",
          escapes=[e for r in renames for e in stderr_escapes(r.stderr)])
    filler.unlink()
    engine.out("rm", cid)
