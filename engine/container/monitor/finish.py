"""The monitor's stage 3: record the exit (code, OOMKilled), take the container's network and cgroup
down, then apply the restart policy (a fresh stage 1, same pid) or --rm, and tell an attached client
the exit code last, once nothing of the container is left on the host.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from engine import events
from engine.config import EngineConfig
from engine.container import state
from engine.container.cleanup import release_volumes, remove_files, unmount_rootfs
from engine.container.monitor.context import ATTACH_SOCKET, MonitorContext, config_from_json
from engine.container.monitor.stages import exec_stage, run_put_off
from engine.container.options import network_kind
from engine.container.removal import remove
from engine.container.state import ContainerRecord
from engine.errors import NotFound
from engine.util import trace


def monitor_finish(ctx: MonitorContext) -> None:
    """Stage 3: record the exit, clean up, and restart (back to stage 1) or remove."""
    from engine.sandbox import cgroups

    config = config_from_json(ctx.config)
    cid = ctx.id
    code = ctx.exit_code
    listen, ctx.listen_fd = ctx.listen_fd, -1
    if listen >= 0:  # nobody attaches to a stopped container (a restart makes a new listener)
        os.close(listen)
        with contextlib.suppress(OSError):
            os.unlink(config.containers_dir / cid / ATTACH_SOCKET)
    try:
        record = state.load(config, cid)
    except NotFound:
        record = None
    host_links: list[str] = []
    if record is not None and network_kind(record.host_config.get("NetworkMode", "none")) == "bridge":
        try:
            from engine.network import endpoint as network

            # First: the veth pairs leave the host on a thread meanwhile (see network.detach)
            host_links = network.detach(config, cid, wait=False)
        except Exception as exc:  # noqa: BLE001
            print(f"network detach failed: {exc}", file=sys.stderr)
    if record is not None and record.cgroup_paths:
        cg = cgroups.Cgroup.from_paths(record.cgroup_paths)
    else:
        cg = cgroups.open_cgroup(config, cid)
    oom = cg.oom_kill_count() > ctx.oom_base
    destroyed = False
    try:
        cg.destroy()
        destroyed = True
    except Exception as exc:  # noqa: BLE001
        print(f"cgroup clean-up failed: {exc}", file=sys.stderr)
    trace.mark("monitor cgroup destroyed")
    if record is not None:
        unmount_rootfs(record)
        release_volumes(config, record)
        trace.mark("monitor host side done")
    if record is None:
        ctx.send_exit(code)
        return
    if oom and code == 0:
        code = 137
    trash: list[Path] = []  # an --rm container's layer and directory, renamed away: emptied last
    try:
        _finish_record(config, ctx, record, code, oom, host_side_done=destroyed, trash=trash)
    finally:
        # The host veths are being deleted on a thread (or by the kernel with the namespace): wait
        # for them (after the record work above, which overlaps), so that when `run` returns or
        # `wait` answers, nothing of the container is left on the host.
        _wait_links_gone(host_links)
        trace.mark("monitor exit frame")
        ctx.send_exit(code)
        _empty(trash)
        trace.mark("monitor trash emptied")


def _empty(trash: list[Path]) -> None:
    """What the removal renamed away, deleted after the exit went out: the writable layer's
    directories (in the store's layerdb/tmp, which the next store open empties after a kill) and
    the record's (in the containers' trash, which the next sweep empties: state.empty_trash)."""
    if trash:
        import shutil

        for path in trash:
            shutil.rmtree(path, ignore_errors=True)


def _wait_links_gone(names: list[str], timeout: float = 2.0) -> None:
    if names:
        from engine.network import endpoint as network

        network.wait_links_gone(names, timeout)


def _finish_record(
    config: EngineConfig, ctx: MonitorContext, record: ContainerRecord, code: int, oom: bool, host_side_done: bool,
    trash: list[Path],
) -> None:
    """Stage 3's record part: exited (or restarting: back to stage 1), then --rm removal (without
    looking for the cgroup and mounts again when `host_side_done`: gone already; the directory's
    trash entry left in `trash`)."""
    import time

    cid = record.id
    policy = record.host_config.get("RestartPolicy") or {}
    name, retries = policy.get("Name") or "", int(policy.get("MaximumRetryCount") or 0)

    def exited(r: ContainerRecord) -> None:
        r.status = "exited"
        r.exit_code = code
        r.oom_killed = oom
        r.finished_at = state.now_rfc3339()
        r.pid = r.pid_start = 0
        again = not r.stop_requested and (
            name in ("always", "unless-stopped")
            or (name == "on-failure" and code != 0 and (retries == 0 or r.restart_count < retries))
        )
        if again:
            r.status = "restarting"
            r.restart_count += 1
        else:
            r.monitor_pid = r.monitor_start = 0
            if r.host_config.get("AutoRemove") and not r.restart_requested:
                r.status = "removing"  # --rm: as `remove` would mark it, in the same locked update

    try:
        record = state.update(config, cid, exited)
    except NotFound:
        return
    trace.mark("monitor record exited")
    events.die(config, record, code)  # after the record says exited, as moby's (a reader may inspect it)
    trace.mark("monitor die written")
    if record.status == "removing":
        try:
            remove_files(config, record, remove_volumes=True, host_side_done=host_side_done, empty_later=trash)
            trace.mark("monitor removed")
        except Exception as exc:  # noqa: BLE001
            print(f"--rm clean-up failed: {exc}", file=sys.stderr)
        return
    if record.status == "restarting":
        time.sleep(min(0.1 * 2 ** (record.restart_count - 1), 10.0))  # Docker's doubling back-off

        def check(r: ContainerRecord) -> None:
            if r.stop_requested:
                r.status = "exited"
                r.monitor_pid = r.monitor_start = 0

        try:
            record = state.update(config, cid, check)
        except NotFound:
            return
        if record.status == "restarting":
            ctx.exit_code, ctx.pid, ctx.oom_base = -1, 0, 0
            ctx.fresh = False
            run_put_off()  # (not carried into the exec)
            exec_stage("start", ctx)  # a fresh stage 1: no recursion however often it restarts
    if record.host_config.get("AutoRemove") and not record.restart_requested:
        try:
            remove(config, cid, volumes=True)
        except Exception as exc:  # noqa: BLE001
            print(f"--rm clean-up failed: {exc}", file=sys.stderr)
