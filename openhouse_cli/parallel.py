"""Validating NDJSON on a second core while the first writes to SQLite.

Parsing and validating cost more than SQLite's inserts, so for a large
NDJSON input a worker process (forked, so it starts in milliseconds) turns
chunks of lines into rows while the main process stores the previous chunk.
Chunks come back in order, so locations, atomicity and dedupe are unchanged.
"""

import itertools
import multiprocessing
from collections import deque

from .errors import InvalidInput, OhlogError
from .readers import ndjson_record
from .validate import session_rows

LINES_PER_CHUNK = 500
CHUNKS_IN_FLIGHT = 3


def validate_records(records, name):
    """Yield ``(None, rows)`` for each good Record and ``(record, error)`` for each bad one."""
    for record in records:
        try:
            if record.error:
                raise record.error
            yield None, session_rows(record.value, f"{name}:{record.line}")
        except InvalidInput as error:
            yield record, error


def validate_chunk(name, first_number, lines):
    """The worker's job: validate_records over a chunk of NDJSON lines, as a list."""
    records = (ndjson_record(line, number, name) for number, line in enumerate(lines, first_number))
    return list(validate_records((r for r in records if r is not None), name))


def validate_ndjson(fp, name, first, blank_lines):
    """validate_records for an NDJSON input, using a worker process once it is large."""
    chunks = _chunks(itertools.chain([first], fp), blank_lines + 1)
    first_chunk = next(chunks, None)
    if first_chunk is None:
        return
    yield from validate_chunk(name, *first_chunk)
    second_chunk = next(chunks, None)
    if second_chunk is None:  # small inputs never pay for a process
        return
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
    try:
        pending = deque([pool.submit(validate_chunk, name, *second_chunk)])
        for chunk in chunks:
            pending.append(pool.submit(validate_chunk, name, *chunk))
            if len(pending) >= CHUNKS_IN_FLIGHT:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    except BrokenProcessPool:
        raise OhlogError(f"{name}: the validating worker process died") from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _chunks(lines, first_number):
    while True:
        chunk = list(itertools.islice(lines, LINES_PER_CHUNK))
        if not chunk:
            return
        yield first_number, chunk
        first_number += len(chunk)
