"""RFC 3339 times as Docker writes them (UTC, `Z`, nanoseconds in container records, microseconds in
image configs) and reads them (any fraction, `Z` or an offset).

The one parser and formatter of timestamps for the engine, the CLI and the TUI. Built on `time`
alone: neither `datetime` nor `calendar` (with `locale`) is loaded to read or write a time
(tests/test_layering.py, tests/test_cli_import_costs.py).
"""

from __future__ import annotations

import re
import time

_RFC3339 = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:?\d\d)?$"
)


def format_rfc3339(ns: int, digits: int = 9) -> str:
    """A time in nanoseconds since the epoch, in UTC with `digits` fractional digits (9: Go's
    RFC3339Nano as container records hold it; 6: as image configs do)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if digits:
        text += "." + f"{frac:09d}"[:digits]
    return text + "Z"


def now_rfc3339(digits: int = 9) -> str:
    return format_rfc3339(time.time_ns(), digits)


def parse_rfc3339(value: str | None) -> float | None:
    """Seconds since the epoch; None for an empty value, Go's zero time or one that does not parse.
    A time without a zone is UTC."""
    if not value or value.startswith("0001-"):
        return None
    match = _RFC3339.match(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second <= 60):
        return None
    if year:
        seconds = float(_days_since_epoch(year, month, day) * 86400 + hour * 3600 + minute * 60 + second)
    else:  # year 0: calendar's ValueError, as ever
        import calendar

        seconds = float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))
    if match.group(7):
        seconds += float("0." + match.group(7))
    zone = match.group(8)
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return seconds


def _days_since_epoch(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date, as calendar.timegm counts them (a day past
    the month's end runs on into the next), without importing calendar with datetime and locale:
    ~3 ms of every listing that shows a time (docs/lifecycle.md, "Import costs"). H. Hinnant's
    days_from_civil: years that start on March 1st, so a leap day is the last day of its year."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468
