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

The package follows Go's own layout: `lex` (items), `parse` into `nodes`, `funcs` (the functions a
template may call), `execute`; `types` holds what they share; this module is the API.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.util.gotemplate.execute import _Abort, _State
from engine.util.gotemplate.funcs import BUILTINS, DOCKER_FUNCS, HEADER_FUNCS
from engine.util.gotemplate.nodes import ListNode
from engine.util.gotemplate.parse import _Parser
from engine.util.gotemplate.types import ExecError, FuncError, GoFunc, ParseError, TemplateData, TemplateError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "BUILTINS", "DOCKER_FUNCS", "HEADER_FUNCS", "ExecError", "FuncError", "GoFunc", "ParseError", "Template",
    "TemplateData", "TemplateError", "parse",
]


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
