"""Shell completion of --user, --session and --type values from the database.

Each value is found by a prefix match through an index whose first column
is the one completed: a skip scan, one index seek a distinct value
(``col >= prefix AND col < end-of-prefix ORDER BY col LIMIT 1``, then
``col > last``), so the cost grows with the values shown, not with the
actions stored. A range rather than LIKE, because SQLite's LIKE is
case-insensitive and cannot use a plain index (and its wildcards would need
escaping). PostgreSQL's text columns use the "C" collation, so the same
range is a byte-order range there too.

Completion runs on every press of Tab: it must be quick and it must never
print an error on the prompt, so any failure (no database, no table, a
locked or foreign file, a server down) gives no values.
"""

from __future__ import annotations

import os
import re
import sqlite3
from typing import Any

LIMIT = 100  # values offered at most
_TIMEOUT_S = 0.5  # wait for a lock no longer than this on a prompt

# The column each option completes, and the index that leads with it
COLUMNS = {
    "users": ("user_id", "actions_user_type_time"),
    "sessions": ("session_id", "actions_session_time"),
    "types": ("type_key", "actions_type_time"),
}
_NAMES = {*COLUMNS.values(), *((column, None) for column, _ in COLUMNS.values())}
_MAX_CHAR = 0x10FFFF
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_SPELLINGS = 50  # a type's actions looked at for its spellings


def prefix_end(prefix: str) -> str | None:
    """The least string after every string that starts with ``prefix``, in code
    point order (which is UTF-8 byte order); None when there is none."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < _MAX_CHAR:
            last += 1
            if 0xD800 <= last <= 0xDFFF:  # surrogates cannot be stored: skip them
                last = 0xE000
            return "".join(chars) + chr(last)
    return None


def distinct_with_prefix(store: Any, column: str, prefix: str, *, index: str | None = None,
                         limit: int = LIMIT) -> list[str]:
    """Up to ``limit`` distinct values of ``column`` that start with ``prefix``,
    in order, as the store holds them (escaped text, on PostgreSQL).

    ``store`` has ``execute(sql, params)`` with ``?`` placeholders (a store,
    or a sqlite3 connection); ``index`` names the SQLite index to use."""
    if (column, index) not in _NAMES:  # names only from COLUMNS: they become SQL text
        raise ValueError(f"not a column and index to complete from: {column!r}, {index!r}")
    end = prefix_end(prefix)
    indexed = f" INDEXED BY {index}" if index else ""
    upper = f" AND {column} < ?" if end is not None else ""
    first = f"SELECT {column} FROM actions{indexed} WHERE {column} >= ?{upper} ORDER BY {column} LIMIT 1"
    after = first.replace(f"{column} >= ?", f"{column} > ?", 1)
    found: list[str] = []
    sql, value = first, prefix
    while len(found) < limit:
        row = store.execute(sql, (value, end) if end is not None else (value,)).fetchone()
        if row is None:
            break
        found.append(row[0])
        sql, value = after, row[0]
    return found


def type_spellings(store: Any, key: str, index: str | None = None) -> list[str]:
    """The stored spellings of the type whose key (casefold) is ``key``, among
    its first few actions (a bounded look, however many it has)."""
    if index not in (None, COLUMNS["types"][1]):  # it becomes SQL text
        raise ValueError(f"not the types' index: {index!r}")
    indexed = f" INDEXED BY {index}" if index else ""
    rows = store.execute(f"SELECT type FROM actions{indexed} WHERE type_key = ? LIMIT {_SPELLINGS}",
                         (key,)).fetchall()
    return list(dict.fromkeys(row[0] for row in rows)) or [key]


def _offer(typed: str, spellings: list[str], key: str) -> str:
    """A spelling of the type that starts with what was typed (shells drop offers
    that do not): a stored one if there is, else a stored one with its start
    in the case typed, else what was typed completed by the key."""
    for spelling in spellings:
        if spelling.startswith(typed):
            return spelling
    for spelling in spellings:
        if spelling[:len(typed)].casefold() == typed.casefold():
            return typed + spelling[len(typed):]
    return typed + key[len(typed.casefold()):]


def lookup(store: Any, option: str, incomplete: str, *, limit: int = LIMIT) -> list[str]:
    """The values to offer for ``--user``, ``--session`` or ``--type``
    (``option``: users, sessions or types) after ``incomplete`` was typed."""
    column, index = COLUMNS[option]
    postgres = getattr(store, "engine", "sqlite") == "postgresql"
    if postgres:  # its text cannot hold NUL: stored escaped
        from .store.postgres import escape, unescape
    else:
        escape = unescape = _as_is
    hint: str | None = None if postgres else index
    if option != "types":
        values = [unescape(v) for v in distinct_with_prefix(store, column, escape(incomplete),
                                                             index=hint, limit=limit)]
        # escaped text sorts a NUL as its escape: put the values back in text order
        return sorted(values) if postgres else values
    # Types match in any case: complete by key, and offer a spelling (see _offer)
    folded = incomplete.casefold()
    offers = []
    for key in distinct_with_prefix(store, column, escape(folded), index=hint, limit=limit):
        spellings = [unescape(v) for v in type_spellings(store, key, hint)]
        offers.append(_offer(incomplete, spellings, unescape(key)))
    return offers


def _as_is(text):
    return text


def open_for_completion(target: Any) -> Any:
    """A read-only store for ``target`` (a path or a postgresql:// URL), or None
    if there is no database there. SQLite is opened directly, read-only, never
    migrated or created, and waits for a lock no longer than a moment."""
    from .store import is_url

    if is_url(target):
        from .store import open_store

        return open_store(str(target), readonly=True)
    path = os.fspath(target)
    if not os.path.isfile(path):
        return None
    from urllib.parse import quote

    return sqlite3.connect("file:" + quote(os.path.abspath(path)) + "?mode=ro", uri=True,
                           timeout=_TIMEOUT_S)


def complete_option(ctx: Any, param: Any, incomplete: str) -> list:
    """click's ``shell_complete`` for the filter options: values from the
    database --db (or $OHLOG_DB) names; none, quietly, on any failure."""
    return _complete(ctx, lambda store: lookup(store, param.name, incomplete))


def complete_step(ctx: Any, param: Any, incomplete: str) -> list:
    """click's ``shell_complete`` for a STEP (funnel's, --born, --return): the
    stored types, as --type completes them, and those holding ``:`` (or
    opening with ``"``) as the JSON string a STEP writes them as; a condition
    is the user's to type."""
    import json

    if ":" in incomplete and not incomplete.startswith('"'):
        return []
    prefix = incomplete.removeprefix('"')

    def offers(store):
        return [json.dumps(kind, ensure_ascii=False) if ":" in kind or kind.startswith('"') else kind
                for kind in lookup(store, "types", prefix)]

    return _complete(ctx, offers)


def _complete(ctx: Any, values_of: Any) -> list:
    from click.shell_completion import CompletionItem

    try:
        from .paths import db_path

        store = open_for_completion(db_path(ctx.params.get("db")))
        if store is None:
            return []
        try:
            values = values_of(store)
        finally:
            store.close()
    except Exception:  # noqa: BLE001: a prompt shows no tracebacks, whatever failed
        return []
    # A control character (a newline) would break the shell's protocol, or drive the terminal
    return [CompletionItem(v) for v in values if not _CONTROL.search(v)]


_KEYS_SAMPLE = 1000  # the newest actions whose property keys --by prop: offers
_KEYS_SQL = {
    "sqlite": ("SELECT DISTINCT j.key FROM (SELECT properties FROM actions ORDER BY id DESC LIMIT ?) a,"
               " json_each(a.properties) j ORDER BY 1 LIMIT ?"),
    # json, not jsonb: jsonb refuses text holding \u0000
    "postgresql": ("SELECT DISTINCT k FROM (SELECT properties FROM actions ORDER BY id DESC LIMIT ?) a,"
                   " json_object_keys(a.properties::json) k ORDER BY 1 LIMIT ?"),
}


def complete_zone(ctx: Any, param: Any, incomplete: str) -> list:
    """click's ``shell_complete`` for --tz and --show-tz: ``UTC`` and the IANA
    zone names that start with what was typed (in any case, when none does in
    the case typed). Read from the zone database on Tab only, never at start-up."""
    from click.shell_completion import CompletionItem

    try:
        import zoneinfo

        names = sorted(zoneinfo.available_timezones() | {"UTC"})
    except Exception:  # noqa: BLE001: no zone database: nothing to offer, quietly
        return []
    found = [n for n in names if n.startswith(incomplete)] or [
        n for n in names if n.casefold().startswith(incomplete.casefold())]
    return [CompletionItem(n) for n in found]


def complete_dimension(ctx: Any, param: Any, incomplete: str) -> list:
    """click's ``shell_complete`` for count's --by: the dimensions, and
    ``prop:KEY`` for the property keys of the newest actions stored (or
    ``prop:`` alone, when there are none to read)."""
    from click.shell_completion import CompletionItem

    from .analytics.buckets import UNITS

    choices = [c for c in ("type", "user", "session", *UNITS) if c.startswith(incomplete.lower())]
    if "prop:".startswith(incomplete.lower()[:5]):
        keys = _complete(ctx, _property_keys) if incomplete.lower().startswith("p") else []
        props = [f"prop:{_as_dimension(k.value)}" for k in keys]
        props = [p for p in props if p.startswith(incomplete)]
        choices += props or (["prop:"] if "prop:".startswith(incomplete.lower()) else [])
    # Plain items: click's bash, zsh and fish scripts drop any other kind
    return [CompletionItem(c) for c in choices]


def _as_dimension(key: str) -> str:
    """A top-level key as prop: reads it: one that starts with / as a JSON Pointer to itself."""
    return "/" + key.replace("~", "~0").replace("/", "~1") if key.startswith("/") else key


def _property_keys(store: Any) -> list[str]:
    engine = getattr(store, "engine", "sqlite")
    return [k for (k,) in store.execute(_KEYS_SQL[engine], (_KEYS_SAMPLE, LIMIT)).fetchall()
            if isinstance(k, str) and not any(c.isspace() for c in k)]
