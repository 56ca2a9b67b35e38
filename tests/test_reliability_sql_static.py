"""Issue 4.5, injection, statically: no SQL in openhouse_cli/ is built from user input.

Every piece of SQL text that is assembled at run time (an f-string,
``%``, ``.format``, ``+`` or ``.join`` whose constant parts read as SQL) may
only take in module constants (UPPER_CASE names) or the expressions in
ALLOWED, each of which is a schema identifier, a fixed fragment, or a
placeholder list; every call that runs SQL must get a string constant, a
constant, or a name ALLOWED for it. A new piece of dynamic SQL fails this
test until it is reviewed and allow-listed here.
"""

import ast
import pathlib
import re

import openhouse_cli

PACKAGE = pathlib.Path(openhouse_cli.__file__).parent
RUNS_SQL = {"execute", "executemany", "executescript", "query", "execute_returning_dicts"}
SQL_WORDS = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA|FROM|WHERE|VALUES|INDEX|ORDER BY|"
    r"LIMIT|JOIN|AND|OR|NOT|IN|IS|coalesce|json_extract|json_type|lower)\b"
    r"|\?(?![\w=])")  # a placeholder, not a URI's ?mode=ro

# module -> {source of an expression allowed in SQL text: why it is safe}
ALLOWED = {
    "store/sqlite.py": {
        "index": "a name from schema.SECONDARY_INDEXES",
        "', '.join('?' * (1 + len(INDEXES)))": "one placeholder a name of the schema's table and indexes",
        "columns": "a column list from schema.SECONDARY_INDEXES",
        "sql": "SQLiteStore.execute: its callers' SQL, each checked where it is built",
    },
    "store/postgres.py": {
        "statement": "a statement of the module constant MIGRATIONS (frozen migrations)",
        "table": "_MOVE's keys: the literal staging table names ohlog_load and ohlog_bulk",
        "_MOVE['ohlog_load']": "a module constant built from literals at import",
        "_MOVE['ohlog_bulk']": "a module constant built from literals at import",
        "sql.replace('?', '%s')": "its callers' SQL (query.build_query), placeholders in psycopg's style",
        "guards": "_path_guards' fragments: literals with ? placeholders",
        "sql": "where_clause's fragment, built here from the literals above",
        "found": "'(properties::jsonb #> ?::text[])': a literal",
        "literal": "'(properties::json #> ?::text[])::text': a literal",
        "op": "a Where.op checked against query.OPERATORS by query._checked, or a literal",
        "setting": "a statement of the module constant _BULK_SETTINGS",
        "_INSERT_FROM_BULK if self._keys is None else _INSERT_FROM_LOAD": "one of two module constants",
        "insert": "_INSERT_FROM_BULK or _INSERT_FROM_LOAD, module constants (Writer._load_bulk)",
        "drop": "DROP of one of the actions table's own indexes or unique constraints, named by the "
                "catalog and quoted by quote_ident (_INDEX_DEFINITIONS)",
        "create": "the definition of one of the actions table's own indexes or unique constraints, "
                  "as the catalog writes it (pg_get_indexdef, pg_get_constraintdef)",
    },
    "cli/common.py": {
        "sql": "warn_unknown: query.build_query's SQL, a type name only as a placeholder's value",
    },
    "copy.py": {
        "', '.join(COLUMNS)": "schema.COLUMNS, the column names",
    },
    "delete.py": {
        "rollups.DELETE_POSTGRES": "a module constant of rollups.py, built from its literals at import",
    },
    "server/postgres.py": {
        "rollups.RETURNING_POSTGRES": "a module constant of rollups.py: a literal column list",
        "rollups.summing_postgres('inserted')": "rollups' _SUMMED_POSTGRES over the literal CTE name",
        "rollups.SUMMED_POSTGRES": "a module constant of rollups.py: a literal condition",
        "sql": "QuickReader._run's callers: query.build_query's result (psycopg placeholders) "
               "or the health check's constant query on schema.TABLE",
    },
    "schema.py": {
        "TABLE": "the table's name, a constant",
        "', '.join(COLUMNS)": "schema.COLUMNS, the column names",
        "', '.join(('?' for _ in COLUMNS))": "one placeholder a column",
    },
    "complete.py": {
        "column": "a column of complete.COLUMNS (distinct_with_prefix checks it against _NAMES)",
        "indexed": "'' or ' INDEXED BY ' and an index of complete.COLUMNS (checked likewise)",
        "upper": "'' or ' AND ' column ' < ?' (the checked column)",
        "sql": "distinct_with_prefix's two statements, built from the names above",
        "_KEYS_SQL[engine]": "one of two constant statements, chosen by the store's engine",
    },
    # The analyses wrap query.build_query's filtered SELECT in SQL of their own;
    # user input reaches them only as bound parameters (steps, filters, --periods).
    "analytics/buckets.py": {
        "date": "_month_by_calendar's date expression, built from the day's SQL (bucket_sql) and literals",
        "seconds": "_month_by_calendar's seconds expression, built from the day's SQL and a literal",
        "10000 * 12": "a constant expression (month number of January 10000)",
    },
    "analytics/source.py": {
        "sql": "its callers' SQL, each checked in the analytics module that builds it",
        "clauses": "query.filter_clauses' fragments, each built (and checked) there",
        "table": "one of two literal table names: summary_sessions or schema.SPANS",
    },
    "analytics/counts.py": {
        "sql": "filtered(): query.build_query's SELECT of fixed column lists",
        "day": "buckets.bucket_sql: column names and integers ohlog computes",
        "bucket": "buckets.bucket_sql: column names and integers ohlog computes",
        "select": "key expressions: _COLUMN's literals or buckets.bucket_sql, aliased k0..kN",
        "', '.join(names)": "the aliases k0..kN",
        "distinct": "'count(DISTINCT user_id)' or '0': literals",
    },
    "analytics/summaries.py": {
        "', '.join('?' * len(types))": "placeholders only, one a type",
        "column": "'slot' or 'hour': _GRAIN's literals",
        "clauses": "literal conditions with ? placeholders",
        "', '.join(names)": "the aliases k0..kN",
        "distinct": "'count(DISTINCT user_id)' or '0': literals",
        "select": "key expressions: _COLUMN's literals or buckets.bucket_sql, aliased k0..kN",
        "user": "'user_id' or 'NULL AS user_id': literals",
        "table": "a summary table's name, from _GRAIN's literals or a literal",
        "where[0]": "_where's clause: literal conditions with ? placeholders",
        "day": "buckets.bucket_sql over a summary's slot column: integers ohlog computes",
        "where": "_where's clause (literal conditions with ? placeholders) and literal type_key "
                 "conditions, or 'type_key = ?' / 'type_key IN (' placeholders ')'",
        "b": "a block number: an integer from range() over integers ohlog computes",
        "', '.join(columns)": "sum(CASE ...) columns: literals, ? placeholders and block integers",
        "first": "the first block number: an integer ohlog computes from day numbers",
        "last": "the last block number: an integer ohlog computes from day numbers",
    },
    "rollups.py": {
        "spans.UPSERT": "a module constant of spans.py, built from literals and schema names at import",
        "key": "TABLES' key columns: schema.SUMMARIES' literals",
        "holds_rows": "_HOLDS_ROWS_POSTGRES: SELECT EXISTS over TABLES' names, built at import",
        "upsert if conn.execute(holds_rows).fetchone()[0] else insert":
            "APPLY_POSTGRES or _INSERT_NEW_POSTGRES: statements built from TABLES at import",
        "table": "a key of TABLES: a summary table's name",
        "at": "TABLES' positions: literals",
        "sql": "a statement of _APPLY, APPLY_POSTGRES or _DROP_EMPTY_POSTGRES, built from TABLES at import",
        "keep": "_KEEP_ANY: a module constant built from literals and integers at import",
        "_DROP_EMPTY[table]": "a statement built from TABLES at import",
        "_FROM_SLOT[table]": "key expressions over ohlog_delta: column names and integer constants",
        "delta": "_DELTA_ADD or _DELTA_SUBTRACT: module constants",
        "insert": "collecting's argument: an INSERT INTO actions, a module constant of store/postgres.py",
        "delta_postgres('ins')": "_DELTA_POSTGRES over the literal CTE name ins",
        "delta_postgres('gone', '-count(*)')": "_DELTA_POSTGRES over the literal CTE name gone",
        "rows": "summing_postgres' argument: a literal CTE name (server/postgres.py)",
        "_DONE.format(i - 1) if i else 'true'": "_DONE over an integer, or a literal",
        "i": "a summary's position in TABLES: an integer",
        "', '.join('?' * (at.count(',') + 2))": "placeholders, one a key column and one for the count",
    },
    "migrations.py": {
        "columns": "m004's literal column definitions",
        "table": "m004's literal table names",
        "key": "m004's literal key columns",
        "expr": "m004's key expressions: column names and integer constants",
        "', '.join((str(i + 1) for i in range(key.count(',') + 1)))": "GROUP BY positions: integers",
        "shift": "m005's integer constant (the day shift in hours)",
        "change": "m009's literal statement kinds: INSERT, UPDATE, DELETE",
        "change.lower()": "m009's literal statement kinds, in lower case",
    },
    "analytics/funnels.py": {
        "sql": "filtered(): query.build_query's SELECT of a fixed column list",
        "mask": "steps.mask_sql: CASE over steps.step_sql fragments, values as placeholders",
        "where": "' WHERE m > 0', '' or ' WHERE type_key IN (' placeholders ')': literals; in _seeked"
                 " '' or ' AND ' and source.conditions (query.filter_clauses' fragments)",
        "', '.join('?' * len(wanted))": "placeholders only, one a step's type",
        "ids": "'group_concat(id)' or 'NULL': literals",
        "', '.join('?' * len(keys))": "placeholders only, one a step's type",
        "', '.join('?' * len(known))": "placeholders only, one a --user value",
        "f\" AND user_id IN ({', '.join('?' * len(known))})\" if known else ''": "a literal and placeholders",
        "after": "'' or ' AND utc_us >= p.sN', N an integer ohlog counts",
        "seek('')": "_seeked's seek(): literals and the fragments above",
        "seek(f' AND utc_us >= p.s{k - 1}')": "_seeked's seek(): literals and the fragments above",
        "k": "a step's number, an integer ohlog counts",
        "k - 1": "a step's number, an integer ohlog counts",
        "', '.join(parts)": "_seeked's CTEs, built from the fragments above",
        "len(keys)": "the number of steps, an integer",
    },
    "analytics/paths.py": {
        "sql": "filtered(): query.build_query's SELECT of a fixed column list",
        "where": "source.conditions(): query.filter_clauses' conditions, placeholders for values, or 'true'",
    },
    "analytics/retention.py": {
        "sql": "filtered(): query.build_query's SELECT of fixed column names",
        "bucket": "buckets.bucket_sql: column names and integers ohlog computes",
        "' + '.join(conditions)": "'1', '2', or CASE over steps.step_sql (placeholders)",
        "instants": "'' or a literal list of column aliases",
        "actions": "the SELECT built from the above",
    },
    "analytics/sessions.py": {
        "sql": "filtered(): query.build_query's SELECT of a fixed column list",
        "order": "one of two ORDER BY column lists: literals",
        "where": "source.conditions(): query.filter_clauses' conditions, placeholders for values, or 'true'",
        "DAY_NS // 1000": "an integer constant: microseconds a day",
    },
    "spans.py": {
        "', '.join(SPANS_COLUMNS)": "schema.SPANS_COLUMNS, the spans table's column names",
        "', '.join('?' * len(SPANS_COLUMNS))": "one placeholder a column",
        "', '.join(COLUMNS)": "schema.COLUMNS, the column names",
        "', '.join('?' * len(ids))": "one placeholder a session id",
        "_before('excluded.last', 'last')": "_before over literal column prefixes",
        "_before('excluded.first_page', 'first_page')": "_before over literal column prefixes",
        "_before('excluded.last_page', 'last_page')": "_before over literal column prefixes",
        "_distance('last', 'excluded.first')": "_distance over literal column prefixes",
        "_distance('excluded.last', 'first')": "_distance over literal column prefixes",
        "_take(_EARLIER, ('first_us', 'first_ns', 'start_time'))": "_take over literals",
        "_take(_LATER, ('last_us', 'last_ns', 'end_time'))": "_take over literals",
        "_take(_EARLIER_PAGE, ('first_page', 'first_page_us', 'first_page_ns'))": "_take over literals",
        "_take(_LATER_PAGE, ('last_page', 'last_page_us', 'last_page_ns'))": "_take over literals",
    },
    "analytics/steps.py": {
        "clause": "query._where_clause / store.postgres.where_clause: placeholders for values",
    },
    "follow.py": {
        "_FROM.sub(lambda _: source, sql, count=1)": "query.build_query's SELECT of the constant "
            "_WITH_ID, its FROM replaced by one of the module constants _ABOVE / _UNSEEN",
        "sql": "_SQLiteFollower._run's callers: query.build_query's SELECT or _new_rows_sql's",
    },
    "query.py": {
        "column": "user_id, session_id, type_key, utc_us or local_us: literals in build_query",
        "', '.join('?' * len(values))": "one placeholder a value",
        "op[0]": "'>' or '<': the first character of a '>=' / '<=' literal",
        "columns": "_ROW_COLUMNS, _JSON_COLUMN, 'count(*)' or fields.COLUMNS: the callers' constants",
        "index": "one of four index names, literals in build_query",
        "op": "'>=' / '<=' literals, or a Where.op checked against OPERATORS by _checked",
        "clauses": "a list of fragments, each built (and checked here) in build_query",
        "direction": "' DESC' or '': literals",
        "type_sql": "'json_type(properties, ?)' or 'ohlog_type(properties, ?)': literals",
        "value_sql": "'json_extract(properties, ?)' or 'ohlog_value(properties, ?)': literals",
        "guard": "a fragment built in _comparison (checked here)",
        "sql": "build_query's result / _comparison's fragment, built from the above",
        "['type_key = ?', *other]": "a literal and filter_clauses' fragments (checked here)",
        "arm": "build_query's one-type SELECT's conditions, built from the above",
    },
}


def _source(node):
    return ast.unparse(node)


def _constant_text(node):
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _pieces(node):
    """(constant texts, other expressions) of a string built at run time; None if it is not one."""
    if isinstance(node, ast.JoinedStr):
        texts = [v.value for v in node.values if isinstance(v, ast.Constant)]
        return texts, [v.value for v in node.values if isinstance(v, ast.FormattedValue)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        operands, stack = [], [node]
        while stack:
            item = stack.pop()
            if isinstance(item, ast.BinOp) and isinstance(item.op, ast.Add):
                stack += [item.right, item.left]
            else:
                operands.append(item)
        texts = [_constant_text(o) for o in operands if _constant_text(o) is not None]
        if not texts and not any(isinstance(o, ast.JoinedStr) for o in operands):
            return None
        return texts, [o for o in operands if _constant_text(o) is None]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and _constant_text(node.left):
        args = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
        return [node.left.value], args
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("format", "join") and _constant_text(node.func.value) is not None):
        return [node.func.value.value], [*node.args, *(k.value for k in node.keywords)]
    return None


def _is_constant_name(node):
    return isinstance(node, ast.Name) and node.id.lstrip("_").isupper()


def violations(tree, module):
    allowed = ALLOWED.get(module, {})
    found = []
    for node in ast.walk(tree):
        pieces = _pieces(node)
        if pieces is not None and any(SQL_WORDS.search(text) for text in pieces[0]):
            for part in pieces[1]:
                nested = _pieces(part)
                if nested is not None and any(SQL_WORDS.search(t) for t in nested[0]):
                    continue  # checked on its own as this walk reaches it
                if _constant_text(part) is None and not _is_constant_name(part) \
                        and _source(part) not in allowed:
                    found.append(f"{module}:{part.lineno}: SQL built from `{_source(part)}`")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in RUNS_SQL and node.args:
            sql = node.args[0]
            if not (_constant_text(sql) is not None or _is_constant_name(sql)
                    or _source(sql) in allowed or _pieces(sql) is not None):
                found.append(f"{module}:{sql.lineno}: SQL passed as `{_source(sql)}`")
            elif _pieces(sql) is not None and not any(SQL_WORDS.search(t) for t in _pieces(sql)[0]):
                found.append(f"{module}:{sql.lineno}: SQL passed as `{_source(sql)}`")
    # a chain a + b + c is also visited as its inner a + b: report each finding once
    return sorted(set(found), key=lambda f: (int(f.split(":")[1]), f))


def test_no_sql_is_built_from_user_input():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += violations(ast.parse(path.read_text()), path.relative_to(PACKAGE).as_posix())
    assert found == []


def test_allow_list_has_no_stale_entries():
    """An entry whose expression no longer appears in its module is removed, not left to rot."""
    for module, entries in ALLOWED.items():
        path = PACKAGE / module
        if not path.exists():
            continue
        sources = {_source(node) for node in ast.walk(ast.parse(path.read_text()))
                   if isinstance(node, ast.expr)}
        assert set(entries) <= sources, f"{module}: {set(entries) - sources}"


BAD = '''
def find(conn, user, table, order):
    conn.execute(f"SELECT * FROM actions WHERE user_id = '{user}'")
    conn.execute("SELECT * FROM actions WHERE user_id = '%s'" % user)
    conn.execute("SELECT * FROM {} LIMIT 1".format(table))
    conn.execute("SELECT * FROM actions ORDER BY " + order)
    query = "DELETE FROM actions WHERE type = '" + user + "'"
    conn.executemany(query, [])
    conn.execute(user)
    conn.execute(f"{user}")
    clauses = [f"{user} = ?"]
'''


def test_the_check_catches_injection():
    found = violations(ast.parse(BAD), "bad.py")
    assert [f.split(": ", 1)[1] for f in found] == [
        "SQL built from `user`", "SQL built from `user`", "SQL built from `table`",
        "SQL built from `order`", "SQL built from `user`", "SQL passed as `query`",
        "SQL passed as `user`", "SQL passed as `f'{user}'`", "SQL built from `user`",
    ]
