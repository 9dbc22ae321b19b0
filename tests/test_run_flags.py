"""run/create flags as Docker has them, against the real kernel: --init, --ulimit, --device,
--group-add, --sysctl, --cidfile, --volumes-from, --expose, --label-file, --memory-reservation,
--oom-kill-disable, --cpu-period/--cpu-quota, -v's ignored options, --ipc, --pid, --mac-address; the same fields
through the Engine API with the docker CLI; and `update`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.service_support import Service, service_fixture  # noqa: F401 - the `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root


def _cgroup_file(engine: Engine, container: str, controller: str, name: str) -> str:
    from engine.sandbox.cgroups import open_cgroup

    cid = engine.inspect(container)["Id"]
    group = open_cgroup(engine.config, cid)
    base = group.paths.get(controller) or group.paths["unified"]
    return (base / name).read_text().strip()


def _fails(engine: Engine, *args: str, message: str) -> None:
    before = engine.out("ps", "-aq")
    result = engine.cli(*args)
    err = result.stderr.decode()
    assert result.returncode == 125 and message in err and len(err.strip().splitlines()) == 1, (args, err)
    assert engine.out("ps", "-aq") == before  # refused: nothing created


def test_process_flags_init_ulimit_device_groups_sysctl(engine: Engine) -> None:
    ps = engine.out("run", "--rm", "--init", "busybox", "ps", "-o", "pid,args").splitlines()
    assert ps[1].split(None, 1) == ["1", "/sbin/docker-init -- ps -o pid,args"]
    # The init forwards a stop's SIGTERM to the command, which sh ignores as PID 1 without it.
    engine.out("run", "-d", "--name", "withinit", "--init", "busybox", "sh", "-c", "trap 'exit 7' TERM; while :; do sleep 1; done")
    engine.out("stop", "-t", "10", "withinit")
    assert engine.inspect("withinit")["State"]["ExitCode"] == 7
    engine.out("rm", "withinit")

    assert engine.out("run", "--rm", "--ulimit", "nofile=100:200", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn") == "100\n200\n"
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    _fails(engine, "run", "--ulimit", f"nofile=10:{hard + 1}", "busybox", "true", message="CAP_SYS_RESOURCE")
    _fails(engine, "run", "--ulimit", "nofile=20:10", "busybox", "true", message="soft limit must be less")
    _fails(engine, "run", "--ulimit", "bogus=1", "busybox", "true", message="invalid ulimit argument")

    # A device outside Docker's default allow-list: the node is made and the cgroup allows it.
    node = "/dev/loop-control"
    if os.path.exists(node):
        out = engine.out("run", "--rm", "--device", f"{node}:/dev/lc", "busybox", "sh", "-c",
                         "stat -c '%t:%T %a' /dev/lc; head -c0 /dev/lc && echo opened")
        st = os.stat(node)
        assert out == f"{os.major(st.st_rdev):x}:{os.minor(st.st_rdev):x} {st.st_mode & 0o777:o}\nopened\n"
        denied = engine.cli("run", "--rm", "busybox", "sh", "-c", "mknod /dev/lc c 10 237 && head -c0 /dev/lc")
        assert denied.returncode != 0 and b"not permitted" in denied.stderr
    _fails(engine, "run", "--device", "/etc/passwd", "busybox", "true", message="not a device node")

    assert engine.out("run", "--rm", "-u", "app", "--group-add", "50", "--group-add", "4321", "busybox",
                      "id", "-G").split() == ["1000", "50", "4321"]

    ttl = Path("/proc/sys/net/ipv4/ip_default_ttl").read_text()
    out = engine.out("run", "--rm", "--sysctl", "net.ipv4.ip_default_ttl=33", "--sysctl", "kernel.shmmni=1234",
                     "busybox", "cat", "/proc/sys/net/ipv4/ip_default_ttl", "/proc/sys/kernel/shmmni")
    assert out == "33\n1234\n"
    assert Path("/proc/sys/net/ipv4/ip_default_ttl").read_text() == ttl  # the host's untouched
    _dockers_network_sysctls(engine)
    _fails(engine, "run", "--sysctl", "kernel.hostname=x", "busybox", "true",  # opts.ValidateSysctl's words
           message="""invalid argument "kernel.hostname=x" for "--sysctl" flag: sysctl 'kernel.hostname=x' is not allowed""")
    _fails(engine, "run", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", "busybox", "true",
           message="not allowed in host network namespace")
    from engine.container.options import check_sysctls
    from engine.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="shared with a container"):  # another's network namespace
        check_sysctls({"net.ipv4.ip_forward": "1"}, "container", "")
    with pytest.raises(InvalidArgument, match="joining another IPC namespace"):
        check_sysctls({"kernel.shmmax": "1"}, "bridge", "container:other")


def _dockers_network_sysctls(engine: Engine) -> None:
    """Docker's defaults in a network namespace of the container's own (moby's TestUnprivilegedPortsAndPing):
    ping sockets for every group and no privileged ports; a --sysctl wins; none on the host's namespace
    (which stays as it was), and inspect's HostConfig.Sysctls shows only what was given."""
    read = ("cat", "/proc/sys/net/ipv4/ping_group_range", "/proc/sys/net/ipv4/ip_unprivileged_port_start")
    assert engine.out("run", "--rm", "--network", "none", "busybox", *read).split() == ["0", "2147483647", "0"]
    given = engine.out("run", "--rm", "--network", "none", "--sysctl", "net.ipv4.ip_unprivileged_port_start=1024",
                       "busybox", *read)
    assert given.split() == ["0", "2147483647", "1024"]
    host = [Path(path).read_text().split() for path in read[1:]]
    assert engine.out("run", "--rm", "--network", "host", "busybox", *read).split() == [*host[0], *host[1]]
    cid = engine.out("create", "--network", "none", "busybox", "true").strip()
    try:
        assert engine.out("inspect", "--format", "{{json .HostConfig.Sysctls}}", cid).strip() in ("null", "{}")
    finally:
        engine.cli("rm", cid)


def test_record_flags_cidfile_volumes_from_expose_labels_resources(engine: Engine, tmp_path: Path) -> None:
    cidfile = tmp_path / "cid"
    labels = tmp_path / "labels"
    labels.write_text("a=1\n# comment\n\nb=2\n")
    host_dir = tmp_path / "h"
    host_dir.mkdir()
    (host_dir / "f").write_text("bound\n")
    cid = engine.out("run", "-d", "--name", "src", "--cidfile", str(cidfile), "--expose", "7000-7001", "--expose", "53/udp",
                     "--label-file", str(labels), "-l", "b=3", "-v", "/data", "-v", f"{host_dir}:/hostdir:ro,z,cached",
                     "-m", "64m", "--memory-reservation", "32m", "--oom-kill-disable",
                     "--cpu-period", "50000", "--cpu-quota", "25000", "busybox", "sleep", "300").strip()
    assert cidfile.read_text() == cid
    data = engine.inspect("src")
    assert set(data["Config"]["ExposedPorts"]) == {"7000/tcp", "7001/tcp", "53/udp"}
    assert data["Config"]["Labels"] == {"a": "1", "b": "3"}
    hc = data["HostConfig"]
    assert (hc["MemoryReservation"], hc["OomKillDisable"], hc["CpuPeriod"], hc["CpuQuota"]) == (32 << 20, True, 50000, 25000)
    assert hc["ContainerIDFile"] == str(cidfile)
    from engine.sandbox.cgroups import cgroup_version

    if cgroup_version() == 1:
        assert _cgroup_file(engine, "src", "memory", "memory.soft_limit_in_bytes") == str(32 << 20)
        assert "oom_kill_disable 1" in _cgroup_file(engine, "src", "memory", "memory.oom_control")
        assert _cgroup_file(engine, "src", "cpu", "cpu.cfs_period_us") == "50000"
        assert _cgroup_file(engine, "src", "cpu", "cpu.cfs_quota_us") == "25000"
    _fails(engine, "run", "--cidfile", str(cidfile), "busybox", "true", message="Container ID file found")
    _fails(engine, "run", "--cpus", "1", "--cpu-quota", "5000", "busybox", "true", message="Conflicting options")
    _fails(engine, "run", "-v", "/x:/y:bogus", "busybox", "true", message="invalid mode")
    _fails(engine, "run", "--mount", "type=bind,src=/tmp,dst=/y,bind-propagation=sideways", "busybox", "true",
           message="invalid propagation mode: sideways")  # refused, never silently ignored

    mac = engine.out("run", "--rm", "--mac-address", "02:42:AC:11:00:99", "busybox", "cat", "/sys/class/net/eth0/address")
    assert mac == "02:42:ac:11:00:99\n"
    _fails(engine, "run", "--mac-address", "01:00:5e:00:00:01", "busybox", "true", message="multicast")
    _fails(engine, "run", "--network", "none", "--mac-address", "02:42:ac:11:00:99", "busybox", "true",
           message="mac-address and the network mode")

    engine.out("exec", "src", "sh", "-c", "echo shared > /data/x")
    out = engine.cli("run", "--name", "user", "--volumes-from", "src:ro", "busybox", "sh", "-c",
                     "cat /data/x /hostdir/f; touch /data/y")
    assert out.stdout == b"shared\nbound\n" and b"Read-only file system" in out.stderr
    engine.out("rm", "-v", "user")  # the volume stays src's: not removed with the user's rm -v
    assert engine.out("exec", "src", "cat", "/data/x") == "shared\n"


def test_ipc_and_pid_modes(engine: Engine) -> None:
    own = os.readlink("/proc/self/ns/ipc")
    engine.out("run", "-d", "--name", "shared", "--ipc", "shareable", "busybox", "sleep", "300")
    engine.out("run", "-d", "--name", "private", "busybox", "sleep", "300")
    target_ipc = engine.out("exec", "shared", "readlink", "/proc/self/ns/ipc").strip()
    target_pid = engine.out("exec", "shared", "readlink", "/proc/self/ns/pid").strip()
    out = engine.out("run", "--rm", "--ipc", "container:shared", "--pid", "container:shared", "busybox", "sh", "-c",
                     "readlink /proc/self/ns/ipc; readlink /proc/self/ns/pid; ps -o pid,args | grep '^ *1 '")
    assert out.split() == [target_ipc, target_pid, "1", "sleep", "300"]  # its PID 1 is the joined one's
    assert engine.out("run", "--rm", "--ipc", "host", "busybox", "readlink", "/proc/self/ns/ipc").strip() == own
    assert engine.out("run", "--rm", "busybox", "readlink", "/proc/self/ns/ipc").strip() not in (own, target_ipc)
    host_pids = engine.out("run", "--rm", "--pid", "host", "busybox", "ps", "-o", "pid")
    assert str(os.getpid()) in host_pids.split()
    joined = engine.cli("run", "--rm", "--ipc", "container:private", "busybox", "true")
    assert joined.returncode == 125 and b"non-shareable IPC" in joined.stderr
    _fails(engine, "run", "--ipc", "bogus", "busybox", "true", message="invalid --ipc mode")
    _fails(engine, "run", "--pid", "container:nosuch", "busybox", "true", message="No such container")
    engine.out("rm", "-f", "shared", "private")


def test_engine_api_maps_the_same_fields(service: Service) -> None:
    # docker-py sends Config.MacAddress (the docker CLI wants API 1.44's per-network field).
    client = service.client()
    try:
        mac = client.containers.run("busybox", ["cat", "/sys/class/net/eth0/address"], mac_address="02:42:ac:11:00:77",
                                    remove=True)
    finally:
        client.close()
    assert mac == b"02:42:ac:11:00:77\n"
    out = service.docker_out("run", "--rm", "--init", "--ulimit", "nofile=64:128", "--group-add", "50",
                             "--sysctl", "kernel.shmmni=999", "--expose", "9000", "busybox", "sh", "-c",
                             "cat /proc/1/cmdline | tr '\\0' ' '; echo; ulimit -n; id -G; cat /proc/sys/kernel/shmmni")
    init, nofile, groups, shmmni = out.splitlines()
    assert init.startswith("/sbin/docker-init -- sh -c ")
    assert (nofile, groups.split(), shmmni) == ("64", ["0", "50"], "999")
    cid = service.docker_out("create", "--memory-reservation", "16m", "--cpu-period", "20000", "--cpu-quota", "10000",
                             "--ipc", "shareable", "--expose", "9000", "busybox", "true").strip()
    hc = json.loads(service.docker_out("inspect", cid))[0]["HostConfig"]
    assert (hc["MemoryReservation"], hc["CpuPeriod"], hc["CpuQuota"], hc["IpcMode"]) == (16 << 20, 20000, 10000, "shareable")
    service.docker_out("rm", cid)


def test_update_limits_live_and_restart_policy(engine: Engine) -> None:
    import signal

    from tests.test_lifecycle_support import wait_until

    engine.out("run", "-d", "--name", "upd", "-m", "64m", "busybox", "sleep", "300")
    assert engine.out("update", "-m", "128m", "--memory-swap", "256m", "--cpus", "0.5", "--pids-limit", "50",
                      "-c", "512", "--restart", "always", "upd") == "upd\n"
    hc = engine.inspect("upd")["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["PidsLimit"], hc["CpuShares"]) == (
        128 << 20, 256 << 20, 500_000_000, 50, 512)
    assert hc["RestartPolicy"] == {"Name": "always", "MaximumRetryCount": 0}
    from engine.sandbox.cgroups import cgroup_version

    if cgroup_version() == 1:  # written into the running container's cgroup
        assert _cgroup_file(engine, "upd", "memory", "memory.limit_in_bytes") == str(128 << 20)
        assert _cgroup_file(engine, "upd", "memory", "memory.memsw.limit_in_bytes") == str(256 << 20)
        assert _cgroup_file(engine, "upd", "cpu", "cpu.cfs_quota_us") == "50000"
        assert _cgroup_file(engine, "upd", "pids", "pids.max") == "50"
    # The container's own view: its pids limit stops a 51st process.
    forks = engine.cli("exec", "upd", "sh", "-c", "for i in $(seq 60); do sleep 5 & done; wait")
    assert b"can't fork" in forks.stderr, forks.stderr
    # The new policy is the monitor's: a killed process is restarted.
    os.kill(engine.inspect("upd")["State"]["Pid"], signal.SIGKILL)
    assert wait_until(lambda: engine.inspect("upd")["RestartCount"] == 1 and engine.inspect("upd")["State"]["Running"], 20)
    if cgroup_version() == 1:  # the new cgroup is made from the record: the updated limits stay
        assert _cgroup_file(engine, "upd", "memory", "memory.limit_in_bytes") == str(128 << 20)
    # Errors: one line, nothing changed.
    for args, message in ((("-m", "512m", "upd"), "smaller than already set memoryswap"),
                          (("-m", "4m", "upd"), "Minimum memory limit"),
                          (("upd",), "one or more flags"),
                          (("--cpus", "1", "--cpu-quota", "5000", "upd"), "Conflicting options")):
        result = engine.cli("update", *args)
        assert result.returncode != 0 and message in result.stderr.decode(), (args, result.stderr)
    assert engine.inspect("upd")["HostConfig"]["Memory"] == 128 << 20
    assert engine.cli("update", "-m", "100m", "nosuch").returncode == 1
    engine.out("rm", "-f", "upd")
    engine.out("create", "--name", "stopped", "--rm", "busybox", "true")
    refused = engine.cli("update", "--restart", "always", "stopped")
    assert refused.returncode == 1 and b"AutoRemove" in refused.stderr
    engine.out("update", "--pids-limit", "20", "stopped")  # a stopped container: the record only
    assert engine.inspect("stopped")["HostConfig"]["PidsLimit"] == 20
    engine.out("rm", "stopped")


def test_update_through_the_engine_api(service: Service) -> None:
    service.docker_out("run", "-d", "--name", "apiu", "busybox", "sleep", "300")
    assert service.docker_out("update", "--memory", "96m", "--memory-swap", "192m", "--restart", "on-failure:2",
                              "apiu").strip() == "apiu"
    hc = json.loads(service.docker_out("inspect", "apiu"))[0]["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["RestartPolicy"]) == (96 << 20, 192 << 20,
                                                                    {"Name": "on-failure", "MaximumRetryCount": 2})
    from engine.sandbox.cgroups import Cgroup, cgroup_version

    if cgroup_version() == 1:
        record_paths = json.loads((service.engine.config.containers_dir / hc_id(service, "apiu") / "config.v2.json")
                                  .read_text())["Dockui"]["CgroupPaths"]
        memory = Cgroup.from_paths(record_paths).paths["memory"]
        assert (memory / "memory.limit_in_bytes").read_text().strip() == str(96 << 20)
    bad = service.docker("update", "--kernel-memory", "10m", "apiu")
    assert bad.returncode != 0 and b"cannot be updated" in bad.stderr
    service.docker_out("rm", "-f", "apiu")


def hc_id(service: Service, name: str) -> str:
    return json.loads(service.docker_out("inspect", name))[0]["Id"]
