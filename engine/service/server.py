"""`dockui system service`: the Engine API on a Unix socket, in the foreground.

The socket is the access control, as Docker's: mode 0660, owner root, group `dockui` (a member
uses the API without sudo; anyone else is refused by the kernel at connect). Without that group
the socket is root-only (0600) and the service says so. Under systemd socket activation
(LISTEN_PID = our pid, LISTEN_FDS >= 1) the socket comes from fd 3 and its unit sets the mode.

Invariants: only Unix sockets (a `tcp://` address is refused before anything is bound); the
socket file is ours only while we run (a stale one from a crashed service is replaced, a live
one held by another service is refused); SIGTERM/SIGINT, or `--timeout` seconds without a request
or an open connection, end the service and remove its socket. Containers are not ours: they run
on under their monitors whatever happens to the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import signal
import socket
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.config import EngineConfig
from engine.errors import Conflict, InvalidArgument

DEFAULT_HOST = "unix:///run/dockui.sock"
SOCKET_GROUP = "dockui"
SD_LISTEN_FDS_START = 3


@dataclass(frozen=True)
class ListenSpec:
    path: Path | None  # None: the socket came from systemd
    fd: int | None = None


def parse_host(value: str) -> Path:
    """unix:///path (or a bare absolute path); anything else is refused with one line."""
    if value.startswith("unix://"):
        path = value[len("unix://"):]
    elif value.startswith("/"):
        path = value
    elif "://" in value:
        scheme = value.split("://", 1)[0]
        raise InvalidArgument(f"{scheme}:// listeners are not supported: dockui serves the Engine API on a Unix "
                              f"socket only (its mode and group are the access control); use -H unix:///PATH")
    else:
        raise InvalidArgument(f"invalid -H {value!r}: expected unix:///PATH")
    if not path.startswith("/"):
        raise InvalidArgument(f"invalid -H {value!r}: the socket path must be absolute")
    return Path(path)


def systemd_socket() -> int | None:
    """The first socket systemd passed us (LISTEN_FDS), or None when not socket-activated."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return None
    try:
        count = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(key, None)  # not for our children
    return SD_LISTEN_FDS_START if count >= 1 else None


def _in_use(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def bind_socket(path: Path) -> tuple[socket.socket, str]:
    """A listening socket at `path` (0660 root:dockui, else 0600); a note for the operator."""
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):  # never remove what is not a stale socket
            raise InvalidArgument(f"{path} exists and is not a socket: choose another -H")
        if _in_use(path):
            raise Conflict(f"{path} is in use by another service: stop it or choose another -H")
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # never reachable by others between bind and chmod
    try:
        sock.bind(str(path))
    finally:
        os.umask(old_umask)
    try:
        gid = grp.getgrnam(SOCKET_GROUP).gr_gid
    except KeyError:
        note = f"group {SOCKET_GROUP!r} does not exist: {path} is root-only (0600); create it with `groupadd {SOCKET_GROUP}`"
    else:
        os.chown(path, 0 if os.geteuid() == 0 else -1, gid)
        os.chmod(path, 0o660)
        note = ""
    sock.listen(128)
    sock.setblocking(False)
    return sock, note


async def idle_watch(server: object, timeout: float, stop: asyncio.Event) -> None:
    """Set `stop` after `timeout` seconds with no connection open (never with 0, as podman)."""
    if timeout <= 0:
        return
    loop = asyncio.get_running_loop()
    idle_since = loop.time()
    while not stop.is_set():
        await asyncio.sleep(min(1.0, timeout))
        if server.connections:  # type: ignore[attr-defined]
            idle_since = loop.time()
        elif loop.time() - idle_since >= timeout:
            stop.set()


async def serve(config: EngineConfig, host: str, timeout: float) -> None:
    fd = systemd_socket()
    path: Path | None = None
    if fd is not None:
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        note = ""
    else:
        path = parse_host(host)
        sock, note = bind_socket(path)
    if note:
        print(f"dockui: {note}", file=sys.stderr)
    try:
        await _serve_on(config, sock, path, timeout)
    finally:
        if path is not None:  # ours only while we run, whatever ended the run
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


async def _serve_on(config: EngineConfig, sock: socket.socket, path: Path | None, timeout: float) -> None:
    from aiohttp import web

    from engine.kernel import syscalls
    from engine.service.app import make_app

    loop = asyncio.get_running_loop()
    loop.set_default_executor(_executor())
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = make_app(config)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()  # starts the spawner first: containers keep the open-files limit the service was given
    syscalls.raise_open_files_limit()  # idle clients by the thousand must not exhaust 1024 descriptors
    try:
        site = web.SockSite(runner, sock, shutdown_timeout=1.0)
        await site.start()
        where = "systemd socket" if path is None else f"unix://{path}"
        print(f"dockui: serving the Docker Engine API on {where}", file=sys.stderr, flush=True)
        watcher = asyncio.create_task(idle_watch(runner.server, timeout, stop))
        try:
            await stop.wait()
        finally:
            watcher.cancel()
    finally:
        await runner.cleanup()


def _executor() -> object:
    """Blocking engine calls (stop waits up to its timeout, follows poll) run on threads: enough
    of them that long calls never starve the short ones."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=64, thread_name_prefix="engine")


def run(config: EngineConfig, host: str = DEFAULT_HOST, timeout: float = 0) -> int:
    """The service's main loop; returns the exit status."""
    if timeout < 0:
        raise InvalidArgument("--timeout must be 0 (never) or a number of seconds")
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        parse_host(host)  # refuse tcp:// before importing anything heavy
    try:
        asyncio.run(serve(config, host, timeout))
    except KeyboardInterrupt:
        pass
    return 0
