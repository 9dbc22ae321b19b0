"""Every verb, run by a user without the rights, says so in one line (never a traceback), and the
state root is 0710 as Docker keeps /var/lib/docker."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.faults.scoreboard import one_line_error, score, stderr_escapes
from tests.test_lifecycle_support import REPO, Engine, engine_fixture  # noqa: F401 - `engine` fixture

pytestmark = pytest.mark.root
NOBODY = 65534

# Every verb and sub-verb of `dockui --help`, with arguments that would work for root (but `version`,
# which reads no state and needs no rights, as `docker version` prints the client's part).
VERBS = [
    "ps -a", "images", "inspect web", "logs web", "run --rm busybox true", "create busybox", "start idle",
    "stop web", "restart web", "kill web", "pause web", "unpause web", "wait idle", "rm idle", "exec web true",
    "top web", "port web", "rename web web2", "commit web", "attach web", "export web", "container ls",
    "container inspect web", "container prune -f", "volume ls", "volume create v1", "volume inspect v1",
    "volume rm v1", "volume prune -f", "pull {registry}/x", "push busybox", "logout {registry}", "rmi busybox",
    "tag busybox b2", "import {tar}", "save busybox", "load -i {tar}", "image inspect busybox",
    "image history busybox", "image prune -f", "image ls", "image rm busybox", "network ls",
    "network inspect bridge", "network create n1", "network rm n1", "network connect bridge web",
    "network disconnect bridge web", "stats --no-stream", "stats --no-stream web",
    "login -u u --password-stdin {registry}", "info", "events --until 0s", "system df", "system service",
]


def _as_nobody(engine: Engine, words: list[str], public: Path) -> subprocess.CompletedProcess:
    env = dict(engine.env, HOME="/nonexistent", DOCKUI_CONFIG=str(public / "config.json"))
    return subprocess.run([sys.executable, "-m", "tui.launcher", "--root", str(engine.config.root), *words],
                          capture_output=True, env=env, cwd=REPO, input=b"pw\n", timeout=60,
                          user=NOBODY, group=NOBODY, extra_groups=[])


def test_state_root_is_0710_and_tightened(engine: Engine, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh" / "root"
    subprocess.run([sys.executable, "-m", "tui.launcher", "--root", str(fresh), "images"], env=engine.env,
                   cwd=REPO, check=True, capture_output=True)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o710, oct(fresh.stat().st_mode)
    root = engine.config.root
    os.chmod(root, 0o755)  # as an older dockui left it
    engine.out("ps")
    assert stat.S_IMODE(root.stat().st_mode) == 0o710


def test_every_verb_without_rights_is_one_line(engine: Engine, registry) -> None:
    import shutil
    import tempfile

    public = Path(tempfile.mkdtemp(prefix="dockui-perm-"))  # what nobody may read: config, a tarball
    os.chmod(public, 0o755)
    shutil.copy(engine.env["DOCKUI_CONFIG"], public / "config.json")
    tar = public / "rootfs.tar"
    subprocess.run(["tar", "-cf", str(tar), "-C", str(REPO / "tests"), "__init__.py"], check=True)
    for path in (public / "config.json", tar):
        os.chmod(path, 0o644)
    engine.cli("run", "-d", "--name", "web", "busybox", "sleep", "60", check=True)
    engine.cli("create", "--name", "idle", "busybox", "true", check=True)
    before = sorted(p.name for p in engine.config.containers_dir.iterdir())
    argvs = [v.format(registry=registry.host, tar=tar).split() for v in VERBS]
    # The root's parents traversable, as /var/lib is: only the root's own 0710 keeps nobody out.
    parents = [p for p in engine.config.root.parents if str(p).startswith("/tmp/") and p != Path("/tmp")]
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in parents}
    try:
        for path, mode in modes.items():
            os.chmod(path, mode | 0o011)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda words: _as_nobody(engine, words, public), argvs))
    finally:
        for path, mode in modes.items():
            os.chmod(path, mode)
        shutil.rmtree(public)
    for words, result in zip(argvs, results, strict=True):
        err = result.stderr.decode(errors="replace")
        said = ("permission denied" in err or "needs root" in err or "readable by root only" in err) and "sudo" in err
        status = 125 if words[0] == "run" else 1  # docker: run 125, every other verb 1 (create's failure to reach its daemon too)
        score("permission", " ".join(words[:2]), result.returncode == status and one_line_error(err) and said,
              detail=f"rc={result.returncode} stderr={err!r}", escapes=stderr_escapes(err))
    assert sorted(p.name for p in engine.config.containers_dir.iterdir()) == before  # nothing changed
    assert engine.inspect("web")["State"]["Status"] == "running"
    engine.cli("rm", "-f", "web", "idle", check=True)
