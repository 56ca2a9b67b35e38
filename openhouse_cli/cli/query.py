"""``ohlog query``: print the actions that match the filters."""

import click

from ..errors import OhlogError
from . import cli
from .common import db_option, filter_options, format_options, open_target, pop_filters, pop_format


@cli.command()
@db_option
@filter_options
@click.option("-n", "--limit", type=click.IntRange(0, 2**63 - 1), metavar="N",
              help="Show at most N actions")
@click.option("--order", type=click.Choice(["asc", "desc"], case_sensitive=False),
              default="asc", show_default=True, help="By instant; ties in ingestion order")
@format_options
def query(db, limit, order, **options):
    """Print the actions that match the filters, in time order."""
    from ..output import render

    fmt = pop_format(options)
    filters = pop_filters(options)
    store = open_target(db, readonly=True)
    try:
        render(fmt, store, {**filters, "limit": limit, "order": order})
    except OhlogError as ex:
        raise click.ClickException(str(ex)) from None
    finally:
        store.close()
