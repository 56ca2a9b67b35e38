"""Writing analyses: JSON, NDJSON and CSV for pipes, tables with charts for people.

Tables are drawn with the standard library (rich only for coloured cells on
a terminal, and imported only then). Text from the data has its control
characters made visible, as ``ohlog query``'s table does.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterable
from typing import Any, NamedTuple

from ..fields import exact_dumps

BAR_WIDTH = 24
_BLOCKS = " ▏▎▍▌▋▊▉█"
_SPARKS = "▁▂▃▄▅▆▇█"
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


# Compact JSON, non-ASCII kept; integers beyond 64 bits too (orjson refuses them)
dumps = exact_dumps


def _out(stdout):
    return stdout.buffer if hasattr(stdout, "buffer") else stdout


def write_json(stdout, parts: dict[str, Any]) -> None:
    """One JSON object; each list value has an item a line (an empty one is ``[]``)."""
    out = _out(stdout)
    chunks = []
    for name, value in parts.items():
        head = dumps(name) + b": "
        if isinstance(value, list) and value:
            chunks.append(head + b"[\n  " + b",\n  ".join(dumps(i) for i in value) + b"\n]")
        else:
            chunks.append(head + dumps(value))
    out.write(b"{" + b",\n".join(chunks) + b"}\n")
    out.flush()


def write_json_stream(stdout, name: str, items: Iterable[Any], tail) -> None:
    """``{name: [ item a line ], ...tail()}``, written as the items come;
    ``tail`` is called after the last for the keys that follow the list."""
    out = _out(stdout)
    out.write(b"{" + dumps(name) + b": [")
    first = True
    for item in items:
        out.write((b"\n  " if first else b",\n  ") + dumps(item))
        first = False
    out.write(b"]" if first else b"\n]")
    for key, value in tail().items():
        out.write(b",\n" + dumps(key) + b": " + dumps(value))
    out.write(b"}\n")
    out.flush()


def write_ndjson(stdout, items: Iterable[Any]) -> None:
    out = _out(stdout)
    for item in items:
        out.write(dumps(item) + b"\n")
    out.flush()


def write_csv(stdout, header: list[str], rows: Iterable[list]) -> None:
    """CSV; a list or object cell is written as its JSON text, None as empty."""
    import csv  # here: only CSV output needs it

    text = io.TextIOWrapper(_out(stdout), encoding="utf-8", newline="", write_through=True)
    try:
        writer = csv.writer(text)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if v is None else dumps(v).decode()
                             if isinstance(v, (list, dict, bool)) else v for v in row])
    finally:
        text.detach()


# ---------------------------------------------------------------------------
# Tables


def visible(value: Any) -> str:
    """A cell's text: None empty, JSON for lists and objects, control characters escaped."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = dumps(value).decode() if isinstance(value, (list, dict, bool)) else str(value)
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], value)


def bar(value: float, largest: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar in eighths of a character."""
    if not largest or not value:
        return ""
    eighths = max(1, round(value / largest * width * 8))
    return "█" * (eighths // 8) + (_BLOCKS[eighths % 8] if eighths % 8 else "")


def sparkline(values: list[int]) -> str:
    if not values:
        return ""
    top = max(values) or 1
    return "".join(_SPARKS[min(len(_SPARKS) - 1, v * (len(_SPARKS) - 1) // top)] if v else " "
                   for v in values)


def number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def seconds(value: float | None) -> str:
    """``1m02s``, ``3h05m``, ``2d04h``; under a minute to the millisecond (``2.5s``)."""
    if value is None:
        return ""
    if value < 60:
        return f"{value:.3f}".rstrip("0").rstrip(".") + "s"
    whole = int(value)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole // 60 % 60:02d}m"
    return f"{whole // 86400}d{whole // 3600 % 24:02d}h"


class Bar(NamedTuple):
    """A table cell drawn as a bar of ``value`` against ``largest``, as wide as the table allows."""

    value: float
    largest: float


# Between two columns: a column's right padding, the divider, the next one's left
# padding; a table too wide for the width drops the padding (2).
GAP = 3
# How a table too wide gives way, in turn: (kind of column, narrowest, at least its header)
_STAGES = (("gap", 2, False), ("bar", 8, False), ("gap", 1, False), ("words", 8, True), ("words", 1, True),
           ("text", 8, True), ("bar", 1, False), ("text", 1, True), ("fixed", 1, True),
           ("words", 1, False), ("text", 1, False), ("fixed", 1, False))


def table(stdout, columns: list[tuple[str, str]], rows: Iterable[list], *, title: str = "",
          note: str = "", styles: list[list[str]] | None = None) -> None:
    """A table: ``columns`` are ``(header, "left"|"right"|"nowrap")``; cells are plain
    text or a ``Bar``. It fits the width (``$COLUMNS``, else the terminal's; no
    limit in a pipe without ``$COLUMNS``, as ``ohlog query --table``) with every
    column shown (see ``widths``).

    Drawn with the standard library, so that tens of thousands of rows take
    a fraction of a second (rich took 50 s for 23,000 sessions); only a table
    with coloured cells (retention's shading) on a terminal is drawn by rich.
    """
    from ..output import _utf8
    from ..table import styled, terminal_width

    rows = [list(row) for row in rows]
    if styles and any(any(row) for row in styles) and styled(stdout):
        return _rich_table(stdout, columns, rows, title, note, styles)
    stdout = _utf8(stdout)
    width = terminal_width(stdout)
    sizes, folded, gap = widths(width if width is not None else 1 << 30, columns, rows)
    spacer = " " * gap
    lines = [title] if title else []
    header = _lines(columns, sizes, spacer, [h for h, _ in columns], True)
    if styled(stdout):
        header = [f"\x1b[1m{line}\x1b[0m" for line in header]
    lines += header
    lines.append("\u2500" * (sum(sizes) + gap * (len(sizes) - 1)))
    for row in rows:
        lines += _lines(columns, sizes, spacer, row, folded)
    for text in note.split("\n") if note else ():
        lines += _wrap_words(text, width) if width is not None else [text]
    stdout.write("\n".join(lines) + "\n")
    stdout.flush()


def _lines(columns, sizes, spacer, row, folded) -> list[str]:
    """One row's lines: each cell wrapped (text between words, else folded) or
    folded (numbers and times, only when ``folded``) to its column, and justified."""
    from ..table import fold, width_of

    cells = []
    for (_, justify), size, cell in zip(columns, sizes, row):
        if isinstance(cell, Bar):
            cells.append([bar(cell.value, cell.largest, size)])
        elif justify == "left":
            cells.append(_wrap_words(cell, size))
        else:
            cells.append(fold(cell, size) if folded else [cell])
    lines = []
    for n in range(max(map(len, cells))):
        parts = []
        for (_, justify), size, cell in zip(columns, sizes, cells):
            text = cell[n] if n < len(cell) else ""
            pad = " " * (size - width_of(text))
            parts.append(pad + text if justify == "right" else text + pad)
        lines.append(spacer.join(parts).rstrip())
    return lines


def _wrap_words(text: str, width: int | None) -> list[str]:
    """``text`` on lines of at most ``width`` cells, broken between words (a word
    longer than that is folded)."""
    from ..table import width_of, wrap

    if width is None or width_of(text) <= width:
        return [text]
    return wrap(text.split(" "), width, breaks=None)


def _rich_table(stdout, columns, rows, title, note, styles) -> None:
    """The table drawn by rich, for its colours (a terminal)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from ..table import terminal_width

    console = Console(file=stdout, highlight=False, width=terminal_width(stdout))
    sizes, folded, gap = widths(console.width, columns, rows)
    # SIMPLE_HEAD draws a space between columns, and padding one each side:
    # 3; collapsed, 2; no padding, 1 (the gap widths() fitted the sizes to)
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=title or None,
                 title_justify="left", collapse_padding=gap == 2, padding=(0, 0 if gap == 1 else 1))
    for (header, justify), width in zip(columns, sizes):
        grid.add_column(header, justify="right" if justify == "right" else "left",
                        width=width, no_wrap=justify != "left" and not folded,
                        overflow="fold")
    for i, row in enumerate(rows):
        cells = []
        for j, cell in enumerate(row):
            style = styles[i][j] if styles and styles[i][j] else ""
            if isinstance(cell, Bar):
                cell = bar(cell.value, cell.largest, sizes[j])
            cells.append(Text(cell, style=style))
        grid.add_row(*cells)
    console.print(grid)
    if note:
        console.print(Text(note))


def widths(width: int, columns: list[tuple[str, str]],
           rows: list[list]) -> tuple[list[int], bool, int]:
    """Each column's width within ``width``, whether the short columns must fold
    too, and the gap between columns.

    Numbers and times ("right", "nowrap") keep their width; when the table is
    too wide the gaps narrow, the bars shrink first (down to 8), the gaps
    narrow again, then the widest text columns fold (those that wrap between
    words first, down to their header, then ids down to 8), then as
    _STAGES says: no column is ever dropped, and a bar never wraps."""
    from ..table import width_of as cell_len

    kinds, sizes, headers = [], [], []
    for j, (header, justify) in enumerate(columns):
        cells = [row[j] for row in rows]
        headers.append(cell_len(header))
        if any(isinstance(c, Bar) for c in cells):
            kinds.append("bar")
            sizes.append(BAR_WIDTH if any(c.value and c.largest for c in cells) else 1)
        else:
            kinds.append("text" if justify == "left" else "fixed")
            sizes.append(max([headers[-1]] + [cell_len(c) for c in cells]) or 1)
    # Text that wraps between words (pages, properties) folds before text
    # that cannot (ids): a folded id is the hardest cell to read
    for j in range(len(columns)):
        if kinds[j] == "text" and any(" " in str(row[j]) for row in rows):
            kinds[j] = "words"
    gap = GAP
    excess = sum(sizes) + gap * (len(sizes) - 1) - width
    folded = False
    for kind, narrowest, keep_header in _STAGES:
        if kind == "gap":  # narrower gaps, before any text folds
            while excess > 0 and gap > narrowest:
                gap -= 1
                excess -= len(sizes) - 1
            continue
        while excess > 0:
            floors = {j: max(narrowest, headers[j] if keep_header else 1)
                      for j, k in enumerate(kinds) if k == kind}
            wide = [j for j in floors if sizes[j] > floors[j]]
            if not wide:
                break
            top = max(sizes[j] for j in wide)
            for j in wide:  # the widest first, one character at a time
                if sizes[j] == top and excess > 0:
                    sizes[j] -= 1
                    excess -= 1
                    folded = folded or kind == "fixed"
    return sizes, folded, gap


def shade(rate: float | None) -> str:
    """A background for a retention cell: darker is more retained."""
    if rate is None:
        return ""
    level = min(5, int(rate * 5 + 0.5))
    return ["", "on grey23", "on dark_green", "on green4", "on green3", "on green1"][level]


def stderr_note(text: str) -> None:
    print(text, file=sys.stderr)
