"""Looking after the store: ``ohlog backup``."""

import time

import click

from ..errors import OhlogError
from . import cli
from .common import db_option, plural, shown


@cli.command()
@click.argument("dest", type=click.Path())
@db_option
@click.option("--force", is_flag=True, help="Overwrite DEST if it exists")
def backup(dest, db, force):
    """Copy the database to DEST (a file, or a directory) safely, even while ingests write.

    \b
    Examples:
        ohlog backup ohlog-copy.db
        ohlog backup ohlog-copy.db --force      # replace an older copy
    """
    from ..backup import backup_database
    from ..paths import db_path

    # A file named "-" or "" is almost never meant, and a SQLite copy is not a stream.
    if dest == "-":
        raise click.BadParameter("a backup is a file, not a stream: give its path (./- for a file "
                                 "named -)", param_hint="'DEST'")
    if not dest:
        raise click.BadParameter("an empty path: give a file or a directory", param_hint="'DEST'")
    started = time.perf_counter()
    try:
        done = backup_database(db_path(db), dest, force=force)
    except OhlogError as ex:
        raise click.ClickException(shown(str(ex))) from None
    actions = "" if done.actions is None else f"{plural(done.actions, 'action')}, "
    click.echo(f"Backed up to {shown(str(done.path))}: {actions}{done.size:,} bytes in "
               f"{time.perf_counter() - started:.2f}s", err=True)
