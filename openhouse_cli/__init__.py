"""ohlog: ingest user-activity logs into SQLite and query them from the shell."""


def __getattr__(name):
    # Lazy: importlib.metadata costs ~45 ms, paid by every command otherwise
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("ohlog")
        except PackageNotFoundError:  # a source tree that was never installed
            return "0+unknown"
    raise AttributeError(name)
