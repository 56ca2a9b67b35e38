"""The analyses' tables, drawn without rich: long values whole in a pipe, folded
within ``$COLUMNS``, wide characters measured as the terminal draws them, UTF-8
whatever the locale, bold and coloured only on a terminal."""

import json
import os
import pathlib
import subprocess

import pytest

from openhouse_cli.analytics.render import Bar, table
from openhouse_cli.table import width_of

from .conftest import OHLOG

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"

LONG_SESSION = "s-" + "0123456789" * 12  # 122 characters, no place to break


class Capture:
    """A text stream that says it is (or is not) a terminal."""

    encoding = "utf-8"

    def __init__(self, terminal=False):
        self.parts, self.terminal = [], terminal

    def write(self, text):
        self.parts.append(text)

    def flush(self):
        pass

    def isatty(self):
        return self.terminal

    @property
    def text(self):
        return "".join(self.parts)


def draw(rows, columns=None, environ=None, **kwargs):
    columns = columns or [("Name", "left"), ("Count", "right"), ("", "left")]
    out = Capture(kwargs.pop("terminal", False))
    saved = dict(os.environ)
    try:
        os.environ.pop("COLUMNS", None)
        os.environ.update(environ or {})
        table(out, columns, rows, **kwargs)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return out.text.splitlines()


def test_columns_are_justified_and_the_rule_spans_the_table():
    lines = draw([["a", "1", Bar(1, 2)], ["bbb", "12", Bar(2, 2)]], environ={"COLUMNS": "80"})
    assert lines[0] == "Name   Count"
    assert lines[1] == "─" * (4 + 3 + 5 + 3 + 24)
    assert lines[2] == "a          1   " + "█" * 12
    assert lines[3] == "bbb       12   " + "█" * 24


def test_in_a_pipe_without_columns_nothing_is_folded():
    lines = draw([[LONG_SESSION, "1", Bar(1, 1)]])
    assert lines[2].startswith(LONG_SESSION + "   ")


def test_within_columns_long_text_wraps_between_words_then_folds():
    text = "home → " + LONG_SESSION
    lines = draw([[text, "7", Bar(7, 7)]], environ={"COLUMNS": "60"})
    assert max(width_of(line) for line in lines) <= 60
    body = lines[2:]
    assert body[0].startswith("home → ") and LONG_SESSION not in body[0]
    # every character is there, in order, over the folded lines
    assert "".join(line.strip() for line in body[1:]) == LONG_SESSION


def test_wide_characters_take_two_cells():
    lines = draw([["日本語", "3", Bar(3, 3)], ["abc", "4", Bar(4, 4)]], environ={"COLUMNS": "80"})
    # the numbers line up: the wide name is 6 cells, as wide as "abc" padded
    assert width_of(lines[2].split("3")[0]) == width_of(lines[3].split("4")[0])


def test_the_header_is_bold_on_a_terminal_only():
    assert draw([["a", "1", ""]], terminal=True)[0].startswith("\x1b[1m")
    assert not draw([["a", "1", ""]], terminal=False)[0].startswith("\x1b[")
    assert not draw([["a", "1", ""]], terminal=True, environ={"NO_COLOR": "1"})[0].startswith("\x1b[")


def test_a_note_wraps_to_the_width():
    lines = draw([["a", "1", ""]], environ={"COLUMNS": "30"}, note="word " * 20)
    assert len(lines) > 4 and max(len(line) for line in lines) <= 30


@pytest.fixture(scope="module")
def long_ids_db(tmp_path_factory):
    work = tmp_path_factory.mktemp("tables")
    doc = {"userId": "ユーザー", "sessionId": LONG_SESSION, "actions": [
        {"time": "2018-10-18T21:37:28Z", "type": "NAVIGATE",
         "properties": {"pageFrom": "home", "pageTo": "checkout"}},
        {"time": "2018-10-18T21:37:40Z", "type": "CLICK",
         "properties": {"locationX": 1, "locationY": 2}}]}
    (work / "in.json").write_text(json.dumps(doc, ensure_ascii=False))
    db = work / "ohlog.db"
    subprocess.run([OHLOG, "ingest", "--db", str(db), str(work / "in.json")], check=True,
                   capture_output=True)
    return db


def run(db, *args, **env):
    environ = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run([OHLOG, *args, "--db", str(db), "--table"], capture_output=True,
                          env={**environ, **env})


def test_text_that_wraps_between_words_folds_before_ids():
    # Found by a new user: at 80 columns the sessions table split 9-character
    # ids (ABC12/3XYZ) while the pages could have wrapped instead
    columns = [("User", "left"), ("Session", "left"), ("Start", "nowrap"), ("Pages", "left")]
    rows = [["ABC123XYZ", "XYZ456ABC", "2018-10-18T21:37:28-06:00", "communities → inventory"],
            ["u-mumbai", "s-2", "2018-10-19T09:07:28+05:30", "home → inventory"]]
    lines = draw(rows, columns, {"COLUMNS": "60"})
    assert max(map(width_of, lines)) <= 60
    assert lines[2].split()[:3] == ["ABC123XYZ", "XYZ456ABC", "2018-10-18T21:37:28-06:00"]
    assert lines[3].split() == ["inventory"] and lines[4].split()[:2] == ["u-mumbai", "s-2"]
    # narrower, the gaps close to one space before anything folds
    assert draw(rows, columns, {"COLUMNS": "64"})[2] == (
        "ABC123XYZ XYZ456ABC 2018-10-18T21:37:28-06:00 communities →")
    # with no words to wrap, ids fold as before, down to 8
    rows = [[r[0], r[1], r[2], "x"] for r in rows]
    assert draw(rows, columns, {"COLUMNS": "49"})[2].split()[:2] == ["ABC123XY", "XYZ456AB"]


def test_sessions_table_in_a_pipe_keeps_each_session_on_one_line(long_ids_db):
    result = run(long_ids_db, "sessions")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    row = next(line for line in lines if LONG_SESSION in line)
    assert row.startswith("ユーザー") and "home → checkout" in row


@pytest.mark.parametrize("encoding", ["latin-1", "ascii"])
def test_tables_are_utf8_whatever_the_locale(long_ids_db, encoding):
    for command in (["stats"], ["sessions"], ["count", "--by", "session"], ["retention"]):
        result = run(long_ids_db, *command, PYTHONIOENCODING=encoding, COLUMNS="100")
        assert result.returncode == 0, (command, result.stderr)
        text = result.stdout.decode("utf-8")
        assert "─" in text and "Traceback" not in result.stderr.decode()


def test_a_timeline_of_several_journeys_says_whose_each_step_is(tmp_path):
    # a session id that two users share (or --user twice) used to list both
    # journeys' steps with nothing to tell whose each was
    docs = [{"userId": user, "sessionId": "s1", "actions": [
        {"time": t, "type": "VIEW", "properties": {"viewedId": "x"}} for t in times]}
        for user, times in (("alice", ["2018-10-18T21:37:28Z", "2018-10-18T21:37:40Z"]),
                            ("bob", ["2018-10-18T21:37:30Z"]))]
    source = tmp_path / "in.ndjson"
    source.write_text("".join(json.dumps(d) + "\n" for d in docs))
    db = tmp_path / "o.db"
    subprocess.run([OHLOG, "ingest", "-q", "--db", str(db), str(source)], check=True)
    shared = run(db, "timeline", "--session", "s1", COLUMNS="100")
    lines = shared.stdout.decode().splitlines()
    assert lines[0].split()[:3] == ["User", "Gap", "Time"]
    assert [line.split()[0] for line in lines[2:]] == ["alice", "bob", "alice"]  # in time order
    one = run(db, "timeline", "--user", "alice", COLUMNS="100")
    assert one.stdout.decode().splitlines()[0].split()[:2] == ["Gap", "Time"]


def test_a_funnel_in_any_order_labels_its_rows_by_steps_done(tmp_path):
    # row k counts users who did k of the steps, whichever: naming it after
    # step k said that 4 users had clicked when 3 had
    db = tmp_path / "o.db"
    subprocess.run([OHLOG, "ingest", "-q", "--db", str(db), str(EXAMPLES)], check=True)
    environ = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    result = subprocess.run([OHLOG, "funnel", "CLICK", "VIEW", "NAVIGATE", "--order", "any", "--db", str(db),
                             "--table"], capture_output=True, env=environ)
    lines = result.stdout.decode().splitlines()
    assert lines[0].startswith("Steps done")
    assert [line.split("   ")[0] for line in lines[2:5]] == ["1 of 3 steps", "2 of 3 steps", "3 of 3 steps"]
    ordered = subprocess.run([OHLOG, "funnel", "CLICK", "VIEW", "--db", str(db), "--table"],
                             capture_output=True, env=environ)
    assert ordered.stdout.decode().splitlines()[2].startswith("CLICK ")


def test_property_groups_never_look_alike_in_a_table(tmp_path):
    # Found by a new user: 52 and "52" (null and "") were two groups with the same label
    from openhouse_cli.cli.analytics import _property_labels

    assert _property_labels([52, "52", None, "null", "", "x y", True, "true", [1], "[1]", 1.5]) == [
        "52", '"52"', "null", '"null"', '""', "x y", "true", '"true"', "[1]", '"[1]"', "1.5"]
    # text that holds quotes, or spaces at its ends, or nothing (found from outside)
    labels = _property_labels(["52", '"52"', None, "null ", "", " ", 52])
    assert labels == ['"52"', '"\\"52\\""', "null", '"null "', '""', '" "', "52"]
    assert len(set(labels)) == len(labels)
    assert _property_labels(["home", "cart", None]) == ["home", "cart", "null"]  # text as it is
    doc = {"userId": "u", "sessionId": "s", "actions": [
        {"time": f"2018-01-01T00:00:0{i}Z", "type": "A", "properties": props}
        for i, props in enumerate([{"k": 52}, {"k": "52"}, {}, {"k": "k"}])]}
    (tmp_path / "p.json").write_text(json.dumps(doc))
    db = tmp_path / "p.db"
    subprocess.run([OHLOG, "ingest", "--db", str(db), str(tmp_path / "p.json")], check=True, capture_output=True)
    lines = run(db, "count", "--by", "prop:k").stdout.decode().splitlines()
    assert sorted(line.split()[0] for line in lines[2:]) == ['"52"', "52", "k", "null"]


def test_the_coloured_table_keeps_the_gap_it_was_fitted_to():
    # Found by a review: widths() may narrow the gaps to one space, which rich
    # (retention's shading, on a terminal) drew two wide, cutting cells short
    import re

    from openhouse_cli.analytics.render import widths

    columns = [("Cohort", "left"), ("Users", "right")] + [(str(p), "right") for p in range(8)]
    cells = [["2018-09-03", "5"] + ["100.0%", "40.0%", "20.0%", "0.0%", "60.0%", "40.0%", "20.0%", "0.0%"]]
    styles = [["", ""] + ["on blue"] * 8]
    for width in range(60, 100):
        sizes, folded, gap = widths(width, columns, cells)
        if any(width_of(c) > s for c, s in zip(cells[0], sizes)):
            continue  # the command leaves out periods rather than fold (cli._fit_periods)
        lines = [re.sub("\x1b\\[[0-9;]*m", "", line)
                 for line in draw(cells, columns, {"COLUMNS": str(width)}, terminal=True, styles=styles)]
        row = next(line for line in lines if line.startswith("2018"))
        assert row.split() == cells[0], (width, gap, lines)
        assert max(map(width_of, lines)) <= width
