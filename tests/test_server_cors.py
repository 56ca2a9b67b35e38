"""Browsers as clients: ``ohlog serve --allow-origin`` (CORS) and ``--public-post``, end to end.

Over plain HTTP (the headers a browser would send, on both engines where
something is stored) and in a real headless Chromium, from pages on an allowed
and on another origin.
"""

import json
import re

import pytest
from click.testing import CliRunner

from openhouse_cli.cli import cli
from openhouse_cli.server.cors import normalize_origin

from .browser import chromium, serving_pages
from .test_cli_serve import DEADLINE, SAMPLE, serving, wait_for

ALLOWED = "http://localhost:8000"
OTHER_ORIGINS = ["http://localhost:8001", "https://localhost:8000", "http://evil.example", "null",
                 "http://localhost:8000.evil.example", "HTTP://LOCALHOST:8000"]
JSON_TYPE = "application/json"
BEACON_TYPE = "text/plain;charset=UTF-8"  # what navigator.sendBeacon sends for a string
TOKEN = "s3cret"


def session(session_id, user="browser"):
    return json.dumps({"userId": user, "sessionId": session_id, "actions": [
        {"time": "2018-10-18T21:37:28-06:00", "type": "CLICK",
         "properties": {"locationX": 1, "locationY": 2}}]})


def stored_sessions(api):
    """The sessionIds stored, as the API reads them back (without an Origin)."""
    status, _, body = api.request("GET", "/api/log/get", None,
                                  {"Authorization": f"Bearer {TOKEN}"})
    assert status in (200, 404), body
    return sorted({action["sessionId"] for action in body["actions"]})


def preflight(api, origin, method="POST", headers="content-type", path="/api/log"):
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        asked["Access-Control-Request-Headers"] = headers
    return api.request("OPTIONS", path, None, asked)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    """A SQLite file, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "serve.db"
    return request.getfixturevalue("pg_db_url")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request, tmp_path_factory):
    """A server allowing two origins (one spelled as people do), on each engine."""
    db = None
    if request.param == "postgresql":
        pg_server = request.getfixturevalue("pg_server")
        db = pg_server.create_database("cors")
    with serving(tmp_path_factory.mktemp("cors"), "--allow-origin", ALLOWED,
                 "--allow-origin", "HTTPS://App.Example.COM:443/", db=db) as api:
        yield api
    if db:
        pg_server.drop_database("cors")


@pytest.mark.parametrize("origin", [ALLOWED, "https://app.example.com"])
@pytest.mark.parametrize("path,method,headers", [
    ("/api/log", "POST", "content-type"),
    ("/api/log/get", "GET", "authorization"),
    ("/api/log/get", "GET", None),
    ("/health", "GET", "Authorization, Content-Type"),
])
def test_a_preflight_from_an_allowed_origin_is_answered(api, origin, path, method, headers):
    status, got, body = preflight(api, origin, method, headers, path)
    assert (status, body) == (204, None)
    assert got["access-control-allow-origin"] == origin
    assert got["access-control-allow-methods"] == method
    assert got["access-control-allow-headers"] == "content-type, authorization"
    assert got["access-control-max-age"] == "600"
    assert got["vary"] == "origin"
    assert "access-control-allow-credentials" not in got


@pytest.mark.parametrize("origin,method,headers,error", [
    *((origin, "POST", "content-type", f"origin {origin} is not allowed")
      for origin in OTHER_ORIGINS),
    (ALLOWED, "PUT", "content-type", "method PUT is not allowed here: use POST"),
    (ALLOWED, "DELETE", None, "method DELETE is not allowed here"),
    (ALLOWED, "GET", None, "method GET is not allowed here"),
    (ALLOWED, "POST", "content-type, x-requested-with", "header x-requested-with is not allowed"),
    (ALLOWED, "POST", "cookie", "header cookie is not allowed"),
])
def test_a_preflight_for_anything_else_is_refused(api, origin, method, headers, error):
    status, got, body = preflight(api, origin, method, headers)
    assert status == 403 and body["error"].startswith(error), body
    assert "access-control-allow-methods" not in got
    if origin != ALLOWED:
        assert "access-control-allow-origin" not in got


def test_a_beacon_from_an_allowed_origin_is_stored_as_a_post_would_be(api):
    for content_type in (BEACON_TYPE, "text/plain", 'Text/Plain; charset="utf-8"'):
        sid = f"beacon {content_type}"
        status, got, body = api.request("POST", "/api/log", session(sid),
                                        {"Origin": ALLOWED, "Content-Type": content_type})
        assert (status, body) == (200, {"inserted": 1, "duplicates": 0})
        assert got["access-control-allow-origin"] == ALLOWED and got["vary"] == "origin"
        # the same session as JSON, with no Origin: the very actions, stored already
        status, _, body = api.request("POST", "/api/log", session(sid), {"Content-Type": JSON_TYPE})
        assert (status, body) == (200, {"inserted": 0, "duplicates": 1})
    # an array too, validated as any POST is: a bad one stores nothing, and says why to the page
    status, got, body = api.request("POST", "/api/log", f"[{session('b1')}, {{}}]",
                                    {"Origin": ALLOWED, "Content-Type": BEACON_TYPE})
    assert status == 400 and body["details"][0]["path"].startswith("[1]")
    assert got["access-control-allow-origin"] == ALLOWED
    assert "b1" not in stored_sessions(api)


def test_json_and_reads_from_an_allowed_origin_carry_the_cors_headers(api):
    status, got, body = api.request("POST", "/api/log", session("cors-json"),
                                    {"Origin": "https://app.example.com",
                                     "Content-Type": JSON_TYPE})
    assert (status, body) == (200, {"inserted": 1, "duplicates": 0})
    assert got["access-control-allow-origin"] == "https://app.example.com"
    status, got, body = api.request("GET", "/api/log/get?sessionId=cors-json", None,
                                    {"Origin": ALLOWED})
    assert status == 200 and [a["sessionId"] for a in body["actions"]] == ["cors-json"]
    assert got["access-control-allow-origin"] == ALLOWED
    assert "retry-after" in got["access-control-expose-headers"]
    for path in ("/api/log/get?userId=nobody", "/api/log/get?start=soon", "/nowhere"):  # errors too
        status, got, _ = api.request("GET", path, None, {"Origin": ALLOWED})
        assert status >= 400 and got["access-control-allow-origin"] == ALLOWED


@pytest.mark.parametrize("origin", OTHER_ORIGINS)
@pytest.mark.parametrize("content_type", [BEACON_TYPE, JSON_TYPE,
                                          "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_nothing_from_another_origin_is_stored(api, origin, content_type):
    before = api.count()
    status, got, body = api.request("POST", "/api/log", session(f"from {origin} {content_type}"),
                                    {"Origin": origin, "Content-Type": content_type})
    assert status == 403 and body["error"].startswith(f"origin {origin} is not allowed")
    assert "access-control-allow-origin" not in got
    assert api.count() == before


@pytest.mark.parametrize("origin", OTHER_ORIGINS)
@pytest.mark.parametrize("path", ["/api/log/get", "/api/log/get?userId=browser", "/openapi.json",
                                  "/health"])
def test_nothing_is_read_from_another_origin(api, origin, path):
    status, got, body = api.request("GET", path, None, {"Origin": origin})
    assert (status, set(body)) == (403, {"error", "details"})
    assert "access-control-allow-origin" not in got


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/html",
                                          "text/plain; charset=iso-8859-1", "multipart/form-data"])
def test_other_bodies_from_an_allowed_origin_are_415(api, content_type):
    before = api.count()
    status, got, _ = api.request("POST", "/api/log", session("not json"),
                                 {"Origin": ALLOWED, "Content-Type": content_type})
    assert status == 415 and got["access-control-allow-origin"] == ALLOWED
    assert api.count() == before


def test_without_an_origin_the_api_answers_as_before(api):
    before = api.count()
    status, got, _ = api.request("POST", "/api/log", session("no origin"),
                                 {"Content-Type": BEACON_TYPE})
    assert status == 415 and api.count() == before  # text/plain only from an allowed page
    status, got, body = api.request("POST", "/api/log", session("no origin"),
                                    {"Content-Type": JSON_TYPE})
    assert (status, body) == (200, {"inserted": 1, "duplicates": 0})
    assert "access-control-allow-origin" not in got and got["vary"] == "origin"
    assert api.request("OPTIONS", "/api/log")[0] == 405


def test_without_the_option_nothing_changes(tmp_path, target):
    with serving(tmp_path, db=target) as api:
        for origin in (ALLOWED, "http://evil.example"):
            for content_type in (BEACON_TYPE, "application/x-www-form-urlencoded"):
                status, got, _ = api.request("POST", "/api/log", session("x"),
                                             {"Origin": origin, "Content-Type": content_type})
                assert status == 415
            assert preflight(api, origin)[0] == 405
            status, got, body = api.request("POST", "/api/log", SAMPLE.read_bytes(),
                                            {"Origin": origin, "Content-Type": JSON_TYPE})
            assert status == 200
            status, got, body = api.request("GET", "/api/log/get?userId=ABC123XYZ", None,
                                            {"Origin": origin})
            assert status == 200 and len(body["actions"]) == 3
            assert not any(name.startswith("access-control-") or name == "vary" for name in got)
        assert api.count() == 3


@pytest.mark.parametrize("public_post", [False, True])
def test_a_token_still_guards_what_it_guards(tmp_path, public_post):
    args = ["--token", TOKEN, "--allow-origin", ALLOWED, *(["--public-post"] * public_post)]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with serving(tmp_path, *args) as api:
        assert preflight(api, ALLOWED, "GET", "authorization", "/api/log/get")[0] == 204  # no token
        for origin in ({"Origin": ALLOWED}, {}):
            status, got, body = api.request("POST", "/api/log", session("public"),
                                            {**origin, "Content-Type": JSON_TYPE})
            assert status == (200 if public_post else 401), body
            if origin:
                assert got["access-control-allow-origin"] == ALLOWED  # the page can read why
            for path in ("/api/log/get", "/openapi.json"):  # reads need the token, always
                status, got, _ = api.request("GET", path, None, origin)
                assert status == 401 and got["www-authenticate"] == 'Bearer realm="ohlog"'
        status, _, body = api.request("POST", "/api/log", session("beacon"),
                                      {"Origin": ALLOWED, "Content-Type": BEACON_TYPE})
        assert status == (200 if public_post else 401)
        status, got, body = api.request("GET", "/api/log/get", None, {"Origin": ALLOWED, **auth})
        assert status == (200 if public_post else 404)
        assert got["access-control-allow-origin"] == ALLOWED
        post = api.request("GET", "/openapi.json", None, auth)[2]["paths"]["/api/log"]["post"]
        assert ("401" in post["responses"]) is not public_post  # the description says so too
        # with the token, a page on another origin is refused all the same
        other = {"Origin": "http://evil.example", **auth}
        assert api.request("GET", "/api/log/get", None, other)[0] == 403


def test_every_worker_allows_the_same_origins(tmp_path):
    with serving(tmp_path, "--workers", "2", "--allow-origin", ALLOWED, "--token", TOKEN,
                 "--public-post") as api:
        for _ in range(6):  # new connections, spread over the workers
            assert preflight(api, ALLOWED)[0] == 204
            assert preflight(api, "http://evil.example")[0] == 403
        status, _, body = api.request("POST", "/api/log", session("w"),
                                      {"Origin": ALLOWED, "Content-Type": BEACON_TYPE})
        assert status == 200


@pytest.mark.parametrize("given,origin", [
    ("https://www.example.com", "https://www.example.com"),
    ("HTTPS://WWW.Example.com:443/", "https://www.example.com"),
    ("http://localhost:80", "http://localhost"),
    ("http://localhost:8443", "http://localhost:8443"),
    ("https://example.com:80", "https://example.com:80"),
    ("http://[::1]:3000", "http://[::1]:3000"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
])
def test_an_origin_is_written_as_browsers_send_it(given, origin):
    assert normalize_origin(given) == origin


@pytest.mark.parametrize("value,message", [
    ("*", "'*' would let any page in"),
    ("null", "'null' would let any page in"),
    ("https://example.com/app", "an origin has no path"),
    ("https://example.com?x=1", "an origin has no path, query"),
    ("example.com", "expected http(s)://host[:port]"),
    ("ftp://example.com", "expected http(s)://host[:port]"),
    ("https://", "expected http(s)://host[:port]"),
    ("https://user@example.com", "an origin has no user"),
    ("https://example.com:99999", "is not an origin: Port out of range"),
    ("https://bücher.example", "give the host in its ASCII (punycode) form"),
])
def test_anything_but_an_origin_is_a_usage_error(value, message):
    result = CliRunner().invoke(cli, ["serve", "--allow-origin", ALLOWED, "--allow-origin", value])
    assert result.exit_code == 2
    assert f"Error: Invalid value for '--allow-origin': {value!r}" in result.output
    assert message in result.output.splitlines()[-1], result.output
    # the same from the environment, which worker processes read
    result = CliRunner().invoke(cli, ["serve"], env={"OHLOG_ALLOW_ORIGIN": f"{ALLOWED} {value}"})
    assert result.exit_code == 2 and message in result.output


# In a real browser: a page on an allowed origin (localhost) and, in an iframe,
# the same page on another one (127.0.0.1), each trying every way a page sends.
PAGE = """<!doctype html><meta charset="utf-8"><title>ohlog CORS</title>
<script>
const API = "http://127.0.0.1:%(api_port)d", TOKEN = "%(token)s";
const who = location.hostname === "localhost" ? "allowed" : "other";
const session = id => JSON.stringify({userId: "browser", sessionId: who + "-" + id, actions: [
  {time: "2018-10-18T21:37:28-06:00", type: "CLICK", properties: {locationX: 1, locationY: 2}}]});
async function attempt(request) {
  try {
    const response = await request();
    return {status: response.status, body: await response.text()};
  } catch (error) {
    return {blocked: error.name};  // what a page sees of a CORS failure
  }
}
(async () => {
  const seen = {};
  seen.post_json = await attempt(() => fetch(API + "/api/log", {method: "POST",
    headers: {"Content-Type": "application/json"}, body: session("fetch-json")}));
  seen.post_text = await attempt(() => fetch(API + "/api/log", {method: "POST",
    headers: {"Content-Type": "text/plain"}, body: session("fetch-text")}));
  seen.get_without_token = await attempt(() => fetch(API + "/api/log/get?userId=browser"));
  seen.get = await attempt(() => fetch(API + "/api/log/get?userId=browser",
    {headers: {"Authorization": "Bearer " + TOKEN}}));
  seen.beacon = navigator.sendBeacon(API + "/api/log", session("beacon"));
  await fetch("/report/" + who, {method: "POST", body: JSON.stringify(seen)});
})();
</script>
%(frame)s
"""


def test_pages_in_headless_chromium(tmp_path):
    with serving_pages({}) as pages, \
            serving(tmp_path, "--allow-origin", f"http://localhost:{pages.port}",
                    "--token", TOKEN, "--public-post") as api:
        values = {"api_port": api.port, "token": TOKEN}
        pages.pages["/other"] = PAGE % {**values, "frame": ""}
        pages.pages["/allowed"] = PAGE % {
            **values, "frame": f'<iframe src="http://127.0.0.1:{pages.port}/other"></iframe>'}
        with chromium(f"http://localhost:{pages.port}/allowed"):
            seen = pages.wait_for(["allowed", "other"], DEADLINE)

            def beacons_arrived():  # neither beacon's answer reaches its page
                log = api.log.read_text()
                return ("allowed-beacon" in stored_sessions(api)
                        and len(re.findall(r'"POST /api/log HTTP/1.1" 403 ', log)) == 2)

            wait_for(beacons_arrived, "the beacons did not arrive")
        stored = stored_sessions(api)
    allowed, other = seen["allowed"], seen["other"]
    assert allowed["post_json"] == {"status": 200, "body": '{"inserted":1,"duplicates":0}'}
    assert allowed["post_text"] == {"status": 200, "body": '{"inserted":1,"duplicates":0}'}
    assert allowed["get_without_token"]["status"] == 401  # the page may read why
    assert allowed["get"]["status"] == 200
    assert sorted(a["sessionId"] for a in json.loads(allowed["get"]["body"])["actions"]) == [
        "allowed-fetch-json", "allowed-fetch-text"]
    assert allowed["beacon"] is True
    # The other origin: every fetch fails in the page; the beacon is queued, and refused
    assert other == {"post_json": {"blocked": "TypeError"}, "post_text": {"blocked": "TypeError"},
                     "get_without_token": {"blocked": "TypeError"}, "get": {"blocked": "TypeError"},
                     "beacon": True}
    assert stored == ["allowed-beacon", "allowed-fetch-json", "allowed-fetch-text"]
    statuses = re.findall(r'"(\w+) (/api/log\S*) HTTP/1.1" (\d+) ', api.log.read_text())
    assert ("OPTIONS", "/api/log", "204") in statuses and ("OPTIONS", "/api/log", "403") in statuses
