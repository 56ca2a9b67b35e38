"""Copying actions between stores: ``copy_actions(source, dest)``.

Any two stores, either engine on either side (a SQLite file to PostgreSQL
when a team outgrows it, PostgreSQL to a file for local work). Rows keep
their fingerprints, so the destination's unique key dedupes them exactly as
ingest does: running a copy again copies nothing twice. Rows are read in
ingestion order (by id) and written in that order, so the destination's ids,
and so the order of actions at one instant, follow the source's.

The source is streamed (a server-side cursor on PostgreSQL, a plain cursor
on SQLite) and written ``ROWS_PER_WRITE`` rows at a time: memory stays flat
however large the store. By default the whole copy is one transaction: a
killed copy leaves the destination as it was, and a copy into an empty store
gets each engine's bulk load (indexes built once, at the end).
``batch_size`` commits every N rows instead, for copies too large to redo.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import OhlogError
from .schema import COLUMNS
from .store import Store

ROWS_PER_WRITE = 5000
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM actions ORDER BY id"


@dataclass
class CopyCounts:
    copied: int = 0
    duplicates: int = 0

    @property
    def actions(self) -> int:
        return self.copied + self.duplicates


class CopyFailed(OhlogError):
    """A copy stopped; ``counts`` says what was committed before (with batch_size)."""

    def __init__(self, message: str, counts: CopyCounts):
        super().__init__(message)
        self.counts = counts


def count_actions(store: Store) -> int:
    """How many actions ``store`` holds (for progress)."""
    return store.execute("SELECT count(*) FROM actions").fetchone()[0]


def source_rows(store: Store):
    """Every row of ``store`` in ingestion order, schema.COLUMNS order, streamed."""
    if store.engine == "postgresql":
        from .store.postgres import stream

        return stream(store, _SELECT, ())
    return _sqlite_rows(store)


def _sqlite_rows(store: Store):
    import sqlite3

    try:
        cursor = store.execute(_SELECT)
        while rows := cursor.fetchmany(1000):
            yield from rows
    except sqlite3.Error as ex:
        raise OhlogError(f"cannot read {store.name}: {ex}") from None


def copy_actions(source: Store, dest: Store, *, batch_size: int | None = None,
                 progress: Callable[[int], Any] | None = None) -> CopyCounts:
    """Copy every action of ``source`` into ``dest``; return how many were new there.

    One transaction, or one every ``batch_size`` rows. ``progress(rows_done)``
    is called after each write. On any error the open transaction is rolled
    back and CopyFailed says what earlier batches committed.
    """
    counts = CopyCounts()
    pending = CopyCounts()
    writer = dest.writer(f"copy to {dest.name}")
    rows: list = []
    in_batch = 0
    writer.begin()
    try:
        for row in source_rows(source):
            rows.append(row)
            in_batch += 1
            if len(rows) >= ROWS_PER_WRITE or (batch_size and in_batch >= batch_size):
                _write(writer, rows, pending)
                rows = []
                if progress is not None:
                    progress(counts.actions + pending.actions)
            if batch_size and in_batch >= batch_size:
                writer.commit()
                counts.copied += pending.copied
                counts.duplicates += pending.duplicates
                pending, in_batch = CopyCounts(), 0
                writer.begin()
        _write(writer, rows, pending)
        writer.commit()
    except OhlogError as ex:
        writer.rollback()
        raise CopyFailed(str(ex), counts) from None
    except BaseException:
        writer.rollback()
        raise
    counts.copied += pending.copied
    counts.duplicates += pending.duplicates
    if progress is not None:
        progress(counts.actions)
    return counts


def _write(writer, rows, pending: CopyCounts) -> None:
    inserted = writer.write(rows)
    pending.copied += inserted
    pending.duplicates += len(rows) - inserted
