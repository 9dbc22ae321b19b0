"""The DNS wire format, as much of RFC 1035 as the embedded resolver answers itself: one question
read from a query, and replies built from that query (A records, a PTR record, an empty answer,
an error code).

Invariant: a reply always echoes the query's ID and its question section byte for byte, so any
stub resolver (glibc, musl, busybox) accepts it; a packet that is not a readable query yields
`None` and is dropped, never answered with garbage. Replies carry Docker's flags (miekg/dns's
SetReply with RecursionAvailable): RD and the opcode echoed, RA set, AA clear, so a client prints
what it prints with Docker ("Non-authoritative answer:" in nslookup).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

TYPE_A = 1
TYPE_PTR = 12
TYPE_MX = 15
TYPE_AAAA = 28
TYPE_ANY = 255
CLASS_IN = 1

NOERROR = 0
SERVFAIL = 2
NXDOMAIN = 3
REFUSED = 5

TTL = 600  # Docker's embedded DNS answers with this TTL
_HEADER = struct.Struct("!HHHHHH")
_QR, _RD, _RA = 0x8000, 0x0100, 0x0080
_OPCODE_MASK = 0x7800


@dataclass(frozen=True)
class Question:
    """The one question of a query; `name` is lower case without the trailing dot."""

    id: int
    flags: int
    name: str
    qtype: int
    qclass: int
    end: int  # offset just past the question section in the query


def parse_query(data: bytes) -> Question | None:
    """The question of a standard query, or None for anything else (a reply, no question, a
    compressed or truncated name)."""
    if len(data) < _HEADER.size:
        return None
    qid, flags, qdcount, _an, _ns, _ar = _HEADER.unpack_from(data)
    if flags & _QR or flags & _OPCODE_MASK or qdcount != 1:
        return None
    labels = []
    pos = _HEADER.size
    while True:
        if pos >= len(data):
            return None
        length = data[pos]
        pos += 1
        if length == 0:
            break
        if length > 63 or pos + length > len(data):
            return None  # a compression pointer (never in a lone question) or a cut name
        labels.append(data[pos:pos + length].decode("ascii", "replace").lower())
        pos += length
    if pos + 4 > len(data):
        return None
    qtype, qclass = struct.unpack_from("!HH", data, pos)
    return Question(qid, flags, ".".join(labels), qtype, qclass, pos + 4)


def _header(q: Question, rcode: int, answers: int, recursion: bool = True) -> bytes:
    flags = _QR | (_RA if recursion else 0) | (q.flags & (_RD | _OPCODE_MASK)) | rcode
    return _HEADER.pack(q.id, flags, 1, answers, 0, 0)


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.strip(".").split("."):
        raw = label.encode("ascii", "replace")[:63]
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def address_reply(query: bytes, q: Question, addresses: list[str]) -> bytes:
    """A NOERROR reply with one A (AAAA for an IPv6 address) record per address (none: the name
    exists, not with this type)."""
    import socket

    records = b""
    for a in addresses:
        family, rtype = (socket.AF_INET6, TYPE_AAAA) if ":" in a else (socket.AF_INET, TYPE_A)
        records += _answer(rtype, socket.inet_pton(family, a))
    return _header(q, NOERROR, len(addresses)) + query[_HEADER.size:q.end] + records


def ptr_reply(query: bytes, q: Question, target: str) -> bytes:
    return _header(q, NOERROR, 1) + query[_HEADER.size:q.end] + _answer(TYPE_PTR, encode_name(target))


def _answer(rtype: int, rdata: bytes) -> bytes:
    """One answer record for the question's name (a pointer to it at offset 12)."""
    return b"\xc0\x0c" + struct.pack("!HHIH", rtype, CLASS_IN, TTL, len(rdata)) + rdata


def error_reply(query: bytes, q: Question, rcode: int, recursion: bool = True) -> bytes:
    """An empty reply with `rcode`; `recursion=False` clears RA (Docker's REFUSED when it may not
    forward)."""
    return _header(q, rcode, 0, recursion) + query[_HEADER.size:q.end]


def reverse_address(name: str) -> str | None:
    """`4.3.2.1.in-addr.arpa` -> `1.2.3.4`, the 32 nibbles of an `ip6.arpa` name -> the IPv6
    address (compressed, as the records write it); None for any other name."""
    if name.endswith(".ip6.arpa"):
        nibbles = name[: -len(".ip6.arpa")].split(".")
        if len(nibbles) != 32 or not all(len(n) == 1 and n in "0123456789abcdef" for n in nibbles):
            return None
        import ipaddress

        return str(ipaddress.IPv6Address(int("".join(reversed(nibbles)), 16)))
    if not name.endswith(".in-addr.arpa"):
        return None
    parts = name[: -len(".in-addr.arpa")].split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        return None
    return ".".join(reversed(parts))


def reply_id(data: bytes) -> int | None:
    """The ID of an upstream's reply (None when it is no reply at all)."""
    if len(data) < _HEADER.size:
        return None
    qid, flags = struct.unpack_from("!HH", data)
    return qid if flags & _QR else None
