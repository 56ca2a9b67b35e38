"""Issue 4.4, disk full and I/O errors: a one-line error, a non-zero exit, an intact database.

Tests run as root here, so permission bits stop nothing: a read-only
database is a read-only tmpfs mount (or ``chattr +i``), a full disk a small
tmpfs, and a failing write RLIMIT_FSIZE (Python ignores SIGXFSZ, so the
write fails with EFBIG). Where mounting is not allowed the test is skipped.
"""

import os
import resource
import shutil
import sqlite3
import subprocess

import pytest

from openhouse_cli.db import open_db
from openhouse_cli.ingest import ingest_sessions

from .conftest import FIXTURES
from .test_reliability_common import OHLOG, count, db_digest, integrity, session, write_ndjson

SESSIONS, ACTIONS = 1500, 10  # the input that does not fit


def ohlog(*args, fsize=None, env=None):
    """Run ohlog; return (exit code, stderr text)."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    proc = subprocess.run([OHLOG, *map(str, args)], capture_output=True, stdin=subprocess.DEVNULL,
                          preexec_fn=limit if fsize else None, env=env, timeout=300)
    return proc.returncode, proc.stderr.decode()


def one_line_error(code, stderr, *fragments):
    assert code == 1, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("Error: "), stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in stderr


def make_db(path, base=True):
    database = open_db(path)
    if base:
        ingest_sessions(database, [session(n, user="existing") for n in range(3)])
    database.conn.close()  # the last connection checkpoints: no -wal left
    return path


@pytest.fixture
def big_input(tmp_path):
    return write_ndjson(tmp_path / "big.ndjson", [session(n, ACTIONS, user=f"u{n % 7}") for n in range(SESSIONS)])


@pytest.fixture
def mount(tmp_path):
    """mount(size, name) -> an empty tmpfs of that size; unmounted afterwards."""
    mounted = []

    def mount(size="1m", name="mnt"):
        point = tmp_path / name
        point.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", point],
                                capture_output=True, timeout=120)
        if result.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=120)


def remount_ro(point):
    subprocess.run(["mount", "-o", "remount,ro", point], check=True, timeout=120)


@pytest.mark.parametrize("fsize, base", [(40_000, True), (600_000, True), (600_000, False)],
                         ids=["at-open", "mid-ingest", "bulk-load-into-empty"])
def test_file_size_limit(tmp_path, big_input, base, fsize):
    db = make_db(tmp_path / "o.db", base)
    before, schema = db_digest(db), _schema(db)
    code, stderr = ohlog("ingest", "--db", db, big_input, fsize=fsize)
    one_line_error(code, stderr)
    assert "database error" in stderr or "Cannot open database" in stderr
    assert integrity(db) == "ok"
    assert db_digest(db) == before and _schema(db) == schema  # indexes dropped for a bulk load are back
    if fsize == 40_000:  # and nothing is left stuck: the same ingest works without the limit
        code, stderr = ohlog("ingest", "--db", db, big_input)
        assert code == 0, stderr
        assert count(db) == 9 + SESSIONS * ACTIONS


def _schema(path):
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute("SELECT name, sql FROM sqlite_master"))


def test_file_size_limit_with_batches_keeps_whole_batches(tmp_path, big_input):
    db = make_db(tmp_path / "o.db")
    code, stderr = ohlog("ingest", "--db", db, "--batch-size", 100, big_input, fsize=600_000)
    # The committed batches are reported first (issue 8, item 22), then the error
    stored, _, error = stderr.rpartition("Error: ")
    one_line_error(code, "Error: " + error, "database error")
    assert integrity(db) == "ok"
    with sqlite3.connect(db) as conn:
        sessions = conn.execute("SELECT count(DISTINCT session_id) FROM actions WHERE user_id != 'existing'"
                                ).fetchone()[0]
    assert sessions % 100 == 0 and count(db) == 9 + sessions * ACTIONS
    if sessions:
        assert stored.startswith(f"Stored before the error: 1 input, {sessions:,} sessions: "), stderr
    else:
        assert stored == "", stderr


def test_disk_full(mount, big_input):
    db = make_db(mount("1m") / "o.db")
    before = db_digest(db)
    code, stderr = ohlog("ingest", "--db", db, big_input)
    one_line_error(code, stderr, "database or disk is full")
    assert integrity(db) == "ok" and db_digest(db) == before


def test_disk_already_full(mount, big_input):
    point = mount("1m")
    db = make_db(point / "o.db")
    before = db_digest(db)
    filler = os.open(point / "filler", os.O_CREAT | os.O_WRONLY)
    try:
        while os.write(filler, b"\0" * 4096):  # take every free byte
            pass
    except OSError:
        pass
    finally:
        os.close(filler)
    code, stderr = ohlog("ingest", "--db", db, FIXTURES / "sample_log.json")
    one_line_error(code, stderr)
    (point / "filler").unlink()
    assert integrity(db) == "ok" and db_digest(db) == before


def test_read_only_database_file(tmp_path, big_input):
    db = make_db(tmp_path / "o.db")
    before = db_digest(db)
    if subprocess.run(["chattr", "+i", db], capture_output=True, timeout=120).returncode:
        pytest.skip("chattr +i is not supported here")
    try:
        code, stderr = ohlog("ingest", "--db", db, big_input)
    finally:
        subprocess.run(["chattr", "-i", db], check=True, timeout=120)
    one_line_error(code, stderr, "readonly database")
    assert integrity(db) == "ok" and db_digest(db) == before


def test_read_only_filesystem(mount, big_input):
    point = mount("4m")
    db = make_db(point / "o.db")
    before = db_digest(db)
    remount_ro(point)
    one_line_error(*ohlog("ingest", "--db", db, big_input), f"Cannot open database {db}")
    one_line_error(*ohlog("ingest", "--db", point / "new.db", big_input),
                   f"Cannot create database {point / 'new.db'}: Read-only file system")
    env = {**os.environ, "XDG_CONFIG_HOME": str(point / "config")}
    env.pop("OHLOG_DB")
    one_line_error(*ohlog("ingest", big_input, env=env), "Read-only file system")
    subprocess.run(["mount", "-o", "remount,rw", point], check=True, timeout=120)
    assert integrity(db) == "ok" and db_digest(db) == before


def test_backup_from_a_read_only_filesystem(mount, tmp_path):
    point = mount("4m")
    db = make_db(point / "o.db")
    before = db_digest(db)
    remount_ro(point)
    code, stderr = ohlog("backup", "--db", db, tmp_path / "copy.db")
    assert code == 0, stderr
    assert db_digest(tmp_path / "copy.db") == before


def test_backup_from_read_only_media_never_drops_the_wal(mount, tmp_path):
    """A -wal left on read-only media (a crash, a copied directory) holds commits that
    immutable=1 would ignore: backup must copy them or refuse, never silently drop them."""
    db = make_db(tmp_path / "o.db", base=False)
    writer = open_db(db)
    writer.conn.execute("PRAGMA wal_autocheckpoint = 0")
    ingest_sessions(writer, [session(n) for n in range(10)])
    point = mount("4m")
    for suffix in ("", "-wal"):  # the files as a crash leaves them, without the -shm
        shutil.copyfile(f"{db}{suffix}", point / f"o.db{suffix}")
    writer.conn.close()
    remount_ro(point)
    code, stderr = ohlog("backup", "--db", point / "o.db", tmp_path / "copy.db")
    if code == 0:
        assert count(tmp_path / "copy.db") == 30
    else:
        one_line_error(code, stderr, "-wal")
        assert not (tmp_path / "copy.db").exists()


def test_backup_into_a_full_disk_leaves_nothing(mount, tmp_path, big_input):
    db = make_db(tmp_path / "o.db")
    assert ohlog("ingest", "--db", db, big_input)[0] == 0
    point = mount("256k")
    one_line_error(*ohlog("backup", "--db", db, point / "copy.db"), "Cannot back up")
    assert os.listdir(point) == []


def test_query_from_a_read_only_filesystem(mount):
    point = mount("4m")
    db = make_db(point / "o.db")
    remount_ro(point)
    proc = subprocess.run([OHLOG, "query", "--db", db, "--nl"], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 9


def test_copying_the_files_is_what_backup_avoids(tmp_path):
    """Why the README says never to copy the live file: a copy without its -wal loses commits."""
    db = make_db(tmp_path / "o.db", base=False)
    writer = open_db(db)  # kept open: its commits stay in the -wal until a checkpoint
    writer.conn.execute("PRAGMA wal_autocheckpoint = 0")
    ingest_sessions(writer, [session(n) for n in range(10)])
    shutil.copyfile(db, tmp_path / "cp.db")
    assert count(tmp_path / "cp.db") == 0  # the 30 committed actions are not in the main file
    assert ohlog("backup", "--db", db, tmp_path / "backup.db")[0] == 0
    assert count(tmp_path / "backup.db") == 30
    writer.conn.close()
