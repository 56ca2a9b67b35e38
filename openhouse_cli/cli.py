"""The ``ohlog`` command: parse options, call the library, render results.

Heavy modules (rich, sqlite-utils, the ingest machinery) are imported inside
the commands that use them, so that ``ohlog query`` starts fast.
"""

import sys
import time

import click

from .errors import OhlogError
from .paths import db_path, ensure_app_dir

# Exit codes (README "Exit codes"): 1 is an error, 2 bad usage (click's own).
EXIT_REJECTED = 3  # --on-error skip finished, but some records were rejected

INPUT_SUFFIXES = (".json", ".ndjson", ".jsonl", ".gz")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ohlog")
def cli():
    """Ingest user-activity logs into SQLite and query them from the shell."""


def db_option(fn):
    return click.option(
        "-d",
        "--db",
        type=click.Path(dir_okay=False),
        default=None,
        help="Database file (default: $OHLOG_DB, else ohlog.db in the app directory)",
    )(fn)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, allow_dash=True))
@db_option
@click.option(
    "--on-error",
    type=click.Choice(["fail", "skip"]),
    default="fail",
    show_default=True,
    help="On a bad record: roll back its input and stop, or store the rest and report it",
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False),
    help="With --on-error skip: write rejected records here as NDJSON, each with its error",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="Commit every N sessions instead of once an input (for endless streams)",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors")
def ingest(paths, db, on_error, rejects, batch_size, quiet):
    """Load session logs (JSON, NDJSON, arrays, .gz; - for stdin) into the database."""
    from rich.console import Console

    from .db import open_db
    from .ingest import Counts, IngestFailed, StoreFailed, ingest_input, reject_line, rejects_conflict
    from .progress import ingest_progress

    if rejects is not None and on_error != "skip":
        raise click.UsageError("--rejects needs --on-error skip")
    inputs = _expand_inputs(paths)
    console = Console(stderr=True, quiet=quiet)
    path = db_path(db)
    total = Counts()
    conflict = rejects is not None and rejects_conflict(rejects, inputs, path)
    if conflict:
        raise _Refused(f"--rejects {_shown(rejects)} is {conflict}: write the rejects to another file")

    # Created even when nothing is rejected, so that no stale file misleads
    rejects_file = _private_file(rejects) if rejects is not None else None

    def on_reject(record, error):
        console.print(f"Rejected {error}", highlight=False, soft_wrap=True, markup=False)
        if rejects_file is not None:
            rejects_file.write(reject_line(record, error))

    started = time.perf_counter()
    try:
        ensure_app_dir(path)
        database = open_db(path)
        for name in inputs:
            with _open(name) as fp, ingest_progress(console, _shown(name), fp) as progress:
                counts = ingest_input(
                    database,
                    fp,
                    _shown(name),
                    on_error=on_error,
                    batch_size=batch_size,
                    on_reject=on_reject,
                    progress=progress,
                )
            total.add(counts)
            if not counts.sessions and not counts.rejected:
                console.print(f"Warning: {_shown(name)} holds no records", highlight=False,
                              soft_wrap=True, markup=False)
    except (IngestFailed, StoreFailed) as ex:
        total.add(ex.counts)
        _stored_before(console, total, started)
        raise click.ClickException(str(ex)) from None
    except OhlogError as ex:
        _stored_before(console, total, started)
        raise click.ClickException(str(ex)) from None
    except OSError as ex:
        _stored_before(console, total, started)
        raise click.ClickException(f"{_shown(str(ex.filename or 'input'))}: {ex.strerror or ex}") from None
    finally:
        if rejects_file is not None:
            rejects_file.close()
    console.print(_summary(total, started), highlight=False, soft_wrap=True)
    if total.rejected:
        sys.exit(EXIT_REJECTED)


@cli.command()
@click.argument("dest", type=click.Path())
@db_option
@click.option("--force", is_flag=True, help="Overwrite DEST if it exists")
def backup(dest, db, force):
    """Copy the database to DEST (a file, or a directory) safely, even while ingests write."""
    from .backup import backup_database

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
        raise click.ClickException(_shown(str(ex))) from None
    actions = "" if done.actions is None else f"{_plural(done.actions, 'action')}, "
    click.echo(f"Backed up to {_shown(str(done.path))}: {actions}{done.size:,} bytes in "
               f"{time.perf_counter() - started:.2f}s", err=True)


def _expand_inputs(paths):
    """Paths as given, directories expanded to the log files inside them."""
    import pathlib

    if not paths:
        if sys.stdin.isatty():
            raise click.UsageError("Give one or more files, or - to read stdin")
        return ["-"]
    inputs = []
    for path in paths:
        if path != "-" and pathlib.Path(path).is_dir():
            found = sorted(
                str(p) for p in pathlib.Path(path).rglob("*")
                if p.is_file() and p.name.endswith(INPUT_SUFFIXES)
            )
            if not found:
                raise click.UsageError(f"No .json, .ndjson, .jsonl or .gz files in {path}")
            inputs.extend(found)
        else:
            inputs.append(path)
    return inputs


def _stored_before(console, total, started):
    """Say what the inputs before a failed one stored: they stay committed."""
    if total.inputs:
        console.print(f"Stored before the error: {_summary(total, started)}",
                      highlight=False, soft_wrap=True)


class _Refused(click.ClickException):
    exit_code = 2  # bad usage, in one line (no usage banner)


def _shown(name):
    """A file name fit for a one-line message: control characters escaped."""
    return name if name.isprintable() else name.encode("unicode_escape").decode("ascii")


def _private_file(path):
    """Open ``path`` for writing, readable by its owner only: rejects hold user records."""
    import os

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as ex:
        raise click.ClickException(f"Cannot write {_shown(path)}: {ex.strerror}") from None
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb")


def _open(name):
    if name == "-":
        import contextlib

        return contextlib.nullcontext(sys.stdin.buffer)
    return open(name, "rb")


def _summary(counts, started):
    elapsed = time.perf_counter() - started
    rate = counts.actions / elapsed if elapsed > 0 else 0
    return (
        f"{_plural(counts.inputs, 'input')}, {_plural(counts.sessions, 'session')}: "
        f"{_plural(counts.inserted, 'action')} inserted, {_plural(counts.duplicates, 'duplicate')}, "
        f"{counts.rejected:,} rejected in {elapsed:.2f}s ({rate:,.0f} actions/s)"
    )


def _plural(n, word):
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _text_option(ctx, param, values):
    """The values if each is UTF-8 text, else BadParameter: argv bytes that are
    not UTF-8 arrive as lone surrogates, which no query can use."""
    from .query import FilterError, check_text

    try:
        for value in (values,) if isinstance(values, str) else values or ():
            check_text(value)
    except FilterError as ex:
        raise click.BadParameter(str(ex)) from None
    return values


def _time_option(ctx, param, value):
    from .times import TimeError, parse_time_spec

    if value is None:
        return None
    try:
        # one "now" for every time ago in the command, so that --since 2h --until 2h is one instant
        now_us = ctx.meta.setdefault("ohlog.now_us", time.time_ns() // 1000)
        return parse_time_spec(_text_option(ctx, param, value),
                               relative=param.name in ("since", "until"), now_us=now_us)
    except TimeError as ex:
        raise click.BadParameter(str(ex)) from None


def _zone_option(ctx, param, value):
    from .times import TimeError, parse_zone

    try:
        return parse_zone(_text_option(ctx, param, value))
    except TimeError as ex:
        raise click.BadParameter(str(ex)) from None


def _where_option(ctx, param, values):
    from .query import FilterError, parse_where

    try:
        return tuple(parse_where(value) for value in values)
    except FilterError as ex:
        raise click.BadParameter(str(ex)) from None


def _time_flag(name, help):
    return click.option(name, callback=_time_option, metavar="TIME", help=help)


@cli.command()
@db_option
@click.option("--user", "users", multiple=True, metavar="ID", callback=_text_option,
              help="Only this user's actions (repeatable)")
@click.option("--session", "sessions", multiple=True, metavar="ID", callback=_text_option,
              help="Only this session's actions (repeatable)")
@click.option("--type", "types", multiple=True, metavar="TYPE", callback=_text_option,
              help="Only actions of this type, in any case (repeatable)")
@_time_flag("--start", "From this time on, inclusive")
@_time_flag("--end", "Up to this time, inclusive of the unit it names (2018-10-31: all that day)")
@_time_flag("--date", "Only within the year, month, day, hour, minute or second this names")
@_time_flag("--since", "Like --start, or a time ago: 30m, 2h, 7d, 3mo, 1y")
@_time_flag("--until", "Like --end, or a time ago: 30m, 2h, 7d, 3mo, 1y")
@click.option("--tz", callback=_zone_option, metavar="ZONE",
              help="Read times without an offset in this zone (IANA name or UTC)")
@click.option("--where", multiple=True, callback=_where_option, metavar="KEY=VALUE",
              help="Property condition; also != > >= < <= (repeatable)")
@click.option("-n", "--limit", type=click.IntRange(0, 2**63 - 1), metavar="N",
              help="Show at most N actions")
@click.option("--order", type=click.Choice(["asc", "desc"], case_sensitive=False),
              default="asc", show_default=True, help="By instant; ties in ingestion order")
@click.option("--format", "format_",
              type=click.Choice(["table", "json", "ndjson", "csv"], case_sensitive=False),
              help="Output format (default: a table on a terminal, else JSON)")
@click.option("--table", is_flag=True, help="Same as --format table")
@click.option("--json", "json_", is_flag=True, help="Same as --format json")
@click.option("--nl", is_flag=True, help="Same as --format ndjson")
@click.option("--csv", "csv_", is_flag=True, help="Same as --format csv")
def query(db, users, sessions, types, start, end, date, since, until, tz, where, limit, order,
          format_, table, json_, nl, csv_):
    """Print the actions that match the filters, in time order."""
    from .output import FormatError, choose_format, render
    from .query import open_for_query
    from .times import TimeError, resolve_range

    try:
        fmt = choose_format(format_, table=table, json_=json_, nl=nl, csv_=csv_,
                            isatty=sys.stdout.isatty())
    except FormatError as ex:
        raise click.UsageError(str(ex)) from None
    if date and (start or end or since or until):
        raise click.UsageError("Use --date alone, or --start/--since and --end/--until")
    if start and since:
        raise click.UsageError("Use just one of --start or --since")
    if end and until:
        raise click.UsageError("Use just one of --end or --until")
    names = ("--date", "--date") if date else ("--start" if start else "--since",
                                                 "--end" if end else "--until")
    try:
        span = resolve_range(date or start or since, date or end or until, tz=tz, names=names)
    except TimeError as ex:
        raise click.UsageError(str(ex)) from None
    filters = dict(users=users, sessions=sessions, types=types, where=where, limit=limit,
                   order=order, start=span.start, end=span.end, gaps=span.gaps)
    try:
        render(fmt, open_for_query(db_path(db)), filters)
    except OhlogError as ex:
        raise click.ClickException(str(ex)) from None


@cli.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; beyond loopback, set a token")
@click.option("--port", type=click.IntRange(0, 65535), default=5000, show_default=True,
              help="Port to listen on")
@click.option("--token", envvar="OHLOG_TOKEN", metavar="TOKEN",
              help="Require Authorization: Bearer TOKEN (default: $OHLOG_TOKEN)")
@click.option("--max-body", type=click.IntRange(min=1), default=1 << 20, show_default=True,
              metavar="BYTES", help="Largest request body; larger ones get 413")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes")
def serve(db, host, port, token, max_body, workers):
    """Serve the logging API over HTTP: POST /api/log and GET /api/log/get."""
    from .server import exposure_warning, serve as run_server

    warning = exposure_warning(host, token)
    if warning:
        click.echo(warning, err=True)
    path = db_path(db)
    try:
        ensure_app_dir(path)
        run_server(path, host=host, port=port, token=token or None, max_body=max_body,
                   workers=workers)
    except OhlogError as ex:
        raise click.ClickException(str(ex)) from None
