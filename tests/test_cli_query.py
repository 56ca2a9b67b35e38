"""``ohlog query`` end to end: the real executable, and CliRunner."""

import csv
import io
import json
import os
import pathlib
import select
import subprocess
import time

import pytest
from click.testing import CliRunner

from openhouse_cli.cli import cli
from openhouse_cli.db import open_db
from openhouse_cli.ingest import ingest_sessions
from openhouse_cli.store import open_store

from .conftest import FIXTURES, OHLOG

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"

SAMPLE = pathlib.Path(__file__).parent.parent / "examples" / "sample_log.json"
EXAMPLE = ["--user", "ABC123XYZ", "--type", "CLICK", "--start", "2018-10-18T21:37:25",
           "--end", "2018-10-18T21:37:29"]
CLICK = {"userId": "ABC123XYZ", "sessionId": "XYZ456ABC", "time": "2018-10-18T21:37:28-06:00",
         "type": "CLICK", "properties": {"locationX": 52, "locationY": 11}}


@pytest.fixture
def sample_db(db_target):
    """The sample log, on each engine: what --db takes."""
    store = open_store(db_target)
    ingest_sessions(store, [json.loads(SAMPLE.read_text())])
    store.close()
    return db_target


def query(*args, env=None):
    result = CliRunner().invoke(cli, ["query", *args], env=env, catch_exceptions=False)
    return result


def stdout_of(real, *args):
    """The real ``ohlog`` executable's stdout, or the same run through CliRunner."""
    if real:
        result = subprocess.run([OHLOG, "query", *map(str, args)], capture_output=True, timeout=60)
        assert (result.returncode, result.stderr) == (0, b"")
        return result.stdout.decode()
    result = query(*map(str, args))
    assert (result.exit_code, result.stderr) == (0, "")
    return result.stdout


def test_the_original_example_through_ingest_and_query(run_ohlog, tmp_path):
    db = tmp_path / "log.db"
    assert run_ohlog("ingest", SAMPLE, "--db", db).returncode == 0
    result = run_ohlog("query", "--db", db, *EXAMPLE)  # a pipe: JSON
    assert (result.returncode, result.stderr) == (0, b"")
    assert json.loads(result.stdout) == {"actions": [CLICK]}
    assert result.stdout.decode() == '{"actions": [\n  ' + json.dumps(CLICK, separators=(",", ":")) + "\n]}\n"


@pytest.mark.parametrize("real,flags", [(True, ["--nl"]), (False, ["--format", "ndjson"]),
                                        (False, ["--format", "NDJSON"])])
def test_ndjson(sample_db, real, flags):
    lines = stdout_of(real, "--db", sample_db, *flags).splitlines()
    assert [json.loads(x)["type"] for x in lines] == ["CLICK", "VIEW", "NAVIGATE"]


@pytest.mark.parametrize("real,flags", [(True, ["--csv"]), (False, ["--format", "csv"])])
def test_csv(sample_db, real, flags):
    rows = list(csv.reader(io.StringIO(stdout_of(real, "--db", sample_db, "--type", "click", *flags))))
    assert rows == [["userId", "sessionId", "time", "type", "properties"],
                    ["ABC123XYZ", "XYZ456ABC", "2018-10-18T21:37:28-06:00", "CLICK",
                     '{"locationX":52,"locationY":11}']]


@pytest.mark.parametrize("real,flags", [(True, ["--table"]), (False, ["--format", "table"])])
def test_table_on_request(sample_db, real, flags):
    text = stdout_of(real, "--db", sample_db, *flags, "-n", "2")
    assert text.split()[:5] == ["Time", "User", "Session", "Type", "Properties"]
    assert "locationX=52" in text and "viewedId=FDJKLHSLD" in text and "NAVIGATE" not in text
    assert text.endswith("2 actions shown, 1 more matched\n")


def test_a_terminal_gets_a_table(sample_db):
    master, slave = os.openpty()
    proc = subprocess.Popen([OHLOG, "query", "--db", sample_db], stdout=slave, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "120"})
    os.close(slave)
    chunks, deadline = [], time.monotonic() + 60
    while True:
        # a hung ohlog fails the test instead of blocking the read for ever
        assert select.select([master], [], [], max(0, deadline - time.monotonic()))[0], "no output"
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    text = b"".join(chunks).decode()
    assert "Time" in text and "Properties" in text and "locationX=52" in text
    assert "3 actions" in text and "{" not in text


def test_json_is_the_default_in_a_pipe_and_empty_is_valid(run_ohlog, sample_db):
    result = run_ohlog("query", "--db", sample_db, "--date", "2100-01-01")
    assert (result.returncode, result.stdout, result.stderr) == (0, b'{"actions": []}\n', b"")
    # an id no action has answers the same, and says so on stderr
    result = run_ohlog("query", "--db", sample_db, "--user", "nobody")
    assert (result.returncode, result.stdout) == (0, b'{"actions": []}\n')
    assert result.stderr == b"Warning: no action has the user 'nobody' (user ids match exactly, case included)\n"


def test_order_limit_where_and_session(sample_db):
    # VIEW and NAVIGATE share an instant: ties keep ingestion order, in both directions
    result = query("--db", sample_db, "--order", "desc", "-n", "2", "--session", "XYZ456ABC")
    assert [a["type"] for a in json.loads(result.stdout)["actions"]] == ["VIEW", "NAVIGATE"]
    result = query("--db", sample_db, "--where", "locationX>=52", "--where", "locationY=11", "--nl")
    assert [json.loads(x) for x in result.stdout.splitlines()] == [CLICK]
    result = query("--db", sample_db, "--where", "pageTo!=inventory", "--limit", "5", "--json")
    assert len(json.loads(result.stdout)["actions"]) == 2


@pytest.mark.parametrize("args", [
    ["--date", "2018-10-18"], ["--date", "2018-10-18T21:37:28"], ["--date", "2018-10-19T03:37:28Z"],
    ["--start", "2018-10-19T03:37:28Z", "--end", "2018-10-19T03:37:28Z"],
    ["--since", "2018-10-18T21:37:28", "--until", "2018-10-18T21:37:28"],
    ["--start", "2018-10-18T23:37:28", "--end", "2018-10-18T23:37:28", "--tz", "America/New_York"],
    ["--date", "2018-10-19T09:07:28", "--tz", "Asia/Kolkata"],
])
def test_time_options(sample_db, args):
    result = query("--db", sample_db, "--type", "click", *args)
    assert json.loads(result.stdout) == {"actions": [CLICK]}


QUERIES = (EXAMPLE, ["--date", "2018-10-18"], ["--date", "2018-10-19", "--tz", "UTC"], ["--since", "2018-10-19"])


def test_the_host_time_zone_never_changes_a_result(sample_db, monkeypatch):
    outputs = set()
    for zone in ("UTC", "Asia/Kolkata", "America/Denver", "Pacific/Kiritimati"):
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        for args in QUERIES:
            outputs.add((tuple(args), query("--db", sample_db, "--nl", *args).stdout))
    monkeypatch.undo()
    time.tzset()
    assert sorted(len(out.splitlines()) for _, out in outputs) == [0, 1, 3, 3]


def test_the_host_time_zone_never_changes_a_result_of_the_real_command(sample_db):
    outputs = {subprocess.run([OHLOG, "query", "--db", sample_db, "--nl", "--date", "2018-10-18"],
                              capture_output=True, env={**os.environ, "TZ": zone}).stdout
               for zone in ("Pacific/Kiritimati", "Etc/GMT+12")}
    assert len(outputs) == 1 and len(outputs.pop().splitlines()) == 3


def test_since_and_until_take_times_ago(tmp_path):
    now = time.time()

    def ago(hours):
        t = time.gmtime(now - hours * 3600)
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", t)

    path = tmp_path / "recent.db"
    ingest_sessions(open_db(path), [{"userId": "u", "sessionId": "s", "actions": [
        {"time": ago(h), "type": "T", "properties": {"h": h}} for h in (0.25, 1, 3, 30)]}])
    found = json.loads(query("--db", path, "--since", "2h").stdout)["actions"]
    assert [a["properties"]["h"] for a in found] == [1, 0.25]
    found = json.loads(query("--db", path, "--since", "2d", "--until", "90m").stdout)["actions"]
    assert [a["properties"]["h"] for a in found] == [30, 3]


EXPECTED_FORM = "expected an ISO 8601 time such as 2018-10-18, 2018-10-18T21:37 or 2018-10-19T03:37:28Z"
CALENDAR = "or today, yesterday, this-week, last-week, this-month or last-month"


@pytest.mark.parametrize("args,message", [
    (["--start", "tomorrow"], f"Invalid value for '--start': {EXPECTED_FORM}, {CALENDAR}, got 'tomorrow'"),
    (["--end", "2018-02-30"], "Invalid value for '--end': not a valid time: '2018-02-30' "
                              "(day is out of range for month)"),
    (["--date", "2h"], f"Invalid value for '--date': {EXPECTED_FORM}, {CALENDAR}, got '2h'"),
    (["--since", "2 weeks"], f"Invalid value for '--since': {EXPECTED_FORM}, "
                             f"or a time ago such as 30m, 2h, 7d, 3mo or 1y, {CALENDAR}, got '2 weeks'"),
    (["--limit", "-1"], "Invalid value for '-n' / '--limit': -1 is not in the range "
                        "0<=x<=9223372036854775807."),
    (["-n", "ten"], "Invalid value for '-n' / '--limit': 'ten' is not a valid integer range."),
    (["--where", "locationX"], "Invalid value for '--where': expected KEY=VALUE, KEY!=VALUE, KEY>VALUE, "
                               "KEY>=VALUE, KEY<VALUE or KEY<=VALUE, got 'locationX': no operator (a shell"
                               " takes an unquoted > or < for a redirection: quote the condition, as"
                               " 'KEY>VALUE')"),
    (["--where", "ok>true"], "Invalid value for '--where': only = and != work with true, false and null, got '>'"),
    (["--tz", "Mars/Olympus"], "Invalid value for '--tz': unknown time zone 'Mars/Olympus': "
                               "expected an IANA name such as America/Denver, or UTC"),
    (["--order", "up"], "Invalid value for '--order': 'up' is not one of 'asc', 'desc'."),
    (["--json", "--csv"], "Use just one of --format, --table, --json, --nl or --csv"),
    (["--format", "json", "--table"], "Use just one of --format, --table, --json, --nl or --csv"),
    (["--date", "2018-10-18", "--end", "2018-10-19"], "Use --date alone, or --start/--since and --end/--until"),
    (["--start", "2018", "--since", "2h"], "Use just one of --start or --since"),
    (["--end", "2018", "--until", "2h"], "Use just one of --end or --until"),
])
def test_usage_errors_name_the_option_and_the_form(sample_db, args, message):
    result = CliRunner().invoke(cli, ["query", "--db", sample_db, *args])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == f"Error: {message}"


def test_usage_error_from_the_real_command(run_ohlog, sample_db):
    result = run_ohlog("query", "--db", sample_db, "--start", "2018-10-18T25")
    assert (result.returncode, result.stdout) == (2, b"")
    assert result.stderr.decode().splitlines()[-1] == (
        "Error: Invalid value for '--start': not a valid time: '2018-10-18T25' (hour must be in 0..23)")
    assert "Traceback" not in result.stderr.decode()


@pytest.mark.parametrize("via_env", [False, True])
def test_a_missing_database_is_not_created(tmp_path, via_env, run_ohlog, monkeypatch):
    path = tmp_path / "nothing-here.db"
    monkeypatch.setenv("OHLOG_DB", str(path))
    result = run_ohlog("query", *([] if via_env else ["--db", path]), "--json")
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr.decode() == (f"Error: No database found at {path}: ingest logs into it first"
                                      f" (ohlog ingest FILE --db {path})\n")
    assert not path.exists() and not list(tmp_path.glob("nothing-here*"))


@pytest.mark.parametrize("kind", ["another program's", "empty"])
def test_a_database_that_is_not_ohlogs_is_left_untouched(tmp_path, run_ohlog, kind):
    import hashlib
    import sqlite3

    path = tmp_path / "other.db"
    if kind == "empty":
        path.write_bytes(b"")
    else:
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE notes (text)")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    result = run_ohlog("query", "--db", path, "--json")
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr.decode() == (f"Error: No database found at {path} (the file is empty): ingest logs into it first"
                                       f" (ohlog ingest FILE --db {path})\n" if kind == "empty"
                                      else f"Error: {path} is not an ohlog database: it has no actions table\n")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_not_a_database(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("not sqlite " * 500)
    result = CliRunner().invoke(cli, ["query", "--db", str(path)])
    assert result.exit_code == 1
    assert result.output == f"Error: Cannot open database {path}: file is not a database\n"


def test_a_closed_pipe_ends_quietly(tmp_path):
    path = tmp_path / "many.db"
    ingest_sessions(open_db(path), [{"userId": "u", "sessionId": f"s{i}", "actions": [
        {"time": f"2018-10-18T21:37:{j:02d}Z", "type": "T", "properties": {"i": i, "j": j}}
        for j in range(50)]} for i in range(400)])
    shell = f"'{OHLOG}' query --db '{path}' --nl | head -n 1"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, timeout=60)
    assert result.stderr == b""
    assert json.loads(result.stdout)["properties"] == {"i": 0, "j": 0}


def test_help():
    result = CliRunner().invoke(cli, ["query", "--help"])
    assert result.exit_code == 0
    assert "Print the actions that match the filters, in time order." in result.output
    for option in ("--user", "--session", "--type", "--start", "--end", "--date", "--since", "--until",
                   "--tz", "--where", "--limit", "--order", "--format", "--table", "--json", "--nl", "--csv"):
        assert option in result.output


# ---------------------------------------------------------------------------
# Calendar words: read on --tz's clock, else UTC's; never the host's zone

def _calendar_db(tmp_path, now):
    """Actions every 5 hours over 70 days around ``now``, written in assorted offsets."""
    from datetime import timedelta, timezone

    offsets = [timezone(timedelta(hours=14)), timezone(timedelta(hours=-11)), timezone.utc, None,
               timezone(timedelta(hours=5, minutes=30))]
    actions, instants = [], {}
    for i, hours in enumerate(range(-24 * 70, 24 * 3, 5)):
        at = now + timedelta(hours=hours, seconds=i)
        zone = offsets[i % len(offsets)]
        text = (at.astimezone(timezone.utc).replace(tzinfo=None).isoformat() if zone is None
                else at.astimezone(zone).isoformat())
        actions.append({"time": text, "type": "T", "properties": {"i": i}})
        instants[i] = at
    path = tmp_path / "calendar.db"
    ingest_sessions(open_db(path), [{"userId": "u", "sessionId": "s", "actions": actions}])
    return path, instants


def _in_unit(word, day, today):
    """Whether ``day`` (a date) is in the unit ``word`` names when it is ``today``
    there (an oracle independent of times.py)."""
    from datetime import timedelta

    monday = today - timedelta(days=today.weekday())
    last_month_end = today.replace(day=1) - timedelta(days=1)
    return {
        "today": day == today,
        "yesterday": day == today - timedelta(days=1),
        "this-week": monday <= day < monday + timedelta(days=7),
        "last-week": monday - timedelta(days=7) <= day < monday,
        "this-month": (day.year, day.month) == (today.year, today.month),
        "last-month": (day.year, day.month) == (last_month_end.year, last_month_end.month),
    }[word]


def _days_of(word, today):
    """The first and last day of the unit ``word`` names, when it is ``today``."""
    from datetime import timedelta

    days = [today + timedelta(days=k) for k in range(-70, 8) if _in_unit(word, today + timedelta(days=k), today)]
    return days[0], days[-1]


@pytest.mark.parametrize("args", [
    ["--date", "today"],
    ["--date", "yesterday", "--tz", "America/Denver"],
    ["--date", "Today", "--tz", "Pacific/Kiritimati"],
    ["--since", "this-week"],
    ["--since", "last-week", "--until", "last-week"],
    ["--since", "this-month", "--tz", "Pacific/Kiritimati"],
    ["--since", "last-month", "--tz", "America/Denver"],
    ["--date", "last-month"],
    ["--start", "this-week", "--end", "today", "--tz", "Asia/Kolkata"],
])
def test_calendar_words_whatever_the_host_zone(tmp_path, args):
    import zoneinfo
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    zone = zoneinfo.ZoneInfo(args[args.index("--tz") + 1]) if "--tz" in args else timezone.utc
    # keep clear of a midnight in the zone: the oracle and ohlog must see the same day
    local = now.astimezone(zone)
    if (local.hour, local.minute) == (23, 59):
        time.sleep(61 - local.second)
        now = datetime.now(timezone.utc)
    path, instants = _calendar_db(tmp_path, now)
    today = now.astimezone(zone).date()
    words = dict(zip(args[::2], args[1::2]))
    first_word = (words.get("--date") or words.get("--since") or words.get("--start")).lower()
    last_word = (words.get("--date") or words.get("--until") or words.get("--end") or "").lower()
    first = _days_of(first_word, today)[0]
    last = _days_of(last_word, today)[1] if last_word else None
    expected = [i for i, at in instants.items()
                if first <= at.astimezone(zone).date() and (last is None or at.astimezone(zone).date() <= last)]
    assert expected  # the data reaches every unit
    results = set()
    for host in ("UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago", "America/Denver"):
        env = {**os.environ, "TZ": host}
        done = subprocess.run([OHLOG, "query", "--db", str(path), "--csv", "--fields",
                               "properties.i", *args], capture_output=True, env=env, timeout=60)
        assert (done.returncode, done.stderr) == (0, b""), done.stderr
        results.add(done.stdout)
    assert len(results) == 1  # the host's zone changed nothing
    assert [int(x) for x in results.pop().decode().split()[1:]] == expected


@pytest.mark.parametrize("now, word, zone, first, last", [
    # a Sunday on which Denver went to summer time: its day is 23 hours long
    ("2024-03-10T08:30:00Z", "today", "America/Denver", "2024-03-10T07:00:00Z", "2024-03-11T05:59:59.999999Z"),
    ("2024-03-10T08:30:00Z", "this-week", None, "2024-03-04T00:00:00Z", "2024-03-10T23:59:59.999999Z"),
    ("2024-03-10T08:30:00Z", "this-week", "Asia/Tokyo", "2024-03-03T15:00:00Z", "2024-03-10T14:59:59.999999Z"),
    ("2024-01-15T12:00:00Z", "last-month", None, "2023-12-01T00:00:00Z", "2023-12-31T23:59:59.999999Z"),
    ("2024-03-01T03:00:00Z", "last-month", "America/Denver", "2024-01-01T07:00:00Z", "2024-02-01T06:59:59.999999Z"),
    ("2024-03-01T00:00:00Z", "yesterday", None, "2024-02-29T00:00:00Z", "2024-02-29T23:59:59.999999Z"),
    ("2021-01-01T00:00:00Z", "last-week", None, "2020-12-21T00:00:00Z", "2020-12-27T23:59:59.999999Z"),
])
def test_calendar_units(now, word, zone, first, last):
    from datetime import datetime

    from openhouse_cli.times import calendar_spec, format_us, parse_calendar_word, parse_zone, resolve_range

    now_us = int(datetime.fromisoformat(now).timestamp()) * 10**6
    tz = parse_zone(zone)
    spec = calendar_spec(parse_calendar_word(word, now_us=now_us), tz)
    span = resolve_range(spec, spec, tz=tz)
    assert span.start.instant and span.end.instant
    assert (format_us(span.start.us) + "Z", format_us(span.end.us) + "Z") == (first, last)


@pytest.mark.parametrize("command", ["ingest", "copy", "delete", "stats"])
def test_no_command_writes_into_another_programs_database(tmp_path, run_ohlog, command):
    # ingest used to add ohlog's tables (and switch the file to WAL) in any SQLite file
    import hashlib
    import sqlite3

    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (text)")
        conn.execute("INSERT INTO notes VALUES ('keep me')")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    source = tmp_path / "source.db"
    if command == "copy":
        assert run_ohlog("ingest", "--db", source, EXAMPLES / "sample_log.json").returncode == 0
    args = {"ingest": ["ingest", "--db", path, EXAMPLES / "sample_log.json"],
            "copy": ["copy", source, path],
            "delete": ["delete", "--db", path, "--user", "ABC123XYZ", "--yes"],
            "stats": ["stats", "--db", path, "--json"]}[command]
    result = run_ohlog(*args)
    assert result.returncode == 1, result.stderr
    assert f"{path} is not an ohlog database" in result.stderr.decode()
    assert len(result.stderr.decode().strip().splitlines()) == 1
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert not list(tmp_path.glob("other.db-*"))


def test_show_tz_draws_the_table_in_a_pipe_and_conflicts_with_another_format(tmp_path, run_ohlog):
    db = tmp_path / "o.db"
    assert run_ohlog("ingest", "--db", db, FIXTURES / "sample_log.json").returncode == 0
    result = run_ohlog("query", "--db", db, "--show-tz", "UTC")  # stdout is a pipe
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0].startswith("Time (UTC)") and "2018-10-19T03:37:28Z" in result.stdout.decode()
    refused = run_ohlog("query", "--db", db, "--show-tz", "UTC", "--nl")
    assert refused.returncode == 2 and b"--show-tz is for the table" in refused.stderr
    both = run_ohlog("query", "--db", db, "--show-tz", "UTC", "--fields", "utc")
    assert both.returncode == 2 and b"--show-tz is for the table" in both.stderr
