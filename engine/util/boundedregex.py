"""A user's regular expression matched with a bound on its cost (Docker's `name` filter and the like).

Docker matches such patterns with Go's RE2, whose time is linear in the text; Python's `re`
backtracks, so `(a+)+$` against forty `a`s and a `-` runs for hours in one uninterruptible C call
(a service thread spinning for ever per request). Here the pattern is compiled and matched by
PCRE2 (libpcre2-8, which every Debian has: grep links it) through ctypes, without JIT, with a
match limit and a depth limit: a pattern that needs more steps than MATCH_LIMIT for one text is
refused with one line, as is one that does not compile.

Invariant: `search` returns or raises InvalidArgument after at most MATCH_LIMIT backtracking steps
per text. Without libpcre2 it falls back to `re` (said in `engine_name`), bounded by nothing.
"""

from __future__ import annotations

import ctypes
import re
from functools import cache

from engine.errors import InvalidArgument

MATCH_LIMIT = 200_000  # steps: microseconds to milliseconds; an ordinary filter needs tens
_NOMATCH = -1
_ZERO_TERMINATED = ctypes.c_size_t(-1).value


@cache
def _pcre2() -> ctypes.CDLL | None:
    try:
        lib = ctypes.CDLL("libpcre2-8.so.0")
    except OSError:
        return None
    vp, sz = ctypes.c_void_p, ctypes.c_size_t
    lib.pcre2_compile_8.restype = vp
    lib.pcre2_compile_8.argtypes = [ctypes.c_char_p, sz, ctypes.c_uint32, ctypes.POINTER(ctypes.c_int),
                                    ctypes.POINTER(sz), vp]
    lib.pcre2_match_data_create_from_pattern_8.restype = vp
    lib.pcre2_match_data_create_from_pattern_8.argtypes = [vp, vp]
    lib.pcre2_match_context_create_8.restype = vp
    lib.pcre2_match_context_create_8.argtypes = [vp]
    lib.pcre2_set_match_limit_8.argtypes = [vp, ctypes.c_uint32]
    lib.pcre2_set_depth_limit_8.argtypes = [vp, ctypes.c_uint32]
    lib.pcre2_match_8.argtypes = [vp, ctypes.c_char_p, sz, sz, ctypes.c_uint32, vp, vp]
    lib.pcre2_get_error_message_8.argtypes = [ctypes.c_int, ctypes.c_char_p, sz]
    for name in ("pcre2_code_free_8", "pcre2_match_data_free_8", "pcre2_match_context_free_8"):
        getattr(lib, name).argtypes = [vp]
    return lib


def engine_name() -> str:
    return "pcre2" if _pcre2() is not None else "re"


def _error(lib: ctypes.CDLL, code: int) -> str:
    buffer = ctypes.create_string_buffer(256)
    lib.pcre2_get_error_message_8(code, buffer, len(buffer))
    return buffer.value.decode(errors="replace")


def search(pattern: str, text: str, what: str = "filter") -> bool:
    """Whether `pattern` matches anywhere in `text` (re.search's meaning), with a bounded cost."""
    lib = _pcre2()
    if lib is None:
        try:
            return re.search(pattern, text) is not None
        except re.error as exc:
            raise InvalidArgument(f"invalid {what} regular expression {pattern!r}: {exc}") from None
    code_err, offset = ctypes.c_int(), ctypes.c_size_t()
    code = lib.pcre2_compile_8(pattern.encode(), len(pattern.encode()), 0, ctypes.byref(code_err),
                               ctypes.byref(offset), None)
    if not code:
        raise InvalidArgument(f"invalid {what} regular expression {pattern!r}: {_error(lib, code_err.value)} "
                              f"at offset {offset.value}")
    data = lib.pcre2_match_data_create_from_pattern_8(code, None)
    context = lib.pcre2_match_context_create_8(None)
    try:
        lib.pcre2_set_match_limit_8(context, MATCH_LIMIT)
        lib.pcre2_set_depth_limit_8(context, MATCH_LIMIT)
        subject = text.encode()
        rc = lib.pcre2_match_8(code, subject, len(subject), 0, 0, data, context)
    finally:
        lib.pcre2_match_context_free_8(context)
        lib.pcre2_match_data_free_8(data)
        lib.pcre2_code_free_8(code)
    if rc >= 0:
        return True
    if rc == _NOMATCH:
        return False
    raise InvalidArgument(f"{what} regular expression {pattern!r} is too costly to match: {_error(lib, rc)}")
