"""``ohlog serve`` end to end: the real command on a loopback port it picks, over HTTP."""

import contextlib
import http.client
import json
import pathlib
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner

from openhouse_cli import server
from openhouse_cli.cli import cli

from .conftest import OHLOG

SAMPLE = pathlib.Path(__file__).parent.parent / "examples" / "sample_log.json"
CLICK = {"userId": "ABC123XYZ", "sessionId": "XYZ456ABC", "time": "2018-10-18T21:37:28-06:00",
         "type": "CLICK", "properties": {"locationX": 52, "locationY": 11}}
JSON = {"Content-Type": "application/json"}
ACCESS_LINE = ' "'  # every access log line has the client, then the quoted request line


# uvicorn's start-up line; with --port 0 it names the port the kernel chose
LISTENING = re.compile(r"running on http://127\.0\.0\.1:([0-9]+) ")
DEADLINE = 30  # seconds any one wait may take before the test fails


def wait_for(condition, what, deadline=DEADLINE):
    """Poll ``condition()`` until it returns something true; fail after ``deadline`` s."""
    end = time.monotonic() + deadline
    while not (result := condition()):
        assert time.monotonic() < end, f"{what}: not within {deadline}s"
        time.sleep(0.02)
    return result


class Server:
    def __init__(self, port, db, log):
        self.port, self.db, self.log = port, db, log  # db: a SQLite path or a PostgreSQL URL

    def request(self, method, path, body=None, headers=None):
        """``(status, headers, parsed JSON body)`` over a new connection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body, headers or {})
            response = conn.getresponse()
            data = response.read()
            return response.status, dict(response.getheaders()), json.loads(data) if data else None
        finally:
            conn.close()

    def raw(self, data, read_after=True):
        """Send raw bytes, return the status line and headers the server sends back."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(data)
            reply = b""
            while b"\r\n\r\n" not in reply:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
            return reply.decode("latin-1")

    def count(self):
        return count_actions(self.db)

    def log_lines(self):
        return [line for line in self.log.read_text().splitlines() if ACCESS_LINE in line]


def count_actions(db):
    if isinstance(db, str):
        import psycopg

        with psycopg.connect(db) as conn:
            return conn.execute("SELECT count(*) FROM actions").fetchone()[0]
    return sqlite3.connect(db).execute("SELECT count(*) FROM actions").fetchone()[0]


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    """Where a test's server stores: a SQLite file, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "serve.db"
    return request.getfixturevalue("pg_db_url")


@contextlib.contextmanager
def serving(tmp_path, *args, env=None, name="serve.db", db=None):
    """Run ``ohlog serve`` until the block ends; its stderr goes to a file (a pipe could fill).
    ``db``: a SQLite path or PostgreSQL URL (default: ``name`` in ``tmp_path``)."""
    # Port 0: the server binds a port the kernel picks and says which, so no
    # two servers (xdist workers) can race for a port chosen in advance.
    db, log = db or tmp_path / name, tmp_path / f"{name}.log"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen([OHLOG, "serve", "--db", str(db), "--port", "0", "--create", *args],
                                stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, env=env)
    try:
        def started():
            assert proc.poll() is None, f"ohlog serve exited: {log.read_text()}"
            return LISTENING.search(log.read_text())

        api = Server(int(wait_for(started, "ohlog serve did not start").group(1)), db, log)

        def healthy():  # with --workers, the port is bound before the workers listen on it
            assert proc.poll() is None, f"ohlog serve exited: {log.read_text()}"
            try:
                return api.request("GET", "/health")[0] == 200
            except OSError:
                return False

        wait_for(healthy, "ohlog serve did not answer")
        yield api
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()  # ours, by its pid
            proc.wait(timeout=DEADLINE)
            raise


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request, tmp_path_factory):
    """One server a module on each engine."""
    db = None
    if request.param == "postgresql":
        pg_server = request.getfixturevalue("pg_server")
        db = pg_server.create_database("cli_serve")
    with serving(tmp_path_factory.mktemp("serve"), db=db) as api:
        yield api
    if db:
        pg_server.drop_database("cli_serve")


def test_head_through_the_real_server(api):
    """HEAD as GET without a body, through uvicorn (which must not expect one)."""
    for path in ("/health", "/api/log/get?userId=ABC123XYZ"):
        status, headers, body = api.request("HEAD", path)
        assert status in (200, 404) and body is None
        assert api.request("GET", "/health")[0] == 200  # the connection pool is unharmed


def test_the_original_api_tests(api):
    status, _, body = api.request("POST", "/api/log", SAMPLE.read_bytes(), JSON)
    assert (status, body) == (200, {"inserted": 3, "duplicates": 0})
    status, _, body = api.request(
        "GET", "/api/log/get?userId=ABC123XYZ&start=2018-10-18T21:37:25&end=2018-10-18T21:37:29")
    assert (status, body) == (200, {"actions": [CLICK]})
    status, _, body = api.request("GET", "/api/log/get?userId=ABC123XYZ")
    assert status == 200 and len(body["actions"]) == 3
    assert api.request("GET", "/api/log/get?userId=fsdf")[:3:2] == (404, {"actions": []})
    # the issue's example query, and a retried POST
    status, _, body = api.request("GET", "/api/log/get?userId=ABC123XYZ&type=CLICK"
                                         "&start=2018-10-18T21:37:25&end=2018-10-18T21:37:29")
    assert (status, body) == (200, {"actions": [CLICK]})
    status, _, body = api.request("POST", "/api/log", SAMPLE.read_bytes(), JSON)
    assert (status, body) == (200, {"inserted": 0, "duplicates": 3})


@pytest.mark.parametrize("method,path,body,headers,status", [
    ("POST", "/api/log", b'{"userId": ', JSON, 400),
    ("POST", "/api/log", b'{"userId": "u", "sessionId": "s", "actions": []}', JSON, 400),
    ("POST", "/api/log", SAMPLE.read_bytes(), {"Content-Type": "text/plain"}, 415),
    ("GET", "/api/log/get?start=soon", None, None, 400),
    ("GET", "/api/log/get?userId=nobody", None, None, 404),
    ("GET", "/api/nothing", None, None, 404),
    ("PUT", "/api/log", b"{}", JSON, 405),
    ("GET", "/health", None, None, 200),
    ("GET", "/openapi.json", None, None, 200),
])
def test_status_codes(api, method, path, body, headers, status):
    got, got_headers, data = api.request(method, path, body, headers)
    assert got == status
    assert got_headers["content-type"] == "application/json"
    if status >= 400 and path != "/api/log/get?userId=nobody":
        assert set(data) == {"error", "details"} and "Traceback" not in data["error"]


def test_over_the_limit_is_refused_before_the_body_is_sent(api):
    reply = api.raw(b"POST /api/log HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 1048577\r\n\r\n")  # 1 MiB + 1, and not a byte of it sent
    assert reply.startswith("HTTP/1.1 413 ")
    assert "connection: close" in reply.lower()


def test_a_chunked_body_is_accepted(api):
    doc = json.loads(SAMPLE.read_text())
    doc["sessionId"] = "CHUNKED"
    data = json.dumps(doc).encode()
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
    conn.request("POST", "/api/log", (data[i:i + 50] for i in range(0, len(data), 50)), JSON,
                 encode_chunked=True)
    response = conn.getresponse()
    assert (response.status, json.loads(response.read())) == (200, {"inserted": 3, "duplicates": 0})


def test_a_chunked_body_over_the_limit_is_413(tmp_path, target):
    with serving(tmp_path, "--max-body", "1000", db=target) as api:
        head = b"POST /api/log HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" \
               b"Transfer-Encoding: chunked\r\n\r\n"
        chunk = b"258\r\n" + b" " * 600 + b"\r\n"  # 600 bytes; no final chunk is ever sent
        assert api.raw(head + chunk + chunk).startswith("HTTP/1.1 413 ")
        assert api.raw(b"POST /api/log HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 1001\r\n\r\n").startswith("HTTP/1.1 413 ")


def test_token(tmp_path, target):
    env = {**__import__("os").environ, "OHLOG_TOKEN": "s3cret"}
    with serving(tmp_path, env=env, db=target) as api:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            status, got, body = api.request("POST", "/api/log", SAMPLE.read_bytes(), {**JSON, **headers})
            assert status == 401 and got["www-authenticate"] == 'Bearer realm="ohlog"'
            assert api.request("GET", "/api/log/get?userId=ABC123XYZ", None, headers)[0] == 401
        assert api.count() == 0
        auth = {"Authorization": "Bearer s3cret"}
        assert api.request("POST", "/api/log", SAMPLE.read_bytes(), {**JSON, **auth})[0] == 200
        assert api.request("GET", "/api/log/get?userId=ABC123XYZ", None, auth)[0] == 200
        assert "s3cret" not in api.log.read_text()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_concurrent_posts(tmp_path, target, workers):
    """1,000 POSTs from 20 threads: every one 200, every action stored once, a log line each."""
    template = json.loads(SAMPLE.read_text())
    statuses = []

    def client(thread):
        conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=60)
        for i in range(50):
            doc = {**template, "sessionId": f"T{thread}-{i}"}
            conn.request("POST", "/api/log", json.dumps(doc), JSON)
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
        conn.close()

    with serving(tmp_path, "--workers", workers, db=target) as api:
        threads = [threading.Thread(target=client, args=(t,)) for t in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads), "a client hung"
        assert statuses == [200] * 1000
        assert api.count() == 3000
        # a line is written just after its response: wait for the 1,000th
        posts = lambda: [line for line in api.log_lines() if "/health" not in line]  # noqa: E731
        lines = wait_for(lambda: len(posts()) >= 1000 and posts(), "1,000 access log lines")
        assert len(lines) == 1000 and all('"POST /api/log HTTP/1.1" 200 ' in line for line in lines)
    assert "locked" not in api.log.read_text()


def test_schemathesis_finds_no_server_error(api):
    run_schemathesis(api, "examples,coverage", examples=10)  # boundary and invalid values: ~230 requests


@pytest.mark.slow
def test_schemathesis_long_run(tmp_path, target):
    with serving(tmp_path, db=target) as api:
        api.request("POST", "/api/log", SAMPLE.read_bytes(), JSON)
        # Fuzzing's negative data includes query values of another JSON type
        # (sessionId=0 as a number), which on the wire are the text "0", a
        # valid sessionId: the server rightly answers 200, and the check
        # calls that a schema violation accepted. The coverage phase above
        # (the default run's test too) still checks that invalid data is refused.
        run_schemathesis(api, "examples,coverage,fuzzing,stateful", examples=300,
                         exclude=("negative_data_rejection",))


def run_schemathesis(api, phases, examples, exclude=()):
    # Every check but positive_data_acceptance: the schema cannot say everything
    # the validation checks (impossible dates, offsets beyond ±14:00), so
    # schema-valid sessions may rightly get 400.
    result = subprocess.run(
        [str(pathlib.Path(sys.executable).parent / "schemathesis"), "run",
         f"http://127.0.0.1:{api.port}/openapi.json", "--checks", "all",
         "--exclude-checks", ",".join(("positive_data_acceptance", *exclude)), "--phases", phases,
         "-n", str(examples), "--workers", "1",
         "--seed", "1", "--suppress-health-check", "all"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


# The command itself, through CliRunner: options, warnings, errors


@pytest.fixture
def served(monkeypatch):
    calls = []
    monkeypatch.setattr(server, "serve", lambda path, **options: calls.append((path, options)))
    return calls


@pytest.mark.parametrize("args,env,warned", [
    ([], {}, False),
    (["--host", "0.0.0.0"], {}, True),
    (["--host", "0.0.0.0", "--token", "t"], {}, False),
    (["--host", "::"], {"OHLOG_TOKEN": "t"}, False),
])
def test_warning_beyond_loopback_without_token(served, args, env, warned, tmp_path):
    result = CliRunner().invoke(cli, ["serve", "--db", str(tmp_path / "x.db"), "--create", *args],
                                env=env, catch_exceptions=False)
    assert result.exit_code == 0
    warning = ("Warning: listening on {} without a token: anyone who can reach this port can "
               "read and write the logs. Set --token or OHLOG_TOKEN.\n")
    assert result.stderr == (warning.format(args[1]) if warned else "") + (
        f"Created a new database at {tmp_path / 'x.db'}\n")


def test_a_postgresql_url_reaches_the_server_as_it_is(served, monkeypatch):
    url = "postgresql://ohlog:pw@db.example:5433/logs?sslmode=require"
    assert CliRunner().invoke(cli, ["serve", "--db", url]).exit_code == 0
    monkeypatch.setenv("OHLOG_DB", url.replace("logs", "env"))
    assert CliRunner().invoke(cli, ["serve"]).exit_code == 0
    assert [path for path, _ in served] == [url, url.replace("logs", "env")]


def test_serving_postgresql_end_to_end(tmp_path, pg_db_url):
    """$OHLOG_DB with a URL, and --workers 2: both workers on the one database, with a password
    in the URL that no line of the log shows."""
    url = pg_db_url.replace("postgres@", "postgres:hunter2@")
    env = {**__import__("os").environ, "OHLOG_DB": url}
    log = tmp_path / "env.log"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen([OHLOG, "serve", "--port", "0", "--workers", "2"], env=env,
                                stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
    try:
        api = Server(int(wait_for(lambda: LISTENING.search(log.read_text()), "start").group(1)), url, log)
        wait_for(lambda: _answers(api), "ohlog serve did not answer")
        status, _, body = api.request("POST", "/api/log", SAMPLE.read_bytes(), JSON)
        assert (status, body) == (200, {"inserted": 3, "duplicates": 0})
        assert api.request("GET", "/api/log/get?userId=ABC123XYZ&type=click")[2] == {"actions": [CLICK]}
        assert api.count() == 3
    finally:
        proc.terminate()
        proc.wait(timeout=DEADLINE)
    assert "hunter2" not in log.read_text()


def _answers(api):
    try:
        return api.request("GET", "/health")[0] == 200
    except OSError:
        return False


def test_an_unreachable_postgresql_is_one_line_without_the_password(run_ohlog):
    result = run_ohlog("serve", "--db", "postgresql://ohlog:hunter2@127.0.0.1:1/logs", "--port", "0")
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "Error: cannot connect to PostgreSQL at 127.0.0.1:1: "), lines
    assert b"hunter2" not in result.stderr + result.stdout


def test_options_reach_the_server(served, tmp_path):
    result = CliRunner().invoke(cli, ["serve", "--port", "8080", "--max-body", "5000", "--workers", "2",
                                      "--create"],
                                env={"OHLOG_TOKEN": "t", "OHLOG_DB": str(tmp_path / "e.db")})
    assert result.exit_code == 0
    assert served == [(tmp_path / "e.db", dict(host="127.0.0.1", port=8080, token="t",
                                               max_body=5000, workers=2, allow_origins=(),
                                               public_post=False))]


def test_errors_are_one_line(tmp_path, monkeypatch):
    result = CliRunner().invoke(cli, ["serve", "--db", str(tmp_path / "no" / "such.db"), "--create"])
    assert (result.exit_code, result.stderr) == (
        1, f"Error: Cannot create database {tmp_path / 'no' / 'such.db'}: "
           f"no such directory {tmp_path / 'no'}\n")
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # the serve extra is not installed
    result = CliRunner().invoke(cli, ["serve", "--db", str(tmp_path / "x.db"), "--create"])
    assert (result.exit_code, result.stderr) == (
        1, f"Created a new database at {tmp_path / 'x.db'}\nError: ohlog serve needs the server extra: pip install '.[serve]' in ohlog's checkout\n")


def test_a_missing_sqlite_database_is_refused_unless_create(run_ohlog, tmp_path, monkeypatch):
    # a misspelt --db (or $OHLOG_DB) would serve, and fill, a new empty file
    missing = tmp_path / "typo.db"
    for args, env in ((["--db", missing], None), ([], {"OHLOG_DB": str(missing)})):
        monkeypatch.setenv("OHLOG_DB", (env or {}).get("OHLOG_DB", str(tmp_path / "other.db")))
        result = run_ohlog("serve", "--port", "0", *args)
        assert result.returncode == 1
        assert result.stderr.decode() == (f"Error: No database found at {missing}: give an "
                                          "existing one, or add --create to start a new one\n")
        assert not missing.exists()


def test_create_starts_a_new_database_and_says_so(tmp_path):
    with serving(tmp_path, name="new.db") as api:
        assert api.request("GET", "/health")[0] == 200
    assert (tmp_path / "new.db").exists()
    assert f"Created a new database at {tmp_path / 'new.db'}\n" in (tmp_path / "new.db.log").read_text()


def test_the_cli_does_not_import_the_server_stack():
    code = ("import sys, openhouse_cli.cli; "
            "assert not {'uvicorn', 'openhouse_cli.server'} & set(sys.modules), sys.modules.keys()")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
