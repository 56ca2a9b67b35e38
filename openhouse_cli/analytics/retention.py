"""First-time cohorts and how many of each come back, period by period."""

from __future__ import annotations

import collections
import itertools
import operator
from typing import Any

from . import buckets, summaries
from .buckets import Clock
from .counts import _wall_span
from .source import fetch, filtered, span
from .steps import Step, step_sql

UNITS = ("day", "week", "month")
DEFAULT_PERIODS = 8


def retention(store, filters: dict, *, unit: str = "week", periods: int = DEFAULT_PERIODS,
              born: Step | None = None, back: Step | None = None,
              clock: Clock = Clock()) -> list[dict[str, Any]]:
    """A row a cohort: ``{"cohort", "users", "retained": [...]}``.

    A user's cohort is the period of their first action matching ``born``
    (any action if None); they are retained in period p (1 or more) if an
    action matching ``back`` (any if None) falls p periods after it.
    ``retained[0]`` is the cohort's size; a period that starts after the
    data ends (or after the --end bound) is None.
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}")
    found = _from_days(store, filters, clock, unit, periods, born, back)
    if found is None:
        utc_span = span(store, filters)
        if utc_span is None:
            return []
        wall_span = _wall_span(store, filters, clock, utc_span)
        sizes, counts = _from_actions(store, filters, clock, utc_span, wall_span, unit, periods,
                                      born, back)
        last_wall = wall_span[1]
    else:
        sizes, counts, last_day = found
        # any instant of the data's last day: periods begin on day boundaries
        last_wall = last_day * buckets.DAY
    end = filters.get("end")
    if end is not None:
        end_wall = buckets.wall_us(clock, end.us) if end.instant else end.us
        # An instant falls at a different wall time on each user's clock: a
        # period the data reaches is never after it (found from outside)
        last_wall = max(end_wall, last_wall) if clock.local and end.instant else end_wall
    rows = []
    for cohort in sorted(sizes):
        retained: list[int | None] = [sizes[cohort]]
        for p in range(1, periods):
            if buckets.start_us(unit, cohort + p) > last_wall:
                retained.append(None)
            else:
                retained.append(counts.get((cohort, p), 0))
        rows.append({"cohort": buckets.label(unit, cohort), "users": sizes[cohort],
                     "retained": retained})
    return rows


def _from_actions(store, filters, clock, utc_span, wall_span, unit, periods, born, back):
    """``(sizes, counts)`` from the filtered actions: ``{cohort: users}`` and
    ``{(cohort, period): users}``."""
    bucket = buckets.bucket_sql(unit, buckets.wall_sql(clock, utc_span), wall_span, store.engine)
    conditions, condition_params = [], []
    for step, bit in ((born, 1), (back, 2)):
        if step is None:
            conditions.append(str(bit))
        else:
            sql, params = step_sql(step, store.engine)
            conditions.append(f"CASE WHEN {sql} THEN {bit} ELSE 0 END")
            condition_params += params
    # One read: each user's distinct (period, which steps matched) pairs, a
    # user at a time; the cohorts and returns are counted from them here. A
    # cohort is the period of the user's first action matching --born
    # (instant, then ingestion). In a zone whose periods follow time that is
    # the earliest such period; on each user's own clock (--local), or in a
    # zone whose clocks go back over a period's start, a later action can fall
    # in an earlier period, so each pair's first instant is read too (and its
    # nanoseconds and id where two periods share one microsecond).
    ordered = _in_time_order(clock, unit, utc_span)
    needed = ["user_id", "local_us" if clock.local else "utc_us"]
    instants = "" if ordered else ", utc_us AS u, ns AS n, id AS i"
    needed += [] if ordered else ["utc_us", "ns", "id"]
    steps = [s for s in (born, back) if s is not None]
    needed += ["type_key"] * bool(steps) + ["properties"] * any(s.where for s in steps)
    sql, params = filtered(store, ", ".join(dict.fromkeys(needed)), filters)
    actions = f"SELECT user_id, {bucket} AS b, {' + '.join(conditions)} AS m{instants} FROM ({sql}) a"
    pairs = fetch(store, f"SELECT DISTINCT user_id, b, m, 0 FROM ({actions}) x WHERE m > 0 ORDER BY user_id"
                  if ordered else f"SELECT user_id, b, m, min(u) FROM ({actions}) x WHERE m > 0"
                  " GROUP BY user_id, b, m ORDER BY user_id", condition_params + params)
    sizes: collections.Counter = collections.Counter()
    counts: collections.Counter = collections.Counter()

    def add(born_in, back_in):
        sizes[born_in] += 1
        for b in back_in:
            if born_in < b < born_in + periods:
                counts[(born_in, b - born_in)] += 1

    tied = []  # users whose first --born microsecond falls in two periods (two clocks)
    for user, found in itertools.groupby(pairs, key=operator.itemgetter(0)):
        born_at: dict[int, int] = {}  # each period's first --born instant
        back_in = set()  # a period once, whichever steps its actions matched
        for _, b, m, at in found:
            if m & 1:
                born_at[b] = min(at, born_at.get(b, at))
            if m & 2:
                back_in.add(b)
        if not born_at:
            continue
        if ordered:
            add(min(born_at), back_in)
            continue
        first = min(born_at.values())
        if list(born_at.values()).count(first) == 1:
            add(min(born_at, key=born_at.__getitem__), back_in)
        else:
            tied.append((user, first, back_in))
    for user, first, back_in in tied:  # the nanoseconds, then ingestion, decide
        add(next(iter(fetch(store, f"SELECT b FROM ({actions}) x WHERE m IN (1, 3) AND user_id = ?"
                            " AND u = ? ORDER BY n, i LIMIT 1",
                            [*condition_params, *params, user, first])))[0], back_in)
    return sizes, counts


def _in_time_order(clock: Clock, unit: str, utc_span: tuple[int, int]) -> bool:
    """Whether no action over ``utc_span`` falls in an earlier period than one
    before it: true of a zone unless its clocks go back over a period's
    start there; not of each user's own clock (--local)."""
    if clock.local:
        return False
    changes = buckets.transitions(clock.zone, *utc_span)
    return all(buckets.bucket(unit, at + offset) >= buckets.bucket(unit, at - 1 + before)
               for (_, before), (at, offset) in zip(changes, changes[1:]))


def _from_days(store, filters, clock, unit, periods, born, back):
    """``_from_actions``' answer from each user's days (summaries.users_days),
    and the data's last day; or None when those may not answer (a step with a
    property condition, or see users_days).

    A step's type (or, without one, any of --type's, or any type) picks which
    days count; a type --type leaves out matches nothing. Cohorts and
    returns are whole periods of whole days, so the days answer exactly."""
    if any(step is not None and (step.where is not None or not step.key) for step in (born, back)):
        return None
    types = summaries.filter_types(filters)
    groups = [_keys(step, types) for step in (born, back)]
    found = summaries.users_days(store, filters, clock, groups)
    if found is None:
        return None
    first, last, users = found
    sizes: collections.Counter = collections.Counter()
    counts: collections.Counter = collections.Counter()
    if first > last:
        return sizes, counts, last
    # each day's period (its index from ``first``), and where each period begins
    period = [buckets.bucket(unit, (first + i) * buckets.DAY) for i in range(last - first + 1)]
    begins: dict[int, int] = {}
    for i, n in enumerate(period):
        begins.setdefault(n, i)
    for _, (born_days, back_days) in users:
        if not born_days:
            continue
        cohort = period[(born_days & -born_days).bit_length() - 1]
        sizes[cohort] += 1
        # from one return period to the next: the first return day at or after
        # the next period's first day, a shift and a lowest bit each
        n, limit = cohort + 1, min(cohort + periods, period[-1] + 1)
        while n < limit:
            at = begins[n]
            later = back_days >> at
            if not later:
                break
            n = period[at + (later & -later).bit_length() - 1]
            if n >= limit:
                break
            counts[(cohort, n - cohort)] += 1
            n += 1
    return sizes, counts, last


def _keys(step: Step | None, types: list[str]) -> list[str]:
    """The type keys whose days count for ``step`` under --type ``types``."""
    if step is None:
        return types or [""]
    return [step.key] if not types or step.key in types else []
