#!/usr/bin/env python3
"""Probe: ways to bulk-load actions into PostgreSQL with exact dedupe.

Starts its own PostgreSQL (tests/pgserver.py, default settings unless
--tuned), turns N generated actions (benchmarks/generate.py) into ohlog's
rows (openhouse_cli.validate.session_rows, outside the timings), and loads
them into a fresh database per run, each method as one transaction::

    COPY rows INTO a staging table;
    INSERT INTO actions SELECT ... FROM staging ON CONFLICT DO NOTHING;

then loads the same rows again (all duplicates). Every run checks that
exactly N rows are stored. Prints each run and the medians::

    python benchmarks/pg_ingest_probe.py [--actions 1000000] [--repeat 3]
        [--methods naive,best,...] [--preload 0.5] [--tuned]

--preload F stores the first F of the rows beforehand (untimed), so that
the timed ingests go into a populated table, where the fastest way differs.

Methods (see METHODS): how the rows are written to COPY (psycopg's
write_row in text or binary format, or preformatted COPY text bytes), the
staging table (temporary or unlogged), whether the INSERT sorts by the
unique key, whether the indexes are dropped and rebuilt when the table is
empty (the secondary ones, or all with the staging rows deduped by
DISTINCT ON), whether rows already stored are skipped by NOT EXISTS before
ON CONFLICT, jsonb or text properties, a BRIN index on utc_us, and one or
two connections.
"""

import argparse
import multiprocessing
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import psycopg  # noqa: E402

from benchmarks.generate import generate_sessions  # noqa: E402
from openhouse_cli.validate import session_rows  # noqa: E402
from pgserver import PgServer  # noqa: E402

COLUMNS = ("user_id", "session_id", "time", "utc_us", "ns", "local_us", "offset_s",
           "type", "type_key", "properties", "fingerprint")
UNIQUE_KEY = "user_id, utc_us, fingerprint"
SECONDARY = {
    "actions_user_type_time": "user_id, type_key, utc_us",
    "actions_type_time": "type_key, utc_us",
    "actions_session_time": "session_id, utc_us",
    "actions_time": "utc_us",
}
TUNED = {"shared_buffers": "1GB", "max_wal_size": "8GB", "checkpoint_timeout": "30min",
         "maintenance_work_mem": "512MB", "work_mem": "64MB", "wal_compression": "on"}


@dataclass(frozen=True)
class Method:
    copy: str = "write_row"      # write_row | binary | bytes
    staging: str = "temp"        # temp | unlogged
    sort: bool = False           # INSERT ... SELECT ... ORDER BY the unique key
    rebuild: str = ""            # on an empty table: "secondary" drops the four secondary indexes
    #                              and rebuilds them after; "all" the unique key too (the staging rows
    #                              deduped by DISTINCT ON, the unique constraint rebuilt after)
    antijoin: bool = False       # skip rows already stored with NOT EXISTS before ON CONFLICT
    props: str = "jsonb"         # jsonb | text
    brin: bool = False           # the (utc_us) index as BRIN (time-ordered logs) instead of a B-tree
    connections: int = 1


METHODS = {
    "naive": Method(),
    "sorted": Method(sort=True),
    "binary_sorted": Method(copy="binary", sort=True),
    "bytes_sorted": Method(copy="bytes", sort=True),
    "bytes_sorted_unlogged": Method(copy="bytes", sort=True, staging="unlogged"),
    "bytes_sorted_text": Method(copy="bytes", sort=True, props="text"),
    "sorted_rebuild": Method(sort=True, rebuild="secondary"),
    "sorted_rebuild_all": Method(sort=True, rebuild="all"),
    "sorted_rebuild_all_antijoin": Method(sort=True, rebuild="all", antijoin=True),
    "sorted_rebuild_all_text": Method(sort=True, rebuild="all", props="text"),
    "sorted_2conn": Method(sort=True, connections=2),
    "sorted_brin": Method(sort=True, brin=True),
    "binary_sorted_antijoin": Method(copy="binary", sort=True, antijoin=True),
    # The fastest exact way found into an empty table, and for all-duplicate
    # re-sends: binary COPY; on an empty table every index dropped and
    # rebuilt around a deduped (DISTINCT ON) insert; on a populated one the
    # staging rows sorted by the unique key and NOT EXISTS before ON
    # CONFLICT, so that re-sent rows cost a merge against the unique index.
    "best": Method(copy="binary", sort=True, rebuild="all", antijoin=True),
    # The same but in input order on a populated table: new time-ordered
    # logs then grow the time-led indexes at their right edge (faster
    # appends, slower all-duplicate re-sends; run with --preload 0.5)
    "best_input_order": Method(copy="binary", rebuild="all"),
    "best_brin": Method(copy="binary", sort=True, rebuild="all", antijoin=True, brin=True),
}


def make_rows(n):
    """ohlog's rows for n generated actions, in COLUMNS order (fingerprint as 8 bytes)."""
    rows = []
    for number, doc in enumerate(generate_sessions(n, seed=0), 1):
        for user, session, text, utc_us, local_us, offset_s, kind, props, fp in session_rows(doc, number):
            rows.append((user, session, text, utc_us, 0, local_us, offset_s, kind, kind.upper(), props,
                         fp.to_bytes(8, "big", signed=True)))
    return rows


def schema(props, brin=False):
    return [
        f"""CREATE TABLE actions (
            id bigint GENERATED ALWAYS AS IDENTITY,
            user_id text NOT NULL, session_id text NOT NULL, time text NOT NULL,
            utc_us bigint NOT NULL, ns smallint NOT NULL, local_us bigint NOT NULL, offset_s integer,
            type text NOT NULL, type_key text NOT NULL, properties {props} NOT NULL,
            fingerprint bytea NOT NULL,
            CONSTRAINT actions_dedupe UNIQUE ({UNIQUE_KEY}))""",
        *create_secondary(brin),
    ]


def create_secondary(brin=False):
    return [f"CREATE INDEX {name} ON actions {'USING brin ' if brin and cols == 'utc_us' else ''}({cols})"
            for name, cols in SECONDARY.items()]


_STAGING_TYPES = "text, text, text, bigint, smallint, bigint, integer, text, text, text, bytea"


def _escape(s):
    # COPY text format: backslash, tab, newline and carriage return are escaped
    if "\\" in s or "\t" in s or "\n" in s or "\r" in s:
        s = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return s


def copy_bytes(rows, chunk=20000):
    """COPY text-format bytes for rows, in chunks."""
    out = []
    for r in rows:
        offset = "\\N" if r[6] is None else str(r[6])
        out.append("\t".join((_escape(r[0]), _escape(r[1]), _escape(r[2]), str(r[3]), str(r[4]), str(r[5]),
                              offset, _escape(r[7]), _escape(r[8]), _escape(r[9]), "\\\\x" + r[10].hex())))
        if len(out) >= chunk:
            yield ("\n".join(out) + "\n").encode()
            out = []
    if out:
        yield ("\n".join(out) + "\n").encode()


def load(url, rows, method, first):
    """One ingest of rows as one transaction; returns (copy_s, insert_s, inserted)."""
    cols = ", ".join(COLUMNS)
    with psycopg.connect(url) as conn:
        t0 = time.perf_counter()
        if method.staging == "temp":
            conn.execute(f"CREATE TEMP TABLE staging ({_staging_columns()}) ON COMMIT DROP")
        else:
            conn.execute(f"CREATE UNLOGGED TABLE staging ({_staging_columns()})")
        with conn.cursor().copy(f"COPY staging ({cols}) FROM STDIN"
                                + (" (FORMAT BINARY)" if method.copy == "binary" else "")) as copy:
            if method.copy == "bytes":
                for block in copy_bytes(rows):
                    copy.write(block)
            else:
                if method.copy == "binary":
                    copy.set_types(_STAGING_TYPES.split(", "))
                for row in rows:
                    copy.write_row(row)
        t1 = time.perf_counter()
        rebuild = ""
        if method.rebuild:
            # No other writer between the emptiness test and the rebuild; readers go on
            conn.execute("LOCK TABLE actions IN SHARE ROW EXCLUSIVE MODE")
            if not conn.execute("SELECT EXISTS (SELECT 1 FROM actions)").fetchone()[0]:
                rebuild = method.rebuild
        for name in SECONDARY if rebuild else ():
            conn.execute(f"DROP INDEX {name}")
        if rebuild == "all":
            conn.execute("ALTER TABLE actions DROP CONSTRAINT actions_dedupe")
        select = cols if method.props == "text" else cols.replace("properties", "properties::jsonb")
        distinct = f"DISTINCT ON ({UNIQUE_KEY}) " if rebuild == "all" else ""
        where = ""
        if method.antijoin and not rebuild:
            conn.execute("ANALYZE staging")
            where = (" s WHERE NOT EXISTS (SELECT 1 FROM actions a WHERE a.user_id = s.user_id"
                     " AND a.utc_us = s.utc_us AND a.fingerprint = s.fingerprint)")
        order = f" ORDER BY {UNIQUE_KEY}" if method.sort or distinct else ""
        conflict = "" if rebuild == "all" else " ON CONFLICT DO NOTHING"
        cur = conn.execute(f"INSERT INTO actions ({cols}) SELECT {distinct}{select} FROM staging{where}{order}"
                           + conflict)
        inserted = cur.rowcount
        if rebuild == "all":
            conn.execute(f"ALTER TABLE actions ADD CONSTRAINT actions_dedupe UNIQUE ({UNIQUE_KEY})")
        for sql in create_secondary(method.brin) if rebuild else ():
            conn.execute(sql)
        if method.staging == "unlogged":
            conn.execute("DROP TABLE staging")
        conn.commit()
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1, inserted


def _staging_columns():
    return ", ".join(f"{c} {t}" for c, t in zip(COLUMNS, _STAGING_TYPES.split(", ")))


_ROWS = None  # the rows being ingested, inherited by forked workers


def _worker(args):
    url, method, first, lo, hi = args
    return load(url, _ROWS[lo:hi], method, first)


def ingest(url, rows, method, first):
    """Wall seconds, (copy_s, insert_s) of the first connection, and rows inserted."""
    t0 = time.perf_counter()
    if method.connections == 1:
        copy_s, insert_s, inserted = load(url, rows, method, first)
    else:
        global _ROWS
        _ROWS = rows  # what the forked workers slice
        k = method.connections
        # Contiguous slices: each connection gets whole sessions' worth of a time range
        bounds = [len(rows) * i // k for i in range(k + 1)]
        with multiprocessing.get_context("fork").Pool(k) as pool:
            parts = pool.map(_worker, [(url, method, first, bounds[i], bounds[i + 1]) for i in range(k)])
        copy_s, insert_s = parts[0][0], parts[0][1]
        inserted = sum(p[2] for p in parts)
    return time.perf_counter() - t0, copy_s, insert_s, inserted


def run(server, name, method, rows, number, preload=0):
    """Time the ingest of rows[preload:] (the first preload rows stored beforehand, untimed), then again."""
    db = f"probe_{name}_{number}"
    url = server.create_database(db)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for sql in schema(method.props, method.brin):
                conn.execute(sql)
        if preload:
            assert ingest(url, rows[:preload], method, True)[3] == preload
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE actions")
        timed = rows[preload:]
        first = ingest(url, timed, method, True)
        again = ingest(url, timed, method, False)
        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT count(*) FROM actions").fetchone()[0]
            size = conn.execute("SELECT pg_total_relation_size('actions')").fetchone()[0]
    finally:
        server.drop_database(db)
    assert first[3] == len(timed) and again[3] == 0 and stored == len(rows), (first, again, stored)
    return first, again, size


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--actions", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated, from: " + ", ".join(METHODS))
    p.add_argument("--preload", type=float, default=0, metavar="FRACTION",
                   help="store this fraction of the rows first (untimed): an ingest into a populated table")
    p.add_argument("--tuned", action="store_true", help="a tuned server instead of the defaults: " + str(TUNED))
    args = p.parse_args(argv)
    names = args.methods.split(",")
    t = time.perf_counter()
    rows = make_rows(args.actions)
    print(f"{len(rows):,} rows made in {time.perf_counter() - t:.1f} s (not timed below)", flush=True)
    settings = TUNED if args.tuned else {}
    preload = int(len(rows) * args.preload)
    n = len(rows) - preload
    if preload:
        print(f"{preload:,} rows stored first, untimed; the timed ingests add the other {n:,}", flush=True)
    with PgServer(settings) as server:
        with psycopg.connect(server.url()) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            shown = {s: conn.execute(f"SHOW {s}").fetchone()[0] for s in (
                "shared_buffers", "max_wal_size", "checkpoint_timeout", "work_mem", "maintenance_work_mem",
                "fsync", "synchronous_commit", "wal_level", "max_parallel_maintenance_workers")}
        print(f"PostgreSQL {version}, {'tuned' if args.tuned else 'default'} settings: "
              + ", ".join(f"{k}={v}" for k, v in shown.items()), flush=True)
        results = {name: [] for name in names}
        for number in range(args.repeat):
            for name in names:
                first, again, size = run(server, name, METHODS[name], rows, number, preload)
                results[name].append((first, again))
                print(f"{name:28} run {number + 1}: ingest {first[0]:6.1f} s ({n / first[0]:8,.0f}/s;"
                      f" copy {first[1]:5.1f} s, insert {first[2]:5.1f} s)  re-ingest {again[0]:6.1f} s"
                      f" ({again[0] / first[0]:.2f}x; copy {again[1]:4.1f}, insert {again[2]:4.1f})"
                      f"  table {size / 2**20:,.0f} MiB", flush=True)
    print("\nmedians")
    for name, runs in results.items():
        first = statistics.median(r[0][0] for r in runs)
        again = statistics.median(r[1][0] for r in runs)
        print(f"{name:28} ingest {first:6.1f} s {n / first:8,.0f} actions/s   "
              f"re-ingest {again:6.1f} s ({again / first:.2f}x)   {METHODS[name]}")


if __name__ == "__main__":
    main()
