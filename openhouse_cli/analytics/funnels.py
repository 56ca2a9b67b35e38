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

import itertools

import bisect
import statistics
from typing import Any

from .source import fetch, filtered, span
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
    mask, mask_params = mask_sql(steps, store.engine)
    sql, params = filtered(store, "id, user_id, utc_us, ns, type_key, properties", filters)
    where = "" if order == "strict" else " WHERE m > 0"
    rows = fetch(store, f"SELECT user_id, utc_us, ns, m FROM (SELECT id, user_id, utc_us, ns, "
                 f"{mask} AS m FROM ({sql}) a) b{where} ORDER BY user_id, utc_us, ns, id",
                 mask_params + params)
    reach = [0] * len(steps)
    gaps: list[list[float]] = [[] for _ in steps]
    seen = False
    within_ns = within_us * 1000
    walk = {"ordered": _ordered, "strict": _strict, "any": _any}[order]
    user, events = None, list[tuple]()
    for row in itertools.chain(rows, [None]):
        if row is not None:
            seen = True
        if row is None or row[0] != user:
            if events:
                times = walk(events, len(steps), within_ns)
                for k in range(len(times)):
                    reach[k] += 1
                    if k:
                        gaps[k].append((times[k] - times[k - 1]) / 1e9)
            if row is None:
                break
            user, events = row[0], []
        events.append((row[1] * 1000 + row[2], row[3]))
    if not seen and span(store, filters) is None:
        return []  # no action matches the filters: empty, as every analysis is
    # actions matched but no step did: each step with 0 users, in every order
    out = []
    for k, step in enumerate(steps):
        out.append({
            "step": step.text,
            "users": reach[k],
            "conversion": reach[k] / reach[0] if reach[0] else None,
            "fromPrevious": (reach[k] / reach[k - 1] if reach[k - 1] else None) if k else 1.0
            if reach[0] else None,
            "medianSecondsFromPrevious": statistics.median(gaps[k]) if gaps[k] else None,
        })
    return out


def _ordered(events, n, within):
    """The step times of the user's best attempt (furthest, then earliest)."""
    times = [t for t, _ in events]
    best: list[int] = []
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
        if len(found) > len(best):
            best = found
            if len(best) == n:
                break
    return best


def _strict(events, n, within):
    """As _ordered, each step the very next action of the user."""
    best: list[int] = []
    for i, (start, m) in enumerate(events):
        if not m & 1:
            continue
        found = [start]
        for k in range(1, n):
            j = i + k
            if j >= len(events) or not events[j][1] & (1 << k) or events[j][0] - start > within:
                break
            found.append(events[j][0])
        if len(found) > len(best):
            best = found
            if len(best) == n:
                break
    return best


def _any(events, n, within):
    """The most steps matched by different actions inside one window, their times in order."""
    times = [t for t, _ in events]
    positions = [[j for j, (_, m) in enumerate(events) if m & (1 << k)] for k in range(n)]
    best: list[int] = []
    for i, start in enumerate(times):
        if i and times[i - 1] == start:
            continue  # the same window as the action before
        end = bisect.bisect_right(times, start + within)
        candidates = []
        for found in positions:
            at = bisect.bisect_left(found, i)
            candidates.append([j for j in found[at:at + n] if j < end])
        matched = _matching(candidates)
        if len(matched) > len(best):
            best = sorted(times[j] for j in matched)
            if len(best) == n:
                break
    return best


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
