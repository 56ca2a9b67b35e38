import json
import pathlib
import subprocess
import sys

import pytest

from openhouse_cli.db import open_db

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
OHLOG = str(pathlib.Path(sys.executable).parent / "ohlog")


@pytest.fixture(autouse=True)
def env_setup(monkeypatch, tmp_path):
    """No test touches a real home directory or database."""
    monkeypatch.setenv("OHLOG_DB", str(tmp_path / "env.db"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def db():
    """A migrated in-memory database."""
    return open_db(":memory:")


@pytest.fixture
def sample_sessions():
    """Every session in tests/fixtures/*.json, by file stem."""
    sessions = {}
    for path in sorted(FIXTURES.glob("*.json")):
        data = json.loads(path.read_text())
        sessions[path.stem] = data if isinstance(data, list) else [data]
    return sessions


@pytest.fixture
def run_ohlog():
    """Run the real ``ohlog`` executable; returns the CompletedProcess."""

    def run(*args, input=None):
        if isinstance(input, str):
            input = input.encode()
        return subprocess.run(
            [OHLOG, *map(str, args)], input=input, capture_output=True,
            stdin=None if input is not None else subprocess.DEVNULL, timeout=120,
        )

    return run


# PostgreSQL: a real server for the tests that ask for one (tests/pgserver.py).
# Each pytest-xdist worker starts its own cluster (about 1 s), lazily, on its
# first test that needs it; each test gets a fresh empty database in it.
# Without PostgreSQL those tests skip locally, but fail under CI=true.
import itertools  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

_PG_SKIP = "PostgreSQL tests skipped"


@pytest.fixture(scope="session")
def pg_server():
    """The worker's PostgreSQL server (tests.pgserver.PgServer), started once."""
    from tests.pgserver import TEST_SETTINGS, PgServer, PgUnavailable

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    try:
        import psycopg  # noqa: F401

        server = PgServer(TEST_SETTINGS, prefix=f"ohlog-pg-{worker}-").start()
    except (ImportError, PgUnavailable) as ex:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true needs a PostgreSQL server: {ex}", pytrace=False)
        pytest.skip(f"{_PG_SKIP}: {ex} (under CI=true this is a failure)")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_url(pg_server):
    """A libpq URI of the database ``ohlog_test``, shared by the worker's tests."""
    yield pg_server.create_database("ohlog_test")


@pytest.fixture
def pg_db_url(pg_server, request):
    """A libpq URI of an empty database of this test's own.

    Creating a database costs 0.1-0.5 s (it copies a template and
    checkpoints), which over a thousand tests was most of the suite's time;
    emptying one costs a few ms. So a used database is emptied (its
    connections ended, its public schema dropped and made anew) and handed
    to the next test, and only dropped if emptying it fails."""
    name = _pg_free.pop() if _pg_free else f"t{next(_pg_db_numbers)}"
    if name not in _pg_created:
        pg_server.create_database(name)
        _pg_created.add(name)
    yield pg_server.url(name)
    if _empty_database(pg_server, name):
        _pg_free.append(name)
    else:
        pg_server.drop_database(name)
        _pg_created.discard(name)


_pg_db_numbers = itertools.count(1)
_pg_free: list[str] = []
_pg_created: set[str] = set()


def _empty_database(pg_server, name):
    """Return database ``name`` to the state CREATE DATABASE gives; False if that failed."""
    import psycopg

    try:
        pg_server.admin().execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        with psycopg.connect(pg_server.url(name), autocommit=True) as conn:
            for _ in range(100):  # the ended backends go asynchronously
                left = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND pid <> pg_backend_pid()", (name,)).fetchone()[0]
                if not left:
                    break
                time.sleep(0.01)
            else:
                return False
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public AUTHORIZATION pg_database_owner")
            conn.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
            # Only what the schema held may differ from a new database: anything else means drop it
            others = conn.execute(
                "SELECT count(*) FROM pg_namespace WHERE nspname NOT IN ('public', 'information_schema') "
                "AND nspname NOT LIKE 'pg\\_%'").fetchone()[0]
            return others == 0
    except psycopg.Error:
        return False


_HEAVY = frozenset(
    line.strip() for line in (pathlib.Path(__file__).parent / "heavy_tests.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#"))


def pytest_itemcollected(item):
    """Mark the tests listed in heavy_tests.txt ``heavy``: the default run leaves them
    out, ``pytest -m heavy`` (run by .ci/run) runs them."""
    if item.nodeid in _HEAVY:
        item.add_marker(pytest.mark.heavy)


def pytest_terminal_summary(terminalreporter):
    """Say once, loudly, that the PostgreSQL (or the browser) tests did not run."""
    from tests.browser import CHROMIUM_SKIP

    for what in (_PG_SKIP, CHROMIUM_SKIP):
        skipped = [report for report in terminalreporter.stats.get("skipped", [])
                   if what in str(getattr(report, "longrepr", ""))]
        if skipped:
            reason = skipped[0].longrepr[2] if isinstance(skipped[0].longrepr, tuple) else str(skipped[0].longrepr)
            detail = reason.split(f"{what}: ", 1)[-1]
            terminalreporter.write_line(f"!!! {what} ({len(skipped)}): {detail}", red=True, bold=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request):
    """An empty migrated store on each engine: an in-memory SQLite database, then
    a fresh PostgreSQL database; the tests that take it run on both."""
    from openhouse_cli.store import as_store, open_store

    if request.param == "sqlite":
        yield as_store(open_db(":memory:"))
        return
    opened = open_store(request.getfixturevalue("pg_db_url"))
    yield opened
    opened.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_target(request, tmp_path):
    """What ``--db`` takes on each engine: a SQLite file path, then a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "target.db")
    return request.getfixturevalue("pg_db_url")
