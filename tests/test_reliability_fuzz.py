"""Issue 4.3, hostile input, generated: hypothesis writes documents and mutates their bytes.

Every input goes through ``ingest_checked`` (no exception but a located
InvalidInput; a rejected input leaves the database as it was; a success
stores what it counts). Generated documents that are stored must also read
back exactly as they were sent. The fast tests run a few hundred inputs, the
slow one 10,000 and prints its figures.
"""

import gzip
import json
import sqlite3
from collections import Counter

import pytest
import sqlite_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openhouse_cli.db import open_db
from openhouse_cli.ingest import ingest_sessions

from .test_reliability_common import figures, ingest_checked, session


@pytest.fixture(scope="module")
def template():
    database = open_db(":memory:")
    ingest_sessions(database, [session(n, user="existing") for n in range(3)])
    return database.conn


def fresh(template):
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    template.backup(conn)
    return sqlite_utils.Database(conn)


def checked(template, data, stats, on_error="fail"):
    """ingest_checked on a fresh copy of the template, counted in ``stats``."""
    db = fresh(template)
    outcome, result = ingest_checked(db, data, on_error=on_error)
    stats["inputs"] += 1
    stats[outcome] += 1
    return db, outcome, result


# Documents: mostly valid, with hostile text and values, and now and then a wrong type
HOSTILE_TEXT = st.sampled_from(["'", '"', ";--", "'; DROP TABLE actions;--", "%", "_", "\x00",
                                "\u202e", "\\", "$.a", "\ufeff", "\r\n", "null", "é", "\U0001f600"])
TEXT = st.one_of(st.text(max_size=8), HOSTILE_TEXT)
NAME = TEXT.filter(bool)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                   st.floats(allow_nan=False, allow_infinity=False), TEXT)
VALUE = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=2), st.dictionaries(TEXT, inner, max_size=2)), max_leaves=4)
WRONG = st.one_of(st.none(), st.booleans(), st.integers(), st.just(""), st.lists(SCALAR, max_size=2),
                  st.dictionaries(TEXT, SCALAR, max_size=2))


@st.composite
def times(draw):
    if draw(st.integers(0, 19)) == 0:
        return draw(st.one_of(TEXT, WRONG))
    moment = draw(st.datetimes(min_value=__import__("datetime").datetime(1, 1, 2),
                               max_value=__import__("datetime").datetime(9999, 12, 30)))
    text = moment.isoformat(timespec=draw(st.sampled_from(["seconds", "milliseconds", "microseconds"])))
    minutes = draw(st.one_of(st.integers(-14 * 60, 14 * 60), st.integers(-30 * 60, 30 * 60)))
    offset = draw(st.sampled_from(["", "Z", "+00:00", f"{'-' if minutes < 0 else '+'}"
                                   f"{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"]))
    return text + offset


KNOWN = {"CLICK": {"locationX": st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(
    allow_nan=False, allow_infinity=False)), "locationY": st.integers(0, 5000)},
         "VIEW": {"viewedId": TEXT}, "NAVIGATE": {"pageFrom": TEXT, "pageTo": TEXT}}


@st.composite
def actions(draw):
    kind = draw(st.one_of(st.sampled_from(["CLICK", "click", "VIEW", "NAVIGATE"]), NAME))
    properties = draw(st.dictionaries(TEXT, VALUE, max_size=2))
    for key, strategy in KNOWN.get(kind.upper(), {}).items():
        properties[key] = draw(strategy)
    action = {"time": draw(times()), "type": kind, "properties": properties}
    if draw(st.integers(0, 19)) == 0:  # one field wrong or missing
        key = draw(st.sampled_from(["time", "type", "properties"]))
        if draw(st.booleans()):
            del action[key]
        else:
            action[key] = draw(WRONG)
    return action


@st.composite
def documents(draw):
    doc = {"userId": draw(NAME), "sessionId": draw(NAME),
           "actions": draw(st.lists(actions(), min_size=1, max_size=3))}
    if draw(st.integers(0, 19)) == 0:
        doc[draw(st.sampled_from(["userId", "sessionId", "actions"]))] = draw(WRONG)
    if draw(st.integers(0, 9)) == 0:
        doc[draw(TEXT)] = draw(VALUE)  # other keys are ignored
    return doc


@st.composite
def encoded(draw, docs):
    shape = draw(st.sampled_from(["ndjson", "array", "pretty", "object"]))
    if shape == "object" and len(docs) == 1:
        data = json.dumps(docs[0], ensure_ascii=draw(st.booleans())).encode()
    elif shape == "array" or shape == "object":
        data = json.dumps(docs, indent=draw(st.sampled_from([None, 1]))).encode()
    elif shape == "pretty":
        data = b"".join(json.dumps(d, indent=2).encode() + b"\n" for d in docs)
    else:
        data = b"".join(json.dumps(d, ensure_ascii=False).encode() + b"\n" for d in docs)
    if draw(st.integers(0, 9)) == 0:
        data = data.replace(b"\n", b"\r\n")
    if draw(st.integers(0, 9)) == 0:
        data = b"\xef\xbb\xbf" + data
    if draw(st.integers(0, 19)) == 0:
        data = gzip.compress(data)
    return data


def stored_as_sent(db, docs, counts):
    """Every action of ``docs`` is in ``db`` exactly as sent (repeats within a document kept)."""
    def key(user, session_, time, kind, properties):
        return json.dumps([user, session_, time, kind, properties], sort_keys=True)

    expected = Counter()
    for doc in docs:
        mine = Counter(key(doc["userId"], doc["sessionId"], a["time"], a["type"], a["properties"])
                       for a in doc["actions"])
        expected |= mine  # a document sent again adds nothing
    rows = db.conn.execute("SELECT user_id, session_id, time, type, properties FROM actions "
                           "WHERE user_id != 'existing'")
    stored = Counter(key(*row[:4], json.loads(row[4])) for row in rows)
    assert stored == expected
    assert counts.inserted == sum(expected.values())


def run_documents(template, n, derandomize, stats):
    @settings(max_examples=n, deadline=None, derandomize=derandomize, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(documents(), min_size=1, max_size=3).flatmap(
        lambda docs: st.tuples(st.just(docs), encoded(docs))))
    def check(case):
        docs, data = case
        db, outcome, counts = checked(template, data, stats)
        if outcome == "ok" and not any(isinstance(v, float) and abs(v) >= 2**63 for v in _leaves(docs)):
            stored_as_sent(db, docs, counts)

    check()


def _leaves(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


# Mutations: a valid input with bytes flipped, cut, repeated and spliced in
TOKENS = [b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"\x00", b"\xff", b"\xc3", b"\n", b"\r",
          b"\xef\xbb\xbf", b"NaN", b"-Infinity", b"1e999", b"\\ud800", b"\\u0000", b"99999999999999999999",
          b'"time"', b'"actions"', b"null", b"true", b"-", b"+25:00", b"\x1f\x8b"]


@st.composite
def mutated(draw):
    docs = draw(st.lists(documents(), min_size=1, max_size=2))
    data = bytearray(draw(encoded(docs)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "delete", "insert", "repeat", "truncate"]))
        if op == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        elif op == "insert":
            data[at:at] = draw(st.one_of(st.sampled_from(TOKENS), st.binary(min_size=1, max_size=8)))
        elif op == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 64))] * draw(st.integers(1, 3))
        else:
            del data[at:]
    return bytes(data), draw(st.sampled_from(["fail", "skip"]))


def run_mutations(template, n, derandomize, stats):
    @settings(max_examples=n, deadline=None, derandomize=derandomize, database=None,
              suppress_health_check=list(HealthCheck))
    @given(mutated())
    def check(case):
        data, on_error = case
        checked(template, data, stats, on_error=on_error)

    check()


def test_generated_documents(template):
    stats = Counter()
    run_documents(template, 50, True, stats)
    assert stats["ok"] and stats["error"]


def test_mutated_inputs(template):
    stats = Counter()
    run_mutations(template, 50, True, stats)
    assert stats["error"]


@pytest.mark.slow
def test_ten_thousand_hostile_inputs(template, request):
    stats = Counter()
    run_documents(template, 5000, False, stats)
    run_mutations(template, 5000, False, stats)
    assert stats["inputs"] >= 10_000
    figures(request.config, "hypothesis: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(stats.items())))
