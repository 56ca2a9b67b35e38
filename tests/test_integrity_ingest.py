"""Issue 8, reader side: exact integers, shape detection, located number
errors, rejects lines, messages for missing keys, the too-long sentinel,
the fork fallback. Library tests; test_integrity_cli_ingest.py runs ohlog."""

import io
import json
import pickle

import pytest

from openhouse_cli import parallel, readers
from openhouse_cli.errors import InvalidInput
from openhouse_cli.ingest import IngestFailed, ingest_input, ingest_sessions, reject_line
from openhouse_cli.readers import Record, ndjson_record, read_records
from openhouse_cli.server import parse_sessions
from openhouse_cli.validate import session_rows

BIG = [18446744073709551617, 18446744073709551618]  # 2**64 + 1, 2**64 + 2: one double


def doc(x, session="s1", user="u1"):
    return {"userId": user, "sessionId": session, "actions": [
        {"time": "2018-10-18T21:37:28Z", "type": "NOTE", "properties": {"x": x}}]}


def stored_x(db):
    return [json.loads(p)["x"] for (p,) in db.execute("SELECT properties FROM actions ORDER BY id")]


SHAPES = {
    "ndjson": lambda docs: b"".join(json.dumps(d).encode() + b"\n" for d in docs),
    "array": lambda docs: json.dumps(docs).encode(),
    "pretty": lambda docs: "".join(json.dumps(d, indent=2) for d in docs).encode(),
    "pretty-array": lambda docs: json.dumps(docs, indent=2).encode(),
}

EXACT = {
    "2**64+1 and +2": BIG,
    "negative": [-(1 << 64) - 1, -(1 << 64) - 2],
    "2**63 and 2**63+1": [1 << 63, (1 << 63) + 1],  # orjson keeps these: must stay so
    "400 digits": [10 ** 399 + 1, 10 ** 399 + 2],
    "in a list": [[BIG[0]], [BIG[1]]],
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("values", EXACT.values(), ids=EXACT.keys())
def test_integers_beyond_64_bits_stay_exact_and_distinct(db, shape, values):
    data = SHAPES[shape]([doc(v) for v in values])
    counts = ingest_input(db, io.BytesIO(data), "in.json")
    assert (counts.inserted, counts.duplicates) == (2, 0)
    assert stored_x(db) == values


def test_exact_through_the_validating_worker(db):
    # Enough lines for chunks beyond the first, which the worker process validates
    docs = [doc(BIG[n % 2] + 2 * n, session=f"s{n}") for n in range(3 * parallel.RECORDS_PER_CHUNK)]
    counts = ingest_input(db, io.BytesIO(SHAPES["ndjson"](docs)), "in.ndjson")
    assert counts.inserted == len(docs)
    assert stored_x(db) == [d["actions"][0]["properties"]["x"] for d in docs]


def test_without_fork_one_process_validates_the_same(db, monkeypatch):
    monkeypatch.setattr(parallel.multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    assert not parallel.can_fork()
    docs = [doc(n, session=f"s{n}") for n in range(3 * parallel.RECORDS_PER_CHUNK)]
    bad = 2 * parallel.RECORDS_PER_CHUNK + 7  # in the third chunk
    docs[bad]["userId"] = ""
    counts = ingest_input(db, io.BytesIO(SHAPES["ndjson"](docs)), "in.ndjson", on_error="skip")
    assert (counts.inserted, counts.rejected) == (len(docs) - 1, 1)
    with pytest.raises(IngestFailed, match=rf"^in\.ndjson:{bad + 1}: userId: "):
        ingest_input(db, io.BytesIO(SHAPES["ndjson"](docs)), "in.ndjson")


@pytest.mark.parametrize("body", [
    json.dumps(doc(BIG[0])).encode() + b"\n" + json.dumps(doc(BIG[1])).encode(),
    json.dumps([doc(BIG[0]), doc(BIG[1])]).encode(),
    json.dumps([doc(BIG[0]), doc(BIG[1])], indent=1).encode(),
])
def test_post_bodies_keep_big_integers(body):
    docs, _ = parse_sessions(body)
    assert [d["actions"][0]["properties"]["x"] for d in docs] == BIG
    rows = [row for d in docs for row in session_rows(d, "body")]
    assert len({row[-1] for row in rows}) == 2  # two fingerprints, not one duplicate


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_non_finite_numbers_stay_errors_next_to_long_digits(token):
    line = b'{"userId": "12345678901234567890", "x": ' + token.encode() + b"}\n"
    record = ndjson_record(line, 7, "in.ndjson")
    assert str(record.error).startswith(f"in.ndjson:7:{line.index(token.encode()) + 1}: invalid JSON: ")


PRETTY = '{\n  "userId": "NaN 1e400 Infinity",\n  "actions": [\n    {"x": 1,\n     "y": TOKEN}\n  ]\n}\n'


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 5000])
@pytest.mark.parametrize("chunk", [1 << 20, 16])  # the token cut across reads, too
def test_number_errors_in_pretty_json_point_at_the_token(monkeypatch, token, chunk):
    monkeypatch.setattr(readers, "CHUNK", chunk)
    data = ("\n" * 3 + PRETTY.replace("TOKEN", token)).encode()
    records = list(read_records(io.BytesIO(data), "in.json"))
    assert str(records[-1].error).startswith("in.json:8:11: invalid JSON: ")
    assert "sys." not in str(records[-1].error)


def test_a_line_of_the_old_too_long_marker_is_just_bad_json():
    record = ndjson_record(b"\x00too long", 3, "in.ndjson")
    assert "larger than" not in str(record.error) and "invalid JSON" in str(record.error)
    assert pickle.loads(pickle.dumps(readers.TOO_LONG)) is readers.TOO_LONG
    assert "larger than" in str(ndjson_record(pickle.loads(pickle.dumps(readers.TOO_LONG)), 3, "x").error)


GOOD = json.dumps(doc(1)).encode()
FIRST_LINES = {
    "cut record": GOOD[:25],
    "rotated mid-line": GOOD[25:],
    "rotated, starting with {": b'{"x": 1}]}',
    "two values, the second bad": GOOD + b" oops",
    # Found from outside: cut after a key's colon, the next line (a whole
    # object) could be its value, and the input was read as one document
    "cut after a key's colon": GOOD[:GOOD.index(b'"properties":') + len(b'"properties":')],
    "cut after the actions' colon": GOOD[:GOOD.index(b'"actions":') + len(b'"actions": ')],
}


@pytest.mark.parametrize("first", FIRST_LINES.values(), ids=FIRST_LINES.keys())
def test_a_bad_first_line_is_one_rejected_record(db, first):
    data = first + b"\n" + json.dumps(doc(2)).encode() + b"\n" + json.dumps(doc(3, "s2")).encode() + b"\n"
    rejected = []
    counts = ingest_input(db, io.BytesIO(data), "in.ndjson", on_error="skip",
                          on_reject=lambda record, error: rejected.append(error.location))
    assert (counts.sessions, counts.inserted, counts.rejected) == (2, 2, 1)
    assert rejected[0].startswith("in.ndjson:1")


def test_a_first_line_over_a_chunk_is_one_rejected_record(db, monkeypatch):
    monkeypatch.setattr(readers, "CHUNK", 64)
    big_bad = b'{"userId": "u", "pad": "' + b"x" * 500 + b'", oops}'
    big_good = json.dumps({**doc(5), "pad": "y" * 500}).encode()
    for first, expected in ((big_bad, (1, 1)), (big_good, (2, 0))):
        data = first + b"\n" + json.dumps(doc(2, "s9")).encode() + b"\n"
        counts = ingest_input(db, io.BytesIO(data), "in.ndjson", on_error="skip")
        assert (counts.sessions, counts.rejected) == expected


def test_a_first_line_over_the_record_limit_is_one_rejected_record(db, monkeypatch):
    monkeypatch.setattr(readers, "CHUNK", 64)
    monkeypatch.setattr(readers, "MAX_RECORD_CHARS", 256)
    data = json.dumps({**doc(5), "pad": "y" * 500}).encode() + b"\n" + json.dumps(doc(2)).encode() + b"\n"
    errors = []
    counts = ingest_input(db, io.BytesIO(data), "in.ndjson", on_error="skip",
                          on_reject=lambda record, error: errors.append(str(error)))
    assert (counts.sessions, counts.rejected) == (1, 1)
    assert errors == ["in.ndjson:1: record larger than 0 MiB"]


@pytest.mark.parametrize("data", [
    json.dumps(doc(1), indent=2) + json.dumps(doc(2, "s2"), indent=2),  # jq's output
    json.dumps(doc(1)) + json.dumps(doc(2, "s2")),  # concatenated on one line
    '{"userId": "u1",\n"sessionId": "s1", "actions": ' + json.dumps(doc(1)["actions"]) + "}"
    + json.dumps(doc(2, "s2")),
    # a value on the line after its key, as an unusual formatter may write it
    '{"userId": "u1", "sessionId": "s1", "p":\n{"x": 1}\n, "actions": []}\n' + json.dumps(doc(2, "s2")),
    '{"userId": "u1", "sessionId": "s1", "actions": [], "p":\n{"x": 1}\n}\n' + json.dumps(doc(2, "s2")),
])
def test_json_streams_are_still_recognised(data):
    assert [r.value["sessionId"] for r in read_records(io.BytesIO(data.encode()), "in.json")] == ["s1", "s2"]


def deep(depth):
    """A rejected record with ``depth`` nested lists, as a value and as pretty text."""
    nested = []
    for _ in range(depth - 1):
        nested = [nested]
    value = {"userId": "", "sessionId": "s", "actions": [], "p": nested}
    raw = '{"userId": "",\n "sessionId": "s", "actions": [],\n "p": ' + "[\n" * depth + "]" * depth + "}"
    return value, raw


@pytest.mark.parametrize("depth", [300, 990, 5000])
def test_a_deep_rejected_record_is_written_whole(depth):
    value, raw = deep(depth)
    line = reject_line(Record(1, value, raw), InvalidInput("in.json:1", "userId", "bad"))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert b'"ohlog_error":"in.json:1: userId: bad"' in line
    assert line.count(b"[") == depth + 1  # and "actions": []
    assert line.rstrip().replace(b" ", b"").replace(b',"ohlog_error":"in.json:1:userId:bad"', b"").replace(
        b'"ohlog_error":"in.json:1:userId:bad",', b"") == raw.replace(" ", "").replace("\n", "").encode()


def test_a_rejected_record_with_a_big_integer_is_written_exactly():
    value = doc(BIG[0], user="")
    line = reject_line(Record(1, value, json.dumps(value)), InvalidInput("f:1", "userId", "bad"))
    assert json.loads(line)["actions"][0]["properties"]["x"] == BIG[0]


MISSING = {
    "userId": ({"sessionId": "s", "actions": [1]}, "userId: missing (expected a non-empty string)"),
    "user instead": ({"user": "u", "sessionId": "s", "actions": [1]},
                     "userId: missing (expected a non-empty string); found 'user': ohlog reads 'userId'"),
    "userid": ({"userid": "u", "sessionId": "s", "actions": [1]},
               "userId: missing (expected a non-empty string); found 'userid': ohlog reads 'userId'"),
    "events instead": ({"userId": "u", "sessionId": "s", "events": [1]},
                       "actions: missing (expected a non-empty list of actions); found 'events': ohlog reads 'actions'"),
    "timestamp": ({"userId": "u", "sessionId": "s", "actions": [{"timestamp": "x", "type": "A", "properties": {}}]},
                  "actions[0].time: missing (expected an ISO 8601 time string); found 'timestamp': ohlog reads 'time'"),
    "present but wrong": ({"userId": "", "sessionId": "s", "actions": [1]},
                          "userId: expected a non-empty string, got ''"),
    "a rejects line": ({"ohlog_error": "f:1:2: invalid JSON", "ohlog_raw": "{oops"},
                       "a line --rejects wrote for input that was not JSON: "
                       "replace the whole line with its ohlog_raw text, fixed"),
    # ohlog's own output fed back in (found from outside), and a bare action
    "query --nl": ({"userId": "u", "sessionId": "s", "time": "2018-01-01T00:00:00Z", "type": "A",
                    "properties": {}},
                   "actions: missing (expected a non-empty list of actions); this is one action, as ohlog"
                   " query prints them, not a session document (ohlog copy moves actions between databases)"),
    "a bare action": ({"time": "2018-01-01T00:00:00Z", "type": "A", "properties": {}},
                      "userId: missing (expected a non-empty string); this is one action, as ohlog query"
                      " prints them, not a session document (ohlog copy moves actions between databases)"),
    "query --json": ({"actions": [{"userId": "u", "sessionId": "s", "time": "2018-01-01T00:00:00Z",
                                   "type": "A", "properties": {}}]},
                     "userId: missing (expected a non-empty string); this is ohlog query --json output, not"
                     " a session document (ohlog copy moves actions between databases)"),
    # An export that wraps the sessions (found by a new user)
    "wrapped sessions": ({"exported": "2018", "data": [{"userId": "u", "sessionId": "s", "actions": [1]}]},
                         "userId: missing (expected a non-empty string); the sessions are in this object's"
                         """ 'data' list: feed them one a line, jq -c 'if type == "array" then .[] else . end"""
                         """ | .["data"][]' FILE | ohlog ingest -"""),
    "a rejects line of bytes": ({"ohlog_error": "f:1: not valid UTF-8", "ohlog_raw": "\ufffd",
                                 "ohlog_raw_base64": "/w=="},
                                "a line --rejects wrote for input that was not JSON: replace the whole line"
                                " with its ohlog_raw text, fixed (its exact bytes, which were not UTF-8, are in"
                                " ohlog_raw_base64)"),
    # Found from outside: a list on an NDJSON line, fed back, was said to be "not JSON"
    "a rejects line of a list": ({"ohlog_error": "f:2: expected a session object, got a list",
                                  "ohlog_raw": '[{"userId": "u"}, {"userId": "v"}]\n'},
                                 "a line --rejects wrote for a record that was JSON but not a session object"
                                 " (a list): replace the whole line with its ohlog_raw text, fixed"),
}


@pytest.mark.parametrize("value, message", MISSING.values(), ids=MISSING.keys())
def test_messages_say_missing_and_hint(value, message):
    with pytest.raises(InvalidInput) as caught:
        session_rows(value, "f:1")
    assert str(caught.value) == "f:1: " + message


_ACTION = {"time": "2018-01-01T00:00:00Z", "type": "a", "properties": {}}


@pytest.mark.parametrize("doc, field", [
    ({"userId": "\ud800", "sessionId": "s", "actions": [_ACTION]}, "userId"),
    ({"userId": "u", "sessionId": "s\udfff", "actions": [_ACTION]}, "sessionId"),
    ({"userId": "u", "sessionId": "s", "actions": [_ACTION, {**_ACTION, "type": "x\ud800"}]},
     "actions[1].type"),
    ({"userId": "u", "sessionId": "s",
      "actions": [{**_ACTION, "properties": {"k": ["ok", {"z": "\ud800"}]}}]}, "actions[0].properties.k[1].z"),
    ({"userId": "u", "sessionId": "s",
      "actions": [{**_ACTION, "properties": {"big": 10**30, "s": "\udbff"}}]}, "actions[0].properties.s"),
    ({"userId": "u", "sessionId": "s", "actions": [{**_ACTION, "properties": {"k\udc00": 1}}]},
     "actions[0].properties.'k\\udc00'"),
])
def test_library_documents_with_lone_surrogates_are_rejected_not_a_traceback(db, doc, field):
    """The readers refuse lone surrogates in text; documents given to the library
    went to orjson, whose TypeError rolled the whole call back."""
    good = {"userId": "ok", "sessionId": "s", "actions": [_ACTION]}
    counts = ingest_sessions(db, [doc, good], on_error="skip")
    assert (counts.inserted, counts.rejected) == (1, 1)
    with pytest.raises(IngestFailed) as failed:
        ingest_sessions(db, [good, doc])
    assert failed.value.field == field and "lone surrogate" in failed.value.message


def test_a_time_that_is_a_str_subclass_is_refused_as_before(db):
    """Only a JSON string is a time: library callers handing a str subclass
    (numpy.str_ is one) were refused before the parser's fast path, and still are."""
    class Text(str):
        pass

    doc = {"userId": "u", "sessionId": "s", "actions": [{**_ACTION, "time": Text("2018-10-18T21:37:28Z")}]}
    with pytest.raises(IngestFailed) as failed:
        ingest_sessions(db, [doc])
    assert failed.value.field == "actions[0].time" and "ISO 8601 time string" in failed.value.message


@pytest.mark.parametrize("layout", ["array", "concatenated", "pretty concatenated"])
def test_a_record_giving_actions_twice_in_a_stream_is_rejected_alone(db, layout):
    # Found from outside: in an array or concatenated objects, every record
    # after one that gives "actions" twice vanished (neither stored, nor
    # counted, nor rejected): the reader stopped at any record with an error
    twice = '{"userId": "u1", "sessionId": "s", "actions": [], "actions": []}'
    others = [json.dumps(doc(2, "s2")), json.dumps(doc(3, "s3", user="u3"))]
    if layout == "array":
        text = "[" + ",\n".join([twice, *others]) + "]\n"
    elif layout == "concatenated":
        text = "".join([twice, *others])
    else:
        text = "\n".join([twice.replace(", ", ",\n  "), *(json.dumps(json.loads(o), indent=2) for o in others)])
    rejected = []
    counts = ingest_input(db, io.BytesIO(text.encode()), "in.json", on_error="skip",
                          on_reject=lambda record, error: rejected.append(str(error)))
    assert (counts.sessions, counts.inserted, counts.rejected) == (2, 2, 1)
    assert len(rejected) == 1 and "actions: given twice in one session" in rejected[0]
    assert stored_x(db) == [2, 3]


def test_a_reject_nested_too_deep_to_pickle_is_sent_as_its_text():
    # Found from outside: the validating worker died with a RecursionError
    # traceback pickling such a reject; its text carries it, and --rejects
    # writes that text with the reason spliced in
    nested = "[" * 600 + "]" * 600  # parsed (the limit is 1,000), too deep for pickle
    raw = '{"userId": "deep", "sessionId": "s", "actions": [{"time": "bad", "type": "A", "properties": {"d": %s}}]}' % nested
    records = list(read_records(io.BytesIO(raw.encode() + b"\n"), "in.ndjson"))
    _, _, rejects, _ = parallel.validate_chunk(records, "in.ndjson", False)
    sessions, sent, _ = pickle.loads(parallel._pickled_rejects(0, rejects))
    record, error = sent[0]
    assert record.deep and record.value is None and str(error).startswith("in.ndjson:1: actions[0].time")
    line = reject_line(record, error)
    assert line.startswith(b'{"ohlog_error":"in.ndjson:1: actions[0].time: not an ISO 8601 time')
    assert line.rstrip(b"\n").endswith(b"]" * 600 + b"}}]}")


def test_a_bom_before_a_first_line_over_a_chunk_is_read_whole(db, monkeypatch):
    # Found from outside: the BOM was taken off before the line's length was
    # tested, so a first line of exactly a chunk looked whole: one good record
    # became two rejects, the second at a line the file does not have
    monkeypatch.setattr(readers, "CHUNK", 64)
    big = json.dumps({**doc(5), "pad": "y" * 500}).encode()
    data = b"\xef\xbb\xbf" + big + b"\n" + json.dumps(doc(2, "s9")).encode() + b"\n"
    counts = ingest_input(db, io.BytesIO(data), "in.ndjson", on_error="skip")
    assert (counts.sessions, counts.rejected) == (2, 0)
