"""``ohlog serve``: the logging API over HTTP, on the same store."""

import click

from ..errors import OhlogError
from . import cli
from .common import db_option


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
@click.option("--max-rows", type=click.IntRange(min=1), metavar="N",
              help="Answer a GET with at most N actions, and a next link to the rest")
def serve(db, host, port, token, max_body, workers, max_rows):
    """Serve the logging API over HTTP: POST /api/log and GET /api/log/get.

    \b
    Examples:
        ohlog serve
        ohlog serve --port 8080 --token "$(openssl rand -hex 16)" --max-rows 1000
        curl -s --data @examples/sample_log.json localhost:5000/api/log
    """
    from ..paths import db_path, ensure_app_dir
    from ..server import exposure_warning, serve as run_server

    warning = exposure_warning(host, token)
    if warning:
        click.echo(warning, err=True)
    path = db_path(db)
    try:
        ensure_app_dir(path)
        run_server(path, host=host, port=port, token=token or None, max_body=max_body,
                   workers=workers, **({"max_rows": max_rows} if max_rows else {}))
    except OhlogError as ex:
        raise click.ClickException(str(ex)) from None
