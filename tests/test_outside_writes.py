"""The summaries against another program's changes to the actions (found from
outside: after `sqlite-utils query ... "delete from actions ..."`, stats, count,
active and sessions went on answering from the summaries, silently wrong).

On SQLite, m009's triggers note any change ohlog's own writers did not make;
the analyses then read the actions, and `ohlog rebuild-summaries` (rollups.
rebuild_store) builds the summaries again. Answers are checked against the
same analyses with the summaries bypassed, and the rebuilt summaries against
those of a database that ohlog itself filled with the same actions."""

import sqlite3

import pytest

from openhouse_cli import rollups
from openhouse_cli.errors import OhlogError
from openhouse_cli.analytics import Clock, active, count, funnel, parse_step, paths, retention, sessions, stats
from openhouse_cli.analytics.summaries import bypassed
from openhouse_cli.copy import copy_actions
from openhouse_cli.delete import delete_actions
from openhouse_cli.ingest import ingest_sessions
from openhouse_cli.schema import DAY_SUMMARIES, SPANS, SUMMARIES
from openhouse_cli.store import open_store

from .test_analytics_fixtures import filters, session

DOCS = [
    session("a", "s1", ("2018-10-01T10:00:00Z", "VIEW"), ("2018-10-01T10:00:05Z", "NAVIGATE",
            {"pageFrom": "home", "pageTo": "cart"}), ("2018-10-01T10:00:09Z", "CLICK")),
    session("b", "s2", ("2018-10-02T11:00:00Z", "VIEW"), ("2018-10-09T11:00:00Z", "NAVIGATE",
            {"pageFrom": "home", "pageTo": "shop"})),
    session("c", "s3", ("2018-10-03T12:00:00Z", "CLICK")),
]
CHANGES = {
    "delete": "DELETE FROM actions WHERE user_id = 'b'",
    "update": "UPDATE actions SET user_id = 'z' WHERE user_id = 'c'",
    # a copy of a's click, a day later, as another loader would add it
    "insert": ("INSERT INTO actions (user_id, session_id, time, utc_us, ns, local_us, offset_s, type, type_key,"
               " properties, fingerprint) SELECT 'd', 's9', time, utc_us + 86400000000, ns, local_us + 86400000000,"
               " offset_s, type, type_key, properties, randomblob(16) FROM actions WHERE type = 'CLICK'"
               " AND user_id = 'a'"),
}


def answers(store):
    """Every analysis the summaries can serve, as plain data."""
    everything = filters()
    steps = [parse_step("VIEW"), parse_step("NAVIGATE")]
    return {
        "stats": {k: v for k, v in stats(store, everything, Clock()).items() if k != "bytes"},
        "count": count(store, everything, ["user"], Clock()),
        "days": count(store, everything, ["type", "day"], Clock()),
        "active": active(store, everything, Clock()),
        "sessions": sessions(store, everything),
        "paths": paths(store, everything),
        "funnel": funnel(store, everything, steps),
        "retention": retention(store, everything, unit="day", periods=3),
    }


def summary_rows(conn):
    return {table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall())
            for table in (*SUMMARIES, *DAY_SUMMARIES, SPANS)}


@pytest.fixture
def store(tmp_path):
    opened = open_store(str(tmp_path / "a.db"))
    ingest_sessions(opened, DOCS)
    yield opened
    opened.close()


def test_ohlogs_own_writes_leave_the_summaries_current(store, tmp_path):
    assert rollups.stale(store.conn) is None  # a first load (its indexes built at the end)
    ingest_sessions(store, [session("e", "s5", ("2018-10-04T00:00:00Z", "VIEW"))])  # a later one
    assert delete_actions(store, users=("e",)) == 1
    dest = open_store(str(tmp_path / "b.db"))
    copy_actions(store, dest)
    for each in (store, dest):
        assert rollups.stale(each.conn) is None
        assert each.conn.execute("SELECT count(*) FROM ohlog_writing").fetchone()[0] == 0  # never committed
    dest.close()


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_by_another_program_is_noticed_and_answered_from_the_actions(store, tmp_path, change):
    path = tmp_path / "a.db"
    other = sqlite3.connect(path)  # another program, with no notion of the summaries
    with other:
        assert other.execute(CHANGES[change]).rowcount >= 1
    other.close()
    assert rollups.stale(store.conn) == change
    # the summaries now disagree with the actions: answered from them, these would be wrong
    total = store.conn.execute("SELECT count(*) FROM actions").fetchone()[0]
    kept = store.conn.execute("SELECT sum(actions) FROM summary_sessions").fetchone()[0]
    by_user = {r[0]: r[1] for r in store.conn.execute("SELECT user_id, sum(actions) FROM summary_sessions"
                                                       " GROUP BY user_id")}
    actual = {r[0]: r[1] for r in store.conn.execute("SELECT user_id, count(*) FROM actions GROUP BY user_id")}
    assert (kept, by_user) != (total, actual)
    with bypassed():
        truth = answers(store)
    assert answers(store) == truth
    assert truth["stats"]["actions"] == total
    # Rebuilt: current again, answered from the summaries, which are those of
    # a database ohlog filled itself with the same actions
    assert rollups.rebuild_store(store) == total
    assert rollups.stale(store.conn) is None
    assert answers(store) == truth
    fresh = open_store(str(tmp_path / "fresh.db"))
    copy_actions(store, fresh)
    assert summary_rows(store.conn) == summary_rows(fresh.conn)
    fresh.close()
    # and a later change by another program is noticed again
    with sqlite3.connect(path) as again:
        again.execute("DELETE FROM actions WHERE user_id = 'a' AND type = 'CLICK'")
    assert rollups.stale(store.conn) == "delete"


def test_the_rebuild_keeps_every_span_when_sessions_cross_its_batches(store, monkeypatch):
    # Spans are written a batch of whole sessions at a time: one cut inside a
    # session would lose its page path
    from openhouse_cli import spans

    monkeypatch.setattr(spans, "_REBUILD_ROWS", 1)
    before = summary_rows(store.conn)
    rollups.rebuild_store(store)
    assert summary_rows(store.conn) == before


def test_the_cli_says_so_after_the_answer_and_rebuilds(tmp_path, run_ohlog):
    db = tmp_path / "a.db"
    store = open_store(str(db))
    ingest_sessions(store, DOCS)
    store.close()
    with sqlite3.connect(db) as other:
        other.execute(CHANGES["delete"])
    result = run_ohlog("count", "--by", "user", "--csv", "--db", db)
    assert result.returncode == 0
    assert result.stdout.decode().splitlines() == ["userId,actions,users", "a,3,1", "c,1,1"]
    assert result.stderr.decode() == (
        "Warning: another program changed the actions (a delete) after ohlog last kept its summaries: this"
        f" answer read the actions themselves, which is slower; ohlog rebuild-summaries --db {db} makes the"
        " summaries right again\n")
    rebuilt = run_ohlog("rebuild-summaries", "--db", db)
    assert (rebuilt.returncode, rebuilt.stdout) == (0, b"")
    assert rebuilt.stderr.decode().startswith("Rebuilt the summaries of 4 actions in ")
    again = run_ohlog("count", "--by", "user", "--csv", "--db", db)
    assert again.stdout == result.stdout and again.stderr == b""
    # ohlog's own delete is no other program's
    assert run_ohlog("delete", "--user", "c", "--yes", "--db", db).returncode == 0
    assert run_ohlog("stats", "--db", db).stderr == b""
    # A missing database is refused, creating nothing
    missing = run_ohlog("rebuild-summaries", "--db", tmp_path / "none.db")
    assert missing.returncode == 1 and not (tmp_path / "none.db").exists()


def test_rebuild_on_postgresql(pg_db_url, run_ohlog):
    # Nothing notices another program's change there; the rebuild mends it
    import psycopg

    store = open_store(pg_db_url)
    ingest_sessions(store, DOCS)
    store.close()
    with psycopg.connect(pg_db_url) as conn:
        conn.execute("DELETE FROM actions WHERE user_id = 'b'")
    before = run_ohlog("stats", "--nl", "--db", pg_db_url).stdout
    assert b'"actions":6' in before  # the summaries' stale answer
    rebuilt = run_ohlog("rebuild-summaries", "--db", pg_db_url)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert b'"actions":4' in run_ohlog("stats", "--nl", "--db", pg_db_url).stdout


def test_the_rebuild_counts_actions_whatever_their_id(store, tmp_path):
    # Found by a review: another program's action with id 0 (or less) was left
    # out of the rebuilt counts, and the staleness forgotten all the same
    path = tmp_path / "a.db"
    with sqlite3.connect(path) as other:
        other.execute(CHANGES["insert"].replace("INSERT INTO actions (", "INSERT INTO actions (id, ")
                      .replace("SELECT 'd'", "SELECT 0, 'd'"))
        other.execute(CHANGES["insert"].replace("INSERT INTO actions (", "INSERT INTO actions (id, ")
                      .replace("SELECT 'd'", "SELECT -5, 'e'"))
    total = store.conn.execute("SELECT count(*) FROM actions").fetchone()[0]
    assert rollups.rebuild_store(store) == total
    with bypassed():
        truth = answers(store)
    assert answers(store) == truth and truth["stats"]["actions"] == total
    fresh = open_store(str(tmp_path / "fresh.db"))
    copy_actions(store, fresh)
    assert summary_rows(store.conn) == summary_rows(fresh.conn)
    fresh.close()


def test_the_rebuild_refuses_ids_near_the_largest_rowid(store, tmp_path):
    # Found by a review: past SQLite's largest rowid new ids are random, and
    # the summaries' upkeep finds a write's rows by rising ids
    with sqlite3.connect(tmp_path / "a.db") as other:
        other.execute(CHANGES["insert"].replace("INSERT INTO actions (", "INSERT INTO actions (id, ")
                      .replace("SELECT 'd'", f"SELECT {2**63 - 1}, 'd'"))
    with pytest.raises(OhlogError, match="near SQLite's largest .*ohlog copy"):
        rollups.rebuild_store(store)
    assert rollups.stale(store.conn) == "insert"  # still read from the actions
    with bypassed():
        truth = answers(store)
    assert answers(store) == truth
