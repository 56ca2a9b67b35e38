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

An hour on a zone's clock is a pair (wall-clock hour, offset): the fall-back
day's two 01:00 hours are two buckets, and a skipped hour is none. Its key
packs both in one integer (``hour_key``); its label carries the offset only
when the zone's clock showed that hour twice (``2018-11-04T01-04:00``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from ..fields import civil

UNITS = ("hour", "day", "week", "month")
US = 1_000_000
HOUR = 3600 * US
DAY = 86400 * US
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
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
    # At the edges of datetime's years (1 to 9999) the instant or the zone's
    # wall clock may fall outside them (an instant in year 0 is a day out,
    # its wall clock up to a day more): the offset two days further in is the
    # same one there
    for shift in (0, DAY, -DAY, 2 * DAY, -2 * DAY):
        try:
            moment = _EPOCH + timedelta(microseconds=utc_us + shift)
            delta = moment.astimezone(zone).utcoffset()
        except (OverflowError, ValueError):
            continue
        assert delta is not None  # an aware datetime
        return (delta.days * 86400 + delta.seconds) * US + delta.microseconds
    return 0


def transitions(zone, lo: int, hi: int) -> list[tuple[int, int]]:
    """``[(from_utc_us, offset_us), ...]``: the zone's offsets from ``lo`` to ``hi``.

    The first entry holds from ``lo`` (and before it); each later one from
    the instant the clock changed. Read from the zone's own table of changes
    and, past its last one, its yearly rule (``_changes``): a span of
    centuries costs what its changes do. A zone whose table cannot be read
    is sampled daily instead (``_sampled``).
    """
    current = offset_us(zone, lo)
    found = [(lo, current)]
    if isinstance(zone, timezone):  # a fixed offset (UTC by default): nothing changes
        return found
    changes = _changes(getattr(zone, "key", None), hi)
    if changes is None:
        return _sampled(zone, lo, hi)
    for at, offset in changes:
        if lo < at <= hi and offset != current:
            found.append((at, offset))
            current = offset
    return found


def skipped_days(clock: Clock, first: int, last: int) -> set[int]:
    """The day numbers from ``first`` to ``last`` that the clock never showed:
    those a zone jumped over whole (Pacific/Apia went from 2011-12-29 to
    2011-12-31). A zero-filled series leaves them out, as it leaves out an
    hour skipped by a change to summer time. On users' own clocks (fixed
    offsets) no day is skipped."""
    if clock.local or isinstance(clock.zone, timezone) or last < first:
        return set()
    # The instants whose wall clocks can fall on those days, with room for any offset
    found = transitions(clock.zone, first * DAY - 2 * DAY, (last + 1) * DAY + 2 * DAY)
    skipped = set()
    for (_, before), (at, after) in zip(found, found[1:]):
        # The clock went from at + before to at + after: the whole days between were never shown
        day = -(-(at + before) // DAY)
        while (day + 1) * DAY <= at + after:
            if first <= day <= last:
                skipped.add(day)
            day += 1
    return skipped


def _sampled(zone, lo: int, hi: int) -> list[tuple[int, int]]:
    """``transitions`` by sampling the zone daily, then finding each change to
    the microsecond (no zone changes its offset twice in a day): the slow way,
    and the check on ``_changes`` in the tests."""
    current = offset_us(zone, lo)
    found = [(lo, current)]
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


_CHANGES: dict[str, tuple[int, list[tuple[int, int]]]] = {}


def _changes(key, hi: int) -> list[tuple[int, int]] | None:
    """Every ``(utc_us, offset_us)`` change of the zone named ``key`` up to ``hi``:
    its table's transitions, then its rule's two a year (None if unreadable).

    The standard library's C zoneinfo keeps its table to itself; its pure
    Python twin reads the same tzdata file and exposes it (``_trans_utc``,
    ``_ttinfos``, ``_tz_after``). Its names are private, so anything
    unexpected sends the caller back to sampling.
    """
    if not isinstance(key, str):
        return None
    last_year = min(9999, 1970 + hi // (365 * DAY) + 2)
    cached = _CHANGES.get(key)
    if cached is not None and cached[0] >= last_year:
        return cached[1]
    try:
        from zoneinfo._zoneinfo import ZoneInfo as PythonZoneInfo

        table = PythonZoneInfo.no_cache(key)
        changes = [(t * US, _us(info.utcoff)) for t, info in zip(table._trans_utc, table._ttinfos)]
        rule = table._tz_after
        if hasattr(rule, "transitions"):  # a yearly daylight-saving rule
            after = changes[-1][0] if changes else None
            first_year = 1 if after is None else max(1, datetime.fromtimestamp(
                after // US, timezone.utc).year - 1)
            std, dst = _us(rule.std.utcoff), _us(rule.dst.utcoff)
            for year in range(first_year, last_year + 1):
                start, end = rule.transitions(year)  # local seconds, as zoneinfo reads them
                for at in sorted(((start * US - std, dst), (end * US - dst, std))):
                    if after is None or at[0] > after:
                        changes.append(at)
        elif not hasattr(rule, "utcoff"):
            return None
    except Exception:  # noqa: BLE001 (private API: any surprise means sample instead)
        return None
    _CHANGES[key] = (last_year, changes)
    return changes


def _us(delta: timedelta) -> int:
    return (delta.days * 86400 + delta.seconds) * US + delta.microseconds


def piecewise(expr: str, starts: list[int], values: list[int] | list[str]) -> str:
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


def bucket_sql(unit: str, wall: str, wall_span: tuple[int, int] | None, engine: str = "sqlite") -> str:
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
        if len(months) * len(day) > _MONTHS_BY_CALENDAR:
            return _month_by_calendar(day, engine)
        return piecewise(day, [month_start_day(m) for m in months], months)
    raise ValueError(f"unknown unit {unit!r}")


# The month search repeats the day's SQL at each of its steps: with many
# months and a zone's many offset changes (decades of a DST zone) that SQL
# grew to megabytes and overflowed SQLite's parser. Past this size the
# engine's own calendar names the month, the day's SQL written only twice.
_MONTHS_BY_CALENDAR = 50_000


def _month_by_calendar(day: str, engine: str) -> str:
    if engine == "postgresql":
        # PostgreSQL has no year 0: 1 BC (a --tz clock can reach it) counts as 0
        date = f"(DATE '1970-01-01' + ({day})::integer)"
        return (f"((EXTRACT(YEAR FROM {date})::bigint + CASE WHEN {date} < DATE '0001-01-01'"
                f" THEN 1 ELSE 0 END) * 12 + EXTRACT(MONTH FROM {date})::bigint - 1)")
    seconds = f"({day}) * 86400"
    return (f"coalesce(CAST(strftime('%Y', {seconds}, 'unixepoch') AS INTEGER) * 12"
            f" + CAST(strftime('%m', {seconds}, 'unixepoch') AS INTEGER) - 1, {10000 * 12})")


def key_sql(unit: str, clock: Clock, utc_span: tuple[int, int] | None,
            wall_span: tuple[int, int] | None, instant: str = "utc_us", engine: str = "sqlite") -> str:
    """SQL for each action's bucket key on ``clock`` (``instant``: SQL for its UTC
    microseconds); an hour's key is ``hour_key``'s, any other unit's ``bucket_sql``'s."""
    if unit != "hour":
        return bucket_sql(unit, wall_sql(clock, utc_span, instant), wall_span, engine)
    if clock.local:  # wall-clock hours as logged: one offset for all (see hour_labels)
        return f"({bucket_sql('hour', 'local_us', None)} * {_PACK} + {_BIAS})"
    lo, hi = utc_span or (0, 0)
    changes = transitions(clock.zone, lo, hi)
    # each offset's own expression: the wall hour and the offset, packed
    values = [f"({bucket_sql('hour', f'({instant} + {o})', None)} * {_PACK} + {_BIAS - o // US})"
              for _, o in changes]
    return piecewise(instant, [s for s, _ in changes], values)


# An hour's key: its wall-clock hour times _PACK, plus _BIAS less its offset in
# seconds (offsets are within +-26 hours), so that an hour shown twice sorts
# first at its first (larger) offset.
_PACK = 1 << 18
_BIAS = 1 << 17


def hour_key(wall_hour: int, offset: int) -> int:
    """The key of the hour ``wall_hour`` (a bucket number) at ``offset`` microseconds."""
    return wall_hour * _PACK + _BIAS - offset // US


def hour_parts(key: int) -> tuple[int, int]:
    """``(wall_hour, offset_us)`` of an hour's key."""
    wall_hour, rest = divmod(key, _PACK)
    return wall_hour, (_BIAS - rest) * US


def hour_keys(clock: Clock, lo: int, hi: int) -> list[int]:
    """The keys of the hours the clock showed from ``lo`` to ``hi`` (UTC
    microseconds; on ``local``, wall-clock ones), in time order: a skipped
    hour is not among them, a repeated one is there twice."""
    if clock.local:
        return [hour_key(h, 0) for h in range(bucket("hour", lo), bucket("hour", hi) + 1)]
    changes = transitions(clock.zone, lo, hi)
    keys: list[int] = []
    for i, (start, offset) in enumerate(changes):
        end = changes[i + 1][0] - 1 if i + 1 < len(changes) else hi
        first, last = bucket("hour", max(start, lo) + offset), bucket("hour", end + offset)
        keys.extend(hour_key(h, offset) for h in range(first, last + 1))
    return keys


def hour_start(clock: Clock, key: int) -> int:
    """The UTC microsecond at which the hour ``key`` began (its order in time);
    on ``local``, its wall-clock start."""
    wall_hour, offset = hour_parts(key)
    nominal = wall_hour * HOUR - offset
    if clock.local or offset_us(clock.zone, nominal) == offset:
        return nominal
    # the clock reached this offset within the hour (Lord Howe's half-hour change)
    return next((at for at, o in transitions(clock.zone, nominal, nominal + HOUR)[1:]
                 if o == offset), nominal)


def hour_labels(clock: Clock, keys) -> dict[int, str]:
    """Each hour key's label: ``2018-11-04T01``, with its offset (``-04:00``) when
    the clock showed that wall-clock hour twice. On ``local`` each user's clock
    has its own offset, so an hour is the wall-clock hour alone."""
    keys = list(keys)
    twice: set[int] = set()
    if keys and not clock.local and not isinstance(clock.zone, timezone):
        starts = [hour_parts(k)[0] * HOUR - hour_parts(k)[1] for k in keys]
        changes = transitions(clock.zone, min(starts) - 2 * DAY, max(starts) + 2 * DAY)
        # the wall-clock hours of each offset's stretch; those of two stretches repeat
        stretches = []
        for i, (start, offset) in enumerate(changes):
            end = changes[i + 1][0] - 1 if i + 1 < len(changes) else max(starts) + 2 * DAY
            stretches.append((offset, bucket("hour", start + offset), bucket("hour", end + offset)))
        for i, (offset, first, last) in enumerate(stretches):
            for other, first2, last2 in stretches[i + 1:i + 4]:
                if other != offset:
                    twice.update(range(max(first, first2), min(last, last2) + 1))
    labels = {}
    for key in keys:
        wall_hour, offset = hour_parts(key)
        labels[key] = label("hour", wall_hour) + (offset_label(offset) if wall_hour in twice else "")
    return labels


def offset_label(offset: int) -> str:
    """``+05:30``, ``-04:00`` (``+00:19:32`` with seconds)."""
    sign = "-" if offset < 0 else "+"
    minutes, seconds = divmod(abs(offset) // US, 60)
    text = f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return text + (f":{seconds:02d}" if seconds else "")


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
        year, month, _ = civil(day)
        return year * 12 + month - 1
    raise ValueError(f"unknown unit {unit!r}")


def month_start_day(month: int) -> int:
    """The day number of the first day of month number ``month``."""
    return days_from_civil(month // 12, month % 12 + 1, 1)


def days_from_civil(year: int, month: int, day: int) -> int:
    """The day number (from 1970-01-01) of a proleptic Gregorian date, for any
    year: a --tz clock can take a stored time in year 1 or 9999 into year 0 or
    10000, which datetime cannot hold (fields.civil is the inverse)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


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
    year, month, day = civil(start_day(unit, number))
    text = f"{year:04d}-{month:02d}-{day:02d}"
    return f"{text}T{number % 24:02d}" if unit == "hour" else text


def start_us(unit: str, number: int) -> int:
    """The wall-clock microsecond at which bucket ``number`` begins."""
    if unit == "hour":
        return number * HOUR
    return start_day(unit, number) * DAY
