"""The per-container monitor: what conmon is to podman. One detached process per running container.

`runtime.start` launches it as a fresh interpreter in its own session (`start_new_session=True`), so
it survives the CLI and the TUI. It keeps ONE pid for the container's whole life but runs in three
stages, each an `execv` of the previous one, so that the long-lived part is small. Stages 1 and 3
need the whole engine and live in engine.container.runtime (`monitor_start`, `monitor_finish`); this module
holds only what the long-lived stage 2 runs, so that stage compiles and keeps little:

1. `start` (full engine imported): creates the cgroup, mounts the rootfs, calls
   `engine.sandbox.process.spawn_container` (the process joins its cgroup itself; `on_namespaces_ready` plugs the veth),
   records "running", reports `{"ok": ...}` or `{"error": ..., "exit_code": ...}` on the status fd,
   then relays output itself for 250 ms: a container that exits by then is finished in-process
   (no more interpreter starts), one that lives on gets stage 2 with its stdio fds inherited.
2. `watch` (the C drop-in engine/container/native/dockui-watch.c when built, see `native_watch`; otherwise
   `python -S`, loads only this module from its .pyc, and os/select/_json): relays stdout/stderr
   (or the pty) into the json-file log and to an attached client, stdin and window sizes from it,
   and waits for the container (its child: exec keeps children) through a pidfd.
3. `finish` (full engine again): records exit code, times and OOMKilled (137 when the cgroup's
   oom_kill count rose), detaches the network, removes the cgroup, unmounts the rootfs, applies the
   restart policy (back to stage 1) or `--rm`, then tells an attached client the exit code.

The attached client (CLI `run`/`start -a`) talks over a socketpair made by the CLI: frames of
`kind (1 byte) | length (4 bytes, big endian) | payload`, kinds below.
"""

from __future__ import annotations

from engine.container.monitor.context import (
    FRAME_ATTACHED,
    FRAME_EXIT,
    FRAME_RESIZE,
    FRAME_STDERR,
    FRAME_STDIN,
    FRAME_STDIN_EOF,
    FRAME_STDOUT,
    START_GRACE,
    FrameReader,
    frame,
    write_all,
)

__all__ = [
    "FRAME_ATTACHED", "FRAME_EXIT", "FRAME_RESIZE", "FRAME_STDERR", "FRAME_STDIN", "FRAME_STDIN_EOF",
    "FRAME_STDOUT", "START_GRACE", "FrameReader", "frame", "write_all",
]



