"""Network names against a hostile user: Docker takes any name that is not blank, and dockui stores
each under a quoted file name. Names that climb (`..`, `../../x`, `/`), that quote alike (`a b` and
`a%20b`, `%`), that are very long, unicode, or NUL (through the API), and names that look like
another network's ID or a prefix of it; the predefined `bridge` removed by its ID.

What must hold: every name round-trips (create, inspect, rm by that name reach that network and no
other), no file is written outside the networks directory, a full ID always means the network with
that ID (moby's FindNetwork order: ID, then name, then ID prefix), and the predefined networks are
never removed, by name or by ID.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest

from tests.faults.scoreboard import one_line_error, score, stderr_escapes
from tests.service_support import Service, service_fixture  # noqa: F401 - `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - `engine` fixture

pytestmark = pytest.mark.root

HOSTILE_NAMES = ("..", "../../etc/x", "/", "a b", "a%20b", "%", "réseau:☃", "x" * 300)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "/.trash" not in str(p)}


def _name_of(engine: Engine, ref: str) -> str:
    return engine.out("network", "inspect", "-f", "{{.Name}}", ref).rstrip("\n")


def test_hostile_network_names_round_trip_and_stay_in_their_directory(engine: Engine) -> None:
    engine.out("network", "create", "warm-up")  # the network state's own files (lock, IPAM) exist before
    engine.out("network", "rm", "warm-up")
    root_files = _files(engine.config.root)
    made = []
    try:
        for name in HOSTILE_NAMES:
            created = engine.cli("network", "create", name)
            if created.returncode == 0:
                made.append(name)
            new = _files(engine.config.root) - root_files
            outside = [f for f in new if not Path(engine.config.root, f).is_relative_to(engine.config.network_dir)]
            score("network", f"create-name-{name[:12]!r}", created.returncode == 0,
                  detail=created.stderr.decode()[-160:],
                  escapes=stderr_escapes(created.stderr) + [f"file outside the networks directory: {f}" for f in outside])
        seen = engine.out("network", "inspect", "-f", "{{.Name}}", *HOSTILE_NAMES).splitlines()
        score("network", "each-name-inspects-its-own", seen == list(HOSTILE_NAMES),
              detail=str([(a[:12], b[:12]) for a, b in zip(HOSTILE_NAMES, seen, strict=False) if a != b]))
        # two names that quote alike: removing one leaves the other
        engine.out("network", "rm", "a b")
        made.remove("a b")
        score("network", "quote-alike-names-are-two", _name_of(engine, "a%20b") == "a%20b"
              and engine.cli("network", "inspect", "a b").returncode == 1)
        removed = engine.cli("network", "rm", *made)
        if removed.returncode == 0:
            made.clear()
        score("network", "rm-each-by-its-name", removed.returncode == 0 and removed.stdout.decode().splitlines()
              == [n for n in HOSTILE_NAMES if n != "a b"], detail=removed.stderr.decode()[-160:],
              escapes=stderr_escapes(removed.stderr))
        leftover = sorted(_files(engine.config.root) - root_files)
        score("network", "nothing-left-after-rm", not leftover, leaks=[f"left: {f}" for f in leftover])
    finally:
        if made:
            engine.cli("network", "rm", *made)


def test_a_name_that_is_another_networks_id_never_stands_in_for_it(engine: Engine) -> None:
    victim_id = engine.out("network", "create", "victim").strip()
    impostor_id = engine.out("network", "create", victim_id).strip()  # named like the victim's full ID
    prefix_named = engine.out("network", "create", victim_id[:12]).strip()
    try:
        score("network", "full-id-means-that-network", _name_of(engine, victim_id) == "victim",
              detail=f"{victim_id} resolved to {_name_of(engine, victim_id)[:20]}")
        score("network", "name-before-id-prefix", _name_of(engine, victim_id[:12]) == victim_id[:12])
        score("network", "impostor-by-its-own-id", _name_of(engine, impostor_id) == victim_id)
        removed = engine.cli("network", "rm", victim_id)
        score("network", "rm-by-full-id-removes-that-network",
              removed.returncode == 0 and engine.cli("network", "inspect", "victim").returncode == 1
              and _name_of(engine, impostor_id) == victim_id, detail=removed.stderr.decode())
    finally:
        for ref in (victim_id, impostor_id, prefix_named):
            engine.cli("network", "rm", ref)


def test_the_predefined_bridge_is_never_removed_by_its_id(engine: Engine) -> None:
    """(An idle root's default bridge may be collected by another root's create between two of
    its verbs, never during one of them nor during its teardown's removal (tests/test_bridge_collection.py),
    and chosen again with a new ID: so the refusal itself is the evidence, not the ID staying the same.)"""
    bridge = json.loads(engine.out("network", "inspect", "bridge"))[0]["Id"]
    for case, ref in (("rm-bridge-by-id", bridge), ("rm-bridge-by-id-prefix", bridge[:12]), ("rm-bridge-by-name", "bridge")):
        result = engine.cli("network", "rm", ref)
        score("network", case, result.returncode == 1 and one_line_error(result.stderr)
              and b"bridge is a pre-defined network" in result.stderr,
              detail=f"{result.returncode} {result.stdout!r} {result.stderr[-160:]!r}", escapes=stderr_escapes(result.stderr))


def test_hostile_names_and_bare_env_through_the_api(service: Service) -> None:
    engine = service.engine
    for case, name in (("api-name-with-nul", "a\u0000b"), ("api-name-with-slash", "team/../web"),
                       ("api-name-unicode", "réseau ☃")):
        made = service.request("POST", "/networks/create", body={"Name": name})
        path = f"/networks/{urllib.parse.quote(name, safe='')}"
        seen = service.request("GET", path)
        gone = service.request("DELETE", path)
        score("network", case, made.status == 201 and seen.status == 200 and seen.json()["Name"] == name
              and gone.status == 204 and service.request("GET", path).status == 404,
              detail=f"{made.status} {seen.status} {gone.status} {made.body[:120]!r}",
              escapes=["traceback"] if b"Traceback" in made.body + seen.body + gone.body else [])
    # connect by a hostile name, with hostile endpoint settings: each a 400 naming the value
    service.request("POST", "/networks/create", body={"Name": "a b/c"})
    cid = engine.out("create", "busybox", "true").strip()
    try:
        for case, settings in (("connect-multicast-mac", {"MacAddress": "ff:ff:ff:ff:ff:ff"}),
                               ("connect-bad-mac", {"MacAddress": "zz"}),
                               ("connect-bad-ipv4", {"IPAMConfig": {"IPv4Address": "999.1.1.1"}}),
                               ("connect-unspecified-link-local", {"IPAMConfig": {"LinkLocalIPs": ["0.0.0.0"]}}),
                               ("connect-alias-with-newline", {"Aliases": ["x\n10.9.9.9 evil.example"]})):
            reply = service.request("POST", "/networks/a%20b%2Fc/connect", body={"Container": cid, "EndpointConfig": settings})
            score("network", case, reply.status == 400 and b"Traceback" not in reply.body, detail=f"{reply.status} {reply.body[:120]!r}")
        joined = service.request("POST", "/networks/a%20b%2Fc/connect", body={"Container": cid})
        seen = service.request("GET", "/networks/a%20b%2Fc").json()
        score("network", "connect-by-hostile-name", joined.status == 200 and seen.get("Name") == "a b/c", detail=str(joined.status))
    finally:
        engine.cli("rm", "-f", cid)
        service.request("DELETE", "/networks/a%20b%2Fc")
    blank = service.request("POST", "/networks/create", body={"Name": " \t"})
    score("network", "api-blank-name", blank.status == 400 and b"name is empty" in blank.body, detail=str(blank.body))
    # a bare KEY in Env: never the service's own environment (the docker CLI resolves it client-side);
    # moby's ReplaceOrAppendEnvValues reads it as "unset the image's", so PATH goes too
    body = {"Image": "busybox", "Cmd": ["env"], "Env": ["DOCKUI_CONFIG", "PATH", "HOME"],
            "HostConfig": {"NetworkMode": "none"}}
    made = service.request("POST", "/containers/create", body=body)
    cid = made.json().get("Id", "") if made.status == 201 else ""
    try:
        out = engine.cli("start", "-a", cid).stdout.decode() if cid else ""
        leaked = [line for line in out.splitlines() if line.startswith("DOCKUI_CONFIG=")]
        score("env", "api-bare-key-env", made.status == 201 and "HOME=/root" in out and "PATH=" not in out, detail=f"{made.status} {out!r}",
              escapes=[f"the service's environment in the container: {leaked}"] if leaked else [])
    finally:
        if cid:
            engine.cli("rm", "-f", cid)


def test_hostile_ipam_values_on_an_ipv6_network(engine: Engine) -> None:
    """One dual-stack network (its range holds one dynamic IPv6 address, an aux address reserved) and
    one container on it: ranges, aux and gateway addresses outside the subnet are refused at create;
    a static address that is another container's, the gateway, an aux address, the network's or a
    multicast address, or of the wrong family is refused at run, in one line, nothing runs with it
    (a conflict found at start leaves the created container, as Docker's run does; `rm` removes it)."""
    for case, args in (("range-outside-subnet", ("--ipv6", "--subnet", "fd99::/64", "--ip-range", "fd98::/80")),
                       ("aux-outside-subnet", ("--ipv6", "--subnet", "fd99::/64", "--aux-address", "x=fd98::1")),
                       ("range-bigger-than-subnet", ("--ipv6", "--subnet", "fd99::/64", "--ip-range", "fd99::/60"))):
        made = engine.cli("network", "create", *args, "refused")
        score("network", case, made.returncode == 1 and one_line_error(made.stderr)
              and engine.cli("network", "inspect", "refused").returncode == 1,
              detail=made.stderr.decode()[-160:], escapes=stderr_escapes(made.stderr))
    engine.out("network", "create", "--subnet", "10.240.0.0/24", "--ipv6", "--subnet", "fd99::/64",
               "--ip-range", "fd99::/126", "--aux-address", "held=fd99::2", "v6")
    victim = engine.out("run", "-d", "--network", "v6", "busybox", "sleep", "60").strip()
    try:
        taken = engine.inspect(victim)["NetworkSettings"]["Networks"]["v6"]["GlobalIPv6Address"]
        before = engine.out("ps", "-aq")
        for case, flags in (("ip6-of-another-container", ("--ip6", taken)), ("ip6-gateway", ("--ip6", "fd99::1")),
                            ("ip6-aux-address", ("--ip6", "fd99::2")), ("ip6-subnet-address", ("--ip6", "fd99::")),
                            ("ip6-multicast", ("--ip6", "ff02::1")), ("ip6-outside", ("--ip6", "fd98::5")),
                            ("ip6-v4-text", ("--ip6", "10.240.0.5")), ("ip-v6-text", ("--ip", "fd99::9")),
                            ("ip6-range-exhausted", ())):
            result = engine.cli("run", "-d", "--network", "v6", *flags, "busybox", "sleep", "60")
            left = [c for c in engine.out("ps", "-q", "--filter", "status=running").split() if c not in before]
            for created in set(engine.out("ps", "-aq").split()) - set(before.split()):
                engine.out("rm", created)  # a conflict found at start leaves it created, as Docker's run
            score("network", case, result.returncode == 125 and one_line_error(result.stderr) and not left,
                  detail=f"{result.returncode} {result.stderr[-160:]!r} running: {left}", escapes=stderr_escapes(result.stderr))
        still = engine.cli("exec", victim, "ip", "-6", "addr", "show", "eth0").stdout.decode()
        score("network", "victim-keeps-its-address", taken in still, detail=still[-200:])
    finally:
        engine.cli("rm", "-f", victim)
        engine.cli("network", "rm", "v6")
