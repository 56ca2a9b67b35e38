#!/usr/bin/env python3
"""Time one ``ohlog`` command as a whole process, this tree against another revision.

    .venv/bin/python benchmarks/bench_startup.py --base REV [--repeat 10] [--db PATH] [--no-warm] -- stats --json

Both run as ``python -P -c "from openhouse_cli.cli import cli; cli()"`` with
PYTHONPATH set to the package's tree (this worktree, or ``git archive REV``
unpacked in a temporary directory), so they start the same way; runs are
interleaved, each printed (wall and CPU ms, user + system, and the load
average), then the medians and their ratio. Without ``--db`` an empty
database is made in a temporary directory (what start-up alone costs).
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
TREE = HERE.parent
START = "import sys; from openhouse_cli.cli import cli; sys.exit(cli())"


def timed(argv, env):
    """Wall and CPU seconds of one child, its output discarded; exits if it fails."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    err = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{argv[-3:]} failed: {err.strip()[-400:]}")
    return wall, usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", metavar="REV", required=True)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--db", help="the database (default: a new empty one)")
    parser.add_argument("--no-warm", action="store_true", help="no first run of each to warm up"
                        " (for long commands)")
    parser.add_argument("command", nargs="+", help="the ohlog command and its options")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="ohlog-startup-")
    try:
        archive = subprocess.run(["git", "-C", str(TREE), "archive", args.base, "openhouse_cli"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", scratch], input=archive, check=True)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        envs = {"this": {**env, "PYTHONPATH": str(TREE)}, "base": {**env, "PYTHONPATH": scratch}}
        db = args.db
        if db is None:  # an empty database, made (and migrated) once by this tree
            db = os.path.join(scratch, "empty.db")
            subprocess.run([sys.executable, "-P", "-c", START, "ingest", "--db", db, "-"],
                           input=b"", env=envs["this"], check=True, capture_output=True)
        argv = [sys.executable, "-P", "-c", START, *args.command, "--db", db]
        for env in () if args.no_warm else envs.values():  # warm: compile each tree's bytecode once
            timed(argv, env)
        runs = {name: [] for name in envs}
        print(f"ohlog {' '.join(args.command)} on {db}; load average {os.getloadavg()[0]:.2f}")
        for r in range(args.repeat):
            for name, env in envs.items():
                wall, cpu = timed(argv, env)
                runs[name].append((wall, cpu))
                print(f"run {r + 1:2}  {name:<4} {wall * 1000:8,.1f} ms  cpu {cpu * 1000:8,.1f} ms"
                      f"  (load {os.getloadavg()[0]:.2f})", flush=True)
        medians = {name: (statistics.median(w for w, _ in found), statistics.median(c for _, c in found))
                   for name, found in runs.items()}
        for name, (wall, cpu) in medians.items():
            print(f"median {name:<4} {wall * 1000:8,.1f} ms  cpu {cpu * 1000:8,.1f} ms")
        print(f"this / base: wall {medians['this'][0] / medians['base'][0]:.2f}x, "
              f"cpu {medians['this'][1] / medians['base'][1]:.2f}x; load average {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
