"""The ``ohlog`` command: parse options, call the library, render results."""

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ohlog")
def cli():
    """Ingest user-activity logs into SQLite and query them from the shell."""
