"""The schema's history, as named migrations applied in order on every open.

Each migration is frozen: it spells out its own SQL and carries its own
copy of any rule it applies, so that its meaning never changes when
today's code does. ``schema.py`` describes the result.
"""

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
    db.execute("CREATE UNIQUE INDEX actions_dedupe ON actions (utc_us, fingerprint)")
    db.execute("CREATE INDEX actions_user_type_time ON actions (user_id, type, utc_us)")
    db.execute("CREATE INDEX actions_type_time ON actions (type, utc_us)")
    db.execute("CREATE INDEX actions_session_time ON actions (session_id, utc_us)")


@migrations()
def m002_unambiguous_fingerprints(db):
    # This re-keyed rows whose ids held \x1f under the 64-bit fingerprint of
    # the time. m003 re-keys every row from its stored content, so what m002
    # did is overwritten there: it is kept, empty, so that databases that
    # recorded it and databases that did not end up alike.
    pass


@migrations()
def m003_blake2b_fingerprints_types_nanoseconds(db):
    # Three fixes in one rebuild of the table:
    # - fingerprints become BLAKE2b-128 (CRC-32 + Adler-32 could be forged,
    #   so one client could make another's action a "duplicate");
    # - type_key holds the type under Unicode case folding (SQLite's NOCASE
    #   folds ASCII only), for matching and grouping;
    # - ns holds the nanoseconds beyond the microsecond (0-999), so that order
    #   and bounds are exact to the digits written (.NET writes 7).
    import hashlib
    import re

    import orjson

    sub_us = re.compile(r"[.,]\d{6}(\d{1,3})")

    def nanoseconds(time):
        match = sub_us.search(time)
        return int(match[1].ljust(3, "0")) if match else 0

    def fingerprint(user, session, time, kind, properties):
        key = orjson.dumps([user, session]) + orjson.dumps([time, kind]) + properties.encode()
        return hashlib.blake2b(key, digest_size=16, person=b"ohlog-action").digest()

    def repeat(base, k):
        return hashlib.blake2b(b"%b%d" % (base, k), digest_size=16, person=b"ohlog-repeat").digest()

    db.execute(
        """
        CREATE TABLE actions_m003 (
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
    )
    # Identical actions are the repeats of one document (a resent copy was a
    # duplicate): the k-th copy by id gets the k-th repeat fingerprint, as
    # ingest gives it. They share an instant, so only one instant's
    # fingerprints are held at a time.
    cursor = db.conn.execute(
        "SELECT id, user_id, session_id, time, utc_us, local_us, offset_s, type, properties"
        " FROM actions ORDER BY utc_us, id"
    )
    instant, seen = None, {}
    while True:
        batch = cursor.fetchmany(5000)
        if not batch:
            break
        rows = []
        for id_, user, session, time, utc_us, local_us, offset_s, kind, properties in batch:
            if utc_us != instant:
                instant, seen = utc_us, {}
            base = fingerprint(user, session, time, kind, properties)
            copies = seen.get(base, 0)
            seen[base] = copies + 1
            rows.append((id_, user, session, time, utc_us, nanoseconds(time), local_us, offset_s,
                         kind, kind.casefold(), properties, repeat(base, copies) if copies else base))
        db.conn.executemany(
            "INSERT INTO actions_m003 (id, user_id, session_id, time, utc_us, ns, local_us,"
            " offset_s, type, type_key, properties, fingerprint)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.execute("DROP TABLE actions")
    db.execute("ALTER TABLE actions_m003 RENAME TO actions")
    db.execute("CREATE UNIQUE INDEX actions_dedupe ON actions (utc_us, ns, fingerprint)")
    db.execute("CREATE INDEX actions_user_type_time ON actions (user_id, type_key, utc_us)")
    db.execute("CREATE INDEX actions_type_time ON actions (type_key, utc_us)")
    db.execute("CREATE INDEX actions_session_time ON actions (session_id, utc_us)")


@migrations()
def m004_summaries(db):
    # Counts of the actions by 15-minute slot, hour, type and user, kept in
    # the writers' transactions from here on (rollups.py), built here from
    # the actions already stored. WITHOUT ROWID: each is its key's B-tree.
    shift = 720006 * 86400 * 1_000_000  # so that integer division floors
    slot = f"((utc_us + {shift}) / 900000000 - {shift // 900000000})"
    hour = f"((utc_us + {shift}) / 3600000000 - {shift // 3600000000})"
    for table, columns, key, expr in (
        ("summary_slots", "slot INTEGER NOT NULL, type_key TEXT NOT NULL, type TEXT NOT NULL",
         "slot, type_key, type", f"{slot}, type_key, type"),
        ("summary_user_hours", "hour INTEGER NOT NULL, type_key TEXT NOT NULL, user_id TEXT NOT NULL",
         "hour, type_key, user_id", f"{hour}, type_key, user_id"),
        ("summary_user_types", "type_key TEXT NOT NULL, type TEXT NOT NULL, user_id TEXT NOT NULL",
         "type_key, type, user_id", "type_key, type, user_id"),
        ("summary_sessions", "user_id TEXT NOT NULL, session_id TEXT NOT NULL",
         "user_id, session_id", "user_id, session_id"),
    ):
        db.execute(f"CREATE TABLE {table} ({columns}, actions INTEGER NOT NULL,"
                   f" PRIMARY KEY ({key})) WITHOUT ROWID")
        db.execute(f"INSERT INTO {table} ({key}, actions) SELECT {expr}, count(*) FROM actions"
                   f" WHERE true GROUP BY {', '.join(str(i + 1) for i in range(key.count(',') + 1))}")


@migrations()
def m005_user_day_bits(db):
    # Active users by UTC day, kept in the writers' transactions from here on
    # (rollups.py), built here from summary_user_hours:
    # - summary_user_day_bits: bit k of ``bits`` is set iff the user has an
    #   action of the type on day ``block * 62 + k`` (days shifted by 720006,
    #   so that they are non-negative and integer division floors; 62 bits
    #   keep the integer positive); type_key '' (never a type) is any type.
    # - summary_day_users: distinct users and actions a UTC day (unshifted)
    #   a type ('' any).
    shift = 720006 * 24  # hours; day = (hour + shift) / 24 - 720006
    db.execute("CREATE TABLE summary_user_day_bits (type_key TEXT NOT NULL, user_id TEXT NOT NULL,"
               " block INTEGER NOT NULL, bits INTEGER NOT NULL,"
               " PRIMARY KEY (type_key, user_id, block)) WITHOUT ROWID")
    db.execute("CREATE TABLE summary_day_users (day INTEGER NOT NULL, type_key TEXT NOT NULL,"
               " users INTEGER NOT NULL, actions INTEGER NOT NULL,"
               " PRIMARY KEY (day, type_key)) WITHOUT ROWID")
    db.execute("CREATE TEMP TABLE m005_days AS"
               f" SELECT type_key, user_id, (hour + {shift}) / 24 AS d, sum(actions) AS n"
               " FROM summary_user_hours GROUP BY 1, 2, 3"
               f" UNION ALL SELECT '', user_id, (hour + {shift}) / 24, sum(actions)"
               " FROM summary_user_hours GROUP BY 2, 3")
    db.execute("INSERT INTO summary_user_day_bits SELECT type_key, user_id, d / 62,"
               " sum(DISTINCT 1 << (d % 62)) FROM temp.m005_days GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
    db.execute("INSERT INTO summary_day_users SELECT d - 720006, type_key, count(*), sum(n)"
               " FROM temp.m005_days GROUP BY d, type_key ORDER BY d, type_key")
    db.execute("DROP TABLE temp.m005_days")


@migrations()
def m006_nanoseconds_index(db):
    # Actions whose time has digits beyond the microsecond are rare. A partial
    # index of them, empty when there are none, tells an analysis at once
    # whether there are any: finding out had meant reading every action's ns.
    db.execute("CREATE INDEX actions_ns ON actions (ns) WHERE ns != 0")


@migrations()
def m007_session_spans(db):
    # Each session's span, kept in the writers' transactions from here on
    # (spans.py), built here from the actions already stored, a session at a
    # time in the order ``sessions`` reads them (ties at one instant by id).
    # Pages (JSON text): the first NAVIGATE's pageFrom, or its pageTo, that
    # is not null (with its instant), and the last NAVIGATE's pageTo.
    # gap_ns: the longest pause between consecutive actions, capped at a day.
    # path: the page path (JSON list): the first NAVIGATE's pageFrom, then
    # each pageTo, consecutive repeats collapsed, pages not strings as JSON.
    import json

    import orjson

    day_ns = 86400 * 10**9
    db.execute("CREATE TABLE summary_session_spans (user_id TEXT NOT NULL, session_id TEXT NOT NULL,"
               " first_us INTEGER NOT NULL, first_ns INTEGER NOT NULL, last_us INTEGER NOT NULL,"
               " last_ns INTEGER NOT NULL, start_time TEXT NOT NULL, end_time TEXT NOT NULL,"
               " actions INTEGER NOT NULL, pages INTEGER NOT NULL, clicks INTEGER NOT NULL,"
               " gap_ns INTEGER NOT NULL, first_page TEXT, first_page_us INTEGER, first_page_ns INTEGER,"
               " last_page TEXT, last_page_us INTEGER, last_page_ns INTEGER, path TEXT,"
               " PRIMARY KEY (user_id, session_id)) WITHOUT ROWID")

    def as_json(value):
        try:
            return orjson.dumps(value).decode()
        except TypeError:  # an integer beyond 64 bits
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def visit(path, page):
        page = page if isinstance(page, str) else as_json(page)
        if not path or path[-1] != page:
            path.append(page)

    def flush(span):
        if span is not None:
            db.execute("INSERT INTO summary_session_spans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                       " ?, ?, ?, ?, ?, ?, ?)", (*span[:12], *span[12], *span[13], as_json(span[14])))

    span = None  # a list: the columns, with the two pages as triples and the path a list
    for user, session, time, utc_us, ns, kind, properties in db.execute(
            "SELECT user_id, session_id, time, utc_us, ns, type_key,"
            " CASE WHEN type_key = 'navigate' THEN properties END"
            " FROM actions ORDER BY user_id, session_id, utc_us, ns, id"):
        if span is None or span[0] != user or span[1] != session:
            flush(span)
            span = [user, session, utc_us, ns, utc_us, ns, time, time, 0, 0, 0, 0,
                    (None, None, None), (None, None, None), []]
        else:
            pause = (utc_us - span[4]) * 1000 + ns - span[5]
            span[11] = min(max(span[11], pause), day_ns)
            span[4], span[5], span[7] = utc_us, ns, time
        span[8] += 1
        if kind in ("view", "navigate"):
            span[9] += 1
        elif kind == "click":
            span[10] += 1
        if properties is not None:
            try:
                props = json.loads(properties)
            except (ValueError, RecursionError):  # not JSON (a library caller's raw row): no page
                props = None
            if isinstance(props, dict):
                if span[12][0] is None:
                    page = props.get("pageFrom", props.get("pageTo"))
                    if page is not None:
                        span[12] = (as_json(page), utc_us, ns)
                if "pageTo" in props:
                    span[13] = (as_json(props["pageTo"]), utc_us, ns)
                if not span[14] and "pageFrom" in props:
                    visit(span[14], props["pageFrom"])
                if "pageTo" in props:
                    visit(span[14], props["pageTo"])
    flush(span)


@migrations()
def m008_deletes(db):
    # A row for each delete from here on: the highest id left after it
    # (delete.py). SQLite gives new rows the ids above that again; a follower
    # that missed the delete learns from here where the new rows begin.
    db.execute("CREATE TABLE deletes (id INTEGER PRIMARY KEY, top INTEGER NOT NULL)")


@migrations()
def m009_outside_writes(db):
    # The summaries are kept by ohlog's own writers, in their transactions. A
    # change to the actions by another program (sqlite3, sqlite-utils,
    # Datasette) would leave them silently wrong: these triggers note one in
    # summaries_stale, and the analyses then read the actions themselves
    # until `ohlog rebuild-summaries`. ohlog's writers hold a row in
    # ohlog_writing for the length of each of their transactions (never
    # committed), which the triggers take as their own.
    db.execute("CREATE TABLE ohlog_writing (id INTEGER PRIMARY KEY)")
    db.execute("CREATE TABLE summaries_stale (change TEXT NOT NULL,"
               " at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')))")
    for change in ("INSERT", "UPDATE", "DELETE"):
        db.execute(f"CREATE TRIGGER actions_outside_{change.lower()} AFTER {change} ON actions"
                   " WHEN NOT EXISTS (SELECT 1 FROM ohlog_writing)"
                   " AND NOT EXISTS (SELECT 1 FROM summaries_stale)"
                   f" BEGIN INSERT INTO summaries_stale (change) VALUES ('{change.lower()}'); END")
