"""The builder's pure parts, no kernel needed: the Dockerfile parser, variable substitution, typed
instructions and their refusals, `.dockerignore` matching, the context's sources and checksums."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.build.context import BuildContext, checksum, excluded, parse_dockerignore
from engine.build.dockerfile import json_args, parse
from engine.build.instructions import CommandLine, Copy, KeyValues, Onbuild, parse_plan
from engine.build.shellwords import expand, expand_words
from engine.errors import InvalidArgument, NotFound


def test_parser_directives_comments_and_continuations() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "# escape=`\n"
        "FROM busybox\n"
        "# a comment\n"
        "RUN echo a `\n"
        "  # a comment inside the instruction\n"
        "  && echo b\n"
        "run echo c\n"
    )
    dockerfile = parse(text)
    assert dockerfile.escape == "`"
    assert dict(dockerfile.directives) == {"syntax": "docker/dockerfile:1", "escape": "`"}
    assert [n.keyword for n in dockerfile.nodes] == ["FROM", "RUN", "RUN"]
    assert dockerfile.nodes[1].args == "echo a   && echo b"  # continuation lines kept as written
    assert dockerfile.nodes[2].original == "run echo c"  # the keyword is case-insensitive, printed as written


def test_directive_only_at_the_top_and_not_twice() -> None:
    late = parse("FROM busybox\n# escape=`\nRUN echo \\\n  hi\n")
    assert late.escape == "\\" and late.nodes[1].args == "echo   hi"
    with pytest.raises(InvalidArgument, match="only one escape parser directive"):
        parse("# escape=`\n# escape=\\\nFROM busybox\n")
    with pytest.raises(InvalidArgument, match="invalid escape token"):
        parse("# escape=x\nFROM busybox\n")


def test_exec_and_shell_forms() -> None:
    nodes = parse('CMD ["echo", "hi"]\nCMD echo hi\nCMD [not json\nENTRYPOINT ["a", 1]\n').nodes
    assert json_args(nodes[0]) == ["echo", "hi"]
    assert json_args(nodes[1]) is None
    assert json_args(nodes[2]) is None  # not JSON: the shell form, as Docker
    assert json_args(nodes[3]) is None  # not a list of strings


def test_substitution_forms() -> None:
    env = {"A": "x y", "EMPTY": "", "C": "c"}
    assert expand("$C/${C}/\\$C", env) == "c/c/$C"
    assert expand("${EMPTY:-def}|${EMPTY-def}|${UNSET-def}", env) == "def||def"
    assert expand("${C:+alt}|${EMPTY:+alt}|${EMPTY+alt}|${UNSET+alt}", env) == "alt||alt|"
    assert expand("'$C' \"$A\"", env) == "$C x y"
    assert expand("${UNSET:-$C/x}", env) == "c/x"
    assert expand_words('80/tcp "a b" $C\'q r\'', env) == ["80/tcp", "a b", "cq r"]
    with pytest.raises(InvalidArgument, match="UNSET: must be set"):
        expand("${UNSET:?must be set}", env)
    with pytest.raises(InvalidArgument, match="matching double-quote"):
        expand('"open', env)


def test_instructions_and_stages() -> None:
    plan = parse_plan(
        "ARG BASE=busybox\n"
        "FROM $BASE AS Build\n"
        'ENV A="x y" B=z\n'
        "ENV LEGACY hello world\n"
        "COPY --from=build --chown=app:app a b /dst/\n"
        "ONBUILD RUN echo hi\n"
        "FROM build\n"
        "RUN echo done\n"
    )
    assert [a.pairs for a in plan.meta_args] == [(("BASE", "busybox"),)]
    first, second = plan.stages
    assert first.name == "build" and first.source.image == "$BASE"
    env, legacy, copy, onbuild = first.commands
    assert isinstance(env, KeyValues) and env.pairs == (("A", '"x y"'), ("B", "z"))
    assert isinstance(legacy, KeyValues) and legacy.pairs == (("LEGACY", "hello world"),)
    assert isinstance(copy, Copy) and copy.sources == ("a", "b") and copy.dest == "/dst/"
    assert copy.from_ == "build" and copy.chown == "app:app"
    assert isinstance(onbuild, Onbuild) and isinstance(onbuild.trigger, CommandLine)
    assert second.source.image == "build" and second.name is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("RUN echo hi\n", "no build stage in current context"),
        ("FROM busybox\nFOO bar\n", "unknown instruction: FOO"),
        ("FROM busybox\nRUN --mount=type=cache,target=/x true\n", "the --mount option requires BuildKit"),
        ("FROM busybox\nCOPY --chmod=644 a /b\n", "the --chmod option requires BuildKit"),
        ("FROM busybox\nCOPY a\n", "COPY requires at least two arguments"),
        ("FROM busybox\nONBUILD ONBUILD RUN x\n", "Chaining ONBUILD"),
        ("FROM busybox\nONBUILD FROM x\n", "FROM isn't allowed as an ONBUILD trigger"),
        ("FROM busybox\nSHELL /bin/bash -c\n", "SHELL requires the arguments to be in JSON form"),
        ("FROM busybox AS a\nFROM busybox AS a\n", "duplicate name a"),
        ("FROM a b\n", "FROM requires either one or three arguments"),
        ("FROM busybox\nHEALTHCHECK WHAT x\n", "Unknown type"),
        ("", "cannot be empty"),
    ],
)
def test_refusals_are_one_line(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as info:
        parse_plan(text)
    assert "\n" not in str(info.value)


def test_dockerignore_patterns() -> None:
    rules = parse_dockerignore("# comment\n*.log\n!keep.log\nbuild/\n**/*.tmp\n/secret\n")
    assert excluded(rules, "a.log") and not excluded(rules, "keep.log")
    assert not excluded(rules, "dir/a.log")  # `*` stays within one path element
    assert excluded(rules, "build/x/y")  # a parent that matches excludes what is under it
    assert excluded(rules, "x/y/z.tmp") and excluded(rules, "z.tmp")
    assert excluded(rules, "secret") and not excluded(rules, "src/secret")


def test_context_sources_and_checksums(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.txt").write_text("a")
    (tmp_path / "dir" / "skip.log").write_text("x")
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / ".dockerignore").write_text("**/*.log\nb.txt\n")
    (tmp_path / "out").symlink_to("/etc")
    context = BuildContext.open(tmp_path)
    assert [s.rel for s in context.sources("dir")] == ["dir"]
    assert [rel for rel, _ in context.walk(context.sources("dir")[0])] == ["a.txt"]
    assert [s.rel for s in context.sources("d*/*.txt")] == ["dir/a.txt"]
    with pytest.raises(NotFound, match="excluded by .dockerignore"):
        context.sources("b.txt")
    with pytest.raises(InvalidArgument, match="outside the build context"):
        context.sources("out")
    assert [s.rel for s in context.sources("../../dir")] == ["dir"]  # `..` never leaves the root
    entries = context.walk(context.sources("dir")[0])
    before = checksum(entries)
    os.utime(tmp_path / "dir" / "a.txt", (1, 1))
    assert checksum(entries) == before  # a new mtime keeps the cache
    (tmp_path / "dir" / "a.txt").write_text("changed")
    assert checksum(entries) != before  # new contents do not


def test_run_and_ps_never_import_the_builder() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from engine.cli import build_parser\n"
        "build_parser('run'); build_parser('ps')\n"
        "print([m for m in sys.modules if m.startswith('engine.build') or m.endswith('build_cmds')])\n"
        "assert 'build' in build_parser('build')._subparsers._group_actions[0].choices\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.root
def test_layered_view_whiteouts_opaque_dirs_and_symlinks(tmp_path: Path) -> None:
    """An image's files through its layer dirs as overlayfs shows them; symlinks never leave it."""
    from engine.build.layered import OPAQUE_XATTR, LayeredView

    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for path in ("etc/keep", "etc/gone", "data/old", "var/x"):
        (lower / path).parent.mkdir(parents=True, exist_ok=True)
        (lower / path).write_text(path)
    (lower / "escape").symlink_to("/../../etc")  # absolute and `..`: both stay inside the image
    (lower / "rel").symlink_to("../var")
    (upper / "etc").mkdir(parents=True)
    os.mknod(upper / "etc" / "gone", 0o600 | 0o020000, os.makedev(0, 0))  # a whiteout
    (upper / "data").mkdir()
    os.setxattr(upper / "data", OPAQUE_XATTR, b"y")
    (upper / "data" / "new").write_text("new")
    view = LayeredView([lower, upper])
    assert view.listdir("/etc") == ["keep"] and view.entry("/etc/gone") is None
    assert view.listdir("/data") == ["new"] and view.entry("/data/old") is None
    assert view.resolve("/escape/keep") == "/etc/keep" and view.read_text("/escape/keep") == "etc/keep"
    assert view.resolve("/rel/x") == "/var/x"
    assert view.resolve("/escape", follow_last=False) == "/escape"
    assert [rel for rel, _ in view.walk("/")] == ["data", "data/new", "escape", "etc", "etc/keep", "rel", "var", "var/x"]
    assert LayeredView([]).lookup("/anything") is None  # scratch


def test_context_unpacking_never_writes_outside(tmp_path: Path) -> None:
    import io
    import tarfile

    from engine.build.context import unpack_context

    outside = tmp_path / "outside"
    outside.mkdir()

    def archive(*members: tuple[str, str, str]) -> io.BytesIO:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as tar:
            for name, kind, target in members:
                info = tarfile.TarInfo(name)
                if kind == "sym":
                    info.type, info.linkname = tarfile.SYMTYPE, target
                elif kind == "hard":
                    info.type, info.linkname = tarfile.LNKTYPE, target
                    tar.addfile(info)
                    continue
                data = target.encode() if kind == "file" else b""
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        out.seek(0)
        return out

    hostile = [
        archive(("link", "sym", str(outside)), ("link/evil", "file", "x")),
        archive(("../evil", "file", "x")),
        archive(("/abs", "file", "x")),
        archive(("link", "sym", str(outside / "f")), ("hl", "hard", "link")),
    ]
    (outside / "f").write_text("host file")
    for number, stream in enumerate(hostile):
        into = tmp_path / f"ctx{number}"
        into.mkdir()
        with pytest.raises(InvalidArgument):
            unpack_context(stream, into)
    assert sorted(p.name for p in outside.iterdir()) == ["f"] and (outside / "f").read_text() == "host file"

    into = tmp_path / "ok"
    into.mkdir()
    unpack_context(archive(("Dockerfile", "file", "FROM busybox\n"), ("d/link", "sym", "/etc/passwd")), into)
    assert (into / "Dockerfile").read_text() == "FROM busybox\n" and os.readlink(into / "d" / "link") == "/etc/passwd"
