"""Every console example in the README, run on what examples/ ships, prints what it shows.

The convention (also in the README, under Development):

- A ```console block is an example. Each line starting with ``$ `` is a command
  (a line ending with ``\\`` continues on the next); the lines after it, up to the
  next command, are what it prints: stdout and stderr together, as a terminal
  shows them. Blocks may be indented (inside a list item).
- Each block runs on its own, in a fresh directory holding a copy of examples/,
  with ``ohlog`` on PATH, ``OHLOG_DB=ohlog.db``, ``HOME`` in that directory and
  ``COLUMNS=120``; each command line is run by ``bash -c``. The database is the
  one ``ohlog ingest examples/`` builds, unless the line before the block is
  ``<!-- readme-test: no database -->`` (it starts with none). The commands of
  a block share that directory and database, in order.
- ``<!-- readme-test: not run: REASON -->`` before a block leaves it out (a
  server, a package install): the test reports it as skipped with the reason.
- Compared after normalising both sides: trailing spaces and trailing blank
  lines are dropped, and durations (``0.01s``), rates (``296 actions/s``) and
  byte counts (``131,072 bytes``, which follow SQLite's version and the schema)
  become ``<N>``.
- The quickstart's bash one-liner is run too: its ``.venv/bin/ohlog`` commands,
  in a directory holding examples/ and no database, must print the ```text
  block that follows it.
"""

import os
import pathlib
import re
import shutil
import subprocess
from dataclasses import dataclass, field

import pytest

from .conftest import OHLOG

ROOT = pathlib.Path(__file__).parent.parent
README = ROOT / "README.md"
EXAMPLES = ROOT / "examples"

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
DIRECTIVE = re.compile(r"^\s*<!--\s*readme-test:\s*(?P<what>.*?)\s*-->\s*$")
NOT_RUN = "not run:"
NO_DATABASE = "no database"


@dataclass
class Block:
    line: int  # of the opening fence, 1-based
    info: str
    lines: list = field(default_factory=list)
    directive: str = None
    section: str = ""


def blocks(text):
    """Every fenced block of ``text``, with the directive comment just above it."""
    found, current, fence, indent, section = [], None, "", 0, ""
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if current is None:
            if line.startswith("## "):
                section = line[3:].strip()
            opening = FENCE.match(line)
            if opening:
                fence, indent = opening["fence"], len(opening["indent"])
                current = Block(number, opening["info"].strip(), section=section)
                above = next((lines[i] for i in range(number - 2, -1, -1) if lines[i].strip()), "")
                if DIRECTIVE.match(above):
                    current.directive = DIRECTIVE.match(above)["what"]
        elif line.strip() == fence or (line.strip().startswith(fence[0] * len(fence))
                                       and not line.strip().strip(fence[0])):
            found.append(current)
            current = None
        else:
            # Drop the fence's indentation (a block inside a list item)
            current.lines.append(line[indent:] if line[:indent].strip() == "" else line)
    assert current is None, f"README.md:{current.line}: a code block is never closed"
    return found


@dataclass
class Step:
    command: str
    expected: list


def steps(block):
    """The commands of a console block, each with the lines it shows."""
    result, lines = [], iter(block.lines)
    for line in lines:
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\"):
                command = command[:-1] + "\n" + next(lines, "")
            result.append(Step(command, []))
        else:
            assert result or not line.strip(), (
                f"README.md:{block.line}: output before any '$ ' command: {line!r}")
            if result:
                result[-1].expected.append(line)
    return result


def normalise(text):
    text = re.sub(r"\d[\d,]*(?:\.\d+)?s\b", "<N>s", text)  # durations: 0.01s
    text = re.sub(r"\d[\d,]*(?:\.\d+)? (\w+)/s\b", r"<N> \1/s", text)  # rates: 296 actions/s
    text = re.sub(r"\d[\d,]* bytes\b", "<N> bytes", text)  # file sizes
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


ALL_BLOCKS = blocks(README.read_text())
CONSOLE = [b for b in ALL_BLOCKS if b.info == "console"]


def _param(block):
    first = next((s.command for s in steps(block)), "")
    marks = ()
    if block.directive and block.directive.startswith(NOT_RUN):
        marks = pytest.mark.skip(reason=block.directive[len(NOT_RUN):].strip())
    return pytest.param(block, id=f"README.md:{block.line}:{first[:40]}", marks=marks)


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """A directory holding a copy of examples/ and the database ``ohlog ingest examples/`` builds."""
    template = tmp_path_factory.mktemp("readme-template")
    shutil.copytree(EXAMPLES, template / "examples")
    proc = subprocess.run([OHLOG, "ingest", "-q", "--db", "ohlog.db", "examples/"], cwd=template,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return template


def workspace(tmp_path, built, database):
    work = tmp_path / "work"
    if database:
        shutil.copytree(built, work)
    else:
        work.mkdir()
        shutil.copytree(built / "examples", work / "examples")
    (work / "home").mkdir()
    env = {key: value for key, value in os.environ.items()
           if key not in ("FORCE_COLOR", "NO_COLOR", "LINES", "TZ")}
    env.update(PATH=f"{pathlib.Path(OHLOG).parent}{os.pathsep}{env.get('PATH', '')}",
               OHLOG_DB="ohlog.db", HOME=str(work / "home"), COLUMNS="120",
               PYTHONUNBUFFERED="1")
    return work, env


def run(command, work, env):
    proc = subprocess.run(["bash", "-c", command], cwd=work, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    return proc.stdout


@pytest.mark.parametrize("block", [_param(b) for b in CONSOLE])
def test_console_example(block, built, tmp_path):
    assert block.directive in (None, NO_DATABASE), (
        f"README.md:{block.line}: unknown directive {block.directive!r}")
    examples = steps(block)
    assert examples, f"README.md:{block.line}: a console block with no '$ ' command"
    work, env = workspace(tmp_path, built, database=block.directive != NO_DATABASE)
    for step in examples:
        shown = run(step.command, work, env)
        assert normalise(shown) == normalise("\n".join(step.expected)), (
            f"README.md:{block.line}: `$ {step.command}` printed:\n{shown}")


def test_quickstart(built, tmp_path):
    quick = [b for b in ALL_BLOCKS if b.section == "Quickstart"]
    start = next(i for i, b in enumerate(quick) if ".venv/bin/ohlog" in "\n".join(b.lines))
    commands = [part.strip()[len(".venv/bin/"):] for part in " ".join(quick[start].lines).split("&&")
                if part.strip().startswith(".venv/bin/ohlog ")]
    assert [c.split()[:2] for c in commands] == [["ohlog", "ingest"], ["ohlog", "query"]]
    output = quick[start + 1]
    assert output.info == "text", "the quickstart's one-liner is followed by what it prints"
    work, env = workspace(tmp_path, built, database=False)
    shown = "".join(run(command, work, env) for command in commands)
    assert normalise(shown) == normalise("\n".join(output.lines)), shown


def test_every_shell_example_is_a_console_block():
    """A '$ ' line anywhere else would be an example this test never runs."""
    elsewhere = [f"README.md:{b.line}" for b in ALL_BLOCKS
                 if b.info != "console" and any(line.startswith("$ ") for line in b.lines)]
    fenced = {b.line + k + 1 for b in ALL_BLOCKS for k in range(len(b.lines))}
    elsewhere += [f"README.md:{n}" for n, line in enumerate(README.read_text().splitlines(), 1)
                  if n not in fenced and re.match(r"^ {4,}\$ ", line)]
    assert elsewhere == []


def test_every_directive_sits_on_a_console_block():
    attached = {b.line for b in CONSOLE if b.directive}
    text = README.read_text().splitlines()
    for number, line in enumerate(text, 1):
        if DIRECTIVE.match(line):
            after = next(n for n in range(number + 1, len(text) + 1) if text[n - 1].strip())
            assert after in attached, f"README.md:{number}: a readme-test directive not just above a console block"
            what = DIRECTIVE.match(line)["what"]
            assert what == NO_DATABASE or what.startswith(NOT_RUN), f"README.md:{number}: {what!r}"
