#!/usr/bin/env python3
"""Benchmark ``ohlog ingest`` against a minimal reference loader and sqlite-utils.

    .venv/bin/python benchmarks/bench_ingest.py [--actions N] [--format ndjson|array] [--repeat R] [--memory]

Each tool runs as a whole process into a fresh database, on the same
generated NDJSON file (or, with ``--format array``, one JSON array) (benchmarks/data/, generated once and reused), the
tools interleaved run by run; reported are the median wall time of
``--repeat`` runs, actions/s, and the peak RSS of the child process
(``os.wait4``'s ru_maxrss, taken in a small launcher process, see
LAUNCHER), worst of its runs, and the CPU seconds of the tool's processes
(user and system, its worker included: ``wait4`` counts the descendants a
process reaped).

  ohlog         ``ohlog ingest FILE --db DB --quiet`` (the ohlog next to sys.executable)
  reference     ``benchmarks/reference_loader.py FILE DB`` (orjson, fromisoformat,
                one executemany, indexes built after; the current schema's
                columns, a constant fingerprint; an array is read whole)
  sqlite-utils  ``sqlite-utils insert DB actions FLAT.ndjson --nl`` of the
                actions already flattened to rows (flattening untimed); no indexes
  ohlog-bare    ohlog's ingest with the summaries' tally switched off
                (``benchmarks/ohlog_without_summaries.py``): what the summaries
                cost, measured beside the rest; its database has no summaries

CPU seconds set a floor no scheduling can beat: on C cores a tool whose
processes spend S CPU seconds cannot finish in under S / C seconds. The
report prints that floor for ohlog against the reference's wall time.

``--memory`` also generates 10M-action NDJSON and JSON-array files (~1.1 GB
each; slow) and reports ohlog's peak RSS and time on each.

Targets: ohlog time <= 1.0x reference; ohlog peak RSS <= 100 MiB.
Exit status 0, unless ``--check`` and a target is missed or ohlog failed.
"""

import argparse
import os
import pathlib
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import orjson

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import generate  # noqa: E402
import reference_loader  # noqa: E402

TARGET_TIME_RATIO = 1.0
TARGET_RSS_MIB = 100
MEMORY_ACTIONS = 10_000_000


# --- data ------------------------------------------------------------------

def data_file(data_dir, n, fmt, seed):
    """The generated file for (n, fmt, seed), generated now unless already there."""
    ext = {"ndjson": "ndjson", "array": "json", "pretty": "pretty.json"}[fmt]
    path = data_dir / f"actions-{n}-s{seed}-v{generate.VERSION}.{ext}"
    if not path.exists():
        print(f"generating {path.name} ({n:,} actions, {fmt}) ...", end=" ", flush=True)
        t = time.perf_counter()
        partial = path.with_name(path.name + ".partial")
        generate.write(partial, n, fmt, seed)
        os.replace(partial, path)
        print(f"{time.perf_counter() - t:.1f}s")
    return path


def flat_file(data_dir, source, n, seed):
    """One JSON row per action, the actions table's columns, for sqlite-utils."""
    path = data_dir / f"flat-{n}-s{seed}-v{generate.VERSION}.ndjson"
    if not path.exists():
        print(f"flattening into {path.name} ...", end=" ", flush=True)
        t = time.perf_counter()
        partial = path.with_name(path.name + ".partial")
        cols = reference_loader.COLUMNS
        with open(partial, "wb", buffering=1 << 20) as out:
            for row in reference_loader.rows(source):
                # (bytes, the fingerprint, as hex text: JSON has no bytes)
                out.write(orjson.dumps(dict(zip(cols, row)), default=bytes.hex))
                out.write(b"\n")
        os.replace(partial, path)
        print(f"{time.perf_counter() - t:.1f}s")
    return path


def warm(path):
    """Read a file once, untimed, so every tool starts with it in the page cache."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


# --- running ---------------------------------------------------------------

class Result:
    def __init__(self, name):
        self.name = name
        self.walls = []
        self.cpus = []  # CPU seconds of the tool's processes, user and system
        self.rss_kib = []
        self.error = None
        self.warnings = []
        self.detail = None
        self.tree_kib = []  # sampled peak PSS sum over the process tree
        self.procs = 0  # most processes seen at once

    @property
    def ok(self):
        return self.error is None and bool(self.walls)

    @property
    def median(self):
        return statistics.median(self.walls)

    @property
    def cpu_median(self):
        return statistics.median(self.cpus)

    @property
    def peak_mib(self):
        return max(self.rss_kib) / 1024

    @property
    def tree_mib(self):
        return max(self.tree_kib) / 1024

    @property
    def memory_mib(self):
        """What the RSS target is judged on: the larger of the two measures."""
        return max(self.peak_mib, self.tree_mib)


def remove_db(db):
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(f"{db}{suffix}")
        except FileNotFoundError:
            pass


# Children are started by this small launcher, itself started afresh, not
# forked from this process: Linux charges a process's ru_maxrss with the RSS
# of the process image that exec replaced, so a child forked from this
# (larger) Python would report at least this process's RSS. The launcher's
# own image is ~8 MiB, less than any tool's. It times fork to wait4 and hands
# back wall seconds, ru_maxrss (KiB) and the wait status.
LAUNCHER = """
import os, sys, time
report, argv = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(argv[0], argv)
    finally:
        os.write(2, b"launcher: cannot run " + argv[0].encode() + b"\\n")
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(report, "w") as f:
    f.write("%r %d %d %r" % (wall, ru.ru_maxrss, status, ru.ru_utime + ru.ru_stime))
"""


class TreeSampler(threading.Thread):
    """Samples the summed PSS of a process's descendants, for multi-process tools.

    ru_maxrss is the peak of the largest single process (a reaped child's
    counts as its parent's if larger), never a sum: a tool that runs a worker
    process next to its main one uses more than that. PSS shares pages that
    several processes map (forked copy-on-write pages, libraries) among them,
    so the sum is the tree's real footprint. Sampled every ``interval``
    seconds, so a short spike can be missed.
    """

    def __init__(self, root, interval=0.1):
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.peak_kib = 0
        self.max_procs = 0
        self._halt = threading.Event()

    def run(self):
        while not self._halt.wait(self.interval):
            pids = _descendants(self.root)
            total = sum(_pss_kib(pid) for pid in pids)
            self.peak_kib = max(self.peak_kib, total)
            self.max_procs = max(self.max_procs, len(pids))

    def stop(self):
        self._halt.set()
        self.join()


def _descendants(root):
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


def _pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_child(cmd, timeout):
    """Run ``cmd``; return (wall seconds, ru_maxrss KiB, exit code, output tail, TreeSampler, CPU seconds)."""
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as report:
        launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, report.name, *cmd]
        # Its own session, so that a timeout kills the launcher and the tool.
        proc = subprocess.Popen(launcher, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        timer = threading.Timer(timeout, _kill_group, (proc.pid,))
        timer.start()
        sampler = TreeSampler(proc.pid)
        sampler.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
            sampler.stop()
        out.seek(0)
        tail = out.read()[-4000:].decode("utf-8", "replace").strip()
        fields = report.read().split()
    if len(fields) != 4:
        why = "killed after the %.0fs timeout" % timeout if proc.returncode == -9 else "launcher failed"
        return None, None, proc.returncode, (why + "\n" + tail).strip(), sampler, None
    wall, rss, status, cpu = float(fields[0]), int(fields[1]), int(fields[2]), float(fields[3])
    return wall, rss, os.waitstatus_to_exitcode(status), tail, sampler, cpu


def _kill_group(pgid):
    try:
        os.killpg(pgid, 9)
    except ProcessLookupError:
        pass


def count_rows(db):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM actions").fetchone()[0]
    finally:
        conn.close()


def run_once(result, cmd, db, expected, timeout):
    """One timed run of ``cmd`` into a fresh ``db``, recorded in ``result``."""
    if cmd is None:
        return
    remove_db(db)
    try:
        try:
            wall, rss, code, tail, sampler, cpu = run_child(cmd, timeout)
        except OSError as ex:
            result.error = f"cannot run {cmd[0]}: {ex.strerror}"
            return
        if code != 0:
            last = tail.splitlines()[-1] if tail else "(no output)"
            result.error = f"exit status {code}: {last}"
            result.detail = tail
            return
        result.walls.append(wall)
        result.cpus.append(cpu)
        result.rss_kib.append(rss)
        result.tree_kib.append(sampler.peak_kib)
        result.procs = max(result.procs, sampler.max_procs)
        try:
            rows = count_rows(db)
        except sqlite3.Error as ex:
            rows = f"unreadable ({ex})"
        if rows != expected:
            msg = f"WARNING: {result.name}: {rows} rows in the database, {expected:,} actions generated"
            result.warnings.append(msg)
            print(msg, flush=True)
    finally:
        remove_db(db)


def tool_path(name):
    """The console script ``name`` next to sys.executable (the venv's), else None."""
    path = pathlib.Path(sys.executable).parent / name
    return str(path) if path.exists() else None


def commands(tools, source, flat, db_dir, su_batch_size):
    """{tool: (argv or None, db path, error if it cannot run)}."""
    out = {}
    for name in tools:
        db = db_dir / f"{name}.db"
        if name == "ohlog":
            exe = tool_path("ohlog")
            if exe is None:
                out[name] = (None, db, f"no ohlog next to {sys.executable}")
            else:
                out[name] = ([exe, "ingest", str(source), "--db", str(db), "--quiet"], db, None)
        elif name == "ohlog-bare":
            out[name] = ([sys.executable, str(HERE / "ohlog_without_summaries.py"), "ingest", str(source),
                          "--db", str(db), "--quiet"], db, None)
        elif name == "reference":
            out[name] = ([sys.executable, str(HERE / "reference_loader.py"), str(source), str(db)], db, None)
        elif name == "sqlite-utils":
            exe = tool_path("sqlite-utils") or shutil.which("sqlite-utils")
            if exe is None:
                out[name] = (None, db, "no sqlite-utils found")
            else:
                cmd = [exe, "insert", str(db), "actions", str(flat), "--nl"]
                if su_batch_size:
                    cmd += ["--batch-size", str(su_batch_size)]
                out[name] = (cmd, db, None)
    return out


# --- reporting -------------------------------------------------------------

def fmt_row(name, r, n):
    if not r.ok:
        return f"  {name:<14} FAILED: {r.error}"
    runs = " ".join(f"{w:.2f}" for w in r.walls)
    cpus = " ".join(f"{c:.2f}" for c in r.cpus)
    return (f"  {name:<14} {r.median:>9.2f} {r.cpu_median:>7.2f} {n / r.median:>12,.0f} {r.peak_mib:>13.1f} "
            f"{r.tree_mib:>13.1f} {r.procs:>6}   {runs}   (CPU {cpus})")


def header():
    return (f"  {'tool':<14} {'wall s':>9} {'CPU s':>7} {'actions/s':>12} {'peak RSS MiB':>13} "
            f"{'tree PSS MiB':>13} {'procs':>6}   runs (s)")


LEGEND = """\
  CPU s: user and system seconds of the tool's processes (median).
  peak RSS: ru_maxrss from wait4, the largest single process (worst run).
  tree PSS: peak of the summed PSS of all the tool's processes, sampled every
            0.1s (worst run); procs: most processes seen at once."""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--actions", type=int, default=1_000_000, metavar="N")
    p.add_argument("--format", choices=["ndjson", "array"], default="ndjson",
                   help="input shape: NDJSON, or one JSON array of sessions")
    p.add_argument("--repeat", type=int, default=3, metavar="R", help="runs of each tool (median reported)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--memory", action="store_true",
                   help=f"also run ohlog on {MEMORY_ACTIONS:,}-action NDJSON and JSON-array files (slow)")
    p.add_argument("--memory-actions", type=int, default=MEMORY_ACTIONS, metavar="N", help=argparse.SUPPRESS)
    p.add_argument("--tools", default="ohlog,reference,sqlite-utils",
                   help="comma-separated subset of ohlog,ohlog-bare,reference,sqlite-utils")
    p.add_argument("--sqlite-utils-batch-size", type=int, metavar="B",
                   help="pass --batch-size B to sqlite-utils (its default commits every 100 rows)")
    p.add_argument("--data-dir", type=pathlib.Path, default=HERE / "data")
    p.add_argument("--timeout", type=float, default=1800, help="seconds before a run is killed")
    p.add_argument("--check", action="store_true", help="exit 1 if ohlog fails or misses a target")
    args = p.parse_args(argv)

    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - {"ohlog", "ohlog-bare", "reference", "sqlite-utils"}
    if unknown:
        p.error(f"unknown tools: {', '.join(sorted(unknown))}")
    args.data_dir.mkdir(parents=True, exist_ok=True)
    db_dir = pathlib.Path(tempfile.mkdtemp(prefix="dbs-", dir=args.data_dir))
    try:
        return _bench(args, tools, db_dir)
    finally:
        shutil.rmtree(db_dir, ignore_errors=True)


def _bench(args, tools, db_dir):
    n = args.actions
    print(f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    source = data_file(args.data_dir, n, args.format, args.seed)
    flat = flat_file(args.data_dir, source, n, args.seed) if "sqlite-utils" in tools else None
    warm(source)
    if flat:
        warm(flat)

    cmds = commands(tools, source, flat, db_dir, args.sqlite_utils_batch_size)
    results = {name: Result(name) for name in tools}
    for name, (_, _, error) in cmds.items():
        results[name].error = error
    for i in range(args.repeat):
        for name in tools:
            r = results[name]
            if r.error:
                continue
            cmd, db, _ = cmds[name]
            run_once(r, cmd, db, n, args.timeout)
            status = f"{r.walls[-1]:.2f}s" if r.error is None else "FAILED"
            print(f"  run {i + 1}/{args.repeat} {name}: {status}", flush=True)

    size_mb = source.stat().st_size / 1e6
    print()
    shape = "NDJSON" if args.format == "ndjson" else "one JSON array"
    print(f"ingest of {n:,} actions ({size_mb:.0f} MB, {shape}), median of {args.repeat} "
          f"run(s), fresh database each; load average {os.getloadavg()[0]:.2f} at end")
    print(header())
    for name in tools:
        print(fmt_row(name, results[name], n))
    print(LEGEND)
    oh = results.get("ohlog")
    if oh is not None and not oh.ok and oh.detail:
        print("\n  ohlog's output (last lines):")
        for line in oh.detail.splitlines()[-8:]:
            print(f"    {line}")

    print()
    ref, su, bare = results.get("reference"), results.get("sqlite-utils"), results.get("ohlog-bare")
    for other in (ref, su, bare):
        if other is None:
            continue
        if oh is not None and oh.ok and other.ok:
            print(f"  ohlog / {other.name:<12}  time {oh.median / other.median:5.2f}x   "
                  f"CPU {oh.cpu_median / other.cpu_median:5.2f}x   "
                  f"peak RSS {oh.peak_mib / other.peak_mib:5.2f}x   "
                  f"tree PSS {oh.tree_mib / other.tree_mib:5.2f}x")
        else:
            print(f"  ohlog / {other.name:<12}  n/a")
    cores = os.cpu_count() or 1
    for mine in (oh, bare):
        if mine is not None and mine.ok and ref is not None and ref.ok:
            floor = mine.cpu_median / cores
            print(f"  {mine.name} spends {mine.cpu_median:.2f} CPU s: on {cores} cores it cannot finish"
                  f" in under {floor:.2f} s, {floor / ref.median:.2f}x the reference's {ref.median:.2f} s")

    # --memory: ohlog alone on 10M actions, NDJSON and one JSON array.
    mem = []
    if args.memory:
        m = args.memory_actions
        print(f"\nmemory: ohlog on {m:,} actions, one run each")
        if oh is None or cmds["ohlog"][0] is None:
            print("  skipped: ohlog not available")
        else:
            for fmt in ("ndjson", "array"):
                path = data_file(args.data_dir, m, fmt, args.seed)
                warm(path)
                r = Result(f"ohlog {fmt}")
                db = db_dir / "memory.db"
                run_once(r, [cmds["ohlog"][0][0], "ingest", str(path), "--db", str(db), "--quiet"],
                         db, m, args.timeout)
                mem.append(r)
            print(header())
            for r in mem:
                print(fmt_row(r.name, r, m))
                if not r.ok and r.detail:
                    for line in r.detail.splitlines()[-5:]:
                        print(f"    {line}")

    # Verdict.
    print()
    failed = False
    if oh is None:
        print("VERDICT: ohlog not run (--tools)")
        return 0
    if not oh.ok:
        print(f"VERDICT: FAIL: ohlog did not run ({oh.error})")
        return 1 if args.check else 0
    parts = []
    if ref is not None and ref.ok:
        ratio = oh.median / ref.median
        ok = ratio <= TARGET_TIME_RATIO
        failed |= not ok
        parts.append(f"time {ratio:.2f}x reference (target <= {TARGET_TIME_RATIO:.1f}x) "
                     f"{'PASS' if ok else 'FAIL'}")
    else:
        parts.append("time vs reference n/a")
    peak = max([oh.memory_mib] + [r.memory_mib for r in mem if r.ok])
    where = "" if not mem else f" over {n:,} and {args.memory_actions:,} actions"
    ok = peak <= TARGET_RSS_MIB
    failed |= not ok
    parts.append(f"peak memory {peak:.1f} MiB{where} (larger of peak RSS and tree PSS; "
                 f"target <= {TARGET_RSS_MIB} MiB) {'PASS' if ok else 'FAIL'}")
    if any(not r.ok for r in mem):
        failed = True
        parts.append("a --memory run FAILED")
    if oh.warnings or any(r.warnings for r in mem):
        failed = True
        parts.append("row counts WRONG")
    word = "FAIL" if failed else ("PASS" if ref is not None and ref.ok else "INCOMPLETE")
    print(f"VERDICT: {word}: ohlog " + "; ".join(parts))
    return 1 if (failed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
