"""Reading and validating on a second core while the first writes to the store.

One pipeline for every input shape: ``readers.read_records`` yields records
with their location, ``validate_records`` turns them into rows or located
errors, and the store writes. For a large input the first two stages run in
a forked worker process: it carries on with the very reader the main process
started (fork copies it, position and all), so NDJSON, arrays and
pretty-printed objects all take the same path, and the main process only
inserts. Small inputs (one chunk) never pay for the process; where fork does
not exist, the same chunks are validated in one process. Chunks come back in
order, so locations, atomicity and dedupe are unchanged.
"""

import gc
import itertools
import marshal
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading

from .errors import InvalidInput, OhlogError
from .locate import field_line_offset
from .rollups import tally
from .validate import session_rows

# 250 sessions (about 3,000 actions) a chunk: with 500, the two processes
# together peaked at 101 MiB of PSS on a 300k-action JSON array; with 250 at
# 79 MiB (both inputs in flight, parsed and as rows, are about half), and no
# slower, with the main process receiving chunks ahead (_Worker.items).
RECORDS_PER_CHUNK = 250
# Chunks received ahead of the writer (each about 1 MB as received)
_CHUNKS_AHEAD = 3


def validate_records(records, name):
    """Yield a ``(rows, sessions, rejects, tally)`` item for each Record.

    A good record gives ``(its rows, 1, [], None)``, a bad one
    ``([], 0, [(record, error)], None)``. (``tally``, the rows counted for the
    summaries, is left to the store here: these items are small.)
    """
    for record in records:
        try:
            if record.error:
                raise record.error
            yield session_rows(record.value, f"{name}:{record.line}"), 1, [], None
        except InvalidInput as error:
            yield [], 0, [(record, _at_field_line(record, error, name))], None


def _at_field_line(record, error, name):
    """In a pretty-printed record, move the error to the line of its field;
    in an array, name the record's place in it before the field."""
    raw = record.raw
    placed = record.index is not None and not record.ends_input
    offset = (field_line_offset(raw, error.field)
              if error.field and isinstance(raw, str) and "\n" in raw else 0)
    if not offset and not placed:
        return error
    field = error.field
    if placed:
        field = f"[{record.index}].{field}" if field else f"[{record.index}]"
    return InvalidInput(f"{name}:{record.line + offset}", field, error.message, error.record)


def _pickled_rejects(sessions, rejects) -> bytes:
    """``(sessions, rejects, None)`` pickled for the main process. A rejected
    record nested deeper than pickle can go (found from outside: a traceback)
    is sent as its text alone, which --rejects writes with the reason spliced in."""
    try:
        return pickle.dumps((sessions, rejects, None), pickle.HIGHEST_PROTOCOL)
    except RecursionError:
        for record, error in rejects:
            record.value, record.deep, error.record = None, True, None
        return pickle.dumps((sessions, rejects, None), pickle.HIGHEST_PROTOCOL)


def validate_chunk(records, name, stop_at_error):
    """One ``(rows, sessions, rejects, tally)`` item for a list of Records:
    ``tally`` is ``rollups.tally(rows)``, worked out here, on the worker's
    core, so that the store's writer need not group the rows again."""
    rows, sessions, rejects = [], 0, []
    session_rows_, at_field_line = session_rows, _at_field_line
    for record in records:
        # validate_records, inlined: this loop is ingest's hot path
        try:
            if record.error:
                raise record.error
            rows += session_rows_(record.value, f"{name}:{record.line}")
            sessions += 1
        except InvalidInput as error:
            rejects.append((record, at_field_line(record, error, name)))
            if stop_at_error:
                break
    return rows, sessions, rejects, tally(rows)


def validated_chunks(records, name, stop_at_error):
    """``validate_records`` a chunk of records an item, using a worker process
    once the input is larger than one chunk.

    ``records`` must not be used by the caller afterwards: the worker goes on
    reading it in its own copy of this process.
    """
    chunks = _chunks(records)
    first = next(chunks, None)
    if first is None:
        return
    item = validate_chunk(first, name, stop_at_error)
    yield item
    if item[2] and stop_at_error:
        return
    second = next(chunks, None)
    if second is None:  # small inputs never pay for a process
        return
    chunks = itertools.chain([second], chunks)
    worker = _Worker.start(chunks, name, stop_at_error) if can_fork() else None
    if worker is None:  # no fork here: validate in this process, in the same order
        for chunk in chunks:
            item = validate_chunk(chunk, name, stop_at_error)
            yield item
            if item[2] and stop_at_error:
                return
        return
    try:
        yield from worker.items()
    finally:
        worker.stop()


def can_fork() -> bool:
    """Whether this platform starts processes by fork (not Windows; not
    macOS's default, though it has fork). Spawning a fresh interpreter for the
    worker would cost more than it saves, so without fork there is none."""
    return "fork" in multiprocessing.get_all_start_methods()


class _Worker:
    """A forked process that reads and validates the rest of an input.

    Each chunk travels as two messages: its rows and tally marshalled (4x
    cheaper to write than pickle and cheaper to read; the main process is the
    busier of the two), then ``(sessions, rejects, error)`` pickled. A thread
    of the main process receives them into a queue of _CHUNKS_AHEAD; a full
    queue, then a full pipe, block the worker, so it runs a few chunks ahead
    at most: memory stays flat.
    """

    def __init__(self, process, conn, name):
        self.process = process
        self.conn = conn
        self.name = name
        self.receiver: threading.Thread | None = None  # started by items()
        self.ahead: queue.Queue = queue.Queue(maxsize=_CHUNKS_AHEAD)

    @classmethod
    def start(cls, chunks, name, stop_at_error):
        try:
            context = multiprocessing.get_context("fork")
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(
                target=_work, args=(chunks, name, stop_at_error, sender, receiver, os.getpid()),
                daemon=True,
            )
            # A new process closes its sys.stdin before it runs anything, and
            # closing it closes sys.stdin.buffer: the very reader the worker is
            # to go on with when the input is stdin. So the worker is forked
            # without one.
            stdin, sys.stdin = sys.stdin, None  # type: ignore[assignment]
            try:
                process.start()
            finally:
                sys.stdin = stdin
        except (OSError, ValueError, ImportError):  # e.g. no semaphores (/dev/shm) to be had
            return None
        sender.close()
        return cls(process, receiver, name)

    def items(self):
        # A thread takes the worker's messages off the pipe as they come, a
        # few chunks ahead, so the worker never waits for the main process to
        # finish a write before handing over the next chunk (it did, for
        # every chunk that did not fill a write: 5 s of a 1M-action ingest)
        self.receiver = threading.Thread(target=self._receive, daemon=True)
        self.receiver.start()
        while True:
            message = self.ahead.get()
            if message is None:
                raise OhlogError(f"{self.name}: the validating worker process died")
            counted, (sessions, rejects, error) = message
            if error is not None:
                raise error
            if counted == b"":  # the end
                return
            rows, tally_ = marshal.loads(counted)
            yield rows, sessions, rejects, tally_

    def _receive(self):
        """The receiving thread: each chunk's two messages onto ``ahead``; None if the pipe broke."""
        try:
            while True:
                counted = self.conn.recv_bytes()
                self.ahead.put((counted, pickle.loads(self.conn.recv_bytes())))
                if counted == b"":
                    return
        except (EOFError, OSError):  # the worker died (stop() kills it before closing the pipe)
            self.ahead.put(None)

    def stop(self):
        """End the worker, at once if it is still busy, then the receiving thread.

        The pipe is closed only once the thread has stopped reading it: a
        file descriptor closed under a blocked read may be reused by the next
        file opened, which the thread would then read from.
        """
        if self.process.is_alive():
            self.process.kill()  # it holds nothing but the input it reads and the pipe
        self.process.join()
        if self.receiver is not None:
            # With the worker gone the thread reads what is left, then the end
            # of the pipe; take what it puts so that a full queue cannot hold it
            while self.receiver.is_alive():
                try:
                    self.ahead.get(timeout=0.05)
                except queue.Empty:
                    pass
        self.conn.close()


def _work(chunks, name, stop_at_error, conn, receiver, parent_pid):
    """The worker process's whole life."""
    _die_with_parent(parent_pid)
    # What the fork inherited is never garbage here: set it aside so that
    # collections only look at what the worker makes (6% of its instructions
    # went to the collector; freezing saves about half of that)
    gc.freeze()
    receiver.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    send = conn.send_bytes
    try:
        for chunk in chunks:
            rows, sessions, rejects, tally_ = validate_chunk(chunk, name, stop_at_error)
            send(marshal.dumps((rows, tally_)))
            send(_pickled_rejects(sessions, rejects))
            if rejects and stop_at_error:
                break
        error = None
    except (BrokenPipeError, ConnectionResetError):  # the main process stopped listening
        return
    except OhlogError as ex:  # the reader's own: a broken gzip stream
        error = ex
    except OSError as ex:
        error = OhlogError(f"{name}: {ex.strerror or ex}")
    try:
        send(b"")
        send(pickle.dumps((0, [], error), pickle.HIGHEST_PROTOCOL))
    except (BrokenPipeError, ConnectionResetError):
        pass


def _die_with_parent(parent_pid):
    """Worker start-up: end when the main process ends, even by kill -9,
    instead of blocking forever on a pipe nobody reads."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the orphan ends when its pipe breaks
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took hold
        os._exit(1)


def _chunks(records):
    while True:
        chunk = list(itertools.islice(records, RECORDS_PER_CHUNK))
        if not chunk:
            return
        yield chunk
