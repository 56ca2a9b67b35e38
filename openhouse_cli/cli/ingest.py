"""``ohlog ingest``: load session logs into the store."""

import io
import os
import re
import sys
import time

import click

from ..errors import OhlogError
from . import cli
from .common import EXIT_REJECTED, Refused, db_option, db_target, holds_actions, open_target, plural, shown

INPUT_SUFFIXES = (".json", ".ndjson", ".jsonl", ".gz")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, allow_dash=True))
@db_option
@click.option(
    "--on-error",
    type=click.Choice(["fail", "skip"]),
    default="fail",
    show_default=True,
    help="On a bad record: roll back its input and stop, or store the rest and report it",
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False),
    help="With --on-error skip: write rejected records here as NDJSON, each with its error",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="Commit every N sessions instead of once an input (for endless streams)",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors")
def ingest(paths, db, on_error, rejects, batch_size, quiet):
    """Load session logs (JSON, NDJSON, arrays, .gz; - for stdin) into the database.

    \b
    Examples:
        ohlog ingest examples/sample_log.json
        ohlog ingest examples/          # every .json, .ndjson, .jsonl and .gz file in it
        ohlog ingest - < examples/time_zones.json
    """
    from ..ingest import Counts, IngestFailed, StoreFailed, ingest_input, reject_line, rejects_conflict
    from ..progress import ingest_progress

    if rejects is not None and on_error != "skip":
        raise click.UsageError("--rejects needs --on-error skip")
    inputs, skipped = _expand_inputs(paths)
    _read_once(inputs)
    console = _console(quiet)
    for note in skipped:
        console.print(note, highlight=False, soft_wrap=True, markup=False)
    path = db_target(db)
    _no_databases(inputs, path)
    _refuse_other_formats(inputs)
    total = Counts()
    conflict = rejects is not None and rejects_conflict(rejects, inputs, path)
    if conflict:
        raise Refused(f"--rejects {shown(rejects)} is {conflict}: write the rejects to another file")

    # Created even when nothing is rejected, so that no stale file misleads;
    # a file that already holds something is never overwritten
    rejects_file = _private_file(rejects) if rejects is not None else None

    def on_reject(record, error):
        console.print(f"Rejected {error}", highlight=False, soft_wrap=True, markup=False)
        if rejects_file is not None:
            rejects_file.write(reject_line(record, error))

    started = time.perf_counter()
    _collect_less()
    try:
        new = _is_new(path)
        database = open_target(db)
        empty = _holds_no_actions(database, path)
        for name in inputs:
            with _open(name) as fp, ingest_progress(console, shown(name), fp) as progress:
                counts = ingest_input(
                    database,
                    fp,
                    shown(name),
                    on_error=on_error,
                    batch_size=batch_size,
                    on_reject=on_reject,
                    progress=progress,
                )
            total.add(counts)
            if not counts.sessions and not counts.rejected:
                console.print(f"Warning: {'standard input' if name == '-' else shown(name)} holds"
                              " no records", highlight=False, soft_wrap=True, markup=False)
    except (IngestFailed, StoreFailed) as ex:
        total.add(ex.counts)
        _stored_before(console, total, started, path if new else None)
        raise click.ClickException(str(ex)) from None
    except OhlogError as ex:
        _stored_before(console, total, started, path if new else None)
        raise click.ClickException(str(ex)) from None
    except OSError as ex:
        _stored_before(console, total, started, path if new else None)
        raise click.ClickException(f"{shown(str(ex.filename or 'input'))}: {ex.strerror or ex}") from None
    finally:
        if rejects_file is not None:
            rejects_file.close()
    console.print(_summary(total, started), highlight=False, soft_wrap=True)
    if new or (empty and total.inserted):
        console.print(f"New database: {shown(str(path))}", highlight=False, soft_wrap=True, markup=False)
    if total.rejected:
        sys.exit(EXIT_REJECTED)


def _console(quiet):
    """Where messages go: rich's console on a terminal (it draws the progress
    bar), else plain lines on stderr: importing rich costs more than a small
    ingest does."""
    if sys.stderr.isatty():
        from rich.console import Console

        return Console(stderr=True, quiet=quiet)
    return _PlainConsole(quiet)


class _PlainConsole:
    is_terminal = False

    def __init__(self, quiet):
        self.quiet = quiet

    def print(self, text, **_):
        if not self.quiet:
            sys.stderr.write(f"{text}\n")
            sys.stderr.flush()


def _expand_inputs(paths):
    """Paths as given, directories expanded to the log files inside them; and a
    note for each directory whose hidden entries were skipped."""
    if not paths:
        if sys.stdin is None or sys.stdin.isatty():
            raise click.UsageError("Give one or more files, or - to read stdin")
        return ["-"], []
    inputs, notes = [], []
    for path in paths:
        if path == "-" or not os.path.isdir(path):
            inputs.append(path)
            continue
        found, hidden, others = _log_files(path)
        if not found:
            raise click.UsageError(
                f"No .json, .ndjson, .jsonl or .gz files in {shown(path)}" + (
                    f" but hidden ones ({_names(hidden, path)}): name them to ingest them"
                    if hidden else f" but others ({_names(others, path)}): name them to ingest them"
                    if others else ""))
        inputs.extend(found)
        if hidden:
            notes.append(_skipped(hidden, path))
        if others:  # a rotated log (app.ndjson.1) or events.log would otherwise go unread without a word
            notes.append(f"Skipped {plural(len(others), 'file')} with other suffixes in {shown(path)}"
                         f" ({_names(others, path)}): name them to ingest them")
    return inputs, notes


def _log_files(directory):
    """The log files under ``directory`` (suffixes in any case: LOG.JSON.GZ), in name
    order; the hidden directories and log files skipped, as ripgrep and fd skip
    them (.git, .cache, editors' .swp copies...): ``[(path, is_dir)]``; and the
    files, not hidden, named as logs are but with another suffix, in the same form."""
    found, hidden, others = [], [], []

    def unreadable(error):
        # os.walk skips a directory it cannot list unless told: its files would go unread
        raise click.UsageError(f"Cannot read directory {shown(error.filename)}: {error.strerror}")

    # Symbolic links to directories are followed, as those to files are (found
    # from outside: their logs went unread without a word); a directory
    # reached twice (a link back up the tree, or two links to one place) is read once
    visited = set()
    for top, dirs, files in os.walk(directory, onerror=unreadable, followlinks=True):
        here = os.stat(top)
        if (here.st_dev, here.st_ino) in visited:
            dirs[:] = []
            continue
        visited.add((here.st_dev, here.st_ino))
        for name in sorted(dirs):
            if name.startswith("."):
                hidden.append((os.path.join(top, name), True))
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        for name in files:
            full = os.path.join(top, name)
            if not name.lower().endswith(INPUT_SUFFIXES):
                if not name.startswith(".") and _looks_like_a_log(name):
                    others.append((full, False))
                continue
            if name.startswith("."):
                hidden.append((full, False))
            elif os.path.isfile(full) and os.access(full, os.R_OK):
                found.append(full)
            else:
                raise click.UsageError(f"{shown(full)} {_not_a_file(full)}: remove it, or name"
                                       " the files to ingest one by one")
    return sorted(found), sorted(hidden), sorted(others)


def _looks_like_a_log(name):
    """Whether a file ingest does not read by its suffix has a log's name
    all the same (app.ndjson.1, app.ndjson-20240101 as logrotate's dateext
    names it, app.jsonl~, events.log): said, not read. A
    README or notes.txt beside the logs is not worth a word."""
    return not _LOG_WORDS.isdisjoint(re.split(r"[^a-z0-9]+", name.lower())[1:])


_LOG_WORDS = frozenset({"json", "ndjson", "jsonl", "log"})


def _not_a_file(path):
    """What a log file's name in a directory is, when it is not a regular file
    (skipping it would leave its actions unread without a word)."""
    if os.path.islink(path) and not os.path.exists(path):
        return f"is a broken symbolic link (to {shown(os.readlink(path))})"
    if os.path.isfile(path):  # found from outside: its error came after the files before it were stored
        return "cannot be read (permission denied)"
    return "is not a regular file"


def _skipped(hidden, directory):
    dirs = sum(is_dir for _, is_dir in hidden)
    parts = [f"{dirs:,} hidden director{'y' if dirs == 1 else 'ies'}"] if dirs else []
    if len(hidden) > dirs:
        parts.append(plural(len(hidden) - dirs, "hidden log file"))
    return (f"Skipped {' and '.join(parts)} in {shown(directory)} ({_names(hidden, directory)}): "
            "name them to ingest them")


def _names(hidden, directory):
    return ", ".join(shown(os.path.relpath(p, directory)) + ("/" if d else "")
                     for p, d in hidden[:3]) + (", ..." if len(hidden) > 3 else "")


def _read_once(inputs):
    """UsageError if stdin or another stream (a pipe, a FIFO) is named twice, as ``- -`` or
    ``- /dev/stdin``: its second read would find it empty. A file may be named twice."""
    import os
    import stat

    def label(name):
        return "- (stdin)" if name == "-" else shown(name)

    seen = {}
    for name in inputs:
        try:
            found = os.fstat(sys.stdin.fileno()) if name == "-" else os.stat(name)
        except (OSError, ValueError, AttributeError):  # stdin closed; a file that went
            found = None
        stream = found is not None and (stat.S_ISFIFO(found.st_mode) or stat.S_ISSOCK(found.st_mode))
        if name == "-" or stream:
            key = (found.st_dev, found.st_ino) if found else name
            if key in seen:
                again = ("is given twice" if seen[key] == name
                         else f"is the same stream as {label(seen[key])}")
                raise click.UsageError(f"{label(name)} {again}: a stream can be read only once")
            seen[key] = name


_SQLITE_HEADER = b"SQLite format 3\x00"


def _no_databases(inputs, target):
    """UsageError, before anything is stored, if an input is a SQLite database
    (sqlite-utils takes the database first: ``ohlog ingest log.json ohlog.db``
    read the database as a log, after the logs before it were stored)."""
    for name in inputs:
        if name == "-" or not os.path.isfile(name):
            continue
        try:
            with open(name, "rb") as f:
                head = f.read(len(_SQLITE_HEADER))
        except OSError:
            continue  # reading it will say why
        if head == _SQLITE_HEADER:
            if isinstance(target, os.PathLike) and os.path.exists(target) and os.path.samefile(name, target):
                raise click.UsageError(f"{shown(name)} is the database ingest writes to, not a log:"
                                       " name the logs to read")
            raise click.UsageError(
                f"{shown(name)} is a SQLite database, not a log: name the database with --db"
                f" {shown(name)} (ohlog copy moves actions from one database to another)")


def _refuse_other_formats(inputs):
    """Refuse an xz, zip, UTF-16 ... file by its first bytes before the
    database is opened: a first ingest would otherwise create it, empty."""
    from ..errors import InvalidInput
    from ..readers import refuse_other_format

    for name in inputs:
        if name == "-" and sys.stdin is None:  # closed (<&-), as under some daemons
            raise click.ClickException("standard input is closed: name the files to ingest")
        try:
            if name != "-" and os.path.isfile(name):  # a FIFO or <(...) is read once: by the ingest
                with open(name, "rb") as head:
                    refuse_other_format(head.read(1 << 16), shown(name))
            elif name == "-" and hasattr(sys.stdin.buffer, "peek"):  # peeked, not read
                refuse_other_format(sys.stdin.buffer.peek(8), "-")
        except OSError:
            pass  # the reading says it, located, as before
        except InvalidInput as ex:
            raise click.ClickException(str(ex)) from None


def _stored_before(console, total, started, created=None):
    """Say what the inputs before a failed one stored: they stay committed;
    and name the database that ``created`` names, if this run created it and
    stored something in it (found from outside: a mistyped --db went unsaid
    when a later input failed). Before the error, which stays the last line."""
    if total.inputs:
        console.print(f"Stored before the error: {_summary(total, started)}",
                      highlight=False, soft_wrap=True)
        if created is not None and total.inserted:
            console.print(f"New database: {shown(str(created))}", highlight=False, soft_wrap=True,
                          markup=False)


def _private_file(path):
    """Open ``path`` for writing, readable by its owner only: rejects hold user records.

    A regular file that is not empty is refused (exit 2): it may be notes, an
    earlier run's rejects or another log. An empty one, /dev/null or a FIFO is fine.
    """
    import os
    import stat

    _refuse_if_not_empty(path, lambda: os.stat(path))
    try:
        # No O_TRUNC, and appending: the file is checked again once open, and
        # should anything write to it after that, nothing of it is overwritten
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError as ex:
        raise click.ClickException(f"Cannot write {shown(path)}: {ex.strerror}") from None
    try:
        _refuse_if_not_empty(path, lambda: os.fstat(fd))
    except Refused:
        os.close(fd)
        raise
    # Only a regular file is ours to make private: /dev/null, a FIFO or a
    # terminal belongs to the system (as root, fchmod would lock others out)
    if stat.S_ISREG(os.fstat(fd).st_mode):
        os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb")


def _is_new(path):
    """Whether ingest is about to create the database file ``path``: said
    after the summary, since a mistyped --db would otherwise make a new
    database without a word (not on failure: an error stays one line)."""
    from ..store.sqlite import is_empty_file
    from ..store.urls import is_url

    return not is_url(path) and (not os.path.lexists(path) or is_empty_file(path))


def _holds_no_actions(database, path):
    """Whether the SQLite database ``path`` holds no action yet: one that a
    failed first ingest left (its error stays one line) is named as new by
    the first ingest that stores something in it."""
    from ..store.urls import is_url

    return not is_url(path) and not holds_actions(database)


def _refuse_if_not_empty(path, status):
    import stat

    try:
        found = status()
    except OSError:
        return  # no such file yet: it is created
    if stat.S_ISREG(found.st_mode) and found.st_size > 0:
        raise Refused(f"--rejects {shown(path)} already exists and is not empty ({found.st_size:,} bytes): "
                      "ohlog never overwrites it; remove it or name a new file")


def _open(name):
    """The input as a binary stream, buffered a CHUNK at a time: the reader
    peeks that far ahead to tell NDJSON from a pretty-printed document, and
    8 KiB (the default) fell short of long lines (found from outside)."""
    from ..readers import CHUNK

    if name == "-":
        import contextlib

        return contextlib.nullcontext(io.BufferedReader(sys.stdin.buffer, CHUNK))
    return open(name, "rb", buffering=CHUNK)


def _summary(counts, started):
    elapsed = time.perf_counter() - started
    rate = counts.actions / elapsed if elapsed > 0 else 0
    return (
        f"{plural(counts.inputs, 'input')}, {plural(counts.sessions, 'session')}: "
        f"{plural(counts.inserted, 'action')} inserted, {plural(counts.duplicates, 'duplicate')}, "
        f"{counts.rejected:,} rejected in {elapsed:.2f}s ({rate:,.0f} actions/s)"
    )


def _collect_less():
    """Spare ingest most of the garbage collector's passes: what is loaded
    so far is never garbage (frozen, so no pass looks at it again), and a
    chunk's rows, which hold no cycles, need not be looked at every 700
    allocations. Set for this process only, and for its validating worker."""
    import gc

    gc.freeze()
    gc.set_threshold(20_000, 10, 10)
