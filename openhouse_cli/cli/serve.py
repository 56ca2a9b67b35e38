"""``ohlog serve``: the logging API over HTTP, on the same store."""

import click

from ..errors import OhlogError
from . import cli
from .common import db_option, db_target, open_target, warn_if_no_actions


def _origins(ctx, param, values):
    if not values:
        return ()
    from ..server.cors import normalize_origin

    try:
        return tuple(normalize_origin(value) for value in values)
    except ValueError as ex:
        raise click.BadParameter(str(ex)) from None


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
@click.option("--allow-origin", "allow_origins", multiple=True, metavar="ORIGIN",
              envvar="OHLOG_ALLOW_ORIGIN", callback=_origins,
              help="Let pages on ORIGIN (https://host[:port]) call the API from a browser; "
                   "pages on other origins are refused. Repeatable")
@click.option("--public-post", is_flag=True, envvar="OHLOG_PUBLIC_POST",
              help="POST /api/log needs no token; --token still guards reads")
@click.option("--max-rows", type=click.IntRange(min=1), metavar="N",
              help="Answer a GET with at most N actions, and a next link to the rest")
@click.option("--create", is_flag=True,
              help="Start a new, empty SQLite database if none is at --db (else refused)")
def serve(db, host, port, token, max_body, workers, allow_origins, public_post, max_rows, create):
    """Serve the logging API over HTTP: POST /api/log and GET /api/log/get.

    \b
    Examples:
        ohlog serve --db logs.db --create
        ohlog serve --port 8080 --token "$OHLOG_TOKEN" --max-rows 1000
        curl -s -H 'Content-Type: application/json' --data @examples/sample_log.json localhost:5000/api/log
    """
    from ..paths import ensure_app_dir
    from ..server import exposure_warning, serve as run_server

    warning = exposure_warning(host, token)
    if warning:
        click.echo(warning, err=True)
    if public_post and not token:  # nothing needs a token: the flag would change nothing
        click.echo("Warning: --public-post does nothing without --token (or $OHLOG_TOKEN): "
                   "every request is already accepted without one", err=True)
    from ..store import is_url
    from ..store.sqlite import holds_no_database

    path = db_target(db)
    # a misspelt --db would serve (and fill) a new empty file: only on request
    new = not is_url(path) and (not path.exists() or holds_no_database(path))
    if new and not create:
        raise click.ClickException(f"No database found at {path}: give an existing one, "
                                   "or add --create to start a new one")
    try:
        ensure_app_dir(path)
        if new:
            from ..store import open_store

            open_store(path).close()
            click.echo(f"Created a new database at {path}", err=True)
        elif not is_url(path):  # (a new PostgreSQL database gets its tables when the server opens it)
            store = open_target(db, readonly=True)
            try:
                warn_if_no_actions(store, db, "GET answers empty until actions are POSTed or ingested")
            finally:
                store.close()
        run_server(path, host=host, port=port, token=token or None, max_body=max_body,
                   workers=workers, allow_origins=allow_origins, public_post=public_post,
                   **({"max_rows": max_rows} if max_rows else {}))
    except OhlogError as ex:
        raise click.ClickException(str(ex)) from None
