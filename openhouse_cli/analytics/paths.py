"""The commonest page sequences in sessions, from NAVIGATE actions."""

from __future__ import annotations

import itertools

import collections
from typing import Any

import orjson

from .source import fetch, filtered


def paths(store, filters: dict, *, start: str | None = None, steps: int = 5,
          top: int = 20) -> list[dict[str, Any]]:
    """``[{"path": [page, ...], "sessions": N}, ...]``, commonest first.

    A session's path is its first NAVIGATE's pageFrom, then each pageTo, in
    time order, with consecutive repeats collapsed; with ``start`` it begins
    at that page's first visit (sessions that never reach it are left out);
    then it is cut to ``steps`` pages. Ties: by path.
    """
    key = "navigate"
    if store.engine == "postgresql":
        from ..store.postgres import escape

        key = escape(key)
    sql, params = filtered(store, "id, user_id, session_id, utc_us, ns, type_key, properties",
                           filters)
    rows = fetch(store, f"SELECT user_id, session_id, properties FROM ({sql}) a "
                 "WHERE type_key = ? ORDER BY user_id, session_id, utc_us, ns, id",
                 params + [key])
    counter: collections.Counter = collections.Counter()
    current, pages = None, list[str]()
    for user, session, properties in itertools.chain(rows, [(None, None, None)]):
        if (user, session) != current:
            path = _cut(pages, start, steps)
            if path:
                counter[path] += 1
            current, pages = (user, session), []
            if user is None:
                break
        props = orjson.loads(properties)
        if not isinstance(props, dict):
            continue
        if not pages and "pageFrom" in props:
            _visit(pages, props["pageFrom"])
        if "pageTo" in props:
            _visit(pages, props["pageTo"])
    ranked = sorted(counter.items(), key=lambda item: (-item[1], orjson.dumps(item[0])))
    return [{"path": list(path), "sessions": n} for path, n in ranked[:top]]


def _visit(pages, page):
    if not isinstance(page, str):  # an odd page value: its JSON text
        page = orjson.dumps(page).decode()
    if not pages or pages[-1] != page:
        pages.append(page)


def _cut(pages, start, steps):
    if start is not None:
        if start not in pages:
            return ()
        pages = pages[pages.index(start):]
    return tuple(pages[:steps])
