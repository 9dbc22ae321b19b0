"""Go's text/template parser: items into the syntax tree (`nodes`), rejecting what Go's parser
rejects with its message (`template: NAME:LINE: MSG`).
"""

from __future__ import annotations

import math

from engine.util.gofmt import sprintf
from engine.util.gotemplate.lex import (
    _ASSIGN,
    _BOOL,
    _CHAR,
    _CHARCONST,
    _DECLARE,
    _DOT,
    _EOF,
    _ERROR,
    _FIELD,
    _IDENT,
    _KEYWORD,
    _LEFT,
    _LPAREN,
    _NIL,
    _NUMBER,
    _PIPE,
    _RAW,
    _RIGHT,
    _RPAREN,
    _SPACE,
    _STRING,
    _TEXT,
    _VAR,
    _Item,
    _Lexer,
)
from engine.util.gotemplate.nodes import (
    ActionNode,
    BoolNode,
    BranchNode,
    ChainNode,
    CommandNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    ListNode,
    LoopControlNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    StringNode,
    TemplateNode,
    TextNode,
    VariableNode,
)
from engine.util.gotemplate.types import GoFunc, ParseError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import NoReturn


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


