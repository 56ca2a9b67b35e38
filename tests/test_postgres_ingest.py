"""Ingest into a real PostgreSQL: the writer's promises, its bulk load into an
empty table, and the connection's errors (bad URLs, unreachable servers,
passwords never shown, psycopg missing)."""

import os
import signal
import subprocess
import sys
import threading
import time

import orjson
import pytest

from openhouse_cli.errors import OhlogError
from openhouse_cli.ingest import IngestFailed, ingest_input, ingest_sessions
from openhouse_cli.store import open_store
from openhouse_cli.store import postgres

from .conftest import OHLOG
from .test_summaries import assert_summaries_exact

pytestmark = pytest.mark.usefixtures("pg_server")

BIG = 2**70 + 1  # beyond 64 bits: kept in the properties' JSON text exactly


def doc(user, session, *actions):
    return {"userId": user, "sessionId": session,
            "actions": [{"time": t, "type": kind, "properties": props} for t, kind, props in actions]}


def sessions(n, users=7, offset=0):
    """n one-action sessions over a few users, at distinct instants."""
    return [doc(f"u{i % users}", f"s{i}", (f"2018-10-01T00:00:{i % 60:02d}.{i:06d}Z", "PING", {"n": i}))
            for i in range(offset, offset + n)]


def index_definitions(url):
    with _store(url) as store:
        return sorted(store.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'actions'").fetchall())


class _store:
    def __init__(self, url):
        self.store = open_store(url)

    def __enter__(self):
        return self.store

    def __exit__(self, *exc):
        self.store.close()


def stored(url):
    """(user_id, session_id, properties) of every action, in id order."""
    with _store(url) as store:
        return store.execute("SELECT user_id, session_id, properties FROM actions ORDER BY id").fetchall()


_MIN_ROWS = {"bulk": 0, "bulk after 3 rows": 3, "row by row": 10**9}


@pytest.fixture(params=list(_MIN_ROWS))
def bulk_min_rows(request, monkeypatch):
    """Every way into an empty table: indexes dropped at the first write (threshold 0),
    at a later one (its staged rows moved in then), or never (inserts with indexes)."""
    monkeypatch.setattr(postgres, "BULK_MIN_ROWS", _MIN_ROWS[request.param])
    return request.param


# ---------------------------------------------------------------------------
# The writer's promises


def test_first_load_dedupes_exactly_and_keeps_input_order(pg_db_url, bulk_min_rows):
    before = index_definitions(pg_db_url)
    docs = sessions(50)
    # The same documents again inside the one input: duplicates, even before anything is stored
    repeat = doc("u1", "dup", ("2018-10-01T09:00:00Z", "PING", {}), ("2018-10-01T09:00:00Z", "PING", {}))
    with _store(pg_db_url) as store:
        counts = ingest_sessions(store, [*docs, repeat, *docs[:10], repeat])
        assert (counts.inserted, counts.duplicates) == (52, 12)
        assert_summaries_exact(store)
    rows = stored(pg_db_url)
    # ids follow the input; identical actions inside one document are both kept
    assert [r[1] for r in rows] == [f"s{i}" for i in range(50)] + ["dup", "dup"]
    assert index_definitions(pg_db_url) == before


@pytest.mark.parametrize("max_keys, min_rows", [
    (10**9, 0), (10**9, 5), (10**9, 10**9), (5, 0), (5, 5), (5, 10**9), (3, 8)],
    ids=["client dedupe, indexes dropped at once", "client dedupe, indexes dropped later",
         "client dedupe, indexes kept", "server dedupe after the drop", "server dedupe from the drop",
         "server dedupe, indexes kept", "server dedupe before the drop"])
def test_bulk_load_dedupes_by_the_whole_key(pg_db_url, monkeypatch, max_keys, min_rows):
    """A bulk load dedupes its own rows in the client (then, past
    BULK_DEDUPE_MAX_ROWS, by a unique index in the server) before, while and
    after its indexes are dropped: rows that share a fingerprint but differ
    in any other part of the key are all kept, and the summaries count them."""
    monkeypatch.setattr(postgres, "BULK_MIN_ROWS", min_rows)
    monkeypatch.setattr(postgres, "BULK_DEDUPE_MAX_ROWS", max_keys)
    before = index_definitions(pg_db_url)
    fp = bytes(16)

    def row(user, utc_us, ns=0, fingerprint=fp):
        return (user, "s", "t", utc_us, ns, utc_us, 0, "x", "x", "{}", fingerprint)

    distinct = [row("a", 1), row("b", 1), row("a", 2), row("a", 1, 1), row("a", 1, 0, fp[:15] + b"\1"),
                row("a\x00", 1), row("a\ufffe0", 1), row("ab", 1), row("a", 256), row("a", -1)]
    with _store(pg_db_url) as store:
        writer = store.writer("test")
        writer.begin()
        assert writer.write(distinct[:4]) == 4
        assert writer.write([distinct[0], *distinct[4:], distinct[4]]) == len(distinct) - 4
        assert writer.write(distinct) == 0
        assert writer.write(distinct[:2]) == 0
        writer.commit()
        got = store.execute("SELECT user_id, utc_us, ns, fingerprint FROM actions ORDER BY id").fetchall()
        assert_summaries_exact(store)
    assert [(postgres.unescape(u), t, n, bytes(f)) for u, t, n, f in got] == [
        (r[0], r[3], r[4], r[10]) for r in distinct]
    assert index_definitions(pg_db_url) == before


def test_reingest_counts_all_duplicates_and_adds_nothing(pg_db_url, bulk_min_rows):
    with _store(pg_db_url) as store:
        assert ingest_sessions(store, sessions(40)).inserted == 40
        again = ingest_sessions(store, sessions(40))
        assert (again.inserted, again.duplicates) == (0, 40)
        # Partly new: only the new ones, appended after the rest in input order
        more = ingest_sessions(store, sessions(30, offset=25))
        assert (more.inserted, more.duplicates) == (15, 15)
    assert [r[1] for r in stored(pg_db_url)] == [f"s{i}" for i in range(55)]


def test_batches_each_commit_and_dedupe(pg_db_url, bulk_min_rows, tmp_path):
    path = tmp_path / "in.ndjson"
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in [*sessions(30), *sessions(30)]))
    with _store(pg_db_url) as store, open(path, "rb") as fp:
        counts = ingest_input(store, fp, "in.ndjson", batch_size=7)
    assert (counts.inserted, counts.duplicates) == (30, 30)
    assert [r[1] for r in stored(pg_db_url)] == [f"s{i}" for i in range(30)]


def test_nul_and_big_integers_round_trip(pg_db_url, bulk_min_rows):
    weird = doc("u\x00x\ufffe", "s\x00", ("2018-10-01T00:00:00Z", "Ty\x00pe", {"big": BIG, "t": "a\x00b"}))
    with _store(pg_db_url) as store:
        assert ingest_sessions(store, [weird, weird]).inserted == 1
    result = subprocess.run([OHLOG, "query", "--db", pg_db_url, "--nl"], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert b"\\u0000" in line and str(BIG).encode() in line
    back = orjson.loads(line)
    assert (back["userId"], back["sessionId"], back["type"]) == ("u\x00x\ufffe", "s\x00", "Ty\x00pe")
    assert back["properties"]["t"] == "a\x00b"


def test_a_failed_bulk_load_rolls_back_with_its_indexes(pg_db_url, bulk_min_rows, tmp_path):
    before = index_definitions(pg_db_url)
    path = tmp_path / "in.ndjson"
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in sessions(20)) + b'{"userId": 1}\n')
    with _store(pg_db_url) as store, open(path, "rb") as fp:
        with pytest.raises(IngestFailed):
            ingest_input(store, fp, "in.ndjson")
    assert stored(pg_db_url) == []
    assert index_definitions(pg_db_url) == before


def test_concurrent_writers_store_each_action_once(pg_server, bulk_min_rows):
    """Two writers on an empty table at once (both may try the bulk load), and
    then two more on the filled one: every action exactly once, every time."""
    for attempt in range(3):
        name = f"concurrent_{bulk_min_rows.replace(' ', '_')}_{attempt}"
        url = pg_server.create_database(name)
        try:
            before = index_definitions(url)
            parts = [sessions(300), sessions(300, offset=150)]  # overlapping
            results, errors = [], []

            def load(docs):
                try:
                    with _store(url) as store:
                        results.append(ingest_sessions(store, docs))
                except BaseException as ex:  # shown by the assertion below
                    errors.append(ex)

            for _ in range(2):  # the first round finds the table empty, the second full
                threads = [threading.Thread(target=load, args=(p,)) for p in parts]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(120)
            assert not errors
            assert sum(c.inserted for c in results) == 450
            assert sum(c.duplicates for c in results) == 2 * 600 - 450
            rows = stored(url)
            assert len(rows) == len(set(rows)) == 450
            assert index_definitions(url) == before
        finally:
            pg_server.drop_database(name)


# ---------------------------------------------------------------------------
# Killed mid-input: all or nothing, indexes intact


def _generated(tmp_path, n):
    from benchmarks.generate import write

    path = tmp_path / "big.ndjson"
    write(str(path), n)
    return path


def _backend_busy(url, like):
    with _store(url) as store:
        return store.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND query LIKE ?", [like]).fetchone()[0] > 0


def _wait_for(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# Where the killed ingest is, what the test waits for there (queries another
# session sees the loader run or last ran), and what holds it there (a lock
# the test takes first, or nothing)
_PHASES = {
    # its first rows, staged (the threshold is 20,000 rows, 5,000 a write)
    "staging": ("COPY ohlog_load%", None),
    # dropping the indexes, held by a reader's open transaction
    "dropping": ("ALTER TABLE actions DROP%", "SELECT count(*) FROM actions"),
    # its rows going straight into actions, the indexes gone
    "loading": ("COPY actions %", None),
    # indexes rebuilt, adding to the summaries, held by a lock on one of them
    "committing": ("INSERT INTO summary_slots%", "LOCK TABLE summary_slots IN SHARE MODE"),
}


@pytest.mark.parametrize("phase", list(_PHASES))
def test_kill_9_of_ingest_leaves_all_or_nothing(pg_db_url, tmp_path, phase):
    """A real ``ohlog ingest`` killed in each phase of its bulk load: nothing
    is stored or counted, every index is back, and the same input then loads whole."""
    path = _generated(tmp_path, 30_000)  # above BULK_MIN_ROWS: the indexes are dropped
    before = index_definitions(pg_db_url)
    running, hold = _PHASES[phase]
    reader = open_store(pg_db_url)
    if hold:
        reader.execute("BEGIN")
        reader.execute(hold)
    proc = subprocess.Popen([OHLOG, "ingest", str(path), "--db", pg_db_url, "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: _backend_busy(pg_db_url, running))
        if phase == "loading":  # the indexes are dropped (uncommitted: only the lock shows it)
            assert "AccessExclusiveLock" in _locks_on_actions(pg_db_url)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        if hold:
            reader.execute("ROLLBACK")
        reader.close()
    # The server rolls the dead client's transaction back once it notices
    _wait_for(lambda: not _backend_busy(pg_db_url, "%"))
    assert stored(pg_db_url) == []
    assert index_definitions(pg_db_url) == before
    with _store(pg_db_url) as store:
        assert_summaries_exact(store)
    result = subprocess.run([OHLOG, "ingest", str(path), "--db", pg_db_url], capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert b"30,000 actions inserted, 0 duplicates" in result.stderr
    assert index_definitions(pg_db_url) == before
    with _store(pg_db_url) as store:
        assert_summaries_exact(store)


def _locks_on_actions(url):
    """The modes in which other sessions hold a lock on actions."""
    with _store(url) as store:
        return {mode for (mode,) in store.execute(
            "SELECT mode FROM pg_locks WHERE relation = 'actions'::regclass AND granted"
            " AND pid <> pg_backend_pid()")}


@pytest.mark.slow
def test_concurrent_ingest_processes_on_an_empty_table(pg_server, tmp_path):
    """Two real ``ohlog ingest`` processes of overlapping files, big enough for
    the bulk load, into one new database at once: every action exactly once."""
    from benchmarks.generate import generate_sessions

    docs = list(generate_sessions(60_000, seed=3))
    a, b = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
    a.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs[: len(docs) * 2 // 3]))
    b.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs[len(docs) // 3:]))
    url = pg_server.create_database("concurrent_processes")
    try:
        procs = [subprocess.Popen([OHLOG, "ingest", str(p), "--db", url], stderr=subprocess.PIPE)
                 for p in (a, b)]
        outs = [p.communicate(timeout=600)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        with _store(url) as store:
            total, distinct = store.execute(
                "SELECT count(*), count(DISTINCT (user_id, utc_us, ns, fingerprint)) FROM actions").fetchone()
        assert total == distinct == 60_000
    finally:
        pg_server.drop_database("concurrent_processes")


# ---------------------------------------------------------------------------
# Connecting: bad URLs, unreachable servers, secrets


SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize("url", [
    f"postgresql://ohlog:{SECRET}@db.example:54x2/ohlog",
    f"postgresql://ohlog:{SECRET}@db.example:99999/ohlog",
    f"postgresql://ohlog:{SECRET}@[::1/ohlog",
    f"postgresql://ohlog@db.example/ohlog?password={SECRET}&nosuchparam=1",
    f"postgresql://ohlog:{SECRET}@db.example/ohlog?sslmode=sometimes",
])
@pytest.mark.parametrize("command", [["query"], ["ingest", "-"], ["copy", "SRC"]])
def test_malformed_url_is_a_usage_error_naming_the_form(run_ohlog, tmp_path, url, command):
    if command[0] == "copy":
        args = ["copy", tmp_path / "none.db", url]
    else:
        args = [*command, "--db", url]
    result = run_ohlog(*args, input=b"")
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert "not a valid PostgreSQL URL" in err and "postgresql://USER[:PASSWORD]@HOST" in err
    assert SECRET not in err and SECRET not in result.stdout.decode()
    assert "Traceback" not in err


def test_missing_database_is_one_line_without_the_password(run_ohlog, pg_server):
    for url in (f"postgresql://postgres:{SECRET}@/no_such_db?host={pg_server.socket_dir}&port=5432",
                f"postgresql://postgres@/no_such_db?host={pg_server.socket_dir}&password={SECRET}"):
        result = run_ohlog("query", "--db", url)
        err = result.stderr.decode()
        assert result.returncode == 1, err
        assert err.count("\n") == 1 and err.startswith(
            f"Error: cannot connect to PostgreSQL at {pg_server.socket_dir}:5432: "), err
        assert 'database "no_such_db" does not exist' in err
        assert SECRET not in err


def test_unreachable_server_is_one_line(run_ohlog, tmp_path):
    url = f"postgresql://ohlog:{SECRET}@/ohlog?host={tmp_path}&port=6543"
    result = run_ohlog("ingest", "-", "--db", url, input=b"")
    err = result.stderr.decode()
    assert result.returncode == 1
    assert err.count("\n") == 1 and err.startswith(f"Error: cannot connect to PostgreSQL at {tmp_path}:6543: ")
    assert SECRET not in err


def test_password_never_in_help_or_store_name(run_ohlog, pg_server, monkeypatch):
    url = f"postgresql://postgres:{SECRET}@/ohlog_pw?host={pg_server.socket_dir}"
    monkeypatch.setenv("OHLOG_DB", url)
    for command in (["--help"], ["query", "--help"], ["ingest", "--help"], ["copy", "--help"]):
        assert SECRET not in run_ohlog(*command).stdout.decode()
    pg_server.create_database("ohlog_pw")
    try:
        store = open_store(url)
        assert SECRET not in store.name and "***" in store.name
        store.close()
    finally:
        pg_server.drop_database("ohlog_pw")


def test_tls_parameters_pass_through(pg_db_url, run_ohlog):
    # On a Unix socket libpq uses no TLS whatever sslmode says: the URL must still be accepted
    url = pg_db_url + "&sslmode=require&connect_timeout=5&application_name=ohlog-test"
    result = run_ohlog("ingest", "-", "--db", url, input=orjson.dumps(sessions(1)[0]))
    assert result.returncode == 0, result.stderr
    with _store(url) as store:
        assert store.execute("SELECT current_setting('application_name')").fetchone() == ("ohlog-test",)


def test_without_psycopg_ohlog_says_what_to_install(tmp_path):
    code = ("import sys; sys.modules['psycopg'] = None; from openhouse_cli.cli import cli; "
            "cli(['query', '--db', 'postgresql://ohlog@/ohlog?host=/tmp'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60,
                            env={**os.environ, "OHLOG_DB": str(tmp_path / "x.db")})
    assert result.returncode == 1
    assert result.stderr.decode() == f"Error: {postgres.INSTALL_HINT}\n"


def test_library_errors_are_ohlog_errors(pg_server):
    with pytest.raises(postgres.BadURL):
        open_store("postgresql://a@b:x/c")
    with pytest.raises(OhlogError, match="cannot connect"):
        open_store(f"postgresql://postgres@/nope?host={pg_server.socket_dir}")


def test_an_ingest_that_loses_a_deadlock_fails_whole_and_a_rerun_completes(pg_db_url):
    # Another writer (the server, say) holds B and then wants A, while the
    # ingest holds A and waits for B: PostgreSQL ends one of them. When it is
    # the ingest, its input fails with one line and leaves nothing; run again,
    # it stores what the other did not. (It is not retried from a savepoint:
    # rows written in a subtransaction would be invisible to --follow's
    # in-flight check, test_follow.py.)
    import psycopg

    from openhouse_cli.schema import COLUMNS
    from openhouse_cli.validate import session_rows

    store = open_store(pg_db_url)
    ingest_sessions(store, [doc("u0", "s0", ("2018-10-01T00:00:00Z", "PING", {}))])  # not a bulk load
    a, b, c = session_rows(doc("u1", "s1", ("2018-10-18T21:37:28Z", "PING", {}),
                               ("2018-10-18T21:37:29Z", "PING", {}),
                               ("2018-10-18T21:37:30Z", "PING", {})), "t")
    placeholders = ", ".join(["%s"] * len(COLUMNS))
    insert = f"INSERT INTO actions ({', '.join(COLUMNS)}) VALUES ({placeholders}) ON CONFLICT DO NOTHING"
    other = psycopg.connect(pg_db_url)
    other.execute("SET deadlock_timeout = '30s'")  # the ingest's check comes first: it loses
    other.execute(insert, b)
    outcome, done = [], threading.Event()

    def ingest():
        writer = store.writer("t")
        try:
            writer.begin()
            writer.write([a, b, c])
            writer.commit()
            outcome.append("stored")
        except OhlogError as ex:
            writer.rollback()
            outcome.append(str(ex))
        finally:
            done.set()

    # (one check, that long after it starts to wait: after the other writer waits too)
    store.execute("SET deadlock_timeout = '2s'")
    thread = threading.Thread(target=ingest)
    thread.start()
    time.sleep(0.5)  # the ingest has inserted A and waits for B
    other.execute(insert, a)  # waits for A: a deadlock, which the ingest loses
    other.commit()
    other.close()
    assert done.wait(60)
    thread.join()
    assert len(outcome) == 1 and "deadlock detected" in outcome[0] and "\n" not in outcome[0]
    reader = open_store(pg_db_url)
    stored = lambda: [tuple(r) for r in reader.execute("SELECT user_id, time FROM actions ORDER BY utc_us")]
    assert stored() == [("u0", "2018-10-01T00:00:00Z"), ("u1", "2018-10-18T21:37:28Z"),
                        ("u1", "2018-10-18T21:37:29Z")]  # the other's two; none of the ingest's
    writer = store.writer("again")
    writer.begin()
    assert writer.write([a, b, c]) == 1
    writer.commit()
    assert stored()[-1] == ("u1", "2018-10-18T21:37:30Z") and len(stored()) == 4
