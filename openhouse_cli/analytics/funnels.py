"""Funnels: how many users reach each step, counted per user.

The rule is PostHog's and ClickHouse ``windowFunnel``'s: a user reaches
step k if some action matching step 1 is followed by actions matching steps
2..k, each at or after the previous one and each a different action, all
within the window of that step-1 action; the user counts at the furthest
step any attempt reaches. ``strict``: each step is the user's very next
action. ``any``: the steps in any order inside the window; a user then
counts at step k for doing k of the steps.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from typing import Any

from .source import conditions, fetch, filtered, nanoseconds, one, snapshot, span, stale
from .steps import Step, mask_sql

ORDERS = ("ordered", "strict", "any")
DEFAULT_WITHIN_US = 14 * 86400 * 10**6


def funnel(store, filters: dict, steps: list[Step], within_us: int = DEFAULT_WITHIN_US,
           order: str = "ordered") -> list[dict[str, Any]]:
    """A row a step: users, conversion from step 1 and from the previous step,
    and the median seconds from the previous step. No action matching the
    filters: an empty list; actions but none matching a step: 0 users a step."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}")
    reach = [0] * len(steps)
    gaps: list[list[float]] = [[] for _ in steps]
    seen = False
    walk = {"ordered": _ordered, "strict": _strict, "any": _any}[order]
    keys = [step.key for step in steps]
    # steps of distinct types: no action matches two, each step is a list
    disjoint = order == "ordered" and len(set(keys)) == len(keys)
    if disjoint:
        walk = _ordered_lists
    with snapshot(store):  # every read below sees the same actions
        unit, users = 1, None
        if store.engine == "sqlite" and not any(step.where for step in steps):
            extra = nanoseconds(store, filters)
            if extra == {} and disjoint and not filters.get("sessions") and not filters.get("where") \
                    and _worth_seeking(store, keys):
                unit, users = 1000, _seeked(store, filters, keys, within_us)
            elif extra is not None:  # else too many actions with nanoseconds: read row by row
                unit, users = _grouped(store, filters, keys, order == "strict", disjoint, extra)
        if users is None:
            users = _streamed(store, filters, steps, order, disjoint)
        for events in users:
            seen = True
            times = _furthest(walk(events, len(steps), within_us * 1000 // unit), len(steps))
            for k in range(len(times)):
                reach[k] += 1
                if k:
                    gaps[k].append((times[k] - times[k - 1]) * unit / 1e9)
    if not seen and span(store, filters) is None:
        return []  # no action matches the filters: empty, as every analysis is
    # actions matched but no step did: each step with 0 users, in every order
    from statistics import median  # here: it imports random, fractions, decimal (~6 ms)

    out = []
    for k, step in enumerate(steps):
        out.append({
            "step": step.text,
            "users": reach[k],
            "conversion": reach[k] / reach[0] if reach[0] else None,
            "fromPrevious": (reach[k] / reach[k - 1] if reach[k - 1] else None) if k else 1.0
            if reach[0] else None,
            "medianSecondsFromPrevious": median(gaps[k]) if gaps[k] else None,
        })
    return out


def _streamed(store, filters, steps, order, disjoint):
    """Each user's actions in order as ``(instant, mask)``, from a row an action:
    bit i of the mask is set when the action matches ``steps[i]``.
    ``disjoint``: a list a step of its actions' instants instead."""
    mask, mask_params = mask_sql(steps, store.engine)
    sql, params = filtered(store, "id, user_id, utc_us, ns, type_key, properties", filters)
    where = "" if order == "strict" else " WHERE m > 0"
    rows = fetch(store, f"SELECT user_id, utc_us, ns, m FROM (SELECT id, user_id, utc_us, ns, "
                 f"{mask} AS m FROM ({sql}) a) b{where} ORDER BY user_id, utc_us, ns, id",
                 mask_params + params)
    for _, group in itertools.groupby(rows, key=operator.itemgetter(0)):
        events = [(utc_us * 1000 + ns, m) for _, utc_us, ns, m in group]
        if disjoint:
            yield [[t for t, m in events if m & 1 << k] for k in range(len(steps))]
        else:
            yield events


def _grouped(store, filters, keys, everything, disjoint, extra):
    """As _streamed, for steps that are types alone, on SQLite: a row per user
    and type from the index on (user_id, type_key, utc_us), its times (and ids)
    joined as text, so there is no sort and no Python row per action.
    ``everything``: every action, not only those of the steps' types (strict).
    ``disjoint``: each user as a list a step of its actions' instants instead.
    ``extra``: the filtered actions' nanoseconds (source.nanoseconds).
    Returns the nanoseconds in a unit of the instants (1000 for microseconds,
    when no action has nanoseconds) and the users."""
    # ids order actions at the same instant: needed unless the steps are
    # disjoint lists of instants and no action has nanoseconds
    micro = disjoint and not extra
    ids = "NULL" if micro else "group_concat(id)"
    sql, params = filtered(store, "id, user_id, type_key, utc_us", filters)
    where = ""
    if not everything:
        wanted = list(dict.fromkeys(keys))
        where = f" WHERE type_key IN ({', '.join('?' * len(wanted))})"
        params = params + wanted
    rows = fetch(store, f"SELECT user_id, type_key, group_concat(utc_us), {ids} FROM ({sql}) a"
                 f"{where} GROUP BY user_id, type_key ORDER BY user_id, type_key", params)
    masks: dict[str, int] = {}
    for i, key in enumerate(keys):
        masks[key] = masks.get(key, 0) | 1 << i
    return (1000 if micro else 1), _users(rows, keys, masks, extra, disjoint)


# Users whose first attempt the seeks cannot settle are read as _grouped
# reads everyone, this many at a time (each a parameter of the query)
_FALLBACK_BATCH = 500
# Seeks pay where users have many actions of the steps' types (one seek a step
# replaces reading them); where they have a few, reading them is as cheap
_SEEK_FROM_ACTIONS = 32


def _worth_seeking(store, keys) -> bool:
    """Whether the steps' types have at least _SEEK_FROM_ACTIONS actions a
    user on average (all time, from the summaries: a few thousand rows),
    and the summaries are right (the seeks take their users from them)."""
    if stale(store):
        return False
    found = one(store, f"SELECT sum(actions), count(DISTINCT user_id) FROM summary_user_types"
                f" WHERE type_key IN ({', '.join('?' * len(keys))})", keys)
    return bool(found and found[1] and found[0] >= _SEEK_FROM_ACTIONS * found[1])


def _seeked(store, filters, keys, within_us):
    """As _grouped for ordered steps of distinct types (``disjoint``) when no
    filtered action has nanoseconds (the seeks read microseconds), most
    users by a few index seeks instead of reading their actions: a user's
    first attempt is the first step-1 action, then for each step the first
    action of its type at or after the step before, each the first entry of
    a range of (user_id, type_key, utc_us) that the filters' conditions
    accept. When that attempt reaches every step, or runs out of a step's
    actions (no later attempt then goes further), it is the user's answer,
    given to the walk as one-instant lists so that the walk decides exactly
    as before. A user whose first attempt ends at the window, where a later
    one might go further, is read whole (_grouped). The users are those of
    the step-1 type in summary_user_types (exact, as every summary is)."""
    # the users are given once, to the list of users; each seek is one user's
    where, params = conditions(store, {**filters, "users": ()})
    where = f" AND {where}" if where else ""
    known = filters.get("users")
    parts = ["u AS MATERIALIZED (SELECT DISTINCT user_id FROM summary_user_types WHERE type_key = ?"
             + (f" AND user_id IN ({', '.join('?' * len(known))})" if known else "") + ")"]
    values: list = [keys[0], *(known or ())]

    def seek(after: str) -> str:
        return ("(SELECT min(utc_us) FROM actions INDEXED BY actions_user_type_time"
                f" WHERE user_id = p.user_id AND type_key = ?{after}{where})")

    parts.append(f"t1 AS MATERIALIZED (SELECT p.user_id, {seek('')} AS s1 FROM u p)")
    values += [keys[0], *params]
    for k in range(2, len(keys) + 1):
        parts.append(f"t{k} AS MATERIALIZED (SELECT p.*, {seek(f' AND utc_us >= p.s{k - 1}')}"
                     f" AS s{k} FROM t{k - 1} p)")
        values += [keys[k - 1], *params]
    found = fetch(store, f"WITH {', '.join(parts)} SELECT * FROM t{len(keys)} WHERE s1 IS NOT NULL",
                  values)
    return _settled(store, filters, keys, found, within_us)


def _settled(store, filters, keys, found, within_us):
    """Each user's one-instant lists, where the first attempt settles it;
    then the other users, read whole."""
    unsettled = []
    for user, *times in found:
        start, lists, settled = times[0], [], True
        for t in times:
            if t is None:  # no such action after the step before: no attempt goes further
                break
            if t - start > within_us:  # past the window: a later attempt might go further
                settled = False
                break
            lists.append([t])
        if settled:
            yield lists + [[] for _ in range(len(keys) - len(lists))]
        else:
            unsettled.append(user)
    for i in range(0, len(unsettled), _FALLBACK_BATCH):
        batch = unsettled[i:i + _FALLBACK_BATCH]
        yield from _grouped(store, {**filters, "users": batch}, keys, False, True, {})[1]


def _users(rows, keys, masks, extra, disjoint):
    micro = disjoint and not extra
    for _, group in itertools.groupby(rows, key=operator.itemgetter(0)):
        if micro:
            found = {key: list(map(int, times.split(","))) for _, key, times, _ in group}
            # group_concat's order is not promised: sorted (at once if already)
            yield [sorted(found.get(key, ())) for key in keys]
            continue
        events = []
        for _, key, times, order in group:
            mask = masks.get(key, 0)
            events += [(int(t) * 1000 + extra.get(int(i), 0), int(i), mask)
                       for t, i in zip(times.split(","), order.split(","))]
        events.sort()
        if disjoint:
            yield [[t for t, _, m in events if m & 1 << k] for k in range(len(keys))]
        else:
            yield [(t, m) for t, _, m in events]


def _furthest(attempts, n):
    """The step times of the furthest of a user's attempts (the earliest of
    equals), as a walk below yields them: each attempt's times in order."""
    best: list[int] = []
    for found in attempts:
        if len(found) > len(best):
            best = found
            if len(best) == n:
                break
    return best


def _ordered_lists(lists, n, within):
    """_ordered for steps that no action matches two of, given a list a step of
    its actions' instants in order: each step is the first action of its
    step at or after the previous step."""
    for start in lists[0]:
        found, prev = [start], start
        for later in lists[1:]:
            j = bisect.bisect_left(later, prev)
            if j == len(later):
                yield found  # every later attempt stops here too (its steps come no earlier)
                return
            if later[j] - start > within:
                break
            prev = later[j]
            found.append(prev)
        yield found


def _ordered(events, n, within):
    """Each attempt of the user: a step-1 action, then for each step the first
    other action matching it at or after the step before, within the window."""
    times = [t for t, _ in events]
    for i, (start, m) in enumerate(events):
        if not m & 1:
            continue
        used, found, prev = {i}, [start], start
        for k in range(1, n):
            bit = 1 << k
            j = bisect.bisect_left(times, prev)
            while j < len(events) and events[j][0] - start <= within:
                if events[j][1] & bit and j not in used:
                    break
                j += 1
            else:
                break
            used.add(j)
            prev = events[j][0]
            found.append(prev)
        yield found


def _strict(events, n, within):
    """As _ordered, each step the very next action of the user."""
    for i, (start, m) in enumerate(events):
        if not m & 1:
            continue
        found = [start]
        for k in range(1, n):
            j = i + k
            if j >= len(events) or not events[j][1] & (1 << k) or events[j][0] - start > within:
                break
            found.append(events[j][0])
        yield found


def _any(events, n, within):
    """Each window's most steps matched by different actions, their times in order."""
    times = [t for t, _ in events]
    positions = [[j for j, (_, m) in enumerate(events) if m & (1 << k)] for k in range(n)]
    for i, start in enumerate(times):
        if i and times[i - 1] == start:
            continue  # the same window as the action before
        end = bisect.bisect_right(times, start + within)
        candidates = []
        for found in positions:
            at = bisect.bisect_left(found, i)
            candidates.append([j for j in found[at:at + n] if j < end])
        yield sorted(times[j] for j in _matching(candidates))


def _matching(candidates):
    """A largest set of actions matched to steps, each step and action used
    once (augmenting paths). A step needs only its first n candidates: the
    other steps can take at most n - 1 of them."""
    owner: dict[int, int] = {}

    def assign(k, seen):
        for j in candidates[k]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or assign(owner[j], seen):
                owner[j] = k
                return True
        return False

    for k in range(len(candidates)):
        assign(k, set())
    return list(owner)
