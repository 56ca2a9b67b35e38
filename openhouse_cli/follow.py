"""Following the store: the matching actions stored, then each new one as it is committed.

``follow(store, **filters)`` yields batches of rows: first the actions that
match now, in time order (as ``ohlog query``; with ``limit``, the last N of
them), then, batch by batch, each matching action that any writer commits
afterwards, in commit order.

What "new" means differs by engine:

* SQLite commits one writer at a time, so the rows with an id above the
  highest seen are exactly the new ones. ``PRAGMA data_version`` says, for
  the price of a pragma, whether anyone committed since the last look, so an
  idle follower does next to nothing. SQLite reuses the highest ids after
  ``ohlog delete`` removes the newest rows, and a new row's id is then one
  above the highest row left. Each delete records that id (schema.DELETES),
  so at each look after one the follower re-reads the rows above the lowest
  recorded since its last look (or its last top, if lower): every new row is
  above it, every old row left at or below it. A delete not recorded there
  (another program's; seen too when the row a recorded delete left has gone
  since) is bounded by the highest row the follower knows is still there
  (the recently printed ones, ``_RECENT`` of them, and rows at 1, 2, 4, 8,
  ... ids below the top), the printed rows left out.
* PostgreSQL assigns ids at insert, and transactions commit out of id
  order, so "id above the last seen" could miss a row committed late with a
  smaller id. Each look reads, in one snapshot, the matching rows above a
  floor, and prints those not yet printed. The floor only moves up to the
  highest id V of an earlier snapshot S once every transaction that was
  running at S has ended (their virtual transaction ids, from ``pg_locks``,
  are gone): any id up to V was taken before S, so by then its row is
  committed (and read) or will never be. The actions that were in flight
  when the follower started are found once by their inserting transaction
  (``xmin``), against the first snapshot.

Only the standard library is imported here; psycopg comes with the store.
"""

from __future__ import annotations

import itertools
import re
import select
import sqlite3
import time
from collections.abc import Iterator
from typing import Any, Callable

from . import query as _query
from .errors import OhlogError
from .fields import COLUMNS
from .output import batches as in_batches
from .schema import DELETES
from .store import Store, as_store

POLL_S = {"sqlite": 0.25, "postgresql": 0.5}  # new actions show within a second
_BATCH = 1000
_RECENT = 100_000  # SQLite: printed ids remembered, to re-read after a delete
_WITH_ID = "id, fingerprint, " + COLUMNS
_FROM = re.compile(r" FROM actions(?: INDEXED BY \w+)?")
# Rows with an id above a floor, read first and filtered after: a new
# action is found through the id, whatever index the filters would choose.
# (OFFSET 0 keeps PostgreSQL from merging the subquery into the filters.)
_ABOVE = {
    "sqlite": " FROM (SELECT * FROM actions WHERE id > ? LIMIT -1) AS recent",
    "postgresql": " FROM (SELECT * FROM actions WHERE id > ? OFFSET 0) AS recent",
}
# PostgreSQL: rows at or below an id whose inserting transaction (32-bit
# xmin) was not visible in a snapshot: one of its in-progress xids, or at
# or above its xmax (modulo 2**32, as transaction ids wrap)
_UNSEEN = (
    " FROM (SELECT * FROM actions WHERE id <= ? AND (xmin::text::bigint = ANY(?::bigint[])"
    " OR mod(xmin::text::bigint - ? + 4294967296, 4294967296) < 2147483648) OFFSET 0) AS recent"
)
_VXIDS = ("SELECT virtualxid FROM pg_locks WHERE locktype = 'virtualxid'"
          " AND pid IS DISTINCT FROM pg_backend_pid()")


def follow(store: Any, *, poll: float | None = None, stopped: Callable[[], bool] | None = None,
           caught_up: Callable[[], None] | None = None, **filters: Any) -> Iterator[list[tuple]]:
    """Yield batches of matching rows (columns fields.COLUMNS): those stored,
    then new ones as they are committed, until ``stopped()`` says so (never,
    by default: the caller stops on Ctrl-C or a closed pipe).

    ``filters`` are query.query_actions' filters, without ``order`` (a
    follower prints in time order, then in commit order). ``limit``: of the
    actions stored, only the last N in time order (``tail -n N -f``); the new
    ones all come. ``caught_up()`` is called once the stored ones are out.
    """
    store = as_store(store)
    if filters.pop("order", None) not in (None, "asc"):
        raise OhlogError("a follower cannot take order")
    limit = filters.pop("limit", None)
    # Checked now, before anything is read: a bad filter fails at once
    _query.build_query(COLUMNS, engine=store.engine, limit=limit, **filters)
    kind = _PostgresFollower if store.engine == "postgresql" else _SQLiteFollower
    follower = kind(store, filters)
    follower.limit = limit
    poll = POLL_S[store.engine] if poll is None else poll
    yield from follower.start()
    if caught_up:
        caught_up()
    while not (stopped and stopped()):
        time.sleep(poll)
        batch = follower.look()
        if batch:
            yield batch


def reader_gone(stream: Any) -> bool:
    """Whether ``stream`` is a pipe whose reader has closed it (so an idle
    follower ends without waiting for an action to write)."""
    try:
        poller = select.poll()
        poller.register(stream.fileno(), 0)
        return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


_NEWEST_FIRST = (" ORDER BY utc_us DESC, ns DESC, id", " ORDER BY utc_us DESC, ns DESC, id DESC")


def _newest_first(engine, filters, limit):
    """query.build_query's SELECT of the matches, newest first, ties too (the
    last ingested first), so that its first ``limit`` rows are the last ones."""
    sql, params = _query.build_query(_WITH_ID, engine=engine, order="desc", limit=limit,
                                     **filters)
    assert _NEWEST_FIRST[0] in sql
    return sql.replace(*_NEWEST_FIRST), params


def _last_rows(rows, limit):
    """The first ``limit`` of ``rows`` (newest first, with id), in time order
    (ties in id order, as query.py orders them)."""
    return sorted(itertools.islice(rows, limit), key=lambda row: (row[7], row[8], row[0]))


def _new_rows_sql(engine, filters, source):
    """The filtered SELECT of query.build_query, over the rows ``source`` reads, in id order."""
    sql, params = _query.build_query(_WITH_ID, engine=engine, order=None, **filters)
    return _FROM.sub(lambda _: source, sql, count=1) + " ORDER BY id", params


class _SQLiteFollower:
    def __init__(self, store: Store, filters: dict):
        self.store, self.filters = store, filters
        self.conn = store.conn
        self.top = 0  # the highest id seen, and its row's fingerprint
        self.top_fp = None
        self.recent: dict[int, bytes] = {}  # printed id -> fingerprint
        self.anchors: dict[int, bytes] = {}  # rows below the top, further and further apart
        self.last_delete = 0  # the last delete recorded at the last look
        self.version = None
        self.limit: int | None = None

    def _run(self, sql, params):
        if "ohlog_" in sql:  # query.py's exact look-ups in Python
            self.conn.create_function("ohlog_type", 2, _query._python_type, deterministic=True)
            self.conn.create_function("ohlog_value", 2, _query._python_value, deterministic=True)
            self.conn.create_function("ohlog_compare", 4, _query._python_compare,
                                      deterministic=True)
        cursor = self.conn.execute(sql, params)
        cursor.arraysize = _BATCH
        return _query._stream(cursor)

    def _read(self, fn):
        try:
            self.conn.execute("BEGIN")  # one snapshot for the rows and the top
            try:
                return fn()
            finally:
                self.conn.execute("COMMIT")
        except sqlite3.Error as ex:
            raise OhlogError(f"Query failed: {ex}") from None

    def _mark_top(self):
        row = self.conn.execute(
            "SELECT id, fingerprint FROM actions ORDER BY id DESC LIMIT 1").fetchone()
        self.top, self.top_fp = row if row else (0, None)
        self.last_delete = self._last_delete()
        # The rows at or below 1, 2, 4, ... ids under the top: one of them is
        # likely to outlive a delete, and bounds where new rows can be (_look)
        self.anchors = {}
        distance = 1
        while self.top - distance > 0:
            row = self.conn.execute("SELECT id, fingerprint FROM actions WHERE id <= ?"
                                    " ORDER BY id DESC LIMIT 1", (self.top - distance,)).fetchone()
            if row is None:
                break
            self.anchors[row[0]] = row[1]
            distance = max(distance * 2, self.top - row[0] + 1)

    def _remember(self, batch):
        for row in batch:
            self.recent[row[0]] = row[1]
        if len(self.recent) > 2 * _RECENT:
            keep = sorted(self.recent)[-_RECENT:]
            self.recent = {i: self.recent[i] for i in keep}
        return [row[2:] for row in batch]

    def start(self):
        self.version = self._version()
        if self.limit is not None:
            yield from self._start_last()
            return
        sql, params = _query.build_query(_WITH_ID, engine="sqlite", **self.filters)
        self.conn.execute("BEGIN")
        try:
            self._mark_top()
            for batch in in_batches(self._run(sql, params), _BATCH):
                yield self._remember(batch)
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")

    def _start_last(self):
        """The last ``limit`` stored matches. The actions not printed must not
        pass for new after a delete (_look), so the newest _RECENT rows of
        the table are remembered as well."""
        sql, params = _newest_first("sqlite", self.filters, self.limit)

        def read():
            self._mark_top()
            self.recent.update(self.conn.execute(
                "SELECT id, fingerprint FROM actions ORDER BY id DESC LIMIT ?", (_RECENT,)))
            return self._remember(_last_rows(self._run(sql, params), self.limit))

        yield from in_batches(self._read(read), _BATCH)

    def _version(self):
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def look(self):
        version = self._version()
        if version == self.version:
            return []  # nobody committed since the last look
        self.version = version
        return self._read(self._look)

    def _look(self):
        # SQLite takes the ids above the highest row left after a delete again.
        # Each ohlog delete records that row: every old row left is at or
        # below the lowest recorded since the last look, every new row above it
        floor, skip = self.top, {}
        lowest = self._lowest_top_since(self.last_delete)
        if lowest is not None:
            floor = min(self.top, lowest)
            if floor and not self._still_there(floor):
                # that row has gone since: another program deleted too, and
                # rows below it may be new: bounded as below, the printed left out
                floor, skip = min(floor, self._highest_left()), self.recent
        elif self.top and not self._still_there(self.top):
            # the newest row gone, and no delete recorded (another program's):
            # above the highest row known to be left, leaving out those printed
            floor, skip = self._highest_left(), self.recent
        sql, params = _new_rows_sql("sqlite", self.filters, _ABOVE["sqlite"])
        rows = [row for row in self._run(sql, [floor, *params]) if skip.get(row[0]) != row[1]]
        self._mark_top()
        return self._remember(rows)

    def _last_delete(self) -> int:
        try:
            return self.conn.execute(f"SELECT coalesce(max(id), 0) FROM {DELETES}").fetchone()[0]
        except sqlite3.OperationalError:  # no such table yet: its migration is a writer's
            return 0

    def _still_there(self, row_id: int) -> bool:
        """Whether row ``row_id`` exists and, if remembered, is the same row."""
        found = self.conn.execute("SELECT fingerprint FROM actions WHERE id = ?", (row_id,)).fetchone()
        known = self.top_fp if row_id == self.top else self.recent.get(row_id, self.anchors.get(row_id))
        return found is not None and (known is None or known == found[0])

    def _lowest_top_since(self, after: int) -> int | None:
        """The lowest top left by the deletes recorded after ``after``; None
        if none is (or the database is from before m008)."""
        try:
            return self.conn.execute(f"SELECT min(top) FROM {DELETES} WHERE id > ?", (after,)).fetchone()[0]
        except sqlite3.OperationalError:  # no such table yet: its migration is a writer's
            return None

    def _highest_left(self) -> int:
        """The highest id among the rows remembered (printed, or anchors) that
        is still the same row; 0 if none is."""
        known = {**self.anchors, **self.recent}
        ids = sorted(known, reverse=True)
        for start in range(0, len(ids), _BATCH):
            batch = ids[start:start + _BATCH]
            left = [i for i, fingerprint in self.conn.execute(
                "SELECT id, fingerprint FROM actions WHERE id IN (SELECT value FROM json_each(?))",
                ("[" + ",".join(map(str, batch)) + "]",)) if known[i] == fingerprint]
            if left:
                return max(left)
        return 0


class _PostgresFollower:
    def __init__(self, store: Store, filters: dict):
        self.store, self.filters = store, filters
        self.conn = store.conn
        self.floor = 0  # every id up to here is settled: read, or never to be
        self.seen: set[int] = set()  # printed ids above the floor
        self.pending: list[tuple[int, frozenset]] = []  # (highest id, transactions then running)
        self.top = 0
        self.first = None  # (highest id, transactions, in-flight xids, xmax) at the start
        self.alive: frozenset = frozenset()
        self.limit: int | None = None

    def _stream(self, sql, params):
        from .store.postgres import stream

        rows = stream(self.store, sql, params)
        where = self.filters.get("where", ())
        where = [_query.parse_where(w) if isinstance(w, str) else _query._checked(w)
                 for w in ((where,) if isinstance(where, (str, _query.Where)) else where)]
        # rows whose properties hold an escaped NUL are decided in Python
        return _query._nul_decided(rows, where, 6) if where else rows

    def _vxids(self):
        return frozenset(v for (v,) in self.conn.execute(_VXIDS))

    def _snapshot(self):
        text, top = self.conn.execute(
            "SELECT pg_current_snapshot()::text, coalesce(max(id), 0) FROM actions").fetchone()
        xmin, xmax, xip = text.split(":")
        return top, [int(x) % 2**32 for x in xip.split(",") if x], int(xmax) % 2**32

    def _transaction(self, fn):
        import psycopg

        try:
            self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            try:
                return fn()
            finally:
                self.conn.execute("COMMIT")
        except psycopg.Error as ex:
            raise OhlogError(f"Query failed: {ex}") from None

    def start(self):
        if self.limit is None:
            sql, params = _query.build_query(_WITH_ID, engine="postgresql", **self.filters)
        else:  # the last N: newest first, then turned round (with property
            # conditions, rows are decided in Python before the limit: _stream)
            sql, params = _newest_first("postgresql", self.filters,
                                        None if self.filters.get("where") else self.limit)
        batches = []

        def read():
            top, xip, xmax = self._snapshot()
            self.floor = top
            self.first = (top, None, xip, xmax)
            rows = self._stream(sql, params)
            if self.limit is not None:
                rows = _last_rows(rows, self.limit)
            for batch in in_batches(rows, _BATCH):
                batches.append([row[2:] for row in batch])

        # Gathered before printing: the snapshot's transaction must not stay
        # open while a slow reader takes the output
        self._transaction(read)
        self.alive = self._vxids()
        top, _, xip, xmax = self.first
        self.first = (top, self.alive, xip, xmax)
        yield from batches

    def look(self):
        # Ready: the snapshots whose running transactions had all ended at the
        # last look at pg_locks, which came before this look's snapshot
        ready = [top for top, running in self.pending if not running & self.alive]
        first = self.first if self.first and not self.first[1] & self.alive else None
        rows = self._transaction(lambda: self._look(first))
        if ready:
            self.floor = max(self.floor, *ready)
            self.pending = [p for p in self.pending if p[0] > self.floor]
            self.seen = {i for i in self.seen if i > self.floor}
        if first:
            self.first = None
        self.alive = self._vxids()
        top = self.top
        if top > self.floor and not any(p[0] == top for p in self.pending):
            self.pending.append((top, self.alive))
        return rows

    def _look(self, first):
        self.top = self._snapshot()[0]
        found = []
        if first:  # the actions in flight at the start, now committed
            top, _, xip, xmax = first
            sql, params = _new_rows_sql("postgresql", self.filters, _UNSEEN)
            found += [row[2:] for row in self._stream(sql, [top, xip, xmax, *params])]
        sql, params = _new_rows_sql("postgresql", self.filters, _ABOVE["postgresql"])
        for row in self._stream(sql, [self.floor, *params]):
            if row[0] not in self.seen:
                self.seen.add(row[0])
                found.append(row[2:])
        return found
