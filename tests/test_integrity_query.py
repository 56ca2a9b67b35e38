"""Issue 8, items 6, 7, 9, 13, 14 and 23 through the library: every answer exact,
every unusable filter a FilterError or TimeError, never another exception."""

import operator
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openhouse_cli.ingest import ingest_sessions
from openhouse_cli.query import FilterError, Where, count_actions, parse_where, query_actions
from openhouse_cli.times import (
    TimeError, format_us, parse_time_spec, parse_zone, resolve_range, wall_clock_us,
)

OPS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
       ">": operator.gt, ">=": operator.ge}


def ingest_properties(db, values):
    """One action a value of ``x``, a second apart, in order."""
    actions = [{"time": f"2018-01-01T00:00:{i:02d}Z", "type": "T", "properties": props}
               for i, props in enumerate(values)]
    ingest_sessions(db, [{"userId": "u", "sessionId": "s", "actions": actions}])


# --- item 9: numbers compare exactly, whichever side is beyond 64 bits ------

STORED = [18446744073709551615, 18446744073709551614, 2**64 + 1, 2**64 + 2, 2**63, 2**63 - 1,
          -(2**63), -(2**63) - 1, -(2**64), 1.8446744073709552e19, -9.223372036854775808e18,
          0.5, 5, "18446744073709551615", True, None]
GIVEN = [18446744073709551614, 18446744073709551615, 2**64, 2**64 + 1, 2**63, 2**63 - 1,
         -(2**63), -(2**63) - 1, 1.8446744073709552e19, -9.223372036854775808e18, 5, 0.5,
         float("inf"), 10**400]


def expected_matches(values, op, given):
    found = []
    for i, value in enumerate(values):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if number and OPS[op](value, given) or (op == "!=" and not number):
            found.append(i)
    return found


@pytest.fixture
def numbers(store):
    # as x, and again in a row whose text holds a NUL (read by Python, not json_extract)
    ingest_properties(store, [{"x": v} for v in STORED] + [{"x": v, "n": "\x00"} for v in STORED])
    return store


def test_big_integers_are_stored_exactly(numbers):
    assert [a["properties"]["x"] for a in query_actions(numbers)] == STORED + STORED


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("given", GIVEN, ids=repr)
def test_where_compares_numbers_exactly(numbers, op, given):
    values = STORED + STORED
    found = [a["time"] for a in query_actions(numbers, where=[Where("x", op, given)])]
    assert found == [f"2018-01-01T00:00:{i:02d}Z" for i in expected_matches(values, op, given)]
    # the same through the command line's parser, from the number as written
    if isinstance(given, int):
        assert count_actions(numbers, where=[f"x {op} {given}"]) == len(found)


def test_the_reported_case(store):
    ingest_properties(store, [{"x": 18446744073709551615}])
    assert count_actions(store, where=["x=18446744073709551614"]) == 0
    assert count_actions(store, where=["x>18446744073709551614"]) == 1
    assert count_actions(store, where=["x=18446744073709551615"]) == 1


# --- item 13: --where forms ---------------------------------------------------

@pytest.mark.parametrize("spec,parsed", [
    ("locationX >= 1900", Where("locationX", ">=", 1900)),
    ("  locationX>=1900  ", Where("locationX", ">=", 1900)),
    ("page from = inventory ", Where("page from", "=", "inventory")),
    ('name=" Bob "', Where("name", "=", " Bob ")),
    ('"a=b" = 1', Where("a=b", "=", 1)),  # a key holding an operator, quoted
    ('" k "!=x', Where(" k ", "!=", "x")),
    ('x = ""', Where("x", "=", "")),
    ('"x=1', Where('"x', "=", 1)), ('"=1', Where('"', "=", 1)),  # no JSON string: read as written
])
def test_spaces_around_the_operator_are_ignored(spec, parsed):
    assert parse_where(spec) == parsed


@pytest.mark.parametrize("spec,why", [
    ("locationX=>1900", "=> is not an operator"), ("x==1", "== is not an operator"),
    ("x<>1", "<> is not an operator"), ("x=<1", "=< is not an operator"),
    ("x>=", "no value after >="), ("x = ", "no value after ="),
    (" = 1", "no property name before ="), ("locationX 1900", "expected"), ("", "expected"),
    ('"x" 1', "expected"),
    ('x="abc', "not a valid JSON string"), ('x="a"b', "not one JSON string"),
])
def test_anything_else_is_an_error_naming_the_forms(spec, why):
    with pytest.raises(FilterError) as caught:
        parse_where(spec)
    assert why in str(caught.value)
    assert f"expected KEY=VALUE, KEY!=VALUE, KEY>VALUE, KEY>=VALUE, KEY<VALUE or KEY<=VALUE, got {spec!r}" \
        in str(caught.value)


def test_spaced_and_unspaced_conditions_find_the_same(store):
    ingest_properties(store, [{"locationX": 1899}, {"locationX": 1900}, {"locationX": 2000}])
    assert count_actions(store, where=["locationX >= 1900"]) == count_actions(store, where=["locationX>=1900"]) == 2


# --- item 6: values no query can use ----------------------------------------

@pytest.mark.parametrize("filters", [
    {"users": ["caf\udce9"]}, {"sessions": ["\udcff"]}, {"types": ["\ud800"]},
    {"where": ['g="\\ud800"']}, {"where": ['"\\udc00"=1']}, {"where": ["g=caf\udce9"]},
    {"where": [Where("g", "=", "\ud800")]}, {"where": [Where("\udcff", "=", 1)]},
    {"where": [Where("g", "=", float("nan"))]}, {"where": ["x=" + "1" * 5000]},
    {"where": [Where("g", "<", 10**5000)]}, {"limit": 2**63}, {"limit": 10**30},
    {"gaps": [(1, "2")]},
])
def test_unusable_filters_are_filter_errors(store, filters):
    with pytest.raises(FilterError):
        list(query_actions(store, **filters))


# --- item 7: --tz at every precision across DST --------------------------------

ZONES = ["America/Denver", "Europe/London", "Australia/Lord_Howe", "America/St_Johns",
         "Pacific/Apia", "Asia/Kolkata", "UTC"]
# Instants around the changes these zones made (Lord Howe moves by 30 minutes;
# Apia skipped 2011-12-30 whole)
CHANGES = [datetime(2018, 3, 11, 9, tzinfo=timezone.utc), datetime(2018, 11, 4, 8, tzinfo=timezone.utc),
           datetime(2018, 3, 25, 1, tzinfo=timezone.utc), datetime(2018, 10, 28, 1, tzinfo=timezone.utc),
           datetime(2018, 3, 31, 15, tzinfo=timezone.utc), datetime(2018, 10, 6, 15, 30, tzinfo=timezone.utc),
           datetime(2018, 3, 11, 5, 30, tzinfo=timezone.utc), datetime(2018, 11, 4, 3, 30, tzinfo=timezone.utc),
           datetime(2011, 12, 30, 10, tzinfo=timezone.utc)]


def wall_us(instant, zone):
    return wall_clock_us(instant.astimezone(zone).replace(tzinfo=None))


def spec_text(instant, zone, precision):
    """A bound without offset naming ``instant``'s unit on ``zone``'s clock."""
    text = instant.astimezone(zone).replace(tzinfo=None).isoformat(timespec="microseconds")
    return {"day": text[:10], "hour": text[:13], "minute": text[:16], "second": text[:19],
            "micro": text}[precision]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    zone_name=st.sampled_from(ZONES),
    change=st.sampled_from(CHANGES),
    offsets=st.lists(st.integers(-150, 150), min_size=1, max_size=12),
    seconds=st.integers(0, 59),
    bounds=st.tuples(st.integers(-150, 150), st.integers(-150, 150)),
    precision=st.sampled_from(["day", "hour", "minute", "second", "micro"]),
    date=st.booleans(),
)
def test_a_zone_range_holds_exactly_what_that_clock_showed(
        store, zone_name, change, offsets, seconds, bounds, precision, date):
    """Against brute force: an action matches when the zone's clock, at its
    instant, showed a time within the bounds' units; whatever offset it was
    logged with."""
    zone = parse_zone(zone_name)
    instants = sorted({change + timedelta(minutes=m, seconds=seconds) for m in offsets})
    actions = [{"time": t.astimezone(zone).isoformat() if i % 2 else t.isoformat(), "type": "T",
                "properties": {"i": i}} for i, t in enumerate(instants)]
    db = store
    store.execute("DELETE FROM actions")
    ingest_sessions(db, [{"userId": "u", "sessionId": "s", "actions": actions}])
    first, last = (spec_text(change + timedelta(minutes=m), zone, precision) for m in bounds)
    start, end = parse_time_spec(first), parse_time_spec(last if not date else first)
    if start.first_us > end.last_us:
        with pytest.raises(TimeError, match="is after"):
            resolve_range(start, end, tz=zone)
        return
    span = resolve_range(start, end, tz=zone)
    found = [a["properties"]["i"] for a in query_actions(
        db, start=span.start, end=span.end, gaps=span.gaps)]
    expected = [i for i, t in enumerate(instants) if start.first_us <= wall_us(t, zone) <= end.last_us]
    assert found == expected


DENVER = [
    "2018-03-11T01:59:30-07:00", "2018-03-11T03:00:00-06:00", "2018-03-11T03:30:00-06:00",
    "2018-11-04T00:59:59-06:00", "2018-11-04T01:00:00-06:00", "2018-11-04T01:30:00-06:00",
    "2018-11-04T01:45:00-06:00", "2018-11-04T01:15:00-07:00", "2018-11-04T01:30:00-07:00",
    "2018-11-04T08:30:30Z", "2018-11-04T02:00:00-07:00",
]


@pytest.mark.parametrize("date,expected", [
    ("2018-03-11T02", []),  # never on a Denver clock
    ("2018-03-11T02:30", []), ("2018-03-11T02:30:00", []), ("2018-03-11T02:30:00.000", []),
    ("2018-03-11T03:30", ["2018-03-11T03:30:00-06:00"]),
    ("2018-11-04T01:30", ["2018-11-04T01:30:00-06:00", "2018-11-04T01:30:00-07:00",
                          "2018-11-04T08:30:30Z"]),  # twice, and nothing between
    ("2018-11-04T01:30:00", ["2018-11-04T01:30:00-06:00", "2018-11-04T01:30:00-07:00"]),
    ("2018-11-04T01:30:00.0", ["2018-11-04T01:30:00-06:00", "2018-11-04T01:30:00-07:00"]),
    ("2018-11-04T01", DENVER[4:10]),
])
def test_denver_date_units(store, date, expected):
    ingest_sessions(store, [{"userId": "u", "sessionId": "s", "actions": [
        {"time": t, "type": "T", "properties": {}} for t in DENVER]}])
    spec = parse_time_spec(date)
    span = resolve_range(spec, spec, tz=parse_zone("America/Denver"))
    assert [a["time"] for a in query_actions(store, start=span.start, end=span.end, gaps=span.gaps)] == expected


# --- item 14: a reversed range ------------------------------------------------

NOW = wall_clock_us(datetime(2026, 12, 1, 12))


@pytest.mark.parametrize("start,end,tz,message", [
    ("2018-07", "2018-06", None,
     "start 2018-07 (2018-07-01T00:00:00) is after end 2018-06 (2018-06-30T23:59:59.999999)"),
    ("7d", "30d", None,
     "start 7d (2026-11-24T12:00:00Z) is after end 30d (2026-11-01T12:00:00Z)"),
    ("1mo", "1y", None, "start 1mo (2026-11-01T12:00:00Z) is after end 1y (2025-12-01T12:00:00Z)"),
    ("2018-10-19T03:37:28Z", "2018-10-19T03:37:27.5Z", None, "is after end 2018-10-19T03:37:27.5Z"),
    ("2018-07", "2018-06", "America/Denver",
     "start 2018-07 (2018-07-01T06:00:00Z) is after end 2018-06 (2018-07-01T05:59:59.999999Z)"),
    ("2018-10-21T00:00Z", "2018-10-19", None, "is after end 2018-10-19 (2018-10-19T23:59:59.999999)"),
    ("9999-12-31T23:59:59.9-14:00", "2018", None, "(after year 9999) is after end 2018"),
    # Across a repeated hour the clock readings are reversed and their instants
    # are not: the instants are not shown (found from outside)
    ("2018-11-04T01:59", "2018-11-04T01:15", "America/New_York",
     "start 2018-11-04T01:59 is after end 2018-11-04T01:15 on America/New_York's clock: nothing can match"),
    ("2018-10-28T02:50", "2018-10-28T02:10", "Europe/Berlin",
     "start 2018-10-28T02:50 is after end 2018-10-28T02:10 on Europe/Berlin's clock: nothing can match"),
])
def test_a_reversed_range_names_both_bounds_as_resolved(start, end, tz, message):
    start, end = (parse_time_spec(t, relative=True, now_us=NOW) for t in (start, end))
    with pytest.raises(TimeError, match="is after") as caught:
        resolve_range(start, end, tz=parse_zone(tz))
    assert message in str(caught.value)


@pytest.mark.parametrize("start,end,tz", [
    ("2018-03-11T02:30", "2018-03-11T02:45", "America/Denver"),  # never shown: empty, not reversed
    ("2018-10-19", "2018-10-19", None), ("2018-10-19T03:37:28Z", "2018-10-18T21:37", None),
    ("30d", "7d", None),
])
def test_ranges_that_are_not_reversed(start, end, tz):
    start, end = (parse_time_spec(t, relative=True, now_us=NOW) for t in (start, end))
    resolve_range(start, end, tz=parse_zone(tz))


# --- item 23: times ago in months and years ---------------------------------

@pytest.mark.parametrize("now,text,then", [
    ("2018-03-31T12:00:00", "1mo", "2018-02-28T12:00:00"),  # no February 31st: its last day
    ("2018-03-31T12:00:00", "3mo", "2017-12-31T12:00:00"),
    ("2020-02-29T00:00:00.5", "1y", "2019-02-28T00:00:00.500000"),
    ("2020-02-29T00:00:00", "4Y", "2016-02-29T00:00:00"),
    ("2018-03-31T12:00:00", "12 MO", "2017-03-31T12:00:00"),
    ("2018-03-31T12:00:00", "0y", "2018-03-31T12:00:00"),
    ("2018-03-31T12:00:00", "2m", "2018-03-31T11:58:00"),  # m is still minutes
])
def test_months_and_years_ago_on_the_calendar(now, text, then):
    now_us = wall_clock_us(datetime.fromisoformat(now))
    spec = parse_time_spec(text, relative=True, now_us=now_us)
    assert (format_us(spec.first_us), spec.first_us, spec.offset_s) == (then, spec.last_us, 0)


@pytest.mark.parametrize("text", ["999999999y", "999999999mo", "2026y"])
def test_too_many_years_ago(text):
    with pytest.raises(TimeError, match="too far from now"):
        parse_time_spec(text, relative=True, now_us=NOW)


def test_months_only_where_times_ago_are_allowed():
    with pytest.raises(TimeError, match="expected an ISO 8601 time"):
        parse_time_spec("3mo")
