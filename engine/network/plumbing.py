"""The kernel side of container networking: bridges, veth pairs, eth0 and lo inside a container's
namespace, link deletion (on a thread for a dead namespace's pairs, see wait_links_gone).

The per-container hot path goes over the small netlink client in engine/kernel/rtnetlink.py; the
rest through pyroute2, imported inside the functions that need it (its import costs 120-200 ms:
see docs/lifecycle.md), so a monitor that starts a container never loads it.
"""

from __future__ import annotations

import _socket
import ctypes
import errno
import os
import struct
import time
from pathlib import Path

from engine.config import EngineConfig
from engine.errors import DockuiError, NeedsRoot
from engine.kernel.rtnetlink import (
    CREATE,
    IFA_ADDRESS,
    IFA_LOCAL,
    IFF_UP,
    IFLA_ADDRESS,
    IFLA_IFNAME,
    IFLA_INFO_DATA,
    IFLA_INFO_KIND,
    IFLA_LINKINFO,
    IFLA_MASTER,
    IFLA_MTU,
    IFLA_NET_NS_PID,
    NLM_F_ACK,
    NLM_F_REQUEST,
    RTA_GATEWAY,
    RTA_OIF,
    RTM_DELLINK,
    RTM_GETADDR,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    VETH_INFO_PEER,
    Rtnl,
    ifinfomsg,
    nla,
    parse_attrs,
    u32,
)
from engine.network.records import DEFAULT_MTU, Endpoint, EndpointRecord, NetworkInfo

CLONE_NEWNET = 0x40000000


def iproute():
    from pyroute2 import IPRoute

    return IPRoute(groups=0)


def with_iproute(fn):  # noqa: ANN001, ANN202
    """Run fn(IPRoute) and turn netlink refusals into errors meant for people."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        with iproute() as ipr:
            return fn(ipr)
    except NetlinkError as exc:
        if exc.code == errno.EPERM:
            raise NeedsRoot("changing the host's network (bridges, veths) needs root: run it with sudo") from None
        raise DockuiError(f"netlink: {exc}") from None


_libc = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _netns_socket(
    pid: int, raw: bool = False, ifnames: list[str] = ()  # type: ignore[assignment]
) -> tuple[_socket.socket, list[int]]:
    """A netlink socket living in `pid`'s network namespace, and the ifindexes of `ifnames` there.

    The socket's namespace is fixed when it is created, so this thread visits the namespace just
    long enough to create it (setns affects only the calling thread for a net namespace).
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise DockuiError(f"process {pid} is gone: cannot configure its network") from None
        try:
            _setns(target)
            try:
                kind = _socket.SOCK_RAW if raw else _socket.SOCK_DGRAM
                sock = _socket.socket(_socket.AF_NETLINK, kind | _socket.SOCK_CLOEXEC, 0)
                return sock, [_socket.if_nametoindex(name) for name in ifnames]
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)


def netns_iproute(pid: int):  # noqa: ANN202
    from pyroute2 import IPRoute

    return IPRoute(fileno=_netns_socket(pid)[0].detach(), groups=0)


def link_index(ipr, name: str) -> int | None:  # noqa: ANN001
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        return ipr.link("get", ifname=name)[0]["index"]
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise


ALIAS_PREFIX = "dockui:"


def ensure_bridge(ipr, net: NetworkInfo, config: EngineConfig) -> int:  # noqa: ANN001
    """The bridge's ifindex; created with its gateway address and brought up if missing.

    The bridge's ifalias names its engine root, so another engine can tell an abandoned bridge
    (root gone or without containers) from a live one and give its subnet back (see
    `collect_abandoned_bridges`).
    """
    from pyroute2.netlink.exceptions import NetlinkError

    index = link_index(ipr, net.bridge)
    if index is None:
        try:
            ipr.link("add", ifname=net.bridge, kind="bridge", mtu=DEFAULT_MTU)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
        index = link_index(ipr, net.bridge)
        if index is None:
            raise DockuiError(f"could not create bridge {net.bridge}")
        from urllib.parse import quote  # a network name may hold ":" (Docker takes any name)

        from engine.network import portmap

        alias = f"{ALIAS_PREFIX}{portmap.table_name(config)}:{quote(net.name, safe='')}:{config.root}"
        if len(alias) <= 255:
            ipr.link("set", index=index, ifalias=alias)
    have = {(a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=2)}
    if (net.gateway, net.prefixlen) not in have:
        try:
            ipr.addr("add", index=index, address=net.gateway, prefixlen=net.prefixlen)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
    ipr.link("set", index=index, state="up")
    if net.ipv6 and net.gateway6:
        _bridge_ipv6(net.bridge, index, net.gateway6, net.prefixlen6)
    return index


def _bridge_ipv6(bridge: str, index: int, gateway6: str, prefixlen6: int) -> None:
    """An IPv6 network's bridge holds its IPv6 gateway (as Docker's bridge driver), IPv6 switched
    on for it, without duplicate address detection (the address is ours: no wait of a second)."""
    try:
        Path(f"/proc/sys/net/ipv6/conf/{bridge}/disable_ipv6").write_text("0")
    except OSError as exc:
        raise DockuiError(f"cannot enable IPv6 on bridge {bridge}: {exc.strerror}") from None
    with Rtnl() as rt:
        try:
            rt.request(addr_request(index, gateway6, prefixlen6))
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise


IFA_F_NODAD = 0x02


def addr_request(index: int, ip: str, prefixlen: int) -> tuple[int, int, bytes]:
    """RTM_NEWADDR of an IPv4 or IPv6 address (IPv6 without duplicate address detection, as
    Docker adds its container and gateway addresses: the subnet is ours alone)."""
    if ":" in ip:
        packed = _socket.inet_pton(_socket.AF_INET6, ip)
        head = struct.pack("=BBBBI", _socket.AF_INET6, prefixlen, IFA_F_NODAD, 0, index)
        return RTM_NEWADDR, CREATE, head + nla(IFA_ADDRESS, packed)
    packed = _socket.inet_aton(ip)
    head = struct.pack("=BBBBI", _socket.AF_INET, prefixlen, 0, 0, index)
    return RTM_NEWADDR, CREATE, head + nla(IFA_LOCAL, packed) + nla(IFA_ADDRESS, packed)


def default_route_request(gateway: str, index: int) -> tuple[int, int, bytes]:
    """RTM_NEWROUTE of the default route via `gateway` (IPv4 or IPv6) out of interface `index`,
    main table (the device is named: a link-local IPv6 gateway, fe80::..., is EINVAL without it)."""
    family = _socket.AF_INET6 if ":" in gateway else _socket.AF_INET
    # rtmsg: family, dst_len 0, src_len 0, tos 0, main table, proto boot, scope universe, unicast
    route = struct.pack("=BBBBBBBBI", family, 0, 0, 0, 254, 3, 0, 1, 0)
    return RTM_NEWROUTE, CREATE, (route + nla(RTA_GATEWAY, _socket.inet_pton(family, gateway))
                                  + nla(RTA_OIF, struct.pack("=I", index)))


def delete_link(ipr, name: str) -> bool:  # noqa: ANN001
    from pyroute2.netlink.exceptions import NetlinkError

    index = link_index(ipr, name)
    if index is None:
        return False
    try:
        ipr.link("del", index=index)
    except NetlinkError as exc:
        if exc.code != errno.ENODEV:
            raise
    return True


def create_veth(rt: Rtnl, ep: Endpoint, bridge_index: int, pid: int) -> None:
    """One RTM_NEWLINK: host end on the bridge and up, peer created directly in `pid`'s netns."""
    mac = bytes.fromhex(ep.mac.replace(":", ""))
    peer = ifinfomsg() + nla(IFLA_IFNAME, ep.ifname.encode() + b"\0") + nla(IFLA_ADDRESS, mac)
    peer += nla(IFLA_MTU, u32(ep.mtu)) + nla(IFLA_NET_NS_PID, u32(pid))
    linkinfo = nla(IFLA_INFO_KIND, b"veth") + nla(IFLA_INFO_DATA, nla(VETH_INFO_PEER, peer))
    body = ifinfomsg(flags=IFF_UP, change=IFF_UP) + nla(IFLA_IFNAME, ep.host_veth.encode() + b"\0")
    body += nla(IFLA_MTU, u32(ep.mtu)) + nla(IFLA_MASTER, u32(bridge_index)) + nla(IFLA_LINKINFO, linkinfo)
    rt.request((RTM_NEWLINK, CREATE, body))


def rt_delete_link(rt: Rtnl, name: str) -> bool:
    try:
        rt.request((RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, ifinfomsg() + nla(IFLA_IFNAME, name.encode() + b"\0")))
    except OSError as exc:
        if exc.errno in (errno.ENODEV, errno.ENOENT):
            return False
        raise
    return True


def interface_requests(ep: Endpoint, index: int) -> list[tuple[int, int, bytes]]:
    """An interface of the container: its IPv4 address, up, then its IPv6 address (on an up link,
    so its prefix route is there at once)."""
    requests = [addr_request(index, ep.ip, ep.prefixlen),
                (RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, ifinfomsg(index, IFF_UP, IFF_UP))]
    if ep.ip6:
        requests.append(addr_request(index, ep.ip6, ep.prefixlen6))
    for ip in ep.link_local:  # libnetwork's masks: /16, /64 for IPv6
        requests.append(addr_request(index, ip, 64 if ":" in ip else 16))
    return requests


def configure_inside(pid: int, endpoints: list[Endpoint]) -> None:
    """lo up; each eth<N> addressed and up; the default routes (IPv4, and IPv6 on an IPv6 network)
    via the first network's gateway that is not --internal (Docker programs no gateway for those:
    only their own subnet is reachable)."""
    sock, indexes = _netns_socket(pid, raw=True, ifnames=[ep.ifname for ep in endpoints])
    requests = [(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, ifinfomsg(1, IFF_UP, IFF_UP))]
    for ep, index in zip(endpoints, indexes, strict=True):
        requests += interface_requests(ep, index)
    index_of = {ep.ifname: index for ep, index in zip(endpoints, indexes, strict=True)}
    routed = [ep for ep in endpoints if not ep.internal]
    if routed:
        requests.append(default_route_request(routed[0].gateway, index_of[routed[0].ifname]))
    routed6 = [ep for ep in routed if ep.ip6]
    if routed6:
        requests.append(default_route_request(routed6[0].gateway6, index_of[routed6[0].ifname]))
    with Rtnl(sock) as rt:
        rt.request(*requests)


def configure_interface(pid: int, ep: Endpoint) -> None:
    """`network connect` of a running container: the new interface addressed and up (no route:
    the default routes stay those of the networks it started with, as Docker's)."""
    sock, indexes = _netns_socket(pid, raw=True, ifnames=[ep.ifname])
    with Rtnl(sock) as rt:
        rt.request(*interface_requests(ep, indexes[0]))


def bridge_ready(rt: Rtnl, ep: Endpoint) -> int | None:
    """The endpoint's bridge's ifindex if it exists, is up and holds its gateway address (sysfs +
    one small dump; the endpoint carries the network's bridge, gateway and prefix)."""
    base = Path("/sys/class/net", ep.bridge)
    try:
        index = int((base / "ifindex").read_text())
        if not int((base / "flags").read_text(), 16) & IFF_UP:
            return None
    except (OSError, ValueError):
        return None
    if not _holds(rt, index, _socket.AF_INET, ep.gateway, ep.prefixlen):
        return None
    if ep.ip6 and not _holds(rt, index, _socket.AF_INET6, ep.gateway6, ep.prefixlen6):
        return None
    return index


def _holds(rt: Rtnl, index: int, family: int, address: str, prefixlen: int) -> bool:
    """Does interface `index` hold `address/prefixlen` (one address dump of that family)?"""
    want = _socket.inet_pton(family, address)
    attr = IFA_LOCAL if family == _socket.AF_INET else IFA_ADDRESS
    found = False
    for msg in rt.dump(RTM_GETADDR, struct.pack("=BBBBI", family, 0, 0, 0, 0)):
        _family, plen, _flags, _scope, idx = struct.unpack_from("=BBBBI", msg)
        if idx == index and plen == prefixlen:
            attrs = parse_attrs(msg, 8, {attr})
            if bytes(attrs.get(attr, b"")) == want:
                found = True  # the dump is read to its end: the socket serves the next request
    return found


def bring_up_loopback(pid: int) -> None:
    """`--network none`: the container gets only `lo`, up."""
    configure_inside(pid, [])


def netns_alive(rec: EndpointRecord) -> bool:
    """Does the container's process still hold the namespace we plugged?"""
    return bool(rec.pid) and _netns_inode(rec.pid) == rec.netns_inode


unplugging: set[str] = set()  # host veths a background thread of this process is deleting


def unplug_in_background(names: list[str]) -> None:
    """Delete the host ends of veth pairs whose container namespace is dead, on a thread.

    The kernel would delete them with the namespace, but only after a normal RCU grace period in
    its clean-up worker (5-10 ms after the exit here). An RTM_DELLINK of ours takes them off the
    host (name, sysfs, bridge port) within ~1.5 ms, but its acknowledgement waits for an RCU barrier
    (~15-20 ms): hence the thread, whose caller goes on and later waits for the names only. If the
    process ends before the thread runs, the kernel's own clean-up still deletes them.
    """
    import _thread  # not threading.Thread: its start() waits for the thread to run (~0.3 ms)

    rt = Rtnl()  # made here: the thread holds the GIL only from its start to its first syscall

    def run() -> None:
        try:
            for name in names:
                rt_delete_link(rt, name)
        except OSError:
            pass  # best effort: the dead namespace takes them anyway
        finally:
            rt.sock.close()
            unplugging.difference_update(names)

    unplugging.update(names)
    _thread.start_new_thread(run, ())


def wait_links_gone(names: list[str], timeout: float = 2.0) -> None:
    """Wait until none of these interfaces exists on the host any more (at most `timeout` s)."""
    deadline = time.monotonic() + timeout
    for name in names:
        while not bridge_missing(name) and time.monotonic() < deadline:
            time.sleep(0.0005)


def _netns_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def start_ticks(pid: int) -> int | None:
    """A process's start time (field 22 of /proc/<pid>/stat), to tell it from a later one with its pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def bridge_missing(name: str) -> bool:
    return not Path("/sys/class/net", name).exists()
