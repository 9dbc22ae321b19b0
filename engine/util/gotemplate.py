"""Go's text/template language as Docker's `--format` uses it: parsed once into a small AST, then
executed against Python data.

Owns the language: actions, fields and nested fields, variables (`$x :=`, `$x =`, `$`), pipes,
parenthesised pipelines, `if`/`else if`/`else`, `range` (with `$i, $v :=`, `else`, `break`,
`continue`), `with`/`else`, `define`/`template`/`block`, `{{- ` and ` -}}` trimming, comments; Go's
builtins (`and`, `or`, `not`, `eq` ... `ge`, `index`, `slice`, `len`, `print`, `printf`, `println`,
`html`, `js`, `urlquery`, `call`) and Docker's (`json`, `join`, `split`, `upper`, `lower`, `title`,
`truncate`, `pad`). Values are printed with engine.util.gofmt's rules (its docstring says how Python
values stand for Go's). Not supported: complex constants (`1+2i`), and `call` has no function values
to call (Docker's data has none).

The invariant: a template that Go rejects is rejected here with Go's message, at parse time when
Go's parser rejects it (`template: NAME:LINE: MSG`) and at execution otherwise
(`template: NAME:LINE:COL: executing "NAME" at <NODE>: MSG`), so a user's script sees what docker
prints. `Template.execute` never returns partial output silently: an error carries what was
written before it (Docker prints a table's header that far).

Data may be Python values (see gofmt) or `TemplateData` objects: typed rows with Docker's computed
fields and methods (`.Label "k"`). Only the standard library and engine.util.gofmt are imported.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.util.gofmt import NO_VALUE, GoMap, go_json, go_type, sprint, sprint_value, sprintf, sprintln

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any, NoReturn


class TemplateError(Exception):
    """A template Go would reject, with Go's message (`template: ...`)."""


class ParseError(TemplateError):
    """The template does not parse."""


class ExecError(TemplateError):
    """Execution failed; `partial` is the output written before the failure."""

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial


class FuncError(Exception):
    """Raised by a template function: becomes Go's `error calling NAME: MSG`."""


@dataclass(frozen=True)
class GoFunc:
    """A function or method callable from a template, with Go's parameter types ("any", "string",
    "int", "[]string"): they decide how constants convert and which values are refused."""

    fn: Callable[..., Any]
    params: tuple[str, ...]
    variadic: str | None = None


class TemplateData:
    """A typed object a template reads, like Docker's formatter contexts: `.Name` is
    `template_field(name)`; a name that is a method (takes arguments) is `template_method(name)`."""

    go_type = "struct"

    def template_method(self, name: str) -> GoFunc | None:  # noqa: ARG002
        return None

    def template_field(self, name: str) -> Any:  # noqa: ARG002
        """The field's value, or NO_VALUE when the type has no such field."""
        return NO_VALUE

    def template_json(self) -> Any:
        """What `json .` encodes (and `{{.}}` prints)."""
        return {}

    def __str__(self) -> str:
        return sprint_value(self.template_json())


# ------------------------------------------------------------------------------------------ lexer

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
        while True:
            ch = self.next()
            if ch == "\\":
                ch = self.next()
                if ch not in ("", "\n"):
                    continue
            if ch in ("", "\n"):
                return self.errorf("unterminated character constant")
            if ch == "'":
                break
        self.emit(_CHARCONST)
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
        while True:
            ch = self.next()
            if ch == "\\":
                ch = self.next()
                if ch not in ("", "\n"):
                    continue
            if ch in ("", "\n"):
                return self.errorf("unterminated quoted string")
            if ch == '"':
                break
        self.emit(_STRING)
        return self.lex_inside

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


# ------------------------------------------------------------------------------------------ AST


@dataclass(frozen=True)
class Node:
    pos: int


@dataclass(frozen=True)
class TextNode(Node):
    text: str

    def __str__(self) -> str:
        return sprintf("%q", self.text)


@dataclass(frozen=True)
class FieldNode(Node):
    ident: tuple[str, ...]

    def __str__(self) -> str:
        return "".join("." + i for i in self.ident)


@dataclass(frozen=True)
class VariableNode(Node):
    ident: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.ident)


@dataclass(frozen=True)
class IdentifierNode(Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class DotNode(Node):
    def __str__(self) -> str:
        return "."


@dataclass(frozen=True)
class NilNode(Node):
    def __str__(self) -> str:
        return "nil"


@dataclass(frozen=True)
class BoolNode(Node):
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(frozen=True)
class NumberNode(Node):
    text: str
    is_int: bool
    is_float: bool
    int_value: int
    float_value: float

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class StringNode(Node):
    quoted: str
    text: str

    def __str__(self) -> str:
        return self.quoted


@dataclass(frozen=True)
class CommandNode(Node):
    args: tuple[Node, ...]

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, PipeNode) else str(a) for a in self.args)


@dataclass(frozen=True)
class PipeNode(Node):
    decl: tuple[VariableNode, ...]
    is_assign: bool
    cmds: tuple[CommandNode, ...]

    def __str__(self) -> str:
        text = ""
        if self.decl:
            text = ", ".join(str(v) for v in self.decl) + (" = " if self.is_assign else " := ")
        return text + " | ".join(str(c) for c in self.cmds)


@dataclass(frozen=True)
class ChainNode(Node):
    node: Node
    fields: tuple[str, ...]

    def __str__(self) -> str:
        base = f"({self.node})" if isinstance(self.node, PipeNode) else str(self.node)
        return base + "".join("." + f for f in self.fields)


@dataclass(frozen=True)
class ListNode(Node):
    nodes: tuple[Node, ...]

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


@dataclass(frozen=True)
class ActionNode(Node):
    pipe: PipeNode

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass(frozen=True)
class BranchNode(Node):
    """if, range and with: the pipeline, the body and the else body (or None)."""

    keyword: str
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None

    def __str__(self) -> str:
        text = "{{" + self.keyword + " " + str(self.pipe) + "}}" + str(self.body)
        if self.else_body is not None:
            text += "{{else}}" + str(self.else_body)
        return text + "{{end}}"


@dataclass(frozen=True)
class LoopControlNode(Node):
    keyword: str  # break or continue

    def __str__(self) -> str:
        return "{{" + self.keyword + "}}"


@dataclass(frozen=True)
class TemplateNode(Node):
    name: str
    pipe: PipeNode | None

    def __str__(self) -> str:
        return sprintf("{{template %q", self.name) + (f" {self.pipe}" if self.pipe else "") + "}}"


# ------------------------------------------------------------------------------------------ parser


class _Parser:
    """Go's recursive-descent parser (parse/parse.go), error messages included."""

    def __init__(self, name: str, text: str, funcs: dict[str, GoFunc]) -> None:
        self.name = name
        self.text = text
        self.funcs = funcs
        self.items = _Lexer(text).run()
        self.i = 0
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.defined: dict[str, ListNode] = {}

    def error(self, message: str, item: _Item | None = None) -> NoReturn:
        line = (item or self.items[min(max(self.i - 1, 0), len(self.items) - 1)]).line
        raise ParseError(f"template: {self.name}:{line}: {message}")

    def next(self) -> _Item:
        item = self.items[min(self.i, len(self.items) - 1)]
        if item.typ == _ERROR:
            self.error(item.val, item)
        self.i += 1
        return item

    def backup(self) -> None:
        self.i -= 1

    def peek(self) -> _Item:
        item = self.items[min(self.i, len(self.items) - 1)]
        if item.typ == _ERROR:
            self.error(item.val, item)
        return item

    def next_non_space(self) -> _Item:
        item = self.next()
        while item.typ == _SPACE:
            item = self.next()
        return item

    def peek_non_space(self) -> _Item:
        item = self.next_non_space()
        self.backup()
        return item

    def unexpected(self, item: _Item, context: str) -> NoReturn:
        if item.typ == _ERROR:
            self.error(item.val, item)
        self.error(f"unexpected {item} in {context}", item)

    def parse(self) -> tuple[ListNode, dict[str, ListNode]]:
        nodes: list[Node] = []
        while self.peek().typ != _EOF:
            if self.peek().typ == _LEFT:
                saved = self.i
                self.next()
                word = self.peek_non_space()
                if word.typ == _KEYWORD and word.val == "define":
                    self.parse_definition()
                    continue
                self.i = saved
            node, end = self.text_or_action()
            if end is not None:
                self.error(f"unexpected {end}")
            nodes.append(node)
        return ListNode(0, tuple(nodes)), self.defined

    def parse_definition(self) -> None:
        self.next_non_space()  # define
        token = self.next_non_space()
        if token.typ not in (_STRING, _RAW):
            self.unexpected(token, "define clause")
        name = _unquote(token.val)
        if self.next_non_space().typ != _RIGHT:
            self.error("unexpected token in define clause")
        body, end = self.item_list()
        if end != "{{end}}":
            self.error(f"unexpected {end} in end")
        self.defined[name] = body

    def item_list(self) -> tuple[ListNode, str]:
        """Nodes up to {{end}} or {{else}}: (list, which one ended it)."""
        pos = self.peek_non_space().pos
        nodes: list[Node] = []
        while self.peek_non_space().typ != _EOF:
            node, end = self.text_or_action()
            if end is not None:
                return ListNode(pos, tuple(nodes)), end
            nodes.append(node)
        self.error("unexpected EOF", self.peek())

    def text_or_action(self) -> tuple[Node, str | None]:
        token = self.next_non_space()
        if token.typ == _TEXT:
            return TextNode(token.pos, token.val), None
        if token.typ == _LEFT:
            return self.action()
        self.unexpected(token, "input")

    def action(self) -> tuple[Node, str | None]:
        token = self.next_non_space()
        if token.typ == _KEYWORD:
            word = token.val
            if word == "else":
                return self.else_control(token)
            if word == "end":
                after = self.next_non_space()
                if after.typ != _RIGHT:
                    self.unexpected(after, "end")
                return Node(token.pos), "{{end}}"
            if word in ("if", "range", "with"):
                return self.branch(word), None
            if word in ("break", "continue"):
                if self.range_depth == 0:
                    self.error("{{" + word + "}} outside {{range}}")
                after = self.next_non_space()
                if after.typ != _RIGHT:
                    self.unexpected(after, "{{" + word + "}}")
                return LoopControlNode(token.pos, word), None
            if word == "template":
                return self.template_control(token), None
            if word == "block":
                return self.block_control(), None
            if word == "define":
                self.error("unexpected <define> in command")
        self.backup()
        return ActionNode(token.pos, self.pipeline("command", _RIGHT)), None

    def else_control(self, token: _Item) -> tuple[Node, str]:
        peek = self.peek_non_space()
        if peek.typ == _KEYWORD and peek.val in ("if", "with"):
            return Node(peek.pos), "{{else " + peek.val + "}}"
        after = self.next_non_space()
        if after.typ != _RIGHT:
            self.error(f"unexpected {after} in else", after)
        return Node(token.pos), "{{else}}"

    def branch(self, keyword: str) -> BranchNode:
        mark = len(self.vars)
        self.range_depth += keyword == "range"
        pipe = self.pipeline(keyword, _RIGHT)
        body, end = self.item_list()
        self.range_depth -= keyword == "range"
        else_body: ListNode | None = None
        if end in ("{{else if}}", "{{else with}}"):
            inner = self.next_non_space()  # the if/with keyword
            if inner.val != keyword:
                self.error(f"unexpected <{inner.val}> in input", inner)
            # "{{else if b}}" is "{{else}}{{if b}}...{{end}}{{end}}": the inner {{end}} ends both
            nested = self.branch(keyword)
            else_body = ListNode(nested.pos, (nested,))
        elif end == "{{else}}":
            else_body, end = self.item_list()
            if end != "{{end}}":
                self.error(f"expected end; found {end}")
        del self.vars[mark:]
        return BranchNode(pipe.pos, keyword, pipe, body, else_body)

    def block_control(self) -> TemplateNode:
        """{{block "name" pipeline}}body{{end}}: defines `name` as body and runs it here."""
        name_item = self.next_non_space()
        if name_item.typ not in (_STRING, _RAW):
            self.unexpected(name_item, "block clause")
        pipe = self.pipeline("block clause", _RIGHT)
        body, end = self.item_list()
        if end != "{{end}}":
            self.error(f"unexpected {end} in block clause")
        self.defined[_unquote(name_item.val)] = body
        return TemplateNode(name_item.pos, _unquote(name_item.val), pipe)

    def template_control(self, token: _Item) -> TemplateNode:
        name_item = self.next_non_space()
        if name_item.typ not in (_STRING, _RAW):
            self.unexpected(name_item, "template clause")
        pipe = None
        if self.next_non_space().typ != _RIGHT:
            self.backup()
            pipe = self.pipeline("template clause", _RIGHT)
        return TemplateNode(name_item.pos, _unquote(name_item.val), pipe)

    def pipeline(self, context: str, end: int) -> PipeNode:
        token = self.peek_non_space()
        decl: list[VariableNode] = []
        is_assign = False
        while self.peek_non_space().typ == _VAR:  # $x := / $x = / range $i, $v :=
            saved = self.i
            v = self.next_non_space()
            after = self.next_non_space()
            if after.typ in (_DECLARE, _ASSIGN):
                is_assign = after.typ == _ASSIGN
                decl.append(VariableNode(v.pos, (v.val,)))
                self.vars.append(v.val)
                break
            if after.typ == _CHAR and after.val == ",":
                decl.append(VariableNode(v.pos, (v.val,)))
                self.vars.append(v.val)
                if context == "range" and len(decl) < 2:
                    if self.peek_non_space().typ in (_VAR, _RIGHT, _RPAREN):
                        continue
                    self.error("range can only initialize variables", after)
                self.error(f"too many declarations in {context}", after)
            self.i = saved
            break
        cmds: list[CommandNode] = []
        while True:
            token2 = self.next_non_space()
            if token2.typ == end:
                self.check_pipeline(cmds, context, token2)
                return PipeNode(token.pos, tuple(decl), is_assign, tuple(cmds))
            if token2.typ in (_BOOL, _CHARCONST, _DOT, _FIELD, _IDENT, _NUMBER, _NIL, _RAW, _STRING, _VAR, _LPAREN):
                self.backup()
                cmds.append(self.command())
            else:
                self.unexpected(token2, context)

    def check_pipeline(self, cmds: list[CommandNode], context: str, token: _Item) -> None:
        if not cmds:
            self.error(f"missing value for {context}", token)
        for i, cmd in enumerate(cmds[1:], start=1):
            first = cmd.args[0]
            if isinstance(first, BoolNode | DotNode | NilNode | NumberNode | StringNode):
                self.error(f"non executable command in pipeline stage {i + 1}", token)

    def command(self) -> CommandNode:
        pos = self.peek_non_space().pos
        args: list[Node] = []
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                args.append(operand)
            token = self.next()
            if token.typ == _SPACE:
                continue
            if token.typ in (_RIGHT, _RPAREN):
                self.backup()
            elif token.typ != _PIPE:  # a pipe ends the command and is consumed
                self.unexpected(token, "operand")
            break
        if not args:
            self.error("empty command")
        return CommandNode(pos, tuple(args))

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == _FIELD:
            # Go's chain: a node made of several fields is placed at the second one
            chain_pos = self.peek().pos
            fields: list[str] = []
            while self.peek().typ == _FIELD:
                fields.extend(self.next().val[1:].split("."))
            if isinstance(node, FieldNode):
                return FieldNode(chain_pos, node.ident + tuple(fields))
            if isinstance(node, VariableNode):
                return VariableNode(chain_pos, node.ident + tuple(fields))
            if isinstance(node, BoolNode | StringNode | NumberNode | NilNode | DotNode):
                self.error(f"unexpected . after term {sprintf('%q', str(node))}")
            return ChainNode(node.pos, node, tuple(fields))
        return node

    def term(self) -> Node | None:
        token = self.next_non_space()
        typ = token.typ
        if typ == _IDENT:
            if token.val not in self.funcs:
                self.error(f"function {sprintf('%q', token.val)} not defined", token)
            return IdentifierNode(token.pos, token.val)
        if typ == _DOT:
            return DotNode(token.pos)
        if typ == _NIL:
            return NilNode(token.pos)
        if typ == _VAR:
            parts = token.val.split(".")
            if parts[0] not in self.vars:
                self.error(f"undefined variable {sprintf('%q', parts[0])}", token)
            return VariableNode(token.pos, tuple(parts))
        if typ == _FIELD:
            return FieldNode(token.pos, tuple(token.val[1:].split(".")))
        if typ == _BOOL:
            return BoolNode(token.pos, token.val == "true")
        if typ in (_CHARCONST, _NUMBER):
            return self.number(token)
        if typ == _LPAREN:
            pipe = self.pipeline("parenthesized pipeline", _RPAREN)
            return pipe
        if typ in (_STRING, _RAW):
            try:
                text = _unquote(token.val)
            except ValueError:
                self.error(f"invalid syntax: {token.val}")
            return StringNode(token.pos, token.val, text)
        self.backup()
        return None

    def number(self, token: _Item) -> NumberNode:
        text = token.val
        if token.typ == _CHARCONST:
            try:
                value = _unquote_char(text)
            except ValueError:
                self.error(f"malformed character constant: {text}", token)
            return NumberNode(token.pos, text, True, True, value, float(value))
        if text.endswith("i"):
            self.error(f"complex numbers are not supported: {text}", token)
        clean = text.replace("_", "")
        int_value: int | None = None
        try:
            int_value = int(clean, 0)
        except ValueError:
            if clean.lstrip("+-").startswith("0") and clean.lstrip("+-").isdigit():
                try:
                    int_value = int(clean, 8)
                except ValueError:
                    int_value = None
        float_value: float | None = None
        try:
            float_value = float.fromhex(clean) if clean.lower().lstrip("+-").startswith("0x") else float(clean)
        except ValueError:
            float_value = None
        if int_value is None and float_value is None:
            self.error(f"illegal number syntax: {sprintf('%q', text)}", token)
        if int_value is None and float_value is not None and math.isfinite(float_value) and float_value == int(float_value):
            int_value = int(float_value)
        if float_value is None and int_value is not None:
            float_value = float(int_value)
        return NumberNode(token.pos, text, int_value is not None, float_value is not None,
                          0 if int_value is None else int_value, 0.0 if float_value is None else float_value)


def _unquote(text: str) -> str:
    """strconv.Unquote of a "..." or `...` literal."""
    if text.startswith("`"):
        return text[1:-1].replace("\r", "")
    body = text[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        i += 1
        esc = body[i] if i < len(body) else ""
        simple = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
                  "\\": "\\", '"': '"'}
        if esc in simple:
            out.append(simple[esc])
            i += 1
        elif esc == "x":
            out.append(chr(int(body[i + 1 : i + 3], 16)))
            i += 3
        elif esc == "u":
            out.append(chr(int(body[i + 1 : i + 5], 16)))
            i += 5
        elif esc == "U":
            out.append(chr(int(body[i + 1 : i + 9], 16)))
            i += 9
        elif esc in "01234567":
            out.append(chr(int(body[i : i + 3], 8)))
            i += 3
        else:
            raise ValueError(text)
    return "".join(out)


def _unquote_char(text: str) -> int:
    body = text[1:-1]
    if body == "\\'":
        return ord("'")
    value = _unquote('"' + body + '"') if body != '"' else '"'
    if len(value) != 1:
        raise ValueError(text)
    return ord(value)


# ------------------------------------------------------------------------------------------ functions


def _truth(value: Any) -> bool:
    """Go's truth: false, 0, nil, "" and empty collections are false; structs are true."""
    if value is NO_VALUE or value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | tuple | dict):
        return len(value) > 0
    return True


_BASIC = {bool: "bool", int: "int", float: "float", str: "string"}


def _basic_kind(value: Any) -> str | None:
    return _BASIC.get(type(value))


def _eq(a: Any, *rest: Any) -> bool:
    if not rest:
        raise FuncError("missing argument for comparison")
    ka = _basic_kind(a)
    for b in rest:
        kb = _basic_kind(b)
        if ka != kb:
            if ka is not None and kb is not None or (ka is None) != (kb is None) and _valid(a) and _valid(b):
                raise FuncError("incompatible types for comparison")
            truth = _nil(a) and _nil(b)
        elif ka is None:
            if _nil(a) or _nil(b):
                truth = _nil(a) and _nil(b)
            else:
                raise FuncError(f"non-comparable type {sprintf('%s', a)}: {go_type(a)}")
        else:
            truth = a == b
        if truth:
            return True
    return False


def _valid(value: Any) -> bool:
    return value is not NO_VALUE and value is not None


def _nil(value: Any) -> bool:
    return value is NO_VALUE or value is None


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _lt(a: Any, b: Any) -> bool:
    ka, kb = _basic_kind(a), _basic_kind(b)
    if ka is None or kb is None:
        raise FuncError("invalid type for comparison")
    if ka != kb:
        raise FuncError("incompatible types for comparison")
    if ka == "bool":
        raise FuncError("invalid type for comparison")
    return a < b


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


def _gt(a: Any, b: Any) -> bool:
    return not _le(a, b)


def _ge(a: Any, b: Any) -> bool:
    return not _lt(a, b)


def _not(value: Any) -> bool:
    return not _truth(value)


def _index(item: Any, *indices: Any) -> Any:
    if item is NO_VALUE or item is None:
        raise FuncError("index of untyped nil")
    for index in indices:
        if item is None or item is NO_VALUE:
            raise FuncError("index of nil pointer")
        if isinstance(item, list | tuple | str):
            position = _int_index(index, "slice/array")
            size = len(item.encode()) if isinstance(item, str) else len(item)
            if position < 0 or position >= size:
                raise FuncError(f"index out of range: {position}")
            item = item.encode()[position] if isinstance(item, str) else item[position]
        elif isinstance(item, dict):
            if index is NO_VALUE or index is None:
                index = ""
            if not isinstance(index, str):
                raise FuncError(f"value has type {go_type(index)}; should be string")
            if index in item:
                item = item[index]
            else:
                item = "" if isinstance(item, GoMap) and item.elem == "string" else NO_VALUE
        else:
            raise FuncError(f"can't index item of type {go_type(item)}")
    return item


def _int_index(index: Any, what: str) -> int:
    if index is NO_VALUE or index is None:
        raise FuncError(f"cannot index {what} with nil")
    if isinstance(index, bool) or not isinstance(index, int):
        raise FuncError(f"cannot index {what} with type {go_type(index)}")
    return index


def _slice(item: Any, *indices: Any) -> Any:
    if item is NO_VALUE:
        raise FuncError("slice of untyped nil")
    if len(indices) > 3:
        raise FuncError(f"too many slice indexes: {len(indices)}")
    if isinstance(item, str):
        if len(indices) == 3:
            raise FuncError("cannot 3-index slice a string")
        data = item.encode()
        size = cap = len(data)
    elif isinstance(item, list | tuple):
        size = cap = len(item)
    else:
        raise FuncError(f"can't slice item of type {go_type(item)}")
    bounds = [0, size]
    for i, index in enumerate(indices):
        value = _int_index(index, "slice/array")
        if value < 0 or value > cap:
            raise FuncError(f"index out of range: {value}")
        if i < 2:
            bounds[i] = value
    if bounds[0] > bounds[1]:
        raise FuncError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    if isinstance(item, str):
        return item.encode()[bounds[0] : bounds[1]].decode(errors="replace")
    return list(item[bounds[0] : bounds[1]])


def _len(item: Any) -> int:
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, list | tuple | dict):
        return len(item)
    if item is NO_VALUE or item is None:  # Go asks a nil interface for its type
        raise FuncError("reflect: call of reflect.Value.Type on zero Value")
    raise FuncError(f"len of type {go_type(item)}")


def _printable(args: tuple[Any, ...]) -> list[Any]:
    return [None if a is NO_VALUE else a for a in args]


def _print(*args: Any) -> str:
    return sprint(*_printable(args))


def _println(*args: Any) -> str:
    return sprintln(*_printable(args))


def _printf(fmt: str, *args: Any) -> str:
    return sprintf(fmt, *_printable(args))


def _html(*args: Any) -> str:
    text = args[0] if len(args) == 1 and isinstance(args[0], str) else sprint(*_printable(args))
    return (text.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;"))


def _js(*args: Any) -> str:
    """JSEscapeString: quotes and HTML-significant characters escaped, control and unprintable
    characters as \\uXXXX."""
    text = args[0] if len(args) == 1 and isinstance(args[0], str) else sprint(*_printable(args))
    out = []
    for ch in text:
        if ch in _JS_ESCAPES:
            out.append(_JS_ESCAPES[ch])
        elif ord(ch) < 0x20 or (ord(ch) >= 0x80 and not ch.isprintable()):
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


_JS_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}


def _call(fn: Any, *_args: Any) -> Any:
    """Templates here hold no function values, so `call` can only refuse, as Go does for non-functions."""
    if fn is None or fn is NO_VALUE:
        raise FuncError("call of nil")
    raise FuncError(f"non-function of type {go_type(fn)}")


def _urlquery(*args: Any) -> str:
    from urllib.parse import quote_plus

    text = args[0] if len(args) == 1 and isinstance(args[0], str) else sprint(*_printable(args))
    return quote_plus(text, safe="")


def _json(value: Any) -> str:
    try:
        return go_json(value)
    except ValueError as exc:
        raise FuncError(str(exc)) from None


def _split(s: str, sep: str) -> list[str]:
    if sep == "":
        return list(s)
    return s.split(sep)


def _join(items: list[str], sep: str) -> str:
    return sep.join(items)


def _title(s: str) -> str:
    """strings.Title: the first letter of every word upper-cased (words split at non-letters)."""
    out = []
    prev = " "
    for ch in s:
        out.append(ch.upper() if _is_separator(prev) else ch)
        prev = ch
    return "".join(out)


def _is_separator(ch: str) -> bool:
    if ord(ch) < 0x80:
        return not (ch.isalnum() or ch == "_")
    if ch.isalpha() or ch.isdigit():
        return False
    return ch.isspace()


def _map_runes(s: str, case: Callable[[str], str]) -> str:
    """strings.ToUpper/ToLower: rune by rune (Go keeps a rune whose case is two runes, as ß)."""
    out = []
    for ch in s:
        mapped = case(ch)
        out.append(mapped if len(mapped) == 1 else ch)
    return "".join(out)


def _pad_func(source: str, prefix: int, suffix: int) -> str:
    if source == "":
        return source
    if prefix < 0 or suffix < 0:
        raise FuncError("strings: negative Repeat count")
    return " " * prefix + source + " " * suffix


def _truncate(source: str, length: int) -> str:
    data = source.encode()
    if len(data) < length:
        return source
    if length < 0:
        raise FuncError(f"runtime error: slice bounds out of range [:{length}]")
    return data[:length].decode(errors="replace")


def _identity(value: str, *_ignored: Any) -> str:
    return value


BUILTINS: dict[str, GoFunc] = {
    "and": GoFunc(lambda *a: a, ("any",), "any"),  # evaluated lazily by the executor
    "or": GoFunc(lambda *a: a, ("any",), "any"),
    "not": GoFunc(_not, ("any",)),
    "eq": GoFunc(_eq, ("any",), "any"),
    "ne": GoFunc(_ne, ("any", "any")),
    "lt": GoFunc(_lt, ("any", "any")),
    "le": GoFunc(_le, ("any", "any")),
    "gt": GoFunc(_gt, ("any", "any")),
    "ge": GoFunc(_ge, ("any", "any")),
    "index": GoFunc(_index, ("any",), "any"),
    "slice": GoFunc(_slice, ("any",), "any"),
    "len": GoFunc(_len, ("any",)),
    "print": GoFunc(_print, (), "any"),
    "printf": GoFunc(_printf, ("string",), "any"),
    "println": GoFunc(_println, (), "any"),
    "html": GoFunc(_html, (), "any"),
    "js": GoFunc(_js, (), "any"),
    "call": GoFunc(_call, ("any",), "any"),
    "urlquery": GoFunc(_urlquery, (), "any"),
}

# docker/cli's templates.basicFunctions (20.10): json, split, join, title, lower, upper, pad, truncate
DOCKER_FUNCS: dict[str, GoFunc] = {
    "json": GoFunc(_json, ("any",)),
    "split": GoFunc(_split, ("string", "string")),
    "join": GoFunc(_join, ("[]string", "string")),
    "title": GoFunc(_title, ("string",)),
    "lower": GoFunc(lambda s: _map_runes(s, str.lower), ("string",)),
    "upper": GoFunc(lambda s: _map_runes(s, str.upper), ("string",)),
    "pad": GoFunc(_pad_func, ("string", "int", "int")),
    "truncate": GoFunc(_truncate, ("string", "int")),
}

# docker/cli's templates.HeaderFunctions: a table's header is the same template run over the
# column titles, with these in place of the functions that would change a title.
HEADER_FUNCS: dict[str, GoFunc] = {
    "json": GoFunc(_identity, ("string",)),
    "split": GoFunc(_identity, ("string", "string")),
    "join": GoFunc(_identity, ("string", "string")),
    "title": GoFunc(_identity, ("string",)),
    "lower": GoFunc(_identity, ("string",)),
    "upper": GoFunc(_identity, ("string",)),
    "truncate": GoFunc(_identity, ("string", "int")),
}


# ------------------------------------------------------------------------------------------ executor


class _Break(Exception):
    """{{break}}: leaves the innermost range."""


class _Continue(Exception):
    """{{continue}}: on to the range's next element."""


class _Abort(Exception):
    """Carries an ExecError's message out of the walk."""


@dataclass
class _State:
    template: Template
    funcs: dict[str, GoFunc]
    missing_error: bool
    inspect: bool
    out: list[str] = field(default_factory=list)
    vars: list[tuple[str, Any]] = field(default_factory=list)
    node: Node | None = None

    def errorf(self, message: str) -> NoReturn:
        name = self.template.name
        if self.node is None:
            raise _Abort(f"template: {name}: {message}")
        text = self.template.text[: self.node.pos]
        line = text.count("\n") + 1
        column = self.node.pos - (text.rfind("\n") + 1) if "\n" in text else self.node.pos
        context = str(self.node)
        raise _Abort(f"template: {name}:{line}:{column}: executing {sprintf('%q', name)} at <{context}>: {message}")

    def var(self, name: str) -> Any:
        for var_name, value in reversed(self.vars):
            if var_name == name:
                return value
        self.errorf(f"undefined variable: {name}")

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        self.errorf(f"undefined variable: {name}")

    # -- walking

    def walk(self, dot: Any, node: Node) -> None:
        self.node = node
        if isinstance(node, TextNode):
            self.out.append(node.text)
        elif isinstance(node, ActionNode):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.node = node
                self.out.append("<no value>" if value is NO_VALUE else sprint_value(value))
        elif isinstance(node, ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, BranchNode):
            if node.keyword == "range":
                self.walk_range(dot, node)
            else:
                self.walk_if_or_with(dot, node)
        elif isinstance(node, LoopControlNode):
            raise _Break() if node.keyword == "break" else _Continue()
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)

    def walk_if_or_with(self, dot: Any, node: BranchNode) -> None:
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if _truth(value):
                self.walk(value if node.keyword == "with" else dot, node.body)
            elif node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: Any, node: BranchNode) -> None:
        self.node = node
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if isinstance(value, list | tuple):
                pairs: list[tuple[Any, Any]] = list(enumerate(value))
            elif isinstance(value, GoMap) or isinstance(value, dict) and self.inspect:
                pairs = sorted(value.items(), key=lambda kv: kv[0])
            elif value is NO_VALUE or value is None:
                pairs = []
            elif isinstance(value, int) and not isinstance(value, bool):
                pairs = [(i, i) for i in range(value)]
            else:
                self.errorf(f"range can't iterate over {sprint_value(value)}")
                return
            inner = len(self.vars)
            for key, elem in pairs:
                decl = node.pipe.decl
                if decl:  # Go's setTopVar: the last variable is the element, the one before the key
                    self.vars[inner - 1] = (decl[-1].ident[0], elem)
                    if len(decl) > 1:
                        self.vars[inner - 2] = (decl[0].ident[0], key)
                try:
                    self.walk(elem, node.body)
                except _Continue:
                    pass
                except _Break:
                    break
                finally:
                    del self.vars[inner:]
            else:
                if not pairs and node.else_body is not None:
                    self.walk(dot, node.else_body)
        finally:
            del self.vars[mark:]

    def walk_template(self, dot: Any, node: TemplateNode) -> None:
        body = self.template.defined.get(node.name)
        if body is None:
            self.errorf(f"template {sprintf('%q', node.name)} not defined")
            return
        value = self.eval_pipeline(dot, node.pipe) if node.pipe else NO_VALUE
        saved = self.vars
        self.vars = [("$", value)]  # no dynamic scoping: a template sees only its own $
        try:
            self.walk(value, body)
        finally:
            self.vars = saved

    # -- evaluation

    def eval_pipeline(self, dot: Any, pipe: PipeNode) -> Any:
        self.node = pipe
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        for variable in pipe.decl:
            if pipe.is_assign:
                self.set_var(variable.ident[0], value)
            else:
                self.vars.append((variable.ident[0], value))
        return value

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            self.node = first
            return self.eval_field_chain(dot, dot, first, first.ident, cmd.args, final)
        if isinstance(first, ChainNode):
            self.node = first
            receiver = self.eval_arg(dot, "any", first.node)
            return self.eval_field_chain(dot, receiver, first, first.fields, cmd.args, final)
        if isinstance(first, IdentifierNode):
            self.node = first
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            self.node = first
            value = self.var(first.ident[0])
            if len(first.ident) == 1:
                self.not_a_function(cmd.args, final)
                return value
            return self.eval_field_chain(dot, value, first, first.ident[1:], cmd.args, final)
        self.node = first
        self.not_a_function(cmd.args, final)
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            self.errorf("nil is not a command")
        if isinstance(first, NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, StringNode):
            return first.text
        self.errorf(f"can't evaluate command {sprintf('%q', str(first))}")

    def not_a_function(self, args: tuple[Node, ...], final: Any) -> None:
        if len(args) > 1 or final is not _MISSING:
            self.errorf(f"can't give argument to non-function {args[0]}")

    def ideal_constant(self, node: NumberNode) -> Any:
        self.node = node
        text = node.text
        if node.is_float and not text.lower().startswith(("0x", "-0x", "+0x")) and not text.startswith("'") and any(
            c in text for c in ".eEpP"
        ):
            return node.float_value
        if node.is_int:
            if not -(2**63) <= node.int_value < 2**63:
                self.errorf(f"{text} overflows int")
            return node.int_value
        return NO_VALUE

    def eval_field_chain(
        self, dot: Any, receiver: Any, node: Node, ident: tuple[str, ...], args: tuple[Node, ...], final: Any
    ) -> Any:
        for name in ident[:-1]:
            receiver = self.eval_field(dot, name, node, (), _MISSING, receiver)
        return self.eval_field(dot, ident[-1], node, args, final, receiver)

    def eval_field(self, dot: Any, name: str, node: Node, args: tuple[Node, ...], final: Any, receiver: Any) -> Any:
        if receiver is NO_VALUE:
            if self.missing_error:
                self.errorf(f"nil data; no entry for key {sprintf('%q', name)}")
            return NO_VALUE
        if receiver is None:
            self.errorf(f"nil pointer evaluating interface {{}}.{name}")
        has_args = len(args) > 1 or final is not _MISSING
        if isinstance(receiver, TemplateData):
            method = receiver.template_method(name)
            if method is not None:
                return self.eval_call(dot, method, node, name, args, final)
            value = receiver.template_field(name)
            if value is not NO_VALUE:
                if has_args:
                    self.errorf(f"{name} has arguments but cannot be invoked as function")
                return value
            self.errorf(f"can't evaluate field {name} in type {receiver.go_type}")
        if isinstance(receiver, GoMap):
            method = receiver.template_method(name)
            if method is not None:
                return self.eval_call(dot, method, node, name, args, final)
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name]
            if self.missing_error:
                self.errorf(f"map has no entry for key {sprintf('%q', name)}")
            return NO_VALUE
        if isinstance(receiver, dict):  # a struct: an unknown field is an error
            if name in receiver:
                if has_args:
                    self.errorf(f"{name} has arguments but cannot be invoked as function")
                return receiver[name]
            if self.inspect:  # docker inspect's second try, over the JSON as maps
                self.errorf(f"map has no entry for key {sprintf('%q', name)}")
            self.errorf(f"can't evaluate field {name} in type {go_type(receiver)}")
        self.errorf(f"can't evaluate field {name} in type {go_type(receiver)}")

    def eval_function(self, dot: Any, node: IdentifierNode, cmd: Node, args: tuple[Node, ...], final: Any) -> Any:
        self.node = node
        func = self.funcs.get(node.name)
        if func is None:
            self.errorf(f"{sprintf('%q', node.name)} is not a defined function")
        if func is BUILTINS.get(node.name) and node.name in ("and", "or"):
            return self.eval_logic(dot, node, args, final)
        return self.eval_call(dot, func, cmd, node.name, args, final)

    def eval_logic(self, dot: Any, node: IdentifierNode, args: tuple[Node, ...], final: Any) -> Any:
        """and/or evaluate their arguments only as far as needed (Go 1.18)."""
        operands = list(args[1:])
        count = len(operands) + (final is not _MISSING)
        if count < 1:
            self.errorf(f"wrong number of args for {node.name}: want at least 1 got 0")
        want = node.name == "or"
        value: Any = NO_VALUE
        for operand in operands:
            value = self.eval_arg(dot, "any", operand)
            if _truth(value) == want:
                return value
        if final is not _MISSING:
            value = final
        return value

    def eval_call(self, dot: Any, func: GoFunc, node: Node, name: str, args: tuple[Node, ...], final: Any) -> Any:
        arg_nodes = args[1:] if args else ()
        count = len(arg_nodes) + (final is not _MISSING)
        fixed = len(func.params)
        if func.variadic is not None:
            if count < fixed:
                self.errorf(f"wrong number of args for {name}: want at least {fixed} got {len(arg_nodes)}")
        elif count != fixed:
            self.errorf(f"wrong number of args for {name}: want {fixed} got {count}")
        values = []
        for i, arg in enumerate(arg_nodes):
            typ = func.params[i] if i < fixed else func.variadic or "any"
            values.append(self.eval_arg(dot, typ, arg))
        if final is not _MISSING:
            i = len(arg_nodes)
            typ = func.params[i] if i < fixed else func.variadic or "any"
            values.append(self.validate_type(final, typ))
        try:
            return func.fn(*values)
        except FuncError as exc:
            self.node = node
            self.errorf(f"error calling {name}: {exc}")

    def validate_type(self, value: Any, typ: str) -> Any:
        if value is NO_VALUE:
            if typ == "any":
                return NO_VALUE
            if typ == "[]string":
                return []
            self.errorf(f"invalid value; expected {typ}")
        if typ == "any":
            return value
        ok = {
            "string": lambda v: isinstance(v, str),
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "[]string": lambda v: isinstance(v, list | tuple) and all(isinstance(x, str) for x in v),
        }[typ](value)
        if not ok:
            self.errorf(f"wrong type for value; expected {typ}; got {go_type(value)}")
        return value

    def eval_arg(self, dot: Any, typ: str, node: Node) -> Any:
        self.node = node
        if isinstance(node, DotNode):
            return self.validate_type(dot, typ)
        if isinstance(node, NilNode):
            if typ == "any":
                return None
            if typ == "[]string":  # Go: the zero value of the slice type
                return []
            self.errorf(f"cannot assign nil to {typ}")
        if isinstance(node, FieldNode):
            return self.validate_type(self.eval_field_chain(dot, dot, node, node.ident, (node,), _MISSING), typ)
        if isinstance(node, VariableNode):
            value = self.var(node.ident[0])
            if len(node.ident) > 1:
                value = self.eval_field_chain(dot, value, node, node.ident[1:], (), _MISSING)
            return self.validate_type(value, typ)
        if isinstance(node, PipeNode):
            return self.validate_type(self.eval_pipeline(dot, node), typ)
        if isinstance(node, IdentifierNode):
            return self.validate_type(self.eval_function(dot, node, node, (), _MISSING), typ)
        if isinstance(node, ChainNode):
            receiver = self.eval_arg(dot, "any", node.node)
            self.node = node
            return self.validate_type(self.eval_field_chain(dot, receiver, node, node.fields, (), _MISSING), typ)
        if typ == "any":
            if isinstance(node, BoolNode):
                return node.value
            if isinstance(node, NumberNode):
                return self.ideal_constant(node)
            if isinstance(node, StringNode):
                return node.text
        if typ == "string":
            if isinstance(node, StringNode):
                return node.text
            self.errorf(f"expected string; found {node}")
        if typ == "int":
            if isinstance(node, NumberNode) and node.is_int:
                return node.int_value
            self.errorf(f"expected integer; found {node}")
        self.errorf(f"can't handle {node} for arg of type {typ}")


_MISSING = object()  # no value from a previous pipeline stage (Go's missingVal)


# ------------------------------------------------------------------------------------------ API


@dataclass(frozen=True)
class Template:
    """A parsed template: `execute` it against data as many times as needed."""

    name: str
    text: str
    root: ListNode
    defined: dict[str, ListNode]
    funcs: dict[str, GoFunc]

    def execute(
        self, data: Any, *, missing_key_error: bool = False, inspect: bool = False, funcs: dict[str, GoFunc] | None = None
    ) -> str:
        """The template's output for `data`. `missing_key_error` is Go's Option("missingkey=error");
        `inspect`: an unknown field of a struct (a dict) fails as docker inspect's second try over the
        raw JSON does ("map has no entry for key"); `funcs` replaces functions by name (HEADER_FUNCS)."""
        state = _State(self, {**self.funcs, **(funcs or {})}, missing_key_error, inspect)
        state.vars.append(("$", data))
        try:
            state.walk(data, self.root)
        except _Abort as exc:
            raise ExecError(str(exc), "".join(state.out)) from None
        except RecursionError:  # a template that calls itself: Go stops it at its depth limit
            message = f"template: {self.name}: exceeded maximum template depth (100000)"
            raise ExecError(message, "".join(state.out)) from None
        return "".join(state.out)


def parse(text: str, name: str = "", funcs: dict[str, GoFunc] | None = None) -> Template:
    """Parse `text` with Go's builtins, Docker's functions and `funcs`; ParseError if Go would refuse it."""
    all_funcs = {**BUILTINS, **DOCKER_FUNCS, **(funcs or {})}
    parser = _Parser(name, text, all_funcs)
    try:
        root, defined = parser.parse()
    except RecursionError:
        raise ParseError(f"template: {name}: too deeply nested") from None
    return Template(name, text, root, defined, all_funcs)
