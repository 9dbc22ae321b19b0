"""The values every part of the template package shares: its errors (Go's messages), `GoFunc`
(a function a template may call) and `TemplateData` (typed rows with Docker's computed fields).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.util.gofmt import NO_VALUE, sprint_value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any


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


