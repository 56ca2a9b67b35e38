#!/usr/bin/env python3
"""What the summaries cost at ingest and save in the analyses: this tree against a git revision.

    .venv/bin/python benchmarks/bench_summaries.py --base REV [--actions N] [--repeat R] [--db PATH]

The revision's package is extracted (``git archive``) to a temporary
directory and run as ``python -m openhouse_cli`` with it first on the path;
this tree's runs the same way. Both ingest the generator's N actions
(NDJSON) into fresh databases, interleaved; then both run ``stats``,
``count --by type --by day`` and ``active`` on this tree's database (the
revision's code reads the actions, this tree's the summaries), interleaved.
Every run is printed, then the medians and ratios.
"""

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import generate  # noqa: E402

ANALYSES = {"stats": ["stats"], "count type/day": ["count", "--by", "type", "--by", "day"],
            "active": ["active"]}


def run(code_dir, args):
    env = {**os.environ, "PYTHONPATH": str(code_dir)}
    start = time.perf_counter()
    # run from code_dir: ``-m`` puts the working directory first on the path
    subprocess.run([sys.executable, "-m", "openhouse_cli", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL, cwd=code_dir)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the git revision to compare with")
    parser.add_argument("--actions", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", help="only the analyses, on this database (made by this tree)")
    args = parser.parse_args()
    data = HERE / "data"
    data.mkdir(exist_ok=True)
    ndjson = data / f"actions-{args.actions}-s0-v{generate.VERSION}.ndjson"
    if not ndjson.exists() and not args.db:
        generate.write(str(ndjson), args.actions, "ndjson", seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        base = tmp / "base"
        base.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.base, "openhouse_cli"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        trees = {"base": base, "summaries": ROOT}
        times = {(name, what): [] for name in trees for what in ["ingest", *ANALYSES]}
        for r in range(args.repeat if not args.db else 0):
            for name, code in trees.items():
                db = tmp / f"{name}-{r}.db"
                t = run(code, ["ingest", "--quiet", "--db", str(db), str(ndjson)])
                times[(name, "ingest")].append(t)
                print(f"ingest {name:9} run {r}: {t:.2f} s", flush=True)
        db = pathlib.Path(args.db).resolve() if args.db else tmp / f"summaries-{args.repeat - 1}.db"
        for r in range(args.repeat):
            for what, argv in ANALYSES.items():
                for name, code in trees.items():
                    t = run(code, [*argv, "--db", str(db), "--json"])
                    times[(name, what)].append(t)
                    print(f"{what:15} {name:9} run {r}: {t * 1000:.0f} ms", flush=True)
    what = args.db or f"{args.actions:,} actions"
    print(f"\nmedians of {args.repeat} ({what}; load {os.getloadavg()[0]:.1f}):")
    for what in [*(["ingest"] if not args.db else []), *ANALYSES]:
        b, s = (statistics.median(times[(n, what)]) for n in trees)
        print(f"  {what:15} base {b:8.3f} s   summaries {s:8.3f} s   summaries/base {s / b:.2f}x")


if __name__ == "__main__":
    main()
