"""Typed Dockerfile instructions and build stages, from the parser's raw nodes.

Every instruction is checked here, before anything runs: its flags (the BuildKit-only ones are
refused in Docker's words), its argument count, the exec/shell form. Variables are *not*
substituted here (that needs the build state: engine.build.steps does it); values are kept as the
raw words Docker's parser keeps (quotes included), ready for `shellwords.expand`.

`parse_stages(dockerfile)` gives the ARGs before the first FROM (usable only in FROM lines) and
the stages, each a FROM and its instructions. Invariant: a Stage's commands never contain a FROM,
and every ONBUILD trigger is itself a valid instruction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.build.dockerfile import Dockerfile, Node, json_args
from engine.build.dockerfile import parse as parse_dockerfile
from engine.errors import InvalidArgument

BUILDKIT_ONLY = "the --{flag} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how " \
                "to build images with BuildKit enabled"
METADATA_ONLY = frozenset({"ENV", "LABEL", "ARG", "EXPOSE", "USER", "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
                           "ONBUILD", "CMD", "ENTRYPOINT", "MAINTAINER"})


@dataclass(frozen=True)
class Instruction:
    keyword: str
    original: str
    line: int


@dataclass(frozen=True)
class From(Instruction):
    image: str
    name: str | None = None
    platform: str | None = None


@dataclass(frozen=True)
class CommandLine(Instruction):
    """RUN, CMD, ENTRYPOINT: the exec form (`exec_form`, a list) or the shell form (one string)."""

    exec_form: tuple[str, ...] | None
    shell_form: str = ""


@dataclass(frozen=True)
class KeyValues(Instruction):
    """ENV, LABEL: raw (key, value) words, expanded at dispatch."""

    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Arg(Instruction):
    pairs: tuple[tuple[str, str | None], ...]  # (name, default or None)


@dataclass(frozen=True)
class Words(Instruction):
    """EXPOSE, VOLUME (words or a JSON list), SHELL (a JSON list)."""

    words: tuple[str, ...]
    is_json: bool = False


@dataclass(frozen=True)
class Text(Instruction):
    """WORKDIR, USER, STOPSIGNAL, MAINTAINER: the rest of the line as one raw word."""

    text: str


@dataclass(frozen=True)
class Copy(Instruction):
    """COPY and ADD (`keyword` says which): sources and destination as raw words."""

    sources: tuple[str, ...]
    dest: str
    from_: str | None = None
    chown: str | None = None


@dataclass(frozen=True)
class Healthcheck(Instruction):
    test: tuple[str, ...]  # ("NONE",), ("CMD", argv...) or ("CMD-SHELL", text)
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Onbuild(Instruction):
    expression: str
    trigger: Instruction | None = None


@dataclass(frozen=True)
class Stage:
    index: int
    source: From
    commands: tuple[Instruction, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str | None:
        return self.source.name


@dataclass(frozen=True)
class Plan:
    """A parsed Dockerfile: the ARGs before the first FROM, the stages, the escape character."""

    meta_args: tuple[Arg, ...]
    stages: tuple[Stage, ...]
    escape: str
    warnings: tuple[str, ...] = ()


def parse_plan(text: str) -> Plan:
    dockerfile = parse_dockerfile(text)
    if text and not dockerfile.nodes:  # blank lines or comments only (an empty file "cannot be empty")
        raise InvalidArgument("failed to parse dockerfile: file with no instructions")
    meta, stages = parse_stages(dockerfile)
    return Plan(meta, stages, dockerfile.escape, dockerfile.warnings)


def parse_stages(dockerfile: Dockerfile) -> tuple[tuple[Arg, ...], tuple[Stage, ...]]:
    meta: list[Arg] = []
    stages: list[tuple[From, list[Instruction]]] = []
    for node in dockerfile.nodes:
        instruction = parse_instruction(node)
        if isinstance(instruction, From):
            stages.append((instruction, []))
        elif not stages:
            if not isinstance(instruction, Arg):
                raise InvalidArgument(f"Dockerfile line {node.line}: no build stage in current context")
            meta.append(instruction)
        else:
            stages[-1][1].append(instruction)
    if not stages:
        raise InvalidArgument("the Dockerfile (Dockerfile) cannot be empty" if not dockerfile.nodes
                              else "No image was generated. Is your Dockerfile empty?")
    names: set[str] = set()
    for source, _ in stages:
        if source.name:
            if source.name in names:
                raise InvalidArgument(f"duplicate name {source.name}")
            names.add(source.name)
    return tuple(meta), tuple(Stage(i, src, tuple(cmds)) for i, (src, cmds) in enumerate(stages))


def parse_instruction(node: Node) -> Instruction:
    parser = _PARSERS.get(node.keyword)
    if parser is None:
        raise InvalidArgument(f"Dockerfile parse error line {node.line}: unknown instruction: {node.keyword}")
    return parser(node)


def _flags(node: Node, allowed: tuple[str, ...], buildkit: tuple[str, ...] = ()) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for flag in node.flags:
        if flag.name in buildkit:
            raise InvalidArgument(BUILDKIT_ONLY.format(flag=flag.name))
        if flag.name not in allowed:
            raise InvalidArgument(f"Dockerfile parse error line {node.line}: Unknown flag: {flag.name}")
        values[flag.name] = flag.value
    return values


def _base(node: Node) -> dict[str, object]:
    return {"keyword": node.keyword, "original": node.original, "line": node.line}


def _need_args(node: Node, minimum: int = 1) -> None:
    if len(node.args.split()) < minimum:
        word = "at least one argument" if minimum == 1 else f"at least {minimum} arguments"
        raise InvalidArgument(f"Dockerfile parse error line {node.line}: {node.keyword} requires {word}")


def _from(node: Node) -> From:
    flags = _flags(node, ("platform",))
    words = node.args.split()
    if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
        raise InvalidArgument(f"Dockerfile parse error line {node.line}: FROM requires either one or three arguments")
    name = words[2].lower() if len(words) == 3 else None
    if name is not None and not _valid_stage_name(name):
        raise InvalidArgument(f"invalid name for build stage: {words[2]!r}, name can't start with a number or contain symbols")
    return From(**_base(node), image=words[0], name=name, platform=flags.get("platform"))  # type: ignore[arg-type]


def _valid_stage_name(name: str) -> bool:
    import re

    return re.fullmatch(r"[a-z][a-z0-9._-]*", name) is not None


def _command_line(node: Node) -> CommandLine:
    buildkit = ("mount", "network", "security") if node.keyword == "RUN" else ()
    _flags(node, (), buildkit)
    exec_form = json_args(node)
    if node.keyword == "RUN" and exec_form is None:
        _need_args(node)
    if exec_form is not None:
        return CommandLine(**_base(node), exec_form=tuple(exec_form))  # type: ignore[arg-type]
    return CommandLine(**_base(node), exec_form=None, shell_form=node.args)  # type: ignore[arg-type]


def raw_words(text: str, escape: str = "\\") -> list[str]:
    """Docker's parseWords: split on blanks outside quotes, quotes and escapes kept."""
    words: list[str] = []
    current: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == escape and i + 1 < len(text):
            current += [ch, text[i + 1]]
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in " \t\n":
            if current:
                words.append("".join(current))
                current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    if current:
        words.append("".join(current))
    return words


def _key_values(node: Node) -> KeyValues:
    _flags(node, ())
    _need_args(node)
    words = raw_words(node.args)
    if "=" not in words[0]:  # the legacy `ENV KEY value with spaces`
        key, _, value = node.args.partition(" ")
        if not value.strip() and node.keyword == "ENV":
            raise InvalidArgument(f"Dockerfile parse error line {node.line}: ENV must have two arguments")
        return KeyValues(**_base(node), pairs=((key, value.strip()),))  # type: ignore[arg-type]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"Dockerfile parse error line {node.line}: {node.keyword} names can not be blank"
                                  if not key else f"Syntax error - can't find = in \"{word}\". Must be of the form: name=value")
        pairs.append((key, value))
    return KeyValues(**_base(node), pairs=tuple(pairs))  # type: ignore[arg-type]


def _arg(node: Node) -> Arg:
    _flags(node, ())
    _need_args(node)
    pairs: list[tuple[str, str | None]] = []
    for word in raw_words(node.args):
        key, sep, value = word.partition("=")
        if not key:
            raise InvalidArgument(f"Dockerfile parse error line {node.line}: ARG names can not be blank")
        pairs.append((key, value if sep else None))
    return Arg(**_base(node), pairs=tuple(pairs))  # type: ignore[arg-type]


def _words(node: Node) -> Words:
    _flags(node, ())
    exec_form = json_args(node)
    if node.keyword == "SHELL":
        if exec_form is None:
            raise InvalidArgument("SHELL requires the arguments to be in JSON form")
        if not exec_form:
            raise InvalidArgument("SHELL requires at least one argument")
        return Words(**_base(node), words=tuple(exec_form), is_json=True)  # type: ignore[arg-type]
    if exec_form is not None:
        return Words(**_base(node), words=tuple(exec_form), is_json=True)  # type: ignore[arg-type]
    _need_args(node)
    return Words(**_base(node), words=tuple(raw_words(node.args)))  # type: ignore[arg-type]


def _text(node: Node) -> Text:
    _flags(node, ())
    _need_args(node)
    return Text(**_base(node), text=node.args)  # type: ignore[arg-type]


def _copy(node: Node) -> Copy:
    if node.keyword == "ADD":
        flags = _flags(node, ("chown",), ("chmod", "checksum", "keep-git-dir", "link"))
    else:
        flags = _flags(node, ("chown", "from"), ("chmod", "link", "parents", "exclude"))
    words = json_args(node)
    if words is None:
        words = node.args.split()
    if len(words) < 2:
        raise InvalidArgument(f"Dockerfile parse error line {node.line}: {node.keyword} requires at least two arguments, "
                              "but only one was provided. Destination could not be determined.")
    return Copy(**_base(node), sources=tuple(words[:-1]), dest=words[-1],  # type: ignore[arg-type]
                from_=flags.get("from"), chown=flags.get("chown"))


HEALTH_OPTIONS = ("interval", "timeout", "start-period", "start-interval", "retries")


def _healthcheck(node: Node) -> Healthcheck:
    flags = _flags(node, HEALTH_OPTIONS)
    kind, _, rest = node.args.partition(" ")
    kind = kind.upper()
    if kind == "NONE":
        if rest.strip() or flags:
            raise InvalidArgument("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(**_base(node), test=("NONE",))  # type: ignore[arg-type]
    if kind != "CMD":
        raise InvalidArgument(f"Unknown type {kind!r} in HEALTHCHECK (try CMD)")
    if not rest.strip():
        raise InvalidArgument("Missing command after HEALTHCHECK CMD")
    exec_form = json_args(Node("CMD", (), rest.strip(), rest, node.line))
    test = ("CMD", *exec_form) if exec_form is not None else ("CMD-SHELL", rest.strip())
    options = tuple((k, v or "") for k, v in flags.items())
    return Healthcheck(**_base(node), test=test, options=options)  # type: ignore[arg-type]


def _onbuild(node: Node) -> Onbuild:
    _flags(node, ())
    _need_args(node)
    from engine.build.dockerfile import parse as parse_text

    inner = parse_text(node.args).nodes
    if len(inner) != 1:
        raise InvalidArgument("ONBUILD trigger should be a single expression")
    keyword = inner[0].keyword
    if keyword == "ONBUILD":
        raise InvalidArgument("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if keyword in ("FROM", "MAINTAINER"):
        raise InvalidArgument(f"{keyword} isn't allowed as an ONBUILD trigger")
    trigger = parse_instruction(inner[0])
    return Onbuild(**_base(node), expression=node.args, trigger=trigger)  # type: ignore[arg-type]


_PARSERS = {
    "FROM": _from,
    "RUN": _command_line,
    "CMD": _command_line,
    "ENTRYPOINT": _command_line,
    "ENV": _key_values,
    "LABEL": _key_values,
    "ARG": _arg,
    "EXPOSE": _words,
    "VOLUME": _words,
    "SHELL": _words,
    "WORKDIR": _text,
    "USER": _text,
    "STOPSIGNAL": _text,
    "MAINTAINER": _text,
    "COPY": _copy,
    "ADD": _copy,
    "HEALTHCHECK": _healthcheck,
    "ONBUILD": _onbuild,
}
