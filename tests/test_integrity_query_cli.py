"""Issue 8, items 6, 7, 13, 14 and 23 through the real ``ohlog query``: exit 2
with one line naming the option for every value it cannot use, never a traceback."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from openhouse_cli.cli import cli
from openhouse_cli.ingest import ingest_sessions
from openhouse_cli.store import open_store

from .conftest import OHLOG

FORMS = "expected KEY=VALUE, KEY!=VALUE, KEY>VALUE, KEY>=VALUE, KEY<VALUE or KEY<=VALUE"
# `--where locationX>1900` unquoted: the shell leaves `locationX` and writes a file named 1900
NO_OPERATOR = ("no operator (a shell takes an unquoted > or < for a redirection: quote the condition,"
               " as 'KEY>VALUE')")
DENVER = ["2018-03-11T01:59:30-07:00", "2018-03-11T03:00:00-06:00", "2018-03-11T03:30:00-06:00",
          "2018-11-04T01:30:00-06:00", "2018-11-04T01:45:00-06:00", "2018-11-04T01:15:00-07:00",
          "2018-11-04T01:30:00-07:00"]


@pytest.fixture
def denver_db(db_target):
    store = open_store(db_target)
    ingest_sessions(store, [{"userId": "u", "sessionId": "s", "actions": [
        {"time": t, "type": "T", "properties": {"locationX": 1900 + i, "at": {"i": i}}}
        for i, t in enumerate(DENVER)]}])
    store.close()
    return db_target


def ohlog(*args, real=True):
    """``(exit code, stdout, stderr)`` of the real command, or (faster) of the
    same through CliRunner; ``args`` may be bytes, as a shell passes them."""
    if not real:  # Python hands argv bytes that are not UTF-8 on as lone surrogates
        result = CliRunner().invoke(cli, ["query", *map(os.fsdecode, args)])
        return result.exit_code, result.stdout, result.stderr
    result = subprocess.run([OHLOG, "query", *args], capture_output=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    return result.returncode, result.stdout.decode(), result.stderr.decode("utf-8", "replace")


def times(stdout):
    return [json.loads(line)["time"] for line in stdout.splitlines()]


@pytest.mark.parametrize("option", ["--user", "--session", "--type", "--where", "--tz", "--start",
                                    "--end", "--date", "--since", "--until"])
@pytest.mark.parametrize("value", [b"caf\xe9", b"\xff", b"a=\xff", b"\xed\xa0\x80"])
def test_bytes_that_are_not_utf8_are_a_usage_error(denver_db, option, value):
    # the real command for one value, CliRunner for the others
    real = value == b"\xff" and option in ("--user", "--where", "--since")
    code, out, err = ohlog("--db", denver_db, option, value, real=real)
    assert (code, out) == (2, "")
    assert err.splitlines()[-1] == (
        f"Error: Invalid value for '{option}': not valid UTF-8 text: {value!r}")


@pytest.mark.parametrize("args,message", [
    (["-n", "9223372036854775808"], "Invalid value for '-n' / '--limit': 9223372036854775808 is "
                                    "not in the range 0<=x<=9223372036854775807."),
    (["--limit", "1" * 40], "Invalid value for '-n' / '--limit': " + "1" * 40 + " is not in the range "
                            "0<=x<=9223372036854775807."),
    (["--where", 'g="\\ud800"'], "Invalid value for '--where': a property value: not valid UTF-8 "
                                 "text: '\\ud800'"),
    (["--where", '"\\udfff"=1'], "Invalid value for '--where': a property name: not valid UTF-8 "
                                 "text: '\\udfff'"),
    (["--where", "x=" + "9" * 5000], "Invalid value for '--where': a number too long to use "
                                     "(5,000 characters)"),
    (["--where", "locationX=>1900"], f"Invalid value for '--where': => is not an operator: {FORMS}, "
                                     "got 'locationX=>1900'"),
    (["--where", "locationX 1900"], f"Invalid value for '--where': {FORMS}, got 'locationX 1900': {NO_OPERATOR}"),
    (["--where", "locationX>="], "Invalid value for '--where': no value after >= (write \"\" for "
                                 f"empty text): {FORMS}, got 'locationX>='"),
    (["--start", "2018-07", "--end", "2018-06"],
     "--start 2018-07 (2018-07-01T00:00:00) is after --end 2018-06 (2018-06-30T23:59:59.999999): "
     "nothing can match"),
    (["--since", "2018-07-02T00:00Z", "--until", "2018-07-01T12:00Z"],
     "--since 2018-07-02T00:00Z (2018-07-02T00:00:00Z) is after --until 2018-07-01T12:00Z "
     "(2018-07-01T12:00:59.999999Z): nothing can match"),
    (["--start", "2018-07", "--until", "2018-06", "--tz", "America/Denver"],
     "--start 2018-07 (2018-07-01T06:00:00Z) is after --until 2018-06 (2018-07-01T05:59:59.999999Z): "
     "nothing can match"),
])
def test_unusable_values_are_one_line_usage_errors(denver_db, args, message):
    code, out, err = ohlog("--db", denver_db, *args, real=args[0] in ("-n", "--start"))
    assert (code, out) == (2, "")
    assert err.splitlines()[-1] == f"Error: {message}" and "Traceback" not in err


@pytest.mark.parametrize("since,until", [("7d", "30d"), ("1mo", "1y"), ("2h", "3h")])
def test_times_ago_reversed(denver_db, since, until):
    code, out, err = ohlog("--db", denver_db, "--since", since, "--until", until, real=since == "7d")
    assert (code, out) == (2, "")
    assert err.splitlines()[-1].startswith(f"Error: --since {since} (")
    assert f"is after --until {until} (" in err


@pytest.mark.parametrize("since,until", [("2h", "2h"), ("3mo", "3mo"), ("1y", "12mo"), ("7d", "1w")])
def test_the_same_time_ago_twice_is_one_instant_not_a_reversed_range(denver_db, since, until):
    assert ohlog("--db", denver_db, "--since", since, "--until", until, "--nl", real=False) == (0, "", "")


@pytest.mark.parametrize("args,expected", [
    (["--where", "locationX >= 1905"], DENVER[5:]),
    (["--where", " locationX <  1901 "], DENVER[:1]),
    (["--where", "/at/i >= 5"], DENVER[5:]), (["--where", "/at/i!=0", "--where", "/at/i<2"], DENVER[1:2]),
    (["--date", "2018-03-11T02:30", "--tz", "America/Denver"], []),
    (["--date", "2018-03-11T02:30:00", "--tz", "America/Denver"], []),
    (["--date", "2018-11-04T01:30", "--tz", "America/Denver"], [DENVER[3], DENVER[6]]),
    (["--start", "2018-03-11T02:30", "--end", "2018-03-11T03:00", "--tz", "America/Denver"], DENVER[1:2]),
    (["--start", "2018-11-04T01:20", "--end", "2018-11-04T01:40", "--tz", "America/Denver"],
     [DENVER[3], DENVER[6]]),
    (["--since", "1000y", "--until", "1mo", "--tz", "America/Denver"], DENVER),
])
def test_where_spaces_and_zone_units(denver_db, args, expected):
    code, out, err = ohlog("--db", denver_db, "--nl", *args, real=args[:2] == ["--date", "2018-11-04T01:30"])
    assert (code, err) == (0, "")
    assert times(out) == expected


def test_dateutil_is_imported_only_for_months_and_years(denver_db):
    """It costs ~40 ms of start-up: ``ohlog query`` loads it only when it is used."""
    script = (
        "import sys\nfrom openhouse_cli.cli import cli\n"
        "try:\n    cli(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print('dateutil' in sys.modules, file=sys.stderr)\n"
    )
    for since, loaded in (("2h", "False"), ("1Y", "True")):
        result = subprocess.run(
            [sys.executable, "-c", script, "query", "--db", denver_db, "--since", since, "--nl"],
            capture_output=True, timeout=60, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        assert result.stderr.decode().split() == [loaded], since
