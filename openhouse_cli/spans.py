"""Each session's span, kept beside the actions on SQLite: what lets
``ohlog sessions`` read one row a session instead of every action.

``summary_session_spans`` (schema.SPANS) has a row for each (user, session):
its first and last instants and their time strings, its actions, pages
(VIEW and NAVIGATE) and clicks, its first and last page with the instant of
the NAVIGATE each came from, its page path (``page_path``, what ``ohlog
paths`` counts), and ``gap_ns``, a bound on the longest pause between two
of its consecutive actions. Ties at one instant go by id, as
``sessions`` orders them: of two writes, the later one's rows come after.

It changes in the writers' transactions, with the other summaries
(rollups.py): from the validating worker's ``spans`` of each chunk, or from
the rows a write inserted, read back by id. Two spans of one session merge
exactly, except the gap: the merged bound is the larger bound, or the
distance between the two spans if they do not overlap (a pause in the
merged actions lies within one span's own pause, or between the spans).
So the bound never falls below the true longest pause, which is all that
``sessions`` needs: a span whose bound is under the split cannot be cut.
Two paths merge only where one of them is empty; otherwise the path is
unknown (NULL) and ``paths`` reads that session's actions.
A delete builds the spans of the sessions it touched again from what remains.
Bounds are capped at a day: ``sessions`` reads a longer span's actions.
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Iterable, Sequence
from itertools import chain, compress, repeat
from operator import itemgetter
from typing import Any

from .fields import exact_dumps, exact_loads
from .schema import COLUMNS, SPANS, SPANS_COLUMNS

DAY_NS = 86400 * 10**9
NO_PATH = "[]"  # the path of a session without a page (of NAVIGATE actions)

_USER, _SESSION, _TIME, _UTC_US, _NS, _TYPE_KEY, _PROPERTIES = (
    itemgetter(COLUMNS.index(name)) for name in (
        "user_id", "session_id", "time", "utc_us", "ns", "type_key", "properties"))


def spans(rows: Sequence[Sequence]) -> list[tuple]:
    """The span (SPANS_COLUMNS order) of each session among ``rows``
    (schema.COLUMNS order), rows given in the order they are inserted.

    Run by the validating worker on every chunk: a session's rows mostly come
    together and in time order (a document), so they are taken a run at a
    time, with C-level steps within it, and sorted only when out of order."""
    n = len(rows)
    keys = list(zip(map(_USER, rows), map(_SESSION, rows)))
    kinds = list(map(_TYPE_KEY, rows))
    ats = list(map(operator.add, map(operator.mul, map(_UTC_US, rows), repeat(1000)), map(_NS, rows)))
    starts = list(compress(range(n), map(operator.ne, keys, [None, *keys[:-1]])))
    runs: dict[tuple, list[range]] = {}
    for start, end in zip(starts, [*starts[1:], n]):
        runs.setdefault(keys[start], []).append(range(start, end))
    found = []
    for (user, session), ranges in runs.items():
        order: Sequence[int]
        if len(ranges) == 1:
            order = ranges[0]
            times, counted = ats[order.start:order.stop], kinds[order.start:order.stop]
        else:
            order = list(chain.from_iterable(ranges))
            times, counted = [ats[i] for i in order], [kinds[i] for i in order]
        if not all(map(operator.le, times, times[1:])):
            order = sorted(order, key=ats.__getitem__)  # stable: ties stay in row order
            times, counted = [ats[i] for i in order], [kinds[i] for i in order]
        first, last = rows[order[0]], rows[order[-1]]
        gap = min(max(map(operator.sub, times[1:], times[:-1]), default=0), DAY_NS)
        navigates = counted.count("navigate")
        first_page = last_page = None
        path = NO_PATH
        if navigates:
            first_page, last_page, path = _pages(rows, order, counted)
        found.append((user, session, _UTC_US(first), _NS(first), _UTC_US(last), _NS(last),
                      _TIME(first), _TIME(last), len(order), counted.count("view") + navigates,
                      counted.count("click"), gap,
                      *(first_page or (None, None, None)), *(last_page or (None, None, None)), path))
    return found


def _pages(rows: Sequence[Sequence], order: Sequence[int], kinds: list[str]
           ) -> tuple[tuple | None, tuple | None, str]:
    """``(first, last, path)`` of the NAVIGATE rows among ``rows[i] for i in
    order`` (time order; their type keys ``kinds``). ``first`` and ``last``
    are each ``(JSON text, utc_us, ns)`` or None: the first ``pageFrom`` (or
    ``pageTo`` where it has none) that is not null, and the last ``pageTo``.
    ``path`` is ``page_path``'s, as JSON text."""
    first = None
    last_seen: tuple[dict, Sequence] | None = None
    navigates = []
    at = kinds.index("navigate")  # the caller saw one
    while True:
        row = rows[order[at]]
        props = _properties(row)
        if isinstance(props, dict):
            navigates.append(props)
            if first is None:
                page = props.get("pageFrom", props.get("pageTo"))
                if page is not None:
                    first = (_json(page), _UTC_US(row), _NS(row))
            if "pageTo" in props:
                last_seen = (props, row)  # written out once, at the end
        try:
            at = kinds.index("navigate", at + 1)
        except ValueError:  # no NAVIGATE left
            break
    last = None
    if last_seen is not None:
        props, row = last_seen
        last = (_json(props["pageTo"]), _UTC_US(row), _NS(row))
    return first, last, _json(page_path(navigates))


def _properties(row: Sequence) -> Any:
    """A row's properties, or None where they are not JSON (only a library
    caller's raw rows can hold such text): a page is never read from them."""
    try:
        return exact_loads(_PROPERTIES(row))
    except (ValueError, RecursionError):
        return None


def _json(value: Any) -> str:
    return exact_dumps(value).decode()


def page_path(navigates: Iterable[Any]) -> list[str]:
    """A session's page path (``ohlog paths``), from its NAVIGATE actions'
    properties in time order: the first one's ``pageFrom``, then each
    ``pageTo``, consecutive repeats collapsed; a page that is not a string
    as its JSON text."""
    pages: list[str] = []
    for props in navigates:
        if not isinstance(props, dict):
            continue
        if not pages and "pageFrom" in props:
            _visit(pages, props["pageFrom"])
        if "pageTo" in props:
            _visit(pages, props["pageTo"])
    return pages


def _visit(pages: list[str], page: Any) -> None:
    if not isinstance(page, str):
        page = _json(page)
    if not pages or pages[-1] != page:
        pages.append(page)


def _before(a: str, b: str) -> str:
    """SQL: the instant named by columns ``a``_us, ``a``_ns comes before ``b``'s."""
    return f"({a}_us, {a}_ns) < ({b}_us, {b}_ns)"


def _distance(a: str, b: str) -> str:
    """SQL: nanoseconds from instant ``a`` to the later ``b``, 0 if ``b`` is not
    later, capped at a day (no product overflows)."""
    return (f"CASE WHEN {b}_us - {a}_us >= {DAY_NS // 1000} THEN {DAY_NS} WHEN {b}_us < {a}_us THEN 0"
            f" ELSE max(({b}_us - {a}_us) * 1000 + {b}_ns - {a}_ns, 0) END")


def _take(condition: str, columns: Sequence[str]) -> str:
    return ", ".join(f"{c} = CASE WHEN {condition} THEN excluded.{c} ELSE {c} END" for c in columns)


_EARLIER = _before("excluded.first", "first")
_LATER = f"NOT {_before('excluded.last', 'last')}"  # at the same instant, the later write
_EARLIER_PAGE = (f"excluded.first_page_us IS NOT NULL AND (first_page_us IS NULL"
                 f" OR {_before('excluded.first_page', 'first_page')})")
_LATER_PAGE = (f"excluded.last_page_us IS NOT NULL AND (last_page_us IS NULL"
               f" OR NOT {_before('excluded.last_page', 'last_page')})")
# Every expression reads the row as it was before this update
UPSERT = (
    f"INSERT INTO {SPANS} ({', '.join(SPANS_COLUMNS)}) VALUES ({', '.join('?' * len(SPANS_COLUMNS))})"
    " ON CONFLICT (user_id, session_id) DO UPDATE SET"
    f" gap_ns = max(gap_ns, excluded.gap_ns, {_distance('last', 'excluded.first')},"
    f" {_distance('excluded.last', 'first')}),"
    " actions = actions + excluded.actions, pages = pages + excluded.pages,"
    " clicks = clicks + excluded.clicks,"
    f" {_take(_EARLIER, ('first_us', 'first_ns', 'start_time'))},"
    f" {_take(_LATER, ('last_us', 'last_ns', 'end_time'))},"
    f" {_take(_EARLIER_PAGE, ('first_page', 'first_page_us', 'first_page_ns'))},"
    f" {_take(_LATER_PAGE, ('last_page', 'last_page_us', 'last_page_ns'))},"
    # Two parts of one session's path: kept only if one of them has no page
    f" path = CASE WHEN excluded.path = '{NO_PATH}' THEN path WHEN path = '{NO_PATH}' THEN excluded.path END"
)

_ROWS = f"SELECT {', '.join(COLUMNS)} FROM actions"


def add(conn: sqlite3.Connection, after_id: int) -> None:
    """Add the actions inserted since ``rollups.since`` returned ``after_id``."""
    rows = conn.execute(f"{_ROWS} WHERE id > ? ORDER BY id", (after_id,)).fetchall()
    conn.executemany(UPSERT, spans(rows))


def sessions_of(conn: sqlite3.Connection, ids: Sequence[int]) -> list[tuple]:
    """The (user, session) keys of the actions ``ids`` (before they are deleted)."""
    import orjson

    return conn.execute("SELECT DISTINCT user_id, session_id FROM actions WHERE id IN"
                        " (SELECT value FROM json_each(?))", (orjson.dumps(list(ids)).decode(),)).fetchall()


_REBUILD_BATCH = 500  # sessions a query


def rebuild_all(conn: sqlite3.Connection) -> None:
    """Every span again, from the actions (``ohlog rebuild-summaries``): the
    actions read a session at a time, in the order they were inserted, and
    written about _REBUILD_ROWS rows at a time, so memory stays bounded."""
    conn.execute(f"DELETE FROM {SPANS}")
    cursor = conn.execute(f"{_ROWS} ORDER BY user_id, session_id, id")
    held: list = []
    while chunk := cursor.fetchmany(10_000):
        held += chunk
        if len(held) >= _REBUILD_ROWS:
            # up to the last session that may go on in the next chunk
            last = (_USER(held[-1]), _SESSION(held[-1]))
            cut = len(held)
            while cut and (_USER(held[cut - 1]), _SESSION(held[cut - 1])) == last:
                cut -= 1
            if cut:
                conn.executemany(UPSERT, spans(held[:cut]))
                held = held[cut:]
    if held:
        conn.executemany(UPSERT, spans(held))


_REBUILD_ROWS = 50_000


def rebuild(conn: sqlite3.Connection, keys: Sequence[tuple]) -> None:
    """The spans of sessions ``keys`` again, from their actions now (after a
    delete), a batch of sessions a query."""
    for start in range(0, len(keys), _REBUILD_BATCH):
        batch = keys[start:start + _REBUILD_BATCH]
        conn.executemany(f"DELETE FROM {SPANS} WHERE user_id = ? AND session_id = ?", batch)
        wanted = set(batch)
        ids = sorted({session for _, session in batch})
        rows = conn.execute(f"{_ROWS} WHERE session_id IN ({', '.join('?' * len(ids))}) ORDER BY id",
                            ids).fetchall()
        # Only these users' sessions of those ids
        conn.executemany(UPSERT, spans([row for row in rows if (_USER(row), _SESSION(row)) in wanted]))
