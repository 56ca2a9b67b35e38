"""Issue 4.5, injection: hostile text in every field and every filter gives exact results.

Quotes, ``;--``, LIKE's ``%`` and ``_``, NUL, backslashes, JSON-path syntax
and right-to-left overrides are stored as user ids, session ids, types,
property keys and property values; then each is asked for through every
filter. The answer must be exactly the matching actions (types match
case-insensitively, ASCII only, as SQLite's NOCASE does), and
``sqlite_master`` must not change. The static half is test_reliability_sql_static.py.
"""

import json
import subprocess

import pytest
from click.testing import CliRunner

from openhouse_cli.cli import cli
from openhouse_cli.db import open_db
from openhouse_cli.ingest import ingest_sessions
from openhouse_cli.query import OPERATORS, Where, query_actions

from .test_reliability_common import OHLOG

HOSTILE = [
    "'", '"', "';--", "'; DROP TABLE actions;--", '"; DROP TABLE actions; --', "%", "_", "%_%",
    "a%", "_b", "\x00", "a\x00b", "a\x00", "\u202e", "\u202eevil\u202c.exe", "\\", "\\'", "\\u0000",
    "$", "$.a", "a.b", "[0]", "a[0]", "*", "1 OR 1=1", "' OR '1'='1", "NULL", "null", "?", "?1",
    ":name", "@x", "%s", "{}", "\n", "\r\n", "\t", "é", "/", "/a~b", "~1", "\U0001f600", "A", "a", "ǅ", "ß", "SS",
]
PLAIN = {"userId": "plain", "sessionId": "plain", "actions": [
    {"time": "2018-10-18T00:00:00Z", "type": "plain", "properties": {"k": "v", "a": "a"}}]}


def document(i, text):
    return {"userId": text, "sessionId": text, "actions": [
        {"time": f"2018-10-18T01:{i // 60:02d}:{i % 60:02d}Z", "type": text,
         "properties": {text: text, "n": i}},
        {"time": f"2018-10-18T02:{i // 60:02d}:{i % 60:02d}Z", "type": "plain",
         "properties": {"k": text}}]}


DOCS = [document(i, text) for i, text in enumerate(HOSTILE)] + [PLAIN]


def fold(text):
    """Types match under Unicode case folding (README "Filters")."""
    return text.casefold()


def expected(match):
    return sorted(json.dumps([d["userId"], d["sessionId"], a["time"], a["type"], a["properties"]],
                             sort_keys=True)
                  for d in DOCS for a in d["actions"] if match(d, a))


def got(actions):
    return sorted(json.dumps([a["userId"], a["sessionId"], a["time"], a["type"], a["properties"]],
                             sort_keys=True) for a in actions)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    path = tmp_path_factory.mktemp("injection") / "hostile.db"
    database = open_db(path)
    counts = ingest_sessions(database, DOCS)
    assert counts.inserted == sum(len(d["actions"]) for d in DOCS)
    master = database.conn.execute("SELECT * FROM sqlite_master ORDER BY name").fetchall()
    yield database, path
    assert database.conn.execute("SELECT * FROM sqlite_master ORDER BY name").fetchall() == master


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stored_any(request):
    """The hostile documents on each engine: (store, what --db takes)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("stored")
        return
    from openhouse_cli.store import open_store

    url = request.getfixturevalue("pg_server").create_database("injection")
    database = open_store(url)
    assert ingest_sessions(database, DOCS).inserted == sum(len(d["actions"]) for d in DOCS)
    tables = list(database.execute("SELECT relname FROM pg_class ORDER BY relname"))
    yield database, url
    assert list(database.execute("SELECT relname FROM pg_class ORDER BY relname")) == tables
    database.close()


FILTERS = {
    "users": lambda t: (dict(users=[t]), lambda d, a: d["userId"] == t),
    "sessions": lambda t: (dict(sessions=[t]), lambda d, a: d["sessionId"] == t),
    "types": lambda t: (dict(types=[t]), lambda d, a: fold(a["type"]) == fold(t)),
    "key=value": lambda t: (dict(where=[Where(t, "=", t)]), lambda d, a: a["properties"].get(t) == t),
    "key!=value": lambda t: (dict(where=[Where(t, "!=", t)]), lambda d, a: a["properties"].get(t) != t),
    "k=value": lambda t: (dict(where=[Where("k", "=", t)]), lambda d, a: a["properties"].get("k") == t),
    "k!=value": lambda t: (dict(where=[Where("k", "!=", t)]), lambda d, a: a["properties"].get("k") != t),
    "k>=value": lambda t: (dict(where=[Where("k", ">=", t)]),
                           lambda d, a: isinstance(a["properties"].get("k"), str)
                           and a["properties"]["k"].encode() >= t.encode()),
    "user+type+session": lambda t: (dict(users=[t, "plain"], types=[t, "PLAIN"], sessions=[t]),
                                    lambda d, a: d["userId"] == t and d["sessionId"] == t
                                    and fold(a["type"]) in (fold(t), "plain")),
}


def cases(kinds, texts):
    """(text, kind) pairs."""
    for text in texts:
        for kind in kinds:
            yield pytest.param(text, kind, id=f"{text!r}-{kind}")


@pytest.mark.parametrize("text, kind", list(cases(FILTERS, HOSTILE)))
def test_library_filters_are_exact(stored_any, kind, text):
    database, _ = stored_any
    filters, match = FILTERS[kind](text)
    assert got(query_actions(database, **filters)) == expected(match)


OPTIONS = {  # option -> (its value for text, the filter it means)
    "--user": (lambda t: t, "users"),
    "--session": (lambda t: t, "sessions"),
    "--type": (lambda t: t, "types"),
    "--where k=": (lambda t: f"k={json.dumps(t)}", "k=value"),
    "--where KEY=": (lambda t: f"{where_key(t)}={json.dumps(t)}", "key=value"),
}


def where_key(text):
    """A key as --where takes it: quoted as JSON if it holds an operator or
    spaces at its ends (the first operator would end it, the spaces be dropped)."""
    if text.startswith("/"):  # a JSON Pointer to the top-level key
        return json.dumps("/" + text.replace("~", "~0").replace("/", "~1"))
    if text != text.strip() or any(op in text for op in OPERATORS) or text.startswith('"'):
        return json.dumps(text)
    return text


def cli_cases():
    for text, kind in (p.values for p in cases(OPTIONS, HOSTILE)):
        if "\x00" in text:
            continue  # an argv item cannot hold a NUL
        yield from cases([kind], [text])


@pytest.mark.parametrize("text, option", list(cli_cases()))
def test_cli_filters_are_exact(stored_any, text, option):
    _, path = stored_any
    value, kind = OPTIONS[option]
    result = CliRunner().invoke(cli, ["query", "--db", str(path), "--nl", option.split()[0], value(text)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    got_ = got(json.loads(line) for line in result.stdout.splitlines())
    assert got_ == expected(FILTERS[kind](text)[1])


def test_through_the_real_command(stored):
    _, path = stored
    text = "'; DROP TABLE actions;--"
    proc = subprocess.run([OHLOG, "query", "--db", path, "--user", text, "--type", "%", "--csv"],
                          capture_output=True, check=True, timeout=120)
    assert proc.stdout.decode().splitlines() == ["userId,sessionId,time,type,properties"]
    proc = subprocess.run([OHLOG, "query", "--db", path, "--user", text, "--nl"],
                          capture_output=True, check=True, timeout=120)
    assert got(map(json.loads, proc.stdout.splitlines())) == expected(lambda d, a: d["userId"] == text)


def test_every_value_reads_back_as_stored(stored_any):
    database, _ = stored_any
    assert got(query_actions(database)) == expected(lambda d, a: True)


ESCAPES = "\x1b]0;pwned\x1b\\\x1b[2J\x1b[31m\x9b31m\x1b]52;c;ZXZpbA==\x1b\\\u202e"


def test_table_output_never_sends_the_datas_control_characters(tmp_path):
    path = tmp_path / "escapes.db"
    database = open_db(path)
    ingest_sessions(database, [{"userId": ESCAPES, "sessionId": ESCAPES, "actions": [
        {"time": "2018-10-18T21:37:28Z", "type": ESCAPES, "properties": {ESCAPES: ESCAPES}}]}])
    database.conn.close()
    # Not a terminal here, so rich adds no styling: any control character came from the data
    result = CliRunner().invoke(cli, ["query", "--db", str(path), "--table"], catch_exceptions=False)
    assert result.exit_code == 0
    assert not any(c in result.stdout for c in "\x1b\x9b"), repr(result.stdout)
