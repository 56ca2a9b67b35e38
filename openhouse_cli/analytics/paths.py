"""The commonest page sequences in sessions, from NAVIGATE actions."""

from __future__ import annotations

import collections
import heapq
import itertools
from typing import Any

from ..fields import exact_dumps, exact_loads
from ..schema import type_key
from .source import fetch_batches, filtered


def paths(store, filters: dict, *, start: str | None = None, steps: int = 5,
          top: int = 20) -> list[dict[str, Any]]:
    """``[{"path": [page, ...], "sessions": N}, ...]``, commonest first.

    A session's path is its first NAVIGATE's pageFrom, then each pageTo, in
    time order, with consecutive repeats collapsed; with ``start`` it begins
    at that page's first visit (sessions that never reach it are left out);
    then it is cut to ``steps`` pages. Ties: by path.
    """
    # Only NAVIGATE actions: as a --type filter, so that the index on
    # (type_key, utc_us) finds them and no other action is read
    given = {type_key(t) for t in filters.get("types") or ()}
    if given and "navigate" not in given:
        return []
    sql, params = filtered(store, "id, user_id, session_id, utc_us, ns, properties",
                           {**filters, "types": ("navigate",)})
    batches = fetch_batches(store, f"SELECT user_id, session_id, properties FROM ({sql}) a "
                            "ORDER BY user_id, session_id, utc_us, ns, id", params)
    counter: collections.Counter = collections.Counter()
    # Each page's text once (a session's pages are new strings each time):
    # a path kept as a key then holds shared pages, not copies of its own
    known: dict[str, str] = {}
    user = session = _NOTHING  # before the first row
    pages: list[str] = []
    for rows in itertools.chain(batches, [[(None, None, None)]]):
        for row_user, row_session, properties in rows:  # millions: kept tight
            if row_session != session or row_user != user:
                path = _cut(pages, start, steps)
                if path:
                    counter[path] += 1
                user, session, pages = row_user, row_session, []
                if row_user is None:
                    break
            props = exact_loads(properties)
            if not isinstance(props, dict):
                continue
            if not pages and "pageFrom" in props:
                _visit(pages, props["pageFrom"], known)
            if "pageTo" in props:
                _visit(pages, props["pageTo"], known)
    # The top paths are those counted at least as often as the top-th;
    # only they need the tie-break by path (its JSON text)
    chosen = list(counter.items())
    if top > 0:
        least = min(heapq.nlargest(top, counter.values()), default=0)
        chosen = [item for item in chosen if item[1] >= least]
    ranked = sorted(chosen, key=lambda item: (-item[1], exact_dumps(item[0])))
    return [{"path": list(path), "sessions": n} for path, n in ranked[:top]]


_NOTHING = object()


def _visit(pages, page, known):
    if not isinstance(page, str):  # an odd page value: its JSON text
        page = exact_dumps(page).decode()
    if not pages or pages[-1] != page:
        pages.append(known.setdefault(page, page))


def _cut(pages, start, steps):
    if start is not None:
        if start not in pages:
            return ()
        pages = pages[pages.index(start):]
    return tuple(pages[:steps])
