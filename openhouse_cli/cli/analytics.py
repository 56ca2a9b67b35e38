"""The analyses: ``stats``, ``count``, ``active``, ``sessions``, ``timeline``, ``funnel``,
``retention`` and ``paths``. Each parses its options, calls openhouse_cli.analytics
and writes what it returns: a table with a chart on a terminal, JSON in a pipe."""

import collections
import contextlib
import functools
import itertools
import json
import sys

import click

from ..errors import OhlogError
from . import cli
from .common import (db_option, filter_options, format_options, open_target, plural, pop_filters,
                     pop_format, shown, warn_unknown)

NO_MATCH = "No matching actions."
HEADERS = {"type": "Type", "userId": "User", "sessionId": "Session", "hour": "Hour", "day": "Day",
           "week": "Week", "month": "Month"}


def analysis(fn=None, *, check=None, buckets=False, step_options=()):
    """The shared options (--db, the filters, the formats) and the run: ``check``
    the filters (usage errors come before the database is opened), open the store
    read-only, turn library errors into one-line messages, quiet on a closed pipe.
    ``buckets``: the command counts by day, week or hour, on --tz's clock (a
    function of the options: whether this run does).
    ``step_options``: the options (or argument) that hold STEPs."""
    if fn is None:
        return functools.partial(analysis, check=check, buckets=buckets, step_options=step_options)
    @functools.wraps(fn)
    def run(db, **options):
        fmt = pop_format(options)
        clock_zone = options["tz"]
        # The options that gave the start and the end
        bounds = [[name for name in names if options[name]]
                  for names in (("date", "start", "since"), ("date", "end", "until"))]
        filters = pop_filters(options)
        if check:
            check(filters)
        store = open_target(db, readonly=True)
        try:
            # The types of the filters and of the steps, each named once
            steps = [step for name in step_options for step in _as_list(options[name])]
            warn_unknown(store, db, [*filters["types"], *(s.kind for s in steps if s is not None)],
                               filters["users"], filters["sessions"])
            fn(store, filters, fmt, clock_zone, **options)
            _warn_stale(store, db)
            if buckets and (buckets is True or buckets(options)):
                # After the answer, so that an error stays one line
                _warn_two_clocks(filters, bounds, clock_zone, options.get("local"), "local" in options,
                                 _bucket_unit(options))
        except OhlogError as ex:
            # imported here, not with the command: `ohlog query` need not load the analyses
            from ..analytics.counts import SeriesTooLong

            error = click.ClickException(str(ex))
            if isinstance(ex, SeriesTooLong):  # a usage error: the bounds or --by asked for it
                error.exit_code = 2
            raise error from None
        except BrokenPipeError:
            from ..output import _silence

            _silence(sys.stdout)
        finally:
            store.close()

    run = db_option(filter_options(format_options(run)))
    for param in getattr(run, "__click_params__", []) if buckets else []:
        if param.name == "tz":  # here it also sets the clock that buckets are read on
            param.help = ("Read times without an offset, and count hours, days, weeks and "
                          "months, in this zone (IANA name or UTC; without it, times without an "
                          "offset are read on each action's own clock, and buckets are UTC's)")
    return run


def _warn_two_clocks(filters, bounds, zone, local, has_local, unit) -> None:
    """Say so when the bounds and the buckets read different clocks: a bound
    without an offset reads each action's own clock, the buckets UTC's. (A day
    asked for with --date would otherwise show no action, and its actions
    count on other days.)"""
    if zone is not None or local:
        return
    names = list(dict.fromkeys(f"--{name}" for bound, given in zip((filters["start"], filters["end"]), bounds)
                               if bound is not None and not bound.instant for name in given))
    if names:
        click.echo(f"Warning: {' and '.join(names)} without an offset"
                   f" {'read' if len(names) > 1 else 'reads'} each action's own clock, and the"
                   f" {unit}s here are UTC's: add --tz UTC (or a zone) to read both on one clock"
                   + (", or --local to count on each user's own" if has_local else ""), err=True)


def _bucket_unit(options) -> str:
    """The time unit a command counts by: active's --by, retention's --unit, count's time --by; else days."""
    from ..analytics.buckets import UNITS

    for name in ("by", "unit"):
        if isinstance(options.get(name), str):
            return options[name].lower()
    return next((dim for dim in options.get("dims", ()) if dim in UNITS), "day")


def _counts_by_time(options) -> bool:
    from ..analytics.buckets import UNITS

    return any(dim in UNITS for dim in options["dims"])


def _as_list(value):
    """An option's STEPs: a list of them (the callbacks' for several), one, or None."""
    return value if isinstance(value, list) else [value] if value is not None else []


def local_option(fn):
    return click.option("--local", is_flag=True,
                        help="Buckets on each user's own clock, as logged (not --tz's)")(fn)


def limit_option(what, also=""):
    return click.option("-n", "--limit", type=click.IntRange(0, 2**63 - 1), metavar="N",
                        help=f"Show at most N {what} (the first, in the order shown){also}")


def _first(rows, limit):
    """The first ``limit`` of ``rows`` (all without a limit). The rest are
    still read, unseen, for what counts them as they pass (sessions' summary)."""
    if limit is None:
        yield from rows
        return
    count = 0
    for row in rows:
        if count < limit:
            yield row
        count += 1


def _limited_note(shown, total, what):
    if shown >= total:
        return ""
    return f"The first {shown:,} of {plural(total, what)} shown (--limit)." if shown else \
        f"None of {plural(total, what)} shown (--limit 0)."


def _steps(values, name):
    from ..analytics import StepError, parse_step

    try:
        return [parse_step(v) for v in values]
    except StepError as ex:
        raise click.BadParameter(str(ex), param_hint=name) from None


def _funnel_steps(ctx, param, values):
    if len(values) < 2:
        raise click.UsageError("A funnel needs two or more steps: TYPE or TYPE:KEY=VALUE")
    return _steps(values, "STEP")


def _step_option(ctx, param, value):
    return None if value is None else _steps([value], f"'{param.opts[0]}'")[0]


def _duration_option(ctx, param, value):
    from ..analytics import StepError, parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except StepError as ex:
        raise click.BadParameter(str(ex)) from None


def _by_option(ctx, param, values):
    from ..analytics import DimensionError, parse_dimensions

    try:
        return parse_dimensions(values)
    except DimensionError as ex:
        raise click.BadParameter(str(ex)) from None


def _complete_step(ctx, param, incomplete):
    from ..complete import complete_step

    return complete_step(ctx, param, incomplete)


def _complete_by(ctx, param, incomplete):
    from ..complete import complete_dimension

    return complete_dimension(ctx, param, incomplete)


def _clock(zone, local=False):
    from ..analytics import Clock

    return Clock.of(zone, local)



def _emit(fmt, name, items, columns, cells, *, keys, note="", styles=None, csv_rows=None, empty=NO_MATCH):
    """Write ``items`` (dicts) as ``fmt``: JSON ``{name: items}``, one a line, CSV, or a table.
    ``keys``: an item's keys, the CSV header also when there is no item."""
    from ..analytics import render

    if fmt == "json":
        render.write_json(sys.stdout, {name: items})
    elif fmt == "ndjson":
        render.write_ndjson(sys.stdout, items)
    elif fmt == "csv":
        keys = list(items[0]) if items else keys
        render.write_csv(sys.stdout, keys, csv_rows if csv_rows is not None else
                         ([item.get(k) for k in keys] for item in items))
    else:
        render.table(sys.stdout, columns, cells, note=note if items else empty, styles=styles)


@cli.command()
@analysis(buckets=True)
def stats(store, filters, fmt, zone):
    """What is in the database: actions, users, sessions, types, time span, size.

    \b
    Examples:
        ohlog stats
        ohlog stats --json
        ohlog stats --user u-denver --table
    """
    from ..analytics import render, stats as run

    found = run(store, filters, _clock(zone))
    if fmt == "json":
        return render.write_json(sys.stdout, found)
    if fmt == "ndjson":
        return render.write_ndjson(sys.stdout, [found])
    largest = max((t["actions"] for t in found["types"]), default=0)
    _emit(fmt, "types", found["types"], keys=["type", "actions", "users"], columns=[("Type", "left"), ("Actions", "right"),
                                          ("Users", "right"), ("", "left")],
          cells=[[render.visible(t["type"]), render.number(t["actions"]), render.number(t["users"]),
            render.Bar(t["actions"], largest)] for t in found["types"]],
          note=_stats_note(found))


def _stats_note(found):
    from ..analytics import render

    days = found["perDay"]
    size = found["bytes"]
    lines = [f"{plural(found['actions'], 'action')}, {plural(found['users'], 'user')}, "
             f"{plural(found['sessions'], 'session')}",
             f"from {render.visible(found['first'])} to {render.visible(found['last'])}",
             f"actions a day, {days[0]['day']} to {days[-1]['day']}: "
             f"{render.sparkline([d['actions'] for d in days])}" if days else ""]
    if size is not None:
        lines.append(f"database: {size:,} bytes")
    return "\n".join(line for line in lines if line)


@cli.command()
@analysis(buckets=_counts_by_time)
@click.option("--by", "dims", multiple=True, callback=_by_option, metavar="DIM",
              shell_complete=_complete_by,
              help="type, user, session, hour, day, week, month or prop:KEY (repeatable; "
                   "default: type; prop:/a/b is a JSON Pointer, as in --where). A time series is "
                   "zero-filled when crossed with nothing or type only; by user, session or prop:KEY "
                   "only groups with actions show")
@local_option
@limit_option("groups")
def count(store, filters, fmt, zone, dims, local, limit):
    """Actions and distinct users by type, user, session, time bucket or property.

    A session is its user's: session groups show userId and sessionId. A
    property whose KEY is another key of the output (type, day, users...)
    is named prop:KEY.

    \b
    Examples:
        ohlog count --by type
        ohlog count --by day --by type --tz America/Denver
        ohlog count --by prop:pageTo --type navigate --json
    """
    from ..analytics import count as run, render
    from ..analytics.counts import output_keys

    found = run(store, filters, dims, _clock(zone, local))
    groups = found if limit is None else found[:limit]
    names = output_keys(dims)
    largest = max((g["actions"] for g in groups), default=0)
    labels = {n: _property_labels([g[n] for g in groups]) for n, d in zip(names, dims) if d.startswith("prop:")}
    _emit(fmt, "groups", groups, keys=[*names, "actions", "users"], columns=
          [(HEADERS.get(n, n), "left") for n in names] + [("Actions", "right"), ("Users", "right"), ("", "left")],
          cells=[[labels[n][i] if n in labels else render.visible(g[n]) for n in names] + [render.number(g["actions"]),
           render.number(g["users"]), render.Bar(g["actions"], largest)] for i, g in enumerate(groups)],
          note=_limited_note(len(groups), len(found), "group"),
          empty=_limited_note(0, len(found), "group") or NO_MATCH)


def _property_labels(values) -> list[str]:
    """A table's labels for property values: text as it is, other values as
    JSON (null for none), and text that would look like another group's label
    (52 and "52", null and "null") as JSON too, so that no two groups look alike."""
    from ..analytics import render

    def plain(value):
        return "null" if value is None else render.visible(value)

    def quoted(value):
        return render.visible(json.dumps(value, ensure_ascii=False))

    distinct = list({(type(v).__name__, json.dumps(v, sort_keys=True)): v for v in values}.values())
    # Text is quoted if it looks like another label, or could once others are
    # quoted (text holding quotes), or is blank or has spaces at its ends
    shown = collections.Counter(plain(v) for v in distinct)
    quoted_texts = {quoted(v) for v in distinct if isinstance(v, str)}
    labels = {}
    for v in distinct:
        text = plain(v)
        if isinstance(v, str) and (shown[text] > 1 or text in quoted_texts or text.strip() != text or not text):
            text = quoted(v)
        labels[json.dumps(v, sort_keys=True), type(v).__name__] = text
    return [labels[json.dumps(v, sort_keys=True), type(v).__name__] for v in values]


@cli.command()
@analysis(buckets=True)
@click.option("--by", type=click.Choice(["day", "week", "month"], case_sensitive=False),
              default="day", show_default=True,
              help="A row a day, or a week's or month's last day")
@local_option
def active(store, filters, fmt, zone, by, local):
    """Daily, weekly and monthly active users (DAU, WAU, MAU) on each day.

    \b
    Examples:
        ohlog active
        ohlog active --by week --json
    """
    from ..analytics import active as run, render

    by = by.lower()
    rows = run(store, filters, _clock(zone, local), by)
    largest = max((r["mau"] for r in rows), default=0)
    _emit(fmt, by + "s", rows, keys=[by, "dau", "wau", "mau"], columns=[(by.title(), "left"), ("DAU", "right"), ("WAU", "right"),
                                ("MAU", "right"), ("", "left")],
          cells=[[r[by], render.number(r["dau"]), render.number(r["wau"]), render.number(r["mau"]),
            render.Bar(r["dau"], largest)] for r in rows])


@cli.command()
@analysis
@click.option("--split", callback=_duration_option, metavar="GAP",
              help="Split each user's actions at this much inactivity (30m), and at 24 h, "
                   "instead of by sessionId")
@limit_option("sessions", "; the summary still counts every session")
def sessions(store, filters, fmt, zone, split, limit):
    """One row a session: start, end, duration, actions, pages, bounce; and a summary.

    \b
    Examples:
        ohlog sessions
        ohlog sessions --user ABC123XYZ --json
        ohlog sessions --split 30m --limit 20 --table
    """
    from ..analytics import render
    from ..analytics.sessions import Summary, stream_sessions

    summary = Summary()
    found = stream_sessions(store, filters, split, summary)
    with contextlib.closing(found):  # its read ends here, all read or not
        # Without a summary to print, the sessions after the limit need not be read
        rows = (itertools.islice(found, limit) if limit is not None and fmt in ("ndjson", "csv")
                else _first(found, limit))
        if fmt == "json":  # streamed: memory holds a user's sessions (up to 500 users' with --split)
            return render.write_json_stream(sys.stdout, "sessions", rows,
                                            lambda: {"summary": summary.result()})
        if fmt == "ndjson":
            return render.write_ndjson(sys.stdout, rows)
        if fmt == "csv":
            return render.write_csv(sys.stdout, list(SESSION_KEYS), ([r[k] for k in SESSION_KEYS]
                                                                      for r in rows))
        rows = list(rows)
    result = summary.result()
    note = (f"{plural(result['sessions'], 'session')}, median {render.seconds(result['medianSeconds'])}, "
            f"p90 {render.seconds(result['p90Seconds'])}, "
            f"bounce rate {render.percent(result['bounceRate'])}")
    if len(rows) < result["sessions"]:
        note += f"\n{_limited_note(len(rows), result['sessions'], 'session')}"
    _emit(fmt, "sessions", rows, keys=list(SESSION_KEYS), columns=
          [("User", "left"), ("Session", "left"), ("Start", "nowrap"), ("Duration", "right"),
           ("Actions", "right"), ("Pages", "left"), ("Bounce", "nowrap")],
          cells=[[render.visible(r["userId"]), render.visible(r["sessionId"]), render.visible(r["start"]),
            render.seconds(r["durationSeconds"]), render.number(r["actions"]),
            _pages(r), "yes" if r["bounce"] else ""] for r in rows], note=note,
          empty=note if result["sessions"] else NO_MATCH)


SESSION_KEYS = ("userId", "sessionId", "start", "end", "durationSeconds", "actions", "firstPage",
                "lastPage", "bounce")


def _pages(row):
    from ..analytics import render

    if row["firstPage"] is None and row["lastPage"] is None:
        return ""
    return f"{render.visible(row['firstPage'])} → {render.visible(row['lastPage'])}"


def _one_journey(filters):
    if not filters["users"] and not filters["sessions"]:
        raise click.UsageError("Give --session S or --user U")


@cli.command()
@analysis(check=_one_journey)
@limit_option("actions")
def timeline(store, filters, fmt, zone, limit):
    """A user's or session's actions step by step, with the time since the previous one.

    \b
    Examples:
        ohlog timeline --session XYZ456ABC
        ohlog timeline --user u-denver --json
    """
    from ..analytics import render, timeline as run
    found = run(store, filters)
    try:
        # One more than the limit: whether the table must say that some were left out
        actions = list(found if limit is None else itertools.islice(found, limit + 1))
    finally:
        found.close()  # its read ends here, with or without a limit
    more = limit is not None and len(actions) > limit
    actions = actions[:limit] if more else actions
    # Whose each journey is, when there are several (a session id two users
    # share, or --user given twice): each starts its own gaps
    ids = [key for key in ("userId", "sessionId") if len({a[key] for a in actions}) > 1]
    headers = {"userId": ("User", "left"), "sessionId": ("Session", "left")}
    _emit(fmt, "actions", actions,
          keys=["userId", "sessionId", "time", "type", "properties", "gapSeconds"],
          columns=[headers[key] for key in ids]
          + [("Gap", "right"), ("Time", "nowrap"), ("Type", "left"), ("Properties", "left")],
          cells=[[render.visible(a[key]) for key in ids]
           + [("+" + render.seconds(a["gapSeconds"])) if a["gapSeconds"] is not None else "",
              render.visible(a["time"]), render.visible(a["type"]), _details(a["properties"])]
           for a in actions],
          note=f"The first {plural(len(actions), 'step')} shown (--limit): more match." if more else "",
          empty="No action shown (--limit 0): actions match." if more else NO_MATCH)


def _details(properties):
    from ..analytics import render

    if isinstance(properties, dict) and set(properties) >= {"pageFrom", "pageTo"}:
        rest = {k: v for k, v in properties.items() if k not in ("pageFrom", "pageTo")}
        return f"{render.visible(properties['pageFrom'])} → {render.visible(properties['pageTo'])}" + (
            " " + _details(rest) if rest else "")
    if not isinstance(properties, dict):
        return render.visible(properties)
    return " ".join(f"{render.visible(k)}={render.visible(v)}" for k, v in properties.items())


@cli.command()
@analysis(step_options=("steps",))
@click.argument("steps", nargs=-1, metavar="STEP STEP [STEP...]", callback=_funnel_steps,
                shell_complete=_complete_step)
@click.option("--within", callback=_duration_option, default="14d", show_default=True,
              metavar="DURATION", help="Every step within this time of step 1")
@click.option("--order", type=click.Choice(["ordered", "strict", "any"], case_sensitive=False),
              default="ordered", show_default=True,
              help="Steps in order; in order with nothing between; or in any order")
def funnel(store, filters, fmt, zone, steps, within, order):
    """How many users go on from each step to the next (STEP: TYPE or TYPE:KEY=VALUE; "ns:view" for a type holding :).

    \b
    Examples:
        ohlog funnel CLICK VIEW NAVIGATE
        ohlog funnel VIEW NAVIGATE:pageTo=inventory --within 1h
        ohlog funnel CLICK VIEW --order any --json
    """
    from ..analytics import funnel as run, render

    rows = run(store, filters, steps, within, order.lower())
    largest = max((r["users"] for r in rows), default=0)
    # In any order, row k counts the users who did k of the steps, whichever:
    # the table says so rather than naming step k (JSON keeps the contract's names)
    names = ([f"{k} of {len(rows)} steps" for k in range(1, len(rows) + 1)]
             if order.lower() == "any" else [render.visible(r["step"]) for r in rows])
    _emit(fmt, "steps", rows,
          keys=["step", "users", "conversion", "fromPrevious", "medianSecondsFromPrevious"],
          columns=[("Steps done" if order.lower() == "any" else "Step", "left"), ("Users", "right"),
           ("Conversion", "right"), ("From previous", "right"), ("Median time", "right"), ("", "left")],
          cells=[[name, render.number(r["users"]), render.percent(r["conversion"]),
            render.percent(r["fromPrevious"]), render.seconds(r["medianSecondsFromPrevious"]),
            render.Bar(r["users"], largest)] for name, r in zip(names, rows)])


@cli.command()
@analysis(buckets=True, step_options=("born", "back"))
@click.option("--unit", type=click.Choice(["day", "week", "month"], case_sensitive=False),
              default="week", show_default=True, help="The length of a cohort and a period")
@click.option("--periods", type=click.IntRange(1, 1000), default=8, show_default=True,
              help="Periods to show, period 0 included")
@click.option("--born", callback=_step_option, metavar="STEP", shell_complete=_complete_step,
              help="A user's cohort is the period of their first such action (default: any)")
@click.option("--return", "back", callback=_step_option, metavar="STEP", shell_complete=_complete_step,
              help="The action that counts as coming back (default: any)")
@local_option
def retention(store, filters, fmt, zone, unit, periods, born, back, local):
    """First-time cohorts and how many come back in each period after.

    \b
    Examples:
        ohlog retention
        ohlog retention --unit day --periods 3 --json
    """
    from ..analytics import render, retention as run
    from ..analytics.source import span

    rows = run(store, filters, unit=unit.lower(), periods=periods, born=born, back=back,
               clock=_clock(zone, local))
    header = [("Cohort", "left"), ("Users", "right")] + [(str(p), "right") for p in range(periods)]
    cells, styles = [], []
    for r in rows:
        rates = [None if n is None else n / r["users"] for n in r["retained"]]
        cells.append([r["cohort"], render.number(r["users"])] + [render.percent(x) for x in rates])
        styles.append(["", ""] + [render.shade(x) for x in rates])
    csv_rows = ([r["cohort"], r["users"], *r["retained"]] for r in rows)
    if fmt == "csv":
        from ..analytics.render import write_csv

        return write_csv(sys.stdout, ["cohort", "users", *map(str, range(periods))], csv_rows)
    # No cohort while actions match: none of them is a --born action
    empty = (f"No matching action is a --born action ({render.visible(born.text)})."
             if not rows and born is not None and span(store, filters) is not None else NO_MATCH)
    note = _fit_periods(fmt, header, cells, styles) if rows else ""
    _emit(fmt, "cohorts", rows, header, cells, keys=["cohort", "users", "retained"], styles=styles,
          empty=empty, note=note)


def _fit_periods(fmt, header, cells, styles) -> str:
    """Leave out the last periods' columns (in place) that a table would only
    fit by folding its numbers, and say so: many periods at 80 columns
    folded every rate over several lines, unreadable."""
    from ..analytics import render
    from ..table import terminal_width, width_of

    def squeezed(shown):  # some cell would wrap or fold
        sizes = render.widths(width, header[:shown], [row[:shown] for row in cells])[0]
        return any(width_of(cell) > size for row in cells for cell, size in zip(row, sizes))

    width = terminal_width(sys.stdout)
    if fmt != "table" or width is None:  # (no limit: a pipe without $COLUMNS)
        return ""
    shown = len(header)
    while shown > 3 and squeezed(shown):
        shown -= 1
    if shown == len(header):
        return ""
    first, last = shown - 2, len(header) - 3
    del header[shown:]
    for row in (*cells, *styles):
        del row[shown:]
    periods = f"Period {first}" if first == last else f"Periods {first} to {last}"
    return f"{periods} left out at this width: widen the terminal, or use --json or --csv."


def _warn_stale(store, db):
    """After the answer: say that the summaries were bypassed, and how to mend them."""
    from ..analytics.source import stale

    changed = stale(store)
    if changed:
        import shlex

        again = "" if db is None else f" --db {shlex.quote(shown(str(db)))}"
        what = {"insert": "an insert", "update": "an update"}.get(changed, "a delete")
        click.echo(f"Warning: another program changed the actions ({what}) after ohlog last kept"
                   " its summaries: this answer read the actions themselves, which is slower; ohlog"
                   f" rebuild-summaries{again} makes the summaries right again", err=True)


def _warn_unknown_page(store, page):
    """Say on stderr that no NAVIGATE action has ``page``, as --user's typo is
    said: an empty answer alone does not tell a typo from a page nobody left
    for. Looked for only when the answer is empty (it reads every NAVIGATE)."""
    from ..analytics.source import fetch
    from ..query import Where, build_query

    for key in ("pageTo", "pageFrom"):
        sql, params = build_query("1", engine=store.engine, types=("NAVIGATE",),
                                  where=(Where(key, "=", page),), order=None, limit=1)
        if next(fetch(store, sql, params), None) is not None:
            return
    click.echo(f"Warning: no NAVIGATE action has the page {shown(repr(page))} (pages match exactly,"
               " case included)", err=True)


@cli.command()
@analysis
@click.option("--from", "from_page", metavar="PAGE", help="Paths from this page on")
@click.option("--steps", type=click.IntRange(1), default=5, show_default=True,
              help="Pages in a path at most")
@click.option("--top", type=click.IntRange(1), default=20, show_default=True,
              help="Paths to show")
def paths(store, filters, fmt, zone, from_page, steps, top):
    """The commonest page sequences in sessions, from NAVIGATE actions.

    \b
    Examples:
        ohlog paths
        ohlog paths --from communities --steps 3 --json
    """
    from ..analytics import paths as run, render
    from ..analytics.source import span

    rows = run(store, filters, start=from_page, steps=steps, top=top)
    largest = max((r["sessions"] for r in rows), default=0)
    if fmt == "csv":
        return render.write_csv(sys.stdout, ["path", "sessions"],
                                ([r["path"], r["sessions"]] for r in rows))
    empty = NO_MATCH
    if not rows and span(store, filters) is not None:  # actions match, but no path does
        empty = ("No matching NAVIGATE actions." if from_page is None
                 else f"No session's path reaches {render.visible(from_page)}.")
    if not rows and from_page is not None:
        _warn_unknown_page(store, from_page)
    _emit(fmt, "paths", rows, keys=["path", "sessions"],
          columns=[("Path", "left"), ("Sessions", "right"), ("", "left")],
          cells=[[" → ".join(render.visible(p) for p in r["path"]), render.number(r["sessions"]),
            render.Bar(r["sessions"], largest)] for r in rows], empty=empty)
