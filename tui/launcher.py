"""The `dockui` console script: no verb starts the TUI, a verb runs the headless CLI.

Kept free of Textual imports so `dockui ps` never pays for them. It also owns what makes the
start-up cheap before any engine module loads (each explained once in docs/lifecycle.md, "Import
costs"): the command's own text (`console_script`: the interpreter with -S), stand-ins for modules
the CLI rarely uses (`_defer`), the dataclass methods and regular expressions compiled ahead at
install (`write_method_cache`, `write_regex_cache`) and taken at start, and no cycle collection
while the command starts. Invariant: none of it changes what a verb does or prints; a cache that
is missing, stale or of another interpreter only costs the time back.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence


def _has_verb(argv: Sequence[str]) -> bool:
    """True when argv names a verb (or asks for help/version) rather than only global options."""
    from engine.cli import find_verb

    return find_verb(argv) is not None or any(a in ("-h", "--help", "--version") for a in argv)


# engine.cli.GLOBAL_OPTIONS_WITH_VALUE, without importing engine.cli (a test keeps them equal).
GLOBAL_OPTIONS_WITH_VALUE = ("--root", "--log-level", "--insecure-registry", "--bip")


def _asks_version(argv: Sequence[str]) -> bool:
    """`--version` among global options only (`dockui --root DIR --version`)."""
    if "--version" not in argv:
        return False
    i = 0
    while i < len(argv):
        if argv[i] in GLOBAL_OPTIONS_WITH_VALUE:
            i += 2
        elif argv[i] == "--version" or argv[i].split("=", 1)[0] in GLOBAL_OPTIONS_WITH_VALUE:
            i += 1
        else:
            return False
    return True


class _Deferred(type(sys)):  # a module type: `import NAME` takes it as it is
    """Stands for a module until an attribute of it is used, then loads the real one in its place."""

    def __getattr__(self, name: str) -> object:
        if name == "__path__":  # `from NAME import x` asks whether it is a package: it is not
            raise AttributeError(name)
        return getattr(_load_deferred(self.__name__, self), name)


def _load_deferred(module: str, stand_in: object) -> object:
    """The real module for its stand-in (imported now, in the stand-in's place, if not yet)."""
    if sys.modules.get(module) is stand_in:
        del sys.modules[module]
    __import__(module)
    return sys.modules[module]


def _defer(module: str, *functions: str) -> None:
    """`module` stands in sys.modules as a _Deferred until an attribute of it is used (unless it
    is loaded already). `functions` are the names importers take from it at their own import
    (`from gettext import gettext`): stand-ins that load the real module when called."""
    if module in sys.modules:
        return
    stand_in = _Deferred(module)
    for name in functions:
        setattr(stand_in, name, _forwarder(module, stand_in, name))
    sys.modules[module] = stand_in
    package, _, child = module.rpartition(".")
    if package:  # `import urllib.parse` then finds it on the (loaded) package too
        setattr(__import__(package), child, stand_in)


def _forwarder(module: str, stand_in: object, name: str) -> object:
    def forward(*args: object, **kwargs: object) -> object:
        return getattr(_load_deferred(module, stand_in), name)(*args, **kwargs)

    forward.__name__ = name
    return forward


def _defer_inspect() -> None:
    """`dataclasses` imports `inspect` (with ast, dis, tokenize: ~4-5 ms) but uses it only for a
    class without a docstring; the CLI's classes all have one (see "Import costs" in docs/lifecycle.md)."""
    _defer("inspect")


def _defer_copy() -> None:
    """`dataclasses` imports `copy` (with `weakref`) for the deepcopy of `asdict` and `astuple`
    alone, which a listing never calls."""
    _defer("copy")


def _defer_gettext() -> None:
    """`argparse` takes `gettext` and `ngettext` from `gettext` (which compiles its plural-forms
    pattern at import) and calls them only to build a parser or say what is wrong, which `run` and
    `ps` parsed by `fast_args` never do."""
    _defer("gettext", "gettext", "ngettext")


def _defer_urllib_parse() -> None:
    """`pathlib` imports `urllib.parse` (with `ipaddress`: ~2 ms) for `Path.as_uri` alone, which the
    CLI never calls; `quote_from_bytes` is what pathlib takes from it."""
    import urllib  # noqa: F401 - the package itself is empty; the stand-in is set on it

    _defer("urllib.parse", "quote_from_bytes")


# The code of the methods `dataclasses` generates, compiled ahead by .ci/install (write_method_cache).
METHOD_CACHE = f"{__file__.rsplit('/', 2)[0]}/engine/__pycache__/dataclass-methods.{sys.implementation.cache_tag}.bin"
method_cache_misses = 0  # sources compiled here after all (tests/test_cli_import_costs.py reads it)


def _method_cache_magic() -> bytes:
    """The cache's header: this interpreter's bytecode magic (a code object is only valid for it)."""
    from importlib._bootstrap_external import MAGIC_NUMBER  # frozen, already loaded: free

    return b"dockui-dc1" + MAGIC_NUMBER


def _use_method_cache(path: str | None = None) -> None:
    """`dataclasses` writes each class's __init__, __repr__, __eq__, ... as source text and compiles
    it; use the code compiled ahead for the same text (see "Import costs" in docs/lifecycle.md).

    The file holds, per module, the marshalled {source: code} of its classes (read when the
    module's first class is made) and an index {module: (offset, length)}. A text not in it (a
    class changed since the cache was written) is compiled here as dataclasses would have.
    """
    import marshal

    path = path or METHOD_CACHE
    magic = _method_cache_magic()
    try:
        with open(path, "rb") as f:
            head = f.read(len(magic) + 8)
            index = None
            if head.startswith(magic):
                f.seek(int.from_bytes(head[-8:-4], "little"))
                index = marshal.loads(f.read(int.from_bytes(head[-4:], "little")))
    except (OSError, ValueError, EOFError, TypeError):
        return
    if not isinstance(index, dict):
        return
    import builtins
    import dataclasses

    tables: dict[str, dict] = {}

    def table_of(module: str) -> dict:
        """The module's {source: code}, read at its first class ({} if the file let us down)."""
        if module not in tables:
            table = {}
            if module in index:
                offset, length = index[module]
                try:
                    with open(path, "rb") as f:
                        f.seek(offset)
                        table = marshal.loads(f.read(length))
                except (OSError, ValueError, EOFError, TypeError):
                    pass
            tables[module] = table if isinstance(table, dict) else {}
        return tables[module]

    def cached_exec(source: object, globals: dict | None = None, locals: dict | None = None, /) -> None:
        global method_cache_misses

        if isinstance(source, str) and globals is not None:
            code = table_of(globals.get("__name__", "")).get(source)
            if code is None:
                method_cache_misses += 1
                code = compile(source, "<string>", "exec", dont_inherit=True)  # as exec(source) in dataclasses
            source = code
        builtins.exec(source, globals, locals)

    dataclasses.exec = cached_exec  # found before the builtin by the module's own call


def _import_every_module(packages: Sequence[str]) -> None:
    """Import each module of `packages` (what the caches are written from); one that cannot load
    here has nothing to record."""
    import importlib
    import pkgutil

    for package in packages:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            try:
                importlib.import_module(info.name)
            except Exception:  # noqa: BLE001 - nothing to record from it
                pass


def write_method_cache(path: str | None = None, packages: Sequence[str] = ("engine", "tui")) -> int:
    """Import every module of `packages` and write the code of the methods their dataclasses
    generate to `path` (.ci/install, after compileall); the number of methods."""
    import builtins
    import dataclasses
    import marshal
    import os

    path = path or METHOD_CACHE
    seen: dict[str, dict] = {}

    def recording_exec(source: object, globals: dict | None = None, locals: dict | None = None, /) -> None:
        if isinstance(source, str) and globals is not None:
            code = compile(source, "<string>", "exec", dont_inherit=True)
            seen.setdefault(globals.get("__name__", ""), {})[source] = code
            source = code
        builtins.exec(source, globals, locals)

    dataclasses.exec = recording_exec
    try:
        _import_every_module(packages)
    finally:
        del dataclasses.exec
    magic = _method_cache_magic()
    blobs = {module: marshal.dumps(table) for module, table in seen.items()}
    index, offset = {}, len(magic) + 8
    for module, blob in blobs.items():
        index[module] = (offset, len(blob))
        offset += len(blob)
    tail = marshal.dumps(index)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(f"{path}.tmp", "wb") as f:  # magic, where the index is and its length, the tables, the index
        f.write(magic + offset.to_bytes(4, "little") + len(tail).to_bytes(4, "little"))
        f.write(b"".join(blobs.values()) + tail)
    os.replace(f"{path}.tmp", path)
    return sum(len(t) for t in seen.values())


def console_script(python: str | None = None) -> str:
    """The text of the `dockui` command .ci/install writes over pip's: the same `main`, run by the
    interpreter with -S (no `site`, see "Import costs" in docs/lifecycle.md), given what `site`
    would have set, as this interpreter (with `site`) sees it at install time: the venv as
    `sys.prefix` (where `.venv/libexec/dockui-watch` is found) and the paths `site` adds
    (site-packages, then the editable install's path from its .pth file), in site's order, with
    this checkout's path last if no .pth file names it."""
    import json
    import os
    import subprocess

    python = python or sys.executable
    bare = json.loads(subprocess.run([python, "-S", "-c", "import json, sys; print(json.dumps(sys.path))"],
                                     capture_output=True, text=True, check=True).stdout)
    paths = [p for p in sys.path if p and p not in bare]
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if checkout not in paths:
        paths.append(checkout)
    return (
        f"#!{python} -S\n"
        "# dockui's command, written by .ci/install (tui.launcher.console_script): pip's console script,\n"
        "# run without `site` and given what site would have set (docs/lifecycle.md, \"Import costs\").\n"
        "import sys\n"
        f"sys.prefix = sys.exec_prefix = {sys.prefix!r}\n"
        f"sys.path += {paths!r}\n"
        "if __name__ == \"__main__\":\n"
        "    from tui.launcher import main\n"
        "\n"
        "    sys.exit(main())\n"
    )


# What `re` compiles each pattern to, worked out ahead by .ci/install (write_regex_cache).
REGEX_CACHE = f"{__file__.rsplit('/', 2)[0]}/engine/__pycache__/regex-code.{sys.implementation.cache_tag}.bin"
regex_cache_misses = 0  # patterns parsed and compiled here after all (tests/test_cli_import_costs.py reads it)


def _regex_cache_magic() -> bytes:
    """The cache's header: this interpreter's bytecode magic and its regex engine's (`_sre.MAGIC`)."""
    import _sre
    from importlib._bootstrap_external import MAGIC_NUMBER

    return b"dockui-re1" + MAGIC_NUMBER + _sre.MAGIC.to_bytes(4, "little")


def _regex_entry(pattern: str | bytes, flags: int) -> tuple:
    """What re._compiler.compile hands `_sre.compile` after `pattern`: its flags, code, groups and
    their names (the Python-level parse and code generation, ~0.05-0.5 ms a pattern)."""
    from re import _compiler, _parser

    parsed = _parser.parse(pattern, flags)
    groupindex = dict(parsed.state.groupdict)
    indexgroup = [None] * parsed.state.groups
    for name, index in groupindex.items():
        indexgroup[index] = name
    code = [int(op) for op in _compiler._code(parsed, flags)]  # (its opcodes are an int subclass marshal refuses)
    return int(flags | parsed.state.flags), code, parsed.state.groups - 1, groupindex, tuple(indexgroup)


def _use_regex_cache(path: str | None = None) -> None:
    """`re` parses each pattern and generates its code in Python before the C engine takes it
    (~25 patterns compiled at import on `run`'s path, most of them the json, dataclasses and
    engine modules' constants); take that code from the cache for a pattern it holds (see "Import
    costs" in docs/lifecycle.md). Same text and flags, same interpreter: the same Pattern. A pattern
    not in it is compiled as always; a file of another interpreter or none changes nothing."""
    import marshal

    magic = _regex_cache_magic()
    try:
        with open(path or REGEX_CACHE, "rb") as f:
            data = f.read()
        if not data.startswith(magic):
            return
        start = len(magic) + 4 + int.from_bytes(data[len(magic):len(magic) + 4], "little")
        index = marshal.loads(data[len(magic) + 4:start])  # {(pattern, flags): (offset, length)}: entries on use
    except (OSError, ValueError, EOFError, TypeError):
        return
    if not isinstance(index, dict):
        return
    import _sre
    from re import _compiler

    real = _compiler.compile
    if getattr(real, "__module__", "") == __name__:  # installed by an earlier main() of this process
        return

    def compile(p: object, flags: int = 0) -> object:  # noqa: A001 - re._compiler's own name
        global regex_cache_misses

        where = index.get((p, flags)) if isinstance(p, str | bytes) else None
        if where is None:
            regex_cache_misses += isinstance(p, str | bytes)
            return real(p, flags)
        return _sre.compile(p, *marshal.loads(data[start + where[0]:start + where[0] + where[1]]))

    _compiler.compile = compile


def write_regex_cache(path: str | None = None, packages: Sequence[str] = ("engine", "tui")) -> int:
    """Import every module of `packages` (and the stdlib modules they load) with `re`'s cache
    empty, and write what each pattern they compile compiles to (.ci/install); the number kept
    (each checked: the Pattern made from the entry equals the one `re` made). A module loaded
    already compiled its patterns at its own import, so with any of them loaded (write_method_cache
    ran first in this process, say) the recording is done by a fresh interpreter."""
    if any(name.partition(".")[0] in packages and name != __name__ for name in sys.modules if "." in name):
        return _regex_cache_in_a_fresh_interpreter(path, packages)
    import _sre
    import marshal
    import os
    import re
    from re import _compiler

    real = _compiler.compile
    seen: dict[tuple, tuple] = {}

    def recording(p: object, flags: int = 0) -> object:
        compiled = real(p, flags)
        if isinstance(p, str | bytes) and not flags & re.DEBUG:
            entry = _regex_entry(p, flags)
            if _sre.compile(p, *entry) == compiled:
                seen[(p, flags)] = entry
        return compiled

    re.purge()
    _compiler.compile = recording
    try:
        _import_every_module(packages)
    finally:
        _compiler.compile = real
    blobs = {key: marshal.dumps(entry) for key, entry in seen.items()}
    index, offset = {}, 0
    for key, blob in blobs.items():
        index[key] = (offset, len(blob))
        offset += len(blob)
    head = marshal.dumps(index)
    path = path or REGEX_CACHE
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(f"{path}.tmp", "wb") as f:  # magic, the index's length, the index, the entries
        f.write(_regex_cache_magic() + len(head).to_bytes(4, "little") + head + b"".join(blobs.values()))
    os.replace(f"{path}.tmp", path)
    return len(seen)


def _regex_cache_in_a_fresh_interpreter(path: str | None, packages: Sequence[str]) -> int:
    """write_regex_cache, run by a new interpreter with this one's path."""
    import subprocess

    code = (f"import sys\nsys.path[:] = {sys.path!r}\nfrom tui import launcher\n"
            f"print(launcher.write_regex_cache({path!r}, {tuple(packages)!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    """`dockui ARGS`: the command calls it without `argv` (sys.argv's), in-process callers with."""
    is_command = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if _asks_version(argv):  # no parser needed to say it (docs/lifecycle.md, "Import costs")
        from engine import __version__

        print(f"dockui {__version__}")
        return 0
    # The command makes its start-up's modules and classes with no cycle collection: engine.cli
    # freezes them before the verb's own work and turns it back on (see "Import costs" in
    # docs/lifecycle.md). An in-process caller's collector is left as it is.
    if is_command:
        import engine

        engine.running_as_command = True
        gc.disable()
    try:
        _defer_inspect()
        _defer_copy()
        _defer_gettext()
        _defer_urllib_parse()
        _use_regex_cache()
        _use_method_cache()
        if _has_verb(argv):
            from engine.cli import main as cli_main

            return cli_main(argv)
    finally:
        if is_command:
            gc.enable()
    from engine.errors import DockuiError
    from tui.app import run_app

    try:
        return run_app(argv)
    except DockuiError as exc:  # an invalid config file, before the screen opens: one line
        from engine.cli import report

        return report(exc)  # status 1, as every verb but run/create (engine.cli.error_status)


if __name__ == "__main__":
    sys.exit(main())
