"""The HTTP API in-process: the ASGI app called directly, no sockets, no uvicorn."""

import asyncio
import json
import logging
import pathlib
import sqlite3
from typing import NamedTuple

import pytest

from openhouse_cli.db import open_db
from openhouse_cli.errors import OhlogError
from openhouse_cli.ingest import IngestFailed, ingest_sessions
from openhouse_cli.server import app as app_module, postgres as pg_writer, reader, writer
from openhouse_cli.server import create_app, exposure_warning, parse_filters
from openhouse_cli.times import parse_time_spec, resolve_bound

SAMPLE = json.loads((pathlib.Path(__file__).parent.parent / "examples" / "sample_log.json").read_text())
CLICK = {"userId": "ABC123XYZ", "sessionId": "XYZ456ABC", "time": "2018-10-18T21:37:28-06:00",
         "type": "CLICK", "properties": {"locationX": 52, "locationY": 11}}
EXAMPLE = "userId=ABC123XYZ&type=CLICK&start=2018-10-18T21:37:25&end=2018-10-18T21:37:29"
JSON = {"content-type": "application/json"}


class Response(NamedTuple):
    status: int
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)


def call(app, method, path, body=b"", headers=None, chunks=None):
    """One request through the app; ``chunks``: the body in parts (as chunked encoding gives it)."""
    path, _, query = path.partition("?")
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    parts = list(chunks) if chunks is not None else [body]
    if chunks is None and body:
        headers.setdefault("content-length", str(len(body)))
    elif chunks is not None:
        headers["transfer-encoding"] = "chunked"
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": query.encode(), "http_version": "1.1", "client": ("127.0.0.1", 5),
             "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}
    sent = []
    call.received = 0

    async def receive():
        if parts:
            call.received += 1
            return {"type": "http.request", "body": parts.pop(0), "more_body": bool(parts)}
        await asyncio.sleep(3600)  # the client stays connected

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    return Response(start["status"], {k.decode(): v.decode() for k, v in start["headers"]},
                    b"".join(m.get("body", b"") for m in sent[1:]))


def post(app, body, headers=JSON, **kwargs):
    return call(app, "POST", "/api/log", body, headers, **kwargs)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    """The database every test of the API runs on: a SQLite file, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "server.db"
    return request.getfixturevalue("pg_db_url")


def postgres(app):
    return isinstance(app.path, str)


@pytest.fixture
def app(target):
    app = create_app(target, token="")
    yield app
    app.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def read_app(request, tmp_path_factory):
    """SAMPLE on each engine, for the tests that only read: made once, not a test."""
    if request.param == "sqlite":
        target = tmp_path_factory.mktemp("read") / "server.db"
    else:
        pg_server = request.getfixturevalue("pg_server")
        target = pg_server.create_database("read_app")
    app = create_app(target, token="")
    assert post(app, SAMPLE).status == 200
    yield app
    app.close()
    if request.param == "postgresql":
        pg_server.drop_database("read_app")


@pytest.fixture
def sample_app(app):
    assert post(app, SAMPLE).status == 200
    return app


def count(app):
    if postgres(app):
        import psycopg

        with psycopg.connect(app.path) as conn:
            return conn.execute("SELECT count(*) FROM actions").fetchone()[0]
    return sqlite3.connect(app.path).execute("SELECT count(*) FROM actions").fetchone()[0]


def test_post_is_idempotent(app):
    first, again = post(app, SAMPLE), post(app, SAMPLE)
    assert (first.status, first.json) == (200, {"inserted": 3, "duplicates": 0})
    assert (again.status, again.json) == (200, {"inserted": 0, "duplicates": 3})
    assert first.headers["content-type"] == "application/json"


def test_post_an_array(app):
    other = {**SAMPLE, "sessionId": "OTHER"}
    response = post(app, [SAMPLE, other, SAMPLE])
    assert (response.status, response.json) == (200, {"inserted": 6, "duplicates": 3})
    assert post(app, []).json == {"inserted": 0, "duplicates": 0}


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON",
                                          "application/vnd.ohlog+json"])
def test_post_json_content_types(app, content_type):
    assert post(app, SAMPLE, {"Content-Type": content_type}).status == 200


@pytest.mark.parametrize("headers", [{}, {"content-type": "text/plain"},
                                     {"content-type": "application/x-www-form-urlencoded"}])
def test_post_other_content_types_are_415(app, headers):
    response = post(app, SAMPLE, headers)
    assert response.status == 415
    assert response.json["error"] == "send the sessions as JSON, with Content-Type: application/json"
    assert count(app) == 0


def bad_time(session, index=2, value="2018-13-45"):
    actions = [dict(a) for a in session["actions"]]
    actions[index]["time"] = value
    return {**session, "actions": actions}


def test_invalid_record_is_400_with_the_ingest_message_and_nothing_stored(app):
    bad = bad_time(SAMPLE)
    with pytest.raises(IngestFailed) as ingest_error:
        ingest_sessions(open_db(":memory:"), [bad])
    response = post(app, bad)
    assert response.status == 400
    assert response.json == {
        "error": "actions[2].time: " + ingest_error.value.message,
        "details": [{"path": "actions[2].time", "message": ingest_error.value.message}],
    }
    assert ingest_error.value.message == "not an ISO 8601 time: '2018-13-45'"
    assert count(app) == 0


def test_an_array_with_bad_records_names_each_and_stores_none(app):
    response = post(app, [SAMPLE, {"userId": "u"}, bad_time(SAMPLE, 0)])
    assert response.status == 400
    assert response.json == {
        "error": "[1].sessionId: missing (expected a non-empty string) (and 1 more invalid session)",
        "details": [{"path": "[1].sessionId", "message": "missing (expected a non-empty string)"},
                    {"path": "[2].actions[0].time", "message": "not an ISO 8601 time: '2018-13-45'"}],
    }
    assert count(app) == 0


@pytest.mark.parametrize("body,error", [
    (b'{"userId": ', "invalid JSON: unexpected end of data (line 1, column 12)"),
    (b'[{"userId": "u"},\n oops]', "invalid JSON: Expecting value (line 2, column 2)"),
    (b"  ", "empty body: expected a session object or an array of them"),
    (b'"a string"', "expected a session object, got 'a string'"),
    (b"\xff\xfe", "not valid UTF-8: invalid start byte (line 1)"),
])
def test_bad_json_is_400(app, body, error):
    response = post(app, body)
    assert response.status == 400
    assert response.json["error"] == error
    assert response.json["details"] == [{"path": "", "message": error}]


@pytest.mark.parametrize("ndjson", [False, True])
def test_an_integer_longer_than_int_takes_is_400_not_500(app, ndjson):
    """Found from outside: the shape check raised int()'s own ValueError (a 500)."""
    bad = json.dumps(dict(SAMPLE, actions=[dict(SAMPLE["actions"][0], properties={"n": "BIG"})]))
    body = bad.replace('"BIG"', "1" + "0" * 4300) + ("\n" + json.dumps(SAMPLE) if ndjson else "")
    response = post(app, body.encode())
    assert response.status == 400
    assert response.json["error"].startswith("invalid JSON: integer longer than 4300 digits: 1000")
    assert response.json["error"].endswith("(line 1, column 138)")
    assert count(app) == 0


@pytest.mark.parametrize("shape", ["object", "array", "escaped name", "deep"])
def test_a_session_that_gives_actions_twice_is_400_and_nothing_is_stored(app, shape):
    """A JSON reader keeps the last list: the first's actions would be dropped without a word
    (also behind an ignored key nested a thousand deep, which a recursive re-parse gave up on)."""
    first, second = json.dumps(SAMPLE["actions"]), json.dumps(SAMPLE["actions"][:1])
    name = '"\\u0061ctions"' if shape == "escaped name" else '"actions"'
    deep = '"extra": ' + "[" * 1000 + "]" * 1000 + ", " if shape == "deep" else ""
    twice = ('{"userId": "u", "sessionId": "s", "actions": ' + first + ", " + deep + name + ": "
             + second + "}")
    body = ("[" + json.dumps(SAMPLE) + ", " + twice + "]") if shape == "array" else twice
    response = post(app, body.encode())
    assert response.status == 400
    path = "[1].actions" if shape == "array" else "actions"
    assert response.json["error"] == (
        f"{path}: given twice in one session: a JSON reader keeps only the last list, which would drop"
        f" the actions of the other without a word (line 1)")
    assert count(app) == 0


def test_a_gzip_body_is_stored_as_its_plain_json(app):
    """Content-Encoding: gzip was read as the body itself ('not valid UTF-8'; found from outside)."""
    import gzip

    body = json.dumps([SAMPLE, dict(SAMPLE, sessionId="other")]).encode()
    two_members = gzip.compress(body[:100]) + gzip.compress(body[100:])
    for encoded, encoding in ((gzip.compress(body), "gzip"), (two_members, "x-gzip")):
        response = post(app, encoded, {**JSON, "Content-Encoding": encoding})
        assert response.status == 200, response.body
    assert response.json == {"inserted": 0, "duplicates": 6} and count(app) == 6


@pytest.mark.parametrize("case", ["bomb", "corrupt", "cut", "brotli"])
def test_a_compressed_body_it_cannot_take_stores_nothing(target, case):
    import gzip

    app = create_app(target, max_body=10_000)
    body = json.dumps(SAMPLE).encode()
    encoding, status, said = "gzip", 400, "the body is not valid gzip (Content-Encoding: gzip)"
    if case == "bomb":  # 130 bytes that inflate past the limit
        encoded, status = gzip.compress(body + b" " * 20_000), 413
        said = "the body is larger once decompressed than the limit of 10,000 bytes"
    elif case == "corrupt":
        encoded = b"\x1f\x8b\x08\x00" + body
    elif case == "cut":
        encoded = gzip.compress(body)[:-12]
    else:
        encoded, encoding, status = body, "br", 415
        said = "Content-Encoding 'br' is not supported: send the body plain, or gzip-compressed"
    response = post(app, encoded, {**JSON, "Content-Encoding": encoding})
    assert response.status == status
    assert response.json["error"].startswith(said)
    assert count(app) == 0


@pytest.mark.parametrize("name,value", [("start", "2018-10-18T21:37:28+06:00"), ("end", "2018-10-18T21:37+0600"),
                                        ("date", "2018-10-18T21+06")])
def test_an_offset_whose_plus_became_a_space_says_how_to_send_it(read_app, name, value):
    """curl users write + in a query string, which means a space (found from outside)."""
    response = call(read_app, "GET", f"/api/log/get?userId=u&{name}={value}")
    assert response.status == 400
    assert response.json["error"].endswith(
        "(a + in a URL's query string means a space: write the offset's + as %2B)")
    encoded = call(read_app, "GET", f"/api/log/get?userId=u&{name}={value.replace('+', '%2B')}")
    assert encoded.status in (200, 404)


def test_body_over_the_limit_is_413_before_reading_it(target):
    app = create_app(target, max_body=100)
    body = json.dumps(SAMPLE).encode()
    response = post(app, body)
    assert response.status == 413
    assert call.received == 0  # refused on Content-Length alone
    assert response.headers["connection"] == "close"
    assert response.json["error"] == ("the body is larger than the limit of 100 bytes: "
                                      "send fewer sessions a request")
    app.close()


def test_chunked_body_over_the_limit_is_413_as_soon_as_it_is_over(target):
    app = create_app(target, max_body=100)
    response = post(app, None, chunks=[b"x" * 60, b"x" * 60, b"x" * 60, b"x" * 60])
    assert (response.status, call.received) == (413, 2)
    body = json.dumps(SAMPLE).encode()
    app.max_body = len(body)
    response = post(app, None, chunks=[body[:10], body[10:]])
    assert (response.status, response.json) == (200, {"inserted": 3, "duplicates": 0})
    app.close()


def get(app, query, headers=None):
    return call(app, "GET", "/api/log/get?" + query, headers=headers)


def test_the_original_example(read_app):
    response = get(read_app, EXAMPLE)
    assert (response.status, response.json) == (200, {"actions": [CLICK]})
    response = get(read_app, "userId=ABC123XYZ&start=2018-10-18T21:37:25&end=2018-10-18T21:37:29")
    assert response.json == {"actions": [CLICK]}


def test_empty_result_is_404_with_no_actions(read_app):
    response = get(read_app, "userId=fsdf")
    assert (response.status, response.json) == (404, {"actions": []})


@pytest.mark.parametrize("query,times", [
    ("userId=ABC123XYZ", ["21:37:28", "21:37:30", "21:37:30"]),
    ("userId=fsdf&userId=ABC123XYZ&type=view&type=navigate", ["21:37:30", "21:37:30"]),
    ("session=XYZ456ABC&limit=1", ["21:37:28"]),
    ("date=2018-10-18T21:37:30", ["21:37:30", "21:37:30"]),
    ("start=2018-10-19T03:37:29Z", ["21:37:30", "21:37:30"]),
    ("end=2018-10-18T21:37&order=desc", ["21:37:30", "21:37:30", "21:37:28"]),
    ("userId=ABC123XYZ&start=&end=&limit=&&", ["21:37:28", "21:37:30", "21:37:30"]),
    ("sessionId=XYZ456ABC&limit=1", ["21:37:28"]),  # as the POST body spells it
    ("sessionId=other&session=XYZ456ABC&type=VIEW", ["21:37:30"]),
])
def test_filters(read_app, query, times):
    response = get(read_app, query)
    assert response.status == 200
    assert [a["time"][11:19] for a in response.json["actions"]] == times


@pytest.mark.parametrize("query,name,message", [
    ("start=yesterday", "start",
     "expected an ISO 8601 time such as 2018-10-18, 2018-10-18T21:37 or 2018-10-19T03:37:28Z, got 'yesterday'"),
    ("end=2018-02-30", "end", "not a valid time: '2018-02-30' (day is out of range for month)"),
    ("date=2018&start=2018", "date", "use date alone, or start and end"),
    ("limit=-1", "limit", "expected a whole number, 0 or more, got '-1'"),
    ("limit=99999999999999999999", "limit", "expected a whole number, 0 or more, got '99999999999999999999'"),
    ("start=2018&start=2019", "start", "give it at most once"),
    ("order=up", "order", "expected asc or desc, got 'up'"),
    ("userId=%FF", "", "the query string is not valid UTF-8 once percent-decoded"),
    ("start=2018-07&end=2018-06", "start", "start 2018-07 (2018-07-01T00:00:00) is after end 2018-06 "
                                           "(2018-06-30T23:59:59.999999): nothing can match"),
    ("end=2018-10-18T00:00Z&start=2018-10-19T00:00Z", "start",
     "start 2018-10-19T00:00Z (2018-10-19T00:00:00Z) is after end 2018-10-18T00:00Z "
     "(2018-10-18T00:00:59.999999Z): nothing can match"),
])
def test_malformed_parameter_is_400_naming_it(read_app, query, name, message):
    response = get(read_app, query)
    assert response.status == 400
    assert response.json == {"error": f"invalid parameter {name}: {message}" if name else message,
                             "details": [{"path": name, "message": message}]}


KNOWN = "userId, type, sessionId, session, date, start, end, limit, order, after"


@pytest.mark.parametrize("query,name", [
    ("user=u-la", "user"), ("sessionid=XYZ456ABC", "sessionid"), ("userId=ABC123XYZ&types=CLICK", "types"),
    ("=x", ""), ("userId%00=ABC123XYZ", "userId\x00"), ("limit=1&Limit=2", "Limit"), ("where=x%3D1", "where"),
])
def test_an_unknown_parameter_is_400_naming_it_and_the_known_ones(read_app, query, name):
    """A misspelt filter would otherwise answer with the whole database."""
    response = get(read_app, query)
    message = f"unknown parameter {name!r}: the known ones are {KNOWN}"
    assert (response.status, response.json) == (400, {"error": message,
                                                       "details": [{"path": name, "message": message}]})


@pytest.mark.parametrize("name", ["userId", "type", "sessionId", "session", "date", "start", "end",
                                  "limit", "order"])
@pytest.mark.parametrize("value", ["%00", "%F0%9F%98%80", "9" * 30, "-1", "0001-01-01T00:00%2B14:00",
                                   "9999-12-31T23:59:59.999999-14:00", "2018-10-18T24:00", "%ED%A0%80",
                                   "2018-10-18T21:37:28.1234567891", "x" * 5000, "7d", "DESC"])
def test_no_parameter_value_is_a_server_error(read_app, name, value):
    for query in (f"{name}={value}", f"{name}={value}&{name}={value}", f"start={value}&end=2018",
                  f"start=2018&{name}={value}"):
        assert get(read_app, query).status in (200, 400, 404), query


@pytest.mark.parametrize("text", ["2018-10-18", "2018-10-18T21", "2018-10-18T21:37:28.5",
                                  "2018-10-19T03:37:28Z", "2018-10-18T21:37:28-06:00"])
def test_time_rules_are_ohlog_querys(text):
    spec = parse_time_spec(text)
    filters = parse_filters(f"start={text}&end={text}".replace("+", "%2B").encode())
    assert (filters["start"], filters["end"]) == (resolve_bound(spec), resolve_bound(spec, end=True))
    assert parse_filters(f"date={text}".encode()) == filters


def test_percent_and_plus_decoding():
    assert parse_filters(b"userId=a+b%20c%C3%A9&type=A%26B")["users"] == ("a b c\u00e9",)
    assert parse_filters(b"userId=a+b%20c%C3%A9&type=A%26B")["types"] == ("A&B",)


def test_large_results_are_streamed_whole(app, monkeypatch):
    monkeypatch.setattr(reader, "PAGE", 7)
    monkeypatch.setattr(reader, "INLINE_ROWS", 3)
    actions = [{"time": f"2018-10-18T21:{m:02d}:00Z", "type": "SCROLL", "properties": {"n": m}}
               for m in range(20)]
    post(app, {"userId": "u", "sessionId": "s", "actions": actions})
    response = get(app, "userId=u")
    assert response.status == 200 and "content-length" not in response.headers
    assert [a["properties"]["n"] for a in response.json["actions"]] == list(range(20))
    assert get(app, "userId=u&limit=5").json["actions"][-1]["properties"] == {"n": 4}


def test_slow_queries_leave_the_event_loop(tmp_path, monkeypatch):
    """SQLite's quick queries on the event loop are bounded by its progress handler."""
    sample_app = create_app(tmp_path / "server.db", token="")
    assert post(sample_app, SAMPLE).status == 200
    monkeypatch.setattr(reader, "INLINE_CHECK_EVERY", 1)
    monkeypatch.setattr(reader, "INLINE_STEPS", 0)  # every query is too slow to run inline
    assert sample_app.reader.quick(parse_filters(EXAMPLE.encode())) is None
    assert get(sample_app, EXAMPLE).json == {"actions": [CLICK]}


def test_the_event_loops_time_limit_survives_a_failed_first_open(tmp_path, monkeypatch):
    """SQLite's: its quick queries run on the event loop, limited by a progress handler."""
    sample_app = create_app(tmp_path / "server.db", token="")
    assert post(sample_app, SAMPLE).status == 200
    real = reader.open_for_query
    calls = []

    def flaky(path):
        calls.append(path)
        if len(calls) == 1:
            raise OhlogError("Cannot open database: disk I/O error")
        return real(path)

    monkeypatch.setattr(reader, "open_for_query", flaky)
    monkeypatch.setattr(reader, "INLINE_CHECK_EVERY", 1)
    monkeypatch.setattr(reader, "INLINE_STEPS", 0)
    with pytest.raises(OhlogError):
        sample_app.reader.quick(parse_filters(EXAMPLE.encode()))
    assert sample_app.reader.quick(parse_filters(EXAMPLE.encode())) is None  # still too slow: a thread
    sample_app.close()


def test_a_failed_postgresql_connection_is_replaced(pg_server, pg_db_url, monkeypatch, caplog):
    """A reader whose connection cannot be made, or breaks, answers 503; the next request connects anew."""
    app = create_app(pg_db_url.replace("postgres@", "postgres:hunter2@"), token="")
    assert post(app, SAMPLE).status == 200
    real, calls = pg_writer.conninfo, []

    def flaky(url):  # the first connection made from here on goes to a database that is not there
        calls.append(url)
        return real(url.replace(database_name(url), "nowhere") if len(calls) == 1 else url)

    monkeypatch.setattr(pg_writer, "conninfo", flaky)
    response = get(app, EXAMPLE)
    assert (response.status, response.headers["retry-after"]) == (503, "1")
    assert get(app, EXAMPLE).json == {"actions": [CLICK]}
    monkeypatch.setattr(reader, "INLINE_ROWS", 0)  # the reader threads' connections too
    calls.clear()
    response = get(app, EXAMPLE)
    assert (response.status, response.headers["retry-after"]) == (503, "1")
    assert get(app, EXAMPLE).json == {"actions": [CLICK]}
    monkeypatch.undo()
    # the server ends every connection (a restart, a failover): one 503 each, then answers again
    terminate_connections(pg_server, pg_db_url)
    assert {get(app, EXAMPLE).status, post(app, SAMPLE).status} <= {200, 503}
    assert get(app, EXAMPLE).json == {"actions": [CLICK]}
    assert post(app, SAMPLE).json == {"inserted": 0, "duplicates": 3}
    assert call(app, "GET", "/health").status == 200
    app.close()
    assert "hunter2" not in caplog.text


def database_name(url):
    return url.split("?")[0].rsplit("/", 1)[1]


def terminate_connections(pg_server, url):
    pg_server.admin().execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                              " WHERE datname = %s", [database_name(url)])


def test_postgresql_gone_is_503_with_retry_after_and_no_password(pg_server, pg_db_url, caplog):
    """A PostgreSQL that goes away: every request gets 503 and Retry-After, none hangs or 500s."""
    url = pg_db_url.replace("postgres@", "postgres:hunter2@")
    app = create_app(url, token="")
    assert post(app, SAMPLE).status == 200
    assert get(app, EXAMPLE).status == 200
    pg_server.drop_database(database_name(url))  # ends the connections too
    for response in (post(app, {**SAMPLE, "sessionId": "GONE"}), post(app, SAMPLE), get(app, EXAMPLE),
                     get(app, "userId=x"), call(app, "GET", "/health")):
        assert (response.status, response.headers["retry-after"]) == (503, "1"), response
    app.close()
    assert "Could not store a request" in caplog.text and "Traceback" not in caplog.text
    assert "hunter2" not in caplog.text


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic c2VjcmV0", "Bearer", "secret"])
def test_token_required(target, header):
    app = create_app(target, token="secret")
    headers = {**JSON, **({"authorization": header} if header else {})}
    response = post(app, SAMPLE, headers)
    assert response.status == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="ohlog"'
    assert response.json["error"] == "a valid token is needed: send Authorization: Bearer TOKEN"
    assert get(app, "userId=x", headers).status == 401
    assert call(app, "GET", "/openapi.json", headers=headers).status == 401
    assert call(app, "GET", "/health").status == 200  # for load balancers: tells nothing
    assert count(app) == 0
    app.close()


def test_token_accepted_and_compared_in_constant_time(target, monkeypatch):
    compared = []
    real = app_module.hmac.compare_digest
    monkeypatch.setattr(app_module.hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    monkeypatch.setenv("OHLOG_TOKEN", "s3cret")
    app = create_app(target)
    for scheme in ("Bearer", "bearer"):
        assert post(app, SAMPLE, {**JSON, "Authorization": f"{scheme} s3cret"}).status == 200
    assert compared == [(b"s3cret", b"s3cret")] * 2
    app.close()


def test_unknown_path_and_method(app):
    response = call(app, "GET", "/api/nothing")
    assert (response.status, response.json["error"]) == (404, "no such endpoint: /api/nothing")
    response = call(app, "DELETE", "/api/log")
    assert (response.status, response.headers["allow"]) == (405, "POST")
    assert call(app, "HEAD", "/api/log").headers["allow"] == "POST"
    assert call(app, "PUT", "/health").headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/health", "/openapi.json", "/api/log/get?userId=ABC123XYZ",
                                  "/api/log/get?userId=nobody"])
def test_head_is_answered_as_get_without_a_body(sample_app, path):
    """Uptime checkers ask with HEAD (it was a 405; found from outside)."""
    got, head = call(sample_app, "GET", path), call(sample_app, "HEAD", path)
    assert (head.status, head.body) == (got.status, b"")
    assert head.headers == got.headers


def test_no_stack_trace_reaches_the_client(sample_app, monkeypatch, caplog):
    def broken(query_string):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app_module, "parse_filters", broken)
    response = get(sample_app, "userId=x")
    assert (response.status, response.json) == (500, {"error": "internal server error", "details": []})
    assert "secret internals" in caplog.text and "Traceback" in caplog.text  # in the server's log


def test_database_error_is_503_and_stores_nothing(app, monkeypatch):
    if postgres(app):
        monkeypatch.setattr(pg_writer, "INSERT", pg_writer.INSERT.replace("INTO actions", "INTO nothing"))
    else:
        monkeypatch.setattr(writer, "INSERT", "INSERT INTO no_such_table VALUES (?)")
    response = post(app, SAMPLE)
    assert (response.status, response.headers["retry-after"]) == (503, "1")
    assert response.json["error"] == ("the database could not store this request, and nothing "
                                      "of it was stored: try again")
    monkeypatch.undo()
    assert count(app) == 0
    assert post(app, SAMPLE).json == {"inserted": 3, "duplicates": 0}


def test_group_commit(app):
    """Concurrent requests share commits; each keeps its own counts; one failure stays its own."""
    from openhouse_cli.validate import session_rows

    sessions = [{**SAMPLE, "sessionId": f"S{i}"} for i in range(200)]

    rows = [session_rows(s, "t") for s in sessions]

    async def write_all(batches):
        return await asyncio.gather(*map(app.writer.write, batches), return_exceptions=True)

    assert asyncio.run(write_all(rows)) == [(3, 0)] * 200
    assert app.writer.commits < 200
    results = asyncio.run(write_all([rows[0], [("not", "a", "row")], rows[1] + [rows[0][1]]]))
    assert results[0] == (0, 3) and results[2] == (0, 4)
    assert isinstance(results[1], (sqlite3.Error, OhlogError))
    assert count(app) == 600
    # a request re-sent within one commit: its first copy's rows are new, the other's duplicates
    more = [session_rows({**SAMPLE, "sessionId": f"R{i}"}, "t") for i in range(3)]
    results = asyncio.run(write_all([more[0], more[1], more[0], rows[2] + more[2], more[1]]))
    assert results == [(3, 0), (3, 0), (0, 3), (3, 3), (0, 3)]
    assert count(app) == 609


def test_one_log_line_a_request(sample_app, caplog):
    caplog.set_level(logging.INFO, "ohlog.access")
    get(sample_app, EXAMPLE)
    call(sample_app, "GET", "/health")
    lines = [r.getMessage() for r in caplog.records if r.name == "ohlog.access"]
    assert len(lines) == 2
    assert lines[0].startswith(f'127.0.0.1:5 "GET /api/log/get?{EXAMPLE} HTTP/1.1" 200 ')
    assert lines[1].startswith('127.0.0.1:5 "GET /health HTTP/1.1" 200 15 ')


def test_health_and_openapi(app):
    assert call(app, "GET", "/health").json == {"status": "ok"}
    document = call(app, "GET", "/openapi.json").json
    assert set(document["paths"]) == {"/api/log", "/api/log/get", "/health", "/openapi.json"}
    assert "security" not in document


def test_factory_reads_a_postgresql_url_from_the_environment(pg_db_url, monkeypatch):
    monkeypatch.setenv("OHLOG_DB", pg_db_url)
    app = create_app()
    assert app.path == pg_db_url and post(app, SAMPLE).status == 200 and count(app) == 3
    app.close()


def test_factory_reads_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OHLOG_DB", str(tmp_path / "env.db"))
    monkeypatch.setenv("OHLOG_MAX_BODY", "10")
    monkeypatch.setenv("OHLOG_TOKEN", "t")
    app = create_app()
    assert (app.path, app.max_body, app.token) == (tmp_path / "env.db", 10, b"t")
    assert call(app, "GET", "/openapi.json", headers={"authorization": "Bearer t"}).json["security"]
    app.close()
    monkeypatch.setenv("OHLOG_MAX_BODY", "lots")
    with pytest.raises(OhlogError, match="OHLOG_MAX_BODY must be a number of bytes"):
        create_app()


@pytest.mark.parametrize("host,token,warned", [
    ("127.0.0.1", None, False), ("localhost", None, False), ("::1", None, False),
    ("127.0.0.2", None, False), ("0.0.0.0", None, True), ("::", None, True),
    ("example.org", None, True), ("0.0.0.0", "t", False),
])
def test_exposure_warning(host, token, warned):
    assert (exposure_warning(host, token) is not None) == warned


@pytest.mark.parametrize("inline_rows", [100, 0])
def test_reads_see_later_writes(app, monkeypatch, inline_rows):
    monkeypatch.setattr(reader, "INLINE_ROWS", inline_rows)  # 0: every query in a reader thread
    assert get(app, "userId=ABC123XYZ").status == 404
    post(app, SAMPLE)
    assert len(get(app, "userId=ABC123XYZ").json["actions"]) == 3
    post(app, {**SAMPLE, "sessionId": "LATER"})
    assert len(get(app, "userId=ABC123XYZ").json["actions"]) == 6


def other_writer(app):
    """Another writer in the middle of a transaction, as a long ohlog ingest would be: on
    SQLite it holds the write lock; on PostgreSQL it has written SAMPLE's rows, uncommitted."""
    from openhouse_cli.store import open_store
    from openhouse_cli.validate import session_rows

    store = open_store(app.path)
    other = store.writer("other")
    other.begin()
    if postgres(app):
        other.write(session_rows(SAMPLE, "other"))
    return store, other


def test_a_post_waits_for_another_writer(app):
    import threading

    store, other = other_writer(app)
    timer = threading.Timer(0.3, other.commit)
    timer.start()
    response = post(app, SAMPLE)
    # on PostgreSQL the other writer stored the same actions first: this POST's are duplicates
    expected = {"inserted": 0, "duplicates": 3} if postgres(app) else {"inserted": 3, "duplicates": 0}
    assert (response.status, response.json) == (200, expected)
    timer.join()  # its COMMIT's answer may still be on its way: not closed under it
    store.close()


def test_a_post_gives_up_on_a_writer_that_never_finishes(app, monkeypatch):
    monkeypatch.setattr(pg_writer if postgres(app) else writer, "WRITE_WAIT_S", 0.2)
    store, other = other_writer(app)
    response = post(app, SAMPLE)
    assert (response.status, response.headers["retry-after"]) == (503, "1")
    other.rollback()
    # what the 503 left unfinished was rolled back: the actions are new
    assert post(app, SAMPLE).json == {"inserted": 3, "duplicates": 0}
    store.close()


def test_what_orjson_refuses_gets_ingests_reading(app):
    big = json.dumps(SAMPLE).replace('"locationX": 52', '"locationX": 123456789012345678901234567890')
    response = post(app, big.encode())
    assert (response.status, response.json) == (200, {"inserted": 3, "duplicates": 0})
    response = post(app, json.dumps(SAMPLE).replace("ABC123XYZ", "\\ud800").encode())
    assert response.status == 400 and "surrogate" in response.json["error"]


@pytest.mark.parametrize("many", [False, True])
def test_nul_and_escape_characters_come_back_as_sent(app, monkeypatch, many):
    """PostgreSQL text cannot hold NUL: the store escapes it, and every read path restores it."""
    if many:
        monkeypatch.setattr(reader, "PAGE", 2)  # a streamed result
    doc = {"userId": "a\u0000b\ufffe", "sessionId": "s\u0000", "actions": [
        {"time": f"2018-10-18T21:37:2{i}Z", "type": "T\u0000\ufffe0", "properties": {"k": "\u0000"}}
        for i in range(3)]}
    assert post(app, doc).json == {"inserted": 3, "duplicates": 0}
    response = get(app, "userId=a%00b%EF%BF%BE&type=t%00%EF%BF%BE0")
    assert response.status == 200
    assert response.json["actions"] == [{k: v for k, v in doc.items() if k != "actions"} | a
                                        for a in doc["actions"]]
    assert get(app, "userId=a%00b").status == 404
