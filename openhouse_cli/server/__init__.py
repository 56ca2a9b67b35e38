"""``ohlog serve``: the original logging API over HTTP, as a raw ASGI application.

``POST /api/log`` stores one session document or an array of them, validated
by ``validate.session_rows`` exactly as ``ohlog ingest`` validates;
``GET /api/log/get`` reads actions back with ``query.query_json`` and the
time rules of ``times.py``. ``create_app()`` is the factory for uvicorn or
gunicorn workers; ``serve()`` runs it on uvicorn for the CLI.

Where the work is done:

* on the event loop: HTTP (uvicorn's C parser), the token, reading bodies
  (never more than the limit), validation, the writes, and the queries that
  turn out small and quick (selective GETs). POSTs that arrive together are
  committed in one transaction (group commit), each keeping its own counts.
  In CPython a hop to a thread costs a GIL hand-off, which under load costs
  more than the work it hands off;
* in a pool of reader threads, each on its own read-only connection: the
  queries too slow or too large for the loop (large results are streamed);
* in a checkpoint thread: copying the WAL back into the database, off the
  commits' path.

On PostgreSQL (``db`` a ``postgresql://`` URL) the same application runs on
``postgres``' writer and readers: group commit as one statement on an
asynchronous connection, small results on a few asynchronous connections,
large ones streamed from reader threads (see ``postgres.py``).

The modules, one a responsibility: ``app`` (the ASGI application: routes,
the token, bodies, responses, the access log), ``requests`` (bodies and query
strings into rows and filters), ``writer`` (group commit, checkpoints),
``reader`` (queries, inline or in threads, and paging), ``postgres`` (the
PostgreSQL writer and quick reader), ``openapi`` (the API's
description); this one makes the application and runs it.

Only the standard library, orjson and ohlog's own modules are imported here;
uvicorn only inside ``serve()``, so that the CLI starts fast.
"""

import ipaddress
import os

from ..errors import OhlogError
from ..store.postgres import is_url
from .app import DEFAULT_MAX_BODY, App, _setup_access_log
from .cors import normalize_origin
from .openapi import openapi_document
from .reader import READ_THREADS, Reader
from .requests import HTTPError, is_json, parse_filters, parse_sessions, validate_sessions
from .writer import Writer

__all__ = [
    "DEFAULT_MAX_BODY", "READ_THREADS", "App", "HTTPError", "Reader", "Writer", "create_app",
    "exposure_warning", "is_json", "is_loopback", "openapi_document", "parse_filters",
    "parse_sessions", "serve", "validate_sessions",
]


def create_app(db=None, *, token=None, max_body=None, commit_batch=None, read_threads=READ_THREADS,
               allow_origins=None, public_post=None, max_rows=None):
    """The ASGI application on database ``db``, for uvicorn/gunicorn workers.

    Every argument falls back on the environment, so that
    ``uvicorn --factory openhouse_cli.server:create_app`` works as it is:
    ``db`` on ``$OHLOG_DB`` (else ohlog's default database), ``token`` on
    ``$OHLOG_TOKEN`` (empty: no token), ``max_body`` on ``$OHLOG_MAX_BODY``
    (default 1 MiB), ``max_rows`` on ``$OHLOG_MAX_ROWS`` (unset or 0: a GET
    answers every matching action; else at most this many, and a link to the
    rest). ``commit_batch`` caps the requests a commit may group
    (None: as many as are waiting; 1: a commit each, for comparison).
    ``allow_origins`` (on ``$OHLOG_ALLOW_ORIGIN``, separated by spaces): the
    origins whose pages may call the API (see ``cors.py``); ``public_post``
    (on ``$OHLOG_PUBLIC_POST=1``): POST /api/log needs no token.
    The database is created and migrated now, so errors show at once.
    """
    from ..paths import db_path
    from ..store import open_store

    path = db_path(db)
    if token is None:
        token = os.environ.get("OHLOG_TOKEN") or None
    if max_body is None:
        try:
            max_body = int(os.environ.get("OHLOG_MAX_BODY") or DEFAULT_MAX_BODY)
        except ValueError:
            raise OhlogError("OHLOG_MAX_BODY must be a number of bytes") from None
    if max_body < 1:
        raise OhlogError(f"The body limit must be at least 1 byte, got {max_body}")
    if allow_origins is None:
        allow_origins = os.environ.get("OHLOG_ALLOW_ORIGIN", "").split()
    try:
        allow_origins = [normalize_origin(origin) for origin in allow_origins]
    except ValueError as ex:
        raise OhlogError(f"Invalid allowed origin: {ex}") from None
    if public_post is None:
        public_post = os.environ.get("OHLOG_PUBLIC_POST", "") not in ("", "0")
    if max_rows is None:
        text = os.environ.get("OHLOG_MAX_ROWS") or "0"
        if not (text.isascii() and text.isdigit()):
            raise OhlogError(f"OHLOG_MAX_ROWS must be a whole number of actions, got {text!r}")
        max_rows = int(text)
    if max_rows < 0:
        raise OhlogError(f"The row limit must be at least 1 (0: none), got {max_rows}")
    # Create and migrate now, then close: every connection is opened in the
    # thread (and the process, after a fork) that uses it.
    if is_url(path):  # with a connect timeout: an unreachable server fails now, not in minutes
        from .postgres import conninfo

        open_store(conninfo(path)).close()
    else:
        open_store(path).close()
    _setup_access_log()
    return App(path, token=token, max_body=max_body, commit_batch=commit_batch,
               read_threads=read_threads, allow_origins=allow_origins, public_post=public_post,
               max_rows=max_rows or None)


# ---------------------------------------------------------------------------
# Running it


def is_loopback(host):
    """Whether ``host`` is a loopback address (or ``localhost``): nothing else can connect."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from outside


def exposure_warning(host, token):
    """The warning for listening beyond loopback without a token, or None."""
    if token or is_loopback(host):
        return None
    return (f"Warning: listening on {host} without a token: anyone who can reach this port "
            "can read and write the logs. Set --token or OHLOG_TOKEN.")


def serve(db, *, host="127.0.0.1", port=5000, token=None, max_body=DEFAULT_MAX_BODY, workers=1,
          allow_origins=(), public_post=False, max_rows=None):
    """Run the API on uvicorn until interrupted. OhlogError if it cannot start.
    ``max_rows``: the most actions a GET answers (None: all of them)."""
    try:
        import uvicorn
    except ImportError:
        raise OhlogError("ohlog serve needs the server extra: pip install '.[serve]' in ohlog's checkout") from None
    from ..paths import db_path

    db = db_path(db)
    max_rows = max_rows or 0  # 0, not None: the option alone decides, never $OHLOG_MAX_ROWS
    # (fails here if the database does)
    app = create_app(db, token=token, max_body=max_body, allow_origins=allow_origins,
                     public_post=public_post, max_rows=max_rows)
    try:
        check_listen(host, port)
    except OhlogError:
        app.close()
        raise
    options = dict(host=host, port=port, access_log=False, server_header=False, log_level="info")
    if workers > 1:
        # Each worker process builds its own app through the factory, from the environment
        app.close()
        os.environ.update(OHLOG_DB=str(db), OHLOG_MAX_BODY=str(max_body),
                          OHLOG_ALLOW_ORIGIN=" ".join(app.cors.origins if app.cors else ()),
                          OHLOG_PUBLIC_POST="1" if public_post else "",
                          OHLOG_MAX_ROWS=str(max_rows))
        if token:
            os.environ["OHLOG_TOKEN"] = token
        else:
            os.environ.pop("OHLOG_TOKEN", None)
        uvicorn.run("openhouse_cli.server:create_app", factory=True, workers=workers, **options)
    else:
        try:
            uvicorn.run(app, **options)
        except SystemExit as ex:
            # uvicorn's "startup failed" is 3, which ohlog's exit codes keep for rejected records
            if ex.code == 3:
                raise OhlogError(f"ohlog serve could not start on {_where(host, port)} (see the "
                                 "message above)") from None
            raise


def check_listen(host: str, port: int) -> None:
    """OhlogError, in one line, if nothing can listen on ``host``:``port`` now: the port in
    use, an address not this machine's, a port the user may not bind, an unknown host.
    Bound the way uvicorn binds (SO_REUSEADDR), then closed at once."""
    import socket

    try:
        found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in found:
            with socket.socket(family, kind, proto) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:  # as asyncio does: IPv4 is bound on its own
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
    except socket.gaierror as ex:
        raise OhlogError(f"Cannot listen on {_where(host, port)}: unknown host "
                         f"({ex.strerror or ex})") from None
    except OSError as ex:
        reason = ex.strerror or str(ex)
        raise OhlogError(f"Cannot listen on {_where(host, port)}: "
                         f"{reason[:1].lower()}{reason[1:]}") from None


def _where(host, port):
    return f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}"
