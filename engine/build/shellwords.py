"""Docker's Dockerfile variable substitution (buildkit's `shell.Lex`, used by the classic builder too).

`expand(word, env)` gives one word: quotes removed ('single' literal, "double" with `$` expanded),
the escape character (`\\` or the `# escape=` one) taking the next character literally, `$NAME`,
`${NAME}`, `${NAME:-default}`/`${NAME-default}`, `${NAME:+alt}`/`${NAME+alt}`,
`${NAME:?message}`/`${NAME?message}`. `expand_words(text, env)` splits on unquoted whitespace as
well (EXPOSE, shell-form VOLUME). Pure functions; an unset variable is the empty string, as in
Docker; a bad expansion is an InvalidArgument naming it.

Invariant: the same text and environment always give the same words (the build cache relies on
the expanded instruction).
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.errors import InvalidArgument

_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")


# An expansion's result is bounded (ARGs that each repeat the previous one four times would grow
# exponentially, in memory and in every image config that records them); Linux passes no single
# argument or environment string over 128 KiB to a program anyway.
MAX_EXPANSION = 1 << 20


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """One word, quotes and escapes removed, variables substituted."""
    words = _run(_Lexer(word, env, escape, split=False))
    return words[0] if words else ""


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """The words of `text` (unquoted whitespace separates them), each expanded."""
    return _run(_Lexer(text, env, escape, split=True))


def _run(lexer: _Lexer) -> list[str]:
    """The lexer's words, or one line when they are nested too deeply or grow too big."""
    try:
        words = lexer.run()
    except RecursionError:
        raise InvalidArgument(f"substitution nested too deeply in {lexer.text[:80]}...") from None
    if sum(len(w) for w in words) > MAX_EXPANSION:
        raise InvalidArgument(f"substitution result over {MAX_EXPANSION} bytes in {lexer.text[:80]}")
    return words


def env_map(entries: list[str] | tuple[str, ...] | None) -> dict[str, str]:
    """Docker's `KEY=value` list as a mapping (a later entry wins)."""
    result: dict[str, str] = {}
    for entry in entries or ():
        key, _, value = entry.partition("=")
        result[key] = value
    return result


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str, split: bool) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.split = split

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1
        return ch

    def run(self) -> list[str]:
        words, current, started = self.words_until("")
        if started:
            words.append(current)
        return words

    def words_until(self, stop: str) -> tuple[list[str], str, bool]:
        """Words up to `stop` (not consumed past it) or the end: (finished words, the word being
        built, whether that word has started: `""` is a word, nothing is not)."""
        words: list[str] = []
        current: list[str] = []
        started = False
        while self.pos < len(self.text):
            ch = self.peek()
            if stop and ch == stop:
                break
            if self.split and ch in " \t\r\n":
                self.next()
                if started:
                    words.append("".join(current))
                    current, started = [], False
                continue
            started = True
            if ch == self.escape:
                self.next()
                if self.pos < len(self.text):
                    current.append(self.next())
                else:
                    current.append(ch)
            elif ch == "'":
                current.append(self.single_quoted())
            elif ch == '"':
                current.append(self.double_quoted())
            elif ch == "$":
                current.append(self.dollar())  # a value is one piece of the word, never split
            else:
                current.append(self.next())
        return words, "".join(current), started

    def single_quoted(self) -> str:
        self.next()
        end = self.text.find("'", self.pos)
        if end < 0:
            raise InvalidArgument(f"unexpected end of statement while looking for matching single-quote: {self.text}")
        value = self.text[self.pos:end]
        self.pos = end + 1
        return value

    def double_quoted(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise InvalidArgument(f"unexpected end of statement while looking for matching double-quote: {self.text}")
            ch = self.peek()
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
            elif ch == self.escape:
                self.next()
                following = self.peek()
                if following in ('"', "$", self.escape) and following:
                    out.append(self.next())
                else:
                    out.append(ch)
            else:
                out.append(self.next())

    def dollar(self) -> str:
        self.next()  # the $
        ch = self.peek()
        if ch == "{":
            self.next()
            return self.braced()
        if ch and ch in _NAME_START:
            return self.env.get(self.name(), "")
        return "$"

    def name(self) -> str:
        start = self.pos
        while self.peek() and self.peek() in _NAME_CHARS:
            self.pos += 1
        return self.text[start:self.pos]

    def braced(self) -> str:
        name = self.name()
        if not name:
            raise InvalidArgument(f"missing ':' in substitution: {self.text}")
        ch = self.next()
        if ch == "}":
            return self.env.get(name, "")
        colon = ch == ":"
        if colon:
            ch = self.next()
        if ch not in ("-", "+", "?"):
            raise InvalidArgument(f"unsupported modifier ({ch or 'end'}) in substitution: {self.text}")
        word = self.modifier_word()
        is_set = name in self.env
        value = self.env.get(name, "")
        present = bool(value) if colon else is_set
        if ch == "-":
            return value if present else word
        if ch == "+":
            return word if present else ""
        if not present:
            raise InvalidArgument(f"{name}: {word or 'is not allowed to be unset'}")
        return value

    def modifier_word(self) -> str:
        inner = _Lexer(self.text, self.env, self.escape, split=False)
        inner.pos = self.pos
        _, word, _ = inner.words_until("}")
        if inner.peek() != "}":
            raise InvalidArgument(f"syntax error: missing '}}' in {self.text}")
        self.pos = inner.pos + 1
        return word
