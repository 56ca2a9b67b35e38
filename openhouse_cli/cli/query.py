"""``ohlog query``: print the actions that match the filters."""

import click

from ..errors import OhlogError
from . import cli
from .common import (_zone_option, complete_zone, db_option, filter_options, format_options, open_target,
                     pop_filters, pop_format, warn_unknown)


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
              help="Print these fields, in this order, as JSON (or --nl, --csv) (userId, "
                   "sessionId, time, type, properties, utc, local, offset, properties.KEY)")
@click.option("--show-tz", callback=_zone_option, metavar="ZONE", shell_complete=complete_zone,
              help="The table shows every time in this zone (IANA name or UTC); "
                   "draws the table, in a pipe too")
@click.option("-f", "--follow", is_flag=True,
              help="Then print each new matching action as it is committed, until Ctrl-C "
                   "(a table on a terminal, else NDJSON; with -n N, the last N stored first)")
def query(db, limit, order, fields, show_tz, follow, **options):
    """Print the actions that match the filters, in time order.

    \b
    Examples:
        ohlog query --user ABC123XYZ --type click --table
        ohlog query --date 2018-10-18 --tz America/Denver --nl
        ohlog query --fields userId,utc,type,properties.locationX --csv
    """
    from ..output import FormatError, check_format, render

    given = any(options[name] for name in ("format_", "table", "json_", "nl", "csv_"))
    if follow:
        fmt = _follow_format(options, order, fields)
    else:
        fmt = pop_format(options)
    if not given:  # an option that only one format takes chooses it, on a terminal or not
        if show_tz is not None and fields is None:
            fmt = "table"
        elif fields is not None and fmt == "table":
            fmt = "ndjson" if follow else "json"
    filters = pop_filters(options)
    try:
        check_format(fmt, fields=fields, show_tz=show_tz)
    except FormatError as ex:
        raise click.UsageError(str(ex)) from None
    store = open_target(db, readonly=True)
    if follow:
        _follow(store, fmt, {**filters, "limit": limit}, fields, show_tz)
        return
    try:
        warn_unknown(store, db, filters["types"], filters["users"], filters["sessions"])
        render(fmt, store, {**filters, "limit": limit, "order": order}, fields=fields,
               show_tz=show_tz)
    except OhlogError as ex:
        raise click.ClickException(str(ex)) from None
    finally:
        store.close()


def _follow_format(options, order, fields):
    """The format of --follow: a table on a terminal (unless --fields chooses
    what to print), else NDJSON, unless a flag says otherwise; a usage error
    for what cannot stream."""
    given = any(options[name] for name in ("format_", "table", "json_", "nl", "csv_"))
    fmt = pop_format(options)
    if not given and (fmt == "json" or fields is not None):
        fmt = "ndjson"
    if fmt == "json":
        raise click.UsageError("--follow cannot close a JSON array: use --nl (one action a line)")
    if order.lower() != "asc":
        raise click.UsageError("--follow prints new actions as they come: leave out --order desc")
    return fmt


class _Terminated(Exception):
    """SIGTERM (kill, timeout, systemd, docker stop) to a follower."""


def _terminate(signum, frame):
    raise _Terminated


def _follow(store, fmt, filters, fields, show_tz):
    import signal
    import sys

    from ..follow import follow, reader_gone
    from ..output import follow_table, follow_writer

    # Ended as Ctrl-C ends it, closing the database (found from outside: a
    # SIGTERM left the -wal and -shm files behind, and a death by signal)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        if fmt == "table":
            write = follow_table(sys.stdout, show_tz)
        else:
            write = follow_writer(fmt, fields, sys.stdout.buffer)
        for batch in follow(store, stopped=lambda: reader_gone(sys.stdout),
                            caught_up=getattr(write, "start", None), **filters):
            write(batch)
    except (KeyboardInterrupt, _Terminated, BrokenPipeError):
        pass  # the way a follower ends: quietly, exit 0
    except OhlogError as ex:
        raise click.ClickException(str(ex)) from None
    finally:
        _quiet_stdout()
        store.close()


def _quiet_stdout():
    # a closed pipe must not fail again at the flush on exit
    from ..output import _silence
    import sys

    try:
        sys.stdout.flush()
    except (BrokenPipeError, OSError, ValueError):
        _silence(sys.stdout)
