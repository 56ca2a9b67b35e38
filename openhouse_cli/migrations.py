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


@migrations()
def m002_unambiguous_fingerprints(db):
    # Fingerprints used to join user, session, time and type with \x1f, so two
    # actions whose ids held \x1f could share one and the second was dropped
    # as a duplicate. Rows stored then with \x1f in an id or type get the
    # fingerprint ingest now gives them, so that sending them again is still a
    # duplicate: each session's rows go through session_rows as one document.
    import json

    from .validate import session_rows

    rows = db.execute(
        "SELECT id, user_id, session_id, time, type, properties FROM actions"
        " WHERE instr(user_id, char(31)) OR instr(session_id, char(31)) OR instr(type, char(31))"
        " ORDER BY id"
    ).fetchall()
    sessions = {}
    for id_, user, session, time, kind, properties in rows:
        sessions.setdefault((user, session), []).append(
            (id_, {"time": time, "type": kind, "properties": json.loads(properties)}))
    for (user, session), actions in sessions.items():
        doc = {"userId": user, "sessionId": session, "actions": [action for _, action in actions]}
        for (id_, _), row in zip(actions, session_rows(doc, "m002")):
            db.execute("UPDATE OR IGNORE actions SET fingerprint = ? WHERE id = ?", [row[-1], id_])


# Indexes that ingest may drop and rebuild around a bulk load into an empty
# table (rebuilding by sort is cheaper than growing them row by row).
SECONDARY_INDEXES = {
    "actions_user_type_time": "user_id, type, utc_us",
    "actions_type_time": "type, utc_us",
    "actions_session_time": "session_id, utc_us",
}
