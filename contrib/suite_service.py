"""The dockui engine that contrib's outside test suites (dockerpy_suite, compose_suite, moby_suite)
run against: a fresh state root, its Engine API service on a private socket, and what is left of
it after a run.

Invariant: a suite's engine is its own (a fresh root under the run's work directory, a cgroup
parent and bridge named for the run), so nothing on the host is touched, and after
`clean_engine`, `stop_service` and `teardown_root` nothing of it remains: no container, network,
volume, bridge, cgroup or file.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class SuiteRoot:
    work: Path  # the run's directory: the engine root, the socket, the service's log
    env: dict[str, str]  # the service's environment (DOCKUI_CONFIG: this run's config file)
    host: str  # DOCKER_HOST for the suite


def fresh_root(name: str, bridge_prefix: str) -> SuiteRoot:
    """A work directory and a config naming a cgroup parent (`dockui-NAME-XXXXXX`) and a bridge
    (`BRIDGE_PREFIX` + 6 hex digits) of this run's own. DOCKUI_CONFIG is set in this process too,
    for the engine calls the runner makes itself (importing images, teardown_root)."""
    work = Path(tempfile.mkdtemp(prefix=f"dk{name}-"))
    suffix = secrets.token_hex(3)
    config_file = work / "dockui-config.json"
    # log_max_size "": no daemon-wide log cap, as a stock Docker daemon (inspect shows the LogConfig asked for)
    config_file.write_text(json.dumps({"cgroup_parent": f"dockui-{name}-{suffix}",
                                       "bridge_name": f"{bridge_prefix}{suffix}", "log_max_size": ""}))
    os.environ["DOCKUI_CONFIG"] = str(config_file)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return SuiteRoot(work, env, f"unix://{work / 'api.sock'}")


def start_service(work: Path, env: dict[str, str]) -> subprocess.Popen:
    """`dockui system service` on `work`/api.sock with root `work`/root, once its socket is there."""
    socket_path = work / "api.sock"
    log = open(work / "service.log", "ab")  # noqa: SIM115 - closed once the child has it
    service = [sys.executable, "-m", "tui.launcher", "--root", str(work / "root"), "system", "service",
               "-H", f"unix://{socket_path}"]
    # A mount namespace of its own whose / is a shared mount, as systemd makes it on a Docker host
    # (rshared binds need it, Docker's rule); the host's mounts are left as they are.
    # unshare and sh exec: the service keeps the pid the suite signals.
    shared_root = ["unshare", "--mount", "--", "sh", "-c", 'mount --make-rshared / && exec "$@"', "sh"]
    process = subprocess.Popen([*shared_root, *service], env=env, cwd=REPO, stdout=log, stderr=log,
                               start_new_session=True)
    log.close()
    deadline = time.monotonic() + 30
    while not socket_path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the service did not start:\n{(work / 'service.log').read_text()}")
        time.sleep(0.1)
    return process


def clean_engine(host: str, version: str) -> None:
    """What a suite's own teardowns missed: containers, then networks and volumes."""
    import docker

    client = docker.APIClient(base_url=host, version=version, timeout=120)
    try:
        for c in client.containers(all=True):
            client.remove_container(c["Id"], force=True, v=True)
        for n in client.networks():
            if n["Name"] not in ("bridge", "host", "none"):
                client.remove_network(n["Id"])
        for v in client.volumes().get("Volumes") or []:
            client.remove_volume(v["Name"], force=True)
    finally:
        client.close()


def stop_service(service: subprocess.Popen) -> None:
    service.send_signal(signal.SIGTERM)
    try:
        service.wait(timeout=20)
    except subprocess.TimeoutExpired:
        service.kill()
        service.wait()


def shut_down(service: subprocess.Popen | None, host: str, version: str, work: Path) -> None:
    """The end of a run, whatever happened in it: what the suite left in the engine, the service,
    then the root itself."""
    if service is not None:
        try:
            clean_engine(host, version)
        except Exception as exc:  # noqa: BLE001 - still stop what we started
            print(f"cleanup: {exc}", file=sys.stderr)
        stop_service(service)
    teardown_root(work)


def teardown_root(work: Path) -> None:
    """The run's bridge and cgroup parent (DOCKUI_CONFIG names them), then its files."""
    from engine.config import EngineConfig
    from engine.network import endpoints as network
    from engine.sandbox.cgroups import remove_parent

    config = EngineConfig.load(root=work / "root")
    if config.network_dir.exists():
        network.remove_bridges(config)
    remove_parent(config)
    shutil.rmtree(work, ignore_errors=True)
