"""Malformed command lines: one line and Docker's hint, never the whole usage; --platform that the
stored image does not match is an error (--pull never) or a pull, as Docker does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.scoreboard import score, stderr_escapes
from tests.test_lifecycle_support import REPO, Engine, engine_fixture  # noqa: F401 - `engine` fixture

FLAG_ERRORS = [
    (["run", "--no-such-flag", "busybox"], "dockui run"),
    (["run", "-m", "lots", "busybox", "true"], "dockui run"),
    (["run", "-p", "busybox"], "dockui run"),  # -p eats the image: no image left
    (["ps", "--no-such-flag"], "dockui ps"),
    (["network", "create", "--bogus", "n"], "dockui network create"),
    (["image", "ls", "--zz"], "dockui image ls"),
    (["logs", "--tail"], "dockui logs"),
    (["volume", "create", "--driver"], "dockui volume create"),
    (["stats", "--interval", "x"], "dockui stats"),
]


@pytest.mark.parametrize("argv, verb", FLAG_ERRORS, ids=[" ".join(a) for a, _ in FLAG_ERRORS])
def test_flag_error_is_one_line_and_a_hint(tmp_path: Path, argv: list[str], verb: str) -> None:
    result = subprocess.run([sys.executable, "-m", "tui.launcher", "--root", str(tmp_path / "root"), *argv],
                            capture_output=True, text=True, cwd=REPO, timeout=30)
    lines = result.stderr.splitlines()
    hint = f"See '{verb} --help'."
    two_lines = len(lines) == 2 and lines[0].startswith(f"{verb}: error: ") and lines[1] == hint
    # a missing argument also shows the usage line, after a blank line (as Docker does)
    missing = len(lines) >= 4 and "arguments are required" in lines[0] and lines[1] == hint and lines[3].startswith("usage:")
    # docker: a flag error is 125, a missing argument 1 (cobra's arity checks are plain errors)
    score("flags", " ".join(argv), result.returncode == (125 if two_lines else 1) and (two_lines or missing),
          detail=f"rc={result.returncode} stderr={result.stderr!r}", escapes=stderr_escapes(result.stderr))


@pytest.mark.root
def test_platform_that_the_stored_image_does_not_match(engine: Engine, registry) -> None:
    ref = f"{registry.host}/faults/never-pushed:latest"  # stored here, absent from the registry
    engine.cli("tag", "busybox", ref, check=True)
    never = engine.cli("run", "--rm", "--pull", "never", "--platform", "linux/arm64", ref, "true")
    err = never.stderr.decode()
    score("flags", "platform-mismatch/--pull-never",
          never.returncode == 125 and "does not match the specified platform: wanted linux/arm64/v8, actual: linux/amd64" in err,
          detail=err, escapes=stderr_escapes(err))
    missing = engine.cli("create", "--platform", "linux/arm64", ref, "true")  # pulls: the registry has none (create: 1)
    err = missing.stderr.decode()
    score("flags", "platform-mismatch/pull", missing.returncode == 1 and f"Unable to find image '{ref}' locally" in err
          and "Pulling from faults/never-pushed" in err and "not found" in err, detail=err, escapes=stderr_escapes(err))
    same = engine.cli("create", "--platform", "linux/amd64", ref, "true")
    score("flags", "platform-match", same.returncode == 0, detail=same.stderr.decode(), escapes=stderr_escapes(same.stderr))
    assert engine.out("ps", "-aq").split() == [same.stdout.decode().strip()[:12]]
    engine.cli("rm", same.stdout.decode().strip(), check=True)
