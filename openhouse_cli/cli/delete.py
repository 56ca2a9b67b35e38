"""``ohlog delete``: remove the actions that match the filters."""

import sys

import click

from ..errors import OhlogError
from . import cli
from .common import Refused, db_option, filter_options, format_options, open_target, \
    plural, pop_filters, warn_unknown


@cli.command()
@db_option
@filter_options
@click.option("--dry-run", is_flag=True,
              help="Only say how many would go (and list them with --nl, --json, --csv or "
                   "--table)")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation")
@click.option("--vacuum", is_flag=True, help="Then give the space back (VACUUM)")
@format_options
def delete(db, dry_run, yes, vacuum, **options):
    """Remove the actions that match the filters (at least one), in one transaction.

    \b
    Examples:
        ohlog delete --user ABC123XYZ --dry-run
        ohlog delete --session XYZ456ABC --type click --dry-run --nl
        ohlog delete --user u-denver --yes
    """
    from ..delete import NoFilter, check_narrowed, count_matching, delete_actions
    from ..delete import vacuum as vacuum_store

    listing = any(options[name] for name in ("format_", "table", "json_", "nl", "csv_"))
    if listing and not dry_run:
        raise click.UsageError("--nl, --json, --csv and --table list what --dry-run would "
                               "delete: add --dry-run")
    fmt = _format(options) if listing else None
    filters = pop_filters(options)
    try:
        check_narrowed(filters)
    except NoFilter as ex:
        raise click.UsageError(str(ex)) from None
    if not dry_run and not yes and not sys.stdin.isatty():
        raise Refused("no terminal to confirm the delete on: add --yes to delete "
                      "without asking")
    store = open_target(db, readonly=dry_run, create=False)  # nothing to delete from a typo
    try:
        warn_unknown(store, db, filters["types"], filters["users"], filters["sessions"])
        if dry_run:
            if fmt:
                from ..output import render

                render(fmt, store, {**filters, "limit": None, "order": "asc"})
            click.echo(f"Would delete {plural(count_matching(store, **filters), 'action')}",
                       err=True)
            return
        if not yes:
            count = count_matching(store, **filters)
            if not count:
                click.echo("Deleted 0 actions", err=True)
                return
            click.confirm(f"Delete {plural(count, 'action')} from {store.name}", abort=True,
                          err=True)
        click.echo(f"Deleted {plural(delete_actions(store, **filters), 'action')}", err=True)
        if vacuum:
            vacuum_store(store)
    except OhlogError as ex:
        raise click.ClickException(str(ex)) from None
    finally:
        store.close()


def _format(options):
    from .common import pop_format

    return pop_format(options)
