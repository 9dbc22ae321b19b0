"""Running a parsed template against data: Go's rules for fields, methods, pipelines, `range`,
`with`, variables and errors (`template: NAME:LINE:COL: executing ... MSG`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.util.gofmt import NO_VALUE, GoMap, go_type, sprint_value, sprintf
from engine.util.gotemplate.funcs import BUILTINS, _truth
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
from engine.util.gotemplate.types import FuncError, GoFunc, TemplateData

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from engine.util.gotemplate import Template  # the API module, which imports this one


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


