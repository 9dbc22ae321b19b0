"""Hostile seccomp profiles: `--security-opt seccomp=<file>` where the file is a link to /dev/zero,
JSON nested a hundred thousand deep, or a valid profile that compiles past the kernel's 4096
instructions; and the same through `POST /containers/create` inline. Each is one line (status 125
from the CLI, 400 from the API) in bounded time and memory; nothing is created by a refused one."""

from __future__ import annotations

import json
import resource
import subprocess
from pathlib import Path

import pytest

from tests.faults.scoreboard import one_line_error, score, stderr_escapes
from tests.service_support import Service, service_fixture  # noqa: F401 - `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - `engine` fixture

pytestmark = pytest.mark.root

MEMORY_CAP = 1 << 30  # a CLI reading /dev/zero whole would pass this within a second


def _bounded_run(engine: Engine, *args: str) -> subprocess.CompletedProcess:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    return subprocess.run(engine.argv(*args), capture_output=True, timeout=30, env=engine.env, preexec_fn=cap)


def _oversized_profile() -> dict:
    rules = [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1000 + i, "op": "SCMP_CMP_EQ"}]}
             for i in range(1500)]
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}


def test_hostile_profile_files(engine: Engine, tmp_path: Path) -> None:
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100000 + "]" * 100000)
    deep_object = tmp_path / "deep-object.json"
    deep_object.write_text('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":' + "[" * 100000 + "]" * 100000 + "}")
    big = tmp_path / "oversized.json"
    big.write_text(json.dumps(_oversized_profile()))
    for name, path in (("profile-dev-zero", zero), ("profile-nested-array", nested),
                       ("profile-nested-in-object", deep_object), ("profile-oversized-program", big)):
        result = _bounded_run(engine, "run", "--rm", "--network", "none", "--security-opt", f"seccomp={path}",
                              "busybox", "true")
        left = engine.out("ps", "-aq").split()
        score("seccomp", name, result.returncode == 125 and one_line_error(result.stderr)
              and b"seccomp" in result.stderr,  # names the profile (a MemoryError would not)
              detail=f"{result.returncode} {result.stderr[-300:]!r}", escapes=stderr_escapes(result.stderr),
              leaks=[f"containers {left}"] if left else [])
        for cid in left:
            engine.cli("rm", "-f", cid)


def test_hostile_inline_profiles(service: Service) -> None:
    for name, profile in (("inline-nested", "[" * 100000 + "]" * 100000),
                          ("inline-not-json", "{" * 10 + "x"),
                          ("inline-oversized-program", json.dumps(_oversized_profile()))):
        reply = service.request("POST", "/containers/create",
                                body={"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none",
                                      "SecurityOpt": [f"seccomp={profile}"]}})
        started = None
        if reply.status == 201:  # a profile that only fails to compile: refused at start, as Docker
            cid = reply.json()["Id"]
            started = service.request("POST", f"/containers/{cid}/start")
            service.request("DELETE", f"/containers/{cid}?force=1")
        final = started or reply
        message = final.json().get("message", "") if final.body else ""
        score("seccomp", name, final.status in (400, 500) and message and "\n" not in message
              and "Traceback" not in message and service.process.poll() is None,
              detail=f"{reply.status} {final.status} {final.body[:200]!r}")
    assert service.engine.out("ps", "-aq") == ""
