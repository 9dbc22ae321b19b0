"""More of Docker's container settings, end to end on the real kernel: `--uts host`,
`--memory-swappiness`, `--device-cgroup-rule`, `--log-driver none`, bind propagation (`-v ...:rshared`,
`--mount ...,bind-propagation=rslave`) and a `KEY` without `=` in Config.Env; each through the CLI
and through the Engine API (docker-py, the docker CLI), with Docker's inspect values and Docker's
one-line errors (nothing created)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service_support import Service, service_fixture  # noqa: F401 - the `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - the `engine` fixture
from tests.test_run_flags import _cgroup_file, _fails

pytestmark = pytest.mark.root

# An unassigned character major (Linux's devices.txt: 60-63 are for local/experimental use): opening a
# node of it is refused by the device cgroup (EPERM) unless a rule allows it, and then finds no
# driver (ENXIO). Nothing on the host is touched either way.
SPARE_MAJOR = 60


def _swappiness_knob() -> bool:
    from engine.sandbox.cgroups import memory_swappiness_supported

    return memory_swappiness_supported()


# ------------------------------------------------------------------------------------------ uts, swappiness, rules


def test_uts_host_swappiness_and_device_cgroup_rules(engine: Engine) -> None:
    rule = f"c {SPARE_MAJOR}:0 rwm"
    engine.out("run", "-d", "--name", "knobs", "--network", "none", "--uts", "host", "--memory-swappiness", "17",
               "--device-cgroup-rule", rule, "busybox", "sleep", "300")
    data = engine.inspect("knobs")
    hc = data["HostConfig"]
    assert hc["UTSMode"] == "host" and hc["DeviceCgroupRules"] == [rule]
    assert hc["MemorySwappiness"] == (17 if _swappiness_knob() else None)
    assert data["Config"]["Hostname"] == data["Id"][:12]  # Docker's: the short ID, though the kernel's is the host's
    assert engine.out("exec", "knobs", "hostname").strip() == os.uname().nodename
    assert engine.out("exec", "knobs", "readlink", "/proc/1/ns/uts") == os.readlink("/proc/self/ns/uts") + "\n"
    if _swappiness_knob():
        assert _cgroup_file(engine, "knobs", "memory", "memory.swappiness") == "17"
    probe = f"mknod /tmp/spare c {SPARE_MAJOR} 0 && head -c1 /tmp/spare"
    allowed = engine.cli("exec", "knobs", "sh", "-c", probe)
    assert allowed.returncode != 0 and b"No such device or address" in allowed.stderr  # allowed: no driver
    denied = engine.cli("run", "--rm", "--network", "none", "busybox", "sh", "-c", probe)
    assert denied.returncode != 0 and b"Operation not permitted" in denied.stderr  # Docker's default list
    private = engine.out("run", "--rm", "--network", "none", "busybox", "hostname").strip()
    assert private != os.uname().nodename and len(private) == 12
    assert engine.inspect(engine.out("create", "busybox", "true").strip())["HostConfig"]["MemorySwappiness"] is None

    _fails(engine, "run", "--uts", "host", "-h", "named", "busybox", "true",
           message="conflicting options: hostname and the UTS mode")
    _fails(engine, "run", "--uts", "bogus", "busybox", "true", message="--uts: invalid UTS mode")
    _fails(engine, "run", "--memory-swappiness", "101", "busybox", "true",
           message="invalid value: 101. Valid memory swappiness range is 0-100")
    _fails(engine, "run", "--device-cgroup-rule", "c 1:3 x", "busybox", "true",
           message="invalid device cgroup format 'c 1:3 x'")


def test_swappiness_is_discarded_with_dockers_warning_where_cgroups_lack_it(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.container.create import create, create_warnings
    from engine.container.options import RunOptions
    from engine.sandbox import cgroups
    from engine.sandbox.cgroups import memory_swappiness_supported

    monkeypatch.setattr(cgroups, "memory_swappiness_supported", lambda: False)  # as on a cgroup v2 host
    opts = RunOptions(image="busybox", command=["true"], network="none", memory_swappiness=30)
    record = create(engine.config, opts)
    assert record.host_config["MemorySwappiness"] is None  # dropped, as Docker's verifyPlatformContainerResources
    assert create_warnings(opts) == [cgroups.SWAPPINESS_DISCARDED]
    assert create_warnings(RunOptions(image="busybox", memory_swappiness=-1)) == []
    monkeypatch.undo()

    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("memory\n")
    assert not memory_swappiness_supported(v2)  # cgroup v2: no memory.swappiness anywhere
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "memory.swappiness").write_text("60\n")
    assert memory_swappiness_supported(v1)


# ------------------------------------------------------------------------------------------ log driver none


def test_log_driver_none_keeps_nothing_and_logs_refuses(engine: Engine) -> None:
    assert engine.out("run", "--rm", "--network", "none", "--log-driver", "none", "busybox", "echo", "streamed") == "streamed\n"
    cid = engine.out("run", "-d", "--network", "none", "--log-driver", "none", "busybox", "sh", "-c", "echo kept?").strip()
    assert engine.out("wait", cid) == "0\n"
    data = engine.inspect(cid)
    assert data["HostConfig"]["LogConfig"] == {"Type": "none", "Config": {}} and data["LogPath"] == ""
    assert not Path(engine.config.root, "containers", cid, f"{cid}-json.log").exists()
    refused = engine.cli("logs", cid)
    assert refused.returncode == 1 and refused.stdout == b""
    assert refused.stderr.decode().strip() == "Error: configured logging driver does not support reading"
    _fails(engine, "run", "--log-driver", "syslog", "busybox", "true", message="log driver 'syslog' is not supported")
    # the docker CLI's parseLoggingOpts refuses options for the none driver before it asks the engine
    _fails(engine, "run", "--log-driver", "none", "--log-opt", "tag=any", "busybox", "true",
           message="invalid logging opts for driver none")


# ------------------------------------------------------------------------------------------ bind propagation


@pytest.fixture(name="shared_dir")
def shared_dir_fixture(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs mounted shared on the host (nothing else here is: `/` is private), removed after with
    whatever was mounted below it."""
    point = tmp_path / "shared"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "dockui-test", str(point)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(point)], check=True)
        yield point
    finally:
        subprocess.run(["umount", "-R", "-l", str(point)], check=False)
        with open("/proc/self/mountinfo") as f:
            left = [line.split()[4] for line in f if line.split()[4].startswith(str(tmp_path))]
        assert left == [], f"mounts left behind: {left}"


def test_bind_propagation_shared_and_slave(engine: Engine, shared_dir: Path, tmp_path: Path) -> None:
    # rshared: what the container mounts below its bind appears on the host (Docker's and runc's way).
    out = engine.out("run", "--name", "sharer", "--network", "none", "--privileged", "-v", f"{shared_dir}:/mnt:rshared",
                     "busybox", "sh", "-c", "mkdir /mnt/sub && mount -t tmpfs inner /mnt/sub && echo from-container > "
                     "/mnt/sub/f && cat /proc/self/mountinfo | grep ' /mnt ' | grep -o 'shared:[0-9]*'")
    assert out.startswith("shared:")
    assert os.path.ismount(shared_dir / "sub") and (shared_dir / "sub" / "f").read_text() == "from-container\n"
    subprocess.run(["umount", str(shared_dir / "sub")], check=True)
    data = engine.inspect("sharer")
    assert data["HostConfig"]["Binds"] == [f"{shared_dir}:/mnt:rshared"]
    assert [(m["Destination"], m["Propagation"]) for m in data["Mounts"]] == [("/mnt", "rshared")]

    # rslave: the host's later mounts below the source reach the container; rprivate (the default)
    # keeps them out; neither sends the container's own mounts to the host.
    engine.out("run", "-d", "--name", "slave", "--network", "none", "--privileged",
               "--mount", f"type=bind,src={shared_dir},dst=/mnt,bind-propagation=rslave", "busybox", "sleep", "300")
    engine.out("run", "-d", "--name", "private", "--network", "none", "-v", f"{shared_dir}:/mnt", "busybox", "sleep", "300")
    (shared_dir / "late").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "late", str(shared_dir / "late")], check=True)
    try:
        (shared_dir / "late" / "f").write_text("from-host\n")
        assert engine.out("exec", "slave", "cat", "/mnt/late/f") == "from-host\n"
        assert engine.out("exec", "private", "ls", "-A", "/mnt/late") == ""
        engine.out("exec", "slave", "sh", "-c", "mkdir -p /mnt/back && mount -t tmpfs back /mnt/back")
        assert not os.path.ismount(shared_dir / "back")
    finally:
        subprocess.run(["umount", "-l", str(shared_dir / "late")], check=False)
    mounts = {m["Destination"]: m["Propagation"] for m in engine.inspect("slave")["Mounts"]}
    assert mounts == {"/mnt": "rslave"}
    assert {m["Destination"]: m["Propagation"] for m in engine.inspect("private")["Mounts"]} == {"/mnt": "rprivate"}
    engine.out("rm", "-f", "slave", "private", "sharer")

    private_dir = tmp_path / "private"
    private_dir.mkdir()
    _fails(engine, "run", "-v", f"{private_dir}:/mnt:rshared", "busybox", "true",
           message=f"path {private_dir} is mounted on / but it is not a shared mount")
    _fails(engine, "run", "--mount", f"type=bind,src={private_dir},dst=/mnt,bind-propagation=slave", "busybox", "true",
           message=f"path {private_dir} is mounted on / but it is not a shared or slave mount")
    _fails(engine, "run", "-v", f"{shared_dir}:/mnt:rshared,rslave", "busybox", "true", message="invalid mode: rshared,rslave")
    _fails(engine, "run", "-v", "named:/mnt:rshared", "busybox", "true",
           message='invalid mount config for type "volume": field BindOptions must not be specified')
    _fails(engine, "run", "--mount", f"type=bind,src={shared_dir},dst=/mnt,bind-propagation=bogus", "busybox", "true",
           message='invalid mount config for type "bind": invalid propagation mode: bogus')
    assert engine.out("volume", "ls", "-q") == ""


def test_start_checks_the_source_mount_again(engine: Engine, shared_dir: Path) -> None:
    """Created while the source was shared, started after it no longer is: the start fails in
    Docker's words and the container runs nothing."""
    cid = engine.out("create", "--network", "none", "-v", f"{shared_dir}:/mnt:rshared", "busybox", "true").strip()
    subprocess.run(["mount", "--make-private", str(shared_dir)], check=True)
    started = engine.cli("start", cid)
    assert started.returncode != 0
    assert f"path {shared_dir} is mounted on {shared_dir} but it is not a shared mount" in started.stderr.decode()
    assert engine.inspect(cid)["State"]["Status"] in ("created", "exited")


# ------------------------------------------------------------------------------------------ Config.Env


def test_env_key_without_value_is_kept_in_config_and_given_to_nobody(engine: Engine) -> None:
    env = dict(engine.env, DOCKUI_FROM_CLIENT="client-value")
    env.pop("DOCKUI_UNSET_X", None)
    argv = engine.argv("run", "--name", "envs", "--network", "none", "-e", "DOCKUI_UNSET_X", "-e", "DOCKUI_FROM_CLIENT",
                       "-e", "PLAIN=1", "busybox", "env")
    out = subprocess.run(argv, env=env, capture_output=True, check=True).stdout.decode().splitlines()
    assert "PLAIN=1" in out and "DOCKUI_FROM_CLIENT=client-value" in out  # resolved by the client, as docker's CLI
    assert not any(line.startswith("DOCKUI_UNSET_X") for line in out)
    config_env = engine.inspect("envs")["Config"]["Env"]
    assert "DOCKUI_UNSET_X" in config_env and "DOCKUI_FROM_CLIENT=client-value" in config_env


# ------------------------------------------------------------------------------------------ the Engine API


def test_engine_api_fields(service: Service, shared_dir: Path, tmp_path: Path) -> None:
    import docker

    client = service.client()
    api = client.api
    try:
        # docker-py's own integration cases (api_container_test), then the kernel's side of them.
        rule = f"c {SPARE_MAJOR}:0 rwm"
        cid = api.create_container("busybox", ["sh", "-c", f"hostname; env; mknod /tmp/n c {SPARE_MAJOR} 0; "
                                               "head -c1 /tmp/n 2>&1; echo done"],
                                   environment={"Foo": None, "Other": "one", "Blank": "", "DOCKUI_CONFIG": None},
                                   host_config=api.create_host_config(
                                       uts_mode="host", mem_swappiness=40, device_cgroup_rules=[rule],
                                       network_mode="none",
                                       binds={str(shared_dir): {"bind": "/mnt", "ro": False, "propagation": "rshared"}}))["Id"]
        data = api.inspect_container(cid)
        hc = data["HostConfig"]
        assert (hc["UTSMode"], hc["DeviceCgroupRules"]) == ("host", [rule])
        assert hc["MemorySwappiness"] == (40 if _swappiness_knob() else None)
        assert {"Foo", "Other=one", "Blank=", "DOCKUI_CONFIG"} <= set(data["Config"]["Env"])
        assert [(m["Destination"], m["Propagation"]) for m in data["Mounts"]] == [("/mnt", "rshared")]
        api.start(cid)
        assert api.wait(cid)["StatusCode"] == 0
        out = api.logs(cid).decode()
        lines = out.splitlines()
        assert lines[0] == os.uname().nodename and "Other=one" in lines and "Blank=" in lines
        assert not any(line.startswith(("Foo", "DOCKUI_CONFIG")) for line in lines)  # never the service's own
        assert "No such device or address" in out and lines[-1] == "done"
        api.remove_container(cid)

        # log driver none: the run's output was streamed to nobody, so docker-py's run returns None
        assert client.containers.run("busybox", "echo hello", network_mode="none", log_config={"type": "none"},
                                     remove=True) is None
        quiet = client.containers.run("busybox", "echo hello", network_mode="none", detach=True,
                                      log_config={"type": "none"})
        quiet.wait()
        with pytest.raises(docker.errors.APIError) as refused:
            quiet.logs()
        assert refused.value.status_code == 501
        assert refused.value.explanation == "configured logging driver does not support reading"
        quiet.remove()
    finally:
        client.close()

    # the docker CLI: attach streams, logs refuses; --mount's propagation; its bad values refused
    assert service.docker_out("run", "--rm", "--network", "none", "--log-driver", "none", "busybox", "echo", "hi") == "hi\n"
    name = service.docker_out("run", "-d", "--network", "none", "--log-driver", "none",
                              "--mount", f"type=bind,src={shared_dir},dst=/mnt,bind-propagation=rslave",
                              "busybox", "true").strip()
    logs = service.docker("logs", name)
    assert logs.returncode == 1 and "configured logging driver does not support reading" in logs.stderr.decode()
    inspected = service.docker_out("inspect", "-f", "{{range .Mounts}}{{.Propagation}}{{end}} {{.LogPath}}|", name)
    assert inspected == "rslave |\n"
    service.docker_out("rm", "-f", name)
    private_dir = tmp_path / "private"
    private_dir.mkdir()
    bad = [({"UTSMode": "bogus"}, "invalid UTS mode: bogus"),
           ({"MemorySwappiness": 101}, "Invalid value: 101, valid memory swappiness range is 0-100"),
           ({"DeviceCgroupRules": ["c 1:3"]}, "invalid device cgroup format 'c 1:3'"),
           ({"Binds": [f"{private_dir}:/mnt:rslave"]}, f"path {private_dir} is mounted on / but it is not a shared or"),
           ({"Mounts": [{"Type": "bind", "Source": str(shared_dir), "Target": "/m", "BindOptions": {"Propagation": "up"}}]},
            "invalid propagation mode: up"),
           ({"UTSMode": "host"}, "conflicting options: hostname and the UTS mode")]
    for host, words in bad:
        body = {"Image": "busybox", "HostConfig": host}
        if words.startswith("conflicting"):
            body["Hostname"] = "named"
        reply = service.request("POST", "/v1.43/containers/create", body)
        message = reply.json()["message"]
        assert reply.status == 400 and words in message and "\n" not in message, (host, reply.status, message)
    assert service.docker_out("ps", "-aq") == ""



@pytest.fixture(name="v2_config")
def v2_config_fixture(tmp_path: Path) -> Iterator[object]:
    from tests.cgroup_support import throwaway_cgroup_config
    from tests.test_cgroups_v2_real import V2_ROOT

    if V2_ROOT is None:
        pytest.skip("no cgroup2 hierarchy mounted")
    yield from throwaway_cgroup_config(tmp_path, V2_ROOT)


def test_device_cgroup_rule_in_the_cgroup_v2_device_program(v2_config: object, tmp_path: Path) -> None:
    """The v2 side of --device-cgroup-rule, on this host's real cgroup2 tree: the rule reaches the
    eBPF program built from the same allow-list (hostflags, as the monitor's launch calls it)."""
    import stat
    import sys

    from engine.container import hostflags
    from engine.sandbox.cgroups import Resources, open_cgroup
    from tests.cgroup_support import spawn_in
    from tests.test_cgroups_v2_real import V2_ROOT

    node = tmp_path / "spare"
    os.mknod(node, stat.S_IFCHR | 0o600, os.makedev(SPARE_MAJOR, 0))
    probe = f"import os\ntry:\n    os.open({str(node)!r}, os.O_RDONLY)\nexcept OSError as e:\n    print(e.strerror)"
    seen = {}
    for name, host_config in (("ruled", {"DeviceCgroupRules": [f"c {SPARE_MAJOR}:0 r"]}), ("plain", {})):
        group = open_cgroup(v2_config, name, fs_root=V2_ROOT)  # type: ignore[arg-type]
        allow = hostflags.device_allow(hostflags.sandbox_flags(v2_config, host_config))  # type: ignore[arg-type]
        group.create(Resources(), devices_allow=allow)
        proc = spawn_in(group, [sys.executable, "-c", probe], stdout=subprocess.PIPE)
        seen[name] = proc.communicate(timeout=20)[0].decode().strip()
        group.destroy()
    assert seen == {"ruled": "No such device or address", "plain": "Operation not permitted"}
