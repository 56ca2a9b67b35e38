"""Active users by UTC day (rollups.py, m005): the day bits and users a day stay exact
under deletes of some of a day's actions, the migration builds them, and ``active`` and
``count --by [type] --by day`` answer from them what the actions answer, on hand-worked data."""

import json

from openhouse_cli import schema
from openhouse_cli.analytics import Clock, active, count, summaries
from openhouse_cli.analytics.counts import WINDOWS
from openhouse_cli.delete import delete_actions
from openhouse_cli.ingest import ingest_sessions
from openhouse_cli.store import open_store
from openhouse_cli.times import parse_zone

from .test_analytics_fixtures import filters
from .test_summaries import PROPS, assert_summaries_exact, bounded

UTC = Clock()
Z = parse_zone("UTC")  # bounds as UTC instants (without a zone they are users' wall clocks)


def doc(user, *actions):
    return {"userId": user, "sessionId": "s-" + user,
            "actions": [{"time": t, "type": kind, "properties": PROPS.get(kind.casefold(), {})}
                        for t, kind in actions]}


# Days around a block of the bits' boundary: 2018-01-15 is bit 0 of its block
# ((17546 + 720006) % 62 == 0), 2018-01-14 the last bit of the one before.
HAND = [
    doc("a", ("2018-01-10T10:00:00Z", "CLICK"), ("2018-01-14T23:59:59Z", "view"),
        ("2018-02-12T00:00:00Z", "Click")),
    doc("b", ("2018-01-15T00:00:00Z", "VIEW"), ("2018-01-15T08:00:00Z", "VIEW"),
        ("2018-01-21T12:00:00Z", "NAVIGATE")),
    doc("c", ("2018-01-11T12:00:00Z", "CLICK"), ("2018-01-11T13:00:00Z", "VIEW")),
]


def by_day(rows):
    return {r["day"]: (r["dau"], r["wau"], r["mau"]) for r in rows}


def test_active_by_utc_day_from_the_bits_matches_hand_worked_figures(tmp_path):
    store = open_store(str(tmp_path / "a.db"))
    ingest_sessions(store, HAND)
    assert_summaries_exact(store)
    days = range(17541, 17574 + 1)  # 2018-01-10 .. 2018-02-12
    assert summaries.active_days(store, filters(), UTC, (0, 1), days, WINDOWS) is not None
    found = by_day(active(store, filters()))
    assert len(found) == 34
    # worked out by hand: a on 01-10, 01-14, 02-12; b on 01-15, 01-21; c on 01-11
    assert found["2018-01-10"] == (1, 1, 1)
    assert found["2018-01-11"] == (1, 2, 2)
    assert found["2018-01-13"] == (0, 2, 2)
    assert found["2018-01-14"] == (1, 2, 2)
    assert found["2018-01-15"] == (1, 3, 3)  # 01-09 .. 01-15, across the blocks' boundary
    assert found["2018-01-17"] == (0, 3, 3)  # 01-11 .. 01-17
    assert found["2018-01-18"] == (0, 2, 3)  # c's 01-11 has left the 7 days
    assert found["2018-01-21"] == (1, 1, 3)  # 01-15 .. 01-21: b only
    assert found["2018-01-22"] == (0, 1, 3)
    assert found["2018-02-09"] == (0, 0, 3)  # 01-11 .. 02-09
    assert found["2018-02-10"] == (0, 0, 2)  # c's 01-11 has left the 30 days
    assert found["2018-02-12"] == (1, 1, 2)  # 01-14 .. 02-12: a and b
    # a type: its users only (any spelling); two types: users of either
    clicks = by_day(active(store, filters(types=("click",))))
    assert clicks["2018-01-14"] == (0, 2, 2) and clicks["2018-02-12"] == (1, 1, 1)
    both = by_day(active(store, filters(types=("CLICK", "navigate"))))
    assert both["2018-01-21"] == (1, 1, 3) and both["2018-01-15"] == (0, 2, 2)
    # bounds on UTC days choose the days shown; each still looks back past the
    # start, as PostHog counts (a's 01-10 and 01-14 and c's 01-11 are in 01-15's week)
    late = by_day(active(store, bounded("2018-01-15", "2018-02-12", tz=Z)))
    assert min(late) == "2018-01-15"
    assert late["2018-01-15"] == (1, 3, 3) and late["2018-02-12"] == (1, 1, 2)
    assert all(late[day] == found[day] for day in late)
    assert summaries.active_days(store, bounded("2018-01-15", "2018-02-12", tz=Z), UTC, (0, 1), days,
                                 WINDOWS) is not None
    store.close()


def test_count_users_a_day_from_the_days_summaries_matches_hand_worked_figures(tmp_path):
    store = open_store(str(tmp_path / "a.db"))
    ingest_sessions(store, HAND)
    groups = count(store, filters(), ["type", "day"])
    on_11th = {g["type"]: (g["actions"], g["users"]) for g in groups if g["day"] == "2018-01-11"}
    assert on_11th == {"CLICK": (1, 1), "VIEW": (1, 1), "NAVIGATE": (0, 0)}
    days = {g["day"]: (g["actions"], g["users"]) for g in count(store, filters(), ["day"])}
    assert days["2018-01-11"] == (2, 1) and days["2018-01-15"] == (2, 1) and days["2018-01-16"] == (0, 0)
    # two types' users together: c did both on 01-11, one user
    two = {g["day"]: (g["actions"], g["users"])
           for g in count(store, filters(types=("click", "VIEW")), ["day"])}
    assert two["2018-01-11"] == (2, 1) and two["2018-01-14"] == (1, 1) and two["2018-01-21"] == (0, 0)
    flipped = count(store, filters(types=("view",)), ["day", "type"])
    assert [(g["day"], g["type"], g["actions"], g["users"]) for g in flipped if g["actions"]] == [
        ("2018-01-11", "VIEW", 1, 1), ("2018-01-14", "VIEW", 1, 1), ("2018-01-15", "VIEW", 2, 1)]
    store.close()


def same_as_the_actions(store, given, clock=UTC):
    """Every answer the days summaries give equals the actions' (summaries bypassed)."""
    def answers():
        return ([count(store, given, dims, clock) for dims in (["day"], ["type", "day"], ["day", "type"])]
                + [active(store, given, clock, by=by) for by in ("day", "week", "month")])

    fast = answers()
    with summaries.bypassed():
        assert fast == answers(), given


BEFORE_1970 = [doc("d", ("1969-12-31T23:59:59Z", "CLICK"), ("1970-01-01T00:00:00Z", "VIEW"),
                   ("1969-12-01T05:00:00Z", "VIEW"), ("1970-01-30T05:00:00Z", "x")),
               doc("e", ("1969-12-25T00:00:00Z", "x"), ("1970-01-02T23:00:00Z", "click"))]


def test_the_fast_answers_equal_the_actions_answers_where_they_apply_and_not_elsewhere(tmp_path):
    for name, docs, bounds in (("a", HAND, [("2018-01-14", None), (None, "2018-01-14"),
                                            ("2018-01-12", "2018-01-20")]),
                               # 1970-01-01 is bit 0 of a block
                               ("b", BEFORE_1970, [("1969-12-31", "1970-01-30"), ("1970-01-01", None)])):
        store = open_store(str(tmp_path / f"{name}.db"))
        ingest_sessions(store, docs)
        assert_summaries_exact(store)
        span = (store.execute("SELECT min(utc_us), max(utc_us) FROM actions").fetchone())
        cases = [filters(), filters(types=("click",)), filters(types=("click", "view", "x"))]
        cases += [bounded(start, end, tz=Z) for start, end in bounds]
        cases += [bounded(start, end, tz=Z, types=("VIEW",)) for start, end in bounds]
        for given in cases:
            assert summaries._on_utc_days(store, given, UTC, span)
            same_as_the_actions(store, given)
        # not on UTC days: another zone, users' own clocks, bounds within a day, a user filter
        start = bounds[0][0]
        for clock, given in ((Clock.of(parse_zone("America/Denver")), filters()),
                             (Clock.of(parse_zone("Asia/Kolkata")), filters(types=("view",))),
                             (Clock.of(None, local=True), filters()),
                             (UTC, bounded(start + "T12:00:00Z", None)),
                             (UTC, bounded(start, None)),  # users' wall clocks
                             (UTC, filters(users=("a", "d")))):
            assert not summaries._on_utc_days(store, given, clock, span)
            assert summaries.active_days(store, given, clock, span, range(0, 3), WINDOWS) is None
            same_as_the_actions(store, given, clock)
        store.close()


def day_users(store):
    return {(d, t): (u, n) for d, t, u, n in store.execute(
        "SELECT day, type_key, users, actions FROM summary_day_users")}


def test_deleting_some_of_a_days_actions_clears_only_the_days_left_empty(tmp_path):
    store = open_store(str(tmp_path / "a.db"))
    day = 17541  # 2018-01-10
    ingest_sessions(store, [
        doc("a", ("2018-01-10T10:00:00Z", "CLICK"), ("2018-01-10T11:00:00Z", "click"),
            ("2018-01-10T12:00:00Z", "VIEW"), ("2018-01-11T00:00:00Z", "VIEW")),
        doc("b", ("2018-01-10T10:00:00Z", "CLICK"))])
    assert day_users(store)[(day, "click")] == (2, 3) and day_users(store)[(day, "")] == (2, 4)
    # a later write on a day the users already have: actions, not users, grow
    ingest_sessions(store, [doc("b", ("2018-01-10T23:00:00Z", "Click"))])
    assert day_users(store)[(day, "click")] == (2, 4) and day_users(store)[(day, "")] == (2, 5)
    assert_summaries_exact(store)

    def delete(start, end, user="a"):
        span = bounded(start, end)
        assert delete_actions(store, users=[user], start=span["start"], end=span["end"]) > 0
        assert_summaries_exact(store)
        return day_users(store)

    # another CLICK that hour's neighbour remains: a's CLICK day stays
    after = delete("2018-01-10T10:00:00Z", "2018-01-10T10:59:59Z")
    assert after[(day, "click")] == (2, 3) and after[(day, "")] == (2, 4)
    # a's last CLICK that day: a leaves the CLICK day, stays in the any-type day (VIEW)
    after = delete("2018-01-10T11:00:00Z", "2018-01-10T11:59:59Z")
    assert after[(day, "click")] == (1, 2) and after[(day, "")] == (2, 3)
    # a's last action that day: a leaves the day; the next day is untouched
    after = delete("2018-01-10T12:00:00Z", "2018-01-10T12:59:59Z")
    assert (day, "view") not in after and after[(day, "")] == (1, 2)
    assert after[(day + 1, "view")] == (1, 1) and after[(day + 1, "")] == (1, 1)
    # b's actions: the day's rows go
    after = delete("2018-01-10", "2018-01-10", user="b")
    assert not [k for k in after if k[0] == day]
    left = store.execute("SELECT count(*) FROM summary_user_day_bits WHERE user_id = 'b'")
    assert left.fetchone()[0] == 0
    store.close()


def test_the_migration_builds_the_days_summaries_of_existing_actions(tmp_path):
    path = str(tmp_path / "a.db")
    store = open_store(path)
    ingest_sessions(store, HAND)
    for table in schema.DAY_SUMMARIES:
        store.execute(f"DROP TABLE {table}")
    store.execute("DELETE FROM _sqlite_migrations WHERE name = 'm005_user_day_bits'")
    store.close()
    store = open_store(path)  # migrated again on opening
    assert_summaries_exact(store)
    assert store.execute("SELECT count(*) FROM summary_day_users").fetchone()[0] > 0
    store.close()


def test_the_real_commands_answer_from_the_days_summaries(tmp_path, run_ohlog):
    db = tmp_path / "a.db"
    path = tmp_path / "in.ndjson"
    path.write_text("".join(json.dumps(d) + "\n" for d in HAND))
    assert run_ohlog("ingest", "--db", db, path).returncode == 0
    store = open_store(str(db))
    with summaries.bypassed():
        expected = [{"days": active(store, filters())},
                    {"groups": count(store, filters(), ["type", "day"])},
                    {"groups": count(store, filters(types=("click", "view")), ["day"])}]
    store.close()
    shown = []
    for args in (["active"], ["count", "--by", "type", "--by", "day"],
                 ["count", "--by", "day", "--type", "click", "--type", "view"]):
        out = run_ohlog(*args, "--db", db, "--json")
        assert out.returncode == 0, out.stderr
        shown.append(json.loads(out.stdout))
    assert shown == json.loads(json.dumps(expected))


def test_an_empty_type_given_with_others_never_reads_the_any_type_rows(tmp_path):
    """Type key '' marks the days summaries' any-type rows; `--type x --type ''`
    counted every type's actions and users (red-team review)."""
    store = open_store(str(tmp_path / "e.db"))
    ingest_sessions(store, [doc("a", ("2018-01-10T10:00:00Z", "x")), doc("b", ("2018-01-10T11:00:00Z", "y")),
                            doc("c", ("2018-01-11T11:00:00Z", "Y"))])
    for types in (["x", ""], ["", "x"], ["y", ""], ["x", "", "y"], [""]):
        same_as_the_actions(store, filters(types=types))
    assert count(store, filters(types=["x", ""]), ["type", "day"], UTC) == [
        {"type": "x", "day": "2018-01-10", "actions": 1, "users": 1}]
    assert active(store, filters(types=["x", ""]), UTC) == [{"day": "2018-01-10", "dau": 1, "wau": 1, "mau": 1}]
