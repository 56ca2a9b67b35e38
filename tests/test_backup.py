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
    assert runner.invoke(cli, ["backup", str(tmp_path), "--db", str(live)]).exit_code == 2


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
