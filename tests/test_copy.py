"""``ohlog copy SRC DEST`` and ``copy.copy_actions``: any store to any store,
deduped by fingerprint, in ingestion order, all or nothing."""

import itertools
import pathlib
import signal
import subprocess
import time

import orjson
import pytest

from openhouse_cli.copy import copy_actions
from openhouse_cli.ingest import ingest_sessions
from openhouse_cli.schema import COLUMNS
from openhouse_cli.store import open_store
from openhouse_cli.store import postgres

from .conftest import OHLOG

BIG = -(2**80) - 3
_names = itertools.count()


def doc(user, session, *actions):
    return {"userId": user, "sessionId": session,
            "actions": [{"time": t, "type": kind, "properties": props} for t, kind, props in actions]}


def docs(n, offset=0):
    return [doc(f"u{i % 5}", f"s{i}", (f"2018-10-01T00:00:{i % 60:02d}Z", "Ping", {"n": i}))
            for i in range(offset, offset + n)]


# At one instant, ingested in this order: the copy must keep it (ties by id)
TIES = [doc("tie", "b", ("2018-10-02T00:00:00Z", "Ping", {"k": 2})),
        doc("tie", "a", ("2018-10-02T00:00:00Z", "Ping", {"k": 1})),
        doc("tie", "a", ("2018-10-02T00:00:00Z", "Ping", {"k": 1}),
            ("2018-10-02T00:00:00Z", "Ping", {"k": 1}))]  # a repeat inside one document: both kept
WEIRD = doc("u\x00\ufffe", "s\x00", ("2018-10-01T00:00:00.123456789+02:00", "T\x00y", {"big": BIG, "z": "\x00"}))


@pytest.fixture
def make_target(tmp_path, request):
    """make_target(engine) -> a new, not yet existing store's name (a file, or an empty database)."""
    made = []

    def make(engine):
        if engine == "sqlite":
            return str(tmp_path / f"store{next(_names)}.db")
        server = request.getfixturevalue("pg_server")
        name = f"copy{next(_names)}"
        made.append((server, name))
        return server.create_database(name)

    yield make
    for server, name in made:
        server.drop_database(name)


def rows(target):
    store = open_store(target)
    try:
        found = store.execute(f"SELECT {', '.join(COLUMNS)} FROM actions ORDER BY id").fetchall()
    finally:
        store.close()
    fixed = []
    for row in found:
        row = tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
        if target.startswith("postgresql"):
            row = tuple(postgres.unescape(v) if i in postgres._ESCAPED else v for i, v in enumerate(row))
        fixed.append(row)
    return fixed


def ingest(target, documents):
    store = open_store(target)
    try:
        return ingest_sessions(store, documents)
    finally:
        store.close()


ENGINES = list(itertools.product(["sqlite", "postgresql"], repeat=2))


@pytest.fixture(params=["bulk", "row by row"])
def bulk_min_rows(request, monkeypatch):
    monkeypatch.setattr(postgres, "BULK_MIN_ROWS", 0 if request.param == "bulk" else 10**9)


@pytest.mark.parametrize("src_engine,dest_engine", ENGINES)
def test_copy_keeps_every_row_order_and_dedupes_on_rerun(make_target, src_engine, dest_engine, bulk_min_rows):
    src, dest = make_target(src_engine), make_target(dest_engine)
    ingest(src, [*docs(30), *TIES, WEIRD])
    expected = rows(src)
    assert len(expected) == 34
    with _pair(src, dest) as (source, destination):
        counts = copy_actions(source, destination)
        assert (counts.copied, counts.duplicates) == (34, 0)
        again = copy_actions(source, destination)
        assert (again.copied, again.duplicates) == (0, 34)
    assert rows(dest) == expected  # every column, fingerprints included, in id order
    # Ingesting the source's documents into the copy finds them all there
    assert ingest(dest, [*docs(30), *TIES, WEIRD]).inserted == 0


class _pair:
    def __init__(self, src, dest):
        self.stores = [open_store(src, create=False, readonly=True), open_store(dest)]

    def __enter__(self):
        return self.stores

    def __exit__(self, *exc):
        for store in self.stores:
            store.close()


@pytest.mark.parametrize("src_engine,dest_engine", [("sqlite", "postgresql"), ("postgresql", "sqlite")])
def test_copy_into_a_store_with_some_of_the_actions(make_target, src_engine, dest_engine):
    src, dest = make_target(src_engine), make_target(dest_engine)
    ingest(src, docs(40))
    ingest(dest, docs(25, offset=30))  # 10 shared, 15 only in dest
    with _pair(src, dest) as (source, destination):
        counts = copy_actions(source, destination, batch_size=7)
    assert (counts.copied, counts.duplicates) == (30, 10)
    sessions = [row[1] for row in rows(dest)]
    assert sessions == [f"s{i}" for i in range(30, 55)] + [f"s{i}" for i in range(30)]


@pytest.mark.parametrize("src_engine,dest_engine", ENGINES)
def test_ohlog_copy_command_both_ways(make_target, run_ohlog, src_engine, dest_engine):
    src, dest = make_target(src_engine), make_target(dest_engine)
    ingest(src, [*docs(12), WEIRD])
    result = run_ohlog("copy", src, dest)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    err = result.stderr.decode()
    assert "13 actions copied, 0 duplicates in " in err and err.count("\n") == 1
    result = run_ohlog("copy", src, dest)
    assert "0 actions copied, 13 duplicates in " in result.stderr.decode()
    assert rows(dest) == rows(src)
    # And the copy answers queries as the source does
    queried = [run_ohlog("query", "--db", t, "--nl") for t in (src, dest)]
    assert queried[0].returncode == queried[1].returncode == 0
    assert queried[0].stdout == queried[1].stdout and str(BIG).encode() in queried[0].stdout


def test_missing_source_is_an_error_and_never_created(make_target, run_ohlog, tmp_path, pg_server):
    dest = make_target("sqlite")
    missing = tmp_path / "missing.db"
    result = run_ohlog("copy", missing, dest)
    assert result.returncode == 1
    assert result.stderr.decode() == f"Error: No database found at {missing}\n"
    assert not missing.exists()
    # An empty PostgreSQL database is not an ohlog store yet: refused, left untouched
    empty = make_target("postgresql")
    result = run_ohlog("copy", empty, dest)
    assert result.returncode == 1 and result.stderr.decode().count("\n") == 1
    assert b"no ohlog database here yet" in result.stderr
    import psycopg

    with psycopg.connect(empty) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)


@pytest.mark.parametrize("args,hint", [(["-", "x.db"], "SRC"), (["x.db", "-"], "DEST"), (["", "x.db"], "SRC"),
                                       (["x.db", ""], "DEST")])
def test_streams_and_empty_names_are_usage_errors(run_ohlog, args, hint):
    result = run_ohlog("copy", *args)
    assert result.returncode == 2
    said = "an empty path" if "" in args else "a store is a SQLite file or a postgresql:// URL, not a stream"
    assert f"Invalid value for '{hint}': {said}" in result.stderr.decode()


@pytest.mark.parametrize("side", ["SRC", "DEST"])
def test_a_directory_as_either_store_is_named_as_one(make_target, run_ohlog, tmp_path, side):
    """SQLite says only "unable to open database file" of a directory."""
    src = make_target("sqlite")
    ingest(src, docs(3))
    folder = tmp_path / "folder"
    folder.mkdir()
    args = (folder, src) if side == "SRC" else (src, folder)
    result = run_ohlog("copy", *args)
    assert (result.returncode, result.stderr.decode()) == (
        1, f"Error: Cannot open database {folder}: it is a directory\n")
    assert list(folder.iterdir()) == []


def test_same_file_is_refused(make_target, run_ohlog):
    src = make_target("sqlite")
    ingest(src, docs(3))
    result = run_ohlog("copy", src, src)
    assert result.returncode == 2 and b"same file" in result.stderr


def test_help_has_examples(run_ohlog):
    out = run_ohlog("copy", "--help").stdout.decode()
    assert "postgresql://ohlog@db.example.com/ohlog" in out and "--batch-size" in out
    assert out.count("Examples:") == 1  # they were printed twice (found from outside)


@pytest.mark.parametrize("dest_engine", ["postgresql", "sqlite"])
def test_kill_9_mid_copy_leaves_dest_as_it_was(make_target, tmp_path, dest_engine):
    """A real ``ohlog copy`` killed while it writes: the destination holds what
    it held before, nothing of the copy; run again, it copies everything."""
    from benchmarks.generate import generate_sessions

    src = make_target("sqlite")
    ingest(src, list(generate_sessions(30_000, seed=5)))
    dest = make_target(dest_engine)
    ingest(dest, docs(5))
    before = rows(dest)
    wal = pathlib.Path(f"{dest}-wal")
    wal_before = wal.stat().st_size if dest_engine == "sqlite" and wal.exists() else 0
    proc = subprocess.Popen([OHLOG, "copy", src, dest, "--quiet"], stderr=subprocess.PIPE)
    try:
        if dest_engine == "postgresql":
            _wait_for(lambda: _pg_busy(dest, "WITH ins AS (INSERT INTO actions%") or proc.poll() is not None)
        else:
            # Observed, not timed: its uncommitted pages spill into the -wal
            # long before its one commit, at the end of 30,000 rows
            _wait_for(lambda: proc.poll() is not None
                      or (wal.exists() and wal.stat().st_size > wal_before + (256 << 10)), timeout=120)
        proc.send_signal(signal.SIGSTOP)
        assert proc.poll() is None, proc.stderr.read()  # still inside its transaction
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    if dest_engine == "postgresql":
        _wait_for(lambda: not _pg_busy(dest, "%"))
    assert rows(dest) == before
    result = subprocess.run([OHLOG, "copy", src, dest], capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert b"30,000 actions copied, 0 duplicates" in result.stderr


def _pg_busy(url, like):
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND query LIKE %s", [like]).fetchone()[0] > 0


def _wait_for(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_progress_is_silent_off_a_terminal(make_target, run_ohlog):
    src, dest = make_target("sqlite"), make_target("sqlite")
    ingest(src, docs(3))
    err = run_ohlog("copy", src, dest).stderr.decode()
    assert err.startswith("Copied ") and "\r" not in err and "\x1b" not in err


def test_ndjson_round_trip_through_postgres_preserves_documents(make_target, run_ohlog):
    """SQLite -> PostgreSQL -> SQLite: the final file answers as the first."""
    a, b, c = make_target("sqlite"), make_target("postgresql"), make_target("sqlite")
    ingest(a, [*docs(8), *TIES, WEIRD])
    for src, dest in ((a, b), (b, c)):
        assert run_ohlog("copy", src, dest).returncode == 0
    assert rows(c) == rows(a)
    out = [orjson.loads(line) for line in run_ohlog("query", "--db", c, "--nl").stdout.splitlines()]
    assert len(out) == 12
