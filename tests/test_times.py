"""Parsing user-given query bounds (times.py's second half)."""

import re
from datetime import datetime, timedelta, timezone

import pytest

from openhouse_cli.times import (
    Bound,
    TimeError,
    TimeSpec,
    format_us,
    parse_time_spec,
    parse_zone,
    resolve_bound,
    wall_clock_us,
)

US = 1_000_000
HOUR = 3600 * US


def us(text):
    return wall_clock_us(datetime.fromisoformat(text))


@pytest.mark.parametrize(
    "text,first,last",
    [
        ("2018", "2018-01-01T00:00:00", "2018-12-31T23:59:59.999999"),
        ("2018-02", "2018-02-01T00:00:00", "2018-02-28T23:59:59.999999"),
        ("2016-02", "2016-02-01T00:00:00", "2016-02-29T23:59:59.999999"),
        ("2018-12", "2018-12-01T00:00:00", "2018-12-31T23:59:59.999999"),
        ("2018-10-18", "2018-10-18T00:00:00", "2018-10-18T23:59:59.999999"),
        ("2018-10-18T21", "2018-10-18T21:00:00", "2018-10-18T21:59:59.999999"),
        ("2018-10-18 21:37", "2018-10-18T21:37:00", "2018-10-18T21:37:59.999999"),
        ("2018-10-18T21:37:28", "2018-10-18T21:37:28", "2018-10-18T21:37:28.999999"),
        ("2018-10-18t21:37:28.5", "2018-10-18T21:37:28.500000", "2018-10-18T21:37:28.500000"),
        ("2018-10-18T21:37:28,123456789", "2018-10-18T21:37:28.123456", "2018-10-18T21:37:28.123456"),
        ("9999", "9999-01-01T00:00:00", "9999-12-31T23:59:59.999999"),
        ("9999-12", "9999-12-01T00:00:00", "9999-12-31T23:59:59.999999"),
        ("  2018-10-18  ", "2018-10-18T00:00:00", "2018-10-18T23:59:59.999999"),
    ],
)
def test_units(text, first, last):
    spec = parse_time_spec(text)
    assert (format_us(spec.first_us), format_us(spec.last_us)) == (first, last)
    assert spec.offset_s is None


@pytest.mark.parametrize(
    "text,offset_s",
    [
        ("2018-10-19T03:37:28Z", 0),
        ("2018-10-19T03:37:28z", 0),
        ("2018-10-19T03:37:28+00:00", 0),
        ("2018-10-19T03:37:28-00:00", 0),
        ("2018-10-18T21:37:28-06:00", -6 * 3600),
        ("2018-10-19T09:07:28+05:30", 19800),
        ("2018-10-19T09:07:28+0530", 19800),
        ("2018-10-19T09+05", 5 * 3600),
        ("2018-10-18T19:37:28-08:00", -8 * 3600),
    ],
)
def test_offsets(text, offset_s):
    assert parse_time_spec(text).offset_s == offset_s


def test_the_same_instant_in_four_offsets():
    texts = ["2018-10-19T03:37:28Z", "2018-10-18T21:37:28-06:00",
             "2018-10-19T09:07:28+05:30", "2018-10-18T19:37:28-08:00"]
    bounds = {resolve_bound(parse_time_spec(t)) for t in texts}
    assert bounds == {Bound(us("2018-10-19T03:37:28"), True)}
    ends = {resolve_bound(parse_time_spec(t), end=True) for t in texts}
    assert ends == {Bound(us("2018-10-19T03:37:28.999999"), True, 999)}


def test_without_offset_is_a_wall_clock():
    spec = parse_time_spec("2018-10-18T21:37:25")
    assert resolve_bound(spec) == Bound(us("2018-10-18T21:37:25"), False)
    assert resolve_bound(spec, end=True) == Bound(us("2018-10-18T21:37:25.999999"), False, 999)


@pytest.mark.parametrize(
    "text,zone,start,end",
    [
        ("2018-10-18", "UTC", "2018-10-18T00:00:00", "2018-10-18T23:59:59.999999"),
        ("2018-10-18", "utc", "2018-10-18T00:00:00", "2018-10-18T23:59:59.999999"),
        ("2018-10-18", "America/Denver", "2018-10-18T06:00:00", "2018-10-19T05:59:59.999999"),
        ("2018-10-18", "Asia/Kolkata", "2018-10-17T18:30:00", "2018-10-18T18:29:59.999999"),
        # the day clocks go back is 25 hours long; the day they go forward 23
        ("2018-11-04", "America/Denver", "2018-11-04T06:00:00", "2018-11-05T06:59:59.999999"),
        ("2018-03-11", "America/Denver", "2018-03-11T07:00:00", "2018-03-12T05:59:59.999999"),
        # 01:00-01:59 happens twice on 2018-11-04 in Denver: both are included
        ("2018-11-04T01", "America/Denver", "2018-11-04T07:00:00", "2018-11-04T08:59:59.999999"),
    ],
)
def test_zone_reads_wall_clock_bounds_as_instants(text, zone, start, end):
    spec, tz = parse_time_spec(text), parse_zone(zone)
    assert resolve_bound(spec, tz=tz) == Bound(us(start), True)
    assert resolve_bound(spec, end=True, tz=tz) == Bound(us(end), True, 999)


def test_zone_does_not_change_a_bound_with_an_offset():
    spec = parse_time_spec("2018-10-19T03:37:28Z")
    assert resolve_bound(spec, tz=parse_zone("Asia/Tokyo")) == resolve_bound(spec)


@pytest.mark.parametrize("name", ["Mars/Olympus", "../../etc/passwd", "", "America/"])
def test_unknown_zone(name):
    with pytest.raises(TimeError, match="unknown time zone .*expected an IANA name such as"):
        parse_zone(name)


NOW = us("2018-10-19T12:00:00")


@pytest.mark.parametrize(
    "text,ago",
    [("30m", 30 * 60 * US), ("2h", 2 * HOUR), ("7d", 7 * 24 * HOUR), ("45s", 45 * US),
     ("1w", 7 * 24 * HOUR), ("2H", 2 * HOUR), ("0m", 0)],
)
def test_relative(text, ago):
    spec = parse_time_spec(text, relative=True, now_us=NOW)
    assert spec == TimeSpec(NOW - ago, NOW - ago, 0, text, 0, 0)
    # an instant, whether start or end, and whatever the zone
    assert resolve_bound(spec) == resolve_bound(spec, end=True, tz=parse_zone("Asia/Tokyo"))
    assert resolve_bound(spec) == Bound(NOW - ago, True)


def test_relative_uses_the_clock_not_the_host_zone():
    spec = parse_time_spec("1h", relative=True)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    assert abs(spec.first_us - wall_clock_us(now - timedelta(hours=1))) < 60 * US


def test_relative_only_where_allowed():
    with pytest.raises(TimeError, match=r"^expected an ISO 8601 time such as 2018-10-18, "
                                        r"2018-10-18T21:37 or 2018-10-19T03:37:28Z, got '2h'$"):
        parse_time_spec("2h")
    with pytest.raises(TimeError, match="or a time ago such as 30m, 2h, 7d, 3mo or 1y, got '2x'"):
        parse_time_spec("2x", relative=True)


@pytest.mark.parametrize(
    "text,message",
    [
        ("yesterday", "expected an ISO 8601 time"),
        ("", "expected an ISO 8601 time"),
        ("18-10-2018", "expected an ISO 8601 time"),
        ("2018-10-18T21:37:28+05:30:00", "expected an ISO 8601 time"),
        ("2018-10-18+05:30", "expected an ISO 8601 time"),  # an offset needs a time of day
        ("2018-13", "not a valid time: '2018-13' (month must be in 1..12)"),
        ("2018-02-29", "not a valid time: '2018-02-29' (day is out of range for month)"),
        ("2018-10-18T24:00", "not a valid time"),
        ("2018-10-18T21:60", "not a valid time"),
        ("2018-10-18T21:37:28+24:00", "not a valid UTC offset: '+24:00'"),
        ("0000-01-01", "not a valid time"),
    ],
)
def test_invalid(text, message):
    with pytest.raises(TimeError, match=re.escape(message)):
        parse_time_spec(text)


def test_relative_too_far_back():
    with pytest.raises(TimeError, match="too far from now: '999999999w'"):
        parse_time_spec("999999999w", relative=True, now_us=NOW)


def test_bound_of_datetimes():
    aware = datetime(2018, 10, 18, 21, 37, 28, tzinfo=timezone(timedelta(hours=-6)))
    assert Bound.of(aware) == Bound(us("2018-10-19T03:37:28"), True)
    assert Bound.of(datetime(2018, 10, 18, 21, 37, 28)) == Bound(us("2018-10-18T21:37:28"), False)
    assert Bound.of(None) is None
    bound = Bound(5, True)
    assert Bound.of(bound) is bound
    with pytest.raises(TypeError, match="a time bound must be a datetime or a Bound"):
        Bound.of("2018-10-18")


@pytest.mark.parametrize("name", ["localtime", "LOCALTIME", "posixrules", "Factory", "right/UTC",
                                  "right/America/Denver"])
def test_the_hosts_zone_by_another_name_is_refused(name):
    # "localtime" is whatever the machine is set to: the same command would
    # answer differently on another host; right/ zones count leap seconds
    with pytest.raises(TimeError, match="not a time zone ohlog reads"):
        parse_zone(name)


def test_a_zone_in_the_wrong_case_is_refused_with_its_spelling():
    with pytest.raises(TimeError, match=r"it is spelled America/Denver"):
        parse_zone("america/denver")
    assert str(parse_zone(" Europe/Paris ")) == "Europe/Paris"


@pytest.mark.parametrize("text", ["2018-10-18T21:37:28+14:30", "2018-10-18T21:37:28-23", "2018-10-18T21-1401"])
def test_a_bound_with_an_offset_ingest_refuses_is_refused(text):
    # ingest refuses offsets beyond ±14:00, so a bound with one can only be a mistake
    with pytest.raises(TimeError, match="UTC offset beyond ±14:00"):
        parse_time_spec(text)


def test_bounds_at_the_largest_offsets_are_kept():
    assert parse_time_spec("2018-10-18T21:37:28+14:00").offset_s == 14 * 3600
    assert parse_time_spec("2018-10-18T21:37:28-14:00").offset_s == -14 * 3600
