"""`docker export`: a container's filesystem (its image's layers with its own changes on top), as
one flat tar.

The view is a read-only overlay whose lower layers are the container's `diff` over the image's
layers (overlayfs reads whiteouts and opaque directories in lower layers too, and needs no upper or
work directory for that, so it can be mounted beside the container's own mount). It is mounted in
a private mount namespace of a forked child, which vanishes with it: nothing is mounted on the
host. Volumes and the bind-mounted /etc/hosts, hostname and resolv.conf are not part of it, as
with Docker.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.config import EngineConfig
from engine.errors import DockuiError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO


def export(config: EngineConfig, ref: str, out: BinaryIO) -> None:
    """Write the tar of container `ref`'s filesystem to `out`."""
    from engine.container.state import find_container
    from engine.image.store import ImageStore

    record = find_container(config, ref)
    store = ImageStore(config)
    layer = store.rw_layer_path(record.id)
    init = [str(layer / "init")] if (layer / "init").is_dir() else []  # /.dockerenv, as Docker's init layer
    lowers = [str(layer / "diff"), *init, *store.lowerdir_option(record.image_id).split(":")]
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    out.flush()
    pid = os.fork()
    if pid == 0:  # the child: own mount namespace, the overlay, the tar into the pipe
        code = 1
        try:
            os.close(read_fd)
            _write_view(config, lowers, write_fd)
            code = 0
        except BaseException as exc:  # noqa: BLE001 - reported through the exit status and stderr
            os.write(2, f"Error: cannot export: {exc}\n".encode())
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        while chunk := os.read(read_fd, 1 << 16):
            out.write(chunk)
    finally:
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise DockuiError(f"exporting container {record.name} failed")
    from engine import events

    events.container(config, "export", record)


def _write_view(config: EngineConfig, lowers: list[str], write_fd: int) -> None:
    import tempfile

    from engine.container.commit import write_layer_tar
    from engine.kernel import syscalls
    from engine.sandbox.rootfs import make_mounts_slave

    syscalls.unshare(syscalls.CLONE_NEWNS)
    make_mounts_slave()  # our mount stays in this namespace
    config.tmp_dir.mkdir(parents=True, exist_ok=True)
    view = tempfile.mkdtemp(dir=config.tmp_dir, prefix="export-")
    try:
        os.chdir(config.layers_dir)  # the image's lowers are `l/<link>`, relative to it
        syscalls.mount("overlay", view, "overlay", syscalls.MS_RDONLY, "lowerdir=" + ":".join(lowers))
        with os.fdopen(write_fd, "wb") as pipe:
            write_layer_tar(Path(view), pipe)
    finally:
        try:
            syscalls.umount2(view, syscalls.MNT_DETACH)
        except OSError:
            pass
        os.rmdir(view)
