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
from .source import fetch, fetch_batches, filtered, one, snapshot, spans_where

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
    Memory holds one user's sessions at a time (from the spans with a split,
    those of up to _HELD_USERS users). Every read sees one state of the
    database (a read transaction), as the spans and some users' actions may
    both be read.
    """
    if split_us is not None:
        # A pause of two days is past the 24 hours that cut a session anyway:
        # any longer split cuts where that one does (and stays a 64-bit number
        # of nanoseconds in SQL)
        split_us = min(split_us, 2 * DAY_NS // 1000)
    with snapshot(store):
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
    None where they cannot answer (source.spans_where).

    Each client session is a span. With ``split_us``, a user's spans are
    chained in time order, a new session wherever that long passes between
    two; a user whose sessions would be cut inside a span (a pause of that
    length in it, a day since its session began, or two spans that overlap
    in time) has their actions read instead, as before."""
    found = spans_where(store, filters)
    if found is None:
        return None
    where, params = found
    if split_us:
        # Where many spans hold a cut, most users' actions would be read: all of them are, at once
        cut = one(store, f"SELECT count(*), count(*) FILTER (WHERE gap_ns >= ? OR last_us - first_us"
                  f" >= {DAY_NS // 1000}) FROM {SPANS} WHERE {where}", [split_us * 1000, *params])
        if not cut or cut[1] > _CUT_SHARE * cut[0]:
            return None
    rows = fetch_batches(store, f"SELECT user_id, session_id, start_time, end_time, first_us, first_ns,"
                         f" last_us, last_ns, actions, pages, clicks, gap_ns, first_page, last_page"
                         f" FROM {SPANS} WHERE {where} ORDER BY user_id", params)
    return _chained(store, filters, rows, split_us)


_CUT_SHARE = 0.1


def _chained(store, filters, batches, split_us) -> Iterator[_Session]:
    split_ns = split_us * 1000 if split_us else None
    user: object = _BEFORE_ANY
    spans: list[_Span] = []
    held = _Held(store, filters, split_us)
    for rows in itertools.chain(batches, [[(None,) * 14]]):  # a last row of no user
        for (row_user, session, start, end, first_us, first_ns, last_us, last_ns, actions, pages,
             clicks, gap_ns, first_page, last_page) in rows:
            if row_user != user:
                if split_ns is None:
                    yield from spans
                elif user is not _BEFORE_ANY:
                    yield from held.add(user, _split(spans, split_ns))
                if row_user is None:
                    yield from held.release()
                    return
                user, spans = row_user, []
            span = _Span(row_user, session, start, end, first_us * 1000 + first_ns,
                         last_us * 1000 + last_ns, actions, pages, clicks,
                         None if first_page is None else exact_loads(first_page),
                         None if last_page is None else exact_loads(last_page))
            span.gap, span.has_last_page = gap_ns, last_page is not None
            spans.append(span)


_BEFORE_ANY = object()  # the user before the first row
_HELD_USERS = 500  # users whose sessions wait for one read of those among them the spans cannot split


class _Held:
    """Users' sessions in order, some from their spans and some (None) still
    to be read from their actions: those are read together, one query for
    up to _HELD_USERS users, where one query each cost more than reading
    every action when most users need it."""

    def __init__(self, store, filters, split_us):
        self.store, self.filters, self.split_us = store, filters, split_us
        self.users: list[tuple[Any, list[_Session] | None]] = []

    def add(self, user, found: list[_Session] | None) -> Iterator[_Session]:
        self.users.append((user, found))
        if len(self.users) >= _HELD_USERS:
            yield from self.release()

    def release(self) -> Iterator[_Session]:
        wanted = [user for user, found in self.users if found is None]
        read: dict[Any, list[_Session]] = {}
        if wanted:
            for session in _sessions(self.store, {**self.filters, "users": wanted}, self.split_us):
                read.setdefault(session.user, []).append(session)
        for user, found in self.users:
            yield from read.get(user, []) if found is None else found
        self.users = []


def _split(spans: list[_Span], split_ns: int) -> list[_Session] | None:
    """One user's sessions split by ``split_ns`` of inactivity, from their
    spans; None if a cut could fall inside one (their actions are read then)."""
    spans.sort(key=lambda s: s.first_ns)
    chained: list[_Session] = []
    for span in spans:
        if span.gap >= split_ns or span.last_ns - span.first_ns >= DAY_NS or (
                chained and span.first_ns <= chained[-1].last_ns):
            return None
        current = chained[-1] if chained else None
        if current is None or span.first_ns - current.last_ns >= split_ns or (
                span.first_ns - current.first_ns >= DAY_NS):
            chained.append(span)
            continue
        if span.last_ns - current.first_ns >= DAY_NS:  # the day ends inside this span
            return None
        current.end, current.last_ns = span.end, span.last_ns
        current.actions += span.actions
        current.pages += span.pages
        current.clicks += span.clicks
        if current.first_page is None:
            current.first_page = span.first_page
        if span.has_last_page:
            current.last_page = span.last_page
    return chained


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
