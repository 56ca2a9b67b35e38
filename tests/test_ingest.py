import gzip
import io
import json

import pytest

from openhouse_cli.errors import InvalidInput, OhlogError
from openhouse_cli.ingest import IngestFailed, ingest_input, ingest_sessions, reject_line
from openhouse_cli.schema import INDEXES


def session(n, actions=2, user="u1"):
    return {"userId": user, "sessionId": f"s{n}", "actions": [
        {"time": f"2018-10-18T21:{n % 60:02d}:{a:02d}-06:00", "type": "CLICK",
         "properties": {"locationX": a, "locationY": n}} for a in range(actions)]}


def ndjson(docs):
    return io.BytesIO(b"".join(json.dumps(d).encode() + b"\n" for d in docs))


def count(db):
    return db.execute("select count(*) from actions").fetchone()[0]


def test_sample_log_is_stored_once(db, sample_sessions):
    counts = ingest_sessions(db, sample_sessions["sample_log"])
    assert (counts.sessions, counts.inserted, counts.duplicates) == (1, 3, 0)
    again = ingest_sessions(db, sample_sessions["sample_log"])
    assert (again.inserted, again.duplicates) == (0, 3)
    assert count(db) == 3
    rows = list(db.query("select time, type, properties from actions order by id"))
    assert rows[0] == {"time": "2018-10-18T21:37:28-06:00", "type": "CLICK",
                       "properties": '{"locationX":52,"locationY":11}'}


def test_every_shape_stores_the_same_actions(db, sample_sessions):
    docs = sample_sessions["mixed_offsets"]
    shapes = [
        json.dumps(docs).encode(),
        json.dumps(docs, indent=2).encode(),
        b"\n".join(json.dumps(d).encode() for d in docs),
        b"".join(json.dumps(d, indent=4).encode() for d in docs),
        gzip.compress(json.dumps(docs).encode()),
    ]
    first = ingest_input(db, io.BytesIO(shapes[0]), "a.json")
    assert first.inserted == 6
    for data in shapes[1:]:
        counts = ingest_input(db, io.BytesIO(data), "b.json")
        assert (counts.inserted, counts.duplicates) == (0, 6)
    assert count(db) == 6


def test_identical_actions_in_one_document_are_all_kept(db):
    doc = session(1, actions=1)
    doc["actions"] = doc["actions"] * 3
    assert ingest_sessions(db, [doc]).inserted == 3
    assert ingest_sessions(db, [doc]).duplicates == 3
    # a retried client that sends the session again with one more action
    doc["actions"].append(session(2, actions=1)["actions"][0])
    counts = ingest_sessions(db, [doc])
    assert (counts.inserted, counts.duplicates) == (1, 3)
    assert count(db) == 4


def test_a_bad_record_in_the_middle_leaves_nothing_of_its_input(db):
    ingest_sessions(db, [session(100)])
    docs = [session(n) for n in range(1, 50)]
    docs[25]["actions"][1]["time"] = "2018-13-45"
    with pytest.raises(IngestFailed) as info:
        ingest_input(db, ndjson(docs), "sessions.ndjson")
    assert str(info.value) == "sessions.ndjson:26: actions[1].time: not an ISO 8601 time: '2018-13-45'"
    assert count(db) == 2
    assert sorted(i.name for i in db["actions"].indexes) == sorted(INDEXES)


def test_bad_record_into_an_empty_table_restores_its_indexes(db):
    docs = [session(n) for n in range(1, 20)] + [{"userId": "u"}]
    with pytest.raises(IngestFailed):
        ingest_input(db, ndjson(docs), "x")
    assert count(db) == 0
    assert len(db["actions"].indexes) == len(INDEXES)


def test_skip_stores_good_records_and_reports_bad_ones(db):
    docs = [session(1), {"userId": "u", "sessionId": "s", "actions": "nope"}, session(2)]
    rejected = []
    counts = ingest_input(db, ndjson(docs), "in.ndjson", on_error="skip",
                          on_reject=lambda record, error: rejected.append((record, error)))
    assert (counts.sessions, counts.inserted, counts.rejected) == (2, 4, 1)
    (record, error), = rejected
    assert str(error) == "in.ndjson:2: actions: expected a non-empty list of actions, got 'nope'"
    line = json.loads(reject_line(record, error))
    assert line["ohlog_error"] == str(error)
    assert line["actions"] == "nope"


def test_rejects_file_can_be_fixed_and_fed_back(db):
    bad = session(7)
    bad["actions"][0]["time"] = "yesterday"
    lines = []
    ingest_input(db, ndjson([bad]), "in", on_error="skip",
                 on_reject=lambda r, e: lines.append(reject_line(r, e)))
    fixed = json.loads(lines[0])
    fixed["actions"][0]["time"] = "2018-10-18T21:07:00-06:00"
    assert ingest_input(db, ndjson([fixed]), "rejects.ndjson").inserted == 2


def test_syntax_error_reject_keeps_the_raw_text(db):
    lines = []
    data = io.BytesIO(json.dumps(session(1)).encode() + b"\n{broken\n")
    counts = ingest_input(db, data, "in", on_error="skip", on_reject=lambda r, e: lines.append(reject_line(r, e)))
    assert counts.rejected == 1
    assert json.loads(lines[0]) == {"ohlog_error": "in:2:2: invalid JSON: unexpected character, expected a string key",
                                    "ohlog_raw": "{broken\n"}


def test_a_reject_that_is_not_utf8_keeps_its_exact_bytes(db):
    # Found from outside: the rejects file held U+FFFD for the bad bytes, so
    # the line rebuilt from it was another line
    import base64

    lines = []
    raw = b'{"userId": "u\xff", "sessionId": "s", "actions": []}\n'
    data = io.BytesIO(json.dumps(session(1)).encode() + b"\n" + raw)
    counts = ingest_input(db, data, "in", on_error="skip", on_reject=lambda r, e: lines.append(reject_line(r, e)))
    assert counts.rejected == 1
    found = json.loads(lines[0])
    assert found["ohlog_raw"] == raw.decode("utf-8", "replace")
    assert base64.b64decode(found["ohlog_raw_base64"]) == raw


def test_batches_commit_separately(db):
    docs = [session(n) for n in range(1, 11)]
    docs[7]["userId"] = ""
    with pytest.raises(IngestFailed) as info:
        ingest_input(db, ndjson(docs), "stream", batch_size=3)
    # batches [1-3] and [4-6] were committed; [7-9] held the bad record
    assert count(db) == 12
    assert info.value.counts.sessions == 6


def test_unknown_on_error_is_refused(db):
    with pytest.raises(ValueError):
        ingest_sessions(db, [], on_error="ignore")


def test_database_errors_become_ohlog_errors(db):
    # (Tests run as root here, so file modes cannot make a database read-only.)
    db.execute("PRAGMA query_only = 1")
    with pytest.raises(OhlogError) as info:
        ingest_sessions(db, [session(1)], source="in.json")
    assert str(info.value) == (
        "in.json: database error: attempt to write a readonly database "
        "(its uncommitted records were rolled back)"
    )
    assert not db.conn.in_transaction


def test_large_ndjson_goes_through_the_worker_with_the_same_results(db):
    # more than two chunks of lines: validated in a worker process
    docs = [session(n, actions=1, user=f"u{n}") for n in range(1, 5001)]
    docs[4320]["actions"][0]["properties"]["locationX"] = "far"
    with pytest.raises(IngestFailed) as info:
        ingest_input(db, ndjson(docs), "big.ndjson")
    assert str(info.value) == "big.ndjson:4321: actions[0].properties.locationX: expected a number for CLICK, got 'far'"
    assert count(db) == 0
    rejected = []
    counts = ingest_input(db, ndjson(docs), "big.ndjson", on_error="skip",
                          on_reject=lambda record, error: rejected.append(record.line))
    assert (counts.sessions, counts.inserted, counts.rejected) == (4999, 4999, 1)
    assert rejected == [4321]
    assert [r["id"] for r in db.query("select id from actions where user_id = 'u5000'")] == [4999]


def test_library_api_is_exported_from_the_package(sample_sessions):
    import openhouse_cli

    db = openhouse_cli.open_db(":memory:")
    openhouse_cli.ingest_sessions(db, sample_sessions["sample_log"])
    (click,) = openhouse_cli.query_actions(db, types=["click"])
    assert click["properties"] == {"locationX": 52, "locationY": 11}
    with pytest.raises(AttributeError):
        openhouse_cli.no_such_name


def test_new_databases_have_16_kib_pages_and_old_ones_keep_theirs(tmp_path):
    # 16 KiB pages keep the WAL index, and so ingest's memory, nearly flat
    # however large one input is (README "Reliability", memory)
    import sqlite3

    from openhouse_cli.db import PAGE_SIZE, open_db

    new = open_db(tmp_path / "new.db")
    assert new.conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE == 16384
    old_path = tmp_path / "old.db"
    # an existing file that holds no table yet (one with another program's
    # tables is refused: test_cli_query)
    conn = sqlite3.connect(old_path)
    conn.execute("PRAGMA page_size = 4096")
    conn.execute("VACUUM")
    conn.close()
    assert old_path.stat().st_size > 0
    old = open_db(old_path)
    assert old.conn.execute("PRAGMA page_size").fetchone()[0] == 4096
    doc = {"userId": "u", "sessionId": "s", "actions": [
        {"time": "2018-10-18T21:37:28-06:00", "type": "VIEW", "properties": {"viewedId": "x"}}]}
    assert ingest_sessions(old, [doc]).inserted == 1
    assert old.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


GOOD_THEN_BROKEN = {
    "array": b'[' + json.dumps(session(1)).encode() + b', {"userId": oops}, '
             + json.dumps(session(2)).encode() + b']',
    "pretty": json.dumps(session(1), indent=2).encode() + b'\n{"userId": oops}\n'
              + json.dumps(session(2), indent=2).encode(),
    "invalid UTF-8": json.dumps(session(1), indent=2).encode() + b'\n{"userId": "\xff"}\n'
                     + json.dumps(session(2), indent=2).encode(),
}


@pytest.mark.parametrize("data", GOOD_THEN_BROKEN.values(), ids=GOOD_THEN_BROKEN.keys())
def test_skip_cannot_skip_what_ends_an_input(db, data):
    # Past a syntax error in an array or in concatenated objects nothing can
    # be read: storing the records before it would silently lose those after.
    rejected = []
    with pytest.raises(IngestFailed, match=r"^in\.json:\d+(:\d+)?: .*the input is rolled back\)$") as failed:
        ingest_input(db, io.BytesIO(data), "in.json", on_error="skip",
                     on_reject=lambda record, error: rejected.append(error))
    assert count(db) == 0 and rejected == []
    assert failed.value.counts.inputs == 0


def test_skip_still_skips_a_bad_ndjson_line(db):
    data = json.dumps(session(1)).encode() + b'\n{"userId": oops}\n' + json.dumps(session(2)).encode()
    counts = ingest_input(db, io.BytesIO(data), "in.ndjson", on_error="skip")
    assert (counts.inserted, counts.rejected) == (4, 1)


def test_a_broken_gzip_stream_fails_the_input_and_keeps_earlier_batches(db):
    import random

    noise = random.Random(0)  # incompressible, so the break comes well after the first read
    docs = [{**session(n), "noise": noise.randbytes(300).hex()} for n in range(3000)]
    data = gzip.compress(b"".join(json.dumps(d).encode() + b"\n" for d in docs))
    with pytest.raises(IngestFailed) as failed:
        ingest_input(db, io.BytesIO(data[:-12]), "in.ndjson.gz", on_error="skip", batch_size=100)
    stored = count(db)
    assert stored and stored % 200 == 0  # whole batches of 100 sessions of 2 actions
    assert failed.value.counts.inserted == stored and failed.value.counts.inputs == 1


def nested(depth):
    value = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def test_properties_nested_too_deeply_to_store_are_rejected_located(db):
    doc = session(1, actions=1)
    doc["actions"][0]["type"] = "SCROLL"
    doc["actions"][0]["properties"] = nested(1010)
    with pytest.raises(InvalidInput) as error:
        ingest_sessions(db, [doc], source="deep.ndjson")
    assert str(error.value) == "deep.ndjson:1: actions[0].properties: nested too deeply"
    assert count(db) == 0
    doc["actions"][0]["properties"] = nested(300)  # beyond orjson's writer, within json's
    assert ingest_sessions(db, [doc]).inserted == 1


def test_a_rejects_line_carries_the_new_reason(db):
    from openhouse_cli.readers import Record

    record = Record(3, {"userId": "", "ohlog_error": "an old reason"})
    line = json.loads(reject_line(record, InvalidInput("f:3", "userId", "the new reason")))
    assert line["ohlog_error"] == "f:3: userId: the new reason"


def test_an_overlong_line_is_named_as_such_in_the_worker_too(db, monkeypatch):
    from openhouse_cli import parallel, readers

    monkeypatch.setattr(readers, "MAX_RECORD_CHARS", 4096)
    monkeypatch.setattr(parallel, "RECORDS_PER_CHUNK", 5)
    lines = [json.dumps(session(n)) for n in range(30)]
    lines[22] = json.dumps({**session(22), "padding": "x" * 5000})  # in a chunk the worker validates
    rejected = []
    counts = ingest_input(db, io.BytesIO("\n".join(lines).encode()), "big.ndjson", on_error="skip",
                          on_reject=lambda record, error: rejected.append(str(error)))
    assert counts.rejected == 1
    assert rejected == ["big.ndjson:23: record larger than 0 MiB"]


def test_a_failed_input_stops_its_validating_worker(db):
    import multiprocessing

    lines = [json.dumps(session(n)) for n in range(3000)]
    lines[1500] = '{"userId": ""}'
    with pytest.raises(IngestFailed):
        ingest_input(db, io.BytesIO("\n".join(lines).encode()), "w.ndjson")
    assert multiprocessing.active_children() == []


def unit_separated(user, session):
    return {"userId": user, "sessionId": session, "actions": [
        {"time": "2018-10-18T21:37:28-06:00", "type": "VIEW", "properties": {"viewedId": "x"}}]}


def test_ids_holding_the_fields_separator_are_never_confused(db):
    # joined with \x1f, these two different actions had one fingerprint
    docs = [unit_separated("a\x1fb", "c"), unit_separated("a", "b\x1fc"),
            {**unit_separated("a", "b"), "actions": [{**unit_separated("a", "b")["actions"][0],
                                                      "type": "VIEW\x1f"}]}]
    assert ingest_sessions(db, docs).inserted == 3
    assert ingest_sessions(db, docs).duplicates == 3
