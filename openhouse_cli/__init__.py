"""ohlog: ingest user-activity logs into SQLite and query them from the shell.

The library API, for use without the command line::

    from openhouse_cli import open_db, ingest_input, ingest_sessions, query_actions
"""

# Imported on first use: `ohlog query` must start fast, and importlib.metadata
# alone costs ~45 ms.
_API = {
    "open_db": "db",
    "ingest_input": "ingest",
    "ingest_sessions": "ingest",
    "query_actions": "query",
}


def __getattr__(name):
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("ohlog")
        except PackageNotFoundError:  # a source tree that was never installed
            return "0+unknown"
    if name in _API:
        import importlib

        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(name)


__all__ = list(_API)
