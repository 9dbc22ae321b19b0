"""The embedded resolver process of one engine root (`python -S -m engine.network.dns --root R`).

It owns, for each running container on a user-defined network, a UDP and a TCP socket
bound to 127.0.0.11 *inside that container's network namespace* (created after a setns of this
single-threaded process, which then returns to its own namespace: a socket keeps the namespace it
was made in) on high ports that a nat table of that namespace DNATs port 53 to (as Docker does, so
the container's own programs may bind port 53), and a pidfd of the container's first process. One
epoll loop serves them all:

- an A or AAAA query for a name of the container's networks is answered from the endpoint records
  (`names.NameTable`; AAAA of a name without an IPv6 address, and MX, with an empty NOERROR), PTR
  for their addresses (in-addr.arpa and ip6.arpa);
  any other is forwarded (over UDP, or TCP when it came over TCP), from the
  host's namespace, to the upstreams (`upstreams.choose`), trying the next one after a timeout, SERVFAIL when none answers;
  a container only on --internal networks gets REFUSED instead (nothing leaves those networks);
- the control socket (abstract, `client.socket_name`, root callers only) takes `add <id> <pid>`
  from a container's monitor before the container's process runs, so the first query always finds
  the socket bound;
- a pidfd that becomes readable (the container exited) closes that container's sockets at once:
  they hold its namespace, which must die with the container.

Invariant: the process exists only while a container needs it. It exits LINGER_SECONDS after its
last container went, closing the control socket first, so a monitor arriving at that moment sees
a refused (or reset) connection and starts a fresh resolver; two resolvers of one root cannot
coexist, since only one can bind the control socket's name.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

from engine.config import EngineConfig
from engine.kernel.syscalls import setns
from engine.network.dns import message
from engine.network.dns.client import served, socket_name
from engine.network.dns.names import NameTable
from engine.network.dns.upstreams import HostServers, Upstream, choose
from engine.network.records import all_records

ADDRESS = "127.0.0.11"
PORT = 53  # what the containers ask; the sockets are on high ports behind a DNAT
LINGER_SECONDS = 1.0
UPSTREAM_TIMEOUT = 2.0  # seconds before the next upstream is tried
MAX_PENDING = 512  # forwarded queries in flight (beyond: SERVFAIL at once)
MAX_TCP_PER_CONTAINER = 16
CONTROL_SECONDS = 0.5  # a control connection's whole conversation (a monitor's `add` takes microseconds)
IP_FREEBIND = 15
CLONE_NEWNET = 0x40000000
NFT_TABLE = "dockui_dns"  # in each served container's own namespace


@dataclass
class Guest:
    """A container served: its sockets live in its namespace, its pidfd says when it is gone."""

    container_id: str
    pid: int
    pidfd: int
    udp: socket.socket
    tcp: socket.socket
    conns: dict[int, TcpConn] = field(default_factory=dict)


@dataclass
class TcpConn:
    guest: Guest
    sock: socket.socket
    buffer: bytes = b""


@dataclass
class Pending:
    """A query forwarded upstream, waiting for its answer."""

    guest: Guest
    query: bytes
    question: message.Question
    reply_to: object  # a UDP client address, or the TcpConn the query came on
    servers: list[Upstream]
    index: int
    sock: socket.socket
    deadline: float
    tcp: bool = False  # asked over TCP: forwarded over TCP (a large answer is not cut to 512 bytes)
    received: bytes = b""


class Resolver:
    def __init__(self, config: EngineConfig, upstreams: tuple[str, ...], control: socket.socket) -> None:
        self.config = config
        self.configured = upstreams
        self.control = control
        self.names = NameTable(config)
        self.host_servers = HostServers()
        self.guests: dict[str, Guest] = {}
        self.pending: dict[int, Pending] = {}
        self.sel = selectors.DefaultSelector()
        self.own_netns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self.idle_since: float | None = time.monotonic()
        self.stopping = False
        self.sel.register(control, selectors.EVENT_READ, self._on_control)

    # ------------------------------------------------------------------ containers come and go

    def adopt_running(self) -> None:
        """After a (re)start: every running container on a user network gets its sockets again."""
        for rec in all_records(self.config):
            if served(rec):  # not: a process gone (reconcile cleans up after it), the default bridge
                try:
                    self.add(rec.container_id, rec.pid)
                except OSError:
                    continue

    def add(self, container_id: str, pid: int) -> None:
        old = self.guests.get(container_id)
        if old is not None:
            if old.pid == pid:
                return
            self.drop(old)
        pidfd = os.pidfd_open(pid)
        try:
            udp, tcp = self._bind_inside(pid)
        except BaseException:
            os.close(pidfd)
            raise
        guest = Guest(container_id, pid, pidfd, udp, tcp)
        self.guests[container_id] = guest
        self.idle_since = None
        self.sel.register(pidfd, selectors.EVENT_READ, lambda _mask: self.drop(guest))
        self.sel.register(udp, selectors.EVENT_READ, lambda _mask: self._on_udp(guest))
        self.sel.register(tcp, selectors.EVENT_READ, lambda _mask: self._on_accept(guest))

    def _bind_inside(self, pid: int) -> tuple[socket.socket, socket.socket]:
        """UDP and TCP sockets on 127.0.0.11 inside the container's namespace: on free high ports
        with port 53 DNATed to them there (Docker's scheme: a program of the container may still
        bind port 53 on every address), or on port 53 itself when libnftables is not there."""
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(target, CLONE_NEWNET)
            try:
                udp, tcp = self._sockets(0)
                if not _redirect_port_53(udp.getsockname()[1], tcp.getsockname()[1]):
                    udp.close()
                    tcp.close()
                    udp, tcp = self._sockets(PORT)
            finally:
                setns(self.own_netns, CLONE_NEWNET)
        finally:
            os.close(target)
        return udp, tcp

    @staticmethod
    def _sockets(port: int) -> tuple[socket.socket, socket.socket]:
        made: list[socket.socket] = []
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                sock = socket.socket(socket.AF_INET, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
                made.append(sock)
                sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)  # lo may come up a moment later
                if kind == socket.SOCK_STREAM:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((ADDRESS, port))
            made[1].listen(16)
        except BaseException:
            for sock in made:
                sock.close()
            raise
        return made[0], made[1]

    def drop(self, guest: Guest) -> None:
        """The container exited (or was replaced): its sockets go, its namespace is free to die."""
        if self.guests.get(guest.container_id) is not guest:
            return
        del self.guests[guest.container_id]
        for conn in list(guest.conns.values()):
            self._close_conn(conn)
        for obj in (guest.pidfd, guest.udp, guest.tcp):
            self.sel.unregister(obj)
        os.close(guest.pidfd)
        guest.udp.close()
        guest.tcp.close()
        if not self.guests:
            self.idle_since = time.monotonic()

    # ------------------------------------------------------------------ the control socket

    def _on_control(self, _mask: int) -> None:
        try:
            conn, _ = self.control.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(1.0)
            try:
                creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
                if int.from_bytes(creds[4:8], sys.byteorder) != 0:  # struct ucred: pid, uid, gid
                    conn.sendall(b"err permission denied\n")
                    return
                line = b""
                deadline = time.monotonic() + CONTROL_SECONDS  # for the whole line: a client dribbling
                while not line.endswith(b"\n") and len(line) < 256:  # bytes must not stall every query
                    conn.settimeout(max(0.001, deadline - time.monotonic()))
                    chunk = conn.recv(256)
                    if not chunk:
                        return
                    line += chunk
                conn.sendall(self._command(line.decode(errors="replace").split()))
            except OSError:
                return

    def _command(self, words: list[str]) -> bytes:
        if words == ["ping"]:
            return b"ok\n"
        if len(words) == 3 and words[0] == "add" and words[2].isdigit():
            try:
                self.add(words[1], int(words[2]))
            except OSError as exc:
                return f"err cannot serve container {words[1][:12]}: {exc.strerror or exc}\n".encode()
            return b"ok\n"
        return b"err unknown command\n"

    # ------------------------------------------------------------------ queries

    def _on_udp(self, guest: Guest) -> None:
        for _ in range(64):  # a burst, then give the others a turn
            try:
                data, addr = guest.udp.recvfrom(4096)
            except OSError:
                return
            self._query(guest, data, addr)

    def _on_accept(self, guest: Guest) -> None:
        try:
            sock, _ = guest.tcp.accept()
        except OSError:
            return
        if len(guest.conns) >= MAX_TCP_PER_CONTAINER:
            sock.close()
            return
        sock.setblocking(False)
        conn = TcpConn(guest, sock)
        guest.conns[sock.fileno()] = conn
        self.sel.register(sock, selectors.EVENT_READ, lambda _mask: self._on_tcp(conn))

    def _on_tcp(self, conn: TcpConn) -> None:
        try:
            chunk = conn.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk or len(conn.buffer) > 65536:
            self._close_conn(conn)
            return
        conn.buffer += chunk
        while len(conn.buffer) >= 2:
            size = int.from_bytes(conn.buffer[:2], "big")
            if len(conn.buffer) < 2 + size:
                break
            data, conn.buffer = conn.buffer[2:2 + size], conn.buffer[2 + size:]
            self._query(conn.guest, data, conn)

    def _close_conn(self, conn: TcpConn) -> None:
        if conn.guest.conns.pop(conn.sock.fileno(), None) is not None:
            self.sel.unregister(conn.sock)
            conn.sock.close()

    def _send(self, guest: Guest, reply_to: object, data: bytes) -> None:
        try:
            if isinstance(reply_to, TcpConn):
                if reply_to.sock.fileno() >= 0:
                    reply_to.sock.send(len(data).to_bytes(2, "big") + data)
            elif self.guests.get(guest.container_id) is guest:
                guest.udp.sendto(data, reply_to)
        except OSError:
            pass  # the client went away: nothing to tell

    def _query(self, guest: Guest, data: bytes, reply_to: object) -> None:
        q = message.parse_query(data)
        if q is None:
            return
        if q.qclass == message.CLASS_IN:
            answer = self._local_answer(guest, data, q)
            if answer is not None:
                self._send(guest, reply_to, answer)
                return
        member = self.names.member(guest.container_id)
        if member is None or not member.external:
            # Only on --internal networks (or unknown): nothing leaves them, DNS included (Docker's
            # fix for CVE-2024-29018: the forwarding happens in the host's namespace).
            self._send(guest, reply_to, message.error_reply(data, q, message.REFUSED, recursion=False))
            return
        servers = choose(member.dns, self.configured, self.host_servers)
        self._forward(guest, data, q, reply_to, servers, 0)

    def _local_answer(self, guest: Guest, data: bytes, q: message.Question) -> bytes | None:
        if q.qtype == message.TYPE_PTR:
            ip = message.reverse_address(q.name)
            target = self.names.reverse(guest.container_id, ip) if ip else None
            return message.ptr_reply(data, q, target) if target else None
        addresses = self.names.lookup(guest.container_id, q.name, v6=q.qtype == message.TYPE_AAAA)
        if addresses is None:
            return None
        if q.qtype in (message.TYPE_A, message.TYPE_AAAA):
            # AAAA of a name without an IPv6 address (an IPv4-only network): Docker's NOERROR and
            # no answer, so a stub asking A and AAAA takes the A records without an error.
            return message.address_reply(data, q, addresses)
        if q.qtype == message.TYPE_MX:
            return message.address_reply(data, q, [])  # Docker's: RFC 5321's "implicit MX"
        return None  # any other type, even of a container's name, is forwarded, as Docker's

    # ------------------------------------------------------------------ forwarding

    def _forward(self, guest: Guest, data: bytes, q: message.Question, reply_to: object,
                 servers: list[Upstream], index: int) -> None:
        tcp = isinstance(reply_to, TcpConn)
        while index < len(servers) and len(self.pending) < MAX_PENDING:
            server = servers[index]
            family = socket.AF_INET6 if server.v6 else socket.AF_INET
            kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
            sock = socket.socket(family, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
            try:
                if tcp:  # sent once connected (_on_upstream_writable)
                    sock.connect_ex((server.host, server.port))
                else:
                    sock.connect((server.host, server.port))
                    sock.send(data)
            except OSError:
                sock.close()
                index += 1
                continue
            p = Pending(guest, data, q, reply_to, servers, index, sock, time.monotonic() + UPSTREAM_TIMEOUT, tcp)
            self.pending[sock.fileno()] = p
            if tcp:
                self.sel.register(sock, selectors.EVENT_WRITE, lambda _mask, p=p: self._on_upstream_writable(p))
            else:
                self.sel.register(sock, selectors.EVENT_READ, lambda _mask, p=p: self._on_upstream(p))
            return
        self._send(guest, reply_to, message.error_reply(data, q, message.SERVFAIL))

    def _next_server(self, p: Pending) -> None:
        self._finish(p)
        self._forward(p.guest, p.query, p.question, p.reply_to, p.servers, p.index + 1)

    def _on_upstream_writable(self, p: Pending) -> None:
        """A TCP upstream connected (or refused): the query goes out, the answer is awaited."""
        if p.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self._next_server(p)
            return
        try:
            p.sock.send(len(p.query).to_bytes(2, "big") + p.query)  # a few hundred bytes: one send
        except OSError:
            self._next_server(p)
            return
        self.sel.modify(p.sock, selectors.EVENT_READ, lambda _mask: self._on_upstream(p))

    def _finish(self, p: Pending) -> None:
        self.pending.pop(p.sock.fileno(), None)
        self.sel.unregister(p.sock)
        p.sock.close()

    def _on_upstream(self, p: Pending) -> None:
        try:
            data = p.sock.recv(65535)
        except BlockingIOError:
            return
        except OSError:  # refused (ICMP): the next server at once
            self._next_server(p)
            return
        if p.tcp:
            if not data:  # closed before a whole answer
                self._next_server(p)
                return
            p.received += data
            size = int.from_bytes(p.received[:2], "big") if len(p.received) >= 2 else -1
            if size < 0 or len(p.received) < 2 + size:
                return
            data = p.received[2:2 + size]
        if message.reply_id(data) != p.question.id:
            return  # not the answer to this query: keep waiting
        self._finish(p)
        self._send(p.guest, p.reply_to, data)

    def _expire(self, now: float) -> None:
        for p in [p for p in self.pending.values() if p.deadline <= now]:
            self._next_server(p)

    # ------------------------------------------------------------------ the loop

    def _timeout(self, now: float) -> float | None:
        deadlines = [p.deadline for p in self.pending.values()]
        if self.idle_since is not None:
            deadlines.append(self.idle_since + LINGER_SECONDS)
        return max(0.0, min(deadlines) - now) if deadlines else None

    def serve(self) -> None:
        while not self.stopping:
            for key, mask in self.sel.select(self._timeout(time.monotonic())):
                try:
                    key.data(mask)
                except Exception:  # noqa: BLE001 - one bad packet or container must not stop the others' DNS
                    continue
            now = time.monotonic()
            self._expire(now)
            if self.idle_since is not None and now - self.idle_since >= LINGER_SECONDS and not self.pending:
                break
        self.control.close()  # first: a monitor arriving now starts a new resolver
        for guest in list(self.guests.values()):
            self.drop(guest)


_nftables = None


def _redirect_port_53(udp_port: int, tcp_port: int) -> bool:
    """In the namespace this process is in now: 127.0.0.11:53 DNATed to the resolver's ports, in a
    table of that namespace (it dies with it: nothing to remove); conntrack gives the answers their
    port 53 back. Through libnftables (nft's own library, ~0.3 ms; the nft command costs ~9 ms a
    container): its context opens its netlink socket in the namespace it is made in. False when
    the library is missing or refuses."""
    global _nftables
    import ctypes

    if _nftables is None:
        try:
            lib = ctypes.CDLL("libnftables.so.1")
        except OSError:
            return False
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        _nftables = lib
    rules = (  # one atomic batch; the rules a crashed resolver left (its dead ports) are flushed
        f"table ip {NFT_TABLE}\nflush table ip {NFT_TABLE}\n"  # (a delete would wait for an RCU grace period)
        f"table ip {NFT_TABLE} {{\n chain output {{\n  type nat hook output priority -100; policy accept;\n"
        f"  ip daddr {ADDRESS} udp dport {PORT} dnat to {ADDRESS}:{udp_port}\n"
        f"  ip daddr {ADDRESS} tcp dport {PORT} dnat to {ADDRESS}:{tcp_port}\n }}\n}}\n"
    )
    ctx = _nftables.nft_ctx_new(0)
    if not ctx:
        return False
    try:
        _nftables.nft_ctx_buffer_error(ctx)  # errors kept in the context, not printed
        return _nftables.nft_run_cmd_from_buffer(ctx, rules.encode()) == 0
    finally:
        _nftables.nft_ctx_free(ctx)


def main(config: EngineConfig, upstreams: tuple[str, ...]) -> int:
    control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        control.bind(socket_name(config))
    except OSError:
        return 0  # another resolver serves this root
    control.listen(64)
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # three descriptors a container (and its TCP clients): the soft 1024 is ~300
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    resolver = Resolver(config, upstreams, control)

    def stop(_signum: int, _frame: object) -> None:
        resolver.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    resolver.adopt_running()
    resolver.serve()
    return 0
