"""`dockui info`, `dockui version` and `dockui system df`: the engine's figures through the CLI, the
same calls (engine.api.info, engine.api.system) the service's `/info`, `/version`, `/system/df` make.
"""

from __future__ import annotations

import json

import pytest

from engine.api.info import API_VERSION
from engine.image.store import ImageStore
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401

pytestmark = pytest.mark.root


def test_info_version_and_system_df(engine: Engine) -> None:
    busybox = ImageStore(engine.config).resolve("busybox")
    engine.out("run", "-d", "--name", "dfrun", "--network", "none", "-v", "dfvol:/data", "busybox",
               "sh", "-c", "head -c 300000 /dev/zero > /data/z; head -c 200000 /dev/zero > /z; sleep 60")
    engine.out("create", "--name", "dfidle", "--network", "none", "busybox", "true")

    info = engine.out("info")
    for line in (" Containers: 2", "  Running: 1", "  Stopped: 1", " Images: 1", f" Docker Root Dir: {engine.config.root}"):
        assert line in info.splitlines(), info
    assert json.loads(engine.out("info", "--format", "json"))["ContainersRunning"] == 1
    # docker version's data, by Go's field names: {{.Server.APIVersion}} is what scripts ask
    assert engine.out("version", "--format", "{{.Server.APIVersion}} {{.Client.Version}}").split() == [
        API_VERSION, engine.out("--version").split()[-1]]
    assert json.loads(engine.out("version", "--format", "json"))["Server"]["MinAPIVersion"] == "1.24"
    assert f"API version:      {API_VERSION}" in engine.out("version")

    def df() -> dict[str, dict]:
        rows = [json.loads(line) for line in engine.out("system", "df", "--format", "json").splitlines()]
        return {row["Type"]: row for row in rows}

    assert wait_until(lambda: df()["Local Volumes"]["Size"] != "0B", timeout=10)  # the container wrote its file
    rows = df()
    assert (rows["Images"]["TotalCount"], rows["Images"]["Active"]) == ("1", "1")  # docker's contexts: strings
    assert (rows["Containers"]["TotalCount"], rows["Containers"]["Active"]) == ("2", "1")
    assert rows["Containers"]["Size"] != "0B"  # /z in the running container's writable layer
    assert (rows["Local Volumes"]["TotalCount"], rows["Local Volumes"]["Active"]) == ("1", "1")
    assert rows["Local Volumes"]["Reclaimable"].startswith("0B")  # mounted: nothing to reclaim
    verbose = engine.out("system", "df", "-v")
    assert busybox.short_id in verbose and "dfrun" in verbose and "dfvol" in verbose
    engine.out("rm", "-f", "dfrun", "dfidle")
