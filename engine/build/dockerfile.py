"""The Dockerfile parser: text to a list of raw instructions, as Docker's parser reads it.

- Parser directives (`# syntax=...`, `# escape=\\` or `` ` ``, `# check=...`) are read only at the very
  top, before any instruction, comment or blank line; a repeated one is an error.
- A line whose first non-blank character is `#` is a comment, also inside a continued instruction;
  blank lines inside one are skipped too.
- A line ending in the escape character (trailing blanks allowed) continues on the next line.
- Each instruction is `KEYWORD [--flag[=value] ...] ARGS`; the keyword is case-insensitive, the
  flags are split off here (each instruction says which it takes), and `original` keeps the joined
  line as written, for the `Step N/M : ...` lines.
- `json_args(node)`: the exec form, when the arguments are a JSON array of strings.

Pure: nothing here reads files or knows what an instruction does (engine.build.instructions does).
Errors are InvalidArgument with Docker's words and the line number.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from engine.errors import InvalidArgument

DIRECTIVES = ("syntax", "escape", "check")
_DIRECTIVE_RE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_INSTRUCTION_RE = re.compile(r"^(\S+)(?:\s+(.*))?$", re.S)


@dataclass(frozen=True)
class Flag:
    name: str
    value: str | None  # None: given without `=` (`--rm`)


@dataclass(frozen=True)
class Node:
    """One instruction as written: its keyword (upper case), flags, the rest, where it was."""

    keyword: str
    flags: tuple[Flag, ...]
    args: str
    original: str
    line: int


@dataclass(frozen=True)
class Dockerfile:
    escape: str
    directives: tuple[tuple[str, str], ...]
    nodes: tuple[Node, ...]
    warnings: tuple[str, ...] = ()


def parse(text: str) -> Dockerfile:
    """The instructions of a Dockerfile's text (bytes decoded as UTF-8 by the caller)."""
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    directives, start = _directives(lines)
    escape = dict(directives).get("escape", "\\")
    if escape not in ("\\", "`"):
        raise InvalidArgument(f"invalid escape token '{escape}' does not match ` or \\")
    continuation = re.compile(re.escape(escape) + r"[ \t]*$")
    nodes: list[Node] = []
    warnings: list[str] = []
    i = start
    while i < len(lines):
        line = lines[i].strip()
        first_line = i + 1
        i += 1
        if not line or line.startswith("#"):
            continue
        # Continuation lines are appended as written (their leading blanks kept), as Docker does.
        while continuation.search(line):
            line = continuation.sub("", line)
            while i < len(lines) and (not lines[i].strip() or lines[i].strip().startswith("#")):
                if not lines[i].strip():
                    warnings.append(f"[WARNING]: Empty continuation line found in: {line.strip()}")
                i += 1
            if i >= len(lines):
                break
            line += lines[i].rstrip()
            i += 1
        nodes.append(_node(line.strip(), first_line))
    return Dockerfile(escape, tuple(directives), tuple(nodes), tuple(warnings))


def _directives(lines: list[str]) -> tuple[list[tuple[str, str]], int]:
    found: list[tuple[str, str]] = []
    for index, line in enumerate(lines):
        match = _DIRECTIVE_RE.match(line.strip())
        if not match or match.group(1).lower() not in DIRECTIVES:
            return found, index
        name = match.group(1).lower()
        if any(name == seen for seen, _ in found):
            raise InvalidArgument(f"only one {name} parser directive can be used")
        found.append((name, match.group(2)))
    return found, len(lines)


def _node(line: str, number: int) -> Node:
    match = _INSTRUCTION_RE.match(line)
    assert match is not None  # a stripped, non-empty line always has a first word
    keyword, rest = match.group(1).upper(), (match.group(2) or "").strip()
    flags: list[Flag] = []
    while rest.startswith("--"):
        word, _, after = rest.partition(" ")
        if word == "--":
            break
        name, sep, value = word[2:].partition("=")
        flags.append(Flag(name, value if sep else None))
        rest = after.strip()
    return Node(keyword, tuple(flags), rest, line, number)


def json_args(node: Node) -> list[str] | None:
    """The exec (JSON) form's list, or None for the shell form (not a JSON array of strings)."""
    text = node.args.strip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # `[[[...` thousands deep: not an array of strings either
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None
