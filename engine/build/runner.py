"""RUN: the command in an intermediate container made with the engine's own create/start/wait, and
the container's writable layer committed as the step's layer.

The container is an ordinary one (a record, a monitor, a json-file log): created from the step's
parent image with the entrypoint cleared, the build arguments in its environment, the healthcheck
off and the build's network (the default bridge unless asked, as Docker's), then started attached. Its output frames
(stdout and stderr, pipes only: the monitor's, never a host descriptor) are relayed to the build's
output as they come. A threaded caller (the service) passes a `Spawner`, so the monitor is forked
from a single-threaded helper (docs/api.md); the CLI starts it itself.

Invariant: `run_container` returns only once the container has stopped (its monitor recorded the
exit), so the layer committed next is the finished one; a cancelled build's container is removed
at once, running or not.
"""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Callable
from dataclasses import dataclass

from engine.config import EngineConfig
from engine.errors import DockuiError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from engine.container.spawner import Spawner

POLL_SECONDS = 0.25  # how soon a cancelled build notices


class BuildCancelled(DockuiError):
    """The client went away or the user interrupted the build."""


@dataclass(frozen=True)
class RunSpec:
    image_id: str
    argv: tuple[str, ...]
    extra_env: tuple[str, ...]  # the build arguments, over the image's Env
    network: str


def create_container(config: EngineConfig, spec: RunSpec) -> str:
    from engine.container.create import create
    from engine.container.health import Healthcheck
    from engine.container.options import RunOptions

    opts = RunOptions(image=spec.image_id, image_id=spec.image_id, command=list(spec.argv), entrypoint="",
                      env=list(spec.extra_env), network=spec.network, healthcheck=Healthcheck(test=("NONE",)))
    return create(config, opts).id


def run_container(config: EngineConfig, container_id: str, emit: Callable[[bytes], None],
                  spawner: Spawner | None, cancelled: Callable[[], bool]) -> int:
    """Start the container attached, relay its output to `emit`, and return its exit code."""
    from engine.container import lifecycle

    channel = _start_attached(config, container_id, spawner)
    try:
        code = _relay(channel, emit, cancelled)
    finally:
        channel.close()
    if code is None and cancelled():
        raise BuildCancelled("Build cancelled")
    recorded = lifecycle.wait(config, container_id)  # the monitor's last stage has recorded the exit
    return recorded if code is None else code


def _start_attached(config: EngineConfig, container_id: str, spawner: Spawner | None) -> socket.socket:
    if spawner is not None:
        started = spawner.start(config, container_id, True, False, None)
        if started.attach is None:
            raise DockuiError(f"container {container_id[:12]} started without its output channel")
        return started.attach
    from engine.container.start import start

    result = start(config, container_id, attach=True)
    return socket.socket(fileno=result.attach.detach())


def _relay(channel: socket.socket, emit: Callable[[bytes], None], cancelled: Callable[[], bool]) -> int | None:
    """Frames until the exit frame (the code) or the end of the channel (None)."""
    from engine.container.monitor.context import FRAME_EXIT, FRAME_STDERR, FRAME_STDOUT, FrameReader

    reader = FrameReader()
    while True:
        if cancelled():
            return None
        ready, _, _ = select.select([channel], [], [], POLL_SECONDS)
        if not ready:
            continue
        data = channel.recv(65536)
        if not data:
            return None
        for kind, payload in reader.feed(data):
            if kind in (FRAME_STDOUT, FRAME_STDERR):
                emit(payload)
            elif kind == FRAME_EXIT:
                return int.from_bytes(payload, "big", signed=True)


def remove_container(config: EngineConfig, container_id: str) -> None:
    from engine.container.removal import remove

    remove(config, container_id, force=True, volumes=True)


def diff_dir(config: EngineConfig, container_id: str) -> Path:
    from engine.image.store import ImageStore

    return ImageStore(config).rw_layer_path(container_id) / "diff"


# What the runtime makes in a container's root as mount points when the image lacks them: Docker
# keeps these in an "init" layer under the container's own, so they never reach a commit.
MOUNT_POINT_STUBS = ("etc/hosts", "etc/hostname", "etc/resolv.conf", "dev", "proc", "sys", "etc")


def drop_mount_point_stubs(diff: Path, in_parent: Callable[[str], bool]) -> None:
    """Remove, from a stopped container's upper dir, the empty mount points the runtime made where
    the parent image had nothing (`in_parent(path)`), so the step's layer holds only the RUN's own
    changes (as Docker's init layer keeps them out). Anything with content, or that the image had,
    stays."""
    for rel in MOUNT_POINT_STUBS:
        path = diff / rel
        if in_parent("/" + rel):
            continue
        try:
            if path.is_symlink():
                continue
            if path.is_dir():
                path.rmdir()  # only when empty: a directory with content stays (OSError)
            elif path.is_file() and path.stat().st_size == 0:
                path.unlink()
        except OSError:
            continue


def diff_is_empty(path: Path) -> bool:
    try:
        return not os.listdir(path)
    except FileNotFoundError:
        return True
