"""Healthchecks as Docker defines them: the `Healthcheck` a container runs (Config.Healthcheck: the
image's HEALTHCHECK under the `--health-*` flags), Go durations as the flags and messages spell them,
and the one rule that turns a probe's result into `State.Health` (status, failing streak, last 5
results).

Pure values and rules: nothing here runs a probe or touches a record (engine.container.health_checker
does, inside the monitor's tree). Light on purpose: `ps` reads `State.Health` through `status_suffix`
and `matches_filter` on the `dockui ps` path.

Invariant: a record's `health` is either empty (the container has no healthcheck, `health=none`) or
a State.Health dict this module built: Status one of STATUSES, FailingStreak an int, Log at most
LOG_ENTRIES results of {Start, End, ExitCode, Output (at most OUTPUT_LIMIT bytes)}.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import InvalidArgument

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any

STARTING, HEALTHY, UNHEALTHY, NONE = "starting", "healthy", "unhealthy", "none"
STATUSES = (STARTING, HEALTHY, UNHEALTHY, NONE)  # the values `ps -f health=` takes
LOG_ENTRIES = 5  # Docker's maxLogEntries
OUTPUT_LIMIT = 4096  # Docker's maxOutputLen: a probe's output is cut to this many bytes
SECOND = 1_000_000_000
# Docker's defaults for a field left at 0 (daemon/health.go)
DEFAULT_INTERVAL = 30 * SECOND
DEFAULT_TIMEOUT = 30 * SECOND
DEFAULT_START_PERIOD = 0
DEFAULT_RETRIES = 3
MIN_DURATION = 1_000_000  # 1 ms: the smallest non-zero interval, timeout or start period Docker takes

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": SECOND, "m": 60 * SECOND, "h": 3600 * SECOND}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str, flag: str = "duration") -> int:
    """Go's time.ParseDuration ("30s", "1m30s", "500ms", "0.2s", "0"): nanoseconds."""
    value = text.strip()
    sign = -1 if value.startswith("-") else 1
    body = value.lstrip("+-")
    if body == "0":
        return 0
    parts = _DURATION_PART.findall(body)
    if not body or not parts or "".join(n + u for n, u in parts) != body:
        raise InvalidArgument(f'invalid argument "{text}" for "{flag}" flag: time: invalid duration "{text}"')
    return sign * round(sum(float(n) * _UNITS[u] for n, u in parts))


def format_duration(ns: int) -> str:
    """Go's Duration.String for the durations a healthcheck uses: "30s", "1m30s", "500ms", "1.5s"."""
    if ns == 0:
        return "0s"
    if ns < SECOND:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000)):
            if ns >= size:
                return _trim(ns / size) + unit
        return f"{ns}ns"
    hours, rest = divmod(ns, 3600 * SECOND)
    minutes, rest = divmod(rest, 60 * SECOND)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "")
    return text + _trim(rest / SECOND) + "s"


def _trim(number: float) -> str:
    return f"{number:.9f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Healthcheck:
    """Config.Healthcheck. `test`: ("CMD", argv...), ("CMD-SHELL", command), ("NONE",) (disabled), or
    () (take the image's); a duration (ns) or `retries` of 0 takes the image's, then Docker's default."""

    test: tuple[str, ...] = ()
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    retries: int = 0

    @property
    def disabled(self) -> bool:
        """No probe runs: no test, NONE, or a kind moby's getProbe does not know (it keeps it, probes nothing)."""
        return not self.test or self.test[0] not in ("CMD", "CMD-SHELL")

    def validate(self) -> Healthcheck:
        """Docker's create-time checks (daemon verifyContainerSettings); returns self."""
        if self.test and self.test[0] == "CMD-SHELL" and len(self.test) != 2:
            raise InvalidArgument("a CMD-SHELL healthcheck takes exactly one command string")
        for name, value in (("Interval", self.interval), ("Timeout", self.timeout), ("StartPeriod", self.start_period)):
            if value != 0 and value < MIN_DURATION:
                raise InvalidArgument(f"{name} in Healthcheck cannot be less than {format_duration(MIN_DURATION)}")
        if self.retries < 0:
            raise InvalidArgument("Retries in Healthcheck cannot be negative")
        return self

    def over(self, image: Healthcheck | None) -> Healthcheck:
        """This (the user's) on top of the image's HEALTHCHECK, field by field, as Docker merges them."""
        if image is None:
            return self
        return Healthcheck(
            test=self.test or image.test,
            interval=self.interval or image.interval,
            timeout=self.timeout or image.timeout,
            start_period=self.start_period or image.start_period,
            retries=self.retries or image.retries,
        )

    def probe_argv(self, shell: list[str] | None) -> list[str]:
        """What runs in the container: CMD's argv, or CMD-SHELL's command under the image's shell."""
        if self.test[0] == "CMD-SHELL":
            return [*(shell or ["/bin/sh", "-c"]), self.test[1]]
        return list(self.test[1:])

    # Docker's defaults for what is left at 0
    @property
    def interval_ns(self) -> int:
        return self.interval or DEFAULT_INTERVAL

    @property
    def timeout_ns(self) -> int:
        return self.timeout or DEFAULT_TIMEOUT

    @property
    def start_period_ns(self) -> int:
        return self.start_period or DEFAULT_START_PERIOD

    @property
    def retries_count(self) -> int:
        return self.retries or DEFAULT_RETRIES

    def to_docker(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Test": list(self.test)}
        for key, value in (("Interval", self.interval), ("Timeout", self.timeout),
                           ("StartPeriod", self.start_period), ("Retries", self.retries)):
            if value:
                out[key] = value
        return out

    @classmethod
    def from_docker(cls, data: Any, where: str = "Config.Healthcheck") -> Healthcheck | None:
        """A Healthcheck of Docker's JSON (an image config's or a create body's); None for null."""
        if data is None:
            return None
        if not isinstance(data, dict):
            raise InvalidArgument(f"{where}: expected an object, got {type(data).__name__}")
        test = data.get("Test") or []
        if isinstance(test, str):
            test = ["CMD-SHELL", test]
        if not isinstance(test, list) or not all(isinstance(t, str) for t in test):
            raise InvalidArgument(f"{where}.Test: expected a list of strings")
        values = {}
        for key, name in (("Interval", "interval"), ("Timeout", "timeout"), ("StartPeriod", "start_period"),
                          ("Retries", "retries")):
            value = data.get(key) or 0
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidArgument(f"{where}.{key}: expected an integer, got {type(value).__name__}")
            values[name] = value
        return cls(test=tuple(test), **values).validate()


def from_flags(cmd: str | None, interval: str | None, timeout: str | None, start_period: str | None,
               retries: int | None, disabled: bool) -> Healthcheck | None:
    """The `--health-*` / `--no-healthcheck` flags as the docker CLI reads them; None when none is given."""
    given = cmd is not None or interval is not None or timeout is not None or start_period is not None or retries is not None
    if disabled:
        if given:
            raise InvalidArgument("--no-healthcheck conflicts with --health-* options")
        return Healthcheck(test=("NONE",))
    if not given:
        return None
    durations = {}
    for flag, text in (("health-interval", interval), ("health-timeout", timeout), ("health-start-period", start_period)):
        value = parse_duration(text, "--" + flag) if text is not None else 0
        if value < 0:
            raise InvalidArgument(f"--{flag} cannot be negative")
        durations[flag] = value
    if retries is not None and retries < 0:
        raise InvalidArgument("--health-retries cannot be negative")
    return Healthcheck(
        test=("CMD-SHELL", cmd) if cmd else (),
        interval=durations["health-interval"],
        timeout=durations["health-timeout"],
        start_period=durations["health-start-period"],
        retries=retries or 0,
    ).validate()


def of_container(config: dict[str, Any]) -> Healthcheck | None:
    """The healthcheck a container's Config runs, or None (none, or disabled)."""
    try:
        check = Healthcheck.from_docker(config.get("Healthcheck"))
    except InvalidArgument:
        return None
    return None if check is None or check.disabled else check


# ------------------------------------------------------------------------------------------ State.Health


def starting(previous: dict[str, Any]) -> dict[str, Any]:
    """State.Health at a (re)start: "starting", no failing streak, the earlier results kept (Docker's)."""
    return {"Status": STARTING, "FailingStreak": 0, "Log": list(previous.get("Log") or [])}


def with_result(health: dict[str, Any], result: dict[str, Any], retries: int, in_start_period: bool) -> dict[str, Any]:
    """State.Health after one probe (Docker's handleProbeResult): exit 0 is healthy and clears the
    streak; any other result adds to the streak, unless the container is still starting within its
    start period, and `retries` of them in a row make it unhealthy."""
    status = health.get("Status") or STARTING
    streak = int(health.get("FailingStreak") or 0)
    log = [*(health.get("Log") or []), result][-LOG_ENTRIES:]
    if result["ExitCode"] == 0:
        status, streak = HEALTHY, 0
    elif not (status == STARTING and in_start_period):
        streak += 1
        if streak >= retries:
            status = UNHEALTHY
    return {"Status": status, "FailingStreak": streak, "Log": log}


def status_of(health: dict[str, Any]) -> str:
    """The container's health for `ps -f health=`: a status, or "none" without a healthcheck."""
    return health.get("Status") or NONE if health else NONE


def status_suffix(health: dict[str, Any]) -> str:
    """What `ps` appends to a running container's "Up ..." (Docker's Health.String)."""
    status = health.get("Status") if health else None
    if not status:
        return ""
    return " (health: starting)" if status == STARTING else f" ({status})"


def check_filter_value(value: str) -> str:
    if value not in STATUSES:
        raise InvalidArgument(f"Unrecognised filter value for health: {value}")
    return value
