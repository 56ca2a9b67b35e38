"""Storing session records: one input, one transaction, nothing twice.

``ingest_input(db, fp, name)`` reads a whole input (a file or stdin) and
commits it at once, or not at all; ``batch_size`` makes every N records a
transaction of their own, for endless streams. ``ingest_sessions(db, docs)``
does the same for documents already parsed (library callers, tests).
Duplicates, the same action sent again, are skipped by the unique index on
(utc_us, ns, fingerprint) and counted.
"""

import json
import os
import stat
import sys
from dataclasses import dataclass, fields, replace

import orjson

from .errors import InvalidInput, OhlogError
from .parallel import validate_records, validated_chunks
from .readers import Record, first_line, open_input, read_records
from .store import as_store

ON_ERROR = ("fail", "skip")
_ROWS_PER_WRITE = 5000
_PROGRESS_EVERY = 2000  # records


@dataclass
class Counts:
    inputs: int = 0
    sessions: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0

    @property
    def actions(self):
        return self.inserted + self.duplicates

    def add(self, other):
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


class IngestFailed(InvalidInput):
    """An input was rolled back; ``counts`` says what was committed before it."""

    def __init__(self, error, counts):
        super().__init__(error.location, error.field, error.message, error.record)
        self.counts = counts


class StoreFailed(OhlogError):
    """A database (or other non-input) error rolled an input back; ``counts``
    says what was committed before it, as for IngestFailed."""

    def __init__(self, message, counts):
        super().__init__(message)
        self.counts = counts


def ingest_input(db, fp, name, *, on_error="fail", batch_size=None, on_reject=None, progress=None):
    """Read every record of the binary input ``fp`` (called ``name`` in messages) into ``db``.

    ``on_error="fail"`` rolls the input (or, with ``batch_size``, the current
    batch) back at the first bad record and raises IngestFailed.
    ``on_error="skip"`` stores the valid records, counts the rejected ones and
    calls ``on_reject(record, error)`` for each. ``progress(records_done)`` is
    called now and then.
    """
    try:
        fp = open_input(fp, name)
        first, blank_lines = first_line(fp)
    except InvalidInput as error:  # not gzip after all, or not text
        raise IngestFailed(error, Counts()) from None
    # One pipeline for every shape: the reader yields located records, they
    # are validated (a chunk at a time, on a second core once the input is
    # large) and the store writes. Batches are for streams that may never
    # end, so each record is stored as soon as it is read.
    records = read_records(fp, name, first, blank_lines)
    if batch_size:
        validated = validate_records(records, name)
    else:
        validated = validated_chunks(records, name, on_error == "fail")
    return _store(db, validated, name, on_error, batch_size, on_reject, progress)


def ingest_sessions(db, sessions, *, source="-", on_error="fail"):
    """Store already-parsed session documents, all in one transaction."""
    records = (Record(number, doc) for number, doc in enumerate(sessions, 1))
    return _store(db, validate_records(records, source), source, on_error, None, None, None)


def _store(db, validated, name, on_error, batch_size, on_reject, progress):
    """Write the ``(rows, sessions, rejects)`` items of ``validated``; see ingest_input."""
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}")
    counts = Counts(inputs=1)
    writer = as_store(db).writer(name)
    pending = Counts()  # what the open transaction holds
    rows, tallies = [], []  # tallies: each item's rollups.tally, or None if some item had none
    in_batch = 0
    next_progress = _PROGRESS_EVERY
    writer.begin()
    try:
        for part, sessions, rejects, tally in validated:
            for record, error in rejects:
                if on_error == "fail":
                    raise IngestFailed(error, _committed(counts))
                if record.ends_input:
                    raise IngestFailed(InvalidInput(
                        error.location, error.field,
                        f"{error.message} (nothing after it can be read, so the input is rolled back)",
                    ), _committed(counts))
                pending.rejected += 1
                if on_reject is not None:
                    on_reject(record, error)
            rows += part
            if tally is None:
                tallies = None
            elif tallies is not None:
                tallies.append(tally)
            pending.sessions += sessions
            in_batch += sessions
            if len(rows) >= _ROWS_PER_WRITE:
                _write(writer, rows, tallies, pending)
                rows, tallies = [], []
            # (items hold one session each when batch_size is set)
            if batch_size and in_batch >= batch_size:
                _write(writer, rows, tallies, pending)
                rows, tallies = [], []
                writer.commit()
                counts.add(pending)
                pending, in_batch = Counts(), 0
                writer.begin()
            if progress and counts.sessions + pending.sessions >= next_progress:
                next_progress += _PROGRESS_EVERY
                progress(counts.sessions + pending.sessions)
        _write(writer, rows, tallies, pending)
        writer.commit()
        counts.add(pending)
    except IngestFailed:
        writer.rollback()
        raise
    except InvalidInput as error:  # raised by the reader itself: a broken gzip stream
        writer.rollback()
        raise IngestFailed(error, _committed(counts)) from None
    except OhlogError as error:  # a database error, or the worker died
        writer.rollback()
        raise StoreFailed(str(error), _committed(counts)) from None
    except BaseException:
        writer.rollback()
        raise
    finally:
        # Stop the validating worker now, not when the generator is collected
        close = getattr(validated, "close", None)
        if close is not None:
            close()
    return counts


def _write(writer, rows, tallies, pending):
    inserted = writer.write(rows, tallies)
    pending.inserted += inserted
    pending.duplicates += len(rows) - inserted


def _committed(counts):
    """What a failed input had committed (batches): the input counts only if any."""
    return replace(counts, inputs=1 if counts.sessions else 0)


def reject_line(record, error):
    """The NDJSON line that ``--rejects`` writes for a rejected record.

    It is the record itself with the reason added under a key that ingest
    ignores: fix it and feed the rejects file straight back in. A record that
    was not JSON at all is written as ``{"ohlog_error": ..., "ohlog_raw": TEXT}``
    (and its exact bytes in ``ohlog_raw_base64`` where they are not UTF-8);
    ingest says what such a line is if it is fed back unchanged.
    """
    reason = str(error)
    if record.deep:  # its value was left behind: the text as it came, with the reason
        spliced = _with_reason(record.raw, reason)
        if spliced is not None:
            return spliced
    if isinstance(record.value, dict):
        line = {**record.value, "ohlog_error": reason}  # the new reason wins over an old one
        try:
            return orjson.dumps(line) + b"\n"
        except orjson.JSONEncodeError:  # integers beyond 64 bits, or nested over 255 deep
            pass
        try:
            return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        except (RecursionError, ValueError):  # deeper still: the text as it came, with the reason
            spliced = _with_reason(record.raw, reason)
            if spliced is not None:
                return spliced
    line = {"ohlog_error": reason, "ohlog_raw": record.raw}
    if isinstance(record.raw, bytes):
        try:
            line["ohlog_raw"] = record.raw.decode("utf-8")
        except UnicodeDecodeError:
            # JSON text cannot hold bytes that are not UTF-8: the text shows
            # them as U+FFFD, and the exact bytes come beside it (found from outside)
            import base64

            line["ohlog_raw"] = record.raw.decode("utf-8", "replace")
            line["ohlog_raw_base64"] = base64.b64encode(record.raw).decode("ascii")
    return orjson.dumps(line, default=str) + b"\n"


def rejects_conflict(rejects: str, inputs: list, database) -> str | None:
    """What the ``--rejects`` file ``rejects`` would destroy, or None.

    Opening it for writing empties it before it is read, so it must be none of
    ``inputs`` ("-" is stdin) and not the ``database`` or its side files. Files
    are compared by device and inode (links, other spellings, stdin redirected
    from the file); side files that do not exist yet by their resolved name.
    """
    target = _identity(rejects)
    for name in inputs:
        if target is not None and target == _identity(name):
            return "also an input (stdin)" if name == "-" else f"also an input ({_printable(name)})"
    resolved = os.path.realpath(rejects)
    for suffix in ("", "-wal", "-shm", "-journal"):
        side = f"{database}{suffix}"
        if resolved == os.path.realpath(side) or (target is not None and target == _identity(side)):
            return f"the database's own file {_printable(side)}"
    return None


def _identity(name):
    """(device, inode) of the regular file ``name`` ("-": stdin), else None.
    Devices and pipes (/dev/null, a FIFO) are not emptied by writing to them."""
    try:
        found = os.fstat(sys.stdin.fileno()) if name == "-" else os.stat(name)
    except (OSError, ValueError, AttributeError):  # no such file; stdin closed or not a file
        return None
    return (found.st_dev, found.st_ino) if stat.S_ISREG(found.st_mode) else None


def _printable(name):
    name = str(name)
    return name if name.isprintable() else name.encode("unicode_escape").decode("ascii")


def _with_reason(raw, reason):
    """The JSON object text ``raw`` on one line with ``ohlog_error`` put first; None if
    ``raw`` is not such text. A parsed record's line breaks can only be white space."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if not isinstance(raw, bytes):
        return None
    body = raw.strip().replace(b"\r", b" ").replace(b"\n", b" ")
    if not body.startswith(b"{") or body[1:].lstrip() == b"}":
        return None
    return b'{"ohlog_error":' + orjson.dumps(reason) + b"," + body[1:] + b"\n"
