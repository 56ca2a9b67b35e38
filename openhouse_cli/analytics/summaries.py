"""``stats``, ``count`` and ``active`` from the summaries (rollups.py), when the filters allow.

The summaries count actions by UTC slot (15 minutes) or hour, so they can
answer only what is a union of whole slots: no filter by user, session or
property, time bounds on slot boundaries, and a zone whose offsets and
changes fall on them (each slot then lies in one hour, day, week and month
of the zone). Each function returns None otherwise, and the caller runs its
SQL over the actions: the answers are the same either way (tests compare).

On SQLite, active users by UTC day are kept too (rollups.py): users a day
a type, and each user's days as bits. With the clock on UTC days and bounds
on them, ``count --by [type] --by day`` takes its users from the first and
``active`` counts from the second: each user's bits are read as one row of
integers, all users' rows are laid end to end as one binary string, and a
day's users are a strided slice of it read as an integer (a bit a user);
windows are ORs of those, counts are their popcounts. No Python step per
(user, day), and at most a few megabytes at a time.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import sys
from array import array
from collections.abc import Iterator
from itertools import chain, groupby, islice
from operator import itemgetter

from ..rollups import DAY_US, HOUR_US, SHIFT_DAYS, SLOT_US
from ..schema import DAY_BITS, type_key
from ..times import Bound
from . import buckets
from .buckets import Clock
from .source import fetch, fetch_batches, one, stale

_GRAIN = {"summary_slots": ("slot", SLOT_US), "summary_user_hours": ("hour", HOUR_US),
          "summary_day_users": ("day", DAY_US)}
# Beyond so many days (or type x block columns) the bitsets cost more than the user hours
_MAX_DAYS = 5000
_MAX_COLUMNS = 1000
# Characters of users' rows laid end to end at a time (memory stays bounded)
_CHUNK_CHARS = 4_000_000
_COLUMN = {"type": "type_key", "user": "user_id", "session": "session_id"}
_enabled = contextvars.ContextVar("ohlog_summaries", default=True)


@contextlib.contextmanager
def bypassed():
    """Within this block, every analysis reads the actions themselves (for tests and benchmarks)."""
    token = _enabled.set(False)
    try:
        yield
    finally:
        _enabled.reset(token)


def _usable(store, filters) -> bool:
    """Whether the summaries may answer: no filter they cannot apply, and no
    change to the actions by another program since they were last right."""
    return (_enabled.get()
            and not any(filters.get(name) for name in ("users", "sessions", "where", "gaps"))
            and not stale(store))


def filter_types(filters) -> list[str]:
    """--type's type keys, each once."""
    return list(dict.fromkeys(type_key(t) for t in filters.get("types") or ()))


def _timed(filters) -> bool:
    return filters.get("start") is not None or filters.get("end") is not None


def _where(store, table, filters, *, timed=True) -> tuple[str, list] | None:
    """The WHERE clause selecting ``filters``' rows of ``table``; None if the bounds
    are not on its slots' boundaries."""
    clauses, params = [], []
    types = filter_types(filters)
    if store.engine == "postgresql":  # its text cannot hold NUL: stored escaped
        from ..store.postgres import escape

        types = [escape(t) for t in types]
    if types:
        clauses.append(f"type_key IN ({', '.join('?' * len(types))})")
        params += types
    if timed and _timed(filters):
        column, grain = _GRAIN[table]
        start, end = Bound.of(filters.get("start")), Bound.of(filters.get("end"))
        if start is not None:
            if not start.instant or start.ns != 0 or start.us % grain:
                return None
            clauses.append(f"{column} >= ?")
            params.append(start.us // grain)
        if end is not None:
            if not end.instant or end.ns != 999 or (end.us + 1) % grain:
                return None
            clauses.append(f"{column} < ?")
            params.append((end.us + 1) // grain)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _fits(clock: Clock, utc_span, grain: int) -> bool:
    """Whether every offset of the clock, and every change of it, falls on ``grain``."""
    if clock.local:
        return False
    changes = buckets.transitions(clock.zone, *utc_span)
    return all(offset % grain == 0 for _, offset in changes) and all(
        at % grain == 0 for at, _ in changes[1:])


def _bucket(table, unit, clock, utc_span, wall_span, engine="sqlite") -> str:
    column, grain = _GRAIN[table]
    return buckets.key_sql(unit, clock, utc_span, wall_span, f"({column} * {grain})", engine)


def count_groups(store, filters: dict, dims: list[str], clock: Clock, utc_span, wall_span,
                 users: bool) -> dict | None:
    """``count``'s groups ``{key: (actions, users)}`` from the summaries, or None."""
    if not _usable(store, filters) or any(d.startswith("prop:") for d in dims):
        return None
    unit = next((d for d in dims if d in buckets.UNITS), None)
    others = {d for d in dims if d != unit}
    if users and unit == "day" and others <= {"type"} and _on_utc_days(store, filters, clock, utc_span):
        return _count_by_utc_day(store, filters, dims)
    if "session" in others:
        if unit or _timed(filters) or filter_types(filters) or others - {"user", "session"}:
            return None
        table = "summary_sessions"
    elif not unit and not _timed(filters):
        table = "summary_user_types"
    else:
        table = "summary_user_hours" if users or "user" in others else "summary_slots"
        if not _fits(clock, utc_span, _GRAIN[table][1]):
            return None
    where = _where(store, table, filters)
    if where is None:
        return None
    keys = [_COLUMN[d] if d in _COLUMN else _bucket(table, d, clock, utc_span, wall_span, store.engine)
            for d in dims]
    names = [f"k{i}" for i in range(len(dims))]
    select = ", ".join(f"{k} AS {n}" for k, n in zip(keys, names))
    user = "user_id" if table != "summary_slots" else "NULL AS user_id"
    distinct = "count(DISTINCT user_id)" if users else "0"
    text = (f"SELECT {', '.join(names)}, CAST(sum(actions) AS BIGINT), {distinct} FROM (SELECT {user}, {select},"
            f" actions FROM {table}{where[0]}) a GROUP BY {', '.join(names)}")
    escaped = [i for i, d in enumerate(dims) if d in _COLUMN]
    return {tuple(row[:-2]): (row[-2], row[-1])
            for row in fetch(store, text, where[1], escaped=escaped)}


def spellings(store, filters: dict) -> dict | None:
    """``{(type_key, type): actions}`` from the types (or with time bounds, the slots), or None."""
    if not _usable(store, filters):
        return None
    table = "summary_slots" if _timed(filters) else "summary_user_types"
    where = _where(store, table, filters)
    if where is None:
        return None
    return {(key, kind): n for key, kind, n in fetch(
        store, f"SELECT type_key, type, CAST(sum(actions) AS BIGINT) FROM {table}{where[0]}"
        " GROUP BY type_key, type", where[1], escaped=(0, 1))}


def stats_parts(store, filters: dict, clock: Clock, utc_span) -> dict | None:
    """``stats``' counts without a filter: users, sessions, actions and users a
    type, spellings, actions a day (``{"users", "sessions", "spelled",
    "users_of", "per_day"}``), or None."""
    if not _usable(store, filters) or filter_types(filters) or _timed(filters):
        return None
    if not _fits(clock, utc_span, SLOT_US):
        return None
    wall_span = tuple(buckets.wall_us(clock, us) for us in utc_span)
    day = _bucket("summary_slots", "day", clock, utc_span, wall_span)
    # the slots' totals first, in key order (no sort), then their days
    per_day = dict(fetch(store, f"SELECT {day} AS d, CAST(sum(n) AS BIGINT) FROM (SELECT slot,"
                         " sum(actions) AS n FROM summary_slots GROUP BY slot) s GROUP BY d"))
    # One pass in key order gives each spelling's actions and users; a type's users
    # are its one spelling's (nearly always), else counted apart for that type
    spelled: dict[tuple[str, str], int] = {}
    users_of: dict[str, int] = {}
    spellings_of: dict[str, int] = {}
    for key, kind, actions, users in fetch(store, "SELECT type_key, type, CAST(sum(actions) AS BIGINT),"
                                           " count(*) FROM summary_user_types GROUP BY type_key, type",
                                           escaped=(0, 1)):
        spelled[(key, kind)] = actions
        users_of[key] = users
        spellings_of[key] = spellings_of.get(key, 0) + 1
    for key in [key for key, n in spellings_of.items() if n > 1]:
        stored = key
        if store.engine == "postgresql":  # its text cannot hold NUL: stored escaped
            from ..store.postgres import escape

            stored = escape(key)
        found = one(store, "SELECT count(DISTINCT user_id) FROM summary_user_types WHERE type_key = ?",
                    [stored])
        users_of[key] = found[0] if found else 0
    # The users: from one to the next in the sessions' key, a seek each (20,000 seeks
    # instead of reading 780,000 sessions at 10M actions)
    users = one(store, "WITH RECURSIVE u(x) AS (SELECT min(user_id) FROM summary_sessions UNION ALL"
                " SELECT (SELECT min(user_id) FROM summary_sessions WHERE user_id > x) FROM u"
                " WHERE x IS NOT NULL) SELECT count(x) FROM u")
    sessions = one(store, "SELECT count(*) FROM summary_sessions")
    return {"users": users[0] if users else 0, "sessions": sessions[0] if sessions else 0,
            "spelled": spelled, "users_of": users_of, "per_day": per_day}


def active_rows(store, filters: dict, clock: Clock, utc_span, wall_span):
    """``active``'s ``(day, user)`` rows in day order from the user hours, or None."""
    table = "summary_user_hours"
    if not _usable(store, filters) or not _fits(clock, utc_span, HOUR_US):
        return None
    where = _where(store, table, filters)
    if where is None:
        return None
    day = _bucket(table, "day", clock, utc_span, wall_span)
    return fetch(store, f"SELECT d, user_id FROM (SELECT {day} AS d, user_id FROM {table}{where[0]}) a"
                 " GROUP BY d, user_id ORDER BY d", where[1], escaped=(1,))


def _on_utc_days(store, filters, clock: Clock, utc_span) -> bool:
    """Whether the days summaries may answer: SQLite, no filter they cannot
    apply, a clock on UTC days (UTC, or a zone whose offsets are whole days) and
    bounds, if any, on UTC day boundaries."""
    # Their type key '' stands for any type: a --type '' (which no action
    # has) must not read those rows, so it takes the other path
    return (store.engine == "sqlite" and _usable(store, filters) and "" not in filter_types(filters)
            and _fits(clock, utc_span, DAY_US) and _where(store, "summary_day_users", filters) is not None)


def _count_by_utc_day(store, filters: dict, dims: list[str]) -> dict | None:
    """``count``'s groups by day or by type and day from summary_day_users
    (a row a day a type, and '' for any type)."""
    by_type = "type" in dims
    types = filter_types(filters)
    bounded = _where(store, "summary_day_users", filters)
    if bounded is None:
        return None
    where, params = bounded
    if not types:
        where += (" AND " if where else " WHERE ") + ("type_key != ''" if by_type else "type_key = ''")
    found: dict[tuple[int, str], tuple[int, int]] = {}
    for d, t, users, actions in fetch(
            store, f"SELECT day, type_key, users, actions FROM summary_day_users{where}", params):
        key = (d, t if by_type else "")
        n, u = found.get(key, (0, 0))
        found[key] = (n + actions, u + users)
    if not by_type and len(types) > 1 and found:  # several types' users together: from the bits
        days = sorted(d for d, _ in found)
        daily = _daily_counts(store, types, range(days[0], days[-1] + 1), {"users": 1})
        if daily is None:
            return None
        for d, n in daily:
            if (d, "") in found:
                found[(d, "")] = (found[(d, "")][0], n["users"])
    at = {"type": 1, "day": 0}
    return {tuple(key[at[d]] for d in dims): value for key, value in found.items()}


def active_days(store, filters: dict, clock: Clock, utc_span, days: range, windows) -> list | None:
    """``active``'s ``(day, {name: users})`` for each day of ``days`` from the
    days summaries (``windows``: ``(name, days)`` pairs), or None."""
    if not days or not _on_utc_days(store, filters, clock, utc_span):
        return None
    return _daily_counts(store, filter_types(filters) or [""], days, dict(windows))


def _daily_counts(store, types: list[str], days: range, windows: dict) -> list | None:
    """``(day, {name: users})`` for each of ``days`` (UTC, consecutive): the users
    with an action of ``types`` ('' any) in the ``windows[name]`` days up to it
    (within ``days``: the actions before them are outside the filters)."""
    lo, hi = days[0] + SHIFT_DAYS, days[-1] + SHIFT_DAYS
    first, last = lo // DAY_BITS, hi // DAY_BITS
    blocks = last - first + 1
    if len(days) > _MAX_DAYS or len(types) * blocks > _MAX_COLUMNS:
        return None
    if len(types) == 1:
        columns = [f"sum(CASE block WHEN {b} THEN bits ELSE 0 END)" for b in range(first, last + 1)]
        params = [types[0]]
        where = "type_key = ?"
    else:
        columns = [f"sum(CASE WHEN type_key = ? AND block = {b} THEN bits ELSE 0 END)"
                   for _ in types for b in range(first, last + 1)]
        params = [t for t in types for _ in range(blocks)] + types
        where = f"type_key IN ({', '.join('?' * len(types))})"
    rows = chain.from_iterable(fetch_batches(
        store, f"SELECT {', '.join(columns)} FROM summary_user_day_bits WHERE {where}"
        f" AND block BETWEEN {first} AND {last} GROUP BY user_id", params))
    # Each user's row: 64 bits a (type, block) column, the first lowest; laid end
    # to end and written in binary, a bit of the row is a character every ``width``
    width = 64 * len(types) * blocks
    places = [[width - 1 - 64 * (t * blocks + day // DAY_BITS - first) - day % DAY_BITS
               for day in range(lo, hi + 1)] for t in range(len(types))]
    totals = {name: [0] * len(days) for name in windows}
    while True:
        chunk = list(islice(rows, max(1, _CHUNK_CHARS // width)))
        if not chunk:
            break
        packed = array("q", chain.from_iterable(chunk)).tobytes()  # the machine's byte order
        text = format(int.from_bytes(packed, sys.byteorder), "b")
        text = text.zfill(width * len(chunk))
        users = [int(text[at::width], 2) for at in places[0]]
        for more in places[1:]:
            users = [x | int(text[at::width], 2) for x, at in zip(users, more)]
        for name, span in windows.items():
            for j, x in enumerate(_window(users, span)):
                totals[name][j] += x.bit_count()
    return [(d, {name: totals[name][j] for name in windows}) for j, d in enumerate(days)]


def _window(sets: list[int], span: int) -> list[int]:
    """Each position's OR with the ``span - 1`` before it (fewer at the start), by doubling."""
    covered = 1
    while 2 * covered <= span:
        sets = [x | sets[j - covered] if j >= covered else x for j, x in enumerate(sets)]
        covered *= 2
    rest = span - covered
    if rest:
        sets = [x | sets[j - rest] if j >= rest else x for j, x in enumerate(sets)]
    return sets


def users_days(store, filters: dict, clock: Clock, groups: list[list[str]]
               ) -> tuple[int, int, Iterator[tuple[str, list[int]]]] | None:
    """Each user's days from the days summaries, or None if they may not answer.

    ``(first, last, users)``: ``first`` and ``last`` are the day numbers on the
    clock of the first and last days with a filtered action (``first > last``
    if there is none), from summary_day_users; ``users`` yields ``(user, days)``
    a user at a time, ``days[g]`` an integer whose bit i is set iff the user
    has an action of one of ``groups[g]``'s type keys ('' any; none: no day)
    on day ``first + i`` (a user without any row in the span is left out, one
    with rows may have no day in a group).
    """
    if (store.engine != "sqlite" or clock.local or not _usable(store, filters)
            or "" in filter_types(filters)):
        return None
    bounded = _where(store, "summary_day_users", filters)
    if bounded is None:
        return None
    where, params = bounded
    if not filter_types(filters):
        where += (" AND " if where else " WHERE ") + "type_key = ''"
    # The days of the filtered actions (the actions' own span would cost a
    # look-up in the time index that --type can make slow)
    lo, hi = one(store, f"SELECT min(day), max(day) FROM summary_day_users{where} AND users > 0",
                 params) or (None, None)
    if lo is None:
        return 1, 0, iter(())
    utc_span = (lo * DAY_US, (hi + 1) * DAY_US - 1)
    if not _on_utc_days(store, filters, clock, utc_span):
        return None
    changes = buckets.transitions(clock.zone, *utc_span)
    if len(changes) != 1:  # whole-day offsets that change: not worth a case of their own
        return None
    shift = changes[0][1] // DAY_US  # the clock's days are UTC days moved by its offset
    lo, hi = lo + SHIFT_DAYS, hi + SHIFT_DAYS  # as the bits number them
    if hi - lo + 1 > _MAX_DAYS:
        return None
    first_block, last_block = lo // DAY_BITS, hi // DAY_BITS
    keys = list(dict.fromkeys(k for group in groups for k in group))
    reads = [chain.from_iterable(fetch_batches(
        store, "SELECT user_id, block, bits FROM summary_user_day_bits WHERE type_key = ?"
        " AND block BETWEEN ? AND ? ORDER BY user_id, block", [key, first_block, last_block]))
        for key in keys]
    first, last = lo - SHIFT_DAYS + shift, hi - SHIFT_DAYS + shift
    # One read a key, each in its primary key's (user, block) order; merged by
    # user in Python, whose string order is SQLite's BINARY one (UTF-8 keeps
    # code point order), so a user's rows come together
    streams = [_tagged(i, rows) for i, rows in enumerate(reads)]
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=itemgetter(0))
    of_group = [[keys.index(k) for k in group] for group in groups]
    return first, last, _by_user(merged, of_group, len(keys), first_block, lo % DAY_BITS, hi - lo + 1)


def _tagged(i: int, rows):
    for user, block, bits in rows:
        yield user, i, block, bits


def _by_user(rows, where: list[list[int]], keys: int, first_block: int, skip: int, days: int):
    """``(user, days)`` from ``(user, key index, block, bits)`` rows in user order:
    each key's blocks laid end to end from ``first_block``, each group's keys
    OR-ed, then the ``skip`` days of the first block before the span and the
    days after its ``days`` cut off."""
    full = (1 << days) - 1
    for user, found in groupby(rows, key=itemgetter(0)):
        of_key = [0] * keys
        for _, i, block, bits in found:
            of_key[i] |= bits << (DAY_BITS * (block - first_block))
        out = []
        for group in where:
            value = 0
            for i in group:
                value |= of_key[i]
            out.append(value >> skip & full)
        yield user, out
