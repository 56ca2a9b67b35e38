"""What several commands share: the --db option, filters, output flags, messages."""

import sys
import time

import click

from ..errors import NoDatabase, OhlogError

# Exit codes (README "Exit codes"): 1 is an error, 2 bad usage (click's own).
EXIT_REJECTED = 3  # --on-error skip finished, but some records were rejected


def db_option(fn):
    return click.option(
        "-d",
        "--db",
        type=click.Path(dir_okay=False),
        default=None,
        metavar="PATH|URL",
        help="SQLite file or postgresql:// URL (default: $OHLOG_DB, else ohlog.db in the "
             "app directory)",
    )(fn)


def open_target(db, *, readonly=False, create=None):
    """The store --db names (created if missing, if ``create``: by default unless
    ``readonly``); ClickException if not."""
    from ..paths import ensure_app_dir
    from ..store import open_store
    from ..store.urls import BadURL

    target = db_target(db)
    create = not readonly if create is None else create
    try:
        if create:
            ensure_app_dir(target)
        return open_store(target, create=create, readonly=readonly)
    except BadURL as ex:  # a usage error: exit 2, naming the option
        raise click.BadParameter(str(ex), param_hint="'--db' / $OHLOG_DB") from None
    except NoDatabase as ex:  # with the next step
        import shlex

        raise click.ClickException(f"{ex}: ingest logs into it first"
                                   f" (ohlog ingest FILE --db {shown(shlex.quote(str(target)))})") from None
    except OhlogError as ex:
        raise click.ClickException(str(ex)) from None


def db_target(db):
    """The database --db (else $OHLOG_DB, else the default) names: a path or a
    postgresql:// URL; a usage error for any other URL."""
    from ..paths import db_path

    if isinstance(db, str) and not db.strip():  # found from outside: --db "$DB" with $DB unset
        raise click.BadParameter("an empty name names no database (is a variable unset?)",
                                 param_hint="'--db'")
    return _usage_error_for_urls(db_path, db, "'--db' / $OHLOG_DB")


def checked_store_name(name, param_hint):
    """``name`` (copy's SRC or DEST, backup's DEST) as given; a usage error if it is a URL ohlog cannot use."""
    from ..paths import refuse_other_urls

    _usage_error_for_urls(refuse_other_urls, name, param_hint)
    return name


def _usage_error_for_urls(fn, name, param_hint):
    from ..store.urls import BadURL

    try:
        return fn(name)
    except BadURL as ex:  # a URL ohlog cannot use (paths.refuse_other_urls)
        raise click.BadParameter(str(ex), param_hint=param_hint) from None


class Refused(click.ClickException):
    exit_code = 2  # bad usage, in one line (no usage banner)


def shown(name):
    """A name fit for a one-line message: control characters escaped."""
    return name if name.isprintable() else name.encode("unicode_escape").decode("ascii")


def plural(n, word):
    return f"{n:,} {word}{'' if n == 1 else 's'}"


# ---------------------------------------------------------------------------
# Filters: the same options, with the same rules, on every command that reads


def _text_option(ctx, param, values):
    """The values if each is UTF-8 text, else BadParameter: argv bytes that are
    not UTF-8 arrive as lone surrogates, which no query can use."""
    from ..query import FilterError, check_text

    try:
        for value in (values,) if isinstance(values, str) else values or ():
            check_text(value)
    except FilterError as ex:
        raise click.BadParameter(str(ex)) from None
    return values


def _time_option(ctx, param, value):
    from ..times import TimeError, parse_calendar_word, parse_time_spec

    if value is None:
        return None
    try:
        # one "now" for every time ago in the command, so that --since 2h --until 2h is one instant
        now_us = ctx.meta.setdefault("ohlog.now_us", time.time_ns() // 1000)
        # a calendar word (today, last-week) becomes a unit once --tz is known
        word = parse_calendar_word(_text_option(ctx, param, value), now_us=now_us)
        if word is not None:
            return word
        return parse_time_spec(value, relative=param.name in ("since", "until"), now_us=now_us)
    except TimeError as ex:
        message = str(ex)
        if message.startswith("expected "):  # the forms: the CLI also takes calendar words
            message = message.replace(", got ", f", or {CALENDAR_FORMS}, got ", 1)
        raise click.BadParameter(message) from None


CALENDAR_FORMS = "today, yesterday, this-week, last-week, this-month or last-month"


def _zone_option(ctx, param, value):
    from ..times import TimeError, parse_zone

    try:
        return parse_zone(_text_option(ctx, param, value))
    except TimeError as ex:
        raise click.BadParameter(str(ex)) from None


def _where_option(ctx, param, values):
    from ..query import FilterError, parse_where

    try:
        return tuple(parse_where(value) for value in values)
    except FilterError as ex:
        raise click.BadParameter(str(ex)) from None


def _complete(ctx, param, incomplete):
    # values from the database, through an index (complete.py)
    from ..complete import complete_option

    return complete_option(ctx, param, incomplete)


def complete_zone(ctx, param, incomplete):
    from ..complete import complete_zone as run

    return run(ctx, param, incomplete)


def _time_flag(name, help):
    return click.option(name, callback=_time_option, metavar="TIME", help=help)


_FILTER_OPTIONS = [
    click.option("--user", "users", multiple=True, metavar="ID", callback=_text_option,
                 shell_complete=_complete, help="Only this user's actions (repeatable)"),
    click.option("--session", "sessions", multiple=True, metavar="ID", callback=_text_option,
                 shell_complete=_complete, help="Only this session's actions (repeatable)"),
    click.option("--type", "types", multiple=True, metavar="TYPE", callback=_text_option,
                 shell_complete=_complete,
                 help="Only actions of this type, in any case (repeatable)"),
    _time_flag("--start", "From this time on, inclusive"),
    _time_flag("--end", "Up to this time, inclusive of the unit it names (2018-10-31: all that day)"),
    _time_flag("--date", "Only within the year, month, day, hour, minute or second this names, "
                         "or today, yesterday, this-week, last-week, this-month, last-month "
                         "(a date is read on each action's own clock unless --tz is given; the "
                         "words in --tz, else UTC)"),
    _time_flag("--since", "Like --start, or a time ago: 30m, 2h, 7d, 3mo, 1y; or the start of "
                          "this-week, last-week, this-month, last-month, today, yesterday"),
    _time_flag("--until", "Like --end, or a time ago: 30m, 2h, 7d, 3mo, 1y; or the end of "
                          "this-week, last-week, this-month, last-month, today, yesterday"),
    click.option("--tz", callback=_zone_option, metavar="ZONE", shell_complete=complete_zone,
                 help="Read times without an offset in this zone (IANA name or UTC; without "
                      "it, each action's own clock, as logged)"),
    click.option("--where", multiple=True, callback=_where_option, metavar="KEY=VALUE",
                 help="Property condition; also != > >= < <= (repeatable)"),
]
FILTER_NAMES = ("users", "sessions", "types", "start", "end", "date", "since", "until", "tz",
                "where")


def filter_options(fn):
    """The filters of ``ohlog query``, as options of the decorated command."""
    for option in reversed(_FILTER_OPTIONS):
        fn = option(fn)
    return fn


def resolve_filters(users, sessions, types, start, end, date, since, until, tz, where):
    """The library's filter keywords from the options; UsageError for conflicts."""
    from ..times import CalendarWord, TimeError, calendar_spec, resolve_range

    # Calendar words are read on --tz's clock, else UTC's: never the host's
    start, end, date, since, until = (
        calendar_spec(v, tz) if isinstance(v, CalendarWord) else v
        for v in (start, end, date, since, until)
    )
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
    return dict(users=users, sessions=sessions, types=types, where=where,
                start=span.start, end=span.end, gaps=span.gaps)


def pop_filters(kwargs):
    """Take the filter options out of a command's keyword arguments; resolve them."""
    return resolve_filters(**{name: kwargs.pop(name) for name in FILTER_NAMES})


def holds_actions(store) -> bool:
    """Whether the store holds any action (one index seek)."""
    return store.execute("SELECT 1 FROM actions LIMIT 1").fetchone() is not None


def warn_if_no_actions(store, db, then="ingest logs into it first") -> bool:
    """Say on stderr that the database --db names holds no action, if it
    holds none: a mistyped --db that a failed ingest created otherwise
    answers empty without a word. Whether it said so."""
    if holds_actions(store):
        return False
    import shlex

    from ..store.urls import mask

    target = shown(mask(str(db_target(db))))  # a URL's password is never shown
    click.echo(f"Warning: {target} holds no actions: {then} (ohlog ingest FILE --db {shlex.quote(target)})",
               err=True)
    return True


def warn_unknown(store, db, types, users=(), sessions=()) -> None:
    """Say on stderr which of ``types`` (names as given), ``users`` and
    ``sessions`` no stored action has: a typo otherwise gives an empty answer
    with nothing to say why. Each is one index seek. A database with no
    action at all (--db mistyped into a failed ingest, say) is said instead."""
    from ..query import build_query
    from ..schema import type_key

    if warn_if_no_actions(store, db):
        return
    named: dict[str, str] = {}  # one warning a type, however often and in whatever case it is named
    for kind in types:
        named.setdefault(type_key(kind), kind)
    wanted = [("types", kind, f"the type {kind!r} (ohlog stats lists the types)") for kind in named.values()]
    wanted += [("users", user, f"the user {shown(repr(user))} (user ids match exactly, case"
                " included)") for user in dict.fromkeys(users)]
    wanted += [("sessions", session, f"the session {shown(repr(session))} (session ids match"
                " exactly, case included)") for session in dict.fromkeys(sessions)]
    for name, value, what in wanted:
        sql, params = build_query("1", engine=store.engine, **{name: (value,)}, order=None, limit=1)
        if store.execute(sql, params).fetchone() is None:
            click.echo(f"Warning: no action has {what}", err=True)


# ---------------------------------------------------------------------------
# Output flags


def format_options(fn):
    for option in reversed([
        click.option("--format", "format_",
                     type=click.Choice(["table", "json", "ndjson", "csv"], case_sensitive=False),
                     help="Output format (default: a table on a terminal, else JSON)"),
        click.option("--table", is_flag=True, help="Same as --format table"),
        click.option("--json", "json_", is_flag=True, help="Same as --format json"),
        click.option("--nl", is_flag=True, help="Same as --format ndjson"),
        click.option("--csv", "csv_", is_flag=True, help="Same as --format csv"),
    ]):
        fn = option(fn)
    return fn


def pop_format(kwargs):
    """The output format the flags in ``kwargs`` choose (and take out of it)."""
    from ..output import FormatError, choose_format

    try:
        return choose_format(kwargs.pop("format_"), table=kwargs.pop("table"),
                             json_=kwargs.pop("json_"), nl=kwargs.pop("nl"),
                             csv_=kwargs.pop("csv_"), isatty=sys.stdout.isatty())
    except FormatError as ex:
        raise click.UsageError(str(ex)) from None
