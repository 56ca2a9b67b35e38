"""ohlog delete: exactly the matching actions, in one transaction (issue 11.6)."""

import json
import subprocess

import pytest

from openhouse_cli.delete import NoFilter, delete_actions
from openhouse_cli.ingest import ingest_sessions
from openhouse_cli.query import count_actions, query_actions
from openhouse_cli.store import open_store

from .conftest import OHLOG


def session(user, n, *, session=None, kind="ping", start=0):
    return {"userId": user, "sessionId": session or f"{user}-s",
            "actions": [{"time": f"2024-01-01T01:{(start + i) // 60:02d}:{(start + i) % 60:02d}Z",
                         "type": kind, "properties": {"i": start + i}} for i in range(n)]}


@pytest.fixture
def filled(store):
    ingest_sessions(store, [session("a", 3), session("b", 2, kind="pong"),
                            session("a", 2, session="a-2", kind="pong", start=10)])
    return store


def everything(store):
    return [(a["userId"], a["sessionId"], a["properties"]["i"]) for a in query_actions(store)]


@pytest.mark.parametrize("filters", [
    dict(users=["a"]),
    dict(sessions=["a-2"]),
    dict(types=["PONG"]),
    dict(users=["a"], types=["pong"]),
    dict(where=["i>=2"]),
    dict(users=["nobody"]),
])
def test_removes_exactly_what_query_matches(filled, filters):
    before = everything(filled)
    matched = [(a["userId"], a["sessionId"], a["properties"]["i"])
               for a in query_actions(filled, **filters)]
    assert delete_actions(filled, **filters) == len(matched)
    assert everything(filled) == [row for row in before if row not in matched]
    assert count_actions(filled, **filters) == 0


def test_a_time_range(filled):
    from openhouse_cli.times import parse_time_spec, resolve_range

    span = resolve_range(parse_time_spec("2024-01-01T01:00:10Z"), None)
    assert delete_actions(filled, start=span.start, end=span.end) == 2
    assert [row[2] for row in everything(filled)] == [0, 0, 1, 1, 2]


@pytest.mark.parametrize("filters", [{}, dict(users=[]), dict(where=(), types=())])
def test_refuses_without_a_filter(filled, filters):
    with pytest.raises(NoFilter):
        delete_actions(filled, **filters)
    assert len(everything(filled)) == 7


def test_a_deleted_action_sent_again_is_stored_again(filled):
    assert delete_actions(filled, users=["b"]) == 2
    counts = ingest_sessions(filled, [session("b", 2, kind="pong")])
    assert counts.inserted == 2
    assert count_actions(filled, users=["b"]) == 2


# The command, end to end


@pytest.fixture
def target(db_target, tmp_path, run_ohlog):
    doc = tmp_path / "in.json"
    doc.write_text(json.dumps([session("a", 3), session("b", 2, kind="pong")]))
    assert run_ohlog("ingest", "--db", db_target, doc).returncode == 0
    return db_target


def remaining(target):
    store = open_store(target)
    try:
        return count_actions(store)
    finally:
        store.close()


def test_cli_deletes_and_says_how_many(target, run_ohlog):
    result = run_ohlog("delete", "--db", target, "--user", "a", "--yes")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"Deleted 3 actions\n")
    assert remaining(target) == 2
    result = run_ohlog("delete", "--db", target, "--type", "PONG", "-y", "--vacuum")
    assert (result.returncode, result.stderr) == (0, b"Deleted 2 actions\n")
    assert remaining(target) == 0


def test_cli_dry_run_lists_and_keeps(target, run_ohlog):
    result = run_ohlog("delete", "--db", target, "--user", "b", "--dry-run", "--nl")
    assert result.returncode == 0
    assert [json.loads(line)["userId"] for line in result.stdout.splitlines()] == ["b", "b"]
    assert result.stderr == b"Would delete 2 actions\n"
    assert remaining(target) == 5


@pytest.mark.parametrize("args, message", [
    ([], "a delete needs at least one filter"),
    (["--user", "a"], "no terminal to confirm the delete on: add --yes"),
    (["--user", "a", "--nl"], "add --dry-run"),
])
def test_cli_refusals_leave_everything(target, run_ohlog, args, message):
    result = run_ohlog("delete", "--db", target, *args)
    assert result.returncode == 2
    assert message in result.stderr.decode()
    assert len(result.stderr.decode().strip().splitlines()[-1]) > 0
    assert remaining(target) == 5


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_cli_refuses_a_missing_database_and_creates_none(run_ohlog, tmp_path, dry_run):
    missing = tmp_path / "typo.db"
    result = run_ohlog("delete", "--db", missing, "--user", "a", "--yes", *dry_run)
    assert (result.returncode, result.stderr.decode()) == (1, f"Error: No database found at {missing}:"
                                                              f" ingest logs into it first (ohlog ingest FILE --db {missing})\n")
    assert not missing.exists()


def test_cli_asks_on_a_terminal(target, tmp_path):
    """On a terminal it asks; "n" deletes nothing, "y" deletes."""
    import pty

    for answer, left in ((b"n\n", 5), (b"y\n", 2)):
        primary, secondary = pty.openpty()
        proc = subprocess.Popen([OHLOG, "delete", "--db", target, "--user", "a"],
                                stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        import os
        os.close(secondary)
        os.write(primary, answer)
        out, err = proc.communicate(timeout=30)
        os.close(primary)
        assert b"Delete 3 actions from" in err
        assert proc.returncode == (1 if answer == b"n\n" else 0)
        assert remaining(target) == left


def test_a_delete_racing_an_ingest(db_target, tmp_path, run_ohlog):
    """A delete of one user while another process ingests others: both finish,
    the user's actions are gone and every ingested action is stored."""
    before = tmp_path / "gone.json"
    before.write_text(json.dumps([session("gone", 50)]))
    assert run_ohlog("ingest", "--db", db_target, before).returncode == 0
    big = tmp_path / "big.ndjson"
    with big.open("w") as out:
        for k in range(400):
            out.write(json.dumps(session(f"keep{k}", 50)) + "\n")
    ingest = subprocess.Popen([OHLOG, "ingest", "--db", db_target, "--batch-size", "20",
                               big], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deleted = run_ohlog("delete", "--db", db_target, "--user", "gone", "--yes")
    assert ingest.wait(60) == 0, ingest.stderr.read()
    assert (deleted.returncode, deleted.stderr) == (0, b"Deleted 50 actions\n")
    store = open_store(db_target)
    assert count_actions(store, users=["gone"]) == 0
    assert count_actions(store) == 400 * 50
    store.close()
