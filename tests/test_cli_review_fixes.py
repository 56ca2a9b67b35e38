"""An outside review's findings, each through the real ``ohlog`` command: backup given a
PostgreSQL URL, serve on a port it cannot bind, --public-post without a token, stdin named
twice to ingest."""

import os
import socket
import sqlite3
import subprocess

import pytest

from .conftest import OHLOG
from .test_cli_serve import SAMPLE, serving

PASSWORD = "hunter2"
URL = f"postgresql://ohlog:{PASSWORD}@/ohlog?host=/tmp/x"


def error_line(result):
    """The one Error: line of a failed command (after click's usage banner, if any)."""
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    return errors[0]


# 1. backup copies SQLite files: a URL is a usage error pointing to ohlog copy


@pytest.mark.parametrize("url", [URL, URL.replace("postgresql://", "postgres://"),
                                 f"postgresql://ohlog@db.example/ohlog?password={PASSWORD}"])
def test_backup_refuses_a_postgresql_url_from_db(run_ohlog, tmp_path, url):
    result = run_ohlog("backup", tmp_path / "copy.db", "--db", url)
    assert result.returncode == 2
    line = error_line(result)
    assert line.startswith("Error: Invalid value for '--db': postgres")
    assert "is a PostgreSQL database, and backup copies SQLite files: use ohlog copy URL " \
           "FILE.db (or pg_dump)" in line
    assert "No database found" not in line and "postgresql:/p" not in line  # not taken as a path
    assert PASSWORD.encode() not in result.stderr + result.stdout
    assert not (tmp_path / "copy.db").exists()


def test_backup_refuses_a_postgresql_url_from_the_environment(tmp_path):
    result = subprocess.run([OHLOG, "backup", tmp_path / "copy.db"], capture_output=True,
                            env={**os.environ, "OHLOG_DB": URL}, stdin=subprocess.DEVNULL,
                            timeout=120)
    assert result.returncode == 2
    assert error_line(result).startswith("Error: Invalid value for $OHLOG_DB: "
                                         "postgresql://ohlog:***@/ohlog?host=/tmp/x is a "
                                         "PostgreSQL database")
    assert PASSWORD.encode() not in result.stderr


def test_backup_help_says_sqlite(run_ohlog):
    help_text = run_ohlog("backup", "--help").stdout.decode()
    assert "Copy the SQLite database" in help_text and "ohlog copy URL FILE.db" in help_text
    assert "PATH|URL" not in help_text


@pytest.mark.parametrize("command", [["query"], ["stats"], ["delete", "--user", "u", "--dry-run"],
                                     ["ingest", SAMPLE]])
def test_the_other_db_commands_take_a_url_as_a_url(run_ohlog, command):
    """Every other command with --db works on PostgreSQL: the URL reaches libpq (here: no
    server at that socket), never the file system, and its password stays hidden."""
    result = run_ohlog(*command, "--db", URL)
    assert result.returncode == 1
    assert error_line(result).startswith("Error: cannot connect to PostgreSQL at /tmp/x:")
    assert PASSWORD.encode() not in result.stderr + result.stdout


# 2. serve on a port it cannot bind: exit 1 (3 means records rejected), one line


@pytest.fixture
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("args,where", [([], "127.0.0.1"), (["--workers", "2"], "127.0.0.1"),
                                        (["--host", "localhost"], "localhost")])
def test_serve_on_a_port_in_use_is_one_line_and_exit_1(run_ohlog, tmp_path, busy_port, args,
                                                         where):
    result = run_ohlog("serve", "--db", tmp_path / "s.db", "--create", "--port", busy_port, *args)
    assert result.returncode == 1
    assert result.stderr.decode() == (f"Created a new database at {tmp_path / 's.db'}\n"
                                      f"Error: Cannot listen on {where}:{busy_port}: "
                                      "address already in use\n")


def test_serve_on_a_database_without_actions_says_so(run_ohlog, tmp_path, busy_port):
    # Found from outside: a failed first ingest into a mistyped --db left an
    # empty database, which serve then served without a word (it needs no --create)
    db = tmp_path / "typo.db"
    assert run_ohlog("ingest", "--db", db, "-", input=b'{"userId": 1}').returncode == 1
    result = run_ohlog("serve", "--db", db, "--port", busy_port)
    assert result.returncode == 1
    assert result.stderr.decode() == (f"Warning: {db} holds no actions: GET answers empty until actions are"
                                      f" POSTed or ingested (ohlog ingest FILE --db {db})\n"
                                      f"Error: Cannot listen on 127.0.0.1:{busy_port}: address already in use\n")
    assert run_ohlog("ingest", "--db", db, SAMPLE).returncode == 0
    result = run_ohlog("serve", "--db", db, "--port", busy_port)
    assert result.stderr.decode() == f"Error: Cannot listen on 127.0.0.1:{busy_port}: address already in use\n"


def test_serve_on_an_address_not_this_machines_is_one_line(run_ohlog, tmp_path):
    # 192.0.2.1 (TEST-NET-1) is nobody's address; with a token, so no exposure warning
    result = run_ohlog("serve", "--db", tmp_path / "s.db", "--create", "--host", "192.0.2.1", "--port", 0,
                       "--token", "t")
    assert result.returncode == 1
    assert result.stderr.decode() == (f"Created a new database at {tmp_path / 's.db'}\n"
                                      "Error: Cannot listen on 192.0.2.1:0: cannot assign "
                                      "requested address\n")


# 3. --public-post without a token changes nothing: say so, and serve


PUBLIC_POST_WARNING = ("Warning: --public-post does nothing without --token (or $OHLOG_TOKEN): "
                       "every request is already accepted without one")


@pytest.mark.parametrize("args,env,warned", [
    (["--public-post"], {}, True),
    (["--public-post", "--token", ""], {}, True),
    ([], {"OHLOG_PUBLIC_POST": "1"}, True),
    (["--public-post", "--token", "t"], {}, False),
    (["--public-post"], {"OHLOG_TOKEN": "t"}, False),
])
def test_public_post_without_a_token_warns_and_serves(tmp_path, args, env, warned):
    env = {**{k: v for k, v in os.environ.items() if k != "OHLOG_TOKEN"}, **env}
    with serving(tmp_path, *args, env=env) as api:
        status, _, body = api.request("POST", "/api/log", SAMPLE.read_bytes(),
                                      {"Content-Type": "application/json"})
        assert (status, body) == (200, {"inserted": 3, "duplicates": 0})
        log = api.log.read_text()
    assert (PUBLIC_POST_WARNING in log) == warned, log
    assert log.count(PUBLIC_POST_WARNING) <= 1


# 4. ingest: a stream can be read once


def test_stdin_named_twice_is_a_usage_error(run_ohlog, tmp_path):
    db = tmp_path / "i.db"
    for args, message in [
        (["-", "-"], "Error: - (stdin) is given twice: a stream can be read only once"),
        ([SAMPLE, "-", "-"], "Error: - (stdin) is given twice: a stream can be read only once"),
        (["-", "/dev/stdin"], "Error: /dev/stdin is the same stream as - (stdin): a stream can "
                              "be read only once"),
    ]:
        result = run_ohlog("ingest", *args, "--db", db, input=SAMPLE.read_bytes())
        assert result.returncode == 2, args
        assert error_line(result) == message
        assert not db.exists()  # refused before anything is opened


def test_a_fifo_named_twice_is_a_usage_error(run_ohlog, tmp_path):
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    result = run_ohlog("ingest", fifo, fifo, "--db", tmp_path / "i.db")
    assert result.returncode == 2
    assert error_line(result) == f"Error: {fifo} is given twice: a stream can be read only once"


def test_a_file_may_still_be_named_twice_and_with_stdin(run_ohlog, tmp_path):
    db = tmp_path / "i.db"
    result = run_ohlog("ingest", SAMPLE, "-", SAMPLE, "--db", db, input=SAMPLE.read_bytes())
    assert result.returncode == 0, result.stderr
    assert b"3 inputs, 3 sessions: 3 actions inserted, 6 duplicates" in result.stderr


# An empty file, a device, a FIFO or a directory as the database (found from outside:
# delete and serve turned an empty file into a database; a device gave "disk I/O
# error" and left a -journal file beside it). And a SQLite file without a table
# (another tool's, emptied): every reader and delete wrote ohlog's tables into it.

NOT_CREATING = {
    "query": ["query"], "stats": ["stats"], "delete --dry-run": ["delete", "--user", "x", "--dry-run"],
    "delete": ["delete", "--user", "x", "--yes"], "serve": ["serve", "--port", "0"],
    "count": ["count"], "timeline": ["timeline", "--user", "x"],
}
CREATING = {"ingest": ["ingest", "EXAMPLE"], "serve --create": ["serve", "--port", "0", "--create"]}


def make_odd(tmp_path, kind):
    path = tmp_path / "odd.db"
    if kind == "empty file":
        path.write_bytes(b"")
    elif kind == "SQLite file without a table":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE t (x)")
        conn.execute("DROP TABLE t")
        conn.commit()
        conn.close()
    elif kind == "directory":
        path.mkdir()
    elif kind == "FIFO":
        os.mkfifo(path)
    else:
        try:
            os.mknod(path, 0o600 | __import__("stat").S_IFCHR, os.makedev(1, 3))  # as /dev/null
        except PermissionError:
            pytest.skip("making a device needs root")
    return path


def run_on(path, args, tmp_path):
    args = [str(path.parent.parent / "sample.json") if a == "EXAMPLE" else a for a in args]
    return subprocess.run([OHLOG, *args, "--db", str(path)], capture_output=True, timeout=30,
                          stdin=subprocess.DEVNULL, cwd=tmp_path)


@pytest.mark.parametrize("command,kind", [
    (command, kind) for command in [*NOT_CREATING, *CREATING]
    for kind in ["empty file", "SQLite file without a table", "directory", "FIFO", "character device"]
    # (serve --create serves an empty file as a new database, as it should: until stopped)
    if (command, kind) not in {("serve --create", "empty file"), ("serve --create", "SQLite file without a table")}])
def test_an_odd_file_as_the_database_is_refused_untouched(tmp_path, kind, command):
    (tmp_path / "sample.json").write_bytes(open(os.path.join(os.path.dirname(__file__), "..", "examples",
                                                             "sample_log.json"), "rb").read())
    work = tmp_path / "w"
    work.mkdir()
    path = make_odd(work, kind)
    before = path.read_bytes() if path.is_file() else None
    args = {**NOT_CREATING, **CREATING}[command]
    result = run_on(path, args, work)
    if kind in ("empty file", "SQLite file without a table") and command in CREATING:
        # an empty file is a new database to a command that creates one, as ingest makes one
        assert result.returncode == 0
        return
    assert result.returncode in (1, 2)
    what = {"directory": "a directory", "FIFO": "a FIFO", "character device": "a character device"}
    if kind in ("empty file", "SQLite file without a table"):
        why = "the file is empty" if kind == "empty file" else "the file holds no tables"
        expected = (f"Error: No database found at {path}: give an existing one, or add --create to"
                    " start a new one" if command == "serve" else
                    f"Error: No database found at {path} ({why}): ingest logs into it first"
                    f" (ohlog ingest FILE --db {path})")
    elif kind == "directory":  # --db takes no directory, in every command
        expected = f"Error: Invalid value for '-d' / '--db': File '{path}' is a directory."
    else:
        expected = f"Error: Cannot open database {path}: it is {what[kind]}"
    assert error_line(result) == expected
    assert sorted(p.name for p in work.iterdir()) == ["odd.db"]  # no -journal, -wal or -shm beside it
    if before is not None:
        assert path.read_bytes() == before


# A new user's findings: --db given as another kind of URL, or a name that
# SQLite itself reads as a URI; readers leaving the WAL's files behind


@pytest.mark.parametrize("db", ["file:abc.db", "FILE:abc.db?mode=ro", "mysql://x/y", "sqlite:///x.db"])
@pytest.mark.parametrize("command", [["ingest", str(SAMPLE)], ["stats"], ["query"],
                                     ["delete", "--yes", "--user", "u"]])
def test_a_db_url_ohlog_cannot_use_is_a_usage_error_creating_nothing(run_ohlog, tmp_path, db, command):
    result = subprocess.run([OHLOG, *command, "--db", db], cwd=tmp_path, capture_output=True, timeout=60)
    assert result.returncode == 2
    assert error_line(result) == (f"Error: Invalid value for '--db' / $OHLOG_DB: {db!r} is a URL ohlog cannot"
                                  " use: give a SQLite file's path, or a postgresql:// URL (a file whose name"
                                  " looks like a URL: ./NAME)")
    assert list(tmp_path.iterdir()) == []
    result = subprocess.run([OHLOG, *command], cwd=tmp_path, capture_output=True, timeout=60,
                            env={**os.environ, "OHLOG_DB": db})
    assert result.returncode == 2 and list(tmp_path.iterdir()) == []


def test_a_file_named_like_a_sqlite_uri_is_that_file(run_ohlog, tmp_path):
    # Was: SQLite opened "file:abc.db" as a URI, so the actions went to abc.db
    # (and readers of file:abc.db found an empty file)
    result = subprocess.run([OHLOG, "ingest", "--db", "./file:abc.db", str(SAMPLE)], cwd=tmp_path,
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file:abc.db"]
    assert (tmp_path / "file:abc.db").stat().st_mode & 0o777 == 0o600
    result = subprocess.run([OHLOG, "count", "--db", "./file:abc.db", "--csv"], cwd=tmp_path,
                            capture_output=True, timeout=60)
    assert result.stdout.decode().splitlines() == ["type,actions,users", "CLICK,1,1", "NAVIGATE,1,1", "VIEW,1,1"]


@pytest.mark.parametrize("command", [["stats"], ["query"], ["count", "--by", "day"], ["sessions"],
                                     ["paths"], ["timeline", "--user", "ABC123XYZ"]])
def test_a_reader_leaves_no_wal_files_behind(run_ohlog, tmp_path, command):
    # Found by a new user: after ingest had closed (and removed them), every
    # read-only command made the -wal and -shm files again and left them
    db = tmp_path / "a.db"
    assert run_ohlog("ingest", "--db", db, SAMPLE).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.db"]
    before = db.read_bytes()
    result = run_ohlog(*command, "--db", db, "--json")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.db"]
    assert db.read_bytes() == before  # nothing written


def test_a_reader_still_cannot_write(tmp_path):
    from openhouse_cli.store import open_store

    db = tmp_path / "a.db"
    open_store(db).close()
    store = open_store(db, readonly=True)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly|read-only|query_only|attempt to write"):
            store.execute("DELETE FROM actions")
    finally:
        store.close()


@pytest.mark.parametrize("command", [["stats"], ["query"], ["count", "--by", "type"], ["sessions"]])
def test_a_database_given_as_an_argument_is_told_to_take_db(run_ohlog, tmp_path, command):
    # A new user's sqlite-utils habit: ohlog stats gen.db
    db = tmp_path / "gen.db"
    assert run_ohlog("ingest", "--db", db, SAMPLE).returncode == 0
    result = subprocess.run([OHLOG, *command, "gen.db"], cwd=tmp_path, capture_output=True, timeout=60)
    assert result.returncode == 2
    assert error_line(result) == ("Error: Got unexpected extra argument (gen.db) (to read the database gen.db,"
                                  " name it with --db gen.db)")
    result = subprocess.run([OHLOG, *command, "nothing"], cwd=tmp_path, capture_output=True, timeout=60)
    assert error_line(result) == "Error: Got unexpected extra argument (nothing)"
    # --db's own value is not the stray one (found by a review)
    (tmp_path / "other.db").write_bytes((tmp_path / "gen.db").read_bytes())
    result = subprocess.run([OHLOG, *command, "--db", "gen.db", "nothing"], cwd=tmp_path, capture_output=True,
                            timeout=60)
    assert error_line(result) == "Error: Got unexpected extra argument (nothing)"
    result = subprocess.run([OHLOG, *command, "--db", "gen.db", "other.db"], cwd=tmp_path, capture_output=True,
                            timeout=60)
    assert error_line(result) == ("Error: Got unexpected extra argument (other.db) (to read the database"
                                  " other.db, name it with --db other.db)")
    # A log (or a directory of them) given to a reader: it is to be ingested first
    (tmp_path / "my log.json").write_bytes(SAMPLE.read_bytes())
    (tmp_path / "logs").mkdir()
    for log, quoted in (("my log.json", "'my log.json'"), ("logs", "logs")):
        result = subprocess.run([OHLOG, *command, "--db", "gen.db", log], cwd=tmp_path, capture_output=True,
                                timeout=60)
        assert error_line(result).endswith(f" ({command[0]} reads the database: load {log} into it first with"
                                           f" ohlog ingest {quoted})"), error_line(result)


@pytest.mark.parametrize("args, hint", [(["copy", "mysql://a/b", "x.db"], "SRC"), (["copy", "a.db", "sqlite:///x.db"], "DEST"),
                                        (["copy", "file:a.db", "x.db"], "SRC"), (["backup", "file:bk.db", "--db", "a.db"], "DEST")])
def test_copy_and_backup_refuse_the_urls_db_refuses(run_ohlog, tmp_path, args, hint):
    # Found by a review: SRC and DEST took mysql://h/db for the path mysql:/h/db
    assert run_ohlog("ingest", "--db", tmp_path / "a.db", SAMPLE).returncode == 0
    result = subprocess.run([OHLOG, *args], cwd=tmp_path, capture_output=True, timeout=60)
    assert result.returncode == 2
    assert error_line(result).startswith(f"Error: Invalid value for '{hint}': ")
    assert "is a URL ohlog cannot use" in error_line(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.db"]
