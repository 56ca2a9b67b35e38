"""The store: the one way every command opens the database, whatever the engine.

``open_store(target)`` takes a SQLite file path (or ``":memory:"``) or a
PostgreSQL connection URI (``postgresql://...``) and returns a store with
the same small interface on both engines:

* ``engine``: ``"sqlite"`` or ``"postgresql"``; ``name``: what messages show
  (a PostgreSQL password is masked);
* ``conn``: the engine's DB-API connection;
* ``execute(sql, params)``: SQL with ``?`` placeholders, as SQLite writes them;
* ``writer(name)``: an input's transaction (``begin``, ``write(rows)`` returning
  how many were new, ``commit``, ``rollback``);
* ``close()``.

The table's names come from ``schema.py``; each engine module keeps its own
frozen migrations and the SQL that only it speaks. Nothing above this
package writes engine-specific SQL, apart from ``query.py``'s two dialects
of the property conditions.
"""

from __future__ import annotations

import os
from typing import Any, Protocol, Sequence

from .urls import is_url, mask


class Writer(Protocol):
    def begin(self) -> None: ...
    def write(self, rows: Sequence[Sequence[Any]]) -> int: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


class Store(Protocol):
    engine: str
    name: str
    conn: Any

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def writer(self, name: str) -> Writer: ...
    def close(self) -> None: ...


def open_store(target: str | os.PathLike, *, create: bool = True, readonly: bool = False) -> Store:
    """Open the store ``target`` names, migrated; OhlogError (or NoDatabase) if it cannot be.

    ``readonly``: for commands that only read; nothing is created, and on
    SQLite the connection is read-only (migrated first if it must be).
    """
    if is_url(target):
        from .postgres import open_store as open_postgres

        return open_postgres(str(target), create=create, readonly=readonly)
    from .sqlite import open_store as open_sqlite

    return open_sqlite(target, create=create, readonly=readonly)


def as_store(db: Any) -> Store:
    """A store from what library callers pass: a store, or a SQLite connection
    or sqlite_utils.Database (tests, scripts)."""
    if hasattr(db, "writer") and hasattr(db, "engine"):
        return db
    from .sqlite import SQLiteStore

    return SQLiteStore(getattr(db, "conn", db))


__all__ = ["Store", "Writer", "as_store", "is_url", "mask", "open_store"]
