"""Rendering query results: a table for people; JSON, NDJSON and CSV for pipes.

Every renderer streams: rows are written as they come from the cursor, so
memory stays flat however many actions match. JSON and NDJSON lines are built
by ``query.query_json`` and only encoded and written here. The table is
drawn by ``table.py``.
"""

import json
import os
import sys

from .errors import OhlogError
from .query import count_actions, query_actions, query_json, query_rows

FORMATS = ("table", "json", "ndjson", "csv")
CSV_HEADER = ("userId", "sessionId", "time", "type", "properties")
FLAGS = "--format, --table, --json, --nl or --csv"
_BATCH = 500  # rows joined into one write
_TABLE_CHUNK = 200  # rows laid out together


class FormatError(OhlogError, ValueError):
    """Conflicting output flags."""


def choose_format(format_=None, *, table=False, json_=False, nl=False, csv_=False, isatty=False):
    """The output format: the one flag given, else a table on a terminal and JSON otherwise."""
    chosen = [
        name
        for name, given in (
            (format_, format_ is not None),
            ("table", table),
            ("json", json_),
            ("ndjson", nl),
            ("csv", csv_),
        )
        if given
    ]
    if len(chosen) > 1:
        raise FormatError(f"Use just one of {FLAGS}")
    if chosen:
        if chosen[0] not in FORMATS:
            raise FormatError(f"Unknown format {chosen[0]!r}: expected one of {', '.join(FORMATS)}")
        return chosen[0]
    return "table" if isatty else "json"


def check_format(fmt, *, fields=None, show_tz=None):
    """FormatError unless ``fmt`` is a format and takes the options given."""
    if fmt not in FORMATS:
        raise FormatError(f"Unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fields is not None and fmt == "table":
        raise FormatError("--fields chooses what JSON, NDJSON and CSV print: add --json, --nl "
                          "or --csv")
    if show_tz is not None and fmt != "table":
        raise FormatError("--show-tz is for the table; in JSON, NDJSON and CSV, --fields utc "
                          "gives each instant in UTC")


def render(fmt, db, filters, *, stdout=None, fields=None, show_tz=None):
    """Run the query ``filters`` on ``db`` and write it to ``stdout`` as ``fmt``.

    ``fields``: the names (fields.parse_fields) each JSON, NDJSON or CSV row
    holds, in order; None for the five stored fields as always. ``show_tz``:
    a tzinfo in which the table shows every time; None for the time as sent.
    A reader that goes away (``ohlog query | head``) ends the output quietly.
    """
    check_format(fmt, fields=fields, show_tz=show_tz)
    stdout = sys.stdout if stdout is None else stdout
    try:
        if fmt == "table":
            _render_table(db, filters, stdout, show_tz)
            return
        out = stdout.buffer if hasattr(stdout, "buffer") else stdout
        if fields is not None:
            _render_fields(fmt, db, filters, fields, out)
        elif fmt == "json":
            write_json(query_json(db, **filters), out)
        elif fmt == "ndjson":
            write_ndjson(query_json(db, **filters), out)
        else:
            write_csv(query_rows(db, **filters), out)
        out.flush()
    except BrokenPipeError:
        _silence(stdout)


def _render_fields(fmt, db, filters, names, out):
    from . import fields

    rows = _query_columns(db, fields.COLUMNS, filters)
    if fmt == "csv":
        write_csv(fields.csv_rows(rows, names), out, header=names)
    else:
        (write_json if fmt == "json" else write_ndjson)(fields.json_lines(rows, names), out)


def _query_columns(db, columns, filters):
    # query.py's runner, for columns beyond the five the public functions give
    from .query import _execute

    return _execute(db, columns, filters)


def follow_writer(fmt, names, out):
    """A function that writes a batch of rows (fields.COLUMNS) as NDJSON or CSV
    lines to the binary ``out`` and flushes it: ``ohlog query --follow``."""
    from . import fields
    from .query import _json_lines

    if fmt == "csv":
        header = names or CSV_HEADER
        write_csv((), out, header=header)  # the header at once
        out.flush()
        if names:
            return lambda rows: (_csv_body(fields.csv_rows(rows, names), out), out.flush())
        return lambda rows: (_csv_body((row[:5] for row in rows), out), out.flush())
    if names:
        return lambda rows: (write_ndjson(fields.json_lines(rows, names), out), out.flush())
    return lambda rows: (write_ndjson(_json_lines(row[:5] for row in rows), out), out.flush())


def follow_table(stdout, show_tz=None):
    """A function that draws a batch of rows (fields.COLUMNS) as lines of a
    table and flushes: ``ohlog query --follow`` on a terminal or with --table.

    The header comes with the first rows, or once the stored rows are out
    (``write.start``); the columns are at least as wide as a time with its
    offset, ids of 10 and a type of 8, and stay as they are drawn (a longer
    value folds in its column) unless there is no width (a pipe).
    """
    from .fields import zoned_text
    from .table import TableWriter, cells, terminal_width

    stdout = _utf8(stdout)
    width = terminal_width(stdout)
    header = "Time" if show_tz is None else f"Time ({_zone_name(show_tz)})"
    from datetime import timezone

    times = len("2018-10-18T21:37:28Z" if show_tz is timezone.utc else "2018-10-18T21:37:28-06:00")
    writer = TableWriter(stdout, width=width, time_header=header, minimum=(times, 10, 10, 8),
                         bold=_bold(stdout, width))
    loads = json.loads

    def write(rows):
        writer.write([cells(row[2] if show_tz is None else zoned_text(row, show_tz),
                            row[0], row[1], row[3], loads(row[4])) for row in rows])
        stdout.flush()

    def start():
        writer.start()
        stdout.flush()

    write.start = start  # type: ignore[attr-defined]
    return write


def _csv_body(rows, out):
    import csv
    import io

    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    try:
        csv.writer(text).writerows(rows)
    finally:
        text.detach()


def _silence(stdout):
    # Point the descriptor at /dev/null so that the flush at exit does not fail again
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def write_json(lines, out):
    """``{"actions": [...]}`` with one action a line; ``lines`` are JSON texts, ``out`` binary."""
    lines = iter(lines)
    first = next(lines, None)
    if first is None:
        out.write(b'{"actions": []}\n')
        return
    out.write(b'{"actions": [\n  ' + first.encode())
    for batch in batches(lines):
        out.write(b",\n  " + ",\n  ".join(batch).encode())
    out.write(b"\n]}\n")


def write_ndjson(lines, out):
    """One JSON action a line; ``out`` is binary."""
    for batch in batches(lines):
        batch.append("")
        out.write("\n".join(batch).encode())


def write_csv(rows, out, header=CSV_HEADER):
    """The header, then one row an action; properties as JSON text; ``out`` is binary."""
    import csv
    import io

    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    try:
        writer = csv.writer(text)
        writer.writerow(header)
        for batch in batches(rows):
            writer.writerows(batch)
    finally:
        text.detach()


def batches(items, size=_BATCH):
    """``items`` as lists of ``size`` (the last one shorter)."""
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _render_table(db, filters, stdout, show_tz=None):
    from .table import terminal_width

    limit = filters.get("limit")
    stdout = _utf8(stdout)
    header = "Time"
    if show_tz is None:
        actions = query_actions(db, **filters)
    else:
        from .fields import COLUMNS

        actions = _in_zone(_query_columns(db, COLUMNS, filters), show_tz)
        header = f"Time ({_zone_name(show_tz)})"
    try:
        shown = write_table(actions, stdout, time_header=header, width=terminal_width(stdout))
    finally:
        actions.close()  # now, while the store is open (a closed pipe ends it early)
    more = 0
    if limit is not None and shown == limit:
        more = count_actions(db, **filters) - shown
    write_footer(shown, more, stdout)
    stdout.flush()


def _utf8(stdout):
    """``stdout``, or if it encodes in anything but UTF-8 (a Latin-1 or ASCII
    locale), a writer of UTF-8 to its bytes: every other format writes UTF-8,
    and most of the data would not encode."""
    encoding = (getattr(stdout, "encoding", None) or "").lower().replace("_", "-")
    if not hasattr(stdout, "buffer") or encoding in ("utf-8", "utf8"):
        return stdout
    stdout.flush()
    return _Utf8Writer(stdout)


class _Utf8Writer:
    """Text in, UTF-8 bytes out to ``stdout.buffer``. (Not a TextIOWrapper: one
    would close the buffer under it when collected.)"""

    encoding = "utf-8"

    def __init__(self, stdout):
        self._stdout = stdout
        self._buffer = stdout.buffer

    def write(self, text):
        self._buffer.write(text.encode("utf-8", "surrogateescape"))
        return len(text)

    def flush(self):
        self._buffer.flush()

    def isatty(self):
        return self._stdout.isatty()

    def fileno(self):
        return self._stdout.fileno()


def _in_zone(rows, tz):
    """The actions of ``rows`` (fields.COLUMNS) with each time shown in zone ``tz``."""
    from .fields import zoned_text

    loads = json.loads
    for row in rows:
        yield {"time": zoned_text(row, tz), "userId": row[0], "sessionId": row[1],
               "type": row[3], "properties": loads(row[4])}


def _zone_name(tz):
    return getattr(tz, "key", None) or str(tz)


def write_table(actions, file, *, time_header="Time", width=None):
    """Draw the actions (dicts, as query_actions yields) as a table ``width``
    cells wide (None: no limit, each row on one line); return how many.

    Drawn a few hundred rows at a time: the first chunk sets the columns'
    widths, and a later one only widens them (table.TableWriter).
    """
    from .table import TableWriter, cells

    writer = TableWriter(file, width=width, time_header=time_header, bold=_bold(file, width))
    shown = 0
    for chunk in batches(actions, _TABLE_CHUNK):
        shown += writer.write([cells(a["time"], a["userId"], a["sessionId"], a["type"],
                                     a["properties"]) for a in chunk])
    writer.start()  # no rows: the header alone
    return shown


def _bold(file, width):
    """Whether the header is bold: on a terminal (table.styled) drawn to its width."""
    from .table import styled

    return width is not None and styled(file)


def write_footer(shown, more, file):
    """The table's footer: how many actions, and how many more matched beyond --limit."""
    line = f"{shown:,} action{'' if shown == 1 else 's'}"
    if more:
        line += f" shown, {more:,} more matched"
    file.write(line + "\n")
