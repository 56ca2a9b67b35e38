"""The summaries (rollups.py) stay exact, and the analyses answer the same from them as from
the actions: through ingest (dedupe, repeats, --batch-size, concurrent writers, kill -9),
the server's POSTs, ohlog copy and ohlog delete, in zones where slots do and do not apply."""

import json
import random
import signal
import subprocess
import time
from collections import Counter

import pytest

from openhouse_cli import rollups, schema
from openhouse_cli.analytics import Clock, active, count, stats, summaries
from openhouse_cli.copy import copy_actions
from openhouse_cli.delete import delete_actions
from openhouse_cli.ingest import ingest_sessions
from openhouse_cli.store import open_store
from openhouse_cli.times import parse_time_spec, parse_zone, resolve_range

from .conftest import OHLOG
from .test_analytics_fixtures import engine, filters, make_store  # noqa: F401

ZONES = ["UTC", "America/Denver", "Asia/Kolkata", "Australia/Lord_Howe", "America/St_Johns"]
TYPES = ["CLICK", "click", "Click", "VIEW", "view", "NAVIGATE", "Straße", "STRASSE", "x\x00y"]
PROPS = {"click": {"locationX": 1, "locationY": 2}, "view": {"viewedId": "v"},
         "navigate": {"pageFrom": "a", "pageTo": "b"}}


RECENT = [1520758800, 1541322000, 1538956800, 1554559200]  # DST changes of 2018-2019
BEFORE_1970 = [-600]
AMSTERDAM_1937 = [-1041379200]  # its clock was +00:19:32 until July 1937


def documents(seed, n=60, anchors=RECENT):
    """Sessions around DST changes, on quarter and half hours, with nanoseconds and
    identical actions inside a document."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        t = rng.choice(anchors) + rng.randrange(-3 * 86400, 3 * 86400)
        actions = []
        for _ in range(rng.randrange(1, 8)):
            t += rng.choice([0, 1, 59, 900, 1800, 3599, 3600, 40000])
            kind = rng.choice(TYPES)
            frac = rng.choice(["", ".5", ".1234567", ".999999999"])
            offset = rng.choice(["Z", "+05:30", "-07:00", "+05:45"])
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + frac + "Z"
            if offset != "Z":  # the same instant on the writer's clock
                sign = 1 if offset[0] == "+" else -1
                shift = sign * (int(offset[1:3]) * 3600 + int(offset[4:]) * 60)
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t + shift)) + frac + offset
            action = {"time": stamp, "type": kind, "properties": PROPS.get(kind.casefold(), {})}
            actions.append(action)
            if rng.random() < 0.1:
                actions.append(dict(action))  # an identical action: a repeat, kept
        docs.append({"userId": f"u{rng.randrange(12)}", "sessionId": f"s{rng.randrange(20)}",
                     "actions": actions})
    return docs


def recomputed(store, table):
    key, expr, at = rollups.TABLES[table]
    return [tuple(r) for r in store.execute(
        f"SELECT {expr}, count(*) FROM actions GROUP BY {at} ORDER BY {at}").fetchall()]


def assert_summaries_exact(store):
    """Every summary holds exactly the counts of the actions stored (no zero rows),
    and on SQLite the active users by day exactly the users of the actions."""
    for table, (key, _, _) in rollups.TABLES.items():
        kept = [tuple(r) for r in store.execute(f"SELECT {key}, actions FROM {table} ORDER BY {key}")]
        assert kept == recomputed(store, table), table
    if store.engine == "sqlite":
        for table, (key, value) in schema.DAY_SUMMARIES.items():
            kept = [tuple(r) for r in store.execute(f"SELECT {key}, {value} FROM {table} ORDER BY {key}")]
            assert kept == recomputed_days(store, table), table
        assert_spans_exact(store)


DAY_NS = 86400 * 10**9


def recomputed_spans(store):
    """Each session's span worked out from its actions in the order sessions reads
    them (time, then id), with no help from spans.py: ``{key: (columns, longest pause)}``."""
    found = {}
    for user, session, time_, utc_us, ns, kind, props in store.execute(
            "SELECT user_id, session_id, time, utc_us, ns, type_key, properties FROM actions"
            " ORDER BY user_id, session_id, utc_us, ns, id"):
        at = utc_us * 10**9 // 10**6 + ns
        if (user, session) not in found:
            found[user, session] = {"first": (utc_us, ns, time_), "at": [], "actions": 0, "pages": 0,
                                    "clicks": 0, "first_page": None, "last_page": None}
        span = found[user, session]
        span["at"].append(at)
        span["last"] = (utc_us, ns, time_)
        span["actions"] += 1
        span["pages"] += kind in ("view", "navigate")
        span["clicks"] += kind == "click"
        if kind == "navigate":
            props = json.loads(props)
            page = props.get("pageFrom", props.get("pageTo"))
            if span["first_page"] is None and page is not None:
                span["first_page"] = (page, utc_us, ns)
            if "pageTo" in props:
                span["last_page"] = (props["pageTo"], utc_us, ns)
            span.setdefault("navigates", []).append(props)
    return {key: ((*s["first"][:2], *s["last"][:2], s["first"][2], s["last"][2], s["actions"], s["pages"],
                   s["clicks"], *(s["first_page"] or (None,) * 3), *(s["last_page"] or (None,) * 3)),
                  max([b - a for a, b in zip(s["at"], s["at"][1:])], default=0),
                  page_path(s.get("navigates", [])))
            for key, s in found.items()}


def page_path(navigates):
    """ohlog paths' path of one session, from its NAVIGATE properties in time order."""
    pages = []
    for props in navigates:
        for name in (["pageFrom"] if not pages else []) + ["pageTo"]:
            if isinstance(props, dict) and name in props:
                page = (props[name] if isinstance(props[name], str)
                        else json.dumps(props[name], ensure_ascii=False, separators=(",", ":")))
                if not pages or pages[-1] != page:
                    pages.append(page)
    return pages


def assert_spans_exact(store):
    """The sessions' spans (SQLite) hold exactly what their actions say; each
    kept pause bound is at least the longest pause (a day at most) and at most the span."""
    kept = {}
    for row in store.execute(f"SELECT {', '.join(schema.SPANS_COLUMNS)} FROM {schema.SPANS}"):
        row = list(row)
        for page in (12, 15, 18):
            if row[page] is not None:
                row[page] = json.loads(row[page])
        kept[row[0], row[1]] = (tuple(row[2:11] + row[12:18]), row[11], row[18])
    expected = recomputed_spans(store)
    assert {k: v[0] for k, v in kept.items()} == {k: v[0] for k, v in expected.items()}
    for key, (columns, bound, path) in kept.items():
        # A path is exact, or None where two writes each brought pages of the session
        assert path is None or path == expected[key][2], key
        longest = expected[key][1]
        span_ns = (columns[2] - columns[0]) * 1000 + columns[3] - columns[1]
        assert min(longest, DAY_NS) <= bound <= min(span_ns, DAY_NS), key


def recomputed_days(store, table):
    """The days tables worked out from the actions, with no summary's help: each
    (type key or '', user, UTC day) once, days found by Python's floor division."""
    days, actions = set(), Counter()
    for key, user, utc_us in store.execute("SELECT type_key, user_id, utc_us FROM actions"):
        day = utc_us // (86400 * 10**6)
        days |= {(key, user, day), ("", user, day)}
        actions.update([(day, key), (day, "")])
    if table == "summary_day_users":
        users = Counter((day, key) for key, _, day in days)
        return sorted((*k, n, actions[k]) for k, n in users.items())
    shifted = 720006  # the stored blocks count from day -720006
    bits = Counter()
    for key, user, day in days:
        block, k = divmod(day + shifted, schema.DAY_BITS)
        bits[(key, user, block)] |= 1 << k
    return sorted((*k, v) for k, v in bits.items())


def bounded(start=None, end=None, tz=None, **more):
    span = resolve_range(start and parse_time_spec(start), end and parse_time_spec(end), tz=tz)
    return filters(start=span.start, end=span.end, gaps=span.gaps, **more)


def cases(zones=ZONES):
    for zone in zones:
        clock = Clock.of(parse_zone(zone))
        yield zone, clock, filters()
        yield zone, clock, filters(types=("click", "Straße"))
        yield zone, clock, bounded("2018-03-10", "2018-03-12", tz=parse_zone(zone))
        yield zone, clock, bounded("2018-11-04", "2018-11-04", tz=parse_zone(zone), types=("VIEW",))
    clock = Clock.of(parse_zone("Asia/Kathmandu"))
    yield "slots", clock, bounded("2018-10-08T00:15:00Z", "2018-10-09T10:44:59.999999999Z")
    yield "off a slot", clock, bounded("2018-10-08T00:07:00Z", None)
    yield "local", Clock.of(None, local=True), filters()
    yield "user", Clock(), filters(users=("u1",))


def analyses(store, clock, given):
    found = {"stats": stats(store, given, clock)}
    found["stats"].pop("bytes")
    for dims in (["type"], ["user", "session"], ["type", "user"], ["type", "day"], ["hour"],
                 ["hour", "type"], ["user", "hour"], ["week", "type"], ["month"]):
        found[" ".join(dims)] = count(store, given, dims, clock)
    found["series"] = count(store, given, ["day"], clock, users=False)
    found["active"] = active(store, given, clock)
    found["active month"] = active(store, given, clock, by="month")
    return found


def assert_same_answers(store, zones=ZONES):
    for zone, clock, given in cases(zones):
        fast = analyses(store, clock, given)
        with summaries.bypassed():
            slow = analyses(store, clock, given)
        assert fast == slow, (zone, given)


def test_answers_from_summaries_equal_answers_from_the_actions(make_store):
    store = make_store(documents(1))
    ingest_sessions(store, documents(2))
    assert_summaries_exact(store)
    # PostgreSQL: one zone where slots fit and user hours do not (Denver: in the writers test)
    assert_same_answers(store, ZONES if store.engine == "sqlite" else ["Asia/Kolkata"])


def test_the_repeated_hour_is_two_hours_from_the_summaries_too(make_store):
    # 01:30 EDT, 01:30 EST twice, 01:45 EST (New York's fall-back), and Adelaide's 02:15 twice
    store = make_store([{"userId": "u", "sessionId": "s", "actions": [
        {"time": t, "type": "A", "properties": {}} for t in (
            "2018-11-04T05:30:00Z", "2018-11-04T06:30:00Z", "2018-11-04T06:30:00Z",
            "2018-11-04T06:45:00Z", "2018-03-31T15:45:00Z", "2018-03-31T16:45:00Z")]}])
    for zone, date, twice in (("America/New_York", "2018-11-04", [
            ("2018-11-04T01-04:00", 1), ("2018-11-04T01-05:00", 3)]),
            ("Australia/Adelaide", "2018-04-01", [("2018-04-01T02+10:30", 1),
                                                  ("2018-04-01T02+09:30", 1)])):
        clock = Clock.of(parse_zone(zone))
        given = bounded(date, date, tz=parse_zone(zone))
        for dims in (["hour"], ["hour", "type"]):
            utc_span = (1520000000 * 10**6, 1542000000 * 10**6)
            assert summaries.count_groups(store, given, dims, clock, utc_span, utc_span,
                                          False) is not None  # the summaries do answer
            fast = count(store, given, dims, clock)
            with summaries.bypassed():
                slow = count(store, given, dims, clock)
            assert fast == slow
            assert [(g["hour"], g["actions"]) for g in fast if len(g["hour"]) > 13] == twice


def test_old_offsets_off_the_quarter_hour_fall_back_to_the_actions(tmp_path):
    for name, anchors, zones in (("a", AMSTERDAM_1937, ["Europe/Amsterdam"]),
                                 ("b", BEFORE_1970, ["UTC", "America/Denver"])):
        store = open_store(str(tmp_path / f"{name}.db"))
        ingest_sessions(store, documents(5, 20, anchors))
        assert_summaries_exact(store)
        assert_same_answers(store, zones)
        store.close()


def test_the_summaries_answer_where_slots_fit_and_not_elsewhere(tmp_path):
    store = open_store(str(tmp_path / "a.db"))
    ingest_sessions(store, documents(3))
    span = (1520000000 * 10**6, 1542000000 * 10**6)  # 2018: no 1936 offsets
    for zone, hours in (("UTC", True), ("America/Denver", True), ("Asia/Kolkata", False),
                        ("Asia/Kathmandu", False), ("Australia/Lord_Howe", False)):
        clock = Clock.of(parse_zone(zone))
        wall = tuple(us + 0 for us in span)
        assert summaries.count_groups(store, filters(), ["day"], clock, span, wall, False) is not None
        with_users = summaries.count_groups(store, filters(), ["day"], clock, span, wall, True)
        assert (with_users is not None) == hours, zone
    amsterdam = Clock.of(parse_zone("Europe/Amsterdam"))
    old = (-1041379200 * 10**6, span[1])
    assert summaries.count_groups(store, filters(), ["day"], amsterdam, old, old, False) is None
    assert summaries.stats_parts(store, filters(), Clock(), span) is not None
    assert summaries.stats_parts(store, filters(users=("u1",)), Clock(), span) is None
    store.close()


def test_dedupe_batches_delete_and_copy_keep_the_summaries_exact(tmp_path):
    store = open_store(str(tmp_path / "a.db"))
    docs = documents(4)
    ingest_sessions(store, docs)
    before = {t: recomputed(store, t) for t in rollups.TABLES}
    ingest_sessions(store, docs)  # every action a duplicate: nothing changes
    assert {t: recomputed(store, t) for t in rollups.TABLES} == before
    assert_summaries_exact(store)
    assert delete_actions(store, users=["u1", "u2"]) > 0
    assert delete_actions(store, types=["click"], start=bounded("2018-10-07T00:00:00Z")["start"]) > 0
    assert_summaries_exact(store)
    assert_same_answers(store, ["America/Denver"])
    copied = open_store(str(tmp_path / "b.db"))
    copy_actions(store, copied, batch_size=7)
    copy_actions(store, copied)  # again: all duplicates
    assert_summaries_exact(copied)
    assert analyses(copied, Clock(), filters()) == analyses(store, Clock(), filters())
    store.close()
    copied.close()


def test_the_real_commands_batches_and_concurrent_ingests(tmp_path, run_ohlog):
    db = tmp_path / "a.db"
    paths = []
    for i in range(4):
        path = tmp_path / f"in{i}.ndjson"
        path.write_text("".join(json.dumps(d) + "\n" for d in documents(10 + i, 40)))
        paths.append(path)
    assert run_ohlog("ingest", "--db", db, "--batch-size", "3", paths[0]).returncode == 0
    writers = [subprocess.Popen([OHLOG, "ingest", "--db", str(db), str(p)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for p in paths]
    assert [w.wait(timeout=120) for w in writers] == [0] * 4  # paths[0] again: duplicates
    assert run_ohlog("delete", "--db", db, "--user", "u3", "--yes").returncode == 0
    store = open_store(str(db))
    assert_summaries_exact(store)
    for args, zone in ((["stats"], None), (["count", "--by", "type", "--by", "day"], "America/Denver"),
                       (["active", "--by", "week"], "Asia/Kolkata")):
        given = filters()
        clock = Clock.of(parse_zone(zone) if zone else None)
        out = run_ohlog(*args, "--db", db, "--json", *(["--tz", zone] if zone else []))
        assert out.returncode == 0, out.stderr
        shown = json.loads(out.stdout)
        with summaries.bypassed():
            if args[0] == "stats":
                expected = stats(store, given, clock)
                shown.pop("bytes"), expected.pop("bytes")
            elif args[0] == "count":
                expected = {"groups": count(store, given, ["type", "day"], clock)}
            else:
                expected = {"weeks": active(store, given, clock, by="week")}
        assert shown == json.loads(json.dumps(expected)), args
    store.close()


def test_a_killed_ingest_leaves_the_summaries_matching_the_table(tmp_path):
    db = tmp_path / "a.db"
    store = open_store(str(db))
    ingest_sessions(store, documents(20))
    store.close()
    path = tmp_path / "big.ndjson"
    with path.open("w") as out:
        for i in range(4000):
            out.write(json.dumps(documents(100 + i, 5)[0 if i % 2 else 1]) + "\n")
    for delay in (0.3, 0.8, 1.5):
        proc = subprocess.Popen([OHLOG, "ingest", "--db", str(db), "--batch-size", "500", str(path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        store = open_store(str(db))
        assert_summaries_exact(store)
        store.close()


def test_the_servers_posts_keep_the_summaries_exact(tmp_path):
    import asyncio

    from openhouse_cli.server.writer import Writer
    from openhouse_cli.validate import session_rows

    db = tmp_path / "a.db"
    open_store(str(db)).close()
    rows = [list(session_rows(doc, f"doc {i}")) for i, doc in enumerate(documents(30, 20))]

    async def post_all():
        writer = Writer(db)
        results = await asyncio.gather(*(writer.write(r) for r in rows + rows[:5]))
        writer.close()
        return results

    results = asyncio.run(post_all())
    assert sum(r[0] for r in results) > 0
    store = open_store(str(db))
    assert_summaries_exact(store)
    store.close()


def test_postgresql_writers_deletes_copies_and_posts_keep_the_summaries_exact(pg_db_url, tmp_path):
    import asyncio

    from openhouse_cli.server.postgres import PgWriter
    from openhouse_cli.validate import session_rows

    store = open_store(pg_db_url)
    ingest_sessions(store, documents(40))  # into the empty table: the bulk load
    ingest_sessions(store, documents(40))  # duplicates only
    ingest_sessions(store, documents(41))
    assert_summaries_exact(store)
    source = open_store(str(tmp_path / "a.db"))
    ingest_sessions(source, documents(42))
    copy_actions(source, store, batch_size=9)
    delete_actions(store, users=["u4"])
    rows = [list(session_rows(doc, f"doc {i}")) for i, doc in enumerate(documents(43, 20))]

    async def post_all():
        writer = PgWriter(pg_db_url)
        results = await asyncio.gather(*(writer.write(r) for r in rows + rows[:5]))
        writer.close()
        return results

    assert sum(r[0] for r in asyncio.run(post_all())) > 0
    assert_summaries_exact(store)
    assert_same_answers(store, ["America/Denver"])
    source.close()
    store.close()


def test_concurrent_group_commits_and_an_ingest_on_postgresql_keep_counts_and_summaries_exact(
        pg_db_url):
    """Three servers' writers (a connection each) and an ingest at once. The
    writers send overlapping actions (the same documents in different orders:
    a deadlock over actions is possible there, and retried) and share summary
    rows with the ingest, whose actions are their own (the same ones under
    other session ids): so a deadlock that fails the ingest (which does not
    retry) would be one over the summaries, which key order rules out. Every
    request gets its counts, each action is stored once, and each summary
    counts exactly what was stored."""
    import asyncio

    from openhouse_cli.server.postgres import PgWriter
    from openhouse_cli.validate import session_rows

    store = open_store(pg_db_url)
    ingest_sessions(store, documents(80, 30))  # summary rows to update
    docs = documents(81, 40) + documents(80, 10)  # and some actions already stored
    docs += [{**doc, "sessionId": doc["sessionId"] + "b"} for doc in docs[:20]]
    requests = [list(session_rows(doc, f"doc {i}")) for i, doc in enumerate(docs)]
    before = store.execute("SELECT count(*) FROM actions").fetchone()[0]
    orders = [requests, requests[::-1], requests[1::2] + requests[::2]]

    async def post_all():
        writers = [PgWriter(pg_db_url) for _ in orders]
        ingest = asyncio.to_thread(ingest_into, pg_db_url,
                                   [{**doc, "sessionId": doc["sessionId"] + "i"} for doc in docs])
        try:
            return await asyncio.gather(ingest, *(w.write(r) for w, order in zip(writers, orders)
                                                  for r in order))
        finally:
            for writer in writers:
                writer.close()

    ingested, *results = asyncio.run(post_all())
    assert all(isinstance(r, tuple) for r in results), results
    stored = store.execute("SELECT count(*) FROM actions").fetchone()[0]
    distinct = store.execute(
        "SELECT count(*) FROM (SELECT DISTINCT user_id, utc_us, ns, fingerprint FROM actions) k"
    ).fetchone()[0]
    assert stored == distinct > before
    # each request's counts: all of its rows, inserted or found (by this writer, another, the ingest)
    assert [sum(r) for r in results] == [len(r) for order in orders for r in order]
    assert sum(r[0] for r in results) + ingested.inserted == stored - before
    assert_summaries_exact(store)
    store.close()


def ingest_into(url, docs):
    store = open_store(url)
    try:
        return ingest_sessions(store, docs)
    finally:
        store.close()


def test_the_migration_builds_the_summaries_of_existing_actions_on_both_engines(db_target):
    store = open_store(db_target)
    ingest_sessions(store, documents(50))
    # back to the schema before the summaries, the actions kept
    name = "m004_summaries" if store.engine == "sqlite" else "m003_summaries"
    for table in schema.SUMMARIES:
        store.execute(f"DROP TABLE {table}")
    if store.engine == "sqlite":
        store.execute("DELETE FROM _sqlite_migrations WHERE name = ?", [name])
    else:
        store.execute("DELETE FROM ohlog_migrations WHERE name = ?", [name])
    store.close()
    store = open_store(db_target)  # migrated again on opening
    for table, key in schema.SUMMARIES.items():
        assert rollups.TABLES[table][0] == key
    assert_summaries_exact(store)
    assert analyses(store, Clock(), filters()) == analyses_bypassed(store, Clock(), filters())
    store.close()


def analyses_bypassed(store, clock, given):
    with summaries.bypassed():
        return analyses(store, clock, given)


def test_concurrent_ingests_into_postgresql_keep_the_summaries_exact(pg_db_url, tmp_path):
    paths = []
    for i in range(3):
        path = tmp_path / f"in{i}.ndjson"
        docs = documents(60 + i, 40) + documents(60, 10)  # the last ten in every input
        path.write_text("".join(json.dumps(d) + "\n" for d in docs))
        paths.append(path)
    open_store(pg_db_url).close()
    writers = [subprocess.Popen([OHLOG, "ingest", "--db", pg_db_url, "--batch-size", "4", str(p)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for p in paths]
    assert [w.wait(timeout=120) for w in writers] == [0] * 3
    store = open_store(pg_db_url)
    assert_summaries_exact(store)
    store.close()


def _rows(seed, n=15):
    from openhouse_cli.validate import session_rows

    return [row for i, doc in enumerate(documents(seed, n)) for row in session_rows(doc, f"doc {i}")]


def test_several_writes_in_one_transaction_and_rolled_back_writers_keep_the_summaries_exact(db_target):
    """One transaction of several writes (duplicates across them and of stored rows), and
    writers rolled back or cut off, both on the bulk path (an empty table) and the usual one:
    the summaries hold exactly the committed rows, and nothing of an abandoned one leaks
    into the next transaction on the same connection."""
    store = open_store(db_target)
    writer = store.writer("t")
    writer.begin()  # into the empty table: PostgreSQL's bulk load
    assert writer.write(_rows(70)) > 0
    writer.rollback()
    assert_summaries_exact(store)
    writer.begin()
    first = writer.write(_rows(71)) + writer.write(_rows(71)) + writer.write(_rows(72))
    writer.commit()
    assert first == _stored(store) == len(set(_rows(71) + _rows(72)))
    assert_summaries_exact(store)

    writer.begin()  # the table holds rows now: the usual path, a statement a write
    inserted = [writer.write(_rows(seed)) for seed in (72, 73, 73, 74, 71)]
    writer.commit()
    assert inserted[0] == inserted[2] == inserted[4] == 0 and inserted[1] > 0 and inserted[3] > 0
    assert_summaries_exact(store)
    writer.begin()
    assert writer.write(_rows(75)) > 0
    writer.rollback()
    writer.begin()
    last = writer.write(_rows(76))  # its delta must not carry the rolled back one's
    writer.commit()
    assert_summaries_exact(store)
    assert _stored(store) == first + inserted[1] + inserted[3] + last

    # A writer whose connection dies mid-transaction (a killed client): nothing of it stays
    cut = open_store(db_target)
    dying = cut.writer("cut")
    dying.begin()
    assert dying.write(_rows(77)) > 0
    cut.close()
    assert_summaries_exact(store)
    store.close()


def _stored(store):
    return store.execute("SELECT count(*) FROM actions").fetchone()[0]


def test_counts_made_by_the_validating_worker_keep_the_summaries_exact(tmp_path):
    """A large input's rows are counted for the summaries on the worker's core
    (rollups.tally) and added as such when a write inserts every row; a write
    that meets a duplicate is counted from the table. Both, across many writes
    and instants before 1970 (where slots are negative), match the actions."""
    from openhouse_cli.ingest import ingest_input

    docs = documents(11, n=1500, anchors=RECENT + BEFORE_1970 + AMSTERDAM_1937)
    for i, doc in enumerate(docs):
        doc["sessionId"] += f"-{i % 300}"  # many sessions, so many keys
    first, second = tmp_path / "first.ndjson", tmp_path / "second.ndjson"
    first.write_bytes(b"".join(json.dumps(d).encode() + b"\n" for d in docs[:1000]))
    # The second input repeats every third document of the first, scattered
    # among new ones: some writes insert all their rows, some only part
    mixed = [d for pair in zip(docs[1000:1500], docs[0:1500:3]) for d in pair]
    second.write_bytes(b"".join(json.dumps(d).encode() + b"\n" for d in mixed))
    store = open_store(str(tmp_path / "a.db"))
    with open(first, "rb") as fp:
        counts = ingest_input(store, fp, str(first))
    assert counts.sessions == 1000 and counts.inserted > 2000
    assert_summaries_exact(store)
    with open(second, "rb") as fp:
        counts = ingest_input(store, fp, str(second))
    assert counts.duplicates > 0 and counts.inserted > 0
    assert_summaries_exact(store)
    assert store.execute("SELECT min(utc_us) FROM actions").fetchone()[0] < -1_000_000_000 * 1_000_000
    store.close()


def test_the_tally_counts_as_the_summaries_sql_groups():
    """Python's floor division against the SQL's shifted division, at slot, hour
    and day edges on both sides of 1970, for every summary the tally feeds."""
    import sqlite3
    from collections import Counter

    conn = sqlite3.connect(":memory:")
    day = 86400 * 10**6
    rows = [("u" if utc_us % 2 else "v", "s", "t", utc_us, 0, utc_us, 0, "Click", "click", "{}", b"f")
            for utc_us in (-1, 0, 1, -rollups.SLOT_US, -rollups.SLOT_US - 1, rollups.SLOT_US - 1,
                           rollups.SLOT_US, -rollups.HOUR_US - 1, -day, -day - 1, day - 1,
                           -62135596800 * 10**6, 253402300799999999, -1)]

    def sql(expr, utc_us):
        return conn.execute(f"SELECT {expr.replace('utc_us', '?')}", (utc_us,) * expr.count("utc_us")).fetchone()[0]

    slots, user_hours, user_types, sessions, bits, day_users, _ = rollups.tally(rows)
    assert dict((t[:-1], t[-1]) for t in slots) == Counter((sql(rollups.SLOT_SQL, r[3]), r[8], r[7]) for r in rows)
    assert dict((t[:-1], t[-1]) for t in user_hours) == Counter(
        (sql(rollups.HOUR_SQL, r[3]), r[8], r[0]) for r in rows)
    assert dict((t[:-1], t[-1]) for t in user_types) == Counter((r[8], r[7], r[0]) for r in rows)
    assert dict((t[:-1], t[-1]) for t in sessions) == Counter((r[0], r[1]) for r in rows)
    shifted = f"(({rollups.SLOT_SQL}) + {rollups.SHIFT_DAYS * 96}) / 96"
    triples = {(r[8], r[0], sql(shifted, r[3])) for r in rows} | {("", r[0], sql(shifted, r[3])) for r in rows}
    expected_bits: Counter = Counter()
    for kind, user, day in triples:
        expected_bits[kind, user, day // schema.DAY_BITS] |= 1 << day % schema.DAY_BITS
    assert dict((t[:-1], t[-1]) for t in bits) == expected_bits
    actions = Counter((sql(shifted, r[3]) - rollups.SHIFT_DAYS, kind) for r in rows for kind in (r[8], ""))
    users = Counter((day - rollups.SHIFT_DAYS, kind) for kind, _, day in triples)
    assert {t[:2]: t[2:] for t in day_users} == {k: (users[k], actions[k]) for k in actions}


def _day_rows(spec):
    """Rows (schema.COLUMNS order) for ``(user, type, day, hour)`` tuples, days counted from 1970."""
    return [(user, "s-" + user, "t", day * 86400 * 10**6 + hour * 3600 * 10**6, 0, 0, 0, kind, kind.casefold(),
             "{}", f"{user}{kind}{day}{hour}".encode()) for user, kind, day, hour in spec]


def test_tallies_that_meet_days_already_counted_keep_the_days_exact(tmp_path):
    """The worker counts every user as new to each day of its chunk; the writer
    takes back the ones whose bit was set already: by an earlier write, by an
    earlier chunk of the same write, for one type or for any type, in the same
    block of days or on both sides of a block's edge, some bits of a block set
    and some not. Recounted from the actions after each write."""
    edge = 17546  # 2018-01-15: bit 0 of its block; 17545 the last bit of the one before
    writes = [
        [_day_rows([("a", "Click", edge, 1), ("a", "view", edge - 1, 2), ("b", "Click", edge + 3, 0)])],
        # again on the same days (and new ones beside them), by another type, other hours
        [_day_rows([("a", "CLICK", edge, 5), ("a", "Click", edge + 1, 5), ("b", "nav", edge + 3, 7)])],
        # two chunks in one write, meeting each other and the database
        [_day_rows([("c", "view", edge - 1, 1), ("a", "view", edge - 1, 9), ("b", "Click", edge - 62, 1)]),
         _day_rows([("c", "view", edge - 1, 3), ("c", "Click", edge - 1, 4), ("b", "Click", edge - 62, 2),
                    ("a", "view", edge + 61, 0), ("a", "view", edge - 3, 0)])],
        # before 1970, where the days are negative
        [_day_rows([("d", "Click", -1, 23), ("d", "Click", -1, 0), ("a", "view", -62, 0)])],
        [_day_rows([("d", "view", -1, 3), ("a", "view", -62, 5), ("a", "view", -63, 5)])],
    ]
    store = open_store(str(tmp_path / "a.db"))
    writer = store.writer("test")
    for chunks in writes:
        writer.begin()
        rows = [row for chunk in chunks for row in chunk]
        assert writer.write(rows, [rollups.tally(chunk) for chunk in chunks]) == len(rows)
        writer.commit()
        assert_summaries_exact(store)
    assert store.execute("SELECT users FROM summary_day_users WHERE day = ? AND type_key = ''",
                         (edge - 1,)).fetchone()[0] == 2  # a and c, counted once each
    store.close()


@pytest.mark.parametrize("held_max", [1, 3, 40_000])
def test_tallies_held_to_the_commit_keep_the_summaries_exact(tmp_path, monkeypatch, held_max):
    """The writer holds a user's types and blocks of days from the tallies
    until it commits (or holds rollups._HELD_MAX keys): in one transaction,
    the same keys come back write after write, a write that meets a duplicate
    is counted from the table meanwhile, and a rolled back transaction leaves
    nothing of what it held. Recounted from the actions after each commit."""
    monkeypatch.setattr(rollups, "_HELD_MAX", held_max)
    store = open_store(str(tmp_path / "a.db"))
    writer = store.writer("test")
    edge = 17546
    first = _day_rows([("a", "Click", edge, 1), ("a", "view", edge - 1, 2), ("b", "Click", edge + 3, 0)])
    writer.begin()
    assert writer.write(first, [rollups.tally(first)]) == 3
    writer.rollback()  # nothing held survives it
    assert_summaries_exact(store)
    writes = [
        first,
        _day_rows([("a", "CLICK", edge, 5), ("a", "Click", edge + 1, 5), ("b", "Click", edge + 3, 7)]),
        # a duplicate of the first write: this write is counted from the table
        first[:1] + _day_rows([("a", "Click", edge, 8), ("c", "view", edge - 1, 0), ("b", "nav", edge + 4, 0)]),
        _day_rows([("c", "view", edge - 1, 3), ("c", "Click", edge - 1, 4), ("a", "Click", edge, 9),
                   ("b", "nav", edge + 4, 1), ("a", "view", edge - 62, 0)]),
    ]
    writer.begin()
    for rows in writes:
        writer.write(rows, [rollups.tally(rows)])
    writer.commit()
    assert_summaries_exact(store)
    writer.begin()  # a second transaction meets the days the first wrote
    again = _day_rows([("c", "view", edge - 1, 5), ("d", "view", edge - 1, 0), ("a", "nav", edge, 0)])
    assert writer.write(again, [rollups.tally(again)]) == 3
    writer.commit()
    assert_summaries_exact(store)
    assert store.execute("SELECT users FROM summary_day_users WHERE day = ? AND type_key = ''",
                         (edge - 1,)).fetchone()[0] == 3  # a, c and d
    store.close()
