#!/usr/bin/env python3
"""The minimal reference loader: the floor that ``ohlog ingest`` is measured against.

    python benchmarks/reference_loader.py FILE.ndjson DB

Reads NDJSON session documents (one a line) and loads every action into the
``actions`` table of DB, with the same columns as ohlog's schema
(openhouse_cli/migrations.py): orjson per line, ``datetime.fromisoformat``
per action, properties re-serialised with orjson, fingerprint 0. No
validation, no dedupe, no error handling.

The table is created without indexes, filled with one ``executemany`` fed by
a generator (memory stays flat) in one transaction, then the same indexes as
ohlog's are built by sort, and the transaction commits. The dedupe index is
a plain (non-unique) index here, since every fingerprint is 0. Pragmas as
ohlog's db.py: journal_mode=WAL, synchronous=NORMAL.
"""

import sqlite3
import sys
from datetime import datetime

import orjson

# As openhouse_cli/migrations.py (m001_actions), copied so that this
# reference does not move when the package changes.
CREATE_TABLE = """
CREATE TABLE actions (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    time TEXT NOT NULL,
    utc_us INTEGER NOT NULL,
    local_us INTEGER NOT NULL,
    offset_s INTEGER,
    type TEXT NOT NULL COLLATE NOCASE,
    properties TEXT NOT NULL,
    fingerprint INTEGER NOT NULL
)
"""
INDEXES = [
    "CREATE INDEX actions_dedupe ON actions (utc_us, fingerprint)",  # UNIQUE in ohlog
    "CREATE INDEX actions_user_type_time ON actions (user_id, type, utc_us)",
    "CREATE INDEX actions_type_time ON actions (type, utc_us)",
    "CREATE INDEX actions_session_time ON actions (session_id, utc_us)",
]
COLUMNS = ("user_id", "session_id", "time", "utc_us", "local_us", "offset_s", "type",
           "properties", "fingerprint")
INSERT = f"INSERT INTO actions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"

_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()
_US = 1_000_000


def rows(path):
    """Yield one tuple of COLUMNS values per action in the NDJSON file at ``path``."""
    fromisoformat = datetime.fromisoformat
    loads = orjson.loads
    dumps = orjson.dumps
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            doc = loads(line)
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
                yield (
                    user_id, session_id, text, utc_us, local_us, offset_s, action["type"],
                    dumps(action.get("properties", {})).decode(), 0,
                )


def load(path, db_path):
    """Load the NDJSON file at ``path`` into a new database at ``db_path``; return the row count."""
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
        sys.exit("usage: reference_loader.py FILE.ndjson DB")
    load(argv[0], argv[1])


if __name__ == "__main__":
    main()
