"""The PostgreSQL schema can be distributed by user with Citus: every unique
or primary key of a table with user_id holds user_id, and no foreign key
ties rows together (Citus' rules for a table distributed by user_id)."""

from openhouse_cli.store import open_store


def test_every_unique_key_holds_user_id_and_no_foreign_keys(pg_db_url):
    store = open_store(pg_db_url)
    try:
        keys = list(store.execute(
            "SELECT c.relname, i.relname, array_agg(a.attname::text ORDER BY a.attname)"
            " FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid"
            " JOIN pg_class i ON i.oid = x.indexrelid"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(x.indkey)"
            " WHERE (x.indisunique OR x.indisprimary)"
            " AND c.relnamespace = current_schema()::regnamespace"
            " AND EXISTS (SELECT 1 FROM pg_attribute u WHERE u.attrelid = c.oid"
            "             AND u.attname = 'user_id' AND NOT u.attisdropped)"
            " GROUP BY c.relname, i.relname"))
        foreign = list(store.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'f'"
            " AND connamespace = current_schema()::regnamespace"))
        expressions = list(store.execute(
            "SELECT indexrelid::regclass::text FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid"
            " WHERE x.indisunique AND (x.indexprs IS NOT NULL OR x.indpred IS NOT NULL)"
            " AND c.relnamespace = current_schema()::regnamespace"))
    finally:
        store.close()
    assert keys, "the actions table has its unique dedupe key"
    assert [(table, index) for table, index, columns in keys if "user_id" not in columns] == []
    assert ("actions", "actions_dedupe") in {(table, index) for table, index, _ in keys}
    assert foreign == [] and expressions == []
