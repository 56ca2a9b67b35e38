"""Shared by the analytics tests: a store on either engine, holding hand-made sessions.

(No tests here; the fixtures are imported by tests/test_analytics_*.py.)
"""

import pytest

from openhouse_cli.ingest import ingest_sessions
from openhouse_cli.store import open_store

ENGINES = ["sqlite", "postgresql"]


# What ingest requires of the known types, when a test gives no properties
DEFAULTS = {"click": {"locationX": 1, "locationY": 2}, "view": {"viewedId": "v"},
            "navigate": {"pageFrom": "a", "pageTo": "b"}}


def session(user, sid, *actions):
    """A session document; each action is ``(time, type)`` or ``(time, type, properties)``."""
    return {"userId": user, "sessionId": sid,
            "actions": [{"time": a[0], "type": a[1],
                         "properties": a[2] if len(a) > 2 else DEFAULTS.get(a[1].casefold(), {})}
                        for a in actions]}


def filters(**given):
    """The library's filter keywords, none set unless given."""
    base = dict(users=(), sessions=(), types=(), where=(), start=None, end=None, gaps=())
    return {**base, **given}


@pytest.fixture(params=ENGINES)
def engine(request):
    return request.param


@pytest.fixture
def make_store(engine, request, tmp_path):
    """``make_store(docs)``: a fresh store on the test's engine holding ``docs``."""
    opened = []

    def make(docs):
        if engine == "sqlite":
            target = str(tmp_path / f"a{len(opened)}.db")
        else:
            target = request.getfixturevalue("pg_db_url")
        store = open_store(target)
        opened.append(store)
        ingest_sessions(store, docs)
        return store

    yield make
    for store in opened:
        store.close()


def property_steps_supported(store):
    """PostgreSQL reads property conditions once the store issue lands them."""
    if store.engine != "postgresql":
        return True
    from openhouse_cli.errors import OhlogError
    from openhouse_cli.query import Where
    from openhouse_cli.store.postgres import where_clause

    try:
        where_clause(Where("a", "=", 1))
    except OhlogError:
        return False
    return True
