"""Issue 4.3: regression tests for the hostile inputs the reliability suite found mishandled.

Each test was first committed as a strict xfail naming its bug, and loses its
marker when the bug is fixed; all of them now are.
"""

import gzip
import json
import re

import pytest

import openhouse_cli.readers
from openhouse_cli.db import open_db

from .test_reliability_common import (
    LOCATED, OHLOG, ingest_checked, run_measured, session,
)
from .test_reliability_hostile import DOC, GOOD, encode


@pytest.fixture
def db():
    from openhouse_cli.ingest import ingest_sessions

    database = open_db(":memory:")
    ingest_sessions(database, [session(n, user="existing") for n in range(3)])
    return database


def with_surrogate(where):
    """DOC as JSON text with a lone-surrogate escape (valid JSON, not valid Unicode) in ``where``."""
    text = json.dumps(DOC)
    if where == "key":  # an extra property
        return text.replace('"FDJKLHSLD"', '"FDJKLHSLD", "extra\\ud800": 1').encode()
    marker = {"userId": "ABC123XYZ", "sessionId": "XYZ456ABC", "type": "VIEW",
              "value": "FDJKLHSLD"}[where]
    return text.replace(marker, marker + "\\ud800", 1).encode()


@pytest.mark.parametrize("shape", ["ndjson", "array"])
@pytest.mark.parametrize("where", ["userId", "sessionId", "type", "key", "value"])
def test_lone_surrogate_is_rejected_located(db, where, shape):
    data = with_surrogate(where)
    data = data + b"\n" if shape == "ndjson" else b"[" + data + b"]"
    outcome, message = ingest_checked(db, data)
    assert outcome == "error" and re.match(r"in\.json:1(:[0-9]+)?: ", message), message


OUT_OF_RANGE = {
    "1e400": b"1e400",
    "-1e400": b"-1e400",
    "1e309": b"1e309",
    "400-digit-integer": b"9" * 400,
}


@pytest.mark.parametrize("shape", ["ndjson", "array"])
@pytest.mark.parametrize("number", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
def test_out_of_range_number_is_rejected_not_stored_as_null(db, number, shape):
    # locationX must be a number: a null stored for it breaks the CLICK rule too
    data = encode([DOC], shape).replace(b"52", number)
    outcome, result = ingest_checked(db, data)
    if outcome == "ok":
        stored = db.conn.execute("SELECT properties FROM actions WHERE type = 'CLICK'").fetchone()[0]
        assert json.loads(stored)["locationX"] is not None, stored
    else:
        assert ": actions[0].properties.locationX: " in result or "invalid JSON" in result


BAD_GZIP = {
    "truncated": gzip.compress(GOOD)[:-12],
    "corrupt": gzip.compress(GOOD)[:14] + b"\x00" * 20 + gzip.compress(GOOD)[34:],
    "header-only": gzip.compress(GOOD)[:10],
    "magic-only": b"\x1f\x8b",
}


@pytest.mark.parametrize("data", BAD_GZIP.values(), ids=BAD_GZIP.keys())
def test_bad_gzip_is_a_located_error(db, data):
    outcome, message = ingest_checked(db, data)  # which also checks the database is unchanged
    assert outcome == "error" and "gzip" in message


NOT_UTF8_FIRST_LINE = {
    "utf-16": json.dumps([DOC]).encode("utf-16"),
    "latin-1": json.dumps([DOC], ensure_ascii=False).replace("ABC", "Caf\u00e9").encode("latin-1"),
    "png": b"\x89PNG\r\n\x1a\n" + bytes(64),
    "high-bytes": bytes(range(128, 256)),
}


@pytest.mark.parametrize("data", NOT_UTF8_FIRST_LINE.values(), ids=NOT_UTF8_FIRST_LINE.keys())
def test_invalid_utf8_on_the_first_line_is_located(db, data):
    outcome, message = ingest_checked(db, data)
    assert outcome == "error" and message.startswith("in.json:1: ")


@pytest.mark.parametrize("data", [
    with_surrogate("userId") + b"\n", BAD_GZIP["truncated"], NOT_UTF8_FIRST_LINE["utf-16"],
], ids=["surrogate", "truncated-gzip", "utf-16"])
def test_cli_gives_one_located_line(tmp_path, data):
    source = tmp_path / "in.json"
    source.write_bytes(data)
    code, _, stderr = run_measured([OHLOG, "ingest", "--db", tmp_path / "x.db", source])
    assert code == 1
    assert stderr.count("\n") == 1 and stderr.startswith(f"Error: {source}:"), stderr


@pytest.mark.parametrize("shape", ["ndjson", "array"])
def test_time_with_a_trailing_nul_is_rejected(db, shape):
    data = encode([DOC], shape).replace(b"21:37:28-06:00", b"21:37:28-06:00\\u0000")
    outcome, message = ingest_checked(db, data)
    field = "[0].actions[0].time" if shape == "array" else "actions[0].time"  # a record in an array is named by its place
    assert outcome == "error" and f": {field}: " in message


@pytest.mark.parametrize("shape, mib", [("ndjson", 3.5), ("array", 1.5)])
def test_record_size_limit_holds_in_every_shape(db, monkeypatch, shape, mib):
    monkeypatch.setattr(openhouse_cli.readers, "MAX_RECORD_CHARS", 1 << 20)
    big = {**DOC, "sessionId": "big"}
    big["actions"] = [*DOC["actions"], {"time": "2018-10-18T21:37:40Z", "type": "NOTE",
                                        "properties": {"text": "x" * int(mib * (1 << 20))}}]
    outcome, message = ingest_checked(db, encode([DOC, big], shape))
    assert outcome == "error" and "record larger than 1 MiB" in message


def test_huge_integer_message_speaks_json_not_python(db):
    outcome, message = ingest_checked(db, encode([DOC], "array").replace(b"52", b"9" * 5000))
    assert outcome == "error" and LOCATED.fullmatch(message)
    assert "sys." not in message


def test_error_stays_one_line_whatever_the_file_name(tmp_path):
    source = tmp_path / "evil\nname.json"
    source.write_text('{"userId": 5}\n')
    code, _, stderr = run_measured([OHLOG, "ingest", "--db", tmp_path / "x.db", source])
    assert code == 1
    assert stderr.count("\n") == 1, stderr
