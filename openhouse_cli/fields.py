"""``--fields``: which values each printed action holds, and in what order.

Besides the five stored fields (``userId``, ``sessionId``, ``time``, ``type``,
``properties``) a field may be ``utc`` (the instant, ISO 8601 with ``Z``),
``local`` (the wall clock as written, without offset), ``offset`` (as
written, ``+05:30``; none when the time had none) or ``properties.KEY`` (one
top-level property; write the key as a JSON string, ``properties."a,b"``,
when it holds a comma or spaces at its ends).

``utc`` and ``local`` keep exactly the fraction digits the time was written
with (none, 3 for milliseconds, up to 9 for nanoseconds), so they are as
exact as the stored time and no more verbose. Only the standard library is
imported here: ``ohlog query`` must start fast.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Iterable, Iterator, Sequence

from .errors import OhlogError

STORED = ("userId", "sessionId", "time", "type", "properties")
DERIVED = ("utc", "local", "offset")
PROPERTY = "properties."
FIELD_FORMS = "userId, sessionId, time, type, properties, utc, local, offset or properties.KEY"
# The columns a row of fields is built from, in this order (schema.COLUMNS' names)
COLUMNS = "user_id, session_id, time, type, properties, utc_us, ns, local_us, offset_s"

_FRACTION = re.compile(r"[.,](\d+)")
# One field: a quoted property key (which may hold commas), or anything up to a comma
_FIELD = re.compile(r'\s*(properties\."(?:[^"\\]|\\.)*"|[^,]*?)\s*(?:,|$)')
_US = 1_000_000
_MISSING = object()


class FieldsError(OhlogError, ValueError):
    """A --fields value that names no field; the message lists the forms."""


def parse_fields(text: str) -> tuple[str, ...]:
    """The field names in ``text`` (comma-separated), checked; FieldsError if not."""
    names: list[str] = []
    position = 0
    while position < len(text) or not names:
        match = _FIELD.match(text, position)
        assert match is not None  # the pattern matches any text, even empty
        name = match[1]
        if name.startswith(PROPERTY + '"'):
            try:
                key = json.loads(name[len(PROPERTY):])
            except ValueError:
                raise FieldsError(f"not a JSON string: {name[len(PROPERTY):]!r}") from None
            name = PROPERTY + key
        elif not name:
            raise FieldsError(f"an empty field in {text!r}: expected {FIELD_FORMS}")
        elif name not in STORED and name not in DERIVED and not (
            name.startswith(PROPERTY) and len(name) > len(PROPERTY)
        ):
            raise FieldsError(f"unknown field {name!r}: expected {FIELD_FORMS}")
        if name in names:
            raise FieldsError(f"{name!r} is given twice")
        names.append(name)
        position = match.end()
        if position == len(text) and text.rstrip().endswith(","):
            raise FieldsError(f"an empty field in {text!r}: expected {FIELD_FORMS}")
    return tuple(names)


# ---------------------------------------------------------------------------
# Values of one row: (user_id, session_id, time, type, properties, utc_us, ns,
# local_us, offset_s), as COLUMNS selects them.


def _digits(time: str) -> int:
    """How many fraction digits ``time`` was written with (0 to 9)."""
    match = _FRACTION.search(time)
    return len(match[1]) if match else 0


def civil(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day counted from 1970-01-01 (Howard Hinnant's
    algorithm: exact for years 0 and 10000, which an offset can reach from a
    stored time in year 1 or 9999 and which datetime cannot hold)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def iso(us: int, ns: int, digits: int) -> str:
    """ISO 8601 text, without offset, of ``us`` microseconds (and ``ns``
    nanoseconds) from 1970-01-01T00:00, to ``digits`` fraction digits."""
    seconds, micro = divmod(us, _US)
    days, rem = divmod(seconds, 86400)
    year, month, day = civil(days)
    text = f"{year:04d}-{month:02d}-{day:02d}T{rem // 3600:02d}:{rem // 60 % 60:02d}:{rem % 60:02d}"
    if digits:
        text += "." + f"{micro:06d}{ns:03d}"[:digits]
    return text


def offset_text(offset_s: int | None) -> str | None:
    """``+05:30`` for 19800 seconds (``+HH:MM:SS`` if it has seconds); None for None."""
    if offset_s is None:
        return None
    sign = "-" if offset_s < 0 else "+"
    hours, rem = divmod(abs(offset_s), 3600)
    text = f"{sign}{hours:02d}:{rem // 60:02d}"
    return text + f":{rem % 60:02d}" if rem % 60 else text


def utc_text(row: Sequence) -> str:
    return iso(row[5], row[6], _digits(row[2])) + "Z"


def local_text(row: Sequence) -> str:
    return iso(row[7], row[6], _digits(row[2]))


def zoned_text(row: Sequence, tz) -> str:
    """The instant as zone ``tz``'s clock showed it, with that offset (``Z`` in
    UTC); in UTC if the zone's clock cannot be told (beyond years 1-9999)."""
    from datetime import datetime, timedelta, timezone

    if tz is timezone.utc:
        return utc_text(row)
    try:
        at = (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=row[5])).astimezone(tz)
    except (OverflowError, ValueError):
        return utc_text(row)
    offset = at.utcoffset()
    assert offset is not None  # an aware datetime
    offset_s = offset.days * 86400 + offset.seconds
    return iso(row[5] + offset_s * _US, row[6], _digits(row[2])) + (offset_text(offset_s) or "")


def _loads(text: str) -> dict:
    return json.loads(text)


# Digits all turned to 0, to find a run of them with one fast substring test
_DIGITS_TO_ZERO = str.maketrans("123456789", "000000000")
_DIGITS_TO_ZERO_BYTES = bytes.maketrans(b"123456789", b"000000000")


def may_hold_big_int(data: str | bytes) -> bool:
    """Whether ``data`` holds a run of 19 digits or more: perhaps an integer
    beyond 64 bits (2**63 has 19 digits), which orjson would turn into an
    inexact float. Such text is parsed by the stdlib instead, which keeps
    every integer exactly."""
    if isinstance(data, str):
        return "0" * 19 in data.translate(_DIGITS_TO_ZERO)
    return b"0" * 19 in data.translate(_DIGITS_TO_ZERO_BYTES)


def exact_dumps(value: Any, sort_keys: bool = False) -> bytes:
    """Compact JSON of ``value``, with integers beyond 64 bits (which orjson
    refuses) written exactly by the standard library."""
    import orjson

    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else None)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                          sort_keys=sort_keys).encode()


def exact_loads(text: str) -> Any:
    """Stored JSON (properties) as Python values, fast, with every integer exact:
    orjson turns integers beyond 64 bits into floats (two such values could
    then compare equal), so text with a run of 19 digits or more goes to the
    standard library's parser instead."""
    import orjson

    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None  # the path below raises the parser's own error
    else:
        # The commonest properties, an object of strings, read alike by both
        # parsers (no number to lose): no need to look for long runs of digits,
        # which costs more than the parse
        if type(value) is str:  # no number in it to lose
            return value
        if type(value) is dict:
            for item in value.values():
                if type(item) is not str:
                    break
            else:
                return value
    if may_hold_big_int(text):
        return json.loads(text)
    return orjson.loads(text) if value is None else value


def _getters(names: Sequence[str]) -> list[Callable]:
    """For each field, a function of (row, properties dict or None) giving its value;
    a property's value is _MISSING when the action does not have it."""
    fixed = {
        "userId": lambda row, p: row[0],
        "sessionId": lambda row, p: row[1],
        "time": lambda row, p: row[2],
        "type": lambda row, p: row[3],
        "properties": lambda row, p: row[4],
        "utc": lambda row, p: utc_text(row),
        "local": lambda row, p: local_text(row),
        "offset": lambda row, p: offset_text(row[8]),
    }

    def prop(key):
        return lambda row, p: p.get(key, _MISSING)

    return [fixed[n] if n in fixed else prop(n[len(PROPERTY):]) for n in names]


def _values(rows: Iterable[Sequence], names: Sequence[str]) -> Iterator[list]:
    getters = _getters(names)
    parse = any(n.startswith(PROPERTY) for n in names)
    for row in rows:
        properties = _loads(row[4]) if parse else None
        yield [get(row, properties) for get in getters]


def _json_value(name: str, value) -> str:
    if name == "properties":
        return value  # stored as compact JSON already
    if value is _MISSING:
        return "null"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_lines(rows: Iterable[Sequence], names: Sequence[str]) -> Iterator[str]:
    """Each row as a compact JSON object holding ``names`` in order."""
    keys = [json.dumps(n, ensure_ascii=False) + ":" for n in names]
    for values in _values(rows, names):
        yield "{" + ",".join(k + _json_value(n, v) for k, n, v in zip(keys, names, values)) + "}"


def _csv_cell(name: str, value) -> str:
    """A string or number as itself; anything else (an object, a list, true,
    false, null) as JSON text; a missing property or offset as an empty cell."""
    if value is _MISSING or value is None and name == "offset":
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def csv_rows(rows: Iterable[Sequence], names: Sequence[str]) -> Iterator[list]:
    """Each row as the CSV cells of ``names``, in order."""
    for values in _values(rows, names):
        yield [_csv_cell(n, v) for n, v in zip(names, values)]
