"""Issue 4.2, concurrency: 4, then 8, ingest processes at once while 2 query in a loop.

Each input is made of blocks of sessions, one user a block: a private block
of its own and blocks it shares with other inputs (and, in the second round,
with inputs already stored). Every session has one MARK action, so a reader's
``ohlog query --type MARK`` counts the sessions of each block in one snapshot.
A reader must only ever see whole inputs: every block empty or full, and the
full blocks exactly the blocks of the inputs whose private block is there.
"""

import gzip
import json
import subprocess
import threading
import time
from collections import Counter

import pytest

from .test_reliability_common import OHLOG, count, figures, integrity

SHAPES = ("ndjson", "array", "pretty", "gz")


def block(name, sessions, actions):
    return [{"userId": name, "sessionId": f"{name}-{s}", "actions": [
        {"time": f"2018-10-18T{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}.{a:06d}Z",
         "type": "MARK" if a == 0 else "VIEW", "properties": {"viewedId": f"{name}-{a}"}}
        for a in range(actions)]} for s in range(sessions)]


def write_input(path, docs, shape):
    if shape == "array":
        data = json.dumps(docs).encode()
    elif shape == "pretty":
        data = "".join(json.dumps(d, indent=2) + "\n" for d in docs).encode()
    else:
        data = "".join(json.dumps(d) + "\n" for d in docs).encode()
    if shape == "gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def plan(round_, writers, earlier):
    """The blocks of each input: its own, two shared in a ring, one from the earlier round."""
    inputs = {}
    for i in range(writers):
        blocks = [f"r{round_}-own{i}", f"r{round_}-ring{i}", f"r{round_}-ring{(i + 1) % writers}"]
        if earlier:
            blocks.append(earlier[i % len(earlier)])
        inputs[f"r{round_}-in{i}"] = blocks
    return inputs


class Readers:
    """Two threads, each running ``ohlog query --type MARK`` in a loop and checking every snapshot."""

    def __init__(self, db, sessions, inputs):
        self.db, self.sessions, self.inputs = db, sessions, inputs  # input -> its blocks
        self.stop = threading.Event()
        self.snapshots = self.partial = 0
        self.failures, self.missing_db = [], 0
        self.threads = [threading.Thread(target=self.loop) for _ in range(2)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def loop(self):
        committed = set()
        while not self.stop.is_set():
            proc = subprocess.run([OHLOG, "query", "--db", self.db, "--type", "MARK", "--nl"],
                                  capture_output=True, timeout=120)
            if proc.returncode:
                if b"No database found" in proc.stderr and not self.snapshots:
                    self.missing_db += 1  # readers may start before the writers create the file
                else:
                    self.failures.append(proc.stderr.decode())
                continue
            seen = Counter(json.loads(line)["userId"] for line in proc.stdout.splitlines())
            try:
                committed = self.check(seen, committed)
            except AssertionError as ex:
                self.failures.append(str(ex))
            self.stop.wait(0.25)  # leave the writers most of the 2 cores

    def check(self, seen, before):
        """The inputs this snapshot holds; raises AssertionError if it holds part of one."""
        assert all(n == self.sessions for n in seen.values()), f"a block cut short: {seen}"
        now = {i for i, blocks in self.inputs.items() if blocks[0] in seen}
        expected = {b for i in now for b in self.inputs[i]}
        assert set(seen) == expected, f"half an input: {sorted(set(seen) ^ expected)}"
        assert before <= now, "an input seen, then gone"
        self.snapshots += 1
        self.partial += 0 < len(now) < len(self.inputs)
        return now


def write_inputs(tmp_path, inputs, sessions, actions):
    return [write_input(tmp_path / f"{name}.{SHAPES[i % 4]}",
                        [doc for b in blocks for doc in block(b, sessions, actions)], SHAPES[i % 4])
            for i, (name, blocks) in enumerate(inputs.items())]


def run_writers(tmp_path, db, paths):
    """Ingest every path at once, one process each; all must succeed, none see "locked"."""
    errors = [path.with_suffix(".err") for path in paths]
    started = time.perf_counter()
    procs = [subprocess.Popen([OHLOG, "ingest", "--db", db, path], stderr=open(err, "wb"))
             for path, err in zip(paths, errors)]
    codes = [proc.wait(timeout=600) for proc in procs]
    elapsed = time.perf_counter() - started
    stderr = [err.read_text() for err in errors]
    assert codes == [0] * len(paths), stderr
    assert not any("locked" in text for text in stderr), stderr
    return elapsed


def concurrent_rounds(tmp_path, sessions, actions):
    db = tmp_path / "shared.db"
    first = plan(1, 4, [])
    stored = sorted({b for blocks in first.values() for b in blocks})
    second = plan(2, 8, stored)
    paths = (write_inputs(tmp_path, first, sessions, actions),
             write_inputs(tmp_path, second, sessions, actions))
    readers = Readers(db, sessions, {**first, **second})
    with readers:
        seconds = [run_writers(tmp_path, db, round_paths) for round_paths in paths]
        snapshots, deadline = readers.snapshots, time.monotonic() + 120
        while readers.snapshots < snapshots + 2 and not readers.failures:  # a look at the end
            assert time.monotonic() < deadline, "the readers took no snapshot at the end in 120s"
            time.sleep(0.05)
    all_blocks = {b for blocks in readers.inputs.values() for b in blocks}
    assert readers.failures == []
    assert integrity(db) == "ok"
    assert count(db) == len(all_blocks) * sessions * actions
    assert count(db, "type = 'MARK'") == len(all_blocks) * sessions
    return readers, seconds


def test_4_then_8_writers_with_2_readers(tmp_path):
    readers, _ = concurrent_rounds(tmp_path, sessions=40, actions=10)
    assert readers.snapshots >= 2


def test_the_readers_check_catches_half_an_input():
    readers = Readers("unused.db", 2, plan(2, 8, ["r1-own0"]))
    whole = Counter({b: 2 for b in readers.inputs["r2-in3"]})
    assert readers.check(whole, set()) == {"r2-in3"}
    for half in (whole - Counter({"r2-ring4": 2}), whole - Counter({"r1-own0": 1})):
        with pytest.raises(AssertionError):
            readers.check(half, set())
    with pytest.raises(AssertionError, match="seen, then gone"):
        readers.check(Counter(), {"r2-in3"})


@pytest.mark.slow
def test_4_then_8_writers_with_2_readers_slow(tmp_path, request):
    # 5,000 sessions an input: NDJSON inputs take the validating-worker path
    readers, seconds = concurrent_rounds(tmp_path, sessions=1250, actions=12)
    figures(request.config, f"4 writers ({seconds[0]:.1f}s) then 8 writers ({seconds[1]:.1f}s), "
            f"{4 * 3 * 1250 * 12:,} / {8 * 4 * 1250 * 12:,} actions sent, 2 readers: "
            f"{readers.snapshots} snapshots ({readers.partial} with some inputs but not all), "
            f"0 half inputs, 0 locked, 0 non-zero exits, final count exact")


def _open_new(path, barrier, results):
    from openhouse_cli.store.sqlite import open_conn

    barrier.wait()
    try:
        open_conn(path).close()
        results.put("ok")
    except Exception as ex:  # reported to the test, which names it
        results.put(repr(ex))


def test_many_processes_opening_one_new_database_all_succeed(tmp_path):
    """Six processes creating the same new database at once: each waits for the
    others (switching to WAL once failed at once with 'database is locked')."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for round_ in range(16):
        path = str(tmp_path / f"new-{round_}.db")
        barrier, results = context.Barrier(6), context.Queue()
        procs = [context.Process(target=_open_new, args=(path, barrier, results)) for _ in range(6)]
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for proc in procs:
            proc.join(timeout=120)
        assert outcomes == ["ok"] * 6, f"round {round_}: {outcomes}"
