"""The actions table: columns fitted to the width, properties as ``key=value``, streamed.

Time, user, session and type are as wide as their longest value (and header),
never padded wider; the properties take the rest of the width and wrap only
when they must, between ``key=value`` items (an item longer than the column is
folded). Nothing is cut: a value that cannot fit is folded onto more lines.
When the fixed columns leave the properties too little room (long ids on a
narrow terminal), the id or type column furthest beyond a roomy width (ids
of 16 characters, a type of 12), then the time (to the second with its
offset), is narrowed a cell at a time: its longer values fold, at a
separator where there is one.

Rows are drawn as they come, in chunks, the header once. Within a width the
first chunk sets the columns and they stay (a later, longer value folds), so
the screen stays aligned; with no width (a pipe) a later chunk widens a
column for its longer values instead, so that a row is always one line. Only
the standard library is imported here: ``ohlog query`` must start fast.
"""

from __future__ import annotations

import functools
import json
import os
import re
import unicodedata
from typing import Any, Iterable, Sequence, TextIO

HEADERS = ("Time", "User", "Session", "Type", "Properties")
GAP = "  "
MIN_WIDTH = 20
_MIN_PROPERTIES = 16  # the properties' least share of a narrow width (a fifth of a wider one)

# C0 and C1 control characters, DEL, and the bidirectional overrides
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# A string shown without quotes: no space, quote or control character, and not read as JSON
_BARE_VALUE = re.compile(r'[^\s"\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]+')
_BARE_KEY = re.compile(r'[^\s="\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]+')


def terminal_width(stream: Any) -> int | None:
    """The width to draw in: ``$COLUMNS`` if set, else the terminal's; None
    (no limit: each row on one line) for a pipe or file without ``$COLUMNS``.
    A terminal that gives no width (``stty cols 0``, a serial console) is 80
    wide, as rich and less take it; none is narrower than MIN_WIDTH, where a
    column a character wide would read as nothing (the terminal wraps the rest)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return max(int(columns), MIN_WIDTH)
    try:
        if stream.isatty():
            return max(os.get_terminal_size(stream.fileno()).columns or 80, MIN_WIDTH)
    except (AttributeError, OSError, ValueError):
        pass
    return None


def styled(stream: Any) -> bool:
    """Whether to style what is drawn to ``stream`` (a bold header): on a
    terminal, unless NO_COLOR is set."""
    try:
        return stream.isatty() and "NO_COLOR" not in os.environ
    except (AttributeError, ValueError):
        return False


def visible(text: str) -> str:
    """``text`` with its control characters written as escapes: a log must not
    be able to drive the reader's terminal (clear it, retitle it, write the clipboard)."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def property_items(properties: dict) -> list[str]:
    """Each property as ``key=value``: a string bare when that cannot be misread
    (else JSON-quoted, as ``"52"`` or ``"a b"``), anything else as compact JSON."""
    items = []
    for key, value in properties.items():
        key = key if _BARE_KEY.fullmatch(key) else visible(json.dumps(key, ensure_ascii=False))
        if not (isinstance(value, str) and _bare(value)):
            value = visible(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
        items.append(f"{key}={value}")
    return items


def _bare(text):
    if not _BARE_VALUE.fullmatch(text) or text[0] in "[{":
        return False
    try:
        json.loads(text)  # 52, true, null would read as other values
        return False
    except ValueError:
        return True


def cells(time: str, user: str, session: str, kind: str, properties: dict) -> tuple:
    """One row's cells: four texts and the list of property items."""
    return (visible(time), visible(user), visible(session), visible(kind),
            property_items(properties))


def width_of(text: str) -> int:
    """Terminal cells ``text`` takes: 2 for wide (East Asian, most emoji), 0 for combining."""
    if text.isascii():
        return len(text)
    # Only the non-ASCII characters are looked up, each once (a table of
    # 20,000 rows with an arrow in each measured 5 s a character at a time)
    others = _NON_ASCII.findall(text)
    return len(text) - len(others) + sum(map(_char_width, others))


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


@functools.lru_cache(maxsize=4096)
def _char_width(char):
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


# Where a value may be folded when it must: a time before its fraction or
# offset, an id after a separator, a property after its "=" or a comma
TIME_BREAKS = re.compile(r"(?=\.\d)|(?=[+-]\d\d(?::?\d\d)*$)|(?=Z$)")
ID_BREAKS = re.compile(r"[-_./:@]")
ITEM_BREAKS = re.compile(r"[=,]")


def fold(text: str, width: int, breaks: re.Pattern | None = None) -> list[str]:
    """``text`` cut into lines of at most ``width`` cells (one line if it fits),
    at the last of ``breaks`` that leaves a full enough line, else anywhere."""
    lines: list[str] = []
    while width_of(text) > width:
        cut, used = 0, 0
        while cut < len(text) and used + _char_width(text[cut]) <= width:
            used += _char_width(text[cut])
            cut += 1
        cut = max(cut, 1)  # a character wider than the column goes alone
        if breaks is not None:
            soft = [m.end() for m in breaks.finditer(text) if width // 3 <= m.end() <= cut]
            cut = soft[-1] if soft else cut
        lines.append(text[:cut])
        text = text[cut:]
    return lines + [text]


def wrap(items: Sequence[str], width: int | None,
         breaks: re.Pattern | None = ITEM_BREAKS) -> list[str]:
    """The items on lines of at most ``width`` cells, a space between two on one
    line; an item longer than that is folded (at ``breaks`` where it can be)."""
    if width is None:
        return [" ".join(items)]
    lines: list[str] = []
    line, used = "", 0
    for item in items:
        size = width_of(item)
        if line and used + 1 + size <= width:
            line, used = f"{line} {item}", used + 1 + size
            continue
        if line:
            lines.append(line)
        pieces = fold(item, width, breaks)
        lines.extend(pieces[:-1])
        line, used = pieces[-1], width_of(pieces[-1])
    return lines + [line] if line or not lines else lines


# How narrow the fixed columns are made, in turn, to give the properties
# their room: a time to the second with its offset and ids of 16; then, for
# their least share (16), a UTC time to the second and ids of 10; then, for
# the header "Properties" alone, the narrowest at all (below about 47
# columns, lines run past the width)
_STEPS = ((25, 16, 16, 12), (20, 10, 10, 8), (10, 6, 7, 6))


def layout(natural: Sequence[int], properties: int, item: int, width: int | None,
           headers: Sequence[str] = HEADERS) -> tuple[list[int], int]:
    """The widths of the four fixed columns and of the properties.

    ``natural``: the widest time, user, session and type; ``properties``: the
    widest properties on one line; ``item``: the widest ``key=value``. Within
    ``width`` (None: no limit) the properties get what they need, up to what
    is left; when that is less than max(16, width / 5, the widest item up to
    width / 3), the id or type column furthest beyond its floor (_STEPS),
    else the time, is narrowed a cell at a time (its longer values fold)
    until they get it, or as near as the floors allow.
    """
    fixed = [max(n, width_of(h)) for n, h in zip(natural, headers)]
    least = width_of(headers[4])
    if width is None:
        return fixed, max(properties, least)
    room = width - sum(fixed) - len(GAP) * 4
    want = max(least, min(properties, max(_MIN_PROPERTIES, width // 5, min(item, width // 3))))
    # Past the first step every row may fold: only for the least share
    for target, step in zip((want, max(least, min(properties, _MIN_PROPERTIES)), least),
                            _STEPS):
        floors = [max(f, width_of(h)) for f, h in zip(step, headers)]
        while room < target:
            # ids and type first: a folded time would cost every row a line
            narrower = ([i for i in (1, 2, 3) if fixed[i] > floors[i]]
                        or [i for i in (0,) if fixed[i] > floors[i]])
            if not narrower:
                break
            widest = max(narrower, key=lambda i: fixed[i] - floors[i])
            fixed[widest] -= 1
            room += 1
    return fixed, max(least, min(room, properties))


_BREAKS = (TIME_BREAKS, ID_BREAKS, ID_BREAKS, ID_BREAKS)


class TableWriter:
    """Draws rows (from ``cells``) to ``file`` as they come, the header with
    the first of them (or at ``start``).

    ``minimum``: widths the fixed columns start at (a follower's new rows
    come after its header); ``bold``: the header in bold (a terminal).
    """

    def __init__(self, file: TextIO, *, width: int | None = None, time_header: str = "Time",
                 minimum: Sequence[int] = (0, 0, 0, 0), bold: bool = False):
        self.file, self.width, self.bold = file, width, bold
        self.headers = (time_header, *HEADERS[1:])
        self.natural = [max(m, width_of(h)) for m, h in zip(minimum, self.headers)]
        self.properties = self.item = 0
        self.started = False

    def write(self, rows: Iterable[tuple]) -> int:
        """Draw ``rows``; return how many."""
        rows = list(rows)
        for row in rows:
            for i in range(4):
                self.natural[i] = max(self.natural[i], width_of(row[i]))
            self.properties = max(self.properties, width_of(" ".join(row[4])))
            self.item = max(self.item, *map(width_of, row[4] or [""]))
        if not self.started or self.width is None:
            self.columns = layout(self.natural, self.properties, self.item, self.width,
                                  self.headers)
        fixed, properties = self.columns
        out = []
        if not self.started:
            self.started = True
            header = GAP.join(h + " " * (w - width_of(h))
                              for h, w in zip(self.headers, (*fixed, 0))).rstrip()
            if self.bold:
                header = f"\x1b[1m{header}\x1b[0m"
            out += [header, "─" * (sum(fixed) + len(GAP) * 4 + properties)]
        for row in rows:
            columns = [fold(text, w, breaks)
                       for text, w, breaks in zip(row[:4], fixed, _BREAKS)]
            columns.append(wrap(row[4], None if self.width is None else properties))
            for n in range(max(map(len, columns))):
                parts = [(column[n] if n < len(column) else "") for column in columns]
                out.append(GAP.join(p + " " * (w - width_of(p))
                                    for p, w in zip(parts, (*fixed, 0))).rstrip())
        if out:
            self.file.write("\n".join(out) + "\n")
        return len(rows)

    def start(self) -> None:
        """Draw the header now, if no row has drawn it."""
        if not self.started:
            self.write(())
