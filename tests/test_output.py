"""Choosing the output format and the streaming renderers."""

import csv
import io
import json
import os
import shutil
import subprocess
import sys

import pytest

from openhouse_cli.ingest import ingest_sessions
from openhouse_cli.output import (
    FormatError, choose_format, render, write_csv, write_footer, write_json, write_ndjson,
    write_table,
)

from .conftest import OHLOG

ACTION = {"userId": "u1", "sessionId": "s1", "time": "2018-10-18T21:37:28-06:00", "type": "CLICK",
          "properties": {"locationX": 52, "locationY": 11}}


def line(i):
    return json.dumps({**ACTION, "properties": {"i": i}}, separators=(",", ":"))


@pytest.mark.parametrize("kwargs,isatty,expected", [
    ({}, True, "table"), ({}, False, "json"),
    ({"table": True}, False, "table"), ({"json_": True}, True, "json"),
    ({"nl": True}, True, "ndjson"), ({"csv_": True}, True, "csv"),
    ({"format_": "csv"}, True, "csv"), ({"format_": "table"}, False, "table"),
])
def test_choose_format(kwargs, isatty, expected):
    assert choose_format(**kwargs, isatty=isatty) == expected


@pytest.mark.parametrize("kwargs", [
    {"json_": True, "nl": True}, {"table": True, "csv_": True}, {"format_": "json", "json_": True},
])
def test_one_format_only(kwargs):
    with pytest.raises(FormatError, match=r"^Use just one of --format, --table, --json, --nl or --csv$"):
        choose_format(**kwargs)


def test_unknown_format():
    with pytest.raises(FormatError, match="Unknown format 'xml': expected one of table, json, ndjson, csv"):
        choose_format("xml")


def test_json_empty():
    out = io.BytesIO()
    write_json(iter(()), out)
    assert out.getvalue() == b'{"actions": []}\n'


@pytest.mark.parametrize("n", [1, 2, 499, 500, 501, 1203])
def test_json_many(n):
    out = io.BytesIO()
    write_json((line(i) for i in range(n)), out)
    actions = json.loads(out.getvalue())["actions"]
    assert [a["properties"]["i"] for a in actions] == list(range(n))
    assert out.getvalue().count(b"\n") == n + 2  # one action a line


@pytest.mark.parametrize("n", [0, 1, 500, 1203])
def test_ndjson(n):
    out = io.BytesIO()
    write_ndjson((line(i) for i in range(n)), out)
    lines = out.getvalue().splitlines()
    assert [json.loads(x)["properties"]["i"] for x in lines] == list(range(n))
    assert out.getvalue().endswith(b"\n") or n == 0


@pytest.fixture(scope="session")
def locales(tmp_path_factory):
    """LC_ALL values to run under, with the encoding Python sees under each: the C
    locale, C.UTF-8, and a Latin-1 locale generated here (no root needed)."""
    found = {"C": "utf-8", "C.UTF-8": "utf-8"}  # Python runs the C locale in UTF-8 mode
    path = tmp_path_factory.mktemp("locales")
    args = ["localedef", "-i", "en_US", "-f", "ISO-8859-1", path / "en_US.ISO-8859-1"]
    made = None
    if shutil.which("localedef"):
        made = subprocess.run(args, capture_output=True, timeout=120)
    if made is not None and made.returncode in (0, 1):  # 1: made, with warnings
        found["en_US.ISO-8859-1"] = "iso8859-1"
    return path, found


@pytest.mark.parametrize("name", ("C", "C.UTF-8", "en_US.ISO-8859-1"))
@pytest.mark.parametrize("fmt", ("--nl", "--json", "--csv", "--table"))
def test_output_is_utf8_whatever_the_locale(tmp_path, locales, name, fmt, run_ohlog):
    path, found = locales
    if name not in found:
        pytest.skip(f"no {name} locale here and localedef could not make one")
    env = {**os.environ, "LC_ALL": name, "LOCPATH": str(path), "COLUMNS": "200"}
    env.pop("PYTHONIOENCODING", None)
    env.pop("PYTHONUTF8", None)
    probe = subprocess.run([sys.executable, "-c", "import sys; print(sys.stdout.encoding)"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert probe.stdout.strip().lower().replace("_", "-") == found[name]  # the locale took hold
    db = tmp_path / "l.db"
    action = {k: ACTION[k] for k in ("time", "type", "properties")}
    doc = {"userId": "é☃", "sessionId": "s1", "actions": [action]}
    assert run_ohlog("ingest", "-q", "--db", db, "-", input=json.dumps(doc)).returncode == 0
    result = subprocess.run([OHLOG, "query", "--db", db, fmt], env=env, capture_output=True,
                            stdin=subprocess.DEVNULL, timeout=120)
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr
    assert "é☃" in result.stdout.decode("utf-8")  # strict: any other encoding fails here


def test_writing_starts_before_the_rows_run_out():
    out, consumed = io.BytesIO(), []

    def lines():
        for i in range(5000):
            if i == 2000:
                consumed.append(len(out.getvalue()))
            yield line(i)

    write_ndjson(lines(), out)
    assert consumed[0] > 0  # something was written by the 2000th row


def test_csv():
    rows = [("u1", "s1", "2018-10-18T21:37:28-06:00", "CLICK", '{"a":"x,\\"y\\"\\n"}'),
            ("u,2", 's"2', "t", "VIEW", "{}")]
    out = io.BytesIO()
    write_csv(iter(rows), out)
    text = out.getvalue().decode()
    assert text.startswith("userId,sessionId,time,type,properties\r\n")
    assert list(csv.reader(io.StringIO(text))) == [["userId", "sessionId", "time", "type", "properties"],
                                                   *map(list, rows)]
    assert not out.closed


def test_csv_empty_is_the_header():
    out = io.BytesIO()
    write_csv(iter(()), out)
    assert out.getvalue() == b"userId,sessionId,time,type,properties\r\n"


def table(actions):
    out = io.StringIO()
    shown = write_table(actions, out)
    return shown, out.getvalue()


def test_table_columns_and_properties():
    shown, text = table([ACTION, {**ACTION, "type": "VIEW", "properties": {"viewedId": "FDJ", "n": [1, None]}}])
    assert shown == 2
    header = text.splitlines()[0].split()
    assert header == ["Time", "User", "Session", "Type", "Properties"]
    assert "2018-10-18T21:37:28-06:00" in text and "locationX=52 locationY=11" in text
    assert "viewedId=FDJ n=[1,null]" in text


def test_table_never_reads_data_as_markup():
    _, text = table([{**ACTION, "userId": "[bold]x[/bold]", "properties": {"k": "[red]v"}}])
    assert "[bold]x[/bold]" in text and 'k="[red]v"' in text
    assert "\x1b[" not in text


def test_table_empty_has_a_header():
    shown, text = table([])
    assert shown == 0 and text.split()[:5] == ["Time", "User", "Session", "Type", "Properties"]


def test_table_is_drawn_in_chunks_that_line_up():
    actions = [{**ACTION, "userId": "u" * (1 + i // 200)} for i in range(450)]
    shown, text = table(actions)
    assert shown == 450
    rows = [x for x in text.splitlines() if x.startswith("2018")]
    assert len(rows) == 450
    assert len({r.index("s1") for r in rows}) == 1  # the session column never moves
    assert text.count("Time") == 1  # one header


@pytest.mark.parametrize("shown,more,expected", [
    (0, 0, "0 actions\n"), (1, 0, "1 action\n"), (3, 0, "3 actions\n"),
    (10, 1234, "10 actions shown, 1,234 more matched\n"), (1, 1, "1 action shown, 1 more matched\n"),
])
def test_footer(shown, more, expected):
    out = io.StringIO()
    write_footer(shown, more, out)
    assert out.getvalue() == expected


SESSION = {"userId": "u1", "sessionId": "s1", "actions": [
    {"time": f"2018-10-18T21:37:{i:02d}Z", "type": "CLICK", "properties": {"locationX": i, "locationY": 0}}
    for i in range(9)]}


class Stdout(io.TextIOWrapper):
    def __init__(self):
        super().__init__(io.BytesIO(), encoding="utf-8")

    def text(self):
        self.flush()
        return self.buffer.getvalue().decode()


@pytest.mark.parametrize("limit,footer", [(None, "9 actions"), (9, "9 actions"), (20, "9 actions"),
                                          (2, "2 actions shown, 7 more matched"), (0, "0 actions shown, 9 more matched")])
def test_render_table_counts_what_the_limit_cut(db, limit, footer):
    ingest_sessions(db, [SESSION])
    stdout = Stdout()
    render("table", db, {"types": ["click"], "limit": limit}, stdout=stdout)
    assert stdout.text().splitlines()[-1] == footer


@pytest.mark.parametrize("fmt,parse", [
    ("json", lambda t: json.loads(t)["actions"]),
    ("ndjson", lambda t: [json.loads(x) for x in t.splitlines()]),
    ("csv", lambda t: list(csv.DictReader(io.StringIO(t)))),
])
def test_render_machine_formats(db, fmt, parse):
    ingest_sessions(db, [SESSION])
    stdout = Stdout()
    render(fmt, db, {"order": "desc", "limit": 3}, stdout=stdout)
    found = parse(stdout.text())
    assert [a["time"] for a in found] == ["2018-10-18T21:37:08Z", "2018-10-18T21:37:07Z", "2018-10-18T21:37:06Z"]


def test_a_reader_that_goes_away_ends_output_quietly(db):
    class Closed(io.BytesIO):
        def write(self, data):
            raise BrokenPipeError(32, "Broken pipe")

    ingest_sessions(db, [SESSION])
    render("ndjson", db, {}, stdout=Closed())  # no exception


@pytest.mark.parametrize("encoding", ["latin-1", "ascii", "cp1252"])
@pytest.mark.parametrize("args", [["--table"], ["--table", "--show-tz", "Asia/Kolkata"],
                                  ["--table", "-n", "0"]])
def test_table_is_utf8_whatever_python_encodes_stdout_in(tmp_path, run_ohlog, encoding, args):
    db = tmp_path / "e.db"
    doc = {"userId": "é☃", "sessionId": "s—1", "actions": [
        {"time": ACTION["time"], "type": "TAP", "properties": {"名前": "Zoë 🎉"}}]}
    assert run_ohlog("ingest", "-q", "--db", db, "-", input=json.dumps(doc)).returncode == 0
    env = {**os.environ, "PYTHONIOENCODING": encoding, "COLUMNS": "200"}
    result = subprocess.run([OHLOG, "query", "--db", db, *args], env=env, capture_output=True,
                            stdin=subprocess.DEVNULL, timeout=120)
    assert (result.returncode, result.stderr) == (0, b"")
    text = result.stdout.decode("utf-8")  # strict
    if "-n" in args:
        assert text.endswith("0 actions shown, 1 more matched\n")
    else:
        assert "é☃" in text and "s—1" in text and '名前="Zoë 🎉"' in text and text.endswith("1 action\n")


@pytest.mark.parametrize("args", [["--table"], ["--table", "--show-tz", "UTC"],
                                  ["--nl", "--fields", "utc,properties.i"], ["--csv", "--fields", "type"]])
@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_a_closed_pipe_ends_every_output_quietly(tmp_path, run_ohlog, args, encoding):
    db = tmp_path / "many.db"
    docs = [{"userId": "u☃", "sessionId": f"s{i}", "actions": [
        {"time": f"2018-10-18T21:37:{j:02d}Z", "type": "T", "properties": {"i": i}}
        for j in range(50)]} for i in range(400)]
    assert run_ohlog("ingest", "-q", "--db", db, "-", input=json.dumps(docs)).returncode == 0
    shell = f"'{OHLOG}' query --db '{db}' {' '.join(args)} | head -n 1"
    env = {**os.environ, "PYTHONIOENCODING": encoding}
    result = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True,
                            env=env, timeout=60)
    assert (result.returncode, result.stderr) == (0, b"")
    assert len(result.stdout.splitlines()) == 1
