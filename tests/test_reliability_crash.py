"""Issue 4.1, crash atomicity: kill -9 an ingest at every phase of its work.

An ingest is watched from outside, with no hook in ohlog: its validating
worker process (alive while it parses) and its ``-wal`` file, read as SQLite
writes it (a commit frame says the transaction is durable; a main database
file smaller than that commit says its checkpoint has not finished). Each
round aims at one phase, stops the process there with SIGSTOP, names the
phase the frozen process is in, then kills it with SIGKILL. The phases:

- ``start``: before the validating worker is forked (imports, opening the
  database, the first chunk of lines);
- ``parse``: the worker validates while the main process inserts rows;
- ``index build`` (into an empty table: the secondary indexes are built once
  at the end, then COMMIT) or ``last write`` (into a table holding data: the
  last rows, then COMMIT): the worker is gone, no commit in the WAL yet;
- ``checkpoint``: the commit is in the WAL, not yet all copied into the file;
- ``exit``: checkpointed, the process is closing.

After each kill: ``PRAGMA integrity_check`` is ok, the schema is whole (a
bulk load drops and rebuilds indexes inside its transaction), the input's
actions are all there (the kill came after the commit) or none are (before
it), and re-running the same ingest ends with every action exactly once.
"""

import json
import os
import pathlib
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
SMALL = 40_000  # the same, for the fast version (still the worker's path: 7 chunks of lines)
BATCH = 500  # sessions, for the stdin stream
POLL = 0.002  # seconds between two looks at a running ingest
DEADLINE = 300  # seconds any one wait may take before the test fails
# The phases in the order they come; "index build" (into an empty table) and
# "last write" (into one holding data) are the same step of the two kinds of ingest.
RANK = {"start": 0, "parse": 1, "index build": 2, "last write": 2, "checkpoint": 3, "exit": 4}
COMMITTED = {"checkpoint", "exit", "finished"}  # a kill from here on must leave every action


class Wal:
    """A database's ``-wal`` file, read from outside while SQLite appends to it.

    A WAL file is a 32-byte header, then frames: a 24-byte header and a page.
    A frame belongs to the current log if it carries the header's salt, and it
    ends a transaction (a commit) if it holds the database size in pages.
    """

    def __init__(self, db):
        self.path = db.with_name(db.name + "-wal")
        self.salt, self.offset, self.page_size = None, 32, 0
        self.commits = 0  # commit frames seen (fewer if the log restarted between two looks)
        self.db_pages = 0  # the database size at the last commit seen, in pages

    def look(self):
        try:
            with open(self.path, "rb") as wal:
                header = wal.read(32)
                if len(header) < 32:
                    return
                if header[16:24] != self.salt:  # a new log, or one restarted after a checkpoint
                    self.salt, self.offset = header[16:24], 32
                    self.page_size = int.from_bytes(header[8:12], "big")
                wal.seek(self.offset)
                while len(frame := wal.read(24)) == 24 and frame[8:16] == self.salt:
                    pages = int.from_bytes(frame[4:8], "big")
                    if pages:
                        self.commits, self.db_pages = self.commits + 1, pages
                    self.offset += 24 + self.page_size
                    wal.seek(self.offset)
        except FileNotFoundError:  # not written yet, or removed by the last close
            pass


def _state(pid):
    """The one-letter state of process ``pid`` (R, S, T, Z...), or None if it is gone."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _live_children(pid):
    found = []
    for task in pathlib.Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += (task / "children").read_text().split()
        except OSError:
            continue
    return [kid for kid in found if _state(kid) not in (None, "Z")]


class Ingest:
    """``ohlog ingest`` running in a subprocess, watched from outside."""

    def __init__(self, db, args, bulk, **popen):
        self.db, self.bulk, self.wal = db, bulk, Wal(db)
        self.forked = False
        self.proc = subprocess.Popen([OHLOG, "ingest", "--db", db, *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen)

    def phase(self):
        """The phase the ingest is in (see the module's docstring)."""
        self.wal.look()
        if self.wal.commits:
            size = self.db.stat().st_size
            return "checkpoint" if size < self.wal.db_pages * self.wal.page_size else "exit"
        if _live_children(self.proc.pid):
            self.forked = True
            return "parse"
        if self.forked:
            return "index build" if self.bulk else "last write"
        return "start"

    def timeline(self):
        """Let the ingest finish; how long each phase lasted, in seconds."""
        started, last, durations = time.monotonic(), None, {}
        while self.proc.poll() is None:
            assert time.monotonic() - started < DEADLINE, "the ingest did not finish"
            phase, now = self.phase(), time.monotonic()
            if phase != last:
                durations[phase], last, since = 0.0, phase, now
            durations[phase] = now - since
            time.sleep(POLL)
        assert self.proc.returncode == 0
        return durations

    def kill_in(self, target, dwell):
        """Wait for phase ``target`` (or a later one), stay up to ``dwell`` s while it
        lasts, then stop the process, name its phase and kill -9 it. Returns the
        phase, or "finished" if the ingest ended first."""
        deadline, reached = time.monotonic() + DEADLINE, None
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"no {target} phase within {DEADLINE}s"
            phase, now = self.phase(), time.monotonic()
            if reached is None and RANK[phase] >= RANK[target]:
                reached = now
            if reached is not None and (phase != target or now - reached >= dwell):
                return self.stop_and_kill()
            time.sleep(POLL)
        return "finished"

    def kill_after_commits(self, commits, dwell):
        """Wait until the WAL shows ``commits`` commits, ``dwell`` s more, then stop
        and kill -9 the ingest. Returns the commits seen, or None if it ended first."""
        deadline, reached = time.monotonic() + DEADLINE, None
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"no {commits} commits within {DEADLINE}s"
            self.wal.look()
            if reached is None and self.wal.commits >= commits:
                reached = time.monotonic()
            if reached is not None and time.monotonic() - reached >= dwell:
                return None if self.stop_and_kill() == "finished" else self.wal.commits
            time.sleep(POLL)
        return None

    def stop_and_kill(self):
        pid = self.proc.pid
        os.kill(pid, signal.SIGSTOP)  # still our unreaped child, so the pid is still its
        deadline = time.monotonic() + 30
        while _state(pid) not in ("T", "t", "Z"):  # the signal takes effect asynchronously
            assert time.monotonic() < deadline, "SIGSTOP did not stop the ingest"
            time.sleep(POLL)
        phase = "finished" if _state(pid) == "Z" else self.phase()  # frozen: the phase is exact
        os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        return phase


@pytest.fixture(scope="module")
def big(request):
    return generated(request.config, BIG)


@pytest.fixture(scope="module")
def small(request):
    return generated(request.config, SMALL)


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


def rerun(db, source):
    subprocess.run([OHLOG, "ingest", "-q", "--db", db, source], check=True, timeout=DEADLINE,
                   stdout=subprocess.DEVNULL)


def kill_round(db, source, actions, base, target, dwell, where):
    """One ingest of ``source`` into a fresh database, killed in phase ``target``;
    checks what the kill left and returns the phase the kill landed in."""
    base = fresh_db(db, base)
    reference = schema(db)
    phase = Ingest(db, [source], bulk=not base).kill_in(target, dwell)
    where = f"{where}, aimed at {target}, killed in {phase}"
    assert lingering(str(db)) == 0, where
    assert integrity(db) == "ok", where
    assert schema(db) == reference, where
    assert count(db) - base == (actions if phase in COMMITTED else 0), where
    assert count(db, "user_id = 'ABC123XYZ'") == base, where
    return phase


def targets(base):
    return [p for p in RANK if p != ("index build" if base else "last write")]


def test_kill_9_during_ingest_fast(tmp_path, small):
    """Into an empty database: at least one kill while parsing and one while
    building the indexes, the moment before the commit; then a re-run."""
    seed = random.randrange(10**6)
    rng, db, hit = random.Random(seed), tmp_path / "crash.db", []
    for round_ in range(10):  # a phase missed (too short on a loaded machine) is aimed at again
        wanted = [p for p in ("parse", "index build") if p not in hit]
        if not wanted:
            break
        # The first aim stays a while in the phase; a phase already missed once
        # (the index build of 40k actions lasts tens of ms) is killed on sight.
        dwell = rng.uniform(0, 0.3) if round_ < 2 else 0
        hit.append(kill_round(db, small, SMALL, False, wanted[0], dwell,
                              f"seed {seed}, round {round_}"))
    assert {"parse", "index build"} <= set(hit), f"seed {seed}: the kills landed in {hit}"
    rerun(db, small)
    exactly_once(db, SMALL)


@pytest.mark.slow
def test_kill_9_during_ingest_50_times(tmp_path, big, request):
    # One watched run of each kind says how long each phase lasts, so that
    # the kills aimed at a phase spread over the whole of it.
    durations = {}
    for base in (0, 1):
        fresh_db(tmp_path / "timing.db", base)
        durations[base] = Ingest(tmp_path / "timing.db", [big], bulk=not base).timeline()
    seed = random.randrange(10**6)
    rng, db = random.Random(seed), tmp_path / "crash.db"
    hits = {(base, phase): 0 for base in (0, 1) for phase in [*targets(base), "finished"]}
    for round_ in range(50):
        base = round_ % 2
        target = targets(base)[round_ // 2 % 5]
        dwell = rng.uniform(0, durations[base].get(target, 0))
        phase = kill_round(db, big, BIG, base, target, dwell, f"seed {seed}, round {round_}")
        hits[base, phase] += 1
        rerun(db, big)
        exactly_once(db, (3 if base else 0) + BIG)
    shown = {kind: {p: n for (b, p), n in hits.items() if b == base}
             for base, kind in ((0, "empty"), (1, "holding data"))}
    timing = {kind: {p: round(s, 2) for p, s in durations[base].items()}
              for base, kind in ((0, "empty"), (1, "holding data"))}
    figures(request.config, f"kill -9 x50 during a {BIG:,}-action ingest (seed {seed}), phases "
            f"lasting {timing} s: integrity ok 50/50, all or none 50/50, re-run exactly once "
            f"50/50; kills by phase: {shown}")
    missed = [key for key, n in hits.items() if not n and key[1] != "finished"]
    assert not missed, f"seed {seed}: no kill landed in {missed}: {shown}"


def stream_rounds(tmp_path, source, aims, seed):
    """Pipe ``source`` into ``ohlog ingest - --batch-size`` and kill it once the WAL
    shows each number of commits in ``aims`` (plus a random part of a batch's time):
    whole batches only, at least the ones seen committed. Returns the batches stored."""
    sessions = [json.loads(line) for line in source.read_text().splitlines()]
    order = [doc["sessionId"] for doc in sessions]
    sizes = {doc["sessionId"]: len(doc["actions"]) for doc in sessions}
    rng = random.Random(seed)
    db = tmp_path / "stream.db"
    stored_batches = []
    for round_, (commits, dwell) in enumerate(aims):
        fresh_db(db, base=False)
        cat = subprocess.Popen(["cat", source], stdout=subprocess.PIPE)
        ingest = Ingest(db, ["--batch-size", str(BATCH), "-"], bulk=True, stdin=cat.stdout)
        cat.stdout.close()
        seen = ingest.kill_after_commits(commits, rng.uniform(0, dwell))
        cat.wait(timeout=DEADLINE)  # a broken pipe ends it
        where = f"seed {seed}, round {round_}, killed after {seen} commits seen"
        assert lingering(str(db)) == 0, where
        assert integrity(db) == "ok", where
        with sqlite3.connect(db) as conn:
            per_session = dict(conn.execute("SELECT session_id, count(*) FROM actions GROUP BY 1"))
        done = len(per_session)
        assert done % BATCH == 0 or done == len(order), where
        assert set(per_session) == set(order[:done]), where  # the first batches, in order
        assert all(per_session[s] == sizes[s] for s in per_session), where  # whole sessions
        batches = -(-done // BATCH)
        assert seen is None or batches >= seen, where  # no commit seen is lost
        stored_batches.append(batches)
        with open(source, "rb") as fp:
            subprocess.run([OHLOG, "ingest", "-q", "--db", db, "--batch-size", str(BATCH), "-"],
                           stdin=fp, check=True, timeout=DEADLINE)
        exactly_once(db, sum(sizes.values()))
    return stored_batches


def test_kill_9_during_batched_stdin_stream_fast(tmp_path, small):
    lines = small.read_text().splitlines(keepends=True)[:3 * BATCH + 100]
    source = tmp_path / "head.ndjson"
    source.write_text("".join(lines))
    batches = stream_rounds(tmp_path, source, [(0, 0.0), (2, 0.05)], seed=random.randrange(10**6))
    assert batches[1] >= 2  # the second kill came after two commits


@pytest.mark.slow
def test_kill_9_during_batched_stdin_stream_slow(tmp_path, big, request):
    started = time.perf_counter()
    with open(big, "rb") as fp:
        subprocess.run([OHLOG, "ingest", "-q", "--db", tmp_path / "timing.db", "--batch-size",
                        str(BATCH), "-"], stdin=fp, check=True, timeout=DEADLINE)
    full = time.perf_counter() - started
    total = -(-len(big.read_text().splitlines()) // BATCH)
    seed = random.randrange(10**6)
    aims = [(total * k // 10, full / total) for k in range(10)]  # from before the first commit on
    batches = stream_rounds(tmp_path, big, aims, seed=seed)
    figures(request.config, f"kill -9 x10 of `cat {BIG:,} actions | ohlog ingest --batch-size {BATCH} -` "
            f"({full:.1f}s, {total} batches, seed {seed}), aimed after "
            f"{[a for a, _ in aims]} commits: "
            f"whole batches only, then exactly once; batches stored at the kill: {batches}")


def test_kill_9_leaves_no_process_behind(tmp_path, big):
    """The forked validating worker must not outlive a killed ingest (it would hold the
    database and the caller's stdout/stderr open for ever)."""
    db = tmp_path / "orphan.db"
    fresh_db(db, base=False)
    ingest = Ingest(db, [big], bulk=True)
    try:
        assert ingest.kill_in("parse", 0) == "parse"  # the worker is running
        assert lingering(str(db)) == 0
    finally:
        reap_strays(str(db))
