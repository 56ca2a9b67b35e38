#!/usr/bin/env python3
"""Benchmark ``ohlog query`` on a 10M-action database, with DuckDB as the comparison.

    .venv/bin/python benchmarks/bench_query.py [--actions N] [--repeat R]
                                               [--no-full] [--no-duckdb] [--check]

The database is built once by ``benchmarks/generate.py | ohlog ingest -``
into benchmarks/data/query-N-sSEED-vVERSION.db and reused; the DuckDB copy
(benchmarks/data/...duckdb) is loaded once from it through a CSV file.
Every figure is the median of its runs on a warm page cache. Targets
(issue 3, "Speed"):

  selective     one user, one type, one month (a wall-clock --date 2018-06)
                through query_actions in-process, all rows as dicts   <= 2 ms
  start-up      the whole ``ohlog query <selective> --json`` process
                against the whole ``ohlog --version`` process         <= 1.3x
  month NDJSON  ``ohlog query --type CLICK --date 2018-06 --nl``
                (~400k rows) to /dev/null, whole process             >= 200k rows/s
  full export   all 10M actions as NDJSON and as JSON: peak RSS      <= 100 MiB

DuckDB (``pip install duckdb``) runs the same queries on the same rows:
in-process for the selective query and the month export (COPY ... FORMAT
JSON), and as a whole ``python -c "import duckdb; ..."`` process, which is
what a user would compare ``ohlog query`` with. DuckDB has no index on these
columns; it scans its column zone maps.

Exit status 0, unless ``--check`` and a target is missed.
"""

import argparse
import csv
import os
import pathlib
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import generate  # noqa: E402

from openhouse_cli.query import count_actions, open_for_query, query_actions  # noqa: E402
from openhouse_cli.times import parse_time_spec, resolve_bound  # noqa: E402

BIN = pathlib.Path(sys.executable).parent
OHLOG = str(BIN / "ohlog")
MONTH = "2018-06"
# Child processes may cache bytecode, as an installed ohlog does (pip compiles
# it at install time); with PYTHONDONTWRITEBYTECODE set, every run would
# compile ohlog's own modules again (~15 ms for the query modules alone).
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
TARGETS = {"selective_ms": 2.0, "startup_ratio": 1.3, "ndjson_rows_s": 200_000, "rss_mib": 100}


def build_db(data_dir, n, seed):
    path = data_dir / f"query-{n}-s{seed}-v{generate.VERSION}.db"
    if path.exists():
        return path
    print(f"building {path.name} ({n:,} actions; slow, once) ...", flush=True)
    started = time.perf_counter()
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    gen = subprocess.Popen([sys.executable, str(HERE / "generate.py"), "-", "--actions", str(n),
                            "--seed", str(seed)], stdout=subprocess.PIPE, env=CHILD_ENV)
    subprocess.run([OHLOG, "ingest", "-", "--db", str(partial), "-q"], stdin=gen.stdout, check=True)
    gen.stdout.close()
    if gen.wait():
        sys.exit("generate.py failed")
    os.replace(partial, path)
    print(f"  built in {time.perf_counter() - started:.0f}s")
    return path


def pick_users(conn):
    """The user of median activity (the typical selective query) and the most active one."""
    counts = conn.execute(
        "SELECT user_id, count(*) FROM actions INDEXED BY actions_user_type_time"
        " GROUP BY user_id ORDER BY 2, 1").fetchall()
    return counts[len(counts) // 2], counts[-1]


def median_time(fn, repeat):
    fn()  # warm up
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def run_process(args, stdout=subprocess.DEVNULL):
    """Wall time and peak RSS (MiB) of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=stdout, stderr=subprocess.PIPE, env=CHILD_ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"{' '.join(args)} failed: {proc.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss / 1024


def median_process(args, repeat):
    runs = [run_process(args) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def duckdb_copy(sqlite_path, data_dir):
    import duckdb

    path = data_dir / (sqlite_path.stem + ".duckdb")
    if path.exists():
        return path
    print(f"loading {path.name} from the SQLite database (once) ...", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=data_dir) as tmp:
        dump = pathlib.Path(tmp) / "actions.csv"
        conn = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
        with open(dump, "w", newline="") as out:
            csv.writer(out).writerows(conn.execute(
                "SELECT id, user_id, session_id, time, utc_us, local_us, type, properties FROM actions"))
        partial = path.with_name(path.name + ".partial")
        partial.unlink(missing_ok=True)
        con = duckdb.connect(str(partial))
        con.execute(
            "CREATE TABLE actions AS SELECT * FROM read_csv(?, header=false, columns={"
            "'id': 'BIGINT', 'user_id': 'VARCHAR', 'session_id': 'VARCHAR', 'time': 'VARCHAR',"
            "'utc_us': 'BIGINT', 'local_us': 'BIGINT', 'type': 'VARCHAR', 'properties': 'VARCHAR'})",
            [str(dump)])
        con.close()
        os.replace(partial, path)
    print(f"  loaded in {time.perf_counter() - started:.0f}s")
    return path


DUCK_SELECTIVE = (
    "SELECT user_id, session_id, time, type, properties FROM actions"
    " WHERE user_id = ? AND lower(type) = 'click' AND local_us BETWEEN ? AND ? ORDER BY utc_us, id"
)
DUCK_MONTH = (
    "COPY (SELECT user_id AS userId, session_id AS sessionId, time, type, json(properties) AS properties"
    " FROM actions WHERE lower(type) = 'click' AND local_us BETWEEN {} AND {} ORDER BY utc_us, id)"
    " TO '{}' (FORMAT JSON)"
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--actions", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=20, help="runs per figure (in-process: 5x)")
    parser.add_argument("--data", type=pathlib.Path, default=HERE / "data")
    parser.add_argument("--no-full", action="store_true", help="skip exporting every action")
    parser.add_argument("--no-duckdb", action="store_true")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    db_path = build_db(args.data, args.actions, args.seed)
    conn = open_for_query(db_path)
    (user, user_actions), (heavy, heavy_actions) = pick_users(conn)
    spec = parse_time_spec(MONTH)
    start, end = resolve_bound(spec), resolve_bound(spec, end=True)
    selective = dict(users=[user], types=["CLICK"], start=start, end=end)
    print(f"ohlog query benchmark: {count_actions(conn):,} actions, {db_path.stat().st_size / 2**20:,.0f} MiB;"
          f" Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {platform.machine()},"
          f" {os.cpu_count()} CPUs")
    print(f"selective query: user {user} ({user_actions:,} actions), CLICK, --date {MONTH} (wall clock)\n")
    results = {}

    # 1. selective, in-process
    rows = len(list(query_actions(conn, **selective)))
    t = median_time(lambda: list(query_actions(conn, **selective)), args.repeat * 5)
    results["selective_ms"] = t * 1000
    print(f"selective in-process      {t * 1000:8.3f} ms  ({rows} rows)   target <= {TARGETS['selective_ms']} ms")
    heavy_q = {**selective, "users": [heavy]}
    heavy_rows = len(list(query_actions(conn, **heavy_q)))
    t = median_time(lambda: list(query_actions(conn, **heavy_q)), args.repeat * 5)
    print(f"  most active user        {t * 1000:8.3f} ms  ({heavy_rows} rows; {heavy}, {heavy_actions:,} actions)")

    # 2. start-up: the whole process, interleaved with --version
    query_args = [OHLOG, "query", "--db", str(db_path), "--user", user, "--type", "CLICK",
                  "--date", MONTH, "--json"]
    versions, queries = [], []
    for _ in range(args.repeat):
        versions.append(run_process([OHLOG, "--version"])[0])
        queries.append(run_process(query_args)[0])
    version_t, query_t = statistics.median(versions), statistics.median(queries)
    results["startup_ratio"] = query_t / version_t
    print(f"ohlog --version process   {version_t * 1000:8.1f} ms")
    print(f"ohlog query --json        {query_t * 1000:8.1f} ms  = {query_t / version_t:.2f}x --version"
          f"   target <= {TARGETS['startup_ratio']}x")

    # 3. NDJSON of a month of CLICKs, whole process
    month = dict(types=["CLICK"], start=start, end=end)
    month_rows = count_actions(conn, **month)
    month_args = [OHLOG, "query", "--db", str(db_path), "--type", "CLICK", "--date", MONTH, "--nl"]
    t, rss = median_process(month_args, max(3, args.repeat // 4))
    results["ndjson_rows_s"] = month_rows / t
    print(f"month NDJSON process      {t:8.2f} s   {month_rows:,} rows = {month_rows / t:,.0f} rows/s,"
          f" peak RSS {rss:.0f} MiB   target >= {TARGETS['ndjson_rows_s']:,} rows/s")

    # 4. everything, for memory
    if not args.no_full:
        for flag in ("--nl", "--json"):
            t, rss = run_process([OHLOG, "query", "--db", str(db_path), flag])
            results["rss_mib"] = max(results.get("rss_mib", 0), rss)
            print(f"all actions {flag:<6}        {t:8.1f} s   {args.actions / t:,.0f} rows/s,"
                  f" peak RSS {rss:.0f} MiB   target <= {TARGETS['rss_mib']} MiB")

    if not args.no_duckdb:
        compare_duckdb(db_path, args, user, start, end, month_rows, query_t, results)

    missed = [k for k, v in results.items() if k in TARGETS and (
        v > TARGETS[k] if k in ("selective_ms", "startup_ratio", "rss_mib") else v < TARGETS[k])]
    print("\nall targets met" if not missed else f"\ntargets missed: {', '.join(missed)}")
    return 1 if missed and args.check else 0


def compare_duckdb(db_path, args, user, start, end, month_rows, ohlog_query_t, results):
    try:
        import duckdb
    except ImportError:
        print("\nDuckDB: not installed (pip install duckdb)")
        return
    duck_path = duckdb_copy(db_path, args.data)
    con = duckdb.connect(str(duck_path), read_only=True)
    print(f"\nDuckDB {duckdb.__version__} on the same rows ({duck_path.stat().st_size / 2**20:,.0f} MiB):")
    params = [user, start.us, end.us]
    rows = len(con.execute(DUCK_SELECTIVE, params).fetchall())
    t = median_time(lambda: con.execute(DUCK_SELECTIVE, params).fetchall(), args.repeat * 2)
    print(f"selective in-process      {t * 1000:8.3f} ms  ({rows} rows)  ="
          f" {t * 1000 / results['selective_ms']:.0f}x ohlog")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "month.ndjson")
        t = median_time(lambda: con.execute(DUCK_MONTH.format(start.us, end.us, out)), 3)
        print(f"month NDJSON in-process   {t:8.2f} s   {month_rows / t:,.0f} rows/s (COPY ... FORMAT JSON)")
    con.close()
    script = (
        "import duckdb, json, sys; con = duckdb.connect(sys.argv[1], read_only=True);"
        f"rows = con.execute({DUCK_SELECTIVE!r}, [sys.argv[2], int(sys.argv[3]), int(sys.argv[4])]).fetchall();"
        "print(json.dumps({'actions': [dict(zip(('userId', 'sessionId', 'time', 'type'), r[:4]),"
        " properties=json.loads(r[4])) for r in rows]}))"
    )
    t, _ = median_process([sys.executable, "-c", script, str(duck_path), user, str(start.us), str(end.us)],
                          max(5, args.repeat // 2))
    print(f"selective process         {t * 1000:8.1f} ms  = {t / ohlog_query_t:.1f}x ohlog query --json")


if __name__ == "__main__":
    sys.exit(main())
