"""Everything about time, in one place.

Action times are parsed on ingest's hot path with ``datetime.fromisoformat``
(about 8x faster than dateutil's ``isoparse``). Each action is stored as two
integers of microseconds: its UTC instant, and its wall-clock time as written
(counted as if that wall clock were UTC), so that both kinds of query bound
compare with plain integers.
"""

from datetime import datetime

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


# Seconds at the start of each calendar day seen, keyed by the date text:
# the hot path then skips toordinal(). Cleared when it grows, so that hostile
# input with millions of dates cannot grow it without bound.
_day_seconds = {}


def parse_action_time(text):
    """Parse an action's ``time``; return ``(utc_us, local_us, offset_s)``.

    ``offset_s`` is None when the string has no UTC offset: such a time is
    taken to be UTC, and its wall clock is the time as written.
    Raises TimeError with a message fit for the user.
    """
    try:
        dt = datetime.fromisoformat(text)
    except (ValueError, TypeError):
        raise TimeError(f"not an ISO 8601 time: {text!r}") from None
    # fromisoformat also takes a bare date; an action needs a time of day
    if "T" not in text and " " not in text and "t" not in text:
        raise TimeError(f"not an ISO 8601 time with a time of day: {text!r}")
    date_key = text[:10]
    day = _day_seconds.get(date_key)
    if day is None:
        if len(_day_seconds) > 100_000:
            _day_seconds.clear()
        day = _day_seconds[date_key] = (dt.toordinal() - _EPOCH_ORDINAL) * 86400
    local_us = (day + dt.hour * 3600 + dt.minute * 60 + dt.second) * _US + dt.microsecond
    offset = dt.utcoffset()
    if offset is None:
        return local_us, local_us, None
    offset_s = offset.days * 86400 + offset.seconds
    if offset.microseconds:
        raise TimeError(f"UTC offset with fractions of a second: {text!r}")
    if not -MAX_OFFSET_S <= offset_s <= MAX_OFFSET_S:
        raise TimeError(f"UTC offset beyond ±14:00: {text!r}")
    return local_us - offset_s * _US, local_us, offset_s


def format_us(us):
    """ISO 8601 text (no offset) for a microsecond count; for messages and views."""
    seconds, micro = divmod(us, _US)
    days, rem = divmod(seconds, 86400)
    dt = datetime.fromordinal(_EPOCH_ORDINAL + days).replace(
        hour=rem // 3600, minute=rem // 60 % 60, second=rem % 60, microsecond=micro
    )
    return dt.isoformat()
