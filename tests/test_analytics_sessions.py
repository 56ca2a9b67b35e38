"""sessions and timeline on hand-made data, on SQLite and PostgreSQL; answers worked out by hand."""

from openhouse_cli.analytics import sessions, timeline

from .test_analytics_fixtures import engine, filters, make_store, session  # noqa: F401

MIN = 60 * 10**6  # microseconds


def by_id(found):
    return {(s["userId"], s["sessionId"]): s for s in found["sessions"]}


def test_client_sessions_durations_and_bounce_rules(make_store):
    store = make_store([
        session("u", "click", ("2018-10-01T10:00:00Z", "CLICK")),                     # a click: engaged
        session("u", "view", ("2018-10-01T11:00:00Z", "VIEW")),                       # one view: bounce
        session("u", "short", ("2018-10-01T12:00:00Z", "VIEW"),
                ("2018-10-01T12:00:09.999Z", "SCROLL")),                              # 9.999 s: bounce
        session("u", "ten", ("2018-10-01T13:00:00Z", "VIEW"), ("2018-10-01T13:00:10Z", "SCROLL")),
        session("u", "pages", ("2018-10-01T14:00:00Z", "VIEW"), ("2018-10-01T14:00:00Z", "NAVIGATE")),
        session("v", "lower", ("2018-10-01T09:00:00+02:00", "click", {"locationX": 1, "locationY": 1})),
    ])
    found = by_id(sessions(store, filters()))
    assert {k: (s["durationSeconds"], s["actions"], s["bounce"]) for k, s in found.items()} == {
        ("u", "click"): (0.0, 1, False),
        ("u", "view"): (0.0, 1, True),
        ("u", "short"): (9.999, 2, True),
        ("u", "ten"): (10.0, 2, False),
        ("u", "pages"): (0.0, 2, False),
        ("v", "lower"): (0.0, 1, False),  # "click" is CLICK under case folding
    }
    result = sessions(store, filters())
    # user by user, each user's in order of start (v's 07:00Z session comes after u's)
    assert [s["sessionId"] for s in result["sessions"]] == ["click", "view", "short", "ten", "pages", "lower"]
    # durations sorted: 0, 0, 0, 0, 9.999, 10: median 0; p90 is the 6th (nearest rank, ceil(5.4))
    assert result["summary"] == {"sessions": 6, "medianSeconds": 0.0, "p90Seconds": 10.0,
                                 "bounceRate": 2 / 6}
    assert found[("u", "short")]["start"] == "2018-10-01T12:00:00Z"
    assert found[("u", "short")]["end"] == "2018-10-01T12:00:09.999Z"


def test_pages_are_the_first_pagefrom_and_the_last_pageto(make_store):
    store = make_store([session("u", "s",
                                ("2018-10-01T10:00:00Z", "NAVIGATE", {"pageFrom": "home", "pageTo": "list"}),
                                ("2018-10-01T10:00:05Z", "CLICK"),
                                ("2018-10-01T10:00:09Z", "NAVIGATE", {"pageFrom": "list", "pageTo": "cart"}))])
    (only,) = sessions(store, filters())["sessions"]
    assert (only["firstPage"], only["lastPage"], only["durationSeconds"]) == ("home", "cart", 9.0)


def test_a_session_id_belongs_to_its_user(make_store):
    store = make_store([session("a", "s", ("2018-10-01T10:00:00Z", "CLICK")),
                        session("b", "s", ("2018-10-01T10:00:01Z", "CLICK"))])
    assert [(s["userId"], s["sessionId"]) for s in sessions(store, filters())["sessions"]] == [
        ("a", "s"), ("b", "s")]


def test_split_by_inactivity_cuts_at_the_gap_and_joins_client_sessions(make_store):
    store = make_store([
        session("u", "c1", ("2018-10-01T10:00:00Z", "VIEW"), ("2018-10-01T10:29:59Z", "VIEW")),
        # 29:59 after the last: the same split session, though another client session
        session("u", "c2", ("2018-10-01T10:59:58Z", "VIEW"),
                # exactly 30 minutes later: 30 minutes passed, a new session
                ("2018-10-01T11:29:58Z", "VIEW")),
        session("w", "c3", ("2018-10-01T10:10:00Z", "VIEW")),  # another user never joins
    ])
    found = sessions(store, filters(), 30 * MIN)["sessions"]
    assert [(s["userId"], s["sessionId"], s["start"], s["actions"], s["durationSeconds"]) for s in found] == [
        ("u", "c1", "2018-10-01T10:00:00Z", 3, 3598.0),
        ("u", "c2", "2018-10-01T11:29:58Z", 1, 0.0),
        ("w", "c3", "2018-10-01T10:10:00Z", 1, 0.0),
    ]


def test_split_sessions_end_at_24_hours(make_store):
    # an action every 20 minutes for 25 hours: never 30 minutes idle
    times = [f"2018-10-{1 + m // 1440:02d}T{m // 60 % 24:02d}:{m % 60:02d}:00Z" for m in range(0, 25 * 60 + 1, 20)]
    first, second = times[:36], times[36:]  # the client session changes at 12:00
    store = make_store([session("u", "c1", *[(t, "VIEW") for t in first]),
                        session("u", "c2", *[(t, "VIEW") for t in second])])
    found = sessions(store, filters(), 30 * MIN)["sessions"]
    # 00:00 .. 23:40 is 72 actions; 24:00 is 24 hours after the first: a new session
    assert [(s["sessionId"], s["start"], s["end"], s["actions"]) for s in found] == [
        ("c1", "2018-10-01T00:00:00Z", "2018-10-01T23:40:00Z", 72),
        ("c2", "2018-10-02T00:00:00Z", "2018-10-02T01:00:00Z", 4),
    ]
    assert found[0]["durationSeconds"] == 23 * 3600 + 40 * 60


def test_any_split_of_two_days_or_more_cuts_where_two_days_do(make_store):
    # Pauses of 36 h and 50 h: past the 24 hours, so every split of two days
    # or more cuts both, up to the longest duration taken (was an overflow)
    from openhouse_cli.analytics import funnel, parse_duration, parse_step

    store = make_store([session("u", "c", ("2018-10-01T00:00:00Z", "VIEW"), ("2018-10-02T12:00:00Z", "CLICK"),
                                ("2018-10-04T14:00:00Z", "VIEW"))])
    longest = parse_duration("3660000d")
    cut = [[s["start"] for s in sessions(store, filters(), split)["sessions"]]
           for split in (2 * 24 * 60 * MIN, 3 * 24 * 60 * MIN, longest)]
    assert cut == [["2018-10-01T00:00:00Z", "2018-10-02T12:00:00Z", "2018-10-04T14:00:00Z"]] * 3
    steps = [parse_step("VIEW"), parse_step("CLICK")]
    assert [s["users"] for s in funnel(store, filters(), steps, within_us=longest)] == [1, 1]


def test_no_sessions(make_store):
    store = make_store([session("u", "s", ("2018-10-01T10:00:00Z", "VIEW"))])
    assert sessions(store, filters(users=("x",))) == {
        "sessions": [], "summary": {"sessions": 0, "medianSeconds": None, "p90Seconds": None,
                                    "bounceRate": None}}


def test_timeline_gaps_since_the_users_previous_action(make_store):
    store = make_store([
        session("u", "s1", ("2018-10-01T10:00:00-06:00", "VIEW"), ("2018-10-01T16:01:02Z", "CLICK")),
        session("u", "s2", ("2018-10-01T16:01:02.5Z", "SCROLL", {"depth": 1})),
        session("w", "s3", ("2018-10-01T16:00:30Z", "VIEW")),
    ])
    steps = list(timeline(store, filters(users=("u",))))
    assert [(a["time"], a["gapSeconds"]) for a in steps] == [
        ("2018-10-01T10:00:00-06:00", None), ("2018-10-01T16:01:02Z", 62.0),
        ("2018-10-01T16:01:02.5Z", 0.5)]
    assert steps[2] == {"userId": "u", "sessionId": "s2", "time": "2018-10-01T16:01:02.5Z",
                        "type": "SCROLL", "properties": {"depth": 1}, "gapSeconds": 0.5}
    assert [a["gapSeconds"] for a in timeline(store, filters(sessions=("s1", "s3")))] == [None, None, 62.0]


def test_split_sessions_keep_nanosecond_order_and_the_time_texts(make_store):
    # nanoseconds beyond the microsecond order the actions, and start/end are
    # the texts as sent
    store = make_store([
        session("u", "late", ("2018-10-01T12:00:00.000000900+02:00", "NAVIGATE",
                              {"pageFrom": "b", "pageTo": "c"})),
        session("u", "early", ("2018-10-01T10:00:00.000000100Z", "NAVIGATE",
                               {"pageFrom": "a", "pageTo": "b"}),
                ("2018-10-01T10:20:00Z", "VIEW")),
    ])
    (only,) = sessions(store, filters(), split_us=30 * MIN)["sessions"]
    assert (only["sessionId"], only["start"], only["end"]) == (
        "early", "2018-10-01T10:00:00.000000100Z", "2018-10-01T10:20:00Z")
    # both NAVIGATEs fall in one microsecond; "late" was stored first
    assert (only["firstPage"], only["lastPage"], only["actions"]) == ("a", "c", 3)
    assert only["durationSeconds"] == 1200.0 - 1e-7
    # the VIEW comes 20 minutes after: a session of its own at 5 minutes
    (first, second) = sessions(store, filters(), split_us=5 * MIN)["sessions"]
    assert (first["sessionId"], first["actions"], second["sessionId"]) == ("early", 2, "early")
    assert (second["start"], second["firstPage"]) == ("2018-10-01T10:20:00Z", None)




def test_pages_beside_other_properties_of_every_kind(make_store):
    # NAVIGATE's pages are strings (ingest checks); the other properties beside them
    # (a 20-digit integer, a float, a list, a page that looks like a big number) change nothing
    big = 18446744073709551616
    store = make_store([
        session("u", "s",
                ("2018-10-01T10:00:00Z", "NAVIGATE", {"pageFrom": "12345678901234567890123",
                                                       "pageTo": "a", "n": big}),
                ("2018-10-01T10:00:01Z", "navigate", {"pageFrom": "a", "pageTo": "b", "x": [1.5, None]}),
                ("2018-10-01T10:00:02Z", "VIEW", {"viewedId": "v", "pageTo": "not a navigate"})),
        session("v", "t", ("2018-10-01T10:00:00Z", "NAVIGATE", {"pageFrom": "c", "pageTo": "d",
                                                                 "n": -big})),
    ])
    found = by_id(sessions(store, filters(), 30 * MIN))
    u, v = found[("u", "s")], found[("v", "t")]
    assert (u["firstPage"], u["lastPage"], u["actions"], u["bounce"]) == (
        "12345678901234567890123", "b", 3, False)
    assert (v["firstPage"], v["lastPage"], v["actions"], v["bounce"]) == ("c", "d", 1, True)
