#!/usr/bin/env python3
"""The minimal reference loader: the floor that ``ohlog ingest`` is measured against.

    python benchmarks/reference_loader.py FILE DB

Reads NDJSON session documents (one a line), or one JSON array of them (a
file whose first byte is ``[``, parsed whole by orjson), and loads every
action into the ``actions`` table of DB, with the same columns as ohlog's
current schema (``schema.COLUMNS``, migration m003): orjson per line,
``datetime.fromisoformat`` per action, nanoseconds 0, ``type_key`` by
``casefold``, properties re-serialised with orjson (sorted keys), and a
constant 16-byte fingerprint. No validation, no dedupe, no error handling.

The table is created without indexes, filled with one ``executemany`` fed by
a generator (memory stays flat) in one transaction, then the same indexes as
ohlog's are built by sort, and the transaction commits. The dedupe index is
a plain (non-unique) index here, since every fingerprint is the same. Pragmas as
ohlog's db.py: journal_mode=WAL, synchronous=NORMAL.
"""

import sqlite3
import sys
from datetime import datetime

import orjson

# As openhouse_cli/migrations.py leaves it (m003), copied so that this
# reference does not move when the package changes.
CREATE_TABLE = """
CREATE TABLE actions (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    time TEXT NOT NULL,
    utc_us INTEGER NOT NULL,
    ns INTEGER NOT NULL DEFAULT 0,
    local_us INTEGER NOT NULL,
    offset_s INTEGER,
    type TEXT NOT NULL,
    type_key TEXT NOT NULL,
    properties TEXT NOT NULL,
    fingerprint BLOB NOT NULL
)
"""
INDEXES = [
    "CREATE INDEX actions_dedupe ON actions (utc_us, ns, fingerprint)",  # UNIQUE in ohlog
    "CREATE INDEX actions_user_type_time ON actions (user_id, type_key, utc_us)",
    "CREATE INDEX actions_type_time ON actions (type_key, utc_us)",
    "CREATE INDEX actions_session_time ON actions (session_id, utc_us)",
]
COLUMNS = ("user_id", "session_id", "time", "utc_us", "ns", "local_us", "offset_s",
           "type", "type_key", "properties", "fingerprint")
FINGERPRINT = bytes(16)  # ohlog's is a BLAKE2b-128 digest: the same size
INSERT = f"INSERT INTO actions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"

_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()
_US = 1_000_000


def documents(path):
    """The session documents in ``path``: NDJSON, or one JSON array read whole."""
    loads = orjson.loads
    with open(path, "rb") as f:
        if f.read(1) == b"[":
            f.seek(0)
            yield from loads(f.read())
            return
        f.seek(0)
        for line in f:
            if line.strip():
                yield loads(line)


def rows(path):
    """Yield one tuple of COLUMNS values per action in ``path`` (see documents)."""
    fromisoformat = datetime.fromisoformat
    dumps = orjson.dumps
    sort_keys = orjson.OPT_SORT_KEYS
    for doc in documents(path):
        user_id = doc["userId"]
        session_id = doc["sessionId"]
        for action in doc["actions"]:
            text = action["time"]
            dt = fromisoformat(text)
            local_us = (
                ((dt.toordinal() - _EPOCH_ORDINAL) * 86400
                 + dt.hour * 3600 + dt.minute * 60 + dt.second) * _US
                + dt.microsecond
            )
            offset = dt.utcoffset()
            if offset is None:
                offset_s = None
                utc_us = local_us
            else:
                offset_s = offset.days * 86400 + offset.seconds
                utc_us = local_us - offset_s * _US
            kind = action["type"]
            yield (
                user_id, session_id, text, utc_us, 0, local_us, offset_s, kind, kind.casefold(),
                dumps(action.get("properties", {}), option=sort_keys).decode(), FINGERPRINT,
            )


def load(path, db_path):
    """Load the file at ``path`` into a new database at ``db_path``; return the row count."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("BEGIN")
        conn.execute(CREATE_TABLE)
        count = conn.executemany(INSERT, rows(path)).rowcount
        for sql in INDEXES:
            conn.execute(sql)
        conn.execute("COMMIT")
        return count
    finally:
        conn.close()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        sys.exit("usage: reference_loader.py FILE DB")
    load(argv[0], argv[1])


if __name__ == "__main__":
    main()
