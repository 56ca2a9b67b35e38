"""Rendering query results: a rich table for people; JSON, NDJSON and CSV for pipes.

Every renderer streams: rows are written as they come from the cursor, so
memory stays flat however many actions match. JSON and NDJSON lines are built
by ``query.query_json`` and only encoded and written here. rich is
imported only when a table is drawn.
"""

import json
import os
import re
import sys

from .errors import OhlogError
from .query import count_actions, query_actions, query_json, query_rows

FORMATS = ("table", "json", "ndjson", "csv")
CSV_HEADER = ("userId", "sessionId", "time", "type", "properties")
FLAGS = "--format, --table, --json, --nl or --csv"
_BATCH = 500  # rows joined into one write
_TABLE_CHUNK = 200  # rows in each rich Table drawn


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
        shown = write_table(actions, stdout, time_header=header)
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
    and rich would fail on most of the data."""
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


def write_table(actions, file, *, time_header="Time"):
    """Draw the actions as rich tables of a few hundred rows each; return how many.

    The first columns only grow from one chunk to the next, so the chunks line up.
    """
    from rich import box
    from rich.console import Console
    from rich.cells import cell_len
    from rich.table import Table
    from rich.text import Text

    console = Console(file=file, highlight=False)

    def on_broken_pipe():
        # rich would exit with status 1; render() ends quietly instead, as every format does
        raise BrokenPipeError

    console.on_broken_pipe = on_broken_pipe
    headers = (time_header, "User", "Session", "Type", "Properties")
    widths = [len(h) for h in headers[:-1]]
    shown = 0
    chunk = []

    def draw(first):
        table = Table(box=box.SIMPLE_HEAD, show_header=first, show_edge=False, pad_edge=False)
        for header, width in zip(headers[:-1], widths):
            table.add_column(header, width=width, overflow="fold")
        table.add_column(headers[-1], overflow="fold")  # the properties take what is left
        for row in chunk:
            table.add_row(*row)
        console.print(table)

    for action in actions:
        row = _table_row(action)
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], min(cell_len(cell), 40))
        chunk.append([Text(cell) for cell in row])
        shown += 1
        if len(chunk) >= _TABLE_CHUNK:
            draw(shown == len(chunk))
            chunk = []
    if chunk or not shown:
        draw(shown == len(chunk))
    return shown


def _table_row(action):
    """The cells as plain strings (drawn as rich Text, so never read as markup),
    with the data's control characters made visible: a log must not be able
    to drive the reader's terminal (clear it, retitle it, write the clipboard)."""
    return (
        _visible(action["time"]),
        _visible(action["userId"]),
        _visible(action["sessionId"]),
        _visible(action["type"]),
        "\n".join(_property_lines(action["properties"])),
    )


def _property_lines(properties):
    for key, value in properties.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        yield f"{_visible(key)}: {_visible(shown)}"


# C0 and C1 control characters, DEL, and the bidirectional overrides
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(text):
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def write_footer(shown, more, file):
    """The table's footer: how many actions, and how many more matched beyond --limit."""
    line = f"{shown:,} action{'' if shown == 1 else 's'}"
    if more:
        line += f" shown, {more:,} more matched"
    file.write(line + "\n")
