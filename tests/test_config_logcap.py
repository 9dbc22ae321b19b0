"""The default json-file log cap (config `log_max_size`/`log_max_file`, 10m x 3 unless set): written
into each new container's LogConfig as Docker writes its daemon's log-opts, and enforced by the
monitor's rotation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - `engine` fixture

pytestmark = pytest.mark.root


def _log_config(engine: Engine, ref: str) -> dict:
    return engine.inspect(ref)["HostConfig"]["LogConfig"]["Config"]


def test_default_cap_and_explicit_opts(engine: Engine) -> None:
    capped = engine.out("create", "busybox", "true").strip()
    assert _log_config(engine, capped) == {"max-size": "10m", "max-file": "3"}
    more_files = engine.out("create", "--log-opt", "max-file=5", "busybox", "true").strip()
    assert _log_config(engine, more_files) == {"max-file": "5", "max-size": "10m"}
    unbounded = engine.out("create", "--log-opt", "max-size=-1", "busybox", "true").strip()
    assert _log_config(engine, unbounded) == {"max-size": "-1"}
    engine.cli("rm", capped, more_files, unbounded, check=True)


def test_configured_cap_rotates(engine: Engine) -> None:
    config_file = Path(engine.env["DOCKUI_CONFIG"])
    settings = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**settings, "log_max_size": "2k", "log_max_file": 2}))
    script = "i=0; while [ $i -lt 300 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done"
    cid = engine.out("run", "-d", "busybox", "sh", "-c", script).strip()
    assert engine.out("wait", cid).strip() == "0"
    log = engine.config.containers_dir / cid / f"{cid}-json.log"
    files = sorted(log.parent.glob(f"{cid}-json.log*"))
    assert [f.name for f in files] == [log.name, log.name + ".1"]
    assert all(f.stat().st_size <= 2048 for f in files)
    assert engine.out("logs", "--tail", "1", cid) == "line-299-xxxxxxxxxxxxxxxxxxxxxxxx\n"
    engine.cli("rm", cid, check=True)
