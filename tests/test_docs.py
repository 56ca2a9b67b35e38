import pathlib
import re

import pytest

from openhouse_cli.cli import cli

README = (pathlib.Path(__file__).parent.parent / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_is_documented(name):
    command = cli.commands[name]
    assert command.help and "\n" not in command.help.strip()
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
