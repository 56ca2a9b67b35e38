"""The ``ohlog`` command: parse options, call the library, render results.

One module a group of commands; each command only parses, calls the
library and renders. Heavy modules (rich, sqlite-utils, psycopg, the ingest
machinery) are imported inside the commands that use them, so that
``ohlog query`` starts fast.
"""

import os
import shlex
import re

import click


class _Command(click.Command):
    """A command whose stray argument that names a database file says how to
    name it (sqlite-utils takes the database as an argument: ohlog stats x.db)."""

    def parse_args(self, ctx, args):
        given_args = list(args)
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as ex:
            # The arguments click names as extra (not an option's value, such as --db's)
            extra = re.fullmatch(r"Got unexpected extra arguments? \((.*)\)", ex.message)
            given = self._positional(ctx, given_args) if extra else []
            databases = [a for a in given if a.endswith((".db", ".sqlite", ".sqlite3")) and os.path.isfile(a)]
            # A log named to a reader (ohlog query session.json): it reads the database
            logs = [a for a in given if a not in databases and (os.path.isfile(a) or os.path.isdir(a))]
            if databases:
                ex.message += f" (to read the database {databases[0]}, name it with --db {databases[0]})"
            elif logs and ctx.command.name != "ingest":
                ex.message += (f" ({ctx.command.name} reads the database: load {logs[0]} into it first"
                               f" with ohlog ingest {shlex.quote(logs[0])})")
            raise


    def _positional(self, ctx, args):
        """The arguments that are no option's value: the extra ones, for a
        command that takes none (a name may hold spaces)."""
        try:
            return self.make_parser(ctx).parse_args(args=args)[1]
        except click.UsageError:
            return []


class _Group(click.Group):
    command_class = _Command


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]},
             invoke_without_command=True)
@click.version_option(package_name="ohlog")
@click.pass_context
def cli(ctx):
    """Ingest user-activity logs into SQLite or PostgreSQL and query them from the shell.

    \b
    Start with these two:
        ohlog ingest examples/      load the bundled example logs
        ohlog query --table         show what is stored
    Each command's --help has examples: ohlog query --help
    """
    # No command: the help, as a normal answer (exit 0), not a usage error
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


# The commands register themselves on ``cli``
from . import admin, analytics, delete, ingest, query, serve  # noqa: E402,F401
