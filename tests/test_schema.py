"""The schema: migrations.py's history against schema.py's description, and m003's re-keying."""

import json
import sqlite3

import sqlite_utils

from openhouse_cli import schema
from openhouse_cli.db import open_db
from openhouse_cli.ingest import ingest_sessions
from openhouse_cli.migrations import migrations


def test_schema_names_every_migration_in_order():
    assert schema.MIGRATIONS == tuple(m.name for m in migrations._migrations)


def test_a_fresh_database_matches_the_schema_description(db):
    columns = [row[1] for row in db.execute("PRAGMA table_info(actions)")]
    assert columns == ["id", *schema.COLUMNS]
    indexes = {row[1]: row for row in db.execute("PRAGMA index_list(actions)")}
    assert set(indexes) == set(schema.INDEXES)
    for name, columns in [(schema.DEDUPE_INDEX, schema.DEDUPE_COLUMNS), *schema.SECONDARY_INDEXES.items(),
                          (schema.NS_INDEX, schema.NS_INDEX_COLUMNS)]:
        found = ", ".join(row[2] for row in db.execute(f"PRAGMA index_info({name})"))
        assert found == columns, name
    assert indexes[schema.DEDUPE_INDEX][2] == 1  # unique
    partial = {name for name, row in indexes.items() if row[4]}
    assert partial == {schema.NS_INDEX}
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", [schema.NS_INDEX]).fetchone()[0]
    assert sql.endswith(f"WHERE {schema.NS_INDEX_WHERE}")


def test_the_nanoseconds_index_survives_a_bulk_load_and_holds_only_such_actions(tmp_path):
    from openhouse_cli.ingest import ingest_sessions
    from openhouse_cli.store import open_store

    store = open_store(tmp_path / "ns.db")
    doc = {"userId": "u", "sessionId": "s", "actions": [
        {"time": "2018-10-18T21:37:28.123456789-06:00", "type": "CLICK", "properties": {"locationX": 1, "locationY": 2}},
        {"time": "2018-10-18T21:37:29-06:00", "type": "CLICK", "properties": {"locationX": 1, "locationY": 2}},
        {"time": "2018-10-18T21:37:30.5-06:00", "type": "VIEW", "properties": {"viewedId": "v"}}]}
    ingest_sessions(store, [doc])  # into an empty table: the bulk load
    rows = store.execute(f"SELECT id, ns FROM actions INDEXED BY {schema.NS_INDEX}"
                         f" WHERE {schema.NS_INDEX_WHERE}").fetchall()
    assert [ns for _, ns in rows] == [789]


def _old_database(path):
    """A database as ohlog stored it before m003: 64-bit fingerprints, NOCASE types."""
    old = sqlite_utils.Database(path)
    migrations.apply(old, stop_before="m003_blake2b_fingerprints_types_nanoseconds")
    return old


def _old_row(user, session, time, utc_us, kind, properties, fingerprint):
    return (user, session, time, utc_us, utc_us, 0, kind, properties, fingerprint)


def test_m003_rekeys_old_rows_so_resent_actions_stay_duplicates(tmp_path):
    path = tmp_path / "old.db"
    old = _old_database(path)
    t1, t2 = "2018-10-18T21:37:28.1234569Z", "2018-10-18T21:37:29Z"
    us1, us2 = 1539898648123456, 1539898649000000
    doc = {"userId": "u", "sessionId": "s", "actions": [
        {"time": t1, "type": "ÉVÉNEMENT", "properties": {"a": 1}},
        {"time": t1, "type": "ÉVÉNEMENT", "properties": {"a": 1}},  # a repeat in one document
        {"time": t2, "type": "CLICK", "properties": {"locationX": 1, "locationY": 2}},
    ]}
    rows = [
        _old_row("u", "s", t1, us1, "ÉVÉNEMENT", '{"a":1}', 11),
        _old_row("u", "s", t1, us1, "ÉVÉNEMENT", '{"a":1}', 12),
        _old_row("u", "s", t2, us2, "CLICK", '{"locationX":1,"locationY":2}', 13),
    ]
    old.conn.executemany(
        "INSERT INTO actions (user_id, session_id, time, utc_us, local_us, offset_s, type,"
        " properties, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    old.conn.commit()
    old.conn.close()

    migrated = open_db(path)
    stored = migrated.execute(
        "SELECT ns, type, type_key, typeof(fingerprint), length(fingerprint) FROM actions ORDER BY id"
    ).fetchall()
    assert stored == [(900, "ÉVÉNEMENT", "événement", "blob", 16)] * 2 + [
        (0, "CLICK", "click", "blob", 16)]
    again = ingest_sessions(migrated, [doc])
    assert (again.inserted, again.duplicates) == (0, 3)
    # A document holding the action three times adds exactly the third copy
    doc["actions"].append(doc["actions"][0])
    assert (ingest_sessions(migrated, [doc]).inserted) == 1


def test_query_and_backup_migrate_an_old_database(tmp_path, run_ohlog):
    path = tmp_path / "old.db"
    _old_database(path).conn.close()
    result = run_ohlog("query", "--db", path, "--json")
    assert result.returncode == 0, result.stderr
    applied = [r[0] for r in sqlite3.connect(path).execute(
        "SELECT name FROM _sqlite_migrations ORDER BY rowid")]
    assert tuple(applied) == schema.MIGRATIONS


def test_backup_migrates_an_old_database_first(tmp_path, run_ohlog):
    path = tmp_path / "old.db"
    _old_database(path).conn.close()
    result = run_ohlog("backup", tmp_path / "copy.db", "--db", path)
    assert result.returncode == 0, result.stderr
    for db_file in (path, tmp_path / "copy.db"):
        applied = [r[0] for r in sqlite3.connect(db_file).execute(
            "SELECT name FROM _sqlite_migrations ORDER BY rowid")]
        assert tuple(applied) == schema.MIGRATIONS


def test_a_reader_does_without_the_nanoseconds_index_and_the_next_writer_adds_it(tmp_path, run_ohlog):
    # m006 only speeds funnels up: a reader of a database from before it
    # reads it as it is (a read-only file, or one an older writer holds, stays
    # readable), and the next writer adds it
    path = tmp_path / "pre_m006.db"
    docs = tmp_path / "docs.ndjson"
    docs.write_text(json.dumps({"userId": "u", "sessionId": "s", "actions": [
        {"time": "2018-10-18T21:37:28.000000005Z", "type": "VIEW", "properties": {"viewedId": "v"}},
        {"time": "2018-10-18T21:37:29Z", "type": "NAVIGATE", "properties": {"pageFrom": "a", "pageTo": "b"}}]}) + "\n")
    assert run_ohlog("ingest", "--db", path, docs).returncode == 0
    conn = sqlite3.connect(path)
    conn.execute(f"DROP INDEX {schema.NS_INDEX}")
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm006_nanoseconds_index'")
    conn.commit()
    conn.close()

    def recorded():
        return [r[0] for r in sqlite3.connect(path).execute("SELECT name FROM _sqlite_migrations ORDER BY rowid")]

    for command in (["funnel", "VIEW", "NAVIGATE"], ["query"], ["stats"]):
        result = run_ohlog(*command, "--db", path, "--json")
        assert result.returncode == 0, result.stderr
        assert sorted(recorded()) == sorted(set(schema.MIGRATIONS) - {"m006_nanoseconds_index"})
    found = json.loads(run_ohlog("funnel", "VIEW", "NAVIGATE", "--db", path, "--json").stdout)
    assert [s["users"] for s in found["steps"]] == [1, 1]
    assert found["steps"][1]["medianSecondsFromPrevious"] == 0.999999995
    assert run_ohlog("ingest", "--db", path, docs).returncode == 0
    assert sorted(recorded()) == sorted(schema.MIGRATIONS)
    assert sqlite3.connect(path).execute(
        f"SELECT count(*) FROM actions INDEXED BY {schema.NS_INDEX} WHERE {schema.NS_INDEX_WHERE}").fetchone() == (1,)


def test_a_database_a_newer_ohlog_upgraded_is_read_but_not_written(tmp_path, run_ohlog):
    # A newer ohlog's migration keeps data (a summary) this one would not
    # update: writing would leave it disagreeing with the actions, silently
    path = tmp_path / "newer.db"
    docs = tmp_path / "docs.ndjson"
    docs.write_text(json.dumps({"userId": "u", "sessionId": "s", "actions": [
        {"time": "2018-10-18T21:37:28Z", "type": "VIEW", "properties": {"viewedId": "v"}}]}) + "\n")
    assert run_ohlog("ingest", "--db", path, docs).returncode == 0
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
                 " VALUES ('ohlog', 'm999_from_the_future', '2030-01-01')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    for command in (["ingest", docs], ["delete", "--user", "u", "--yes"]):
        result = run_ohlog(*command, "--db", path)
        err = result.stderr.decode()
        assert result.returncode == 1, err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert "newer ohlog" in err and "m999_from_the_future" in err
    assert path.read_bytes() == before
    for command in (["query"], ["stats"], ["sessions"]):
        result = run_ohlog(*command, "--db", path, "--json")
        assert result.returncode == 0, result.stderr
    assert json.loads(run_ohlog("stats", "--db", path, "--json").stdout)["actions"] == 1
