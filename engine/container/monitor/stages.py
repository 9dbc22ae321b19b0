"""Passing from one monitor stage to the next: `exec_stage` replaces the process (same pid, so the
container stays its child) with the next stage, the C watch stage when built (`native_watch`),
Python otherwise; `ensure_bytecode` keeps every stage's interpreter from compiling the engine.
"""

from __future__ import annotations

import os
import sys

from engine.container.monitor.context import MonitorContext

ENGINE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # holds engine/


_bytecode_checked = False


def ensure_bytecode() -> None:
    """Have .pyc files for the engine (an editable install, or PYTHONDONTWRITEBYTECODE, has none).

    Compiling from source costs each stage tens of milliseconds, and the long-lived watch stage
    ~1 MB for good. Only stats when the files are fresh, and once per process (a monitor forked
    ahead checks while it waits for its context).
    """
    global _bytecode_checked
    if _bytecode_checked:
        return
    _bytecode_checked = True
    import importlib.util

    # (and for the console script's first module, tui.launcher: the TUI's others are not on the CLI path)
    engine_dirs = [d for d, _, _ in os.walk(os.path.join(ENGINE_ROOT, "engine")) if not d.endswith("__pycache__")]
    for directory in (*engine_dirs, os.path.join(ENGINE_ROOT, "tui")):
        try:
            names = [n for n in os.listdir(directory) if n.endswith(".py")]
        except OSError:
            continue
        if directory.endswith("tui"):
            names = [n for n in names if n in ("__init__.py", "launcher.py")]
        for name in names:
            source = os.path.join(directory, name)
            cached = importlib.util.cache_from_source(source)
            try:
                if os.stat(cached).st_mtime >= os.stat(source).st_mtime:
                    continue
            except OSError:
                pass
            import py_compile

            try:
                py_compile.compile(source, cached, doraise=True)
            except (OSError, py_compile.PyCompileError):
                return  # read-only install: stages still run, compiled from source


def native_watch() -> str | None:
    """The compiled watch stage, if built (~0.3 MB of PSS instead of the interpreter's ~3 MB).

    DOCKUI_WATCH=python forces the Python stage; DOCKUI_WATCH=<path> names the binary.
    """
    choice = os.environ.get("DOCKUI_WATCH", "")
    if choice == "python":
        return None
    path = choice or os.path.join(sys.prefix, "libexec", "dockui-watch")
    return path if os.access(path, os.X_OK) else None


def exec_stage(stage: str, ctx: MonitorContext) -> None:
    """Replace this process with the next stage (same pid, so the container stays our child)."""
    for fd in ctx.fds():
        os.set_inheritable(fd, True)
    env = dict(os.environ)
    if ENGINE_ROOT not in env.get("PYTHONPATH", "").split(os.pathsep):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (ENGINE_ROOT, env.get("PYTHONPATH")) if p)
    native = native_watch() if stage == "watch" else None
    if native:
        # The C stage (engine/container/native/dockui-watch.c): same argv and context; it execs stage 3 with this python.
        env["DOCKUI_MONITOR_PYTHON"] = sys.executable
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(native, [native, stage, *ctx.to_argv()], env)
    if stage == "watch":
        loader = f"import sys; sys.path.insert(0, {ENGINE_ROOT!r}); from engine.container.monitor.__main__ import main; sys.exit(main(sys.argv[1:]))"
        argv = [sys.executable, "-S", "-c", loader, stage, *ctx.to_argv()]
    else:
        argv = [sys.executable, "-S", "-m", "engine.container.monitor", stage, *ctx.to_argv()]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)
