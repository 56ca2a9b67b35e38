"""Reading the filtered actions for an analysis, on either engine.

Every analysis starts from ``query.build_query``'s SELECT with the user's
filters (so the filters follow exactly the rules of ``ohlog query``) and
wraps it in its own SQL, written to run unchanged on SQLite and PostgreSQL:
no ``%`` (psycopg's placeholder mark), integer division on non-negative
numbers only, CASE instead of boolean values.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import OhlogError
from ..query import build_query, filter_clauses
from ..schema import DEDUPE_COLUMNS, DEDUPE_INDEX, NS_INDEX, NS_INDEX_WHERE, SECONDARY_INDEXES, SPANS
from ..store import as_store


BATCH = 2000  # rows a fetch from SQLite

# SQLite's indexes and the columns each holds (every index holds the rowid, id)
_COVERING = {name: {*columns.split(", "), "id"}
             for name, columns in {**SECONDARY_INDEXES, DEDUPE_INDEX: DEDUPE_COLUMNS}.items()}


def filtered(store, columns: str, filters: dict) -> tuple[str, list]:
    """``(sql, params)``: ``columns`` of the actions the filters select, unordered.

    Without filters, SQLite reads the smallest thing that holds the columns:
    an index that covers them (a fraction of the table's bytes), else the
    table itself, in order (never an index and then each row from it, which
    it would choose for a GROUP BY)."""
    sql, params = build_query(columns, engine=store.engine, order=None, **_unpaged(filters))
    if " WHERE " not in sql and " INDEXED BY " in sql:
        wanted = {c.strip() for c in columns.split(",")}
        covering = [name for name, held in _COVERING.items() if wanted <= held]
        hint = (f" INDEXED BY {min(covering, key=lambda n: len(_COVERING[n]))}" if covering
                else " NOT INDEXED")
        sql = sql.split(" INDEXED BY ", 1)[0] + hint
    return sql, params


def stale(store) -> str | None:
    """What another program did to the actions since the summaries (and the
    spans) were last right, on SQLite ('insert', 'update', 'delete'), else
    None: then no analysis reads them (m009)."""
    store = as_store(store)
    if store.engine != "sqlite":
        return None
    from ..rollups import stale as stale_in

    return stale_in(store.conn)


def spans_where(store, filters: dict, also: tuple[str, ...] = ()) -> tuple[str, list] | None:
    """``(where, params)`` selecting the session spans (spans.py) of the
    filtered sessions, or None where the spans cannot answer: on PostgreSQL,
    in a database that predates them, with a filter that can cut a session
    (only --user and --session select whole sessions; ``also`` names the
    filters the caller allows besides), or where an older ohlog has written
    since (it keeps ``summary_sessions`` but not the spans: their sessions
    and actions then differ, and the actions answer instead)."""
    if store.engine != "sqlite" or any(value for name, value in filters.items()
                                       if name not in ("users", "sessions", "limit", "order", *also)):
        return None
    if stale(store):
        return None
    kept = one(store, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", [SPANS])
    if not kept or not kept[0]:
        return None
    totals = [one(store, f"SELECT count(*), coalesce(sum(actions), 0) FROM {table}")
              for table in ("summary_sessions", SPANS)]
    if totals[0] != totals[1]:
        return None
    clauses, params = conditions(store, {"users": filters.get("users"), "sessions": filters.get("sessions")})
    return clauses or "true", params


def conditions(store, filters: dict) -> tuple[str, list]:
    """The filters' conditions alone (``AND``-ed, or ``""``), to add to a query of one's own."""
    clauses, params, _, _ = filter_clauses(engine=store.engine, **_unpaged(filters))
    return " AND ".join(clauses), params


def _unpaged(filters: dict) -> dict:
    """The filters without an order and a limit, which analyses set themselves."""
    return {k: v for k, v in filters.items() if k not in ("limit", "order")}


def fetch(store, sql: str, params: Sequence[Any] = (), *, escaped: Sequence[int] = ()
          ) -> Iterator[tuple]:
    """The rows of ``sql`` (``?`` placeholders), streamed.

    ``escaped``: the positions of text columns that PostgreSQL stores with
    NUL escaped (user, session, type); they are restored here.
    """
    store = as_store(store)
    if store.engine == "postgresql":
        return _fetch_postgres(store, sql, params, escaped)
    return _fetch_sqlite(store.conn, sql, params)


def fetch_batches(store, sql: str, params: Sequence[Any] = (), *, escaped: Sequence[int] = ()
                  ) -> Iterator[Sequence[tuple]]:
    """``fetch``'s rows in lists, as SQLite hands them over: for a loop over
    millions of rows, a generator's step a row costs more than the work."""
    store = as_store(store)
    if store.engine == "postgresql":
        return _batched(_fetch_postgres(store, sql, params, escaped))
    return _batches_sqlite(_execute_sqlite(store.conn, sql, params))


def _batched(rows):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _execute_sqlite(conn, sql, params):
    if "ohlog_" in sql:  # query.py's exact property look-ups, done in Python
        from ..query import _python_compare, _python_type, _python_value

        conn.create_function("ohlog_type", 2, _python_type, deterministic=True)
        conn.create_function("ohlog_value", 2, _python_value, deterministic=True)
        conn.create_function("ohlog_compare", 4, _python_compare, deterministic=True)
    try:
        return conn.execute(sql, list(params))
    except sqlite3.Error as ex:
        raise OhlogError(f"Query failed: {ex}") from None


def _fetch_sqlite(conn, sql, params):
    return _stream_sqlite(_execute_sqlite(conn, sql, params))


def _stream_sqlite(cursor):
    for rows in _batches_sqlite(cursor):
        yield from rows


def _batches_sqlite(cursor):
    try:
        while rows := cursor.fetchmany(BATCH):
            yield rows
    except sqlite3.Error as ex:
        raise OhlogError(f"Query failed: {ex}") from None
    finally:
        cursor.close()


def _fetch_postgres(store, sql, params, escaped):
    import psycopg

    from ..store.postgres import unescape

    try:
        with store.conn.cursor() as cursor:
            for row in cursor.stream(sql.replace("?", "%s"), list(params)):
                if escaped:
                    row = list(row)
                    for i in escaped:
                        if isinstance(row[i], str):
                            row[i] = unescape(row[i])
                    row = tuple(row)
                yield row
    except psycopg.Error as ex:
        first = str(ex).strip().splitlines()
        raise OhlogError(f"Query failed: {first[0] if first else type(ex).__name__}") from None


def nanoseconds(store, filters: dict, most: int = 100_000) -> dict[int, int] | None:
    """``{id: ns}`` of the filtered actions whose time has nanoseconds beyond
    the microsecond (rare; the indexes hold microseconds only), read through
    the filters' own index; None if there are more than ``most`` (memory
    stays small). On SQLite, a database none of whose actions has any (their
    partial index is empty) answers at once."""
    if store.engine == "sqlite" and not any_nanoseconds(store):
        return {}
    sql, params = filtered(store, "id, ns", filters)
    found = dict(fetch(store, f"SELECT id, ns FROM ({sql}) a WHERE ns != 0 LIMIT ?",
                       [*params, most + 1]))
    return None if len(found) > most else found


def any_nanoseconds(store) -> bool:
    """Whether any action (SQLite) has nanoseconds, from their partial index,
    which holds only those: True for a database that predates the index
    (a reader does not add it; the next writer does)."""
    indexed = one(store, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?", [NS_INDEX])
    if not indexed or not indexed[0]:
        return True
    found = one(store, f"SELECT EXISTS (SELECT 1 FROM actions INDEXED BY {NS_INDEX} WHERE {NS_INDEX_WHERE})")
    return bool(found and found[0])


@contextlib.contextmanager
def snapshot(store) -> Iterator[None]:
    """Reads inside that all see one state of the database: on SQLite a read
    transaction (unless the caller holds one); PostgreSQL's reads are as the
    caller's connection makes them."""
    conn = store.conn if store.engine == "sqlite" else None
    if conn is None or conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def one(store, sql: str, params: Sequence[Any] = (), *, escaped: Sequence[int] = ()) -> tuple | None:
    """The first row of ``sql`` (all of it is read, so the cursor closes)."""
    rows = list(fetch(store, sql, params, escaped=escaped))
    return rows[0] if rows else None


def span(store, filters: dict) -> tuple[int, int] | None:
    """``(first, last)`` UTC microseconds of the filtered actions, or None if there are none.

    Each is the first row in time order, which the time index finds at once."""
    edges = []
    for order in ("asc", "desc"):
        sql, params = build_query("utc_us", engine=store.engine,
                                  **{**filters, "order": order, "limit": 1})
        row = one(store, sql, params)
        if row is None:
            return None
        edges.append(int(row[0]))
    return edges[0], edges[1]


def local_span(store, filters: dict) -> tuple[int, int] | None:
    """``(first, last)`` wall-clock microseconds (each action's own clock)."""
    sql, params = filtered(store, "local_us", filters)
    row = one(store, f"SELECT min(local_us), max(local_us) FROM ({sql}) a", params)
    return None if row is None or row[0] is None else (int(row[0]), int(row[1]))
