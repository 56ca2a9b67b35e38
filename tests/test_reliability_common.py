"""Helpers shared by the test_reliability_* files (issue 4); no tests of its own.

The slow versions print their figures with ``figures()``, so that
``pytest -m slow tests/test_reliability_*.py`` shows what the README quotes.
"""

import hashlib
import io
import json
import os
import pathlib
import re
import signal
import sqlite3
import subprocess

from openhouse_cli.errors import InvalidInput
from openhouse_cli.ingest import ingest_input

from .conftest import OHLOG

__all__ = ["OHLOG"]  # re-exported for the test files

# What an error about bad data looks like: one line, FILE:LINE[:COL]: then the reason
LOCATED = re.compile(r"(?P<name>[^\n]+?):(?P<line>[0-9]+)(?::(?P<col>[0-9]+))?: [^\n]+")


def session(n, actions=3, user="u1", kind="VIEW"):
    """A valid session document: ``actions`` distinct actions of type ``kind``."""
    return {"userId": user, "sessionId": f"s{n}", "actions": [
        {"time": f"2018-10-{1 + n % 28:02d}T12:{a // 60 % 60:02d}:{a % 60:02d}.{n % 10**6:06d}+05:30",
         "type": kind, "properties": {"viewedId": f"v{a}"}} for a in range(actions)]}


def write_ndjson(path, docs):
    path = pathlib.Path(path)
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def _kept_dir(config):
    """pytest's cache directory for ohlog's kept files; a private temporary
    directory when the cache plugin is off (``-p no:cacheprovider``)."""
    cache = getattr(config, "cache", None)
    if cache is not None:
        return cache.mkdir("ohlog-reliability")
    import tempfile

    directory = pathlib.Path(tempfile.gettempdir()) / f"ohlog-reliability-{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


def generated(config, n_actions, fmt="ndjson", seed=0):
    """The path of ``benchmarks/generate.py``'s output for (n_actions, fmt, seed).

    Kept in pytest's cache directory, so only the first run pays for it.
    """
    from benchmarks.generate import write

    directory = _kept_dir(config)
    path = directory / f"actions-{n_actions}-s{seed}.{fmt}"
    if not path.exists():
        partial = path.with_suffix(f".{os.getpid()}.partial")  # test workers may race
        write(str(partial), n_actions, fmt, seed)
        partial.rename(path)
    return path


def count(path, where="1"):
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT count(*) FROM actions WHERE {where}").fetchone()[0]


def integrity(path):
    """``PRAGMA integrity_check`` of the database at ``path``: "ok" when sound."""
    conn = sqlite3.connect(path)
    try:
        return "\n".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def db_digest(db):
    """A hash of the schema and every row: equal digests, equal databases.

    ``db`` is a path, a sqlite3.Connection or a sqlite_utils.Database.
    """
    conn = getattr(db, "conn", db)
    close = False
    if not isinstance(conn, sqlite3.Connection):
        conn, close = sqlite3.connect(conn), True
    try:
        digest = hashlib.sha256()
        for query in ("SELECT type, name, sql FROM sqlite_master ORDER BY name",
                      "SELECT * FROM actions ORDER BY id"):
            for row in conn.execute(query):
                digest.update(repr(row).encode("utf-8", "surrogatepass"))
        return digest.hexdigest()
    finally:
        if close:
            conn.close()


def ingest_checked(db, data, name="in.json", on_error="fail"):
    """Ingest the bytes ``data`` in-process and check ohlog's promise for bad data.

    Returns ``("ok", counts)`` or ``("error", message)``. An error must be an
    InvalidInput with a located one-line message, and must leave ``db``
    exactly as it was; a success must have stored what it counted. Any other
    exception propagates: that is a traceback for the user.
    """
    before, rows_before = db_digest(db), _rows(db)
    rejected = []
    try:
        counts = ingest_input(db, io.BytesIO(data), name, on_error=on_error,
                              on_reject=lambda record, error: rejected.append(str(error)))
    except InvalidInput as ex:
        message = str(ex)
        assert LOCATED.fullmatch(message) and message.startswith(f"{name}:"), message
        assert db_digest(db) == before, f"a rejected input changed the database: {message}"
        return "error", message
    for message in rejected:
        assert LOCATED.fullmatch(message) and message.startswith(f"{name}:"), message
    assert counts.rejected == len(rejected)
    assert _rows(db) == rows_before + counts.inserted
    return "ok", counts


def _rows(db):
    return db.conn.execute("SELECT count(*) FROM actions").fetchone()[0]


# The measured command runs under this small launcher, itself started afresh:
# Linux charges a process's ru_maxrss with the image that exec replaced, so a
# child forked straight from pytest (large) would report at least pytest's RSS.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as report:
    report.write("%d %d" % (os.waitstatus_to_exitcode(status), usage.ru_maxrss))
"""


def run_measured(args, *, timeout=600):
    """Run ``args``; return ``(exit code, peak RSS in MB, stderr text)``.

    The peak RSS is ``ru_maxrss`` from ``os.wait4``: the largest of the
    process and the children it waited for (ohlog's validating worker).
    stderr goes to a file, not a pipe: a pipe would stay open as long as any
    stray child holds it.
    """
    import sys
    import tempfile

    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as report:
        subprocess.run([sys.executable, "-I", "-S", "-c", _LAUNCHER, report.name, *map(str, args)],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                       timeout=timeout)
        code, maxrss_kb = map(int, report.read().split())
        err.seek(0)
        return code, maxrss_kb / 1024, err.read().decode("utf-8", "replace")


def strays(marker):
    """Pids of processes (not this one) whose command line contains ``marker``."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry.name))
    return found


def reap_strays(marker):
    """Kill (by pid) what our killed ingests left behind; return how many there were.

    Every such process is one this test started, or a child forked from one.
    """
    pids = strays(marker)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)


def figures(config, line):
    """Show a line of figures on the terminal, past output capture, and keep it in
    .pytest_cache/d/ohlog-reliability/figures.txt."""
    import time

    with open(_kept_dir(config) / "figures.txt", "a") as kept:
        kept.write(f"{time.strftime('%Y-%m-%d %H:%M')} {line}\n")
    capture = config.pluginmanager.getplugin("capturemanager")
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.ensure_newline()
            reporter.write_line(f"[figures] {line}")
