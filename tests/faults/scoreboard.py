"""The fault campaign's scoreboard: every fault a test injects is one case, scored as it ends.

A case is *handled* when the engine answered the fault as it should (a clean one-line error, the
state the next command expects, the verb that still works); a *leak* is anything it left behind
(a process, a mount, a cgroup, a staging or temp file, a held port, a record nothing can remove);
an *escape* is a fault that got past the engine to where it must never go: a Python traceback in
front of the user, a credential sent to another host, a host descriptor inside a container.

`score()` records the case and then fails the test unless it was handled cleanly, so the board and
the assertions can never disagree. conftest.py prints the board at the end of the session.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

TRACEBACK = "Traceback (most recent call last)"


@dataclass(frozen=True)
class Outcome:
    area: str
    case: str
    handled: bool
    leaks: tuple[str, ...] = ()
    escapes: tuple[str, ...] = ()
    detail: str = ""


@dataclass
class Board:
    outcomes: list[Outcome] = field(default_factory=list)

    def lines(self) -> list[str]:
        if not self.outcomes:
            return []
        tried = len(self.outcomes)
        handled = sum(o.handled and not o.leaks and not o.escapes for o in self.outcomes)
        leaks = sum(len(o.leaks) for o in self.outcomes)
        escapes = sum(len(o.escapes) for o in self.outcomes)
        lines = [f"cases tried {tried}, handled {handled}, leaks {leaks}, escapes {escapes}"]
        areas = Counter(o.area for o in self.outcomes)
        for area in sorted(areas):
            mine = [o for o in self.outcomes if o.area == area]
            ok = sum(o.handled and not o.leaks and not o.escapes for o in mine)
            lines.append(f"  {area:<12} {len(mine):>4} tried  {ok:>4} handled  "
                         f"{sum(len(o.leaks) for o in mine):>3} leaks  {sum(len(o.escapes) for o in mine):>3} escapes")
        for o in self.outcomes:
            if not o.handled or o.leaks or o.escapes:
                lines.append(f"  FAILED {o.area}/{o.case}: {o.detail} leaks={list(o.leaks)} escapes={list(o.escapes)}")
        return lines


BOARD = Board()


def score(area: str, case: str, handled: bool, detail: str = "", leaks: list[str] | tuple[str, ...] = (),
          escapes: list[str] | tuple[str, ...] = ()) -> None:
    """Record one case, then fail the test if it was not handled cleanly."""
    outcome = Outcome(area, case, bool(handled), tuple(leaks), tuple(escapes), detail)
    BOARD.outcomes.append(outcome)
    assert outcome.handled, f"{area}/{case} not handled: {detail}"
    assert not outcome.leaks, f"{area}/{case} leaked: {list(outcome.leaks)} ({detail})"
    assert not outcome.escapes, f"{area}/{case} escaped: {list(outcome.escapes)} ({detail})"


def stderr_escapes(stderr: bytes | str) -> list[str]:
    """A traceback on stderr is an escape (the user must only ever see one line)."""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    return ["traceback: " + text.strip().splitlines()[-1][:200]] if TRACEBACK in text else []


def one_line_error(stderr: bytes | str) -> bool:
    """Exactly one non-empty line, starting with `Error:` (the CLI's form)."""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    lines = [line for line in text.splitlines() if line.strip()]
    return len(lines) == 1 and lines[0].startswith("Error: ")
