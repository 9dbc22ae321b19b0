"""The `dockui` console script: no verb starts the TUI, a verb runs the headless CLI.

Kept free of Textual imports so `dockui ps` never pays for them.
"""

from __future__ import annotations

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


def _defer_inspect() -> None:
    """`dataclasses` imports `inspect` (with ast, dis, tokenize: ~4-5 ms) but uses it only for a
    class without a docstring; the CLI's classes all have one (see "Import costs" in docs/lifecycle.md)."""
    if "inspect" not in sys.modules:
        sys.modules["inspect"] = _Deferred("inspect")


def _defer_urllib_parse() -> None:
    """`pathlib` imports `urllib.parse` (with `ipaddress`: ~2 ms) for `Path.as_uri` alone, which the
    CLI never calls: a stand-in, whose `quote_from_bytes` (what pathlib takes from it) loads the
    real module when called, as any other attribute does when used."""
    if "urllib.parse" in sys.modules:
        return
    import urllib  # the package itself is empty

    stand_in = _Deferred("urllib.parse")

    def quote_from_bytes(*args: object, **kwargs: object) -> str:
        return _load_deferred("urllib.parse", stand_in).quote_from_bytes(*args, **kwargs)  # type: ignore[attr-defined]

    stand_in.quote_from_bytes = quote_from_bytes  # type: ignore[attr-defined]
    sys.modules["urllib.parse"] = urllib.parse = stand_in  # type: ignore[attr-defined]


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


def write_method_cache(path: str | None = None, packages: Sequence[str] = ("engine", "tui")) -> int:
    """Import every module of `packages` and write the code of the methods their dataclasses
    generate to `path` (.ci/install, after compileall); the number of methods."""
    import builtins
    import dataclasses
    import importlib
    import marshal
    import os
    import pkgutil

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
        for package in packages:
            root = importlib.import_module(package)
            for info in pkgutil.walk_packages(root.__path__, f"{package}."):
                try:
                    importlib.import_module(info.name)
                except Exception:  # noqa: BLE001 - a module that cannot load here has nothing to cache
                    pass
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if _asks_version(argv):  # no parser needed to say it (docs/lifecycle.md, "Import costs")
        from engine import __version__

        print(f"dockui {__version__}")
        return 0
    _defer_inspect()
    _defer_urllib_parse()
    _use_method_cache()
    if _has_verb(argv):
        from engine.cli import main as cli_main

        return cli_main(argv)
    from engine.errors import DockuiError
    from tui.app import run_app

    try:
        return run_app(argv)
    except DockuiError as exc:  # an invalid config file, before the screen opens: one line
        from engine.cli import report

        return report(exc)  # status 1, as every verb but run/create (engine.cli.error_status)


if __name__ == "__main__":
    sys.exit(main())
