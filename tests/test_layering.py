"""The engine is usable without the TUI: it must never import `tui` or `textual`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - the `engine` fixture

ENGINE = Path(__file__).resolve().parent.parent / "engine"


def test_engine_sources_never_import_tui_or_textual() -> None:
    offenders = []
    for path in ENGINE.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
                names = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            for name in names:
                if name.split(".")[0] in ("tui", "textual"):
                    offenders.append(f"{path.relative_to(ENGINE.parent)}:{node.lineno} imports {name}")
    assert offenders == []


def test_import_contracts_hold() -> None:
    """pyproject.toml's [tool.importlinter] contracts: the layers (kernel, util < image, sandbox,
    network < container < stats, build < api < cli, service, tui), the engine never imports tui or textual, no
    import cycles."""
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ENGINE.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr


def test_importing_every_engine_module_loads_no_textual() -> None:
    modules = sorted(
        ".".join(p.relative_to(ENGINE.parent).with_suffix("").parts).removesuffix(".__init__")
        for p in ENGINE.rglob("*.py")
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tui', 'textual')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_start_path_stays_light() -> None:
    """`dockui --help` must not pay for requests, pyroute2 or textual."""
    code = (
        "import sys\n"
        "from tui.launcher import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'requests', 'pyroute2', 'textual', 'psutil'})\n"
        "print(heavy, file=sys.stderr); sys.exit(1 if heavy else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_watch_stage_stays_small() -> None:
    """The Python watch stage lives as long as its container: as the monitor starts it (`python -S`,
    the engine on sys.path), it loads only the monitor's small modules (docs/lifecycle.md)."""
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(ENGINE.parent)!r})\n"
        "from engine.container.monitor.__main__ import main\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'dataclasses', 'inspect', 'typing', 'json',"
        " 'pathlib', 'socket', 'logging', 'subprocess', 'threading'})\n"
        "engine = sorted(m for m in sys.modules if m.startswith('engine.')"
        " and not m.startswith(('engine.container', 'engine.diagnostics')))\n"
        "print(heavy, engine)\n"
    )
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] []", result.stdout


# What `dockui run` may not load: each costs milliseconds on every start (bench/run compares the start
# time with podman's), and none is needed to run a container from a local image. `logging` loads when
# something is logged (engine.diagnostics), hashlib/secrets only where digests or tokens are made.
RUN_PATH_FORBIDDEN = (
    "logging", "typing", "secrets", "hashlib", "hmac", "random", "tempfile", "tarfile", "gzip",
    "platform", "datetime", "subprocess", "threading", "socket", "requests", "pyroute2", "psutil", "textual",
)


@pytest.mark.root
def test_run_path_stays_light(engine: Engine) -> None:
    """A real `dockui run --rm`, in one process (the launcher called as a library, so it returns):
    the modules it loaded must not include the heavy ones above."""
    code = (
        "import sys\n"
        "from tui import launcher\n"
        f"code = launcher.main(['--root', {str(engine.config.root)!r}, 'run', '--rm', '--network', 'none',"
        " 'busybox', 'true'])\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({RUN_PATH_FORBIDDEN!r}))\n"
        "print(code, heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=engine.env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0 []", result.stdout + result.stderr


def test_compatibility_namespaces_resolve() -> None:
    """engine.container.runtime and engine.network.endpoints (the former single modules) still
    resolve every name they list, to its new home, for the callers that have not moved."""
    from engine.container import runtime
    from engine.network import endpoints

    for module in (runtime, endpoints):
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"
    assert runtime.start.__module__ == "engine.container.start"
    assert endpoints.topology.__module__ == "engine.network.topology"
