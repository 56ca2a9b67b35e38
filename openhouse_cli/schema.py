"""The schema as it stands after the last migration: the one place that names it.

Migrations (``migrations.py``) are frozen history and spell their own SQL;
everything else (ingest's writer, the server's writer, queries) takes the
table's column and index names from here. ``tests/test_schema.py`` checks
that a freshly migrated database matches this description exactly.
"""

TABLE = "actions"

# Every migration's name, in order (migrations.py registers them; a test
# checks the two agree). A database that has not recorded them all is
# migrated when opened, by any command.
MIGRATIONS = (
    "m001_actions",
    "m002_unambiguous_fingerprints",
    "m003_blake2b_fingerprints_types_nanoseconds",
    "m004_summaries",
    "m005_user_day_bits",
    "m006_nanoseconds_index",
    "m007_session_spans",
    "m008_deletes",
    "m009_outside_writes",
)
MIGRATIONS_TABLE = "_sqlite_migrations"  # sqlite-utils' record of them
# Migrations that a reader does without (the next writer applies them): what
# they add only speeds some reads up, and a database a reader cannot write,
# or one that a writer holds, stays readable without them
READER_OPTIONAL_MIGRATIONS = ("m006_nanoseconds_index", "m007_session_spans", "m008_deletes",
                              "m009_outside_writes")
# SQLite: after each ``ohlog delete``, the highest id left (m008): SQLite takes
# the ids above it again, and a follower must know they are new (follow.py)
DELETES = "deletes"
# SQLite (m009): a row in OWN_WRITES for the length of each of ohlog's write
# transactions; a row in STALE once another program has changed the actions
OWN_WRITES = "ohlog_writing"
STALE = "summaries_stale"

# The columns ingest writes, in the order validate.session_rows builds them.
COLUMNS = (
    "user_id", "session_id", "time", "utc_us", "ns", "local_us", "offset_s",
    "type", "type_key", "properties", "fingerprint",
)

# The unique key that makes a re-sent action a duplicate.
DEDUPE_INDEX = "actions_dedupe"
DEDUPE_COLUMNS = "utc_us, ns, fingerprint"

# Indexes that ingest may drop and rebuild around a bulk load into an empty
# table (rebuilding by sort is cheaper than growing them row by row).
SECONDARY_INDEXES = {
    "actions_user_type_time": "user_id, type_key, utc_us",
    "actions_type_time": "type_key, utc_us",
    "actions_session_time": "session_id, utc_us",
}

# The actions whose time has nanoseconds beyond the microsecond (rare): a
# partial index, empty when none has, kept through bulk loads
NS_INDEX = "actions_ns"
NS_INDEX_COLUMNS = "ns"
NS_INDEX_WHERE = "ns != 0"

INDEXES = (DEDUPE_INDEX, *SECONDARY_INDEXES, NS_INDEX)

# Counts kept beside the actions in the same transactions (rollups.py):
# table -> its key columns (each also has ``actions``, the count)
SUMMARIES = {
    "summary_slots": "slot, type_key, type",
    "summary_user_hours": "hour, type_key, user_id",
    "summary_user_types": "type_key, type, user_id",
    "summary_sessions": "user_id, session_id",
}

# Active users by UTC day (rollups.py), kept with the summaries on SQLite
# only: table -> (key columns, the value columns). Bit k of ``bits`` is set
# iff the user has an action of the type on (shifted) day block * DAY_BITS + k;
# type_key '' is any type.
DAY_SUMMARIES = {
    "summary_user_day_bits": ("type_key, user_id, block", "bits"),
    "summary_day_users": ("day, type_key", "users, actions"),
}
DAY_BITS = 62  # days a block: the integer stays positive in SQLite's signed 64 bits

# Each session's span (spans.py), kept on SQLite only, keyed by (user_id, session_id)
SPANS = "summary_session_spans"
SPANS_COLUMNS = (
    "user_id", "session_id", "first_us", "first_ns", "last_us", "last_ns", "start_time", "end_time",
    "actions", "pages", "clicks", "gap_ns", "first_page", "first_page_us", "first_page_ns",
    "last_page", "last_page_us", "last_page_ns", "path",
)

INSERT = "INSERT OR IGNORE INTO {} ({}) VALUES ({})".format(
    TABLE, ", ".join(COLUMNS), ", ".join("?" for _ in COLUMNS)
)


def type_key(kind: str) -> str:
    """The form a type is matched and grouped by: Unicode case folding."""
    return kind.casefold()
