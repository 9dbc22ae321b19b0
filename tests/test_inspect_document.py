"""engine.container.inspect builds a new document: the record it shapes (which the index may keep
in memory and the next save writes) is never changed by it, and the document shares no mutable
part with the record, so a caller that edits the document (the service adds SizeRw) edits only it."""

from __future__ import annotations

import copy
from pathlib import Path

from engine.config import EngineConfig
from engine.container.inspect import inspect
from engine.container.state import ContainerRecord


def _stopped_host_container() -> ContainerRecord:
    """A host-network container that ran and stopped: its record keeps the Networks its start wrote
    and no endpoint record stands for it, so inspect shows the record's own entries."""
    return ContainerRecord(
        id="c0ffee" * 10 + "abcd", name="web", image="busybox", image_id="sha256:" + "1" * 64,
        created="2026-12-06T08:00:00Z", status="exited",
        config={"Image": "busybox", "Cmd": ["true"], "Labels": {"a": "b"}},
        host_config={"NetworkMode": "host", "IPAddress": "10.9.0.5", "EndpointDriverOpts": {"k": "v"}},
        network={"Networks": {"host": {"NetworkID": "n1", "Aliases": None}}},
    )


def test_inspect_leaves_the_record_as_it_was(tmp_path: Path) -> None:
    record = _stopped_host_container()
    before = copy.deepcopy((record.config, record.host_config, record.network, record.mounts))
    first = inspect(EngineConfig(root=tmp_path), record)
    assert (record.config, record.host_config, record.network, record.mounts) == before
    entry = first["NetworkSettings"]["Networks"]["host"]
    assert entry["NetworkID"] == "n1" and entry["MacAddress"] == "" and entry["IPAMConfig"] == {"IPv4Address": "10.9.0.5"}
    assert entry["DriverOpts"] == {"k": "v"} and first["HostConfig"]["Runtime"] == "runc"
    first["Config"]["Labels"]["c"] = "d"
    first["Config"]["Cmd"].append("x")
    entry["Aliases"] = ["changed"]
    first["HostConfig"]["EndpointDriverOpts"]["k"] = "changed"
    assert (record.config, record.host_config, record.network, record.mounts) == before
    assert inspect(EngineConfig(root=tmp_path), record)["NetworkSettings"]["Networks"]["host"]["Aliases"] is None
