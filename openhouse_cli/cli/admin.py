"""Looking after the store: ``ohlog backup``."""

import time

import click

from ..errors import OhlogError
from . import cli
from .common import checked_store_name, db_option, db_target, open_target, plural, shown


@cli.command()
@click.argument("dest", type=click.Path())
@click.option("-d", "--db", type=click.Path(dir_okay=False), default=None, metavar="PATH",
              help="SQLite file (default: $OHLOG_DB, else ohlog.db in the app directory)")
@click.option("--force", is_flag=True, help="Overwrite DEST if it exists")
def backup(dest, db, force):
    """Copy the SQLite database to DEST (a file or a directory) safely, even while ingests write.

    For PostgreSQL, use ohlog copy URL FILE.db (or pg_dump).

    \b
    Examples:
        ohlog backup ohlog-copy.db
        ohlog backup ohlog-copy.db --force      # replace an older copy
    """
    from ..backup import backup_database
    from ..store import is_url, mask

    source = db_target(db)
    # SQLite's backup API copies files: a URL (from --db or $OHLOG_DB) would be taken for a path
    if is_url(source):
        raise click.BadParameter(
            f"{shown(mask(source))} is a PostgreSQL database, and backup copies SQLite files: "
            "use ohlog copy URL FILE.db (or pg_dump)",
            param_hint="'--db'" if db else "$OHLOG_DB")
    # A file named "-" or "" is almost never meant, and a SQLite copy is not a stream.
    if dest == "-":
        raise click.BadParameter("a backup is a file, not a stream: give its path (./- for a file "
                                 "named -)", param_hint="'DEST'")
    if not dest:
        raise click.BadParameter("an empty path: give a file or a directory", param_hint="'DEST'")
    checked_store_name(dest, "'DEST'")
    if is_url(dest):
        raise click.BadParameter(f"{shown(mask(dest))} is a PostgreSQL database, and backup writes a"
                                 " SQLite file: use ohlog copy SRC URL", param_hint="'DEST'")
    started = time.perf_counter()
    try:
        done = backup_database(source, dest, force=force)
    except OhlogError as ex:
        raise click.ClickException(shown(str(ex))) from None
    click.echo(f"Backed up to {shown(str(done.path))}: {plural(done.actions, 'action')}, {done.size:,} bytes in "
               f"{time.perf_counter() - started:.2f}s", err=True)


@cli.command(epilog="""SRC and DEST are each a SQLite file or a postgresql:// URL
(postgresql://ohlog@db.example.com/ohlog, or on a Unix socket
postgresql://ohlog@/ohlog?host=/run/postgresql); DEST is created if missing.
Running the same copy again copies nothing twice. The database the other
commands use is $OHLOG_DB, else ohlog.db in the app directory.""")
@click.argument("src")
@click.argument("dest")
@click.option("--batch-size", type=click.IntRange(min=1), metavar="N",
              help="Commit every N actions instead of once at the end")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors")
def copy(src, dest, batch_size, quiet):
    """Copy every action from store SRC to store DEST, skipping those DEST already holds.

    \b
    Examples:
        ohlog copy ohlog.db local.db        # or DEST postgresql://USER@HOST/DB
        ohlog copy local.db ohlog.db        # nothing twice: 0 copied, all duplicates
        ohlog copy ohlog.db big.db --batch-size 100000
    """
    from rich.console import Console

    from ..copy import CopyFailed, copy_actions, count_actions
    from ..progress import count_progress
    from ..store import is_url, mask, open_store
    from ..store.postgres import BadURL, parse_url

    for value, hint in ((src, "'SRC'"), (dest, "'DEST'")):
        if value == "-":
            raise click.BadParameter("a store is a SQLite file or a postgresql:// URL, not a stream "
                                     "(./- for a file named -)", param_hint=hint)
        if not value:
            raise click.BadParameter("an empty path: give a SQLite file or a postgresql:// URL",
                                     param_hint=hint)
        checked_store_name(value, hint)
    try:  # usage errors first, before anything is opened
        for value, hint in ((src, "'SRC'"), (dest, "'DEST'")):
            if is_url(value):
                parse_url(value)
    except BadURL as ex:
        raise click.BadParameter(str(ex), param_hint=hint) from None
    except OhlogError as ex:
        raise click.ClickException(str(ex)) from None
    name = {src: shown(mask(src)), dest: shown(mask(dest))}
    console = Console(stderr=True, quiet=quiet)
    started = time.perf_counter()
    stores = []
    try:
        for target, hint, create in ((src, "'SRC'", False), (dest, "'DEST'", True)):
            try:
                stores.append(open_store(target, create=create, readonly=not create))
            except BadURL as ex:  # an option libpq refused only when connecting
                raise click.BadParameter(str(ex), param_hint=hint) from None
        source, destination = stores
        if not is_url(src) and not is_url(dest) and _same_file(src, dest):
            raise click.BadParameter("SRC and DEST are the same file", param_hint="'DEST'")
        total = count_actions(source) if console.is_terminal and not quiet else None
        with count_progress(console, f"{name[src]} -> {name[dest]}", total) as progress:
            counts = copy_actions(source, destination, batch_size=batch_size, progress=progress)
    except CopyFailed as ex:
        if ex.counts.actions:
            console.print(f"Committed before the error: {_copied(ex.counts, started)}",
                          highlight=False, soft_wrap=True, markup=False)
        raise click.ClickException(shown(str(ex))) from None
    except OhlogError as ex:
        raise click.ClickException(shown(str(ex))) from None
    finally:
        for store in stores:
            store.close()
    console.print(f"Copied {name[src]} to {name[dest]}: {_copied(counts, started)}",
                  highlight=False, soft_wrap=True, markup=False)


def _copied(counts, started):
    elapsed = time.perf_counter() - started
    rate = counts.actions / elapsed if elapsed > 0 else 0
    return (f"{plural(counts.copied, 'action')} copied, {plural(counts.duplicates, 'duplicate')} "
            f"in {elapsed:.2f}s ({rate:,.0f} actions/s)")


def _same_file(a, b):
    import os

    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


@cli.command("rebuild-summaries")
@db_option
def rebuild_summaries(db):
    """Build the summaries the analyses read again, from the actions.

    ohlog keeps them in every write of its own. After another program
    (sqlite3, sqlite-utils, Datasette) has changed the actions, the analyses
    say so and read the actions themselves, which is slower, until this
    has run. It holds other writers off while it runs (about a minute at
    10 million actions).

    \b
    Examples:
        ohlog rebuild-summaries
        ohlog rebuild-summaries --db ohlog.db
    """
    from ..rollups import rebuild_store

    store = open_target(db, create=False)
    started = time.perf_counter()
    try:
        total = rebuild_store(store)
    except Exception as ex:  # ohlog's, or the driver's own (sqlite3, psycopg): one line
        raise click.ClickException(f"Rebuilding the summaries failed: {ex} (nothing was changed)") from None
    finally:
        store.close()
    click.echo(f"Rebuilt the summaries of {plural(total, 'action')} in {time.perf_counter() - started:.2f}s",
               err=True)
