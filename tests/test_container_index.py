"""The container index (engine.container.index): a cache of the records that lookups, `ps -q`, the
name check at create and reconcile read instead of every record, kept right through interrupted
writes, hand-made changes and torn lines (no kernel needed: records only)."""

from __future__ import annotations

import os
import secrets

import pytest

from engine.config import EngineConfig
from engine.container import index, state, sweep
from engine.container.names import generate_name
from engine.container.state import ContainerRecord
from engine.errors import Conflict


def _record(name: str = "") -> ContainerRecord:
    return ContainerRecord(id=secrets.token_hex(32), name=name, image="busybox", image_id="sha256:" + "a" * 64,
                           created=state.now_rfc3339(), host_config={"NetworkMode": "none"}, path="sh")


def _made(config: EngineConfig, n: int) -> list[ContainerRecord]:
    made = []
    for i in range(n):
        record = state.create_record(config, _record(f"c{i}"), generate_name)
        state.save(config, record, durable=True, fsync=False)
        made.append(record)
    return made


def _truth(config: EngineConfig) -> list[tuple[str, str, str, int]]:
    return sorted((r.id, r.status, r.name, r.monitor_pid) for r in state.list_containers(config))


def _cached(config: EngineConfig) -> list[tuple[str, str, str, int]]:
    return sorted((e.id, e.status, e.name, e.monitor_pid) for e in state.list_entries(config))


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The IDs whose record is read (state.load), in order."""
    seen: list[str] = []
    real = state.load

    def counting(config: EngineConfig, container_id: str) -> ContainerRecord:
        seen.append(container_id)
        return real(config, container_id)

    monkeypatch.setattr(state, "load", counting)
    return seen


def test_lookups_names_and_sweep_read_no_record_but_the_one_asked_for(engine_config: EngineConfig, loads: list[str]) -> None:
    made = _made(engine_config, 40)
    state.list_entries(engine_config)  # the first reader of a fresh root may rewrite the index
    loads.clear()
    assert state.find_container(engine_config, "c17").id == made[17].id
    assert loads == [made[17].id]
    loads.clear()
    assert state.find_container(engine_config, made[3].id[:10]).name == "c3"
    assert loads == [made[3].id]
    loads.clear()
    with state.names_locked(engine_config) as taken:
        assert taken == {f"c{i}" for i in range(40)}
    with pytest.raises(Conflict, match=made[5].id):
        state.create_record(engine_config, _record("c5"), generate_name)
    assert sweep.sweep(engine_config) == []
    assert loads == []  # nothing busy: reconcile needed no record


def test_index_follows_every_change_and_rebuilds_when_missing(engine_config: EngineConfig) -> None:
    made = _made(engine_config, 5)
    state.update(engine_config, made[0].id, lambda r: setattr(r, "status", "exited"))
    state.rename_record(engine_config, made[1].id, "renamed")
    state.delete_record(engine_config, made[2].id)
    assert _cached(engine_config) == _truth(engine_config)
    assert [e.id for e in state.list_entries(engine_config)] == [r.id for r in state.list_containers(engine_config)]
    (engine_config.containers_dir / index.INDEX).unlink()
    assert _cached(engine_config) == _truth(engine_config)
    assert (engine_config.containers_dir / index.INDEX).exists()


def test_a_writer_killed_between_record_and_index_leaves_a_mark_readers_resolve(engine_config: EngineConfig) -> None:
    record = _made(engine_config, 2)[0]
    index.dirty(engine_config.containers_dir, record.id)  # as save does, then the record changes and
    record.status, record.monitor_pid = "running", 4242  # the process dies before its `put`
    with open(engine_config.containers_dir / record.id / "config.v2.json", "w") as f:
        import json

        f.write(json.dumps(record.to_disk()[0]))
    assert ("running", 4242) in {(e.status, e.monitor_pid) for e in state.list_entries(engine_config)}
    for _ in range(3):  # a rewrite keeps the mark: only the record's next save clears it
        index._rewrite(engine_config.containers_dir, lambda cid: None)
        assert any(line.endswith(" ?") for line in (engine_config.containers_dir / index.INDEX).read_text().split("\n"))
    assert _cached(engine_config) == _truth(engine_config)


def test_directories_made_or_removed_behind_its_back_and_torn_lines(engine_config: EngineConfig) -> None:
    import shutil

    made = _made(engine_config, 3)
    state.list_entries(engine_config)
    shutil.rmtree(engine_config.containers_dir / made[0].id)  # removed by hand
    assert made[0].id not in {e.id for e in state.list_entries(engine_config)}
    (engine_config.containers_dir / index.INDEX).write_text("")  # containers it never saw
    assert _cached(engine_config) == _truth(engine_config)
    with open(engine_config.containers_dir / index.INDEX, "a") as f:
        f.write("\0\0\0 garbage\n")  # what a power loss may leave
    assert _cached(engine_config) == _truth(engine_config)


def test_corrupt_record_is_found_as_the_dead_stand_in(engine_config: EngineConfig) -> None:
    record = _made(engine_config, 2)[1]
    (engine_config.containers_dir / record.id / "config.v2.json").write_text("{not json")
    found = state.find_container(engine_config, record.id[:12])
    assert found.status == "dead" and found.corrupt


def test_the_file_stays_small_under_many_updates(engine_config: EngineConfig) -> None:
    record = _made(engine_config, 1)[0]
    for i in range(index.COMPACT_SLACK + 50):
        state.update(engine_config, record.id, lambda r, i=i: setattr(r, "exit_code", i % 7))
        if i % 50 == 0:
            state.list_entries(engine_config)
    state.list_entries(engine_config)
    lines = (engine_config.containers_dir / index.INDEX).read_text().count("\n")
    assert lines <= 2 + index.COMPACT_SLACK, lines
    assert os.listdir(engine_config.containers_dir).count(index.INDEX) == 1
