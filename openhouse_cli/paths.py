"""Where the database lives when --db is not given."""

import os
import pathlib

import click

DEFAULT_FILENAME = "ohlog.db"


def db_path(explicit=None):
    """``--db`` if given, else ``$OHLOG_DB``, else ``ohlog.db`` in the app directory."""
    if explicit:
        return pathlib.Path(explicit)
    from_env = os.environ.get("OHLOG_DB")
    if from_env:
        return pathlib.Path(from_env)
    return pathlib.Path(click.get_app_dir("ohlog")) / DEFAULT_FILENAME


def ensure_app_dir(path):
    """Create the default database's directory, readable by its owner only."""
    directory = path.parent
    if not directory.exists():
        directory.mkdir(parents=True, mode=0o700)
