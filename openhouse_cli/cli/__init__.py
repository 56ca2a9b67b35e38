"""The ``ohlog`` command: parse options, call the library, render results.

One module a group of commands; each command only parses, calls the
library and renders. Heavy modules (rich, sqlite-utils, psycopg, the ingest
machinery) are imported inside the commands that use them, so that
``ohlog query`` starts fast.
"""

import os
import re

import click


class _Command(click.Command):
    """A command whose stray argument that names a database file says how to
    name it (sqlite-utils takes the database as an argument: ohlog stats x.db)."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as ex:
            # The arguments click names as extra (not an option's value, such as --db's)
            extra = re.fullmatch(r"Got unexpected extra arguments? \((.*)\)", ex.message)
            stray = [a for a in extra[1].split(" ") if a.endswith((".db", ".sqlite", ".sqlite3"))
                     and os.path.isfile(a)] if extra else []
            if stray:
                ex.message += f" (to read the database {stray[0]}, name it with --db {stray[0]})"
            raise


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
