"""The ``ohlog`` command: parse options, call the library, render results.

One module a group of commands; each command only parses, calls the
library and renders. Heavy modules (rich, sqlite-utils, psycopg, the ingest
machinery) are imported inside the commands that use them, so that
``ohlog query`` starts fast.
"""

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ohlog")
def cli():
    """Ingest user-activity logs into SQLite or PostgreSQL and query them from the shell."""


# The commands register themselves on ``cli``
from . import admin, analytics, ingest, query, serve  # noqa: E402,F401
