#!/usr/bin/env python3
"""Benchmark the analysis commands as whole ``ohlog`` processes, with DuckDB beside them.

    .venv/bin/python benchmarks/bench_analytics.py [--actions N] [--repeat R] [--only NAME,...]
        [--base REV] [--no-raw]

Data: ``benchmarks/generate.py``'s N actions (default 1,000,000) as NDJSON,
ingested once by ``ohlog ingest`` into benchmarks/data/analytics-N.db; the
same NDJSON loaded once into a DuckDB file (benchmarks/data/analytics-N.duckdb,
one row an action, the instant as TIMESTAMPTZ). Both are reused.

Each analysis runs, interleaved and ``--repeat`` times, as:

  ohlog       ``ohlog <command> --json`` on the SQLite database, output to /dev/null
  duckdb-raw  ``python -c "import duckdb; ..."`` running the same analysis in SQL over
              the raw NDJSON (``read_json``): what a user would otherwise do
  duckdb-db   the same SQL on the preloaded DuckDB file
  ohlog-base  with ``--base REV``: ``ohlog`` as of that git revision (its
              openhouse_cli package, run from a temporary copy), on the same database

Every run is printed (wall time, the child's peak RSS), then the medians
and the ratios. Targets (issue 10): ohlog faster than duckdb-raw always,
within 2x of duckdb-db at 10M; stats, count by type/day and active under
300 ms at 10M. DuckDB's SQL computes the same kind of answer, not always
to the letter of ohlog's definitions (its funnel is each user's first
VIEW, then first NAVIGATE after it, then first CLICK after that).
"""

import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import generate  # noqa: E402

BIN = pathlib.Path(sys.executable).parent
OHLOG = str(BIN / "ohlog")
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

# The rows DuckDB works on: from the NDJSON (raw) or the preloaded table (db)
RAW = """(SELECT s.userId AS user_id, s.sessionId AS session_id, a->>'time' AS time,
  CAST(a->>'time' AS TIMESTAMPTZ) AS utc, a->>'type' AS type, lower(a->>'type') AS type_key,
  a->'properties' AS properties
  FROM (SELECT userId, sessionId, unnest(CAST(actions AS JSON[])) AS a
        FROM read_json('{ndjson}', columns={{'userId': 'VARCHAR', 'sessionId': 'VARCHAR',
                                             'actions': 'JSON'}}, format='newline_delimited')) s)"""

ANALYSES = {
    # name: (ohlog arguments, DuckDB SQL over {t})
    "stats": (["stats"], """
        SELECT count(*), count(DISTINCT user_id), count(DISTINCT (user_id, session_id)),
               min(utc), max(utc) FROM {t};
        SELECT type_key, count(*), count(DISTINCT user_id) FROM {t} GROUP BY 1 ORDER BY 2 DESC"""),
    "count type/day": (["count", "--by", "type", "--by", "day"], """
        SELECT type_key, CAST(timezone('UTC', utc) AS DATE) AS day, count(*), count(DISTINCT user_id)
        FROM {t} GROUP BY 1, 2 ORDER BY 2, 3 DESC"""),
    "active": (["active"], """
        WITH du AS (SELECT DISTINCT CAST(timezone('UTC', utc) AS DATE) AS day, user_id FROM {t}),
             days AS (SELECT DISTINCT day FROM du)
        SELECT d.day, count(DISTINCT u.user_id) FILTER (WHERE u.day = d.day),
               count(DISTINCT u.user_id) FILTER (WHERE u.day > d.day - 7), count(DISTINCT u.user_id)
        FROM days d JOIN du u ON u.day BETWEEN d.day - 29 AND d.day GROUP BY 1 ORDER BY 1"""),
    "sessions 30m": (["sessions", "--split", "30m"], """
        WITH g AS (SELECT user_id, session_id, utc, type_key,
                     CASE WHEN utc - lag(utc) OVER w >= INTERVAL 30 MINUTE OR lag(utc) OVER w IS NULL
                          THEN 1 ELSE 0 END AS new FROM {t} WINDOW w AS (PARTITION BY user_id ORDER BY utc)),
             n AS (SELECT *, sum(new) OVER (PARTITION BY user_id ORDER BY utc) AS k FROM g)
        SELECT user_id, k, min(utc), max(utc), count(*),
               epoch(max(utc)) - epoch(min(utc)) < 10 AND count(*) FILTER (WHERE type_key = 'click') = 0
               AND count(*) FILTER (WHERE type_key IN ('view', 'navigate')) < 2 AS bounce
        FROM n GROUP BY 1, 2 ORDER BY 3"""),
    "funnel 3 steps": (["funnel", "VIEW", "NAVIGATE", "CLICK"], """
        WITH v AS (SELECT user_id, min(utc) AS t1 FROM {t} WHERE type_key = 'view' GROUP BY 1),
             n AS (SELECT v.user_id, t1, min(utc) AS t2 FROM v JOIN {t} a ON a.user_id = v.user_id
                   AND a.type_key = 'navigate' AND a.utc >= t1 AND a.utc <= t1 + INTERVAL 14 DAY GROUP BY 1, 2),
             c AS (SELECT n.user_id FROM n JOIN {t} a ON a.user_id = n.user_id AND a.type_key = 'click'
                   AND a.utc >= t2 AND a.utc <= t1 + INTERVAL 14 DAY GROUP BY 1)
        SELECT (SELECT count(*) FROM v), (SELECT count(*) FROM n), (SELECT count(*) FROM c)"""),
    "retention weekly": (["retention", "--unit", "week"], """
        WITH w AS (SELECT DISTINCT user_id, date_trunc('week', timezone('UTC', utc)) AS wk FROM {t}),
             f AS (SELECT user_id, min(wk) AS c FROM w GROUP BY 1)
        SELECT f.c, datediff('week', f.c, w.wk) AS p, count(*) FROM f JOIN w USING (user_id)
        WHERE w.wk >= f.c AND w.wk < f.c + INTERVAL 8 WEEK GROUP BY 1, 2 ORDER BY 1, 2"""),
    "paths": (["paths"], """
        WITH p AS (SELECT user_id, session_id, string_agg(properties->>'pageTo', ' ' ORDER BY utc) AS path
                   FROM {t} WHERE type_key = 'navigate' GROUP BY 1, 2)
        SELECT path, count(*) FROM p GROUP BY 1 ORDER BY 2 DESC LIMIT 20"""),
}


def prepare(data_dir, n, seed):
    """The NDJSON, the ohlog database and the DuckDB file (each made once)."""
    data_dir.mkdir(exist_ok=True)
    ndjson = data_dir / f"analytics-{n}-s{seed}-v{generate.VERSION}.ndjson"
    db = ndjson.with_suffix(".db")
    duck = ndjson.with_suffix(".duckdb")
    if not ndjson.exists():
        print(f"generating {n:,} actions ...", file=sys.stderr)
        generate.write(str(ndjson) + ".tmp", n, "ndjson", seed=seed)
        os.replace(str(ndjson) + ".tmp", ndjson)
    if not db.exists():
        print("ingesting into ohlog ...", file=sys.stderr)
        wall, cpu, rss = timed([OHLOG, "ingest", "--db", str(db) + ".tmp", str(ndjson)])
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(str(db) + ".tmp" + suffix):
                os.replace(str(db) + ".tmp" + suffix, str(db) + suffix)
        print(f"ohlog ingest: {wall:,.1f} s, cpu {cpu:,.1f} s, peak RSS {rss:.1f} MiB (load {os.getloadavg()[0]:.1f});"
              f" database {os.path.getsize(db) / 2**20:,.0f} MiB", flush=True)
    if not duck.exists():
        print("loading DuckDB ...", file=sys.stderr)
        # in a child: this process stays small, as the children it forks start as its copy
        wall, cpu, rss = timed([sys.executable, "-c", f"import duckdb; duckdb.connect({str(duck) + '.tmp'!r})"
                                f".execute({'CREATE TABLE actions AS SELECT * FROM ' + RAW.format(ndjson=ndjson)!r})"])
        os.replace(str(duck) + ".tmp", duck)
        print(f"DuckDB load: {wall:,.1f} s, cpu {cpu:,.1f} s, peak RSS {rss:.1f} MiB (load {os.getloadavg()[0]:.1f});"
              f" file {os.path.getsize(duck) / 2**20:,.0f} MiB", flush=True)
    return ndjson, db, duck


def duck_script(sql, source):
    return (f"import duckdb\ncon = duckdb.connect({source!r}, read_only={source != ':memory:'})\n"
            f"for q in {[q for q in sql.split(';') if q.strip()]!r}:\n"
            "    con.execute(q).fetchall()\n")


def timed(argv, env=CHILD_ENV):
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one child
    process, its output discarded. On a loaded machine the CPU time is the
    steadier figure: the wall time includes waiting for a core."""
    # stderr to a file, not a pipe: a child writing more than a pipe holds would block
    with tempfile.TemporaryFile() as errfile:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errfile, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        errfile.seek(0)
        err = errfile.read().decode(errors="replace")
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{argv[:3]} failed ({child.returncode}): {err.strip()[-400:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", help="comma-separated analyses: " + ", ".join(ANALYSES))
    parser.add_argument("--no-raw", action="store_true", help="skip DuckDB over the raw NDJSON")
    parser.add_argument("--base", metavar="REV", help="also run ohlog as of this git revision")
    args = parser.parse_args()
    ndjson, db, duck = prepare(HERE / "data", args.actions, args.seed)
    names = args.only.split(",") if args.only else list(ANALYSES)
    unknown = [name for name in names if name not in ANALYSES]
    if unknown:
        parser.error(f"unknown analyses {', '.join(unknown)}: choose from {', '.join(ANALYSES)}")
    tools = ["ohlog"] + ["ohlog-base"] * bool(args.base) + ["duckdb-db"]
    tools += [] if args.no_raw else ["duckdb-raw"]
    base_env = None
    if args.base:
        base = tempfile.mkdtemp(prefix="ohlog-base-")
        archive = subprocess.run(["git", "-C", str(HERE.parent), "archive", args.base, "openhouse_cli"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", base], input=archive, check=True)
        base_env = {**CHILD_ENV, "PYTHONPATH": base}
    runs = {(name, tool): [] for name in names for tool in tools}
    load = os.getloadavg()[0]
    print(f"{args.actions:,} actions; load average {load:.1f}; {args.repeat} runs each, interleaved")
    for r in range(args.repeat):
        for name in names:
            command, sql = ANALYSES[name]
            argvs = {
                "ohlog": [OHLOG, *command, "--db", str(db), "--json"],
                # -P: not this directory first on the path, so the copy is imported
                "ohlog-base": [sys.executable, "-P", "-m", "openhouse_cli", *command, "--db", str(db), "--json"],
                "duckdb-db": [sys.executable, "-c", duck_script(sql.format(t="actions"), str(duck))],
                "duckdb-raw": [sys.executable, "-c", duck_script(sql.format(t=RAW.format(ndjson=ndjson)),
                                                                 ":memory:")],
            }
            for tool in tools:
                wall, cpu, rss = timed(argvs[tool], base_env if tool == "ohlog-base" else CHILD_ENV)
                runs[(name, tool)].append((wall, cpu, rss))
                print(f"run {r + 1}  {name:<17} {tool:<11} {wall * 1000:9,.0f} ms  cpu {cpu * 1000:7,.0f} ms"
                      f"  {rss:6.1f} MiB"
                      f"  (load {os.getloadavg()[0]:.1f})", flush=True)
    print()
    print(f"{'analysis':<17} " + " ".join(f"{t:>18}" for t in tools)
          + "   ohlog/db  ohlog/raw" + "  ohlog/base" * bool(args.base))
    for name in names:
        medians = {t: statistics.median(w for w, _, _ in runs[(name, t)]) for t in tools}
        cpus = {t: statistics.median(c for _, c, _ in runs[(name, t)]) for t in tools}
        rss = max(m for _, _, m in runs[(name, "ohlog")])
        cells = " ".join(f"{medians[t] * 1000:15,.0f} ms" for t in tools)
        ratios = f"{medians['ohlog'] / medians['duckdb-db']:9.1f}x"
        if "duckdb-raw" in medians:
            ratios += f" {medians['ohlog'] / medians['duckdb-raw']:9.2f}x"
        if "ohlog-base" in medians:
            ratios += f" {medians['ohlog'] / medians['ohlog-base']:10.2f}x"
        print(f"{name:<17} {cells}   {ratios}   (ohlog peak RSS {rss:.1f} MiB)")
        print(f"{'  cpu':<17} " + " ".join(f"{cpus[t] * 1000:15,.0f} ms" for t in tools))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    if args.base:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
