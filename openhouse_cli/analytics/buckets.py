"""Time buckets (hour, day, ISO week, month) as integers, in SQL and in Python.

A bucket is numbered so that consecutive buckets are consecutive integers:
hours and days since 1970-01-01, weeks (Monday to Sunday) since the week of
1969-12-29, months since year 0. Zero-filling a series is then a range, and
a retention period is a difference.

Buckets are read on a clock: a zone's (``--tz``, UTC by default), whose
offset at each instant comes from the zone's rules, or each user's own
clock as logged (``--local``, the ``local_us`` column). In SQL a zone's
offset is a CASE over the zone's transitions within the data's span: a DST
change moves the boundary of every bucket after it, as the clock did.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import NamedTuple

UNITS = ("hour", "day", "week", "month")
US = 1_000_000
HOUR = 3600 * US
DAY = 86400 * US
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# Integer division in SQL truncates toward zero on both engines: times are
# shifted by this many days (past year 1, before 1970) so that it floors.
_SHIFT_DAYS = 720006  # a multiple of 7, for weeks
_SHIFT = _SHIFT_DAYS * DAY


class Clock(NamedTuple):
    """Where buckets are read: ``zone`` (a tzinfo) or, if ``local``, each user's own clock."""

    zone: object = timezone.utc
    local: bool = False

    @classmethod
    def of(cls, tz=None, local=False) -> "Clock":
        return cls(tz or timezone.utc, bool(local))


# ---------------------------------------------------------------------------
# Offsets of a zone


def offset_us(zone, utc_us: int) -> int:
    """The zone's UTC offset at the instant ``utc_us``, in microseconds."""
    try:
        moment = _EPOCH + timedelta(microseconds=utc_us)
    except OverflowError:
        return 0
    delta = moment.astimezone(zone).utcoffset()
    assert delta is not None  # an aware datetime
    return (delta.days * 86400 + delta.seconds) * US + delta.microseconds


def transitions(zone, lo: int, hi: int) -> list[tuple[int, int]]:
    """``[(from_utc_us, offset_us), ...]``: the zone's offsets from ``lo`` to ``hi``.

    The first entry holds from ``lo`` (and before it); each later one from
    the instant the clock changed. Sampled daily, then each change found to
    the microsecond (no zone changes its offset twice in a day).
    """
    current = offset_us(zone, lo)
    found = [(lo, current)]
    if isinstance(zone, timezone):  # a fixed offset (UTC by default): no day to sample
        return found
    at = lo
    while at < hi:
        step = min(at + DAY, hi)
        new = offset_us(zone, step)
        if new != current:
            a, b = at, step  # the change is in (a, b]
            while b - a > 1:
                mid = (a + b) // 2
                if offset_us(zone, mid) == current:
                    a = mid
                else:
                    b = mid
            found.append((b, new))
            current = new
        at = step
    return found


def piecewise(expr: str, starts: list[int], values: list[int]) -> str:
    """SQL for ``values[i]`` where ``expr >= starts[i]`` (and below ``starts[1]``, ``values[0]``):
    nested CASEs that halve the list, so each row makes log2(n) comparisons."""
    if len(values) == 1:
        return str(values[0])
    mid = len(values) // 2
    return (f"CASE WHEN {expr} < {starts[mid]} THEN {piecewise(expr, starts[:mid], values[:mid])}"
            f" ELSE {piecewise(expr, starts[mid:], values[mid:])} END")


def wall_sql(clock: Clock, utc_span: tuple[int, int] | None, instant: str = "utc_us") -> str:
    """SQL for each action's wall-clock microseconds on ``clock`` (``instant``: SQL
    for its UTC microseconds; a summary's slot start, say)."""
    if clock.local:
        return "local_us"
    lo, hi = utc_span or (0, 0)
    changes = transitions(clock.zone, lo, hi)
    if len(changes) == 1:
        return f"({instant} + {changes[0][1]})"
    return f"({instant} + {piecewise(instant, [s for s, _ in changes], [o for _, o in changes])})"


def wall_us(clock: Clock, utc_us: int) -> int:
    """Python's wall_sql for an instant (a user's own clock is not known: UTC is used)."""
    return utc_us if clock.local else utc_us + offset_us(clock.zone, utc_us)


# ---------------------------------------------------------------------------
# Buckets


def day_sql(wall: str) -> str:
    return f"(({wall} + {_SHIFT}) / {DAY} - {_SHIFT_DAYS})"


def bucket_sql(unit: str, wall: str, wall_span: tuple[int, int] | None) -> str:
    """SQL for the bucket number of the wall-clock microseconds ``wall``.

    Months need the span of wall times to list the month starts between."""
    if unit == "hour":
        return f"(({wall} + {_SHIFT}) / {HOUR} - {_SHIFT_DAYS * 24})"
    day = day_sql(wall)
    if unit == "day":
        return day
    if unit == "week":
        return f"(({day} + {_SHIFT_DAYS + 3}) / 7 - {(_SHIFT_DAYS) // 7})"
    if unit == "month":
        first, last = (bucket(unit, us) for us in (wall_span or (0, 0)))
        months = list(range(first, last + 1))
        return piecewise(day, [month_start_day(m) for m in months], months)
    raise ValueError(f"unknown unit {unit!r}")


def bucket(unit: str, wall: int) -> int:
    """The bucket number of wall-clock microseconds ``wall`` (bucket_sql in Python)."""
    day = (wall + _SHIFT) // DAY - _SHIFT_DAYS
    if unit == "hour":
        return (wall + _SHIFT) // HOUR - _SHIFT_DAYS * 24
    if unit == "day":
        return day
    if unit == "week":
        return (day + 3) // 7
    if unit == "month":
        d = date.fromordinal(_EPOCH_ORDINAL + day)
        return d.year * 12 + d.month - 1
    raise ValueError(f"unknown unit {unit!r}")


def month_start_day(month: int) -> int:
    """The day number of the first day of month number ``month``."""
    from dateutil.relativedelta import relativedelta

    first = date(1, 1, 1) + relativedelta(months=month - 12)
    return first.toordinal() - _EPOCH_ORDINAL


def start_day(unit: str, number: int) -> int:
    """The day number on which bucket ``number`` begins (hours: the day it is in)."""
    if unit == "hour":
        return number // 24
    if unit == "day":
        return number
    if unit == "week":
        return number * 7 - 3
    return month_start_day(number)


def label(unit: str, number: int) -> str:
    """``2018-10-18T21``, ``2018-10-18``, the week's Monday ``2018-10-15``, or ``2018-10``."""
    if unit == "month":
        return f"{number // 12:04d}-{number % 12 + 1:02d}"
    day = date.fromordinal(_EPOCH_ORDINAL + start_day(unit, number)).isoformat()
    return f"{day}T{number % 24:02d}" if unit == "hour" else day


def start_us(unit: str, number: int) -> int:
    """The wall-clock microsecond at which bucket ``number`` begins."""
    if unit == "hour":
        return number * HOUR
    return start_day(unit, number) * DAY
