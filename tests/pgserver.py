"""A throwaway PostgreSQL server for the tests and benchmarks.

``PgServer`` creates a cluster in a fresh temporary directory with
``initdb``, starts it listening only on a Unix socket inside that directory
(``listen_addresses=''``, trust authentication, so no password anywhere),
and stops it and removes the directory at the end::

    with PgServer() as server:
        url = server.create_database("ohlog_test")   # a libpq URI

PostgreSQL refuses to run as root, and CI runs as root: then initdb and
pg_ctl run as the ``postgres`` user (``runuser``) and the directory is
theirs. A watchdog process removes the cluster even when the process that
started it dies without cleaning up (``kill -9``, an interrupted run).

Standard library only, apart from psycopg (3) for ``create_database``.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Where Debian's postgresql-NN packages put the server programs; the newest
# wins. OHLOG_PG_BIN names another directory.
_BIN_GLOB = "/usr/lib/postgresql/*/bin"

# Settings for a test server: durability only matters if the machine itself
# crashes, which no test does (a killed client or backend is unaffected).
TEST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}

# Removes the cluster once its parent (the pytest worker) is gone: reads its
# stdin to EOF, which comes when the parent exits in any way, even kill -9.
_WATCHDOG = """
import json, os, shutil, signal, subprocess, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
pg_ctl, data, root = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.stdin.buffer.read()
if os.path.exists(os.path.join(data, "postmaster.pid")):
    subprocess.run([*pg_ctl, "stop", "-D", data, "-m", "immediate", "-w"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
shutil.rmtree(root, ignore_errors=True)
"""


class PgUnavailable(Exception):
    """No PostgreSQL server can be started here (programs or user missing)."""


def find_bindir() -> Path:
    """The directory holding initdb and pg_ctl, or raise PgUnavailable."""
    env = os.environ.get("OHLOG_PG_BIN")
    candidates = [env] if env else sorted(glob.glob(_BIN_GLOB), key=_version_key, reverse=True)
    for candidate in candidates:
        path = Path(candidate)
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    where = env or _BIN_GLOB
    raise PgUnavailable(f"no initdb and pg_ctl in {where} (apt-get install postgresql, or set OHLOG_PG_BIN)")


def _version_key(path):
    version = Path(path).parent.name
    return int(version) if version.isdigit() else -1


class PgServer:
    """One PostgreSQL cluster in a temporary directory, reachable by a Unix socket.

    ``settings`` are passed to the server as ``-c name=value``; by default
    none beyond the socket ones, i.e. PostgreSQL's defaults.
    """

    def __init__(self, settings: dict[str, str] | None = None, *, prefix: str = "ohlog-pg-",
                 bindir: Path | None = None):
        self.settings = dict(settings or {})
        self.prefix = prefix
        self.bindir = bindir or find_bindir()
        self.root: Path | None = None
        self._watchdog: subprocess.Popen | None = None
        self._admin = None
        self.started_in = 0.0  # seconds for initdb and start

    # Running the server's programs, as postgres when we are root.
    def _as_owner(self, program: str) -> list[str]:
        path = str(self.bindir / program)
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", path]
        return [path]

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [*self._as_owner(program), *args], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120, start_new_session=True,
        )
        if result.returncode:
            log = self.root / "server.log" if self.root else None
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(
                f"{program} {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout.decode(errors='replace')}{tail}"
            )

    @property
    def socket_dir(self) -> Path:
        assert self.root is not None, "server not started"
        return self.root

    @property
    def data_dir(self) -> Path:
        return self.socket_dir / "data"

    def url(self, dbname: str = "postgres") -> str:
        """The libpq URI of database ``dbname`` on this server."""
        return f"postgresql://postgres@/{dbname}?host={self.socket_dir}&port=5432"

    def start(self) -> "PgServer":
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise PgUnavailable("running as root and there is no postgres user for initdb") from None
        began = time.perf_counter()
        # Directly under /tmp: pytest's own temporary directories are private
        # to root, and a socket path must stay under 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix=self.prefix, dir="/tmp"))
        try:
            if os.geteuid() == 0:
                os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._start_watchdog()
            # C collation: text sorts by code point, as SQLite's BINARY does.
            self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                      "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
            options = [f"-c listen_addresses=''", f"-c unix_socket_directories='{self.socket_dir}'"]
            options += [f"-c {name}={value}" for name, value in self.settings.items()]
            self._run("pg_ctl", "start", "-D", str(self.data_dir), "-w", "-t", "60",
                      "-l", str(self.root / "server.log"), "-o", " ".join(options))
        except BaseException:
            self.stop()
            raise
        self.started_in = time.perf_counter() - began
        return self

    def _start_watchdog(self) -> None:
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, json.dumps(self._as_owner("pg_ctl")),
             str(self.data_dir), str(self.root)],
            stdin=subprocess.PIPE, start_new_session=True,
        )

    def admin(self):
        """An autocommit psycopg connection to the ``postgres`` database."""
        if self._admin is None or self._admin.closed:
            import psycopg

            self._admin = psycopg.connect(self.url("postgres"), autocommit=True)
        return self._admin

    def create_database(self, name: str, template: str = "template1") -> str:
        """Create an empty database ``name``; return its URI."""
        from psycopg import sql

        self.admin().execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, ending any connection still open to it."""
        from psycopg import sql

        self.admin().execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self) -> None:
        """Stop the server (immediately: its data is thrown away) and remove its directory."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self.root is None:
            return
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run([*self._as_owner("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "immediate",
                            "-w"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)
        if self._watchdog is not None:
            self._watchdog.stdin.close()  # nothing left for it to do
            self._watchdog.wait(timeout=30)
            self._watchdog = None
        self.root = None

    def __enter__(self) -> "PgServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    # python tests/pgserver.py: start a server, print its URI, stop on Ctrl-C.
    with PgServer() as server:
        print(f"started in {server.started_in:.2f} s: {server.url()}", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
