"""Summaries kept beside the actions, in the same transactions: what makes
``stats``, ``count`` and ``active`` answer from a few thousand rows.

Four tables (schema.SUMMARIES), each a count of actions by a key:

* ``summary_slots``: by 15-minute UTC slot, type key and spelling. Any zone
  whose offsets and changes fall on quarter hours buckets hours, days,
  weeks and months from it (and the spellings come from it).
* ``summary_user_hours``: by UTC hour, type key and user: distinct users per
  time bucket and type (zones on whole hours), and DAU/WAU/MAU.
* ``summary_user_types``: by type key, spelling and user: users and
  spellings per type, all time.
* ``summary_sessions``: by user and session: sessions, and actions per user.

And on SQLite only, two of active users by UTC day (schema.DAY_SUMMARIES),
what makes ``active`` and ``count --by day`` with users answer from a few
thousand rows instead of the user hours:

* ``summary_user_day_bits``: by type key, user and block of DAY_BITS days,
  the days the user was active as bits (type key '' is any type).
* ``summary_day_users``: distinct users and actions by UTC day and type key
  ('' any).

Both change from the same rows as the other summaries. From the delta
grouped from the table, in SQL: on adding, each (type, user, day) whose bit
was not yet set adds a user to its day, then the bits are OR-ed in; on
subtracting, a typed (type, user, day) with no hour left in the user hours,
and then an any-type one with no typed bit left that day, clears its bit and
takes a user from its day. From the worker's tally (``Held``): its
rows are already each block's bits and each day's users and actions,
counting every user as new; one upsert ORs the bits in and calls back to
Python for the few bits that were set already, whose users are taken back
before the days are added. So the writer runs no GROUP BY, temporary table
or lookup a row.

The sessions' spans (``spans.py``, SQLite only) change with them: from
the worker's tally, or from a write's rows read back by id; a delete
builds the spans of the sessions it touched again.

SQLite: every writer holds the write lock (BEGIN IMMEDIATE) and rowids rise
within a transaction, so ``since(conn)`` before a write and ``add(conn, id)``
after it add exactly the rows it inserted (dedupe already applied: only
inserted rows exist). Ingest's writes come with their rows already counted
by key (``tally``, worked out by the validating worker on the other core);
a write that inserted every one of its rows adds that count instead
(``Held``), which spares the writer, ingest's critical path,
grouping its rows again; the keys that come back chunk after chunk (a
user's types and blocks of days) are held to the commit and written once.
A write that met a duplicate is counted from the table as above. A delete subtracts the rows it is about to remove (``subtract``).
Either way the summaries change in the actions' transaction: a rollback or
a kill leaves both as they were.

PostgreSQL: concurrent writers interleave ids, so a writer cannot find its
rows by id. Instead every statement that inserts actions (a writer's
staging insert or bulk load) or deletes them also writes the rows it
changed, from its own RETURNING (so dedupe is applied and concurrent
writers are told apart by construction), grouped by every key at once into
the session's temporary ``ohlog_delta``, in the same statement
(``collecting``, ``DELETE_POSTGRES``). Before COMMIT, ``apply_postgres``
adds that to each summary in key order, so two writers lock shared rows in
the same order (no deadlock); the table is emptied at commit or rollback
(ON COMMIT DELETE ROWS; a rolled back transaction's rows were never there).
A bulk load into an empty table COPYs its rows straight into actions, past
any such statement: it counts the whole table at commit instead
(``add_all_postgres``), every row of it being its own.
The server's group commit, one statement a transaction, does the same
within that statement (``summing_postgres``: CTEs over its RETURNING, the
summaries in the same order), with no temporary table and one round trip.
Nothing depends on transaction ids, so it holds on Citus' shards too
(README, Scaling out).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Sequence
from itertools import chain, repeat
from operator import floordiv, itemgetter

from . import spans
from .errors import OhlogError
from .schema import COLUMNS, DAY_BITS, DAY_SUMMARIES, OWN_WRITES, STALE, SUMMARIES

SLOT_US = 15 * 60 * 1_000_000
HOUR_US = 3600 * 1_000_000
# Integer division truncates toward zero: shift (by 720006 days, as
# analytics.buckets does) so that it floors for instants before 1970 too
_SHIFT_US = 720006 * 86400 * 1_000_000
DAY_US = 86400 * 1_000_000
SHIFT_DAYS = _SHIFT_US // DAY_US  # days as the days summaries store them: shifted, non-negative
SLOT_SQL = f"((utc_us + {_SHIFT_US}) / {SLOT_US} - {_SHIFT_US // SLOT_US})"
HOUR_SQL = f"((utc_us + {_SHIFT_US}) / {HOUR_US} - {_SHIFT_US // HOUR_US})"

# table: (key columns, as schema.SUMMARIES names them; the key's SQL over actions;
# its positions in the SELECT)
_KEY_SQL = {
    "summary_slots": f"{SLOT_SQL}, type_key, type",
    "summary_user_hours": f"{HOUR_SQL}, type_key, user_id",
    "summary_user_types": "type_key, type, user_id",
    "summary_sessions": "user_id, session_id",
}
TABLES = {table: (key, _KEY_SQL[table], ", ".join(str(i + 1) for i in range(key.count(",") + 1)))
          for table, key in SUMMARIES.items()}


# SQLite: the new (or deleted) rows are read once, grouped by every key at
# once into a temporary table (a few rows a session), and each summary is
# then grouped from that: one pass over the actions instead of four.
_SLOTS_PER_HOUR = HOUR_US // SLOT_US
_FROM_SLOT = {  # each summary's key over ohlog_delta
    "summary_slots": "slot, type_key, type",
    "summary_user_hours": (f"(slot + {_SHIFT_US // SLOT_US}) / {_SLOTS_PER_HOUR}"
                           f" - {_SHIFT_US // HOUR_US}, type_key, user_id"),
    "summary_user_types": "type_key, type, user_id",
    "summary_sessions": "user_id, session_id",
}
_DELTA_TABLE = ("CREATE TEMP TABLE IF NOT EXISTS ohlog_delta (slot INTEGER, type_key TEXT,"
                " type TEXT, user_id TEXT, session_id TEXT, n INTEGER)")
_DELTA = ("INSERT INTO temp.ohlog_delta SELECT " + SLOT_SQL + ", type_key, type, user_id, session_id,"
          " ? * count(*) FROM actions WHERE {} GROUP BY 1, 2, 3, 4, 5")
_DELTA_ADD = _DELTA.format("id > ?")
_DELTA_ALL = _DELTA.format("true")  # every action, whatever its id (another program may give 0 or less)
_DELTA_SUBTRACT = _DELTA.format("id IN (SELECT value FROM json_each(?))")
_APPLY = {table: (f"INSERT INTO {table} ({key}, actions) SELECT {_FROM_SLOT[table]}, sum(n)"
                  f" FROM temp.ohlog_delta WHERE true GROUP BY {at} ORDER BY {at}"
                  f" ON CONFLICT ({key}) DO UPDATE SET actions = {table}.actions + excluded.actions")
          for table, (key, _, at) in TABLES.items()}
_DROP_EMPTY = {table: f"DELETE FROM {table} WHERE actions = 0" for table in TABLES}


def own_writes(conn: sqlite3.Connection) -> None:
    """Mark this write transaction as ohlog's own (SQLite; call right after
    BEGIN IMMEDIATE): m009's triggers take any other change to the actions
    for one that leaves the summaries stale. ``own_writes_done`` before COMMIT."""
    conn.execute(f"INSERT OR IGNORE INTO {OWN_WRITES} (id) VALUES (1)")


def own_writes_done(conn: sqlite3.Connection) -> None:
    """The mark taken off again, before COMMIT: it is never committed."""
    conn.execute(f"DELETE FROM {OWN_WRITES}")


def stale(conn) -> str | None:
    """What another program did to the actions since the summaries were
    last right ('insert', 'update' or 'delete'; SQLite), else None."""
    try:
        found = conn.execute(f"SELECT change FROM {STALE} LIMIT 1").fetchone()
    except sqlite3.OperationalError:  # a database from before m009, read as it is
        return None
    return found[0] if found else None


_HIGHEST_ID = 2**63 - 1


def rebuild(conn: sqlite3.Connection) -> None:
    """Every summary built again from the actions, in the caller's write
    transaction (marked as ohlog's own), and the staleness forgotten."""
    top = conn.execute("SELECT max(id) FROM actions").fetchone()[0]
    if top is not None and top > _HIGHEST_ID - 1_000_000_000:
        # Past the largest rowid SQLite picks ids at random, and the summaries'
        # upkeep finds a write's rows by rising ids: they would go wrong unsaid
        raise OhlogError(f"an action has the id {top:,}, near SQLite's largest (another program gave it):"
                         " ohlog keeps its summaries by rising ids, so it cannot keep them here; copy the"
                         " actions into a new database (ohlog copy), which numbers them afresh")
    for table in (*SUMMARIES, *DAY_SUMMARIES):
        conn.execute(f"DELETE FROM {table}")
    _apply(conn, _DELTA_ALL, (1,), False)
    spans.rebuild_all(conn)
    conn.execute(f"DELETE FROM {STALE}")


def rebuild_store(store) -> int:
    """``ohlog rebuild-summaries``: every summary built again from the actions,
    in one transaction that holds other writers off; the actions counted."""
    if store.engine == "postgresql":
        from .store.postgres import prepare_session

        conn = store.conn
        prepare_session(conn)
        conn.execute("BEGIN")
        try:
            conn.execute("LOCK TABLE actions IN SHARE ROW EXCLUSIVE MODE")  # as a bulk load does
            for table in SUMMARIES:
                conn.execute(f"DELETE FROM {table}")
            add_all_postgres(conn)
            total = conn.execute("SELECT count(*) FROM actions").fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return total
    conn = store.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        own_writes(conn)
        rebuild(conn)
        total = conn.execute("SELECT count(*) FROM actions").fetchone()[0]
        own_writes_done(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return total


def since(conn) -> int:
    """The largest id now (call inside the writer's transaction, before inserting; either engine)."""
    return conn.execute("SELECT coalesce(max(id), 0) FROM actions").fetchone()[0]


def tally(rows: Sequence[Sequence]) -> tuple[list[tuple], ...]:
    """``rows`` (schema.COLUMNS order) counted for each summary: a list of
    ``(key..., actions)`` tuples for each table of ``TABLES``, in its order and
    with its key's columns, then the days' two (``_day_tally``), then the
    sessions' spans (``spans.spans``): what ``Held.add`` takes. Worked out
    by the validating worker, on the other core, so that the writer only
    upserts. Python's ``//`` floors, as the
    SQL's shifted division does. (Counter over zipped columns counts without
    a Python step a row.) The lists are left unsorted: sorting them cost the
    worker, now the longer of ingest's two paths, and saved the writer's
    upserts no instructions (measured with callgrind)."""
    slots = list(map(floordiv, map(_UTC_US, rows), repeat(SLOT_US)))
    hours = list(map(floordiv, map(_UTC_US, rows), repeat(HOUR_US)))
    days = list(map(floordiv, map(_SHIFT_US.__add__, map(_UTC_US, rows)), repeat(DAY_US)))
    kinds, spellings = list(map(_TYPE_KEY, rows)), list(map(_TYPE, rows))
    users, sessions = list(map(_USER, rows)), list(map(_SESSION, rows))
    counted: dict[str, Counter] = {
        "summary_slots": Counter(zip(slots, kinds, spellings)),
        "summary_user_hours": Counter(zip(hours, kinds, users)),
        "summary_user_types": Counter(zip(kinds, spellings, users)),
        "summary_sessions": Counter(zip(users, sessions)),
    }
    return (*([key + (n,) for key, n in counted[table].items()] for table in TABLES),
            *_day_tally(kinds, users, days), spans.spans(rows))


def _day_tally(kinds: list, users: list, days: list) -> tuple[list[tuple], list[tuple]]:
    """The days summaries' rows for the worker's tally, already grouped: the
    ``(type_key, user_id, block, bits)`` of summary_user_day_bits (each
    (type, user, day) of the rows as its bit, type '' for any type), and the
    ``(day, type_key, users, actions)`` of summary_day_users, counting every
    user as new to its day: ``Held`` takes back the ones the database
    already had."""
    triples = set(zip(kinds, users, days))
    triples.update(zip(repeat(""), users, days))
    bits: dict[tuple, int] = {}
    for kind, user, day in triples:
        key = (kind, user, day // DAY_BITS)
        bits[key] = bits.get(key, 0) | 1 << day % DAY_BITS
    day_users = Counter((day, kind) for kind, _, day in triples)
    day_actions = Counter(zip(days, kinds))
    day_actions.update(zip(days, repeat("")))
    return ([key + (b,) for key, b in bits.items()],
            [(day - SHIFT_DAYS, kind, n, day_actions[day, kind]) for (day, kind), n in day_users.items()])


_UTC_US, _TYPE_KEY, _TYPE, _USER, _SESSION = (itemgetter(COLUMNS.index(name)) for name in (
    "utc_us", "type_key", "type", "user_id", "session_id"))


# Keys a Held gathers before it writes them (about 10 MB of Python tuples)
_HELD_MAX = 40_000


class Held:
    """The worker's tallies of one writer's transaction (``tally``), for the
    summaries whose keys come back chunk after chunk: a user's types and
    blocks of days (in a new database 4.5 and 3.4 times as many rows over the
    chunks as keys). Those are gathered here and written by ``flush``: at
    the commit, or once _HELD_MAX keys are held; the others are upserted at
    once. The writer holds the write lock until it commits, so no one else
    changes the summaries meanwhile, and a rollback or a kill leaves nothing
    of them behind, as of the actions.

    Each tally counts every user as new to each of its days; a bit already
    held, or already in the database when ``flush`` ORs the bits in (found by
    _seen_days), takes its user back from its day.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.user_types: Counter = Counter()
        self.bits: dict[tuple, int] = {}
        self.day_users: dict[tuple, list[int]] = {}  # (day, type_key): [users, actions]

    def add(self, conn: sqlite3.Connection, tallies: Sequence[tuple[list[tuple], ...]]) -> None:
        for i, sql in enumerate(_UPSERT.values()):
            if i != _USER_TYPES:
                conn.executemany(sql, chain.from_iterable(t[i] for t in tallies))
        user_types, bits, day_users = self.user_types, self.bits, self.day_users
        for t in tallies:
            for kind, spelling, user, n in t[_USER_TYPES]:
                user_types[kind, spelling, user] += n
            for day, kind, users, actions in t[_DAY_USERS]:
                counts = day_users.setdefault((day, kind), [0, 0])
                counts[0] += users
                counts[1] += actions
            for kind, user, block, new in t[_BITS]:
                key = (kind, user, block)
                old = bits.get(key, 0)
                if old & new:
                    _take_back(day_users, kind, block, old & new)
                bits[key] = old | new
        # In the order written: of two spans of a session, the later one's rows come after
        conn.executemany(spans.UPSERT, chain.from_iterable(t[_SPANS] for t in tallies))
        if len(user_types) + len(bits) >= _HELD_MAX:
            self.flush(conn)

    def flush(self, conn: sqlite3.Connection) -> None:
        """Write what is held (in key order), and hold nothing."""
        if not self.day_users:  # nothing held (every tally has days)
            return
        conn.executemany(_UPSERT_USER_TYPES, sorted(key + (n,) for key, n in self.user_types.items()))
        seen = _SEEN.days = []
        bits = sorted(key + (b,) for key, b in self.bits.items())
        try:
            conn.executemany(_ADD_BITS_ROWS, bits)
        except sqlite3.OperationalError as ex:
            if _SEEN_DAYS not in str(ex):
                raise
            # A connection's first days: the function is registered once (a new
            # name: no prepared statement is invalidated)
            conn.create_function(_SEEN_DAYS, 3, _seen_days)
            conn.executemany(_ADD_BITS_ROWS, bits)
        _SEEN.days = []
        for kind, block, already in seen:
            _take_back(self.day_users, kind, block, already)
        conn.executemany(_ADD_DAY_USERS_ROWS, sorted(key + tuple(counts) for key, counts in self.day_users.items()))
        self.clear()


_USER_TYPES = list(TABLES).index("summary_user_types")
_BITS, _DAY_USERS, _SPANS = len(TABLES), len(TABLES) + 1, len(TABLES) + 2  # the rest of a tally


def _take_back(day_users: dict[tuple, list[int]], kind: str, block: int, already: int) -> None:
    """Each bit of ``already`` (days of ``block`` on which the user was counted
    before) takes a user from its day of ``kind``."""
    while already:
        bit = already & -already
        day_users[block * DAY_BITS + bit.bit_length() - 1 - SHIFT_DAYS, kind][0] -= 1
        already ^= bit


_UPSERT = {table: (f"INSERT INTO {table} ({key}, actions) VALUES ({', '.join('?' * (at.count(',') + 2))})"
                   f" ON CONFLICT ({key}) DO UPDATE SET actions = actions + excluded.actions")
           for table, (key, _, at) in TABLES.items()}
_UPSERT_USER_TYPES = _UPSERT["summary_user_types"]
_SEEN_DAYS = "ohlog_seen_days"
# The function is called only where a bit was set already (rare in a new
# database: the same user and day in two chunks); it returns 0
_ADD_BITS_ROWS = ("INSERT INTO summary_user_day_bits (type_key, user_id, block, bits) VALUES (?, ?, ?, ?)"
                  " ON CONFLICT (type_key, user_id, block) DO UPDATE SET bits = bits | excluded.bits"
                  f" | CASE WHEN bits & excluded.bits THEN {_SEEN_DAYS}(excluded.type_key, excluded.block,"
                  " bits & excluded.bits) ELSE 0 END")
_ADD_DAY_USERS_ROWS = ("INSERT INTO summary_day_users (day, type_key, users, actions) VALUES (?, ?, ?, ?)"
                       " ON CONFLICT (day, type_key) DO UPDATE SET users = users + excluded.users,"
                       " actions = actions + excluded.actions")
# Each thread's notes of the statement it runs (the function runs in the
# thread that steps the statement; a server's threads may write at once)
_SEEN = threading.local()


def _seen_days(kind: str, block: int, already: int) -> int:
    _SEEN.days.append((kind, block, already))
    return 0


def _apply(conn: sqlite3.Connection, delta: str, params: tuple, drop_empty: bool) -> None:
    conn.execute(_DELTA_TABLE)
    conn.execute("DELETE FROM temp.ohlog_delta")
    conn.execute(delta, params)
    for table, sql in _APPLY.items():
        conn.execute(sql)
        if drop_empty:
            conn.execute(_DROP_EMPTY[table])
    _apply_days(conn, drop_empty)
    conn.execute("DELETE FROM temp.ohlog_delta")


# Active users by day (SQLite only), from ohlog_delta: its distinct (type key,
# user, shifted day) triples, and '' for any type. Days are shifted by
# SHIFT_DAYS so that they are non-negative and division floors.
_SLOTS_PER_DAY = DAY_US // SLOT_US
_DAY = f"(slot + {SHIFT_DAYS * _SLOTS_PER_DAY}) / {_SLOTS_PER_DAY}"
_DAYS_TABLE = ("CREATE TEMP TABLE IF NOT EXISTS ohlog_days (type_key TEXT, user_id TEXT, d INTEGER,"
               " n INTEGER)")
_DAYS = (f"INSERT INTO temp.ohlog_days SELECT type_key, user_id, {_DAY}, sum(n) FROM temp.ohlog_delta"
         f" WHERE true GROUP BY 1, 2, 3 UNION ALL SELECT '', user_id, {_DAY}, sum(n)"
         " FROM temp.ohlog_delta WHERE true GROUP BY 2, 3")
_BIT = f"(1 << (x.d % {DAY_BITS}))"
_IS_SET = (f"EXISTS (SELECT 1 FROM summary_user_day_bits b WHERE b.type_key = x.type_key"
           f" AND b.user_id = x.user_id AND b.block = x.d / {DAY_BITS} AND b.bits & {_BIT})")
# Adding: the bits not yet set each add a user to their day (read before the bits change)
_ADD_DAY_USERS = (f"INSERT INTO summary_day_users (day, type_key, users, actions)"
                  f" SELECT x.d - {SHIFT_DAYS}, x.type_key, sum(NOT {_IS_SET}), sum(x.n)"
                  " FROM temp.ohlog_days x WHERE true GROUP BY x.d, x.type_key ORDER BY x.d, x.type_key"
                  " ON CONFLICT (day, type_key) DO UPDATE SET users = users + excluded.users,"
                  " actions = actions + excluded.actions")
_ADD_BITS = (f"INSERT INTO summary_user_day_bits (type_key, user_id, block, bits)"
             f" SELECT x.type_key, x.user_id, x.d / {DAY_BITS}, sum(DISTINCT {_BIT})"
             " FROM temp.ohlog_days x WHERE true GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
             " ON CONFLICT (type_key, user_id, block) DO UPDATE SET bits = bits | excluded.bits")
# Subtracting: every day loses its actions (n < 0) first. Then a typed day
# stays if the user hours (already without their emptied rows) hold an hour
# of it: 24 seeks on their key. What stays is no longer a candidate; the rest is gone.
_LOSE_DAY_ACTIONS = (f"UPDATE summary_day_users AS s SET actions = s.actions + g.n FROM (SELECT"
                     f" x.d - {SHIFT_DAYS} AS day, x.type_key, sum(x.n) AS n FROM temp.ohlog_days x"
                     " GROUP BY 1, 2) g WHERE s.day = g.day AND s.type_key = g.type_key")
_HOURS = ", ".join(f"(x.d - {SHIFT_DAYS}) * 24 + {i}" for i in range(24))
_KEEP_TYPED = ("DELETE FROM temp.ohlog_days AS x WHERE x.type_key != '' AND EXISTS (SELECT 1"
               f" FROM summary_user_hours h WHERE h.hour IN ({_HOURS}) AND h.type_key = x.type_key"
               " AND h.user_id = x.user_id)")
# An any-type day stays if some type with users that day still has the user's bit
_KEEP_ANY = ("DELETE FROM temp.ohlog_days AS x WHERE x.type_key = '' AND EXISTS (SELECT 1"
             " FROM summary_day_users s JOIN summary_user_day_bits b ON b.type_key = s.type_key"
             f" WHERE s.day = x.d - {SHIFT_DAYS} AND s.type_key != '' AND b.user_id = x.user_id"
             f" AND b.block = x.d / {DAY_BITS} AND b.bits & {_BIT})")
_GONE = "(x.type_key = '') = ?"  # typed first (1 = 0), then any type
_CLEAR_BITS = (f"UPDATE summary_user_day_bits AS b SET bits = b.bits & ~g.m FROM (SELECT x.type_key,"
               f" x.user_id, x.d / {DAY_BITS} AS block, sum(DISTINCT {_BIT}) AS m"
               f" FROM temp.ohlog_days x WHERE {_GONE} GROUP BY 1, 2, 3) g"
               " WHERE b.type_key = g.type_key AND b.user_id = g.user_id AND b.block = g.block")
_LOSE_DAY_USERS = (f"UPDATE summary_day_users AS s SET users = s.users - g.n FROM (SELECT"
                   f" x.d - {SHIFT_DAYS} AS day, x.type_key, count(*) AS n FROM temp.ohlog_days x WHERE {_GONE}"
                   " GROUP BY 1, 2) g WHERE s.day = g.day AND s.type_key = g.type_key")
_DROP_EMPTY_DAYS = (
    "DELETE FROM summary_user_day_bits WHERE bits = 0 AND (type_key, user_id, block) IN"
    f" (SELECT type_key, user_id, d / {DAY_BITS} FROM temp.ohlog_days)",
    "DELETE FROM summary_day_users WHERE users = 0 AND (day, type_key) IN"
    f" (SELECT d - {SHIFT_DAYS}, type_key FROM temp.ohlog_days)",
)


def _apply_days(conn: sqlite3.Connection, subtracting: bool) -> None:
    conn.execute(_DAYS_TABLE)
    conn.execute("DELETE FROM temp.ohlog_days")
    conn.execute(_DAYS)
    if not subtracting:
        _add_days(conn)
        return
    conn.execute(_LOSE_DAY_ACTIONS)
    conn.execute(_KEEP_TYPED)
    for any_type, keep in ((0, None), (1, _KEEP_ANY)):
        if keep:  # once the typed bits are cleared
            conn.execute(keep)
        conn.execute(_CLEAR_BITS, (any_type,))
        conn.execute(_LOSE_DAY_USERS, (any_type,))
    for sql in _DROP_EMPTY_DAYS:
        conn.execute(sql)
    conn.execute("DELETE FROM temp.ohlog_days")


def _add_days(conn: sqlite3.Connection) -> None:
    """Add temp.ohlog_days (one row a type key, user and day) to the days summaries, and empty it."""
    conn.execute(_ADD_DAY_USERS)
    conn.execute(_ADD_BITS)
    conn.execute("DELETE FROM temp.ohlog_days")


def add(conn: sqlite3.Connection, after_id: int) -> None:
    """Add the actions inserted since ``since`` returned ``after_id`` to the summaries."""
    _apply(conn, _DELTA_ADD, (1, after_id), False)
    spans.add(conn, after_id)


def subtract(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    """Take the actions ``ids`` (about to be deleted) out of the summaries."""
    if not ids:
        return
    import orjson

    _apply(conn, _DELTA_SUBTRACT, (-1, orjson.dumps(list(ids)).decode()), True)


# PostgreSQL: each INSERT INTO actions (and each DELETE) also writes the
# rows it changed, from its own RETURNING, grouped by every key at once, into
# the session's ohlog_delta, in the same statement; the commit applies that
# to the summaries. Its text columns compare as the summaries' do (in "C").
DELTA_TABLE_POSTGRES = (
    'CREATE TEMP TABLE IF NOT EXISTS ohlog_delta (slot bigint, type_key text COLLATE "C",'
    ' type text COLLATE "C", user_id text COLLATE "C", session_id text COLLATE "C", n bigint)'
    " ON COMMIT DELETE ROWS")
RETURNING_POSTGRES = "RETURNING utc_us, type_key, type, user_id, session_id"
_DELTA_POSTGRES = ("INSERT INTO pg_temp.ohlog_delta SELECT " + SLOT_SQL + ", type_key, type,"
                   " user_id, session_id, {} FROM {} GROUP BY 1, 2, 3, 4, 5 RETURNING n")


def delta_postgres(rows: str, sign: str = "count(*)") -> str:
    """The statement that adds ``rows`` (a CTE holding RETURNING_POSTGRES's columns) to ohlog_delta."""
    return _DELTA_POSTGRES.format(sign, rows)


def collecting(insert: str) -> str:
    """``insert``, an INSERT INTO actions, as one statement that also adds the
    rows it inserted to ohlog_delta and returns how many it inserted."""
    return (f"WITH ins AS ({insert} {RETURNING_POSTGRES}), d AS ({delta_postgres('ins')})"
            " SELECT coalesce(sum(n), 0)::bigint FROM d")


# Deleting: the rows a DELETE removed, subtracted; returns how many went
DELETE_POSTGRES = (f"WITH gone AS (DELETE FROM actions WHERE id = ANY(%s) {RETURNING_POSTGRES}),"
                   f" d AS ({delta_postgres('gone', '-count(*)')})"
                   " SELECT coalesce(-sum(n), 0)::bigint FROM d")
# Each summary from ohlog_delta, in key order: concurrent writers lock shared
# rows in the same order (no deadlock)
APPLY_POSTGRES = [sql.replace("temp.ohlog_delta", "pg_temp.ohlog_delta") for sql in _APPLY.values()]
# After a delete: the rows it brought to zero (only those of its own keys)
_DROP_EMPTY_POSTGRES = [f"DELETE FROM {table} WHERE actions = 0 AND ({key}) IN"
                        f" (SELECT {_FROM_SLOT[table]} FROM pg_temp.ohlog_delta)"
                        for table, (key, _, _) in TABLES.items()]


# The same in one statement, for a caller whose one statement both inserts
# and commits (the server's group commit: one round trip, no temporary
# table): CTEs that group ``rows`` by every key at once and add them to each
# summary in TABLES' order, apply_postgres' order, so that no writer
# deadlocks another: each waits for the one before (its WHERE counts all of
# that one's RETURNING) before it locks a row.
_DONE = "(SELECT count(*) FROM sum_{}) >= 0"
_SUMMED_POSTGRES = [f"sum_{i} AS (INSERT INTO {table} ({key}, actions) SELECT {_FROM_SLOT[table]},"
                    f" sum(n) FROM delta WHERE {_DONE.format(i - 1) if i else 'true'}"
                    f" GROUP BY {at} ORDER BY {at} ON CONFLICT ({key})"
                    f" DO UPDATE SET actions = {table}.actions + excluded.actions RETURNING 1)"
                    for i, (table, (key, _, at)) in enumerate(TABLES.items())]
# The condition the statement's final query must hold: the last summary is done
SUMMED_POSTGRES = _DONE.format(len(TABLES) - 1)


def summing_postgres(rows: str) -> str:
    """CTEs that add ``rows`` (a CTE holding RETURNING_POSTGRES's columns) to
    the summaries in the same statement, whose final query holds SUMMED_POSTGRES."""
    return ", ".join([f"delta AS (SELECT {SLOT_SQL} AS slot, type_key, type, user_id, session_id,"
                      f" count(*) AS n FROM {rows} GROUP BY 1, 2, 3, 4, 5)", *_SUMMED_POSTGRES])


def apply_postgres(conn, drop_empty: bool = False) -> None:
    """Add this transaction's ohlog_delta to the summaries (before its COMMIT, which empties it)."""
    for sql in APPLY_POSTGRES:
        conn.execute(sql)
    if drop_empty:
        for sql in _DROP_EMPTY_POSTGRES:
            conn.execute(sql)


# A bulk load into an empty table (store/postgres.py's Writer): every row of
# actions is its own, so the summaries are counted from the whole table at
# commit, grouped by every key at once into ohlog_delta (one pass over the
# actions) and from there into each summary. (Grouping each summary from the
# actions instead took 7.7-9.9 s for a million actions against 6.8-7.8 s.)
# Its lock on actions keeps every other writer of the summaries out, so a
# summary found empty stays so: it takes a plain INSERT, about a fifth
# faster than ON CONFLICT's speculative one.
_ALL_TO_DELTA_POSTGRES = ("INSERT INTO pg_temp.ohlog_delta SELECT " + SLOT_SQL + ", type_key, type,"
                          " user_id, session_id, count(*) FROM actions GROUP BY 1, 2, 3, 4, 5")
_INSERT_NEW_POSTGRES = [sql.split(" ON CONFLICT")[0] for sql in APPLY_POSTGRES]
_HOLDS_ROWS_POSTGRES = [f"SELECT EXISTS (SELECT 1 FROM {table})" for table in TABLES]


def add_all_postgres(conn) -> None:
    """Add every row of ``actions`` (all of them this transaction's, the
    table locked against other writers) to the summaries."""
    conn.execute(_ALL_TO_DELTA_POSTGRES)
    for holds_rows, upsert, insert in zip(_HOLDS_ROWS_POSTGRES, APPLY_POSTGRES, _INSERT_NEW_POSTGRES):
        conn.execute(upsert if conn.execute(holds_rows).fetchone()[0] else insert)
