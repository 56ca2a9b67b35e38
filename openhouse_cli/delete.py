"""Deleting actions on request (a user's right to erasure): exactly those the filters match.

``delete_actions(store, users=[...])`` removes the actions that
``query_actions`` with the same filters returns, in one transaction, and
returns how many went. The ids are chosen inside that transaction, by
query.py's own query (so the rules are the same as ``ohlog query``'s, and
PostgreSQL's rows whose properties hold NUL are decided as there).

SQLite takes the write lock first (BEGIN IMMEDIATE), as ingest's writer
does, and waits for other writers through the busy timeout; PostgreSQL
deletes by id under its row locks, beside concurrent inserts. An action
deleted and then sent again is stored again: it is new to the store.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from . import rollups, spans
from .errors import OhlogError
from .query import _execute, count_actions
from .schema import DELETES
from .store import as_store

# The filters that narrow what is deleted; at least one is required
NARROWING = ("users", "sessions", "types", "start", "end", "where")
_BATCH = 10_000


class NoFilter(OhlogError, ValueError):
    """A delete without a filter: it would remove every action."""


def check_narrowed(filters: dict) -> None:
    """NoFilter unless ``filters`` hold at least one condition."""
    if not any(filters.get(name) not in (None, (), [], "") for name in NARROWING):
        raise NoFilter("a delete needs at least one filter (--user, --session, --type, "
                       "a time, --where): it would remove every action")


def count_matching(store: Any, **filters: Any) -> int:
    """How many actions ``delete_actions`` would remove now."""
    check_narrowed(filters)
    return count_actions(as_store(store), **filters)


def delete_actions(store: Any, **filters: Any) -> int:
    """Remove the actions the filters match, in one transaction; return how many.

    ``filters`` are query.query_actions' (``limit`` and ``order`` are ignored);
    at least one narrowing filter is required (NoFilter otherwise).
    """
    check_narrowed(filters)
    store = as_store(store)
    filters = {**filters, "limit": None, "order": None}
    if store.engine == "postgresql":
        return _delete_postgres(store, filters)
    return _delete_sqlite(store, filters)


def _delete_sqlite(store, filters):
    conn = store.conn
    try:
        conn.execute("BEGIN IMMEDIATE")  # the write lock first: the ids stay current
        try:
            rollups.own_writes(conn)
            ids = [row[0] for row in _execute(store, "id", filters)]
            rollups.subtract(conn, ids)  # in this transaction: a failure undoes both
            touched = spans.sessions_of(conn, ids)
            deleted = conn.executemany("DELETE FROM actions WHERE id = ?", [(i,) for i in ids]).rowcount
            spans.rebuild(conn, touched)
            if ids:  # for followers: the ids above this are taken again (follow.py)
                conn.execute(f"INSERT INTO {DELETES} (top) SELECT coalesce(max(id), 0) FROM actions")
            rollups.own_writes_done(conn)
            conn.execute("COMMIT")
            return max(deleted, 0)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as ex:
        raise OhlogError(f"delete failed: {ex} (nothing was deleted)") from None


def _delete_postgres(store, filters):
    import psycopg

    from .store.postgres import prepare_session

    conn = store.conn
    try:
        prepare_session(conn)
        conn.execute("BEGIN")
        try:
            ids = [row[0] for row in _execute(store, "id, properties", filters)]
            deleted = 0
            for start in range(0, len(ids), _BATCH):
                # Each DELETE subtracts the rows it removed (rollups.DELETE_POSTGRES)
                deleted += conn.execute(rollups.DELETE_POSTGRES,
                                        [ids[start:start + _BATCH]]).fetchone()[0]
            rollups.apply_postgres(conn, drop_empty=True)
            conn.execute("COMMIT")
            return deleted
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except psycopg.Error as ex:
        raise OhlogError(f"delete failed: {ex} (nothing was deleted)") from None


def vacuum(store: Any) -> None:
    """Give the space of deleted actions back: VACUUM on either engine."""
    store = as_store(store)
    try:
        store.execute("VACUUM")
    except Exception as ex:  # sqlite3.Error or psycopg.Error: the engines' own
        raise OhlogError(f"VACUUM failed: {ex}") from None
