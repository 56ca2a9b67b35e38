"""``ohlog serve``: the original logging API over HTTP, as a raw ASGI application.

``POST /api/log`` stores one session document or an array of them, validated
by ``validate.session_rows`` exactly as ``ohlog ingest`` validates;
``GET /api/log/get`` reads actions back with ``query.query_json`` and the
time rules of ``times.py``. ``create_app()`` is the factory for uvicorn or
gunicorn workers; ``serve()`` runs it on uvicorn for the CLI.

Where the work is done:

* on the event loop: HTTP (uvicorn's C parser), the token, reading bodies
  (never more than the limit), validation, the writes, and the queries that
  turn out small and quick (selective GETs). POSTs that arrive together are
  committed in one transaction (group commit), each keeping its own counts.
  In CPython a hop to a thread costs a GIL hand-off, which under load costs
  more than the work it hands off;
* in a pool of reader threads, each on its own read-only connection: the
  queries too slow or too large for the loop (large results are streamed);
* in a checkpoint thread: copying the WAL back into the database, off the
  commits' path.

Only the standard library, orjson and ohlog's own modules are imported here;
uvicorn only inside ``serve()``, so that the CLI starts fast.
"""

import asyncio
import collections
import hmac
import ipaddress
import itertools
import logging
import os
import sqlite3
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote_to_bytes

import orjson

from .errors import InvalidInput, OhlogError
from .query import open_for_query, query_json
from .times import TimeError, parse_time_spec, resolve_bound
from .validate import COLUMNS, session_rows

DEFAULT_MAX_BODY = 1 << 20  # bytes
PAGE = 1000  # actions fetched a time; a larger result is streamed
READ_THREADS = 4
# A query is first tried on the event loop itself, which saves the hop to a
# thread (a third of a selective GET's time): if it returns at most
# INLINE_ROWS actions within INLINE_STEPS x 10,000 SQLite instructions (a
# millisecond or two). Otherwise it is abandoned and run in a reader thread.
INLINE_ROWS = 100
INLINE_STEPS = 20
INLINE_CHECK_EVERY = 10_000
MAX_COMMIT_ROWS = 20_000  # one group commit holds at most this many rows (and one request)
CACHE_KIB = 64 * 1024  # the writer's page cache: the indexes' hot pages stay in memory
READ_CACHE_KIB = 32 * 1024  # each reading connection's (SQLite's default is 2 MiB)
CHECKPOINT_EVERY_S = 0.2
WRITE_WAIT_S = 30  # a POST waits this long for another writer to release the database
RETRY_FIRST_S, RETRY_MAX_S = 0.0005, 0.004  # meanwhile it tries again this often (doubling)
MAX_DETAILS = 100
MAX_QUERY_FIELDS = 1000

access_log = logging.getLogger("ohlog.access")
error_log = logging.getLogger("ohlog.server")

_INSERT = "INSERT OR IGNORE INTO actions ({}) VALUES ({})".format(
    ", ".join(COLUMNS), ", ".join("?" for _ in COLUMNS)
)
_JSON = (b"content-type", b"application/json")
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_CLOSE = (b"connection", b"close")


class HTTPError(Exception):
    """A response other than 200, with a JSON body ``{"error": ..., "details": [...]}``."""

    def __init__(self, status, error, details=(), headers=()):
        super().__init__(error)
        self.status = status
        self.body = {"error": error, "details": list(details)}
        self.headers = list(headers)


def create_app(db=None, *, token=None, max_body=None, commit_batch=None, read_threads=READ_THREADS):
    """The ASGI application on database ``db``, for uvicorn/gunicorn workers.

    Every argument falls back on the environment, so that
    ``uvicorn --factory openhouse_cli.server:create_app`` works as it is:
    ``db`` on ``$OHLOG_DB`` (else ohlog's default database), ``token`` on
    ``$OHLOG_TOKEN`` (empty: no token), ``max_body`` on ``$OHLOG_MAX_BODY``
    (default 1 MiB). ``commit_batch`` caps the requests a commit may group
    (None: as many as are waiting; 1: a commit each, for comparison).
    The database is created and migrated now, so errors show at once.
    """
    from .db import open_db
    from .paths import db_path

    path = db_path(db)
    if token is None:
        token = os.environ.get("OHLOG_TOKEN") or None
    if max_body is None:
        try:
            max_body = int(os.environ.get("OHLOG_MAX_BODY") or DEFAULT_MAX_BODY)
        except ValueError:
            raise OhlogError("OHLOG_MAX_BODY must be a number of bytes") from None
    if max_body < 1:
        raise OhlogError(f"The body limit must be at least 1 byte, got {max_body}")
    # Create and migrate now, then close: every connection is opened in the
    # thread (and the process, after a fork) that uses it.
    open_db(path).conn.close()
    _setup_access_log()
    return App(path, token=token, max_body=max_body, commit_batch=commit_batch,
               read_threads=read_threads)


def _setup_access_log():
    """One line a request on stderr, unless the host application configured logging."""
    if not access_log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        access_log.addHandler(handler)
        error_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = error_log.propagate = False


# ---------------------------------------------------------------------------
# The store: group commit on the event loop; queries on it or in reader threads


class Writer:
    """Commits the rows of the requests that arrive together in one transaction.

    ``await writer.write(rows)`` returns ``(inserted, duplicates)`` once the
    transaction holding those rows has committed. Writes run on the event
    loop itself: each POST queues its validated rows, and the first one of
    a turn of the loop schedules a commit of everything queued by then (group
    commit). A thread would gain nothing here, since SQLite's inserts need
    the GIL between rows, and would lose the GIL hand-offs under load.

    The connection never waits for the write lock (busy timeout 0): if
    another process holds it (``ohlog ingest``, another worker), the commit is
    retried later on a timer, so the loop keeps serving; after WRITE_WAIT_S
    the waiting requests fail with OhlogError (503). If a group commit fails
    otherwise, each request in it is retried alone, so that one request's
    failure is only its own.
    """

    def __init__(self, path, commit_batch=None):
        self.path = path
        self.commit_batch = commit_batch or float("inf")
        self._pending = collections.deque()  # (rows, future, queued at)
        self._scheduled = None  # the loop a flush is scheduled on
        self._retry_s = 0
        self._conn = None
        self.commits = 0  # for tests and benchmarks: transactions committed

    def write(self, rows):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((rows, future, time.monotonic()))
        if self._scheduled is not loop:
            self._scheduled = loop
            loop.call_soon(self._flush)
        return future

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _flush(self):
        self._scheduled = None
        if not self._pending:
            return
        batch = self._take()
        try:
            if self._conn is None:
                self._conn = self._open()
            results = self._commit(self._conn, batch)
        except sqlite3.OperationalError as ex:  # busy: another writer has the lock
            self._pending.extendleft(reversed(batch))
            self._expire(ex)
            self._retry_s = min(max(self._retry_s * 2, RETRY_FIRST_S), RETRY_MAX_S)
            self._schedule(self._retry_s)
            return
        except Exception as ex:  # cannot even open the database: the next batch tries again
            results = [ex] * len(batch)
        self._retry_s = 0
        for (_, future, _), result in zip(batch, results):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        self._schedule(0)

    def _schedule(self, delay):
        """Flush again after ``delay`` seconds if requests are still waiting."""
        loop = asyncio.get_running_loop()
        if self._pending and self._scheduled is not loop:
            self._scheduled = loop
            loop.call_later(delay, self._flush)

    def _take(self):
        """The oldest requests, as many as a commit may hold."""
        batch = [self._pending.popleft()]
        rows = len(batch[0][0])
        while (self._pending and len(batch) < self.commit_batch
               and rows + len(self._pending[0][0]) <= MAX_COMMIT_ROWS):
            batch.append(self._pending.popleft())
            rows += len(batch[-1][0])
        return batch

    def _expire(self, ex):
        """Fail the requests that have waited too long for the write lock."""
        deadline = time.monotonic() - WRITE_WAIT_S
        while self._pending and self._pending[0][2] < deadline:
            _, future, _ = self._pending.popleft()
            if not future.done():
                future.set_exception(
                    OhlogError(f"waited {WRITE_WAIT_S} s for the write lock: {ex}"))

    def _open(self):
        from .db import open_db

        conn = open_db(self.path, busy_timeout=0).conn
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        # Checkpoints (copying the WAL into the database, with an fsync) take
        # tens of milliseconds: a thread of their own does them, so that no
        # commit, and no request waiting on it, pays for one.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        threading.Thread(target=_checkpoints, args=(self.path, weakref.ref(self)),
                         name="ohlog-checkpoint", daemon=True).start()
        return conn

    def _commit(self, conn, batch):
        """Commit the batch; a list of results. OperationalError if the database is busy."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            results = []
            for rows, _, _ in batch:
                inserted = conn.executemany(_INSERT, rows).rowcount if rows else 0
                results.append((inserted, len(rows) - inserted))
            conn.execute("COMMIT")
            self.commits += 1
            return results
        except Exception as ex:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if _is_busy(ex):
                raise
            if len(batch) == 1:
                return [ex]
            return [self._commit_alone(conn, item) for item in batch]

    def _commit_alone(self, conn, item):
        try:
            return self._commit(conn, [item])[0]
        except sqlite3.OperationalError as ex:  # busy: fail this one, keep the others' results
            return ex


def _is_busy(ex):
    return isinstance(ex, sqlite3.OperationalError) and (
        "locked" in str(ex) or "busy" in str(ex))


def _checkpoints(path, writer):
    """Copy the WAL back into the database every CHECKPOINT_EVERY_S, while ``writer`` lives."""
    conn = sqlite3.connect(str(path), timeout=60, isolation_level=None, check_same_thread=False)
    checkpointed = 0
    try:
        while True:
            time.sleep(CHECKPOINT_EVERY_S)
            live = writer()
            if live is None or live._conn is None:
                return
            commits, live = live.commits, None
            if commits != checkpointed:
                checkpointed = commits
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as ex:
                    error_log.warning("Checkpoint failed: %s", ex)
    finally:
        conn.close()


class Reader:
    """Runs queries in a thread pool, each thread on its own read-only connection,
    or, when they are small and quick, on the event loop's own connection."""

    def __init__(self, path, threads=READ_THREADS):
        self.path = path
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="ohlog-read")
        self._local = threading.local()
        self._conns = []
        self._lock = threading.Lock()

    def quick(self, filters):
        """All the matching actions as JSON texts if they are few and quickly found, else None."""
        local = self._local
        steps = getattr(local, "steps", None)
        if steps is None:
            steps = local.steps = [0]
            self.conn().set_progress_handler(lambda: _tick(steps), INLINE_CHECK_EVERY)
        steps[0] = 0
        try:
            page = list(itertools.islice(query_json(self.conn(), **filters), INLINE_ROWS + 1))
        except OhlogError:
            if steps[0] > INLINE_STEPS:
                return None  # interrupted: too slow for the event loop
            raise
        finally:
            steps[0] = -(1 << 62)  # no limit for other uses of this connection
        return page if len(page) <= INLINE_ROWS else None

    async def run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = open_for_query(self.path)
            conn.execute(f"PRAGMA cache_size = -{READ_CACHE_KIB}")
            with self._lock:
                self._conns.append(conn)
        return conn

    def first_page(self, filters):
        """``(page, rest)``: the first PAGE actions as JSON texts, and an iterator
        over the others (None if there are none). ``rest`` takes this thread's
        connection with it, and closes it when done."""
        conn = self.conn()
        actions = query_json(conn, **filters)
        page = list(itertools.islice(actions, PAGE))
        if len(page) < PAGE:
            return page, None
        self._local.conn = None
        with self._lock:
            self._conns.remove(conn)
        return page, _Rest(actions, conn)

    def check(self):
        self.conn().execute("SELECT count(*) FROM sqlite_master").fetchone()

    def close(self):
        self.pool.shutdown(wait=True)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()


def _tick(steps):
    steps[0] += 1
    return steps[0] > INLINE_STEPS


class _Rest:
    """The rest of a large result, fetched a page at a time."""

    def __init__(self, actions, conn):
        self.actions = actions
        self.conn = conn

    def next_page(self):
        return list(itertools.islice(self.actions, PAGE))

    def close(self):
        self.actions.close()
        self.conn.close()


# ---------------------------------------------------------------------------
# Reading requests


def parse_sessions(body):
    """The session documents in a POST body, and whether it was an array.

    Valid JSON is parsed by orjson; anything else goes through ingest's
    reader, for its exact messages (and its handling of huge integers).
    """
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _parse_slowly(body)
    if isinstance(value, list):
        return value, True
    return [value], False


def _parse_slowly(body):
    import io

    from .readers import read_records

    if not body.strip():
        message = "empty body: expected a session object or an array of them"
        raise HTTPError(400, message, [{"path": "", "message": message}])
    is_array = body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[")
    docs = []
    for record in read_records(io.BytesIO(body), "body"):
        if record.error is not None:
            error = record.error  # located "body:LINE" or "body:LINE:COLUMN"
            line, _, column = error.location.partition(":")[2].partition(":")
            where = f"line {line}, column {column}" if column else f"line {line}"
            message = f"{error.message} ({where})"
            raise HTTPError(400, message, [{"path": "", "message": message}])
        docs.append(record.value)
    return docs, is_array or len(docs) != 1


def validate_sessions(docs, is_array):
    """Every document's rows, concatenated; HTTPError 400 listing each bad document."""
    rows, details = [], []
    for index, doc in enumerate(docs):
        try:
            rows += session_rows(doc, "body")
        except InvalidInput as error:
            path = error.field
            if is_array:
                path = f"[{index}]" + ("." + path if path else "")
            details.append({"path": path, "message": error.message})
    if details:
        first = details[0]
        summary = f"{first['path']}: {first['message']}" if first["path"] else first["message"]
        if len(details) > 1:
            more = len(details) - 1
            summary += f" (and {more} more invalid session{'s' if more > 1 else ''})"
        raise HTTPError(400, summary, details[:MAX_DETAILS])
    return rows


_LISTS = {"userId": "users", "type": "types", "session": "sessions"}
_SINGLE = ("date", "start", "end", "limit", "order")


def parse_filters(query_string):
    """The query_actions filters for GET /api/log/get; HTTPError 400 naming a bad parameter.

    Repeated ``userId``, ``type`` and ``session`` mean any of them; an empty
    value is as if the parameter were not given; unknown parameters are
    ignored, as the original API ignored them.
    """
    lists = {name: [] for name in _LISTS}
    single = {}
    for name, value in _query_pairs(query_string):
        if not value:
            continue
        if name in lists:
            lists[name].append(value)
        elif name in _SINGLE:
            if name in single:
                raise _bad(name, "give it at most once")
            single[name] = value
    filters = {_LISTS[name]: tuple(values) for name, values in lists.items()}
    if "date" in single and ("start" in single or "end" in single):
        raise _bad("date", "use date alone, or start and end")
    for name in ("date", "start", "end"):
        if name in single:
            try:
                spec = parse_time_spec(single[name])
            except TimeError as ex:
                raise _bad(name, str(ex)) from None
            if name != "end":
                filters["start"] = resolve_bound(spec)
            if name != "start":
                filters["end"] = resolve_bound(spec, end=True)
    if "limit" in single:
        text = single["limit"]
        if not (text.isascii() and text.isdigit()) or int(text) >= 1 << 63:
            raise _bad("limit", f"expected a whole number, 0 or more, got {text!r}")
        filters["limit"] = int(text)
    if "order" in single:
        if single["order"] not in ("asc", "desc"):
            raise _bad("order", f"expected asc or desc, got {single['order']!r}")
        filters["order"] = single["order"]
    return filters


def _query_pairs(query_string):
    """``(name, value)`` pairs of a raw query string (``&``-separated, ``+`` a space)."""
    parts = query_string.split(b"&") if query_string else ()
    if len(parts) > MAX_QUERY_FIELDS:
        raise _bad("", f"more than {MAX_QUERY_FIELDS} parameters")
    for part in parts:
        name, _, value = part.partition(b"=")
        try:
            yield _unquote(name), _unquote(value)
        except UnicodeDecodeError:
            raise _bad("", "the query string is not valid UTF-8 once percent-decoded") from None


def _unquote(raw):
    if b"%" in raw or b"+" in raw:
        raw = unquote_to_bytes(raw.replace(b"+", b" "))
    return raw.decode("utf-8")


def _bad(name, message):
    return HTTPError(400, f"invalid parameter {name}: {message}" if name else message,
                     [{"path": name, "message": message}])


def is_json(content_type):
    """``application/json``, or any ``.../...+json``, whatever the parameters."""
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json"))


# ---------------------------------------------------------------------------
# The application


class App:
    """The ASGI application; make it with create_app()."""

    def __init__(self, path, *, token=None, max_body=DEFAULT_MAX_BODY, commit_batch=None,
                 read_threads=READ_THREADS):
        self.path = path
        self.token = token.encode() if token else None
        self.max_body = max_body
        self.writer = Writer(path, commit_batch)
        self.reader = Reader(path, read_threads)
        self.routes = {
            "/api/log": {"POST": self.post_log},
            "/api/log/get": {"GET": self.get_log},
            "/health": {"GET": self.health},
            "/openapi.json": {"GET": self.openapi},
        }
        self._openapi = orjson.dumps(openapi_document(bool(token)))

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "http":
            await self.handle(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def close(self):
        self.writer.close()
        self.reader.close()

    async def handle(self, scope, receive, send):
        started = time.perf_counter()
        exchange = _Exchange(scope, send)
        try:
            methods = self.routes.get(scope["path"])
            if methods is None:
                raise HTTPError(404, f"no such endpoint: {scope['path']}")
            handler = methods.get(scope["method"])
            if handler is None:
                allow = ", ".join(methods).encode()
                raise HTTPError(405, f"method {scope['method']} not allowed: use {allow.decode()}",
                                headers=[(b"allow", allow)])
            if self.token is not None and handler != self.health:
                self.authenticate(exchange.headers)
            await handler(exchange, receive)
        except HTTPError as ex:
            await exchange.error(ex)
        except Exception:
            error_log.exception("Error while handling %s %s", scope["method"], _target(scope))
            if not exchange.status:
                await exchange.error(HTTPError(500, "internal server error"))
        finally:
            if access_log.isEnabledFor(logging.INFO):  # without logging's costly caller lookup
                access_log.handle(access_log.makeRecord(
                    access_log.name, logging.INFO, "", 0,
                    exchange.log_line(time.perf_counter() - started), None, None))

    def authenticate(self, headers):
        value = headers.get(b"authorization", b"")
        scheme, _, given = value.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self.token):
            raise HTTPError(401, "a valid token is needed: send Authorization: Bearer TOKEN",
                            headers=[(b"www-authenticate", b'Bearer realm="ohlog"')])

    async def post_log(self, exchange, receive):
        if not is_json(exchange.headers.get(b"content-type", b"")):
            raise HTTPError(415, "send the sessions as JSON, with Content-Type: application/json")
        body = await self.read_body(exchange, receive)
        rows = validate_sessions(*parse_sessions(body))
        try:
            inserted, duplicates = await self.writer.write(rows)
        except (sqlite3.Error, OhlogError) as ex:
            error_log.error("Could not store a request: %s", ex)
            raise HTTPError(503, "the database could not store this request, and nothing of "
                                 "it was stored: try again",
                            headers=[(b"retry-after", b"1")]) from None
        await exchange.json(200, b'{"inserted":%d,"duplicates":%d}' % (inserted, duplicates))

    async def read_body(self, exchange, receive):
        """The whole body, refused with 413 as soon as it is known to exceed the limit."""
        length = exchange.headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body:
            raise self.too_large()
        parts, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise HTTPError(400, "the client went away before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise self.too_large()
            parts.append(chunk)
            if not message.get("more_body", False):
                exchange.body_read = True
                return b"".join(parts)

    def too_large(self):
        return HTTPError(413, f"the body is larger than the limit of {self.max_body:,} bytes: "
                              "send fewer sessions a request")

    async def get_log(self, exchange, receive):
        filters = parse_filters(exchange.scope["query_string"])
        try:
            page, rest = self.reader.quick(filters), None
            if page is None:
                page, rest = await self.reader.run(self.reader.first_page, filters)
        except OhlogError as ex:
            error_log.error("Query failed: %s", ex)
            raise HTTPError(503, "the database could not answer: try again",
                            headers=[(b"retry-after", b"1")]) from None
        if not page:
            await exchange.json(404, b'{"actions":[]}')
        elif rest is None:
            await exchange.json(200, ('{"actions":[' + ",".join(page) + "]}").encode())
        else:
            await self.stream(exchange, page, rest, receive)

    async def stream(self, exchange, page, rest, receive):
        """Send a large result a page at a time (chunked), stopping if the client goes."""
        gone = asyncio.ensure_future(_disconnect(receive))
        try:
            await exchange.start(200, [_JSON, _NOSNIFF])
            await exchange.body(('{"actions":[' + ",".join(page)).encode(), more=True)
            while not gone.done():
                page = await self.reader.run(rest.next_page)
                if not page:
                    await exchange.body(b"]}")
                    return
                await exchange.body(("," + ",".join(page)).encode(), more=True)
        finally:
            gone.cancel()
            await self.reader.run(rest.close)

    async def health(self, exchange, receive):
        try:
            self.reader.check()  # a trivial query: on the event loop
        except (sqlite3.Error, OhlogError) as ex:
            error_log.error("Health check failed: %s", ex)
            raise HTTPError(503, "the database cannot be read") from None
        await exchange.json(200, b'{"status":"ok"}')

    async def openapi(self, exchange, receive):
        await exchange.json(200, self._openapi)


async def _disconnect(receive):
    """Return once the client has gone (any body not read yet is skipped)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class _Exchange:
    """One request's response side, and what its log line needs."""

    __slots__ = ("scope", "send", "headers", "status", "size", "body_read")

    def __init__(self, scope, send):
        self.scope = scope
        self.send = send
        self.headers = dict(scope["headers"])
        self.status = 0
        self.size = 0
        # Whether nothing of the body remains unread: when something does, an
        # error response closes the connection rather than read on.
        self.body_read = (self.headers.get(b"content-length", b"0") == b"0"
                          and b"transfer-encoding" not in self.headers)

    async def start(self, status, headers):
        self.status = status
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def body(self, data, more=False):
        self.size += len(data)
        await self.send({"type": "http.response.body", "body": data, "more_body": more})

    async def json(self, status, data, headers=()):
        headers = [_JSON, _NOSNIFF, (b"content-length", b"%d" % len(data)), *headers]
        if status >= 400 and not self.body_read:
            headers.append(_CLOSE)
        await self.start(status, headers)
        await self.body(data)

    async def error(self, ex):
        if not self.status:
            await self.json(ex.status, orjson.dumps(ex.body), ex.headers)

    def log_line(self, seconds):
        client = self.scope.get("client")
        where = f"{client[0]}:{client[1]}" if client else "-"
        request = f'{self.scope["method"]} {_target(self.scope)} HTTP/{self.scope["http_version"]}'
        return f'{where} "{request}" {self.status} {self.size} {seconds * 1000:.1f}ms'


def _target(scope):
    target = scope.get("raw_path") or scope["path"].encode("utf-8", "backslashreplace")
    if scope["query_string"]:
        target += b"?" + scope["query_string"]
    return target.decode("ascii", "backslashreplace")


# ---------------------------------------------------------------------------
# The OpenAPI description


_EXAMPLE_SESSION = {"userId": "ABC123XYZ", "sessionId": "XYZ456ABC", "actions": [
    {"time": "2018-10-18T21:37:28-06:00", "type": "CLICK", "properties": {"locationX": 52, "locationY": 11}},
    {"time": "2018-10-18T21:37:30-06:00", "type": "VIEW", "properties": {"viewedId": "FDJKLHSLD"}},
    {"time": "2018-10-18T21:37:30-06:00", "type": "NAVIGATE",
     "properties": {"pageFrom": "communities", "pageTo": "inventory"}}]}


def openapi_document(token=False):
    """OpenAPI 3.0 for the API; with ``token``, every operation but /health needs it."""
    from . import __version__

    def ref(name):
        return {"$ref": f"#/components/schemas/{name}"}

    def json_response(description, schema):
        return {"description": description, "content": {"application/json": {"schema": ref(schema)}}}

    def query(name, description, schema=None, repeat=False):
        schema = schema or {"type": "string"}
        if repeat:
            schema = {"type": "array", "items": schema}
        # allowEmptyValue: an empty value is as if the parameter were not given
        return {"name": name, "in": "query", "required": False, "description": description,
                "allowEmptyValue": True, "schema": schema,
                **({"style": "form", "explode": True} if repeat else {})}

    errors = {
        "400": json_response("Invalid JSON, an invalid session or a malformed parameter", "Error"),
        **({"401": json_response("No valid bearer token", "Error")} if token else {}),
        "503": json_response("The database could not serve the request; retry", "Error"),
    }
    string = {"type": "string", "minLength": 1}
    document = {
        "openapi": "3.0.3",
        "info": {"title": "ohlog", "version": __version__,
                 "description": "User-activity session logs: send them, read them back."},
        "paths": {
            "/api/log": {"post": {
                "summary": "Store one session or an array of sessions",
                "description": "All or nothing: a 400 stores nothing. Sending the same "
                               "actions again stores nothing more (they count as duplicates).",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"oneOf": [ref("Session"), {"type": "array", "items": ref("Session")}]},
                    "example": _EXAMPLE_SESSION}}},
                "responses": {
                    "200": json_response("Stored", "Summary"), **errors,
                    "413": json_response("The body is larger than the server's limit", "Error"),
                    "415": json_response("The body is not sent as application/json", "Error"),
                },
            }},
            "/api/log/get": {"get": {
                "summary": "Actions matching every filter given, oldest first",
                "description": "A time without a UTC offset is compared with each action's "
                               "wall-clock time as written; with an offset (or Z), with its instant. "
                               "A start is the first moment of the unit it names, an end the last "
                               "(end=2018-10-31 includes all of that day).",
                "parameters": [
                    {**query("userId", "Only these users' actions", repeat=True), "example": ["ABC123XYZ"]},
                    {**query("type", "Only these types, in any case", repeat=True), "example": ["CLICK"]},
                    query("session", "Only these sessions' actions", repeat=True),
                    query("date", "Only within the year, month, day, hour, minute or second "
                                  "this names, such as 2018-10-18 (not with start or end)"),
                    {**query("start", "From this time on"), "example": "2018-10-18T21:37:25"},
                    {**query("end", "Up to this time, inclusive of the unit it names"),
                     "example": "2018-10-18T21:37:29"},
                    query("limit", "At most this many actions",
                          {"type": "integer", "minimum": 0, "maximum": (1 << 63) - 1}),
                    query("order", "By instant", {"type": "string", "enum": ["asc", "desc"]}),
                ],
                "responses": {"200": json_response("The actions", "Actions"),
                              "404": json_response("No action matches", "Actions"), **errors},
            }},
            "/health": {"get": {
                "summary": "Whether the server can read its database",
                "security": [],
                "responses": {"200": json_response("Healthy", "Health"),
                              "503": json_response("The database cannot be read", "Error")},
            }},
            "/openapi.json": {"get": {
                "summary": "This description",
                "responses": {"200": {"description": "OpenAPI 3.0",
                                      "content": {"application/json": {"schema": {"type": "object"}}}},
                              **({"401": errors["401"]} if token else {})},
            }},
        },
        "components": {"schemas": {
            "Session": {"type": "object", "required": ["userId", "sessionId", "actions"], "properties": {
                "userId": string, "sessionId": string,
                "actions": {"type": "array", "minItems": 1, "items": ref("Action")}}},
            "Action": {"type": "object", "required": ["time", "type", "properties"], "properties": {
                "time": {"type": "string", "description": "ISO 8601, such as 2018-10-18T21:37:28-06:00"},
                "type": string,
                "properties": {"type": "object", "description":
                               "CLICK needs numbers locationX and locationY, VIEW a string viewedId, "
                               "NAVIGATE strings pageFrom and pageTo"}}},
            "StoredAction": {"type": "object", "required": ["userId", "sessionId", "time", "type", "properties"],
                             "properties": {"userId": {"type": "string"}, "sessionId": {"type": "string"},
                                            "time": {"type": "string"}, "type": {"type": "string"},
                                            "properties": {"type": "object"}}},
            "Actions": {"type": "object", "required": ["actions"],
                        "properties": {"actions": {"type": "array", "items": ref("StoredAction")}}},
            "Summary": {"type": "object", "required": ["inserted", "duplicates"], "properties": {
                "inserted": {"type": "integer", "description": "Actions stored"},
                "duplicates": {"type": "integer", "description": "Actions already stored, not stored again"}}},
            "Error": {"type": "object", "required": ["error", "details"], "properties": {
                "error": {"type": "string"},
                "details": {"type": "array", "items": {
                    "type": "object", "required": ["path", "message"], "properties": {
                        "path": {"type": "string", "description": "Such as actions[2].time; [1].userId in an array"},
                        "message": {"type": "string"}}}}}},
            "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
        }},
    }
    if token:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document


# ---------------------------------------------------------------------------
# Running it


def is_loopback(host):
    """Whether ``host`` is a loopback address (or ``localhost``): nothing else can connect."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from outside


def exposure_warning(host, token):
    """The warning for listening beyond loopback without a token, or None."""
    if token or is_loopback(host):
        return None
    return (f"Warning: listening on {host} without a token: anyone who can reach this port "
            "can read and write the logs. Set --token or OHLOG_TOKEN.")


def serve(db, *, host="127.0.0.1", port=5000, token=None, max_body=DEFAULT_MAX_BODY, workers=1):
    """Run the API on uvicorn until interrupted. OhlogError if it cannot start."""
    try:
        import uvicorn
    except ImportError:
        raise OhlogError("ohlog serve needs the server extra: pip install 'ohlog[serve]'") from None
    from .paths import db_path

    db = db_path(db)
    app = create_app(db, token=token, max_body=max_body)  # fails here if the database does
    options = dict(host=host, port=port, access_log=False, server_header=False, log_level="info")
    if workers > 1:
        # Each worker process builds its own app through the factory, from the environment
        app.close()
        os.environ.update(OHLOG_DB=str(db), OHLOG_MAX_BODY=str(max_body))
        if token:
            os.environ["OHLOG_TOKEN"] = token
        else:
            os.environ.pop("OHLOG_TOKEN", None)
        uvicorn.run("openhouse_cli.server:create_app", factory=True, workers=workers, **options)
    else:
        uvicorn.run(app, **options)
