import gzip
import io
import json

import pytest

from openhouse_cli import readers
from openhouse_cli.readers import open_input, read_records

SESSION = {"userId": "u", "sessionId": "s", "actions": [
    {"time": "2018-10-18T21:37:28-06:00", "type": "CLICK", "properties": {"locationX": 1, "locationY": 2}}]}


def session(n):
    return dict(SESSION, sessionId=f"s{n}")


def read(data, name="in.json"):
    return list(read_records(open_input(io.BytesIO(data)), name))


def values(data):
    records = read(data)
    assert all(r.error is None for r in records), [str(r.error) for r in records]
    return [r.value for r in records]


def unindented(*docs, newline="\n"):
    """Sessions as the README shows one, with no indentation: the first line
    opens the session, then one action a line (each a whole object)."""
    def one(doc):
        head = json.dumps({k: v for k, v in doc.items() if k != "actions"})[:-1]
        actions = ("," + newline).join(json.dumps(a) for a in doc["actions"])
        return f'{head}, "actions": [{newline}{actions}]}}{newline}'
    return "".join(one(doc) for doc in docs)


def two_actions(n):
    return dict(session(n), actions=SESSION["actions"] * 2)


SHAPES = {
    "object": json.dumps(session(1), indent=2),
    "one-line object": json.dumps(session(1)),
    "array": json.dumps([session(1), session(2)]),
    "pretty array": json.dumps([session(1), session(2)], indent=2),
    "ndjson": "\n".join(json.dumps(session(n)) for n in (1, 2)) + "\n",
    "concatenated": "".join(json.dumps(session(n), indent=2) + "\n" for n in (1, 2)),
    "concatenated arrays": json.dumps([session(1)]) + "\n" + json.dumps([session(2)], indent=1),
    "crlf ndjson": "\r\n".join(json.dumps(session(n)) for n in (1, 2)) + "\r\n",
    "blank lines": "\n\n" + json.dumps(session(1)) + "\n\n\n" + json.dumps(session(2)) + "\n\n",
    "unindented object": unindented(two_actions(1)),
    "unindented, one action": unindented(session(1)),
    "unindented crlf": unindented(two_actions(1), newline="\r\n"),
    "unindented concatenated": unindented(two_actions(1), session(2)),
    "unindented pretty": "".join(
        "\n".join(line.lstrip() for line in json.dumps(two_actions(n), indent=2).splitlines()) for n in (1, 2)),
    "unindented array": "[\n" + ",\n".join(json.dumps(session(n)) for n in (1, 2)) + "\n]\n",
}
ONE_SESSION = ("object", "one-line object", "unindented object", "unindented, one action", "unindented crlf")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("bom", [False, True])
def test_every_shape_is_detected(shape, compress, bom):
    data = SHAPES[shape].encode()
    if bom:
        data = b"\xef\xbb\xbf" + data
    if compress:
        data = gzip.compress(data)
    expected = 1 if shape in ONE_SESSION else 2
    assert [v["sessionId"] for v in values(data)] == [f"s{n}" for n in range(1, expected + 1)]


def test_line_numbers_of_records():
    assert [r.line for r in read(SHAPES["blank lines"].encode())] == [3, 6]
    pretty = SHAPES["pretty array"].encode()
    lines = [r.line for r in read(pretty)]
    text = pretty.decode().splitlines()
    assert [text[n - 1].strip() for n in lines] == ["{", "{"]
    assert lines[0] == 2


def test_empty_input_has_no_records():
    assert read(b"") == []
    assert read(b"  \n\n ") == []
    assert read(b"[]") == []


@pytest.mark.parametrize(
    "data, expected",
    [
        (b'{"userId": "u"}\n{"userId": \n', "in.json:2:12: invalid JSON: unexpected end of data"),
        (b'{"userId": "u",\n  "x": tru}', "in.json:2:8: invalid JSON: Expecting value"),
        # the standard library's parser (a run of 19 digits) ends some messages with
        # "at", its own location: ohlog gives the location first, and whole words
        (b'{"n": 12345678901234567890, "s": "ab', "in.json:1:34: invalid JSON: unterminated string (it starts here)"),
        (b'{"n": 12345678901234567890, "s": "a\x01b"}', "in.json:1:36: invalid JSON: a control character in a string"),
        (b'[{"a": 1}, {"a": 2}', "in.json:1:20: invalid JSON: unexpected end of input: the array is not closed"),
        (b'[{"a": 1} {"a": 2}]', "in.json:1:11: invalid JSON: expected ',' or ']' after an array element"),
        (b'{\n"a": NaN}', "in.json:2:6: invalid JSON: NaN is not valid JSON"),
        (b'\n\n{\n"a": "\xff"}', "in.json:4: not valid UTF-8: invalid start byte"),
    ],
)
def test_syntax_errors_are_located(data, expected):
    records = read(data)
    assert str(records[-1].error) == expected
    assert all(r.error is None for r in records[:-1])


@pytest.mark.parametrize("first, expected", [
    (b'{"userId": }', "in.json:1:12: invalid JSON: unexpected character, expected a JSON value"),
    (b'{"userId": "u", "sess', "in.json:1:22: invalid JSON: unexpected end of data"),  # cut in a string
    (b'{"userId": "u", "actions": [{"time": tr', "in.json:1:40: invalid JSON: unexpected end of data"),
    # cut between tokens, where the next line's object cannot go on
    (b'{"userId": "u",', "in.json:1:16: invalid JSON: unexpected end of data"),
    (b'{"userId": "u", "sessionId": "s"', "in.json:1:33: invalid JSON: unexpected end of data"),
    (b'{"x": 1}]}', "in.json:1:9: invalid JSON: unexpected content after document"),  # rotated mid-record
])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
@pytest.mark.parametrize("compress", [False, True])
def test_a_bad_first_ndjson_line_is_one_located_record(first, expected, newline, compress):
    data = newline.join([first, json.dumps(session(2)).encode(), json.dumps(session(3)).encode(), b""])
    records = read(gzip.compress(data) if compress else data)
    assert [r.error is None for r in records] == [False, True, True]
    assert str(records[0].error) == expected
    alone = read(first + newline)
    assert [str(r.error) for r in alone] == [expected]


def test_ndjson_keeps_reading_after_a_bad_line():
    data = json.dumps(session(1)) + "\n{oops\n" + json.dumps(session(3)) + "\n"
    records = read(data.encode())
    assert [r.error is not None for r in records] == [False, True, False]
    assert str(records[1].error).startswith("in.json:2:2: invalid JSON:")


def test_deep_nesting_is_an_error_not_a_crash():
    deep = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    records = read(b"\n" + deep)
    assert records[-1].error is not None
    assert "nested too deeply" in str(records[-1].error)


def test_big_records_across_chunks(monkeypatch):
    monkeypatch.setattr(readers, "CHUNK", 64)
    docs = [dict(session(n), note="x" * 500) for n in range(20)]
    assert values(json.dumps(docs, indent=2).encode()) == docs
    assert values("".join(json.dumps(d, indent=1) for d in docs).encode()) == docs


def test_large_integers_match_between_parsers():
    # orjson (NDJSON) turns integers beyond 64 bits into floats; the stream parser too
    big = 2**70
    one_line = values(b'{"n": %d}' % big)[0]["n"]
    pretty = values(b'{\n"n": %d}' % big)[0]["n"]
    assert one_line == pretty == float(big)


def test_errors_in_pretty_records_point_at_the_fields_line(db):
    from openhouse_cli.ingest import IngestFailed, ingest_input

    doc = dict(SESSION, actions=[dict(SESSION["actions"][0]) for _ in range(3)])
    doc["actions"][2] = dict(doc["actions"][2], time="2018-13-45")
    text = "\n" + json.dumps([SESSION, doc], indent=2)
    with pytest.raises(IngestFailed) as info:
        ingest_input(db, io.BytesIO(text.encode()), "pretty.json")
    line = int(str(info.value).split(":")[1])
    assert text.splitlines()[line - 1].strip() == '"time": "2018-13-45",'
    # the record's place in the array too, as POST names it
    assert str(info.value) == f"pretty.json:{line}: [1].actions[2].time: not an ISO 8601 time: '2018-13-45'"


@pytest.mark.parametrize("layout", ["one line", "one record a line", "pretty"])
def test_an_error_in_an_array_names_the_records_place_in_it(db, layout):
    # Found from outside: in an array on one line, "in.json:1: actions[0].time"
    # did not say which record; POST /api/log says [2].actions[0].time
    from openhouse_cli.ingest import ingest_input

    docs = [dict(SESSION, sessionId=f"s{i}") for i in range(4)]
    docs[2] = dict(docs[2], actions=[dict(SESSION["actions"][0], time="bad")])
    docs[3] = 7
    if layout == "one line":
        text = json.dumps(docs)
    elif layout == "one record a line":
        text = "[\n" + ",\n".join(json.dumps(d) for d in docs) + "\n]\n"
    else:
        text = json.dumps(docs, indent=2)
    errors = []
    counts = ingest_input(db, io.BytesIO(text.encode()), "in.json", on_error="skip",
                          on_reject=lambda record, error: errors.append(f"{error.field}: {error.message}"))
    assert counts.sessions == 2
    assert errors == ["[2].actions[0].time: not an ISO 8601 time: 'bad'", "[3]: expected a session object, got 7"]
    # NDJSON and single documents have no place to name
    ndjson = "\n".join(json.dumps(d) for d in docs[1:3])
    errors.clear()
    ingest_input(db, io.BytesIO(ndjson.encode()), "in.ndjson", on_error="skip",
                 on_reject=lambda record, error: errors.append(error.field))
    assert errors == ["actions[0].time"]


@pytest.mark.parametrize("field, expected", [
    ("userId", '"userId": "u",'),
    ("actions[0].properties.locationY", '"locationY": 2'),
    ("actions[0]", "{"),
    ("actions[3].time", "{"),  # not there: the record's own line
])
def test_field_line_offset(field, expected):
    from openhouse_cli.locate import field_line_offset

    text = json.dumps(SESSION, indent=2)
    assert text.splitlines()[field_line_offset(text, field)].strip() == expected


def test_a_one_line_array_longer_than_a_chunk_is_streamed(monkeypatch):
    monkeypatch.setattr(readers, "CHUNK", 256)
    docs = [session(n) for n in range(50)]
    data = json.dumps(docs).encode()
    assert b"\n" not in data and len(data) > 20 * 256
    assert values(data) == docs
    long_first = json.dumps(dict(session(0), note="x" * 1000)) + "\n" + json.dumps(session(1)) + "\n"
    assert [v["sessionId"] for v in values(long_first.encode())] == ["s0", "s1"]


BOM = b"\xef\xbb\xbf"
MISPLACED_BOM = ("invalid JSON: a byte order mark (BOM) after the start of the input: one is read"
                 " only as its very first bytes (were files joined with cat?)")


@pytest.mark.parametrize("shape", ["ndjson", "array", "concatenated", "unindented array"])
@pytest.mark.parametrize("where", ["doubled", "second record", "joined files"])
def test_a_bom_anywhere_but_the_very_start_is_named_as_one(shape, where):
    """One BOM at the start is read in every shape; a second (doubled, or
    where files that each had one were joined) is named, at its place."""
    text = SHAPES[shape].encode()
    assert len(values(BOM + text)) == 2
    if where == "doubled":
        data, line = BOM + BOM + text, 1
    elif where == "second record":
        at = text.rfind(b"{", 0, text.index(b'"s2"'))  # where the second session opens
        data, line = text[:at] + BOM + text[at:], text[:at].count(b"\n") + 1
    else:
        data, line = BOM + text + b"\n" + BOM + text, text.count(b"\n") + 2
    bad = [r for r in read(data) if r.error is not None]
    # (a doubled BOM can make a first line that is not JSON, and so NDJSON: later lines fail too)
    assert len(bad) == 1 or where == "doubled"
    assert bad[0].error.message == MISPLACED_BOM
    assert bad[0].error.location.startswith(f"in.json:{line}:")


LONG_INT = "1" + "0" * 4300  # one digit past int()'s default limit


@pytest.mark.parametrize("shape", ["one line", "first of two lines", "pretty", "array", "unindented array"])
def test_an_integer_longer_than_int_takes_is_a_located_error_in_every_shape_and_place(shape):
    """Found from outside: on the FIRST line, where the shape is decided, such a
    number raised int()'s own ValueError (a traceback, and a 500 from the server)."""
    bad = dict(SESSION, actions=[dict(SESSION["actions"][0], properties={"n": "BIG"})])
    text = json.dumps(bad).replace('"BIG"', LONG_INT)
    data = {
        "one line": text,
        "first of two lines": text + "\n" + json.dumps(session(2)) + "\n",
        "pretty": '{"n": ' + LONG_INT + ',\n"userId": "u"}\n',
        "array": "[" + text + ", " + json.dumps(session(2)) + "]",
        "unindented array": "[\n" + text + ",\n" + json.dumps(session(2)) + "\n]\n",
    }[shape].encode()
    records = read(data)
    errors = [r.error for r in records if r.error is not None]
    assert errors and errors[0].message.startswith("invalid JSON: integer longer than 4300 digits: 1000")
    assert errors[0].location.startswith(f"in.json:{2 if shape == 'unindented array' else 1}:")
    # 4,300 digits are a number like any other
    assert values(json.dumps(bad).replace('"BIG"', LONG_INT[:-1]).encode())[0]["actions"][0][
        "properties"]["n"] == int(LONG_INT[:-1])


def _two_lists(spelling='"actions"'):
    """A session that gives its actions twice (the second list one action)."""
    first = json.dumps(SESSION["actions"] * 2)
    second = json.dumps([dict(SESSION["actions"][0], type="VIEW", properties={"viewedId": "v"})])
    return '{"userId": "u", "sessionId": "s", "actions": ' + first + ", " + spelling + ": " + second + "}"


@pytest.mark.parametrize("shape", ["ndjson", "second ndjson line", "array", "pretty", "concatenated"])
@pytest.mark.parametrize("spelling", ['"actions"', '"\\u0061ctions"', '"act\\u0069ons"', '"ACTIONS"'])
def test_a_session_that_gives_actions_twice_is_refused_not_cut_to_the_last(shape, spelling):
    """A JSON reader keeps the last of a repeated key: the first list's actions
    would be dropped without a word. Found from outside; refused in every
    shape, however the name is spelled with escapes (another key, such as
    ACTIONS, is a key of its own and changes nothing)."""
    twice = _two_lists(spelling)
    good = json.dumps(session(2))
    data = {
        "ndjson": twice + "\n" + good + "\n",
        "second ndjson line": good + "\n" + twice + "\n",
        "array": "[" + good + ", " + twice + "]",
        "pretty": json.dumps(json.loads(good), indent=2) + "\n" + twice.replace(", ", ",\n  ") + "\n",
        "concatenated": good + " " + twice,
    }[shape].encode()
    records = read(data)
    bad = [r for r in records if r.error is not None]
    if spelling == '"ACTIONS"':
        assert not bad and len(records) == 2
        return
    assert len(bad) == 1 and bad[0].value is None
    assert (bad[0].error.field, bad[0].error.message) == ("actions", (
        "given twice in one session: a JSON reader keeps only the last list, which would drop"
        " the actions of the other without a word"))
    assert [r.value["sessionId"] for r in records if r.error is None] == ["s2"]


def test_actions_twice_inside_properties_is_a_property_like_any_other():
    nested = dict(SESSION["actions"][0], type="NOTE", properties={"x": "X"})
    text = json.dumps(dict(SESSION, actions=[nested])).replace(
        '"X"', '{"userId": "u", "actions": [1], "actions": [2]}')
    (value,) = values(text.encode())
    assert value["actions"][0]["properties"]["x"] == {"userId": "u", "actions": [2]}


@pytest.mark.parametrize("depth", [10, 900, 976, 980, 990, 1000, 1023])
@pytest.mark.parametrize("shape", ["ndjson", "array"])
def test_actions_twice_is_refused_however_deep_an_ignored_key_nests(depth, shape):
    """Found from outside: a recursive re-parse gave up on a deeply nested
    ignored key, and giving up passed for "no repeat": the first list was
    dropped. Every depth the reader itself takes is checked."""
    deep = "[" * depth + "]" * depth
    twice = _two_lists().replace(', "actions": [{"time"', ', "extra": ' + deep + ', "actions": [{"time"', 1)
    twice = twice[:twice.rindex('"actions"')] + '"extra2": ' + deep + ", " + twice[twice.rindex('"actions"'):]
    data = (twice + "\n" if shape == "ndjson" else "[" + twice + "]").encode()
    (record,) = read(data)
    if record.error is not None and "nested too deeply" in record.error.message:
        return  # beyond what the reader parses at all: refused as such
    assert record.error is not None and record.error.field == "actions", (depth, record.error)
