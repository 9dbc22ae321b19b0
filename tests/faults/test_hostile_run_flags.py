"""Run flags Docker's clients send, used by a hostile user: bind propagation (a container that mounts
through binds of a source on a *shared* host mount, and the engine's own nested binds under them),
`--uts host` (the host's hostname), `--device-cgroup-rule` (rules that try to widen the allow-list,
from the CLI and the API), `--log-driver none` (nothing written, `logs` refused in one line).

What must hold: a mount reaches the host only through a bind the user asked to be `rshared`; the
host's hostname never changes without `--privileged`; a malformed rule is refused in one line and
nothing is made; a container with no log driver leaves no log behind it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.faults.scoreboard import one_line_error, score, stderr_escapes
from tests.service_support import Service, service_fixture  # noqa: F401 - `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - `engine` fixture

pytestmark = pytest.mark.root


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(path) + "/")]


def test_propagation_reaches_the_host_only_through_an_rshared_bind(engine: Engine, tmp_path: Path) -> None:
    shared = tmp_path / "shared"  # a shared host mount, as / is on a systemd host (this VM's / is private)
    for name in ("private", "slave", "asked", "nested", "inner"):
        (shared / name).mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(shared), str(shared)], check=True)
    subprocess.run(["mount", "--make-shared", str(shared)], check=True)
    try:
        script = ("for d in private slave asked nested; do mkdir -p /m/$d/x && mount -t tmpfs t /m/$d/x || exit 9; done; "
                  "mkdir -p /mnt/y && mount -t tmpfs t /mnt/y")
        result = engine.cli("run", "--rm", "--privileged", "--network", "none",
                            "-v", f"{shared}/private:/m/private", "-v", f"{shared}/slave:/m/slave:rslave",
                            "-v", f"{shared}/asked:/m/asked:rshared", "-v", f"{shared}/nested:/m/nested",
                            "-v", f"{shared}/inner:/m/nested/inner", "busybox", "sh", "-c", script)
        seen = [p.removeprefix(str(shared) + "/") for p in _mounts_under(shared)]
        unasked = [p for p in seen if not p.startswith("asked/")]
        score("escape", "mount-through-unshared-binds", result.returncode == 0 and "asked/x" in seen,
              detail=f"{result.returncode} {result.stderr[-160:]!r} host sees {seen}",
              escapes=[f"a container's mount on the host: {p}" for p in unasked] + stderr_escapes(result.stderr))
    finally:
        for point in sorted(_mounts_under(shared), reverse=True):
            subprocess.run(["umount", "-l", point], check=False)
        subprocess.run(["umount", "-l", str(shared)], check=False)


def test_uts_host_and_device_rules_and_log_driver_none(engine: Engine) -> None:
    host_name = os.uname().nodename
    result = engine.cli("run", "--rm", "--uts", "host", "--network", "none", "busybox",
                        "sh", "-c", "hostname dockui-pwned; hostname")
    score("escape", "uts-host-sethostname", result.stdout == f"{host_name}\n".encode() and b"not permitted" in result.stderr,
          detail=f"{result.stdout!r} {result.stderr[-120:]!r}",
          escapes=["the host's hostname changed"] if os.uname().nodename != host_name else [])
    conflict = engine.cli("create", "--uts", "host", "-h", "dockui-pwned", "busybox")
    # moby's runconfig refusal (the daemon's, so docker create's status 1), not the CLI's
    score("flags", "uts-host-with-hostname", conflict.returncode == 1 and one_line_error(conflict.stderr),
          detail=conflict.stderr.decode(), escapes=["the host's hostname changed"] if os.uname().nodename != host_name else [])
    before = engine.out("ps", "-aq")
    for rule in ("c 1:3", "c 1:3 r\na *:* rwm", "c 1:3 rwm a", "c *:* rwmx", "x 1:3 r", "c -1:3 r", "c 1:3 r ",
                 " a *:* rwm", "c 1:3 r,a"):
        made = engine.cli("create", "--network", "none", "--device-cgroup-rule", rule, "busybox")
        score("flags", f"device-rule-{rule!r}", made.returncode == 125 and one_line_error(made.stderr)
              and b"invalid device cgroup format" in made.stderr and engine.out("ps", "-aq") == before,
              detail=f"{made.returncode} {made.stderr[-160:]!r}", escapes=stderr_escapes(made.stderr))
    # a number past 32 bits must not wrap around to another device (nor to all): the start is refused
    wrapped = engine.cli("run", "--rm", "--network", "none", "--device-cgroup-rule", "c 4294967297:1 rwm", "busybox",
                         "sh", "-c", "mknod /tmp/m c 1 1 && head -c1 /tmp/m >/dev/null && echo OPENED")
    score("escape", "device-rule-major-past-32-bits", wrapped.returncode == 125 and one_line_error(wrapped.stderr),
          detail=f"{wrapped.returncode} {wrapped.stderr[-160:]!r}",
          escapes=stderr_escapes(wrapped.stderr) + (["a wrapped rule opened 1:1"] if b"OPENED" in wrapped.stdout else []))
    # a rule that is well formed grants what it says, no more: c 1:3 does not open a spare major's node
    probe = engine.cli("run", "--rm", "--network", "none", "--device-cgroup-rule", "c 1:3 rwm", "busybox", "sh", "-c",
                       "mknod /tmp/n c 239 7 && head -c1 /tmp/n")
    score("escape", "device-rule-grants-no-more", b"Operation not permitted" in probe.stderr,
          detail=f"{probe.returncode} {probe.stderr[-160:]!r}",
          escapes=["a node outside the rule opened"] if b"No such device" in probe.stderr else [])
    cid = engine.out("run", "-d", "--network", "none", "--log-driver", "none", "busybox",
                     "sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' y").strip()
    try:
        engine.out("wait", cid)
        logs = engine.cli("logs", cid)
        directory = engine.config.containers_dir / cid
        big = [p.name for p in directory.iterdir() if p.is_file() and p.stat().st_size > 100_000]
        score("flags", "log-driver-none", logs.returncode == 1 and one_line_error(logs.stderr),
              detail=f"{logs.stderr!r}", leaks=[f"log written: {name}" for name in big])
    finally:
        engine.out("rm", "-f", cid)


def test_host_config_values_through_the_api(service: Service) -> None:
    """DeviceCgroupRules, MemorySwappiness, UTSMode, LogConfig and bind propagation modes a client
    may send wrong, of the wrong type or mixed: each a 400 in one line, nothing made."""
    for case, host in (
        *((f"device-rule-{rule!r}", {"DeviceCgroupRules": [rule]}) for rule in ("c 1:3 r\na *:* rwm", "a", "c 1:3 rw\x00", 7)),
        *((f"swappiness-{v!r}", {"MemorySwappiness": v}) for v in (101, -2, "x", 1e30, True, 2**70)),
        *((f"uts-{v!r}", {"UTSMode": v}) for v in ("private", "container:x", 5)),
        *((f"log-{v!r}", {"LogConfig": {"Type": v}}) for v in ("bogus", 5, "syslog")),
        *((f"bind-mode-{v}", {"Binds": [f"/tmp:/x:{v}"]}) for v in ("rshared,rslave", "ro,rw", "bogus")),
    ):
        reply = service.request("POST", "/containers/create",
                                body={"Image": "busybox", "HostConfig": {**host, "NetworkMode": "none"}})
        score("api", case, reply.status == 400 and b"Traceback" not in reply.body and b"internal" not in reply.body,
              detail=f"{reply.status} {reply.body[:160]!r}")
    listed = service.request("GET", "/containers/json?all=1").json()
    score("api", "host-config-values-made-nothing", listed == [], detail=str(listed)[:200])
