"""Passing from one monitor stage to the next: `exec_stage` replaces the process (same pid, so the
container stays its child) with the next stage, the C watch stage when built (`native_watch`),
Python otherwise; `ensure_bytecode` keeps every stage's interpreter from compiling the engine;
`put_off` holds the work a monitor forked ahead does for its caller once the start is over (`run`'s
sweep).

Invariant: work in `put_off` runs in stage 1 once nothing waits for this process: after the exit
of a short-lived container went out, before the watch stage's exec, or on the way out of a start
that failed; never between the context and the report or the exit frame.
"""

from __future__ import annotations

import os
import sys

from engine.container.monitor.context import MonitorContext

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from collections.abc import Callable

# See docs/lifecycle.md, "Import costs".
put_off: list[Callable[[], None]] = []


def run_put_off() -> None:
    """The put-off work, each step once (a step's failure is its own to report)."""
    while put_off:
        put_off.pop(0)()


ENGINE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # holds engine/


_bytecode_checked = False


def ensure_bytecode() -> None:
    """Have .pyc files for the engine's modules this process loaded (an editable install, or
    PYTHONDONTWRITEBYTECODE, has none): the CLI and the stages load the same ones.

    Compiling from source costs each stage tens of milliseconds, and the long-lived watch stage
    ~1 MB for good. An interpreter that writes bytecode itself already wrote them when it loaded
    them; otherwise two stats per loaded module (not a walk of the whole tree: ~6 ms of CPU after
    every exit), once per process.
    """
    global _bytecode_checked
    if _bytecode_checked or not sys.dont_write_bytecode:
        return
    _bytecode_checked = True
    # (and the console script's first modules, tui/__init__.py and tui/launcher.py, when loaded)
    prefixes = (os.path.join(ENGINE_ROOT, "engine") + os.sep, os.path.join(ENGINE_ROOT, "tui", "__init__.py"),
                os.path.join(ENGINE_ROOT, "tui", "launcher.py"))
    # (read from each module's __dict__: an attribute lookup would load a deferred stand-in, such
    # as the launcher's urllib.parse, for nothing)
    sources = [f for f in (getattr(m, "__dict__", {}).get("__file__") for m in list(sys.modules.values()))
               if isinstance(f, str) and f.startswith(prefixes) and f.endswith(".py")]
    for source in sources:
        directory, name = os.path.split(source)  # importlib.util.cache_from_source, without its import
        cached = os.path.join(directory, "__pycache__", f"{name[:-3]}.{sys.implementation.cache_tag}.pyc")
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
