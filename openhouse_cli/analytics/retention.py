"""First-time cohorts and how many of each come back, period by period."""

from __future__ import annotations

import collections
import itertools
import operator
from typing import Any

from . import buckets
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
    utc_span = span(store, filters)
    if utc_span is None:
        return []
    wall_span = _wall_span(store, filters, clock, utc_span)
    bucket = buckets.bucket_sql(unit, buckets.wall_sql(clock, utc_span), wall_span, store.engine)
    conditions, condition_params = [], []
    for step, bit in ((born, 1), (back, 2)):
        if step is None:
            conditions.append(str(bit))
        else:
            sql, params = step_sql(step, store.engine)
            conditions.append(f"CASE WHEN {sql} THEN {bit} ELSE 0 END")
            condition_params += params
    needed = ["user_id", "local_us" if clock.local else "utc_us"]
    steps = [s for s in (born, back) if s is not None]
    needed += ["type_key"] * bool(steps) + ["properties"] * any(s.where for s in steps)
    sql, params = filtered(store, ", ".join(needed), filters)
    # One read: each user's distinct (period, which steps matched) pairs, a
    # user at a time; the cohorts and returns are counted from them here.
    actions = f"SELECT user_id, {bucket} AS b, {' + '.join(conditions)} AS m FROM ({sql}) a"
    pairs = fetch(store, f"SELECT DISTINCT user_id, b, m FROM ({actions}) x WHERE m > 0 "
                  "ORDER BY user_id", condition_params + params)
    sizes: collections.Counter = collections.Counter()
    counts: collections.Counter = collections.Counter()
    for _, found in itertools.groupby(pairs, key=operator.itemgetter(0)):
        born_in, back_in = None, []
        for _, b, m in found:
            if m & 1 and (born_in is None or b < born_in):
                born_in = b
            if m & 2:
                back_in.append(b)
        if born_in is None:
            continue
        sizes[born_in] += 1
        for b in back_in:
            if born_in < b < born_in + periods:
                counts[(born_in, b - born_in)] += 1
    end = filters.get("end")
    if end is not None:
        last_wall = buckets.wall_us(clock, end.us) if end.instant else end.us
    else:
        last_wall = wall_span[1]
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
