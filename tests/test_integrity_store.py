"""Integrity of what is stored and found: fingerprints nobody can forge, one
notion of type case, times exact to the nanosecond, and tie order."""

import hashlib
import json

import pytest

from openhouse_cli.ingest import ingest_sessions
from openhouse_cli.query import query_actions
from openhouse_cli.times import parse_time_spec, resolve_bound
from openhouse_cli.validate import session_rows


def doc(*actions, user="u", session="s"):
    return {"userId": user, "sessionId": session, "actions": [
        {"time": t, "type": k, "properties": p} for t, k, p in actions]}


def types(db, **filters):
    return [a["type"] for a in query_actions(db, **filters)]


def times(db, **filters):
    return [a["time"] for a in query_actions(db, **filters)]


# --- fingerprints ---------------------------------------------------------

def test_fingerprints_are_128_bit_blake2b_and_differ_for_any_changed_field():
    base = ("2018-10-18T21:37:28Z", "NOTE", {"note": "a"})
    variants = [doc(base), doc(base, user="u2"), doc(base, session="s2"),
                doc(("2018-10-18T21:37:28.000Z", "NOTE", {"note": "a"})),
                doc(("2018-10-18T21:37:28Z", "note", {"note": "a"})),
                doc(("2018-10-18T21:37:28Z", "NOTE", {"note": "b"})),
                doc(("2018-10-18T21:37:28Z", "NOTE", {"note": "a", "x": None}))]
    prints = [session_rows(d, "f:1")[0][-1] for d in variants]
    assert all(isinstance(p, bytes) and len(p) == 16 for p in prints)
    assert len(set(prints)) == len(prints)


def test_the_fingerprint_is_blake2b_of_an_unambiguous_encoding():
    # Not a linear checksum (CRC-32 + Adler-32 could be forged in
    # milliseconds): BLAKE2b-128 over self-delimiting JSON pieces.
    d = doc(("2018-10-18T21:37:28Z", "NOTE", {"b": 2, "a": "x"}))
    key = b'["u","s"]' + b'["2018-10-18T21:37:28Z","NOTE"]' + b'{"a":"x","b":2}'
    expected = hashlib.blake2b(key, digest_size=16, person=b"ohlog-action").digest()
    assert session_rows(d, "f:1")[0][-1] == expected


@pytest.mark.parametrize("left, right", [
    (("a\x1fb", "c"), ("a", "b\x1fc")),      # a separator inside an id
    (('a","b', "c"), ("a", '","b","c')),        # JSON quoting inside an id
    (("a]", "b"), ("a", "]b")),
])
def test_ids_that_shift_between_fields_are_different_actions(store, left, right):
    docs = [doc(("2018-10-18T21:37:28Z", "T", {}), user=u, session=s) for u, s in (left, right)]
    assert ingest_sessions(store, docs).inserted == 2
    assert ingest_sessions(store, docs).duplicates == 2


# --- type case: Unicode case folding everywhere -----------------------------

@pytest.mark.parametrize("stored, asked", [
    ("ÉVÉNEMENT", "événement"), ("événement", "ÉVÉNEMENT"), ("STRASSE", "straße"),
    ("ΣΊΣΥΦΟΣ", "σίσυφος"), ("click", "CLICK"), ("CLICK", "Click"),
])
def test_type_filters_fold_unicode_case(store, stored, asked):
    ingest_sessions(store, [doc(("2018-10-18T21:37:28Z", stored, {"locationX": 1, "locationY": 2}))])
    assert types(store, types=(asked,)) == [stored]


def test_a_dotless_i_is_not_click_in_validation_nor_in_queries(store):
    # "clıck" does not fold to "click": it is another type, so its
    # properties are not checked as CLICK's, and --type click does not find it
    ingest_sessions(store, [doc(("2018-10-18T21:37:28Z", "clıck", {}))])
    assert types(store, types=("click",)) == []
    assert types(store, types=("CLıCK",)) == ["clıck"]


def test_known_type_rules_apply_under_case_folding():
    from openhouse_cli.errors import InvalidInput

    with pytest.raises(InvalidInput, match="locationX"):
        session_rows(doc(("2018-10-18T21:37:28Z", "cLiCk", {})), "f:1")


def test_type_with_nul_is_matched_exactly(store):
    ingest_sessions(store, [doc(("2018-10-18T21:37:28Z", "A\x00B", {}), ("2018-10-18T21:37:29Z", "A", {}))])
    assert types(store, types=("a\x00b",)) == ["A\x00B"]
    assert types(store, types=("a",)) == ["A"]


# --- nanoseconds -------------------------------------------------------------

SEVEN = ["2018-10-18T21:37:28.1234569Z", "2018-10-18T21:37:28.1234561Z",
         "2018-10-18T21:37:28.123456Z", "2018-10-18T21:37:28.12345699Z"]


def test_order_is_exact_beyond_the_microsecond(store):
    ingest_sessions(store, [doc(*[(t, "T", {}) for t in SEVEN])])
    expected = ["2018-10-18T21:37:28.123456Z", "2018-10-18T21:37:28.1234561Z",
                "2018-10-18T21:37:28.1234569Z", "2018-10-18T21:37:28.12345699Z"]
    assert times(store) == expected
    assert times(store, order="desc") == expected[::-1]


@pytest.mark.parametrize("start, end, expected", [
    ("2018-10-18T21:37:28.1234565Z", None, [SEVEN[0], SEVEN[3]]),
    ("2018-10-18T21:37:28.1234561Z", "2018-10-18T21:37:28.1234561Z", [SEVEN[1]]),
    ("2018-10-18T21:37:28.123456Z", "2018-10-18T21:37:28.123456Z", [SEVEN[2]]),  # an exact instant
    (None, "2018-10-18T21:37:28.12345690Z", [SEVEN[2], SEVEN[1], SEVEN[0]]),
    ("2018-10-18T21:37:28.123456991Z", None, []),
    ("2018-10-18T21:37:28.12345699", "2018-10-18T21:37:28.123456990", [SEVEN[3]]),  # wall clock, exact instants
])
def test_bounds_are_exact_to_the_digits_written(store, start, end, expected):
    ingest_sessions(store, [doc(*[(t, "T", {}) for t in SEVEN])])
    bounds = {}
    if start:
        bounds["start"] = resolve_bound(parse_time_spec(start))
    if end:
        bounds["end"] = resolve_bound(parse_time_spec(end), end=True)
    assert sorted(times(store, **bounds)) == sorted(expected)


def test_more_than_nine_digits_is_a_located_error():
    from openhouse_cli.errors import InvalidInput

    with pytest.raises(InvalidInput, match="beyond nanoseconds"):
        session_rows(doc(("2018-10-18T21:37:28.1234567891Z", "T", {})), "f:1")


def test_nanosecond_actions_are_distinct_not_duplicates(store):
    docs = [doc(("2018-10-18T21:37:28.1234561Z", "T", {})), doc(("2018-10-18T21:37:28.1234562Z", "T", {}))]
    assert ingest_sessions(store, docs).inserted == 2


# --- tie order ------------------------------------------------------------------

def test_ties_keep_ingestion_order_in_both_directions(store):
    same = "2018-10-18T21:37:28Z"
    ingest_sessions(store, [doc((same, "FIRST", {}), ("2018-10-18T21:37:27Z", "EARLIER", {}),
                             (same, "SECOND", {}), ("2018-10-18T21:37:28.000Z", "THIRD", {}))])
    assert types(store) == ["EARLIER", "FIRST", "SECOND", "THIRD"]
    assert types(store, order="desc") == ["FIRST", "SECOND", "THIRD", "EARLIER"]
    assert [json.loads(a)["type"] for a in __import__("openhouse_cli.query", fromlist=["x"]).query_json(
        store, order="desc", limit=2)] == ["FIRST", "SECOND"]
