"""Validating NDJSON on a second core while the first writes to SQLite.

Parsing and validating cost more than SQLite's inserts, so for a large
NDJSON input a worker process (forked, so it starts in milliseconds) turns
chunks of lines into rows while the main process stores the previous chunk.
Where fork does not exist, the same chunks are validated in one process.
Chunks come back in order, so locations, atomicity and dedupe are unchanged.
"""

import itertools
import marshal
import multiprocessing
import os
import signal
from collections import deque

from .errors import InvalidInput, OhlogError
from .locate import field_line_offset
from .readers import ndjson_lines, ndjson_record
from .validate import session_rows

LINES_PER_CHUNK = 500
CHUNKS_IN_FLIGHT = 3


def validate_records(records, name):
    """Yield a ``(rows, sessions, rejects)`` item for each Record.

    A good record gives ``(its rows, 1, [])``, a bad one ``([], 0, [(record, error)])``.
    """
    for record in records:
        try:
            if record.error:
                raise record.error
            yield session_rows(record.value, f"{name}:{record.line}"), 1, []
        except InvalidInput as error:
            yield [], 0, [(record, _at_field_line(record, error, name))]


def _at_field_line(record, error, name):
    """In a pretty-printed record, move the error to the line of its field."""
    raw = record.raw
    if not error.field or not isinstance(raw, str) or "\n" not in raw:
        return error
    offset = field_line_offset(raw, error.field)
    if not offset:
        return error
    return InvalidInput(f"{name}:{record.line + offset}", error.field, error.message, error.record)


def validate_chunk(name, first_number, lines, stop_at_error):
    """The worker's job: one ``(rows, sessions, rejects)`` item for a chunk of NDJSON lines.

    The rows travel back marshalled: 4x cheaper to write than pickle and
    cheaper to read, and the main process is the busier of the two.
    """
    rows, sessions, rejects = [], 0, []
    records = (ndjson_record(line, number, name) for number, line in enumerate(lines, first_number))
    for part, good, bad in validate_records((r for r in records if r is not None), name):
        rows += part
        sessions += good
        rejects += bad
        if bad and stop_at_error:
            break
    return marshal.dumps(rows), sessions, rejects


def validate_ndjson(fp, name, first, blank_lines, stop_at_error):
    """validate_records for an NDJSON input, a chunk of lines an item, using a
    worker process once the input is large."""
    chunks = _chunks(itertools.chain([first], ndjson_lines(fp)), blank_lines + 1)
    first_chunk = next(chunks, None)
    if first_chunk is None:
        return
    yield _unmarshalled(validate_chunk(name, *first_chunk, stop_at_error))
    second_chunk = next(chunks, None)
    if second_chunk is None:  # small inputs never pay for a process
        return
    pool = _worker_pool()
    if pool is None:  # no fork here: validate in this process, in the same order
        for chunk in itertools.chain([second_chunk], chunks):
            yield _unmarshalled(validate_chunk(name, *chunk, stop_at_error))
        return
    from concurrent.futures.process import BrokenProcessPool

    try:
        pending = deque([pool.submit(validate_chunk, name, *second_chunk, stop_at_error)])
        for chunk in chunks:
            pending.append(pool.submit(validate_chunk, name, *chunk, stop_at_error))
            if len(pending) >= CHUNKS_IN_FLIGHT:
                yield _unmarshalled(pending.popleft().result())
        while pending:
            yield _unmarshalled(pending.popleft().result())
    except BrokenProcessPool:
        raise OhlogError(f"{name}: the validating worker process died") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # at most the chunks in flight


def can_fork() -> bool:
    """Whether this platform starts processes by fork (not Windows; not
    macOS's default, though it has fork). Spawning a fresh interpreter for the
    worker would cost more than it saves, so without fork there is none."""
    return "fork" in multiprocessing.get_all_start_methods()


def _worker_pool():
    """A one-process pool for validate_chunk, or None where fork is not to be had."""
    if not can_fork():
        return None
    from concurrent.futures import ProcessPoolExecutor

    try:
        return ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("fork"),
            initializer=_die_with_parent, initargs=(os.getpid(),),
        )
    except (OSError, ValueError, ImportError):  # e.g. no semaphores (/dev/shm) to be had
        return None


def _die_with_parent(parent_pid):
    """Worker start-up: end when the main process ends, even by kill -9,
    instead of waiting forever for work that will never come."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the orphan ends when its pipe breaks
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took hold
        os._exit(1)


def _unmarshalled(item):
    rows, sessions, rejects = item
    return marshal.loads(rows), sessions, rejects


def _chunks(lines, first_number):
    while True:
        chunk = list(itertools.islice(lines, LINES_PER_CHUNK))
        if not chunk:
            return
        yield first_number, chunk
        first_number += len(chunk)
