"""Issue 4.6, memory: ingest's peak RSS stays under 100 MB, whatever the input's size.

The CI version ingests the 4.5 MB, 40,000-action NDJSON file of the crash
tests' fast versions. scripts/memory.py does the same for 200 MB and 2 GB and prints the
figures the README quotes.
"""

import pytest

from .test_reliability_common import OHLOG, count, generated, run_measured

LIMIT_MB = 100


@pytest.fixture(scope="module")
def big(request):
    return generated(request.config, 40_000)


def test_ingest_of_4_mb_stays_under_100_mb(tmp_path, big):
    db = tmp_path / "memory.db"
    code, rss_mb, stderr = run_measured([OHLOG, "ingest", "--db", db, "--quiet", big])
    assert code == 0, stderr
    assert count(db) == 40_000
    assert big.stat().st_size > 4e6
    assert rss_mb < LIMIT_MB, f"peak RSS {rss_mb:.0f} MB"
