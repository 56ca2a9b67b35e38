"""``ohlog query --fields``: choosing and ordering what JSON, NDJSON and CSV print."""

import csv
import io
import json
import random
from datetime import datetime, timedelta, timezone

import pytest

from openhouse_cli.fields import FieldsError, exact_loads, iso, parse_fields

from .conftest import OHLOG  # noqa: F401 (run_ohlog runs it)

BIG = 18446744073709551615
SESSIONS = [
    {"userId": "u1", "sessionId": "s1", "actions": [
        {"time": "2018-10-18T21:37:28.123456789+05:30", "type": "TAP",
         "properties": {"locationX": 52, "name": "Zoë, \"the\" user", "ok": True, "none": None,
                        "nested": {"a": [1, 2]}, "a.b": "dotted", "a,b": "comma", "big": BIG,
                        "depth": 0.5}},
        {"time": "2018-10-18T21:37:29,5-06:00", "type": "OPEN", "properties": {}},
        {"time": "2018-10-18T21:37:30", "type": "MOVE", "properties": {"locationX": "52"}},
        {"time": "2018-10-18T21:37:31.1234567Z", "type": "SCROLL", "properties": {"depth": -1e-7}},
    ]},
]


@pytest.fixture
def db(tmp_path, run_ohlog):
    path = tmp_path / "f.db"
    done = run_ohlog("ingest", "-q", "--db", path, "-", input=json.dumps(SESSIONS))
    assert done.returncode == 0, done.stderr
    return path


def out(run_ohlog, *args):
    done = run_ohlog("query", *args)
    assert (done.returncode, done.stderr) == (0, b""), done.stderr
    return done.stdout.decode()


@pytest.mark.parametrize("text, names", [
    ("userId,utc", ("userId", "utc")),
    (" type , properties.locationX ", ("type", "properties.locationX")),
    ("properties.a.b", ("properties.a.b",)),  # the key is everything after "properties."
    ('properties."a,b",time', ("properties.a,b", "time")),  # a quoted key may hold a comma
    ('properties." x "', ("properties. x ",)),
    ("offset,local,utc,sessionId", ("offset", "local", "utc", "sessionId")),
])
def test_parse_fields(text, names):
    assert parse_fields(text) == names


FORMS = "userId, sessionId, time, type, properties, utc, local, offset or properties.KEY"


@pytest.mark.parametrize("text, message", [
    ("user", f"unknown field 'user': expected {FORMS}"),
    ("UserId", f"unknown field 'UserId': expected {FORMS}"),
    ("properties.", f"unknown field 'properties.': expected {FORMS}"),
    ("", f"an empty field in '': expected {FORMS}"),
    ("type,,time", f"an empty field in 'type,,time': expected {FORMS}"),
    ("type,", f"an empty field in 'type,': expected {FORMS}"),
    ("type,type", "'type' is given twice"),
    ('properties."a', "not a JSON string: '\"a'"),
])
def test_bad_fields(text, message):
    with pytest.raises(FieldsError) as info:
        parse_fields(text)
    assert str(info.value) == message


def test_utc_and_local_are_exact_to_the_digits_written(db, run_ohlog):
    rows = [json.loads(x) for x in
            out(run_ohlog, "--db", db, "--nl", "--fields", "time,utc,local,offset").splitlines()]
    assert rows == [
        {"time": "2018-10-18T21:37:28.123456789+05:30", "utc": "2018-10-18T16:07:28.123456789Z",
         "local": "2018-10-18T21:37:28.123456789", "offset": "+05:30"},
        {"time": "2018-10-18T21:37:30", "utc": "2018-10-18T21:37:30Z",
         "local": "2018-10-18T21:37:30", "offset": None},  # no offset written: taken as UTC
        {"time": "2018-10-18T21:37:31.1234567Z", "utc": "2018-10-18T21:37:31.1234567Z",
         "local": "2018-10-18T21:37:31.1234567", "offset": "+00:00"},
        {"time": "2018-10-18T21:37:29,5-06:00", "utc": "2018-10-19T03:37:29.5Z",
         "local": "2018-10-18T21:37:29.5", "offset": "-06:00"},
    ]


def test_iso_agrees_with_datetime_and_reaches_past_its_years():
    rng = random.Random(11)
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    for _ in range(2000):
        us = rng.randrange(-62135596800 * 10**6, 253402300799 * 10**6)
        ns = rng.randrange(1000)
        expected = (epoch + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%f")
        assert iso(us, ns, 9) == expected.rjust(26, "0") + f"{ns:03d}"
        assert iso(us, ns, 0) == expected[:-7].rjust(19, "0")
    # An offset takes a stored time beyond years 1..9999, which datetime cannot hold
    assert iso(-62135596800 * 10**6 - 5 * 3600 * 10**6, 0, 0) == "0000-12-31T19:00:00"
    assert iso(253402300799 * 10**6 + 5 * 3600 * 10**6, 0, 3) == "10000-01-01T04:59:59.000"


def test_utc_beyond_the_years_of_datetime(tmp_path, run_ohlog):
    path = tmp_path / "edge.db"
    doc = {"userId": "u", "sessionId": "s", "actions": [
        {"time": "0001-01-01T00:00:00+05:00", "type": "A", "properties": {}},
        {"time": "9999-12-31T23:59:59.5-05:00", "type": "B", "properties": {}}]}
    assert run_ohlog("ingest", "-q", "--db", path, "-", input=json.dumps(doc)).returncode == 0
    assert out(run_ohlog, "--db", path, "--csv", "--fields", "type,utc").splitlines() == [
        "type,utc", "A,0000-12-31T19:00:00Z", "B,10000-01-01T04:59:59.5Z"]
    table = out(run_ohlog, "--db", path, "--table", "--show-tz", "Asia/Tokyo")
    assert "0000-12-31T19:00:00Z" in table and "10000-01-01T04:59:59.5Z" in table


def test_properties_in_json_are_values(db, run_ohlog):
    fields = ('properties.name,properties.locationX,properties.big,properties.ok,'
              'properties.none,properties.nested,properties.a.b,properties."a,b",'
              'properties.depth,properties.missing')
    first = json.loads(out(run_ohlog, "--db", db, "--json", "--fields", fields))["actions"][0]
    assert list(first) == ["properties.name", "properties.locationX", "properties.big",
                           "properties.ok", "properties.none", "properties.nested",
                           "properties.a.b", "properties.a,b", "properties.depth",
                           "properties.missing"]
    assert list(first.values()) == ['Zoë, "the" user', 52, BIG, True, None, {"a": [1, 2]},
                                    "dotted", "comma", 0.5, None]


def test_csv_cells_hold_values_not_json(db, run_ohlog):
    text = out(run_ohlog, "--db", db, "--csv", "--fields",
               "type,properties.name,properties.locationX,properties.big,properties.ok,"
               "properties.none,properties.nested,properties.depth,properties.missing,offset")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["type", "properties.name", "properties.locationX", "properties.big",
                       "properties.ok", "properties.none", "properties.nested",
                       "properties.depth", "properties.missing", "offset"]
    # strings and numbers as themselves; true, null, objects as JSON text; missing: empty
    assert rows[1] == ["TAP", 'Zoë, "the" user', "52", str(BIG), "true", "null",
                       '{"a":[1,2]}', "0.5", "", "+05:30"]
    assert rows[2] == ["MOVE", "", "52", "", "", "", "", "", "", ""]  # the text "52"
    assert rows[3][0] == "SCROLL" and float(rows[3][7]) == -1e-7


@pytest.mark.parametrize("fmt", ["--json", "--nl", "--csv"])
def test_the_five_stored_fields_print_exactly_what_no_fields_prints(db, run_ohlog, fmt):
    plain = out(run_ohlog, "--db", db, fmt)
    assert out(run_ohlog, "--db", db, fmt, "--fields",
               "userId,sessionId,time,type,properties") == plain
    # and a different order is that order
    swapped = out(run_ohlog, "--db", db, fmt, "--fields", "type,userId")
    assert swapped != plain and swapped.count("\n") == plain.count("\n")


def test_json_envelope_and_empty_answer(db, run_ohlog):
    assert out(run_ohlog, "--db", db, "--json", "--fields", "type", "-n", "2") == (
        '{"actions": [\n  {"type":"TAP"},\n  {"type":"MOVE"}\n]}\n')
    assert out(run_ohlog, "--db", db, "--json", "--fields", "type", "--date", "2100") == (
        '{"actions": []}\n')
    assert out(run_ohlog, "--db", db, "--csv", "--fields", "utc", "--date", "2100") == "utc\r\n"


@pytest.mark.parametrize("args, message", [
    (["--table", "--fields", "type"],
     "--fields chooses what JSON, NDJSON and CSV print: add --json, --nl or --csv"),
    (["--nl", "--fields", "kind"], f"Invalid value for '--fields': unknown field 'kind': expected {FORMS}"),
    (["--json", "--show-tz", "UTC"],
     "--show-tz is for the table; in JSON, NDJSON and CSV, --fields utc gives each instant in UTC"),
    (["--table", "--show-tz", "Mars/Olympus"],
     "Invalid value for '--show-tz': unknown time zone 'Mars/Olympus': expected an IANA name "
     "such as America/Denver, or UTC"),
])
def test_usage_errors(db, run_ohlog, args, message):
    done = run_ohlog("query", "--db", db, *args)
    assert done.returncode == 2 and done.stdout == b""
    assert done.stderr.decode().splitlines()[-1] == f"Error: {message}"


def test_show_tz_table(db, run_ohlog, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # wide enough for each time on one line
    lines = out(run_ohlog, "--db", db, "--table", "--show-tz", "America/Denver").splitlines()
    assert lines[0].split()[:2] == ["Time", "(America/Denver)"]
    times = [line.split()[0] for line in lines[2:] if line.startswith("20")]
    # every time in Denver's clock (MDT on that day), in order, digits as written
    assert times == ["2018-10-18T10:07:28.123456789-06:00", "2018-10-18T15:37:30-06:00",
                     "2018-10-18T15:37:31.1234567-06:00", "2018-10-18T21:37:29.5-06:00"]
    utc = out(run_ohlog, "--db", db, "--table", "--show-tz", "utc").splitlines()
    assert [line.split()[0] for line in utc[2:] if line.startswith("20")] == [
        "2018-10-18T16:07:28.123456789Z", "2018-10-18T21:37:30Z", "2018-10-18T21:37:31.1234567Z",
        "2018-10-19T03:37:29.5Z"]
    # Without --show-tz the table shows the time as sent, as before
    plain = out(run_ohlog, "--db", db, "--table").splitlines()
    assert plain[2].split()[0] == "2018-10-18T21:37:28.123456789+05:30"


def test_show_tz_across_a_dst_change(tmp_path, run_ohlog):
    path = tmp_path / "dst.db"
    doc = {"userId": "u", "sessionId": "s", "actions": [
        {"time": "2018-11-04T07:30:00Z", "type": "A", "properties": {}},  # 01:30 MDT
        {"time": "2018-11-04T08:30:00Z", "type": "B", "properties": {}}]}  # 01:30 MST
    assert run_ohlog("ingest", "-q", "--db", path, "-", input=json.dumps(doc)).returncode == 0
    table = out(run_ohlog, "--db", path, "--table", "--show-tz", "America/Denver")
    assert "2018-11-04T01:30:00-06:00" in table and "2018-11-04T01:30:00-07:00" in table


def test_fields_on_postgresql(pg_db_url, run_ohlog):
    done = run_ohlog("ingest", "-q", "--db", pg_db_url, "-", input=json.dumps(SESSIONS))
    assert done.returncode == 0, done.stderr
    text = out(run_ohlog, "--db", pg_db_url, "--csv", "--fields",
               "userId,utc,offset,properties.name,properties.big")
    assert text.splitlines()[:2] == ["userId,utc,offset,properties.name,properties.big",
                                    f'u1,2018-10-18T16:07:28.123456789Z,+05:30,"Zoë, ""the"" user",{BIG}']


@pytest.mark.parametrize("text", [
    '{"pageFrom":"home","pageTo":"cart"}', '{}', '{"a":"12345678901234567890123"}',
    '{"a":18446744073709551616}', '{"a":"x","b":{"c":[123456789012345678901]}}',
    '{"a":1,"b":2.5,"c":null,"d":true}', '[18446744073709551616]', '123456789012345678901',
    '"text"', 'null', '{"a":"\\ud800","b":18446744073709551616}', '{"a":"x","a":"y"}',
    '{"a":-99999999999999999999,"b":"s"}',
])
def test_exact_loads_reads_as_the_standard_library_does(text):
    # the standard library keeps every integer exactly: the reference; repr tells 1 from 1.0
    assert repr(exact_loads(text)) == repr(json.loads(text))


@pytest.mark.parametrize("text", ['{"a":"x"', '{"a":"\\ud800"}', '', '{"a":12345678901234567890',
                                  '{"a":"x"} trailing', '{"a":1e400}'])
def test_exact_loads_refuses_what_one_of_its_parsers_refuses(text):
    reference = None
    try:
        reference = json.loads(text)
    except ValueError:
        pass
    try:
        found = exact_loads(text)
    except ValueError:
        found = "refused"
    # the stored JSON never holds these; what matters is the same answer as before:
    # orjson's for text without a long run of digits, else the standard library's
    assert found == ("refused" if reference is None or "0" * 19 not in text.translate(
        str.maketrans("123456789", "000000000")) else reference)
