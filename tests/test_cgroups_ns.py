"""`--cgroupns host|private` on real containers (the kernel's /proc/self/cgroup and /sys/fs/cgroup).

Docker's rule for the default (moby daemon_unix.go): private on a pure cgroup v2 host, host on a v1
or hybrid one (this CI host), a privileged container on v1 always host, the config file's
`default_cgroupns_mode` (dockerd's --default-cgroupns-mode) replacing the default. In either mode a
container sees only its own groups under /sys/fs/cgroup, read-only, and cannot write the host's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.container import state
from engine.sandbox.cgroups import cgroup_version
from tests.service_support import Service, service_fixture  # noqa: F401
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401

pytestmark = pytest.mark.root

DEFAULT_MODE = "private" if cgroup_version() == 2 else "host"

# What a container shows of its cgroups, one fact per line (busybox sh; the attempts to write the
# host's cgroups end with what refused them).
VIEW = """
echo "== cgroup"; cat /proc/self/cgroup
echo "== mounts"; grep ' /sys/fs/cgroup' /proc/self/mountinfo | while read -r _ _ _ root point opts _; do echo "$point $root ${opts%%,*}"; done
echo "== dirs"; find /sys/fs/cgroup/ -mindepth 2 -type d | wc -l
echo "== writes"
for dir in /sys/fs/cgroup/*/; do
  echo 1 2>/dev/null > "$dir/cgroup.procs" && echo "wrote $dir"
  mkdir "${dir}escape" 2>/dev/null && echo "made ${dir}escape"
done
mkdir -p /tmp/cg && mount -t cgroup -o pids cgroup /tmp/cg 2>/dev/null && echo "mounted v1"
mount -t cgroup2 cgroup2 /tmp/cg 2>/dev/null && echo "mounted v2"
echo "== end"
"""


def sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("== "):
            current = line[3:]
            out[current] = []
        elif current:
            out[current].append(line)
    return out


def check_view(engine: Engine, ref: str, mode: str) -> dict[str, list[str]]:
    """The container's own view, asserted: every hierarchy at its group, only that, read-only."""
    record = engine.inspect(ref)
    assert record["HostConfig"]["CgroupnsMode"] == mode
    own = f"/{engine.config.cgroup_parent}/{record['Id']}"
    expected = own if mode == "host" else "/"
    view = sections(engine.out("exec", ref, "sh", "-c", VIEW))
    host_view = Path(f"/proc/{record['State']['Pid']}/cgroup").read_text().splitlines()
    # Every hierarchy the host lists for the process is the container's own group...
    assert host_view and all(line.endswith(f":{own}") for line in host_view), host_view
    # ...and the container reads it as Docker's would show it: the full path, or `/`.
    assert view["cgroup"] == [line.rsplit(":", 1)[0] + f":{expected}" for line in host_view]
    assert view["mounts"], "no cgroup mounts in the container"
    for line in view["mounts"]:
        point, root, flags = line.split()
        assert flags == "ro", line
        assert root == (expected if point != "/sys/fs/cgroup" or cgroup_version() == 2 else "/"), line
    assert view["dirs"] == ["0"]  # no group below its own: nobody else's is visible
    assert view["writes"] == [], view["writes"]
    return view


def test_host_private_and_default_modes_of_running_containers(engine: Engine) -> None:
    run = ("run", "-d", "--network", "none")
    engine.out(*run, "--name", "dflt", "--health-cmd", "cat /proc/self/cgroup", "--health-interval", "0.2s",
               "busybox", "sleep", "60")
    engine.out(*run, "--name", "priv", "--cgroupns", "private", "busybox", "sleep", "60")
    engine.out(*run, "--name", "host", "--cgroupns", "host", "busybox", "sleep", "60")
    views = {ref: check_view(engine, ref, mode) for ref, mode in
             (("dflt", DEFAULT_MODE), ("priv", "private"), ("host", "host"))}
    # The container's first process sees what its execs see (they enter its cgroup namespace).
    for ref in ("priv", "host"):
        assert engine.out("exec", ref, "cat", "/proc/1/cgroup").splitlines() == views[ref]["cgroup"]
    # So does the health probe, run by the monitor through the same exec path.
    health = wait_until(lambda: engine.inspect("dflt")["State"]["Health"]["Log"], timeout=15)
    assert health, "no health probe ran"
    assert health[-1]["Output"].splitlines() == views["dflt"]["cgroup"]


def test_config_file_default_flags_and_refusals(engine: Engine, tmp_path: Path) -> None:
    config_file = Path(engine.env["DOCKUI_CONFIG"])
    settings = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**settings, "default_cgroupns_mode": "private"}))
    created = {name: engine.out("create", "--name", name, *flags, "busybox", "true").strip()
               for name, flags in (("cfg", ()), ("flag", ("--cgroupns", "host")), ("priv", ("--privileged",)))}
    modes = {name: engine.inspect(cid)["HostConfig"]["CgroupnsMode"] for name, cid in created.items()}
    # A privileged container on v1 stays in the host's namespace whatever the default (Docker's rule).
    assert modes == {"cfg": "private", "flag": "host", "priv": "private" if cgroup_version() == 2 else "host"}
    bad = engine.cli("run", "--cgroupns", "shared", "busybox", "true")
    assert bad.returncode == 125 and bad.stderr.decode().strip().endswith("--cgroupns: invalid CGROUP mode")
    config_file.write_text(json.dumps({**settings, "default_cgroupns_mode": "none"}))
    broken = engine.cli("ps", "-a")
    message = broken.stderr.decode().strip()
    assert broken.returncode != 0 and "default_cgroupns_mode" in message and "\n" not in message
    config_file.write_text(json.dumps(settings))
    assert len(engine.out("ps", "-aq").split()) == 3  # the refused run created nothing


def test_engine_api_create_body_and_inspect(service: Service) -> None:
    cid = service.docker_out("create", "--cgroupns", "private", "busybox", "true").strip()
    assert service.docker_out("inspect", "-f", "{{.HostConfig.CgroupnsMode}}", cid).strip() == "private"
    out = service.docker_out("run", "--rm", "--network", "none", "busybox", "cat", "/proc/self/cgroup")
    assert out and all(line.split(":", 2)[2] != "/" for line in out.splitlines()) == (DEFAULT_MODE == "host")
    client = service.client()
    try:  # docker-py's `cgroupns` keyword
        printed = client.containers.run("busybox", ["cat", "/proc/self/cgroup"], cgroupns="private", remove=True,
                                        network_mode="none").decode()
    finally:
        client.close()
    assert printed and all(line.endswith(":/") for line in printed.splitlines()), printed
    create = "/v1.43/containers/create"
    reply = service.request("POST", create, {"Image": "busybox", "HostConfig": {"CgroupnsMode": "host"}})
    assert reply.status == 201, reply.body
    assert service.request("GET", f"/v1.43/containers/{reply.json()['Id']}/json").json()["HostConfig"]["CgroupnsMode"] == "host"
    refused = service.request("POST", create, {"Image": "busybox", "HostConfig": {"CgroupnsMode": "shared"}})
    assert refused.status == 400
    message = refused.json()["message"]
    assert "HostConfig.CgroupnsMode" in message and "shared" in message and "\n" not in message
    assert len(service.docker_out("ps", "-aq").split()) == 2


def test_privileged_container_makes_groups_inside_its_own_and_is_still_removed(engine: Engine) -> None:
    """--privileged: /sys/fs/cgroup is writable (Docker's), so it may make groups below its own
    (Docker-in-Docker, systemd do): stop and rm kill what runs there and remove them first."""
    # (v1 cpuset refuses tasks until the new group has cpus and mems: that one stays empty)
    script = ('for d in /sys/fs/cgroup/*/; do mkdir "${d}inner"; done; sleep 60 & '
              'for d in /sys/fs/cgroup/*/; do echo $! 2>/dev/null > "${d}inner/cgroup.procs"; done; wait')
    cid = engine.out("run", "-d", "--network", "none", "--privileged", "busybox", "sh", "-c", script).strip()
    record = engine.inspect(cid)
    paths = state.load(engine.config, cid).cgroup_paths
    inner = [Path(p) / "inner" / "cgroup.procs" for key, p in paths.items() if key != "cpuset"]
    assert wait_until(lambda: all(f.exists() and f.read_text().strip() for f in inner)), "no process in the inner groups"
    assert len(engine.out("top", cid).splitlines()) == 3  # header, sh and the sleep below its group
    engine.out("rm", "-f", cid)
    assert not any(Path(p).exists() for p in paths.values())
    assert record["HostConfig"]["CgroupnsMode"] == DEFAULT_MODE
