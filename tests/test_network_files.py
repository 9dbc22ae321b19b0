"""The container's /etc/hosts and /etc/resolv.conf, as Docker writes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import InvalidArgument
from engine.network import hostsfiles


def test_hosts_content() -> None:
    text = hostsfiles.hosts_content("172.17.0.2", ["0123456789ab", "web", "web"], [("10.0.0.1", "db.local")])
    assert text == (
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "ff00::0\tip6-mcastprefix\n"
        "ff02::1\tip6-allnodes\n"
        "ff02::2\tip6-allrouters\n"
        "10.0.0.1\tdb.local\n"
        "172.17.0.2\t0123456789ab web\n"
    )
    assert hostsfiles.hosts_content(None, ["x"]).count("\n") == 6  # --network none: no own address


def test_add_host_parsing() -> None:
    assert hostsfiles.parse_add_host("db.local:10.0.0.1") == ("10.0.0.1", "db.local")
    assert hostsfiles.parse_add_host("v6:[::1]") == ("::1", "v6")
    assert hostsfiles.parse_add_host("api=10.0.0.2") == ("10.0.0.2", "api")
    for bad in ("nohost", "x:notanip", ":10.0.0.1"):
        with pytest.raises(InvalidArgument):
            hostsfiles.parse_add_host(bad)


HOST = """# generated
nameserver 127.0.0.53
nameserver 10.0.0.53
nameserver ::1
search corp.example lab.example
options ndots:2 timeout:1
"""


def test_resolv_conf_drops_loopback_nameservers_and_keeps_the_rest() -> None:
    assert hostsfiles.resolv_conf_content(HOST) == (
        "search corp.example lab.example\nnameserver 10.0.0.53\noptions ndots:2 timeout:1\n"
    )


def test_resolv_conf_falls_back_to_dockers_defaults_when_only_loopback_is_left() -> None:
    assert hostsfiles.resolv_conf_content("nameserver 127.0.0.1\n") == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_dns_flags_replace_the_hosts_lines() -> None:
    text = hostsfiles.resolv_conf_content(HOST, dns=["10.9.9.9"], dns_search=["."], dns_options=["rotate"])
    assert text == "nameserver 10.9.9.9\noptions rotate\n"
    with pytest.raises(InvalidArgument, match="--dns"):
        hostsfiles.resolv_conf_content(HOST, dns=["dns.example"])


def test_write_in_place_keeps_the_inode(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("a long first version\n")
    inode = path.stat().st_ino
    hostsfiles.write_in_place(path, "short\n")
    assert path.read_text() == "short\n" and path.stat().st_ino == inode
