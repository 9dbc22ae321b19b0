"""`docker events` times and image references from a hostile client of the socket and the CLI:
durations of 400 digits (a float infinity), Unix times past an int64, malformed times and filters;
image names that climb, hold a NUL, are empty digests or 300 characters, given to inspect, rmi,
history, tag, save and create.

What must hold: each is a 400/404 in one line (the CLI: one `Error:` line), never a 500 or an
"internal error", and the service keeps answering.
"""

from __future__ import annotations

import urllib.parse

import pytest

from tests.faults.scoreboard import one_line_error, score, stderr_escapes
from tests.service_support import Service, service_fixture  # noqa: F401 - `service` fixture
from tests.test_lifecycle_support import engine_fixture  # noqa: F401 - `engine` fixture

pytestmark = pytest.mark.root

HUGE_DURATION = "9" * 400 + "h"  # float("9" * 400) is inf
PAST_INT64 = "9" * 5000  # past int()'s 4300 digits


def test_hostile_event_times(service: Service) -> None:
    for case, query in (("events-inf-since", f"since={HUGE_DURATION}&until=1"),
                        ("events-inf-until", f"since=1&until={HUGE_DURATION}"),
                        ("events-5000-digit-since", f"since={PAST_INT64}&until=1"),
                        ("events-malformed-since", "since=0.5.5&until=1"),
                        ("events-unknown-filter", "since=1&until=2&filters=" + urllib.parse.quote('{"type":["x"]}'))):
        reply = service.request("GET", f"/events?{query}", timeout=10)
        score("api", case, reply.status == 400 and b"internal" not in reply.body, detail=f"{reply.status} {reply.body[:120]!r}",
              escapes=["traceback"] if b"Traceback" in reply.body else [])
    for case, args in (("cli-events-inf-since", ("--since", HUGE_DURATION, "--until", "1")),
                       ("cli-events-5000-digit-until", ("--since", "1", "--until", PAST_INT64))):
        result = service.engine.cli("events", *args)
        score("flags", case, result.returncode != 0 and one_line_error(result.stderr) and b"internal" not in result.stderr,
              detail=f"{result.returncode} {result.stderr[:160]!r}", escapes=stderr_escapes(result.stderr))
    ok = service.request("GET", "/events?since=1&until=2", timeout=10)
    score("api", "events-still-answer", ok.status == 200, detail=str(ok.status))


def test_hostile_image_references(service: Service) -> None:
    names = ("sha256:", "sha256:zz", "sha256:" + "a" * 64, "busybox@sha256:abc", "BusyBox", "a" * 300, "x:y:z",
             "../../etc/passwd", "a\x00b", "-", ":tag", "@", "busybox:" + "t" * 200, "é")
    bad = []
    for name in names:
        q = urllib.parse.quote(name, safe="")
        for method, path, body in (("GET", f"/images/{q}/json", None), ("DELETE", f"/images/{q}", None),
                                   ("GET", f"/images/{q}/history", None), ("GET", f"/images/get?names={q}", None),
                                   ("POST", f"/images/{q}/tag?repo=x&tag=y", None),
                                   ("POST", "/containers/create", {"Image": name})):
            reply = service.request(method, path, body=body, timeout=10)
            if not 400 <= reply.status < 500 or b"internal" in reply.body or b"Traceback" in reply.body:
                bad.append(f"{method} {path[:40]} {reply.status} {reply.body[:80]!r}")
    score("api", "hostile-image-references", not bad, detail="; ".join(bad[:3]))
    listed = service.request("GET", "/containers/json?all=1").json()
    score("api", "hostile-image-references-made-nothing", listed == [], detail=str(listed)[:160])
