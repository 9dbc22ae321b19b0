"""Run Docker's own API integration tests (moby's `integration/` packages) against `dockui system service`.

Moby's integration packages drive a daemon through the Go client. With DOCKER_HOST pointing at
dockui's service and DOCKER_REMOTE_DAEMON=1, the tests that would start a daemon of their own skip
themselves (testutil/environment's IsRemoteDaemon); the rest exercise the Engine API as Docker's CI does.

Usage (as root, from the repository; moby v24.0.9 is the release whose API is dockui's 1.43; the
scoreboard and what is left are in docs/api.md, "moby's API integration suite"):

    echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/backports.list
    apt-get update && apt-get install -t bookworm-backports golang-1.21-go  # v24 asks for Go 1.20
    mkdir -p /tmp/moby/src/github.com/docker/docker
    git -C MOBY_CLONE archive v24.0.9 | tar -x -C /tmp/moby/src/github.com/docker/docker
    .venv/bin/python contrib/moby_suite.py /tmp/moby/src/github.com/docker/docker \\
        [--go /usr/lib/go-1.21/bin/go] [--packages container,image,network,volume,system,build] \\
        [--report FILE] [-- extra test flags, e.g. -test.run TestPause]

The tree must sit at GOPATH/src/github.com/docker/docker: the test binaries are built the way moby's
hack/make/.integration-test-helpers builds them (GO111MODULE=off, the tree's vendor/), once, into
GOPATH/dockui-bin/ (rebuilt when missing; delete them after changing the tree).

What it sets up, all of it removed at the end (this script owns everything it starts, by pid):
- a fresh engine root under /tmp with a cgroup parent and a bridge name of its own, the project's
  busybox (tests/fixtures, with the official image's users: the suite execs as `daemon`) imported
  as busybox:latest and tagged as the suite's other frozen images (busybox:glibc,
  hello-world:frozen, debian:bullseye-slim), so the suite never pulls them;
- `dockui system service` on a socket in that root, in a mount namespace whose / is a shared mount
  (as systemd makes it on a Docker host; the host's own mounts are not touched);
- a PATH whose first directory holds a `dockerd`, `containerd` and `dockerd-rootless.sh` that refuse
  to run (a test that forgets to skip on a remote daemon fails instead of starting a real daemon).

Tests that would reach beyond loopback are skipped by name (NO_OUTSIDE_WORLD), and so are the
few too heavy for a shared machine (TOO_HEAVY). The scoreboard counts top-level tests per package
(from `go tool test2json`); failures are listed with their first output lines, and --report writes
every failing test's whole output, then each skipped test with the reason it gave, to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from suite_service import fresh_root, shut_down, start_service  # noqa: E402

PACKAGES = ("container", "image", "network", "volume", "system", "build")
FROZEN_ALIASES = ("busybox:glibc", "hello-world:frozen", "debian:bullseye-slim")
# Tests that name a host beyond loopback: never run, whatever the daemon would do with them.
NO_OUTSIDE_WORLD = (
    "TestImagePullPlatformInvalid",  # pulls docker.io/library/hello-world
    "TestNoNewPrivileges",  # builds with RUN apt-get update
    "TestLoginFailsWithBadCredentials",  # GETs https://hub.docker.com, then logs in to Docker Hub
)
# Tests too heavy for a shared 2-core machine: skipped by name as well.
TOO_HEAVY = (
    "TestBuildWithHugeFile",  # a sparse 8 GiB file committed into a layer
)
OFFICIAL_PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
"""
OFFICIAL_GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
users:x:100:
"""
BUILD_TAGS = "exclude_graphdriver_devicemapper exclude_graphdriver_btrfs"
GUARD = "#!/bin/sh\necho \"moby_suite: this test would start its own $(basename \"$0\"); dockui is remote\" >&2\nexit 1\n"


@dataclass
class Outcome:
    """One package's top-level test results, with each failure's output."""

    counts: Counter = field(default_factory=Counter)
    failures: dict[str, list[str]] = field(default_factory=dict)
    skips: dict[str, str] = field(default_factory=dict)  # test -> the reason it gave


def _build(tree: Path, gopath: Path, go: str, package: str) -> Path:
    out = gopath / "dockui-bin" / f"{package}.test"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOPATH=str(gopath), GO111MODULE="off", GOCACHE=str(gopath / "gocache"),
               GOFLAGS="", CGO_ENABLED="1")
    print(f"building {out} ...", flush=True)
    subprocess.run([go, "test", "-c", "-tags", BUILD_TAGS, "-o", str(out), f"./integration/{package}"],
                   cwd=tree, env=env, check=True)
    return out


def _guard_bin(work: Path) -> Path:
    guard = work / "guard-bin"
    guard.mkdir()
    for name in ("dockerd", "containerd", "dockerd-rootless.sh"):
        (guard / name).write_text(GUARD)
        (guard / name).chmod(0o755)
    return guard


def _seed_images(work: Path) -> None:
    """The project's busybox with the official image's users and groups (the suite runs as `daemon`)."""
    from engine.config import EngineConfig
    from engine.image.store import ImageStore
    from tests.fixtures.busybox import GROUP, PASSWD, build_busybox_rootfs, build_busybox_tar

    rootfs = build_busybox_rootfs(work / "busybox")
    (rootfs / "etc" / "passwd").write_text(OFFICIAL_PASSWD + PASSWD.split("\n", 1)[1])
    (rootfs / "etc" / "group").write_text(OFFICIAL_GROUP + GROUP.split("\n", 1)[1])
    tarball = build_busybox_tar(rootfs, work / "busybox.tar")
    ImageStore(EngineConfig.load(root=work / "root")).import_tarball(tarball, "busybox:latest", changes={"Cmd": ["sh"]})
    shutil.rmtree(rootfs)


def _tag_aliases(host: str) -> None:
    import docker

    client = docker.APIClient(base_url=host, version="auto")
    try:
        for alias in FROZEN_ALIASES:
            repo, _, tag = alias.partition(":")
            client.tag("busybox:latest", repo, tag)
    finally:
        client.close()


def _run_package(binary: Path, tree: Path, package: str, go: str, env: dict[str, str],
                 extra: list[str]) -> Outcome:
    skip = "^(" + "|".join(NO_OUTSIDE_WORLD + TOO_HEAVY) + ")$"
    command = [go, "tool", "test2json", "-p", package, str(binary), "-test.v", "-test.timeout=30m",
               "-test.skip", skip, *extra]
    print(f"running integration/{package} ...", flush=True)
    proc = subprocess.Popen(command, cwd=tree / "integration" / package, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    outcome = Outcome()
    output: dict[str, list[str]] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        test = event.get("Test")
        if not test:
            continue
        top = test.split("/")[0]
        if event["Action"] == "output":
            output.setdefault(top, []).append(event["Output"].rstrip("\n"))
        elif event["Action"] in ("pass", "fail", "skip") and test == top:
            outcome.counts[event["Action"]] += 1
            if event["Action"] == "fail":
                outcome.failures[top] = output.get(top, [])
            elif event["Action"] == "skip":
                said = [line.strip() for line in output.get(top, []) if line.strip() and not line.lstrip().startswith(("===", "---"))]
                outcome.skips[top] = said[0] if said else ""
    proc.wait()
    return outcome


def _print_board(board: dict[str, Outcome], report: Path | None) -> None:
    total: Counter = Counter()
    print(f"\n{'package':12} {'pass':>5} {'fail':>5} {'skip':>5}")
    for package, outcome in board.items():
        c = outcome.counts
        total += c
        print(f"{package:12} {c['pass']:5} {c['fail']:5} {c['skip']:5}")
    print(f"{'total':12} {total['pass']:5} {total['fail']:5} {total['skip']:5}")
    lines: list[str] = []
    for package, outcome in board.items():
        for test, out in outcome.failures.items():
            lines.append(f"=== {package}.{test}")
            lines.extend(out)
            interesting = [s.strip() for s in out if "Error" in s or "assertion failed" in s or ".go:" in s]
            print(f"FAIL {package}.{test}: {' | '.join(interesting[:2])[:300]}")
    for package, outcome in board.items():
        lines.extend(f"SKIP {package}.{test}: {reason}" for test, reason in sorted(outcome.skips.items()))
    if report is not None:
        report.write_text("\n".join(lines) + "\n")
        print(f"failing tests' output: {report}")


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path, help="moby's tree at GOPATH/src/github.com/docker/docker")
    parser.add_argument("--go", default=shutil.which("go") or "/usr/lib/go-1.21/bin/go")
    parser.add_argument("--packages", default=",".join(PACKAGES))
    parser.add_argument("--report", type=Path, help="write every failing test's output here")
    return parser.parse_args(argv), extra


def main(argv: list[str]) -> int:
    args, extra = _parse(argv)
    tree = args.tree.resolve()
    gopath = tree.parents[3]
    if tree.relative_to(gopath).as_posix() != "src/github.com/docker/docker":
        raise SystemExit(f"{tree} is not at GOPATH/src/github.com/docker/docker")
    packages = [p for p in args.packages.split(",") if p]
    binaries = {p: _build(tree, gopath, args.go, p) for p in packages}
    root = fresh_root("moby", "dkmb")
    work, env, host = root.work, root.env, root.host
    service = None
    try:
        _seed_images(work)
        service = start_service(work, env)
        _tag_aliases(host)
        guard = _guard_bin(work)
        (work / "home").mkdir()
        test_env = {"DOCKER_HOST": host, "DOCKER_REMOTE_DAEMON": "1", "HOME": str(work / "home"),
                    "PATH": f"{guard}:{os.environ.get('PATH', '/usr/bin:/bin')}", "GOTRACEBACK": "all",
                    "TMPDIR": str(work), "DEST": str(work / "dest")}
        board = {p: _run_package(binaries[p], tree, p, args.go, test_env, extra) for p in packages}
        _print_board(board, args.report)
        return 0
    finally:
        shut_down(service, host, "auto", work)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
