import pathlib
import re

import pytest

from openhouse_cli.cli import cli

README = (pathlib.Path(__file__).parent.parent / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_is_documented(name):
    command = cli.commands[name]
    assert command.help and "\n" not in command.help.strip().split("\n\n")[0]  # a one-line summary
    assert f"## ohlog {name}" in README
    for param in command.params:
        if param.param_type_name == "option" and param.name != "help":
            assert param.help, f"{name} {param.opts} has no help"


def test_quickstart_test_command_is_what_ci_runs():
    ci = (pathlib.Path(__file__).parent.parent / ".ci" / "run").read_text()
    command = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest"
    assert command in README
    assert command in ci


def test_every_example_file_the_readme_names_is_shipped():
    root = pathlib.Path(__file__).parent.parent
    named = set(re.findall(r"examples/[\w.-]+(?:/[\w.-]+)*", README))
    assert named and sorted(n for n in named if not (root / n.rstrip(".")).exists()) == []


def _examples(command):
    """The command lines of the Examples block at the end of a command's help."""
    help_text = command.help or ""
    assert "\b\n    Examples:\n" in help_text or "\b\nExamples:\n" in help_text, "no examples"
    block = help_text.split("Examples:\n", 1)[1]
    return [line.strip() for line in block.splitlines() if line.strip()]


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_examples_that_run_on_the_bundled_data(name, tmp_path):
    """Two or three examples; each parses, and each but a server runs on examples/."""
    import os
    import shlex
    import shutil
    import subprocess

    from .conftest import OHLOG

    lines = _examples(cli.commands[name])
    assert 2 <= len(lines) <= 3, lines
    root = pathlib.Path(__file__).parent.parent
    shutil.copytree(root / "examples", tmp_path / "examples")
    env = {**os.environ, "OHLOG_DB": str(tmp_path / "ohlog.db"), "HOME": str(tmp_path),
           "PATH": f"{pathlib.Path(OHLOG).parent}:{os.environ['PATH']}"}
    subprocess.run([OHLOG, "ingest", "-q", "examples/"], cwd=tmp_path, env=env, check=True)
    for line in lines:
        words = shlex.split(line, comments=True)
        if words[0] != "ohlog":
            continue  # a client of the command (curl)
        assert words[1] == name
        args = words[2:words.index("<")] if "<" in words else words[2:]  # no redirection
        cli.commands[name].make_context(name, args)  # the options exist and take these values
        if name == "serve":
            continue  # runs until stopped
        done = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True,
                              timeout=60)
        assert done.returncode == 0 and b"Error" not in done.stderr, (line, done.stderr)


def test_ohlog_alone_shows_the_commands_and_where_to_start():
    import subprocess

    from .conftest import OHLOG

    done = subprocess.run([OHLOG], capture_output=True, timeout=60)
    text = done.stdout.decode()
    assert done.returncode == 0 and done.stderr == b""
    assert "ohlog ingest examples/" in text and "ohlog query --table" in text
    for name in cli.commands:
        assert f"  {name} " in text
