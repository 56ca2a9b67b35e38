"""The SQLite engine's opener, under its old name for library callers.

Commands open stores through ``openhouse_cli.store.open_store``; this
module only re-exports the SQLite engine's ``open_db`` (a migrated
``sqlite_utils.Database``) and its constants.
"""

from .store.sqlite import BUSY_TIMEOUT_S, PAGE_SIZE, open_db

__all__ = ["BUSY_TIMEOUT_S", "PAGE_SIZE", "open_db"]
