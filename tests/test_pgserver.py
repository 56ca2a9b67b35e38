"""The PostgreSQL test harness itself (tests/pgserver.py and conftest's pg_* fixtures)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def test_table_round_trips(pg_db_url):
    import psycopg

    rows = [
        ("U1", -(2**63), "Zürich 東京 \U0001f600", b"\x00\xff\x1f", '{"a": [1, 2.5, null]}'),
        ("U2", 2**63 - 1, "", b"", "{}"),
    ]
    with psycopg.connect(pg_db_url) as conn:
        conn.execute("CREATE TABLE t (user_id text, n bigint, s text, b bytea, p jsonb)")
        with conn.cursor().copy("COPY t FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        got = conn.execute("SELECT user_id, n, s, b, p::text FROM t ORDER BY user_id").fetchall()
    assert got == rows


def test_server_listens_only_on_its_socket(pg_server, pg_url):
    import psycopg

    assert pg_url == f"postgresql://postgres@/ohlog_test?host={pg_server.socket_dir}&port=5432"
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
        assert conn.execute("SHOW unix_socket_directories").fetchone() == (str(pg_server.socket_dir),)
        assert conn.execute("SELECT current_database()").fetchone() == ("ohlog_test",)
        # C collation: text sorts by code point, as on SQLite
        assert conn.execute("SELECT datcollate FROM pg_database WHERE datname = 'ohlog_test'").fetchone() == ("C",)
    assert (pg_server.socket_dir / ".s.PGSQL.5432").is_socket()


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_each_test_gets_an_empty_database(pg_db_url, pg_url, attempt):
    import psycopg

    assert pg_db_url != pg_url
    with psycopg.connect(pg_db_url) as conn:
        # A database shared with another test would already hold this table
        assert conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").fetchone() == (0,)
        conn.execute("CREATE TABLE shared_by_mistake (attempt int)")
        conn.execute("INSERT INTO shared_by_mistake VALUES (%s)", [attempt])


def test_database_dropped_after_its_test(pg_server, request):
    # Through the fixture's own code: create, use, drop with a connection still open
    import psycopg

    url = pg_server.create_database("dropped_soon")
    conn = psycopg.connect(url)
    pg_server.drop_database("dropped_soon")
    names = [row[0] for row in pg_server.admin().execute("SELECT datname FROM pg_database")]
    assert "dropped_soon" not in names
    assert conn.closed or conn.broken or _connection_dead(conn)


def _connection_dead(conn):
    try:
        conn.execute("SELECT 1")
    except Exception:
        return True
    return False


def test_killed_owner_leaves_no_server_behind(pg_server):
    """kill -9 of the process that started a server: the watchdog stops it and removes its directory."""
    import psycopg

    script = (
        "import signal, sys; sys.path.insert(0, sys.argv[1]); from pgserver import PgServer\n"
        "s = PgServer().start(); print(s.url(), flush=True); signal.pause()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(ROOT / "tests")], stdout=subprocess.PIPE,
                            text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("postgresql://postgres@/postgres?host=/tmp/"), url
        root = Path(url.split("host=")[1].split("&")[0])
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            pid = int((root / "data" / "postmaster.pid").read_text().split()[0])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 30
    while (root.exists() or _alive(pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not root.exists()
    assert not _alive(pid)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("ci, outcome", [("true", "1 error"), ("", "1 skipped")])
def test_missing_server_fails_under_ci_and_skips_otherwise(ci, outcome):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(CI=ci, OHLOG_PG_BIN="/nonexistent")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "0", "-p", "no:cacheprovider",
         "tests/test_pgserver.py::test_table_round_trips"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    out = result.stdout
    assert outcome in out, out
    if ci:
        assert result.returncode == 1, out
        assert "CI=true needs a PostgreSQL server: no initdb and pg_ctl in /nonexistent" in out, out
    else:
        assert result.returncode == 0, out
        loud = [line for line in out.splitlines() if line.startswith("!!!")]
        assert loud == [
            "!!! PostgreSQL tests skipped (1): no initdb and pg_ctl in /nonexistent"
            " (apt-get install postgresql, or set OHLOG_PG_BIN) (under CI=true this is a failure)"
        ], out
