"""An outside review's cases: sessions are their user's, property keys that collide
with other keys, bounded zero-filling, tables at 80 and 120 columns, funnels that
match nothing. On both engines, with and without the summaries; answers by hand."""

import json
import os
import subprocess

import pytest

from openhouse_cli.analytics import SeriesTooLong, active, count, stats, summaries
from openhouse_cli.times import parse_time_spec, resolve_range

from .conftest import OHLOG
from .test_analytics_fixtures import engine, filters, make_store, session  # noqa: F401


def both(fn, *args, **kwargs):
    """``fn``'s answer, checked equal with the summaries and without them."""
    kept = fn(*args, **kwargs)
    with summaries.bypassed():
        assert fn(*args, **kwargs) == kept
    return kept


def bounded(start, end):
    span = resolve_range(parse_time_spec(start), parse_time_spec(end), tz=None)
    return filters(start=span.start, end=span.end, gaps=span.gaps)


# -- 1. a session is the sessionId of its user

def test_two_users_sharing_a_session_id_are_two_sessions(make_store):
    store = make_store([
        session("u1", "s1", ("2018-10-01T10:00:00Z", "CLICK"), ("2018-10-01T10:00:05Z", "VIEW")),
        session("u2", "s1", ("2018-10-01T11:00:00Z", "CLICK")),
        session("u2", "s2", ("2018-10-01T12:00:00Z", "CLICK")),
    ])
    assert both(count, store, filters(), ["session"]) == [
        {"userId": "u1", "sessionId": "s1", "actions": 2, "users": 1},
        {"userId": "u2", "sessionId": "s1", "actions": 1, "users": 1},
        {"userId": "u2", "sessionId": "s2", "actions": 1, "users": 1}]
    assert len(count(store, filters(), ["session"])) == both(stats, store, filters())["sessions"]
    # crossed with user, type and a time unit, and with a filter the summaries cannot apply
    assert both(count, store, filters(), ["session", "user"])[0] == {
        "sessionId": "s1", "userId": "u1", "actions": 2, "users": 1}
    assert both(count, store, filters(), ["type", "session"]) == [
        {"type": "CLICK", "userId": "u1", "sessionId": "s1", "actions": 1, "users": 1},
        {"type": "CLICK", "userId": "u2", "sessionId": "s1", "actions": 1, "users": 1},
        {"type": "CLICK", "userId": "u2", "sessionId": "s2", "actions": 1, "users": 1},
        {"type": "VIEW", "userId": "u1", "sessionId": "s1", "actions": 1, "users": 1}]
    assert [(g["userId"], g["sessionId"], g["actions"]) for g in both(
        count, store, filters(), ["day", "session"])] == [("u1", "s1", 2), ("u2", "s1", 1), ("u2", "s2", 1)]
    assert both(count, store, filters(sessions=("s1",)), ["session", "prop:none"]) == [
        {"userId": "u1", "sessionId": "s1", "none": None, "actions": 2, "users": 1},
        {"userId": "u2", "sessionId": "s1", "none": None, "actions": 1, "users": 1}]


# -- 2. a property named like another key of the output is prop:KEY

@pytest.mark.parametrize("dims, key", [
    (["prop:users"], "prop:users"), (["prop:actions"], "prop:actions"),
    (["type", "prop:type"], "prop:type"), (["prop:day", "day"], "prop:day"),
    (["user", "prop:userId"], "prop:userId"), (["session", "prop:userId"], "prop:userId"),
    (["session", "prop:sessionId"], "prop:sessionId"), (["prop:hour", "hour"], "prop:hour"),
    (["prop:kind"], "kind"), (["prop:type"], "type"), (["prop:day"], "day"),
])
def test_a_property_key_colliding_with_another_key_is_prefixed(make_store, dims, key):
    name = dims[[d.startswith("prop:") for d in dims].index(True)][5:]
    store = make_store([
        session("u1", "s1", ("2018-10-01T10:00:00Z", "CLICK", {name: "a", "locationX": 1, "locationY": 2})),
        session("u2", "s2", ("2018-10-01T10:30:00Z", "CLICK", {name: "b", "locationX": 1, "locationY": 2})),
    ])
    groups = both(count, store, filters(), dims)
    assert sorted(g[key] for g in groups) == ["a", "b"]
    assert all(g["actions"] == 1 and g["users"] == 1 for g in groups)
    assert all(len(g) == len(dims) + 2 + ("session" in dims and "user" not in dims) for g in groups)


def test_a_prefixed_name_taken_by_another_property_is_prefixed_again(make_store):
    store = make_store([session("u1", "s1", ("2018-10-01T10:00:00Z", "X", {"day": 1, "prop:day": 2}))])
    assert both(count, store, filters(), ["prop:day", "day", "prop:prop:day"]) == [
        {"prop:prop:day": 1, "day": "2018-10-01", "prop:day": 2, "actions": 1, "users": 1}]


def test_colliding_keys_through_the_command_in_csv_and_table(run_ohlog, tmp_path):
    path = tmp_path / "log.ndjson"
    path.write_text("\n".join(json.dumps(session(u, "s", ("2018-10-01T10:00:00Z", "X", {"users": u})))
                              for u in ("a", "b")) + "\n")
    db = tmp_path / "a.db"
    assert run_ohlog("ingest", "--db", db, path).returncode == 0
    text = run_ohlog("count", "--db", db, "--by", "prop:users", "--csv").stdout.decode()
    assert text.splitlines() == ["prop:users,actions,users", "a,1,1", "b,1,1"]
    text = run_ohlog("count", "--db", db, "--by", "prop:users", "--table").stdout.decode()
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["prop:users", "Actions", "Users"]
    assert [line.split()[:3] for line in lines[2:]] == [["a", "1", "1"], ["b", "1", "1"]]


# -- 3. zero-filling: bounded, and only across type

def test_series_by_user_session_or_property_show_only_groups_with_actions(make_store):
    store = make_store([
        session("u1", "s1", ("2018-10-01T10:00:00Z", "CLICK")),
        session("u2", "s2", ("2018-10-03T10:00:00Z", "CLICK")),
    ])
    assert [(g["userId"], g["day"], g["actions"]) for g in both(count, store, filters(), ["user", "day"])] == [
        ("u1", "2018-10-01", 1), ("u2", "2018-10-03", 1)]
    assert len(both(count, store, filters(), ["session", "hour"])) == 2
    assert len(both(count, store, filters(), ["prop:locationX", "day"])) == 2
    # alone or with type, still zero-filled: 3 days, for each type
    assert [g["actions"] for g in both(count, store, filters(), ["day"])] == [1, 0, 1]
    assert [g["actions"] for g in both(count, store, filters(), ["type", "day"])] == [1, 0, 1]


@pytest.mark.parametrize("dims, start, end", [
    (["day"], "0001-01-01", "9999-12-31"), (["hour", "type"], "2010-01-01", "2022-01-01"),
    (["week"], "0001-01-01", "9999-12-31")])
def test_a_series_of_more_than_100000_buckets_is_refused(make_store, dims, start, end):
    store = make_store([session("u1", "s1", ("2018-10-01T10:00:00Z", "CLICK"))])
    with pytest.raises(SeriesTooLong, match="to zero-fill"):
        count(store, bounded(start, end), dims)
    # without zero-filling nothing is refused
    assert count(store, bounded(start, end), dims + ["user"])[0]["actions"] == 1


def test_month_series_and_active_are_bounded_too(make_store):
    store = make_store([session("u1", "s1", ("2018-10-01T10:00:00Z", "CLICK"))])
    assert len(count(store, bounded("2000-01-01", "9999-12-31"), ["month"])) == 8000 * 12
    with pytest.raises(SeriesTooLong, match="0001-01 to 9999-12 is 119,988 months"):
        count(store, bounded("0001-01-01", "9999-12-31"), ["month"])
    with pytest.raises(SeriesTooLong):
        active(store, bounded("0001-01-01", "9999-12-31"))


def test_refusals_are_usage_errors_in_one_line(run_ohlog, tmp_path):
    path = tmp_path / "log.ndjson"
    path.write_text(json.dumps(session("u", "s", ("2018-10-01T10:00:00Z", "CLICK"))) + "\n")
    db = tmp_path / "a.db"
    assert run_ohlog("ingest", "--db", db, path).returncode == 0
    for args, hint in ((["count", "--by", "day"], "a coarser --by (week, month)"), (["active"], "narrower")):
        result = run_ohlog(*args, "--db", db, "--start", "0001-01-01", "--end", "9999-12-31", "--table")
        assert result.returncode == 2 and result.stdout == b""
        assert result.stderr.decode().splitlines() == [
            f"Error: 0001-01-01 to 9999-12-31 is 3,652,059 days to zero-fill (at most 100,000): use {hint}"
            + (" or narrower --start/--end" if "coarser" in hint else " --start/--end")]


# -- 5. small things

@pytest.mark.parametrize("order", ["ordered", "strict", "any"])
def test_steps_matching_nothing_are_rows_of_zero_in_every_order(make_store, order):
    from openhouse_cli.analytics import funnel, parse_step

    store = make_store([session("u1", "s1", ("2018-10-01T10:00:00Z", "VIEW"))])
    steps = [parse_step("NOPE"), parse_step("NADA")]
    zero = {"users": 0, "conversion": None, "fromPrevious": None, "medianSecondsFromPrevious": None}
    assert funnel(store, filters(), steps, order=order) == [{"step": "NOPE", **zero}, {"step": "NADA", **zero}]
    # a first step matched, a later one not: 0 with a conversion of 0
    assert [(r["users"], r["conversion"]) for r in funnel(
        store, filters(), [parse_step("VIEW"), parse_step("NADA")], order=order)] == [(1, 1.0), (0, 0.0)]
    # no action matches the filters: the contract's empty list, as every analysis gives
    assert funnel(store, filters(users=("nobody",)), steps, order=order) == []


def test_the_summaries_say_1_session_and_2_sessions(run_ohlog, tmp_path):
    path = tmp_path / "log.ndjson"
    path.write_text("\n".join(json.dumps(session(u, "s", ("2018-10-01T10:00:00Z", "CLICK"))) for u in "ab"))
    db = tmp_path / "a.db"
    assert run_ohlog("ingest", "--db", db, path).returncode == 0
    one = run_ohlog("sessions", "--db", db, "--user", "a", "--table").stdout.decode()
    assert "\n1 session, median" in one
    one = run_ohlog("stats", "--db", db, "--user", "a", "--table").stdout.decode()
    assert "\n1 action, 1 user, 1 session\n" in one
    two = run_ohlog("sessions", "--db", db, "--table").stdout.decode()
    assert "\n2 sessions, median" in two


# -- 4. tables fit the width, with every column and bars on one line

EXAMPLES = __import__("pathlib").Path(__file__).parent.parent / "examples"
TABLES = {
    "stats": ["Type", "Actions", "Users"],
    "count --by type --by day": ["Type", "Day", "Actions", "Users"],
    "count --by session --by prop:pageTo": ["User", "Session", "pageTo", "Actions", "Users"],
    "active": ["Day", "DAU", "WAU", "MAU"],
    "sessions": ["User", "Session", "Start", "Duration", "Actions", "Pages", "Bounce"],
    "timeline --user u-mumbai": ["Gap", "Time", "Type", "Properties"],
    "funnel VIEW NAVIGATE CLICK": ["Step", "Users", "Conversion", "From previous", "Median time"],
    "retention": ["Cohort", "Users", "0", "1", "7"],
    "paths": ["Path", "Sessions"],
}


@pytest.fixture(scope="module")
def examples_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("examples") / "ohlog.db"
    subprocess.run([OHLOG, "ingest", "--db", str(db), str(EXAMPLES)], check=True, capture_output=True)
    return db


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("command", list(TABLES))
def test_tables_fit_the_width_with_every_column(examples_db, command, columns):
    result = subprocess.run([OHLOG, *command.split(), "--db", str(examples_db), "--table"],
                            capture_output=True, env={**os.environ, "COLUMNS": str(columns)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert max(len(line) for line in lines) <= columns
    rule = next(i for i, line in enumerate(lines) if line.startswith("──"))
    header = " ".join(lines[:rule])
    for name in TABLES[command]:
        assert f" {name} " in f" {header} ", (name, header)
    # a bar is drawn whole on its row: no line holds a bar and nothing else
    for line in lines[rule + 1:]:
        assert line.strip(" ▏▎▍▌▋▊▉█") or not line.strip()
    bars = [line for line in lines if "█" in line]
    if command.split()[0] in ("stats", "count", "funnel", "paths"):
        assert bars


def test_bars_shrink_and_columns_stay_in_a_narrow_table():
    from openhouse_cli.analytics.render import BAR_WIDTH, Bar, widths

    columns = [("Step", "left"), ("Users", "right"), ("Conversion", "right"), ("", "left")]
    rows = [["NAVIGATE", "2", "66.7%", Bar(2, 3)], ["a very long step name", "3", "100.0%", Bar(3, 3)]]
    assert widths(200, columns, rows) == ([21, 5, 10, BAR_WIDTH], False, 3)
    # 50: the gaps narrow to 2 (66 wide), then the bar gives its 16 extra characters
    assert widths(50, columns, rows) == ([21, 5, 10, 8], False, 2)
    # 40: then the gaps narrow to 1, and the step column (words) folds by the 7 still over
    assert widths(40, columns, rows) == ([14, 5, 10, 8], False, 1)
    # 20: everything narrowed to its header, the text and the bar below it
    assert widths(20, columns, rows) == ([1, 5, 10, 1], False, 1)
    # 16: then the numbers fold too
    sizes, folded, gap = widths(16, columns, rows)
    assert folded and gap == 1 and sum(sizes) + 3 <= 16 and min(sizes) >= 1


def test_actions_ten_thousand_years_apart_are_answered_at_once(make_store):
    # the zero-fill is refused before anything is computed, and stats lists only the days
    # that have actions when they are more than 100,000 days apart
    store = make_store([session("u1", "s1", ("0001-01-02T00:00:00Z", "X"), ("9999-12-30T00:00:00Z", "X"))])
    with pytest.raises(SeriesTooLong, match="0001-01-02 to 9999-12-30 is 3,652,057 days"):
        count(store, filters(), ["day"])
    assert both(stats, store, filters())["perDay"] == [
        {"day": "0001-01-02", "actions": 1}, {"day": "9999-12-30", "actions": 1}]
    assert len(both(count, store, filters(), ["user", "day"])) == 2


# -- months over decades of a DST zone

def test_months_over_a_century_of_a_dst_zone(make_store):
    # The month search repeated the day's SQL (with the zone's ~220 offset
    # changes) at each of its 1,400 steps: megabytes of SQL, and "parser stack
    # overflow" past about seventy years. The answers, from zoneinfo by hand:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from openhouse_cli.analytics import Clock

    zone = ZoneInfo("America/Denver")
    instants = ["1900-01-01T05:00:00Z", "1918-04-01T06:30:00Z", "1950-07-01T06:00:00Z",
                "1970-01-01T06:59:59Z", "1999-11-01T06:00:00Z", "2018-10-18T21:37:28Z"]
    store = make_store([session(f"u{i}", "s", (t, "VIEW")) for i, t in enumerate(instants)])
    expected = {}
    for t in instants:
        local = datetime.fromisoformat(t.replace("Z", "+00:00")).astimezone(zone)
        label = f"{local.year:04d}-{local.month:02d}"
        expected[label] = expected.get(label, 0) + 1
    found = both(count, store, filters(), ["month"], Clock.of(zone))
    assert {g["month"]: g["actions"] for g in found if g["actions"]} == expected
    assert "1899-12" in expected and "1970-01" not in expected  # LMT, and 1969 in Denver
    assert len(found) == 1 + (2018 - 1900) * 12 + 10  # zero-filled from 1899-12 to 2018-10


# -- integers beyond 64 bits, exact in every analysis

BIG = 18446744073709551617  # 2**64 + 1: orjson reads it as a float, 2**64 + 2 as the same float


def test_integers_beyond_64_bits_are_exact_in_the_analyses(make_store):
    from openhouse_cli.analytics import timeline

    store = make_store([
        session("u1", "s1", ("2018-10-18T21:37:28Z", "PING", {"big": BIG})),
        session("u2", "s2", ("2018-10-18T21:37:29Z", "PING", {"big": BIG + 1})),
        session("u3", "s3", ("2018-10-18T21:37:30Z", "PING", {"big": -BIG, "nested": {"n": BIG}})),
    ])
    groups = both(count, store, filters(), ["prop:big"])
    assert sorted((g["big"], g["actions"]) for g in groups if g["big"] is not None) == [
        (-BIG, 1), (BIG, 1), (BIG + 1, 1)]
    nested = both(count, store, filters(), ["prop:nested"])
    assert {"n": BIG} in [g["nested"] for g in nested]
    steps = list(timeline(store, filters(users=("u3",))))
    assert steps[0]["properties"] == {"big": -BIG, "nested": {"n": BIG}}


def test_count_by_a_big_integer_property_end_to_end(tmp_path):
    source = tmp_path / "in.ndjson"
    source.write_text("".join(json.dumps(session(f"u{i}", "s", ("2018-10-18T21:37:28Z", "PING", {"big": v})))
                              + "\n" for i, v in enumerate([BIG, BIG + 1, BIG + 1])))
    db = tmp_path / "o.db"
    subprocess.run([OHLOG, "ingest", "-q", "--db", str(db), str(source)], check=True)
    result = subprocess.run([OHLOG, "count", "--by", "prop:big", "--db", str(db), "--csv"],
                            capture_output=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        "big,actions,users", f"{BIG + 1},2,2", f"{BIG},1,1"]
