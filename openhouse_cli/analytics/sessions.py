"""Sessions (the client's, or split by inactivity) and one user's or session's timeline."""

from __future__ import annotations

import array
import itertools
import math
from collections.abc import Iterator
from typing import Any

from ..fields import exact_loads
from ..query import build_query
from ..schema import SPANS
from .source import conditions, fetch, fetch_batches, filtered, one

DAY_NS = 86400 * 10**9
_NAVIGATE = "'navigate'"  # a constant, the same escaped or not
# What a session counts of an action's type: 0 nothing, else a click or a page
_CLICK, _VIEW, _NAVIGATE_KIND = 1, 2, 3
_KIND = (f"CASE type_key WHEN 'click' THEN {_CLICK} WHEN 'view' THEN {_VIEW} "
         f"WHEN {_NAVIGATE} THEN {_NAVIGATE_KIND} ELSE 0 END")
BOUNCE_SECONDS = 10  # GA4's engaged session: 10 s or more,
BOUNCE_PAGES = 2  # or 2 or more views (VIEW or NAVIGATE here),
# or a conversion event (a CLICK here)


class _Session:
    __slots__ = ("user", "session", "start", "end", "first_ns", "last_ns", "actions",
                 "pages", "clicks", "first_page", "last_page")

    def __init__(self, user, session, start, end, first_ns, last_ns, actions, pages, clicks,
                 first_page, last_page):
        self.user, self.session, self.start, self.end = user, session, start, end
        self.first_ns, self.last_ns, self.actions = first_ns, last_ns, actions
        self.pages, self.clicks, self.first_page, self.last_page = pages, clicks, first_page, last_page

    def as_dict(self) -> dict[str, Any]:
        duration = (self.last_ns - self.first_ns) / 1e9
        engaged = duration >= BOUNCE_SECONDS or self.pages >= BOUNCE_PAGES or self.clicks > 0
        return {
            "userId": self.user, "sessionId": self.session, "start": self.start,
            "end": self.end, "durationSeconds": duration, "actions": self.actions,
            "firstPage": self.first_page, "lastPage": self.last_page, "bounce": not engaged,
        }


def sessions(store, filters: dict, split_us: int | None = None) -> dict[str, Any]:
    """``{"sessions": [...], "summary": {...}}``: stream_sessions, gathered."""
    summary = Summary()
    rows = list(stream_sessions(store, filters, split_us, summary))
    return {"sessions": rows, "summary": summary.result()}


def stream_sessions(store, filters: dict, split_us: int | None = None,
                    summary: "Summary | None" = None) -> Iterator[dict[str, Any]]:
    """One row a session, user by user (users in code point order), each user's
    sessions in order of start; ``summary`` (a Summary) takes each row.

    A session is the client's ``sessionId`` or, with ``split_us``, each
    user's actions cut wherever that long passes without an action (a gap
    of exactly ``split_us`` cuts) and when 24 hours have passed since the
    session's first action; such a session keeps its first action's sessionId.
    Memory holds one user's sessions at a time.
    """
    found_sessions = _from_spans(store, filters, split_us)
    if found_sessions is None:
        found_sessions = _sessions(store, filters, split_us)
    pending: list[_Session] = []
    for found in found_sessions:
        if pending and pending[0].user != found.user:
            yield from _flush(pending, summary)
            pending = []
        pending.append(found)
    yield from _flush(pending, summary)


def _flush(pending, summary):
    pending.sort(key=lambda s: (s.first_ns, s.session))
    for found in pending:
        row = found.as_dict()
        if summary is not None:
            summary.add(row)
        yield row


def _sessions(store, filters, split_us) -> Iterator[_Session]:
    """The sessions, user by user, each user's in order of start. Every action
    passes through this loop (10 million at a time), so it keeps its state in
    local variables and makes an object only for each session."""
    sql, params = filtered(store, "id, user_id, session_id, time, utc_us, ns, type_key, properties",
                           filters)
    order = "user_id, utc_us, ns, id" if split_us else "user_id, session_id, utc_us, ns, id"
    # The type as a small number (fewer bytes in SQLite's sort, and no text to compare
    # here), and the properties of NAVIGATE actions only: their pages
    batches = fetch_batches(store, f"SELECT user_id, session_id, time, utc_us, ns, {_KIND}, "
                            f"CASE WHEN type_key = {_NAVIGATE} THEN properties END "
                            f"FROM ({sql}) a ORDER BY {order}", params, escaped=(0, 1))
    split_ns = split_us * 1000 if split_us else None
    user = session = start = end = first_page = last_page = None
    first_ns = last_ns = actions = pages = clicks = 0
    for rows in batches:
        for row_user, row_session, time, utc_us, ns, kind, properties in rows:
            at = utc_us * 1000 + ns
            if row_user != user or (
                row_session != session if split_ns is None else
                at - last_ns >= split_ns or at - first_ns >= DAY_NS
            ):
                if user is not None:
                    yield _Session(user, session, start, end, first_ns, last_ns, actions, pages,
                                   clicks, first_page, last_page)
                user, session, start, first_ns = row_user, row_session, time, at
                actions = pages = clicks = 0
                first_page = last_page = None
            end, last_ns = time, at
            actions += 1
            if kind:
                if kind == _CLICK:
                    clicks += 1
                else:
                    pages += 1
                    if kind == _NAVIGATE_KIND:
                        props = exact_loads(properties)
                        if isinstance(props, dict):
                            if first_page is None:
                                first_page = props.get("pageFrom", props.get("pageTo"))
                            last_page = props.get("pageTo", last_page)
    if user is not None:
        yield _Session(user, session, start, end, first_ns, last_ns, actions, pages, clicks,
                       first_page, last_page)


class _Span(_Session):
    """A client session's span: with the bound on its longest pause, and
    whether it has a last page (which may be null)."""
    __slots__ = ("gap", "has_last_page")
    gap: int
    has_last_page: bool


def _from_spans(store, filters, split_us) -> Iterator[_Session] | None:
    """The sessions from the spans kept at ingest (spans.py), user by user;
    None where they cannot answer: on PostgreSQL, in a database that
    predates them, or with a filter that can cut a session (only --user and
    --session select whole sessions).

    Each client session is a span. With ``split_us``, a user's spans are
    chained in time order, a new session wherever that long passes between
    two; a user whose sessions would be cut inside a span (a pause of that
    length in it, a day since its session began, or two spans that overlap
    in time) has their actions read instead, as before."""
    if store.engine != "sqlite" or any(value for name, value in filters.items()
                                       if name not in ("users", "sessions", "limit", "order")):
        return None
    kept = one(store, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", [SPANS])
    if not kept or not kept[0]:
        return None
    clauses, params = conditions(store, {"users": filters.get("users"), "sessions": filters.get("sessions")})
    rows = fetch_batches(store, f"SELECT user_id, session_id, start_time, end_time, first_us, first_ns,"
                         f" last_us, last_ns, actions, pages, clicks, gap_ns, first_page, last_page"
                         f" FROM {SPANS} WHERE {clauses or 'true'} ORDER BY user_id", params)
    return _chained(store, filters, rows, split_us)


def _chained(store, filters, batches, split_us) -> Iterator[_Session]:
    split_ns = split_us * 1000 if split_us else None
    user: object = _BEFORE_ANY
    spans: list[_Span] = []
    for rows in itertools.chain(batches, [[(None,) * 14]]):  # a last row of no user
        for (row_user, session, start, end, first_us, first_ns, last_us, last_ns, actions, pages,
             clicks, gap_ns, first_page, last_page) in rows:
            if row_user != user:
                if split_ns is None:
                    yield from spans
                else:
                    yield from _split(store, filters, user, spans, split_us)
                if row_user is None:
                    return
                user, spans = row_user, []
            span = _Span(row_user, session, start, end, first_us * 1000 + first_ns,
                         last_us * 1000 + last_ns, actions, pages, clicks,
                         None if first_page is None else exact_loads(first_page),
                         None if last_page is None else exact_loads(last_page))
            span.gap, span.has_last_page = gap_ns, last_page is not None
            spans.append(span)


_BEFORE_ANY = object()  # the user before the first row


def _split(store, filters, user, spans, split_us) -> Iterator[_Session]:
    """One user's sessions split by ``split_us`` of inactivity, from their
    spans (their actions read instead if a cut falls inside one)."""
    split_ns = split_us * 1000
    spans.sort(key=lambda s: s.first_ns)
    chained: list[_Session] = []
    for span in spans:
        if span.gap >= split_ns or span.last_ns - span.first_ns >= DAY_NS or (
                chained and span.first_ns <= chained[-1].last_ns):
            yield from _sessions(store, {**filters, "users": [user]}, split_us)
            return
        current = chained[-1] if chained else None
        if current is None or span.first_ns - current.last_ns >= split_ns or (
                span.first_ns - current.first_ns >= DAY_NS):
            chained.append(span)
            continue
        if span.last_ns - current.first_ns >= DAY_NS:  # the day ends inside this span
            yield from _sessions(store, {**filters, "users": [user]}, split_us)
            return
        current.end, current.last_ns = span.end, span.last_ns
        current.actions += span.actions
        current.pages += span.pages
        current.clicks += span.clicks
        if current.first_page is None:
            current.first_page = span.first_page
        if span.has_last_page:
            current.last_page = span.last_page
    yield from chained


class Summary:
    """Sessions, median and 90th percentile duration (nearest rank), bounce rate,
    from the rows given to ``add`` (only their durations are kept, as doubles)."""

    def __init__(self):
        self.durations = array.array("d")
        self.bounces = 0

    def add(self, row: dict[str, Any]) -> None:
        self.durations.append(row["durationSeconds"])
        self.bounces += row["bounce"]

    def result(self) -> dict[str, Any]:
        n = len(self.durations)
        if not n:
            return {"sessions": 0, "medianSeconds": None, "p90Seconds": None, "bounceRate": None}
        from statistics import median  # here: it imports random, fractions, decimal (~6 ms)

        durations = sorted(self.durations)
        return {
            "sessions": n,
            "medianSeconds": median(durations),
            "p90Seconds": durations[math.ceil(0.9 * n) - 1],
            "bounceRate": self.bounces / n,
        }


def timeline(store, filters: dict) -> Iterator[dict[str, Any]]:
    """The actions in time order as query gives them, each with ``gapSeconds``
    since the same user's previous action (None for their first)."""
    sql, params = build_query("user_id, session_id, time, type, properties, utc_us, ns",
                              engine=store.engine, **{**filters, "order": "asc", "limit": None})
    last: dict[str, int] = {}
    for user, session, time, kind, properties, utc_us, ns in fetch(store, sql, params,
                                                                   escaped=(0, 1, 3)):
        at = utc_us * 1000 + ns
        before = last.get(user)
        last[user] = at
        yield {"userId": user, "sessionId": session, "time": time, "type": kind,
               "properties": exact_loads(properties),
               "gapSeconds": None if before is None else (at - before) / 1e9}
