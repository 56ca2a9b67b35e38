"""``retention`` from the UTC-day summaries (summaries.users_days): cohort tables
worked out by hand, the same rows as the actions give (summaries bypassed) over
many scenarios, the cases that must read the actions, and the real command."""

import json
import random

import pytest

from openhouse_cli.analytics import Clock, parse_step, retention, summaries
from openhouse_cli.analytics.retention import _from_days
from openhouse_cli.ingest import ingest_sessions
from openhouse_cli.store import open_store
from openhouse_cli.times import parse_zone

from .test_analytics_fixtures import filters, make_store, session  # noqa: F401
from .test_summaries import bounded

Z = parse_zone("UTC")  # bounds as UTC instants (without a zone they are users' wall clocks)

# 2018-01-15 is bit 0 of a block of the day bits, 2018-01-14 (a Sunday) the
# last of the one before; 2018-02-01 has a VIEW and a CLICK
HAND = [
    session("a", "s1", ("2018-01-14T23:00:00Z", "VIEW"), ("2018-01-15T01:00:00Z", "CLICK"),
            ("2018-02-01T10:00:00Z", "view"), ("2018-02-01T11:00:00Z", "Click")),
    session("b", "s2", ("2018-01-31T12:00:00Z", "CLICK"), ("2018-02-05T08:00:00Z", "VIEW")),
]
# 1969-12-28 is a Sunday, 1969-12-31 a Wednesday, 1970-01-05 a Monday
EARLY = [
    session("c", "s3", ("1969-12-31T12:00:00Z", "VIEW"), ("1970-01-05T00:00:00Z", "VIEW")),
    session("d", "s4", ("1969-12-28T23:59:59Z", "CLICK"), ("1970-01-01T00:00:00Z", "CLICK")),
]


@pytest.fixture
def engine():
    return "sqlite"  # the day summaries are SQLite's


@pytest.fixture
def make(make_store):
    return make_store


def both(store, f, **options):
    """retention's rows, asserted to come from the days and to equal the actions'."""
    assert _from_days(store, f, options.get("clock", Clock()), options.get("unit", "week"),
                      options.get("periods", 8), options.get("born"),
                      options.get("back")) is not None
    fast = retention(store, f, **options)
    with summaries.bypassed():
        assert retention(store, f, **options) == fast
    return fast


def row(cohort, users, *retained):
    return {"cohort": cohort, "users": users, "retained": list(retained)}


def test_cohorts_worked_out_by_hand(make):
    store = make(HAND)
    # a: 01-14, back 01-15 (across the blocks' boundary); b: 01-31; the data ends 02-05
    assert both(store, filters(), unit="day", periods=3) == [
        row("2018-01-14", 1, 1, 1, 0), row("2018-01-31", 1, 1, 0, 0)]
    # weeks from Monday: a's 01-14 is in the week of 01-08, 01-15 one on, 02-01 three on;
    # b's 01-31 is in the week of 01-29 and 02-05 one on; the week of 02-12 has not begun
    assert both(store, filters(), unit="week", periods=4) == [
        row("2018-01-08", 1, 1, 1, 0, 1), row("2018-01-29", 1, 1, 1, None, None)]
    assert both(store, filters(), unit="month", periods=2) == [row("2018-01", 2, 2, 2)]


def test_steps_by_hand_and_a_period_counts_once(make):
    store = make(HAND)
    view, click = parse_step("view"), parse_step("CLICK")
    # born on a VIEW: a on 01-14, clicks 01-15 (p1) and 02-01 (p18); b's VIEW is the last day
    assert both(store, filters(), unit="day", periods=20, born=view, back=click) == [
        row("2018-01-14", 1, *[1, 1] + [0] * 16 + [1, 0]), row("2018-02-05", 1, 1, *[None] * 19)]
    # any return: a's 02-01 has a VIEW (both steps) and a CLICK (the return only): one user
    assert both(store, filters(), unit="day", periods=20, born=view) == [
        row("2018-01-14", 1, *[1, 1] + [0] * 16 + [1, 0]), row("2018-02-05", 1, 1, *[None] * 19)]
    assert both(store, filters(), unit="week", periods=2, born=click, back=click) == [
        row("2018-01-15", 1, 1, 0), row("2018-01-29", 1, 1, 0)]


def test_type_filters_and_bounds_by_hand(make):
    store = make(HAND)
    # VIEWs only: the data ends on b's 02-05; a's 02-01 is three weeks on
    assert both(store, filters(types=("VIEW",)), unit="week", periods=2) == [
        row("2018-01-08", 1, 1, 0), row("2018-02-05", 1, 1, None)]
    # a step of a type --type leaves out matches nothing
    assert both(store, filters(types=("view",)), unit="week", born=parse_step("click")) == []
    # no action in the filters: no cohorts
    assert both(store, filters(types=("scroll",)), unit="week") == []
    assert both(store, bounded("2018-02-06", "2018-03-01", tz=Z), unit="day") == []
    rows = both(store, filters(types=("view",)), unit="day", periods=2, back=parse_step("click"))
    assert rows == [
        row("2018-01-14", 1, 1, 0), row("2018-02-05", 1, 1, None)]
    # within 01-15 .. 01-31: a's CLICK on 01-15 and b's on 01-31; the end bound ends the periods
    assert both(store, bounded("2018-01-15", "2018-01-31", tz=Z), unit="day", periods=3) == [
        row("2018-01-15", 1, 1, 0, 0), row("2018-01-31", 1, 1, None, None)]


def test_cohorts_before_1970_by_hand(make):
    store = make(EARLY)
    # d: week of 1969-12-22, back in the week of 12-29; the week of 1970-01-05 begins on the
    # data's last day. c: week of 12-29, back on 1970-01-05
    assert both(store, filters(), unit="week", periods=3) == [
        row("1969-12-22", 1, 1, 1, 0), row("1969-12-29", 1, 1, 1, None)]
    assert both(store, filters(), unit="month", periods=2) == [row("1969-12", 2, 2, 2)]
    assert both(store, filters(), unit="day", periods=4, born=parse_step("view")) == [
        row("1969-12-31", 1, 1, 0, 0, 0)]


# Generated data: days around the year's and a block's boundaries and month ends, types in
# several spellings, user ids whose order in Python and in SQLite must agree
TYPES = ["VIEW", "view", "CLICK", "click", "Navigate", "NAVIGATE"]
USERS = ["a", "B", "Z", "é", "e\u0301", "😀", "ü", "user-10", "user-9"]
USERS += [f"u{i}" for i in range(25)]


def generated(first_day, days, seed):
    rng = random.Random(seed)
    docs = []
    for n, user in enumerate(USERS):
        start = rng.randrange(days)
        actions = []
        for _ in range(rng.randint(1, 14)):
            day = min(days - 1, start + int(rng.expovariate(1 / 9)))
            seconds = rng.randrange(86400)
            at = (first_day + day) * 86400 + seconds
            actions.append((_iso(at), rng.choice(TYPES)))
        docs.append(session(user, f"s{n}", *actions))
    return docs


def _iso(seconds):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# (first day, days, bounds): 1969-11-20 on, across 1970; 2017-12-20 on, across 2018-01-15's block
DATASETS = {
    "1969": (-42, 75, [("1969-12-01", "1970-01-20"), ("1969-12-29", None), (None, "1969-12-31")]),
    "2018": (17520, 80, [("2018-01-15", "2018-02-28"), ("2018-01-01", None), (None, "2018-01-31")]),
}
STEPS = [(None, None), ("VIEW", None), (None, "click"), ("CLICK", "navigate"), ("view", "VIEW")]
TYPE_FILTERS = [(), ("view", "CLICK"), ("navigate",)]
PERIODS = {"day": (1, 3, 40), "week": (2, 5, 12), "month": (2, 4)}


@pytest.mark.parametrize("dataset", sorted(DATASETS))
@pytest.mark.parametrize("unit", sorted(PERIODS))
def test_the_days_answer_what_the_actions_answer(make, dataset, unit):
    first_day, days, bounds = DATASETS[dataset]
    store = make(generated(first_day, days, seed=int(dataset) + len(unit)))
    cases = [filters(types=types) for types in TYPE_FILTERS]
    cases += [bounded(start, end, tz=Z) for start, end in bounds]
    cases.append(bounded(bounds[0][0], bounds[0][1], tz=Z, types=("CLICK",)))
    compared = 0
    for f in cases:
        for born, back in STEPS:
            for periods in PERIODS[unit]:
                rows = both(store, f, unit=unit, periods=periods,
                            born=born and parse_step(born), back=back and parse_step(back))
                compared += bool(rows)
    assert compared > len(cases) * len(STEPS)  # most cases have cohorts to compare


def test_the_actions_answer_what_the_days_cannot(make):
    store = make(HAND)
    f = filters()
    refused = [
        (f, {"born": parse_step("NAVIGATE:pageTo=b")}),  # a property condition
        (f, {"back": parse_step("click:locationX=1")}),
        (f, {"clock": Clock.of(local=True)}),
        (f, {"clock": Clock.of(parse_zone("America/Denver"))}),
        (filters(users=("a",)), {}),
        (bounded("2018-01-15T06:00", "2018-01-31", tz=Z), {}),  # not on a UTC day's boundary
        (bounded("2018-01-15", "2018-01-31"), {}),  # users' wall clocks
    ]
    for given, options in refused:
        clock = options.get("clock", Clock())
        assert _from_days(store, given, clock, "week", 8, options.get("born"),
                          options.get("back")) is None
        found = retention(store, given, unit="week", **options)
        with summaries.bypassed():
            assert retention(store, given, unit="week", **options) == found
    # a span of more days than the bits are read for
    wide = make(HAND + [session("z", "s9", ("2004-01-01T00:00:00Z", "VIEW"))])
    assert _from_days(wide, f, Clock(), "week", 8, None, None) is None


def test_ohlog_retention_from_the_days(run_ohlog, tmp_path):
    db = tmp_path / "r.db"
    store = open_store(str(db))
    ingest_sessions(store, HAND)
    store.close()
    result = run_ohlog("retention", "--db", db, "--unit", "week", "--periods", "4", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"cohorts": [
        row("2018-01-08", 1, 1, 1, 0, 1), row("2018-01-29", 1, 1, 1, None, None)]}
    result = run_ohlog("retention", "--db", db, "--unit", "day", "--periods", "3", "--born", "VIEW",
                       "--return", "click", "--type", "view", "--type", "CLICK",
                       "--start", "2018-01-14", "--end", "2018-01-31", "--tz", "UTC", "--csv")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == ["cohort,users,0,1,2", "2018-01-14,1,1,1,0"]
