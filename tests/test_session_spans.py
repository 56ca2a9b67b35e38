"""The sessions' spans kept at ingest (spans.py) answer ``sessions`` exactly as
reading every action does: client sessions and splits of every length, over
data written in every way a writer can (whole chunks counted by the worker,
writes that meet duplicates, several writes a transaction, deletes), with
ties at one instant, nanoseconds, odd pages, overlapping and day-long spans."""

import importlib
import json
import random

import pytest

from openhouse_cli import rollups, schema
from openhouse_cli.analytics import paths
from openhouse_cli.analytics.sessions import stream_sessions
from openhouse_cli.delete import delete_actions
from openhouse_cli.ingest import ingest_input, ingest_sessions
from openhouse_cli.store import open_store
from openhouse_cli.times import Bound
from openhouse_cli.validate import session_rows

from .test_analytics_fixtures import filters
from .test_summaries import assert_spans_exact

# The module (the package's ``sessions`` is its function of that name)
sessions_module = importlib.import_module("openhouse_cli.analytics.sessions")
paths_module = importlib.import_module("openhouse_cli.analytics.paths")
spans_module = importlib.import_module("openhouse_cli.spans")
SECOND = 10**6  # microseconds
SPLITS = [None, 1, SECOND, 1799 * SECOND, 1800 * SECOND, 1801 * SECOND, 3 * 3600 * SECOND,
          86400 * SECOND - 1, 86400 * SECOND, 3 * 86400 * SECOND]
STEPS = [0, 0, 1, 999, SECOND, 1799 * SECOND, 1800 * SECOND, 1800 * SECOND + 1, 5 * 3600 * SECOND,
         86400 * SECOND - 1, 86400 * SECOND, 4 * 86400 * SECOND]
BASE = 1539900000 * SECOND  # 2018-10-18


def _stamp(us, fraction_ns, offset_minutes):
    """The instant ``us`` (+ nanoseconds) written on a clock ``offset_minutes`` from UTC."""
    import datetime

    local = datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=us + offset_minutes * 60 * SECOND)
    digits = f"{local.microsecond * 1000 + fraction_ns:09d}"
    if offset_minutes == 0:
        zone = "Z"
    else:
        sign = "+" if offset_minutes > 0 else "-"
        zone = f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"
    return local.strftime("%Y-%m-%dT%H:%M:%S") + "." + digits + zone


def documents(seed, n=80):
    """Session documents whose sessions pause for every length around the
    splits, repeat instants (written on other clocks), interleave in time
    with the same user's other sessions, and share ids between users."""
    rng = random.Random(seed)
    docs = []
    clocks = {}
    for _ in range(n):
        user = f"u{rng.randrange(6)}"
        # Mostly after the user's last session (sometimes inside it, or long before)
        at = clocks.get(user, BASE) + rng.choice([0, SECOND, 1800 * SECOND, 1799 * SECOND, 7200 * SECOND,
                                                  -3600 * SECOND, 86400 * SECOND])
        actions = []
        for _ in range(rng.randrange(1, 7)):
            at += rng.choice(STEPS) if rng.random() < 0.5 else rng.choice(STEPS[:6])
            fraction = rng.choice([0, 0, 1, 500, 999])
            kind = rng.choice(["VIEW", "click", "CLICK", "NAVIGATE", "Navigate", "SCROLL"])
            properties = {"VIEW": {"viewedId": "v"}, "CLICK": {"locationX": 1, "locationY": 2},
                          "NAVIGATE": {"pageFrom": rng.choice("abc"), "pageTo": rng.choice("bcd")}}.get(
                              kind.upper(), {})
            actions.append({"time": _stamp(at, fraction, rng.choice([0, 330, -420])), "type": kind,
                            "properties": properties})
        clocks[user] = max(clocks.get(user, BASE), at)
        docs.append({"userId": user, "sessionId": f"s{rng.randrange(25)}", "actions": actions})
    return docs


def answers(store, given, split_us, monkeypatch, from_spans):
    with monkeypatch.context() as patch:
        if not from_spans:
            patch.setattr(sessions_module, "_from_spans", lambda *args: None)
        return list(stream_sessions(store, given, split_us))


def path_answers(store, given, monkeypatch, from_spans, **options):
    with monkeypatch.context() as patch:
        if not from_spans:
            patch.setattr(paths_module, "_kept_paths", lambda *args: None)
        return paths(store, given, top=10**9, **options)


def assert_same_sessions(store, monkeypatch):
    """sessions and paths answer alike from the spans and from the actions."""
    users = sorted({u for (u,) in store.execute("SELECT user_id FROM actions")})
    ids = sorted({s for (s,) in store.execute("SELECT session_id FROM actions")})
    for given in (filters(), filters(users=users[:2]), filters(sessions=ids[:5]),
                  filters(users=users[1:3], sessions=ids[3:12]), filters(types=["navigate", "view"])):
        for split in SPLITS:
            expected = answers(store, given, split, monkeypatch, False)
            assert answers(store, given, split, monkeypatch, True) == expected, (given, split)
            with monkeypatch.context() as patch:  # the spans whatever their cuts, users read two at a time
                patch.setattr(sessions_module, "_HELD_USERS", 2)
                patch.setattr(sessions_module, "_CUT_SHARE", 2)
                assert answers(store, given, split, monkeypatch, True) == expected, (given, split)
        for start, steps in ((None, 5), (None, 1), ("b", 2), ("c", 50), ("zzz", 5)):
            expected = path_answers(store, given, monkeypatch, False, start=start, steps=steps)
            assert path_answers(store, given, monkeypatch, True, start=start, steps=steps) == expected
            with monkeypatch.context() as patch:  # the paths' texts counted a few at a time
                patch.setattr(paths_module, "_DISTINCT_TEXTS", 2)
                assert path_answers(store, given, monkeypatch, True, start=start, steps=steps) == expected


@pytest.mark.parametrize("seed", range(4))
def test_spans_answer_as_the_actions_do_through_ingest_duplicates_and_deletes(tmp_path, monkeypatch, seed):
    docs = documents(seed)
    store = open_store(str(tmp_path / "a.db"))
    first = tmp_path / "first.ndjson"
    first.write_bytes(b"".join(json.dumps(d).encode() + b"\n" for d in docs[:60]))
    with open(first, "rb") as fp:
        ingest_input(store, fp, "first")
    assert_spans_exact(store)
    assert_same_sessions(store, monkeypatch)
    # Again with new documents among repeated ones, in writes of a few sessions
    second = tmp_path / "second.ndjson"
    mixed = [d for pair in zip(docs[60:], docs[::3]) for d in pair]
    second.write_bytes(b"".join(json.dumps(d).encode() + b"\n" for d in mixed))
    with open(second, "rb") as fp:
        counts = ingest_input(store, fp, "second", batch_size=3)
    assert counts.duplicates > 0 and counts.inserted > 0
    assert_spans_exact(store)
    assert_same_sessions(store, monkeypatch)
    # Deleting actions from the middle, the ends and the whole of sessions (their spans
    # built again two sessions a query)
    monkeypatch.setattr(spans_module, "_REBUILD_BATCH", 2)
    times = [Bound(t, True) for (t,) in store.execute("SELECT utc_us FROM actions ORDER BY utc_us")]
    delete_actions(store, users=["u1"], start=times[len(times) // 3], end=times[len(times) // 2])
    delete_actions(store, users=["u2"])
    delete_actions(store, types=["navigate"], users=["u3", "u0"])
    assert_spans_exact(store)
    assert_same_sessions(store, monkeypatch)
    store.close()


def test_writes_of_hand_made_rows_in_any_order_and_any_chunks_keep_the_spans(tmp_path, monkeypatch):
    """Rows written straight to a writer: chunks counted by the worker's tally
    or read back after a duplicate, in one transaction or several, a session's
    actions arriving in any order and at one instant on several clocks, and
    NAVIGATE pages that are null, numbers or missing."""
    rng = random.Random(7)
    docs = documents(11, n=40)
    rows = []
    for number, doc in enumerate(docs, 1):
        rows.extend(session_rows(doc, f"doc {number}"))
    odd_pages = [{"pageFrom": None, "pageTo": "x"}, {"pageTo": None}, {"pageFrom": 5, "pageTo": [1]},
                 {"other": 1}, {"pageFrom": "é", "pageTo": None}, {"pageFrom": None}]
    for i, row in enumerate(rows):
        if row[schema.COLUMNS.index("type_key")] == "navigate" and i % 2:
            row = list(row)
            row[schema.COLUMNS.index("properties")] = json.dumps(odd_pages[i % len(odd_pages)]).encode()
            row[schema.COLUMNS.index("fingerprint")] = b"odd%d" % i
            rows[i] = tuple(row)
    rng.shuffle(rows)
    store = open_store(str(tmp_path / "a.db"))
    writer = store.writer("test")
    start = 0
    while start < len(rows):
        writer.begin()
        for _ in range(rng.randrange(1, 4)):
            size = rng.randrange(1, 30)
            chunk = rows[start:start + size]
            if rng.random() < 0.3 and start:  # with some rows written before: counted from the table
                chunk = chunk + rows[max(0, start - 5):start]
            tally = None if rng.random() < 0.2 else [rollups.tally(chunk)]
            writer.write(chunk, tally)
            start += size
        writer.commit()
        assert_spans_exact(store)
    assert_same_sessions(store, monkeypatch)
    store.close()


def test_spans_answer_without_reading_actions_and_only_the_cut_user_is_read(tmp_path, monkeypatch):
    """Sessions apart in time answer from the spans alone; a user one of whose
    client sessions holds a 40-minute pause is read from the actions, alone."""
    docs = [{"userId": "a", "sessionId": "1", "actions": [
                {"time": "2018-10-18T10:00:00Z", "type": "VIEW", "properties": {"viewedId": "v"}},
                {"time": "2018-10-18T10:10:00Z", "type": "SCROLL", "properties": {}}]},
            {"userId": "a", "sessionId": "2", "actions": [
                {"time": "2018-10-18T10:20:00Z", "type": "SCROLL", "properties": {}}]},
            {"userId": "b", "sessionId": "3", "actions": [
                {"time": "2018-10-18T10:00:00Z", "type": "SCROLL", "properties": {}},
                {"time": "2018-10-18T10:40:00Z", "type": "SCROLL", "properties": {}}]}]
    store = open_store(str(tmp_path / "a.db"))
    path = tmp_path / "in.ndjson"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    with open(path, "rb") as fp:
        ingest_input(store, fp, "in")
    read = []
    original = sessions_module._sessions
    monkeypatch.setattr(sessions_module, "_sessions",
                        lambda store, given, split: read.append(given["users"]) or original(store, given, split))
    monkeypatch.setattr(sessions_module, "_CUT_SHARE", 0.5)  # one span in three holds a cut
    found = list(stream_sessions(store, filters(), 1800 * SECOND))
    assert [(s["userId"], s["sessionId"], s["actions"]) for s in found] == [
        ("a", "1", 3), ("b", "3", 1), ("b", "3", 1)]
    assert read == [["b"]]
    read.clear()
    assert [s["actions"] for s in stream_sessions(store, filters(), None)] == [2, 1, 2]
    assert read == []
    # Where more spans than that share hold a cut, every action is read at once
    monkeypatch.setattr(sessions_module, "_CUT_SHARE", 0.3)
    assert list(stream_sessions(store, filters(), 1800 * SECOND)) == found
    assert read == [()]
    store.close()


def test_a_database_without_spans_is_read_from_its_actions_and_a_writer_adds_them(tmp_path, run_ohlog):
    """A database from before the spans: the migration that adds them is one a
    reader does without (sessions reads the actions); the next writer builds them."""
    db = tmp_path / "a.db"
    docs = documents(3, n=30)
    path = tmp_path / "in.ndjson"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    assert run_ohlog("ingest", "--db", str(db), str(path)).returncode == 0
    expected = run_ohlog("sessions", "--split", "30m", "--json", "--db", str(db)).stdout
    store = open_store(str(db))
    store.execute(f"DROP TABLE {schema.SPANS}")
    store.execute(f"DELETE FROM {schema.MIGRATIONS_TABLE} WHERE name = 'm007_session_spans'")
    store.conn.commit()
    store.close()
    assert run_ohlog("sessions", "--split", "30m", "--json", "--db", str(db)).stdout == expected
    store = open_store(str(db), create=False, readonly=True)
    assert not store.execute("SELECT count(*) FROM sqlite_master WHERE name = ?", (schema.SPANS,)).fetchone()[0]
    store.close()
    other = tmp_path / "other.ndjson"
    other.write_text(json.dumps({"userId": "z", "sessionId": "z", "actions": [
        {"time": "2018-10-18T10:00:00Z", "type": "SCROLL", "properties": {}}]}) + "\n")
    assert run_ohlog("ingest", "--db", str(db), str(other)).returncode == 0
    store = open_store(str(db))
    assert_spans_exact(store)
    store.close()


def _doc(user, session, *times, kind="SCROLL", properties=None):
    return {"userId": user, "sessionId": session,
            "actions": [{"time": t, "type": kind, "properties": properties or {}} for t in times]}


def test_cuts_at_the_edges_of_spans_and_inside_them(tmp_path, monkeypatch):
    """Worked out by hand, and equal to reading the actions: a pause of exactly
    the split between two client sessions cuts, one a nanosecond shorter
    joins; a chain of client sessions reaching a day cuts at the first action
    a day after its start, inside a client session; a later page that is null
    is the last page."""
    nav = {"pageFrom": "a", "pageTo": "x"}
    docs = [
        _doc("exact", "1", "2018-10-18T10:00:00Z", "2018-10-18T10:05:00Z"),
        _doc("exact", "2", "2018-10-18T10:35:00Z"),  # 30 minutes after: a new session
        _doc("exact", "3", "2018-10-18T11:04:59.999999999Z"),  # a nanosecond under: joins 2
        # every 2 h 10 min, a client session of 90 minutes (actions 45 minutes apart)
        *[_doc("day", f"d{k:02d}", *[_stamp(BASE + (130 * k + m) * 60 * SECOND, 0, 0) for m in (0, 45, 90)])
          for k in range(14)],
        # every 2 hours, a client session of an hour: a day after the first begins the 13th
        *[_doc("even", f"e{k:02d}", *[_stamp(BASE + (120 * k + m) * 60 * SECOND, 0, 0) for m in (0, 30, 60)])
          for k in range(14)],
        _doc("page", "p1", "2018-10-18T10:00:00Z", kind="NAVIGATE", properties=nav),
        _doc("page", "p2", "2018-10-18T10:05:00Z", kind="NAVIGATE", properties=nav),
    ]
    rows = []
    for number, doc in enumerate(docs, 1):
        rows.extend(session_rows(doc, f"doc {number}"))
    props = schema.COLUMNS.index("properties")
    rows[-1] = (*rows[-1][:props], b'{"pageFrom":"b","pageTo":null}', *rows[-1][props + 1:])
    store = open_store(str(tmp_path / "a.db"))
    writer = store.writer("test")
    writer.begin()
    writer.write(rows, [rollups.tally(rows)])
    writer.commit()
    assert_spans_exact(store)
    found, read = {}, []
    monkeypatch.setattr(sessions_module, "_CUT_SHARE", 2)  # the spans, however many hold cuts
    original = sessions_module._sessions
    for split in (1800 * SECOND, 3 * 3600 * SECOND):
        with monkeypatch.context() as patch:
            patch.setattr(sessions_module, "_sessions", lambda store, given, split_us:
                          read.append((split_us, *given["users"])) or original(store, given, split_us))
            found[split] = answers(store, filters(), split, monkeypatch, True)
        assert found[split] == answers(store, filters(), split, monkeypatch, False)
    # Only the users with a cut inside a client session had their actions read, together
    assert read == [(1800 * SECOND, "day", "even"), (3 * 3600 * SECOND, "day")]
    even = [(s["sessionId"], s["actions"]) for s in found[3 * 3600 * SECOND] if s["userId"] == "even"]
    assert even == [("e00", 36), ("e12", 6)]
    exact = [(s["sessionId"], s["actions"]) for s in found[1800 * SECOND] if s["userId"] == "exact"]
    assert exact == [("1", 2), ("2", 2)]
    # The day from the first action ends inside the 12th client session (23 h 50 min
    # to 25 h 20 min after it): the cut is at that session's second action
    day = [(s["sessionId"], s["actions"], s["start"]) for s in found[3 * 3600 * SECOND] if s["userId"] == "day"]
    assert [d[:2] for d in day] == [("d00", 3 * 11 + 1), ("d11", 2 + 3 * 2)]
    assert day[1][2] == _stamp(BASE + (130 * 11 + 45) * 60 * SECOND, 0, 0)
    pages = [(s["firstPage"], s["lastPage"]) for s in found[1800 * SECOND] if s["userId"] == "page"]
    assert pages == [("a", None)]
    store.close()


def test_paths_of_sessions_written_twice_are_read_from_their_actions(tmp_path, monkeypatch):
    """A session two writes each brought pages of keeps no path; paths reads
    its NAVIGATE actions (those of its user only: another user has a session
    of the same id), and the rest from the spans."""
    def nav(user, session, minute, *pages):
        return {"userId": user, "sessionId": session, "actions": [
            {"time": f"2018-10-18T10:{minute + i:02d}:00Z", "type": "NAVIGATE",
             "properties": {"pageFrom": a, "pageTo": b}} for i, (a, b) in enumerate(zip(pages, pages[1:]))]}
    store = open_store(str(tmp_path / "a.db"))
    first = [nav(f"u{i}", "s", 0, "home", "list", "item") for i in range(25)]
    ingest_sessions(store, first + [nav("x", "s", 0, "home", "cart")])
    ingest_sessions(store, [nav("u3", "s", 30, "item", "cart", "pay"), nav("u4", "s", 40, "pay", "done")])
    unknown = store.execute(f"SELECT user_id FROM {schema.SPANS} WHERE path IS NULL ORDER BY 1").fetchall()
    assert unknown == [("u3",), ("u4",)]
    found = path_answers(store, filters(), monkeypatch, True, steps=10)
    assert found == path_answers(store, filters(), monkeypatch, False, steps=10)
    assert found == [{"path": ["home", "list", "item"], "sessions": 23},
                     {"path": ["home", "cart"], "sessions": 1},
                     {"path": ["home", "list", "item", "cart", "pay"], "sessions": 1},
                     # a later NAVIGATE's pageFrom is not on the path: only the first one's
                     {"path": ["home", "list", "item", "done"], "sessions": 1}]
    store.close()


def test_properties_that_are_not_json_give_no_page_and_lose_none_after_them(tmp_path, monkeypatch):
    """A library caller's raw rows may hold properties that are not JSON: such
    a NAVIGATE gives no page (as one whose properties are not an object), and
    the pages after it are kept; writing them and building the spans of an
    older database with them both work."""
    rows = session_rows(_doc("u", "s", "2018-10-18T10:00:00Z", "2018-10-18T10:01:00Z", "2018-10-18T10:02:00Z",
                             kind="NAVIGATE", properties={"pageFrom": "a", "pageTo": "b"}), "doc")
    props = schema.COLUMNS.index("properties")
    bad = [b'{"pageFrom":"a","pageTo":', b"[" * 5000 + b"]" * 5000]
    rows = [(*row[:props], text, *row[props + 1:]) for row, text in zip(rows, [*bad, rows[2][props]])]
    rows[-1] = (*rows[-1][:props], b'{"pageFrom":"c","pageTo":"d"}', *rows[-1][props + 1:])
    store = open_store(str(tmp_path / "a.db"))
    writer = store.writer("test")
    for tally in ([rollups.tally(rows)], None):  # the worker's way, then read back from the table
        writer.begin()
        writer.write(rows, tally)
        writer.rollback() if tally else writer.commit()
    span = store.execute(f"SELECT first_page, last_page, path FROM {schema.SPANS}").fetchall()
    assert span == [('"c"', '"d"', '["c","d"]')]
    store.execute(f"DROP TABLE {schema.SPANS}")
    store.execute(f"DELETE FROM {schema.MIGRATIONS_TABLE} WHERE name = 'm007_session_spans'")
    store.close()
    store = open_store(str(tmp_path / "a.db"))  # a writer builds the spans again (m007)
    assert store.execute(f"SELECT first_page, last_page, path FROM {schema.SPANS}").fetchall() == span
    store.close()


def test_an_older_ohlogs_writes_send_sessions_and_paths_to_the_actions(tmp_path, monkeypatch):
    """An ohlog from before the spans keeps summary_sessions but not the spans:
    after its writes they disagree, and sessions and paths read the actions."""
    store = open_store(str(tmp_path / "a.db"))
    ingest_sessions(store, documents(5, n=30))
    docs = documents(6, n=10)
    rows = [row for number, doc in enumerate(docs, 1) for row in session_rows(doc, f"doc {number}")]
    with monkeypatch.context() as patch:  # a writer that does not know the spans
        patch.setattr(spans_module, "add", lambda conn, after_id: None)
        writer = store.writer("old")
        writer.begin()
        assert writer.write(rows, None) == len(rows)
        writer.commit()
    kept = {(u, s): n for u, s, n in store.execute(f"SELECT user_id, session_id, actions FROM {schema.SPANS}")}
    counted = {(u, s): n for u, s, n in store.execute("SELECT user_id, session_id, actions FROM summary_sessions")}
    assert kept != counted
    for split in (None, 1800 * SECOND):
        assert answers(store, filters(), split, monkeypatch, True) == answers(store, filters(), split, monkeypatch, False)
    assert path_answers(store, filters(), monkeypatch, True) == path_answers(store, filters(), monkeypatch, False)
    store.close()


def _committing_before(monkeypatch, module, name, path, docs):
    """Make ``module.name`` commit ``docs`` from another connection first (once)."""
    original = getattr(module, name)
    pending = [docs]

    def committing(*args, **kwargs):
        if pending:
            other = open_store(str(path))
            ingest_sessions(other, pending.pop())
            other.close()
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, committing)


def test_paths_and_split_sessions_read_one_state_while_a_writer_commits(tmp_path, monkeypatch):
    """paths reads the kept paths, then the actions of sessions whose path is
    not kept; sessions --split reads the spans, then some users' actions. A
    commit in between (another process's ingest) must not show in either:
    it had counted a session twice (a new-user review's case)."""
    def nav(user, session, minute, *pages):
        return {"userId": user, "sessionId": session, "actions": [
            {"time": f"2018-10-18T10:{minute + i:02d}:00Z", "type": "NAVIGATE",
             "properties": {"pageFrom": a, "pageTo": b}} for i, (a, b) in enumerate(zip(pages, pages[1:]))]}
    path = tmp_path / "a.db"
    store = open_store(str(path))
    ingest_sessions(store, [nav(f"u{i}", "s", 0, "home", "list", "item") for i in range(25)])
    ingest_sessions(store, [nav("u3", "s", 30, "item", "cart")])  # u3's path is not kept
    # u0's session also gains a page: its path is no longer kept either
    later = [nav("u0", "s", 40, "item", "done"), nav("u9", "t", 0, "home", "pay", "done")]
    before = paths(store, filters(), top=100)
    _committing_before(monkeypatch, paths_module, "fetch", path, later)  # between the two reads
    assert paths(store, filters(), top=100) == before
    assert sum(p["sessions"] for p in paths(store, filters(), top=100)) == 26  # the commit (u9), seen now

    # sessions --split: u1 and u2 pause 40 minutes inside their session (read from
    # their actions); the commit adds to u2 and to a user the spans read later
    store2 = open_store(str(tmp_path / "b.db"))
    gap = [{"userId": u, "sessionId": "s", "actions": [
        {"time": t, "type": "SCROLL", "properties": {}} for t in ("2018-10-18T10:00:00Z", "2018-10-18T10:40:00Z")]}
        for u in ("u1", "u2")]
    ingest_sessions(store2, gap + [nav("u8", "s", 0, "home", "list")])
    before = list(stream_sessions(store2, filters(), 1800 * SECOND))
    more = [{"userId": "u2", "sessionId": "s", "actions": [
        {"time": "2018-10-18T10:41:00Z", "type": "SCROLL", "properties": {}}]}, nav("u9", "s", 0, "a", "b")]
    monkeypatch.setattr(sessions_module, "_CUT_SHARE", 2)
    _committing_before(monkeypatch, sessions_module, "_sessions", tmp_path / "b.db", more)
    assert list(stream_sessions(store2, filters(), 1800 * SECOND)) == before
    assert len(list(stream_sessions(store2, filters(), 1800 * SECOND))) == len(before) + 1
    store.close()
    store2.close()
