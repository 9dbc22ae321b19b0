"""The functions a template may call: Go's builtins (`and`, `eq`, `index`, `printf`, ...) and
Docker's (`json`, `join`, `split`, `upper`, `lower`, `title`, `truncate`, `pad`), with Go's semantics.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.util.gofmt import NO_VALUE, GoMap, go_json, go_type, sprint, sprintf, sprintln
from engine.util.gotemplate.types import FuncError, GoFunc

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any


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


