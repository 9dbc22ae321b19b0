"""A user's regular expression matched with a bound on its cost (Docker's `name` filter and the like).

Docker matches such patterns with Go's RE2, whose time is linear in the text; Python's `re`
backtracks, so `(a+)+$` against forty `a`s and a `-` runs for hours in one uninterruptible C call
(a service thread spinning for ever per request). Here the pattern is compiled and matched by
PCRE2 (libpcre2-8, which every Debian has: grep links it) through ctypes, without JIT, with a
match limit and a depth limit: a pattern that needs more steps than MATCH_LIMIT for one text is
refused with one line, as is one that does not compile.

A filter matches one pattern against every container's name, so a compiled pattern is kept: a
small cache (CACHE_SIZE entries, least recently used out first) keyed by the pattern and its
compile options. Each entry owns its native code and frees it when the last reference to it goes
(`_Compiled.__del__`): evicted while another thread is still matching with it, it is freed after
that match, never during it. The match context (the limits) is made once per process and only read
by a match; match data (one pair: `search` needs no groups) is one per thread, freed with it, so
no two matches in flight write the same native memory.

Invariant: `search` returns or raises InvalidArgument after at most MATCH_LIMIT backtracking steps
per text; at most CACHE_SIZE compiled patterns are held, and every one compiled is freed once
(evicted, or `clear_cache`). Without libpcre2 it falls back to `re` (said in `engine_name`),
bounded by nothing.
"""

from __future__ import annotations

import _thread  # (a lock without loading `threading`: see docs/lifecycle.md, "Import costs")
import ctypes
import re
from collections import OrderedDict
from functools import cache

from engine.errors import InvalidArgument

MATCH_LIMIT = 200_000  # steps: microseconds to milliseconds; an ordinary filter needs tens
CACHE_SIZE = 32  # compiled patterns kept (a filter has a few; a service sees many clients')
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
    lib.pcre2_match_data_create_8.restype = vp
    lib.pcre2_match_data_create_8.argtypes = [ctypes.c_uint32, vp]
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


class _Compiled:
    """One compiled pattern: the owner of its native code, freed with the object."""

    __slots__ = ("code", "lib")

    def __init__(self, lib: ctypes.CDLL, code: int) -> None:
        self.lib, self.code = lib, code

    def __del__(self) -> None:
        self.lib.pcre2_code_free_8(self.code)


_cache: OrderedDict[tuple[str, int], _Compiled] = OrderedDict()
_cache_lock = _thread.allocate_lock()


class _MatchState(_thread._local):
    """This thread's match data, freed when the thread ends, and the process's match context."""

    data: _MatchData | None = None
    context: int = 0


class _MatchData:
    __slots__ = ("lib", "pointer")

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib, self.pointer = lib, lib.pcre2_match_data_create_8(1, None)
        if not self.pointer:
            raise MemoryError("pcre2_match_data_create")

    def __del__(self) -> None:
        if self.pointer:
            self.lib.pcre2_match_data_free_8(self.pointer)


_state = _MatchState()


@cache
def _match_context(lib: ctypes.CDLL) -> int:
    """The limits, one context for the process (pcre2_match only reads it: shared safely)."""
    context = lib.pcre2_match_context_create_8(None)
    if not context:
        raise MemoryError("pcre2_match_context_create")
    lib.pcre2_set_match_limit_8(context, MATCH_LIMIT)
    lib.pcre2_set_depth_limit_8(context, MATCH_LIMIT)
    return context


def _compiled(lib: ctypes.CDLL, pattern: str, options: int, what: str) -> _Compiled:
    """The cached compilation of `pattern` (compiled and cached on a miss, the oldest evicted)."""
    key = (pattern, options)
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    source = pattern.encode()
    code_err, offset = ctypes.c_int(), ctypes.c_size_t()
    code = lib.pcre2_compile_8(source, len(source), options, ctypes.byref(code_err), ctypes.byref(offset), None)
    if not code:
        raise InvalidArgument(f"invalid {what} regular expression {pattern!r}: {_error(lib, code_err.value)} "
                              f"at offset {offset.value}")
    compiled = _Compiled(lib, code)
    with _cache_lock:  # (another thread may have cached the same meanwhile: replaced, it is freed once unused)
        _cache[key] = compiled
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return compiled


def clear_cache() -> None:
    """Drop every cached pattern (each freed once no match is using it)."""
    with _cache_lock:
        _cache.clear()


def search(pattern: str, text: str, what: str = "filter", options: int = 0) -> bool:
    """Whether `pattern` matches anywhere in `text` (re.search's meaning), with a bounded cost.
    `options`: PCRE2 compile options (part of the cache key)."""
    lib = _pcre2()
    if lib is None:
        try:
            return re.search(pattern, text) is not None
        except re.error as exc:
            raise InvalidArgument(f"invalid {what} regular expression {pattern!r}: {exc}") from None
    compiled = _compiled(lib, pattern, options, what)
    state = _state
    if state.data is None:
        state.data, state.context = _MatchData(lib), _match_context(lib)
    subject = text.encode()
    rc = lib.pcre2_match_8(compiled.code, subject, len(subject), 0, 0, state.data.pointer, state.context)
    if rc >= 0:  # (0: a match whose groups did not fit the one pair: still a match)
        return True
    if rc == _NOMATCH:
        return False
    raise InvalidArgument(f"{what} regular expression {pattern!r} is too costly to match: {_error(lib, rc)}")
