"""Issue 4.1, crash atomicity: kill -9 an ingest at a random moment.

After each kill: ``PRAGMA integrity_check`` is ok, the schema is whole (a
bulk load drops and rebuilds indexes inside its transaction), the input's
actions are all there or none are (with ``--batch-size``: whole batches
only), and re-running the same ingest ends with every action exactly once.
"""

import random
import signal
import sqlite3
import subprocess
import time

import pytest

from openhouse_cli.db import open_db
from openhouse_cli.ingest import ingest_input

from .conftest import FIXTURES
from .test_reliability_common import (
    OHLOG, count, figures, generated, integrity, reap_strays, strays,
)

BIG = 200_000  # actions in the file that is killed mid-ingest
SMALL = 40_000  # the same, for the fast version
BATCH = 500  # sessions, for the stdin stream


@pytest.fixture(scope="module")
def big(request):
    return generated(request.config, BIG)


def schema(path):
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))


def fresh_db(path, base):
    """A new database, empty (so ingest takes the bulk path) or with the 3 sample actions."""
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    database = open_db(path)
    if base:
        with open(FIXTURES / "sample_log.json", "rb") as fp:
            ingest_input(database, fp, "sample_log.json")
    database.conn.close()
    return 3 if base else 0


def kill_at(args, delay, **popen):
    """Start ``args``, SIGKILL it after ``delay`` s; True if it was killed, False if it had finished."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen)
    try:
        proc.wait(delay)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def lingering(marker, grace=2.0):
    """How many processes of a killed ingest are still there after ``grace`` s (then killed)."""
    deadline = time.monotonic() + grace
    while strays(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return reap_strays(marker)


def exactly_once(path, expected):
    """Every action stored once: the count, and no two rows with the same content."""
    with sqlite3.connect(path) as conn:
        total, distinct = conn.execute(
            "SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT user_id, session_id, time, "
            "type, properties FROM actions)) FROM actions").fetchone()
    assert (total, distinct) == (expected, expected)


def kill_rounds(tmp_path, big, kills, max_delay, rerun_every, seed, actions=BIG):
    """``kills`` rounds of: fresh database, ingest ``big`` (``actions`` actions),
    kill -9 at a random moment, check."""
    rng = random.Random(seed)
    db = tmp_path / "crash.db"
    reference = None
    outcomes = {"none": 0, "all": 0, "finished first": 0, "processes left after 2s": 0}
    for round_ in range(kills):
        base = fresh_db(db, base=round_ % 2)
        reference = reference or schema(db)
        delay = rng.uniform(0.05, max_delay)
        killed = kill_at([OHLOG, "ingest", "--db", db, big], delay)
        outcomes["processes left after 2s"] += lingering(str(db))
        where = f"seed {seed}, round {round_}, killed after {delay:.2f}s"
        assert integrity(db) == "ok", where
        assert schema(db) == reference, where
        stored = count(db) - base
        assert stored in (0, actions), where
        assert count(db, "user_id = 'ABC123XYZ'") == base, where
        outcomes["finished first" if not killed else "all" if stored else "none"] += 1
        if round_ % rerun_every == rerun_every - 1:
            subprocess.run([OHLOG, "ingest", "-q", "--db", db, big], check=True, timeout=300)
            exactly_once(db, base + actions)
    return outcomes


@pytest.fixture(scope="module")
def small(request):
    return generated(request.config, SMALL)  # still the worker's path: 6 chunks of lines


def test_kill_9_during_ingest_fast(tmp_path, small):
    seed = random.randrange(10**6)
    kill_rounds(tmp_path, small, kills=3, max_delay=0.8, rerun_every=3, seed=seed, actions=SMALL)


@pytest.mark.slow
def test_kill_9_during_ingest_50_times(tmp_path, big, request):
    started = time.perf_counter()
    subprocess.run([OHLOG, "ingest", "-q", "--db", tmp_path / "timing.db", big], check=True)
    full = time.perf_counter() - started
    seed = random.randrange(10**6)
    outcomes = kill_rounds(tmp_path, big, kills=50, max_delay=full * 1.05, rerun_every=1, seed=seed)
    figures(request.config, f"kill -9 x50 during a {BIG:,}-action ingest ({full:.1f}s, seed {seed}): "
            f"integrity ok 50/50, re-run exactly once 50/50, {outcomes}")


def stream_rounds(tmp_path, source, kills, max_delay, seed):
    """Pipe ``source`` into ``ohlog ingest - --batch-size`` and kill it: whole batches only."""
    import json

    sessions = [json.loads(line) for line in source.read_text().splitlines()]
    order = [doc["sessionId"] for doc in sessions]
    sizes = {doc["sessionId"]: len(doc["actions"]) for doc in sessions}
    rng = random.Random(seed)
    db = tmp_path / "stream.db"
    stored_batches = []
    for round_ in range(kills):
        fresh_db(db, base=False)
        cat = subprocess.Popen(["cat", source], stdout=subprocess.PIPE)
        delay = rng.uniform(0.05, max_delay)
        kill_at([OHLOG, "ingest", "--db", db, "--batch-size", str(BATCH), "-"], delay, stdin=cat.stdout)
        cat.stdout.close()
        cat.wait()
        where = f"seed {seed}, round {round_}, killed after {delay:.2f}s"
        assert integrity(db) == "ok", where
        with sqlite3.connect(db) as conn:
            per_session = dict(conn.execute("SELECT session_id, count(*) FROM actions GROUP BY 1"))
        done = len(per_session)
        assert done % BATCH == 0 or done == len(order), where
        assert set(per_session) == set(order[:done]), where  # the first batches, in order
        assert all(per_session[s] == sizes[s] for s in per_session), where  # whole sessions
        stored_batches.append(done // BATCH)
        with open(source, "rb") as fp:
            subprocess.run([OHLOG, "ingest", "-q", "--db", db, "--batch-size", str(BATCH), "-"],
                           stdin=fp, check=True, timeout=300)
        exactly_once(db, sum(sizes.values()))
    return stored_batches


def test_kill_9_during_batched_stdin_stream_fast(tmp_path, small):
    lines = small.read_text().splitlines(keepends=True)[:3 * BATCH + 100]
    source = tmp_path / "head.ndjson"
    source.write_text("".join(lines))
    stream_rounds(tmp_path, source, kills=2, max_delay=1.5, seed=random.randrange(10**6))


@pytest.mark.slow
def test_kill_9_during_batched_stdin_stream_slow(tmp_path, big, request):
    started = time.perf_counter()  # kill within the time a whole run takes
    with open(big, "rb") as fp:
        subprocess.run([OHLOG, "ingest", "-q", "--db", tmp_path / "timing.db", "--batch-size",
                        str(BATCH), "-"], stdin=fp, check=True)
    full = time.perf_counter() - started
    seed = random.randrange(10**6)
    batches = stream_rounds(tmp_path, big, kills=10, max_delay=full * 1.05, seed=seed)
    figures(request.config, f"kill -9 x10 of `cat {BIG:,} actions | ohlog ingest --batch-size {BATCH} -` "
            f"({full:.1f}s, seed {seed}): whole batches only, then exactly once; batches stored at the kill: {batches}")


def test_kill_9_leaves_no_process_behind(tmp_path, big):
    """The forked validating worker must not outlive a killed ingest (it would hold the
    database and the caller's stdout/stderr open for ever)."""
    db = tmp_path / "orphan.db"
    proc = subprocess.Popen([OHLOG, "ingest", "--db", db, big],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while len(strays(str(db))) < 2 and time.monotonic() < deadline:  # the worker has started
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert lingering(str(db)) == 0
    finally:
        reap_strays(str(db))
