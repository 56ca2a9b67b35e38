"""What names a PostgreSQL store, apart from the engine module: every command asks
(``open_store``, ``--db``'s errors), and importing store/postgres.py to answer
would cost each SQLite command its start-up time."""

from __future__ import annotations

import re

from ..errors import OhlogError

URL_PREFIXES = ("postgresql://", "postgres://")


def is_url(target: object) -> bool:
    """Whether ``target`` names a PostgreSQL database (a libpq connection URI)."""
    return isinstance(target, str) and target.startswith(URL_PREFIXES)


def mask(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for messages and logs."""
    url = re.sub(r"^(postgres(?:ql)?://[^:/@?#]*):[^@/?#]*@", r"\1:***@", url)
    return re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", url)


class BadURL(OhlogError):
    """``--db`` is not a PostgreSQL URL libpq can read: a usage error."""
