"""A zone's offset changes (analytics.buckets.transitions) are read from its
tzdata table and yearly rule; sampling the zone every day is the check."""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from openhouse_cli.analytics import buckets

# DST north and south, 30-minute and negative DST, 2-hour DST (Troll), a skipped
# day (Apia), Ramadan breaks (Casablanca), 45-minute offsets, a zone with no DST now
ZONES = ["America/Denver", "Australia/Sydney", "Australia/Lord_Howe", "Europe/Dublin",
         "Antarctica/Troll", "Pacific/Apia", "Africa/Casablanca", "Pacific/Chatham",
         "America/St_Johns", "Asia/Kolkata", "America/Sao_Paulo", "Europe/Amsterdam"]


def us(year, month=1, day=1):
    return int((datetime(year, month, day, tzinfo=timezone.utc)
                - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds()) * buckets.US


@pytest.mark.parametrize("zone", ZONES)
def test_the_table_and_rule_give_what_daily_sampling_finds(zone):
    # Across the table's end (2037) into the years only the rule covers
    for lo, hi in [(us(1965), us(2045)), (us(2090, 3, 9), us(2097, 11, 2)), (us(9990), us(9999, 12, 31))]:
        assert buckets.transitions(ZoneInfo(zone), lo, hi) == buckets._sampled(ZoneInfo(zone), lo, hi)


def test_a_span_of_millennia_costs_its_changes_not_its_days(monkeypatch):
    """Data from year 1 to 9999 made every --tz analysis sample 3.65 million days
    (about 50 s); the table and rule give the ~16,000 changes without sampling."""
    calls = []
    real = buckets.offset_us
    monkeypatch.setattr(buckets, "offset_us", lambda zone, at: calls.append(at) or real(zone, at))
    found = buckets.transitions(ZoneInfo("America/Denver"), us(1), us(9999, 12, 31))
    assert len(calls) <= 2
    assert 15_000 < len(found) < 17_000
    assert all(a[0] < b[0] and a[1] != b[1] for a, b in zip(found, found[1:]))
    assert {offset for _, offset in found[1:]} == {-7 * 3600 * buckets.US, -6 * 3600 * buckets.US}


def test_fixed_offsets_and_zones_without_a_table_still_answer():
    assert buckets.transitions(timezone.utc, 0, us(2030)) == [(0, 0)]
    assert buckets.transitions(ZoneInfo("Etc/GMT-14"), 0, us(2030)) == [(0, 14 * 3600 * buckets.US)]

    odd = ZoneInfo("Europe/Amsterdam")
    assert buckets._changes("No/Such_Zone", us(2030)) is None
    assert buckets.transitions(odd, us(2017), us(2019)) == buckets._sampled(odd, us(2017), us(2019))
