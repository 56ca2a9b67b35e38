"""ohlog backup: a sound copy of the live database, private, never over a file by accident."""

import os
import pathlib
import sqlite3
import stat
import subprocess
import threading
import time

import pytest
from click.testing import CliRunner

from openhouse_cli.backup import backup_database
from openhouse_cli.cli import cli
from openhouse_cli.db import open_db
from openhouse_cli.errors import NoDatabase, OhlogError
from openhouse_cli.ingest import ingest_sessions

from .test_reliability_common import (
    OHLOG, count, db_digest, figures, integrity, session, write_ndjson,
)


@pytest.fixture
def live(tmp_path):
    path = tmp_path / "live.db"
    database = open_db(path)
    ingest_sessions(database, [session(n, user="ünï'cödé") for n in range(5)])
    database.conn.close()
    return path


def test_copy_is_the_same_database_in_one_private_file(live, tmp_path):
    dest = tmp_path / "copy.db"
    done = backup_database(live, dest)
    assert (done.path, done.actions, done.size) == (dest, 15, dest.stat().st_size)
    assert db_digest(dest) == db_digest(live)
    assert integrity(dest) == "ok"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    with sqlite3.connect(dest) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("copy")) == ["copy.db"]


def test_refuses_to_overwrite_without_force(live, tmp_path):
    dest = tmp_path / "copy.db"
    dest.write_text("precious")
    with pytest.raises(OhlogError, match="^.*copy.db already exists: use --force to overwrite it$"):
        backup_database(live, dest)
    assert dest.read_text() == "precious"
    dest.chmod(0o644)
    backup_database(live, dest, force=True)
    assert db_digest(dest) == db_digest(live)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600


@pytest.mark.parametrize("force", [False, True])
def test_refuses_to_back_up_onto_itself(live, force):
    before = db_digest(live)
    with pytest.raises(OhlogError, match="onto itself"):
        backup_database(live, live, force=force)
    assert db_digest(live) == before and integrity(live) == "ok"


def test_missing_source_and_missing_directory(live, tmp_path):
    with pytest.raises(NoDatabase, match=f"^No database found at {tmp_path / 'nope.db'}$"):
        backup_database(tmp_path / "nope.db", tmp_path / "copy.db")
    with pytest.raises(OhlogError, match="no such directory"):
        backup_database(live, tmp_path / "missing" / "copy.db")
    assert not (tmp_path / "copy.db").exists()


def test_private_even_with_umask_0(live, tmp_path):
    old = os.umask(0)
    try:
        backup_database(live, tmp_path / "copy.db")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "copy.db").stat().st_mode) == 0o600


def test_a_failed_copy_leaves_nothing(tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(OhlogError, match=f"^Cannot back up {garbage}: file is not a database$"):
        backup_database(garbage, tmp_path / "copy.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.db"]


@pytest.mark.parametrize("tables", [["notes"], ["notes", "users"], ["action"]])
def test_another_programs_database_is_refused_and_nothing_is_written(tmp_path, tables):
    """As every other command refuses it: a mistyped --db must not be backed
    up under a success message."""
    source = tmp_path / "other.db"
    with sqlite3.connect(source) as conn:
        for table in tables:
            conn.execute(f"CREATE TABLE {table} (body TEXT)")
            conn.execute(f"INSERT INTO {table} VALUES ('keep me')")
    conn.close()
    before = source.read_bytes()
    expected = f"{source} is not an ohlog database: it has no actions table (nothing was backed up)"
    with pytest.raises(OhlogError) as raised:
        backup_database(source, tmp_path / "copy.db")
    assert str(raised.value) == expected
    assert source.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]
    result = subprocess.run([OHLOG, "backup", tmp_path / "copy.db", "--db", source], capture_output=True)
    assert (result.returncode, result.stderr.decode()) == (1, f"Error: {expected}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_a_url_as_dest_points_to_copy_and_hides_the_password(live, tmp_path):
    result = subprocess.run([OHLOG, "backup", "postgresql://u:s3cret@/logs?host=/tmp", "--db", live],
                            capture_output=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.decode().splitlines()[-1] == (
        "Error: Invalid value for 'DEST': postgresql://u:***@/logs?host=/tmp is a PostgreSQL database,"
        " and backup writes a SQLite file: use ohlog copy SRC URL")
    assert list(tmp_path.iterdir()) == [live]


def test_cli(live, tmp_path):
    dest = tmp_path / "copy.db"
    runner = CliRunner()
    result = runner.invoke(cli, ["backup", str(dest), "--db", str(live)], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr.startswith(f"Backed up to {dest}: 15 actions, {dest.stat().st_size:,} bytes in ")
    again = runner.invoke(cli, ["backup", str(dest), "--db", str(live)])
    assert again.exit_code == 1
    assert again.stderr == f"Error: {dest} already exists: use --force to overwrite it\n"
    forced = runner.invoke(cli, ["backup", str(dest), "--db", str(live), "--force"])
    assert forced.exit_code == 0
    into_own_directory = runner.invoke(cli, ["backup", str(tmp_path), "--db", str(live)])
    assert into_own_directory.exit_code == 1
    assert into_own_directory.stderr == f"Error: Cannot back up {live} onto itself\n"


def test_cli_uses_ohlog_db(live, tmp_path, monkeypatch):
    monkeypatch.setenv("OHLOG_DB", str(live))
    result = CliRunner().invoke(cli, ["backup", str(tmp_path / "copy.db")])
    assert result.exit_code == 0
    assert count(tmp_path / "copy.db") == 15


INPUT_ACTIONS = 10 * 100  # each input: 100 sessions of 10 actions


def backups_while_writing(tmp_path, writers, inputs_each, backups):
    """Back up again and again while ``writers`` shippers write, each running one
    ``ohlog ingest`` an input; check every copy. Returns (copies' counts, how many
    were taken while the writers wrote)."""
    live = tmp_path / "live.db"
    open_db(live).conn.close()
    failures = []

    def ship(w):
        for k in range(inputs_each):
            path = write_ndjson(tmp_path / f"w{w}-{k}.ndjson",
                                [session(k * 100 + n, actions=10, user=f"w{w}") for n in range(100)])
            proc = subprocess.run([OHLOG, "ingest", "-q", "--db", live, path], capture_output=True,
                                  timeout=120)
            if proc.returncode:
                failures.append(proc.stderr.decode())

    shippers = [threading.Thread(target=ship, args=(w,)) for w in range(writers)]
    for shipper in shippers:
        shipper.start()
    seen, during = [], 0
    try:
        while len(seen) < backups or any(s.is_alive() for s in shippers):
            n, writing = len(seen), any(s.is_alive() for s in shippers)
            dest = tmp_path / f"copy{n}.db"
            if n % 4 == 0:  # the real command now and then; the library the rest of the time
                subprocess.run([OHLOG, "backup", "--db", live, dest], check=True, capture_output=True,
                               timeout=120)
            else:
                backup_database(live, dest)
            assert integrity(dest) == "ok", f"backup {n}"
            copied = count(dest)
            assert copied % INPUT_ACTIONS == 0, f"backup {n} holds part of an input: {copied}"
            assert copied >= (seen[-1] if seen else 0)
            seen.append(copied)
            during += writing and any(s.is_alive() for s in shippers)
            dest.unlink()
    finally:
        for shipper in shippers:
            shipper.join()
    assert failures == []
    assert count(live) == writers * inputs_each * INPUT_ACTIONS
    return seen, during


def test_backups_while_writers_are_active(tmp_path):
    seen, during = backups_while_writing(tmp_path, writers=2, inputs_each=3, backups=5)
    assert len(seen) >= 5 and during >= 1


@pytest.mark.slow
def test_backups_while_writers_are_active_slow(tmp_path, request):
    started = time.perf_counter()
    seen, during = backups_while_writing(tmp_path, writers=4, inputs_each=40, backups=100)
    figures(request.config, f"ohlog backup x{len(seen)} while 4 writers ran 160 ingests: "
            f"integrity_check ok {len(seen)}/{len(seen)}, {during} taken while writing, "
            f"every copy whole inputs only, {time.perf_counter() - started:.1f}s")


def test_an_unreadable_path_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    live = tmp_path / "live.db"
    open_db(live).conn.close()
    dest = tmp_path / "copy.db"
    dest.write_bytes(b"")

    def denied(self, other):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pathlib.Path, "samefile", denied)
    with pytest.raises(OhlogError, match=f"^Cannot back up {live} to {dest}: Permission denied$"):
        backup_database(live, dest)


def test_a_failed_copy_leaves_no_file_behind(tmp_path, monkeypatch):
    from openhouse_cli import backup

    live = tmp_path / "live.db"
    open_db(live).conn.close()
    real_connect = sqlite3.connect
    opened = []

    def failing(target, *args, **kwargs):
        if str(target).endswith(".tmp"):
            raise sqlite3.OperationalError("unable to open database file")
        conn = real_connect(target, *args, **kwargs)
        opened.append(conn)
        return conn

    monkeypatch.setattr(backup.sqlite3, "connect", failing)
    with pytest.raises(OhlogError, match="unable to open database file"):
        backup_database(live, tmp_path / "copy.db")
    assert sorted(p.name for p in tmp_path.iterdir() if "copy" in p.name) == []
    with pytest.raises(sqlite3.ProgrammingError):  # the source connection was closed
        opened[0].execute("SELECT 1")


# DEST spellings (issue 8, item 18): "-", a directory, the database's side files.

def run_in(cwd, *args):
    return subprocess.run([OHLOG, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)


@pytest.mark.parametrize("dest, message", [
    ("-", "a backup is a file, not a stream: give its path (./- for a file named -)"),
    ("", "an empty path: give a file or a directory"),
])
def test_dash_and_empty_dest_are_usage_errors(live, tmp_path, dest, message):
    work = tmp_path / "work"
    work.mkdir()
    proc = run_in(work, "backup", "--db", live, dest)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == f"Error: Invalid value for 'DEST': {message}"
    assert proc.stdout == "" and list(work.iterdir()) == []


def test_dot_slash_dash_is_a_file_named_dash(live, tmp_path):
    proc = run_in(tmp_path, "backup", "--db", live, "./-")
    assert proc.returncode == 0, proc.stderr
    assert db_digest(tmp_path / "-") == db_digest(live)


@pytest.mark.parametrize("spelling", ["{dir}", "{dir}/", "{dir}/."])
def test_a_directory_means_into_it_under_the_database_name(live, tmp_path, spelling):
    (tmp_path / "backups").mkdir()
    dest = spelling.format(dir="backups")
    proc = run_in(tmp_path, "backup", "--db", live, dest)
    assert proc.returncode == 0, proc.stderr
    copy = tmp_path / "backups" / "live.db"
    assert proc.stderr.startswith(f"Backed up to backups/live.db: 15 actions, {copy.stat().st_size:,} bytes")
    assert db_digest(copy) == db_digest(live)
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    again = run_in(tmp_path, "backup", "--db", live, dest)
    assert (again.returncode, again.stderr) == (
        1, "Error: backups/live.db already exists: use --force to overwrite it\n")


def test_a_directory_holding_a_directory_of_that_name(live, tmp_path):
    (tmp_path / "backups" / "live.db").mkdir(parents=True)
    for force in (False, True):
        with pytest.raises(OhlogError, match="live.db: it is a directory$"):
            backup_database(live, tmp_path / "backups", force=force)
    assert list((tmp_path / "backups" / "live.db").iterdir()) == []


@pytest.mark.parametrize("dest", ["missing/", "missing/copy.db", "missing/deeper/copy.db", "file.txt/copy.db"])
def test_a_dest_in_a_missing_directory_creates_nothing(live, tmp_path, dest):
    (tmp_path / "file.txt").write_text("not a directory")
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = run_in(tmp_path, "backup", "--db", live, dest)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("Error: Cannot ")
    assert ("is not a directory" if dest.startswith("file") else "no such directory") in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.fixture
def in_use(live):
    """``live`` with a writer connection open: its -wal holds a commit not yet checkpointed."""
    conn = sqlite3.connect(live, isolation_level=None)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("CREATE TABLE scratch (x)")
    yield live
    conn.close()


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
@pytest.mark.parametrize("how", ["name", "symlink"])
def test_never_onto_the_database_side_files(in_use, tmp_path, suffix, force, how):
    own = pathlib.Path(f"{in_use}{suffix}")
    dest = own
    if how == "symlink":
        dest = tmp_path / "innocent.db"
        dest.symlink_to(own)
    before = own.read_bytes() if own.exists() else None
    with pytest.raises(OhlogError, match=f"^Cannot back up {in_use} onto its own {suffix} file "):
        backup_database(in_use, dest, force=force)
    assert (own.read_bytes() if own.exists() else None) == before
    assert integrity(in_use) == "ok" and count(in_use) == 15


@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
def test_never_onto_side_files_even_when_absent(live, suffix):
    # A copy named live.db-wal would be read as live.db's WAL the next time it is opened.
    own = pathlib.Path(f"{live}{suffix}")
    assert not own.exists()
    with pytest.raises(OhlogError, match=f"onto its own {suffix} file"):
        backup_database(live, own, force=True)
    assert not own.exists() and integrity(live) == "ok"


def test_never_onto_a_hard_link_of_the_database(live, tmp_path):
    link = tmp_path / "link.db"
    os.link(live, link)
    before = db_digest(live)
    with pytest.raises(OhlogError, match="onto itself"):
        backup_database(live, link, force=True)
    assert db_digest(live) == before


def test_cli_refuses_the_wal_with_force(in_use):
    proc = run_in(in_use.parent, "backup", "--db", in_use, "--force", f"{in_use}-wal")
    assert (proc.returncode, proc.stderr) == (
        1, f"Error: Cannot back up {in_use} onto its own -wal file {in_use}-wal\n")


def test_force_does_not_replace_a_database_in_use(live, tmp_path):
    other = tmp_path / "other.db"
    open_db(other).conn.close()
    conn = sqlite3.connect(other, isolation_level=None)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("CREATE TABLE scratch (x)")  # a commit that lives in other.db-wal only
    try:
        wal = pathlib.Path(f"{other}-wal").read_bytes()
        with pytest.raises(OhlogError, match="^Will not overwrite .*other.db: it has a -wal file beside it"):
            backup_database(live, other, force=True)
        assert pathlib.Path(f"{other}-wal").read_bytes() == wal
        assert conn.execute("SELECT count(*) FROM scratch").fetchone() == (0,)
    finally:
        conn.close()
    backup_database(live, other, force=True)  # closed and checkpointed: no -wal left, replaced
    assert db_digest(other) == db_digest(live)
