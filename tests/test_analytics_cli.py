"""The analysis commands end to end through the real ``ohlog``: formats, empty results, usage errors."""

import json
import pathlib

import pytest

from .test_analytics_fixtures import session

DOCS = [
    session("a", "s1", ("2018-10-01T10:00:00Z", "VIEW"), ("2018-10-01T10:01:02Z", "CLICK"),
            ("2018-10-01T10:05:00Z", "NAVIGATE", {"pageFrom": "home", "pageTo": "cart"})),
    session("b", "s2", ("2018-10-03T10:00:00Z", "view"), ("2018-10-03T10:00:01Z", "VIEW")),
]


@pytest.fixture
def db(tmp_path, run_ohlog):
    path = tmp_path / "log.ndjson"
    path.write_text("\n".join(json.dumps(d) for d in DOCS) + "\n")
    target = tmp_path / "a.db"
    assert run_ohlog("ingest", "--db", target, path).returncode == 0
    return target


def ohlog_json(run_ohlog, *args):
    result = run_ohlog(*args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_json_in_a_pipe(run_ohlog, db):
    assert ohlog_json(run_ohlog, "count", "--db", db, "--by", "type") == {"groups": [
        {"type": "VIEW", "actions": 3, "users": 2}, {"type": "CLICK", "actions": 1, "users": 1},
        {"type": "NAVIGATE", "actions": 1, "users": 1}]}
    assert ohlog_json(run_ohlog, "count", "--db", db, "--by", "DAY", "--type", "view")["groups"] == [
        {"day": "2018-10-01", "actions": 1, "users": 1}, {"day": "2018-10-02", "actions": 0, "users": 0},
        {"day": "2018-10-03", "actions": 2, "users": 1}]
    found = ohlog_json(run_ohlog, "stats", "--db", db)
    assert {k: found[k] for k in ("actions", "users", "sessions", "first", "last")} == {
        "actions": 5, "users": 2, "sessions": 2, "first": "2018-10-01T10:00:00Z",
        "last": "2018-10-03T10:00:01Z"}
    # the date chooses the day shown; its WAU and MAU look back past it (the 1st's user too)
    assert ohlog_json(run_ohlog, "active", "--db", db, "--date", "2018-10-03")["days"] == [
        {"day": "2018-10-03", "dau": 1, "wau": 2, "mau": 2}]
    assert ohlog_json(run_ohlog, "funnel", "--db", db, "VIEW", "CLICK")["steps"][1]["users"] == 1
    assert ohlog_json(run_ohlog, "retention", "--db", db, "--unit", "day", "--periods", "3")["cohorts"] == [
        {"cohort": "2018-10-01", "users": 1, "retained": [1, 0, 0]},
        {"cohort": "2018-10-03", "users": 1, "retained": [1, None, None]}]
    assert ohlog_json(run_ohlog, "paths", "--db", db) == {"paths": [{"path": ["home", "cart"], "sessions": 1}]}
    found = ohlog_json(run_ohlog, "sessions", "--db", db)
    assert found["summary"]["sessions"] == 2 and found["sessions"][1]["bounce"] is False


def test_limit_shows_the_first_rows_and_says_so(run_ohlog, db):
    # count: the first groups in the order shown (by actions, descending)
    assert ohlog_json(run_ohlog, "count", "--db", db, "--by", "type", "--limit", "2") == {"groups": [
        {"type": "VIEW", "actions": 3, "users": 2}, {"type": "CLICK", "actions": 1, "users": 1}]}
    table = run_ohlog("count", "--db", db, "--by", "day", "--limit", "1", "--table").stdout.decode()
    assert "2018-10-01" in table and "2018-10-02" not in table
    assert table.splitlines()[-1] == "The first 1 of 3 groups shown (--limit)."
    # sessions: the first sessions; the summary still counts both
    found = ohlog_json(run_ohlog, "sessions", "--db", db, "--limit", "1")
    assert [(s["userId"], s["sessionId"]) for s in found["sessions"]] == [("a", "s1")]
    assert found["summary"] == {"sessions": 2, "medianSeconds": 150.5, "p90Seconds": 300.0, "bounceRate": 0.0}
    lines = run_ohlog("sessions", "--db", db, "--limit", "1", "--nl").stdout.decode().splitlines()
    assert [json.loads(line)["sessionId"] for line in lines] == ["s1"]
    table = run_ohlog("sessions", "--db", db, "--limit", "0", "--table").stdout.decode()
    assert table.splitlines()[-2:] == ["2 sessions, median 2m30s, p90 5m00s, bounce rate 0.0%",
                                       "None of 2 sessions shown (--limit 0)."]
    # timeline: the first steps
    found = ohlog_json(run_ohlog, "timeline", "--db", db, "--user", "a", "--limit", "2")["actions"]
    assert [(a["type"], a["gapSeconds"]) for a in found] == [("VIEW", None), ("CLICK", 62.0)]
    table = run_ohlog("timeline", "--db", db, "--user", "a", "--limit", "0", "--table").stdout.decode()
    assert table.splitlines()[-1] == "No action shown (--limit 0): actions match."
    table = run_ohlog("timeline", "--db", db, "--user", "a", "--limit", "2", "--table").stdout.decode()
    assert table.splitlines()[-1] == "The first 2 steps shown (--limit): more match."
    table = run_ohlog("timeline", "--db", db, "--user", "a", "--limit", "3", "--table").stdout.decode()
    assert "--limit" not in table  # all three shown
    table = run_ohlog("timeline", "--db", db, "--user", "nobody", "--limit", "0", "--table").stdout.decode()
    assert table.splitlines()[-1] == "No matching actions."
    # without a limit, nothing is cut and no note is added
    table = run_ohlog("count", "--db", db, "--by", "day", "--table").stdout.decode()
    assert "2018-10-03" in table and "--limit" not in table


@pytest.mark.parametrize("command", [["stats"], ["count", "--by", "day", "--by", "prop:pageTo"], ["active"],
                                     ["active", "--by", "week"], ["sessions"], ["timeline", "--user", "a"],
                                     ["funnel", "VIEW", "CLICK"], ["retention", "--periods", "2"], ["paths"]])
def test_csv_has_the_same_header_with_or_without_rows(run_ohlog, db, command):
    # Found from outside: with no row, the header was the table's ("Day,Actions,Users,")
    def header(*args):
        result = run_ohlog(*command, "--db", db, "--csv", *args)
        assert result.returncode == 0, result.stderr
        return result.stdout.decode().splitlines()

    found, none = header("--date", "2018-10-01", "--tz", "UTC"), header("--date", "2000-01-01", "--tz", "UTC")
    assert len(found) > 1 and len(none) == 1
    assert none[0] == found[0]


def test_a_bound_on_each_actions_clock_beside_utc_days_is_warned_about(run_ohlog, tmp_path):
    # Found from outside: `active --date 2018-10-18` showed no user on the
    # 18th, since the date read each action's clock (-06:00) and the days were UTC's
    path = tmp_path / "log.ndjson"
    path.write_text(json.dumps(session("u", "s", ("2018-10-18T21:37:28-06:00", "VIEW"))) + "\n")
    db = tmp_path / "z.db"
    assert run_ohlog("ingest", "--db", db, path).returncode == 0
    for command, local, unit in ((["active"], True, "days"), (["count", "--by", "day"], True, "days"),
                                 (["stats"], False, "days"), (["retention"], True, "weeks"),
                                 (["count", "--by", "hour"], True, "hours"),
                                 (["retention", "--unit", "month"], True, "months")):
        warning = (f"Warning: --date without an offset reads each action's own clock, and the {unit} here are"
                   " UTC's: add --tz UTC (or a zone) to read both on one clock")
        result = run_ohlog(*command, "--date", "2018-10-18", "--db", db, "--json")
        assert result.returncode == 0
        assert result.stderr.decode() == warning + (", or --local to count on each user's own" if local else "") + "\n"
        for fix in (["--tz", "UTC"], ["--tz", "America/Denver"], *([["--local"]] if local else [])):
            assert run_ohlog(*command, "--date", "2018-10-18", *fix, "--db", db, "--json").stderr == b""
    assert ohlog_json(run_ohlog, "active", "--date", "2018-10-18", "--local", "--db", db)["days"] == [
        {"day": "2018-10-18", "dau": 1, "wau": 1, "mau": 1}]
    result = run_ohlog("active", "--since", "2018-10-18", "--until", "2018-10-19T00:00Z", "--db", db, "--json")
    assert result.stderr.decode().startswith("Warning: --since without an offset reads")  # --until has one
    result = run_ohlog("count", "--by", "week", "--start", "2018-10-18", "--end", "2018-10-19", "--db", db, "--json")
    assert result.stderr.decode().startswith("Warning: --start and --end without an offset read each")
    # No days, no warning: an instant, a count by type, sessions
    for args in (["active", "--since", "2018-10-18T00:00Z"], ["count", "--by", "type", "--date", "2018-10-18"],
                 ["sessions", "--date", "2018-10-18"]):
        assert run_ohlog(*args, "--db", db, "--json").stderr == b""


def test_nl_and_csv(run_ohlog, db):
    result = run_ohlog("sessions", "--db", db, "--nl")
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [(s["userId"], s["durationSeconds"]) for s in lines] == [("a", 300.0), ("b", 1.0)]
    result = run_ohlog("count", "--db", db, "--by", "user", "--csv")
    assert result.stdout.decode().splitlines() == ["userId,actions,users", "a,3,1", "b,2,1"]
    result = run_ohlog("retention", "--db", db, "--unit", "day", "--periods", "2", "--csv")
    assert result.stdout.decode().splitlines() == ["cohort,users,0,1", "2018-10-01,1,1,0", "2018-10-03,1,1,"]


def test_timeline_table_shows_gaps(run_ohlog, db):
    result = run_ohlog("timeline", "--db", db, "--user", "a", "--table")
    text = result.stdout.decode()
    assert result.returncode == 0
    assert "+1m02s" in text and "+3m58s" in text and "home → cart" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    actions = ohlog_json(run_ohlog, "timeline", "--db", db, "--session", "s2")["actions"]
    assert [a["gapSeconds"] for a in actions] == [None, 1.0]


def test_tables_draw_charts(run_ohlog, db):
    text = run_ohlog("count", "--db", db, "--table").stdout.decode()
    assert "VIEW" in text and "████" in text
    text = run_ohlog("stats", "--db", db, "--table").stdout.decode()
    assert "5 actions, 2 users, 2 sessions" in text and "actions a day, 2018-10-01 to 2018-10-03: █ " in text


@pytest.mark.parametrize("command", [["stats"], ["count"], ["active"], ["sessions"], ["funnel", "A", "B"],
                                     ["retention"], ["paths"], ["timeline", "--user", "nobody"]])
def test_no_match_is_an_empty_table_with_a_note_or_empty_json(run_ohlog, db, command):
    result = run_ohlog(*command, "--db", db, "--user", "nobody", "--table")
    assert result.returncode == 0
    if command != ["stats"]:
        assert "No matching actions." in result.stdout.decode()
    result = run_ohlog(*command, "--db", db, "--user", "nobody", "--json")
    assert result.returncode == 0
    found = json.loads(result.stdout)
    assert all(v == [] for v in found.values() if isinstance(v, list))


@pytest.mark.parametrize("args, message", [
    (["count", "--by", "year"], "expected one of type, user, session, hour, day, week, month, prop:KEY"),
    (["count", "--by", "day", "--by", "week"], "at most one time unit"),
    (["active", "--by", "hour"], "'hour' is not one of 'day', 'week', 'month'"),
    (["retention", "--unit", "year"], "'year' is not one of 'day', 'week', 'month'"),
    (["funnel", "A", "B", "--order", "sideways"], "'sideways' is not one of 'ordered', 'strict', 'any'"),
    (["funnel", "A"], "two or more steps"),
    (["funnel", "A", ":x=1"], "expected TYPE or TYPE:KEY=VALUE"),
    (["funnel", "A", "B:x"], "the condition in STEP 'B:x' has no operator and value: write B:x=VALUE"),
    (["funnel", "A", "B", "--within", "2 weeks"], "expected a duration such as 90s, 30m, 2h, 14d"),
    (["funnel", "A", "B", "--within", "0d"], "more than 0"),
    (["sessions", "--split", "30"], "expected a duration such as"),
    # A capital M: minutes to some tools, months to others (was read as minutes)
    (["sessions", "--split", "30M"], "'M' could be minutes or months: write m for minutes, got '30M'"),
    (["funnel", "A", "B", "--within", "1h30M"], "'M' could be minutes or months"),
    (["count", "--since", "3M"], "'M' could be minutes or months: write 3m for minutes or 3mo for months"),
    (["query", "--since", "3M"], "'M' could be minutes or months"),
    # (too long for a 64-bit number of microseconds: was a traceback)
    (["sessions", "--split", "999999999w"], "a duration must be at most 10,000 years, got '999999999w'"),
    (["funnel", "A", "B", "--within", "99999999999999999999d"], "at most 10,000 years"),
    (["sessions", "--split", "3660001d"], "at most 10,000 years"),
    (["retention", "--born", "VIEW:"], "nothing after ':' in STEP 'VIEW:'"),
    # named as given (was "--back", the parameter's name inside)
    (["retention", "--return", "VIEW:x"], "Error: Invalid value for '--return': the condition in STEP 'VIEW:x'"),
    (["timeline"], "Give --session S or --user U"),
    (["count", "--start", "2018-10-18T25"], "hour must be in 0..23"),
])
def test_usage_errors_exit_2_in_one_line(run_ohlog, tmp_path, args, message):
    # usage is checked before the database is opened: none is needed
    result = run_ohlog(*args, "--db", tmp_path / "none.db")
    assert result.returncode == 2
    error = result.stderr.decode().strip().splitlines()[-1]
    assert error.startswith("Error: ") and message in error
    assert b"Traceback" not in result.stderr


def test_missing_database_is_an_error_and_creates_nothing(run_ohlog, tmp_path):
    result = run_ohlog("stats", "--db", tmp_path / "none.db")
    assert result.returncode == 1 and not (tmp_path / "none.db").exists()


def test_postgresql_gives_the_same_answers(run_ohlog, db, pg_db_url, tmp_path):
    path = tmp_path / "log.ndjson"
    assert run_ohlog("ingest", "--db", pg_db_url, path).returncode == 0
    for args in (["count", "--by", "type", "--by", "week"], ["sessions", "--split", "2m"], ["active"],
                 ["funnel", "VIEW", "NAVIGATE", "--order", "any"], ["paths"], ["stats"]):
        on_sqlite = ohlog_json(run_ohlog, *args, "--db", db)
        on_postgres = ohlog_json(run_ohlog, *args, "--db", pg_db_url)
        if args == ["stats"]:
            on_sqlite.pop("bytes"), on_postgres.pop("bytes")
        assert on_sqlite == on_postgres


def test_count_by_hour_in_a_zone_keeps_the_repeated_hour_apart(run_ohlog, tmp_path):
    # New York's fall-back: 01:30 EDT and 01:30 EST are two hours; its spring-forward skips 02
    path = tmp_path / "dst.ndjson"
    path.write_text(json.dumps(session("u", "s", *[(t, "A") for t in (
        "2018-11-04T05:30:00Z", "2018-11-04T06:30:00Z", "2018-11-04T06:40:00Z",
        "2018-03-11T06:30:00Z", "2018-03-11T07:30:00Z")])) + "\n")
    target = tmp_path / "dst.db"
    assert run_ohlog("ingest", "--db", target, path).returncode == 0
    zone = ("--db", target, "--tz", "America/New_York")
    groups = ohlog_json(run_ohlog, "count", "--by", "hour", "--date", "2018-11-04", *zone)["groups"]
    assert [(g["hour"], g["actions"]) for g in groups[:4]] == [
        ("2018-11-04T00", 0), ("2018-11-04T01-04:00", 1), ("2018-11-04T01-05:00", 2),
        ("2018-11-04T02", 0)]
    assert len(groups) == 25
    spring = ohlog_json(run_ohlog, "count", "--by", "hour", "--date", "2018-03-11", *zone)["groups"]
    assert [g["hour"][-2:] for g in spring[:4]] == ["00", "01", "03", "04"] and len(spring) == 23
    table = run_ohlog("count", "--by", "hour", "--by", "type", "--table", "--date", "2018-11-04", *zone)
    assert b"2018-11-04T01-04:00" in table.stdout and b"2018-11-04T01-05:00" in table.stdout


@pytest.mark.parametrize("command, clock", [("count", True), ("stats", True), ("active", True),
                                            ("retention", True), ("sessions", False),
                                            ("funnel", False)])
def test_tz_help_says_it_sets_the_buckets_clock_where_there_are_buckets(command, clock):
    from click.testing import CliRunner

    from openhouse_cli.cli import cli

    text = " ".join(CliRunner().invoke(cli, [command, "--help"], terminal_width=200).output.split())
    assert ("count hours, days, weeks and months, in this zone" in text) == clock
    assert "--tz ZONE Read times without an offset" in text


@pytest.mark.parametrize("command", [["query"], ["count"], ["sessions"], ["stats"], ["timeline", "--user", "a"],
                                     ["paths"], ["active"], ["retention"], ["funnel", "VIEW", "CLICK"]])
def test_a_type_filter_that_no_action_has_is_named_by_every_command(run_ohlog, db, command):
    # A typo in --type (found from outside: query and count answered nothing, silently)
    result = run_ohlog(*command, "--type", "CLIK", "--type", "click", "--type", "Nope", "--db", db, "--nl")
    assert result.returncode == 0, result.stderr
    assert result.stderr.decode().splitlines() == [
        "Warning: no action has the type 'CLIK' (ohlog stats lists the types)",
        "Warning: no action has the type 'Nope' (ohlog stats lists the types)"]
    result = run_ohlog(*command, "--type", "click", "--type", "VIEW", "--db", db, "--nl")
    assert result.returncode == 0 and result.stderr == b""  # any spelling of a stored type


@pytest.mark.parametrize("command", [["query"], ["count"], ["sessions"], ["timeline"], ["active"],
                                     ["delete", "--dry-run"]])
def test_a_user_or_session_that_no_action_has_is_named(run_ohlog, db, command):
    # Found by a new user: --user abc (stored as ABC) answered nothing, silently
    result = run_ohlog(*command, "--user", "A", "--user", "a", "--user", "nobody", "--session", "S1",
                       "--session", "s1", "--db", db)
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.decode().splitlines() if line.startswith("Warning")] == [
        "Warning: no action has the user 'A' (user ids match exactly, case included)",
        "Warning: no action has the user 'nobody' (user ids match exactly, case included)",
        "Warning: no action has the session 'S1' (session ids match exactly, case included)"]
    result = run_ohlog(*command, "--user", "a", "--session", "s1", "--db", db)
    assert b"Warning" not in result.stderr


def test_a_retention_table_leaves_out_the_periods_that_would_fold_its_numbers(tmp_path, run_ohlog):
    # Found from outside: 20 periods at 80 columns folded every rate over
    # several lines. Users active on many days: a rate in every period.
    import os
    import subprocess

    from .conftest import OHLOG

    docs = [session(u, "s", *[(f"2018-10-{d:02d}T12:00:00Z", "VIEW") for d in range(first, 31, step)])
            for u, first, step in (("a", 1, 1), ("b", 1, 2), ("c", 2, 3))]
    path = tmp_path / "log.ndjson"
    path.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    db = tmp_path / "r.db"
    assert run_ohlog("ingest", "--db", db, path).returncode == 0
    full = ohlog_json(run_ohlog, "retention", "--unit", "day", "--periods", "25", "--db", db)["cohorts"]
    for width in (60, 80, 120):
        result = subprocess.run([OHLOG, "retention", "--unit", "day", "--periods", "25", "--db", str(db), "--table"],
                                capture_output=True, env={**os.environ, "COLUMNS": str(width)}, timeout=60)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.decode().splitlines()
        assert max(map(len, lines)) <= width
        shown = len(lines[0].split()) - 2  # Cohort, Users, then the periods
        assert 3 <= shown < 25
        assert lines[-1].startswith(f"Periods {shown} to 24 left out at this width") or \
            lines[-2].startswith(f"Periods {shown} to 24 left out at this width")
        # each cohort on one line, its rates whole: what the JSON says, as percentages
        for cohort, line in zip(full, lines[2:2 + len(full)]):
            rates = [f"{100 * n / cohort['users']:.1f}%" for n in cohort["retained"][:shown] if n is not None]
            assert line.split() == [cohort["cohort"], str(cohort["users"]), *rates]
    wide = subprocess.run([OHLOG, "retention", "--unit", "day", "--periods", "25", "--db", str(db), "--table"],
                          capture_output=True, env={**os.environ, "COLUMNS": "400"}, timeout=60)
    assert "left out" not in wide.stdout.decode() and len(wide.stdout.decode().splitlines()[0].split()) == 27


def test_a_step_of_no_stored_type_is_named_and_empty_tables_say_why(run_ohlog, db):
    # A typo in a STEP gives zeros: stderr names the type that no action has
    result = run_ohlog("funnel", "VIEW", "NAVGATE", "--db", db, "--json")
    assert result.returncode == 0
    assert result.stderr.decode() == ("Warning: no action has the type 'NAVGATE'"
                                      " (ohlog stats lists the types)\n")
    assert [s["users"] for s in json.loads(result.stdout)["steps"]] == [2, 0]
    # Named again in --type, in a step, in another case: still one warning (found from outside)
    result = run_ohlog("funnel", "VIEW", "NAVGATE", "navgate:pageTo=x", "--type", "Navgate", "--type", "view",
                       "--db", db, "--json")
    assert result.returncode == 0
    assert result.stderr.decode() == ("Warning: no action has the type 'Navgate'"
                                      " (ohlog stats lists the types)\n")
    result = run_ohlog("funnel", "view", "Click:locationX>=0", "--db", db, "--json")
    assert result.returncode == 0 and result.stderr == b""  # any spelling of a stored type
    result = run_ohlog("retention", "--born", "CLIK", "--return", "NAVIGATE", "--db", db, "--table")
    assert result.stderr.decode().splitlines() == [
        "Warning: no action has the type 'CLIK' (ohlog stats lists the types)"]
    # actions match, but none is a --born action, no path reaches the page, or none is NAVIGATE
    assert "No matching action is a --born action (CLIK)." in result.stdout.decode()
    result = run_ohlog("paths", "--from", "nowhere", "--db", db, "--table")
    assert "No session's path reaches nowhere." in result.stdout.decode()
    result = run_ohlog("paths", "--type", "view", "--db", db, "--table")
    assert "No matching NAVIGATE actions." in result.stdout.decode()
    result = run_ohlog("paths", "--from", "home", "--db", db, "--table")
    assert "home → cart" in result.stdout.decode() and result.stderr == b""


def test_a_paths_from_page_no_action_has_is_warned_about(run_ohlog, db_target, tmp_path):
    # Found from outside: `paths --from nowhere` answered empty without a word,
    # as a typo in --user used to
    examples = pathlib.Path(__file__).parent.parent / "examples"
    assert run_ohlog("ingest", "--db", db_target, examples).returncode == 0
    for page, warned in (("nowhere", True), ("Home", True), ("home", False), ("inventory", False)):
        # with a filter that leaves home's sessions out, home is still a page: no warning
        result = run_ohlog("paths", "--from", page, "--user", "u-la", "--db", db_target)
        err = result.stderr.decode()
        assert result.returncode == 0, err
        expected = (f"Warning: no NAVIGATE action has the page {page!r} (pages match exactly, case included)\n"
                    if warned else "")
        assert err == expected, (page, err)
