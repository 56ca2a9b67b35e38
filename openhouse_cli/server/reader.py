"""The store's reads: queries on the event loop when small and quick, else in reader threads.

On SQLite each reader thread has its own read-only connection, and small
quick queries run on the event loop's own (SQLite's progress handler bounds
their time). On PostgreSQL every query runs in a reader thread, each thread
on a connection of its own: a query there waits on the network, which the
event loop must not.
"""

import asyncio
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

from ..errors import OhlogError
from ..query import open_for_query, query_json, query_json_keyed
from ..store.postgres import is_url

PAGE = 1000  # actions fetched a time; a larger result is streamed
READ_THREADS = 4
# A query is first tried on the event loop itself, which saves the hop to a
# thread (a third of a selective GET's time): if it returns at most
# INLINE_ROWS actions within INLINE_STEPS x 10,000 SQLite instructions (a
# millisecond or two). Otherwise it is abandoned and run in a reader thread.
INLINE_ROWS = 100
INLINE_STEPS = 20
INLINE_CHECK_EVERY = 10_000
READ_CACHE_KIB = 32 * 1024  # each reading connection's (SQLite's default is 2 MiB)
READ_WAIT_S = 30  # a query (or a page of one) that takes longer fails with 503


class Reader:
    """Runs queries in a thread pool, each thread on its own read-only connection,
    or, when they are small and quick, on the event loop's own connection."""

    def __init__(self, path, threads=READ_THREADS):
        self.path = path
        self.postgres = is_url(path)
        if self.postgres:
            from .postgres import QuickReader

            self.pg_quick = QuickReader(path)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="ohlog-read")
        self._local = threading.local()
        self._conns = []
        self._lock = threading.Lock()

    def quick(self, filters, keyed=False):
        """All the matching actions as JSON texts if they are few and quickly found, else None.
        (SQLite's; PostgreSQL's is ``await pg_quick.small_result(filters, size)``.)
        ``keyed``: as ``(text, key)`` pairs (query.query_json_keyed)."""
        local = self._local
        conn = self.conn()
        if getattr(local, "limited", None) is not conn:
            # Installed once the connection exists, and again if it is ever
            # replaced: without it, a scan would block the event loop
            steps = [0]
            conn.set_progress_handler(lambda: _tick(steps), INLINE_CHECK_EVERY)
            local.steps, local.limited = steps, conn
        steps = local.steps
        steps[0] = 0
        try:
            query = query_json_keyed if keyed else query_json
            page = list(itertools.islice(query(conn, **filters), INLINE_ROWS + 1))
        except OhlogError:
            if steps[0] > INLINE_STEPS:
                return None  # interrupted: too slow for the event loop
            raise
        finally:
            steps[0] = -(1 << 62)  # no limit for other uses of this connection
        return page if len(page) <= INLINE_ROWS else None

    async def run(self, fn, *args, timeout=READ_WAIT_S):
        future = asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise OhlogError(f"the database did not answer within {timeout} s") from None

    def conn(self):
        """This thread's connection (on PostgreSQL, a store)."""
        conn = getattr(self._local, "conn", None)
        if conn is None and self.postgres:
            from .postgres import open_reader

            conn = self._local.conn = open_reader(self.path)
            with self._lock:
                self._conns.append(conn)
        elif conn is None:
            # (a sqlite_utils.Database when an older ohlog's database was migrated)
            conn = open_for_query(self.path)
            conn = self._local.conn = getattr(conn, "conn", conn)
            conn.execute(f"PRAGMA cache_size = -{READ_CACHE_KIB}")
            with self._lock:
                self._conns.append(conn)
        return conn

    def first_page(self, filters):
        """``(page, rest)``: the first PAGE actions as JSON texts, and an iterator
        over the others (None if there are none). ``rest`` takes this thread's
        connection with it, and closes it when done."""
        conn = self.conn()
        try:
            actions = query_json(conn, **filters)
            page = list(itertools.islice(actions, PAGE))
        except OhlogError:
            if self.postgres:  # the connection may be broken: the next query opens another
                self.discard(conn)
            raise
        if len(page) < PAGE:
            return page, None
        self._local.conn = None
        with self._lock:
            self._conns.remove(conn)
        return page, _Rest(actions, conn)

    async def capped(self, filters, max_rows):
        """``(page, key)``: at most ``max_rows`` matching actions as JSON texts,
        and, if more match, the place of the page's last action (for ``after``),
        else None. The page is read whole (and answered with its length): one
        row more than it holds says whether more match."""
        limit = filters.get("limit")
        fetch = max_rows + 1 if limit is None else min(limit, max_rows + 1)
        filters = {**filters, "limit": fetch}
        if self.postgres:
            rows = await self.pg_quick.small_result(filters, INLINE_ROWS, keyed=True)
        else:
            rows = self.quick(filters, keyed=True)
        if rows is None:
            rows = await self.run(self.keyed, filters)
        key = rows[max_rows - 1][1] if len(rows) > max_rows else None
        return [text for text, _ in rows[:max_rows]], key

    def keyed(self, filters):
        """Every matching action as a ``(text, key)`` pair, read in this thread."""
        conn = self.conn()
        try:
            return list(query_json_keyed(conn, **filters))
        except OhlogError:
            if self.postgres:  # the connection may be broken: the next query opens another
                self.discard(conn)
            raise

    def discard(self, conn):
        """Forget this thread's connection ``conn``, and close it."""
        self._local.conn = None
        with self._lock:
            if conn in self._conns:
                self._conns.remove(conn)
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - a broken connection may fail to close
            pass

    async def check(self):
        """Raise OhlogError (or sqlite3.Error) unless the database answers a trivial query."""
        if not self.postgres:  # on the event loop: it takes microseconds
            self.conn().execute("SELECT count(*) FROM sqlite_master").fetchone()
            return
        await self.pg_quick.check()

    def close(self):
        if self.postgres:
            self.pg_quick.close()
        self.pool.shutdown(wait=True)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()


def _tick(steps):
    steps[0] += 1
    return steps[0] > INLINE_STEPS


class _Rest:
    """The rest of a large result, fetched a page at a time."""

    def __init__(self, actions, conn):
        self.actions = actions
        self.conn = conn

    def next_page(self):
        return list(itertools.islice(self.actions, PAGE))

    def close(self):
        self.actions.close()
        self.conn.close()
