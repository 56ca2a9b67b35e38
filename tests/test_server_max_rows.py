"""``ohlog serve --max-rows N`` end to end: capped answers, next links, cursors.

Each engine's database gets the same actions once; servers with several N
serve it. The expected answer of every query comes from the library
(query.query_json on the same database), which is what an uncapped GET sends.
"""

import contextlib
import json
import math
import subprocess
import urllib.parse

import pytest

from openhouse_cli.query import query_json
from openhouse_cli.server import create_app, parse_filters
from openhouse_cli.store import open_store

from .conftest import OHLOG
from .test_cli_serve import JSON, serving
from .test_server import call

# Ties on purpose: the same instant written in three zones, a nanosecond apart,
# and instants whose wall clocks sort otherwise.
TIMES = [
    ("u1", "s1", "2018-10-18T21:37:28-06:00", "CLICK"),
    ("u1", "s1", "2018-10-18T21:37:28.000000001-06:00", "VIEW"),
    ("u1", "s1", "2018-10-18T21:37:30-06:00", "NAVIGATE"),
    ("u2", "s2", "2018-10-19T03:37:28Z", "click"),
    ("u2", "s2", "2018-10-19T13:37:28+10:00", "VIEW"),
    ("u2", "s2", "2018-10-18T10:00:00+02:00", "CLICK"),
    ("u3", "s3", "2018-10-18T23:59:59.999999999Z", "Click"),
    ("u3", "s3", "2018-10-18T08:00:00Z", "VIEW"),
    ("u3", "s3", "2018-10-17T23:00:00-05:00", "NAVIGATE"),
    ("u3", "s3", "2018-10-19T00:00:00+00:00", "SCROLL"),
    ("u1", "s4", "2018-10-18T12:00:00.5-06:00", "CLICK"),
    ("u1", "s4", "2018-10-19T03:37:28.000000001Z", "VIEW"),
]
TOTAL = len(TIMES)
SIZES = (1, 2, TOTAL, TOTAL + 1)
QUERIES = [
    "",
    "userId=u1",
    "type=click",
    "userId=u1&userId=u3&type=VIEW&type=navigate",
    "start=2018-10-18T08:00&end=2018-10-18T21:37:29",  # wall clocks as written
    "start=2018-10-18T08:00Z&end=2018-10-19T13:37:28%2B10:00",  # instants, one with an offset
    "date=2018-10-18",
    "order=desc",
    "type=click&order=desc&start=2018-10-18T10:00:00%2B02:00",
    "limit=5",
    "userId=u1&order=desc&limit=3",
    "limit=0",
    "userId=nobody",
]


def sessions(rows, first=0):
    """One session document per (user, session), in the order given; property ``n`` numbers
    the actions from ``first``. (Every type's properties are there, so any type is valid.)"""
    docs = {}
    for n, (user, session, time, kind) in enumerate(rows, first):
        doc = docs.setdefault((user, session),
                              {"userId": user, "sessionId": session, "actions": []})
        doc["actions"].append({"time": time, "type": kind, "properties": {
            "n": n, "locationX": n, "locationY": 0, "viewedId": "v", "pageFrom": "a",
            "pageTo": "b"}})
    return list(docs.values())


def expected(db, query):
    """What an uncapped GET answers: the library's query on the same database."""
    store = open_store(str(db))
    try:
        return [json.loads(text) for text in query_json(store, **parse_filters(query.encode()))]
    finally:
        store.close()


def follow(api, query, max_rows):
    """Every page of ``query``, following next; checks each page's shape on the way."""
    path, pages = "/api/log/get" + ("?" + query if query else ""), []
    while path:
        status, headers, body = api.request("GET", path)
        if not pages and status == 404:
            assert body == {"actions": []} and "link" not in {k.lower() for k in headers}
            return []
        assert status == 200, (path, body)
        assert 1 <= len(body["actions"]) <= max_rows
        links = [v for k, v in headers.items() if k.lower() == "link"]
        pages.append(body["actions"])
        path = body.get("next")
        if path is None:
            assert set(body) == {"actions"} and links == []
        else:
            assert list(body) == ["actions", "next"] and len(body["actions"]) == max_rows
            assert links == [f'<{path}>; rel="next"']
            assert len(pages) <= TOTAL + 1, "next links that never end"
    return pages


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def servers(request, tmp_path_factory):
    """``{N: server with --max-rows N}`` on one database of TIMES, for each engine."""
    tmp = tmp_path_factory.mktemp("max_rows")
    db = tmp / "capped.db"
    if request.param == "postgresql":
        pg_server = request.getfixturevalue("pg_server")
        db = pg_server.create_database("max_rows")
    with contextlib.ExitStack() as stack:
        started = {n: stack.enter_context(serving(tmp, "--max-rows", str(n), name=f"n{n}", db=db))
                   for n in SIZES}
        status, _, body = started[1].request("POST", "/api/log", json.dumps(sessions(TIMES)), JSON)
        assert (status, body) == (200, {"inserted": TOTAL, "duplicates": 0})
        yield started
    if request.param == "postgresql":
        pg_server.drop_database("max_rows")


@pytest.mark.parametrize("query", QUERIES)
def test_following_next_gives_every_action_once_in_order(servers, query):
    want = expected(servers[1].db, query)
    if "limit" not in query and "userId=nobody" not in query:
        assert len(want) > 2  # the query is worth paging
    for n, api in servers.items():
        pages = follow(api, query, n)
        assert [a for page in pages for a in page] == want, (n, query)
        assert len(pages) == math.ceil(len(want) / n), (n, query)


def test_the_next_link_keeps_the_filters_as_given(servers):
    query = "userId=u1&type=CLICK&type=view&start=2018-10-18T21:37:28-06:00&end=&limit=3"
    status, _, body = servers[1].request("GET", "/api/log/get?" + query)
    assert status == 200
    path, _, rest = body["next"].partition("?")
    pairs = urllib.parse.parse_qsl(rest)
    assert path == "/api/log/get"
    assert pairs[:-1] == [("userId", "u1"), ("type", "CLICK"), ("type", "view"),
                          ("start", "2018-10-18T21:37:28-06:00"), ("limit", "2")]
    assert pairs[-1][0] == "after"


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_inserts_between_pages_lose_or_repeat_nothing(tmp_path, target, order):
    """POSTs between pages, of actions at the last sent action's own instant (a tie: it
    comes after it), before it, after it and far after: nothing that existed is lost or
    repeated, and a new action shows exactly when it sorts after the cursor."""
    with serving(tmp_path, "--max-rows", "3", db=target) as api:
        assert api.request("POST", "/api/log", json.dumps(sessions(TIMES)), JSON)[0] == 200
        query = f"order={order}&type=click&type=view&type=scroll"
        before = [a["properties"]["n"] for a in expected(api.db, query)]
        path, seen, cursors = f"/api/log/get?{query}", [], {}
        while path:
            status, _, body = api.request("GET", path)
            assert status == 200
            seen += body["actions"]
            path = body.get("next")
            if path and len(cursors) < 12:  # three POSTs, then the pages run out
                last = seen[-1]
                times = [last["time"], "2018-10-18T00:00:00Z", "2018-10-19T23:00:00Z",
                         "2030-01-01T00:00:00Z" if order == "asc" else "2000-01-01T00:00:00Z"]
                first = TOTAL + len(cursors)
                new = [("new", f"p{first}", t, "SCROLL") for t in times]
                body = json.dumps(sessions(new, first))
                assert api.request("POST", "/api/log", body, JSON)[2]["inserted"] == len(new)
                cursors.update({n: last["properties"]["n"] for n in range(first, first + len(new))})
        numbers = [a["properties"]["n"] for a in seen]
        assert len(numbers) == len(set(numbers)), "an action sent twice"
        assert [n for n in numbers if n < TOTAL] == before, "an action that existed lost or moved"
        # In the query's order, as one answer now gives it; each new action is there
        # exactly if it sorts after the last action sent before it was stored
        final = {a["properties"]["n"]: i for i, a in enumerate(expected(api.db, query))}
        assert [final[n] for n in numbers] == sorted(final[n] for n in numbers)
        shown = {n for n in cursors if final[n] > final[cursors[n]]}
        assert {n for n in numbers if n >= TOTAL} == shown and len(shown) >= 6


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    if request.param == "sqlite":
        return tmp_path / "serve.db"
    return request.getfixturevalue("pg_db_url")


GARBLED = [
    "x", "AAAA", "A" * 23, "A" * 25, "A" * 23 + "=", "A" * 22 + "==", "+" * 24, "%2F" * 24,
    "AAAAAAAAAAAAAAAAAAAAAAAA%00", "%F0%9F%98%80" * 6, "/" * 24, "." * 24,
    "AAAAAAAAAAAAAAAAAAAAAAAA&after=AAAAAAAAAAAAAAAAAAAAAAAA",  # twice
    "AAAAAAAAAAAD6AAAAAAAAAAA",  # ns 1000: well formed, but no place
    "AAAAAAAAAAAAAP__________",  # id negative
    "9" * 30, "-1", "null", "x" * 5000,
]


@pytest.mark.parametrize("cursor", GARBLED)
def test_a_garbled_cursor_is_400_naming_after(servers, cursor):
    for api in (servers[2], servers[TOTAL + 1]):
        status, _, body = api.request("GET", "/api/log/get?userId=u1&after=" + cursor)
        assert status == 400, (cursor, body)
        assert body["error"].startswith("invalid parameter after: ")
        assert body["details"][0]["path"] == "after"


def test_a_cursor_is_a_place_not_a_count(servers):
    """Any well-formed cursor (from a query with other filters, or another order) is a place."""
    first = servers[2].request("GET", "/api/log/get?order=desc")[2]
    after = urllib.parse.parse_qs(first["next"].partition("?")[2])["after"][0]
    want = expected(servers[2].db, "")
    last = want.index(first["actions"][-1])
    pages = follow(servers[2], f"after={after}", 2)  # ascending from there: what follows it
    assert [a for page in pages for a in page] == want[last + 1:]


@pytest.mark.parametrize("cursor,status", [
    ("gAAAAAAAAAAAAAAAAAAAAAAA", 200),  # the earliest place there is: everything follows
    ("f_________8D53__________", 404),  # the last: nothing does
])
def test_the_extreme_places_are_no_error(servers, cursor, status):
    for order, want in (("asc", status), ("desc", 604 - status)):
        assert servers[2].request("GET", f"/api/log/get?order={order}&after={cursor}")[0] == want


def test_after_without_max_rows_continues_from_the_cursor(tmp_path):
    """A client can resume with its cursor when the server no longer caps: the whole rest."""
    path = tmp_path / "uncapped.db"
    capped, uncapped = create_app(path, token="", max_rows=3), create_app(path, token="")
    try:
        assert call(capped, "POST", "/api/log", sessions(TIMES), JSON).status == 200
        first = call(capped, "GET", "/api/log/get?type=click").json
        rest = call(uncapped, "GET", first["next"]).json
        assert "next" not in rest
        assert first["actions"] + rest["actions"] == expected(path, "type=click")
        assert call(uncapped, "GET", "/api/log/get?after=x").status == 400
    finally:
        capped.close()
        uncapped.close()


@pytest.mark.parametrize("value", ["0", "-1", "ten", "1.5", ""])
def test_an_invalid_max_rows_is_a_usage_error(tmp_path, value):
    result = subprocess.run([OHLOG, "serve", "--db", str(tmp_path / "x.db"), "--port", "0",
                             "--max-rows", value], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Invalid value for '--max-rows'" in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_the_option_reaches_the_server(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from openhouse_cli import server
    from openhouse_cli.cli import cli

    calls = []
    monkeypatch.setattr(server, "serve", lambda path, **options: calls.append(options))
    for args in (["--max-rows", "5"], []):
        assert CliRunner().invoke(cli, ["serve", "--db", str(tmp_path / "x.db"), "--create",
                                     *args]).exit_code == 0
    assert [options.get("max_rows") for options in calls] == [5, None]


def test_workers_share_the_cap(tmp_path):
    """--workers: each worker process makes its app from $OHLOG_MAX_ROWS, which serve sets."""
    with serving(tmp_path, "--max-rows", "5", "--workers", "2") as api:
        api.request("POST", "/api/log", json.dumps(sessions(TIMES)), JSON)
        for _ in range(4):  # whichever worker answers
            status, _, body = api.request("GET", "/api/log/get")
            assert status == 200 and len(body["actions"]) == 5 and "after=" in body["next"]


def test_the_factory_reads_max_rows_from_the_environment(tmp_path, monkeypatch):
    from openhouse_cli.errors import OhlogError

    for value, cap in (("7", 7), ("0", None), ("", None)):
        monkeypatch.setenv("OHLOG_MAX_ROWS", value)
        app = create_app(tmp_path / "env.db", token="")
        assert app.max_rows == cap
        app.close()
    assert create_app(tmp_path / "env.db", token="", max_rows=0).max_rows is None  # serve's "none"
    monkeypatch.setenv("OHLOG_MAX_ROWS", "-3")
    with pytest.raises(OhlogError, match="OHLOG_MAX_ROWS must be a whole number"):
        create_app(tmp_path / "env.db", token="")
