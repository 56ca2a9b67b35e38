"""What is in the database, actions by group, and active users: ``stats``, ``count``, ``active``.

Each is a few GROUP BY queries over the filtered actions, run by the
database; only the groups come back to Python.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from ..errors import OhlogError
from ..fields import exact_dumps, exact_loads
from ..query import MISSING, build_query, value_at
from . import buckets, summaries
from .buckets import Clock
from .source import fetch, filtered, one, span

DIMENSIONS = ("type", "user", "session", *buckets.UNITS, "prop:KEY")
KEYS = {"type": "type", "user": "userId", "session": "sessionId"}
# A zero-filled series longer than this is refused before it is computed.
MAX_BUCKETS = 100_000


class DimensionError(OhlogError, ValueError):
    """An unknown or repeated --by."""


class SeriesTooLong(OhlogError, ValueError):
    """A zero-filled time series of more than MAX_BUCKETS buckets."""


def grouping(dims: list[str]) -> list[str]:
    """The dimensions actually grouped by: a session is its user's (two users'
    sessions with one sessionId are two sessions), so ``session`` brings ``user``."""
    if "session" in dims and "user" not in dims:
        at = dims.index("session")
        return dims[:at] + ["user"] + dims[at:]
    return list(dims)


def output_keys(dims: list[str]) -> list[str]:
    """Each grouped dimension's key in the output (``grouping(dims)`` order).

    A property is named by its KEY, or ``prop:KEY`` where KEY is another key
    of the same output (``type``, ``day``, ``actions``, ``users``...), so no
    group value is lost."""
    dims = grouping(dims)
    fixed = [KEYS.get(d, d) for d in dims if not d.startswith("prop:")] + ["actions", "users"]
    raw = [d[5:] for d in dims if d.startswith("prop:")]
    taken = set(fixed) | set(raw)
    names = []
    for dim in dims:
        if not dim.startswith("prop:"):
            names.append(KEYS.get(dim, dim))
            continue
        name = dim[5:]
        if name in fixed:
            name = "prop:" + name
            while name in taken:
                name = "prop:" + name
            taken.add(name)
        names.append(name)
    return names


def spellings(store, filters: dict) -> dict[str, str]:
    """Each type key's most common spelling among the filtered actions (ties: the first by code point)."""
    found = summaries.spellings(store, filters)
    if found is not None:
        return _commonest(found)
    sql, params = filtered(store, "type_key, type", filters)
    return _commonest({(key, kind): n for key, kind, n in fetch(
        store, f"SELECT type_key, type, count(*) FROM ({sql}) a GROUP BY type_key, type", params,
        escaped=(0, 1))})


def _edge_time(store, filters, order):
    """The time of the first (``asc``) or last (``desc``) filtered action in
    ohlog's order: by instant, and at one instant by ingestion. So the last
    is the latest instant's last-ingested action, as query and sessions have
    it (a descending query keeps ties in ingestion order: its first row at
    that instant is the first ingested)."""
    columns = "time" if order == "asc" else "utc_us, ns"
    sql, params = build_query(columns, engine=store.engine, **{**filters, "order": order, "limit": 1})
    row = one(store, sql, params)
    if row is None or order == "asc":
        return row[0] if row else None
    sql, params = build_query("id, time, utc_us, ns", engine=store.engine, **{**filters, "order": None})
    row = one(store, f"SELECT time FROM ({sql}) a WHERE utc_us = ? AND ns = ? ORDER BY id DESC LIMIT 1",
              [*params, *row])
    return row[0] if row else None


def database_size(store) -> int | None:
    """The database's size in bytes, as the engine reports it."""
    if store.engine == "postgresql":
        row = one(store, "SELECT pg_database_size(current_database())")
    else:
        row = one(store, "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
    return int(row[0]) if row and row[0] is not None else None


def stats(store, filters: dict, clock: Clock = Clock()) -> dict[str, Any]:
    """Actions, users, sessions, first and last time, types, actions a day, the database's size.

    One scan: the actions grouped by user, session, type, spelling and day,
    added up here (a session rarely spans days, so the groups are few)."""
    utc_span = span(store, filters)
    if utc_span is None:
        return {"actions": 0, "users": 0, "sessions": 0, "first": None, "last": None,
                "types": [], "perDay": [], "bytes": database_size(store)}
    kept = summaries.stats_parts(store, filters, clock, utc_span)
    if kept is not None:
        return _stats(store, filters, kept["users"], kept["sessions"], kept["spelled"],
                      kept["users_of"], kept["per_day"], clock)
    day = buckets.bucket_sql("day", buckets.wall_sql(clock, utc_span),
                             _wall_span(store, filters, clock, utc_span))
    sql, params = filtered(store, "user_id, session_id, type_key, type, utc_us, local_us", filters)
    rows = fetch(store, f"SELECT user_id, session_id, type_key, type, {day} AS d, count(*) "
                 f"FROM ({sql}) a GROUP BY user_id, session_id, type_key, type, d "
                 "ORDER BY user_id, session_id", params,
                 escaped=(0, 1, 2, 3))
    users, sessions, last = set(), 0, None
    spelled: collections.Counter = collections.Counter()
    users_of = collections.defaultdict(set)
    per_day: collections.Counter = collections.Counter()
    for user, session, key, kind, d, n in rows:
        users.add(user)
        if (user, session) != last:
            sessions += 1  # the groups come session by session
            last = (user, session)
        spelled[(key, kind)] += n
        users_of[key].add(user)
        per_day[d] += n
    return _stats(store, filters, len(users), sessions, spelled,
                  {key: len(found) for key, found in users_of.items()}, per_day, clock)


def _stats(store, filters, users, sessions, spelled, users_of, per_day, clock):
    """``stats``' answer from its counts: ``spelled`` {(type key, type): actions},
    ``users_of`` {type key: users}, ``per_day`` {day: actions}."""
    names = _commonest(spelled)
    actions_of: collections.Counter = collections.Counter()
    for (key, _), n in spelled.items():
        actions_of[key] += n
    types = sorted(({"type": names[key], "actions": n, "users": users_of[key]}
                    for key, n in actions_of.items()), key=lambda t: (-t["actions"], t["type"]))
    days: Sequence[int] = range(min(per_day), max(per_day) + 1)
    if len(days) > MAX_BUCKETS:  # actions centuries apart: only the days that have some
        days = sorted(per_day)
    else:
        days = _shown(days, clock)
    return {
        "actions": sum(actions_of.values()),
        "users": users,
        "sessions": sessions,
        "first": _edge_time(store, filters, "asc"),
        "last": _edge_time(store, filters, "desc"),
        "types": types,
        "perDay": [{"day": buckets.label("day", d), "actions": per_day.get(d, 0)} for d in days],
        "bytes": database_size(store),
    }


def _commonest(spelled):
    best: dict[str, tuple] = {}
    for (key, kind), n in spelled.items():
        if key not in best or (-n, kind) < best[key]:
            best[key] = (-n, kind)
    return {key: kind for key, (_, kind) in best.items()}


def series(store, filters: dict, unit: str, clock: Clock) -> list[dict]:
    """``[{unit: label, "actions": N}, ...]`` zero-filled from the first bucket to the last."""
    return [{unit: g[unit], "actions": g["actions"]}
            for g in count(store, filters, [unit], clock, users=False)]


def parse_dimensions(values) -> list[str]:
    """The --by values checked: known, none twice, at most one time unit."""
    dims = []
    for value in values:
        value = value.strip()
        lowered = value.lower()
        if lowered.startswith("prop:"):
            if not value[5:]:
                raise DimensionError("--by prop:KEY needs a property name after prop:")
            try:
                property_path(value[5:])
            except OhlogError as ex:  # a JSON Pointer's ~ written otherwise than ~0 or ~1
                raise DimensionError(f"--by {value}: {ex}") from None
            dim = "prop:" + value[5:]
        elif lowered in DIMENSIONS:
            dim = lowered
        else:
            raise DimensionError(f"unknown --by {value!r}: expected one of {', '.join(DIMENSIONS)}")
        if dim in dims:
            raise DimensionError(f"--by {value} is given twice")
        dims.append(dim)
    if sum(d in buckets.UNITS for d in dims) > 1:
        raise DimensionError("use at most one time unit in --by (hour, day, week or month)")
    return dims or ["type"]


def count(store, filters: dict, dims: list[str], clock: Clock = Clock(), *,
          users: bool = True) -> list[dict]:
    """Actions (and distinct users) in each group of ``dims``; time series zero-filled.

    Time groups come in time order, others by actions, descending. A time
    series is zero-filled only when its other dimensions are none or ``type``
    (few groups); by user, session or property only groups with actions come."""
    dims = grouping(dims)
    utc_span = span(store, filters)
    if utc_span is None:
        return []
    unit = next((d for d in dims if d in buckets.UNITS), None)
    wall_span = _wall_span(store, filters, clock, utc_span)
    fill = None
    if unit and all(d in (unit, "type") for d in dims):
        fill = _fill_range(wall_span, unit, clock, filters, "--by", utc_span)
        if unit == "day":
            fill = _shown(fill, clock)
    if any(d.startswith("prop:") for d in dims):
        groups = _count_in_python(store, filters, dims, clock, utc_span, wall_span)
    else:
        groups = summaries.count_groups(store, filters, dims, clock, utc_span, wall_span, users)
        if groups is None:
            groups = _count_in_sql(store, filters, dims, clock, utc_span, wall_span, users)
    names = spellings(store, filters) if "type" in dims else {}
    if fill is not None:
        groups = _zero_filled(groups, dims, unit, fill)
    time_at = dims.index(unit) if unit else None
    when = {}  # each time key's label and place in time
    if unit == "hour":
        numbers = {key[time_at] for key in groups}
        when = {n: (text, buckets.hour_start(clock, n))
                for n, text in buckets.hour_labels(clock, numbers).items()}
    elif unit:
        when = {key[time_at]: (buckets.label(unit, key[time_at]), key[time_at]) for key in groups}
    out = []
    keys = output_keys(dims)
    for key, (actions, distinct) in groups.items():
        group = {}
        for dim, name, value in zip(dims, keys, key):
            if dim == "type":
                group[name] = names.get(value, value)
            elif dim in buckets.UNITS:
                group[name] = when[value][0]
            else:
                group[name] = _plain(value)
        group["actions"] = actions
        if users:
            group["users"] = distinct
        out.append((key, group))

    def order(item):
        key, group = item
        rest = exact_dumps([_plain(v) for i, v in enumerate(key) if i != time_at])
        return (when[key[time_at]][1] if unit else 0, -group["actions"], rest)

    out.sort(key=order)
    return [group for _, group in out]


def _wall_span(store, filters, clock, utc_span):
    if clock.local:
        from .source import local_span

        return local_span(store, filters)
    return tuple(buckets.wall_us(clock, us) for us in utc_span)


_COLUMN = {"type": "type_key", "user": "user_id", "session": "session_id"}


def _count_in_sql(store, filters, dims, clock, utc_span, wall_span, users):
    # only the columns needed: then an index may hold them all
    needed = ["user_id"] + [_COLUMN[d] for d in dims if d in _COLUMN and d != "user"]
    if any(d in buckets.UNITS for d in dims):
        needed.append("local_us" if clock.local else "utc_us")
    sql, params = filtered(store, ", ".join(needed), filters)
    keys = [_COLUMN.get(d) or buckets.key_sql(d, clock, utc_span, wall_span, engine=store.engine)
            for d in dims]
    names = [f"k{i}" for i in range(len(dims))]
    select = ", ".join(f"{k} AS {n}" for k, n in zip(keys, names))
    distinct = "count(DISTINCT user_id)" if users else "0"
    text = (f"SELECT {', '.join(names)}, count(*), {distinct} FROM (SELECT user_id, {select} "
            f"FROM ({sql}) a) b GROUP BY {', '.join(names)}")
    escaped = [i for i, d in enumerate(dims) if d in _COLUMN]
    return {tuple(row[:-2]): (row[-2], row[-1]) for row in fetch(store, text, params, escaped=escaped)}


def _count_in_python(store, filters, dims, clock, utc_span, wall_span):
    """Property groups: the values are read from each action's JSON (exact for any JSON type)."""
    sql, params = filtered(store, "user_id, session_id, type_key, utc_us, local_us, properties",
                           filters)
    unit = next((d for d in dims if d in buckets.UNITS), None)
    bucket = buckets.key_sql(unit, clock, utc_span, wall_span, engine=store.engine) if unit else "0"
    text = f"SELECT user_id, session_id, type_key, {bucket}, properties FROM ({sql}) a"
    counts: dict[tuple, list] = {}
    paths = {dim: property_path(dim[5:]) for dim in dims if dim.startswith("prop:")}
    for user, session, key, number, properties in fetch(store, text, params, escaped=(0, 1, 2)):
        values = {"type": key, "user": user, "session": session}
        props = exact_loads(properties)
        group = []
        for dim in dims:
            if dim in values:
                group.append(values[dim])
            elif dim == unit:
                group.append(number)
            else:
                value = value_at(props, paths[dim])
                group.append(None if value is MISSING else _hashable(value))
        entry = counts.setdefault(tuple(group), [0, set()])
        entry[0] += 1
        entry[1].add(user)
    return {key: (n, len(users)) for key, (n, users) in counts.items()}


def property_path(name: str) -> tuple:
    """The keys leading to prop:NAME's value: a top-level key taken literally,
    or, for a NAME that starts with ``/``, a JSON Pointer, as ``--where`` reads them."""
    from ..query import parse_pointer

    return parse_pointer(name) if name.startswith("/") else (name,)


def _hashable(value):
    # A boolean too: to Python True == 1 and False == 0, one dict key, where
    # JSON has two types (found from outside: true and 1 were one group)
    return _FrozenJSON(value) if isinstance(value, (dict, list, bool)) else value


class _FrozenJSON:
    """A JSON object or array as a group key: equal when their JSON is."""

    __slots__ = ("value", "text")

    def __init__(self, value):
        self.value = value
        self.text = exact_dumps(value, sort_keys=True)

    def __eq__(self, other):
        return isinstance(other, _FrozenJSON) and self.text == other.text

    def __hash__(self):
        return hash(self.text)


def _plain(value):
    return value.value if isinstance(value, _FrozenJSON) else value


def _fill_range(wall_span, unit, clock, filters, option, utc_span=None):
    """The buckets of a zero-filled series: from the data's first to its last (or
    the bounds given); refused when more than MAX_BUCKETS, before any is made.
    Hours are those the clock showed (``buckets.hour_keys``), given ``utc_span``."""
    start, end = filters.get("start"), filters.get("end")
    if unit == "hour":
        return _fill_hours(wall_span, clock, start, end, utc_span)
    first, last = (buckets.bucket(unit, us) for us in wall_span)
    lo, hi = first, last
    if start is not None:
        lo = buckets.bucket(unit, buckets.wall_us(clock, start.us) if start.instant else start.us)
    if end is not None:
        hi = buckets.bucket(unit, buckets.wall_us(clock, end.us) if end.instant else end.us)
    # The buckets the data reaches always stay in: on users' own clocks an
    # instant bound falls at a different wall time for each, and a bound
    # without an offset reads each action's own clock, not this one (both
    # found from outside; active showed none of a --date's actions)
    lo, hi = min(lo, first), max(hi, last)
    _check_length(unit, hi - lo + 1, buckets.label(unit, lo), buckets.label(unit, hi), option)
    return range(lo, hi + 1)


def _fill_hours(wall_span, clock, start, end, utc_span):
    lo, hi = wall_span if clock.local else utc_span
    for bound, at_lo in ((start, True), (end, False)):
        if bound is None:
            continue
        us = bound.us
        if clock.local and bound.instant:  # an instant on users' own clocks: read as wall time,
            us = buckets.wall_us(clock, us)  # never cutting off an hour the data reaches
            us = min(us, lo) if at_lo else max(us, hi)
        elif not clock.local and not bound.instant:  # a wall-clock bound, read on the zone's clock
            us -= buckets.offset_us(clock.zone, us)
        lo, hi = (us, hi) if at_lo else (lo, us)
    data_lo, data_hi = wall_span if clock.local else utc_span  # the hours the data reaches stay in
    lo, hi = min(lo, data_lo), max(hi, data_hi)
    # the hours between, counted before they are listed (a DST change adds one at most)
    length = (hi - lo) // buckets.HOUR + 2 if hi >= lo else 0
    if length > MAX_BUCKETS:
        ends = [buckets.hour_keys(clock, lo, lo)[0], buckets.hour_keys(clock, hi, hi)[-1]]
        labels = buckets.hour_labels(clock, ends)
        _check_length("hour", length - 1, labels[ends[0]], labels[ends[1]], "--by")
    return buckets.hour_keys(clock, lo, hi) if hi >= lo else []


def _check_length(unit, length, first, last, option):
    if length > MAX_BUCKETS:
        wider = buckets.UNITS[buckets.UNITS.index(unit) + 1:]
        coarser = f"a coarser --by ({', '.join(wider)}) or " if option == "--by" and wider else ""
        raise SeriesTooLong(
            f"{first} to {last} is {length:,} {unit}s "
            f"to zero-fill (at most {MAX_BUCKETS:,}): use {coarser}narrower --start/--end")


def _shown(days: range, clock: Clock) -> Sequence[int]:
    """``days`` without those the clock never showed (buckets.skipped_days)."""
    skipped = buckets.skipped_days(clock, days.start, days.stop - 1) if days else set()
    return [day for day in days if day not in skipped] if skipped else days


def _zero_filled(groups, dims, unit, numbers):
    at = dims.index(unit)
    others = {key[:at] + key[at + 1:] for key in groups}
    filled = dict(groups)
    for other in others:
        for number in numbers:
            key = other[:at] + (number,) + other[at:]
            filled.setdefault(key, (0, 0))
    return filled


# ---------------------------------------------------------------------------
# Active users


WINDOWS = (("dau", 1), ("wau", 7), ("mau", 30))


LOOKBACK_DAYS = 29  # MAU's window is a day and the 29 before it


def active(store, filters: dict, clock: Clock = Clock(), by: str = "day") -> list[dict]:
    """DAU, WAU, MAU as PostHog defines them: on day D, the distinct users
    active on D, in D-6..D and in D-29..D; a row a day from the first to the
    last (or the bounds given). ``by`` week or month: a row for each, with
    the figures of its last day."""
    utc_span = span(store, filters)
    if utc_span is None:
        return []
    wall_span = _wall_span(store, filters, clock, utc_span)
    days = _fill_range(wall_span, "day", clock, filters, "--start/--end")
    # A start bound chooses the first day shown, not how far that day looks
    # back: its WAU and MAU count the users of the 6 and 29 days before it
    # too, as PostHog counts them (found from outside: they were cut short)
    looking = filters
    if filters.get("start") is not None:
        start = filters["start"]
        # (two days more than the windows need: a day on the buckets' clock
        # is not 24 UTC hours across a DST change, a local clock or a start
        # read on each action's own clock; the days before ``read`` are skipped)
        looking = {**filters, "start": start._replace(us=start.us - (LOOKBACK_DAYS + 2) * buckets.DAY)}
        utc_span = span(store, looking) or utc_span
        wall_span = _wall_span(store, looking, clock, utc_span)
    read = range(days.start - LOOKBACK_DAYS, days.stop) if looking is not filters else days
    day = buckets.bucket_sql("day", buckets.wall_sql(clock, utc_span), wall_span)
    daily = summaries.active_days(store, looking, clock, utc_span, read, WINDOWS)
    if daily is None:
        daily = list(_sliding(_active_rows(store, looking, clock, utc_span, wall_span, day), read))
    daily = [(d, values) for d, values in daily if d >= days.start]
    shown = _shown(days, clock)
    if shown is not days:  # the zone skipped a day: its row goes
        kept = set(shown)
        daily = [(d, values) for d, values in daily if d in kept]
    if by == "day":
        return [{"day": buckets.label("day", d), **values} for d, values in daily]
    last_of = {}
    for d, values in daily:  # the last day of each bucket within the range
        last_of[buckets.bucket(by, d * buckets.DAY)] = values
    return [{by: buckets.label(by, b), **values} for b, values in last_of.items()]


def _active_rows(store, filters, clock, utc_span, wall_span, day):
    """``(day, user)`` rows in day order: from the user hours, or the actions."""
    rows = summaries.active_rows(store, filters, clock, utc_span, wall_span)
    if rows is None:
        sql, params = filtered(store, "user_id, local_us" if clock.local else "user_id, utc_us",
                               filters)
        rows = fetch(store, f"SELECT d, user_id FROM (SELECT {day} AS d, user_id FROM ({sql}) a) b "
                     "GROUP BY d, user_id ORDER BY d", params)
    return rows


def _sliding(rows, days):
    """``(day, {"dau", "wau", "mau"})`` for each day of ``days``, from ``(day, user)`` rows in day order."""
    rows = iter(rows)
    pending = next(rows, None)
    recent = collections.deque()  # (day, users) of the last 30 days
    in_window = {name: collections.Counter() for name, _ in WINDOWS}
    for d in days:
        users = []
        while pending is not None and pending[0] <= d:
            if pending[0] == d:
                users.append(pending[1])
            pending = next(rows, None)
        recent.append((d, users))
        values = {}
        for name, width in WINDOWS:
            counter = in_window[name]
            counter.update(users)
            for old, old_users in recent:
                if old == d - width:  # the day that just left this window
                    counter.subtract(old_users)
                    for user in old_users:
                        if counter[user] <= 0:
                            del counter[user]
            values[name] = len(counter)
        while recent and recent[0][0] <= d - 30:
            recent.popleft()
        yield d, values
