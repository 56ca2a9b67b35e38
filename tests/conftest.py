import json
import pathlib
import subprocess
import sys

import pytest

from openhouse_cli.db import open_db

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
OHLOG = str(pathlib.Path(sys.executable).parent / "ohlog")


@pytest.fixture(autouse=True)
def env_setup(monkeypatch, tmp_path):
    """No test touches a real home directory or database."""
    monkeypatch.setenv("OHLOG_DB", str(tmp_path / "env.db"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def db():
    """A migrated in-memory database."""
    return open_db(":memory:")


@pytest.fixture
def sample_sessions():
    """Every session in tests/fixtures/*.json, by file stem."""
    sessions = {}
    for path in sorted(FIXTURES.glob("*.json")):
        data = json.loads(path.read_text())
        sessions[path.stem] = data if isinstance(data, list) else [data]
    return sessions


@pytest.fixture
def run_ohlog():
    """Run the real ``ohlog`` executable; returns the CompletedProcess."""

    def run(*args, input=None):
        if isinstance(input, str):
            input = input.encode()
        return subprocess.run(
            [OHLOG, *map(str, args)], input=input, capture_output=True,
            stdin=None if input is not None else subprocess.DEVNULL, timeout=120,
        )

    return run
