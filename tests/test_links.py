"""Legacy links: Docker's environment variables and /etc/hosts lines, exactly."""

from __future__ import annotations

import pytest

from engine.errors import InvalidArgument
from engine.network import links


def test_env_for_one_port_and_child_env() -> None:
    target = links.LinkTarget(
        name="db", alias="database", ip="172.17.0.2", hostname="0123456789ab",
        exposed_ports=["5432/tcp"], env=["POSTGRES_USER=app", "PATH=/usr/bin", "HOME=/root", "EMPTY=", "BROKEN"],
    )
    assert links.link_env("web", target) == [
        "DATABASE_PORT=tcp://172.17.0.2:5432",
        "DATABASE_PORT_5432_TCP=tcp://172.17.0.2:5432",
        "DATABASE_PORT_5432_TCP_ADDR=172.17.0.2",
        "DATABASE_PORT_5432_TCP_PORT=5432",
        "DATABASE_PORT_5432_TCP_PROTO=tcp",
        "DATABASE_NAME=/web/database",
        "DATABASE_ENV_POSTGRES_USER=app",
        "DATABASE_ENV_EMPTY=",
    ]
    assert links.hosts_entry(target) == ("172.17.0.2", "database 0123456789ab db")


def test_env_orders_ports_and_groups_contiguous_ranges_like_docker() -> None:
    target = links.LinkTarget(name="my-svc", alias="my-svc", ip="10.0.0.5", exposed_ports=["82/tcp", "80/udp", "81/tcp", "80/tcp"])
    env = links.link_env("/client", target)
    assert env[0] == "MY_SVC_PORT=tcp://10.0.0.5:80"  # lowest port, tcp first
    # 80/tcp, 80/udp, 81, 82 are contiguous by number: one START/END group, as moby's nextContiguous
    assert env[1:7] == [
        "MY_SVC_PORT_80_TCP_START=tcp://10.0.0.5:80",
        "MY_SVC_PORT_80_TCP_ADDR=10.0.0.5",
        "MY_SVC_PORT_80_TCP_PROTO=tcp",
        "MY_SVC_PORT_80_TCP_PORT_START=80",
        "MY_SVC_PORT_80_TCP_END=tcp://10.0.0.5:82",
        "MY_SVC_PORT_80_TCP_PORT_END=82",
    ]
    assert "MY_SVC_PORT_80_UDP=udp://10.0.0.5:80" in env
    assert "MY_SVC_PORT_82_TCP_PORT=82" in env
    assert env[-1] == "MY_SVC_NAME=/client/my-svc"
    assert links.hosts_entry(target) == ("10.0.0.5", "my-svc")  # alias == name: listed once


def test_no_ports_means_no_port_variables() -> None:
    env = links.link_env("web", links.LinkTarget(name="cache", alias="cache", ip="10.0.0.9"))
    assert env == ["CACHE_NAME=/web/cache"]


def test_parse_link() -> None:
    assert links.parse_link("db") == ("db", "db")
    assert links.parse_link("/db:database") == ("db", "database")
    for bad in ("", ":x", "db:a/b"):
        with pytest.raises(InvalidArgument):
            links.parse_link(bad)
