"""The commonest page sequences in sessions, from NAVIGATE actions."""

from __future__ import annotations

import collections
import heapq
import itertools
from collections.abc import Iterator
from operator import itemgetter
from typing import Any

import orjson

from ..fields import exact_dumps, exact_loads
from ..schema import SPANS, type_key
from ..spans import page_path
from .source import fetch, fetch_batches, filtered, one, snapshot, spans_where

# Sessions whose path the spans do not hold (two writes each brought pages
# of it) are read from their actions, this many a query; past a tenth of the
# sessions, every NAVIGATE action is read instead
_UNKNOWN_BATCH = 500
_UNKNOWN_SHARE = 0.1
_DISTINCT_TEXTS = 50_000


def paths(store, filters: dict, *, start: str | None = None, steps: int = 5,
          top: int = 20) -> list[dict[str, Any]]:
    """``[{"path": [page, ...], "sessions": N}, ...]``, commonest first.

    A session's path is its first NAVIGATE's pageFrom, then each pageTo, in
    time order, with consecutive repeats collapsed (spans.page_path); with
    ``start`` it begins at that page's first visit (sessions that never
    reach it are left out); then it is cut to ``steps`` pages. Ties: by path.
    """
    given = {type_key(t) for t in filters.get("types") or ()}
    if given and "navigate" not in given:
        return []
    counter: collections.Counter[tuple[str, ...]] = collections.Counter()
    # Each page's text once (a session's pages are new strings each time):
    # a path kept as a key then holds shared pages, not copies of its own
    known: dict[str, str] = {}
    with snapshot(store):  # the kept paths and the sessions read from actions: one state
        whole = _kept_paths(store, filters)
        for pages, sessions in _read_paths(store, filters) if whole is None else whole:
            path = _cut(pages, start, steps)
            if path:
                counted = counter.get(path)
                if counted is None:
                    counter[tuple(known.setdefault(page, page) for page in path)] = sessions
                else:
                    counter[path] = counted + sessions
    # The top paths are those counted at least as often as the top-th;
    # only they need the tie-break by path (its JSON text)
    chosen = list(counter.items())
    if top > 0:
        least = min(heapq.nlargest(top, counter.values()), default=0)
        chosen = [item for item in chosen if item[1] >= least]
    ranked = sorted(chosen, key=lambda item: (-item[1], exact_dumps(item[0])))
    return [{"path": list(path), "sessions": n} for path, n in ranked[:top]]


def _kept_paths(store, filters: dict) -> Iterator[tuple[list[str], int]] | None:
    """Each session's path, with how many sessions have it, from the spans
    kept at ingest (spans.py); None where they cannot answer
    (source.spans_where) or where many sessions' paths are not held."""
    found = spans_where(store, filters, also=("types",))  # only NAVIGATE is read here
    if found is None:
        return None
    where, params = found
    counts = one(store, f"SELECT count(*), count(*) FILTER (WHERE path IS NULL) FROM {SPANS} WHERE {where}",
                 params)
    if not counts or counts[1] > _UNKNOWN_SHARE * counts[0]:
        return None
    return _kept(store, filters, where, params, counts[1])


def _kept(store, filters, where, params, unknown) -> Iterator[tuple[list[str], int]]:
    """``(path, sessions)``: each path the spans hold, with how many sessions
    have it, then each path they do not hold, read from the actions."""
    # Each distinct path's text is parsed once, and memory holds at most
    # _DISTINCT_TEXTS of them
    texts: collections.Counter = collections.Counter()
    for rows in itertools.chain(
            fetch_batches(store, f"SELECT path FROM {SPANS} WHERE {where} AND path != '[]'", params), [None]):
        if rows is not None:
            texts.update(map(itemgetter(0), rows))
        if len(texts) >= _DISTINCT_TEXTS or rows is None:
            for text, sessions in texts.items():
                yield orjson.loads(text), sessions  # a list of strings: read exactly by orjson
            texts.clear()
    if not unknown:
        return
    keys = fetch(store, f"SELECT user_id, session_id FROM {SPANS} WHERE {where} AND path IS NULL", params)
    while batch := set(itertools.islice(keys, _UNKNOWN_BATCH)):
        for user, session, pages in _sessions_pages(
                store, {**filters, "sessions": sorted({s for _, s in batch})}):
            if (user, session) in batch:  # not another user's session of that id
                yield pages, 1


def _read_paths(store, filters: dict) -> Iterator[tuple[list[str], int]]:
    return ((pages, 1) for _, _, pages in _sessions_pages(store, filters))


def _sessions_pages(store, filters: dict) -> Iterator[tuple[Any, Any, list[str]]]:
    """``(user, session, path)`` of each session among the filtered NAVIGATE actions."""
    # Only NAVIGATE actions: as a --type filter, so that the index on
    # (type_key, utc_us) finds them and no other action is read
    sql, params = filtered(store, "id, user_id, session_id, utc_us, ns, properties",
                           {**filters, "types": ("navigate",)})
    batches = fetch_batches(store, f"SELECT user_id, session_id, properties FROM ({sql}) a "
                            "ORDER BY user_id, session_id, utc_us, ns, id", params)
    user = session = _NOTHING  # before the first row
    navigates: list[Any] = []
    for rows in itertools.chain(batches, [[(None, None, None)]]):
        for row_user, row_session, properties in rows:  # millions: kept tight
            if row_session != session or row_user != user:
                if navigates:
                    yield user, session, page_path(navigates)
                user, session, navigates = row_user, row_session, []
                if row_user is None:
                    return
            navigates.append(exact_loads(properties))


_NOTHING = object()


def _cut(pages, start, steps):
    if start is not None:
        if start not in pages:
            return ()
        pages = pages[pages.index(start):]
    return tuple(pages[:steps])
