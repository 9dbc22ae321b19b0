"""Endpoint records (<root>/network/endpoints/<id>.json) as typed `EndpointRecord`s: records written
before the type existed load, and a record saved again is the same JSON, byte for byte."""

from __future__ import annotations

import json
from dataclasses import replace

from engine.config import EngineConfig
from engine.network.records import (
    Endpoint,
    EndpointRecord,
    all_records,
    load_record,
    record_path,
    save_record,
)

# As `prepare` then `attach` wrote them before the records were typed (key order included): a
# container on a user network with an alias, a published port, a link and an --add-host.
ATTACHED = {
    "container_id": "c" * 64,
    "name": "web",
    "hostname": "cccccccccccc",
    "mode": "appnet",
    "state": "attached",
    "pid": 4242,
    "endpoints": [{
        "network": "appnet", "network_id": "n" * 64, "bridge": "br-nnnnnnnnnnnn", "ifname": "eth0",
        "ip": "172.18.0.2", "prefixlen": 16, "gateway": "172.18.0.1", "mac": "02:42:ac:12:00:02",
        "host_veth": "veth1234567", "mtu": 1500, "internal": False, "aliases": ["www"],
    }],
    "ports": [{"host_ip": "127.0.0.1", "host_port": 8080, "container_port": 80, "proto": "tcp"}],
    "links": [["db", "database"]],
    "extra_hosts": [["10.0.0.9", "printer"], ["172.18.0.3", "database cccc db"]],
    "exposed_ports": ["80/tcp"],
    "env": ["PATH=/bin", "A=1"],
    "dns": ["192.0.2.53"],
    "preparer": [4240, 987654],
    "netns_inode": 4026532300,
}
# Prepared, never attached: no netns_inode key; an older engine wrote neither dns nor preparer.
PREPARED_OLD = {
    "container_id": "d" * 64, "name": "job", "hostname": "job", "mode": "bridge", "state": "prepared", "pid": None,
    "endpoints": [], "ports": [], "links": [], "extra_hosts": [], "exposed_ports": [], "env": [],
}


def compact(data: dict) -> str:
    return json.dumps(data, separators=(",", ":"))


def test_a_record_round_trips_to_the_same_json() -> None:
    rec = EndpointRecord.from_json(json.loads(compact(ATTACHED)))
    assert compact(rec.to_json()) == compact(ATTACHED)
    assert rec.attached and rec.pid == 4242 and rec.netns_inode == 4026532300
    assert rec.endpoints == (Endpoint(**ATTACHED["endpoints"][0]),)
    assert rec.links == (("db", "database"),) and rec.preparer == (4240, 987654)
    assert [(m.host_port, m.container_port) for m in rec.port_mappings()] == [(8080, 80)]
    assert rec.on("appnet")[0].aliases == ["www"] and rec.on("bridge") == [] and rec.networks() == {"appnet"}


def test_an_older_record_loads_and_gains_only_the_newer_keys() -> None:
    rec = EndpointRecord.from_json(PREPARED_OLD)
    assert (rec.state, rec.dns, rec.preparer, rec.netns_inode) == ("prepared", (), None, None)
    assert rec.to_json() == {**PREPARED_OLD, "dns": [], "preparer": None}


def test_changes_are_new_records_saved_whole(tmp_path) -> None:
    config = EngineConfig(root=tmp_path)
    rec = EndpointRecord.from_json(ATTACHED)
    save_record(config, rec)
    assert record_path(config, rec.container_id).read_text() == compact(ATTACHED)
    save_record(config, replace(rec, state="detached", pid=None))
    again = load_record(config, rec.container_id)
    assert again is not None and (again.state, again.pid, again.netns_inode) == ("detached", None, 4026532300)
    assert rec.attached  # the first record is unchanged
    assert [r.container_id for r in all_records(config)] == [rec.container_id]


def test_an_unreadable_record_is_left_out_of_the_listing(tmp_path) -> None:
    config = EngineConfig(root=tmp_path)
    save_record(config, EndpointRecord.from_json(PREPARED_OLD))
    record_path(config, "e" * 64).write_text('{"state": "attached"}')  # no container_id, name, hostname
    assert [r.container_id for r in all_records(config)] == ["d" * 64]
