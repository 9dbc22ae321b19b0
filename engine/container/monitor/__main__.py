"""The monitor's entry point: `python -S -m engine.container.monitor STAGE key=value ...`.

Stage 2 (`watch`) loads only the small modules it runs; stages 1 (`start`) and 3 (`finish`) load the
engine as they need it.
"""

from __future__ import annotations

import os
import sys

from engine.container.monitor.context import MonitorContext
from engine.container.monitor.stages import exec_stage
from engine.container.monitor.watch import watch
from engine.diagnostics import TolerantStream


def main(argv: list[str]) -> int:
    stage, ctx = argv[0], MonitorContext.from_argv(argv[1:])
    sys.stderr = TolerantStream(sys.stderr)  # monitor.log may sit on a full disk: never fatal
    for fd in ctx.fds():
        os.set_inheritable(fd, False)
    if stage == "watch":
        watch(ctx)
        exec_stage("finish", ctx)
        return 0
    if stage == "start":
        from engine.container.monitor.start import monitor_start

        monitor_start(ctx)
    elif stage == "finish":
        from engine.container.monitor.finish import monitor_finish

        monitor_finish(ctx)
    else:
        print(f"unknown monitor stage {stage!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
