"""A full state root (the 40 MiB tmpfs of test_full_disk.py) under the paths that landed since:
a build whose RUN fills the disk, a build context uploaded to the service that does not fit, a
container created with a seccomp profile, a container started on a user network (its hosts file and
the resolver's view of its endpoint). Each is one line, leaves no container, context, spool or
staging file, and the same thing works once there is room again."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from tests.faults.scoreboard import one_line_error, score, stderr_escapes
from tests.faults.test_full_disk import _fill, small_engine  # noqa: F401 - the `small_engine` fixture
from tests.service_support import Service, service_fixture  # noqa: F401 - `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - `engine` fixture
from tests.test_network import free_subnet

pytestmark = pytest.mark.root

@pytest.fixture
def full_root(request: pytest.FixtureRequest) -> Engine:
    """test_full_disk.py's `small_engine` (the engine's root on a 40 MiB tmpfs of its own)."""
    return request.getfixturevalue("small_engine")


PROFILE = Path(__file__).resolve().parent.parent / "fixtures" / "seccomp" / "busybox-allowlist.json"


def _leftovers(engine: Engine) -> list[str]:
    config = engine.config
    found = [f"container {c}" for c in engine.out("ps", "-aq").split()]
    if config.tmp_dir.is_dir():
        found += [f"tmp {n}" for n in os.listdir(config.tmp_dir)]
    staging = config.layers_dir / ".staging"
    if staging.is_dir():
        found += [f"staging {n}" for n in os.listdir(staging)]
    return found


def test_build_fills_the_disk(full_root: Engine, tmp_path: Path) -> None:
    engine = full_root
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox\nRUN dd if=/dev/zero of=/big bs=1M count=100\n")
    # Docker's classic builder keeps a failed step's container (for inspection) unless --force-rm
    result = engine.cli("build", "--force-rm", "-t", "filler", str(context), timeout=120)
    err = result.stderr.decode(errors="replace")
    gone = wait_until(lambda: not _leftovers(engine), timeout=10)
    # (the docker CLI's own words for a failed RUN: "The command ... returned a non-zero code: 1")
    score("disk", "build-run-fills-disk", result.returncode != 0 and len(err.strip().splitlines()) == 1,
          detail=err[-300:], escapes=stderr_escapes(err), leaks=[] if gone else _leftovers(engine))
    assert "filler" not in engine.out("images")
    kept = engine.cli("build", "-t", "filler", str(context), timeout=120)
    left = engine.out("ps", "-aq").split()
    rm = engine.cli("rm", "-f", *left)
    score("disk", "build-failed-step-kept-then-removed", kept.returncode != 0 and len(left) == 1 and rm.returncode == 0
          and os.statvfs(engine.config.root).f_bavail > 0, detail=f"{left} {rm.stderr!r}",
          escapes=stderr_escapes(kept.stderr) + stderr_escapes(rm.stderr), leaks=_leftovers(engine))
    (context / "Dockerfile").write_text("FROM busybox\nRUN echo fits > /small\n")
    engine.cli("build", "-t", "fits", str(context), check=True, timeout=120)
    engine.cli("rmi", "fits", check=True)

    # a full disk before the build starts: its first layer cannot be written
    filler = _fill(engine.config.root)
    try:
        (context / "Dockerfile").write_text("FROM busybox\nCOPY Dockerfile /copied\n")
        result = engine.cli("build", "-t", "full", str(context), timeout=120)
        err = result.stderr.decode(errors="replace")
        score("disk", "build-copy-on-full-disk", result.returncode != 0 and one_line_error(err),
              detail=err[-300:], escapes=stderr_escapes(err), leaks=_leftovers(engine))
    finally:
        filler.unlink()
        (engine.config.root / "filler-small").unlink()


def test_create_and_start_on_a_full_disk(full_root: Engine) -> None:
    engine = full_root
    engine.out("network", "create", "--subnet", str(free_subnet(prefix=28)), "fullnet")
    filler = _fill(engine.config.root)
    try:
        for name, args in (("create-with-seccomp-profile", ["create", "--security-opt", f"seccomp={PROFILE}"]),
                           ("run-on-user-network", ["run", "-d", "--network", "fullnet"])):
            result = engine.cli(*args, "busybox", "sleep", "30")
            err = result.stderr.decode(errors="replace")
            # Either it fits (a record rewritten in place, the reserve) and runs, or it is one line
            # and leaves nothing; never a half-made container.
            made = engine.out("ps", "-aq").split()
            refused = 1 if args[0] == "create" else 125  # create returns the engine's error plainly, run wraps it
            ok = (result.returncode == 0 and len(made) == 1) or (result.returncode == refused and one_line_error(err)
                                                                 and not made)
            score("disk", name, ok, detail=f"{result.returncode} {err[-300:]!r} {made}",
                  escapes=stderr_escapes(err))
            for cid in made:
                rm = engine.cli("rm", "-f", cid)
                score("disk", f"{name}-removed", rm.returncode == 0, detail=repr(rm.stderr),
                      escapes=stderr_escapes(rm.stderr))
    finally:
        filler.unlink()
        (engine.config.root / "filler-small").unlink()
        engine.cli("network", "rm", "fullnet")
    engine.out("run", "--rm", "--network", "none", "--security-opt", f"seccomp={PROFILE}", "busybox", "true")


def test_build_context_upload_on_a_full_disk(full_root: Engine, service: Service) -> None:
    engine = full_root
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM busybox\n"), ("blob", os.urandom(48 << 20))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    reply = service.request("POST", "/build?t=toobig", body=out.getvalue(),
                            headers={"Content-Type": "application/x-tar"}, timeout=120)
    body = reply.body.decode(errors="replace")
    refused = reply.status >= 400 or '"error"' in body
    gone = wait_until(lambda: not _leftovers(engine), timeout=10)
    score("disk", "build-context-does-not-fit", refused and "no space" in body.lower() and "Traceback" not in body
          and service.process.poll() is None, detail=f"{reply.status} {body[-300:]!r}",
          leaks=[] if gone else _leftovers(engine))
