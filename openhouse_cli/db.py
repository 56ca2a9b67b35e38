"""Opening the database: pragmas, private file modes, migrations."""

import os
import pathlib
import sqlite3

import sqlite_utils

from .errors import NoDatabase, OhlogError
from .migrations import migrations

# Writers wait this long for each other's transactions instead of failing
# with "database is locked"; one input is one transaction, so be generous.
BUSY_TIMEOUT_S = 600
# New databases use 16 KiB pages (SQLite's default is 4 KiB): an input is one
# transaction, and the WAL index that SQLite maps into memory grows with the
# pages it writes: with 4 KiB pages a 2 GB input's ingest peaked 17% above a
# 200 MB one's, with 16 KiB pages 6%, and large loads are faster.
PAGE_SIZE = 16384


def open_db(path, *, create=True, busy_timeout=BUSY_TIMEOUT_S):
    """Open (and if ``create``, create) the database at ``path``, migrated.

    ``path`` may be ``":memory:"`` for tests. A new file is created with mode
    0600 before SQLite opens it, and SQLite gives its -wal and -shm files the
    same mode.
    """
    if str(path) == ":memory:":
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        return _prepare(conn, memory=True)
    path = pathlib.Path(path)
    if not path.exists():
        if not create:
            raise NoDatabase(f"No database found at {path}")
        if not path.parent.is_dir():
            raise OhlogError(f"Cannot create database {path}: no such directory {path.parent}")
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as ex:
            raise OhlogError(f"Cannot create database {path}: {ex.strerror}") from None
    try:
        conn = sqlite3.connect(
            str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        return _prepare(conn)
    except sqlite3.DatabaseError as ex:
        raise OhlogError(f"Cannot open database {path}: {ex}") from None


def _prepare(conn, memory=False):
    if not memory:
        # A no-op unless the file is still empty (a new database): an existing
        # one keeps its page size, and WAL mode fixes it from here on.
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a crash or kill -9 can never corrupt or half-apply a
    # transaction; only a power cut may lose the last commits.
    conn.execute("PRAGMA synchronous=NORMAL")
    db = sqlite_utils.Database(conn)
    if migrations.pending(db):
        # Take the write lock first, so that two processes opening a new
        # database at once do not both run the same migration.
        conn.execute("BEGIN IMMEDIATE")
        try:
            migrations.apply(db)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return db
