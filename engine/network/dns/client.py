"""Talking to the embedded resolver of an engine root, and starting it when it is not there.

`register(config, id, pid)` is called by a container's monitor once the container's network is
attached and before its process runs: it returns when the resolver has bound 127.0.0.11:53 in the
container's namespace (starting the resolver first if none answers). `ensure_running(config)` is
what reconcile calls when running containers need a resolver that a crash took away: the new one
adopts them all from the endpoint records.

The control socket is an abstract Unix socket named after the root's device, inode and path: it
leaves no file behind and vanishes with the process. This module is on the start path of every
container on a user network and on every verb's reconcile, so it loads only C modules (`_socket`,
no `socket.py`) and the network records only where they are read.
"""

from __future__ import annotations

import _socket
import os
import sys
import time
import zlib

from engine.config import EngineConfig
from engine.errors import DockuiError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from engine.network.records import EndpointRecord  # loaded only where records are read

START_TIMEOUT = 5.0  # seconds for a new resolver to answer
REPLY_TIMEOUT = 5.0
_ENGINE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def socket_name(config: EngineConfig) -> bytes:
    root = os.path.abspath(config.root)
    st = os.stat(root)
    return f"\0dockui-dns/{st.st_dev:x}.{st.st_ino:x}.{zlib.crc32(root.encode()):08x}".encode()


def _ask(config: EngineConfig, line: str) -> str | None:
    """The resolver's one-line answer, or None when no resolver is listening (or it was leaving)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(REPLY_TIMEOUT)
        try:
            sock.connect(socket_name(config))
            sock.sendall(line.encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = sock.recv(512)
                if not chunk:
                    return None
                reply += chunk
        except (ConnectionRefusedError, ConnectionResetError, FileNotFoundError, BrokenPipeError):
            return None
        except OSError as exc:
            raise DockuiError(f"embedded DNS: {exc.strerror or exc}") from None
        return reply.decode(errors="replace").strip()
    finally:
        sock.close()


def _call(config: EngineConfig, line: str) -> str:
    for _attempt in range(3):
        reply = _ask(config, line)
        if reply is not None:
            return reply
        _spawn(config)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            reply = _ask(config, line)
            if reply is not None:
                return reply
            time.sleep(0.005)
    raise DockuiError("embedded DNS: the resolver did not start")


def register(config: EngineConfig, container_id: str, pid: int) -> None:
    """Have the resolver serve this container (its process in its namespaces, not yet running)."""
    reply = _call(config, f"add {container_id} {pid}")
    if reply != "ok":
        raise DockuiError(f"embedded DNS: {reply.removeprefix('err ')}")


def running(config: EngineConfig) -> bool:
    return _ask(config, "ping") == "ok"


def ensure_running(config: EngineConfig) -> None:
    """Start the resolver if none answers (it adopts every running container on a user network)."""
    if not running(config):
        _call(config, "ping")


def _spawn(config: EngineConfig) -> None:
    """Start a resolver in its own session, not our child (double fork): it outlives the caller,
    and no monitor or CLI ever has to reap it."""
    argv = [sys.executable, "-S", "-m", "engine.network.dns", "--root", os.path.abspath(config.root)]
    for upstream in config.dns_upstreams:
        argv += ["--upstream", upstream]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ENGINE_PARENT, env.get("PYTHONPATH")) if p)
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.closerange(3, 65536)
                os.chdir("/")
                os.execve(sys.executable, argv, env)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def revive(config: EngineConfig) -> None:
    """Reconcile's part: a resolver that crashed (or was killed) while containers on user networks
    run is started again, and adopts them. Costs a directory listing when there is no user-defined
    network, one connect when a resolver runs, a look at the endpoint records when none does."""
    try:  # (the records module is not loaded for this: `dockui ps` pays only the listing)
        if not any(name != "bridge.json" for name in os.listdir(config.network_dir / "networks")):
            return
    except OSError:
        return
    from engine.network.records import all_records, endpoints_dir

    if not endpoints_dir(config).is_dir() or running(config):
        return
    if any(served(rec) for rec in all_records(config)):
        _call(config, "ping")


def served(rec: EndpointRecord) -> bool:
    """Does this endpoint record name a running container the resolver must serve (on a
    user-defined network, its process still in the namespace that was plugged)?"""
    from engine.network.records import DEFAULT_NETWORK

    eps = rec.endpoints
    if not rec.attached or not rec.pid or all(ep.network == DEFAULT_NETWORK for ep in eps):
        return False
    try:
        return os.stat(f"/proc/{rec.pid}/ns/net").st_ino == rec.netns_inode
    except OSError:
        return False
