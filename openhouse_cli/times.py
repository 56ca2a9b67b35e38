"""Everything about time, in one place.

Action times are parsed on ingest's hot path with ``datetime.fromisoformat``
(about 8x faster than dateutil's ``isoparse``). Each action is stored as two
integers of microseconds: its UTC instant, and its wall-clock time as written
(counted as if that wall clock were UTC), so that both kinds of query bound
compare with plain integers.
"""

import re as _re
import time as _time
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()
_US = 1_000_000
MAX_OFFSET_S = 14 * 3600  # UTC-12:00 .. UTC+14:00 are the zones in use; allow ±14:00


class TimeError(ValueError):
    """A time string that is not a valid ISO 8601 time."""


def wall_clock_us(dt):
    """Microseconds from 1970-01-01T00:00 to ``dt``'s wall-clock reading, ignoring tzinfo."""
    days = dt.toordinal() - _EPOCH_ORDINAL
    seconds = days * 86400 + dt.hour * 3600 + dt.minute * 60 + dt.second
    return seconds * _US + dt.microsecond


# Caches for the hot path, cleared when they grow so that hostile input with
# millions of distinct values cannot grow them without bound: the wall-clock
# microseconds at the start of each minute seen, keyed by the first 16
# characters (every ISO form fromisoformat takes holds date, hour and minute
# within them), and the offset of each tzinfo seen.
_minute_us: dict[str, int] = {}
_offsets: dict[object, tuple[int, int]] = {}
_CACHE_LIMIT = 50_000


# Digits of a fraction of a second beyond the sixth: fromisoformat drops them
_SUB_US = _re.compile(r"[.,]\d{6}(\d+)")
# A decimal sign that no digit follows
_EMPTY_FRACTION = _re.compile(r"[.,](?!\d)")
# The ISO 8601 forms an action's time may take: fromisoformat (3.11) also
# takes any one character before the offset (21:37:28x+05:00, 21:37:28 Z)
# and a separator other than T or a space when a space comes later
_STRICT_TIME = _re.compile(
    r"(?:\d{4}-\d\d-\d\d|\d{8}|\d{4}-W\d\d(?:-\d)?|\d{4}W\d\d\d?)[Tt ]"
    r"\d\d(?::?\d\d(?::?\d\d(?:[.,]\d+)?)?)?"
    r"(?:[Zz]|[+-]\d\d(?::?\d\d(?::?\d\d(?:[.,]\d+)?)?)?)?\Z")
# An offset with seconds and a fraction of them, at the end of a time
_OFFSET_FRACTION = _re.compile(r"[+-]\d\d:?\d\d:?\d\d[.,]\d+$")


def parse_action_time(text):
    """Parse an action's ``time``; return ``(utc_us, local_us, offset_s, ns)``.

    ``offset_s`` is None when the string has no UTC offset: such a time is
    taken to be UTC, and its wall clock is the time as written. ``ns`` is
    the nanoseconds beyond the microsecond (0-999), from a fraction of 7 to
    9 digits. Raises TimeError saying what is wrong (the caller adds the value).

    Nearly every time has one shape: ``YYYY-MM-DDTHH:MM:SS``, a fraction of
    1 to 6 digits or none, then ``Z``, ``±HH:MM`` or nothing. For that shape
    (told by a few characters, once fromisoformat has accepted the text)
    none of the full parser's refusals can apply but the offset's, which
    depends on the offset's text alone: it is checked by the full parser the
    first time it is seen and remembered (``_parse_shaped``). Any other
    shape takes the full parser, ``_parse_full``; all give the same answers.
    """
    # The commonest case, without even fromisoformat: the text is the start
    # of an hour (YYYY-MM-DDTHH:), a minute and second (MM:SS) and a tail
    # (a fraction of up to 3 digits or none, then Z, ±HH:MM or nothing),
    # each the very text of one in a time that passed _parse_shaped's checks
    # before; any three such parts make a good time
    try:
        tail = _tails.get(text[19:])
        if tail is not None:
            hour = _hour_us.get(text[:14])
            if hour is not None:
                clock = _clock_us.get(text[14:19])
                if clock is not None:
                    local_us = hour + clock + tail[0]
                    return local_us - tail[2], local_us, tail[1], 0
    except TypeError:  # not a string: refused below
        pass
    try:
        dt = _fromisoformat(text)
    except (ValueError, TypeError):
        return _parse_full(text)  # a lower-case z, or the error said
    return _parse_shaped(text, dt)


def _parse_shaped(text, dt):
    """parse_action_time for any other time fromisoformat accepted as ``dt``."""
    size = len(text)
    if size < 19 or text[10:17:3] != "T::" or "\x00" in text:
        return _parse_full(text)
    if text[-3] == ":" and text[-6] in "+-":
        end = size - 6
    elif text[-1] == "Z":
        end = size - 1
    else:
        end = size
    # what lies between the seconds and the offset: nothing, or a fraction
    # of at most 6 digits (so no nanoseconds)
    if end != 19 and not (20 < end <= 26 and text[19] in ".,"):
        return _parse_full(text)
    if (dt.tzinfo is None) != (end == size):
        return _parse_full(text)
    # fromisoformat accepted the text, so its hour and its minute and second
    # are good on their own, whatever becomes of the offset
    hour = _hour_us.get(text[:14])
    if hour is None:
        if len(_hour_us) > _CACHE_LIMIT:
            _hour_us.clear()
        hour = _hour_us[text[:14]] = wall_clock_us(dt.replace(minute=0, second=0, microsecond=0))
    clock = _clock_us[text[14:19]] = (dt.minute * 60 + dt.second) * _US  # (3,600 at most)
    local_us = hour + clock + dt.microsecond
    if end == size:
        offset = (None, 0)
    else:
        offset = _offset_texts.get(text[end:])
        if offset is None:
            parsed = _parse_full(text)  # refuses a bad offset
            if len(_offset_texts) > _CACHE_LIMIT:
                _offset_texts.clear()
            _offset_texts[text[end:]] = (parsed[2], parsed[2] * _US)
            return parsed
    if end <= 23:  # a fraction of up to 3 digits (milliseconds) or none: remember the tail
        if len(_tails) > _CACHE_LIMIT:
            _tails.clear()
        _tails[text[19:]] = (dt.microsecond, *offset)
    return local_us - offset[1], local_us, offset[0], 0


_fromisoformat = datetime.fromisoformat
# For the common shape: the wall-clock microseconds at the start of each hour
# seen (keyed by its first 14 characters, YYYY-MM-DDTHH:), the microseconds
# of each minute and second (MM:SS) into its hour, each offset seen (keyed by
# its text, Z or ±HH:MM) as (seconds or None, microseconds), and each tail
# seen (what follows the seconds) as (fraction's microseconds, *offset)
_hour_us: dict[str, int] = {}
_clock_us: dict[str, int] = {}
_offset_texts: dict[str, tuple] = {}
_tails: dict[str, tuple] = {}


def _parse_full(text):
    """parse_action_time for any time fromisoformat reads, with every check."""
    try:
        dt = datetime.fromisoformat(text)
    except (ValueError, TypeError):
        if isinstance(text, str) and text.endswith("z"):
            # RFC 3339 allows a lower-case z, as it allows a lower-case t
            # (which fromisoformat takes): read as Z; the text is kept as written
            return _parse_full(text[:-1] + "Z")
        raise TimeError(_why_not_a_time(text)) from None
    if "\x00" in text:  # fromisoformat ignores a trailing NUL
        raise TimeError("not an ISO 8601 time")
    if not _STRICT_TIME.match(text):
        if _EMPTY_FRACTION.search(text):
            raise TimeError("a decimal point with no digits after it")
        if "T" not in text and " " not in text and "t" not in text:  # fromisoformat takes a bare date
            raise TimeError("not an ISO 8601 time with a time of day")
        raise TimeError("not an ISO 8601 time")
    key = text[:16]
    minute = _minute_us.get(key)
    if minute is None:
        if len(_minute_us) > _CACHE_LIMIT:
            _minute_us.clear()
        minute = _minute_us[key] = wall_clock_us(dt) - dt.second * _US - dt.microsecond
    local_us = minute + dt.second * 1_000_000 + dt.microsecond
    ns = 0
    # (the shortest form with 7 digits: 20181018T213728.1234567; the "in"
    # tests skip the searches for the many times without a fraction)
    if "." in text or "," in text:
        # fromisoformat takes an offset's fraction of a second (+05:30:00.0000009),
        # dropping digits past the sixth: refused, so that a fraction always
        # belongs to the time of day (its ns, and the digits --fields shows)
        if dt.tzinfo is not None and _OFFSET_FRACTION.search(text):
            raise TimeError("UTC offset with fractions of a second")
        extra = _SUB_US.search(text) if len(text) > 22 else None
        if extra:
            digits = extra[1]
            if len(digits) > 3:
                raise TimeError("fractions of a second beyond nanoseconds (9 digits)")
            ns = int(digits.ljust(3, "0"))
    tz = dt.tzinfo
    if tz is None:
        return local_us, local_us, None, ns
    if text[-2] > "5" and text[-1] not in "Zz":  # fromisoformat reads +05:75 as +06:15
        _check_offset_digits(text)
    offset = _offsets.get(tz)
    if offset is None:
        offset_s = _checked_offset(dt.utcoffset())
        if len(_offsets) > _CACHE_LIMIT:
            _offsets.clear()
        offset = _offsets[tz] = (offset_s, offset_s * _US)
    return local_us - offset[1], local_us, offset[0], ns


# A UTC offset at the end of a time: sign, hours, minutes (and seconds)
_OFFSET_TAIL = _re.compile(r"[+-](\d\d):?(\d\d)(?::?(\d\d)(?:\.\d+)?)?$")


def _check_offset_digits(text: str) -> None:
    """Refuse an offset whose minutes or seconds are past 59, which fromisoformat carries over."""
    tail = _OFFSET_TAIL.search(text)
    if tail and (int(tail[2]) > 59 or int(tail[3] or 0) > 59):
        raise TimeError("UTC offset minutes beyond 59")


def _why_not_a_time(text) -> str:
    """What is wrong with a time fromisoformat refused: an offset it cannot
    hold (hours past 23, minutes past 59) is named as such, like one past 14:00."""
    tail = _OFFSET_TAIL.search(text) if isinstance(text, str) else None
    if tail and (int(tail[1]) > 23 or int(tail[2]) > 59):
        try:
            datetime.fromisoformat(text[:tail.start()])
        except ValueError:
            pass
        else:
            return "UTC offset beyond ±14:00" if int(tail[1]) > 23 else "UTC offset minutes beyond 59"
    return "not an ISO 8601 time"


def _checked_offset(offset):
    if offset.microseconds:
        raise TimeError("UTC offset with fractions of a second")
    offset_s = offset.days * 86400 + offset.seconds
    if not -MAX_OFFSET_S <= offset_s <= MAX_OFFSET_S:
        raise TimeError("UTC offset beyond ±14:00")
    return offset_s


def format_us(us):
    """ISO 8601 text (no offset) for a microsecond count (for tests and debugging)."""
    seconds, micro = divmod(us, _US)
    days, rem = divmod(seconds, 86400)
    dt = datetime.fromordinal(_EPOCH_ORDINAL + days).replace(
        hour=rem // 3600, minute=rem // 60 % 60, second=rem % 60, microsecond=micro
    )
    return dt.isoformat()


# ---------------------------------------------------------------------------
# Query bounds given by the user (--start, --end, --date, --since, --until)
#
# A bound names a unit of time: 2018-10-18 is a day, 2018-10-18T21 an hour,
# 2018-10-18T21:37:28 a second, 2018-10-18T21:37:28.5 a microsecond. A start
# is the first microsecond of its unit and an end the last, so that
# ``--end 2018-10-31`` includes all of October 31st. A bound with an offset
# (or Z) is an instant; one without is a wall-clock time, compared with each
# action's time as written, unless a zone (--tz) says where it was read.
# Only the standard library is imported here (dateutil costs ~40 ms of
# start-up): zoneinfo only when --tz names a zone, and dateutil only for
# times ago in months or years, which need its calendar arithmetic.

BOUND_FORMS = (
    "an ISO 8601 time such as 2018-10-18, 2018-10-18T21:37 or 2018-10-19T03:37:28Z"
)
RELATIVE_FORMS = "a time ago such as 30m, 2h, 7d, 3mo or 1y"

_BOUND_RE = _re.compile(
    r"""
    (?P<year>\d{4})
    (?:-(?P<month>\d{2})
      (?:-(?P<day>\d{2})
        (?:[T\ ](?P<hour>\d{2})
          (?::(?P<minute>\d{2})
            (?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?
          )?
          (?P<offset>Z|[+-]\d{2}(?::?\d{2})?)?
        )?
      )?
    )?
    """,
    _re.VERBOSE | _re.IGNORECASE,
)
_RELATIVE_RE = _re.compile(r"(\d{1,9})\s*(mo|y|s|m|h|d|w)", _re.IGNORECASE)
_UNIT_US = {"s": _US, "m": 60 * _US, "h": 3600 * _US, "d": 86400 * _US, "w": 7 * 86400 * _US}
# Bounds stay inside the years datetime can represent
_MIN_US = wall_clock_us(datetime(1, 1, 1))
_MAX_US = wall_clock_us(datetime(9999, 12, 31, 23, 59, 59, 999999))


class Bound(NamedTuple):
    """A query bound: ``us`` microseconds, either a UTC instant or a wall clock.

    ``instant`` True: compared with each action's UTC instant (``utc_us``).
    ``instant`` False: compared with each action's wall clock as written
    (``local_us``).
    """

    us: int
    instant: bool
    ns: int = 0  # nanoseconds beyond ``us`` (0-999), for times written to 7-9 digits

    @classmethod
    def of(cls, value):
        """A Bound from a Bound, or from a datetime: aware is an instant, naive a wall clock."""
        if value is None or isinstance(value, Bound):
            return value
        if isinstance(value, datetime):
            offset = value.utcoffset()
            if offset is None:
                return cls(wall_clock_us(value), False)
            return cls(wall_clock_us(value) - _timedelta_us(offset), True)
        raise TypeError(f"a time bound must be a datetime or a Bound, not {value!r}")


class TimeSpec(NamedTuple):
    """A parsed bound before a zone is applied: the first and last microsecond
    of the unit it names, on its own clock, and its offset (None if it had none).
    A relative time (``2h``) is an instant: ``first == last`` and ``offset_s`` 0.
    """

    first_us: int
    last_us: int
    offset_s: object  # int or None
    text: str
    first_ns: int = 0  # nanoseconds beyond first_us and last_us (0-999)
    last_ns: int = 999


def parse_time_spec(text, *, relative=False, now_us=None):
    """Parse a user-given bound; raise TimeError naming the forms expected.

    ``relative`` also accepts ``30m``, ``2h``, ``7d`` (and ``s``, ``w``),
    counted back from ``now_us`` (default: now), and ``3mo``, ``1y`` on the
    calendar, in UTC.
    """
    text = (text or "").strip()
    if relative:
        match = _RELATIVE_RE.fullmatch(text)
        if match and match[2] == "M":
            # Minutes or months? Other tools read a capital M either way
            raise TimeError(f"'M' could be minutes or months: write {match[1]}m for minutes or"
                            f" {match[1]}mo for months, got {text!r}")
        if match:
            if now_us is None:
                now_us = _time.time_ns() // 1000
            count, unit = int(match[1]), match[2].lower()
            if unit in ("mo", "y"):
                us = _calendar_ago(now_us, count, unit, text)
            else:
                us = now_us - count * _UNIT_US[unit]
            _check_range(us, text)
            return TimeSpec(us, us, 0, text, 0, 0)
    match = _BOUND_RE.fullmatch(text)
    if not match:
        expected = f"{BOUND_FORMS}, or {RELATIVE_FORMS}" if relative else BOUND_FORMS
        raise TimeError(f"expected {expected}, got {text!r}")
    g = match.groupdict()
    year = int(g["year"])
    month, day = int(g["month"] or 1), int(g["day"] or 1)
    hour, minute, second = int(g["hour"] or 0), int(g["minute"] or 0), int(g["second"] or 0)
    fraction = g["fraction"]
    # A fraction names an exact instant, to the nanosecond
    micro, first_ns = divmod(int(fraction.ljust(9, "0")), 1000) if fraction else (0, 0)
    try:
        first = datetime(year, month, day, hour, minute, second, micro)
    except ValueError as ex:
        raise TimeError(f"not a valid time: {text!r} ({ex})") from None
    first_us = wall_clock_us(first)
    # The first microsecond of the next unit, minus one
    last_ns = 999
    if fraction:
        last_us, last_ns = first_us, first_ns
    elif g["second"]:
        last_us = first_us + _US - 1
    elif g["minute"]:
        last_us = first_us + 60 * _US - 1
    elif g["hour"]:
        last_us = first_us + 3600 * _US - 1
    elif g["day"]:
        last_us = first_us + 86400 * _US - 1
    elif g["month"]:
        if (year, month) == (9999, 12):
            last_us = _MAX_US
        else:
            last_us = wall_clock_us(datetime(year + month // 12, month % 12 + 1, 1)) - 1
    else:
        last_us = wall_clock_us(datetime(year + 1, 1, 1)) - 1 if year < 9999 else _MAX_US
    offset_s = _parse_offset(g["offset"], text)
    return TimeSpec(first_us, last_us, offset_s, text, first_ns, last_ns)


# Calendar words: a unit of time named relative to now, on the clock of --tz
# (UTC when none is given, never the host's zone). Weeks start on Monday (ISO 8601).
CALENDAR_WORDS = ("today", "yesterday", "this-week", "last-week", "this-month", "last-month")


class CalendarWord(NamedTuple):
    """A calendar word as given, with the command's "now"; ``calendar_spec``
    turns it into a TimeSpec once the zone is known."""

    word: str
    now_us: int
    text: str


def parse_calendar_word(text: str, *, now_us: int | None = None) -> "CalendarWord | None":
    """A CalendarWord if ``text`` is one of CALENDAR_WORDS (in any case), else None."""
    word = (text or "").strip().lower()
    if word not in CALENDAR_WORDS:
        return None
    return CalendarWord(word, _time.time_ns() // 1000 if now_us is None else now_us, text.strip())


def calendar_spec(word: CalendarWord, tz=None) -> TimeSpec:
    """The unit ``word`` (a CalendarWord) names on zone ``tz``'s clock, as a
    TimeSpec: a wall-clock one read in ``tz``, or with no zone, UTC's."""
    zone = timezone.utc if tz is None else tz
    now = (datetime(1970, 1, 1, tzinfo=timezone.utc)
           + timedelta(microseconds=word.now_us)).astimezone(zone)
    today = now.replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0, fold=0)
    if word.word in ("today", "yesterday"):
        first = today - timedelta(days=word.word == "yesterday")
        after = first + timedelta(days=1)
    elif word.word in ("this-week", "last-week"):
        first = today - timedelta(days=today.weekday() + 7 * (word.word == "last-week"))
        after = first + timedelta(days=7)
    else:
        first = today.replace(day=1)
        if word.word == "last-month":
            first = (first - timedelta(days=1)).replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    # With no zone, UTC's clock: the unit is then a range of instants (offset 0)
    return TimeSpec(wall_clock_us(first), wall_clock_us(after) - 1, 0 if tz is None else None,
                    word.text)


def _calendar_ago(now_us, count, unit, text):
    """``count`` months or years before ``now_us`` on the UTC calendar; a day
    the month lacks becomes its last (a month before March 31st is February 28th)."""
    # imported only here: dateutil costs ~40 ms of start-up
    from dateutil.relativedelta import relativedelta

    step = relativedelta(months=count) if unit == "mo" else relativedelta(years=count)
    try:
        return wall_clock_us(_from_us(now_us) - step)
    except (ValueError, OverflowError):
        raise TimeError(f"too far from now: {text!r}") from None


def _parse_offset(offset, text):
    if offset is None:
        return None
    if offset in "Zz":
        return 0
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise TimeError(f"not a valid UTC offset: {offset!r} in {text!r}")
    seconds = hours * 3600 + minutes * 60
    if seconds > MAX_OFFSET_S:  # as ingest: no action can have been stored with one
        raise TimeError(f"UTC offset beyond ±14:00: {offset!r} in {text!r}")
    return -seconds if offset[0] == "-" else seconds


def parse_zone(name):
    """``UTC`` or an IANA zone name (``America/Denver``) as a tzinfo; TimeError if unknown."""
    if name is None:
        return None
    if name.strip().upper() in ("UTC", "Z"):
        return timezone.utc
    import zoneinfo

    name = name.strip()
    # The host's zone under another name, or a clock counting leap seconds:
    # either would make an answer depend on the machine
    if name.lower() in ("localtime", "posixrules", "factory") or name.startswith("right/"):
        raise TimeError(f"{name!r} is not a time zone ohlog reads: name the zone itself, "
                        "such as America/Denver, or UTC")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        spelled = [zone for zone in zoneinfo.available_timezones() if zone.lower() == name.lower()]
        hint = f" (it is spelled {spelled[0]})" if spelled else ""
        raise TimeError(
            f"unknown time zone {name!r}{hint}: expected an IANA name such as America/Denver, or UTC"
        ) from None


def resolve_bound(spec, *, end=False, tz=None):
    """Turn a TimeSpec into a Bound: the start (or with ``end``, the end) of its unit.

    With an offset it is an instant; without one it is a wall-clock time,
    or, if ``tz`` is given, a wall-clock time in that zone, hence an instant:
    for a start the first instant that zone's clock showed the unit's first
    microsecond or later, for an end the last instant it showed the unit's
    last microsecond or earlier. So a unit that a DST change skips holds
    nothing (its start is after its end), and one it repeats is held whole,
    through both of its occurrences.
    """
    if spec is None:
        return None
    ns = spec.last_ns if end else spec.first_ns
    if spec.offset_s is not None:
        us = (spec.last_us if end else spec.first_us) - spec.offset_s * _US
        return Bound(us, True, ns)
    if tz is None:
        return Bound(spec.last_us if end else spec.first_us, False, ns)
    return Bound(_zone_edge(spec.last_us if end else spec.first_us, tz, end)[0], True, ns)


class Range(NamedTuple):
    """Both bounds of a query, and ``gaps``: ``(first, last)`` UTC instants
    between them that match nothing (see resolve_range)."""

    start: object  # Bound or None
    end: object
    gaps: tuple


def resolve_range(start, end, *, tz=None, names=("start", "end")):
    """Resolve both bounds (TimeSpecs or None) as resolve_bound does; TimeError,
    naming both bounds (``names``) as resolved, if the start is after the end.

    Read in a zone, a range holds exactly the instants when that zone's clock
    showed a time within it, as a range without a zone holds the actions whose
    own clock did. Where a DST change repeats an hour, that excludes the part
    of the repeat which the clock showed outside the range: ``gaps`` lists
    those instants (none unless a bound falls in a repeated hour).
    """
    gaps = []
    bounds = [None, None]
    for index, spec in enumerate((start, end)):
        if spec is None:
            continue
        is_end = index == 1
        if spec.offset_s is None and tz is not None:
            us, gap = _zone_edge(spec.last_us if is_end else spec.first_us, tz, is_end)
            bounds[index] = Bound(us, True, spec.last_ns if is_end else spec.first_ns)
            if gap is not None and gap[0] <= gap[1]:
                gaps.append(gap)
        else:
            bounds[index] = resolve_bound(spec, end=is_end, tz=tz)
    first, last = bounds
    if first is not None and last is not None and _reversed(start, first, end, last):
        if tz is not None and (first.us, first.ns) <= (last.us, last.ns):
            # Compared as clock readings, whose instants are in the other
            # order (across a repeated hour): showing them would contradict
            raise TimeError(f"{names[0]} {start.text} is after {names[1]} {end.text} on"
                            f" {getattr(tz, 'key', tz)}'s clock: nothing can match")
        raise TimeError(f"{names[0]} {start.text} ({_shown(first)}) is after "
                        f"{names[1]} {end.text} ({_shown(last)}): nothing can match")
    return Range(first, last, tuple(gaps))


def _reversed(start, first, end, last):
    if start.offset_s is None and end.offset_s is None:
        # Two wall-clock times (read in the same zone, if any) compare as
        # clock readings: 02:30 to 02:40 on a day that skips them is not
        # reversed, though it holds nothing
        return (start.first_us, start.first_ns) > (end.last_us, end.last_ns)
    if first.instant == last.instant:
        return (first.us, first.ns) > (last.us, last.ns)
    # An instant and a wall clock: an action's wall clock is within 14 hours
    # of its instant, so only a start this much later is surely reversed
    return first.us - MAX_OFFSET_S * _US > last.us


def _shown(bound):
    try:
        return format_us(bound.us) + ("Z" if bound.instant else "")
    except (ValueError, OverflowError):  # an offset took it past year 9999 or before year 1
        return "after year 9999" if bound.us > 0 else "before year 1"


def _zone_edge(wall_us, tz, end):
    """``(instant, gap)`` for one edge of a range read on zone ``tz``'s clock.

    ``instant``: for a start, the first instant the clock showed ``wall_us``
    or later; for an end, the last instant it showed ``wall_us`` or earlier.
    ``gap``: None, or the ``(first, last)`` instants inside the edge when the
    clock showed a time outside the range, because it went back an hour.
    """
    before, after = (_offset_us(wall_us, tz, fold) for fold in (0, 1))
    if before == after:
        return wall_us - before, None
    # the instant the offset changed lies between the two readings of wall_us
    turn = _turn(tz, wall_us - max(before, after), wall_us - min(before, after))
    if before < after:
        # clocks went forward: wall_us never showed, the change came next
        return (turn - 1 if end else turn), None
    # clocks went back: wall_us showed twice, at these instants
    once, again = wall_us - before, wall_us - after
    if end:
        # after its first showing the clock ran past the end until it went back
        return again, (once + 1, turn - 1)
    # once it went back, the clock showed less than the start until it came round again
    return once, (turn, again - 1)


def _offset_us(wall_us, tz, fold):
    """The UTC offset of a wall-clock reading in ``tz`` (``fold`` 1: the later one)."""
    clamped = min(max(wall_us, _MIN_US), _MAX_US)
    return _timedelta_us(_from_us(clamped).replace(tzinfo=tz, fold=fold).utcoffset())


def _turn(tz, lo, hi):
    """The first instant in ``(lo, hi]`` with ``hi``'s offset, ``lo`` having another."""
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)

    def offset_at(us):
        return (epoch + timedelta(microseconds=us)).astimezone(tz).utcoffset()

    old = offset_at(lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if offset_at(mid) == old:
            lo = mid
        else:
            hi = mid
    return hi


def _from_us(us):
    return datetime(1970, 1, 1) + timedelta(microseconds=us)


def _timedelta_us(delta):
    return (delta.days * 86400 + delta.seconds) * _US + delta.microseconds


def _check_range(us, text):
    if not _MIN_US <= us <= _MAX_US:
        raise TimeError(f"too far from now: {text!r}")
