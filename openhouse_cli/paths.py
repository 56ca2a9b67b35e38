"""Where the database lives when --db is not given."""

import os
import pathlib

import click

from .errors import OhlogError

DEFAULT_FILENAME = "ohlog.db"


def db_path(explicit=None):
    """``--db`` if given, else ``$OHLOG_DB``, else ``ohlog.db`` in the app directory."""
    if explicit:
        return pathlib.Path(explicit)
    from_env = os.environ.get("OHLOG_DB")
    if from_env:
        return pathlib.Path(from_env)
    return default_path()


def default_path():
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
