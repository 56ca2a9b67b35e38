#!/usr/bin/env python3
"""Benchmark ``ohlog serve`` with wrk on loopback, on a database of 1,000,000 actions,
on SQLite and on PostgreSQL side by side.

    .venv/bin/python benchmarks/bench_serve.py [--actions N] [--duration S] [--workers W]
                                               [--connections C] [--runs R] [--no-postgres]
                                               [--pg-setting NAME=VALUE ...] [--compare] [--check]

Needs wrk (``apt-get install wrk``) and the serve extra. The main runs use
``ohlog serve --workers 2`` (one process a core; --workers sets it). The database is
built once by ``benchmarks/generate.py`` and ``ohlog ingest`` into
benchmarks/data/serve-N-sSEED-vVERSION.db and copied for each server run (the
POSTs write to the copy). The real ``ohlog serve`` runs, with its access log
on (to a file). wrk runs one thread, on the same two cores, with
C connections (default 16), each sending its next request as soon as the last is answered,
so the latencies include the queueing at that concurrency.

  POST  examples/sample_log.json, with a new sessionId each request, so that
        each stores 3 new actions                    target >= 2,000/s, p99 < 50 ms
  GET   a selective query: one user's CLICKs on one day (userId, type, date),
        1,000 different ones in turn, each a 200    target >= 5,000/s, p99 < 50 ms

``--compare`` also measures what the design choices are worth: POSTs with one
commit per request instead of group commit, the other number of workers, and a
hello-world ASGI app on the same uvicorn (the ceiling this machine allows, at
this moment: on a shared machine, read the figures against it).

PostgreSQL (needs the postgres extra and PostgreSQL's programs; see
tests/pgserver.py): a throwaway server in a temporary directory, on a Unix
socket, with PostgreSQL's default settings unless ``--pg-setting`` says
otherwise (fsync and synchronous_commit on: each commit waits for the disk,
where SQLite's WAL mode with synchronous=NORMAL does not). The same actions
are ingested into a template database once; each run serves a fresh copy of
it. Each measurement runs ``--runs`` times (default 3), the engines taking
turns; every run's figures are printed, then the medians, and PostgreSQL's
median rates as a share of SQLite's (target: at least 80%).

Exit status 0, unless ``--check`` and a target is missed.
"""

import argparse
import contextlib
import http.client
import os
import pathlib
import re
import shutil
import socket
import sqlite3
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
SAMPLE = HERE.parent / "examples" / "sample_log.json"
TARGETS = {"POST": 2000, "GET": 5000}
TARGET_P99_MS = 50
TARGET_PG_SHARE = 0.8  # PostgreSQL's median rates at least this share of SQLite's

POST_LUA = r"""
local f = io.open(os.getenv("OHLOG_BENCH_BODY"), "rb")
local template = f:read("*a")
f:close()
local counter = 0
local tag = "run"
function init(args) tag = args[1] end
request = function()
  counter = counter + 1
  local body = string.gsub(template, "XYZ456ABC", tag .. "-" .. counter)
  return wrk.format("POST", "/api/log", {["Content-Type"] = "application/json"}, body)
end
"""
GET_LUA = r"""
local paths = {}
for line in io.lines(os.getenv("OHLOG_BENCH_PATHS")) do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""
HELLO_APP = """
async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"{}"})
"""


def generated(data_dir, n, seed):
    """benchmarks/generate.py's N actions as an NDJSON file, written once. (A file, not a
    pipe: ``ohlog ingest -`` of a large pipe failed in its validating worker, 2026-12-02.)"""
    path = data_dir / f"serve-{n}-s{seed}-v{generate.VERSION}.ndjson"
    if not path.exists():
        partial = path.with_name(path.name + ".partial")
        subprocess.run([sys.executable, str(HERE / "generate.py"), str(partial), "--actions", str(n),
                        "--seed", str(seed)], check=True, stdout=subprocess.DEVNULL)
        os.replace(partial, path)
    return path


def build_db(data_dir, n, seed):
    path = data_dir / f"serve-{n}-s{seed}-v{generate.VERSION}.db"
    if path.exists():
        return path
    print(f"building {path.name} ({n:,} actions; once) ...", flush=True)
    partial = path.with_name(path.name + ".partial")
    for suffix in ("", "-wal", "-shm"):
        pathlib.Path(f"{partial}{suffix}").unlink(missing_ok=True)
    subprocess.run([OHLOG, "ingest", str(generated(data_dir, n, seed)), "--db", str(partial), "-q"],
                   check=True)
    os.replace(partial, path)
    return path


def selective_paths(db, count=1000):
    """GET paths for one user's CLICKs on one day they clicked: a few actions each."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT user_id, substr(time, 1, 10) AS day, count(*) FROM actions"
        " WHERE type = 'CLICK' GROUP BY user_id, day ORDER BY (user_id || day) LIMIT ?", (count,)
    ).fetchall()
    mean = sum(r[2] for r in rows) / len(rows)
    return [f"/api/log/get?userId={user}&type=CLICK&date={day}" for user, day, _ in rows], mean


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server(command, port, log):
    with open(log, "ab") as err:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                sys.exit(f"the server exited: {pathlib.Path(log).read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("the server did not start")
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def wrk(port, script, duration, connections, tag="warm", path="/"):
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script,
         f"http://127.0.0.1:{port}{path}", "--", tag],
        capture_output=True, text=True, check=True)
    out = result.stdout
    figures = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
        "requests": int(re.search(r"(\d+) requests in", out)[1]),
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", out)[1]),
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", out)[1]),
        "bad": int((re.search(r"Non-2xx or 3xx responses: (\d+)", out) or [0, 0])[1]),
        "errors": sum(map(int, re.findall(r"(?:connect|read|write|timeout) (\d+)", out))),
    }
    return figures


def _ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def settled_count(db):
    """The number of actions once the server has stored what it was sent (no change for 0.5 s)."""
    if isinstance(db, str):
        import psycopg

        conn = psycopg.connect(db, autocommit=True)
    else:
        conn = sqlite3.connect(db)
    last = None
    while True:
        now = conn.execute("SELECT count(*) FROM actions").fetchone()[0]
        if now == last:
            conn.close()
            return now
        last = now
        time.sleep(0.5)


def start_postgres(settings):
    """A throwaway PostgreSQL server (tests/pgserver.py), or exit saying why not."""
    sys.path.insert(0, str(HERE.parent))
    from tests.pgserver import PgServer, PgUnavailable

    try:
        import psycopg  # noqa: F401

        return PgServer(settings, prefix="ohlog-bench-pg-").start()
    except (ImportError, PgUnavailable) as ex:
        sys.exit(f"PostgreSQL is needed (or pass --no-postgres): {ex}")


def build_pg_template(pg, n, seed):
    """Database ``bench`` holding the same actions as the SQLite one, ingested by ohlog."""
    url = pg.create_database("bench")
    print(f"ingesting {n:,} actions into PostgreSQL (once a benchmark) ...", flush=True)
    began = time.perf_counter()
    subprocess.run([OHLOG, "ingest", str(generated(HERE / "data", n, seed)), "--db", url, "-q"],
                   check=True)
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE actions")
    print(f"  ({time.perf_counter() - began:.0f} s)", flush=True)
    return "bench"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--duration", type=int, default=10, help="seconds of each measured run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="ohlog serve --workers for the main runs")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (the median counts)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--pg-setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a PostgreSQL server setting (default: PostgreSQL's defaults)")
    parser.add_argument("--compare", action="store_true", help="also measure the alternatives")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench_serve.py needs wrk: apt-get install wrk")

    data_dir = HERE / "data"
    data_dir.mkdir(exist_ok=True)
    source = build_db(data_dir, args.actions, args.seed)
    paths, mean_actions = selective_paths(source)
    pg = template = None
    if not args.no_postgres:
        settings = dict(setting.split("=", 1) for setting in args.pg_setting)
        pg = start_postgres(settings)
    try:
        if pg is not None:
            template = build_pg_template(pg, args.actions, args.seed)
            shown = ", ".join(f"{k}={v}" for k, v in pg.settings.items()) or "PostgreSQL's defaults"
            version = pg.admin().execute("SHOW server_version").fetchone()[0]
            print(f"PostgreSQL {version} on a Unix socket, {shown}")
        return measure(args, source, paths, mean_actions, pg, template)
    finally:
        if pg is not None:
            pg.stop()


def measure(args, source, paths, mean_actions, pg, template):
    print(f"ohlog serve on {args.actions:,} actions; wrk, 1 thread, {args.connections} connections, "
          f"{args.duration} s a run, {args.runs} runs each; load average before: "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"  GET: {len(paths):,} selective queries in turn, {mean_actions:.1f} actions each on average")
    rows = []
    with tempfile.TemporaryDirectory(dir=source.parent) as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "post.lua").write_text(POST_LUA)
        (tmp / "get.lua").write_text(GET_LUA)
        (tmp / "paths.txt").write_text("\n".join(paths) + "\n")
        (tmp / "hello.py").write_text(HELLO_APP)
        os.environ.update(OHLOG_BENCH_BODY=str(SAMPLE), OHLOG_BENCH_PATHS=str(tmp / "paths.txt"))
        log = tmp / "server.log"

        def fresh_db(engine):
            """A copy of the benchmark's database, for one run to write to."""
            if engine == "postgresql":
                admin = pg.admin()
                admin.execute("DROP DATABASE IF EXISTS run WITH (FORCE)")
                admin.execute(f"CREATE DATABASE run TEMPLATE {template}")
                return pg.url("run")
            db = tmp / "copy.db"
            for suffix in ("", "-wal", "-shm"):
                pathlib.Path(f"{db}{suffix}").unlink(missing_ok=True)
            shutil.copyfile(source, db)
            return db

        def run(label, command_for, kind, engine="sqlite"):
            db = fresh_db(engine)
            port = free_port()
            with server(command_for(db, port), port, log):
                script = str(tmp / ("post.lua" if kind == "POST" else "get.lua"))
                wrk(port, script, 3, args.connections, tag=f"warm{len(rows)}")  # page cache, JIT-free warm-up
                before = settled_count(db)
                figures = wrk(port, script, args.duration, args.connections, tag=f"run{len(rows)}")
                stored = settled_count(db) - before
            if kind == "POST":
                ok = figures["requests"] * 3 <= stored <= (figures["requests"] + args.connections) * 3
                figures["note"] = f"{stored:,} actions stored" + ("" if ok else " (MISMATCH)")
                figures["bad"] += 0 if ok else 1
            rows.append((label, kind, engine, figures))
            show(label, figures)
            return figures

        def serve(*extra):
            return lambda db, port: [OHLOG, "serve", "--db", str(db), "--port", str(port), *extra]

        def per_request_commits(db, port):
            code = ("import uvicorn; from openhouse_cli.server import create_app; "
                    f"uvicorn.run(create_app({str(db)!r}, commit_batch=1), host='127.0.0.1', port={port}, "
                    "access_log=False, server_header=False, log_level='info')")
            return [sys.executable, "-c", code]

        def hello(db, port):
            return [sys.executable, "-m", "uvicorn", "--app-dir", str(tmp), "hello:app", "--port", str(port),
                    "--no-access-log", "--log-level", "warning"]

        workers = ("--workers", str(args.workers))
        engines = ["sqlite"] + (["postgresql"] if pg is not None else [])
        main_runs = {}  # (kind, engine): [figures of each run]
        for number in range(1, args.runs + 1):
            for kind, what in (("POST", "POST sample log"), ("GET", "GET selective (user, type, day)")):
                for engine in engines:
                    label = f"{what}, {engine}, --workers {args.workers}, run {number}"
                    main_runs.setdefault((kind, engine), []).append(run(label, serve(*workers), kind, engine))
        if args.compare:
            other = ("--workers", "2" if args.workers == 1 else "1")
            for engine in engines:
                run(f"POST, {engine}, {' '.join(other)}", serve(*other), "POST", engine)
                run(f"POST, {engine}, one commit per request, --workers 1", per_request_commits, "POST", engine)
                run(f"GET, {engine}, {' '.join(other)}", serve(*other), "GET", engine)
            (tmp / "health.txt").write_text("/health\n")
            os.environ["OHLOG_BENCH_PATHS"] = str(tmp / "health.txt")
            for engine in engines:
                run(f"GET /health, {engine}", serve(), "GET", engine)
            run("hello-world ASGI app on uvicorn (the ceiling)", hello, "GET")
        locked = log.read_text().count("database is locked")

    print(f"medians of {args.runs} runs, --workers {args.workers}:")
    medians = {}
    for (kind, engine), runs in main_runs.items():
        medians[kind, engine] = median = {
            key: statistics.median(f[key] for f in runs) for key in ("rps", "p50", "p99")}
        median["bad"] = sum(f["bad"] for f in runs)
        median["errors"] = sum(f["errors"] for f in runs)
        show(f"{kind} {engine}", median)
    missed = []
    for (kind, engine), median in medians.items():
        if engine == "sqlite" and median["rps"] < TARGETS[kind]:
            missed.append(f"{kind} {engine} rate")
        if median["p99"] >= TARGET_P99_MS or median["bad"] or median["errors"]:
            missed.append(f"{kind} {engine} p99 or errors")
        if engine == "postgresql":
            share = median["rps"] / medians[kind, "sqlite"]["rps"]
            print(f"  PostgreSQL's {kind} rate is {share:.0%} of SQLite's (target >= {TARGET_PG_SHARE:.0%})")
            if share < TARGET_PG_SHARE:
                missed.append(f"{kind} postgresql share")
    print(f"targets: SQLite POST >= {TARGETS['POST']:,}/s, GET >= {TARGETS['GET']:,}/s, "
          f"PostgreSQL >= {TARGET_PG_SHARE:.0%} of SQLite's, p99 < {TARGET_P99_MS} ms, "
          f"no errors; 'database is locked' in the server log: {locked} times")
    print("all targets met" if not missed else f"missed: {', '.join(missed)}")
    return 1 if args.check and (missed or locked) else 0


def show(label, figures):
    print(f"  {label:<58} {figures['rps']:>8,.0f}/s  p50 {figures['p50']:6.1f} ms  "
          f"p99 {figures['p99']:6.1f} ms  {figures['bad'] + figures['errors']} errors"
          f"{'  ' + figures['note'] if 'note' in figures else ''}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
