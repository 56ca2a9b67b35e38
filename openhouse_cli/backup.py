"""Copying the database safely, even while ingests are writing to it.

Copying the live file with ``cp`` can catch the database and its ``-wal`` at
different moments and give a corrupt copy. ``backup_database`` uses SQLite's
online backup API instead: every page is copied inside one read transaction,
so the copy is the database as of one commit, and writers (the database is
in WAL mode) are never blocked by it.

The copy is written to a temporary file next to DEST (created with mode
0600), checked, and only then given DEST's name, so DEST is never a half
copy, and an existing DEST is replaced only with ``force``.
"""

import errno
import os
import pathlib
import sqlite3
import tempfile
from dataclasses import dataclass
from urllib.parse import quote

from .store.sqlite import BUSY_TIMEOUT_S, reader_uri
from .errors import NoDatabase, OhlogError


@dataclass
class Backup:
    path: pathlib.Path
    actions: int
    size: int  # bytes


def backup_database(source, dest, *, force: bool = False) -> Backup:
    """Copy the SQLite database at ``source`` to ``dest``; return a Backup.

    A ``dest`` that is a directory (or ends with a slash) means a file in it
    under ``source``'s name. Raises NoDatabase if ``source`` does not exist,
    and OhlogError if ``dest`` exists (unless ``force``), is ``source`` itself
    or one of its side files, or cannot be written.
    """
    source = pathlib.Path(source)
    try:
        if not source.is_file():
            raise NoDatabase(f"No database found at {source}")
        dest = _target(source, dest)
        _refuse_own_files(source, dest)
        if os.path.lexists(dest):
            if dest.is_dir():
                raise OhlogError(f"Cannot create {dest}: it is a directory")
            if not force:
                raise _exists(dest)
            _refuse_live_database(dest)
        if not dest.parent.is_dir():
            if dest.parent.exists():
                raise OhlogError(f"Cannot create {dest}: {dest.parent} is not a directory")
            raise OhlogError(f"Cannot create {dest}: no such directory {dest.parent}")
    except OSError as ex:  # e.g. a directory on the way that we may not search
        raise OhlogError(f"Cannot back up {source} to {dest}: {ex.strerror or ex}") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as ex:
        raise OhlogError(f"Cannot create {dest}: {ex.strerror}") from None
    os.close(fd)  # mkstemp made it with mode 0600; SQLite keeps that mode
    try:
        actions = _copy(source, tmp)
        _publish(tmp, dest, force)
    except BaseException:
        for path in (tmp, tmp + "-journal", tmp + "-wal", tmp + "-shm"):
            if os.path.exists(path):
                os.remove(path)
        raise
    try:
        size = dest.stat().st_size
    except OSError as ex:
        raise OhlogError(f"Cannot read {dest} after the backup: {ex.strerror or ex}") from None
    return Backup(dest, actions, size)


# Files SQLite keeps beside a database: writing over one corrupts or changes it.
SIDE_FILES = ("-wal", "-shm", "-journal")


def _target(source, dest):
    """The file ``dest`` names: a directory (existing, or written with a
    trailing slash) means a file in it under the database's name."""
    text = os.fspath(dest)
    if text.endswith(("/", os.sep)) or os.path.isdir(text):
        if not os.path.isdir(text):
            raise OhlogError(f"Cannot back up into {text}: no such directory")
        return pathlib.Path(text) / source.name
    return pathlib.Path(text)


def _refuse_own_files(source, dest):
    """Refuse ``dest`` if it is the database or one of its side files, by
    resolved path (symlinks followed) or, when it exists, by inode."""
    real_dest = os.path.realpath(dest)
    for suffix in ("", *SIDE_FILES):
        for base in {str(source), os.path.realpath(source)}:
            own = base + suffix
            if real_dest == os.path.realpath(own) or (
                    dest.exists() and os.path.exists(own) and dest.samefile(own)):
                if not suffix:
                    raise OhlogError(f"Cannot back up {source} onto itself")
                raise OhlogError(f"Cannot back up {source} onto its own {suffix} file {dest}")


def _refuse_live_database(dest):
    """An existing DEST with a -wal or -journal beside it may be a database in
    use, and SQLite would apply that file to the copy when opening it."""
    for suffix in ("-wal", "-journal"):
        if os.path.lexists(f"{dest}{suffix}"):
            raise OhlogError(f"Will not overwrite {dest}: it has a {suffix} file beside it, so it may "
                             f"be a database in use; remove both or choose another DEST")


def _copy(source, tmp):
    """Copy ``source`` into the empty file ``tmp``, check it; return its action count."""
    _upgrade(source)
    try:
        src = _open_source(source)
        try:
            dst = sqlite3.connect(tmp, isolation_level=None)
            try:
                src.backup(dst)  # all pages in one step: one consistent snapshot
                # One self-contained file, not a WAL database with side files
                dst.execute("PRAGMA journal_mode=DELETE")
                (check,) = dst.execute("PRAGMA quick_check").fetchone()
                if check != "ok":
                    raise OhlogError(f"The copy of {source} failed its check: {check}")
                _refuse_other_programs(source, dst)
                actions = dst.execute("SELECT count(*) FROM actions").fetchone()[0]
            finally:
                dst.close()
        finally:
            src.close()
        with open(tmp, "rb+") as fp:
            os.fsync(fp.fileno())
    except sqlite3.Error as ex:
        raise OhlogError(f"Cannot back up {source}: {ex}") from None
    except OSError as ex:
        raise OhlogError(f"Cannot back up {source}: {ex.strerror or ex}") from None
    return actions


def _refuse_other_programs(source, copy):
    """Refuse a source with no actions table, as every other command does: a
    mistyped --db would otherwise be backed up under a success message."""
    if copy.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'actions'").fetchone():
        return
    raise OhlogError(f"{source} is not an ohlog database: it has no actions table (nothing was backed up)")


def _upgrade(source):
    """Apply pending migrations first, as every command does, so that the copy
    is of this version's schema. A database on read-only media is copied as
    it is; another program's is refused after (``_refuse_other_programs``)."""
    from .query import open_for_query

    try:
        open_for_query(source).close()
    except OhlogError:
        pass


def _open_source(source):
    """A read-only connection to ``source``, also on read-only media."""
    uri = "file:" + quote(str(source.absolute())) + "?mode=ro"
    src = sqlite3.connect(reader_uri(source), uri=True, timeout=BUSY_TIMEOUT_S)  # as the readers open it
    try:
        src.execute("PRAGMA query_only = ON")
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return src
    except sqlite3.OperationalError:
        src.close()
        if not os.statvfs(source).f_flag & os.ST_RDONLY:
            raise
    # On a read-only filesystem (a snapshot, a mounted backup) SQLite cannot
    # create the WAL's -shm file. Nobody can write there, so with no -wal
    # left the file is the whole database: read it as immutable. A -wal
    # holds commits that immutable would silently leave out.
    wal = pathlib.Path(f"{source}-wal")
    if wal.exists() and wal.stat().st_size:
        raise OhlogError(f"Cannot back up {source}: its -wal holds commits that cannot be read on "
                         f"a read-only filesystem; copy {source.name} and {wal.name} to writable "
                         f"storage and back up that copy")
    return sqlite3.connect(uri + "&immutable=1", uri=True)


def _publish(tmp, dest, force):
    """Give the finished copy its name: atomically, and without overwriting unless ``force``."""
    try:
        if force:
            os.replace(tmp, dest)
        else:
            try:
                os.link(tmp, dest)  # fails if dest appeared meanwhile
            except FileExistsError:
                raise _exists(dest) from None
            except OSError as ex:
                if ex.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
                # No hard links here (e.g. FAT): claim the name, then replace it
                try:
                    os.close(os.open(dest, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                except FileExistsError:
                    raise _exists(dest) from None
                os.replace(tmp, dest)
            else:
                os.remove(tmp)
        directory = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as ex:
        raise OhlogError(f"Cannot create {dest}: {ex.strerror or ex}") from None


def _exists(dest):
    return OhlogError(f"{dest} already exists: use --force to overwrite it")
