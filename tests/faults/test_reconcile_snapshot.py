"""Reconcile acts on what it finds under the container's lock, never on an earlier snapshot.

The sweep reads the index (statuses and process identities) first and acts later. Between the two,
a `run -d` whose entry said "created, by this live CLI" finishes: the container runs and the CLI
has exited. Judged on the snapshot it would look half-created (its creator is gone) and be removed
while running: four concurrent `run -d` beside a reconciling TUI lost containers that way (start,
then die 137 and destroy within ~150 ms).
"""

from __future__ import annotations

import subprocess

import pytest

from tests.faults.scoreboard import score
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root


def test_a_stale_half_created_entry_never_removes_a_running_container(engine: Engine) -> None:
    from engine.container import state, sweep
    from engine.container.index import Entry

    cid = engine.out("run", "-d", "--network", "none", "busybox", "sleep", "60").strip()
    gone = subprocess.Popen(["true"])  # a creator that has exited since the snapshot was taken
    gone.wait()
    record = state.load(engine.config, cid)
    stale = Entry(cid, "created", record.name, record.created, creator_pid=gone.pid, creator_start=1)
    sweep._finish_interrupted(engine.config, [stale])
    after = state.load(engine.config, cid)
    score("race", "stale index entry vs running container", after.status == "running",
          detail=f"status {after.status}")
    engine.out("rm", "-f", cid)


def test_a_really_half_created_container_is_still_removed(engine: Engine) -> None:
    from engine.container import state, sweep

    cid = engine.out("create", "--network", "none", "busybox", "true").strip()
    gone = subprocess.Popen(["true"])
    gone.wait()
    with state.locked(engine.config, cid) as record:  # what a create killed half-way leaves
        record.creator_pid, record.creator_start = gone.pid, 1
    entry = next(e for e in state.list_entries(engine.config, ("created",), processes=True) if e.id == cid)
    sweep._finish_interrupted(engine.config, [entry])
    score("kill", "half-created container removed by reconcile", cid not in engine.out("ps", "-aq", "--no-trunc"))
