"""Registry faults through tests/faults/registry_proxy.py in front of the real test registry:
transient failures are retried, bad data is refused, a stall is noticed, aborted and resumed (or
given up on, in bounded time), the token never follows a redirect to another host; and the layers
a SIGKILLed pull committed are reused by the next pull and reclaimed by `image prune`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.registry_proxy import TOKEN, FaultProxy
from tests.faults.scoreboard import one_line_error, score, stderr_escapes
from tests.fixtures.imagebuild import (
    BuiltImage,
    build_image,
    client_for_test,
    file,
    tar_from_entries,
    upload_image,
)
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - `engine` fixture

pytestmark = pytest.mark.root


@pytest.fixture
def proxy(registry) -> Iterator[FaultProxy]:
    running = FaultProxy(registry.host).start()
    try:
        yield running
    finally:
        running.stop()


def _push(registry, tmp_path: Path, name: str, *sizes: int) -> BuiltImage:
    layers = [tar_from_entries([file(f"l{i}.bin", os.urandom(size))]) for i, size in enumerate(sizes)]
    image = build_image(layers, compression="none")  # blob == diff_id: each blob names its layer
    upload_image(client_for_test(registry.host, tmp_path / name), f"faults/{name}", image)
    return image


def _set_stall(engine: Engine, seconds: float) -> None:
    path = Path(engine.env["DOCKUI_CONFIG"])
    path.write_text(json.dumps({**json.loads(path.read_text()), "registry_stall_timeout": seconds}))


def _leftovers(engine: Engine) -> list[str]:
    config = engine.config
    found = []
    for place in (config.layers_dir / ".staging", config.image_dir / "layerdb" / "tmp", config.tmp_dir,
                  config.image_dir / "pulls"):
        if place.is_dir():
            found += [str(place / name) for name in os.listdir(place)]
    return found


def _layers(engine: Engine) -> set[str]:
    base = engine.config.image_dir / "layerdb" / "sha256"
    return {"sha256:" + p for p in os.listdir(base)} if base.is_dir() else set()


def _pull(engine: Engine, proxy: FaultProxy, name: str) -> tuple[subprocess.CompletedProcess, str]:
    result = engine.cli("pull", f"{proxy.host}/faults/{name}", timeout=120)
    return result, result.stderr.decode(errors="replace")


def test_transient_faults_are_retried_and_bad_data_refused(engine: Engine, registry, proxy: FaultProxy,
                                                           tmp_path: Path) -> None:
    _set_stall(engine, 2)
    cases = {
        "five-hundred": ("/manifests/", ["500"]),
        "too-many": ("/manifests/", ["429"]),
        "truncated": ("/blobs/", ["truncate"]),
        "stalled": ("/blobs/", ["stall:6"]),
        "redirected": ("/blobs/", ["redirect"]),
        "manifest-cut": ("/manifests/", ["truncate"]),
        "manifest-stalled": ("/manifests/", ["stall:6"]),
    }
    for name, (where, faults) in cases.items():
        image = _push(registry, tmp_path, name, 300_000)
        key = where if where != "/blobs/" else image.layers[0][0].diff_id
        proxy.faults = {f"/faults/{name}{where}" if where == "/manifests/" else key: list(faults)}
        started = len(proxy.hits)
        result, err = _pull(engine, proxy, name)
        hits = proxy.hits[started:]
        ok = result.returncode == 0 and all(not f for f in proxy.faults.values())
        stored = json.loads(engine.out("image", "inspect", f"{proxy.host}/faults/{name}"))[0]["Id"] if ok else ""
        detail = f"rc={result.returncode} {err[-400:]!r}"
        escapes = stderr_escapes(err)
        if name == "too-many":
            gaps = [b.at - a.at for a, b in zip(hits, hits[1:], strict=False) if a.fault == "429"]
            ok = ok and gaps and gaps[0] >= 0.9
        if name == "stalled":
            resumed = [h.range for h in hits if image.layers[0][0].diff_id in h.path and h.range]
            out = result.stdout.decode()
            ok = ok and bool(resumed) and "Waiting for the registry (1 s without data)" in out
            ok = ok and "Retrying: the registry sent nothing for 2 s (attempt 2 of 5" in out
            detail += f" ranges={resumed}"
        if name == "redirected":
            elsewhere = [h for h in hits if h.host.startswith("localhost")]
            escapes += [f"token sent to {h.host}" for h in elsewhere if h.auth and TOKEN in h.auth]
            ok = ok and len(elsewhere) == 1
        score("registry", name, ok and stored == image.image_id, detail=detail, escapes=escapes,
              leaks=_leftovers(engine))

    # refused: the data is wrong (every attempt), nothing of it kept
    image = _push(registry, tmp_path, "corrupt", 200_000)
    proxy.faults = {image.layers[0][0].diff_id: ["corrupt"] * 20}
    before = _layers(engine)
    result, err = _pull(engine, proxy, "corrupt")
    score("registry", "wrong-digest", result.returncode == 1 and one_line_error(err) and "digest" in err,
          detail=err, leaks=_leftovers(engine) + sorted(_layers(engine) - before), escapes=stderr_escapes(err))


def test_a_registry_that_stops_answering_is_given_up_on_in_bounded_time(engine: Engine, registry,
                                                                       proxy: FaultProxy, tmp_path: Path) -> None:
    _set_stall(engine, 0.5)
    image = _push(registry, tmp_path, "silent", 200_000)
    proxy.faults = {image.layers[0][0].diff_id: ["stall:60"] * 10}
    before = _layers(engine)
    started = time.monotonic()
    result, err = _pull(engine, proxy, "silent")
    took = time.monotonic() - started
    score("registry", "stall-forever", result.returncode == 1 and "sent nothing for 0.5 s, 5 times" in err
          and err.strip().splitlines()[-1].startswith("Error: ") and took < 15,
          detail=f"{took:.1f}s {err!r}", leaks=_leftovers(engine) + sorted(_layers(engine) - before),
          escapes=stderr_escapes(err))


def test_layers_of_a_killed_pull_are_reused_and_reclaimable(engine: Engine, registry, proxy: FaultProxy,
                                                            tmp_path: Path) -> None:
    image = _push(registry, tmp_path, "killed", 400_000, 300_000)
    first, second = (layer[0] for layer in image.layers)
    from engine.image.digest import chain_ids

    first_chain = chain_ids([first.diff_id])[0]
    for attempt in ("prune", "re-pull"):
        proxy.release.clear()
        proxy.faults = {second.diff_id: ["stall:60"]}
        pull = engine.popen("pull", f"{proxy.host}/faults/killed", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        committed = wait_until(lambda: first_chain in _layers(engine), timeout=30)
        pull.send_signal(signal.SIGKILL)
        pull.wait()
        proxy.release.set()
        assert committed, "the first layer was never committed"
        if attempt == "prune":
            df = engine.cli("system", "df", "--format", "{{json .}}")
            images_row = json.loads(df.stdout.decode().splitlines()[0])
            score("registry", "killed-pull/system-df", df.returncode == 0 and images_row["Size"] != "0B"
                  and images_row["Reclaimable"].startswith(images_row["Size"]), detail=str(images_row),
                  escapes=stderr_escapes(df.stderr))
            prune = engine.cli("image", "prune", "-f")
            out = prune.stdout.decode()
            score("registry", "killed-pull/prune", prune.returncode == 0 and f"deleted: {first_chain}" in out
                  and "Total reclaimed space: 0B" not in out and first_chain not in _layers(engine),
                  detail=f"{out!r} {prune.stderr!r}", leaks=_leftovers(engine), escapes=stderr_escapes(prune.stderr))
        else:
            proxy.faults = {}
            result, err = _pull(engine, proxy, "killed")
            blob_gets = [h for h in proxy.hits if first.diff_id in h.path and h.method == "GET"]
            out = result.stdout.decode()
            score("registry", "killed-pull/re-pull", result.returncode == 0 and f"{first.diff_id[7:19]}: Already exists" in out,
                  detail=f"{out!r} {err!r} gets={len(blob_gets)}", leaks=_leftovers(engine), escapes=stderr_escapes(err))
    prune = engine.cli("image", "prune", "-f")  # nothing reclaimable: the image uses both layers
    assert prune.returncode == 0 and first_chain in _layers(engine)


def _store_consistent(engine: Engine) -> list[str]:
    """Problems of the store after a killed pull and one more command: a layer entry without its
    files or its directory, a cache directory nothing names, staging or temp files left."""
    from engine.image.store import ImageStore

    store = ImageStore(engine.config)  # opening it tidies what a dead writer left
    problems = []
    named = set()
    for info_dir in store._layer_info_dirs():
        try:
            info = store.layer_info("sha256:" + info_dir.name)
        except Exception as exc:  # noqa: BLE001 - the check reports, never raises
            problems.append(f"layer {info_dir.name[:12]}: {exc}")
            continue
        named.add(info.cache_id)
        if not (engine.config.layers_dir / info.cache_id / "diff").is_dir():
            problems.append(f"layer {info_dir.name[:12]} has no diff dir")
    layers_dir = engine.config.layers_dir
    if layers_dir.is_dir():
        problems += [f"unnamed cache dir {p.name[:12]}" for p in layers_dir.iterdir()
                     if len(p.name) == 64 and p.name not in named]
    return problems + [f"left {p}" for p in _leftovers(engine) if "/pulls/" not in p]


def test_sigkill_pull_at_many_points(engine: Engine, registry, tmp_path: Path) -> None:
    """A pull killed at any moment leaves whole layers or none, and the next pull completes."""
    image = _push(registry, tmp_path, "killpoints", 300_000, 200_000, 100_000)
    ref = f"{registry.host}/faults/killpoints"
    began = time.monotonic()
    engine.cli("pull", ref, check=True)
    took = time.monotonic() - began
    for fraction in (0.45, 0.7, 0.9):
        engine.cli("rmi", ref, check=True)
        pull = engine.popen("pull", ref, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(took * fraction)
        pull.send_signal(signal.SIGKILL)
        pull.wait()
        problems = _store_consistent(engine)
        again = engine.cli("pull", ref)
        stored = again.returncode == 0 and json.loads(engine.out("image", "inspect", ref))[0]["Id"] == image.image_id
        score("kill", f"pull@{fraction:.2f}", stored, detail=f"{again.stderr!r}", leaks=problems,
              escapes=stderr_escapes(again.stderr))
