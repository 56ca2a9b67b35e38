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

SQLite: every writer holds the write lock (BEGIN IMMEDIATE) and rowids rise
within a transaction, so ``since(conn)`` at its start and ``add(conn, id)``
before its COMMIT add exactly the rows it inserted (dedupe already applied:
only inserted rows exist). A delete subtracts the rows it is about to remove
(``subtract``). Either way the summaries change in the actions' transaction:
a rollback or a kill leaves both as they were.

PostgreSQL: concurrent writers interleave ids, so ``add_postgres`` takes
the rows above the id seen at the start that this transaction itself wrote
(``xmin``, its transaction id): the id index bounds the scan to the rows
inserted meanwhile, and only its own count. Each summary is updated in key
order, so two writers lock shared rows in the same order (no deadlock).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

SLOT_US = 15 * 60 * 1_000_000
HOUR_US = 3600 * 1_000_000
# Integer division truncates toward zero: shift (by 720006 days, as
# analytics.buckets does) so that it floors for instants before 1970 too
_SHIFT_US = 720006 * 86400 * 1_000_000
SLOT_SQL = f"((utc_us + {_SHIFT_US}) / {SLOT_US} - {_SHIFT_US // SLOT_US})"
HOUR_SQL = f"((utc_us + {_SHIFT_US}) / {HOUR_US} - {_SHIFT_US // HOUR_US})"

# table: (key columns, the key's SQL over actions, its positions in the SELECT)
TABLES = {
    "summary_slots": ("slot, type_key, type", f"{SLOT_SQL}, type_key, type", "1, 2, 3"),
    "summary_user_hours": ("hour, type_key, user_id", f"{HOUR_SQL}, type_key, user_id", "1, 2, 3"),
    "summary_user_types": ("type_key, type, user_id", "type_key, type, user_id", "1, 2, 3"),
    "summary_sessions": ("user_id, session_id", "user_id, session_id", "1, 2"),
}


def _statement(table: str, rows: str) -> str:
    """Add ``? * count(*)`` of the actions ``rows`` selects to ``table``, by its key.

    Grouped in key order, so the summary's B-tree is written in order."""
    key, expr, at = TABLES[table]
    return (f"INSERT INTO {table} ({key}, actions) SELECT {expr}, ? * count(*) FROM actions"
            f" WHERE {rows} GROUP BY {at} ORDER BY {at}"
            f" ON CONFLICT ({key}) DO UPDATE SET actions = {table}.actions + excluded.actions")


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
_DELTA_SUBTRACT = _DELTA.format("id IN (SELECT value FROM json_each(?))")
_APPLY = {table: (f"INSERT INTO {table} ({key}, actions) SELECT {_FROM_SLOT[table]}, sum(n)"
                  f" FROM temp.ohlog_delta WHERE true GROUP BY {at} ORDER BY {at}"
                  f" ON CONFLICT ({key}) DO UPDATE SET actions = {table}.actions + excluded.actions")
          for table, (key, _, at) in TABLES.items()}
_DROP_EMPTY = {table: f"DELETE FROM {table} WHERE actions = 0" for table in TABLES}


def since(conn) -> int:
    """The largest id now (call inside the writer's transaction, before inserting; either engine)."""
    return conn.execute("SELECT coalesce(max(id), 0) FROM actions").fetchone()[0]


def _apply(conn: sqlite3.Connection, delta: str, params: tuple, drop_empty: bool) -> None:
    conn.execute(_DELTA_TABLE)
    conn.execute("DELETE FROM temp.ohlog_delta")
    conn.execute(delta, params)
    for table, sql in _APPLY.items():
        conn.execute(sql)
        if drop_empty:
            conn.execute(_DROP_EMPTY[table])
    conn.execute("DELETE FROM temp.ohlog_delta")


def add(conn: sqlite3.Connection, after_id: int) -> None:
    """Count the actions inserted since ``since`` returned ``after_id`` into the summaries."""
    _apply(conn, _DELTA_ADD, (1, after_id), False)


def subtract(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    """Take the actions ``ids`` (about to be deleted) out of the summaries."""
    if not ids:
        return
    import orjson

    _apply(conn, _DELTA_SUBTRACT, (-1, orjson.dumps(list(ids)).decode()), True)


# The transaction's own rows: xmin is its 32-bit transaction id
_OWN = "id > %s AND xmin::text = mod(pg_current_xact_id()::text::bigint, 4294967296)::text"
ADD_POSTGRES = {table: _statement(table, _OWN).replace("?", "%s") for table in TABLES}
_SUBTRACT_POSTGRES = {table: _statement(table, "id = ANY(%s)").replace("?", "%s") for table in TABLES}


def add_postgres(conn, after_id: int) -> None:
    """PostgreSQL's ``add``: count this transaction's actions above ``after_id``."""
    for sql in ADD_POSTGRES.values():
        conn.execute(sql, (1, after_id))


def subtract_postgres(conn, ids: Sequence[int]) -> None:
    """PostgreSQL's ``subtract``, inside the delete's transaction."""
    if not ids:
        return
    for table, sql in _SUBTRACT_POSTGRES.items():
        conn.execute(sql, (-1, list(ids)))
        conn.execute(_DROP_EMPTY[table])
