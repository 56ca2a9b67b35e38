"""The store's writes: group commit on the event loop, and checkpoints in a thread of their own."""

import asyncio
import collections
import logging
import os
import sqlite3
import threading
import time
import weakref

from .. import rollups
from ..errors import OhlogError
from ..schema import INSERT

MAX_COMMIT_ROWS = 20_000  # one group commit holds at most this many rows (and one request)
CACHE_KIB = 64 * 1024  # the writer's page cache: the indexes' hot pages stay in memory
CHECKPOINT_EVERY_S = 0.2
WRITE_WAIT_S = 30  # a POST waits this long for another writer to release the database
RETRY_FIRST_S, RETRY_MAX_S = 0.0005, 0.004  # meanwhile it tries again this often (doubling)

error_log = logging.getLogger("ohlog.server")



class Writer:
    """Commits the rows of the requests that arrive together in one transaction.

    ``await writer.write(rows)`` returns ``(inserted, duplicates)`` once the
    transaction holding those rows has committed. Writes run on the event
    loop itself: each POST queues its validated rows, and the first one of
    a turn of the loop schedules a commit of everything queued by then (group
    commit). A thread would gain nothing here, since SQLite's inserts need
    the GIL between rows, and would lose the GIL hand-offs under load.

    The connection never waits for the write lock (busy timeout 0): if
    another process holds it (``ohlog ingest``, another worker), the commit is
    retried later on a timer, so the loop keeps serving; after WRITE_WAIT_S
    the waiting requests fail with OhlogError (503). If a group commit fails
    otherwise, each request in it is retried alone, so that one request's
    failure is only its own.
    """

    def __init__(self, path, commit_batch=None):
        self.path = path
        self.commit_batch = commit_batch or float("inf")
        self._pending = collections.deque()  # (rows, future, queued at)
        self._scheduled = None  # the loop a flush is scheduled on
        self._retry_s = 0
        self._conn = None
        self.commits = 0  # for tests and benchmarks: transactions committed

    def write(self, rows):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((rows, future, time.monotonic()))
        if self._scheduled is not loop:
            self._scheduled = loop
            loop.call_soon(self._flush)
        return future

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _flush(self):
        self._scheduled = None
        if not self._pending:
            return
        batch = self._take()
        try:
            if self._conn is None:
                self._conn = self._open()
            results = self._commit(self._conn, batch)
        except sqlite3.OperationalError as ex:  # busy: another writer has the lock
            self._pending.extendleft(reversed(batch))
            self._expire(ex)
            self._retry_s = min(max(self._retry_s * 2, RETRY_FIRST_S), RETRY_MAX_S)
            self._schedule(self._retry_s)
            return
        except Exception as ex:  # cannot even open the database: the next batch tries again
            results = [ex] * len(batch)
        self._retry_s = 0
        settle([item[1] for item in batch], results)
        self._schedule(0)

    def _schedule(self, delay):
        """Flush again after ``delay`` seconds if requests are still waiting."""
        loop = asyncio.get_running_loop()
        if self._pending and self._scheduled is not loop:
            self._scheduled = loop
            loop.call_later(delay, self._flush)

    def _take(self):
        return take_batch(self._pending, self.commit_batch)

    def _expire(self, ex):
        """Fail the requests that have waited too long for the write lock."""
        deadline = time.monotonic() - WRITE_WAIT_S
        while self._pending and self._pending[0][2] < deadline:
            _, future, _ = self._pending.popleft()
            if not future.done():
                future.set_exception(
                    OhlogError(f"waited {WRITE_WAIT_S} s for the write lock: {ex}"))

    def _open(self):
        from ..db import open_db

        conn = open_db(self.path, busy_timeout=0).conn
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        # Checkpoints (copying the WAL into the database, with an fsync) take
        # tens of milliseconds: a thread of their own does them, so that no
        # commit, and no request waiting on it, pays for one.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        threading.Thread(target=_checkpoints, args=(self.path, weakref.ref(self)),
                         name="ohlog-checkpoint", daemon=True).start()
        return conn

    def _commit(self, conn, batch):
        """Commit the batch; a list of results. OperationalError if the database is busy."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            rollups.own_writes(conn)
            before = rollups.since(conn)
            results = []
            for rows, _, _ in batch:
                inserted = conn.executemany(INSERT, rows).rowcount if rows else 0
                results.append((inserted, len(rows) - inserted))
            rollups.add(conn, before)
            rollups.own_writes_done(conn)
            conn.execute("COMMIT")
            self.commits += 1
            return results
        except Exception as ex:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if _is_busy(ex):
                raise
            if len(batch) == 1:
                return [ex]
            return [self._commit_alone(conn, item) for item in batch]

    def _commit_alone(self, conn, item):
        try:
            return self._commit(conn, [item])[0]
        except sqlite3.OperationalError as ex:  # busy: fail this one, keep the others' results
            return ex


def _is_busy(ex):
    return isinstance(ex, sqlite3.OperationalError) and (
        "locked" in str(ex) or "busy" in str(ex))


def _checkpoints(path, writer):
    """Copy the WAL back into the database every CHECKPOINT_EVERY_S, while ``writer`` lives."""
    conn = sqlite3.connect(os.path.abspath(path), timeout=60, isolation_level=None, check_same_thread=False)
    checkpointed = 0
    try:
        while True:
            time.sleep(CHECKPOINT_EVERY_S)
            live = writer()
            if live is None or live._conn is None:
                return
            commits, live = live.commits, None
            if commits != checkpointed:
                checkpointed = commits
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as ex:
                    error_log.warning("Checkpoint failed: %s", ex)
    finally:
        conn.close()


# Shared by both engines' group commits (this module's and postgres.py's)


def take_batch(pending, most_requests):
    """The oldest queued requests (each a tuple whose first item is its rows),
    as many as one commit may hold: at most ``most_requests``, and MAX_COMMIT_ROWS
    rows unless the first request alone holds more."""
    batch = [pending.popleft()]
    rows = len(batch[0][0])
    while (pending and len(batch) < most_requests
           and rows + len(pending[0][0]) <= MAX_COMMIT_ROWS):
        batch.append(pending.popleft())
        rows += len(batch[-1][0])
    return batch


def settle(futures, results):
    """Give each waiting request its result: counts, or the exception to raise."""
    for future, result in zip(futures, results):
        if future.done():
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
