"""retention and paths on hand-made data, on SQLite and PostgreSQL; answers worked out by hand."""

import pytest

from openhouse_cli.analytics import Clock, parse_step, paths, retention
from openhouse_cli.times import parse_time_spec, parse_zone, resolve_range

from .test_analytics_fixtures import engine, filters, make_store, session  # noqa: F401


@pytest.fixture
def weekly(make_store):
    return make_store([
        # a: cohort week 10-01 (Monday); back in weeks 10-08 (p1) and 10-22 (p3)
        session("a", "s1", ("2018-10-01T09:00:00Z", "VIEW"), ("2018-10-09T09:00:00Z", "CLICK"),
                ("2018-10-22T09:00:00Z", "VIEW")),
        # b: cohort week 10-01 (a Wednesday); back in week 10-15 (p2)
        session("b", "s2", ("2018-10-03T09:00:00Z", "CLICK"), ("2018-10-16T09:00:00Z", "NAVIGATE")),
        # c: cohort week 10-08; again that week (not a return), back in week 10-15 (p1)
        session("c", "s3", ("2018-10-10T09:00:00Z", "VIEW"), ("2018-10-12T09:00:00Z", "VIEW"),
                ("2018-10-15T09:00:00Z", "VIEW")),
    ])


def test_weekly_cohorts_with_nulls_after_the_data_ends(weekly):
    # the data ends on 10-22 (a Monday): week 10-22 has begun, week 10-29 has not
    assert retention(weekly, filters(), unit="week", periods=4) == [
        {"cohort": "2018-10-01", "users": 2, "retained": [2, 1, 1, 1]},
        {"cohort": "2018-10-08", "users": 1, "retained": [1, 1, 0, None]},
    ]


def test_the_end_bound_decides_which_periods_have_begun(weekly):
    span = resolve_range(None, parse_time_spec("2018-10-31"))
    rows = retention(weekly, filters(end=span.end), unit="week", periods=5)
    assert rows[1] == {"cohort": "2018-10-08", "users": 1, "retained": [1, 1, 0, 0, None]}


def test_born_and_return_steps(weekly):
    # born on a CLICK: a on 10-09 (week 10-08), b on 10-03 (week 10-01); c never clicks
    rows = retention(weekly, filters(), unit="week", periods=3, born=parse_step("click"))
    assert rows == [{"cohort": "2018-10-01", "users": 1, "retained": [1, 0, 1]},   # b's NAVIGATE, p2
                    {"cohort": "2018-10-08", "users": 1, "retained": [1, 0, 1]}]   # a's VIEW 10-22, p2
    rows = retention(weekly, filters(), unit="week", periods=3, back=parse_step("NAVIGATE"))
    assert rows == [{"cohort": "2018-10-01", "users": 2, "retained": [2, 0, 1]},
                    {"cohort": "2018-10-08", "users": 1, "retained": [1, 0, 0]}]



def test_returns_before_birth_and_actions_matching_both_steps(make_store):
    # retention reads each user's distinct (day, steps matched): an action can
    # match the born step, the return step or both
    store = make_store([
        session("a", "s", ("2018-10-01T09:00:00Z", "VIEW"), ("2018-10-01T10:00:00Z", "CLICK"),
                ("2018-10-02T09:00:00Z", "CLICK"), ("2018-10-04T09:00:00Z", "CLICK")),
        # b clicks the day before its VIEW: not a return
        session("b", "s", ("2018-10-01T09:00:00Z", "CLICK"), ("2018-10-02T09:00:00Z", "VIEW"),
                ("2018-10-03T09:00:00Z", "CLICK")),
        session("c", "s", ("2018-10-02T09:00:00Z", "CLICK")),  # never VIEWs
        session("d", "s", ("2018-10-02T09:00:00Z", "VIEW"), ("2018-10-03T09:00:00Z", "VIEW")),
    ])
    view, click = parse_step("VIEW"), parse_step("CLICK")
    # a's CLICK on day 4 is period 3, past the three periods
    assert retention(store, filters(), unit="day", periods=3, born=view, back=click) == [
        {"cohort": "2018-10-01", "users": 1, "retained": [1, 1, 0]},
        {"cohort": "2018-10-02", "users": 2, "retained": [2, 1, 0]}]
    # born and back on the same step: the first CLICK is the birth
    assert retention(store, filters(), unit="day", periods=3, born=click, back=click) == [
        {"cohort": "2018-10-01", "users": 2, "retained": [2, 1, 1]},
        {"cohort": "2018-10-02", "users": 1, "retained": [1, 0, 0]}]



def test_a_return_period_counts_a_user_once(make_store):
    # day 2 holds an action matching both steps (VIEW) and one matching the
    # return only (CLICK): one user came back, not two
    store = make_store([session("a", "s", ("2018-10-01T09:00:00Z", "VIEW"),
                                ("2018-10-02T09:00:00Z", "VIEW"), ("2018-10-02T10:00:00Z", "CLICK"),
                                ("2018-10-09T10:00:00Z", "CLICK"))])
    for unit, periods, cohort, retained in (("day", 2, "2018-10-01", [1, 1]),
                                            ("week", 2, "2018-10-01", [1, 1]),
                                            ("month", 1, "2018-10", [1])):
        assert retention(store, filters(), unit=unit, periods=periods, born=parse_step("view")) == [
            {"cohort": cohort, "users": 1, "retained": retained}]
    rows = retention(store, filters(users=("a",)), unit="day", periods=9, born=parse_step("VIEW"))
    assert rows == [
        {"cohort": "2018-10-01", "users": 1, "retained": [1, 1, 0, 0, 0, 0, 0, 0, 1]}]


def test_daily_and_monthly_units(weekly):
    days = retention(weekly, filters(), unit="day", periods=9)
    # a: 10-01, back on day 8 (10-09); the data ends 10-22, so no nulls within 9 days of 10-01
    assert days[0] == {"cohort": "2018-10-01", "users": 1, "retained": [1, 0, 0, 0, 0, 0, 0, 0, 1]}
    # c: 10-10, back on days 2 (10-12) and 5 (10-15); day 13 would be 10-23, after the end
    assert retention(weekly, filters(), unit="day", periods=14)[2] == {
        "cohort": "2018-10-10", "users": 1, "retained": [1, 0, 1, 0, 0, 1] + [0] * 7 + [None]}
    assert retention(weekly, filters(), unit="month", periods=2) == [
        {"cohort": "2018-10", "users": 3, "retained": [3, None]}]


def test_cohorts_in_a_zone(make_store):
    # 03:00Z on Monday 10-08 is Sunday 10-07 21:00 in Denver: the week of 10-01 there
    store = make_store([session("a", "s", ("2018-10-08T03:00:00Z", "VIEW"), ("2018-10-09T12:00:00Z", "VIEW"))])
    assert retention(store, filters(), unit="week", periods=2) == [
        {"cohort": "2018-10-08", "users": 1, "retained": [1, None]}]
    assert retention(store, filters(), unit="week", periods=2, clock=Clock.of(parse_zone("America/Denver"))) == [
        {"cohort": "2018-10-01", "users": 1, "retained": [1, 1]}]


def test_on_each_users_own_clock_the_cohort_is_the_first_actions_period_not_the_earliest(make_store):
    # Worked by hand, days on each action's own clock (--local):
    # a: 11-05 01:00+14:00 (11-04 11:00Z) first, then 11-04 20:00-12:00 (11-05 08:00Z):
    #    cohort 11-05; the later action's day 11-04 comes before it, so no return.
    # b: two actions at one microsecond on two clocks; 11-05 01:00+01:00 is a
    #    nanosecond earlier than 11-04 23:00-01:00: cohort 11-05.
    # c: two at one instant to the nanosecond: the first ingested (day 11-04) decides.
    # The data's last local day is 11-05, so period 11-06 has not begun.
    store = make_store([
        session("a", "s", ("2018-11-05T01:00:00+14:00", "VIEW"), ("2018-11-04T20:00:00-12:00", "VIEW")),
        session("b", "s", ("2018-11-04T23:00:00.000000002-01:00", "VIEW"),
                ("2018-11-05T01:00:00.000000001+01:00", "VIEW")),
        session("c", "s", ("2018-11-04T01:30:00+01:00", "VIEW"), ("2018-11-03T23:30:00-01:00", "VIEW")),
    ])
    assert retention(store, filters(), unit="day", periods=3, clock=Clock(local=True)) == [
        {"cohort": "2018-11-04", "users": 1, "retained": [1, 0, None]},
        {"cohort": "2018-11-05", "users": 2, "retained": [2, None, None]},
    ]
    # --born picks the first action matching it, in the same order
    assert retention(store, filters(users=("a",)), unit="day", periods=2, clock=Clock(local=True),
                     born=parse_step("VIEW")) == [{"cohort": "2018-11-05", "users": 1, "retained": [1, None]}]


def test_periods_follow_time_in_zones_and_not_on_each_users_own_clock():
    from openhouse_cli.analytics.retention import _in_time_order

    year_1867 = (-3228595200000000, -3225916800000000)  # October 1867: Sitka's clocks went back a day
    for zone in ("UTC", "America/New_York", "America/Sitka", "America/Santiago", "Asia/Beirut"):
        for unit in ("day", "week", "month"):
            assert _in_time_order(Clock.of(parse_zone(zone)), unit, (0, 2_000_000_000_000_000))
            assert _in_time_order(Clock.of(parse_zone(zone)), unit, year_1867)
    assert not _in_time_order(Clock(local=True), "day", (0, 1))


def test_no_actions_no_cohorts(weekly):
    assert retention(weekly, filters(users=("nobody",))) == []


def nav(time, page_from, page_to):
    return (time, "NAVIGATE", {"pageFrom": page_from, "pageTo": page_to})


@pytest.fixture
def site(make_store):
    return make_store([
        session("u", "s1", nav("2018-10-01T00:00:00Z", "home", "list"), ("2018-10-01T00:00:01Z", "CLICK"),
                nav("2018-10-01T00:00:02Z", "list", "cart")),
        # the repeated list collapses into one
        session("u", "s2", nav("2018-10-01T01:00:00Z", "home", "list"), nav("2018-10-01T01:00:01Z", "list", "list"),
                nav("2018-10-01T01:00:03Z", "list", "cart")),
        session("w", "s3", nav("2018-10-01T00:00:00Z", "home", "about")),
        # out of order in the log: time order decides
        session("w", "s4", nav("2018-10-01T02:00:05Z", "list", "cart"), nav("2018-10-01T02:00:00Z", "home", "list")),
        session("w", "s5", ("2018-10-01T03:00:00Z", "VIEW")),  # no NAVIGATE: no path
    ])


def test_paths_are_counted_by_session(site):
    assert paths(site, filters()) == [
        {"path": ["home", "list", "cart"], "sessions": 3},
        {"path": ["home", "about"], "sessions": 1},
    ]


def test_paths_from_a_page_cut_to_steps_and_top(site):
    assert paths(site, filters(), start="list") == [{"path": ["list", "cart"], "sessions": 3}]
    assert paths(site, filters(), steps=2) == [{"path": ["home", "list"], "sessions": 3},
                                               {"path": ["home", "about"], "sessions": 1}]
    assert paths(site, filters(), top=1) == [{"path": ["home", "list", "cart"], "sessions": 3}]
    assert paths(site, filters(), start="nowhere") == []
    assert paths(site, filters(users=("w",))) == [{"path": ["home", "about"], "sessions": 1},
                                                   {"path": ["home", "list", "cart"], "sessions": 1}]


def test_paths_under_a_type_filter(site):
    # paths read NAVIGATE actions only: --type narrows to them or leaves nothing
    everything = paths(site, filters())
    assert paths(site, filters(types=("navigate",))) == everything
    assert paths(site, filters(types=("CLICK", "Navigate"))) == everything
    assert paths(site, filters(types=("click",))) == []
    assert paths(site, filters(types=("VIEW", "click"))) == []


def test_paths_tied_at_the_cut_keep_the_first_by_path(make_store):
    # four paths seen twice, three once: the top 3 are three of the four, by path
    docs, n = [], 0
    for pages, times in ((("d", "e"), 2), (("b", "c"), 2), (("a", "z"), 2), (("c", "a"), 2),
                         (("a", "b"), 1), (("x", "y"), 1), (("m", "n"), 1)):
        for _ in range(times):
            n += 1
            docs.append(session("u", f"s{n}", nav(f"2018-10-01T00:{n:02d}:00Z", *pages)))
    store = make_store(docs)
    assert paths(store, filters(), top=3) == [{"path": ["a", "z"], "sessions": 2},
                                              {"path": ["b", "c"], "sessions": 2},
                                              {"path": ["c", "a"], "sessions": 2}]
    assert paths(store, filters(), top=5) == [
        {"path": ["a", "z"], "sessions": 2}, {"path": ["b", "c"], "sessions": 2},
        {"path": ["c", "a"], "sessions": 2}, {"path": ["d", "e"], "sessions": 2},
        {"path": ["a", "b"], "sessions": 1}]
