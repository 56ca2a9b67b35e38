"""Shell completion: click's scripts for bash, zsh and fish, and --user,
--session and --type values from the database by prefix, through an index."""

import json
import os
import shutil
import sqlite3
import subprocess

import pytest

from openhouse_cli.complete import LIMIT, lookup, prefix_end
from openhouse_cli.db import open_db
from openhouse_cli.ingest import ingest_sessions
from openhouse_cli.store import open_store

from .conftest import OHLOG

USERS = ["a", "A", "a%", "a%b", "a_b", "ab", "abc", "a\U0010ffff", "a\U0010ffffz", "a\ue000",
         "b", "é", "ü-1", "ü-2", "a b"]
TYPES = ["CLICK", "click", "Straße", "navigate", "NAVIGATE", "ÉVÉNEMENT"]


def sessions(users=USERS, types=TYPES):
    # one session a user; the types spread over them, in this order of time
    found = []
    for i, user in enumerate(users):
        kind = types[i % len(types)]
        props = {"locationX": 1, "locationY": 2} if kind.casefold() == "click" else (
            {"pageFrom": "a", "pageTo": "b"} if kind.casefold() == "navigate" else {})
        found.append({"userId": user, "sessionId": f"s-{i:03d}", "actions": [
            {"time": f"2018-10-18T21:{i // 60:02d}:{i % 60:02d}Z", "type": kind,
             "properties": props}]})
    return found


@pytest.fixture
def sqlite_db(tmp_path):
    path = tmp_path / "c.db"
    ingest_sessions(open_db(path), sessions())
    return path


def expected(values, prefix, limit=LIMIT):
    return sorted(v for v in set(values) if v.startswith(prefix))[:limit]


@pytest.mark.parametrize("prefix, end", [
    ("ab", "ac"), ("a\U0010ffff", "b"), ("\U0010ffff", None), ("", None),
    ("a\ud7ff", "a\ue000"), ("z\U0010ffff\U0010ffff", "{"),
])
def test_prefix_end(prefix, end):
    assert prefix_end(prefix) == end


@pytest.mark.parametrize("prefix", ["", "a", "a%", "a_", "ab", "a\U0010ffff", "ü", "é", "x", "A"])
def test_users_by_prefix_exactly(sqlite_db, prefix):
    # LIKE wildcards are plain characters; U+10FFFF and beyond-BMP sort in code point order
    conn = sqlite3.connect(sqlite_db)
    assert lookup(conn, "users", prefix) == expected(USERS, prefix)


def test_sessions_and_the_limit(tmp_path):
    path = tmp_path / "many.db"
    users = [f"user-{i:04d}" for i in range(LIMIT + 50)]
    ingest_sessions(open_db(path), sessions(users))
    conn = sqlite3.connect(path)
    assert lookup(conn, "users", "user-") == users[:LIMIT]
    assert lookup(conn, "users", "user-01") == users[100:150][:LIMIT]
    assert lookup(conn, "sessions", "s-1") == [f"s-{i:03d}" for i in range(100, 150)]


@pytest.mark.parametrize("option, column, index", [
    ("users", "user_id", "actions_user_type_time"),
    ("sessions", "session_id", "actions_session_time"),
    ("types", "type_key", "actions_type_time"),
])
def test_each_lookup_is_an_index_search(sqlite_db, option, column, index):
    conn = sqlite3.connect(sqlite_db)
    seen = []
    conn.set_trace_callback(seen.append)
    lookup(conn, option, "a")
    conn.set_trace_callback(None)
    assert seen
    for sql in seen:
        # (the trace shows each statement with its values bound)
        plan = " ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert "SCAN" not in plan and "SEARCH actions USING" in plan and index in plan, plan


@pytest.mark.parametrize("typed, offered", [
    ("C", ["CLICK"]),  # a stored spelling that starts with what was typed
    ("cl", ["click"]),
    ("c", ["click"]),
    ("NAV", ["NAVIGATE"]),
    ("n", ["navigate"]),
    ("Cli", ["CliCK"]),  # else a stored spelling, its start in the case typed
    ("STRA", ["STRAße"]),
    ("stra", ["straße"]),
    ("strass", ["strasse"]),  # ß folds to ss: what was typed, completed by the key
    ("év", ["évÉNEMENT"]),
    ("", ["CLICK", "navigate", "Straße", "ÉVÉNEMENT"]),
    ("x", []),
])
def test_types_complete_with_spellings(sqlite_db, typed, offered):
    conn = sqlite3.connect(sqlite_db)
    assert lookup(conn, "types", typed) == offered


# ---------------------------------------------------------------------------
# The real command: click's completion protocol, as each shell's script calls it


def complete(words, *, shell="bash", env=None, cword=None):
    """What ``ohlog`` answers the shell's completion script for ``words``."""
    env = {**os.environ, **(env or {}), "_OHLOG_COMPLETE": f"{shell}_complete",
           "COMP_WORDS": " ".join(words),
           "COMP_CWORD": str(len(words) - 1 if cword is None else cword)}
    done = subprocess.run([OHLOG], env=env, capture_output=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, b""), done.stderr
    return done.stdout.decode()


def test_bash_zsh_fish_protocols(sqlite_db):
    words = ["ohlog", "query", "--db", str(sqlite_db), "--user", "ü"]
    assert complete(words) == "plain,ü-1\nplain,ü-2\n"
    assert complete(words, shell="zsh") == "plain\nü-1\n_\nplain\nü-2\n_\n"
    assert complete(words, shell="fish", cword="ü") == "plain,ü-1\nplain,ü-2\n"
    # --db may come after, or from $OHLOG_DB
    assert complete(["ohlog", "query", "--type", "N"], env={"OHLOG_DB": str(sqlite_db)}) == (
        "plain,NAVIGATE\n")
    assert complete(["ohlog", "query", "--session", "s-00"],
                    env={"OHLOG_DB": str(sqlite_db)}).splitlines() == [
        f"plain,s-00{i}" for i in range(10)]


def test_the_options_still_complete(sqlite_db):
    assert "plain,--user" in complete(["ohlog", "query", "--us"]).splitlines()


@pytest.mark.parametrize("target", ["missing", "directory", "not sqlite", "empty", "other",
                                    "bad url"])
def test_never_an_error_on_the_prompt(tmp_path, target):
    path = tmp_path / "x.db"
    if target == "directory":
        path.mkdir()
    elif target == "not sqlite":
        path.write_bytes(b"hello, this is not a database" * 100)
    elif target == "empty":
        path.write_bytes(b"")
    elif target == "other":
        sqlite3.connect(path).execute("CREATE TABLE things (x)").connection.commit()
    elif target == "bad url":
        path = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"
    for option in ("--user", "--session", "--type"):
        assert complete(["ohlog", "query", "--db", str(path), option, ""]).strip() == ""
        assert complete(["ohlog", "query", option, "a"], env={"OHLOG_DB": str(path)}).strip() == ""
    if target == "missing":
        assert not path.exists()  # and nothing was created


def test_completion_never_writes(sqlite_db):
    before = sqlite_db.stat().st_mtime_ns, sqlite_db.read_bytes()
    os.chmod(sqlite_db, 0o400)
    try:
        assert complete(["ohlog", "query", "--db", str(sqlite_db), "--user", "a%"]) == "plain,a%\nplain,a%b\n"
    finally:
        os.chmod(sqlite_db, 0o600)
    assert (sqlite_db.stat().st_mtime_ns, sqlite_db.read_bytes()) == before


@pytest.mark.skipif(not shutil.which("bash"), reason="no bash")
def test_bash_script_completes_in_bash(sqlite_db):
    # The README's one line, then what bash does on Tab
    script = ('eval "$(_OHLOG_COMPLETE=bash_source ohlog)"; '
              'COMP_WORDS=(ohlog query --type NA); COMP_CWORD=3; _ohlog_completion ohlog; '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    env = {**os.environ, "PATH": f"{os.path.dirname(OHLOG)}:{os.environ['PATH']}",
           "OHLOG_DB": str(sqlite_db)}
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"NAVIGATE\n", b"")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_shell_gets_its_script(shell):
    done = subprocess.run([OHLOG], env={**os.environ, "_OHLOG_COMPLETE": f"{shell}_source"},
                          capture_output=True, timeout=60)
    assert done.returncode == 0 and b"_OHLOG_COMPLETE" in done.stdout


def test_postgresql(pg_db_url):
    users = ["a", "a\x00b", "a\ufffeb", "a%", "ab", "b", "a\U0010ffff"]
    store = open_store(pg_db_url)
    try:
        ingest_sessions(store, sessions(users, ["CLICK", "click", "Straße", "navigate"]))
        for prefix in ("", "a", "a\x00", "a\ufffe", "a%", "x"):
            assert lookup(store, "users", prefix) == expected(users, prefix)  # in text order
        assert lookup(store, "types", "st") == ["straße"]
        assert lookup(store, "types", "C") == ["CLICK"]
    finally:
        store.close()
    assert complete(["ohlog", "count", "--db", pg_db_url, "--by", "prop:"]).splitlines() == [
        "plain,prop:locationX", "plain,prop:locationY", "plain,prop:pageFrom", "plain,prop:pageTo"]
    words = ["ohlog", "query", "--db", pg_db_url, "--user", "a"]
    # a value with a control character (NUL) is not offered: the protocol is lines
    assert complete(words).splitlines() == ["plain,a", "plain,a%", "plain,ab",
                                            "plain,a\ufffeb", "plain,a\U0010ffff"]


def test_only_the_known_columns_become_sql(sqlite_db):
    from openhouse_cli.complete import distinct_with_prefix, type_spellings

    conn = sqlite3.connect(sqlite_db)
    with pytest.raises(ValueError):
        distinct_with_prefix(conn, "user_id FROM actions; --", "a")
    with pytest.raises(ValueError):
        distinct_with_prefix(conn, "user_id", "a", index="actions_type_time")
    with pytest.raises(ValueError):
        type_spellings(conn, "click", "x; DROP TABLE actions")


def test_zones_and_dimensions_complete(tmp_path):
    # no database is needed: the zones come from the zone database, the dimensions are fixed
    env = {"OHLOG_DB": str(tmp_path / "none.db")}
    assert complete(["ohlog", "count", "--tz", "America/New_Y"], env=env) == "plain,America/New_York\n"
    assert complete(["ohlog", "query", "--show-tz", "europe/amst"], env=env) == (
        "plain,Europe/Amsterdam\n")
    assert "plain,UTC\n" in complete(["ohlog", "stats", "--tz", "U"], env=env)
    assert complete(["ohlog", "active", "--tz", "Nowhere/"], env=env).strip() == ""
    assert complete(["ohlog", "count", "--by", "h"], env=env) == "plain,hour\n"
    # plain items: click's shell scripts drop any other kind (found by a new user)
    assert complete(["ohlog", "count", "--by", "pr"], env=env) == "plain,prop:\n"
    assert complete(["ohlog", "count", "--by", ""], env=env).splitlines() == [
        "plain,type", "plain,user", "plain,session", "plain,hour", "plain,day", "plain,week",
        "plain,month", "plain,prop:"]


def test_property_keys_and_step_types_complete_from_the_database(sqlite_db):
    env = {"OHLOG_DB": str(sqlite_db)}
    # the keys of the newest actions' properties
    assert complete(["ohlog", "count", "--by", "pr"], env=env).splitlines() == [
        "plain,prop:locationX", "plain,prop:locationY", "plain,prop:pageFrom", "plain,prop:pageTo"]
    assert complete(["ohlog", "count", "--by", "prop:page"], env=env).splitlines() == [
        "plain,prop:pageFrom", "plain,prop:pageTo"]
    assert complete(["ohlog", "count", "--by", "prop:nothing"], env=env).strip() == ""
    # a STEP, --born and --return: the stored types, as --type offers them
    assert complete(["ohlog", "funnel", "CLICK", "nav"], env=env) == complete(
        ["ohlog", "count", "--type", "nav"], env=env) == "plain,navigate\n"
    assert complete(["ohlog", "retention", "--born", "CL"], env=env) == "plain,CLICK\n"
    assert complete(["ohlog", "retention", "--return", "str"], env=env) == "plain,straße\n"
    assert complete(["ohlog", "funnel", "NAVIGATE:page"], env=env).strip() == ""  # a condition: the user's


def test_completion_offers_what_the_option_reads_back(tmp_path):
    # Found by a review: a key starting with / was offered as prop:/key (a
    # JSON Pointer now), and a type holding ':' unquoted (refused as a STEP)
    path = tmp_path / "odd.db"
    ingest_sessions(open_db(path), [{"userId": "u", "sessionId": "s", "actions": [
        {"time": "2018-10-18T21:00:00Z", "type": "ns:view", "properties": {"/slash": 1, "a~b": 2}},
        {"time": "2018-10-18T21:00:01Z", "type": "nsplain", "properties": {}}]}])
    env = {"OHLOG_DB": str(path)}
    assert complete(["ohlog", "count", "--by", "prop:"], env=env).splitlines() == [
        "plain,prop:/~1slash", "plain,prop:a~b"]
    assert complete(["ohlog", "funnel", "VIEW", "ns"], env=env).splitlines() == [
        'plain,"ns:view"', "plain,nsplain"]
    # what was offered reads back: the key's actions, the type's
    from openhouse_cli.analytics import count, parse_dimensions, parse_step
    from openhouse_cli.store import open_store

    store = open_store(path, readonly=True)
    found = count(store, dict(users=(), sessions=(), types=(), where=(), start=None, end=None, gaps=()),
                  parse_dimensions(["prop:/~1slash"]))
    assert {g["/~1slash"]: g["actions"] for g in found} == {1: 1, None: 1}
    assert parse_step('"ns:view"').key == "ns:view"
    store.close()
