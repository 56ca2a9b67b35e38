"""Reading actions back: one parameterised SQL statement a query, streamed.

``query_actions(db, users=..., types=..., start=..., end=...)`` yields actions
in the API's shape. Every value given by the user is a bound parameter; the
SQL text depends only on which filters are present and how many values each
has.

Time bounds come as ``times.Bound`` (or datetimes: aware is an instant, naive
a wall clock). An instant is compared with ``utc_us``. A wall-clock bound is
compared exactly with ``local_us``, and also implies a ``utc_us`` range 14
hours wider (offsets are limited to ±14:00), which lets the utc_us indexes
serve it.

Only the standard library is imported here: ``ohlog query`` must start fast.
"""

import functools
import itertools
import json
import operator
import re
import sqlite3
from typing import NamedTuple

from .errors import OhlogError
from .schema import type_key
from .store import as_store
from .times import MAX_OFFSET_S, Bound

ORDERS = ("asc", "desc")
OPERATORS = ("!=", ">=", "<=", "=", ">", "<")  # two-character ones first
WHERE_FORMS = "KEY=VALUE, KEY!=VALUE, KEY>VALUE, KEY>=VALUE, KEY<VALUE or KEY<=VALUE"

_SLACK_US = MAX_OFFSET_S * 1_000_000
_NUMBER_RE = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_OPERATOR_RE = re.compile("|".join(re.escape(op) for op in OPERATORS))
_DECODER = json.JSONDecoder()

_ROW_COLUMNS = "user_id, session_id, time, type, properties"
# The same, then each action's place in the order (see ``after`` in build_query)
KEYED_COLUMNS = _ROW_COLUMNS + ", utc_us, ns, id"
# What a JSON string must escape; ids, times and types almost never have any
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


class FilterError(OhlogError, ValueError):
    """A filter value that cannot be used; the message says what was expected."""


class Where(NamedTuple):
    """A condition on a property: ``key``, an operator from OPERATORS, and a value.

    ``key`` is a top-level property name (taken literally), or a tuple of
    keys, a path to a nested value (a key of digits also indexes an array).

    The value is compared with numbers if it is an int or float, with
    strings if a str, and ``True``/``False``/``None`` match the JSON literals
    (``=`` and ``!=`` only).
    """

    key: str | tuple[str, ...]
    op: str
    value: object


def parse_where(spec: str) -> Where:
    """Parse ``KEY=VALUE`` (or ``!=``, ``>``, ``>=``, ``<``, ``<=``) into a Where.

    Spaces around the operator and at either end are ignored. VALUE is a
    number if it is a JSON number (``52``, ``-1.5``; not ``052``), kept
    exactly as Python's json reads it; ``true``/``false``/``null`` are the
    JSON literals; a double-quoted JSON string is that string (``"52"`` to
    match the text 52, ``" a "`` to keep its spaces); anything else is the
    text as given. The key is a double-quoted JSON string followed by the
    operator (for a key that holds an operator, or spaces at its ends), or
    else the text before the first operator. A key that starts with ``/``
    is a JSON Pointer (RFC 6901) to a nested value, ``/retry/attempt``,
    which becomes a tuple of keys; any other key is one top-level property
    name, taken literally (``a.b`` is the key "a.b"). Anything else raises
    FilterError naming the forms.
    """
    if not isinstance(spec, str):
        raise _malformed(spec)
    check_text(spec)
    text = spec.strip()
    key, match = _quoted_key(text)
    if match:
        text = match.string
    else:
        match = _OPERATOR_RE.search(text)
        key = text[:match.start()].rstrip() if match else ""
    if not match:
        # Unquoted, KEY>VALUE on a command line is KEY with its output sent to
        # a file named VALUE: the shell took the operator
        raise FilterError(f"{_malformed(spec)}: no operator (a shell takes an unquoted > or < for"
                          " a redirection: quote the condition, as 'KEY>VALUE')")
    op, text = match.group(), text[match.end():].strip()
    if not key:
        raise _malformed(spec, f"no property name before {op}")
    if key.startswith("/"):
        key = parse_pointer(key)
    if not text:
        raise _malformed(spec, f'no value after {op} (write "" for empty text)')
    if text[0] in "=<>!":
        # KEY=>1 or KEY==1 would otherwise compare with the text ">1" or "=1"
        raise _malformed(spec, f"{op + text[0]} is not an operator")
    if _NUMBER_RE.fullmatch(text):
        try:
            value = json.loads(text)
        except ValueError:  # more digits than Python turns into an int
            raise FilterError(f"a number too long to use ({len(text):,} characters)") from None
    elif text in ("true", "false", "null"):
        value = {"true": True, "false": False, "null": None}[text]
    elif text[0] == '"':
        value, end = _json_string(text, spec)
        if end != len(text):
            raise _malformed(spec, f"not one JSON string: {text}")
    else:
        value = text
    return _checked(Where(key, op, value))


def parse_pointer(pointer: str) -> tuple:
    """The keys of a JSON Pointer (RFC 6901): ``/a/b`` is ("a", "b"), ``~1`` stands
    for ``/`` and ``~0`` for ``~``; a key of digits also indexes an array."""
    tokens = pointer[1:].split("/")
    for token in tokens:
        if re.search("~[^01]|~$", token):
            raise FilterError(f"in the path {pointer!r}, write ~ as ~0 and / as ~1")
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in tokens)


def _quoted_key(text):
    """``(key, operator match)`` if ``text`` opens with a JSON string and then
    an operator, else ``(None, None)``: the key is then read as written."""
    if not text.startswith('"'):
        return None, None
    try:
        key, end = _DECODER.raw_decode(text)
    except ValueError:
        return None, None
    rest = text[end:].lstrip()
    match = _OPERATOR_RE.match(rest)
    return (key, match) if isinstance(key, str) and match else (None, None)


def _json_string(text, spec):
    """The JSON string at the start of ``text`` and where it ends; FilterError if there is none."""
    try:
        value, end = _DECODER.raw_decode(text)
    except ValueError:
        value = None
    if not isinstance(value, str):
        raise _malformed(spec, f"not a valid JSON string: {text}")
    return value, end


def _malformed(spec, why=""):
    return FilterError(f"{why + ': ' if why else ''}expected {WHERE_FORMS}, got {spec!r}")


def check_text(text: str, what: str = "") -> None:
    """FilterError unless ``text`` can be stored as UTF-8 (no lone surrogates,
    such as the undecodable bytes of a command line become)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:  # show the bytes that were given, if they came from the command line
            shown = repr(text.encode("utf-8", "surrogateescape"))
        except UnicodeEncodeError:
            shown = repr(text)
        raise FilterError(f"{what + ' ' if what else ''}not valid UTF-8 text: {shown}") from None


def _checked(where):
    if not isinstance(where, Where):
        where = Where(*where)
    key, op, value = where
    if isinstance(key, tuple) and key and all(isinstance(k, str) for k in key):
        for token in key:  # a path: each key may be anything, "" too
            check_text(token, "a property name:")
    elif not isinstance(key, str) or not key:
        raise FilterError(f"a property name is needed before the operator, got {key!r}")
    else:
        check_text(key, "a property name:")
    if op not in OPERATORS:
        raise FilterError(f"unknown operator {op!r}: expected one of {', '.join(OPERATORS)}")
    if (value is None or isinstance(value, bool)) and op not in ("=", "!="):
        raise FilterError(f"only = and != work with true, false and null, got {op!r}")
    if not isinstance(value, (str, int, float, type(None))):
        raise FilterError(
            f"a property value must be a string, number, bool or None, got {value!r}"
        )
    if isinstance(value, str):
        check_text(value, "a property value:")
    if isinstance(value, float) and value != value:
        raise FilterError("a property value cannot be NaN: nothing equals it")
    if type(value) is int and not _sqlite_exact(value):
        try:
            repr(value)  # how _where_clause hands it to Python
        except ValueError:
            raise FilterError("a number with more digits than Python reads as JSON") from None
    return where


def open_for_query(path):
    """The SQLite database at ``path``, opened read-only (see store.sqlite.open_for_query)."""
    from .store.sqlite import open_for_query as open_sqlite

    return open_sqlite(path)


def query_actions(db, **filters):
    """Yield the matching actions as dicts in the API's shape, streamed from a cursor.

    Filters (keyword-only, all optional, combined with AND; each tuple is OR
    within itself): ``users``, ``sessions``, ``types`` (case-insensitive),
    ``start``, ``end`` (inclusive Bounds or datetimes), ``gaps`` (pairs of
    UTC microseconds between them to leave out, from times.resolve_range), ``where`` (Where
    tuples or ``KEY=VALUE`` strings), ``limit``, ``order`` ("asc"/"desc", by
    instant; ties keep ingestion order), ``after`` (a place in that order, as
    query_json_keyed gives it: only the actions after it). Bad filter values
    raise FilterError at once, not when iterating.
    """
    return _as_dicts(query_rows(db, **filters))


def _as_dicts(rows):
    loads = json.loads
    for user, session, time, kind, properties in rows:
        yield {
            "userId": user,
            "sessionId": session,
            "time": time,
            "type": kind,
            "properties": loads(properties),
        }


def query_rows(db, **filters):
    """Yield ``(user_id, session_id, time, type, properties_json)`` tuples."""
    return _execute(db, _ROW_COLUMNS, filters)


def query_json(db, **filters):
    """Yield each matching action as compact JSON text, in the API's shape.

    The properties are stored as compact JSON already: they are copied, not
    parsed and encoded again. (This is ~30% faster than SQLite's json_quote.)
    """
    return _json_lines(query_rows(db, **filters))


def _json_lines(rows):
    search, dumps = _NEEDS_ESCAPE.search, json.dumps
    for user, session, time, kind, properties in rows:
        if search(user) or search(session) or search(time) or search(kind):
            user, session, time, kind = (
                dumps(text, ensure_ascii=False)[1:-1] for text in (user, session, time, kind)
            )
        yield (
            f'{{"userId":"{user}","sessionId":"{session}","time":"{time}",'
            f'"type":"{kind}","properties":{properties}}}'
        )


def query_json_keyed(db, **filters):
    """Yield ``(json_text, (utc_us, ns, id))`` for each matching action: its
    text as query_json gives it, and its place in the order, which ``after``
    takes to continue from it."""
    return keyed_json_lines(_execute(db, KEYED_COLUMNS, filters))


def keyed_json_lines(rows):
    """``(json_text, key)`` for rows of KEYED_COLUMNS."""
    for row in rows:
        yield next(_json_lines((row[:5],))), tuple(row[5:])


def count_actions(db, **filters):
    """How many actions match (``limit`` and ``order`` are ignored)."""
    filters = {**filters, "limit": None, "order": None}
    return next(_execute(db, "count(*)", filters))[0]


def _execute(db, columns, filters):
    """The rows of the query, streamed; OhlogError if the database fails.

    Filter values are checked here, before the generator starts, so that a
    bad one fails at once."""
    store = as_store(db)
    if store.engine == "postgresql":
        return _execute_postgres(store, columns, filters)
    sql, params = build_query(columns, engine=store.engine, **filters)
    conn = store.conn
    if "ohlog_" in sql:  # the exact, slower look-ups in Python (_where_clause)
        conn.create_function("ohlog_type", 2, _python_type, deterministic=True)
        conn.create_function("ohlog_value", 2, _python_value, deterministic=True)
        conn.create_function("ohlog_compare", 4, _python_compare, deterministic=True)
    try:
        cursor = conn.execute(sql, params)
    except sqlite3.Error as ex:
        raise OhlogError(f"Query failed: {ex}") from None
    cursor.arraysize = 1000
    return _stream(cursor)


def _execute_postgres(store, columns, filters):
    """The PostgreSQL query: its property conditions let the rows whose
    properties hold an escaped NUL through (jsonb cannot read them), and
    those are decided here, before the limit and the count."""
    from .store.postgres import stream

    where = filters.get("where", ())
    where = [parse_where(w) if isinstance(w, str) else _checked(w)
             for w in ((where,) if isinstance(where, (str, Where)) else where)]
    if not where:
        return stream(store, *build_query(columns, engine="postgresql", **filters))
    limit = _checked_limit(filters.get("limit"))
    filters = {**filters, "where": where, "limit": None}
    if columns == "count(*)":
        sql, params = build_query(f"CASE WHEN {_HAS_NUL} THEN properties END, count(*)",
                                  engine="postgresql", **filters)
        return _nul_counted(stream(store, sql + " GROUP BY 1", params), where)
    sql, params = build_query(columns, engine="postgresql", **filters)
    rows = _nul_decided(stream(store, sql, params), where, columns.split(", ").index("properties"))
    return rows if limit is None else itertools.islice(rows, limit)


_HAS_NUL = "strpos(properties, '\\u0000') > 0"


def _nul_decided(rows, where, column):
    for row in rows:
        if "\\u0000" not in row[column] or all(_python_match(row[column], w) for w in where):
            yield row


def _nul_counted(groups, where):
    total = 0
    for properties, count in groups:  # one group of rows without NUL, one per text with it
        if properties is None or all(_python_match(properties, w) for w in where):
            total += count
    yield (total,)


def _stream(cursor):
    try:
        while True:
            rows = cursor.fetchmany()
            if not rows:
                return
            yield from rows
    except sqlite3.Error as ex:
        raise OhlogError(f"Query failed: {ex}") from None
    finally:
        cursor.close()


def filter_clauses(*, engine="sqlite", users=(), sessions=(), types=(), start=None, end=None,
                   gaps=(), where=(), order="asc", after=None) -> tuple[list[str], list, str, tuple]:
    """The filters (build_query's) as ``(clauses, params, index, types)``: the
    conditions on a row of actions (to be AND-ed), their parameters in order,
    the index build_query reads them by on SQLite, and the type keys."""
    clauses, params = [], []
    users, sessions, types = (
        _strings(users, "users"),
        _strings(sessions, "sessions"),
        _strings(types, "types"),
    )
    # Types match under Unicode case folding, through the type_key column
    types = tuple(dict.fromkeys(type_key(t) for t in types))
    if engine == "postgresql":  # its text cannot hold NUL: stored escaped
        from .store.postgres import escape

        users, sessions, types = ([escape(v) for v in vs] for vs in (users, sessions, types))
    for column, values in (("user_id", users), ("session_id", sessions), ("type_key", types)):
        if values:
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)

    # Choose the index ourselves: without ANALYZE statistics SQLite may take
    # (type, utc_us) even when a user is given, reading every action of that
    # type instead of one user's.
    if sessions:
        index = "actions_session_time"  # a session is narrower than a user
    elif users:
        index = "actions_user_type_time"
    elif types:
        index = "actions_type_time"
    else:
        index = "actions_dedupe"  # (utc_us, ...): ranges, and ordered streaming

    for bound, op, slack in ((Bound.of(start), ">=", -_SLACK_US), (Bound.of(end), "<=", _SLACK_US)):
        if bound is None:
            continue
        if not bound.instant:
            clauses.append(f"utc_us {op} ?")
            params.append(bound.us + slack)
        column = "utc_us" if bound.instant else "local_us"
        clauses.append(f"{column} {op} ?")
        params.append(bound.us)
        # Bounds are exact to the nanosecond: within the bound's microsecond,
        # the ns column decides. (0 and 999 need no test.)
        if bound.ns != (0 if op == ">=" else 999):
            clauses.append(f"({column} {op[0]} ? OR ns {op} ?)")
            params.extend((bound.us, bound.ns))

    for gap in gaps:  # what a zone's repeated hour leaves out (times.resolve_range)
        if len(gap) != 2 or not all(type(us) is int for us in gap):
            raise FilterError(f"a gap must be two instants in microseconds, got {gap!r}")
        clauses.append("utc_us NOT BETWEEN ? AND ?")
        params.extend(gap)

    if after is not None:
        utc_us, ns, id_ = _checked_after(after)
        # The first condition alone lets any index on utc_us serve it. Ties
        # keep ingestion order (id ascending) in either direction.
        op = "<" if order == "desc" else ">"
        clauses.append(f"utc_us {op}= ? AND (utc_us {op} ? OR ns {op} ? OR (ns = ? AND id > ?))")
        params.extend((utc_us, utc_us, ns, ns, id_))

    for item in (where,) if isinstance(where, (str, Where)) else where:
        item = parse_where(item) if isinstance(item, str) else _checked(item)
        if engine == "postgresql":
            from .store.postgres import where_clause
            clause, values = where_clause(item)
        else:
            clause, values = _where_clause(item)
        clauses.append(clause)
        params.extend(values)

    return clauses, params, index, types


def build_query(
    columns,
    *,
    engine="sqlite",
    users=(),
    sessions=(),
    types=(),
    start=None,
    end=None,
    gaps=(),
    where=(),
    limit=None,
    order="asc",
    after=None,
):
    """Return ``(sql, params)`` selecting ``columns`` (fixed SQL text, never user
    input), in ``engine``'s dialect ("sqlite" or "postgresql"), with ``?`` placeholders.

    ``after`` is an action's place in the order, ``(utc_us, ns, id)``: only
    the actions that come after it (in ``order``) are selected. Places never
    change, so pages read this way neither repeat nor skip an action, whatever
    is inserted between them (keyset pagination)."""
    clauses, params, index, types = filter_clauses(
        engine=engine, users=users, sessions=sessions, types=types, start=start, end=end, gaps=gaps,
        where=where, order=order, after=after)
    if order is not None and order not in ORDERS:  # None: unordered, for counting
        raise FilterError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    direction = " DESC" if order == "desc" else ""
    # Ties (the same instant, to the nanosecond) keep ingestion order either
    # way: the README promises it.
    ordering = f" ORDER BY utc_us{direction}, ns{direction}, id"
    if engine == "sqlite" and order is not None and len(types) > 1 and index == "actions_type_time":
        # SQLite reads an IN list of types from (type_key, utc_us) a range at
        # a time and sorts them all before giving the first row (two types of
        # 10M actions: 9 s for the first 3). One SELECT a type instead, each
        # in time order from the index, merged by the compound SELECT's ORDER
        # BY (SQLite's merge of UNION ALL): rows stream in order and stop at the limit.
        other, other_params = clauses[1:], params[len(types):]
        arm = " AND ".join(["type_key = ?", *other])
        sql = (f"SELECT {columns} FROM ("
               + " UNION ALL ".join([f"SELECT * FROM actions INDEXED BY {index} WHERE {arm}"] * len(types))
               + ordering + ")")
        params = [value for key in types for value in (key, *other_params)]
    else:
        sql = f"SELECT {columns} FROM actions"
        if engine == "sqlite":
            sql += f" INDEXED BY {index}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        if order is not None:
            sql += ordering
    if _checked_limit(limit) is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def _checked_limit(limit):
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise FilterError(f"limit must be a whole number, 0 or more, got {limit!r}")
        if limit >= 2**63:  # SQLite's largest integer
            raise FilterError(f"limit must be below 2**63, got {limit!r}")
    return limit


def _checked_after(after):
    """``after`` as three ints the engines can compare: FilterError if it is not one."""
    try:
        utc_us, ns, id_ = after
    except (TypeError, ValueError):
        raise FilterError(f"after must be (utc_us, ns, id), got {after!r}") from None
    if not all(type(v) is int and -(2**63) <= v < 2**63 for v in (utc_us, ns, id_)) or not (
            0 <= ns <= 999 and id_ >= 0):
        raise FilterError(f"after must be (utc_us, ns 0-999, id 0 or more), got {after!r}")
    return utc_us, ns, id_


def _strings(values, name):
    values = (values,) if isinstance(values, str) else tuple(values or ())
    for value in values:
        if not isinstance(value, str):
            raise FilterError(f"{name} must be strings, got {value!r}")
        check_text(value, f"{name}:")
    return values


def _where_clause(where):
    """SQL and parameters for one property condition."""
    key, op, value = where
    path = (key,) if isinstance(key, str) else key
    spec = json.dumps(path)  # how the Python look-ups below receive the path
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not _sqlite_exact(value):
        # SQLite holds no integer beyond 64 bits, and its json_extract turns
        # a stored one into a double: Python compares these exactly instead
        sql, params = "ohlog_compare(properties, ?, ?, ?)", [spec, "=" if op == "!=" else op,
                                                               repr(value)]
    elif (any(_NEEDS_ESCAPE.search(k) or not k for k in path)
          or any(_INDEX_RE.fullmatch(k) for k in path[1:])
          or (isinstance(value, str) and "\x00" in value)):
        # SQLite's JSON paths cannot quote these keys (it compares a key as
        # escaped in the stored text), a key of digits may index an array
        # or name a key, and its JSON functions stop at NUL: look these up
        # in Python instead (slower, but exact)
        sql, params = _comparison("ohlog_value(properties, ?)", "ohlog_type(properties, ?)",
                                  "=" if op == "!=" else op, value, [spec])
    else:
        # The same for rows whose stored text holds an escaped NUL, which
        # json_extract would cut short; the others take SQLite's fast path.
        # Quoted labels: dots and brackets are part of a key.
        sql_path = [spec, "$" + "".join('."' + k + '"' for k in path)]
        sql, params = _comparison(_VALUE_SQL, _TYPE_SQL, "=" if op == "!=" else op, value, sql_path)
    if op == "!=":
        # the exact complement of =: actions without the key match too
        return f"NOT coalesce({sql}, 0)", params
    return sql, params


def _sqlite_exact(number):
    """Whether SQLite compares ``number`` exactly with every stored number.

    A stored integer beyond 64 bits reads as a double of at least 2**63 in
    size, so a given number must be smaller than that to stay on its side.
    """
    return -(2**63) < number < 2**63


_VALUE_SQL = (
    "CASE WHEN instr(properties, '\\u0000') THEN ohlog_value(properties, ?) "
    "ELSE json_extract(properties, ?) END"
)
_TYPE_SQL = (
    "CASE WHEN instr(properties, '\\u0000') THEN ohlog_type(properties, ?) "
    "ELSE json_type(properties, ?) END"
)


def _comparison(value_sql, type_sql, op, value, path):
    """``value_sql op ?`` guarded by the JSON type, so numbers never compare with text."""
    if value is True or value is False or value is None:
        literal = "null" if value is None else ("true" if value else "false")
        return f"{type_sql} = ?", [*path, literal]
    if isinstance(value, str):
        guard = f"{type_sql} = 'text'"
    else:
        guard = f"{type_sql} IN ('integer', 'real')"
    return f"({guard} AND {value_sql} {op} ?)", [*path, *path, value]


# What json_type and json_extract return for a top-level key, in Python
MISSING = object()


_INDEX_RE = re.compile(r"0|[1-9][0-9]*")  # a JSON Pointer array index


@functools.lru_cache(maxsize=64)
def _path(spec):
    return tuple(json.loads(spec))


def _lookup(properties, spec):
    """The value at the path ``spec`` (JSON text of its keys) in the JSON text ``properties``."""
    try:
        value = json.loads(properties)
    except (ValueError, TypeError):
        return MISSING
    return value_at(value, _path(spec))


def value_at(value, path):
    """The value at ``path`` (keys; a key of digits also indexes an array) in
    the parsed JSON ``value``, or MISSING."""
    for key in path:
        if type(value) is dict:
            value = value.get(key, MISSING)
            if value is MISSING:
                return value
        elif type(value) is list and _INDEX_RE.fullmatch(key) and int(key) < len(value):
            value = value[int(key)]
        else:
            return MISSING
    return value


def _python_type(properties, key):
    value = _lookup(properties, key)
    if value is MISSING:
        return None
    if value is None or value is True or value is False:
        return json.dumps(value)
    return {int: "integer", float: "real", str: "text", dict: "object", list: "array"}[type(value)]


def _python_value(properties, key):
    value = _lookup(properties, key)
    if value is MISSING or value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if type(value) is int and not -(2**63) <= value < 2**63:
        return float(value)
    return value


_COMPARE = {"=": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _python_compare(properties, key, op, given):
    """1 or 0: how a stored number compares with ``given`` (a number's repr),
    exactly, as Python compares ints and floats; None if it is not a number."""
    value = _lookup(properties, key)
    if type(value) is not int and type(value) is not float:
        return None
    return int(_COMPARE[op](value, _number(given)))


@functools.lru_cache(maxsize=16)
def _number(text):
    return int(text) if text.lstrip("-").isdigit() else float(text)


def _python_match(properties, where):
    """Whether the JSON text ``properties`` meets ``where``, decided in Python by
    the rules SQLite's conditions follow (PostgreSQL's rows that hold NUL)."""
    key, op, value = where
    try:
        found = value_at(json.loads(properties), (key,) if isinstance(key, str) else key)
    except (ValueError, TypeError):
        found = MISSING
    if op == "!=":
        return not _python_match(properties, Where(key, "=", value))
    if value is None or value is True or value is False:
        return found is value
    if isinstance(value, str):
        return type(found) is str and _COMPARE[op](found, value)
    return (type(found) is int or type(found) is float) and _COMPARE[op](found, value)
