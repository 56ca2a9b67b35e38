"""The database schema, as named migrations applied in order on every open."""

from sqlite_utils import Migrations

migrations = Migrations("ohlog")


@migrations()
def m001_actions(db):
    # One row an action. Times are kept three ways: the original text (output
    # reproduces the input exactly), the UTC instant and the wall clock as
    # written, both as integer microseconds so that bounds compare as integers.
    db.execute(
        """
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
    )
    # Dedupe: the same action always has the same instant and fingerprint.
    # Leading with the instant keeps inserts of time-ordered logs local in the
    # B-tree, and makes this index serve time-range queries and ordering too.
    db.execute("CREATE UNIQUE INDEX actions_dedupe ON actions (utc_us, fingerprint)")
    for name, columns in SECONDARY_INDEXES.items():
        db.execute(f"CREATE INDEX {name} ON actions ({columns})")


# Indexes that ingest may drop and rebuild around a bulk load into an empty
# table (rebuilding by sort is cheaper than growing them row by row).
SECONDARY_INDEXES = {
    "actions_user_type_time": "user_id, type, utc_us",
    "actions_type_time": "type, utc_us",
    "actions_session_time": "session_id, utc_us",
}
