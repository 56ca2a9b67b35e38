"""Issue 4.8, privacy: the database, its -wal and -shm are 0600, its default directory 0700.

test_cli_ingest.py checks the default database and directory under the
usual umask; these tests add the -wal and -shm files, a umask of 0 (a
careless shell or service manager), and the rejects file. Backups: test_backup.py.
"""

import json
import os
import stat
import subprocess
import time

import pytest

from .conftest import FIXTURES
from .test_reliability_common import OHLOG, session


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def umask_0():
    os.umask(0)


def test_wal_and_shm_are_private_even_with_umask_0(tmp_path):
    db = tmp_path / "o.db"
    # A stream that stays open keeps ohlog mid-ingest, with its -wal and -shm in place
    proc = subprocess.Popen([OHLOG, "ingest", "--db", db, "--batch-size", "1", "-"],
                            stdin=subprocess.PIPE, stderr=subprocess.DEVNULL, preexec_fn=umask_0)
    try:
        proc.stdin.write(json.dumps(session(1)).encode() + b"\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 30
        while not (tmp_path / "o.db-shm").exists():
            assert time.monotonic() < deadline, "no -shm file within 30s"
            time.sleep(0.02)
        modes = {p.name: mode(p) for p in tmp_path.iterdir()}
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert modes == {"o.db": 0o600, "o.db-wal": 0o600, "o.db-shm": 0o600}
    assert proc.returncode == 0


@pytest.mark.parametrize("how", ["--db", "OHLOG_DB", "default"])
def test_new_database_is_private_with_umask_0(tmp_path, how):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    env.pop("OHLOG_DB")
    args = [OHLOG, "ingest", FIXTURES / "sample_log.json"]
    db = tmp_path / "new.db"
    if how == "--db":
        args += ["--db", db]
    elif how == "OHLOG_DB":
        env["OHLOG_DB"] = str(db)
    else:
        db = tmp_path / "cfg" / "ohlog" / "ohlog.db"
    subprocess.run(args, env=env, check=True, capture_output=True, preexec_fn=umask_0, timeout=120)
    assert mode(db) == 0o600
    if how == "default":
        assert mode(db.parent) == 0o700


def test_rejects_file_is_private(tmp_path):
    source = tmp_path / "in.ndjson"
    source.write_text(json.dumps(session(1)) + "\n" + json.dumps({"userId": "u"}) + "\n")
    rejects = tmp_path / "rejects.ndjson"
    proc = subprocess.run([OHLOG, "ingest", "--db", tmp_path / "o.db", "--on-error", "skip",
                           "--rejects", rejects, source], capture_output=True,
                          preexec_fn=lambda: os.umask(0o022), timeout=120)
    assert proc.returncode == 3
    assert mode(rejects) == 0o600
