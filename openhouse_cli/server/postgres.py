"""The server on PostgreSQL: group commit on one asynchronous connection, readers' connections.

A group commit is one statement: the rows of every request in the batch go
in as arrays (one a column, ``unnest``), in binary (psycopg's text format
quotes each element in Python: 40 times the cost, measured, and the POST
path's largest one), ``INSERT ... ON CONFLICT DO NOTHING``
stores them in arrival order, and its ``RETURNING`` says which keys were new;
each new key is counted for the first request in the batch that sent it, so
that each POST keeps its own counts. The same statement adds the new rows to
the summaries (rollups.summing_postgres: CTEs fed by the insert's RETURNING).
One statement in autocommit mode is one transaction and one round trip, with
no staging or temporary table to fill or empty (it was seven round trips and
a temporary table emptied at each commit; the README's Serve benchmark).

psycopg is imported lazily: it is an optional extra.
"""

import asyncio
import collections
import logging

from .. import rollups
from ..errors import OhlogError
from ..schema import COLUMNS, TABLE
from ..store.postgres import escaped_row, mask, unescape, where
from .writer import settle, take_batch

WRITE_WAIT_S = 30  # a commit that takes longer fails its requests with 503
CONNECT_TIMEOUT_S = 5  # libpq's connect_timeout, unless the URL sets its own
READ_CONNECTIONS = 4  # a worker's connections for small results, on the event loop
READ_WAIT_S = 30  # a query that takes longer fails with 503
HEALTH_WAIT_S = 5  # /health's query
RETRIES = 3  # a batch that loses a deadlock to another writer is tried again this often

error_log = logging.getLogger("ohlog.server")

_TYPES = {"user_id": "text", "session_id": "text", "time": "text", "utc_us": "int8", "ns": "int2",
          "local_us": "int8", "offset_s": "int4", "type": "text", "type_key": "text",
          "properties": "text", "fingerprint": "bytea"}
_KEY = ("user_id", "utc_us", "ns", "fingerprint")  # the unique key, actions_dedupe
# Text compared in the "C" collation, as the table's columns are (a join needs one collation)
_SOURCE = ", ".join(f'{name} COLLATE "C" AS {name}' if _TYPES[name] == "text" else name
                    for name in COLUMNS)
_COLUMNS = ", ".join(COLUMNS)
_KEYS = ", ".join(_KEY)
INSERT = (
    "WITH given AS MATERIALIZED ("
    f" SELECT req, seq, {_SOURCE} FROM unnest(%b::int4[], "
    + ", ".join(f"%b::{_TYPES[name]}[]" for name in COLUMNS)
    + f") WITH ORDINALITY AS g(req, {_COLUMNS}, seq)),"
    f" inserted AS (INSERT INTO {TABLE} ({_COLUMNS}) SELECT {_COLUMNS} FROM given ORDER BY seq"
    f" ON CONFLICT DO NOTHING {rollups.RETURNING_POSTGRES}, ns, fingerprint),"
    f" {rollups.summing_postgres('inserted')},"
    f" first AS (SELECT {_KEYS}, min(req) AS req FROM given GROUP BY {_KEYS})"
    f" SELECT first.req, count(*) FROM inserted JOIN first USING ({_KEYS})"
    f" WHERE {rollups.SUMMED_POSTGRES} GROUP BY first.req"
)


def conninfo(url):
    """``url`` for libpq, with a connect timeout unless it names one: an
    unreachable server must give a 503, not a request that hangs."""
    if "connect_timeout=" in url:
        return url
    return url + ("&" if "?" in url else "?") + f"connect_timeout={CONNECT_TIMEOUT_S}"


def open_reader(url):
    """A store on its own connection, for one reader thread."""
    from ..store import open_store

    return open_store(conninfo(url), readonly=True)


class QuickReader:
    """Small results on the event loop, on a few asynchronous connections.

    ``await small_result(filters, size)`` gives all the matching actions as
    JSON texts if there are at most ``size``, else None (the caller streams
    the result from a reader thread). The query runs as a prepared statement
    (psycopg prepares a query text it has seen five times): for a selective
    GET, PostgreSQL's planning costs more than the query itself. Measured
    here, a query through an asynchronous connection costs about half what
    the hop to a thread and back does.
    """

    def __init__(self, url, size=READ_CONNECTIONS):
        self.url = url
        self.size = size
        self._idle = []
        self._open = 0
        self._waiting = collections.deque()

    async def small_result(self, filters, size, keyed=False):
        """``keyed``: as ``(text, key)`` pairs (query.query_json_keyed)."""
        from ..query import _ROW_COLUMNS, KEYED_COLUMNS, _json_lines, build_query, keyed_json_lines

        limit = filters.get("limit")
        capped = size + 1 if limit is None else min(limit, size + 1)
        sql, params = build_query(KEYED_COLUMNS if keyed else _ROW_COLUMNS, engine="postgresql",
                                  **{**filters, "limit": capped})
        rows = await self._run(sql.replace("?", "%s"), params, READ_WAIT_S)
        if len(rows) > size:
            return None
        return list((keyed_json_lines if keyed else _json_lines)(_unescaped(rows)))

    async def check(self):
        await self._run(f"SELECT count(*) FROM {TABLE} WHERE false", [], HEALTH_WAIT_S)

    async def _run(self, sql, params, timeout):
        import psycopg

        conn = await self._acquire()
        healthy = False
        try:
            cursor = await asyncio.wait_for(conn.execute(sql, params, prepare=True), timeout)
            rows = await cursor.fetchall()
            healthy = True
            return rows
        except asyncio.TimeoutError:
            raise OhlogError(f"PostgreSQL did not answer within {timeout} s") from None
        except psycopg.Error as ex:
            healthy = not (conn.closed or conn.broken)
            raise OhlogError(f"Query failed: {_first_line(ex)}") from None
        finally:
            self._release(conn, healthy)

    async def _acquire(self):
        if self._idle:
            return self._idle.pop()
        if self._open >= self.size:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            conn = await waiter  # a connection handed over, or None: open one
            if conn is not None:
                return conn
        self._open += 1
        try:
            import psycopg

            return await psycopg.AsyncConnection.connect(conninfo(self.url), autocommit=True)
        except psycopg.Error as ex:
            self._open -= 1
            self._wake(None)
            raise NoConnection(f"cannot connect to PostgreSQL at {where(self.url)}: "
                               f"{_first_line(ex)}") from None

    def _release(self, conn, healthy):
        if not healthy:
            self._open -= 1
            conn.pgconn.finish()  # whatever it was doing ends with the connection
            self._wake(None)
        elif not self._wake(conn):
            self._idle.append(conn)

    def _wake(self, conn):
        """Hand ``conn`` (or the right to open one) to the first live waiter; False if none."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done() and not waiter.get_loop().is_closed():
                waiter.set_result(conn)
                return True
        return False

    def close(self):
        for conn in self._idle:
            conn.pgconn.finish()
        self._idle.clear()
        self._open = 0


def _unescaped(rows):
    """Rows of (user_id, session_id, time, type, properties, ...) with escaped text restored."""
    for user, session, time_, kind, properties, *key in rows:  # (key: KEYED_COLUMNS' last three)
        yield unescape(user), unescape(session), time_, unescape(kind), properties, *key


class DatabaseGone(OhlogError):
    """The connection failed or timed out: whether the batch committed is unknown."""

    unknown_outcome = True


class NoConnection(DatabaseGone):
    """No connection could be made: nothing was sent."""

    unknown_outcome = False


class PgWriter:
    """Commits the rows of the requests that arrive together in one statement.

    ``await writer.write(rows)`` returns ``(inserted, duplicates)`` once the
    statement holding those rows has committed. While one commit is in
    flight, the requests that arrive queue up; the next commit takes them all
    (up to writer.MAX_COMMIT_ROWS). A batch that fails for a reason of its own data is
    retried a request at a time, so that one request's failure is only its
    own; a connection that fails fails the batch (503), and the next batch
    connects afresh.
    """

    def __init__(self, url, commit_batch=None):
        self.url = url
        self.commit_batch = commit_batch or float("inf")
        self._pending = collections.deque()  # (rows, future)
        self._task = None
        self._conn = None
        self.commits = 0  # for tests and benchmarks: statements committed

    def write(self, rows):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((rows, future))
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._drain())
        return future

    def close(self):
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.pgconn.finish()  # no round trip: callable outside the event loop

    async def _drain(self):
        while self._pending:
            batch = self._take()
            try:
                results = await self._commit(batch)
            except asyncio.CancelledError:  # the loop is closing: fail them, then go
                for _, future in batch:
                    if not future.done():
                        future.set_exception(OhlogError("the server is shutting down"))
                raise
            except Exception as ex:  # noqa: BLE001 - a fault of ours: the batch's, not the next one's
                error_log.exception("Group commit failed")
                results = [ex] * len(batch)
            settle([future for _, future in batch], results)

    def _take(self):
        return take_batch(self._pending, self.commit_batch)

    async def _connection(self):
        if self._conn is None or self._conn.closed or self._conn.broken:
            import psycopg

            self.close()
            try:
                self._conn = await psycopg.AsyncConnection.connect(conninfo(self.url),
                                                                   autocommit=True)
            except psycopg.Error as ex:
                raise NoConnection(f"cannot connect to PostgreSQL at {where(self.url)}: "
                                   f"{_first_line(ex)}") from None
        return self._conn

    async def _commit(self, batch):
        """A result for each request: ``(inserted, duplicates)`` or an exception."""
        import psycopg

        results, params, requests = [None] * len(batch), [[] for _ in range(len(COLUMNS) + 1)], 0
        for index, (rows, _) in enumerate(batch):
            try:
                columns = _columns(rows)
            except (TypeError, ValueError, IndexError) as ex:
                results[index] = OhlogError(f"not rows of the actions table: {ex}")
                continue
            params[0] += [index] * len(rows)
            for given, column in zip(params[1:], columns):
                given += column
            requests += 1
        if not params[0]:
            return [r if r is not None else (0, 0) for r in results]
        for attempt in range(RETRIES):
            try:
                conn = await self._connection()
                counts = await asyncio.wait_for(self._insert(conn, params), WRITE_WAIT_S)
                break
            except DatabaseGone as ex:
                return [r or ex for r in results]
            except asyncio.TimeoutError:
                await self._cancel()
                late = DatabaseGone(f"PostgreSQL did not answer within {WRITE_WAIT_S} s")
                error_log.error("Could not store a batch: %s", late)
                return [r or late for r in results]
            except psycopg.Error as ex:
                if self._conn is None or self._conn.closed or self._conn.broken:
                    self.close()
                    gone = DatabaseGone(f"PostgreSQL at {where(self.url)}: {_first_line(ex)}")
                    return [r or gone for r in results]
                if (ex.sqlstate or "").startswith("40") and attempt + 1 < RETRIES:
                    continue  # a deadlock or serialization failure: nothing was stored
                if requests > 1:  # try each alone: the fault is one request's
                    for index, item in enumerate(batch):
                        if results[index] is None:
                            results[index] = (await self._commit([item]))[0]
                    return results
                failure = OhlogError(f"database error: {_first_line(ex)}")
                return [r or failure for r in results]
        self.commits += 1
        for index, (rows, _) in enumerate(batch):
            if results[index] is None:
                inserted = counts.get(index, 0)
                results[index] = (inserted, len(rows) - inserted)
        return results

    async def _cancel(self):
        """Cancel the statement in flight (if the server can be reached), then drop the connection."""
        conn = self._conn
        if conn is not None:
            try:
                await asyncio.wait_for(conn.cancel_safe(), CONNECT_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - unreachable: closing the connection ends it
                pass
        self.close()

    async def _insert(self, conn, params):
        # One statement, one transaction (autocommit): the rows and their counts in the summaries
        async with conn.cursor() as cursor:
            await cursor.execute(INSERT, params)
            return dict(await cursor.fetchall())


def _columns(rows):
    """The rows as one list a column (text escaped for PostgreSQL)."""
    if not rows:
        return [[] for _ in COLUMNS]
    rows = [escaped_row(row) for row in rows]
    if any(len(row) != len(COLUMNS) for row in rows):
        raise ValueError(f"expected {len(COLUMNS)} columns a row")
    return [list(column) for column in zip(*rows)]


def _first_line(ex):
    text = str(ex).strip().splitlines()
    return text[0] if text else type(ex).__name__


__all__ = ["DatabaseGone", "PgWriter", "QuickReader", "conninfo", "mask", "open_reader"]
