"""Run docker-py's own integration suite against `dockui system service` and print a scoreboard.

Usage (as root, from the repository, with a docker-py checkout matching the installed `docker`):

    git clone https://github.com/docker/docker-py /tmp/docker-py && git -C /tmp/docker-py checkout 7.2.0
    .venv/bin/pip install --target /tmp/dpy-deps paramiko      # docker-py's tests/helpers.py imports it
    .venv/bin/python contrib/dockerpy_suite.py /tmp/docker-py [pytest args...]

What it sets up, all of it removed at the end (this script owns everything it starts, by pid):
- a fresh engine root under /tmp with a cgroup parent and a bridge name of its own;
- Debian's docker-registry on a loopback port, holding the project's busybox image (tests/fixtures)
  plus a layer with what the suite expects of alpine (a `postgres` user, /var/opt) as
  library/alpine:3.10; the service pulls it from there and tags it under the names the suite
  uses (alpine:3.10, its TEST_IMG; alpine:latest, busybox:latest, busybox:buildroot-2014.02), so
  the suite's session fixture finds its image and never pulls from the internet;
- `dockui system service` on a socket in that root, in a mount namespace of its own whose / is a
  shared mount (as systemd makes it on a Docker host; the suite's rshared bind needs it, and the
  host's own mounts are not touched); the suite runs against it with DOCKER_HOST=unix://... and
  DOCKER_TEST_API_VERSION=1.43 (the service's highest version);
- websocket-client (the project's test extras): the suite's websocket attach case imports it
  (docker-py's `attach_socket(ws=True)` still cannot reach a Unix socket, docker/docker-py#1478).

The scoreboard (passed/failed/skipped/errors per file) comes from pytest's junit XML. Files that
need swarm, plugins, build, secrets/configs, TLS or the internet are left out unless named in the
pytest args (docs/api.md lists them and why).
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from suite_service import fresh_root, shut_down, start_service  # noqa: E402

IN_SCOPE = (
    "api_client_test.py", "api_container_test.py", "api_exec_test.py", "api_healthcheck_test.py",
    "api_image_test.py", "api_network_test.py", "api_volume_test.py", "client_test.py", "errors_test.py",
    "models_containers_test.py", "models_images_test.py", "models_networks_test.py",
    "models_resources_test.py", "models_volumes_test.py", "regression_test.py",
)
SUITE_TAGS = ("alpine:3.10", "alpine:latest", "busybox:latest", "busybox:buildroot-2014.02")
API_VERSION = "1.43"


def _push_busybox(work: Path):  # -> RegistryServer
    from engine.config import EngineConfig
    from engine.image.registry import RegistryClient
    from tests.fixtures.busybox import GROUP, PASSWD, busybox_tarball
    from tests.fixtures.imagebuild import build_image, directory, file, tar_from_entries, upload_image
    from tests.fixtures.registry import start_registry

    server = start_registry(work / "registry")
    # What the suite expects of alpine beyond busybox: its postgres user and /var/opt.
    alpine_bits = tar_from_entries([
        directory("etc"), file("etc/passwd", PASSWD + "postgres:x:70:70::/var/lib/postgresql:/bin/sh\n"),
        file("etc/group", GROUP + "postgres:x:70:\n"), directory("var"), directory("var/opt"),
    ])
    image = build_image([busybox_tarball().read_bytes(), alpine_bits], compression="gzip", oci=False, cmd=["sh"])
    client = RegistryClient(EngineConfig(root=work / "push-root"), server.host, use_stored_credentials=False)
    try:
        upload_image(client, "library/alpine", image, tag="3.10")
    finally:
        client.close()
    return server


def _seed_images(host: str, registry_host: str) -> None:
    import docker

    client = docker.APIClient(base_url=host, version=API_VERSION)
    try:
        source = f"{registry_host}/library/alpine"
        client.pull(source, tag="3.10")
        for tag in SUITE_TAGS:
            repo, _, name = tag.partition(":")
            client.tag(f"{source}:3.10", repo, name)
    finally:
        client.close()


def _scoreboard(junit: Path) -> dict[str, Counter]:
    board: dict[str, Counter] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("classname", "").split(".")
        file = next((part + ".py" for part in name if part.endswith("_test")), "?")
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "errors", "skipped": "skipped"}[child.tag]
        board.setdefault(file, Counter())[outcome] += 1
    return board


def _print_board(board: dict[str, Counter]) -> None:
    total: Counter = Counter()
    print(f"\n{'file':34} {'passed':>6} {'failed':>6} {'errors':>6} {'skipped':>7}")
    for file in sorted(board):
        c = board[file]
        total += c
        print(f"{file:34} {c['passed']:6} {c['failed']:6} {c['errors']:6} {c['skipped']:7}")
    print(f"{'total':34} {total['passed']:6} {total['failed']:6} {total['errors']:6} {total['skipped']:7}")


def main(argv: list[str]) -> int:
    if len(argv) < 1:
        print(__doc__)
        return 2
    checkout = Path(argv[0]).resolve()
    extra = argv[1:]
    root = fresh_root("py", "dkpy")
    work, env, host = root.work, root.env, root.host
    registry = service = None
    try:
        registry = _push_busybox(work)
        service = start_service(work, env)
        _seed_images(host, registry.host)
        deps = os.environ.get("DOCKERPY_DEPS", "/tmp/dpy-deps")
        suite_env = dict(os.environ, DOCKER_HOST=host, DOCKER_TEST_API_VERSION=API_VERSION,
                         PYTHONPATH=f"{checkout}:{deps}", DOCKER_CONFIG=str(work / "docker-config"))
        suite_env.pop("DOCKUI_CONFIG", None)
        named = [a for a in extra if (checkout / a.split("::")[0]).exists()]
        targets = [] if named else [f"tests/integration/{f}" for f in IN_SCOPE]
        junit = work / "junit.xml"
        subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}",
                        "-o", "junit_family=xunit1", *targets, *extra], cwd=checkout, env=suite_env, check=False)
        if junit.exists():
            _print_board(_scoreboard(junit))
        return 0
    finally:
        if registry is not None:
            registry.stop()
        shut_down(service, host, API_VERSION, work)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
