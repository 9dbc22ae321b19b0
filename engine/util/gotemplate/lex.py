"""Go's text/template lexer: a template's text as items (text, delimiters, identifiers, fields,
numbers, strings, keywords), with Go's trimming (`{{- `, ` -}}`) and Go's messages for bad input.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from engine.util.gofmt import sprintf

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any


_EOF, _TEXT, _LEFT, _RIGHT, _SPACE, _FIELD, _IDENT, _VAR, _STRING, _RAW, _CHAR, _NUMBER = range(12)
_BOOL, _DOT, _NIL, _PIPE, _DECLARE, _ASSIGN, _LPAREN, _RPAREN, _CHARCONST, _KEYWORD, _ERROR = range(12, 23)
_KEYWORDS = ("block", "break", "continue", "define", "else", "end", "if", "range", "nil", "template", "with")
_SPACES = " \t\r\n"


@dataclass(frozen=True)
class _Item:
    typ: int
    pos: int
    val: str
    line: int

    def __str__(self) -> str:
        if self.typ == _EOF:
            return "EOF"
        if self.typ == _ERROR:
            return self.val
        if self.typ == _KEYWORD or self.typ in (_DOT, _NIL):
            return f"<{self.val}>"
        if len(self.val) > 10:
            return sprintf("%.10q...", self.val)
        return sprintf("%q", self.val)


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or unicodedata.category(ch) == "Nd"


class _Lexer:
    """Go's lexer (parse/lex.go): the items of a template, ended by EOF or by one error item."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.start = 0
        self.items: list[_Item] = []
        self.paren_depth = 0

    def run(self) -> list[_Item]:
        state: Callable[[], Any] | None = self.lex_text
        while state is not None:
            state = state()
        return self.items

    def line_at(self, pos: int) -> int:
        return 1 + self.text.count("\n", 0, pos)

    def emit(self, typ: int) -> None:
        self.items.append(_Item(typ, self.start, self.text[self.start : self.pos], self.line_at(self.start)))
        self.start = self.pos

    def ignore(self) -> None:
        self.start = self.pos

    def next(self) -> str:
        if self.pos >= len(self.text):
            self.pos += 1  # so that backup() works at EOF
            return ""
        self.pos += 1
        return self.text[self.pos - 1]

    def backup(self) -> None:
        self.pos -= 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def errorf(self, message: str) -> None:
        self.items.append(_Item(_ERROR, self.start, message, self.line_at(self.start)))
        return None

    def at_right_delim(self) -> tuple[bool, bool]:
        """(at the right delimiter, with a trim marker " -" before it)."""
        rest = self.text[self.pos :]
        if len(rest) >= 4 and rest[0] in _SPACES and rest[1] == "-" and rest[2:4] == "}}":
            return True, True
        return rest.startswith("}}"), False

    def skip_leading_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _SPACES:
            self.pos += 1

    def lex_text(self) -> Any:
        x = self.text.find("{{", self.pos)
        if x < 0:
            self.pos = len(self.text)
            if self.pos > self.start:
                self.emit(_TEXT)
            self.items.append(_Item(_EOF, self.pos, "", self.line_at(self.pos)))
            return None
        if x > self.pos or x > self.start:
            self.pos = x
            after = self.text[x + 2 : x + 4]
            trim_end = x
            if len(after) == 2 and after[0] == "-" and after[1] in _SPACES:
                trim_end = self.start + len(self.text[self.start : x].rstrip(_SPACES))
            if trim_end > self.start:
                self.pos = trim_end
                self.emit(_TEXT)
            self.pos = x
            self.ignore()
        return self.lex_left_delim

    def lex_left_delim(self) -> Any:
        self.pos += 2
        after = self.text[self.pos : self.pos + 2]
        marker = 2 if len(after) == 2 and after[0] == "-" and after[1] in _SPACES else 0
        if self.text.startswith("/*", self.pos + marker):
            self.pos += marker
            self.ignore()
            return self.lex_comment
        self.emit(_LEFT)
        self.pos += marker
        self.ignore()
        self.paren_depth = 0
        return self.lex_inside

    def lex_comment(self) -> Any:
        self.pos += 2
        i = self.text.find("*/", self.pos)
        if i < 0:
            return self.errorf("unclosed comment")
        self.pos = i + 2
        delim, trim = self.at_right_delim()
        if not delim:
            return self.errorf("comment ends before closing delimiter")
        self.pos += 4 if trim else 2
        if trim:
            self.skip_leading_space()
        self.ignore()
        return self.lex_text

    def lex_right_delim(self) -> Any:
        _, trim = self.at_right_delim()
        if trim:
            self.pos += 2
            self.ignore()
        self.pos += 2
        self.emit(_RIGHT)
        if trim:
            self.skip_leading_space()
            self.ignore()
        return self.lex_text

    def lex_inside(self) -> Any:
        delim, _ = self.at_right_delim()
        if delim:
            if self.paren_depth == 0:
                return self.lex_right_delim
            return self.errorf("unclosed left paren")
        ch = self.next()
        if ch == "":
            return self.errorf("unclosed action")
        if ch in _SPACES:
            self.backup()
            return self.lex_space
        if ch == "=":
            self.emit(_ASSIGN)
        elif ch == ":":
            if self.next() != "=":
                return self.errorf("expected :=")
            self.emit(_DECLARE)
        elif ch == "|":
            self.emit(_PIPE)
        elif ch == '"':
            return self.lex_quote
        elif ch == "`":
            return self.lex_raw_quote
        elif ch == "$":
            return self.lex_variable
        elif ch == "'":
            return self.lex_char
        elif ch == "." and not (self.peek() and self.peek() in "0123456789"):
            return self.lex_field
        elif ch in "+-." or ch in "0123456789":
            self.backup()
            return self.lex_number
        elif _is_alnum(ch):
            self.backup()
            return self.lex_identifier
        elif ch == "(":
            self.emit(_LPAREN)
            self.paren_depth += 1
        elif ch == ")":
            self.paren_depth -= 1
            if self.paren_depth < 0:
                return self.errorf("unexpected right paren")
            self.emit(_RPAREN)
        elif ord(ch) < 0x80 and ch.isprintable():
            self.emit(_CHAR)
        else:
            return self.errorf(f"unrecognized character in action: {_unicode_name(ch)}")
        return self.lex_inside

    def lex_space(self) -> Any:
        spaces = 0
        while self.peek() and self.peek() in _SPACES:
            self.next()
            spaces += 1
        # a space before "-}}" is the trim marker's: leave it to the right delimiter
        if self.text.startswith("-}}", self.pos):
            self.backup()
            if spaces == 1:
                return self.lex_right_delim
        self.emit(_SPACE)
        return self.lex_inside

    def at_terminator(self) -> bool:
        ch = self.peek()
        return ch == "" or ch in _SPACES or ch in ".,|:)(=" or ch == "}"

    def lex_identifier(self) -> Any:
        while True:
            ch = self.next()
            if not (ch and _is_alnum(ch)):
                self.backup()
                word = self.text[self.start : self.pos]
                if not self.at_terminator():
                    return self.errorf(f"bad character {_unicode_name(self.peek())}")
                if word in _KEYWORDS:
                    self.emit(_NIL if word == "nil" else _KEYWORD)
                elif word in ("true", "false"):
                    self.emit(_BOOL)
                else:
                    self.emit(_IDENT)
                return self.lex_inside

    def lex_field(self) -> Any:
        return self.lex_field_or_variable(_FIELD)

    def lex_variable(self) -> Any:
        if self.at_terminator():
            self.emit(_VAR)
            return self.lex_inside
        return self.lex_field_or_variable(_VAR)

    def lex_field_or_variable(self, typ: int) -> Any:
        if self.at_terminator():
            self.emit(_VAR if typ == _VAR else _DOT)
            return self.lex_inside
        while True:
            ch = self.next()
            if not (ch and _is_alnum(ch)):
                self.backup()
                break
        if not self.at_terminator():
            return self.errorf(f"bad character {_unicode_name(self.peek())}")
        self.emit(typ)
        return self.lex_inside

    def lex_char(self) -> Any:
        return self.lex_escaped("'", _CHARCONST, "unterminated character constant")

    def lex_escaped(self, close: str, token: int, unterminated: str) -> Any:
        """A quoted string or character constant up to `close` (backslash escapes; no newline)."""
        while True:
            ch = self.next()
            if ch == "\\":
                ch = self.next()
                if ch not in ("", "\n"):
                    continue
            if ch in ("", "\n"):
                return self.errorf(unterminated)
            if ch == close:
                break
        self.emit(token)
        return self.lex_inside

    def lex_number(self) -> Any:
        if not self.scan_number():
            return self.errorf(f"bad number syntax: {sprintf('%q', self.text[self.start : self.pos])}")
        self.emit(_NUMBER)
        return self.lex_inside

    def scan_number(self) -> bool:
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        if self.peek() and _is_alnum(self.peek()):
            self.next()
            return False
        return True

    def accept(self, valid: str) -> bool:
        ch = self.next()
        if ch and ch in valid:
            return True
        self.backup()
        return False

    def accept_run(self, valid: str) -> None:
        while True:
            ch = self.next()
            if not (ch and ch in valid):
                self.backup()
                return

    def lex_quote(self) -> Any:
        return self.lex_escaped('"', _STRING, "unterminated quoted string")

    def lex_raw_quote(self) -> Any:
        while True:
            ch = self.next()
            if ch == "":
                return self.errorf("unterminated raw quoted string")
            if ch == "`":
                break
        self.emit(_RAW)
        return self.lex_inside


def _unicode_name(ch: str) -> str:
    """Go's %#U: U+0023 '#'."""
    if not ch:
        return "U+FFFFFFFF"
    return f"U+{ord(ch):04X} '{ch}'" if ch.isprintable() else f"U+{ord(ch):04X}"


