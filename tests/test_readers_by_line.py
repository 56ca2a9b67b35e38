"""The stream reader's one-record-a-line path (orjson) reads what the full
path (the stdlib's scanner) reads: the same records, values, raw text, lines
and errors, for arrays and concatenated objects of every layout."""

import io
import json
import random

import pytest

from openhouse_cli import readers
from openhouse_cli.readers import _JsonStream, first_line


def both_ways(text):
    """The records the stream reader finds in ``text``, with the
    one-record-a-line path and without it, each as comparable values."""
    def read(by_line):
        fp = io.BufferedReader(io.BytesIO(text.encode()))
        first, blank = first_line(fp)
        records = _JsonStream(fp, "in.json", first, blank, by_line=by_line).records()
        # repr tells 1 from 1.0 and -0.0 from 0.0; str(error) holds its location
        return [(r.line, repr(r.value), r.raw, str(r.error), r.ends_input) for r in records]
    return read(True), read(False)


def check(text):
    fast, full = both_ways(text)
    assert fast == full
    return fast


def session(i, **extra):
    doc = {"userId": f"u{i}", "sessionId": f"s{i}", "actions": [
        {"time": "2018-03-01T18:23:23+10:00", "type": "CLICK", "properties": {"locationX": i, "locationY": 2}}]}
    doc.update(extra)
    return json.dumps(doc)


def array(lines, separator=",\n"):
    return "[\n" + separator.join(lines) + "\n]\n"


def stream(text):
    fp = io.BufferedReader(io.BytesIO(text.encode()))
    return _JsonStream(fp, "in.json", *first_line(fp))


def test_the_path_serves_an_array_of_one_record_a_line():
    records = check(array([session(i) for i in range(5)]))
    assert [r[0] for r in records] == [2, 3, 4, 5, 6]
    assert all(r[3] == "None" for r in records)
    reader = stream(array([session(i) for i in range(5)]))
    assert len(list(reader.records())) == 5 and reader.by_line  # never turned off


def test_the_path_turns_off_for_records_on_several_lines():
    reader = stream(array([session(0), json.dumps(json.loads(session(1)), indent=2), session(2)]))
    assert len(list(reader.records())) == 3 and not reader.by_line


@pytest.mark.parametrize("separator", [",\n", "\n,", ", \r\n", ",\n\n", " ,\n"])
def test_layouts_of_the_separators(separator):
    check(array([session(i) for i in range(4)], separator))


NUMBERS = ["0", "-0", "-0.0", "1.0", "1e5", "1E+2", "-2.5e-3", "123456789012345678", "-123456789012345678",
           "1234567890123456789", "12345678901234567890123", "-9223372036854775809", "18446744073709551616",
           "1.7976931348623157e308", "1e308", "1e309", "-1e400", "4.9e-324", "1e-400", "2.2250738585072014e-308",
           "0.1", "0.30000000000000004", "9007199254740993", "1.00000000000000000001", "NaN", "Infinity",
           "-Infinity", "1.5e0300", "00", "1.", ".5", "+1"]


@pytest.mark.parametrize("number", NUMBERS)
def test_each_number_reads_the_same_both_ways(number):
    lines = [session(0), session(1).replace('"locationY": 2', f'"locationY": {number}'), session(2)]
    check(array(lines))


def test_random_floats_and_integers_read_the_same_both_ways():
    rng = random.Random(5)
    values = []
    for _ in range(400):
        values.append(repr(rng.uniform(-1e6, 1e6)))
        values.append(f"{rng.randint(1, 9)}.{rng.randint(0, 10**15)}e{rng.randint(-330, 300)}")
        values.append(str(rng.randint(-2**63, 2**63)))
        values.append(f"{rng.random()}e-{rng.randint(300, 330)}")
    lines = [session(i).replace('"locationY": 2', f'"locationY": {v}') for i, v in enumerate(values)]
    records = check(array(lines))
    assert len(records) == len(lines)


STRINGS = ['"a}b"', '"{"', '"\\u00e9\\n\\t\\\\\\"/"', '"\\ud83d\\ude00"', '"\\ud800"', '"x\\udc00y"', '"é😀"',
           '"\\u0000"', '"tab\there"', '"\\x"']


@pytest.mark.parametrize("string", STRINGS)
def test_each_string_reads_the_same_both_ways(string):
    lines = [session(0), session(1).replace('"u1"', string), session(2).replace('"CLICK"', string)]
    check(array(lines))


def test_repeated_keys_read_the_same_both_ways():
    twice = session(1)[:-1] + ', "actions": []}'
    other = session(2)[:-1] + ', "userId": "again"}'
    escaped = session(3).replace('"actions"', '"\\u0061ctions"', 1)[:-1] + ', "actions": []}'
    assert "given twice" in check(array([session(0), twice, session(4)]))[1][3]
    assert "given twice" in check(array([session(0), escaped, session(4)]))[1][3]
    assert [r[3] for r in check(array([session(0), other, session(4)]))] == ["None"] * 3


@pytest.mark.parametrize("depth", [10, 400, 600, 990, 1000, 1100])
def test_deep_nesting_reads_the_same_both_ways(depth):
    deep = session(1)[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
    check(array([session(0), deep, session(2)]))


@pytest.mark.parametrize("value", ["1", '"text"', "[]", "null", "{}", "[{}]", '{"a": 1}{"b": 2}'])
def test_elements_that_are_not_sessions_read_the_same_both_ways(value):
    check(array([session(0), value, session(2)]))


@pytest.mark.parametrize("broken", [
    '{"userId": "u", "actions": [}', '{"userId": "u",}', '{"userId": "u"} x', '{"userId" "u"}',
    '{"userId": "u"', '{"a": 1}}', "{\x01}", '{"userId": "u\x01"}'])
def test_syntax_errors_read_the_same_both_ways(broken):
    check(array([session(0), broken, session(2)]))


def test_records_on_several_lines_read_the_same_both_ways():
    pretty = json.dumps(json.loads(session(1)), indent=2)
    check(array([session(0), pretty, session(2), session(3)]))
    check(session(0) + "\n" + pretty + "\n" + session(2) + "\n")
    check(session(0) + session(1) + "\n" + session(2) + "\n")  # two objects on a line
    check(array([session(0) + ", " + session(1), session(2)]))


def test_an_array_on_one_line_reads_the_same_both_ways():
    check("[" + ", ".join(session(i) for i in range(50)) + "]")


def test_records_across_the_stream_chunks_read_the_same_both_ways():
    filler = "x" * 900
    lines = [session(i, pad=filler) for i in range(2 * readers.STREAM_CHUNK // 1000)]
    records = check(array(lines))
    assert len(records) == len(lines) and all(r[3] == "None" for r in records)
    check(array(lines)[:-300])  # cut short at the end


def test_a_line_longer_than_the_path_looks_at_reads_the_same_both_ways():
    long = session(1, pad="y" * readers._LINE_RECORD_CHARS)
    check(array([session(0), long, session(2)]))
