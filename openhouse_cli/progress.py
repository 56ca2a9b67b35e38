"""Ingest progress on a terminal: a bar for large files, a count for stdin."""

import contextlib
import os

# Smaller inputs finish before a bar would be worth drawing
MIN_BAR_BYTES = 8 << 20


@contextlib.contextmanager
def ingest_progress(console, name, fp):
    """Yield a ``progress(records_done)`` callback, or None when nothing should show.

    Shown only when stderr is a terminal and not --quiet: never in pipes.
    """
    if console.quiet or not console.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
    )

    size = _file_size(fp)
    if size is not None and size < MIN_BAR_BYTES:
        yield None
        return
    if size is None:  # a stream: count the sessions
        columns = [TextColumn("{task.description}: {task.completed:,} sessions")]
    else:
        columns = [TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                   TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(name, total=size)

        def progress(records_done):
            # For a file, its byte position; gzip reads through fp, so this
            # is the compressed position, matching the size.
            bar.update(task, completed=records_done if size is None else fp.tell())

        yield progress


def _file_size(fp):
    try:
        if not os.path.isfile(fp.name):
            return None
        return os.fstat(fp.fileno()).st_size
    except (AttributeError, OSError, TypeError, ValueError):
        return None


@contextlib.contextmanager
def count_progress(console, name, total):
    """Yield a ``progress(done)`` callback drawing a bar towards ``total``
    (rows, say), or None when nothing should show (not a terminal, --quiet,
    no total)."""
    if console.quiet or not console.is_terminal or not total:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task(name, total=total)
        yield lambda done: bar.update(task, completed=done)
