"""The SQLite engine, the default: one file, opened with its pragmas, private
file modes and migrations, and written one input a transaction.

sqlite-utils does what it is good at here: it applies and records the
migrations (``migrations.py``) and gives tests an introspection API. The
hot paths (queries, inserts) use sqlite3 directly, which also keeps
``ohlog query``'s start-up free of sqlite-utils' import.
"""

import os
import pathlib
import sqlite3
import stat
import time

from .. import rollups
from ..errors import NoDatabase, OhlogError
from ..schema import (INDEXES, INSERT, MIGRATIONS, MIGRATIONS_TABLE, NS_INDEX,
                      READER_OPTIONAL_MIGRATIONS, SECONDARY_INDEXES)

# Writers wait this long for each other's transactions instead of failing
# with "database is locked"; one input is one transaction, so be generous.
BUSY_TIMEOUT_S = 600
# New databases use 16 KiB pages (SQLite's default is 4 KiB): an input is one
# transaction, and the WAL index that SQLite maps into memory grows with the
# pages it writes: with 4 KiB pages a 2 GB input's ingest peaked 17% above a
# 200 MB one's, with 16 KiB pages 6%, and large loads are faster.
PAGE_SIZE = 16384


def open_db(path, *, create=True, busy_timeout=BUSY_TIMEOUT_S):
    """Open (and if ``create``, create) the database at ``path``, migrated,
    as a ``sqlite_utils.Database``.

    ``path`` may be ``":memory:"`` for tests. A new file is created with mode
    0600 before SQLite opens it, and SQLite gives its -wal and -shm files the
    same mode.
    """
    import sqlite_utils

    return sqlite_utils.Database(open_conn(path, create=create, busy_timeout=busy_timeout))


def open_conn(path, *, create=True, busy_timeout=BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """``open_db``'s sqlite3 connection, without importing sqlite-utils unless
    a migration is due (its import is most of a small ingest's start-up)."""
    if str(path) == ":memory:":
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        return _prepare(conn, memory=True)
    path = pathlib.Path(path)
    _refuse_non_files(path)
    if not path.exists():
        if not create:
            raise NoDatabase(f"No database found at {path}")
        if not path.parent.is_dir():
            raise OhlogError(f"Cannot create database {path}: no such directory {path.parent}")
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as ex:
            raise OhlogError(f"Cannot create database {path}: {ex.strerror}") from None
    elif not create and is_empty_file(path):
        # What a reader calls no database: a command that must not create one does not start one here
        raise NoDatabase(f"No database found at {path} (the file is empty)")
    try:
        # Absolute: SQLite opens a name that begins "file:" as a URI, another file
        conn = sqlite3.connect(
            os.path.abspath(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        _refuse_other_programs(conn, path, create)
        _refuse_newer(conn, path)
        return _prepare(conn, busy_timeout=busy_timeout)
    except sqlite3.DatabaseError as ex:
        raise OhlogError(f"Cannot open database {path}: {ex}") from None


def _refuse_non_files(path) -> None:
    """Refuse a path that exists and is not a regular file (symlinks followed):
    SQLite would say "unable to open database file" of a directory and "disk
    I/O error" of a device, and leave a -journal file beside it."""
    try:
        mode = os.stat(path).st_mode
    except OSError:  # missing (or unreadable: connecting says so)
        return
    if stat.S_ISREG(mode):
        return
    what = ("a directory" if stat.S_ISDIR(mode) else "a character device" if stat.S_ISCHR(mode)
            else "a block device" if stat.S_ISBLK(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "not a regular file")
    raise OhlogError(f"Cannot open database {path}: it is {what}")


def is_empty_file(path) -> bool:
    """Whether ``path`` is an empty regular file: what a reader takes for no database yet."""
    try:
        found = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(found.st_mode) and found.st_size == 0


def holds_no_database(path) -> bool:
    """Whether ``path`` is a regular file that is no database yet: empty, or
    a SQLite file without a single table (what a reader refuses as such)."""
    if is_empty_file(path):
        return True
    if not os.path.isfile(path):
        return False
    try:
        conn = sqlite3.connect(_read_only_uri(path), uri=True)
        try:
            return not conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:  # not SQLite, or unreadable: opening it will say so
        return False


def _refuse_other_programs(conn, path, create=True) -> None:
    """Close ``conn`` and refuse its database if it is another program's: tables
    of its own, and neither an actions table nor ohlog's record of migrations.
    Without ``create``, a file with no table at all is no database yet (as an
    empty file is), so it is not made one. Checked before anything is written
    (even the switch to WAL), so such a file is left exactly as it was, as a
    reader and PostgreSQL leave one."""
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables and not create:
        conn.close()
        raise NoDatabase(f"No database found at {path} (the file holds no tables)")
    if not tables or "actions" in tables or _pending_migrations(conn) != list(MIGRATIONS):
        return
    conn.close()
    raise OhlogError(f"{path} is not an ohlog database: it has tables of its own and no actions"
                     " table (left untouched; give ohlog a new file)")


def _prepare(conn, memory=False, busy_timeout=BUSY_TIMEOUT_S):
    if not memory:
        # A no-op unless the file is still empty (a new database): an existing
        # one keeps its page size, and WAL mode fixes it from here on.
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        _when_not_busy(conn, "PRAGMA journal_mode=WAL", busy_timeout)
    # NORMAL in WAL mode: a crash or kill -9 can never corrupt or half-apply a
    # transaction; only a power cut may lose the last commits.
    conn.execute("PRAGMA synchronous=NORMAL")
    if not _pending_migrations(conn):
        return conn
    import sqlite_utils

    from ..migrations import migrations

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
    return conn


def _when_not_busy(conn, sql, timeout):
    """Run ``sql``, waiting while the database is locked. Switching a new
    database to WAL fails at once, without SQLite's busy handler, while
    another process is switching it: six first ingests at once lost five."""
    deadline, pause = time.monotonic() + timeout, 0.001
    while True:
        try:
            return conn.execute(sql)
        except sqlite3.OperationalError as ex:
            if "locked" not in str(ex) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


class SQLiteStore:
    """A SQLite database as a store: ``conn`` is its sqlite3 connection."""

    engine = "sqlite"

    def __init__(self, conn: sqlite3.Connection, name: str = ":memory:"):
        self.conn = conn
        self.name = name

    def execute(self, sql: str, params=()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def writer(self, name: str) -> "Writer":
        return Writer(self.conn, name)

    def close(self) -> None:
        self.conn.close()

    # sqlite-utils' introspection (db["actions"].indexes, ...), for tests and callers
    def __getitem__(self, table):
        import sqlite_utils

        return sqlite_utils.Database(self.conn)[table]


def open_store(path, *, create: bool = True, readonly: bool = False) -> SQLiteStore:
    """The database at ``path`` as a store, migrated. ``readonly`` opens a
    reader's connection (nothing created; migrated first only if needed)."""
    if readonly and str(path) != ":memory:":
        return SQLiteStore(open_for_query(path), str(path))
    return SQLiteStore(open_conn(path, create=create), str(path))


def _connect_read_only(uri):
    conn = sqlite3.connect(uri, uri=True, timeout=10, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA query_only = ON")
    found = {
        name
        for (name,) in conn.execute(
            f"SELECT name FROM sqlite_master WHERE name IN ({', '.join('?' * (1 + len(INDEXES)))})",
            ("actions", *INDEXES),
        )
    }
    return conn, found


def _read_only_uri(path) -> str:
    from urllib.parse import quote

    return "file:" + quote(os.path.abspath(path)) + "?mode=ro"


def reader_uri(path) -> str:
    """The URI a reader opens ``path`` by, then query-only: read-write where
    it may, so that as the last connection to close it removes the WAL's
    -wal and -shm files (a read-only one leaves them behind, for every
    reader of a database ingest had closed); else read-only."""
    uri = _read_only_uri(path)
    return uri.replace("?mode=ro", "?mode=rw") if os.access(path, os.W_OK) else uri


def open_for_query(path) -> sqlite3.Connection:
    """Open the database at ``path`` read-only for queries; NoDatabase if missing.

    Nothing is created. Uses sqlite3 directly (sqlite-utils costs ~0.1 s of
    start-up), falling back to ``open_db`` when migrations are pending.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise NoDatabase(f"No database found at {path}")
    _refuse_non_files(path)
    uri = _read_only_uri(path)
    try:
        conn, found = _connect_read_only(reader_uri(path))
    except sqlite3.OperationalError as ex:
        # On read-only media SQLite cannot create the WAL's -shm file. With no
        # -wal left behind, nothing can change the file: read it as immutable.
        wal = path + "-wal"
        if os.access(os.path.dirname(os.path.abspath(path)), os.W_OK) or (
            os.path.exists(wal) and os.path.getsize(wal)
        ):
            raise OhlogError(f"Cannot open database {path}: {ex}") from None
        try:
            conn, found = _connect_read_only(uri + "&immutable=1")
        except sqlite3.DatabaseError as ex:
            raise OhlogError(f"Cannot open database {path}: {ex}") from None
    except sqlite3.DatabaseError as ex:
        raise OhlogError(f"Cannot open database {path}: {ex}") from None
    if {"actions", *INDEXES} - found <= {NS_INDEX} and not [
            name for name in _pending_migrations(conn) if name not in READER_OPTIONAL_MIGRATIONS]:
        return conn
    tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    conn.close()
    if is_empty_file(path):  # what a reader sees while ingest creates one
        raise NoDatabase(f"No database found at {path} (the file is empty)")
    if not tables:
        # A SQLite file with nothing in it (another tool's, or one ingest is
        # just creating) is no database yet, as an empty file is: a reader
        # must not write ohlog's tables into it
        raise NoDatabase(f"No database found at {path} (the file holds no tables)")
    if "actions" not in found:  # another program's database: leave it be
        raise OhlogError(f"{path} is not an ohlog database: it has no actions table")
    # An older ohlog's database, or a new one whose creator is still migrating
    # it (open_db waits for its lock, and then has nothing left to do)
    try:
        return open_conn(path, create=False)
    except OhlogError as ex:
        raise OhlogError(f"{path} needs upgrading to this version of ohlog, which failed: {ex}") from None


def _pending_migrations(conn):
    """The migrations ``conn``'s database has not recorded (read-only)."""
    applied = _recorded_migrations(conn)
    return [name for name in MIGRATIONS if name not in applied]


def _recorded_migrations(conn) -> set[str]:
    try:
        return {name for (name,) in conn.execute(
            f"SELECT name FROM {MIGRATIONS_TABLE} WHERE migration_set = 'ohlog'")}
    except sqlite3.OperationalError:  # no record at all
        return set()


def _refuse_newer(conn, path) -> None:
    """Close ``conn`` and refuse to write to a database that a newer ohlog has
    migrated: this one would not keep that one's summaries, which would then
    silently disagree with the actions. Reading it is fine."""
    unknown = sorted(_recorded_migrations(conn) - set(MIGRATIONS))
    if unknown:
        conn.close()
        raise OhlogError(f"{path} was upgraded by a newer ohlog (migration {unknown[-1]}, unknown"
                         " to this one), which keeps data this one would not: upgrade ohlog to write"
                         " to it (reading it works)")


class Writer:
    """The transaction around one input or batch, and the bulk-load trick."""

    def __init__(self, conn, name):
        self.conn = conn
        self.name = name
        self.bulk = False
        self.held = rollups.Held()  # the worker's tallies of summaries, written at the commit

    def _run(self, fn, *args):
        try:
            return fn(*args)
        except sqlite3.Error as ex:
            raise OhlogError(
                f"{self.name}: database error: {ex} (its uncommitted records were rolled back)"
            ) from None

    def begin(self) -> None:
        self.held.clear()
        self._run(self.conn.execute, "BEGIN IMMEDIATE")
        self._run(rollups.own_writes, self.conn)
        # Into an empty table, building the secondary indexes once at the end
        # is much faster than growing them row by row. It happens inside the
        # transaction, so readers and a rollback still see the indexes.
        self.bulk = not self._run(
            lambda: self.conn.execute("SELECT EXISTS (SELECT 1 FROM actions)").fetchone()[0]
        )
        if self.bulk:
            for index in SECONDARY_INDEXES:
                self._run(self.conn.execute, f"DROP INDEX {index}")

    def write(self, rows, tally=None) -> int:
        """Insert ``rows`` (schema.COLUMNS order) and add them to the summaries;
        return how many were new. ``tally``, if the caller has it, is
        ``rollups.tally`` of each chunk that makes up ``rows``: used when
        every row is new."""
        if not rows:
            return 0
        before = self._run(rollups.since, self.conn)
        inserted = self._run(self.conn.executemany, INSERT, rows).rowcount
        if inserted == len(rows) and tally is not None:
            self._run(self.held.add, self.conn, tally)
        elif inserted:
            self._run(rollups.add, self.conn, before)
        return inserted

    def commit(self) -> None:
        self._run(self.held.flush, self.conn)
        if self.bulk:
            # Let SQLite's sorter use the other core for the index builds
            self._run(self.conn.execute, "PRAGMA threads = 2")
            for index, columns in SECONDARY_INDEXES.items():
                self._run(self.conn.execute, f"CREATE INDEX {index} ON actions ({columns})")
        self._run(rollups.own_writes_done, self.conn)
        self._run(self.conn.execute, "COMMIT")

    def rollback(self) -> None:
        self.held.clear()
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
