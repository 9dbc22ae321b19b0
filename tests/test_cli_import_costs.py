"""The CLI's start-up cuts stay cut (docs/lifecycle.md, "Import costs, said once"): real verbs, each
in a fresh interpreter through the console script's `main`, and the modules they loaded."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root

# `inspect`'s own imports: loaded only if a dataclass without a docstring (or anything else) uses it.
INSPECT_DEPS = ("ast", "dis", "tokenize")
# Per verb: modules it must not load (each costs every run of the verb, and the verb needs none).
FORBIDDEN = {
    ("ps",): (*INSPECT_DEPS, "shutil", "engine.container.start", "engine.container.options"),
    ("ps", "-q"): (*INSPECT_DEPS, "shutil", "engine.container.start", "engine.container.options"),
    ("network", "ls"): (*INSPECT_DEPS, "shutil", "engine.container.start", "ctypes", "engine.network.plumbing", "hashlib"),
    ("volume", "ls"): (*INSPECT_DEPS, "engine.container.start"),
    ("images",): (*INSPECT_DEPS, "engine.container.start"),
    ("inspect", "--type", "container", "ghost"): (*INSPECT_DEPS, "engine.container.start"),
    ("--version",): ("argparse", "engine.cli", "engine.config", "dataclasses", "pathlib"),
}


def _loaded(engine: Engine, argv: list[str], watch: tuple[str, ...]) -> tuple[int, list[str]]:
    code = (
        "import sys\n"
        "from tui import launcher\n"
        f"code = launcher.main(['--root', {str(engine.config.root)!r}, *{argv!r}])\n"
        f"print(code, sorted(set({watch!r}) & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=engine.env, timeout=60)
    assert result.returncode == 0, result.stderr
    status, _, loaded = result.stdout.strip().splitlines()[-1].partition(" ")
    return int(status), eval(loaded)  # noqa: S307 - our own printed list of names


@pytest.mark.parametrize("argv", list(FORBIDDEN), ids=" ".join)
def test_read_only_verbs_load_nothing_they_do_not_use(engine: Engine, argv: tuple[str, ...]) -> None:
    status, loaded = _loaded(engine, list(argv), FORBIDDEN[argv])
    assert status in (0, 1), status  # `inspect ghost`: no such container, exit 1
    assert loaded == [], f"dockui {' '.join(argv)} loaded {loaded}"


def test_create_and_inspect_do_not_load_inspect(engine: Engine) -> None:
    status, loaded = _loaded(engine, ["create", "--name", "costs", "--network", "none", "busybox", "true"], INSPECT_DEPS)
    assert (status, loaded) == (0, [])
    status, loaded = _loaded(engine, ["inspect", "costs"], (*INSPECT_DEPS, "engine.container.start"))
    assert (status, loaded) == (0, [])
    engine.cli("rm", "costs", check=True)


def test_the_predefined_networks_ids_are_their_digests() -> None:
    import hashlib

    from engine.cli.network_cmds import PSEUDO_IDS

    assert PSEUDO_IDS == {n: hashlib.sha256(f"dockui-network-{n}".encode()).hexdigest() for n in ("bridge", "host", "none")}


def test_the_launchers_global_options_are_the_clis() -> None:
    from engine.cli import GLOBAL_OPTIONS_WITH_VALUE
    from tui import launcher

    assert launcher.GLOBAL_OPTIONS_WITH_VALUE == GLOBAL_OPTIONS_WITH_VALUE


def test_the_deferred_inspect_becomes_the_real_one() -> None:
    code = (
        "import sys\n"
        "from tui import launcher\n"
        "launcher._defer_inspect()\n"
        "import dataclasses\n"
        "@dataclasses.dataclass\n"
        "class NoDoc:\n"
        "    a: int\n"
        "import inspect\n"
        "print(NoDoc.__doc__, inspect.signature(NoDoc), type(sys.modules['inspect']).__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "NoDoc(a: int) (a: int) -> None module", result.stdout + result.stderr
