"""The per-container monitor: what conmon is to podman. One detached process per running container.

`engine.container.start` launches it in its own session, so it survives the CLI and the TUI. It
keeps ONE pid for the container's whole life but runs in three stages, each an `execv` of the
previous one (stages.exec_stage), so that the long-lived part is small. They share one typed
`MonitorContext` (context.py), passed as `key=value` argv:

1. `start` (start.py, launch.py; the engine imported as needed): claims the record, creates the
   cgroup, plans the network, spawns the container's first process (it joins its cgroup itself;
   the veth is plugged while it waits), records "running", reports to `start` on the status fd,
   then relays output itself for START_GRACE: a container that exits by then is finished in-process
   (no more interpreter starts), one that lives on gets stage 2 with its stdio fds inherited.
2. `watch` (native/dockui-watch.c when built, see stages.native_watch; otherwise watch.py under
   `python -S`, which loads only this package's small modules): relays stdout/stderr (or the pty)
   into the json-file log and to an attached client, stdin and window sizes from it, and waits for
   the container (its child: exec keeps children) through a pidfd.
3. `finish` (finish.py): records exit code, times and OOMKilled (137 when the cgroup's oom_kill count
   rose), detaches the network, removes the cgroup, applies the restart policy (back to stage 1)
   or `--rm`, then tells an attached client the exit code.

The attached client (CLI `run`/`start -a`/`attach`) talks over a socketpair or attach.sock: frames of
`kind (1 byte) | length (4 bytes, big endian) | payload`, kinds in context.py, re-exported here.
This package imports the container modules it needs (records, cleanup, removal); none of them
imports it back except `engine.container.start`, which launches it.
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



