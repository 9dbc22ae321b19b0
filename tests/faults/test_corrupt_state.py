"""Corrupt configuration and state files: never skipped silently, never a traceback.

A broken config file stops every verb with one line naming the file and the problem; a container
record that cannot be read is a "dead" container that `ps -a` shows with the reason and `rm -f`
removes (with its writable layer); a broken image index names the file and the way back; `rmi`
never names a container that no command shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.scoreboard import one_line_error, score, stderr_escapes
from tests.test_lifecycle_support import REPO, Engine, engine_fixture  # noqa: F401 - `engine` fixture

BAD_CONFIGS = {
    "bad-json": ('{"bridge_name": "x",', "line 1 column 21"),
    "json-list": ("[1, 2]", "must be a JSON object, not a list"),
    "json-string": ('"dockui"', "must be a JSON object, not a string"),
    "wrong-type": ('{"bridge_name": 3}', "'bridge_name' must be a string, not a number"),
    "wrong-list": ('{"insecure_registries": "a:5000"}', "must be a list of strings"),
    "unknown-key": ('{"cgroup_parnt": "x"}', "unknown key 'cgroup_parnt' (did you mean 'cgroup_parent'?)"),
    "bad-cidr": ('{"bridge_ip": "10.0.0.300/8"}', "'bridge_ip' must be an address and prefix"),
    "bad-log-size": ('{"log_max_size": "ten"}', "'log_max_size' must be a size"),
    "not-utf8": (b"\xff\xfe{", "cannot read configuration file"),
}


def _cli(root: Path, config_file: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DOCKUI_CONFIG=str(config_file), PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "tui.launcher", "--root", str(root), *args],
                          capture_output=True, env=env, cwd=REPO, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
@pytest.mark.parametrize("verb", [("ps", "-a"), ("images",)])
def test_invalid_config_file_is_one_line_naming_it(tmp_path: Path, case: str, verb: tuple[str, ...]) -> None:
    text, expected = BAD_CONFIGS[case]
    config_file = tmp_path / "config.json"
    config_file.write_bytes(text if isinstance(text, bytes) else text.encode())
    result = _cli(tmp_path / "root", config_file, *verb)
    err = result.stderr.decode(errors="replace")
    score("config", f"{case}/{verb[0]}",
          result.returncode == 1 and one_line_error(err) and str(config_file) in err and expected in err,
          detail=f"rc={result.returncode} stderr={err!r}", escapes=stderr_escapes(err))
    assert not (tmp_path / "root").exists()  # nothing was done with the defaults instead




@pytest.mark.root  # (the full-screen session refuses a user first)
@pytest.mark.parametrize("case", ["json-list", "unknown-key"])
def test_invalid_config_file_stops_the_tui_in_one_line(tmp_path: Path, case: str) -> None:
    config_file = tmp_path / "config.json"
    config_file.write_text(BAD_CONFIGS[case][0])
    result = _cli(tmp_path / "root", config_file)  # no verb: the full-screen session
    err = result.stderr.decode(errors="replace")
    score("config", f"{case}/tui", result.returncode == 1 and one_line_error(err) and str(config_file) in err,
          detail=f"rc={result.returncode} stderr={err[-300:]!r}", escapes=stderr_escapes(err))


def _corrupt(engine: Engine, name: str, how: str) -> str:
    cid = engine.out("create", "--name", name, "busybox", "true").strip()
    d = engine.config.containers_dir / cid
    v2 = d / "config.v2.json"
    if how == "truncated":
        v2.write_bytes(v2.read_bytes()[:40])
    elif how == "empty":
        v2.write_bytes(b"")
    elif how == "list":
        v2.write_text("[]")
    elif how == "wrong-type":
        data = json.loads(v2.read_text())
        data["State"] = "running"
        v2.write_text(json.dumps(data))
    elif how == "other-id":
        data = json.loads(v2.read_text())
        data["ID"] = "f" * 64
        v2.write_text(json.dumps(data))
    elif how == "bad-status":
        data = json.loads(v2.read_text())
        data["State"]["Status"] = "sleeping"
        v2.write_text(json.dumps(data))
    elif how == "hostconfig":
        (d / "hostconfig.json").write_bytes(b"\x00\x01garbage")
    elif how == "a-directory":
        v2.unlink()
        v2.mkdir()
    return cid


CORRUPTIONS = ("truncated", "empty", "list", "wrong-type", "other-id", "bad-status", "hostconfig", "a-directory")


@pytest.mark.root
def test_corrupt_records_are_dead_and_removable(engine: Engine) -> None:
    healthy = engine.out("create", "--name", "healthy", "busybox", "true").strip()
    ids = {how: _corrupt(engine, f"c-{how}", how) for how in CORRUPTIONS}
    ps = engine.cli("ps", "-a", "--no-trunc")
    listing = ps.stdout.decode()
    for how, cid in ids.items():
        row = next((line for line in listing.splitlines() if line.startswith(cid)), "")
        inspected = engine.cli("inspect", cid)
        state = json.loads(inspected.stdout)[0]["State"] if inspected.returncode == 0 else {}
        score("corrupt", f"record-{how}/ps+inspect",
              "Dead (" in row and state.get("Status") == "dead" and "corrupt record" in state.get("Error", ""),
              detail=f"ps row {row!r}, inspect rc={inspected.returncode} {inspected.stderr!r}",
              escapes=stderr_escapes(ps.stderr) + stderr_escapes(inspected.stderr))
        start = engine.cli("start", cid)
        score("corrupt", f"record-{how}/start", start.returncode != 0 and one_line_error(start.stderr),
              detail=f"rc={start.returncode} {start.stderr!r}", escapes=stderr_escapes(start.stderr))
        rm = engine.cli("rm", "-f", cid)
        leaks = [str(p) for p in (engine.config.containers_dir / cid,
                                  engine.config.image_dir / "layerdb" / "mounts" / cid) if p.exists()]
        score("corrupt", f"record-{how}/rm-f", rm.returncode == 0, detail=f"{rm.stderr!r}", leaks=leaks,
              escapes=stderr_escapes(rm.stderr))
    assert engine.out("ps", "-aq", "--no-trunc").split() == [healthy]
    engine.cli("rm", healthy, check=True)


@pytest.mark.root
def test_rmi_never_blames_a_container_nothing_shows(engine: Engine) -> None:
    """A writable layer whose container has no record (a killed run/rm) is collected, not blamed."""
    cid = engine.out("create", "busybox", "true").strip()
    import shutil

    shutil.rmtree(engine.config.containers_dir / cid)  # as a kill between the record and the layer
    assert engine.out("ps", "-aq") == ""
    rmi = engine.cli("rmi", "busybox")
    mounts = engine.config.image_dir / "layerdb" / "mounts" / cid
    score("corrupt", "orphan-rw-layer/rmi", rmi.returncode == 0 and b"Deleted:" in rmi.stdout,
          detail=f"rc={rmi.returncode} {rmi.stdout!r} {rmi.stderr!r}",
          leaks=[str(mounts)] if mounts.exists() else [], escapes=stderr_escapes(rmi.stderr))


@pytest.mark.root
@pytest.mark.parametrize("content", ["truncated", "list", "bad-id"])
def test_corrupt_image_index_names_the_file_and_the_way_back(engine: Engine, content: str) -> None:
    index = engine.config.image_dir / "repositories.json"
    good = index.read_bytes()
    index.write_bytes({"truncated": good[:30], "list": b"[]",
                       "bad-id": b'{"Repositories": {"busybox": {"busybox:latest": "nope"}}}'}[content])
    results = [engine.cli(*verb) for verb in (("images",), ("run", "--rm", "busybox", "true"), ("rmi", "busybox"))]
    for verb, result in zip(("images", "run", "rmi"), results, strict=True):
        err = result.stderr.decode(errors="replace")
        score("corrupt", f"image-index-{content}/{verb}",
              result.returncode != 0 and str(index) in err and f"mv {index} {index}.bad" in err,
              detail=f"rc={result.returncode} {err!r}", escapes=stderr_escapes(err))
    assert index.read_bytes() != good  # never overwritten behind the user's back
    os.rename(index, f"{index}.bad")  # the way back the message gives
    listing = engine.out("images", "-a")
    short = listing.splitlines()[1].split()[2]
    engine.cli("tag", short, "busybox:latest", check=True)
    assert "busybox" in engine.out("images")
