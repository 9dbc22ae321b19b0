"""The image store: reference counting on rmi, crash safety (SIGKILL), concurrent writers, lookups."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.container.usage import container_uses
from engine.errors import Conflict, IntegrityError, InvalidArgument, NotFound
from engine.image.reference import parse_reference
from engine.image.store import ImageStore

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parent.parent


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_600_000_000
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def many_files_layer(count: int, big: int = 0) -> bytes:
    files = {f"many/{i // 100:03d}/file{i:05d}": f"content {i}\n".encode() * 3 for i in range(count)}
    if big:
        files["big.bin"] = os.urandom(big)
    return layer(files)


def image_config(diff_ids: list[str], marker: str) -> bytes:
    return json.dumps(
        {"architecture": "amd64", "os": "linux", "config": {"Labels": {"m": marker}}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    ).encode()


def add_image(store: ImageStore, layers: list[bytes], tag: str, marker: str):
    parent = None
    for data in layers:
        parent = store.add_layer(io.BytesIO(data), "application/vnd.oci.image.layer.v1.tar", parent, sha256(data))
    return store.add_image(image_config([sha256(d) for d in layers], marker), [parse_reference(tag)])


def assert_no_leftovers(config: EngineConfig) -> None:
    """What a fresh open must leave: no staging, no temp metadata, no unreferenced cache dirs."""
    store = ImageStore(config)

    def entries(path: Path) -> list[Path]:
        return list(path.iterdir()) if path.exists() else []  # a process killed early made none

    layerdb = config.image_dir / "layerdb"
    assert not (config.layers_dir / ".staging").exists()
    assert entries(layerdb / "tmp") == []
    referenced = {store.layer_info("sha256:" + p.name).cache_id for p in entries(layerdb / "sha256")}
    for mount in entries(layerdb / "mounts"):
        referenced.add((mount / "mount-id").read_text())
    on_disk = {p.name for p in entries(config.layers_dir)} - {"l", ".staging"}
    assert on_disk == referenced
    links = {(config.layers_dir / c / "link").read_text() for c in referenced}
    assert {p.name for p in entries(config.layers_dir / "l")} == links


# --- rmi and reference counting -----------------------------------------------------------------


def test_shared_layers_are_stored_once_and_removed_with_their_last_user(engine_config: EngineConfig) -> None:
    store = ImageStore(engine_config, containers=container_uses)
    base = layer({"etc/os-release": b"base\n"})
    app1 = layer({"app/one": b"1"})
    app2 = layer({"app/two": b"2"})
    one = add_image(store, [base, app1], "one:latest", "one")
    two = add_image(store, [base, app2], "registry.local:5000/team/two:v2", "two")
    assert one.chain_ids[0] == two.chain_ids[0] == sha256(base)
    assert len(list((engine_config.image_dir / "layerdb" / "sha256").iterdir())) == 3

    lines = store.remove("one")
    assert lines == ["Untagged: one:latest", f"Deleted: {one.id}", f"Deleted: {one.chain_ids[1]}"]
    assert store.has_layer(sha256(base)) and not store.has_layer(one.chain_ids[1])
    assert [r.id for r in store.list_images()] == [two.id]
    assert b"".join(store.layer_tar(sha256(base))) == base  # the survivor is intact

    lines = store.remove("registry.local:5000/team/two:v2")
    assert lines[-2:] == [f"Deleted: {two.chain_ids[1]}", f"Deleted: {two.chain_ids[0]}"]
    assert store.list_images() == []
    assert list((engine_config.image_dir / "layerdb" / "sha256").iterdir()) == []
    assert_no_leftovers(engine_config)


def test_tags_digests_and_lookups(engine_config: EngineConfig) -> None:
    store = ImageStore(engine_config, containers=container_uses)
    data = layer({"x": b"x"})
    record = add_image(store, [data], "busybox", "x")
    digest = "sha256:" + "ab" * 32
    store.add_image(image_config([sha256(data)], "x"), [], parse_reference(f"busybox@{digest}"))
    store.tag("busybox", "busybox:other")
    repos = json.loads((engine_config.image_dir / "repositories.json").read_text())["Repositories"]
    assert repos == {"busybox": {"busybox:latest": record.id, "busybox:other": record.id, f"busybox@{digest}": record.id}}
    for ref in ("busybox", "docker.io/library/busybox:latest", f"busybox@{digest}", record.id, record.id[7:19], record.id[7:]):
        assert store.resolve(ref).id == record.id
    with pytest.raises(NotFound):
        store.resolve("busybox:nope")
    with pytest.raises(IntegrityError, match="not in the store"):
        store.add_image(image_config(["sha256:" + "1" * 64], "missing"), [])

    # untagging one of two tags keeps the image; the last tag takes the repository's digests with it
    assert store.remove("busybox:other") == ["Untagged: busybox:other"]
    lines = store.remove("busybox")
    assert lines[:3] == ["Untagged: busybox:latest", f"Untagged: busybox@{digest}", f"Deleted: {record.id}"]


def test_rmi_refuses_while_a_container_layer_uses_the_image(engine_config: EngineConfig) -> None:
    store = ImageStore(engine_config, containers=container_uses)
    base = layer({"bin/sh": b"sh"})
    image = add_image(store, [base], "app:1", "app")
    # a container record beside the layer (rmi collects rw layers that have none: a killed run's)
    (engine_config.containers_dir / "dockuitestc1").mkdir(parents=True)
    (engine_config.containers_dir / "dockuitestc1" / "config.v2.json").write_text("{}")
    rw = store.create_rw_layer("dockuitestc1", image.id)
    assert (rw / "lower").read_text() == store.lowerdir_option(image.id)
    assert {p.name for p in rw.iterdir()} >= {"diff", "work", "merged", "link", "lower"}
    mount = engine_config.image_dir / "layerdb" / "mounts" / "dockuitestc1"
    assert (mount / "mount-id").read_text() == rw.name and (mount / "parent").read_text() == image.chain_ids[-1]

    with pytest.raises(Conflict, match="must force"):
        store.remove("app:1")
    with pytest.raises(Conflict, match="must be forced"):
        store.remove(image.id)
    assert store.resolve("app:1").id == image.id

    # forced: the image goes, its layer stays for the container until that is removed
    assert store.remove("app:1", force=True) == ["Untagged: app:1", f"Deleted: {image.id}"]
    assert store.has_layer(image.chain_ids[0])
    store.remove_rw_layer("dockuitestc1")
    assert not store.has_layer(image.chain_ids[0]) and not rw.exists()
    assert_no_leftovers(engine_config)


def test_removing_a_rw_layer_keeps_a_stored_images_layers_and_releases_a_removed_ones(engine_config: EngineConfig) -> None:
    """remove_rw_layer(cid, image_id): the image still stored keeps its layers without a scan; once
    the image was force-removed, its layers go with the last layer on top of them."""
    store = ImageStore(engine_config, containers=container_uses)
    image = add_image(store, [layer({"bin/sh": b"sh"}), layer({"etc/a": b"a"})], "app:2", "app2")
    for cid in ("dockuitestk1", "dockuitestk2"):
        (engine_config.containers_dir / cid).mkdir(parents=True)  # a record: not an orphan layer
        (engine_config.containers_dir / cid / "config.v2.json").write_text("{}")
        store.create_rw_layer(cid, image.id, durable=cid.endswith("1"))
    store.remove_rw_layer("dockuitestk1", image.id)
    assert all(store.has_layer(c) for c in image.chain_ids)
    assert store.remove("app:2", force=True) == ["Untagged: app:2", f"Deleted: {image.id}"]
    assert all(store.has_layer(c) for c in image.chain_ids)  # the other container's layer sits on them
    store.remove_rw_layer("dockuitestk2", image.id)
    assert not any(store.has_layer(c) for c in image.chain_ids)
    assert_no_leftovers(engine_config)


def test_rmi_follows_dockers_rules_for_running_and_stopped_containers(engine_config: EngineConfig) -> None:
    """Container records as engine.container.state writes them; the "running" one is this very process."""
    from engine.container import state

    store = ImageStore(engine_config, containers=container_uses)
    image = add_image(store, [layer({"bin/true": b"t"})], "svc:1", "svc")
    running_id, stopped_id = "a" * 64, "b" * 64
    for cid, status in ((running_id, "running"), (stopped_id, "exited")):
        store.create_rw_layer(cid, image.id)
        record = state.ContainerRecord(id=cid, name=f"dockuitest-{status}", image="svc:1", image_id=image.id, created=state.now_rfc3339(), status=status)
        if status == "running":
            record.pid, record.pid_start = os.getpid(), state.process_start_ticks(os.getpid())
        (engine_config.containers_dir / cid).mkdir(parents=True, mode=0o700)  # as state.create_record does
        state.save(engine_config, record, durable=True)  # as at create

    with pytest.raises(Conflict, match="cannot be forced.*running container aaaaaaaaaaaa"):
        store.remove(image.id, force=True)
    with pytest.raises(Conflict, match="must force"):
        store.remove("svc:1")
    # forced by tag while a container runs: untagged, but the image stays for it (dangling)
    assert store.remove("svc:1", force=True) == ["Untagged: svc:1"]
    assert store.resolve(image.id).repo_tags == []

    # once that container is gone, only the stopped one is left: it needs force, then the image goes
    store.remove_rw_layer(running_id)
    state.delete_record(engine_config, running_id)
    with pytest.raises(Conflict, match="must be forced.*stopped container bbbbbbbbbbbb"):
        store.remove(image.id)
    assert store.remove(image.id, force=True) == [f"Deleted: {image.id}"]
    assert store.has_layer(image.chain_ids[0])  # still under the stopped container's rw layer
    store.remove_rw_layer(stopped_id)
    state.delete_record(engine_config, stopped_id)
    assert not store.has_layer(image.chain_ids[0])
    assert_no_leftovers(engine_config)


def test_release_unused_layers_keeps_what_is_used(engine_config: EngineConfig) -> None:
    """What a failed pull calls to take back its layers: only unused ones, never a parent of another."""
    store = ImageStore(engine_config)
    base, mid, top = layer({"a": b"1"}), layer({"b": b"2"}), layer({"c": b"3"})
    kept = add_image(store, [base], "base:1", "base")
    chain = [kept.chain_ids[0]]
    for data in (mid, top):
        chain.append(store.add_layer(io.BytesIO(data), None, chain[-1], sha256(data)))
    other = store.add_layer(io.BytesIO(layer({"d": b"4"})), None, chain[1], None)  # another pull's child of mid
    assert store.release_unused_layers(chain) == [chain[2]]  # top goes; mid has a child; base is used
    assert store.has_layer(chain[1]) and store.has_layer(chain[0]) and store.has_layer(other)
    assert store.release_unused_layers([chain[1], other]) == [other, chain[1]]
    assert store.has_layer(chain[0])
    assert_no_leftovers(engine_config)


# --- crash safety and concurrency ------------------------------------------------------------------

CHILD = """
import sys, time
from pathlib import Path
from engine.config import EngineConfig
from engine.image.store import ImageStore
root, source, diff_id, go = sys.argv[1:5]
store = ImageStore(EngineConfig(root=Path(root)))
if go != "-":
    print("ready", flush=True)
while go != "-" and not Path(go).exists():
    time.sleep(0.001)
with (sys.stdin.buffer if source == "-" else open(source, "rb")) as blob:
    print(store.add_layer(blob, None, None, diff_id if diff_id != "-" else None), flush=True)
"""


def _child(config: EngineConfig, source: str, diff_id: str, go: str = "-", **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(config.root), source, diff_id, go], cwd=REPO, stdout=subprocess.PIPE, **kw
    )


def test_sigkill_during_extraction_leaves_nothing_and_the_next_add_succeeds(engine_config: EngineConfig) -> None:
    data = many_files_layer(1500, big=2_000_000)
    proc = _child(engine_config, "-", sha256(data), stdin=subprocess.PIPE)
    proc.stdin.write(data[: len(data) // 2])
    proc.stdin.flush()
    staging = engine_config.layers_dir / ".staging"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # wait until it is really extracting
        dirs = [p for p in staging.glob("*") if p.is_dir()] if staging.exists() else []
        if dirs and (dirs[0] / "diff" / "many").exists():
            break
        time.sleep(0.01)
    else:
        pytest.fail("the child never started extracting")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdin.close()
    proc.stdout.close()
    assert any(staging.iterdir())  # it did leave a half layer behind...
    store = ImageStore(engine_config)  # ...which is invisible and cleaned on the next open
    assert not store.has_layer(sha256(data))
    assert_no_leftovers(engine_config)
    chain = store.add_layer(io.BytesIO(data), None, None, sha256(data))
    assert hashlib.sha256(b"".join(store.layer_tar(chain))).hexdigest() == sha256(data)[7:]


def test_sigkill_at_any_moment_keeps_the_store_consistent(engine_config: EngineConfig, tmp_path: Path) -> None:
    """Kill a whole add_layer at a sweep of moments (extraction, commit, after): each time the
    layer is either absent or complete, and a fresh open leaves no debris."""
    data = many_files_layer(800)
    path = tmp_path / "layer.tar"
    path.write_bytes(data)
    timings = []
    for attempt in range(2):  # interpreter start + extraction + commit, on this machine now
        start = time.monotonic()
        proc = _child(EngineConfig(root=tmp_path / f"timing{attempt}"), str(path), sha256(data))
        proc.communicate()
        timings.append(time.monotonic() - start)
    full = min(timings)
    outcomes = []
    for fraction in (0.4, 0.6, 0.75, 0.85, 0.92, 1.0, 1.1):
        proc = _child(engine_config, str(path), sha256(data))
        time.sleep(full * fraction)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        store = ImageStore(engine_config)
        if store.has_layer(sha256(data)):
            outcomes.append("complete")
            assert b"".join(store.layer_tar(sha256(data))) == data
            with store._locked():  # removed again for the next round
                store._delete_layer(sha256(data))
        else:
            outcomes.append("absent")
        assert_no_leftovers(engine_config)
    assert outcomes[0] == "absent"  # at 40% it was still starting or extracting


def test_two_processes_adding_the_same_layer_end_with_one_copy(engine_config: EngineConfig, tmp_path: Path) -> None:
    data = many_files_layer(1200)
    path = tmp_path / "layer.tar"
    path.write_bytes(data)
    go = tmp_path / "go"
    procs = [_child(engine_config, str(path), sha256(data), str(go)) for _ in range(2)]
    assert [p.stdout.readline() for p in procs] == [b"ready\n", b"ready\n"]  # both up and waiting
    go.touch()
    results = [p.communicate(timeout=60)[0].decode().strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert results == [sha256(data), sha256(data)]
    assert [p.name for p in (engine_config.image_dir / "layerdb" / "sha256").iterdir()] == [sha256(data)[7:]]
    assert len({p.name for p in engine_config.layers_dir.iterdir()} - {"l", ".staging"}) == 1
    assert_no_leftovers(engine_config)
    assert b"".join(ImageStore(engine_config).layer_tar(sha256(data))) == data


# --- staging and committing separately (what pull does) ------------------------------------------


def test_layers_staged_in_parallel_then_committed_in_order(engine_config: EngineConfig) -> None:
    """Pull extracts layers at once as their downloads finish (no parent needed), then commits
    them bottom to top; nothing is visible before its commit."""
    datas = [many_files_layer(600), layer({"many/000/file00001": b"replaced"}), layer({"top": b"t"})]
    store = ImageStore(engine_config)
    with ThreadPoolExecutor(3) as pool:
        staged = list(pool.map(lambda d: store.stage_layer(io.BytesIO(d), None), datas))
    assert [s.diff_id for s in staged] == [sha256(d) for d in datas]
    assert not any(store.has_layer(sha256(d)) for d in datas)
    assert len([p for p in (engine_config.layers_dir / ".staging").iterdir() if p.is_dir()]) == 3
    parent = None
    for staged_layer, data in zip(staged, datas, strict=True):
        parent = store.commit_layer(staged_layer, parent, sha256(data))
        assert store.has_layer(parent)
        assert b"".join(store.layer_tar(parent)) == data
    image = store.add_image(image_config([sha256(d) for d in datas], "staged"), [parse_reference("staged:1")])
    assert image.chain_ids[-1] == parent
    top = engine_config.layers_dir / store.layer_info(parent).cache_id
    assert (top / "lower").read_text().count("l/") == 2
    assert (engine_config.layers_dir / store.layer_info(image.chain_ids[1]).cache_id / "diff" / "many" / "000"
            / "file00001").read_bytes() == b"replaced"
    assert_no_leftovers(engine_config)


def test_commit_refuses_a_wrong_diff_id_or_parent_and_consumes_the_staged_layer(engine_config: EngineConfig) -> None:
    store = ImageStore(engine_config)
    data = layer({"a": b"1"})
    staged = store.stage_layer(io.BytesIO(data), None)
    assert (staged.layer_dir / "diff" / "a").read_bytes() == b"1"
    with pytest.raises(IntegrityError, match="does not match its diff_id"):
        store.commit_layer(staged, None, "sha256:" + "0" * 64)
    assert not staged.layer_dir.exists() and not staged.info_dir.exists()
    with pytest.raises(InvalidArgument, match="already committed or discarded"):
        store.commit_layer(staged, None, None)
    with pytest.raises(NotFound, match="parent layer"):
        store.commit_layer(store.stage_layer(io.BytesIO(data), None), "sha256:" + "1" * 64, None)
    discarded = store.stage_layer(io.BytesIO(data), None)
    discarded.discard()
    discarded.discard()  # idempotent
    assert not store.has_layer(sha256(data))
    assert_no_leftovers(engine_config)
    with store.stage_layer(io.BytesIO(data), None) as again:  # a context manager, as pull's rollback uses
        assert store.commit_layer(again, None, sha256(data)) == sha256(data)
    assert_no_leftovers(engine_config)


STAGE_CHILD = """
import sys, time
from pathlib import Path
from engine.config import EngineConfig
from engine.image.store import ImageStore
store = ImageStore(EngineConfig(root=Path(sys.argv[1])))
with open(sys.argv[2], "rb") as blob:
    staged = store.stage_layer(blob, None)
print(staged.diff_id, flush=True)
time.sleep(120)
"""


def test_a_staged_but_uncommitted_layer_is_cleaned_after_sigkill(engine_config: EngineConfig, tmp_path: Path) -> None:
    data = many_files_layer(300)
    path = tmp_path / "layer.tar"
    path.write_bytes(data)
    proc = subprocess.Popen([sys.executable, "-c", STAGE_CHILD, str(engine_config.root), str(path)], cwd=REPO,
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().decode().strip() == sha256(data)
        staging = engine_config.layers_dir / ".staging"
        staged_dirs = [p for p in staging.iterdir() if p.is_dir()]
        assert len(staged_dirs) == 1 and (staged_dirs[0] / "diff" / "many" / "000").is_dir()
        ImageStore(engine_config)  # an open while its owner lives leaves the staged layer alone
        assert (staged_dirs[0] / "diff" / "many" / "000").is_dir()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    store = ImageStore(engine_config)
    assert not store.has_layer(sha256(data))
    assert_no_leftovers(engine_config)


def test_extraction_read_ahead_thread_ends_with_the_extraction(engine_config: EngineConfig) -> None:
    """Decompression runs ahead in a helper thread: it must stop when the extraction fails early
    (here on the first entry of a 24 MB layer) and be gone when one succeeds."""
    import gzip
    import threading

    def helpers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "extract-read-ahead"]

    store = ImageStore(engine_config)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("../evil", b"x"), ("big.bin", os.urandom(24 << 20))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    blob = io.BytesIO(gzip.compress(out.getvalue(), 1))
    with pytest.raises(IntegrityError, match="climbs out"):
        store.add_layer(blob, None, None, None)
    deadline = time.monotonic() + 10
    while helpers() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert helpers() == []
    assert blob.tell() < len(blob.getvalue())  # it stopped instead of decompressing everything
    assert_no_leftovers(engine_config)
    data = many_files_layer(50)
    store.add_layer(io.BytesIO(gzip.compress(data)), None, None, sha256(data))
    assert helpers() == []
