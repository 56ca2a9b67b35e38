"""Where the database lives when --db is not given."""

import os
import pathlib
import re
import sys

import click

from .errors import OhlogError

DEFAULT_FILENAME = "ohlog.db"
# A scheme and "//", or SQLite's own "file:" URIs (which SQLite would open as
# a URI, another file than the one named)
_OTHER_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://|file:", re.IGNORECASE)


def db_path(explicit=None):
    """``--db`` if given, else ``$OHLOG_DB``, else ``ohlog.db`` in the app directory.

    A SQLite database is a path; a PostgreSQL one stays the URL string it was
    given (``postgresql://...``), which a path would mangle.
    """
    given = explicit or os.environ.get("OHLOG_DB")
    if given:
        if isinstance(given, str) and given.startswith(("postgresql://", "postgres://")):
            return given
        refuse_other_urls(given)
        return pathlib.Path(given)
    return default_path()


def refuse_other_urls(name) -> None:
    """BadURL (a usage error) if ``name``, a database given as a path, is a
    URL of another kind or a SQLite ``file:`` URI: read as a path,
    mysql://h/db became the file mysql:/h/db, and SQLite opened file:x.db as x.db."""
    from .store.urls import BadURL, is_url

    if isinstance(name, str) and not is_url(name) and _OTHER_URL.match(name):
        raise BadURL(f"{name!r} is a URL ohlog cannot use: give a SQLite file's path, or a"
                     " postgresql:// URL (a file whose name looks like a URL: ./NAME)")


def default_path():
    # As the XDG rules say, $XDG_CONFIG_HOME counts only when it is an absolute
    # path: click took an empty or relative one as it was, which made a
    # database in each working directory (and stored data seemed lost)
    config = os.environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(config) and sys.platform not in ("darwin", "win32"):
        return pathlib.Path(os.path.expanduser("~"), ".config", "ohlog", DEFAULT_FILENAME)
    return pathlib.Path(click.get_app_dir("ohlog")) / DEFAULT_FILENAME


def ensure_app_dir(path):
    """Create the directory of ``path`` if it is the default database's, readable
    by its owner only. A path given by --db or $OHLOG_DB must have its directory."""
    if path != default_path():
        return
    try:
        # exist_ok: two first runs at once must not fail on each other's mkdir
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    except OSError as ex:
        raise OhlogError(f"Cannot create {path.parent}: {ex.strerror or ex}") from None
