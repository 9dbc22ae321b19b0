"""Container records on disk (no kernel needed): Docker's file layout, names, ID prefixes, locking."""

from __future__ import annotations

import json
import secrets
import threading

import pytest

from engine.config import EngineConfig
from engine.container import state
from engine.container.names import generate_name
from engine.container.state import ContainerRecord
from engine.errors import Conflict, InvalidArgument, NotFound


def _record(name: str = "", cid: str | None = None) -> ContainerRecord:
    return ContainerRecord(
        id=cid or secrets.token_hex(32),
        name=name,
        image="busybox",
        image_id="sha256:" + "a" * 64,
        created=state.now_rfc3339(),
        config={"Cmd": ["sh"], "Env": ["PATH=/bin"], "Labels": {"k": "v"}},
        host_config={"NetworkMode": "none", "RestartPolicy": {"Name": "", "MaximumRetryCount": 0}},
        path="sh",
    )


def test_record_is_stored_like_dockers_config_v2_and_hostconfig(engine_config: EngineConfig) -> None:
    record = state.create_record(engine_config, _record("web"), generate_name)
    d = engine_config.containers_dir / record.id
    v2 = json.loads((d / "config.v2.json").read_text())
    assert v2["ID"] == record.id and v2["Name"] == "/web" and v2["Driver"] == "overlay2"
    assert v2["State"]["Status"] == "created" and v2["State"]["Running"] is False
    assert v2["Config"]["Cmd"] == ["sh"]
    assert json.loads((d / "hostconfig.json").read_text())["NetworkMode"] == "none"
    assert (d / "config.v2.json").stat().st_mode & 0o777 == 0o600
    loaded = state.load(engine_config, record.id)
    assert loaded == record


def test_generated_names_are_docker_style_and_unique(engine_config: EngineConfig) -> None:
    names = {state.create_record(engine_config, _record(), generate_name).name for _ in range(30)}
    assert len(names) == 30
    assert all(len(n.split("_")) == 2 and n.replace("_", "").rstrip("0123456789").isalpha() for n in names)


def test_names_are_unique_even_when_created_concurrently(engine_config: EngineConfig) -> None:
    results: list[str] = []

    def create() -> None:
        try:
            state.create_record(engine_config, _record("same"), generate_name)
            results.append("ok")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 7 + ["ok"]


def test_find_container_by_name_id_and_unambiguous_prefix(engine_config: EngineConfig) -> None:
    a = state.create_record(engine_config, _record("alpha", "ab" + "0" * 62), generate_name)
    b = state.create_record(engine_config, _record("beta", "ac" + "1" * 62), generate_name)
    assert state.find_container(engine_config, "alpha").id == a.id
    assert state.find_container(engine_config, "/beta").id == b.id
    assert state.find_container(engine_config, a.id).id == a.id
    assert state.find_container(engine_config, "ab0").id == a.id
    with pytest.raises(InvalidArgument, match="multiple IDs"):
        state.find_container(engine_config, "a")
    with pytest.raises(NotFound, match="No such container: gamma"):
        state.find_container(engine_config, "gamma")


def test_rename_refuses_a_taken_name(engine_config: EngineConfig) -> None:
    a = state.create_record(engine_config, _record("one"), generate_name)
    state.create_record(engine_config, _record("two"), generate_name)
    with pytest.raises(Conflict):
        state.rename_record(engine_config, a.id, "two")
    with pytest.raises(InvalidArgument):
        state.rename_record(engine_config, a.id, "bad name!")
    state.rename_record(engine_config, a.id, "three")
    assert state.find_container(engine_config, "three").id == a.id


def test_updates_under_the_lock_do_not_lose_writes(engine_config: EngineConfig) -> None:
    record = state.create_record(engine_config, _record("counter"), generate_name)

    def bump() -> None:
        for _ in range(20):

            def inc(r: ContainerRecord) -> None:
                r.restart_count += 1

            state.update(engine_config, record.id, inc)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state.load(engine_config, record.id).restart_count == 80


def test_a_half_created_directory_is_ignored_and_times_parse(engine_config: EngineConfig) -> None:
    (engine_config.containers_dir / ("f" * 64)).mkdir(parents=True)
    assert state.list_containers(engine_config) == []
    assert state.parse_rfc3339("1970-01-01T00:01:00.5Z") == 60.5
    assert state.parse_rfc3339(state.ZERO_TIME) == 0.0


def test_volumes_create_list_and_refuse_removal_in_use(engine_config: EngineConfig) -> None:
    from engine.container import volumes

    vol = volumes.create_volume(engine_config, "data", {"team": "x"})
    assert vol.mountpoint == engine_config.volumes_dir / "data" / "_data" and vol.mountpoint.is_dir()
    assert volumes.create_volume(engine_config, "data").created_at == vol.created_at  # idempotent
    anonymous = volumes.create_volume(engine_config)
    assert anonymous.anonymous and len(anonymous.name) == 64
    record = _record("user")
    record.mounts = [{"Type": "volume", "Name": "data", "Source": str(vol.mountpoint), "Destination": "/d", "RW": True}]
    state.create_record(engine_config, record, generate_name)
    with pytest.raises(Conflict, match="in use"):
        volumes.remove_volume(engine_config, "data")
    assert volumes.prune_volumes(engine_config) == [anonymous.name]
    assert [v.name for v in volumes.list_volumes(engine_config)] == ["data"]
    with pytest.raises(InvalidArgument):
        volumes.create_volume(engine_config, "../escape")


def test_locked_saves_changes_made_in_place(engine_config: EngineConfig) -> None:
    """A nested dict changed in place (HostConfig, Config, NetworkSettings) is saved like a field set."""
    record = state.create_record(engine_config, _record("inplace"), generate_name)
    with state.locked(engine_config, record.id) as locked:
        locked.host_config["RestartPolicy"]["Name"] = "always"
        locked.config["Labels"]["k"] = "changed"
    again = state.load(engine_config, record.id)
    assert again.host_config["RestartPolicy"]["Name"] == "always"
    assert again.config["Labels"]["k"] == "changed"
