"""End to end: the real ``ohlog`` executable in a subprocess."""

import gzip
import json
import os
import pathlib
import shlex
import sqlite3
import stat
import subprocess

import pytest
from click.testing import CliRunner

from openhouse_cli.cli import cli

from .conftest import FIXTURES, OHLOG


def session(n, actions=3, user="u1"):
    return {"userId": user, "sessionId": f"s{n}", "actions": [
        {"time": f"2018-10-{1 + n % 28:02d}T12:{a // 60 % 60:02d}:{a % 60:02d}.{n:06d}+05:30", "type": "VIEW",
         "properties": {"viewedId": f"v{a}"}} for a in range(actions)]}


def write_ndjson(path, docs):
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def count(path):
    with sqlite3.connect(path) as conn:
        return conn.execute("select count(*) from actions").fetchone()[0]


def test_sample_then_again(tmp_path, run_ohlog):
    db = tmp_path / "o.db"
    first = run_ohlog("ingest", "--db", db, FIXTURES / "sample_log.json")
    assert first.returncode == 0, first.stderr
    assert first.stdout == b""
    assert b"1 input, 1 session: 3 actions inserted, 0 duplicates, 0 rejected" in first.stderr
    second = run_ohlog("ingest", "--db", db, FIXTURES / "sample_log.json")
    assert b"0 actions inserted, 3 duplicates" in second.stderr
    assert count(db) == 3


def test_shapes_stdin_gzip_and_directories(tmp_path, run_ohlog):
    db = tmp_path / "o.db"
    docs = json.loads((FIXTURES / "mixed_offsets.json").read_text())
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "array.json").write_text(json.dumps(docs, indent=2))
    (logs / "pretty.json").write_bytes(gzip.compress("".join(json.dumps(d, indent=2) for d in docs).encode()))
    (logs / "ignored.txt").write_text("not a log")
    result = run_ohlog("ingest", "--db", db, logs)
    assert result.returncode == 0, result.stderr
    assert b"2 inputs, 6 sessions: 6 actions inserted, 6 duplicates" in result.stderr
    piped = run_ohlog("ingest", "--db", db, "-", input=gzip.compress(json.dumps(docs[0]).encode()))
    assert b"0 actions inserted, 2 duplicates" in piped.stderr
    implicit = run_ohlog("ingest", "--db", db, input=json.dumps(session(1)))
    assert b"3 actions inserted" in implicit.stderr
    assert count(db) == 9


def log_tree(root, names):
    """``root`` holding a one-session log (the n-th user's) at each relative name."""
    for n, name in enumerate(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_ndjson(root / name, [session(n, 1)])
    return root


def test_a_directory_skips_hidden_entries_and_matches_suffixes_in_any_case(tmp_path, run_ohlog):
    logs = log_tree(tmp_path / "logs", ["UPPER.JSON", "sub/x.NDJSON", "sub/deep/y.Jsonl", ".git/objects/a.json",
                                        "sub/.cache/b.json", ".swap.json", "sub/.hidden.ndjson", "notes.TXT"])
    (logs / "Z.JSON.GZ").write_bytes(gzip.compress(json.dumps(session(20, 1)).encode()))
    db = tmp_path / "o.db"
    result = run_ohlog("ingest", "--db", db, logs)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.decode().splitlines()
    assert lines[0] == (f"Skipped 2 hidden directories and 2 hidden log files in {logs} (.git/, "
                        ".swap.json, sub/.cache/, ...): name them to ingest them")
    assert lines[1].startswith("4 inputs, 4 sessions: 4 actions inserted, 0 duplicates, 0 rejected")
    assert count(db) == 4
    quiet = run_ohlog("ingest", "-q", "--db", db, logs)
    assert (quiet.returncode, quiet.stderr) == (0, b"")
    # a hidden directory named outright is read; one holding only hidden logs is a usage error
    assert run_ohlog("ingest", "--db", db, logs / ".git").returncode == 0 and count(db) == 5
    only = run_ohlog("ingest", "--db", db, logs / "sub" / ".cache" / "..")
    assert only.returncode == 0  # sub/ has x.NDJSON and deep/y.Jsonl
    empty = tmp_path / "empty"
    (empty / ".old").mkdir(parents=True)
    write_ndjson(empty / ".old" / "a.json", [session(30, 1)])
    refused = run_ohlog("ingest", "--db", db, empty)
    assert refused.returncode == 2
    assert refused.stderr.decode().splitlines()[-1] == (
        f"Error: No .json, .ndjson, .jsonl or .gz files in {empty} but hidden ones (.old/): "
        "name them to ingest them")


def test_a_directory_names_the_files_it_skips_for_their_suffix(tmp_path, run_ohlog):
    # Found from outside: a rotated log (app.ndjson.1) or an events.log beside
    # the logs went unread without a word
    logs = log_tree(tmp_path / "logs", ["app.ndjson", "app.ndjson.1", "old/app.ndjson.2", "events.log",
                                        "b.json", "c.json", "d.json", ".hidden.txt", "README.md", "notes.txt",
                                        "catalog.txt", "app.ndjson-20240101", "app.jsonl~"])
    db = tmp_path / "o.db"
    result = run_ohlog("ingest", "--db", db, logs)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.decode().splitlines()
    # (logrotate's dateext names and editors' backups too)
    assert lines[0] == (f"Skipped 5 files with other suffixes in {logs} (app.jsonl~, app.ndjson-20240101,"
                        " app.ndjson.1, ...): name them to ingest them")
    assert lines[1].startswith("4 inputs, 4 sessions: 4 actions inserted") and count(db) == 4
    # (a README or notes beside the logs are not named)
    # None to read: the usage error names them
    only = tmp_path / "only"
    (only / "x").mkdir(parents=True)
    for name in ("a.log", "b.log", "c.log", "x/d.log"):
        write_ndjson(only / name, [session(9, 1)])
    refused = run_ohlog("ingest", "--db", db, only)
    assert refused.returncode == 2
    assert refused.stderr.decode().splitlines()[-1] == (
        f"Error: No .json, .ndjson, .jsonl or .gz files in {only} but others (a.log, b.log, c.log, ...):"
        " name them to ingest them")
    assert count(db) == 4


def test_a_database_given_as_an_input_is_refused_before_anything_is_stored(tmp_path, run_ohlog):
    # Found by a new user (the sqlite-utils habit, database last): it was read
    # as a log, "not valid UTF-8", after the inputs before it were stored
    log = tmp_path / "log.json"
    write_ndjson(log, [session(1, 2)])
    db, target = tmp_path / "other.db", tmp_path / "o.db"
    assert run_ohlog("ingest", "--db", db, log).returncode == 0
    assert run_ohlog("ingest", "--db", target, "-", input=b"").returncode == 0  # a database, empty
    for args in ([log, db], [db], [log, target]):
        result = run_ohlog("ingest", "--db", target, *args)
        assert result.returncode == 2
        name = args[-1]
        assert result.stderr.decode().splitlines()[-1] == (
            f"Error: {name} is the database ingest writes to, not a log: name the logs to read"
            if name == target else
            f"Error: {name} is a SQLite database, not a log: name the database with --db {name}"
            " (ohlog copy moves actions from one database to another)")
        assert count(target) == 0
    empty = run_ohlog("ingest", "--db", target, "-", input=b"\n")
    assert empty.stderr.decode().splitlines()[0] == "Warning: standard input holds no records"


def test_a_directory_follows_links_to_directories_and_reads_each_once(tmp_path, run_ohlog):
    # Found from outside: a linked directory's logs went unread, without a word
    logs, archive = tmp_path / "logs", tmp_path / "archive"
    (logs / "sub").mkdir(parents=True)
    archive.mkdir()
    write_ndjson(logs / "today.json", [session(1, 1)])
    write_ndjson(archive / "old.json", [session(2, 2)])
    (logs / "archive").symlink_to("../archive")
    (logs / "again").symlink_to("../archive")  # the same directory twice: read once
    (logs / "sub" / "up").symlink_to("..")  # a loop back up the tree
    db = tmp_path / "o.db"
    result = run_ohlog("ingest", "--db", db, logs)
    assert result.returncode == 0, result.stderr
    assert result.stderr.decode().splitlines()[-2].startswith(
        "2 inputs, 2 sessions: 3 actions inserted, 0 duplicates, 0 rejected")
    assert count(db) == 3


@pytest.mark.parametrize("odd", ["broken link", "fifo", "unreadable directory"])
def test_a_directory_with_a_log_it_cannot_read_is_refused_before_anything_is_stored(tmp_path, run_ohlog, odd):
    """A log file's name that is not a readable file (a dangling link, a FIFO)
    or a directory that cannot be listed is named, exit 2, nothing stored:
    skipping it would leave its actions unread without a word."""
    logs = tmp_path / "logs"
    (logs / "sub").mkdir(parents=True)
    write_ndjson(logs / "a.json", [session(1, 2)])
    if odd == "broken link":
        (logs / "sub" / "b.json").symlink_to("../../gone.json")
        expected = f"Error: {logs}/sub/b.json is a broken symbolic link (to ../../gone.json)"
    elif odd == "fifo":
        os.mkfifo(logs / "sub" / "b.ndjson")
        expected = f"Error: {logs}/sub/b.ndjson is not a regular file"
    else:
        if os.geteuid() == 0:
            pytest.skip("root reads a directory whatever its mode")
        (logs / "sub").chmod(0)
        expected = f"Error: Cannot read directory {logs}/sub: Permission denied"
    db = tmp_path / "o.db"
    try:
        result = run_ohlog("ingest", "--db", db, logs)
    finally:
        (logs / "sub").chmod(0o755)
    assert result.returncode == 2
    assert result.stderr.decode().splitlines()[-1].startswith(expected)
    assert not db.exists()
    # named one by one, the good file goes in
    assert run_ohlog("ingest", "--db", db, logs / "a.json").returncode == 0 and count(db) == 2


def test_a_session_giving_actions_twice_is_refused_end_to_end(tmp_path, run_ohlog):
    """Not cut to its last list of actions (found from outside): refused, located, and
    with --on-error skip written to the rejects whole."""
    twice = json.dumps(session(2, 2))[:-1] + ', "actions": ' + json.dumps(session(3, 1)["actions"]) + "}"
    path = tmp_path / "in.ndjson"
    path.write_text(json.dumps(session(1)) + "\n" + twice + "\n" + json.dumps(session(4)) + "\n")
    db = tmp_path / "o.db"
    failed = run_ohlog("ingest", "--db", db, path)
    assert failed.returncode == 1
    assert failed.stderr.decode().splitlines()[-1] == (
        f"Error: {path}:2: actions: given twice in one session: a JSON reader keeps only the last"
        " list, which would drop the actions of the other without a word")
    assert not db.exists() or count(db) == 0
    skipped = run_ohlog("ingest", "--db", db, "--on-error", "skip", "--rejects", tmp_path / "r.ndjson", path)
    assert skipped.returncode == 3 and count(db) == 6
    (rejected,) = (tmp_path / "r.ndjson").read_text().splitlines()
    # whole, as its text: the parsed record has lost its first list
    assert json.loads(rejected)["ohlog_raw"] == twice + "\n"


@pytest.mark.parametrize("shape", ["ndjson with a long integer", "array"])
def test_a_lone_surrogate_deep_inside_is_refused_not_a_traceback(tmp_path, run_ohlog, shape):
    """The check for lone surrogates re-encoded the value recursively, which gave up
    with a traceback on values nested nearly as deep as the parser takes (the real
    command's stack decides the depths at which that happened: all are tried)."""
    for depth in range(940, 990, 5):
        deep = "[" * depth + '"\\ud800"' + "]" * depth
        action = ('{"time": "2018-10-18T21:37:28Z", "type": "A", "properties": '
                  '{"b": 123456789012345678901234, "x": ' + deep + "}}")
        doc = '{"userId": "u", "sessionId": "s", "actions": [' + action + "]}"
        path = tmp_path / f"deep{depth}.json"
        path.write_text(doc + "\n" if shape.startswith("ndjson") else "[" + doc + "]")
        result = run_ohlog("ingest", "--db", tmp_path / "o.db", path)
        error = result.stderr.decode()
        assert result.returncode == 1 and "Traceback" not in error, (depth, error[-300:])
        assert error.splitlines()[-1].endswith((
            "invalid JSON: a lone surrogate escape is not valid Unicode", "invalid JSON: nested too deeply"))


def test_bad_record_is_located_and_nothing_is_stored(tmp_path, run_ohlog):
    db = tmp_path / "o.db"
    docs = [session(n) for n in range(1, 30)]
    docs[16]["actions"][2]["time"] = "2018-13-45"
    path = write_ndjson(tmp_path / "sessions.ndjson", docs)
    result = run_ohlog("ingest", "--db", db, path)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        f"Error: {path}:17: actions[2].time: not an ISO 8601 time: '2018-13-45'"]
    assert count(db) == 0


def test_json_syntax_error_names_line_and_column(tmp_path, run_ohlog):
    path = tmp_path / "pretty.json"
    path.write_text('{\n  "userId": "u",\n  "sessionId": "s",\n  "actions": [,]\n}\n')
    result = run_ohlog("ingest", "--db", tmp_path / "o.db", path)
    assert result.returncode == 1
    assert result.stderr.decode() == f"Error: {path}:4:15: invalid JSON: Expecting value\n"


def test_skip_writes_rejects_and_exits_3(tmp_path, run_ohlog):
    db = tmp_path / "o.db"
    docs = [session(1), {"userId": "u", "sessionId": "s", "actions": []}, session(2)]
    path = write_ndjson(tmp_path / "in.ndjson", docs)
    rejects = tmp_path / "rejects.ndjson"
    result = run_ohlog("ingest", "--db", db, path, "--on-error", "skip", "--rejects", rejects)
    assert result.returncode == 3
    lines = result.stderr.decode().splitlines()
    assert lines[0] == f"Rejected {path}:2: actions: expected a non-empty list of actions, got an empty list"
    assert "2 sessions: 6 actions inserted, 0 duplicates, 1 rejected" in lines[1]
    (reject,) = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert reject["ohlog_error"] == lines[0].removeprefix("Rejected ")
    assert count(db) == 6


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope.json"], "Path 'nope.json' does not exist"),
        (["--on-error", "maybe", "-"], "'maybe' is not one of 'fail', 'skip'"),
        (["--batch-size", "0", "-"], "0 is not in the range x>=1"),
        (["--rejects", "r.ndjson", "-"], "--rejects needs --on-error skip"),
    ],
)
def test_usage_errors_exit_2(tmp_path, run_ohlog, args, message):
    result = run_ohlog("ingest", "--db", tmp_path / "o.db", *args, input="")
    assert result.returncode == 2
    assert message in result.stderr.decode()
    assert b"Traceback" not in result.stderr


def test_database_and_its_directory_are_private(tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    env.pop("OHLOG_DB", None)
    subprocess.run([OHLOG, "ingest", FIXTURES / "sample_log.json"], env=env, check=True, capture_output=True)
    path = tmp_path / "cfg" / "ohlog" / "ohlog.db"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_ohlog_db_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("OHLOG_DB", str(tmp_path / "from-env.db"))
    result = CliRunner().invoke(cli, ["ingest", str(FIXTURES / "sample_log.json")], catch_exceptions=False)
    assert result.exit_code == 0
    assert count(tmp_path / "from-env.db") == 3


def test_version_and_module_entry_point(run_ohlog):
    import sys
    from importlib.metadata import version

    assert run_ohlog("--version").stdout.decode() == f"ohlog, version {version('ohlog')}\n"
    module = subprocess.run([sys.executable, "-m", "openhouse_cli", "--help"], capture_output=True)
    assert b"ingest" in module.stdout


def test_concurrent_writers_all_succeed(tmp_path):
    db = tmp_path / "o.db"
    paths = []
    for worker in range(6):
        # workers 0-2 and 3-5 send overlapping sessions: overlaps count once
        docs = [session(n, actions=20, user=f"w{worker % 3}") for n in range(200)]
        paths.append(write_ndjson(tmp_path / f"in{worker}.ndjson", docs))
    procs = [subprocess.Popen([OHLOG, "ingest", "--db", db, p], stderr=subprocess.PIPE) for p in paths]
    errors = [proc.communicate(timeout=120)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 6, errors
    assert not any(b"locked" in e for e in errors)
    assert count(db) == 3 * 200 * 20


@pytest.mark.parametrize("existing", ["notes", "symlink to notes", "another log", "earlier rejects"])
@pytest.mark.parametrize("rejected", [False, True])
def test_rejects_never_overwrites_a_file_that_holds_something(tmp_path, run_ohlog, existing, rejected):
    notes = tmp_path / "notes.txt"
    notes.write_text("notes\n")
    other = write_ndjson(tmp_path / "other.ndjson", [session(7)])
    earlier = tmp_path / "rejects.ndjson"
    earlier.write_text('{"ohlog_error": "in.ndjson:2: userId: missing", "sessionId": "s"}\n')
    link = tmp_path / "link.txt"
    link.symlink_to(notes)
    rejects, target = {"notes": (notes, notes), "symlink to notes": (link, notes),
                       "another log": (other, other), "earlier rejects": (earlier, earlier)}[existing]
    before = target.read_bytes()
    source = write_ndjson(tmp_path / "in.ndjson", [session(1)] + ([{"userId": "u"}] if rejected else []))
    result = run_ohlog("ingest", "--db", tmp_path / "o.db", "--on-error", "skip", "--rejects", rejects, source)
    assert result.returncode == 2, result.stderr
    assert result.stderr.decode() == (
        f"Error: --rejects {rejects} already exists and is not empty ({len(before)} bytes): "
        "ohlog never overwrites it; remove it or name a new file\n")
    assert target.read_bytes() == before
    assert not (tmp_path / "o.db").exists()  # refused before anything was opened


@pytest.mark.parametrize("rejected", [False, True])
def test_rejects_may_be_an_empty_file_or_a_new_one(tmp_path, run_ohlog, rejected):
    source = write_ndjson(tmp_path / "in.ndjson", [session(1)] + ([{"userId": "u"}] if rejected else []))
    empty = tmp_path / "empty.ndjson"
    empty.touch(mode=0o644)
    new = tmp_path / "new.ndjson"
    for rejects in (empty, new):
        result = run_ohlog("ingest", "--db", tmp_path / "o.db", "--on-error", "skip", "--rejects", rejects, source)
        assert result.returncode == (3 if rejected else 0), result.stderr
        assert rejects.read_text().count("\n") == (1 if rejected else 0)
        assert stat.S_IMODE(rejects.stat().st_mode) == 0o600
    # A re-run naming the same rejects file is refused once it holds something
    again = run_ohlog("ingest", "--db", tmp_path / "o.db", "--on-error", "skip", "--rejects", new, source)
    assert again.returncode == (2 if rejected else 0), again.stderr


def test_rejects_in_a_missing_directory_is_an_error(tmp_path, run_ohlog):
    bad = run_ohlog("ingest", "--db", tmp_path / "o.db", "--on-error", "skip", "--rejects",
                    tmp_path / "no-such-dir" / "r.ndjson", FIXTURES / "sample_log.json")
    assert bad.returncode == 1
    assert bad.stderr.decode() == f"Error: Cannot write {tmp_path}/no-such-dir/r.ndjson: No such file or directory\n"


@pytest.mark.parametrize("how", ["--db", "OHLOG_DB"])
def test_a_named_database_in_a_missing_directory_is_an_error_either_way(tmp_path, run_ohlog, monkeypatch,
                                                                        how):
    # Only the default database's directory is created; a path you name must exist
    path = tmp_path / "missing" / "x.db"
    monkeypatch.setenv("OHLOG_DB", str(path))
    sample = pathlib.Path(__file__).parent.parent / "examples" / "sample_log.json"
    result = run_ohlog("ingest", *(["--db", path] if how == "--db" else []), sample)
    assert result.returncode == 1
    assert result.stderr.decode() == (f"Error: Cannot create database {path}: "
                                      f"no such directory {path.parent}\n")
    assert not path.parent.exists()


def test_the_default_directory_may_already_exist(tmp_path, run_ohlog, monkeypatch):
    from openhouse_cli.paths import default_path, ensure_app_dir

    monkeypatch.delenv("OHLOG_DB")
    default = default_path()
    ensure_app_dir(default)
    ensure_app_dir(default)  # a second first run, racing the first: no error
    assert default.parent.is_dir() and default.parent.stat().st_mode & 0o777 == 0o700


def readme_example_unindented():
    """The README's ingest example (its ```json block) with the leading spaces removed."""
    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("```json\n", 1)[1].split("```", 1)[0]
    return "".join(line.removeprefix("  ") + "\n" for line in block.splitlines())


@pytest.mark.parametrize("on_error", ["fail", "skip"])
def test_the_readme_example_without_indentation_is_one_session(tmp_path, run_ohlog, on_error):
    text = readme_example_unindented()
    assert json.loads(text)["userId"] == "ABC123XYZ" and text.splitlines()[1].startswith("{")
    path = tmp_path / "noindent.json"
    path.write_text(text)
    result = run_ohlog("ingest", "--db", tmp_path / "o.db", "--on-error", on_error, path)
    assert result.returncode == 0, result.stderr
    assert b"1 input, 1 session: 2 actions inserted, 0 duplicates, 0 rejected" in result.stderr
    piped = run_ohlog("ingest", "--db", tmp_path / "o.db", "--on-error", on_error, "-",
                      input=gzip.compress(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode() * 2))
    assert piped.returncode == 0, piped.stderr
    assert b"1 input, 2 sessions: 0 actions inserted, 4 duplicates, 0 rejected" in piped.stderr


@pytest.mark.parametrize("shape", ["ndjson", "array", "pretty", "gzip"])
@pytest.mark.parametrize("how", ["pipe", "redirect"])
def test_stdin_larger_than_one_chunk_is_read_whole(tmp_path, shape, how):
    # The validating worker takes over the reader after the first chunk (500
    # records); a new process closes sys.stdin, which closed the reader under
    # it: every stdin input of more than 500 sessions failed ("readline of
    # closed file", "the validating worker process died")
    docs = [session(n, actions=2, user=f"u{n % 7}") for n in range(1300)]
    if shape == "array":
        body = json.dumps(docs).encode()
    elif shape == "pretty":
        body = "\n".join(json.dumps(d, indent=2) for d in docs).encode()
    else:
        body = "".join(json.dumps(d) + "\n" for d in docs).encode()
        if shape == "gzip":
            body = gzip.compress(body)
    db = tmp_path / "o.db"
    command = [OHLOG, "ingest", "--db", str(db), "-", "--quiet"]
    if how == "pipe":
        result = subprocess.run(command, input=body, capture_output=True, timeout=120)
    else:
        source = tmp_path / "in"
        source.write_bytes(body)
        with open(source, "rb") as stdin:
            result = subprocess.run(command, stdin=stdin, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    assert count(db) == 2600


@pytest.mark.parametrize("config", ["", "relative/config"])
def test_an_empty_or_relative_xdg_config_home_is_ignored(tmp_path, config):
    # it used to put the default database in the working directory: one per
    # directory, and a query elsewhere found none
    home, work, other = tmp_path / "home", tmp_path / "work", tmp_path / "other"
    for d in (home, work, other):
        d.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "OHLOG_DB"}
    env.update(HOME=str(home), XDG_CONFIG_HOME=config)
    result = subprocess.run([OHLOG, "ingest", "-q", str(FIXTURES / "sample_log.json")], cwd=work,
                            env=env, capture_output=True)
    assert result.returncode == 0, result.stderr
    assert (home / ".config" / "ohlog" / "ohlog.db").exists()
    assert list(work.iterdir()) == []
    found = subprocess.run([OHLOG, "query", "--nl"], cwd=other, env=env, capture_output=True)
    assert found.returncode == 0 and len(found.stdout.splitlines()) == 3, found.stderr


def _other_formats(text):
    import bz2
    import io
    import lzma
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("s.json", text)
    return {"bzip2-compressed": bz2.compress(text.encode()), "xz-compressed": lzma.compress(text.encode()),
            "UTF-16 text": text.encode("utf-16"), "UTF-32 text": text.encode("utf-32"),
            "a zip archive": archive.getvalue()}


@pytest.mark.parametrize("what", list(_other_formats("{}")))
def test_compressed_or_utf16_input_is_named_for_what_it_is(tmp_path, what):
    # it used to say only "not valid UTF-8: invalid start byte"
    body = _other_formats((FIXTURES / "sample_log.json").read_text())[what]
    source = tmp_path / "in.json"
    source.write_bytes(body)
    db = tmp_path / "o.db"
    for args, kwargs in (([str(source)], {}), (["-"], {"input": body})):
        result = subprocess.run([OHLOG, "ingest", "--db", str(db), *args], capture_output=True, **kwargs)
        assert result.returncode == 1
        message = result.stderr.decode()
        assert message.count("\n") == 1 and what in message and "| ohlog ingest -" in message, message
        # Refused before the database is opened: a first ingest leaves none behind
        assert not db.exists()
    # Inside gzip it is named too, with the command that converts it, before
    # the database is opened (on stdin, from what is buffered of it)
    packed = tmp_path / "in.json.gz"
    packed.write_bytes(gzip.compress(body))
    for args, kwargs in (([str(packed)], {}), (["-"], {"input": packed.read_bytes()})):
        result = subprocess.run([OHLOG, "ingest", "--db", str(db), *args], capture_output=True, **kwargs)
        assert result.returncode == 1
        error = result.stderr.decode().splitlines()[-1]
        assert f"gzip-compressed {what}" in error and "(convert it first: zcat " in error, error
        assert error.endswith(" | ohlog ingest -)") and "{}" not in error
        assert not db.exists()


def test_a_database_ingest_creates_is_named_after_the_summary_and_only_then(tmp_path, run_ohlog):
    # A mistyped --db makes a new database: ingest says so, after its summary
    db = tmp_path / "typo.db"
    first = run_ohlog("ingest", "--db", db, FIXTURES / "sample_log.json")
    assert first.returncode == 0, first.stderr
    lines = first.stderr.decode().splitlines()
    assert lines[0].startswith("1 input, 1 session: 3 actions inserted")
    assert lines[1:] == [f"New database: {db}"]
    # Not for a database that exists, nor with --quiet
    again = run_ohlog("ingest", "--db", db, FIXTURES / "sample_log.json")
    assert len(again.stderr.decode().splitlines()) == 1
    quiet = run_ohlog("ingest", "-q", "--db", tmp_path / "quiet.db", FIXTURES / "sample_log.json")
    assert (quiet.returncode, quiet.stderr) == (0, b"")
    # An empty file is no database yet: it is new too, by the name given (here relative)
    (tmp_path / "empty.db").write_bytes(b"")
    empty = subprocess.run([OHLOG, "ingest", "--db", "empty.db", str(FIXTURES / "sample_log.json")],
                           cwd=tmp_path, capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
    assert empty.stderr.decode().splitlines()[1:] == ["New database: empty.db"]
    # With rejects (exit 3) it is still said
    bad = write_ndjson(tmp_path / "bad.ndjson", [session(1, 1), {"userId": "u"}])
    skipped = run_ohlog("ingest", "--on-error", "skip", "--db", tmp_path / "skip.db", bad)
    assert skipped.returncode == 3
    assert skipped.stderr.decode().splitlines()[-1] == f"New database: {tmp_path / 'skip.db'}"
    failed = run_ohlog("ingest", "--db", tmp_path / "failed.db", bad)
    assert failed.returncode == 1
    assert failed.stderr.decode().count("\n") == 1 and b"New database" not in failed.stderr
    # Found from outside: when a later input fails, the new database that the
    # inputs before it were stored in is named too, before the error
    good = write_ndjson(tmp_path / "good.ndjson", [session(7, 2)])
    partly = run_ohlog("ingest", "--db", tmp_path / "partly.db", good, bad)
    lines = partly.stderr.decode().splitlines()
    assert partly.returncode == 1 and len(lines) == 3
    assert lines[0].startswith("Stored before the error: 1 input, 1 session: 2 actions inserted")
    assert lines[1] == f"New database: {tmp_path / 'partly.db'}" and lines[2].startswith("Error: ")
    again = run_ohlog("ingest", "--db", tmp_path / "partly.db", good, bad)
    assert "New database" not in again.stderr.decode()


@pytest.mark.parametrize("command", [["ingest", "-"], ["query"], ["count"], ["delete", "--user", "u", "--yes"]])
def test_an_empty_db_is_a_usage_error(run_ohlog, tmp_path, command):
    # Found from outside: --db "$DB" with $DB unset wrote to the default database
    home = tmp_path / "home"
    result = subprocess.run([OHLOG, *command, "--db", ""], capture_output=True, input=b"",
                            env={**os.environ, "HOME": str(home)}, timeout=120)
    assert result.returncode == 2
    assert result.stderr.decode().splitlines()[-1] == (
        "Error: Invalid value for '--db': an empty name names no database (is a variable unset?)")
    assert not home.exists()


def test_a_database_a_failed_ingest_left_is_named_by_the_first_that_stores_in_it(tmp_path, run_ohlog):
    # A failed first ingest into a mistyped --db leaves the database behind,
    # empty, and its error stays one line; the ingest that then stores
    # something in it names it, as it names one it creates
    bad = write_ndjson(tmp_path / "bad.ndjson", [session(1, 1), {"userId": "u"}])
    typo = tmp_path / "typo.db"
    failed = run_ohlog("ingest", "--db", typo, bad)
    assert failed.returncode == 1
    assert failed.stderr.decode().count("\n") == 1 and failed.stderr.decode().startswith("Error: ")
    nothing = run_ohlog("ingest", "--db", typo, "-", input=b"")
    assert nothing.returncode == 0 and b"New database" not in nothing.stderr
    good = write_ndjson(tmp_path / "good.ndjson", [session(2, 2)])
    fixed = run_ohlog("ingest", "--db", typo, good)
    assert fixed.returncode == 0
    assert fixed.stderr.decode().splitlines()[1:] == [f"New database: {typo}"]
    again = run_ohlog("ingest", "--db", typo, FIXTURES / "sample_log.json")
    assert again.returncode == 0 and again.stderr.decode().count("\n") == 1
    # An input refused by its first bytes creates no database at all
    (tmp_path / "log.json.xz").write_bytes(b"\xfd7zXZ\x00")
    refused = run_ohlog("ingest", "--db", tmp_path / "refused.db", good, tmp_path / "log.json.xz")
    assert refused.returncode == 1 and refused.stderr.decode().count("\n") == 1
    assert not (tmp_path / "refused.db").exists()


def test_readers_of_a_database_without_actions_say_so(db_target, run_ohlog):
    # An empty database answers empty, as it should, but says why on stderr: a
    # mistyped --db (or one a failed ingest created) is otherwise a silent blank
    secret = "n0t-Sh0wn"
    target = f"{db_target}&password={secret}" if db_target.startswith("postgresql") else db_target
    created = run_ohlog("ingest", "--db", target, "-", input=b'{"userId": 1}')
    assert created.returncode == 1
    shown = target.replace(secret, "***")
    for command in (["query"], ["count"], ["stats", "--json"], ["funnel", "VIEW", "CLICK"],
                    ["delete", "--user", "u", "--yes"]):
        result = run_ohlog(*command, "--db", target)
        err = result.stderr.decode()
        assert result.returncode == 0, err
        assert err.splitlines()[0] == (f"Warning: {shown} holds no actions: ingest logs into it first"
                                       f" (ohlog ingest FILE --db {shlex.quote(shown)})"), command
        assert secret not in err and "no action has" not in err
    # Once it holds one, no such word; a typo of a user is said as before
    assert run_ohlog("ingest", "--db", target, FIXTURES / "sample_log.json").returncode == 0
    typo = run_ohlog("query", "--user", "nobody", "--db", target)
    assert "holds no actions" not in typo.stderr.decode()
    assert "Warning: no action has the user 'nobody'" in typo.stderr.decode()


def test_a_log_file_in_a_directory_that_cannot_be_read_is_refused_before_anything_is_stored(run_ohlog):
    # Found from outside: its "Permission denied" came after the files named
    # before it were stored, while an unreadable directory is refused up front.
    # Root reads any file: then the command runs as nobody (setpriv)
    import shutil
    import tempfile

    as_nobody = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root reads any file, and there is no setpriv to drop that")
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    top = pathlib.Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        top.chmod(0o777)
        logs = top / "logs"
        logs.mkdir()
        logs.chmod(0o755)
        for name in ("a.json", "b.json"):
            write_ndjson(logs / name, [session(len(name), 2)])
            (logs / name).chmod(0o644)
        (logs / "b.json").chmod(0)
        db = top / "o.db"
        result = subprocess.run([*as_nobody, OHLOG, "ingest", "--db", str(db), str(logs)], capture_output=True,
                                stdin=subprocess.DEVNULL, timeout=120, env={**os.environ, "HOME": str(top)})
        assert result.returncode == 2, result.stderr
        assert result.stderr.decode().splitlines()[-1] == (
            f"Error: {logs}/b.json cannot be read (permission denied): remove it, or name the files to"
            " ingest one by one")
        assert not db.exists()
    finally:
        shutil.rmtree(top)


def test_closed_stdin_is_one_line_and_creates_nothing(tmp_path):
    # Found from outside: `ohlog ingest - <&-` (cron, a daemon) was a traceback
    db = tmp_path / "o.db"
    for args, message in ((["-"], "Error: standard input is closed: name the files to ingest"),
                          ([], "Error: Give one or more files, or - to read stdin")):
        line = " ".join([shlex.quote(OHLOG), "ingest", "--db", shlex.quote(str(db)), *args, "<&-"])
        result = subprocess.run(["bash", "-c", line], capture_output=True, timeout=120)
        assert result.returncode in (1, 2) and b"Traceback" not in result.stderr
        assert result.stderr.decode().splitlines()[-1] == message
    assert not db.exists()


def test_a_first_line_cut_after_a_colon_before_long_lines_is_one_rejected_record(tmp_path, run_ohlog):
    # Found from outside: the reader peeked 8 KiB ahead (a file's default
    # buffer), too little to see two whole lines of 4.6 KB: the input was read
    # as one pretty-printed document and failed whole under --on-error skip
    padded = [dict(session(n, 1), pad="x" * 4600) for n in range(5)]
    log = tmp_path / "cut.ndjson"
    log.write_text('{"userId": "u0", "sessionId": "s", "properties":\n'
                   + "\n".join(json.dumps(doc) for doc in padded) + "\n")
    result = run_ohlog("ingest", "--db", tmp_path / "o.db", "--on-error", "skip", log)
    assert result.returncode == 3, result.stderr
    lines = result.stderr.decode().splitlines()
    assert lines[0].startswith(f"Rejected {log}:1:") and "5 actions inserted" in lines[1]
    # the same on stdin
    piped = run_ohlog("ingest", "--db", tmp_path / "p.db", "--on-error", "skip", "-", input=log.read_bytes())
    assert piped.returncode == 3 and b"5 actions inserted" in piped.stderr


def test_a_fifo_or_process_substitution_is_read_once_and_whole(tmp_path):
    # Found by a review: the check of a format by its first bytes read them
    # from a FIFO too, before the ingest did: they were lost (a hang, for a named pipe)
    log = write_ndjson(tmp_path / "log.ndjson", [session(n, 2) for n in range(50)])
    db = tmp_path / "o.db"
    line = f"{shlex.quote(OHLOG)} ingest --db {shlex.quote(str(db))} <(cat {shlex.quote(str(log))})"
    result = subprocess.run(["bash", "-c", line], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert b"100 actions inserted" in result.stderr and count(db) == 100
    fifo = tmp_path / "pipe.ndjson"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["bash", "-c", f"cat {shlex.quote(str(log))} > {shlex.quote(str(fifo))}"])
    try:
        result = subprocess.run([OHLOG, "ingest", "--db", str(tmp_path / "f.db"), str(fifo)], capture_output=True,
                                timeout=60)
    finally:
        writer.wait(10)
    assert result.returncode == 0, result.stderr
    assert b"100 actions inserted" in result.stderr and count(tmp_path / "f.db") == 100
