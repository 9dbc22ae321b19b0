"""Lifecycle without a daemon, on the real kernel: detached containers outlive their CLI, a killed
monitor is reconciled, concurrency leaves nothing behind, exec, restart policy, pause, stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.test_lifecycle_support import (  # noqa: F401 - the `engine` fixture
    Engine,
    cgroup_dirs,
    engine_fixture,
    mounts_under,
    wait_until,
)

pytestmark = pytest.mark.root


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def test_sigkill_of_the_cli_leaves_the_container_running_and_manageable(engine: Engine) -> None:
    cli = engine.popen(
        "run", "--name", "survivor", "--network", "none", "busybox", "sh", "-c",
        "trap 'echo bye; exit 0' TERM; echo up; sleep 60 & wait",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert cli.stdout.readline() == b"up\n"
    finally:
        cli.send_signal(signal.SIGKILL)
        cli.wait(10)
        cli.stdout.close()
        cli.stderr.close()
    # A new process sees it running, reads its logs and stops it.
    assert "Up " in engine.out("ps", "--filter", "name=survivor", "--format", "{{.Status}}")
    assert engine.out("logs", "survivor") == "up\n"
    assert _alive(engine.inspect("survivor")["State"]["Pid"])
    started = time.monotonic()
    assert engine.out("stop", "-t", "20", "survivor") == "survivor\n"
    assert time.monotonic() - started < 10  # the StopSignal did it, not the SIGKILL after 20 s
    state = engine.inspect("survivor")["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 0)
    assert engine.out("logs", "survivor") == "up\nbye\n"
    engine.out("rm", "survivor")


def test_stop_sends_sigkill_after_the_timeout(engine: Engine) -> None:
    cid = engine.out("run", "-d", "--network", "none", "busybox", "sleep", "60").strip()  # PID 1 ignores TERM
    started = time.monotonic()
    engine.out("stop", "-t", "1", cid)
    assert 0.9 < time.monotonic() - started < 8
    assert engine.inspect(cid)["State"]["ExitCode"] == 137
    engine.out("rm", cid)


def test_a_killed_monitor_is_reconciled_by_the_next_engine_start(engine: Engine) -> None:
    from engine.container import state

    cid = engine.out("run", "-d", "--network", "none", "busybox", "sleep", "60").strip()
    record = state.load(engine.config, cid)
    assert _alive(record.monitor_pid) and _alive(record.pid)
    procs = [Path(p) / "cgroup.procs" for p in record.cgroup_paths.values()]
    assert all(str(record.pid) in p.read_text().split() for p in procs)
    os.kill(record.monitor_pid, signal.SIGKILL)
    assert wait_until(lambda: not _alive(record.monitor_pid))
    out = engine.out("ps", "-a", "--format", "{{.State}} {{.Status}}")  # any verb reconciles
    assert out.startswith("exited Exited (137)")
    after = state.load(engine.config, cid)
    assert "monitor" in after.error
    assert wait_until(lambda: not _alive(record.pid))
    assert mounts_under(engine.config.root) == []
    assert cgroup_dirs(engine.config) == []
    assert engine.out("rm", cid).strip() == cid


def test_an_rm_container_whose_monitor_was_killed_is_removed_by_reconcile(engine: Engine) -> None:
    """As Docker's daemon removes AutoRemove containers it finds stopped when it starts."""
    from engine.container import state

    cid = engine.out("run", "-d", "--rm", "--network", "none", "busybox", "sleep", "60").strip()
    record = state.load(engine.config, cid)
    rw_layer = Path(record.rw_layer)
    assert rw_layer.is_dir()
    os.kill(record.monitor_pid, signal.SIGKILL)
    assert wait_until(lambda: not _alive(record.monitor_pid))
    assert engine.out("ps", "-aq") == ""  # any verb reconciles
    assert not (engine.config.containers_dir / cid).exists() and not rw_layer.exists()
    assert wait_until(lambda: not _alive(record.pid))
    assert mounts_under(engine.config.root) == []
    assert cgroup_dirs(engine.config) == []


def test_fifty_containers_started_and_removed_concurrently_leave_nothing(engine: Engine) -> None:
    names = [f"c{i:02d}" for i in range(50)]

    def run(name: str) -> subprocess.CompletedProcess:
        return engine.cli("run", "-d", "--name", name, "--network", "none", "busybox", "sleep", "60", timeout=120)

    def remove(batch: list[str]) -> subprocess.CompletedProcess:
        return engine.cli("rm", "-f", *batch, timeout=120)

    with ThreadPoolExecutor(max_workers=8) as pool:
        started = list(pool.map(run, names))
    assert [r.returncode for r in started] == [0] * 50, [r.stderr for r in started if r.returncode]
    running = engine.out("ps", "--format", "{{.Names}}").split()
    assert sorted(running) == names
    assert len(cgroup_dirs(engine.config)) >= 50
    batches = [names[i::10] for i in range(10)]  # ten CLIs removing five containers each, all at once
    with ThreadPoolExecutor(max_workers=10) as pool:
        removed = list(pool.map(remove, batches))
    assert [r.returncode for r in removed] == [0] * 10, [r.stderr for r in removed if r.returncode]
    assert engine.out("ps", "-aq") == ""
    assert mounts_under(engine.config.root) == []
    assert cgroup_dirs(engine.config) == []


def test_exec_joins_the_containers_pid_namespace_and_filesystem(engine: Engine) -> None:
    cid = engine.out(
        "run", "-d", "--name", "target", "--network", "none", "-e", "FROM_RUN=1", "busybox",
        "sh", "-c", "echo inside > /marker; exec sleep 60",
    ).strip()
    assert wait_until(lambda: engine.cli("exec", "target", "cat", "/marker").stdout == b"inside\n")
    processes = engine.out("exec", "target", "ps", "-o", "pid,comm").split("\n")[1:]
    assert [p.split() for p in processes if p] == [["1", "sleep"], [processes[1].split()[0], "ps"]]
    assert engine.cli("exec", "target", "sh", "-c", "exit 7").returncode == 7
    assert engine.out("exec", "-u", "nobody", "-w", "/tmp", "target", "sh", "-c", "id -u; pwd") == "65534\n/tmp\n"
    env = engine.out("exec", "-e", "EXTRA=2", "target", "env")
    assert "FROM_RUN=1" in env and "EXTRA=2" in env
    assert engine.out("exec", "-i", "target", "cat") == ""  # stdin from our (empty) pipe
    assert engine.cli("exec", "target", "no-such-tool").returncode == 127
    assert engine.cli("exec", "target", "hostname").stdout.decode() == cid[:12] + "\n"
    engine.out("rm", "-f", "target")


def test_restart_policy_on_failure_2(engine: Engine) -> None:
    cid = engine.out(
        "run", "-d", "--restart", "on-failure:2", "--network", "none", "busybox", "sh", "-c", "echo attempt; exit 1"
    ).strip()
    # `wait` wakes at the first exit, as Docker's (its policy restarts it): the last one is awaited here
    assert wait_until(lambda: engine.inspect(cid)["State"]["Status"] == "exited", timeout=20)
    assert engine.out("wait", cid) == "1\n"
    info = engine.inspect(cid)
    assert info["RestartCount"] == 2
    assert info["State"]["Status"] == "exited"
    assert engine.out("logs", cid) == "attempt\n" * 3
    engine.out("rm", cid)


def test_pause_and_unpause_freeze_the_container(engine: Engine) -> None:
    cid = engine.out(
        "run", "-d", "--network", "none", "busybox", "sh", "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /counter; sleep 0.05; done",
    ).strip()
    upper = Path(engine.inspect(cid)["GraphDriver"]["Data"]["UpperDir"])
    assert wait_until(lambda: (upper / "counter").exists())
    engine.out("pause", cid)
    assert engine.inspect(cid)["State"]["Status"] == "paused"
    assert "(Paused)" in engine.out("ps")
    frozen = (upper / "counter").read_text()
    time.sleep(0.4)
    assert (upper / "counter").read_text() == frozen
    assert engine.cli("exec", cid, "true").returncode == 1
    engine.out("unpause", cid)
    assert wait_until(lambda: (upper / "counter").read_text() != frozen)
    assert engine.inspect(cid)["State"]["Status"] == "running"
    engine.out("rm", "-f", cid)


def test_names_are_unique_and_prefixes_resolve(engine: Engine) -> None:
    first = engine.out("create", "--name", "web", "--network", "none", "busybox").strip()
    clash = engine.cli("create", "--name", "web", "--network", "none", "busybox")
    assert clash.returncode == 1 and b"already in use" in clash.stderr  # create returns the engine's error plainly
    second = engine.out("create", "--network", "none", "busybox").strip()
    generated = engine.inspect(second)["Name"].lstrip("/")
    assert "_" in generated
    assert engine.inspect(first[:6])["Id"] == first
    assert engine.inspect("/web")["Id"] == first
    engine.out("rename", "web", "web2")
    assert engine.inspect("web2")["Id"] == first
    assert engine.cli("inspect", "--type", "container", "web").returncode == 1
    assert engine.out("container", "prune", "-f").count("\n") >= 2
    assert engine.out("container", "ls", "-aq") == ""


def test_reconcile_removes_empty_orphan_cgroups_but_not_populated_ones(engine: Engine) -> None:
    import secrets

    from engine.container import runtime
    from engine.sandbox.cgroups import Resources, open_cgroup

    orphan = open_cgroup(engine.config, secrets.token_hex(32))
    orphan.create(Resources())
    busy = open_cgroup(engine.config, secrets.token_hex(32))  # e.g. another root sharing the parent
    busy.create(Resources())
    starting = open_cgroup(engine.config, secrets.token_hex(32))  # another root's, before its process joins
    starting.create(Resources())
    for group in (orphan, busy):  # made a minute ago: young groups are left to a later reconcile
        for path in group.paths.values():
            os.utime(path, (time.time() - 60, time.time() - 60))
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        busy.add_process(sleeper.pid)
        runtime.reconcile(engine.config)
        assert not orphan.exists()
        assert busy.exists() and busy.pids() == [sleeper.pid]
        assert starting.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
        busy.destroy()
        starting.destroy()


def test_mount_and_tmpfs_flags_follow_dockers_rules(engine: Engine, tmp_path: Path) -> None:
    host_dir = tmp_path / "src"
    host_dir.mkdir()
    (host_dir / "f").write_text("from host\n")
    script = ("cat /in/f; touch /in/x 2>/dev/null || echo ro; echo kept > /vol/f; "
              "grep -E ' /scratch | /vol/t ' /proc/mounts | cut -d' ' -f2-4")
    out = engine.out(
        "run", "--rm", "--network", "none", "--mount", f"type=bind,src={host_dir},dst=/in,readonly",
        "--mount", "type=volume,source=mkeep,target=/vol", "--tmpfs", "/scratch:size=1m,exec",
        "--mount", "type=tmpfs,dst=/vol/t,tmpfs-size=2m", "busybox", "sh", "-c", script,
    )
    lines = out.splitlines()
    assert lines[:2] == ["from host", "ro"]
    # shallowest first: the tmpfs at /vol/t is on the volume, not hidden by it; Docker's flags
    assert sorted(lines[2:]) == ["/scratch tmpfs rw,nosuid,nodev,relatime,size=1024k",
                                 "/vol/t tmpfs rw,nosuid,nodev,noexec,relatime,size=2048k"]
    assert (engine.config.volumes_dir / "mkeep" / "_data" / "f").read_text() == "kept\n"
    assert not (host_dir / "x").exists()
    engine.out("volume", "rm", "mkeep")

    for flags, message in (
        (["--mount", f"type=bind,src={tmp_path / 'missing'},dst=/x"], b"bind source path does not exist"),
        (["--mount", "type=bind,src=rel,dst=/x"], b"must be an absolute path"),
        (["--mount", "type=tmpfs,dst=relative"], b"destination must be an absolute path"),
        (["--mount", "type=nfs,dst=/x"], b"type must be bind, volume or tmpfs"),
        (["--tmpfs", "/t:bogus"], b"invalid tmpfs option"),
        (["-v", f"{host_dir}:/a", "--tmpfs", "/a"], b"Duplicate mount point: /a"),
    ):
        result = engine.cli("run", "--rm", "--network", "none", *flags, "busybox", "true")
        assert result.returncode == 125 and message in result.stderr, (flags, result.stderr)
    assert not (tmp_path / "missing").exists()  # --mount never creates a bind source (-v does)
    assert engine.out("ps", "-aq") == ""


def test_ps_and_inspect_size_count_what_the_container_wrote(engine: Engine) -> None:
    cid = engine.out("run", "-d", "--network", "none", "busybox", "sh", "-c",
                     "head -c 5000 /dev/zero > /big; ln /big /big2; echo ready; sleep 30").strip()
    assert wait_until(lambda: engine.out("logs", cid) == "ready\n")
    sizes = json.loads(engine.out("inspect", "-s", cid))[0]
    image_size = json.loads(engine.out("image", "inspect", "busybox"))[0]["Size"]
    assert sizes["SizeRw"] == 5000  # the hard link counted once, as Docker does
    assert sizes["SizeRootFs"] == 5000 + image_size
    table = engine.out("ps", "-s").splitlines()
    assert table[0].split()[-1] == "SIZE" and table[1].endswith("5kB (virtual " + f"{(5000 + image_size) / 1e6:.3g}MB)")
    assert "Size" not in engine.out("ps").splitlines()[0]
    engine.out("rm", "-f", cid)


def test_commit_makes_an_image_of_the_containers_changes(engine: Engine) -> None:
    script = ("echo new > /new; ln /new /new-link; rm /bin/ls; rm -rf /root; mkdir /root; "
              "echo only > /root/only; echo ready; sleep 30")
    cid = engine.out("run", "-d", "--name", "src", "--network", "none", "-e", "KEPT=1", "busybox", "sh", "-c", script).strip()
    assert wait_until(lambda: engine.out("logs", cid) == "ready\n")
    image_id = engine.out("commit", "-m", "my change", "-a", "me", "-c", 'CMD ["cat", "/new"]', "src", "committed:v1").strip()
    assert image_id.startswith("sha256:")
    assert engine.inspect(cid)["State"]["Status"] == "running"  # paused for the commit, then thawed
    assert engine.out("run", "--rm", "--network", "none", "committed:v1") == "new\n"
    check = ("ls /bin/ls 2>/dev/null || echo whiteout-kept; ls /root; "
             "[ /new -ef /new-link ] && echo hardlink-kept; echo $KEPT")
    out = engine.out("run", "--rm", "--network", "none", "committed:v1", "sh", "-c", check)
    assert out == "whiteout-kept\nonly\nhardlink-kept\n1\n"  # /root was opaque: only the new file
    info = json.loads(engine.out("image", "inspect", "committed:v1"))[0]
    assert (info["Id"], info["Author"], info["Comment"]) == (image_id, "me", "my change")
    base = json.loads(engine.out("image", "inspect", "busybox"))[0]
    assert info["RootFS"]["Layers"][:-1] == base["RootFS"]["Layers"] and len(info["RootFS"]["Layers"]) == 2
    engine.out("rm", "-f", cid)
    engine.out("rmi", "committed:v1")


def test_export_is_the_containers_view_and_imports_back(engine: Engine, tmp_path: Path) -> None:
    import tarfile

    script = "echo new > /new; rm /bin/ls; rm -rf /root; mkdir /root; echo only > /root/only; echo ready; sleep 30"
    cid = engine.out("run", "-d", "--network", "none", "busybox", "sh", "-c", script).strip()
    assert wait_until(lambda: engine.out("logs", cid) == "ready\n")
    out = tmp_path / "c.tar"
    engine.out("export", "-o", str(out), cid)
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    assert {"new", "root/only", "bin/busybox", "bin/sh"} <= names
    assert "bin/ls" not in names and not any(".wh." in n for n in names)  # whiteouts applied, not shipped
    assert not any(n.startswith("root/") and n != "root/only" for n in names)  # the opaque dir's own content only
    piped = engine.cli("export", cid, check=True).stdout
    assert piped == out.read_bytes()  # the same tar either way (sorted, numeric owners)
    assert mounts_under(engine.config.root) == [] and list(engine.config.tmp_dir.iterdir()) == []
    engine.out("rm", "-f", cid)
    engine.out("import", "--change", "CMD cat /new", str(out), "exported:v1")
    assert engine.out("run", "--rm", "--network", "none", "exported:v1") == "new\n"
    engine.out("rmi", "exported:v1")
    missing = engine.cli("export", "-o", str(tmp_path / "none.tar"), "no-such")
    assert missing.returncode == 1 and b"No such container: no-such" in missing.stderr
    assert not (tmp_path / "none.tar").exists()  # nothing written for a container that is not there


def test_volumes_named_bind_and_anonymous(engine: Engine, tmp_path: Path) -> None:
    host_dir = tmp_path / "shared"
    host_dir.mkdir()
    (host_dir / "in").write_text("from host\n")
    engine.out("volume", "create", "keep")
    cid = engine.out(
        "run", "-d", "--network", "none", "-v", f"{host_dir}:/host:ro", "-v", "keep:/keep", "-v", "/scratch",
        "busybox", "sh", "-c", "cat /host/in; echo kept > /keep/f; echo tmp > /scratch/f; touch /host/x || echo ro",
    ).strip()
    assert engine.out("wait", cid) == "0\n"
    assert engine.out("logs", cid) == "from host\nro\n"
    assert (engine.config.volumes_dir / "keep" / "_data" / "f").read_text() == "kept\n"
    anonymous = [m["Name"] for m in engine.inspect(cid)["Mounts"] if m["Type"] == "volume" and m["Name"] != "keep"]
    assert len(anonymous) == 1 and len(anonymous[0]) == 64
    assert engine.cli("volume", "rm", "keep").returncode == 1  # in use
    engine.out("rm", "-v", cid)
    assert sorted(engine.out("volume", "ls", "-q").split()) == ["keep"]  # the anonymous one went with -v
    engine.out("volume", "rm", "keep")


def test_rename_follows_into_the_network_topology(engine: Engine) -> None:
    from engine.network import endpoints as network

    cid = engine.out("run", "-d", "--name", "before", "busybox", "sleep", "30").strip()

    def names() -> list[str]:
        return [p.container_name for b in network.topology(engine.config) for p in b.ports if p.container_id == cid]

    assert names() == ["before"]
    engine.out("rename", "before", "after")
    assert names() == ["after"]
    engine.out("rm", "-f", cid)


def test_add_host_gateway_without_a_network_is_refused(engine: Engine) -> None:
    result = engine.cli("run", "--rm", "--network", "none", "--add-host", "gw:host-gateway", "busybox", "true")
    assert result.returncode == 125
    assert b"host-gateway needs a network" in result.stderr
    assert engine.out("ps", "-aq") == ""  # nothing was created
    hosts = engine.out("run", "--rm", "--network", "none", "--add-host", "db:10.0.0.7", "busybox", "cat", "/etc/hosts")
    assert "10.0.0.7\tdb" in hosts or "10.0.0.7 db" in hosts


def test_add_host_with_the_host_network_follows_the_hosts_own_entries(engine: Engine) -> None:
    hosts = engine.out("run", "--rm", "--network", "host", "--add-host", "db:10.0.0.7",
                       "--add-host", "gw:host-gateway", "busybox", "cat", "/etc/hosts")
    host_own = Path("/etc/hosts").read_text()
    assert hosts.startswith(host_own.rstrip("\n"))
    assert hosts.endswith("10.0.0.7\tdb\n127.0.0.1\tgw\n")


def test_priming_the_cgroup_migration_leaves_the_caller_where_it_was(engine: Engine) -> None:
    from engine.container.monitor import prime

    before = Path("/proc/self/cgroup").read_text()
    prime.prime_cgroup_migration()
    assert Path("/proc/self/cgroup").read_text() == before
    assert engine.out("run", "--rm", "--network", "none", "busybox", "echo", "ok") == "ok\n"


def test_run_reconciles_through_its_monitor(engine: Engine) -> None:
    # `run` leaves reconcile to the monitor it forks first, which sweeps once the start is over
    # (after the exit frame: docs/lifecycle.md): a container whose monitor died is found and
    # cleaned without any other verb (read in-process: no verb reconciles).
    from engine.container import state

    cid = engine.out("run", "-d", "--network", "none", "busybox", "sleep", "60").strip()
    record = state.load(engine.config, cid)
    os.kill(record.monitor_pid, signal.SIGKILL)
    assert engine.out("run", "--rm", "--network", "none", "busybox", "echo", "ok") == "ok\n"
    assert wait_until(lambda: state.load(engine.config, cid).status == "exited")
    after = state.load(engine.config, cid)
    assert after.status == "exited" and after.exit_code == 137 and "monitor" in after.error
    assert not state.process_alive(record.pid, record.pid_start)
    engine.out("rm", cid)


def test_prepared_monitor_reads_its_context_or_eof_while_priming(engine: Engine) -> None:
    import threading

    from engine.container.start import _read_control

    before = Path("/proc/self/cgroup").read_text()
    r, w = os.pipe()
    # In two pieces, the first ending in a '}' of a nested object, past a few prime intervals; the
    # write end stays open: the complete object is enough (the CLI closes only after a reap).
    first, second = b'{"env": {"A": "}"}', b', "argv": []}'
    timer = threading.Timer(0.02, lambda: (os.write(w, first), time.sleep(0.02), os.write(w, second)))
    timer.start()
    try:
        assert _read_control(r) == {"env": {"A": "}"}, "argv": []}
    finally:
        timer.join()
        os.close(r)
        os.close(w)
    r, w = os.pipe()
    os.close(w)
    assert _read_control(r) is None  # the CLI gave up: nothing to start
    os.close(r)
    steps: list[int] = []
    r, w = os.pipe()
    os.write(w, b'{"argv": []}')
    assert _read_control(r, "", [lambda: steps.append(1)]) == {"argv": []}
    assert steps == []  # the context was there first: warm-up steps are skipped, not waited for
    os.close(r)
    os.close(w)
    r, w = os.pipe()
    timer = threading.Timer(0.05, lambda: os.write(w, b'{"argv": []}'))
    timer.start()
    try:
        assert _read_control(r, "", [lambda: steps.append(1), lambda: steps.append(2)]) == {"argv": []}
    finally:
        timer.join()
        os.close(r)
        os.close(w)
    assert steps == [1, 2]  # while it waited
    r, w = os.pipe()
    os.write(w, b'{"argv": [')
    os.close(w)
    assert _read_control(r) is None  # it died half-way: nothing to start either
    os.close(r)
    r, w = os.pipe()
    os.write(w, b'{"argv": ["start"]}\n')  # a line, then EOF: as good as the bare object
    os.close(w)
    assert _read_control(r) == {"argv": ["start"]}
    os.close(r)
    assert Path("/proc/self/cgroup").read_text() == before
    assert engine.out("run", "--rm", "--network", "none", "busybox", "echo", "ok") == "ok\n"


def test_failed_start_leaves_the_record_as_docker_does(engine: Engine) -> None:
    # The monitor records "running" while the process builds its root (before its exec): when
    # the exec then fails, the record is put back, with the error: still "created", no pid.
    from engine.container import state

    cid = engine.out("create", "--network", "none", "busybox", "no-such-command").strip()
    before = state.load(engine.config, cid)
    result = engine.cli("start", cid)
    assert result.returncode != 0 and b"executable file not found" in result.stderr
    after = state.load(engine.config, cid)
    assert (after.status, after.exit_code, after.pid, after.monitor_pid) == ("created", 127, 0, 0)
    assert after.started_at == before.started_at and after.cgroup_paths == before.cgroup_paths
    assert "no-such-command" in after.error
    engine.out("rm", cid)


def test_durable_save_writes_both_files_into_a_new_directory(engine: Engine) -> None:
    from engine.container import state

    record = state.ContainerRecord(id="ab" * 32, name="durable", image="busybox", image_id="sha256:" + "0" * 64,
                                   created=state.now_rfc3339(), config={}, host_config={"NetworkMode": "none"},
                                   network={})
    state.save(engine.config, record, durable=True)
    d = engine.config.containers_dir / record.id
    assert sorted(p.name for p in d.iterdir()) == ["config.v2.json", "hostconfig.json"]  # no temp file left
    assert state.load(engine.config, record.id).host_config["NetworkMode"] == "none"
    state.delete_record(engine.config, record.id)
    assert not d.exists()
