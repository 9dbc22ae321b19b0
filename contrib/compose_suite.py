"""Run docker-compose 1.29.2's own test suite against `dockui system service` and print a scoreboard.

Usage (as root, from the repository; Debian's docker-compose 1.29.2 installed, which is Python:
/usr/lib/python3/dist-packages/compose, run by /usr/bin/python3):

    git clone https://github.com/docker/compose /tmp/compose && git -C /tmp/compose checkout 1.29.2
    /usr/bin/python3 -m venv --system-site-packages /tmp/compose-venv    # sees Debian's compose + docker
    /tmp/compose-venv/bin/pip install pytest ddt                          # the suite's own test deps
    .venv/bin/python contrib/compose_suite.py /tmp/compose [pytest args...]

Only the checkout's tests/ are used (tests/integration: the library against the engine;
tests/acceptance: the `docker-compose` command in subprocesses); the code under test is the
installed compose, as a user of the Debian package runs it. COMPOSE_PYTHON names the interpreter
that runs pytest (default /tmp/compose-venv/bin/python); COMPOSE_JUNIT=path keeps the junit report,
and `compose_suite.py path.xml` prints its scoreboard again.

What it sets up, all of it removed at the end (this script owns everything it starts, by pid):
- a fresh engine root under /tmp with a cgroup parent and a bridge name of its own;
- the project's busybox (tests/fixtures/busybox.py) imported into that root, given the users of
  busybox:1.31.0-uclibc's /etc/passwd (operator...) by a commit, and tagged, through the service,
  under every name the suite runs (busybox:1.31.0-uclibc is its BUSYBOX_IMAGE_WITH_TAG;
  busybox:latest, busybox:1.27.2, alpine:3.10.1, alpine:3.12, alpine:latest in its compose files), so nothing
  is pulled from the internet;
- `dockui system service` on a socket in that root, in a mount namespace of its own whose / is a
  shared mount (as systemd makes it on a Docker host; the host's own mounts are not touched); the
  suite runs with DOCKER_HOST=unix://... from the checkout (its fixtures are relative paths).

The scoreboard (passed/failed/skipped/errors per file) comes from pytest's junit XML; a failure
listed in OUT_OF_REACH (needs the internet, or what dockui refuses by name) is counted apart with its
reason, every other failure is printed by name. docs/api.md keeps the last run's figures.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from suite_service import fresh_root, shut_down, start_service  # noqa: E402

DEFAULT_TARGETS = ("tests/integration", "tests/acceptance")
SUITE_TAGS = ("busybox:1.31.0-uclibc", "busybox:latest", "busybox:1.27.2", "alpine:3.10.1", "alpine:3.12", "alpine:latest")
API_VERSION = "1.43"
HUB = "internet: pulls busybox from Docker Hub first (pull_busybox)"
PULLS = "internet: `docker-compose pull` from Docker Hub"
NET_OPTS = "unsupported: a bridge driver option (com.docker.network.bridge.enable_icc / enable_ipv6), refused by name"
BUILDER = "unsupported: a build option dockui's classic builder refuses by name"

# Failures with a cause named: the test needs the internet (no traffic leaves this machine), or asks
# for what dockui refuses by name instead of ignoring (docs/api.md); the rest are printed as failures.
OUT_OF_REACH: dict[str, str] = {
    **dict.fromkeys(("test_create_with_image_id", "test_build_memory_build_option", "test_build_no_cache_pull",
                     "test_build_pull", "test_build_shm_size_build_option", "test_build_with_buildarg_cli_override",
                     "test_build_with_buildarg_from_compose_file", "test_build_with_buildarg_old_api_version",
                     "test_images_use_service_tag"), HUB),
    **dict.fromkeys(("test_pull", "test_pull_can_build", "test_pull_ignore_missing_build_directory",
                     "test_pull_with_digest", "test_pull_with_ignore_pull_failures", "test_pull_with_include_deps",
                     "test_pull_with_no_deps", "test_pull_with_parallel_failure", "test_pull_with_quiet",
                     "test_pull_with_stop_process_flag"), PULLS),
    "test_build_with_stop_process_flag": "internet: `build --pull` asks Docker Hub for busybox",
    "test_exec_novalue_var_dotenv_file": "internet: its service runs nginx, pulled from Docker Hub",
    "test_build_with_git_url": "internet: builds from a GitHub repository",
    **dict.fromkeys(("test_up_with_ipam_config", "test_up_with_network_static_addresses",
                     "test_up_with_network_static_addresses_missing_subnet", "test_up_with_default_network_config"),
                    NET_OPTS),
    "test_up_with_ipam_options": "unsupported: IPAM driver options, refused by name",
    **dict.fromkeys(("test_build_with_cachefrom", "test_build_with_extra_hosts", "test_build_with_network"), BUILDER),
    "test_create_container_with_cpu_count": "unsupported: HostConfig.CpuCount (Windows-only in Docker), refused by name",
    "test_oom_score_adj_value": "unsupported: HostConfig.OomScoreAdj, refused by name (dockui does not set it)",
    "test_create_container_with_volume_driver": "unsupported: HostConfig.VolumeDriver (no volume plugins), refused",
}


@dataclass(frozen=True)
class Outcome:
    """One test case of the junit report."""

    file: str
    name: str
    outcome: str  # passed | failed | errors | skipped
    message: str


def _import_busybox(work: Path) -> None:
    """busybox into the root, before the service starts, under the suite's BUSYBOX_IMAGE_WITH_TAG."""
    from engine.config import EngineConfig
    from tests.fixtures.busybox import import_busybox

    import_busybox(EngineConfig.load(root=work / "root"), SUITE_TAGS[0])


# The users busybox:1.31.0-uclibc's /etc/passwd has beyond the project's busybox (the suite's
# `exec --user=operator` case runs whoami).
BUSYBOX_USERS = ("daemon:x:1:1:daemon:/usr/sbin:/bin/false", "bin:x:2:2:bin:/bin:/bin/false",
                 "sys:x:3:3:sys:/dev:/bin/false", "sync:x:4:100:sync:/bin:/bin/sync",
                 "mail:x:8:8:mail:/var/spool/mail:/bin/false", "www-data:x:33:33:www-data:/var/www:/bin/false",
                 "operator:x:37:37:Operator:/var:/bin/false")


def _tag_images(host: str) -> None:
    """busybox's users added by a commit through the service, then every name the suite runs."""
    import docker

    client = docker.APIClient(base_url=host, version=API_VERSION)
    try:
        script = "".join(f"echo '{line}' >> /etc/passwd; " for line in BUSYBOX_USERS)
        script += "echo 'operator:x:37:' >> /etc/group"
        cid = client.create_container(SUITE_TAGS[0], ["sh", "-c", script])["Id"]
        client.start(cid)
        if client.wait(cid)["StatusCode"] != 0:
            raise SystemExit(f"adding busybox's users failed: {client.logs(cid)!r}")
        repo, _, name = SUITE_TAGS[0].partition(":")
        client.commit(cid, repo, name, conf={"Cmd": ["sh"]})
        client.remove_container(cid)
        for tag in SUITE_TAGS[1:]:
            repo, _, name = tag.partition(":")
            client.tag(SUITE_TAGS[0], repo, name)
    finally:
        client.close()


RANK = {"passed": 0, "skipped": 1, "errors": 2, "failed": 3}


def _outcomes(junit: Path) -> list[Outcome]:
    """One outcome per test: junit reports a teardown error as a second case of the same name, and
    the worse of the two stands: failed, then errors (setup or teardown), skipped, passed."""
    found: dict[str, Outcome] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("classname", "").split(".")
        file = next((part + ".py" for part in name if part.endswith("_test")), "?")
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "errors", "skipped": "skipped"}[child.tag]
                message = (child.get("message") or "").splitlines()[0][:160] if child.get("message") else ""
        key = f"{name[-1]}::{case.get('name')}"
        seen = found.get(key)
        if seen is None or RANK[outcome] > RANK[seen.outcome]:
            found[key] = Outcome(file, key, outcome, message)
    return list(found.values())


def _print_board(outcomes: list[Outcome]) -> None:
    board: dict[str, Counter] = {}
    for o in outcomes:
        board.setdefault(o.file, Counter())[o.outcome] += 1
    total: Counter = Counter()
    print(f"\n{'file':24} {'passed':>6} {'failed':>6} {'errors':>6} {'skipped':>7}")
    for file in sorted(board):
        c = board[file]
        total += c
        print(f"{file:24} {c['passed']:6} {c['failed']:6} {c['errors']:6} {c['skipped']:7}")
    print(f"{'total':24} {total['passed']:6} {total['failed']:6} {total['errors']:6} {total['skipped']:7}")
    bad = [o for o in outcomes if o.outcome in ("failed", "errors")]
    known = [o for o in bad if o.name.split("::")[-1] in OUT_OF_REACH]
    if known:
        print(f"\nnamed causes ({len(known)}):")
        for o in known:
            print(f"  {o.name}: {OUT_OF_REACH[o.name.split('::')[-1]]}")
    rest = [o for o in bad if o not in known]
    if rest:
        print(f"\nother failures ({len(rest)}):")
        for o in rest:
            print(f"  {o.name}: {o.message}")


def main(argv: list[str]) -> int:
    if len(argv) < 1:
        print(__doc__)
        return 2
    if argv[0].endswith(".xml"):  # a kept report (COMPOSE_JUNIT) printed again
        _print_board(_outcomes(Path(argv[0])))
        return 0
    checkout = Path(argv[0]).resolve()
    extra = argv[1:]
    python = os.environ.get("COMPOSE_PYTHON", "/tmp/compose-venv/bin/python")
    root = fresh_root("compose", "dkcp")
    work, env, host = root.work, root.env, root.host
    service = None
    try:
        _import_busybox(work)
        service = start_service(work, env)
        _tag_images(host)
        suite_env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKUI_", "DOCKER_", "COMPOSE_"))}
        suite_env.update(DOCKER_HOST=host, DOCKER_CONFIG=str(work / "docker-config"), PYTHONPATH=str(checkout),
                         PATH=f"/usr/bin:{os.environ.get('PATH', '')}")
        named = [a for a in extra if (checkout / a.split("::")[0]).exists()]
        targets = [] if named else list(DEFAULT_TARGETS)
        junit = work / "junit.xml"
        subprocess.run([python, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}",
                        "-o", "junit_family=xunit1", *targets, *extra], cwd=checkout, env=suite_env, check=False)
        if junit.exists():
            _print_board(_outcomes(junit))
            if os.environ.get("COMPOSE_JUNIT"):
                shutil.copyfile(junit, os.environ["COMPOSE_JUNIT"])
        return 0
    finally:
        shut_down(service, host, API_VERSION, work)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
