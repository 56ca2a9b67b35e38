"""The table fits its width (issue 11.9): no header word split, no line past the
width, and every value there, folded if it must be, never cut."""

import json
import os
import re
import shutil
import subprocess

import pytest
from rich.cells import cell_len

from openhouse_cli.table import TableWriter, cells, fold, layout, property_items, wrap

from .conftest import OHLOG

HEADERS = ["User", "Session", "Type", "Properties"]
LONG = [{
    "userId": "3f2a9c1e-7b4d-4e8a-9f1c-2d3e4f5a6b7c",
    "sessionId": "sess-0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "actions": [
        {"time": "2018-10-18T21:37:28.123456789+05:30", "type": "checkout_completed_with_coupon",
         "properties": {"cart": {"items": [{"sku": "A-1", "qty": 2}, {"sku": "B-22", "qty": 1}]},
                        "total": "52", "note": 'a b "c"', "": 1, "名前": "Zoë 🎉",
                        "url": "https://example.com/a/very/long/path/that/goes/on?with=query"}},
        {"time": "2018-10-18T21:37:29Z", "type": "ping", "properties": {}},
        {"time": "2018-10-18T21:37:30-06:00", "type": "VIEW", "properties": {"viewedId": "X"}},
    ]}]


@pytest.fixture(scope="module")
def databases(tmp_path_factory):
    """The bundled examples, and actions with long ids, types and properties."""
    path = tmp_path_factory.mktemp("tables")
    env = {**os.environ, "OHLOG_DB": str(path / "examples.db")}
    subprocess.run([OHLOG, "ingest", "-q", "examples/"], env=env, check=True, timeout=120)
    long = path / "long.json"
    long.write_text(json.dumps(LONG))
    subprocess.run([OHLOG, "ingest", "-q", "--db", path / "long.db", long], check=True,
                   timeout=120)
    return {"examples": path / "examples.db", "long": path / "long.db"}


def ohlog(*args, columns=None):
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    done = subprocess.run([OHLOG, "query", *map(str, args)], env=env, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=120)
    assert (done.returncode, done.stderr) == (0, b""), done.stderr
    return done.stdout.decode()


def columns_of(text):
    """Each column's text, read back from the table by the header's positions:
    the pieces of a column, line after line, joined (a fold adds nothing)."""
    lines = text.splitlines()
    header = lines[0]
    starts = [0] + [header.index(f"  {h}") + 2 for h in HEADERS]
    found = [[] for _ in starts]
    for line in lines[2:-1]:  # below the rule, above the footer
        for i, start in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else None
            found[i].append(line[start:end].strip())
    return ["".join(parts) for parts in found]


@pytest.mark.parametrize("width", [80, 100, 120, 200])
@pytest.mark.parametrize("name", ["examples", "long"])
@pytest.mark.parametrize("zone", [None, "UTC", "America/Denver"])
def test_the_table_fits_and_holds_every_value(databases, width, name, zone):
    show = ["--show-tz", zone] if zone else []
    text = ohlog("--db", databases[name], "--table", *show, columns=width)
    lines = text.splitlines()
    assert max(cell_len(line) for line in lines) <= width
    time_header = ["Time"] if zone is None else ["Time", f"({zone})"]
    assert lines[0].split() == [*time_header, *HEADERS]  # no header word split
    actions = [json.loads(x) for x in ohlog("--db", databases[name], "--nl").splitlines()]
    times = ohlog("--db", databases[name], "--csv", "--fields", "utc").splitlines()[1:]
    assert lines[-1] == f"{len(actions)} actions"
    if zone == "UTC":
        for action, utc in zip(actions, times):
            action["time"] = utc
    elif zone:  # the times as a pipe's table shows them, one row a line
        wide = ohlog("--db", databases[name], "--table", *show).splitlines()[2:-1]
        for action, line in zip(actions, wide):
            action["time"] = line.split("  ")[0]
        assert all(a["time"].endswith("-06:00") for a in actions)  # MDT, that October
    time, user, session, kind, properties = columns_of(text)
    assert time == "".join(a["time"] for a in actions)
    assert user == "".join(a["userId"] for a in actions)
    assert session == "".join(a["sessionId"] for a in actions)
    assert kind == "".join(a["type"] for a in actions)
    items = "".join(" ".join(property_items(a["properties"])) for a in actions)
    assert properties.replace(" ", "") == items.replace(" ", "")


def test_short_properties_get_the_room_at_80_columns(databases):
    text = ohlog("--db", databases["examples"], "--table", columns=80)
    # one line each: the properties fit beside the ids
    assert "u-mumbai   s-2        VIEW      viewedId=FDJKLHSLD\n" in text
    assert "NAVIGATE  pageFrom=communities\n" in text
    # the one time with milliseconds folds before its offset; the others keep the column
    assert "2018-10-18T19:37:28.250    u-la" in text
    assert "\n-08:00 " in text
    assert len(text.splitlines()) < 2 * 9 + 3


def test_a_pipe_without_columns_draws_each_row_on_one_line(databases):
    text = ohlog("--db", databases["long"], "--table")
    lines = text.splitlines()
    assert len(lines) == 2 + 3 + 1  # header, rule, three actions, footer
    assert "3f2a9c1e-7b4d-4e8a-9f1c-2d3e4f5a6b7c" in lines[2]
    assert 'note="a b \\"c\\""' in lines[2] and lines[2].endswith('名前="Zoë 🎉"')
    # and $COLUMNS, when set, is the width a pipe gets
    assert max(map(cell_len, ohlog("--db", databases["long"], "--table",
                                   columns=100).splitlines())) == 100


@pytest.mark.parametrize("fmt", [["--nl"], ["--json"], ["--csv"],
                                 ["--csv", "--fields", "utc,type"]])
def test_the_width_never_changes_machine_output(databases, fmt):
    wide = ohlog("--db", databases["long"], *fmt)
    assert ohlog("--db", databases["long"], *fmt, columns=80) == wide


@pytest.mark.parametrize("value, shown", [
    ("FDJKLHSLD", "k=FDJKLHSLD"), ("52", 'k="52"'), ("true", 'k="true"'), ("null", 'k="null"'),
    ("", 'k=""'), ("a b", 'k="a b"'), ('say "hi"', 'k="say \\"hi\\""'), ("[1]", 'k="[1]"'),
    ("{x", 'k="{x"'), ("a=b", "k=a=b"), ("\x1b[2J", 'k="\\u001b[2J"'),
    ("\u202eevil", 'k="\\u202eevil"'),
    (52, "k=52"), (1.5, "k=1.5"), (True, "k=true"), (None, "k=null"), ([1, None], "k=[1,null]"),
    ({"a": [1, 2]}, 'k={"a":[1,2]}'), (10**30, f"k={10**30}"),
])
def test_a_property_reads_as_what_it_is(value, shown):
    assert property_items({"k": value}) == [shown]


@pytest.mark.parametrize("key, shown", [
    ("a.b", "a.b=1"), ("a b", '"a b"=1'), ("a=b", '"a=b"=1'), ("", '""=1'), ("\n", '"\\n"=1'),
])
def test_a_key_that_would_mislead_is_quoted(key, shown):
    assert property_items({key: 1}) == [shown]


@pytest.mark.parametrize("text, width", [
    ("2018-10-18T21:37:28.123456789+05:30", 25), ("3f2a9c1e-7b4d-4e8a-9f1c-2d3e4f5a6b7c", 10),
    ("名前名前名前", 5), ("x", 1), ("🎉🎉", 1),
])
def test_fold_keeps_every_character_within_the_width(text, width):
    lines = fold(text, width)
    assert "".join(lines) == text
    assert all(cell_len(line) <= width for line in lines if len(line) > 1)


def test_wrap_breaks_between_items_before_inside_one():
    items = ["locationX=52", "locationY=11", 'extra={"nested":[1,2]}']
    assert wrap(items, 25) == ["locationX=52 locationY=11", 'extra={"nested":[1,2]}']
    assert wrap(items, 20) == ["locationX=52", "locationY=11", 'extra={"nested":[1,', "2]}"]
    assert wrap(items, None) == [" ".join(items)]
    assert wrap([], 20) == [""]


def test_layout_gives_properties_their_share_and_narrows_long_ids_first():
    # the examples at 80: nothing narrowed but the one time with milliseconds
    assert layout([29, 9, 9, 8], 37, 22, 80) == ([25, 9, 9, 8], 21)
    # a wide terminal: nothing narrowed, the properties no wider than they need
    assert layout([29, 9, 9, 8], 37, 20, 200) == ([29, 9, 9, 8], 37)
    # uuids at 80: the ids fold, the properties keep at least 16
    fixed, properties = layout([25, 36, 41, 8], 60, 30, 80)
    assert properties >= 16 and sum(fixed) + 8 + properties <= 80 and fixed[0] == 25
    # no width: every column its natural width
    assert layout([35, 36, 41, 30], 300, 60, None) == ([35, 36, 41, 30], 300)


def test_a_table_drawn_in_chunks_keeps_its_columns_within_a_width():
    import io

    out = io.StringIO()
    writer = TableWriter(out, width=60)
    writer.write([cells("2018-10-18T21:37:28Z", "u1", "s1", "T", {"i": 1})])
    writer.write([cells("2018-10-18T21:37:29Z", "a-much-longer-user", "s1", "T", {"i": 2})])
    lines = out.getvalue().splitlines()
    assert lines[0].index("Session") == lines[2].index("s1") == lines[3].index("s1")
    assert "".join(line[22:28].strip() for line in lines[3:]) == "a-much-longer-user"


@pytest.mark.skipif(shutil.which("script") is None, reason="no script(1) for a terminal")
def test_a_terminal_of_80_columns(databases, tmp_path):
    """On a real terminal (no $COLUMNS), the terminal's width is the width."""
    command = f"stty cols 80 rows 40; '{OHLOG}' query --db '{databases['examples']}'"
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run(["script", "-qec", command, "/dev/null"], env=env, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=120)
    text = done.stdout.decode().replace("\r\n", "\n").replace("\x1b[1m", "").replace("\x1b[0m", "")
    lines = [line for line in text.splitlines() if line]
    assert lines[0].split() == ["Time", *HEADERS]
    assert max(map(cell_len, lines)) <= 80 and lines[-1] == "9 actions"


@pytest.mark.skipif(shutil.which("script") is None, reason="no script(1) for a terminal")
@pytest.mark.parametrize("command", ["query", "count --by user", "sessions", "retention"])
def test_a_terminal_that_gives_no_width_is_80_columns(databases, command):
    """Found from outside: `stty cols 0` (a terminal that does not know its
    width) made the analyses fold every column to a character or two."""
    shell = f"stty cols 0 rows 40; '{OHLOG}' {command} --db '{databases['examples']}'"
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run(["script", "-qec", shell, "/dev/null"], env=env, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=120)
    text = done.stdout.decode().replace("\r\n", "\n")
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in text.splitlines() if line]
    assert done.returncode == 0, text
    assert 40 <= max(map(cell_len, lines)) <= 80, text
    header = lines[0].split()
    assert header[0] in ("Time", "User", "Cohort") and all(len(word) > 2 for word in header[:2]), text


@pytest.mark.parametrize("columns", ["1", "10", "0"])
def test_a_width_too_narrow_to_read_is_drawn_20_wide(databases, columns):
    """$COLUMNS=10 folded ids to a character a line; 20 columns is the least
    drawn (the terminal wraps what is wider); 0 is no width given (a pipe)."""
    from openhouse_cli.table import MIN_WIDTH

    env = {**os.environ, "COLUMNS": columns}
    for command in (["query"], ["count", "--by", "user"]):
        done = subprocess.run([OHLOG, *command, "--table", "--db", str(databases["examples"])], env=env,
                              capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
        lines = done.stdout.decode().splitlines()
        assert done.returncode == 0
        if columns == "0":  # as in a pipe: each row on one line
            assert len(lines) == 2 + 9 + (command == ["query"]) or command != ["query"]
            assert max(map(cell_len, lines)) > MIN_WIDTH
        else:  # query's table has a floor of its own, wider
            assert max(map(cell_len, lines)) <= MIN_WIDTH == 20 or command == ["query"]
            assert lines[0].split() in (["Time", *HEADERS], ["User", "Actions", "Users"])
