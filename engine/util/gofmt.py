"""Go's fmt printing rules over Python values, as Docker's `--format` templates print them.

Owns the mapping of Python values onto Go's types and how Go prints each: `%v` of a map is
`map[a:1 b:2]` (keys sorted), of a slice `[a b]`, of a struct `{v1 v2}`, nil is `<nil>`, floats use
Go's shortest `%g` (`1e+06`); `Sprintf` takes Go's verbs, flags, width and precision and reports a
bad verb, a missing or an extra argument inline as Go does (`%!d(string=a)`, `%!d(MISSING)`,
`%!(EXTRA int=2)`). `go_json` encodes like Go's encoding/json with HTML escaping off (Docker's `json`).

The value model (the invariant every caller keeps): str is Go's string, bool its bool, int its int,
float its float64, None a nil interface or pointer, list a slice, `GoMap` a Go map, any other dict a
Go struct (its keys are the fields, in declaration order), NO_VALUE the invalid value a missing map
key yields (printed `<no value>` by templates). Only the standard library is imported.
"""

from __future__ import annotations

import math

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any


class _NoValue:
    """Go's invalid reflect.Value: what a missing map key or an unset variable yields."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE = _NoValue()


class GoMap(dict):
    """A Go map (a dict is a struct otherwise). `elem` is the Go type of its values: "string" for
    Docker's map[string]string (labels, options: a missing key indexes to ""), "interface {}" else."""

    elem: str = "interface {}"
    is_nil: bool = False  # a nil map: empty, printed map[], encoded null

    def __init__(self, *args: Any, elem: str = "interface {}", is_nil: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.elem = elem
        self.is_nil = is_nil

    def template_method(self, name: str) -> Any:  # noqa: ARG002
        """A method of the map's type a template may call (`.Label "k"` of Docker's header map)."""
        return None


class NilSlice(list):
    """A nil slice of a typed field (JSON null where Docker's type is a slice): empty, printed `[]`,
    encoded `null`."""


class RawJSON(str):
    """JSON text a type's own MarshalJSON wrote (docker's formatter contexts: encoding/json's
    Marshal, which escapes <, > and & as \\u003c, \\u003e, \\u0026): `json` writes it as it is."""


def go_type(value: Any) -> str:
    """The Go type name Go's messages give a value of this Python type."""
    if value is None:
        return "interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, GoMap):
        return f"map[string]{value.elem}"
    if isinstance(value, dict):
        return "struct"
    if isinstance(value, list | tuple):
        return "[]string" if value and all(isinstance(v, str) for v in value) else "[]interface {}"
    go_name = getattr(value, "go_type", None)  # a template's typed object names its Go type
    return go_name if isinstance(go_name, str) else type(value).__name__


# ------------------------------------------------------------------------------------------ numbers


def format_float(f: float, verb: str = "g", prec: int = -1) -> str:
    """strconv.FormatFloat(f, verb, prec, 64) for verbs e, E, f, F, g, G (prec -1: shortest)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if verb in "fF":
        if prec < 0:
            digits, exp = _shortest(f)
            prec = max(len(digits) - exp, 0)
        return f"{f:.{prec}f}"
    if verb in "eE":
        if prec < 0:
            digits, _ = _shortest(f)
            prec = max(len(digits) - 1, 0)
        return _go_exponent(f"{f:.{prec}e}", verb)
    # g / G: %e when the exponent is < -4 or >= the precision (6 when shortest), %f otherwise
    if prec < 0:
        digits, exp = _shortest(f)
        eprec = 6
        ndigits = len(digits)
    else:
        prec = prec or 1
        digits, exp = _rounded(f, prec)
        eprec, ndigits = prec, len(digits)
        if eprec > ndigits and ndigits >= exp:
            eprec = ndigits
    x = exp - 1
    sign = "-" if math.copysign(1, f) < 0 else ""
    if x < -4 or x >= eprec:
        mantissa = digits[0] + ("." + digits[1:] if ndigits > 1 else "")
        return sign + mantissa + ("E" if verb == "G" else "e") + ("-" if x < 0 else "+") + f"{abs(x):02d}"
    if x < 0:
        return sign + "0." + "0" * (-x - 1) + digits
    if ndigits <= x + 1:
        return sign + digits + "0" * (x + 1 - ndigits)
    return sign + digits[: x + 1] + "." + digits[x + 1 :]


def _shortest(f: float) -> tuple[str, int]:
    """The shortest decimal digits that round-trip, and the decimal point's position (0.d1d2... x 10^exp)."""
    text = repr(abs(f))
    mantissa, _, exponent = text.partition("e")
    whole, _, frac = mantissa.partition(".")
    if frac == "0":
        frac = ""
    digits = (whole + frac).lstrip("0")
    exp = len(whole) + int(exponent or 0)
    if whole == "0":
        stripped = frac.lstrip("0")
        exp = -(len(frac) - len(stripped)) + int(exponent or 0)
        digits = stripped
    digits = digits.rstrip("0") or "0"
    if digits == "0":
        return "0", 1
    return digits, exp


def _rounded(f: float, prec: int) -> tuple[str, int]:
    text = f"{abs(f):.{prec - 1}e}"
    mantissa, _, exponent = text.partition("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    return digits, int(exponent) + 1


def _go_exponent(text: str, verb: str) -> str:
    """Python's 1.5e+06 is Go's 1.5e+06 too; make the exponent two digits at least and the case right."""
    mantissa, _, exponent = text.partition("e")
    sign, digits = exponent[0], exponent[1:].lstrip("0")
    return mantissa + ("E" if verb == "E" else "e") + sign + digits.rjust(2, "0")


# ------------------------------------------------------------------------------------------ strings


def go_quote(s: str, ascii_only: bool = False) -> str:
    """strconv.Quote (QuoteToASCII with `ascii_only`): Go's double-quoted string, printable runes
    kept, the rest escaped."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch == " " or (ch.isprintable() and code != 0xFFFD and not (ascii_only and code >= 0x80)):
            out.append(ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote_rune(code: int) -> str:
    ch = chr(code)
    if ch == "'":
        return "'\\''"
    if ch == '"':
        return "'\"'"
    return "'" + go_quote(ch)[1:-1] + "'"


# ------------------------------------------------------------------------------------------ %v


def sprint_value(value: Any) -> str:
    """fmt.Sprint of one value: Go's %v."""
    return _format(value, _Spec("v"), 0)


class _Spec:
    """One parsed verb: flags, width, precision."""

    __slots__ = ("verb", "minus", "plus", "plus_v", "sharp", "space", "zero", "width", "prec")

    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.minus = self.plus = self.plus_v = self.sharp = self.space = self.zero = False
        self.width: int | None = None
        self.prec: int | None = None


def _format(value: Any, spec: _Spec, depth: int) -> str:
    verb = spec.verb
    if verb == "T":
        return _pad("<nil>" if value is None or value is NO_VALUE else go_type(value), spec)
    if value is None or value is NO_VALUE:
        return _pad("<nil>", spec) if verb == "v" else f"%!{verb}(<nil>)"
    if isinstance(value, bool):
        if verb in "vt":
            return _pad("true" if value else "false", spec)
        return _bad_verb(value, spec)
    if isinstance(value, int):
        return _format_int(value, spec)
    if isinstance(value, float):
        return _format_float(value, spec)
    if isinstance(value, str):
        return _format_str(value, spec)
    if isinstance(value, list | tuple):
        inner = " ".join(_format(v, spec, depth + 1) for v in value)
        return "[" + inner + "]"
    if isinstance(value, GoMap):
        items = " ".join(
            f"{_format(k, spec, depth + 1)}:{_format(v, spec, depth + 1)}"
            for k, v in sorted(value.items(), key=lambda kv: _sort_key(kv[0]))
        )
        return "map[" + items + "]"
    if isinstance(value, dict):
        if spec.plus_v:
            inner = " ".join(f"{k}:{_format(v, spec, depth + 1)}" for k, v in value.items())
        else:
            inner = " ".join(_format(v, spec, depth + 1) for v in value.values())
        return "{" + inner + "}"
    return _format_str(str(value), spec)


def _sort_key(key: Any) -> tuple[int, Any]:
    """Go's fmtsort order: numbers by value, strings lexically (by bytes)."""
    if isinstance(key, bool):
        return (0, int(key))
    if isinstance(key, int | float):
        return (1, key)
    return (2, str(key).encode())


def _pad(text: str, spec: _Spec, zeros: bool = False) -> str:
    """Pad to the width: on the right with -, else on the left (with zeros if `zeros` and the 0
    flag: Go zero-pads strings too; numbers place their zeros after the sign themselves)."""
    if spec.width is None or len(text) >= spec.width:
        return text
    fill = spec.width - len(text)
    if spec.minus:
        return text + " " * fill
    return ("0" if zeros and spec.zero else " ") * fill + text


def _pad_number(sign: str, digits: str, spec: _Spec) -> str:
    """Pad a number: zeros after the sign with the 0 flag (not with -), spaces otherwise."""
    if spec.width is not None and spec.zero and not spec.minus and len(sign) + len(digits) < spec.width:
        digits = digits.rjust(spec.width - len(sign), "0")
    return _pad(sign + digits, spec)


def _sign(negative: bool, spec: _Spec) -> str:
    if negative:
        return "-"
    if spec.plus:
        return "+"
    return " " if spec.space else ""


def _format_int(n: int, spec: _Spec) -> str:
    verb = spec.verb
    if verb == "c":
        return _pad(chr(n) if 0 <= n <= 0x10FFFF else "\ufffd", spec)
    if verb == "q":
        return _pad(go_quote_rune(n) if 0 <= n <= 0x10FFFF else "'\ufffd'", spec)
    if verb == "U":
        text = f"U+{n:04X}"
        return _pad(text + (f" '{chr(n)}'" if spec.sharp and chr(n).isprintable() else ""), spec)
    bases = {"v": 10, "d": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}
    if verb not in bases:
        return _bad_verb(n, spec)
    magnitude = abs(n)
    digits = {10: str, 2: lambda m: format(m, "b"), 8: lambda m: format(m, "o"),
              16: (lambda m: format(m, "x")) if verb != "X" else (lambda m: format(m, "X"))}[bases[verb]](magnitude)
    if spec.prec is not None:
        digits = "" if spec.prec == 0 and magnitude == 0 else digits.rjust(spec.prec, "0")
    prefix = ""
    if verb == "O":
        prefix = "0o"
    elif spec.sharp:
        prefix = {"b": "0b", "o": "0", "x": "0x", "X": "0X"}.get(verb, "")
        if verb == "o" and digits.startswith("0"):
            prefix = ""
    sign = _sign(n < 0, spec)
    if spec.prec is not None:  # precision turns the 0 flag off
        return _pad(sign + prefix + digits, spec)
    return _pad_number(sign + prefix, digits, spec)


def _format_float(f: float, spec: _Spec) -> str:
    verb = spec.verb
    if verb not in "veEfFgG":
        return _bad_verb(f, spec)
    if verb == "v":
        text = format_float(abs(f), "g", -1 if spec.prec is None else spec.prec)
    else:
        prec = spec.prec if spec.prec is not None else (-1 if verb in "gG" else 6)
        text = format_float(abs(f), verb, prec)
    negative = math.copysign(1, f) < 0 and not math.isnan(f)
    sign = _sign(negative, spec)
    if math.isinf(f) or math.isnan(f):
        text = text.lstrip("+-")
        if math.isnan(f):
            sign = "+" if spec.plus else (" " if spec.space else "")
        return _pad(sign + text, spec)
    return _pad_number(sign, text, spec)


def _format_str(s: str, spec: _Spec) -> str:
    verb = spec.verb
    if verb == "v" and spec.sharp:  # %#v: Go syntax
        return _pad(go_quote(s), spec, zeros=True)
    if verb in "vs":
        if spec.prec is not None:
            s = s[: spec.prec]
        return _pad(s, spec, zeros=True)
    if verb == "q":
        if spec.prec is not None:
            s = s[: spec.prec]
        if spec.sharp and "`" not in s and all(c.isprintable() or c == "\t" for c in s):
            return _pad("`" + s + "`", spec, zeros=True)
        return _pad(go_quote(s, ascii_only=spec.plus), spec, zeros=True)
    if verb in "xX":
        data = s.encode()
        if spec.prec is not None:
            data = data[: spec.prec]
        text = data.hex() if verb == "x" else data.hex().upper()
        if spec.space:
            sep_prefix = ("0x" if verb == "x" else "0X") if spec.sharp else ""
            text = " ".join(sep_prefix + text[i : i + 2] for i in range(0, len(text), 2))
        elif spec.sharp and text:
            text = ("0x" if verb == "x" else "0X") + text
        return _pad(text, spec)
    return _bad_verb(s, spec)


def _bad_verb(value: Any, spec: _Spec) -> str:
    return f"%!{spec.verb}({go_type(value)}={sprint_value(value)})"


# ------------------------------------------------------------------------------------------ Sprint*


def sprint(*args: Any) -> str:
    """fmt.Sprint: operands' %v, a space between two operands when neither is a string."""
    out = []
    prev_string = False
    for i, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(sprint_value(arg))
        prev_string = is_string
    return "".join(out)


def sprintln(*args: Any) -> str:
    """fmt.Sprintln: operands' %v separated by spaces, and a newline."""
    return " ".join(sprint_value(a) for a in args) + "\n"


def sprintf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf with Go's verbs, flags (+-# 0), width and precision (numbers or *)."""
    out: list[str] = []
    argi = 0
    i = 0
    n = len(fmt)
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        if i >= n:
            out.append("%!(NOVERB)")
            break
        spec = _Spec("v")
        while i < n and fmt[i] in "+-# 0":
            flag = fmt[i]
            spec.plus |= flag == "+"
            spec.minus |= flag == "-"
            spec.sharp |= flag == "#"
            spec.space |= flag == " "
            spec.zero |= flag == "0"
            i += 1
        if i < n and fmt[i] == "*":
            i += 1
            if argi < len(args) and isinstance(args[argi], int) and not isinstance(args[argi], bool):
                spec.width = args[argi]
                if spec.width < 0:
                    spec.minus, spec.width = True, -spec.width
            else:
                out.append("%!(BADWIDTH)")
            argi += 1
        else:
            start = i
            while i < n and fmt[i].isdigit():
                i += 1
            if i > start:
                spec.width = int(fmt[start:i])
        if i < n and fmt[i] == ".":
            i += 1
            if i < n and fmt[i] == "*":
                i += 1
                if argi < len(args) and isinstance(args[argi], int) and not isinstance(args[argi], bool):
                    spec.prec = max(args[argi], 0)
                else:
                    out.append("%!(BADPREC)")
                argi += 1
            else:
                start = i
                while i < n and fmt[i].isdigit():
                    i += 1
                spec.prec = int(fmt[start:i]) if i > start else 0
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        spec.verb = verb
        if spec.minus:
            spec.zero = False
        if verb == "v" and spec.plus:  # %+v names struct fields; numbers inside get no sign
            spec.plus, spec.plus_v = False, True
        out.append(_format(args[argi], spec, 0))
        argi += 1
    if argi < len(args):
        extra = ", ".join(
            "<nil>" if a is None else f"{go_type(a)}={sprint_value(a)}" for a in args[argi:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


# ------------------------------------------------------------------------------------------ JSON


def go_json(value: Any) -> str:
    """encoding/json as Docker's `json` function uses it: structs in field order, maps by sorted
    key, HTML characters left alone, floats as Go writes them."""
    parts: list[str] = []
    _json_into(value, parts)
    return "".join(parts)


def _json_into(value: Any, out: list[str]) -> None:
    if value is None or value is NO_VALUE or isinstance(value, NilSlice) or isinstance(value, GoMap) and value.is_nil:
        out.append("null")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_json_float(value))
    elif isinstance(value, RawJSON):
        out.append(value)
    elif isinstance(value, str):
        out.append(_json_string(value))
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _json_into(v, out)
        out.append("]")
    elif isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0])) if isinstance(value, GoMap) else value.items()
        out.append("{")
        for i, (k, v) in enumerate(items):
            if i:
                out.append(",")
            out.append(_json_string(str(k)))
            out.append(":")
            _json_into(v, out)
        out.append("}")
    else:
        to_json = getattr(type(value), "template_json", None)
        _json_into(to_json(value) if callable(to_json) else str(value), out)


def _json_float(f: float) -> str:
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"json: unsupported value: {format_float(f)}")
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        text = format_float(f, "e", -1)
        mantissa, _, exponent = text.partition("e")
        sign, digits = exponent[0], exponent[1:].lstrip("0") or "0"
        return f"{mantissa}e{sign}{digits}"
    return format_float(f, "f", -1)


def _json_string(s: str) -> str:
    """Go's string encoding: \\n \\r \\t and \\" \\\\ escaped, other controls and U+2028/9 as \\u00XX."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in _JSON_ESCAPES:
            out.append(_JSON_ESCAPES[ch])
        elif code < 0x20 or code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
