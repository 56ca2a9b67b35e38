"""Issue 8 end to end through the real ``ohlog``: --rejects never destroys a
file it must not, big integers read back exactly, rejects fed back, empty
inputs, and what was stored before a database error."""

import json
import os
import sqlite3
import subprocess

import pytest

from .conftest import OHLOG

BIG = [18446744073709551617, 18446744073709551618]


def doc(x, session="s1"):
    return {"userId": "u1", "sessionId": session, "actions": [
        {"time": "2018-10-18T21:37:28Z", "type": "NOTE", "properties": {"x": x}}]}


def ndjson(*docs):
    return "".join(json.dumps(d) + "\n" for d in docs)


def refused(result, data, path):
    assert result.returncode == 2, result.stderr
    assert result.stderr.count(b"\n") == 1 and b"--rejects" in result.stderr, result.stderr
    assert path.read_text() == data  # untouched


@pytest.mark.parametrize("spelling", ["same", "relative", "symlink", "hard link"])
def test_rejects_never_empties_an_input(tmp_path, run_ohlog, spelling):
    data = ndjson(doc(1), {"bad": 1})
    source = tmp_path / "fixed.ndjson"
    source.write_text(data)
    rejects = {"same": source, "relative": tmp_path / "." / "fixed.ndjson",
               "symlink": tmp_path / "link.ndjson", "hard link": tmp_path / "hard.ndjson"}[spelling]
    if spelling == "symlink":
        rejects.symlink_to(source)
    elif spelling == "hard link":
        os.link(source, rejects)
    result = run_ohlog("ingest", "--db", tmp_path / "o.db", "--on-error", "skip", "--rejects", rejects, source)
    refused(result, data, source)
    assert not (tmp_path / "o.db").exists()


def test_rejects_never_empties_a_file_in_an_ingested_directory(tmp_path, run_ohlog):
    logs = tmp_path / "logs"
    logs.mkdir()
    data = ndjson(doc(1))
    (logs / "a.ndjson").write_text(data)
    (logs / "b.ndjson").write_text(data)
    result = run_ohlog("ingest", "--on-error", "skip", "--rejects", logs / "b.ndjson", logs)
    refused(result, data, logs / "b.ndjson")


def test_rejects_never_empties_stdin_redirected_from_it(tmp_path):
    source = tmp_path / "in.ndjson"
    data = ndjson(doc(1), {"bad": 1})
    source.write_text(data)
    with open(source, "rb") as stdin:
        result = subprocess.run([OHLOG, "ingest", "--db", tmp_path / "o.db", "--on-error", "skip",
                                 "--rejects", source, "-"], stdin=stdin, capture_output=True, timeout=60)
    refused(result, data, source)
    assert b"stdin" in result.stderr


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
@pytest.mark.parametrize("exists", [True, False])
def test_rejects_never_writes_into_the_database(tmp_path, run_ohlog, suffix, exists):
    db = tmp_path / "o.db"
    source = tmp_path / "in.ndjson"
    source.write_text(ndjson(doc(1), {"bad": 1}))
    if exists:
        assert run_ohlog("ingest", "--db", db, source, "--on-error", "skip").returncode == 3
        with sqlite3.connect(db) as conn:  # keep the -wal and -shm files there
            keep = sqlite3.connect(db)
            keep.execute("SELECT 1 FROM actions").fetchall()
        assert (tmp_path / f"o.db{suffix}").exists()
    before = (tmp_path / f"o.db{suffix}").read_bytes() if exists else None
    result = run_ohlog("ingest", "--db", db, "--on-error", "skip", "--rejects", f"{db}{suffix}", source)
    assert result.returncode == 2 and result.stderr.count(b"\n") == 1, result.stderr
    assert b"database" in result.stderr
    if exists:
        assert (tmp_path / f"o.db{suffix}").read_bytes() == before
        keep.close()
        conn.close()


def test_rejects_to_dev_null_is_fine(tmp_path, run_ohlog):
    source = tmp_path / "in.ndjson"
    source.write_text(ndjson(doc(1), {"bad": 1}))
    mode = os.stat(os.devnull).st_mode
    result = run_ohlog("ingest", "--db", tmp_path / "o.db", "--on-error", "skip", "--rejects", os.devnull, source)
    assert result.returncode == 3, result.stderr
    # made private only if it is a regular file: as root, a chmod here locked everyone else out
    assert os.stat(os.devnull).st_mode == mode


def test_rejects_to_a_fifo_leaves_its_mode_alone(tmp_path, run_ohlog):
    import threading

    source = tmp_path / "in.ndjson"
    source.write_text(ndjson(doc(1), {"bad": 1}))
    fifo = tmp_path / "rejects.fifo"
    os.mkfifo(fifo, 0o666)
    os.chmod(fifo, 0o666)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = run_ohlog("ingest", "--db", tmp_path / "o.db", "--on-error", "skip", "--rejects", fifo, source)
    reader.join(timeout=30)
    assert result.returncode == 3, result.stderr
    assert b'"bad":1' in received[0]
    assert os.stat(fifo).st_mode & 0o777 == 0o666


@pytest.mark.parametrize("shape", ["ndjson", "array", "pretty"])
def test_big_integers_round_trip_through_ingest_and_query(tmp_path, run_ohlog, shape):
    db = tmp_path / "o.db"
    docs = [doc(BIG[0]), doc(BIG[1])]
    text = {"ndjson": ndjson(*docs), "array": json.dumps(docs),
            "pretty": "".join(json.dumps(d, indent=2) for d in docs)}[shape]
    result = run_ohlog("ingest", "--db", db, "-", input=text)
    assert result.returncode == 0, result.stderr
    assert b"2 actions inserted, 0 duplicates" in result.stderr
    as_json = run_ohlog("query", "--db", db, "--json")
    assert [a["properties"]["x"] for a in json.loads(as_json.stdout)["actions"]] == BIG
    assert b"18446744073709551617" in as_json.stdout and b"e+19" not in as_json.stdout
    as_nl = run_ohlog("query", "--db", db, "--nl")
    assert [json.loads(line)["properties"]["x"] for line in as_nl.stdout.splitlines()] == BIG
    as_csv = run_ohlog("query", "--db", db, "--csv")
    assert b'{""x"":18446744073709551617}' in as_csv.stdout
    assert b'{""x"":18446744073709551618}' in as_csv.stdout


def test_a_rejects_file_fed_back_says_what_its_lines_are(tmp_path, run_ohlog):
    db = tmp_path / "o.db"
    source = tmp_path / "in.ndjson"
    source.write_text(ndjson(doc(1)) + "{not json\n" + ndjson(doc(2, "s2")))
    rejects = tmp_path / "rejects.ndjson"
    first = run_ohlog("ingest", "--db", db, "--on-error", "skip", "--rejects", rejects, source)
    assert first.returncode == 3, first.stderr
    again = run_ohlog("ingest", "--db", db, rejects)
    assert again.returncode == 1
    assert again.stderr.decode() == (
        f"Error: {rejects}:1: a line --rejects wrote for input that was not JSON: "
        "replace the whole line with its ohlog_raw text, fixed\n")


@pytest.mark.parametrize("data", ["", "\n\n  \n", "[]"])
def test_an_input_with_no_records_is_warned_about(tmp_path, run_ohlog, data):
    empty = tmp_path / "empty.json"
    empty.write_text(data)
    result = run_ohlog("ingest", "--db", tmp_path / "o.db", empty)
    assert result.returncode == 0
    assert f"Warning: {empty} holds no records\n".encode() in result.stderr
    assert b"no records" not in run_ohlog("ingest", "--db", tmp_path / "o.db", "-q", empty).stderr


def test_a_database_error_says_what_earlier_inputs_stored(tmp_path, run_ohlog):
    db = tmp_path / "o.db"
    paths = []
    for n in range(1, 6):
        path = tmp_path / f"{n}.ndjson"
        path.write_text(ndjson(doc(n, session=f"s{n}")))
        paths.append(path)
    assert run_ohlog("ingest", "--db", db, paths[0]).returncode == 0
    with sqlite3.connect(db) as conn:  # a real database error, on input 3's session only
        conn.execute("CREATE TRIGGER boom BEFORE INSERT ON actions WHEN NEW.session_id = 's3' "
                     "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END")
    conn.close()
    result = run_ohlog("ingest", "--db", db, *paths[1:])  # inputs 2, 3, 4, 5
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert lines[0].startswith("Stored before the error: 1 input, 1 session: 1 action inserted")
    assert lines[1].startswith(f"Error: {paths[2]}: database error: refused by a trigger")
