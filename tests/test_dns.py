"""Docker's embedded DNS on user-defined networks, end to end through `dockui`: real containers,
busybox's nslookup and ping inside them, the resolver process of the engine root.

Forwarding is checked only against an upstream this test runs on loopback (the engine's
`dns_upstreams` setting points at it): no query leaves the host.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service_support import Service, service_fixture  # noqa: F401 - the `service` fixture
from tests.test_lifecycle_support import (  # noqa: F401 - the `engine` fixture
    Engine,
    engine_fixture,
    wait_until,
)
from tests.test_network import free_subnet

KNOWN = ("known.dns-test", "10.9.8.7")  # the one name the loopback upstream knows


class LoopbackUpstream:
    """A DNS server on 127.0.0.1: KNOWN gets an A record, every other name NXDOMAIN; it records
    the names it was asked. Built by hand, independent of the engine's DNS code."""

    def __init__(self) -> None:
        while True:  # one port number free for both UDP and TCP
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
            self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                self.listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.sock.close()
                self.listener.close()
        self.listener.listen(4)
        self.sock.settimeout(0.2)
        self.listener.settimeout(0.2)
        self.asked: list[str] = []
        self.stopping = False
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._serve_udp, self._serve_tcp)]
        for thread in self.threads:
            thread.start()

    def _answer(self, data: bytes, transport: str) -> bytes:
        pos, labels = 12, []
        while data[pos]:
            labels.append(data[pos + 1:pos + 1 + data[pos]].decode())
            pos += 1 + data[pos]
        end = pos + 5
        name = ".".join(labels).lower()
        qtype = struct.unpack_from("!H", data, pos + 1)[0]
        self.asked.append(name if transport == "udp" else f"{transport}:{name}")
        known = name == KNOWN[0]
        answer = b""
        if known and qtype == 1:
            answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(KNOWN[1])
        flags = 0x8180 | (0 if known else 3)
        header = data[:2] + struct.pack("!HHHHH", flags, 1, 1 if answer else 0, 0, 0)
        return header + data[12:end] + answer

    def _serve_udp(self) -> None:
        while not self.stopping:
            try:
                data, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            self.sock.sendto(self._answer(data, "udp"), addr)

    def _serve_tcp(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                size = int.from_bytes(conn.recv(2), "big")
                data = b""
                while len(data) < size:
                    data += conn.recv(size - len(data))
                reply = self._answer(data, "tcp")
                conn.sendall(len(reply).to_bytes(2, "big") + reply)

    def close(self) -> None:
        self.stopping = True
        for thread in self.threads:
            thread.join()
        self.sock.close()
        self.listener.close()


@pytest.fixture
def upstream() -> Iterator[LoopbackUpstream]:
    server = LoopbackUpstream()
    yield server
    server.close()


def _with_upstream(engine: Engine, upstream: LoopbackUpstream) -> None:
    """The engine's config file (and in-process config) point the embedded DNS at the upstream."""
    path = Path(engine.env["DOCKUI_CONFIG"])
    settings = json.loads(path.read_text())
    settings["dns_upstreams"] = [f"127.0.0.1:{upstream.port}"]
    path.write_text(json.dumps(settings))
    engine.config.dns_upstreams = settings["dns_upstreams"]


def _resolver_pids(engine: Engine) -> list[int]:
    """The resolver processes of this root (engine_processes skips command lines naming pytest,
    which a test root's path does)."""
    wanted = f"engine.network.dns\0--root\0{engine.config.root}\0".encode()
    found = []
    for entry in os.scandir("/proc"):
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                if entry.name.isdigit() and wanted in f.read():
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def _lookup(engine: Engine, container: str, name: str, server: str = "127.0.0.11") -> tuple[int, str]:
    result = engine.cli("exec", container, "nslookup", name, *([server] if server else []))
    return result.returncode, (result.stdout + result.stderr).decode()


def _in_netns(pid: int, fn):  # noqa: ANN001, ANN202
    """fn() on a thread of ours that joined the network namespace of process `pid` (a thread's
    namespace is its own: the test process stays where it is)."""
    import ctypes

    result: list = []

    def run() -> None:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            assert ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) == 0
        finally:
            os.close(fd)
        try:
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            result.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def _port_53_free_and_tcp_answer(name: str) -> bytes:
    """Inside a served container: port 53 can still be bound on every address (the resolver sits
    on high ports behind a DNAT), and a query over TCP to 127.0.0.11:53 is answered."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("0.0.0.0", 53))
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    query = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", 1, 1)
    with socket.create_connection(("127.0.0.11", 53), timeout=5) as sock:
        sock.sendall(len(query).to_bytes(2, "big") + query)
        size = int.from_bytes(sock.recv(2), "big")
        reply = b""
        while len(reply) < size:
            reply += sock.recv(size - len(reply))
    return reply


def _getent(engine: Engine, container: str, database: str, name: str) -> str:
    """`getent DATABASE NAME` of the host's glibc, run in the container's network namespace with
    the container's resolv.conf bound over /etc/resolv.conf in a private mount namespace."""
    doc = engine.inspect(container)
    script = (f'mount --bind "{doc["ResolvConfPath"]}" /etc/resolv.conf && '
              f'exec nsenter -t {doc["State"]["Pid"]} -n getent {database} {name}')
    result = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, (database, name, result.stdout, result.stderr)
    return result.stdout


def _settled_fd_count(pid: int) -> int:
    """The number of open files of `pid` once it is the same for 0.2 s (a connection the peer
    closed is closed by the resolver at its next turn, not at once)."""
    import time

    counts: list[int] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        counts.append(len(os.listdir(f"/proc/{pid}/fd")))
        if len(counts) >= 5 and len(set(counts[-5:])) == 1:
            break
        time.sleep(0.05)
    return counts[-1]


def _ip(engine: Engine, container: str, network: str) -> str:
    return engine.inspect(container)["NetworkSettings"]["Networks"][network]["IPAddress"]


@pytest.mark.root
def test_names_aliases_scope_live_updates_forwarding_and_clean_exit(engine: Engine, upstream: LoopbackUpstream) -> None:
    _with_upstream(engine, upstream)
    for net in ("dnsa", "dnsb"):
        engine.out("network", "create", "--subnet", str(free_subnet(prefix=28)), net)
    engine.out("network", "create", "--internal", "--subnet", str(free_subnet(prefix=28)), "dnsi")
    try:
        engine.out("run", "-d", "--name", "a1", "--network", "dnsa", "--network-alias", "web", "busybox", "sleep", "300")
        engine.out("run", "-d", "--name", "peer", "--network", "dnsa", "busybox", "sleep", "300")
        engine.out("run", "-d", "--name", "b1", "--network", "dnsb", "busybox", "sleep", "300")
        a1 = _ip(engine, "a1", "dnsa")
        assert len(_resolver_pids(engine)) == 1  # one resolver for the root, whatever the containers

        resolv = engine.out("exec", "peer", "cat", "/etc/resolv.conf")
        assert "nameserver 127.0.0.11" in resolv.splitlines() and "ndots:0" in resolv
        # The container's name, its alias, its short ID, as nslookup asks 127.0.0.11 and through resolv.conf.
        short_id = engine.inspect("a1")["Id"][:12]
        for name, server in (("a1", "127.0.0.11"), ("web", ""), (short_id, "127.0.0.11"), ("WEB.dnsa", "")):
            code, out = _lookup(engine, "peer", name, server)
            assert code == 0 and f"Address: {a1}" in out, (name, out)
        assert "1 packets received" in engine.out("exec", "peer", "ping", "-c1", "-W3", "web")
        peer_pid = engine.inspect("peer")["State"]["Pid"]
        reply = _in_netns(peer_pid, lambda: _port_53_free_and_tcp_answer("web"))
        assert reply[:2] == b"\x42\x42" and reply.endswith(socket.inet_aton(a1))

        # Scoped per network: b1 (on dnsb only) does not know a1; the name goes upstream, NXDOMAIN.
        code, out = _lookup(engine, "b1", "a1")
        assert code != 0 and "NXDOMAIN" in out and "a1" in upstream.asked
        # Anything else is forwarded to the upstream, whose answers come back.
        code, out = _lookup(engine, "peer", KNOWN[0])
        assert code == 0 and f"Address: {KNOWN[1]}" in out
        code, out = _lookup(engine, "peer", "nosuch.dns-test")
        assert code != 0 and "NXDOMAIN" in out and "nosuch.dns-test" in upstream.asked
        # A query that came over TCP goes upstream over TCP.
        reply = _in_netns(peer_pid, lambda: _port_53_free_and_tcp_answer(KNOWN[0]))
        assert reply.endswith(socket.inet_aton(KNOWN[1])) and f"tcp:{KNOWN[0]}" in upstream.asked

        # Live: a new container resolves at once, a removed one stops resolving; nobody restarts.
        [resolver] = _resolver_pids(engine)
        fds = _settled_fd_count(resolver)  # the TCP exchanges above may still be closing
        engine.out("run", "-d", "--name", "late", "--network", "dnsa", "busybox", "sleep", "300")
        code, out = _lookup(engine, "peer", "late")
        assert code == 0 and f"Address: {_ip(engine, 'late', 'dnsa')}" in out
        assert _settled_fd_count(resolver) == fds + 3  # its UDP and TCP sockets, its pidfd
        engine.out("rm", "-f", "late")
        code, out = _lookup(engine, "peer", "late")
        assert code != 0 and "NXDOMAIN" in out
        # Closed with the container (they would keep its namespace alive).
        assert wait_until(lambda: len(os.listdir(f"/proc/{resolver}/fd")) == fds)

        # network connect --alias: b1 now shares dnsb with a1, and knows it by its name and that alias.
        engine.out("network", "connect", "--alias", "db", "dnsb", "a1")
        [a1_b] = [c["IPv4Address"].split("/")[0] for c in json.loads(engine.out("network", "inspect", "dnsb"))[0]["Containers"].values()
                  if c["Name"] == "a1"]
        for name in ("a1", "db"):
            code, out = _lookup(engine, "b1", name)
            assert code == 0 and f"Address: {a1_b}" in out and a1 not in out, (name, out)
        assert _lookup(engine, "peer", "db")[0] != 0  # the alias is dnsb's only

        # Only on an --internal network: its names resolve, nothing is forwarded (REFUSED, as Docker
        # since CVE-2024-29018: forwarding from the host's namespace would leave the network).
        engine.out("run", "-d", "--name", "i1", "--network", "dnsi", "busybox", "sleep", "300")
        assert _lookup(engine, "i1", "i1")[0] == 0
        code, out = _lookup(engine, "i1", "outside.dns-test")
        assert code != 0 and "REFUSED" in out and "outside.dns-test" not in upstream.asked, out

        # A resolver killed (a crash) is started again by the next command's reconcile.
        [pid] = _resolver_pids(engine)
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: pid not in _resolver_pids(engine))
        engine.out("ps")
        code, out = _lookup(engine, "peer", "web")
        assert code == 0 and f"Address: {a1}" in out

        # Nothing is left once the last container on a user network is gone: no process, no socket.
        engine.out("rm", "-f", "a1", "peer", "b1", "i1")
        assert wait_until(lambda: not _resolver_pids(engine)), _resolver_pids(engine)
        from engine.network.dns.client import socket_name

        name = socket_name(engine.config)[1:].decode()
        assert not any(line.endswith("@" + name) for line in Path("/proc/net/unix").read_text().splitlines())
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        assert "dockui_dns" not in tables  # the DNAT tables were the containers' own, never the host's
    finally:
        engine.cli("rm", "-f", "a1", "peer", "b1", "late", "i1")
        for net in ("dnsa", "dnsb", "dnsi"):
            engine.cli("network", "rm", net)


@pytest.mark.root
def test_default_bridge_keeps_the_legacy_resolv_conf(engine: Engine) -> None:
    out = engine.out("run", "--rm", "busybox", "cat", "/etc/resolv.conf")
    assert "127.0.0.11" not in out and "nameserver" in out
    result = engine.cli("run", "--rm", "--network-alias", "x", "busybox", "true")
    assert result.returncode == 125
    assert b"network-scoped alias is supported only for containers in user defined networks" in result.stderr


COMPOSE_FILE = """version: "2.4"
services:
  db:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo db-ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
  web:
    image: busybox
    depends_on: [db]
    command: ["sleep", "300"]
"""


@pytest.mark.root
def test_compose_services_reach_each_other_by_service_name(service: Service, tmp_path: Path) -> None:
    """docker-compose (Debian's 1.29) through the Engine API service: the service names arrive as
    aliases (at create, and by compose's disconnect/connect of the created container), web reaches
    db by its service name, and `down` leaves no resolver behind."""
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([compose, "-p", "dkdns", *args], cwd=tmp_path, env=service.env, capture_output=True, timeout=120)

    try:
        up = run("up", "-d")
        assert up.returncode == 0, up.stderr.decode()
        lookup = run("exec", "-T", "web", "nslookup", "db")
        assert lookup.returncode == 0 and b"Address: " in lookup.stdout.split(b"Name:")[-1], lookup.stdout
        fetch = ("exec", "-T", "web", "wget", "-qO-", "http://db:8080/")  # httpd may be starting
        assert wait_until(lambda: run(*fetch).stdout == b"db-ok\n", timeout=15), run(*fetch)
    finally:
        down = run("down", "-t", "0")  # busybox as PID 1 ignores SIGTERM: no 10 s wait
    assert down.returncode == 0, down.stderr.decode()
    assert wait_until(lambda: not _resolver_pids(service.engine)), _resolver_pids(service.engine)


# ------------------------------------------------------------------ the pure parts, as tables


def _query(name: str, qtype: int = 1, qid: int = 0xBEEF) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1) + labels + b"\0" + struct.pack("!HH", qtype, 1) + b"\0\0\x29\x10\0\0\0\0\0\0\0"


@pytest.mark.parametrize(("packet", "expected"), [
    (_query("Web.Example"), ("web.example", 1)),
    (_query("x", 28), ("x", 28)),
    (_query("web")[:-20], None),  # cut inside the question
    (b"\xbe\xef\x81\x80" + _query("web")[4:], None),  # a reply, not a query
    (b"\0" * 5, None),
    (_query("web")[:12] + b"\xc0\x0c\0\x01\0\x01", None),  # a compression pointer as the name
])
def test_parse_query(packet: bytes, expected: tuple[str, int] | None) -> None:
    from engine.network.dns.message import parse_query

    q = parse_query(packet)
    assert (q if q is None else (q.name, q.qtype)) == expected


def test_replies_echo_the_id_and_question() -> None:
    from engine.network.dns import message

    packet = _query("web")
    q = message.parse_query(packet)
    reply = message.address_reply(packet, q, ["10.0.0.2", "10.0.0.3"])
    qid, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", reply)
    assert (qid, flags & 0x800F, qd, an, ns, ar) == (0xBEEF, 0x8000, 1, 2, 0, 0) and flags & 0x0100  # RD echoed
    assert reply[12:q.end] == packet[12:q.end]
    assert reply.endswith(socket.inet_aton("10.0.0.2") + reply[-16:-4] + socket.inet_aton("10.0.0.3"))
    assert struct.unpack_from("!H", message.error_reply(packet, q, message.NXDOMAIN), 2)[0] & 0xF == 3
    assert message.reply_id(reply) == 0xBEEF and message.reply_id(packet) is None
    ptr = message.ptr_reply(packet, q, "a1.net")
    assert ptr.endswith(b"\x02a1\x03net\x00")


@pytest.mark.parametrize(("name", "address"), [
    ("4.3.2.1.in-addr.arpa", "1.2.3.4"), ("1.2.3.in-addr.arpa", None), ("300.1.1.1.in-addr.arpa", None), ("web", None),
])
def test_reverse_address(name: str, address: str | None) -> None:
    from engine.network.dns.message import reverse_address

    assert reverse_address(name) == address


@pytest.mark.parametrize(("text", "expected"), [
    ("192.0.2.1", ("192.0.2.1", 53, False)), ("127.0.0.1:5353", ("127.0.0.1", 5353, False)),
    ("::1", ("::1", 53, True)), ("[::1]:5300", ("::1", 5300, True)), ("dns.example", None), ("1.2.3.4:0", None),
])
def test_parse_upstream(text: str, expected: tuple[str, int, bool] | None) -> None:
    from engine.errors import InvalidArgument
    from engine.network.dns.upstreams import parse_upstream

    if expected is None:
        with pytest.raises(InvalidArgument):
            parse_upstream(text)
    else:
        u = parse_upstream(text)
        assert (u.host, u.port, u.v6) == expected


@pytest.mark.parametrize(("host", "search", "options", "expected"), [
    ("nameserver 10.0.0.1\nsearch corp.example\n", [], [], "search corp.example\nnameserver 127.0.0.11\noptions ndots:0\n"),
    ("nameserver 127.0.0.53\noptions edns0\n", [], [], "nameserver 127.0.0.11\noptions edns0 ndots:0\n"),
    ("nameserver 10.0.0.1\n", ["a.example"], ["ndots:2"], "search a.example\nnameserver 127.0.0.11\noptions ndots:2\n"),
])
def test_embedded_resolv_conf(host: str, search: list[str], options: list[str], expected: str) -> None:
    from engine.network.dns.resolvconf import embedded_resolv_conf

    assert embedded_resolv_conf(host, search, options) == expected


@pytest.mark.root
def test_user_network_hosts_hold_no_peers_and_links_are_names(engine: Engine, upstream: LoopbackUpstream) -> None:
    """Docker's user-defined network: a container's /etc/hosts holds localhost and itself only
    (a peer joining rewrites nobody's file), a `--link` there is a DNS name for the linking
    container alone (no variables, no hosts line), and a name asked for AAAA gets an empty NOERROR,
    so busybox's nslookup prints the A record and no error."""
    _with_upstream(engine, upstream)
    engine.out("network", "create", "--subnet", str(free_subnet(prefix=28)), "dnsh")
    try:
        engine.out("run", "-d", "--name", "first", "--network", "dnsh", "busybox", "sleep", "300")
        engine.out("run", "-d", "--name", "second", "--network", "dnsh", "--link", "first:upstream",
                   "busybox", "sleep", "300")
        first = _ip(engine, "first", "dnsh")
        for name in ("first", "second"):
            hostname = engine.inspect(name)["Config"]["Hostname"]
            hosts = engine.out("exec", name, "cat", "/etc/hosts").splitlines()
            assert hosts[6:] == [f"{_ip(engine, name, 'dnsh')}\t{hostname}"], hosts
        assert "UPSTREAM_" not in engine.out("exec", "second", "env")
        code, out = _lookup(engine, "second", "upstream")
        assert code == 0 and f"Address: {first}" in out, out
        assert _lookup(engine, "first", "upstream")[0] != 0  # the link's alias is second's alone
        # busybox's nslookup asks A and AAAA: the A record and no error, as with Docker
        found = engine.cli("exec", "second", "nslookup", "first")
        out = found.stdout.decode()
        assert found.returncode == 0 and not found.stderr, (out, found.stderr)
        assert f"\n\nNon-authoritative answer:\nName:\tfirst\nAddress: {first}\n\n" in out, out
        assert "Can't find" not in out and "can't find" not in out, out  # AAAA: NOERROR, no answer
        # glibc's resolver (the host's getent, in second's network namespace with its resolv.conf):
        # getaddrinfo asks A and AAAA together and takes the A record
        assert _getent(engine, "second", "ahosts", "first").split()[:1] == [first]
        assert _getent(engine, "second", "hosts", "first").split() == [first, "first"]
        for qtype in ("aaaa", "mx"):  # the name exists without such a record: answered here, empty
            result = engine.cli("exec", "second", "nslookup", f"-type={qtype}", "first")
            out = result.stdout.decode()
            assert result.returncode == 0 and out.endswith("\n\nNon-authoritative answer:\n\n"), (qtype, out)
        assert "first" not in upstream.asked
        txt = engine.cli("exec", "second", "nslookup", "-type=txt", "first")  # any other type: upstream, as Docker's
        assert "first" in upstream.asked and b"NXDOMAIN" in txt.stdout, txt.stdout

        # A default-bridge container connected to the network gets the embedded DNS, as Docker's
        # (its resolv.conf rebuilt, the resolver serving it), and keeps it across a restart.
        engine.out("run", "-d", "--name", "legacy", "busybox", "sleep", "300")
        assert "127.0.0.11" not in engine.out("exec", "legacy", "cat", "/etc/resolv.conf")
        engine.out("network", "connect", "dnsh", "legacy")
        for restarted in (False, True):
            if restarted:
                engine.out("restart", "-t", "0", "legacy")
            hostname = engine.inspect("legacy")["Config"]["Hostname"]
            own = [f"{_ip(engine, 'legacy', net)}\t{hostname}" for net in ("bridge", "dnsh")]
            assert engine.out("exec", "legacy", "cat", "/etc/hosts").splitlines()[6:] == own  # one per join
            assert "nameserver 127.0.0.11" in engine.out("exec", "legacy", "cat", "/etc/resolv.conf").splitlines()
            code, out = _lookup(engine, "legacy", "first", "")
            assert code == 0 and f"Address: {first}" in out, out
            code, out = _lookup(engine, "first", "legacy")
            assert code == 0 and f"Address: {_ip(engine, 'legacy', 'dnsh')}" in out, out
    finally:
        engine.cli("rm", "-f", "first", "second", "legacy")
        engine.cli("network", "rm", "dnsh")
