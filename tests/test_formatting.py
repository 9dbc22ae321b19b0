"""The one formatter of each kind (engine/util/units, engine/util/timefmt, engine/container/status,
engine/container/names) that the CLI and the TUI share: Docker's texts, and the TUI's compact ones
agreeing with them."""

from __future__ import annotations

import calendar

import pytest

from engine.container.names import valid_name, validate_name
from engine.container.status import ports_text, status_text
from engine.errors import InvalidArgument
from engine.util.timefmt import format_rfc3339, now_rfc3339, parse_rfc3339
from engine.util.units import binary_size, decimal_size, human_duration, human_size, short_binary_size


def test_sizes_as_docker_and_the_tui_print_them() -> None:
    assert [decimal_size(n) for n in (0, 648, 1000, 1234, 999_999, 5_300_000_000)] == [
        "0B", "648B", "1kB", "1.23kB", "1e+03kB", "5.3GB"]
    assert human_size(1234) == decimal_size(1234)
    assert binary_size(1.5 * 2**20) == "1.5MiB" and binary_size(2087354368) == "1.944GiB"
    assert [short_binary_size(n) for n in (0, 1023, 1024, 1536 * 2**20)] == ["0B", "1023B", "1.0KiB", "1.5GiB"]


def test_rfc3339_round_trip_fractions_and_offsets() -> None:
    assert parse_rfc3339(format_rfc3339(1_700_000_000_123_456_789)) == pytest.approx(1_700_000_000.123456789)
    assert format_rfc3339(1_700_000_000_123_456_789, digits=6) == "2023-11-14T22:13:20.123456Z"
    base = calendar.timegm((2023, 5, 19, 16, 41, 53, 0, 0, 0))
    assert parse_rfc3339("2023-05-19T16:41:53Z") == base
    assert parse_rfc3339("2023-05-19T18:41:53.5+02:00") == base + 0.5
    assert parse_rfc3339("2023-05-19T16:41:53") == base  # no zone: UTC
    for bad in ("", None, "0001-01-01T00:00:00Z", "yesterday", "2023-13-01T00:00:00Z"):
        assert parse_rfc3339(bad) is None
    assert abs(parse_rfc3339(now_rfc3339()) - calendar.timegm(__import__("time").gmtime())) < 2


def test_cli_and_tui_status_texts_agree() -> None:
    now = 1e9
    for compact in (False, True):
        assert status_text("removing", 0, None, None, now, compact=compact) == "Removal In Progress"
        assert status_text("restarting", 1, now - 5, now - 3, now, compact=compact).startswith("Restarting (1)")
        assert status_text("dead", 0, None, None, now, compact=compact).startswith("Dead")
        assert status_text("created", None, None, None, now, compact=compact) == "Created"
    assert status_text("restarting", 1, now - 5, now - 3, now) == "Restarting (1) 3 seconds ago"
    assert status_text("exited", 137, now - 99, now - 90, now) == "Exited (137) About a minute ago"
    assert status_text("exited", 137, now - 99, now - 90, now, compact=True) == "Exited (137) 1 min ago"
    assert status_text("paused", 0, now - 7200, None, now) == "Up 2 hours (Paused)"
    assert human_duration(0.5) == "Less than a second"


def test_ports_text() -> None:
    ports = {"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "443/tcp": None}
    assert ports_text(ports) == "0.0.0.0:8080->80/tcp, 443/tcp"
    assert ports_text(None) == ""


def test_one_container_name_rule() -> None:
    assert valid_name("ab") and valid_name("/web-1") and not valid_name("a") and not valid_name("-x")
    assert validate_name("/web") == "web"
    with pytest.raises(InvalidArgument, match="Invalid container name"):
        validate_name("a")
