import copy

import pytest

from openhouse_cli.errors import InvalidInput
from openhouse_cli.validate import COLUMNS, session_rows

GOOD = {"userId": "ABC123XYZ", "sessionId": "XYZ456ABC", "actions": [
    {"time": "2018-10-18T21:37:28-06:00", "type": "CLICK", "properties": {"locationX": 52, "locationY": 11}},
    {"time": "2018-10-18T21:37:30-06:00", "type": "VIEW", "properties": {"viewedId": "FDJKLHSLD"}},
    {"time": "2018-10-18T21:37:30-06:00", "type": "NAVIGATE",
     "properties": {"pageFrom": "communities", "pageTo": "inventory"}},
]}


def doc_with(path, value):
    """GOOD with the value at ``path`` (keys and indexes) replaced, or deleted if value is DELETE."""
    doc = copy.deepcopy(GOOD)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


DELETE = object()


def error_of(doc):
    with pytest.raises(InvalidInput) as info:
        session_rows(doc, "f.ndjson:17")
    return str(info.value)


def test_good_document_gives_one_row_an_action():
    rows = session_rows(GOOD, "f:1")
    assert len(rows) == 3
    first = dict(zip(COLUMNS, rows[0]))
    assert first["user_id"] == "ABC123XYZ"
    assert first["time"] == "2018-10-18T21:37:28-06:00"
    assert first["offset_s"] == -6 * 3600
    assert first["utc_us"] - first["local_us"] == 6 * 3600 * 1_000_000
    assert first["properties"] == '{"locationX":52,"locationY":11}'


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("userId",), DELETE, "userId: missing (expected a non-empty string)"),
        (("userId",), "", "userId: expected a non-empty string, got ''"),
        (("userId",), 123, "userId: expected a non-empty string, got 123"),
        (("sessionId",), None, "sessionId: expected a non-empty string, got null"),
        (("actions",), [], "actions: expected a non-empty list of actions, got an empty list"),
        (("actions",), {}, "actions: expected a non-empty list of actions, got an empty object"),
        (("actions",), DELETE, "actions: missing (expected a non-empty list of actions)"),
        (("actions", 1), "x", "actions[1]: expected an action object, got 'x'"),
        (("actions", 2, "time"), "2018-13-45", "actions[2].time: not an ISO 8601 time: '2018-13-45'"),
        (("actions", 2, "time"), "2018-02-30T10:00:00Z", "actions[2].time: not an ISO 8601 time: '2018-02-30T10:00:00Z'"),
        (("actions", 2, "time"), "2018-10-18", "actions[2].time: not an ISO 8601 time with a time of day: '2018-10-18'"),
        (("actions", 2, "time"), "2018-10-18T21:37:30+14:01", "actions[2].time: UTC offset beyond ±14:00: '2018-10-18T21:37:30+14:01'"),
        (("actions", 2, "time"), "2018-10-18T21:37:30+25:00", "actions[2].time: UTC offset beyond ±14:00: '2018-10-18T21:37:30+25:00'"),
        (("actions", 2, "time"), "2018-10-18T21:37:30.123-99:00", "actions[2].time: UTC offset beyond ±14:00: '2018-10-18T21:37:30.123-99:00'"),
        (("actions", 2, "time"), "20181018T213730+2400", "actions[2].time: UTC offset beyond ±14:00: '20181018T213730+2400'"),
        (("actions", 2, "time"), "2018-10-18T21:37:30+05:75", "actions[2].time: UTC offset minutes beyond 59: '2018-10-18T21:37:30+05:75'"),
        (("actions", 2, "time"), "2018-10-18T21:37:30-0199", "actions[2].time: UTC offset minutes beyond 59: '2018-10-18T21:37:30-0199'"),
        (("actions", 2, "time"), "2018-10-18T21:37:30+05:30:61", "actions[2].time: UTC offset minutes beyond 59: '2018-10-18T21:37:30+05:30:61'"),
        (("actions", 2, "time"), "2018-02-30T10:00:00+25:00", "actions[2].time: not an ISO 8601 time: '2018-02-30T10:00:00+25:00'"),
        (("actions", 2, "time"), "2018-10-18T21:37:30+ab:00", "actions[2].time: not an ISO 8601 time: '2018-10-18T21:37:30+ab:00'"),
        (("actions", 0, "time"), 1539898648, "actions[0].time: expected an ISO 8601 time string, got 1539898648"),
        (("actions", 0, "time"), DELETE, "actions[0].time: missing (expected an ISO 8601 time string)"),
        (("actions", 0, "type"), "", "actions[0].type: expected a non-empty string, got ''"),
        (("actions", 0, "type"), ["CLICK"], "actions[0].type: expected a non-empty string, got a list"),
        (("actions", 0, "properties"), None, "actions[0].properties: expected an object, got null"),
        (("actions", 0, "properties"), DELETE, "actions[0].properties: missing (expected an object)"),
        (("actions", 0, "properties", "locationX"), "52", "actions[0].properties.locationX: expected a number for CLICK, got '52'"),
        (("actions", 0, "properties", "locationY"), True, "actions[0].properties.locationY: expected a number for CLICK, got true"),
        (("actions", 0, "properties", "locationY"), DELETE, "actions[0].properties.locationY: missing (expected a number for CLICK)"),
        (("actions", 1, "properties", "viewedId"), 7, "actions[1].properties.viewedId: expected a string for VIEW, got 7"),
        (("actions", 2, "properties", "pageFrom"), None, "actions[2].properties.pageFrom: expected a string for NAVIGATE, got null"),
        (("actions", 2, "properties", "pageTo"), {}, "actions[2].properties.pageTo: expected a string for NAVIGATE, got an empty object"),
    ],
)
def test_every_rule_has_its_located_message(path, value, message):
    assert error_of(doc_with(path, value)) == "f.ndjson:17: " + message


def test_a_record_that_is_not_an_object():
    # a list of sessions on one line: how to split it is said (not to an HTTP client)
    assert error_of([GOOD]) == ("f.ndjson:17: expected a session object, got a list; write one session"
                                " a line (jq -c '.[]' splits a list)")
    assert error_of([]) == "f.ndjson:17: expected a session object, got an empty list"
    assert error_of(7) == "f.ndjson:17: expected a session object, got 7"
    with pytest.raises(InvalidInput) as caught:
        session_rows([GOOD], "body")
    assert str(caught.value) == "body: expected a session object, got a list"


def test_long_values_are_shortened_in_messages():
    message = error_of(doc_with(("actions", 0, "time"), "x" * 1000))
    assert message == "f.ndjson:17: actions[0].time: not an ISO 8601 time: '" + "x" * 40 + "…'"


@pytest.mark.parametrize("x, y", [(0, 0), (0.0, -1), (1e9, 3)])
def test_zero_and_floats_are_numbers(x, y):
    assert session_rows(doc_with(("actions", 0, "properties"), {"locationX": x, "locationY": y}), "f:1")


def test_known_types_are_checked_case_insensitively():
    doc = doc_with(("actions", 0, "type"), "click")
    doc["actions"][0]["properties"] = {}
    assert "locationX: missing (expected a number for click)" in error_of(doc)


def test_unknown_types_and_extra_properties_are_kept_as_they_are():
    doc = doc_with(("actions", 0), {"time": "2018-10-18T21:37:28Z", "type": "SCROLL",
                                     "properties": {"b": [1, {"z": None}], "a": "é"}})
    doc["actions"][1]["properties"]["extra"] = 1
    rows = session_rows(doc, "f:1")
    # stored with sorted keys (JSON objects are unordered; this makes retries match)
    assert rows[0][COLUMNS.index("properties")] == '{"a":"é","b":[1,{"z":null}]}'
    assert rows[1][COLUMNS.index("properties")] == '{"extra":1,"viewedId":"FDJKLHSLD"}'


def test_time_without_offset_is_taken_as_utc():
    row = dict(zip(COLUMNS, session_rows(doc_with(("actions", 0, "time"), "2018-10-18T21:37:28"), "f:1")[0]))
    assert row["offset_s"] is None
    assert row["utc_us"] == row["local_us"]


def test_fingerprints_ignore_key_order_and_separate_repeats():
    reordered = doc_with(("actions", 0, "properties"), {"locationY": 11, "locationX": 52})
    assert session_rows(reordered, "f:1")[0][-1] == session_rows(GOOD, "f:1")[0][-1]
    repeated = doc_with(("actions",), [GOOD["actions"][0]] * 3)
    fingerprints = [row[-1] for row in session_rows(repeated, "f:1")]
    assert len(set(fingerprints)) == 3
    assert fingerprints == [row[-1] for row in session_rows(copy.deepcopy(repeated), "f:1")]
    other_user = doc_with(("userId",), "someone-else")
    assert session_rows(other_user, "f:1")[0][-1] != session_rows(GOOD, "f:1")[0][-1]
