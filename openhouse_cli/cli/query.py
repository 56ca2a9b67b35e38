"""``ohlog query``: print the actions that match the filters."""

import click

from ..errors import OhlogError
from . import cli
from .common import (_zone_option, db_option, filter_options, format_options, open_target,
                     pop_filters, pop_format)


def _fields_option(ctx, param, value):
    from ..fields import FieldsError, parse_fields

    if value is None:
        return None
    try:
        return parse_fields(value)
    except FieldsError as ex:
        raise click.BadParameter(str(ex)) from None


@cli.command()
@db_option
@filter_options
@click.option("-n", "--limit", type=click.IntRange(0, 2**63 - 1), metavar="N",
              help="Show at most N actions")
@click.option("--order", type=click.Choice(["asc", "desc"], case_sensitive=False),
              default="asc", show_default=True, help="By instant; ties in ingestion order")
@format_options
@click.option("--fields", callback=_fields_option, metavar="NAMES",
              help="With --json, --nl or --csv: print these fields, in this order (userId, "
                   "sessionId, time, type, properties, utc, local, offset, properties.KEY)")
@click.option("--show-tz", callback=_zone_option, metavar="ZONE",
              help="The table shows every time in this zone (IANA name or UTC)")
def query(db, limit, order, fields, show_tz, **options):
    """Print the actions that match the filters, in time order.

    \b
    Examples:
        ohlog query --user ABC123XYZ --type click --table
        ohlog query --date 2018-10-18 --tz America/Denver --nl
        ohlog query --fields userId,utc,type,properties.locationX --csv
    """
    from ..output import FormatError, check_format, render

    fmt = pop_format(options)
    filters = pop_filters(options)
    try:
        check_format(fmt, fields=fields, show_tz=show_tz)
    except FormatError as ex:
        raise click.UsageError(str(ex)) from None
    store = open_target(db, readonly=True)
    try:
        render(fmt, store, {**filters, "limit": limit, "order": order}, fields=fields,
               show_tz=show_tz)
    except OhlogError as ex:
        raise click.ClickException(str(ex)) from None
    finally:
        store.close()
