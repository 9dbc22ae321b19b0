"""The CLI's start-up cuts stay cut (docs/lifecycle.md, "Import costs, said once"): real verbs, each
in a fresh interpreter through the console script's `main`, and the modules they loaded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root

# `inspect`'s own imports: loaded only if a dataclass without a docstring (or anything else) uses it.
INSPECT_DEPS = ("ast", "dis", "tokenize")
# Per verb: modules it must not load (each costs every run of the verb, and the verb needs none).
# Reconcile on a store with nothing to clean up: no cgroups module (nor its `signal`), no resolver client.
RECONCILE_IDLE = ("engine.sandbox.cgroups", "signal", "engine.network.dns.client")
FORBIDDEN = {
    # (locale: gettext's first lookup, i.e. an argparse parser was built: ps is parsed by fast_args)
    ("ps",): (*INSPECT_DEPS, *RECONCILE_IDLE, "shutil", "engine.container.start", "engine.container.options",
              "urllib.parse", "locale", "gettext", "copy"),
    ("ps", "-q"): (*INSPECT_DEPS, *RECONCILE_IDLE, "shutil", "engine.container.start", "engine.container.options",
                   "urllib.parse", "locale", "gettext", "copy"),
    ("network", "ls"): (*INSPECT_DEPS, "shutil", "engine.container.start", "ctypes", "engine.network.plumbing", "hashlib",
                        "urllib.parse", "copy"),
    ("volume", "ls"): (*INSPECT_DEPS, *RECONCILE_IDLE, "engine.container.start", "urllib.parse", "shutil", "copy",
                       "secrets", "hashlib"),
    # (the fixture's store holds busybox: its CREATED is a time read, without calendar, datetime or locale)
    ("images",): (*INSPECT_DEPS, "engine.container.start", "shutil", "base64", "urllib.parse", "copy", "threading",
                  "calendar", "datetime", "locale", "gettext"),
    ("inspect", "--type", "container", "ghost"): (*INSPECT_DEPS, *RECONCILE_IDLE, "engine.container.start",
                                                  "urllib.parse"),
    ("--version",): ("argparse", "engine.cli", "engine.config", "dataclasses", "pathlib"),
}


def _loaded(engine: Engine, argv: list[str], watch: tuple[str, ...]) -> tuple[int, list[str]]:
    code = (
        "import sys\n"
        "from tui import launcher\n"
        f"code = launcher.main(['--root', {str(engine.config.root)!r}, *{argv!r}])\n"
        f"print(code, sorted(m for m in {watch!r} if type(sys.modules.get(m)).__name__ == 'module'))\n"  # no stand-in
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
    # (resource: check_ulimits, which also reads /proc/self/status, only with --ulimit; ipaddress:
    # hostsfiles reads the host's nameservers as dotted quads without it)
    status, loaded = _loaded(engine, ["create", "--name", "costs", "--network", "none", "busybox", "true"],
                             (*INSPECT_DEPS, "shutil", "base64", "resource", "ipaddress"))
    assert (status, loaded) == (0, [])
    status, loaded = _loaded(engine, ["inspect", "costs"], (*INSPECT_DEPS, "engine.container.start"))
    assert (status, loaded) == (0, [])
    engine.cli("rm", "costs", check=True)


def test_the_predefined_networks_ids_are_their_digests() -> None:
    import hashlib

    from engine.cli.network_cmds import PSEUDO_IDS

    assert PSEUDO_IDS == {n: hashlib.sha256(f"dockui-network-{n}".encode()).hexdigest() for n in ("bridge", "host", "none")}


def test_the_deferred_urllib_parse_becomes_the_real_one() -> None:
    """pathlib's `as_uri` and every other use load the real module (and `urllib.parse` is it)."""
    code = (
        "import sys\n"
        "from tui import launcher\n"
        "launcher._defer_urllib_parse()\n"
        "import pathlib\n"
        "deferred = type(sys.modules['urllib.parse']).__name__\n"
        "uri = pathlib.Path('/a b').as_uri()\n"
        "import urllib.parse\n"
        "from urllib.parse import urljoin\n"
        "print(deferred, uri, urljoin('http://h/a/b', 'c'), urllib.parse is sys.modules['urllib.parse'],\n"
        "      type(urllib.parse).__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "_Deferred file:///a%20b http://h/a/c True module", result.stdout + result.stderr


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


# ------------------------------------------------------------------------------------------ dataclass methods


def _run_with_cache(setting: str, cache: str, code: str, env: dict[str, str] | None = None) -> str:
    """`code` in a fresh interpreter whose launcher takes its cache `setting` (METHOD_CACHE,
    REGEX_CACHE) from `cache`; its last line."""
    prelude = f"import sys\nfrom tui import launcher\nlauncher.{setting} = {cache!r}\n"
    result = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


def _run_with_method_cache(cache: str, code: str, env: dict[str, str] | None = None) -> str:
    return _run_with_cache("METHOD_CACHE", cache, code, env)


@pytest.fixture(scope="module")
def method_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("method-cache") / "methods.bin")
    count = _run_with_method_cache(path, "print(launcher.write_method_cache())")
    assert int(count) > 100, count  # every engine and TUI dataclass: hundreds of methods
    return path


CLI_CLASSES = ("import engine.cli, engine.config, engine.container.state, engine.container.options, "
               "engine.container.create, engine.container.start, engine.image.store, engine.sandbox.process\n")


def test_the_clis_dataclasses_compile_nothing_with_the_cache(method_cache: str) -> None:
    """The guard: with a fresh cache, the classes on the CLI's and the monitor's paths (config,
    records, options, the store's, the process spec) are made without compiling one method."""
    code = f"launcher._use_method_cache()\n{CLI_CLASSES}print(launcher.method_cache_misses)"
    assert _run_with_method_cache(method_cache, code) == "0"


def test_cached_methods_are_the_ones_dataclasses_makes(method_cache: str) -> None:
    """A class from the cache and one compiled (a text the cache lacks) behave alike, and the
    generated __init__'s annotations are objects (no `from __future__` leaks into the compile)."""
    code = (
        "launcher._use_method_cache()\n"
        "import dataclasses\n"
        "from engine.config import EngineConfig\n"
        "hits = launcher.method_cache_misses\n"
        "@dataclasses.dataclass(frozen=True)\n"
        "class New:\n"
        "    'Not in the cache.'\n"
        "    a: int\n"
        "    b: tuple = ()\n"
        "n = New(1)\n"
        "c = EngineConfig(root='/x')\n"
        "print((hits, launcher.method_cache_misses > 0, n == New(1, ()), repr(n), hash(n) == hash(New(1)),\n"
        "       c == EngineConfig(root='/x'), EngineConfig.__init__.__annotations__['return'] is None,\n"
        "       New.__init__.__annotations__['return'] is None, hasattr(dataclasses, 'exec')))\n"
    )
    assert _run_with_method_cache(method_cache, code) == "(0, True, True, 'New(a=1, b=())', True, True, True, True, True)"


def test_a_missing_or_foreign_cache_is_not_used(method_cache: str, tmp_path) -> None:  # noqa: ANN001
    """No file, or one of another interpreter (code objects are only valid for the one that made
    them): dataclasses compiles as always."""
    other = tmp_path / "other.bin"
    data = bytearray(open(method_cache, "rb").read())  # noqa: PTH123
    data[len(b"dockui-dc1")] ^= 0xFF  # the bytecode magic's first byte
    other.write_bytes(bytes(data))
    for path in (str(tmp_path / "missing.bin"), str(other)):
        code = f"launcher._use_method_cache()\nimport dataclasses\n{CLI_CLASSES}print(hasattr(dataclasses, 'exec'))"
        assert _run_with_method_cache(path, code) == "False"


def test_ci_install_compiles_the_sources_and_the_methods() -> None:
    """A fresh clone under PYTHONDONTWRITEBYTECODE has no bytecode until .ci/install writes it (its
    `dockui ps` compiled every module it loads: ~64 ms of CPU instead of ~33)."""
    from pathlib import Path

    script = (Path(__file__).resolve().parent.parent / ".ci" / "install").read_text()
    lines = [line.strip() for line in script.splitlines() if not line.lstrip().startswith("#")]
    assert ".venv/bin/python -m compileall -q engine tui >/dev/null" in lines
    assert any("write_method_cache()" in line for line in lines)


# ------------------------------------------------------------------------------------------ run, parsed fast

PS_ARGVS = [
    ["ps"], ["ps", "-a"], ["--root", "/x", "ps", "-aq"], ["ps", "-n", "3", "-s"], ["ps", "--last=2", "-l"],
    ["ps", "--format", "{{.ID}}", "-f", "status=exited", "-f", "name=x", "--no-trunc"],
]
PS_ARGVS_FOR_ARGPARSE = [["ps", "x"], ["ps", "-n", "x"], ["ps", "--help"], ["ps", "--filter"], ["ps", "-z"]]
RUN_ARGVS = [
    ["run", "--rm", "--network", "none", "busybox", "true"],
    ["--root", "/x", "run", "--rm", "--network", "none", "busybox", "true"],
    ["--root=/x", "run", "-it", "--name=web", "-e", "A=1", "-e", "B=2", "-v", "/a:/b", "busybox", "sh", "-c", "echo hi"],
    ["run", "-d", "-p", "8080:80", "--restart", "always", "-m", "64m", "--cpus", "1.5", "busybox", "ls", "-l", "--rm"],
    ["run", "--pull", "never", "-dit", "--net", "bridge", "busybox"],
    ["--log-level", "debug", "--insecure-registry", "a:5000", "--insecure-registry", "b", "run", "--privileged",
     "--cap-add", "NET_ADMIN", "busybox", "true"],
    ["run", "-h", "box", "-w", "/tmp", "-u", "1000", "--entrypoint", "", "-a", "stdout", "--sig-proxy", "false", "busybox"],
]
# For argparse to parse (and, for most, to refuse with its own message): the fast parse steps aside.
RUN_ARGVS_FOR_ARGPARSE = [
    ["run", "--pull", "sometimes", "busybox"], ["run", "--rm"], ["run", "--name", "-x", "busybox"], ["run", "--help"],
    ["run", "--", "busybox"], ["run", "-m", "lots", "busybox"], ["run", "--rn", "busybox"], ["run", "-e=A", "busybox"],
    ["run", "--root", "/x", "busybox"], ["--version", "run", "busybox"], ["run", "--memory-swap", "-1", "busybox"],
]


@pytest.mark.parametrize("argv", RUN_ARGVS + PS_ARGVS, ids=" ".join)
def test_the_fast_parse_is_argparses(argv: list[str]) -> None:
    """Same namespace as the verb's argparse parser (both read _add_run_flags, _add_ps_flags: a new
    flag is known to both at once)."""
    from engine.cli import build_parser, find_verb
    from engine.cli.container_cmds import fast_args

    verb = find_verb(argv)
    fast = fast_args(argv, verb)
    real, extras = build_parser(verb).parse_known_args(argv)
    assert fast is not None and extras == []
    fast_values, real_values = vars(fast), vars(real)
    fast_handler, real_handler = fast_values.pop("handler"), real_values.pop("handler")
    assert fast_values == real_values
    assert (fast_handler.module, fast_handler.name) == (real_handler.module, real_handler.name)


@pytest.mark.parametrize("argv", RUN_ARGVS_FOR_ARGPARSE + PS_ARGVS_FOR_ARGPARSE, ids=" ".join)
def test_the_fast_parse_leaves_the_rest_to_argparse(argv: list[str]) -> None:
    from engine.cli.container_cmds import fast_args

    assert fast_args(argv, "ps" if "ps" in argv else "run") is None


def test_run_builds_no_argparse_parser_and_compiles_no_method(engine: Engine, method_cache: str) -> None:
    """The guard of both on a real `run --rm`: no ArgumentParser is made, and with a fresh method
    cache no dataclass method is compiled (nor in the monitor, forked from this process)."""
    code = (
        "import argparse\n"
        "made = []\n"
        "original = argparse.ArgumentParser.__init__\n"
        "argparse.ArgumentParser.__init__ = lambda self, *a, **k: (made.append(1), original(self, *a, **k))[1]\n"
        f"status = launcher.main(['--root', {str(engine.config.root)!r}, 'run', '--rm', '--network', 'none', 'busybox', 'true'])\n"
        "print(status, len(made), launcher.method_cache_misses)\n"
    )
    assert _run_with_method_cache(method_cache, code, env=engine.env) == "0 0 0"
    assert engine.out("ps", "-aq") == ""


def test_each_verb_is_built_by_its_own_module() -> None:
    """VERB_OWNERS names the module that registers each verb past the container verbs, and lists
    every one of them (a verb missing there still works, but builds every module before its own)."""
    import importlib

    from engine.cli import VERB_MODULES, VERB_OWNERS, ArgumentParser

    registered: dict[str, str] = {}
    for name in VERB_MODULES:
        parser = ArgumentParser(prog="dockui")
        subparsers = parser.add_subparsers(dest="verb", parser_class=ArgumentParser)
        importlib.import_module(name).register(subparsers, None)
        registered.update(dict.fromkeys(subparsers.choices, name))
    assert VERB_OWNERS == {v: m for v, m in registered.items() if m != "engine.cli.container_cmds"}


def test_argparse_looks_each_message_up_once() -> None:
    """argparse's messages go through gettext once each, not once per parser made (~140 catalog
    searches for `dockui images`)."""
    code = (
        "import gettext\n"
        "found = []\n"
        "real = gettext.find\n"
        "gettext.find = lambda *a, **k: found.append(a) or real(*a, **k)\n"
        "from engine.cli import build_parser\n"
        "build_parser(None)\n"
        "print(len(found))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) < 10, result.stdout  # a handful of distinct messages; every parser: hundreds


# ------------------------------------------------------------------------------------------ run, the start path


RUN_PATH_PROBES = """
import os, sys, time
from tui import launcher
cli = os.getpid()


def note(what):  # (opened each time: the monitor closes every descriptor it inherits)
    with open(LOG, "a") as log:
        log.write(f"{'cli' if os.getpid() == cli else 'monitor'} {what}\\n")


def probe(owner, name, what):
    real = getattr(owner, name)

    def wrapper(*a, **k):
        note(what)
        return real(*a, **k)

    setattr(owner, name, wrapper)


import engine.container.cleanup as cleanup
import engine.container.monitor.context as context
import engine.container.monitor.launch as launch
import engine.container.start as start
import engine.container.state as state
import engine.sandbox.cgroups as cgroups
import engine.sandbox.process as process

real_read_control = start._read_control


def read_control(*a, **k):
    message = real_read_control(*a, **k)
    note("context")
    return message


start._read_control = read_control
probe(start, "sweep", "sweep")
probe(process, "spawn_container", "spawn")
probe(context.MonitorContext, "report", "report")
probe(context.MonitorContext, "send_exit", "exit")
import engine.container.monitor.finish as finish

real_empty = finish._empty
finish._empty = lambda trash: (note(f"empty {len(trash)}"), real_empty(trash))[1]
probe(cgroups.Cgroup, "destroy", "cgroup destroy")
probe(cleanup, "mountpoints", "mountinfo")
probe(state, "load", "record load")
probe(state, "find_container", "record find")
import engine.container.monitor.start as monitor_start

real_ensure_bytecode = monitor_start.ensure_bytecode


def ensure_bytecode():  # the monitor's last step: what it loaded, all told
    real_ensure_bytecode()
    note("bytecode checked")
    if "engine.sandbox.tunables" in sys.modules:
        note("loaded engine.sandbox.tunables")


monitor_start.ensure_bytecode = ensure_bytecode
import shutil

probe(shutil, "rmtree", "rmtree")
real_walk = os.walk
os.walk = lambda *a, **k: (note("walk"), real_walk(*a, **k))[1]
code = launcher.main(["--root", ROOT, "run", "--rm", "--network", "none", "busybox", "true"])
"""


def test_the_start_path_does_each_thing_once_and_in_its_place(engine: Engine, tmp_path) -> None:  # noqa: ANN001
    """A real `run --rm`, with probes the forked monitor inherits (docs/lifecycle.md, "Import
    costs"): the monitor's sweep runs once, after the exit frame went out (the start and the exit
    never wait for it); the exit's cgroup and mounts are cleaned up once (the --rm removal does not look for
    them again), and the record's directory, renamed into the trash, is emptied after the exit
    went out, not before, as are the writable layer's directories (renamed into the store's
    layerdb/tmp, nothing deleted before the exit frame); the CLI reads the new record once (the
    report's), not back after create; nothing
    walks the engine's tree for bytecode; the monitor does not load `engine.sandbox.tunables`
    (--init, --device, --sysctl, --ulimit only)."""
    log = tmp_path / "probes.log"
    code = f"LOG = {str(log)!r}\nROOT = {str(engine.config.root)!r}\n" + RUN_PATH_PROBES
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=engine.env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    for _ in range(250):  # the sweep and the bytecode check come after the exit frame: a moment later
        notes = log.read_text().splitlines()
        if "monitor bytecode checked" in notes:
            break
        time.sleep(0.02)
    monitor = [n.split(" ", 1)[1] for n in notes if n.startswith("monitor ")]
    cli = [n.split(" ", 1)[1] for n in notes if n.startswith("cli ")]
    assert monitor.count("sweep") == 1 and monitor.index("sweep") > monitor.index("exit"), monitor
    assert monitor.count("cgroup destroy") == 1 and monitor.count("mountinfo") == 1, monitor
    # the layer's directory, its layerdb/mounts entry and the record's directory: all after the exit
    assert monitor.index("exit") < monitor.index("empty 3"), monitor
    assert "rmtree" not in monitor[: monitor.index("exit")], monitor
    store_tmp = engine.config.image_dir / "layerdb" / "tmp"
    for _ in range(100):
        if not store_tmp.exists() or not os.listdir(store_tmp):
            break
        time.sleep(0.02)
    assert not store_tmp.exists() or not os.listdir(store_tmp)
    trash = engine.config.containers_dir / ".trash"
    for _ in range(100):  # (the monitor empties it after the exit frame: at most a moment after run returns)
        if not trash.exists() or not os.listdir(trash):
            break
        time.sleep(0.02)
    assert not trash.exists() or not os.listdir(trash)
    assert cli.count("record load") + cli.count("record find") == 1, cli
    assert "walk" not in monitor + cli
    assert "bytecode checked" in monitor and not [n for n in monitor if n.startswith("loaded ")], monitor


def test_the_bytecode_check_stats_loaded_modules_and_loads_nothing() -> None:
    """stages.ensure_bytecode (after every exit) looks at the engine modules this process loaded,
    two stats each, without walking the tree or touching a deferred stand-in (which would load
    `urllib.parse` for nothing); where the interpreter writes bytecode itself, it checks nothing."""
    code = (
        "import os, sys\n"
        "from tui import launcher\n"
        "launcher._defer_urllib_parse()\n"
        "import engine.container.monitor.stages as stages\n"
        "stats = []\n"
        "real_stat = os.stat\n"
        "os.stat = lambda *a, **k: (stats.append(a[0]), real_stat(*a, **k))[1]\n"
        "os.walk = os.listdir = None\n"
        "sys.dont_write_bytecode = False\n"
        "stages.ensure_bytecode()\n"
        "quiet = len(stats)\n"
        "sys.dont_write_bytecode = True\n"
        "stages.ensure_bytecode()\n"
        "engine = [m for m in sys.modules if m.split('.')[0] in ('engine', 'tui')]\n"
        "print(quiet, len(stats) <= 2 * len(engine), all(str(p).endswith(('.py', '.pyc')) for p in stats),\n"
        "      type(sys.modules['urllib.parse']).__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "0 True True _Deferred", result.stdout + result.stderr


def test_a_cgroup_goes_without_listing_its_directories() -> None:
    """Cgroup.destroy (every exit) removes each group as it is, and lists a hierarchy's directory
    only when its rmdir was refused (groups made inside it, removed first, without waiting)."""
    import secrets
    from pathlib import Path

    from engine.sandbox import cgroups

    name = f"dockui-costs-{secrets.token_hex(3)}"
    flat, nested = Path("/sys/fs/cgroup/memory") / name, Path("/sys/fs/cgroup/pids") / name
    if not flat.parent.is_dir() or not nested.parent.is_dir():
        pytest.skip("no v1 memory and pids hierarchies on this host")
    flat.mkdir()
    (nested / "inner" / "deeper").mkdir(parents=True)
    listed: list[str] = []
    real_scandir = cgroups.os.scandir
    try:
        cgroups.os.scandir = lambda path: (listed.append(str(path)), real_scandir(path))[1]
        cgroups.Cgroup.from_paths({"memory": str(flat), "pids": str(nested)}).destroy(timeout=1.0)
    finally:
        cgroups.os.scandir = real_scandir
        for path in (nested / "inner" / "deeper", nested / "inner", nested, flat):
            if path.exists():
                path.rmdir()
    assert not flat.exists() and not nested.exists()
    assert str(flat) not in listed and str(nested) in listed, listed


def test_a_monitor_ready_in_time_imports_nothing_after_its_context(engine: Engine) -> None:
    """When the context comes after the monitor forked ahead is done with its steps (the CLI made
    to wait 0.25 s here), the start imports no module of the engine's between the context and its
    report: all of stage 1 (launch, hostflags, the log's limits) and an --rm removal's store are
    loaded while it waits (docs/lifecycle.md, "Import costs")."""
    code = (
        "import os, sys, time\n"
        "from tui import launcher\n"
        "import engine.container.monitor.context as context\n"
        "import engine.container.start as start\n"
        "real_launch, real_read, real_report = start.PreparedMonitor.launch, start._read_control, context.MonitorContext.report\n"
        "seen = {}\n"
        "def launch(self, *a, **k):\n"
        "    time.sleep(0.25)\n"
        "    return real_launch(self, *a, **k)\n"
        "def read(*a, **k):\n"
        "    message = real_read(*a, **k)\n"
        "    seen['context'] = set(sys.modules)\n"
        "    return message\n"
        "def report(self, obj):\n"
        "    new = sorted(m for m in set(sys.modules) - seen.get('context', set(sys.modules)) if m.startswith('engine'))\n"
        f"    with open({str(engine.config.root / 'new-modules')!r}, 'w') as f:\n"
        "        f.write(repr(new))\n"
        "    return real_report(self, obj)\n"
        "start.PreparedMonitor.launch, start._read_control, context.MonitorContext.report = launch, read, report\n"
        f"sys.exit(launcher.main(['--root', {str(engine.config.root)!r}, 'run', '--rm', '--network', 'none', 'busybox', 'true']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=engine.env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (engine.config.root / "new-modules").read_text() == "[]"
    (engine.config.root / "new-modules").unlink()


# ------------------------------------------------------------------------------------------ reconcile, idle


def test_the_cgroup_look_sees_a_group_in_every_hierarchy(tmp_path) -> None:  # noqa: ANN001
    """sweep._may_have_groups (which spares a verb the cgroups module on a store with nothing to
    clean up) answers True for a group under the parent in any hierarchy cgroups.parent_dirs
    knows, and False once it is gone."""
    import secrets

    from engine.config import EngineConfig
    from engine.container.sweep import CGROUP_ROOT, _may_have_groups
    from engine.sandbox.cgroups import CGROUP_ROOT as CGROUPS_ROOT
    from engine.sandbox.cgroups import parent_dirs

    assert CGROUP_ROOT == str(CGROUPS_ROOT)
    config = EngineConfig(root=tmp_path / "root", cgroup_parent=f"dockui-look-{secrets.token_hex(3)}")
    assert not _may_have_groups(config)
    for key, parent in parent_dirs(config).items():
        group = parent / ("a" * 64)
        group.mkdir(parents=True)
        try:
            assert _may_have_groups(config), key
        finally:
            group.rmdir()
            parent.rmdir()
        assert not _may_have_groups(config), key


# ------------------------------------------------------------------------------------------ deferred modules


def test_the_deferred_gettext_and_copy_become_the_real_ones() -> None:
    """argparse's messages and help come out as without the stand-ins (their first call loads the
    real gettext); copy's first use loads it, and the stand-in is gone from sys.modules."""
    probe = (
        "import argparse, copy, sys\n"
        "p = argparse.ArgumentParser(prog='x')\n"
        "p.add_argument('-n', type=int)\n"
        "try:\n"
        "    p.parse_args(['-n', 'z'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(p.format_help(), copy.deepcopy([{'a': 1}]), type(sys.modules['gettext']).__name__,\n"
        "      type(sys.modules['copy']).__name__, argparse.ngettext('a', 'b', 2))\n"
    )
    outputs = []
    for prelude in ("", "from tui import launcher\nlauncher._defer_gettext()\nlauncher._defer_copy()\n"):
        result = subprocess.run([sys.executable, "-c", prelude + probe], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        outputs.append((result.stdout, result.stderr))
    assert outputs[0] == outputs[1]
    assert "module module b" in outputs[1][0] and "invalid int value: 'z'" in outputs[1][1]


def test_images_builds_its_own_parser_only() -> None:
    """`dockui images` makes the top parser and its own, not the image group's ~20 (~5 ms)."""
    code = (
        "import argparse\n"
        "made = []\n"
        "original = argparse.ArgumentParser.__init__\n"
        "argparse.ArgumentParser.__init__ = lambda self, *a, **k: (made.append(1), original(self, *a, **k))[1]\n"
        "from engine.cli import build_parser\n"
        "args = build_parser('images').parse_args(['images', '-a'])\n"
        "print(len(made), args.all, args.handler.__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "2 True cmd_images", result.stdout + result.stderr


# ------------------------------------------------------------------------------------------ the command itself


def _console_script(tmp_path) -> str:  # noqa: ANN001
    from tui.launcher import console_script

    path = tmp_path / "dockui"
    path.write_text(console_script())
    path.chmod(0o755)
    return str(path)


def test_the_command_runs_without_site_and_sets_what_site_would(tmp_path) -> None:  # noqa: ANN001
    """The script .ci/install writes: the interpreter with -S, the venv's prefix (where
    libexec/dockui-watch is found) and site's paths, in site's order, with this checkout."""
    from tests.test_lifecycle_support import REPO

    script = _console_script(tmp_path)
    first = open(script).readline().split()  # noqa: PTH123
    assert first == [f"#!{sys.executable}", "-S"]
    probe = (
        f"exec(open({script!r}).read(), {{'__name__': 'probe'}})\n"
        "import site, sys\n"
        "print(repr((sys.prefix, sys.exec_prefix, sys.flags.no_site, [p for p in sys.path if p.endswith('site-packages')])))\n"
    )
    with_site = subprocess.run([sys.executable, "-c", "import sys; print(repr((sys.prefix, [p for p in sys.path "
                                "if p.endswith('site-packages')])))"], capture_output=True, text=True, check=True)
    bare = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, timeout=60, env={
        k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert bare.returncode == 0, bare.stderr
    prefix, exec_prefix, no_site, site_packages = eval(bare.stdout)  # noqa: S307 - our own repr
    assert (prefix, site_packages) == eval(with_site.stdout) and exec_prefix == prefix and no_site == 1  # noqa: S307
    assert str(REPO) in open(script).read()  # noqa: PTH123
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert result.stdout.startswith("dockui ") and result.returncode == 0, result.stderr


def test_ci_install_writes_the_command() -> None:
    from pathlib import Path

    script = (Path(__file__).resolve().parent.parent / ".ci" / "install").read_text()
    lines = [line.strip() for line in script.splitlines() if not line.lstrip().startswith("#")]
    at = next(i for i, line in enumerate(lines) if "console_script()" in line)
    assert at > next(i for i, line in enumerate(lines) if "pip install" in line)  # after pip wrote its own
    assert ".venv/bin/dockui" in lines[at] + lines[at + 1] + lines[at + 2]


def test_the_command_finds_the_c_watch_stage(engine: Engine, tmp_path) -> None:  # noqa: ANN001
    """A detached container started through the command gets the compiled watch stage from the
    venv's libexec (found from sys.prefix, which site used to set)."""
    from engine.container import state
    from tests.test_lifecycle_support import REPO

    watch = REPO / ".venv" / "libexec" / "dockui-watch"
    if not os.access(watch, os.X_OK):
        pytest.skip("no .venv/libexec/dockui-watch (bash .ci/install builds it)")
    env = {k: v for k, v in engine.env.items() if k not in ("PYTHONPATH", "DOCKUI_WATCH")}
    result = subprocess.run([_console_script(tmp_path), "--root", str(engine.config.root), "run", "-d", "--network",
                             "none", "busybox", "sleep", "30"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    cid = result.stdout.strip()
    try:
        monitor_pid = state.find_container(engine.config, cid).monitor_pid

        def exe() -> str:
            try:
                return os.readlink(f"/proc/{monitor_pid}/exe")
            except OSError:
                return ""

        deadline = time.monotonic() + 10
        while exe() != str(watch) and time.monotonic() < deadline:  # stage 1 is python, stage 2 the C one
            time.sleep(0.05)
        assert exe() == str(watch)
    finally:
        engine.cli("rm", "-f", cid, check=True)


# ------------------------------------------------------------------------------------------ bare verbs, parsed quick


def _every_bare_line() -> list[list[str]]:
    """Each verb, and each sub-verb of a group, alone on the line (from the full parser)."""
    import argparse

    from engine.cli import build_parser

    def verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return dict(actions[0].choices) if actions else {}

    lines = []
    for verb, parser in verbs(build_parser(None)).items():
        lines.append([verb])
        if verb == "container":  # its sub-verbs are parsed inside its handler
            continue
        lines += [[verb, sub] for sub in verbs(parser)]
    return lines


def _handler_id(handler: object) -> tuple:
    return tuple(getattr(handler, a, None) for a in ("module", "name", "__module__", "__name__"))


def test_quick_parse_is_argparses_on_every_bare_verb() -> None:
    """A verb (or group sub-verb) alone, with global options before it: engine.cli.quick_parse's
    namespace is argparse's (each read from the same register() calls), or None where argparse
    must speak (a group without its sub-verb, a verb that needs arguments)."""
    import contextlib
    import io

    from engine.cli import build_parser, quick_parse

    answered = []
    for words in _every_bare_line():
        for argv in (words, ["--root", "/x", "--insecure-registry", "a", "--insecure-registry=b", *words]):
            quick = quick_parse(argv, words[0])
            try:
                with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
                    real, extras = build_parser(words[0]).parse_known_args(argv)
            except SystemExit:
                assert quick is None, argv
                continue
            if quick is None:
                continue
            answered.append(" ".join(words))
            quick_values, real_values = vars(quick), vars(real)
            assert extras == []
            assert _handler_id(quick_values.pop("handler")) == _handler_id(real_values.pop("handler")), argv
            assert quick_values == real_values, argv
    for listing in ("images", "image ls", "network ls", "volume ls", "volume list", "info", "system df"):
        assert listing in answered, listing


@pytest.mark.parametrize("argv", [["images", "-a"], ["network"], ["network", "lss"], ["images", "x"], ["--version", "images"],
                                  ["--log-level", "bogus", "images"], ["--root"], ["container", "ls"], ["rmi"]], ids=" ".join)
def test_quick_parse_leaves_the_rest_to_argparse(argv: list[str]) -> None:
    from engine.cli import find_verb, quick_parse

    assert quick_parse(argv, find_verb(argv) or "images") is None


def test_listings_build_no_parser(engine: Engine) -> None:
    """`images`, `network ls`, `volume ls` in a fresh interpreter through the launcher: no
    ArgumentParser made, and gettext not loaded (~2 ms of each)."""
    code = (
        "import sys\n"
        "from tui import launcher\n"
        "import engine.cli, argparse\n"
        "made = []\n"
        "original = argparse.ArgumentParser.__init__\n"
        "argparse.ArgumentParser.__init__ = lambda self, *a, **k: (made.append(1), original(self, *a, **k))[1]\n"
        f"root = {str(engine.config.root)!r}\n"
        "for words in (['images'], ['network', 'ls'], ['volume', 'ls']):\n"
        "    assert launcher.main(['--root', root, *words]) == 0\n"
        "print(len(made), type(sys.modules.get('gettext')).__name__)\n"
    )
    prelude = "from tui import launcher\nlauncher._defer_gettext()\n"
    result = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, env=engine.env,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0 _Deferred"


def test_times_are_read_as_calendar_reads_them() -> None:
    """timefmt counts days itself (calendar with datetime and locale: ~3 ms of a listing): the
    same seconds as calendar.timegm, a day past the month's end included; year 0 still refused."""
    import calendar
    import random

    from engine.util.timefmt import _days_since_epoch, parse_rfc3339

    rng = random.Random(12)
    dates = [(rng.randint(1, 9999), rng.randint(1, 12), rng.randint(1, 31)) for _ in range(20000)]
    dates += [(y, m, d) for y in (1, 4, 100, 1600, 1900, 1969, 1970, 2000, 2100, 9999) for m in (1, 2, 3, 12)
              for d in (1, 28, 29, 30, 31)]
    for year, month, day in dates:
        assert _days_since_epoch(year, month, day) * 86400 == calendar.timegm((year, month, day, 0, 0, 0)), (year, month, day)
    assert parse_rfc3339("2024-02-29T12:34:56.25+01:30") == calendar.timegm((2024, 2, 29, 11, 4, 56)) + 0.25
    with pytest.raises(ValueError):
        parse_rfc3339("0000-01-01T00:00:00Z")


# ------------------------------------------------------------------------------------------ regular expressions


def _run_with_regex_cache(cache: str, code: str, env: dict[str, str] | None = None) -> str:
    return _run_with_cache("REGEX_CACHE", cache, code, env)


@pytest.fixture(scope="module")
def regex_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("regex-cache") / "regex.bin")
    assert int(_run_with_regex_cache(path, "print(launcher.write_regex_cache())")) > 50  # engine's, json's, ...
    return path


def test_the_clis_modules_compile_no_pattern_with_the_regex_cache(engine: Engine, regex_cache: str) -> None:
    """The guard: with a fresh cache, the patterns compiled at import by the modules on the CLI's
    and the monitor's paths (dataclasses', json's, argparse's, the engine's constants), and all
    of a real `ps`, are taken from it: none parsed and generated here. (A pattern a function
    compiles when called, as `rwlayers`' check of a layer ID, is left to `re`'s own cache.)"""
    code = f"launcher._use_regex_cache()\nimport json, argparse\n{CLI_CLASSES}print(launcher.regex_cache_misses)"
    assert _run_with_regex_cache(regex_cache, code) == "0"
    code = (
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert launcher.main(['--root', {str(engine.config.root)!r}, 'ps']) == 0\n"
        "from re import _compiler\n"
        "print(launcher.regex_cache_misses, _compiler.compile.__module__)\n"
    )
    assert _run_with_regex_cache(regex_cache, code, env=engine.env) == "0 tui.launcher"


def test_a_cached_pattern_is_the_one_re_makes(regex_cache: str, tmp_path) -> None:  # noqa: ANN001
    """Patterns from the cache equal re's own (flags, code, groups) and match alike; a pattern not
    in it is compiled as always; a file of another regex engine or interpreter is not used."""
    code = (
        "launcher._use_regex_cache()\n"
        "import re\n"
        "from re import _compiler\n"
        "from engine.container import names\n"
        "from engine.util import timefmt\n"
        "new = re.compile(r'(?P<a>x+)(?i:y)|z')\n"
        "print((launcher.regex_cache_misses, _compiler.compile(names.NAME_RE.pattern) == names.NAME_RE,\n"
        "       timefmt._RFC3339.groups, timefmt.parse_rfc3339('2024-01-02T03:04:05.5Z'),\n"
        "       new.match('xxY').groupdict(), _compiler.compile.__module__))\n"
    )
    import re

    from engine.util import timefmt

    expected = (1, True, 8, timefmt.parse_rfc3339("2024-01-02T03:04:05.5Z"), {"a": "xx"}, "tui.launcher")
    assert _run_with_regex_cache(regex_cache, code) == repr(expected)
    foreign = tmp_path / "foreign.bin"
    data = bytearray(open(regex_cache, "rb").read())  # noqa: PTH123
    data[len(b"dockui-re1")] ^= 0xFF
    foreign.write_bytes(bytes(data))
    for path in (str(foreign), str(tmp_path / "missing.bin")):
        probe = "launcher._use_regex_cache()\nfrom re import _compiler\nprint(_compiler.compile.__module__)\n"
        assert _run_with_regex_cache(path, probe) == "re._compiler"
    assert re.compile(r"(?P<a>x+)(?i:y)|z").match("xxY").groupdict() == {"a": "xx"}


def test_ci_install_writes_the_regex_cache() -> None:
    from pathlib import Path

    script = (Path(__file__).resolve().parent.parent / ".ci" / "install").read_text()
    assert any("write_regex_cache()" in line for line in script.splitlines() if not line.lstrip().startswith("#"))


# ------------------------------------------------------------------------------------------ cycle collection


def test_the_start_up_is_not_collected_and_is_frozen_before_the_verb(engine: Engine) -> None:
    """The console script makes the start-up's objects with cycle collection off (no collection
    until the verb's work begins), engine.cli freezes them (out of every later collection, the
    one at exit included) and turns collection back on for the verb; whatever happens, main
    returns with collection on (a parse error, help). An in-process caller (main(argv)) keeps its
    collector as it was: nothing frozen, nothing turned off."""
    code = (
        "import contextlib, gc, io, sys\n"
        "from tui import launcher\n"
        "import engine.cli\n"
        "seen = []\n"
        "real = engine.cli.config_from_args\n"
        "def probe(args):\n"
        "    seen.append((gc.isenabled(), gc.get_freeze_count() > 1000, collections() - before))\n"
        "    return real(args)\n"
        "engine.cli.config_from_args = probe\n"
        "collections = lambda: sum(s['collections'] for s in gc.get_stats())\n"
        "before = collections()\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        f"    sys.argv = ['dockui', '--root', {str(engine.config.root)!r}, 'ps']\n"
        "    status = launcher.main()  # as the command calls it\n"
        "    after = [gc.isenabled()]\n"
        "    for argv in (['ps', '-z'], ['--help'], ['images', '--bogus']):\n"
        "        sys.argv = ['dockui', *argv]\n"
        "        with contextlib.suppress(SystemExit):\n"
        "            launcher.main()\n"
        "        after.append(gc.isenabled())\n"
        "    frozen = gc.get_freeze_count()\n"
        "    gc.unfreeze()\n"
        f"    launcher.main(['--root', {str(engine.config.root)!r}, 'ps'])  # in-process: its collector as it was\n"
        "print(repr((status, seen, after, gc.get_freeze_count(), frozen > 1000)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=engine.env, timeout=60)
    assert result.returncode == 0, result.stderr
    status, seen, after, refrozen, frozen = eval(result.stdout.strip().splitlines()[-1])  # noqa: S307 - our own repr
    assert (status, seen[0], after, refrozen, frozen) == (0, (True, True, 0), [True, True, True, True], 0, True)
    assert seen[1][:2] == (True, False)  # the in-process call: collection on throughout, nothing frozen


def test_run_loads_no_module_on_both_sides_of_its_fork(engine: Engine, tmp_path) -> None:  # noqa: ANN001
    """What the CLI of `run` and the monitor it forks would each load after the fork is loaded once,
    before it (start._import_shared): no module is imported by both (docs/lifecycle.md, "The run
    path")."""
    log = tmp_path / "modules"
    code = (
        "import os, sys\n"
        "from tui import launcher\n"
        "import engine.container.monitor.context as context\n"
        "import engine.container.start as start\n"
        "at_fork = set()\n"
        "real_fork, real_report = os.fork, context.MonitorContext.report\n"
        "def fork():\n"
        "    if not at_fork:  # (the CLI's: the monitor's own fork of the container finds it set)\n"
        "        at_fork.update(sys.modules)\n"
        "    return real_fork()\n"
        "def report(self, message):\n"
        f"    with open({str(log)!r} + '.monitor', 'w') as f:\n"
        "        f.write(repr(sorted(set(sys.modules) - at_fork)))\n"
        "    return real_report(self, message)\n"
        "os.fork, context.MonitorContext.report = fork, report\n"
        f"code = launcher.main(['--root', {str(engine.config.root)!r}, 'run', '--rm', '--network', 'none', 'busybox', 'true'])\n"
        f"with open({str(log)!r} + '.cli', 'w') as f:\n"
        "    f.write(repr(sorted(set(sys.modules) - at_fork)))\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=engine.env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    cli, monitor = (set(eval(log.with_name(f"modules.{side}").read_text())) for side in ("cli", "monitor"))  # noqa: S307
    assert monitor and "engine.sandbox.process" in monitor  # (the probes saw the monitor's stage 1 load)
    assert not cli & monitor, sorted(cli & monitor)


def test_the_trace_marks_the_run_path_only_when_asked(engine: Engine, tmp_path) -> None:
    """DOCKUI_TRACE (bench/run --timeline): a real `run --rm` leaves marks of the CLI, the monitor
    and the container's process, in the order of the path, the monitor the command's own child;
    without it `mark` opens nothing."""
    trace_file = Path("/dev/shm") / f"dockui-test-trace-{os.getpid()}"
    try:
        result = subprocess.run(engine.argv("run", "--rm", "--network", "none", "busybox", "true"), capture_output=True,
                                env={**engine.env, "DOCKUI_TRACE": str(trace_file)}, timeout=60)
        assert result.returncode == 0, result.stderr
        for _ in range(100):  # (the monitor's last marks come after the exit frame)
            lines = trace_file.read_text().splitlines()
            if any(line.endswith(" monitor swept") for line in lines):
                break
            time.sleep(0.02)
    finally:
        trace_file.unlink(missing_ok=True)
    marks = {line.split(" ", 2)[2].split(" (")[0]: (int(line.split()[0]), int(line.split()[1])) for line in lines}
    path = ["cli fork", "monitor forked", "monitor context", "monitor spawn", "container forked", "container execve",
            "monitor report", "monitor exited", "monitor exit frame", "monitor trash emptied"]
    assert [m for m in path if m in marks] == path, sorted(marks)
    assert [marks[m][1] for m in path] == sorted(marks[m][1] for m in path)
    assert len({marks[m][0] for m in ("cli fork", "monitor forked", "container forked")}) == 3
    # the command forks its monitor once (start._caller_is_the_command): no intermediate process
    assert any(line.endswith("monitor forked (the caller's child)") for line in lines), lines
    code = (
        "import os\n"
        "from engine.util import trace\n"
        "def refuse(*a, **k):\n"
        "    raise AssertionError('opened')\n"
        "os.open = refuse\n"
        "trace.mark('nothing')\n"
        "print(trace.PATH)\n"
    )
    env = {k: v for k, v in engine.env.items() if k != "DOCKUI_TRACE"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.stdout.strip() == "None", result.stdout + result.stderr
