"""ohlog: ingest user-activity logs into SQLite and query them from the shell."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ohlog")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
