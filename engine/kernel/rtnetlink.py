"""A minimal rtnetlink client for the per-container network hot path.

Importing pyroute2 costs ~120-200 ms in a fresh process (it pulls in asyncio and its whole
package), and every container's monitor is a fresh process; its general decoder also costs about
half a millisecond per interface in a dump. attach/detach/topology in engine/network/endpoints.py therefore
speak rtnetlink directly with the few messages they need (same socket family and messages as
pyroute2 and `ip`); everything else (bridges, host address discovery, reconcile, connect) uses
pyroute2.
"""

from __future__ import annotations

import _socket  # the C module: socket.py would load selectors & co. (~3 ms) into every monitor
import os
import struct
import time
from collections.abc import Iterator

NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x1, 0x4, 0x200, 0x400, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_NEWADDR, RTM_GETADDR, RTM_NEWROUTE = 16, 17, 18, 20, 22, 24
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER = 1, 3, 4, 5, 10
IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_NET_NS_PID, IFLA_STATS64 = 16, 18, 19, 23
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_OIF, RTA_GATEWAY = 4, 5
IFF_UP = 0x1
OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL


def nla(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def ifinfomsg(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return struct.pack("=BxHiII", _socket.AF_UNSPEC, 0, index, flags, change)


def u32(value: int) -> bytes:
    return struct.pack("=I", value)


class Rtnl:
    """A NETLINK_ROUTE socket that sends batches of requests and checks every acknowledgement."""

    def __init__(self, sock: _socket.socket | None = None) -> None:
        self.sock = sock or _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, 0)
        self.sock.bind((0, 0))
        self.seq = int(time.time()) & 0xFFFF

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def _frame(self, mtype: int, flags: int, body: bytes) -> tuple[int, bytes]:
        self.seq += 1
        return self.seq, struct.pack("=IHHII", 16 + len(body), mtype, flags, self.seq, 0) + body

    def _messages(self) -> Iterator[tuple[int, int, memoryview]]:
        data = memoryview(self.sock.recv(1 << 20))
        offset = 0
        while offset + 16 <= len(data):
            length, mtype, _flags, seq, _pid = struct.unpack_from("=IHHII", data, offset)
            yield mtype, seq, data[offset + 16 : offset + length]
            offset += (length + 3) & ~3

    def request(self, *requests: tuple[int, int, bytes]) -> None:
        """Send (type, flags, body) requests in one datagram; raise OSError for the first failure."""
        frames = [self._frame(*r) for r in requests]
        self.sock.send(b"".join(f for _, f in frames))
        waiting = {seq for seq, _ in frames}
        failure: OSError | None = None
        while waiting:
            for mtype, seq, payload in self._messages():
                if mtype == NLMSG_ERROR and seq in waiting:
                    waiting.discard(seq)
                    code = -struct.unpack_from("=i", payload)[0]
                    if code and failure is None:
                        failure = OSError(code, os.strerror(code))
        if failure:
            raise failure

    def dump(self, mtype: int, body: bytes) -> Iterator[memoryview]:
        seq, frame = self._frame(mtype, NLM_F_REQUEST | NLM_F_DUMP, body)
        self.sock.send(frame)
        while True:
            for rtype, rseq, payload in self._messages():
                if rseq != seq:
                    continue
                if rtype == NLMSG_DONE:
                    return
                if rtype == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise OSError(code, os.strerror(code))
                    continue
                yield payload


def parse_attrs(payload: memoryview, offset: int, wanted: set[int]) -> dict[int, memoryview]:
    """The wanted attributes of one message, stopping as soon as all are found."""
    found: dict[int, memoryview] = {}
    end = len(payload)
    while offset + 4 <= end and len(found) < len(wanted):
        length, kind = struct.unpack_from("=HH", payload, offset)
        if length < 4:
            break
        kind &= 0x3FFF
        if kind in wanted:
            found[kind] = payload[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return found
