"""stats, count and active on hand-made data, on SQLite and PostgreSQL; answers worked out by hand."""

import pytest

from openhouse_cli.analytics import Clock, active, count, stats
from openhouse_cli.ingest import ingest_sessions
from openhouse_cli.query import query_actions
from openhouse_cli.times import parse_zone, parse_time_spec, resolve_range

from .test_analytics_fixtures import engine, filters, make_store, session  # noqa: F401

DENVER = parse_zone("America/Denver")


def bounded(start=None, end=None, tz=None):
    span = resolve_range(start and parse_time_spec(start), end and parse_time_spec(end), tz=tz)
    return filters(start=span.start, end=span.end, gaps=span.gaps)


def test_stats_counts_types_case_folded_in_their_commonest_spelling(make_store):
    store = make_store([
        session("u1", "s1", ("2018-10-01T10:00:00Z", "CLICK"), ("2018-10-01T10:00:05Z", "click")),
        session("u2", "s1", ("2018-10-02T10:00:00+02:00", "CLICK"), ("2018-10-03T00:30:00Z", "VIEW")),
        session("u2", "s2", ("2018-09-30T23:59:59-01:00", "Straße")),
    ])
    found = stats(store, filters())
    # u1/s1 and u2/s1 are two sessions: a session belongs to its user
    assert (found["actions"], found["users"], found["sessions"]) == (5, 2, 3)
    assert found["first"] == "2018-09-30T23:59:59-01:00"  # 2018-10-01T00:59:59Z, the earliest instant
    assert found["last"] == "2018-10-03T00:30:00Z"
    assert found["types"] == [
        {"type": "CLICK", "actions": 3, "users": 2},
        {"type": "Straße", "actions": 1, "users": 1},
        {"type": "VIEW", "actions": 1, "users": 1},
    ]
    # UTC days: 10-01 has u2/s2's 00:59:59Z and u1's two; 10-02 u2's 08:00Z; 10-03 the VIEW
    assert found["perDay"] == [{"day": "2018-10-01", "actions": 3}, {"day": "2018-10-02", "actions": 1},
                               {"day": "2018-10-03", "actions": 1}]
    assert found["bytes"] > 0


def test_first_and_last_at_a_shared_instant_are_the_first_and_last_ingested_as_query_has_them(make_store):
    # Three actions at the last instant (one written on another clock, one in
    # a later ingest) and two at the first: ohlog's order is instant, then
    # ingestion; the last is the last ingested, as `query` ends and `sessions` ends
    store = make_store([
        session("u1", "s1", ("2018-10-01T10:00:00Z", "CLICK"), ("2018-10-03T00:30:00Z", "VIEW"),
                ("2018-10-03T06:00:00+05:30", "VIEW")),
        session("u2", "s1", ("2018-10-01T12:00:00+02:00", "CLICK")),
    ])
    ingest_sessions(store, [session("u3", "s9", ("2018-10-02T14:30:00-10:00", "NAVIGATE"))])
    for given in (filters(), filters(users=("u1", "u3")), filters(types=("view", "navigate"))):
        found = stats(store, given)
        in_order = [a["time"] for a in query_actions(store, **given)]
        assert (found["first"], found["last"]) == (in_order[0], in_order[-1])
    assert stats(store, filters())["first"] == "2018-10-01T10:00:00Z"
    assert stats(store, filters())["last"] == "2018-10-02T14:30:00-10:00"
    assert stats(store, filters(users=("u1",)))["last"] == "2018-10-03T06:00:00+05:30"
    assert stats(store, filters(users=("u2",)))["last"] == "2018-10-01T12:00:00+02:00"


def test_empty_results_are_empty_lists(make_store):
    store = make_store([session("u1", "s1", ("2018-10-01T10:00:00Z", "CLICK"))])
    none = filters(users=("nobody",))
    assert count(store, none, ["type", "day"]) == []
    assert active(store, none) == []
    assert stats(store, none)["types"] == [] and stats(store, none)["actions"] == 0


def test_count_by_type_and_day_is_zero_filled_for_every_type(make_store):
    store = make_store([
        session("u1", "s1", ("2018-10-01T10:00:00Z", "CLICK"), ("2018-10-01T11:00:00Z", "VIEW")),
        session("u2", "s2", ("2018-10-03T10:00:00Z", "click"), ("2018-10-03T10:01:00Z", "click")),
    ])
    groups = count(store, filters(), ["type", "day"])
    # "click" twice outnumbers "CLICK" once: the type is shown as "click"
    assert [(g["type"], g["day"], g["actions"], g["users"]) for g in groups] == [
        ("click", "2018-10-01", 1, 1), ("VIEW", "2018-10-01", 1, 1),
        ("click", "2018-10-02", 0, 0), ("VIEW", "2018-10-02", 0, 0),
        ("click", "2018-10-03", 2, 1), ("VIEW", "2018-10-03", 0, 0),
    ]


def test_zero_filling_runs_to_the_bounds_given(make_store):
    store = make_store([session("u1", "s1", ("2018-10-02T10:00:00Z", "CLICK"))])
    groups = count(store, bounded("2018-10-01", "2018-10-04"), ["day"])
    assert [(g["day"], g["actions"]) for g in groups] == [
        ("2018-10-01", 0), ("2018-10-02", 1), ("2018-10-03", 0), ("2018-10-04", 0)]


def test_non_time_groups_by_actions_descending(make_store):
    store = make_store([
        session("a", "s1", ("2018-10-01T10:00:00Z", "CLICK")),
        session("b", "s2", *[(f"2018-10-01T10:00:0{i}Z", "VIEW") for i in range(3)]),
        session("c", "s3", *[(f"2018-10-01T10:00:0{i}Z", "VIEW") for i in range(2)]),
    ])
    assert count(store, filters(), ["user"]) == [
        {"userId": "b", "actions": 3, "users": 1}, {"userId": "c", "actions": 2, "users": 1},
        {"userId": "a", "actions": 1, "users": 1}]
    assert count(store, filters(), ["session"])[0] == {"userId": "b", "sessionId": "s2", "actions": 3,
                                                      "users": 1}


def test_weeks_start_on_monday_and_months_are_zero_filled(make_store):
    store = make_store([session("u", "s",
                                ("2018-10-14T12:00:00Z", "A"),   # a Sunday: week of Monday 10-08
                                ("2018-10-18T12:00:00Z", "A"),   # a Thursday: week of 10-15
                                ("2018-12-31T12:00:00Z", "A"),   # Monday
                                ("2019-01-01T12:00:00Z", "A"))])  # Tuesday, ISO week 1 of 2019
    weeks = count(store, filters(), ["week"])
    assert weeks[0] == {"week": "2018-10-08", "actions": 1, "users": 1}
    assert weeks[1] == {"week": "2018-10-15", "actions": 1, "users": 1}
    assert weeks[-1] == {"week": "2018-12-31", "actions": 2, "users": 1}
    assert len(weeks) == 13  # 10-08 .. 12-31, Mondays 7 days apart
    assert [(g["month"], g["actions"]) for g in count(store, filters(), ["month"])] == [
        ("2018-10", 2), ("2018-11", 0), ("2018-12", 1), ("2019-01", 1)]


def test_hours_at_the_ends_of_the_calendar_in_zones_a_day_away(make_store):
    # 0001-01-01T00:00+14:00 is 0000-12-31T10:00Z; 9999-12-31T23:00-12:00 is
    # 10000-01-01T11:00Z. Worked by hand: Etc/GMT+12 is UTC-12, Etc/GMT-14
    # UTC+14; in year 0 Kiritimati, New York and Kolkata keep local mean time
    # (-10:29:20, -4:56:02, +5:53:28). Zones that put year 0's wall clock a
    # day out were bucketed on UTC (found by a red-team review).
    store = make_store([session("u0", "s", ("0001-01-01T00:00:00+14:00", "A")),
                        session("u9", "s", ("9999-12-31T23:00:00-12:00", "A"))])
    for user, expected in [
        ("u0", {"Etc/GMT+12": "0000-12-30T22", "Pacific/Kiritimati": "0000-12-30T23",
                "America/New_York": "0000-12-31T05", "Asia/Kolkata": "0000-12-31T15", "UTC": "0000-12-31T10"}),
        ("u9", {"Etc/GMT+12": "9999-12-31T23", "Etc/GMT-14": "10000-01-02T01", "UTC": "10000-01-01T11"})]:
        for zone, hour in expected.items():
            assert [g["hour"] for g in count(store, filters(users=(user,)), ["hour"],
                                             Clock.of(parse_zone(zone)))] == [hour]


def test_day_buckets_in_a_zone_follow_its_dst_changes(make_store):
    store = make_store([session("u", "s",
                                ("2018-11-04T06:30:00Z", "A"),  # 00:30 MDT on 11-04
                                ("2018-11-05T06:30:00Z", "A"),  # 23:30 MST on 11-04 (UTC-7 would say 11-05)
                                ("2018-11-05T07:30:00Z", "A"),  # 00:30 MST on 11-05
                                ("2018-03-11T07:30:00Z", "A"),  # 00:30 MST on 03-11
                                ("2018-03-12T05:30:00Z", "A"),  # 23:30 MDT on 03-11 (UTC-7 says 03-11 too)
                                ("2018-03-12T06:30:00Z", "A"))])  # 00:30 MDT on 03-12 (UTC-7 would say 03-11)
    days = {g["day"]: g["actions"] for g in count(store, filters(), ["day"], Clock.of(DENVER))}
    assert (days["2018-03-11"], days["2018-03-12"]) == (2, 1)
    assert (days["2018-11-04"], days["2018-11-05"]) == (2, 1)
    assert sum(days.values()) == 6 and days["2018-06-01"] == 0
    utc = {g["day"]: g["actions"] for g in count(store, filters(), ["day"])}
    assert (utc["2018-11-04"], utc["2018-11-05"]) == (1, 2)


def hours_of(store, zone, dims=("hour",), given=None, local=False):
    groups = count(store, given or filters(), list(dims), Clock.of(parse_zone(zone), local))
    return [(g["hour"], g["actions"]) for g in groups]


def test_the_repeated_hour_is_two_buckets_in_time_order_labelled_by_offset(make_store):
    store = make_store([session("u", "s",
                                ("2018-11-04T06:10:00Z", "A"),  # 00:10 MDT
                                ("2018-11-04T07:30:00Z", "A"),  # 01:30 MDT
                                ("2018-11-04T08:30:00Z", "A"),  # 01:30 MST, the hour again
                                ("2018-11-04T08:40:00Z", "B"),  # 01:40 MST
                                ("2018-11-04T09:30:00Z", "A"))])  # 02:30 MST
    twice = [("2018-11-04T00", 1), ("2018-11-04T01-06:00", 1), ("2018-11-04T01-07:00", 2),
             ("2018-11-04T02", 1)]
    assert hours_of(store, "America/Denver") == twice
    # the same through every path: crossed with type (zero-filled), user, a property
    assert [(h, n) for h, n in hours_of(store, "America/Denver", ("hour", "type")) if n] == [
        twice[0], twice[1], ("2018-11-04T01-07:00", 1), ("2018-11-04T01-07:00", 1), twice[3]]
    assert hours_of(store, "America/Denver", ("user", "hour")) == twice
    assert [h for h, _ in hours_of(store, "America/Denver", ("hour", "prop:x"))] == [
        h for h, _ in twice]
    # the day still holds all 25 hours; an hour shown once keeps its plain label
    assert hours_of(store, "UTC") == [("2018-11-04T06", 1), ("2018-11-04T07", 1),
                                      ("2018-11-04T08", 2), ("2018-11-04T09", 1)]


def test_the_skipped_hour_is_no_bucket_and_bounds_fill_the_hours_shown(make_store):
    store = make_store([session("u", "s",
                                ("2018-03-11T08:30:00Z", "A"),  # 01:30 MST
                                ("2018-03-11T09:30:00Z", "A"),  # 03:30 MDT: 02 never happened
                                ("2018-11-04T12:00:00Z", "A"))])
    assert hours_of(store, "America/Denver")[:2] == [("2018-03-11T01", 1), ("2018-03-11T03", 1)]
    day = hours_of(store, "America/Denver", given=bounded("2018-03-11", "2018-03-11", tz=DENVER))
    assert len(day) == 23 and "2018-03-11T02" not in dict(day) and sum(n for _, n in day) == 2
    fall = hours_of(store, "America/Denver", given=bounded("2018-11-04", "2018-11-04", tz=DENVER))
    assert len(fall) == 25 and [h for h, _ in fall[1:3]] == [
        "2018-11-04T01-06:00", "2018-11-04T01-07:00"]


def test_hours_in_half_hour_zones_and_changes_of_half_an_hour_or_two_hours(make_store):
    store = make_store([session("u", "s",
                                ("2018-03-31T15:45:00Z", "A"),  # Adelaide 02:15 +10:30
                                ("2018-03-31T16:45:00Z", "A"),  # 02:15 +09:30
                                ("2014-10-25T15:30:00Z", "A"),  # Chita 01:30 +10:00
                                ("2014-10-25T16:30:00Z", "A"))])  # 00:30 +08:00: two hours back
    adelaide = hours_of(store, "Australia/Adelaide",
                        given=bounded("2018-03-31T15:00Z", "2018-03-31T17:59:59Z"))
    assert adelaide == [("2018-04-01T01", 0), ("2018-04-01T02+10:30", 1),
                        ("2018-04-01T02+09:30", 1), ("2018-04-01T03", 0)]
    # Lord Howe goes back half an hour at 02:00 (+11:00) to 01:30 (+10:30)
    howe = hours_of(store, "Australia/Lord_Howe",
                    given=bounded("2018-03-31T14:00Z", "2018-03-31T16:59:59Z"))
    assert howe == [("2018-04-01T01+11:00", 0), ("2018-04-01T01+10:30", 0),
                    ("2018-04-01T02", 1), ("2018-04-01T03", 1)]
    # in time order, though the second 00:00 hour comes after the first 01:00 one
    chita = hours_of(store, "Asia/Chita", given=bounded("2014-10-25T14:00Z", "2014-10-25T18:59:59Z"))
    assert chita == [("2014-10-26T00+10:00", 0), ("2014-10-26T01+10:00", 1),
                     ("2014-10-26T00+08:00", 1), ("2014-10-26T01+08:00", 0), ("2014-10-26T02", 0)]
    assert hours_of(store, "Asia/Kolkata",
                    given=bounded("2018-03-31T15:00Z", "2018-03-31T16:59:59Z")) == [
        ("2018-03-31T20", 0), ("2018-03-31T21", 1), ("2018-03-31T22", 1)]  # 20:30 to 22:29


def test_local_hours_are_the_wall_clock_hours_as_logged(make_store):
    # on users' own clocks (many offsets) an hour is its wall-clock reading alone
    store = make_store([session("u", "s", ("2018-11-04T01:30:00-04:00", "A"),
                                ("2018-11-04T01:30:00-05:00", "A"), ("2018-11-04T01:10:00+05:30", "A"),
                                ("2018-11-04T03:10:00+01:00", "A"))])
    assert hours_of(store, "UTC", local=True) == [("2018-11-04T01", 3), ("2018-11-04T02", 0),
                                                  ("2018-11-04T03", 1)]


def test_local_buckets_use_each_users_own_clock(make_store):
    store = make_store([
        session("denver", "s1", ("2018-10-18T23:30:00-06:00", "A")),  # 10-19 05:30Z
        session("mumbai", "s2", ("2018-10-19T01:00:00+05:30", "A")),  # 10-18 19:30Z
    ])
    groups = count(store, filters(), ["day", "user"], Clock.of(local=True))
    assert [(g["day"], g["userId"]) for g in groups if g["actions"]] == [
        ("2018-10-18", "denver"), ("2018-10-19", "mumbai")]
    groups = count(store, filters(), ["day", "user"])
    assert [(g["day"], g["userId"]) for g in groups if g["actions"]] == [
        ("2018-10-18", "mumbai"), ("2018-10-19", "denver")]


def test_count_by_property_keeps_json_types_apart(make_store):
    store = make_store([session("u", "s",
                                ("2018-10-01T10:00:00Z", "A", {"x": 52}),
                                ("2018-10-01T10:00:01Z", "A", {"x": 52}),
                                ("2018-10-01T10:00:02Z", "A", {"x": "52"}),
                                ("2018-10-01T10:00:03Z", "A", {"y": 1}),
                                ("2018-10-01T10:00:04Z", "A", {"x": [1, 2]}))])
    groups = count(store, filters(), ["prop:x"])
    assert groups[0] == {"x": 52, "actions": 2, "users": 1}
    assert sorted(map(repr, (g["x"] for g in groups[1:]))) == sorted(map(repr, ["52", None, [1, 2]]))


def test_count_by_a_json_pointer_reads_nested_values_as_where_does(make_store):
    # Found by a new user: prop:/extra/nested/0 was taken as a top-level key
    # named so, and every action fell into the null group
    from openhouse_cli.analytics import parse_dimensions

    store = make_store([session("u", "s",
                                ("2018-10-01T10:00:00Z", "A", {"extra": {"nested": [7, 8]}}),
                                ("2018-10-01T10:00:01Z", "A", {"extra": {"nested": [7]}}),
                                ("2018-10-01T10:00:02Z", "A", {"extra": {"nested": []}}),
                                ("2018-10-01T10:00:03Z", "A", {"/extra/nested/0": 5}),
                                ("2018-10-01T10:00:04Z", "A", {"a/b": {"~": "x"}}))])
    found = {g["/extra/nested/0"]: g["actions"] for g in count(store, filters(), ["prop:/extra/nested/0"])}
    assert found == {7: 2, None: 3}
    assert [(g["/extra/nested/1"], g["actions"]) for g in count(store, filters(), ["prop:/extra/nested/1"])] == [
        (None, 4), (8, 1)]
    # ~1 is /, ~0 is ~: the top-level key "/extra/nested/0" and the key "a/b"
    assert {g["/~1extra~1nested~10"]: g["actions"] for g in count(store, filters(), ["prop:/~1extra~1nested~10"])} \
        == {5: 1, None: 4}
    assert {g["/a~1b/~0"]: g["actions"] for g in count(store, filters(), ["prop:/a~1b/~0"])} == {"x": 1, None: 4}
    # the same actions as --where with that pointer finds
    assert count(store, filters(where=["/extra/nested/0=7"]), ["type"])[0]["actions"] == 2
    with pytest.raises(ValueError, match="write ~ as ~0 and / as ~1"):
        parse_dimensions(["prop:/a~2"])


@pytest.mark.parametrize("first", ["bool", "number"])
def test_count_by_property_keeps_booleans_apart_from_numbers(make_store, first):
    # Found from outside: true and 1 (false and 0) were one group, labelled
    # by whichever was ingested first
    values = [True, True, 1, False, 0, 0, 0.0, 1.0]
    if first == "number":
        values.reverse()
    store = make_store([session("u", "s", *[(f"2018-10-01T10:00:{i:02d}Z", "A", {"k": v})
                                            for i, v in enumerate(values)])])
    found = {(type(g["k"]).__name__, g["k"]): g["actions"] for g in count(store, filters(), ["prop:k"])}
    # numbers of one value are one group (JSON has one number type), labelled as first read
    number_one = ("int", 1) if first == "bool" else ("float", 1.0)
    number_zero = ("int", 0) if first == "bool" else ("float", 0.0)
    assert found == {("bool", True): 2, ("bool", False): 1, number_one: 2, number_zero: 3}


def test_local_buckets_keep_every_bucket_the_data_reaches_under_instant_bounds(make_store):
    # Found from outside: on users' own clocks, an instant bound that excluded
    # no action still cut off the days (hours, periods) past its UTC wall time
    from openhouse_cli.analytics import retention

    store = make_store([session("a", "s", ("2018-01-01T23:00:00-10:00", "A"),
                                ("2018-01-03T01:00:00+14:00", "B"))])
    local = Clock(local=True)
    everything = [("2018-01-01", 1), ("2018-01-02", 0), ("2018-01-03", 1)]
    for start, end in ((None, None), (None, "2018-01-02T11:00:00Z"), ("2018-01-02T09:00:00Z", None),
                       ("2018-01-02T09:00:00Z", "2018-01-02T11:00:00Z")):
        bounds = bounded(start, end)
        assert len(list(query_actions(store, **bounds))) == 2  # the bounds exclude nothing
        assert [(d["day"], d["dau"]) for d in active(store, bounds, local)] == everything
        assert [(g["day"], g["actions"]) for g in count(store, bounds, ["day"], local)] == everything
        hours = [g["hour"] for g in count(store, bounds, ["hour"], local)]
        assert (hours[0], hours[-1], len(hours)) == ("2018-01-01T23", "2018-01-03T01", 27)
        assert retention(store, bounds, unit="day", periods=3, clock=local) == [
            {"cohort": "2018-01-01", "users": 1, "retained": [1, 0, 1]}]
    # on a zone's clock the bounds still set the series' ends, empty buckets included
    assert [d["day"] for d in active(store, bounded("2017-12-31", "2018-01-04T23:00:00Z"))] == [
        "2017-12-31", "2018-01-01", "2018-01-02", "2018-01-03", "2018-01-04"]


def test_a_bound_without_an_offset_keeps_every_bucket_the_data_reaches_on_the_utc_clock(make_store):
    # Found from outside: --date 2018-10-18 reads each action's own clock, and
    # Denver's evening of the 18th is the 19th in UTC; active showed only the
    # 18th, all zeros, while count showed the 19th's actions
    store = make_store([session("a", "s", ("2018-10-18T21:37:28-06:00", "A")),
                        session("b", "s", ("2018-10-18T08:00:00Z", "A"))])
    day = bounded("2018-10-18", "2018-10-18T23:59:59.999999")
    assert len(list(query_actions(store, **day))) == 2
    assert [(d["day"], d["dau"], d["wau"]) for d in active(store, day)] == [
        ("2018-10-18", 1, 1), ("2018-10-19", 1, 2)]
    assert [(g["day"], g["actions"]) for g in count(store, day, ["day"])] == [
        ("2018-10-18", 1), ("2018-10-19", 1)]
    hours = [(g["hour"], g["actions"]) for g in count(store, day, ["hour"])]
    # every hour from the bound's first to the last the data reaches, zero-filled
    assert (hours[0], hours[8], hours[-1], len(hours)) == (
        ("2018-10-18T00", 0), ("2018-10-18T08", 1), ("2018-10-19T03", 1), 28)
    assert sum(actions for _, actions in hours) == 2


def test_active_users_dau_wau_mau_windows(make_store):
    store = make_store([
        session("a", "s1", ("2018-10-01T12:00:00Z", "A"), ("2018-10-31T12:00:00Z", "A"),
                ("2018-11-04T12:00:00Z", "A")),
        session("b", "s2", ("2018-10-05T12:00:00Z", "A")),
        session("c", "s3", ("2018-10-08T12:00:00Z", "A"), ("2018-10-08T13:00:00Z", "A")),
    ])
    days = {d["day"]: (d["dau"], d["wau"], d["mau"]) for d in active(store, filters())}
    assert len(days) == 35  # 10-01 .. 11-04, zero-filled
    assert days["2018-10-01"] == (1, 1, 1)
    assert days["2018-10-05"] == (1, 2, 2)   # wau: a (10-01) and b within 09-29..10-05
    assert days["2018-10-07"] == (0, 2, 2)   # 10-01..10-07 still holds a's 10-01
    assert days["2018-10-08"] == (1, 2, 3)   # 10-02..10-08: b, c; a has left the week
    assert days["2018-10-12"] == (0, 1, 3)   # 10-06..10-12: c
    assert days["2018-10-30"] == (0, 0, 3)   # 10-01..10-30: a, b, c
    assert days["2018-10-31"] == (1, 1, 3)   # 10-02..10-31: b, c, a again
    assert days["2018-11-03"] == (0, 1, 3)   # 10-05..11-03: b, c, a
    assert days["2018-11-04"] == (1, 1, 2)   # wau 10-29..11-04: a; mau 10-06..11-04: c, a (b has left)
    weeks = active(store, filters(), by="week")
    assert weeks[0] == {"week": "2018-10-01", **dict(zip(("dau", "wau", "mau"), days["2018-10-07"]))}
    assert weeks[-1] == {"week": "2018-10-29", **dict(zip(("dau", "wau", "mau"), days["2018-11-04"]))}


def test_a_start_bound_chooses_the_days_shown_not_how_far_they_look_back(make_store):
    # Found from outside: active --since D cut each day's WAU and MAU at D.
    # PostHog's rule: on day D, WAU is the users of D-6..D, whatever the range shown
    store = make_store([session("a", "s1", ("2018-10-01T12:00:00Z", "A")),
                        session("b", "s2", ("2018-10-05T12:00:00Z", "A")),
                        session("c", "s3", ("2018-10-10T12:00:00Z", "A"), ("2018-10-12T12:00:00Z", "A")),
                        session("d", "s4", ("2018-09-01T12:00:00Z", "A"))])
    rows = active(store, bounded("2018-10-10T00:00:00Z", "2018-10-12T23:59:59Z"))
    # 10-10: wau 10-04..10-10 = b, c; mau 09-11..10-10 = a, b, c (d is 39 days back)
    assert [(r["day"], r["dau"], r["wau"], r["mau"]) for r in rows] == [
        ("2018-10-10", 1, 2, 3), ("2018-10-11", 0, 2, 3), ("2018-10-12", 1, 1, 3)]
    # the same figures as without the bound, for those days
    everything = {r["day"]: r for r in active(store, filters())}
    assert rows == [everything[r["day"]] for r in rows]
    # by week: the last day shown of each week, looking back as far
    weeks = active(store, bounded("2018-10-10T00:00:00Z", "2018-10-12T23:59:59Z"), by="week")
    assert weeks == [{"week": "2018-10-08", "dau": 1, "wau": 1, "mau": 3}]
    # other filters still choose the actions counted
    only_c = active(store, {**bounded("2018-10-10T00:00:00Z", "2018-10-10T23:59:59Z"), "users": ("c",)})
    assert [(r["dau"], r["wau"], r["mau"]) for r in only_c] == [(1, 1, 1)]


def test_the_look_back_is_in_days_of_the_buckets_clock(make_store):
    # Found by a review: looking back 29 x 24 UTC hours missed a user of the
    # 30th day back across a DST change, on users' own clocks, or with a
    # start read on each action's own clock
    ny = parse_zone("America/New_York")
    store = make_store([session("a", "s1", ("2018-11-01T00:30:00-04:00", "A")),
                        session("b", "s2", ("2018-11-30T12:00:00-05:00", "A")),
                        session("k", "s3", ("2018-09-11T08:00:00+14:00", "A")),
                        session("l", "s4", ("2018-10-10T12:00:00Z", "A")),
                        session("m", "s5", ("2018-09-10T18:00:00-08:00", "A"))])
    unbounded = {r["day"]: r for r in active(store, filters(), Clock.of(ny))}
    bounded_ny = active(store, bounded("2018-11-30", "2018-11-30T23:59:59", tz=ny), Clock.of(ny))
    assert bounded_ny == [unbounded["2018-11-30"]] and bounded_ny[0]["mau"] == 2
    local = Clock(local=True)
    everything = {r["day"]: r for r in active(store, filters(), local)}
    shown = active(store, bounded("2018-10-10T00:00:00Z", "2018-10-10T23:59:59Z"), local)
    assert [r for r in shown if r["day"] == "2018-10-10"] == [everything["2018-10-10"]]
    assert everything["2018-10-10"]["mau"] == 2  # k (09-11 on its clock) and l; m (09-10) is out
    utc_days = {r["day"]: r for r in active(store, filters())}
    own_clock = active(store, bounded("2018-10-10", "2018-10-10T23:59:59"))
    assert [r for r in own_clock if r["day"] == "2018-10-10"] == [utc_days["2018-10-10"]]


def test_active_days_in_a_zone(make_store):
    # 03:00Z on 10-02 is 21:00 on 10-01 in Denver
    store = make_store([session("a", "s", ("2018-10-02T03:00:00Z", "A")),
                        session("b", "s", ("2018-10-02T12:00:00Z", "A"))])
    assert [(d["day"], d["dau"]) for d in active(store, filters(), Clock.of(DENVER))] == [
        ("2018-10-01", 1), ("2018-10-02", 1)]
    assert [(d["day"], d["dau"]) for d in active(store, filters())] == [("2018-10-02", 2)]


@pytest.mark.parametrize("dims", [["type"], ["day"], ["prop:x"]])
def test_filters_apply(make_store, dims):
    store = make_store([session("a", "s", ("2018-10-01T10:00:00Z", "A", {"x": 1}),
                                ("2018-10-01T10:00:00Z", "B", {"x": 1})),
                        session("b", "s", ("2018-10-01T10:00:00Z", "A", {"x": 1}))])
    groups = count(store, filters(types=("a",), users=("a",)), dims)
    assert sum(g["actions"] for g in groups) == 1


# Two zones that jumped over a whole day: Apia from 2011-12-29 (-10:00) to
# 2011-12-31 (+14:00), Kwajalein from 1993-08-20 (-12:00) to 1993-08-22 (+12:00)
SKIPPED_DAYS = [
    ("Pacific/Apia", "2011-12-29T12:00:00-10:00", "2011-12-31T12:00:00+14:00",
     ("2011-12-28", "2012-01-01"), ["2011-12-28", "2011-12-29", "2011-12-31", "2012-01-01"],
     ["2011-12-29", "2011-12-30"]),
    ("Pacific/Kwajalein", "1993-08-20T10:00:00-12:00", "1993-08-22T10:00:00+12:00",
     ("1993-08-19", "1993-08-23"), ["1993-08-19", "1993-08-20", "1993-08-22", "1993-08-23"],
     ["1993-08-20", "1993-08-21"]),
]


@pytest.mark.parametrize("zone, before, after, bounds, shown, utc_days", SKIPPED_DAYS)
def test_a_day_the_zone_skipped_is_no_bucket_as_a_skipped_hour_is_none(make_store, zone, before, after,
                                                                         bounds, shown, utc_days):
    # Each action is 22:00Z, on the zone's clock the day before the skip and the day after
    tz = parse_zone(zone)
    store = make_store([session("u1", "s1", (before, "VIEW")), session("u2", "s2", (after, "VIEW"))])
    day_before, day_after = shown[1], shown[2]
    clock = Clock.of(tz)
    expected = [(day_before, 1), (day_after, 1)]
    assert [(g["day"], g["actions"]) for g in count(store, filters(), ["day"], clock)] == expected
    assert [(g["day"], g["type"], g["users"]) for g in count(store, filters(), ["day", "type"], clock)] == [
        (day_before, "VIEW", 1), (day_after, "VIEW", 1)]
    assert [(d["day"], d["dau"], d["wau"]) for d in active(store, filters(), clock)] == [
        (day_before, 1, 1), (day_after, 1, 2)]
    assert [(d["day"], d["actions"]) for d in stats(store, filters(), clock)["perDay"]] == expected
    # Bounds a day wider on each side fill the days the clock showed, and only those
    wider = bounded(*bounds, tz=tz)
    assert [g["day"] for g in count(store, wider, ["day"], clock)] == shown
    assert [d["day"] for d in active(store, wider, clock)] == shown
    # On UTC, and on the users' own clocks (fixed offsets), every day between is there
    assert [g["day"] for g in count(store, filters(), ["day"])] == utc_days
    assert len(count(store, filters(), ["day"], Clock.of(tz, local=True))) == 3
