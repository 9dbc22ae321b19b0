"""End to end through `dockui`: run with links and published ports, the network verbs, and the
clean-up after stop, rm and a SIGKILLed monitor. Real images (busybox imported), real kernel."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.network import endpoints as network
from engine.network import ipam, portmap
from tests.test_network import free_port, free_subnet, links_on_host

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.root


@dataclass
class Cli:
    config: EngineConfig
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "tui.launcher", "--root", str(self.config.root), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env, cwd=REPO)

    def ok(self, *args: str) -> str:
        proc = self.run(*args)
        assert proc.returncode == 0, f"dockui {' '.join(args)} -> {proc.returncode}: {proc.stderr}"
        return proc.stdout

    def inspect(self, name: str) -> dict:
        return json.loads(self.ok("inspect", name))[0]


@pytest.fixture
def cli(engine_config: EngineConfig, busybox_imported, tmp_path: Path) -> Iterator[Cli]:  # noqa: ANN001, ARG001
    suffix = secrets.token_hex(2)
    subnet = free_subnet()
    engine_config.bridge_name = f"dkn{suffix}"
    engine_config.bridge_ip = f"{subnet.network_address + 1}/{subnet.prefixlen}"
    engine_config.cgroup_parent = f"dockui-net-{suffix}"
    config_file = tmp_path / "dockui.json"
    config_file.write_text(json.dumps({k: getattr(engine_config, k) for k in ("bridge_name", "bridge_ip", "cgroup_parent")}))
    runner = Cli(engine_config, dict(os.environ, DOCKUI_CONFIG=str(config_file), PYTHONPATH=str(REPO)))
    try:
        yield runner
    finally:
        ids = runner.run("ps", "-aq").stdout.split()
        if ids:
            runner.run("rm", "-f", *ids)
        network.reconcile(engine_config, set())
        network.remove_bridges(engine_config)
        for name in [engine_config.bridge_name] + [n.bridge for n in network.list_networks(engine_config)]:
            subprocess.run(["ip", "link", "del", name], capture_output=True)
        subprocess.run(["nft", "delete", "table", "ip", portmap.table_name(engine_config)], capture_output=True)
        try:
            from engine.sandbox.cgroups import remove_parent

            remove_parent(engine_config)
        except Exception:  # noqa: BLE001 - best effort
            pass


def test_run_ping_by_ip_and_by_link_alias_with_docker_link_env(cli: Cli) -> None:
    cli.ok("run", "-d", "--name", "db", "-e", "ROLE=primary", "busybox", "sleep", "60")
    db = cli.inspect("db")
    ip = db["NetworkSettings"]["IPAddress"]
    assert ipam.IPv4Address(ip) in ipam.IPv4Network(cli.config.bridge_ip, strict=False)
    assert db["NetworkSettings"]["MacAddress"] == ipam.mac_for(ipam.IPv4Address(ip))
    out = cli.ok(
        "run", "--rm", "--name", "client", "--link", "db:database", "busybox", "sh", "-c",
        f"ping -c 1 -W 3 {ip} >/dev/null && ping -c 1 -W 3 database && grep database /etc/hosts && env | grep ^DATABASE_ | sort",
    )
    assert f"PING database ({ip})" in out and "1 packets received" in out
    assert f"{ip}\tdatabase {db['Config']['Hostname']} db" in out
    env_lines = [line for line in out.splitlines() if line.startswith("DATABASE_")]
    assert env_lines == ["DATABASE_ENV_ROLE=primary", "DATABASE_NAME=/client/database"]
    assert not any(line.startswith("DATABASE_ENV_PATH") for line in out.splitlines())


def test_publish_reaches_httpd_conflict_refused_and_stop_rm_clean_up(cli: Cli) -> None:
    port = free_port()
    cli.ok("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
    web = cli.inspect("web")
    veth = web["NetworkSettings"]["HostVeth"]
    body = b""
    for _ in range(100):
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/hostname", timeout=2).read()
            break
        except OSError:
            time.sleep(0.05)
    assert body.decode().strip() == web["Config"]["Hostname"]
    assert cli.ok("port", "web").strip() == f"80/tcp -> 127.0.0.1:{port}"

    conflict = cli.run("run", "--name", "web2", "-p", f"127.0.0.1:{port}:80", "busybox", "echo", "started")
    assert conflict.returncode == 125
    assert f"{port}/tcp failed: port is already allocated" in conflict.stderr
    assert "started" not in conflict.stdout

    cli.ok("stop", "-t", "1", "web")
    # the container's namespace died with it; the kernel deletes the veth pair with the namespace
    for _ in range(100):
        if veth not in links_on_host():
            break
        time.sleep(0.05)
    assert veth not in links_on_host()
    assert portmap.list_rule_owners(cli.config) == {}
    # a stopped container holds no published port, as Docker shows it (inspect, ps -a, port)
    assert cli.ok("port", "web") == "" and cli.ok("ps", "-a", "--format", "{{.Ports}}", "-f", "name=^web$") == "\n"
    assert cli.inspect("web")["NetworkSettings"]["Ports"] == {}
    net = network.get_network(cli.config, "bridge")
    assert web["NetworkSettings"]["IPAddress"] in ipam.in_use(cli.config, net.pool)  # kept until rm
    cli.ok("rm", "web")
    assert web["NetworkSettings"]["IPAddress"] not in ipam.in_use(cli.config, net.pool)


def test_sigkilled_monitor_then_next_command_cleans_the_network(cli: Cli) -> None:
    port = free_port()
    cli.ok("run", "-d", "--name", "victim", "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "60")
    from engine.container import state

    monitor_pid = state.load(cli.config, cli.inspect("victim")["Id"]).monitor_pid
    pid = cli.inspect("victim")["State"]["Pid"]
    assert monitor_pid > 0 and pid > 0
    veth = cli.inspect("victim")["NetworkSettings"]["HostVeth"]
    assert veth in links_on_host() and portmap.list_rule_owners(cli.config)
    os.kill(monitor_pid, signal.SIGKILL)  # the engine's watcher dies first: nobody detaches
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.02)
    time.sleep(0.2)
    assert portmap.list_rule_owners(cli.config)  # nobody cleaned up yet
    cli.ok("ps", "-a")  # any command reconciles
    assert veth not in links_on_host()
    assert portmap.list_rule_owners(cli.config) == {}


def test_network_verbs(cli: Cli) -> None:
    subnet = free_subnet(prefix=28)
    net_id = cli.ok("network", "create", "--subnet", str(subnet), "dkapp").strip()
    assert len(net_id) == 64
    assert cli.run("network", "create", "dkapp").returncode == 1
    ls = cli.ok("network", "ls").splitlines()
    assert ls[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert [line.split()[1] for line in ls[1:]] == ["bridge", "dkapp", "host", "none"]  # by name (network/list.go)
    cli.ok("run", "-d", "--name", "a1", "--network", "dkapp", "busybox", "sleep", "60")
    out = cli.ok("run", "--rm", "--name", "a2", "--network", "dkapp", "busybox", "ping", "-c", "1", "-W", "3", "a1")
    assert "1 packets received" in out
    info = json.loads(cli.ok("network", "inspect", "dkapp"))[0]
    assert info["Id"] == net_id and info["IPAM"]["Config"][0]["Subnet"] == str(subnet)
    assert [c["Name"] for c in info["Containers"].values()] == ["a1"]
    assert [p["container_name"] for p in info["Topology"]["ports"]] == ["a1"]
    assert cli.run("network", "rm", "dkapp").returncode == 1
    cli.ok("run", "-d", "--name", "b1", "busybox", "sleep", "60")
    cli.ok("network", "connect", "dkapp", "b1")
    assert "1 packets received" in cli.ok("exec", "b1", "ping", "-c", "1", "-W", "3", info["Containers"][next(iter(info["Containers"]))]["IPv4Address"].split("/")[0])
    cli.ok("network", "disconnect", "dkapp", "b1")
    cli.ok("rm", "-f", "a1", "b1")
    assert cli.ok("network", "prune", "-f").splitlines() == ["Deleted Networks:", "dkapp"]
    assert cli.run("network", "inspect", "dkapp").returncode == 1


def test_internal_network_gives_no_default_route(cli: Cli) -> None:
    """Docker programs no gateway for an --internal network: only its own subnet is reachable."""
    subnet = free_subnet(prefix=28)
    cli.ok("network", "create", "--internal", "--subnet", str(subnet), "dkinternal")
    try:
        assert json.loads(cli.ok("network", "inspect", "dkinternal"))[0]["Internal"] is True
        cli.ok("run", "-d", "--name", "i1", "--network", "dkinternal", "busybox", "sleep", "60")
        routes = cli.ok("run", "--rm", "--name", "i2", "--network", "dkinternal", "busybox", "ip", "route")
        assert "default" not in routes and str(subnet) in routes
        out = cli.ok("run", "--rm", "--network", "dkinternal", "busybox", "ping", "-c", "1", "-W", "3", "i1")
        assert "1 packets received" in out  # peers on the network still reach each other
        assert "default via" in cli.ok("run", "--rm", "busybox", "ip", "route")  # the default bridge does route
    finally:
        cli.run("rm", "-f", "i1")
        cli.ok("network", "rm", "dkinternal")


def test_connect_before_the_first_start_is_joined_by_cli_start(cli: Cli) -> None:
    """Docker allows `network connect` of a created container; `dockui start` (not only the Engine
    API's start) joins that network, so the container is reachable there."""
    subnet = free_subnet(prefix=28)
    cli.ok("network", "create", "--subnet", str(subnet), "dkearly")
    try:
        cli.ok("create", "--name", "early", "busybox", "sleep", "60")
        cli.ok("network", "connect", "--alias", "soon", "dkearly", "early")
        cli.ok("start", "early")
        networks = json.loads(cli.ok("inspect", "early"))[0]["NetworkSettings"]["Networks"]
        assert set(networks) == {"bridge", "dkearly"} and networks["dkearly"]["IPAddress"]
        assert "eth1" in cli.ok("exec", "early", "ls", "/sys/class/net").split()
        out = cli.ok("run", "--rm", "--network", "dkearly", "busybox", "ping", "-c", "1", "-W", "3", "soon")
        assert "1 packets received" in out
    finally:
        cli.run("rm", "-f", "early")
        cli.ok("network", "rm", "dkearly")
