"""ohlog query --follow: the stored matches, then each new one as it is committed (issue 11.1)."""

import json
import os
import select
import signal
import subprocess
import time

import pytest

from openhouse_cli.follow import follow
from openhouse_cli.ingest import ingest_sessions
from openhouse_cli.store import open_store
from openhouse_cli.validate import session_rows

from .conftest import OHLOG


def session(user, n, *, start=0, kind="ping"):
    return {"userId": user, "sessionId": f"{user}-s",
            "actions": [{"time": f"2024-01-01T01:{30 + (start + i) // 60:02d}:{(start + i) % 60:02d}Z",
                         "type": kind, "properties": {"i": start + i}} for i in range(n)]}


def rows_of(doc):
    return session_rows(doc, "test")


def users_and_i(batch):
    return [(row[0], json.loads(row[4])["i"]) for row in batch]


def following(store, deadline_s=10, **filters):
    deadline = time.monotonic() + deadline_s
    return follow(store, poll=0.02, stopped=lambda: time.monotonic() > deadline, **filters)


def test_stored_then_new_in_commit_order(db_target):
    writer = open_store(db_target)
    ingest_sessions(writer, [session("a", 2), session("b", 1)])
    reader = open_store(db_target, readonly=True)
    gen = following(reader, users=["a"])
    assert users_and_i(next(gen)) == [("a", 0), ("a", 1)]
    ingest_sessions(writer, [session("b", 3, start=10)])  # matches nothing
    ingest_sessions(writer, [session("a", 2, start=20)])
    assert users_and_i(next(gen)) == [("a", 20), ("a", 21)]
    # an action older than everything still comes as new: commit order, not time order
    ingest_sessions(writer, [session("a", 1, start=-60)])
    assert users_and_i(next(gen)) == [("a", -60)]
    gen.close()
    reader.close()
    writer.close()


def test_filters_apply_to_new_actions(db_target):
    writer = open_store(db_target)
    reader = open_store(db_target, readonly=False)
    gen = following(reader, types=["PONG"], where=["i>=2"])
    ingest_sessions(writer, [session("a", 4, kind="pong"), session("b", 4, kind="ping")])
    assert users_and_i(next(gen)) == [("a", 2), ("a", 3)]
    gen.close()


def test_a_follower_ends_when_stopped(db_target):
    store = open_store(db_target)
    assert list(follow(store, poll=0.01, stopped=lambda: True, users=["x"])) == []


def test_sqlite_ids_taken_again_after_a_delete_are_new(tmp_path):
    from openhouse_cli.delete import delete_actions

    path = tmp_path / "reuse.db"
    writer = open_store(path)
    ingest_sessions(writer, [session("a", 2), session("b", 3, start=10)])
    gen = following(open_store(path, readonly=True))
    assert len(next(gen)) == 5
    # the newest rows go, and the next ingest takes their ids again
    assert delete_actions(writer, users=["b"]) == 3
    ingest_sessions(writer, [session("c", 2, start=30)])
    assert users_and_i(next(gen)) == [("c", 30), ("c", 31)]


def test_sqlite_new_rows_below_every_printed_id_after_a_delete_are_found(tmp_path):
    # Found from outside: the delete took every printed row and all below
    # them, so the next ingest's ids (1..4) were under the lowest printed id,
    # where the follower no longer looked: they never showed
    from openhouse_cli.delete import delete_actions

    path = tmp_path / "under.db"
    writer = open_store(path)
    ingest_sessions(writer, [session("other", 20)])
    ingest_sessions(writer, [session("alice", 3, start=100)])
    gen = following(open_store(path, readonly=True), users=["alice"])
    assert users_and_i(next(gen)) == [("alice", 100), ("alice", 101), ("alice", 102)]
    assert delete_actions(writer, users=["alice", "other"]) == 23
    ingest_sessions(writer, [session("alice", 4, start=200)])
    assert users_and_i(next(gen)) == [("alice", 200), ("alice", 201), ("alice", 202), ("alice", 203)]
    # a delete that leaves rows below: the new ones still come, the old ones left do not
    ingest_sessions(writer, [session("bob", 5, start=300)])
    assert delete_actions(writer, users=["bob"]) == 5
    ingest_sessions(writer, [session("alice", 1, start=400)])
    assert users_and_i(next(gen)) == [("alice", 400)]
    gen.close()


def test_sqlite_a_delete_beyond_the_remembered_ids_still_finds_new_rows(tmp_path, monkeypatch):
    # -n N remembers the newest _RECENT ids; a delete of more than that at the
    # top left new rows under all of them (found from outside at 120,000 rows)
    import openhouse_cli.follow as follow_module
    from openhouse_cli.delete import delete_actions

    monkeypatch.setattr(follow_module, "_RECENT", 4)
    path = tmp_path / "many.db"
    writer = open_store(path)
    ingest_sessions(writer, [session("keep", 10)])
    ingest_sessions(writer, [session("gone", 30, start=100)])
    gen = following(open_store(path, readonly=True), limit=1)
    assert users_and_i(next(gen)) == [("gone", 129)]
    assert delete_actions(writer, users=["gone"]) == 30
    ingest_sessions(writer, [session("new", 3, start=200)])
    # the ten rows of "keep" left are old: not printed; the three new are
    assert users_and_i(next(gen)) == [("new", 200), ("new", 201), ("new", 202)]
    gen.close()


def test_sqlite_a_delete_by_another_program_is_bounded_by_the_rows_left(tmp_path):
    # Not recorded in schema.DELETES: the highest remembered row still there bounds the new ones
    import sqlite3

    path = tmp_path / "other.db"
    writer = open_store(path)
    ingest_sessions(writer, [session("a", 2), session("b", 3, start=10)])
    gen = following(open_store(path, readonly=True))
    assert len(next(gen)) == 5
    other = sqlite3.connect(path)
    with other:
        other.execute("DELETE FROM actions WHERE user_id = 'b'")
    other.close()
    ingest_sessions(writer, [session("c", 2, start=30)])
    assert users_and_i(next(gen)) == [("c", 30), ("c", 31)]  # not a's again
    gen.close()


def test_sqlite_an_ohlog_delete_and_another_programs_between_two_looks(tmp_path):
    # Found by a review: ohlog's delete recorded id 8 left at the top, another
    # program then deleted 6..8, and the next ingest's ids 6..8 went unprinted
    import sqlite3

    from openhouse_cli.delete import delete_actions

    path = tmp_path / "mixed.db"
    writer = open_store(path)
    ingest_sessions(writer, [session("a", 5), session("b", 3, start=10), session("c", 2, start=20)])
    gen = following(open_store(path, readonly=True))
    assert len(next(gen)) == 10
    assert delete_actions(writer, users=["c"]) == 2  # records 8
    other = sqlite3.connect(path)
    with other:
        other.execute("DELETE FROM actions WHERE user_id = 'b'")
    other.close()
    ingest_sessions(writer, [session("d", 3, start=30)])  # ids 6..8 again
    assert users_and_i(next(gen)) == [("d", 30), ("d", 31), ("d", 32)]
    # the other order: another program deletes the newest, new rows take
    # their ids, then ohlog deletes an old row (recording the new top)
    other = sqlite3.connect(path)
    with other:
        other.execute("DELETE FROM actions WHERE user_id = 'd'")
    other.close()
    ingest_sessions(writer, [session("e", 2, start=40)])  # ids 6, 7
    assert delete_actions(writer, users=["a"]) == 5  # records 7
    assert users_and_i(next(gen)) == [("e", 40), ("e", 41)]
    gen.close()


def test_sqlite_a_delete_then_the_same_last_action_again_is_followed(tmp_path):
    # Found from outside: delete a batch, send it again corrected with its
    # last action unchanged: that row came back at the same id with the same
    # fingerprint, so the follower saw no delete and skipped the batch
    from openhouse_cli.delete import delete_actions

    path = tmp_path / "again.db"
    writer = open_store(path)
    ingest_sessions(writer, [session("a", 2), session("b", 3, start=10)])
    gen = following(open_store(path, readonly=True))
    assert len(next(gen)) == 5
    for round_ in range(3):
        assert delete_actions(writer, users=["b"]) == 3
        fixed = session("b", 3, start=10)
        for i, action in enumerate(fixed["actions"][:2]):
            action["properties"]["round"] = round_
        ingest_sessions(writer, [fixed])
        # every action of the batch sent again is new, its unchanged last one too
        batch = next(gen)
        assert [(row[0], json.loads(row[4]).get("round")) for row in batch] == [
            ("b", round_), ("b", round_), ("b", None)]
    gen.close()


def test_each_delete_records_the_highest_id_left(tmp_path):
    from openhouse_cli.delete import delete_actions
    from openhouse_cli.schema import DELETES

    store = open_store(tmp_path / "d.db")
    ingest_sessions(store, [session("a", 2), session("b", 3, start=10)])
    assert delete_actions(store, users=["b"]) == 3
    assert delete_actions(store, users=["nobody"]) == 0  # nothing deleted: nothing recorded
    assert delete_actions(store, users=["a"]) == 2
    assert store.execute(f"SELECT id, top FROM {DELETES} ORDER BY id").fetchall() == [(1, 2), (2, 0)]


# --limit N: the last N stored, in time order, then every new one (tail -n N -f)


def test_limit_prints_the_last_stored_then_all_new(db_target):
    writer = open_store(db_target)
    # ingested out of time order: the last by instant are not the last ingested
    ingest_sessions(writer, [session("a", 3, start=10), session("b", 2), session("a", 2)])
    reader = open_store(db_target, readonly=True)
    gen = following(reader, limit=3)
    assert users_and_i(next(gen)) == [("a", 10), ("a", 11), ("a", 12)]
    ingest_sessions(writer, [session("c", 4, start=-60)])  # new: all of them, older or not
    assert users_and_i(next(gen)) == [("c", -60), ("c", -59), ("c", -58), ("c", -57)]
    gen.close()
    # ties at one instant keep ingestion order; filters apply before the limit
    ties = [{"userId": u, "sessionId": "t", "actions": [
        {"time": "2030-01-01T00:00:00Z", "type": "tie", "properties": {"i": i}}]}
        for i, u in enumerate("xyz")]
    ingest_sessions(writer, ties)
    gen = following(reader, limit=2, types=["TIE"], where=["i>=0"])
    assert users_and_i(next(gen)) == [("y", 1), ("z", 2)]
    gen.close()
    reader.close()
    writer.close()


def test_limit_zero_prints_only_new_actions(db_target):
    writer = open_store(db_target)
    ingest_sessions(writer, [session("a", 5)])
    # the new action is committed once the follower has the stored ones
    gen = following(open_store(db_target, readonly=True), limit=0,
                    caught_up=lambda: ingest_sessions(writer, [session("b", 1, start=30)]))
    assert users_and_i(next(gen)) == [("b", 30)]
    gen.close()


def test_sqlite_limit_then_delete_prints_no_old_action_as_new(tmp_path):
    from openhouse_cli.delete import delete_actions

    path = tmp_path / "limit.db"
    writer = open_store(path)
    ingest_sessions(writer, [session("a", 6), session("b", 3, start=10)])
    gen = following(open_store(path, readonly=True), limit=2)
    assert users_and_i(next(gen)) == [("b", 11), ("b", 12)]
    # the newest rows go and their ids are taken again: the four actions of
    # "a" that were not printed are old, and must not come as new
    assert delete_actions(writer, users=["b"]) == 3
    ingest_sessions(writer, [session("c", 2, start=30)])
    assert users_and_i(next(gen)) == [("c", 30), ("c", 31)]


# PostgreSQL: ids are taken at insert, and transactions commit out of id order


def test_postgres_late_commit_of_a_smaller_id(pg_db_url):
    setup = open_store(pg_db_url)
    ingest_sessions(setup, [session("seed", 1)])
    first, second = open_store(pg_db_url), open_store(pg_db_url)
    gen = following(open_store(pg_db_url, readonly=True))
    assert users_and_i(next(gen)) == [("seed", 0)]
    slow, fast = first.writer("slow"), second.writer("fast")
    slow.begin()
    assert slow.write(rows_of(session("slow", 2))) == 2  # the smaller ids
    fast.begin()
    assert fast.write(rows_of(session("fast", 2))) == 2
    fast.commit()
    assert users_and_i(next(gen)) == [("fast", 0), ("fast", 1)]
    slow.commit()  # committed last, with ids below those already printed
    assert users_and_i(next(gen)) == [("slow", 0), ("slow", 1)]
    more = second.writer("more")
    more.begin()
    more.write(rows_of(session("more", 1)))
    more.commit()
    assert users_and_i(next(gen)) == [("more", 0)]  # nothing printed twice


def test_postgres_transaction_in_flight_when_the_follower_starts(pg_db_url):
    setup = open_store(pg_db_url)
    ingest_sessions(setup, [session("seed", 1)])
    early, late = open_store(pg_db_url), open_store(pg_db_url)
    slow = early.writer("slow")
    slow.begin()
    slow.write(rows_of(session("slow", 1)))
    fast = late.writer("fast")
    fast.begin()
    fast.write(rows_of(session("fast", 1)))
    fast.commit()
    gen = following(open_store(pg_db_url, readonly=True))
    assert sorted(users_and_i(next(gen))) == [("fast", 0), ("seed", 0)]
    slow.commit()
    assert users_and_i(next(gen)) == [("slow", 0)]


# End to end: a real follower process, real ingest processes


def _lines(proc, count, seconds):
    """``count`` lines of ``proc``'s stdout, each within ``seconds`` of the call
    (read unbuffered: a buffered reader would hide lines from select)."""
    pending = proc.__dict__.setdefault("pending", bytearray())
    lines = []
    deadline = time.monotonic() + seconds
    while len(lines) < count:
        if b"\n" in pending:
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            lines.append(json.loads(line))
            continue
        ready, _, _ = select.select([proc.stdout], [], [], max(0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"only {len(lines)} of {count} lines in {seconds}s: {lines}")
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            raise AssertionError(f"the follower ended: {proc.stderr.read()}")
        pending += chunk
    return lines


def test_follow_end_to_end_with_ingest_writers(db_target, tmp_path, run_ohlog):
    first = tmp_path / "first.json"
    first.write_text(json.dumps(session("a", 2)))
    assert run_ohlog("ingest", "--db", db_target, first).returncode == 0
    follower = subprocess.Popen([OHLOG, "query", "--db", db_target, "--follow", "--nl",
                                 "--user", "a"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert [a["properties"]["i"] for a in _lines(follower, 2, 10)] == [0, 1]
        for start in (10, 20):
            doc = tmp_path / f"more{start}.json"
            doc.write_text(json.dumps([session("a", 1, start=start), session("b", 1)]))
            assert run_ohlog("ingest", "--db", db_target, doc).returncode == 0
            began = time.monotonic()
            assert [a["properties"]["i"] for a in _lines(follower, 1, 3)] == [start]
            assert time.monotonic() - began < 1.5  # shown within a second (and a poll)
        follower.send_signal(signal.SIGINT)  # Ctrl-C: quietly, exit 0
        assert follower.wait(10) == 0
        assert follower.stderr.read() == b""
    finally:
        follower.kill()
        follower.wait()


def test_follow_ends_quietly_when_the_reader_goes(db_target, run_ohlog):
    assert run_ohlog("ingest", "--db", db_target, "examples/sample_log.json").returncode == 0
    result = subprocess.run(f"'{OHLOG}' query --db '{db_target}' --follow | head -1",
                            shell=True, capture_output=True, text=True, timeout=10)
    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout)["userId"] == "ABC123XYZ"


@pytest.mark.parametrize("args, message", [
    (["--json"], "--follow cannot close a JSON array: use --nl"),
    (["--format", "json"], "--follow cannot close a JSON array: use --nl"),
    (["--json", "--limit", "3"], "--follow cannot close a JSON array: use --nl"),
    (["--order", "desc"], "leave out --order desc"),
    (["--table", "--order", "desc"], "leave out --order desc"),
    (["--nl", "--show-tz", "UTC"], "--show-tz is for the table"),
    (["--table", "--fields", "type"], "--fields chooses what JSON, NDJSON and CSV print"),
    (["--limit", "-1"], "Invalid value for '-n' / '--limit'"),
])
def test_follow_usage_errors(run_ohlog, args, message):
    result = run_ohlog("query", "--follow", *args)
    assert result.returncode == 2
    assert message in result.stderr.decode()


def test_follow_csv_prints_the_header_then_rows(db_target, run_ohlog):
    assert run_ohlog("ingest", "--db", db_target, "examples/sample_log.json").returncode == 0
    result = subprocess.run(f"'{OHLOG}' query --db '{db_target}' --follow --csv "
                            f"--fields userId,utc --type click | head -2",
                            shell=True, capture_output=True, text=True, timeout=10)
    assert result.stdout.splitlines() == ["userId,utc", "ABC123XYZ,2018-10-19T03:37:28Z"]


@pytest.mark.slow
def test_an_idle_follower_costs_next_to_no_cpu(db_target, run_ohlog):
    """The README's figure: CPU seconds of an idle follower over 30 s."""
    assert run_ohlog("ingest", "--db", db_target, "examples/sample_log.json").returncode == 0
    follower = subprocess.Popen([OHLOG, "query", "--db", db_target, "--follow", "--nl"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(2)  # started, and the stored actions printed

        def cpu():
            fields = open(f"/proc/{follower.pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        before = cpu()
        time.sleep(30)
        used = cpu() - before
        print(f"idle follower on {db_target.split(':')[0]}: {used:.2f} CPU s in 30 s")
        assert used < 0.5
    finally:
        follower.kill()
        follower.wait()


# The streaming table: on a terminal by default, or with --table


def _read_until(fd, wanted, seconds):
    """What ``fd`` gives until ``wanted`` is in it (the text so far, \\r\\n as \\n)."""
    text, deadline = b"", time.monotonic() + seconds
    while wanted.encode() not in text.replace(b"\r\n", b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0, deadline - time.monotonic()))
        assert ready, f"no {wanted!r} in {seconds}s: {text!r}"
        text += os.read(fd, 65536)
    return text.replace(b"\r\n", b"\n").decode()


def test_follow_on_a_terminal_streams_a_table(db_target, tmp_path, run_ohlog):
    assert run_ohlog("ingest", "--db", db_target, "examples/sample_log.json").returncode == 0
    master, slave = os.openpty()
    follower = subprocess.Popen([OHLOG, "query", "--db", db_target, "--follow", "-n", "2"],
                                stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                env={**os.environ, "COLUMNS": "80", "NO_COLOR": "1"})
    os.close(slave)
    try:
        text = _read_until(master, "NAVIGATE", 10)
        lines = text.splitlines()
        assert lines[0].split() == ["Time", "User", "Session", "Type", "Properties"]
        # the last two stored actions, in time order (at one instant: ingestion order)
        assert [line.split()[3] for line in lines[2:] if line.startswith("2018")] == [
            "VIEW", "NAVIGATE"]
        doc = tmp_path / "more.json"
        doc.write_text(json.dumps({"userId": "a-user-id-longer-than-its-column",
                                   "sessionId": "s", "actions": [
            {"time": "2024-01-01T00:00:00.125+05:30", "type": "tap",
             "properties": {"note": "a property long enough to wrap at eighty columns, twice"}}]}))
        assert run_ohlog("ingest", "--db", db_target, doc).returncode == 0
        more = _read_until(master, "twice", 5)
        table = (text + more).splitlines()
        assert "Time" not in more  # the header once
        assert max(len(line) for line in table) <= 80
        # the columns stay where the header put them; a longer id folds in its column
        user = table[0].index("User")
        assert "".join(line[user:user + 12].strip() for line in more.splitlines()) == \
            "a-user-id-longer-than-its-column"
        follower.send_signal(signal.SIGINT)
        assert follower.wait(10) == 0
        assert follower.stderr.read() == b""
    finally:
        os.close(master)
        follower.kill()
        follower.wait()


def test_follow_on_a_terminal_with_fields_prints_ndjson(db_target, run_ohlog):
    assert run_ohlog("ingest", "--db", db_target, "examples/sample_log.json").returncode == 0
    master, slave = os.openpty()
    follower = subprocess.Popen([OHLOG, "query", "--db", db_target, "-f", "-n", "1",
                                 "--fields", "utc,type"], stdout=slave, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
    os.close(slave)
    try:
        assert _read_until(master, "\n", 10) == '{"utc":"2018-10-19T03:37:30Z","type":"NAVIGATE"}\n'
    finally:
        os.close(master)
        follower.kill()
        follower.wait()


def test_follow_table_in_a_pipe(db_target, run_ohlog):
    assert run_ohlog("ingest", "--db", db_target, "examples/sample_log.json").returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    result = subprocess.run(f"'{OHLOG}' query --db '{db_target}' --follow --table -n 1 "
                            "--show-tz UTC | head -3", shell=True, capture_output=True,
                            text=True, timeout=10, env=env)
    assert (result.returncode, result.stderr) == (0, "")
    header, rule, row = result.stdout.splitlines()
    assert header.split() == ["Time", "(UTC)", "User", "Session", "Type", "Properties"]
    assert row.split() == ["2018-10-19T03:37:30Z", "ABC123XYZ", "XYZ456ABC", "NAVIGATE",
                           "pageFrom=communities", "pageTo=inventory"]


def test_sigterm_ends_a_follower_as_ctrl_c_does(tmp_path, run_ohlog):
    # Found from outside: kill, timeout, systemd and docker stop send SIGTERM;
    # the follower died of it, leaving the database's -wal and -shm files
    db = tmp_path / "t.db"
    first = tmp_path / "first.json"
    first.write_text(json.dumps(session("a", 2)))
    assert run_ohlog("ingest", "--db", db, first).returncode == 0
    follower = subprocess.Popen([OHLOG, "query", "--db", db, "--follow", "--nl"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    try:
        assert len(_lines(follower, 2, 10)) == 2
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(10) == 0
        assert follower.stderr.read() == b""
    finally:
        follower.kill()
        follower.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.json", "t.db"]
