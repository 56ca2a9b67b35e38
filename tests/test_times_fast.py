"""parse_action_time's fast path gives what the full parser gives, for every shape.

The fast path serves the common shape (YYYY-MM-DDTHH:MM:SS, a fraction of
up to 6 digits, then Z, ±HH:MM or nothing) and hands anything else to
``_parse_full``; these tests generate many shapes on both sides of that line
(and invalid ones) and compare the two answers, or the two refusals, exactly.
"""

import itertools
import random

import pytest

from openhouse_cli import times
from openhouse_cli.times import TimeError, _parse_full, parse_action_time

DATES = ["2018-03-01", "2016-02-29", "2018-02-29", "2000-02-29", "1900-02-29", "0001-01-01",
         "9999-12-31", "1970-01-01", "1969-12-31", "2018-13-01", "2018-00-10", "20180301",
         "2018-060", "2018-W09-4"]
CLOCKS = ["18:23:23", "00:00:00", "23:59:59", "24:00:00", "23:59:60", "18:23", "18", "182323",
          "1823", "18:60:00", "18:23:23:"]
FRACTIONS = ["", ".", ".1", ",1", ".12", ".123", ".1234", ".12345", ".123456", ".1234567",
             ",12345678", ".123456789", ".1234567890", ".000000", ".999999999", ".12a",
             "\x00", ".12\x00", ".1\x00"]
OFFSETS = ["", "Z", "z", "+00:00", "-00:00", "+05:30", "-05:30", "+14:00", "-14:00", "+14:01",
           "-14:01", "+13:59", "+15:00", "+23:59", "+24:00", "+05:60", "+05:75", "+05:59",
           "+0530", "-08", "+05:30:00", "+05:30:59", "+05:30:00.5", "+05:30:00,123456789",
           "-05:00\x00", "\x00", " ", "+5:30", "+05:3", "Z+01:00", "+05:30Z", "-1400"]
SEPARATORS = ["T", "t", " ", "X", "TT"]


def outcome(function, text):
    try:
        return function(text)
    except TimeError as ex:
        return ("TimeError", str(ex))


def check(text):
    # twice, so that the second call meets whatever the first one cached
    expected = outcome(_parse_full, text)
    assert outcome(parse_action_time, text) == expected, text
    assert outcome(parse_action_time, text) == expected, text


def test_each_fraction_with_each_offset_matches_the_full_parser():
    for fraction, offset in itertools.product(FRACTIONS, OFFSETS):
        check("2018-03-01T18:23:23" + fraction + offset)
        check("2016-02-29T23:59:59" + fraction + offset)


def test_each_date_and_clock_matches_the_full_parser():
    for date, clock, rest in itertools.product(DATES, CLOCKS, ["", "Z", "+05:30", ".5-05:30"]):
        check(date + "T" + clock + rest)
    for separator, clock, rest in itertools.product(SEPARATORS, CLOCKS, ["", "Z", "-14:00"]):
        check("2018-03-01" + separator + clock + rest)


def test_other_clocks_in_an_hour_and_offset_already_seen_match_the_full_parser():
    for clock, fraction, offset in itertools.product(
            ["18:23:23", "18:2323", "18:23", "18:23:2", "18:23:2323", "18:23:23:", "18:23.5", "18:2:23"],
            ["", ".5", ",25", ".1234567"], ["Z", "+05:30", "-14:00", "+05:75"]):
        check("2018-03-01T18:23:23" + offset)  # the hour and the offset are remembered
        check("2018-03-01T" + clock + fraction + offset)


@pytest.mark.slow
def test_every_combination_of_the_parts_matches_the_full_parser():
    for date, separator, clock, fraction, offset in itertools.product(
            DATES, SEPARATORS, CLOCKS, FRACTIONS, OFFSETS):
        check(date + separator + clock + fraction + offset)


def test_random_valid_times_match_the_full_parser():
    rng = random.Random(12)
    for _ in range(1000):
        year, month, day = rng.randint(1, 9999), rng.randint(1, 12), rng.randint(1, 28)
        text = f"{year:04d}-{month:02d}-{day:02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}" \
               f":{rng.randint(0, 59):02d}"
        digits = rng.choice([0, 0, 3, 6, rng.randint(1, 9)])
        if digits:
            text += rng.choice(".,") + "".join(rng.choice("0123456789") for _ in range(digits))
        minutes = rng.randint(0, 14 * 60)
        text += rng.choice(["", "Z", f"{rng.choice('+-')}{minutes // 60:02d}:{minutes % 60:02d}"])
        check(text)


@pytest.mark.parametrize("text", ["2018-03-01T18:23:23+05:75", "2018-03-01T18:23:23-14:30",
                                  "2018-03-01T18:23:23.5+24:00", "2018-02-29T00:00:00Z"])
def test_a_refused_offset_stays_refused_once_good_ones_are_remembered(text):
    check("2018-03-01T18:23:23+05:30")
    check(text)
    check(text)


def test_the_remembered_offsets_and_hours_do_not_change_answers():
    texts = ["2018-03-01T18:23:23+05:30", "2018-03-01T18:59:59.999999+05:30",
             "2018-03-01T18:00:00-05:30", "2018-03-01T18:23:23Z", "2018-03-01T18:23:23"]
    first = [parse_action_time(text) for text in texts]
    times._hour_us.clear()
    times._offset_texts.clear()
    times._clock_us.clear()
    times._tails.clear()
    assert [_parse_full(text) for text in texts] == first
    assert [parse_action_time(text) for text in reversed(texts)] == first[::-1]


@pytest.mark.parametrize("value", [None, 5, 1.5, True, [], ["2018-03-01T18:23:23Z"], {}, {"a": 1}])
def test_a_time_that_is_not_a_string_is_refused_as_before(value):
    check("2018-03-01T18:23:23Z")
    assert outcome(parse_action_time, value) == outcome(_parse_full, value) == ("TimeError", "not an ISO 8601 time")


def test_a_lower_case_z_is_utc_and_a_decimal_point_needs_a_digit():
    # Found from outside: a lower-case t was taken and a lower-case z refused
    # (RFC 3339 allows both), and 21:37:28.Z was taken with nothing after the point
    utc = parse_action_time("2018-10-18T21:37:28Z")
    for text in ("2018-10-18T21:37:28z", "2018-10-18t21:37:28z", "2018-10-18 21:37:28z"):
        check(text)
        assert parse_action_time(text) == utc
    assert parse_action_time("2018-10-18T21:37:28.5z") == parse_action_time("2018-10-18T21:37:28.5Z")
    for text in ("2018-10-18T21:37:28.Z", "2018-10-18T21:37:28,Z", "2018-10-18T21:37:28.+05:30",
                 "2018-10-18T21:37:28.z"):
        check(text)
        with pytest.raises(TimeError, match="a decimal point with no digits after it"):
            parse_action_time(text)
    for text in ("2018-10-18T21:37:28zz", "2018-10-18T21:37:28Zz", "2018-10-18z"):
        with pytest.raises(TimeError):
            parse_action_time(text)
