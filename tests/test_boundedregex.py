"""engine.util.boundedregex keeps its compiled patterns: a filter over N names compiles once, and
every compiled pattern (and every thread's match data) is freed exactly once. Counted through the
real libpcre2 calls, wrapped; no timings."""

from __future__ import annotations

import gc
import threading
from collections import Counter

import pytest

from engine.errors import InvalidArgument
from engine.util import boundedregex

LIB = boundedregex._pcre2()
pytestmark = pytest.mark.skipif(LIB is None, reason="libpcre2-8 is not installed: the `re` fall-back has no cache")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts of the native calls that allocate and free, by pointer where one is returned."""
    counts: Counter = Counter()
    live: set[int] = set()  # compiled and not yet freed (malloc reuses an address once it is freed)
    freed: list[int] = []
    double_frees: list[int] = []

    def free(code: int) -> None:
        freed.append(code)
        if code in live:
            live.remove(code)
        else:
            double_frees.append(code)

    def wrap(name: str, after) -> None:  # noqa: ANN001
        real = getattr(LIB, name)

        def wrapper(*args):  # noqa: ANN002, ANN202
            counts[name] += 1
            result = real(*args)
            after(args, result)
            return result

        monkeypatch.setattr(LIB, name, wrapper)

    wrap("pcre2_compile_8", lambda args, code: code and live.add(code))
    wrap("pcre2_code_free_8", lambda args, _: free(args[0]))
    wrap("pcre2_match_data_create_8", lambda args, data: None)
    wrap("pcre2_match_data_free_8", lambda args, _: None)
    boundedregex.clear_cache()
    gc.collect()
    counts.clear()
    counts.live, counts.freed = live, freed  # type: ignore[attr-defined]
    yield counts
    boundedregex.clear_cache()
    assert not double_frees, f"freed twice, or never compiled: {double_frees}"


def test_a_pattern_is_compiled_once_for_all_the_names_it_is_matched_against(calls: Counter) -> None:
    names = [f"fill-{i}" for i in range(1000)]
    matched = [n for n in names if boundedregex.search("^fill-1", n)]
    assert len(matched) == 111
    assert calls["pcre2_compile_8"] == 1, calls
    assert calls["pcre2_code_free_8"] == 0  # kept for the next filter
    boundedregex.search("^fill-1", "fill-1", options=0x8)  # PCRE2_CASELESS: another key, compiled apart
    assert calls["pcre2_compile_8"] == 2


def test_every_compiled_pattern_is_freed_once_and_the_cache_stays_bounded(calls: Counter) -> None:
    size = boundedregex.CACHE_SIZE
    for i in range(3 * size):
        assert boundedregex.search(f"^n{i}$", f"n{i}")
    assert len(boundedregex._cache) == size
    assert calls["pcre2_compile_8"] == 3 * size
    assert len(calls.freed) == 2 * size  # the evicted ones, at once
    assert calls.live == {c.code for c in boundedregex._cache.values()}
    boundedregex.search(f"^n{3 * size - 1}$", "x")  # the newest is still cached
    assert calls["pcre2_compile_8"] == 3 * size
    boundedregex.clear_cache()
    assert calls.live == set(), "compiled and never freed: a leak"
    assert len(calls.freed) == 3 * size  # (and none twice: the fixture's check)


def test_a_pattern_evicted_while_in_use_is_freed_only_after_its_last_user(calls: Counter) -> None:
    in_use = boundedregex._compiled(LIB, "^held", 0, "filter")
    boundedregex.clear_cache()
    assert in_use.code not in calls.freed  # a thread matching with it still holds it
    code = in_use.code
    del in_use
    assert calls.freed == [code]


def test_each_thread_s_match_data_is_freed_with_the_thread(calls: Counter) -> None:
    def worker() -> None:
        for i in range(50):
            boundedregex.search("^w", f"w{i}")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    del threads
    gc.collect()
    assert calls["pcre2_match_data_create_8"] == 4  # one per thread, not one per match
    assert calls["pcre2_match_data_free_8"] == 4


def test_cached_patterns_keep_their_bound_and_bad_ones_their_error(calls: Counter) -> None:
    hostile = "(a+)+$"
    for _ in range(2):  # the second time from the cache: still refused, not run unbounded
        with pytest.raises(InvalidArgument, match="too costly"):
            boundedregex.search(hostile, "a" * 40 + "-")
    assert calls["pcre2_compile_8"] == 1
    for _ in range(2):  # a pattern that does not compile is not cached: refused each time
        with pytest.raises(InvalidArgument, match="missing closing parenthesis"):
            boundedregex.search("(", "x")
    assert calls["pcre2_compile_8"] == 3
