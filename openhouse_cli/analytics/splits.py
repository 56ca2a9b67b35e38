"""Sessions split by inactivity, read from SQLite's index on (user_id, type_key, utc_us).

The row-by-row read (sessions._sessions) sorts every action with its time
text and properties by user and time, then makes a Python row of each.
Here SQLite gives a row per user and type, its times and ids joined as text
(the index's order: no sort); each user's actions are merged and cut here,
and only the few actions a session shows (its first and last, for the
sessionId and time texts, and its first and last NAVIGATE, for the pages)
are looked up by id. The answers are the same (tests/test_analytics_sessions.py
compares both reads).
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Iterator

import orjson

from .source import fetch, filtered, nanoseconds

DAY_US = 86400 * 10**6
_CLASS = {"click": 1, "view": 2, "navigate": 3}  # any other type: 0
_NAVIGATE = 3
_BY_ID = ("SELECT id, session_id, time, CASE WHEN type_key = 'navigate' THEN properties END "
          "FROM actions WHERE id IN (SELECT value FROM json_each(?))")


def split_sessions(store, filters: dict, split_us: int, make) -> Iterator | None:
    """The sessions of sessions._sessions with ``split_us``, each made by
    ``make(user, session, start, end, first_ns, last_ns, actions, pages,
    clicks, first_page, last_page)``, user by user; None if this read cannot
    serve (another engine, or many actions with nanoseconds)."""
    if store.engine != "sqlite":
        return None
    extra = nanoseconds(store, filters)
    if extra is None:
        return None
    sql, params = filtered(store, "id, user_id, type_key, utc_us", filters)
    rows = fetch(store, f"SELECT user_id, type_key, group_concat(utc_us), group_concat(id) "
                 f"FROM ({sql}) a GROUP BY user_id, type_key ORDER BY user_id, type_key", params)
    return _users(store, rows, extra, split_us, make)


def _users(store, rows, extra, split_us, make):
    unit = 1 if extra else 1000  # nanoseconds in a unit of the instants
    split, day = split_us * 1000 // unit, DAY_US * 1000 // unit
    for user, group in itertools.groupby(rows, key=operator.itemgetter(0)):
        events: list[tuple[int, int, int]] = []
        for _, key, times, ids in group:
            kind = _CLASS.get(key, 0)
            if extra:
                events += [(int(t) * 1000 + extra.get(int(i), 0), int(i), kind)
                           for t, i in zip(times.split(","), ids.split(","))]
            else:
                events += zip(map(int, times.split(",")), map(int, ids.split(",")),
                              itertools.repeat(kind))
        events.sort()  # by instant, then id: the actions' order
        yield from _cut(store, user, events, split, day, unit, make)


def _cut(store, user, events, split, day, unit, make):
    instants = [e[0] for e in events]
    kinds = [e[2] for e in events]
    bounds, first, prev = [0], instants[0], instants[0]
    for j, at in enumerate(instants):
        if at - prev >= split or at - first >= day:
            bounds.append(j)
            first = at
        prev = at
    bounds.append(len(events))
    spans = list(itertools.pairwise(bounds))
    everywhere = [j for j, kind in enumerate(kinds) if kind == _NAVIGATE]
    navigates = []
    wanted = []
    for a, b in spans:
        found = everywhere[bisect.bisect_left(everywhere, a):bisect.bisect_left(everywhere, b)]
        navigates.append(found)
        wanted += [events[a][1], events[b - 1][1]] + [events[j][1] for j in found[:1] + found[-1:]]
    looked = _look_up(store, wanted)
    for (a, b), found in zip(spans, navigates):
        part = kinds[a:b]
        first_page, last_page = _pages(store, [events[j][1] for j in found], looked)
        yield make(user, looked[events[a][1]][0], looked[events[a][1]][1],
                   looked[events[b - 1][1]][1], instants[a] * unit, instants[b - 1] * unit,
                   b - a, part.count(2) + part.count(3), part.count(1), first_page, last_page)


def _look_up(store, ids):
    """``{id: (session_id, time, properties or None)}`` for the actions ``ids``."""
    # in id order, the table's: each page of it is read once
    ids = sorted(set(ids))
    return {i: rest for i, *rest in fetch(store, _BY_ID, [orjson.dumps(ids).decode()])}


def _pages(store, ids, looked):
    """The first page (the first NAVIGATE's pageFrom, else its pageTo, the
    first that gives one) and the last (the last NAVIGATE's pageTo) of a
    session whose NAVIGATE actions are ``ids``, as sessions._Session.add
    finds them; the properties of the middle ones are read only if needed."""
    first_page = last_page = None
    for i in ids:
        props = _properties(store, i, looked)
        if isinstance(props, dict):
            first_page = props.get("pageFrom", props.get("pageTo"))
            if first_page is not None:
                break
    for i in reversed(ids):
        props = _properties(store, i, looked)
        if isinstance(props, dict) and "pageTo" in props:
            last_page = props["pageTo"]
            break
    return first_page, last_page


def _properties(store, i, looked):
    if i not in looked:
        looked.update(_look_up(store, [i]))
    return orjson.loads(looked[i][2])
