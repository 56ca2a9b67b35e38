#!/usr/bin/env python3
"""Issue 4.6: peak memory of ``ohlog ingest`` on 200 MB and 2 GB of NDJSON.

    .venv/bin/python scripts/memory.py [--sizes 200M,2G] [--format ndjson|array]

Generates each file once with benchmarks/generate.py (kept in
benchmarks/data/, ~5 minutes for 2 GB), ingests it into a fresh database and
prints, for each size: the file's size and actions, the time, the peak RSS
(``os.wait4``'s ru_maxrss of ohlog, and of its validating worker if larger)
and the peak summed PSS of ohlog's process tree (sampled every 0.1 s).
Targets: under 100 MiB each, and the largest within 10% of the smallest.
Exit status 1 if a target is missed or an ingest fails. Measuring is
bench_ingest.py's (its launcher and sampler); this script only chooses sizes.
"""

import argparse
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_ingest  # noqa: E402
import generate  # noqa: E402

OHLOG = pathlib.Path(sys.executable).parent / "ohlog"
TARGET_MIB = 100
TARGET_SPREAD = 0.10


def parse_size(text):
    """200M, 2G, 5000: bytes."""
    units = {"K": 1e3, "M": 1e6, "G": 1e9}
    unit = text[-1].upper()
    return int(float(text[:-1]) * units[unit]) if unit in units else int(text)


def bytes_per_action(fmt):
    """Measured on a generated sample, so that a size maps to a number of actions."""
    with tempfile.NamedTemporaryFile(suffix=".json") as sample:
        generate.write(sample.name, 100_000, fmt, 0)
        return pathlib.Path(sample.name).stat().st_size / 100_000


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="200M,2G",
                        help="comma-separated file sizes (default 200M,2G)")
    parser.add_argument("--format", default="ndjson", choices=["ndjson", "array"])
    parser.add_argument("--data-dir", type=pathlib.Path, default=ROOT / "benchmarks" / "data")
    parser.add_argument("--timeout", type=float, default=3 * 3600)
    args = parser.parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    per_action = bytes_per_action(args.format)
    rows, ok = [], True
    for size in map(parse_size, args.sizes.split(",")):
        n = round(size / per_action)
        source = bench_ingest.data_file(args.data_dir, n, args.format, 0)
        bench_ingest.warm(source)
        with tempfile.TemporaryDirectory(dir=args.data_dir) as scratch:
            db = pathlib.Path(scratch) / "memory.db"
            wall, rss_kib, code, tail, sampler = bench_ingest.run_child(
                [str(OHLOG), "ingest", "--quiet", "--db", str(db), str(source)], args.timeout)
            stored = bench_ingest.count_rows(db) if code == 0 else None
        if code != 0 or stored != n:
            print(f"{source.name}: exit {code}, {stored} of {n:,} actions stored\n{tail}")
            ok = False
            continue
        size_mb = source.stat().st_size / 1e6
        rss_mib, pss_mib = rss_kib / 1024, sampler.peak_kib / 1024
        rows.append((size_mb, n, wall, rss_mib, pss_mib))
        print(f"{size_mb:>8,.0f} MB {n:>12,} actions {wall:>8.1f}s {n / wall:>9,.0f} actions/s  "
              f"peak RSS {rss_mib:>5.1f} MiB  tree PSS {pss_mib:>5.1f} MiB", flush=True)
    if rows:
        peaks = [row[3] for row in rows]
        spread = max(peaks) / min(peaks) - 1
        print(f"largest peak RSS {max(peaks):.1f} MiB (target < {TARGET_MIB}); "
              f"spread {spread:.1%} (target < {TARGET_SPREAD:.0%})")
        ok = ok and max(peaks) < TARGET_MIB and spread < TARGET_SPREAD
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
