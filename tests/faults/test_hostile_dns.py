"""The embedded resolver under hostile packets from inside a container's network namespace (what
a container's root controls): compression-pointer loops, truncated and odd headers, labels with NUL,
dots and high bytes, a flood of forwarded queries, TCP connections held open or fed a length that
never comes, and a process of the host's network namespace (a `--network host` container's root)
dribbling into the resolver's control socket. After each, the resolver still runs, still answers a
container name within a second, and its memory and descriptors stay bounded."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time

import pytest

from tests.faults.scoreboard import score
from tests.test_dns import _in_netns, _resolver_pids, _settled_fd_count
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - `engine` fixture
from tests.test_network import free_subnet

pytestmark = pytest.mark.root


def _question(name: bytes, qtype: int = 1) -> bytes:
    labels = b"".join(bytes([len(p)]) + p for p in name.split(b".") if p)
    return labels + b"\0" + struct.pack("!HH", qtype, 1)


def _query(name: bytes, qid: int = 0x4242, qtype: int = 1) -> bytes:
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + _question(name, qtype)


MALFORMED = {
    "pointer-loop": struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + struct.pack("!HH", 1, 1),
    "pointer-forward": struct.pack("!HHHHHH", 2, 0x0100, 1, 0, 0, 0) + b"\x01a\xc0\x12\x00\x01\x00\x01\x01b\xc0\x0c",
    "short-header": b"\x00\x01\x01",
    "no-question": struct.pack("!HHHHHH", 3, 0x0100, 0, 0, 0, 0),
    "many-questions": struct.pack("!HHHHHH", 4, 0x0100, 65535, 65535, 65535, 65535) + _question(b"a1"),
    "label-past-end": struct.pack("!HHHHHH", 5, 0x0100, 1, 0, 0, 0) + b"\x3fabc",
    "no-type": struct.pack("!HHHHHH", 6, 0x0100, 1, 0, 0, 0) + b"\x02a1\x00\x00",
    "odd-bytes": _query(b"a\x00\xff\x80.\xc3\xa9.." + b"x" * 63, qid=7),
    "dot-in-label": struct.pack("!HHHHHH", 8, 0x0100, 1, 0, 0, 0) + b"\x07a1.dnsh\x00" + struct.pack("!HH", 1, 1),
    "reply-flag": struct.pack("!HHHHHH", 9, 0x8100, 1, 0, 0, 0) + _question(b"a1"),
    "ptr-garbage": _query(b"999.1.1.1.in-addr.arpa", qid=10, qtype=12),
    "empty": b"",
    "max-size": b"\xff" * 4096,
}


def _ask(name: bytes, timeout: float = 1.0) -> bytes | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    try:
        sock.sendto(_query(name, qid=0x7777), ("127.0.0.11", 53))
        return sock.recv(4096)
    except OSError:
        return None
    finally:
        sock.close()


def _answers(data: bytes | None) -> bool:
    return data is not None and data[:2] == b"\x77\x77" and struct.unpack("!H", data[6:8])[0] >= 1


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_hostile_dns_clients(engine: Engine) -> None:
    # Forwarding goes to an upstream that is never there (a closed loopback port): no query leaves.
    engine.config.dns_upstreams = ["127.0.0.1:9"]
    path = engine.env["DOCKUI_CONFIG"]
    import json

    with open(path) as f:
        settings = json.load(f)
    settings["dns_upstreams"] = ["127.0.0.1:9"]
    with open(path, "w") as f:
        json.dump(settings, f)
    engine.out("network", "create", "--subnet", str(free_subnet(prefix=28)), "dnsh")
    try:
        engine.out("run", "-d", "--name", "a1", "--network", "dnsh", "busybox", "sleep", "300")
        pid = engine.inspect("a1")["State"]["Pid"]
        resolver = _resolver_pids(engine)[0]
        assert _in_netns(pid, lambda: _answers(_ask(b"a1")))
        fds0, rss0 = _settled_fd_count(resolver), _rss_kib(resolver)

        def after(case: str, extra: str = "") -> None:
            answered = _in_netns(pid, lambda: _answers(_ask(b"a1")))
            alive = resolver in _resolver_pids(engine)
            fds, rss = _settled_fd_count(resolver) if alive else -1, _rss_kib(resolver) if alive else -1
            score("dns", case, answered and alive, detail=f"answered={answered} alive={alive} {extra}",
                  leaks=[f"descriptors {fds0}->{fds}"] if alive and fds > fds0 else []
                  + ([f"memory {rss0}->{rss} KiB"] if rss > rss0 + 32 * 1024 else []))

        for name, packet in MALFORMED.items():
            def send(packet: bytes = packet) -> None:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.sendto(packet, ("127.0.0.11", 53))
                sock.close()

            _in_netns(pid, send)
            after(f"udp-{name}")

        def flood() -> int:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sent = 0
            for i in range(20000):  # names nobody knows: each is forwarded (to a closed port)
                try:
                    sock.sendto(_query(b"x%d.flood.invalid" % i, qid=i & 0xFFFF), ("127.0.0.11", 53))
                    sent += 1
                except OSError:
                    time.sleep(0.001)
            sock.close()
            return sent

        sent = _in_netns(pid, flood)
        time.sleep(2.5)  # the forwarded ones time out (2 s an upstream)
        after("udp-flood-forwarded", f"sent={sent}")

        def tcp_abuse() -> list[socket.socket]:
            held = []
            for i in range(40):  # more than the 16 a container may hold
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.settimeout(1)
                try:
                    sock.connect(("127.0.0.11", 53))
                    sock.sendall(b"\xff\xff" + b"x" * 100 if i % 2 else b"\x00")  # a length that never comes
                except OSError:
                    sock.close()
                    continue
                held.append(sock)
            garbage = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            garbage.settimeout(2)
            try:
                garbage.connect(("127.0.0.11", 53))
                for _ in range(40):
                    garbage.sendall(b"\x00\x0c" + b"\xc0\x0c" * 6)
            except OSError:
                pass
            held.append(garbage)
            return held

        held = _in_netns(pid, tcp_abuse)
        udp_during = _in_netns(pid, lambda: _answers(_ask(b"a1")))
        for sock in held:
            sock.close()
        after("tcp-held-and-garbage", f"udp answered while held: {udp_during}")
        assert udp_during

        # A root process of the host's network namespace (a --network host container) dribbles
        # into the control socket: the resolver must not stop answering everyone else meanwhile.
        from engine.network.dns.client import socket_name

        stop = threading.Event()

        def dribble() -> None:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(socket_name(engine.config))
            try:
                while not stop.is_set():
                    conn.send(b"a")
                    time.sleep(0.5)
            except OSError:
                pass
            finally:
                conn.close()

        dribbler = threading.Thread(target=dribble)
        dribbler.start()
        time.sleep(0.3)
        started = time.monotonic()
        answered = _in_netns(pid, lambda: _answers(_ask(b"a1", timeout=3)))
        took = time.monotonic() - started
        stop.set()
        dribbler.join()
        score("dns", "control-socket-dribble", answered and took < 1.5, detail=f"answered={answered} in {took:.2f} s")
    finally:
        engine.cli("rm", "-f", "a1")
        engine.cli("network", "rm", "dnsh")
    assert os.path.isdir(engine.config.root)
