#!/usr/bin/env python3
"""Benchmark ohlog on PostgreSQL against its naive path and against SQLite.

    .venv/bin/python benchmarks/bench_postgres.py [--actions 1000000] [--repeat 3] [--tuned]
        [--baseline DIR] [--only ingest,reingest,naive,...]

Starts its own PostgreSQL (tests/pgserver.py: PostgreSQL's default settings,
or ``--tuned``'s), generates N actions once (benchmarks/generate.py, NDJSON
in benchmarks/data/), and runs, every run a whole ``ohlog`` process into a
fresh database, the measures interleaved run by run:

  ingest        ``ohlog ingest FILE --db postgresql://...`` into an empty database
  re-ingest     the same file again: all duplicates (target: <= 0.5x ingest)
  naive         the same ingest with the writer ohlog had before: text COPY into
                a staging table, then INSERT ... ORDER BY seq ON CONFLICT DO NOTHING
                into the indexed table (target: ingest >= 2x its rate)
  sqlite        ``ohlog ingest FILE --db x.db`` (for reference)
  copy          ``ohlog copy x.db postgresql://...`` of the SQLite store into an empty
                database (target: at least as fast as ingest)
  query         a selective ``ohlog query --user U --type view --nl`` (the user of
                median activity) as a whole process on each engine, median of 5
                (target: PostgreSQL within 1.3x SQLite)

  baseline      with ``--baseline DIR``: ``ohlog ingest`` of the code in DIR (e.g. an
                older commit's ``git archive``) into an empty database, for a
                before/after measured side by side

``--only`` runs the measures named (re-ingest needs ingest, copy needs
sqlite, query needs both; the baseline runs whenever ``--baseline`` is
given), to time again only what a change touched.

Every run is printed, then the medians and the targets. Ingests also print
their CPU seconds: the client's (``ohlog`` and its validating worker) and
the server's (every process of the cluster), which a loaded machine inflates
far less than it does wall time. Not a test: timings depend on the machine
and its load.
"""

import argparse
import os
import resource
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import generate  # noqa: E402
from pgserver import PgServer  # noqa: E402

OHLOG = str(pathlib.Path(sys.executable).parent / "ohlog")
TUNED = {"shared_buffers": "1GB", "max_wal_size": "8GB", "checkpoint_timeout": "30min",
         "maintenance_work_mem": "512MB", "work_mem": "64MB", "synchronous_commit": "off",
         "wal_compression": "on"}
SHOWN = ("shared_buffers", "max_wal_size", "checkpoint_timeout", "work_mem", "maintenance_work_mem",
         "fsync", "synchronous_commit", "wal_level", "max_parallel_maintenance_workers")

# ``ohlog ingest`` with the writer as it was before the bulk load: text COPY,
# then one INSERT ... ON CONFLICT into the indexed table per 5,000 rows.
NAIVE = r"""
import sys
from openhouse_cli.store import postgres

class Naive(postgres.Writer):
    def _claim_empty_table(self):
        self.conn.execute("BEGIN")
        return False

    def _write(self, rows):
        with self.conn.cursor() as cursor:
            with cursor.copy(f"COPY ohlog_staging (seq, {postgres._STAGING_COLUMNS}) FROM STDIN") as copy:
                for seq, row in enumerate(rows):
                    copy.write_row((seq, *postgres.escaped_row(row)))
            cursor.execute(postgres._INSERT_FROM_STAGING)
            inserted = cursor.rowcount
            cursor.execute("TRUNCATE ohlog_staging")
        return inserted

postgres.Writer = Naive
from openhouse_cli.cli import cli
cli(sys.argv[1:])
"""


MEASURES = ("ingest", "reingest", "naive", "sqlite", "copy", "query")


def data_file(data_dir, n, seed=0):
    path = data_dir / f"actions-{n}-s{seed}-v{generate.VERSION}.ndjson"
    if not path.exists():
        print(f"generating {path.name} ...", end=" ", flush=True)
        started = time.perf_counter()
        partial = path.with_name(path.name + ".partial")
        generate.write(partial, n, "ndjson", seed)
        os.replace(partial, path)
        print(f"{time.perf_counter() - started:.1f}s", flush=True)
    return path


CPU = {}  # measure -> [(client CPU s, server CPU s)], one a run


def timed(args, stdout=subprocess.DEVNULL, server=None, cpu=None):
    """Wall seconds of running ``args``; with ``cpu``, its CPU (client, server) is recorded there."""
    before = _cpu(server)
    started = time.perf_counter()
    result = subprocess.run(args, stdout=stdout, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if result.returncode:
        sys.exit(f"{' '.join(map(str, args))} failed: {result.stderr.decode()}")
    if cpu is not None:
        after = _cpu(server)
        CPU.setdefault(cpu, []).append((after[0] - before[0], after[1] - before[1]))
    return elapsed


def _cpu(server):
    """CPU seconds so far of this script's children and of the server's processes (a
    backend that has ended counts in the postmaster's children's times)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = usage.ru_utime + usage.ru_stime
    if server is None:
        return client, 0.0
    master = (server.root / "data" / "postmaster.pid").read_text().split()[0]
    children = subprocess.run(["pgrep", "-P", master], capture_output=True, text=True).stdout.split()
    ticks = 0
    for pid in [master, *children]:
        try:
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
        if pid == master:
            ticks += int(fields[13]) + int(fields[14])
    return client, ticks / os.sysconf("SC_CLK_TCK")


def cpu_text(name):
    client, server = CPU[name][-1]
    return f"[cpu client {client:.1f}s, server {server:.1f}s]"


def median_user(url):
    import psycopg

    with psycopg.connect(url) as conn:
        counts = conn.execute("SELECT user_id, count(*) FROM actions GROUP BY 1 ORDER BY 2, 1").fetchall()
    return counts[len(counts) // 2]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--actions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tuned", action="store_true", help=f"a tuned server: {TUNED}")
    parser.add_argument("--data-dir", type=pathlib.Path, default=HERE / "data")
    parser.add_argument("--baseline", type=pathlib.Path, metavar="DIR",
                        help="also time ohlog ingest of the code in DIR, side by side")
    parser.add_argument("--only", type=lambda text: set(text.split(",")), metavar="M1,M2",
                        help=f"run only these measures, of {','.join(MEASURES)}")
    args = parser.parse_args(argv)
    only = set(MEASURES) if args.only is None else args.only
    if only - set(MEASURES):
        parser.error(f"--only: unknown measure {', '.join(sorted(only - set(MEASURES)))}")
    only |= {"ingest"} if only & {"reingest", "query"} else set()
    only |= {"sqlite"} if only & {"copy", "query"} else set()
    args.data_dir.mkdir(exist_ok=True)
    n = args.actions
    source = data_file(args.data_dir, n)
    runs = {name: [] for name in ("ingest", "reingest", "naive", "sqlite", "copy", "query_pg", "query_sqlite",
                                  *(("baseline",) if args.baseline else ()))}
    with PgServer(TUNED if args.tuned else {}) as server, tempfile.TemporaryDirectory(dir=args.data_dir) as tmp:
        import psycopg

        with psycopg.connect(server.url()) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            settings = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in SHOWN}
        print(f"PostgreSQL {version}, {'tuned' if args.tuned else 'default'} settings: "
              + ", ".join(f"{k}={v}" for k, v in settings.items()))
        print(f"{n:,} actions from {source.name}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
              flush=True)
        for number in range(1, args.repeat + 1):
            sqlite_db = pathlib.Path(tmp) / f"run{number}.db"
            urls = {name: server.create_database(f"{name}{number}")
                    for name in ("ingest", "naive", "copy", *(("baseline",) if args.baseline else ()))
                    if name == "baseline" or name in only}
            if args.baseline:
                code = (f"import sys; sys.path.insert(0, {str(args.baseline.resolve())!r}); "
                        "from openhouse_cli.cli import cli; cli(sys.argv[1:])")
                runs["baseline"].append(timed([sys.executable, "-c", code, "ingest", source,
                                               "--db", urls["baseline"], "-q"], server=server, cpu="baseline"))
            done = {}
            if "ingest" in only:
                done["ingest"] = timed([OHLOG, "ingest", source, "--db", urls["ingest"], "-q"], server=server,
                                       cpu="ingest")
            if "reingest" in only:
                done["reingest"] = timed([OHLOG, "ingest", source, "--db", urls["ingest"], "-q"], server=server,
                                         cpu="reingest")
            if "naive" in only:
                done["naive"] = timed([sys.executable, "-c", NAIVE, "ingest", source, "--db", urls["naive"], "-q"],
                                      server=server, cpu="naive")
            if "sqlite" in only:
                done["sqlite"] = timed([OHLOG, "ingest", source, "--db", sqlite_db, "-q"])
            if "copy" in only:
                done["copy"] = timed([OHLOG, "copy", sqlite_db, urls["copy"], "-q"], server=server, cpu="copy")
            count = 0
            if "query" in only:
                user, count = median_user(urls["ingest"])
                query = ["query", "--user", user, "--type", "view", "--nl"]
                timed([OHLOG, *query, "--db", urls["ingest"]])  # warm both
                timed([OHLOG, *query, "--db", sqlite_db])
                done["query_pg"] = statistics.median(timed([OHLOG, *query, "--db", urls["ingest"]])
                                                     for _ in range(5))
                done["query_sqlite"] = statistics.median(timed([OHLOG, *query, "--db", sqlite_db])
                                                         for _ in range(5))
            for name, value in done.items():
                runs[name].append(value)
            print(f"run {number} (load {os.getloadavg()[0]:.1f}): " + "  ".join(
                f"{name} {value * 1000:5.0f}ms" if name.startswith("query") else
                f"{name} {value:6.1f}s ({n / value:8,.0f}/s)" for name, value in done.items())
                + (f"  (query: {count:,} actions of the user)" if count else ""), flush=True)
            if "ingest" in done and "reingest" in done:
                print(f"       re-ingest {done['reingest'] / done['ingest']:.2f}x the ingest's time", flush=True)
            print(f"       cpu: " + "  ".join(f"{name} {cpu_text(name)}" for name in CPU), flush=True)
            if args.baseline and "ingest" in done:
                print(f"       baseline ingest {runs['baseline'][-1]:6.1f}s"
                      f" ({runs['baseline'][-1] / done['ingest']:.2f}x this ingest's time)", flush=True)
            for name in urls:
                server.drop_database(f"{name}{number}")
            sqlite_db.unlink(missing_ok=True)
    m = {name: statistics.median(values) for name, values in runs.items() if values}
    print(f"\nmedians of {args.repeat} runs, {n:,} actions:")
    rows = []
    if "ingest" in m:
        rows.append(("PostgreSQL ingest", f"{m['ingest']:.1f}s, {n / m['ingest']:,.0f} actions/s",
                     f"{m['naive'] / m['ingest']:.2f}x the naive path's rate (target >= 2x)" if "naive" in m else ""))
    if "naive" in m:
        rows.append(("naive path", f"{m['naive']:.1f}s, {n / m['naive']:,.0f} actions/s", ""))
    if "reingest" in m:
        rows.append(("re-ingest (all duplicates)", f"{m['reingest']:.1f}s",
                     f"{m['reingest'] / m['ingest']:.2f}x the first ingest (target <= 0.5x)"))
    if "sqlite" in m:
        rows.append(("SQLite ingest", f"{m['sqlite']:.1f}s, {n / m['sqlite']:,.0f} actions/s", ""))
    if "copy" in m:
        rows.append(("copy SQLite -> PostgreSQL", f"{m['copy']:.1f}s, {n / m['copy']:,.0f} actions/s",
                     f"{m['ingest'] / m['copy']:.2f}x ingest's rate (target >= 1x)" if "ingest" in m else ""))
    if "query_pg" in m:
        rows.append(("selective query",
                     f"PostgreSQL {m['query_pg'] * 1000:.0f} ms, SQLite {m['query_sqlite'] * 1000:.0f} ms",
                     f"{m['query_pg'] / m['query_sqlite']:.2f}x SQLite (target <= 1.3x)"))
    if args.baseline:
        rows.append(("baseline ingest", f"{m['baseline']:.1f}s, {n / m['baseline']:,.0f} actions/s",
                     f"ingest is {m['baseline'] / m['ingest']:.2f}x its rate" if "ingest" in m else ""))
    for name, value, target in rows:
        print(f"  {name:28} {value:40} {target}")
    for name, values in CPU.items():
        client = statistics.median(v[0] for v in values)
        server = statistics.median(v[1] for v in values)
        print(f"  CPU of {name:21} client {client:5.1f}s, server {server:5.1f}s (medians)")


if __name__ == "__main__":
    main()
