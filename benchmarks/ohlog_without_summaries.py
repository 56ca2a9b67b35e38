#!/usr/bin/env python3
"""``ohlog`` with the summaries' tally switched off: what the summaries cost at ingest.

    python benchmarks/ohlog_without_summaries.py ingest FILE --db DB

For ``bench_ingest.py --tools ohlog,ohlog-bare,reference`` only. The
validating worker's ``rollups.tally`` is replaced by one that counts
nothing, so the writer upserts no summary row; everything else (reading,
validation, the fingerprint, the inserts, the index builds) runs as in
``ohlog ingest``. The database it leaves has no summaries: the analyses'
answers from it are wrong. (A write that meets a duplicate still counts its
rows from the table; the benchmark's fresh databases meet none.)
"""

import sys

import openhouse_cli.parallel
from openhouse_cli.cli import cli
from openhouse_cli.rollups import tally


def _nothing_counted(rows):
    return tuple([] for _ in tally([]))


if __name__ == "__main__":
    openhouse_cli.parallel.tally = _nothing_counted
    sys.exit(cli())
