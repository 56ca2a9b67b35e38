"""query_actions and friends on an in-memory database, loaded through ingest."""

import json
import pathlib
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openhouse_cli.db import open_db
from openhouse_cli.errors import NoDatabase, OhlogError
from openhouse_cli.ingest import ingest_sessions
from openhouse_cli.query import (
    FilterError, Where, build_query, count_actions, open_for_query, parse_where,
    query_actions, query_json, query_json_keyed, query_rows,
)
from openhouse_cli.times import Bound, parse_time_spec, parse_zone, resolve_bound

SAMPLE = pathlib.Path(__file__).parent.parent / "examples" / "sample_log.json"

# One instant (2018-10-19T03:37:28Z) written in four offsets, one more with
# none (taken as UTC), and neighbours a second either side.
MIXED = [
    {"userId": "u-denver", "sessionId": "s-1", "actions": [
        {"time": "2018-10-18T21:37:28-06:00", "type": "CLICK", "properties": {"locationX": 52, "locationY": 11}},
        {"time": "2018-10-18T21:37:30-06:00", "type": "VIEW", "properties": {"viewedId": "FDJKLHSLD"}},
        {"time": "2018-10-18T21:37:30-06:00", "type": "NAVIGATE",
         "properties": {"pageFrom": "communities", "pageTo": "inventory"}},
    ]},
    {"userId": "u-mumbai", "sessionId": "s-2", "actions": [
        {"time": "2018-10-19T09:07:28+05:30", "type": "view", "properties": {"viewedId": "52"}},
        {"time": "2018-10-19T09:07:27+05:30", "type": "CLICK", "properties": {"locationX": 52.0, "locationY": -3}},
    ]},
    {"userId": "u-london", "sessionId": "s-3", "actions": [
        {"time": "2018-10-19T03:37:28Z", "type": "SCROLL",
         "properties": {"depth": 0.5, "a.b": 1, "ok": True, "none": None, "nested": {"x": [1]}}},
        {"time": "2018-10-19T03:37:28+00:00", "type": "Click", "properties": {"locationX": 600, "locationY": 0}},
        {"time": "2018-10-19T03:37:29", "type": "VIEW", "properties": {"viewedId": "é ☃"}},
    ]},
    {"userId": "u-la", "sessionId": "s-4", "actions": [
        {"time": "2018-10-18T19:37:28.250-08:00", "type": "CLICK", "properties": {"locationX": 1.5, "locationY": 7}},
    ]},
]


def times(actions):
    return [a["time"] for a in actions]


def bound(text, end=False, tz=None):
    return resolve_bound(parse_time_spec(text), end=end, tz=parse_zone(tz))


@pytest.fixture
def mixed(store):
    ingest_sessions(store, MIXED)
    return store


def test_the_original_api_example(store):
    ingest_sessions(store, [json.loads(SAMPLE.read_text())])
    found = list(query_actions(
        store, users=["ABC123XYZ"], types=["CLICK"],
        start=bound("2018-10-18T21:37:25"), end=bound("2018-10-18T21:37:29", end=True),
    ))
    assert found == [{
        "userId": "ABC123XYZ", "sessionId": "XYZ456ABC", "time": "2018-10-18T21:37:28-06:00",
        "type": "CLICK", "properties": {"locationX": 52, "locationY": 11},
    }]


def test_an_instant_bound_finds_the_action_in_its_own_offset(mixed):
    instant = bound("2018-10-19T03:37:28Z"), bound("2018-10-19T03:37:28Z", end=True)
    assert times(query_actions(mixed, start=instant[0], end=instant[1])) == [
        "2018-10-18T21:37:28-06:00", "2018-10-19T09:07:28+05:30", "2018-10-19T03:37:28Z",
        "2018-10-19T03:37:28+00:00", "2018-10-18T19:37:28.250-08:00",
    ]


def test_a_bound_without_offset_is_each_actions_own_wall_clock(mixed):
    found = query_actions(mixed, start=bound("2018-10-18T21:37"), end=bound("2018-10-18T21:37", end=True))
    assert times(found) == ["2018-10-18T21:37:28-06:00", "2018-10-18T21:37:30-06:00",
                            "2018-10-18T21:37:30-06:00"]
    # the 14-hour slack on utc_us must not cut off the far zones
    assert times(query_actions(mixed, start=bound("2018-10-19T09:07:28"))) == ["2018-10-19T09:07:28+05:30"]
    assert times(query_actions(mixed, end=bound("2018-10-18T19:37:28.25"))) == ["2018-10-18T19:37:28.250-08:00"]


def test_tz_reads_bounds_without_offset_in_that_zone(mixed):
    found = query_actions(mixed, start=bound("2018-10-18T21:37:28", tz="America/Denver"),
                          end=bound("2018-10-18T21:37:28", end=True, tz="America/Denver"))
    assert len(times(found)) == 5
    found = query_actions(mixed, start=bound("2018-10-19T09:07:29", tz="Asia/Kolkata"),
                          end=bound("2018-10-19T09:07:29", end=True, tz="Asia/Kolkata"))
    assert times(found) == ["2018-10-19T03:37:29"]


def test_a_date_unit_is_its_whole_day_hour_or_second(mixed):
    def on(text):
        return len(list(query_actions(mixed, start=bound(text), end=bound(text, end=True))))

    assert [on("2018-10-18"), on("2018-10-19"), on("2018-10-19T03"), on("2018-10-18T21:37:30")] == [4, 5, 3, 2]


def test_start_or_end_alone(mixed):
    assert len(list(query_actions(mixed, start=bound("2018-10-19T03:37:29Z")))) == 3
    assert times(query_actions(mixed, end=bound("2018-10-19T03:37:27.999Z"))) == ["2018-10-19T09:07:27+05:30"]


def test_ordered_by_instant_ties_in_ingestion_order_both_ways(mixed):
    asc = times(query_actions(mixed))
    assert asc == [
        "2018-10-19T09:07:27+05:30", "2018-10-18T21:37:28-06:00", "2018-10-19T09:07:28+05:30",
        "2018-10-19T03:37:28Z", "2018-10-19T03:37:28+00:00", "2018-10-18T19:37:28.250-08:00",
        "2018-10-19T03:37:29", "2018-10-18T21:37:30-06:00", "2018-10-18T21:37:30-06:00",
    ]
    assert [a["type"] for a in query_actions(mixed)][-2:] == ["VIEW", "NAVIGATE"]
    # desc reverses the instants; actions at one instant keep ingestion order
    desc = [*asc[7:9], asc[6], asc[5], *asc[1:5], asc[0]]
    assert times(query_actions(mixed, order="desc")) == desc
    assert [a["type"] for a in query_actions(mixed, order="desc")][:2] == ["VIEW", "NAVIGATE"]
    assert times(query_actions(mixed, limit=2, order="desc")) == desc[:2]


def test_filters_are_or_within_and_and_across(mixed):
    assert {a["userId"] for a in query_actions(mixed, users=["u-la", "u-mumbai"])} == {"u-la", "u-mumbai"}
    assert len(list(query_actions(mixed, sessions=["s-1", "s-3"]))) == 6
    assert times(query_actions(mixed, users=["u-london"], types=["click", "SCROLL"])) == [
        "2018-10-19T03:37:28Z", "2018-10-19T03:37:28+00:00"]
    assert times(query_actions(mixed, users="u-denver", sessions="s-1", types="view")) == [
        "2018-10-18T21:37:30-06:00"]
    assert list(query_actions(mixed, users=["u-denver"], sessions=["s-2"])) == []
    assert list(query_actions(mixed, users=["nobody"])) == []


def test_types_match_in_any_case_and_keep_their_own(mixed):
    assert [a["type"] for a in query_actions(mixed, types=["cLiCk"])] == ["CLICK", "CLICK", "Click", "CLICK"]


@pytest.mark.parametrize("spec,expected", [
    ("locationX=52", 2),  # 52 and 52.0; not the string "52"
    ("viewedId=52", 0),  # a number matches numbers only,
    ('viewedId="52"', 1),  # a quoted value is text
    ("locationX!=52", 7),  # the complement: actions without the key too
    ("locationX>52", 1), ("locationX>=52", 3), ("locationX<52", 1), ("locationX<=1.5", 1),
    ("locationY<0", 1), ("locationX>1e2", 1),
    ("viewedId>FDJKLHSLD", 1),  # text compares with text only, by code point
    ("viewedId=é ☃", 1),
    ("a.b=1", 1),  # the key is literal, not a path
    ("ok=true", 1), ("ok=false", 0), ("ok!=true", 8), ("none=null", 1), ("missing=null", 0),
    ("depth=0.5", 1),
    ("pageTo=inventory", 1), ("pageTo=Inventory", 0),
    ("pageTo=inv=x", 0),  # the value is everything after the first operator
    ("/nested/x/0=1", 1), ("/nested/x/0!=1", 8), ("/nested/x=1", 0), ("/a.b=1", 1),
    ("/nested/x/00=1", 0), ("/nested/x/-1=1", 0), ("/nested/x/+0=1", 0), ("/nested/x/1=1", 0),
    ("/nested/x/0>=1", 1), ("/locationX>=52", 3), ("/nested=1", 0), ("/depth/0=0.5", 0),
])
def test_where(mixed, spec, expected):
    assert count_actions(mixed, where=[spec]) == expected
    assert len(list(query_actions(mixed, where=[parse_where(spec)]))) == expected


def test_where_conditions_combine(mixed):
    found = query_actions(mixed, where=["locationX>=52", "locationY<=0"], types=["click"])
    assert times(found) == ["2018-10-19T09:07:27+05:30", "2018-10-19T03:37:28+00:00"]


@pytest.mark.parametrize("spec,parsed", [
    ("x=52", Where("x", "=", 52)), ("x>=-1.5", Where("x", ">=", -1.5)),
    ("x=052", Where("x", "=", "052")), ('x=""', Where("x", "=", "")),
    ("x!=null", Where("x", "!=", None)),
    ("x<=a<b", Where("x", "<=", "a<b")), ('x="true"', Where("x", "=", "true")),
    ("x=99999999999999999999", Where("x", "=", 99999999999999999999)),  # exact, not 1e20
])
def test_parse_where(spec, parsed):
    assert parse_where(spec) == parsed


@pytest.mark.parametrize("spec,message", [
    ("x", "expected KEY=VALUE, KEY!=VALUE, KEY>VALUE, KEY>=VALUE, KEY<VALUE or KEY<=VALUE, got 'x'"),
    ("=1", "no property name before =: expected KEY=VALUE"),
    ("x>true", "only = and != work with true, false and null, got '>'"),
    ('x="a', "expected KEY") if False else ('x="a\\"', "not a valid JSON string"),
])
def test_parse_where_errors(spec, message):
    with pytest.raises(FilterError, match=message.replace("(", r"\(")):
        parse_where(spec)


def test_count_ignores_limit(mixed):
    assert count_actions(mixed, types=["click"], limit=1) == 4
    assert len(list(query_actions(mixed, types=["click"], limit=1))) == 1
    assert list(query_actions(mixed, limit=0)) == []


@pytest.mark.parametrize("filters,message", [
    ({"limit": -1}, "limit must be a whole number, 0 or more, got -1"),
    ({"limit": "5"}, "limit must be a whole number"),
    ({"order": "up"}, "order must be one of asc, desc, got 'up'"),
    ({"users": [1]}, "users must be strings, got 1"),
    ({"where": [("k", "~", 1)]}, "unknown operator '~'"),
])
def test_bad_filters_fail_at_call_time(mixed, filters, message):
    with pytest.raises(FilterError, match=message):
        query_actions(mixed, **filters)


def test_json_rows_and_dicts_agree(mixed):
    dicts = list(query_actions(mixed))
    assert [json.loads(line) for line in query_json(mixed)] == dicts
    assert [json.loads(r[4]) for r in query_rows(mixed)] == [d["properties"] for d in dicts]


def test_datetimes_are_bounds(mixed):
    denver = timezone(timedelta(hours=-6))
    aware = datetime(2018, 10, 18, 21, 37, 28, tzinfo=denver)
    assert len(list(query_actions(mixed, start=aware, end=aware))) == 4
    naive = datetime(2018, 10, 18, 21, 37, 28)
    assert times(query_actions(mixed, start=naive, end=naive)) == ["2018-10-18T21:37:28-06:00"]


@pytest.mark.parametrize("filters,index", [
    ({"users": ["u-la", "u-mumbai"], "types": ["CLICK"]}, "actions_user_type_time"),
    ({"users": ["u-la"], "types": ["CLICK"], "start": Bound(0, False)}, "actions_user_type_time"),
    ({"users": ["u-la"]}, "actions_user_type_time"),
    ({"sessions": ["s-1"], "types": ["CLICK"]}, "actions_session_time"),
    ({"types": ["CLICK"], "start": Bound(0, True)}, "actions_type_time"),
    ({"start": Bound(0, False), "end": Bound(1, False)}, "actions_dedupe"),
    ({}, "actions_dedupe"),
])
def test_the_planner_uses_the_right_index(db, filters, index):
    mixed = db
    ingest_sessions(db, MIXED)
    sql, params = build_query("*", **filters)
    plan = " ".join(row[3] for row in mixed.conn.execute("EXPLAIN QUERY PLAN " + sql, params))
    assert f"USING INDEX {index} (" in plan or f"SCAN actions USING INDEX {index}" in plan
    if filters.get("users") and filters.get("types"):
        assert "user_id=? AND type_key=?" in plan
    if "start" in filters:
        assert "utc_us>?" in plan  # the derived range serves wall-clock bounds too


SCHEMA = {"sqlite": "SELECT * FROM sqlite_master",
          "postgresql": "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                        "ORDER BY relname"}
NASTY = ["'", '"', "';--", "%", "_", "a\x00b", "a\x00c", "x' OR '1'='1", "); DROP TABLE actions;--",
         "\\", "[0]", "$.x", "a%", "ab", "a_", "line\nbreak\t\x1f", "é☃\u2028"]


def test_injection_every_filter_is_a_parameter_and_exact(store):
    docs = [{"userId": s, "sessionId": s, "actions": [
        {"time": f"2018-10-18T21:37:{i:02d}Z", "type": s, "properties": {s: s, "v": s}}]}
        for i, s in enumerate(NASTY)]
    ingest_sessions(store, docs)
    schema = list(store.execute(SCHEMA[store.engine]))
    for i, s in enumerate(NASTY):
        expected = [f"2018-10-18T21:37:{i:02d}Z"]
        for filters in ({"users": [s]}, {"sessions": [s]}, {"types": [s]},
                        {"where": [Where(s, "=", s)]}, {"where": [Where("v", "=", s)]},
                        {"where": [Where("v", ">=", s), Where("v", "<=", s)]}):
            assert times(query_actions(store, **filters)) == expected, (s, filters)
        assert count_actions(store, where=[Where(s, "!=", s)]) == len(NASTY) - 1
    assert list(store.execute(SCHEMA[store.engine])) == schema
    assert count_actions(store) == len(NASTY)
    assert [json.loads(line) for line in query_json(store)] == list(query_actions(store))


def test_open_for_query_creates_nothing(tmp_path):
    path = tmp_path / "missing.db"
    with pytest.raises(NoDatabase, match=f"^No database found at {path}$"):
        open_for_query(path)
    assert list(tmp_path.iterdir()) == []


def test_a_sqlite_file_without_a_table_is_no_database_to_readers_and_stays_as_it_was(tmp_path):
    from openhouse_cli.store.sqlite import holds_no_database, open_conn

    path = tmp_path / "other tool's.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 7")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("DROP TABLE t")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    assert holds_no_database(path)
    with pytest.raises(NoDatabase, match=r"^No database found at .* \(the file holds no tables\)$"):
        open_for_query(path)
    with pytest.raises(NoDatabase, match=r"\(the file holds no tables\)$"):
        open_conn(path, create=False)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other tool's.db"]
    # A writer that creates makes it a database, and then it is one
    ingest_sessions(open_db(path), MIXED)
    assert not holds_no_database(path)
    assert len(list(query_actions(open_for_query(path)))) == 9


def test_open_for_query_is_read_only_and_leaves_an_empty_file_alone(tmp_path):
    path = tmp_path / "weird name ?#%.db"
    path.write_bytes(b"")
    with pytest.raises(NoDatabase, match=r"^No database found at .* \(the file is empty\)$"):
        open_for_query(path)
    assert path.read_bytes() == b""
    ingest_sessions(open_db(path), MIXED)
    conn = open_for_query(path)
    assert len(list(query_actions(conn))) == 9
    with pytest.raises(Exception, match="readonly"):
        conn.execute("DELETE FROM actions")


def test_not_a_database(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("hello " * 1000)
    with pytest.raises(OhlogError, match="^Cannot open database .*notes.db: file is not a database$"):
        open_for_query(path)


OFFSETS = ["Z", "+00:00", "+05:30", "-08:00", "-06:00", "+14:00", "-12:00", ""]
BASE = datetime(2018, 10, 18, tzinfo=timezone.utc)
instants = st.integers(min_value=0, max_value=3 * 86400 * 10**6)


def written(us, offset, spec="auto"):
    tz = timezone.utc if offset in ("Z", "") else datetime.fromisoformat("2000-01-01T00:00" + offset).tzinfo
    wall = (BASE + timedelta(microseconds=us)).astimezone(tz).replace(tzinfo=None)
    return wall.isoformat(timespec=spec) + offset


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    actions=st.lists(st.tuples(instants, st.sampled_from(OFFSETS)), min_size=1, max_size=25),
    lo=st.tuples(instants, st.sampled_from(OFFSETS[:-1])),
    hi=st.tuples(instants, st.sampled_from(OFFSETS[:-1])),
)
def test_an_aware_range_returns_exactly_the_actions_inside_it(store, actions, lo, hi):
    db = store
    store.execute("DELETE FROM actions")
    docs = [{"userId": "u", "sessionId": f"s{i}", "actions": [
        {"time": written(us, offset), "type": "T", "properties": {"i": i}}]}
        for i, (us, offset) in enumerate(actions)]
    ingest_sessions(db, docs)
    # bounds to the microsecond: a bound to the second would include that whole second
    start = resolve_bound(parse_time_spec(written(*lo, spec="microseconds")))
    end = resolve_bound(parse_time_spec(written(*hi, spec="microseconds")), end=True)
    found = [a["properties"]["i"] for a in query_actions(db, start=start, end=end)]
    inside = sorted((us, i) for i, (us, _) in enumerate(actions) if lo[0] <= us <= hi[0])
    assert found == [i for _, i in inside]


PATHED = {"retry.attempt": 1, "retry": {"attempt": 2, "a.b": {"[0]": 3}, "x/y": 4, "t~": 5,
                                         '"q"': 6, "": 7, "0": 8, "n\x00": 9},
          "list": [10, {"k": 11}, [12]], "-1": 13}


@pytest.mark.parametrize("spec,found", [
    ("retry.attempt=1", True), ("retry.attempt=2", False),  # a key without / is literal
    ("/retry/attempt=2", True), ("/retry/attempt>1", True), ("/retry/attempt<2", False),
    ("/retry.attempt=1", True), ("/retry/a.b/[0]=3", True), ("/retry/x~1y=4", True),
    ("/retry/t~0=5", True), ('/retry/"q"=6', True), ("/retry/=7", True), ("/retry/0=8", True),
    ("/list/0=10", True), ("/list/1/k=11", True), ("/list/2/0=12", True), ("/list/3=10", False),
    ("/list/01=11", False), ("/list/-1=10", False), ("/-1=13", True), ("/list/k=11", False),
    ("/retry/attempt!=3", True), ("/retry/attempt!=2", False), ("/missing/x!=1", True),
    ('"/retry/a.b"=1', False), ('"/retry/a.b/[0]" = 3', True),  # quoted: a pointer that may hold spaces
])
def test_where_paths(store, spec, found):
    ingest_sessions(store, [{"userId": "u", "sessionId": "s", "actions": [
        {"time": "2018-10-18T21:37:28Z", "type": "T", "properties": PATHED},
        {"time": "2018-10-18T21:37:29Z", "type": "T", "properties": {**PATHED, "z": "\x00"}}]}])
    assert count_actions(store, where=[spec]) == 2 * found
    assert len(list(query_actions(store, where=[spec]))) == 2 * found


def test_a_path_key_holding_nul_and_bad_pointers(store):
    ingest_sessions(store, [{"userId": "u", "sessionId": "s", "actions": [
        {"time": "2018-10-18T21:37:28Z", "type": "T", "properties": PATHED}]}])
    assert count_actions(store, where=[Where(("retry", "n\x00"), "=", 9)]) == 1
    assert count_actions(store, where=[Where(("retry", "n\x00"), "!=", 9)]) == 0
    assert parse_where("/a~1b/c~0d=1") == Where(("a/b", "c~d"), "=", 1)
    for bad in ("/a~2=1", "/a~=1"):
        with pytest.raises(FilterError, match="write ~ as ~0 and / as ~1"):
            parse_where(bad)


def test_several_types_stream_in_order_from_one_select_a_type(tmp_path):
    # Several --type values on SQLite: one SELECT a type, each in time order
    # from the (type_key, utc_us) index, merged (no sort of every match before
    # the first row). Random actions with ties to the microsecond and the
    # nanosecond: the same rows, in the same order (ties in ingestion order),
    # as sorting the matches here, for every order, limit, bound, place
    # (keyset pages), --where and spelling of the types.
    import random

    from openhouse_cli.store import open_store

    rng = random.Random(5)
    docs = []
    for s in range(40):
        actions = []
        for _ in range(rng.randrange(1, 12)):
            second = rng.randrange(0, 5)
            frac = rng.choice(["", ".5", ".000001", ".000000300", ".000000301"])
            kind = rng.choice(["VIEW", "view", "CLICK", "SCROLL", "NAVIGATE", "Scroll"])
            props = {"viewedId": str(rng.randrange(3))} if kind.lower() == "view" else \
                {"locationX": rng.randrange(3), "locationY": 1} if kind == "CLICK" else \
                {"pageFrom": "a", "pageTo": "b"} if kind == "NAVIGATE" else {"depth": rng.randrange(2)}
            actions.append({"time": f"2018-10-18T21:37:0{second}{frac}-06:00", "type": kind,
                            "properties": props})
        docs.append({"userId": f"u{s % 7}", "sessionId": f"s{s}", "actions": actions})
    store = open_store(str(tmp_path / "types.db"))
    ingest_sessions(store, docs)
    every = store.execute("SELECT id, utc_us, ns, type_key, properties FROM actions").fetchall()
    base = 1539920220 * 10**6
    checked = 0
    for types in (("VIEW", "click"), ("scroll", "CLICK", "navigate"), ("view", "VIEW", "SCROLL")):
        for order in ("asc", "desc"):
            for start, end in ((None, None), (Bound(base + 10**6, True), Bound(base + 3 * 10**6 + 1, True, 300))):
                for where in ((), ("depth=1",)):
                    keys = {t.casefold() for t in types}
                    want = [r for r in every if r[3] in keys
                            and (start is None or (r[1], r[2]) >= (start.us, start.ns))
                            and (end is None or (r[1], r[2]) <= (end.us, end.ns))
                            and (not where or json.loads(r[4]).get("depth") == 1)]
                    want.sort(key=lambda r: (r[1], r[2], r[0]))
                    if order == "desc":  # newest first, ties still in ingestion order
                        want.sort(key=lambda r: (r[1], r[2]), reverse=True)
                    filters = dict(types=types, order=order, start=start, end=end, where=where)
                    got = [key for _, key in query_json_keyed(store, **filters)]
                    assert [k[2] for k in got] == [r[0] for r in want], (types, order, start, where)
                    for limit in (1, 3):
                        assert [k for _, k in query_json_keyed(store, **filters, limit=limit)] == got[:limit]
                    if len(got) > 2:  # a keyset page from the second row on
                        after = [k for _, k in query_json_keyed(store, **filters, after=got[1])]
                        assert after == got[2:]
                    checked += len(got) > 2
    assert checked > 10
    sql, params = build_query("id", types=("view", "click"), order="asc", limit=3)
    plan = " ".join(row[3] for row in store.execute("EXPLAIN QUERY PLAN " + sql, params))
    assert "MERGE" in plan and "ORDER BY" not in plan.replace("RIGHT PART OF ORDER BY", ""), plan
    store.close()
