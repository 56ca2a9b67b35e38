"""The ASGI application: routes, the token, bodies, responses (large ones streamed), the access log."""

import asyncio
import hmac
import logging
import sqlite3
import time

import orjson

from ..errors import OhlogError
from ..store.postgres import is_url
from .cors import VARY, Cors, is_text
from .openapi import openapi_document
from . import reader as _reader
from .reader import READ_THREADS, Reader
from .requests import (HTTPError, is_json, next_link, parse_filters, parse_sessions,
                       validate_sessions)
from .writer import Writer

DEFAULT_MAX_BODY = 1 << 20  # bytes

access_log = logging.getLogger("ohlog.access")
error_log = logging.getLogger("ohlog.server")

_JSON = (b"content-type", b"application/json")
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_CLOSE = (b"connection", b"close")


def _setup_access_log():
    """One line a request on stderr, unless the host application configured logging."""
    if not access_log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        access_log.addHandler(handler)
        error_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = error_log.propagate = False


class App:
    """The ASGI application; make it with create_app()."""

    def __init__(self, path, *, token=None, max_body=DEFAULT_MAX_BODY, commit_batch=None,
                 read_threads=READ_THREADS, allow_origins=(), public_post=False, max_rows=None):
        self.path = path
        self.token = token.encode() if token else None
        # public_post: POST /api/log needs no token (a public page cannot keep one secret)
        self.public_post = public_post
        # Browsers on these origins may call the API (see cors.py); none: no CORS at all
        self.cors = Cors(allow_origins) if allow_origins else None
        self.max_body = max_body
        self.max_rows = max_rows  # the most actions a GET answers (None: all), with a next link
        if is_url(path):
            from .postgres import PgWriter

            self.writer = PgWriter(path, commit_batch)
        else:
            self.writer = Writer(path, commit_batch)
        self.reader = Reader(path, read_threads)
        self.routes = {
            "/api/log": {"POST": self.post_log},
            "/api/log/get": {"GET": self.get_log},
            "/health": {"GET": self.health},
            "/openapi.json": {"GET": self.openapi},
        }
        document = openapi_document(bool(token))
        if token and public_post:  # the POST, like /health, needs no token
            post = document["paths"]["/api/log"]["post"]
            post["security"] = []
            post["responses"].pop("401", None)
        self._openapi = orjson.dumps(document)

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
            if self.cors is not None:
                # Before anything else: a page on an origin not allowed gets nothing
                origin = exchange.headers.get(b"origin")
                exchange.cors = [VARY]
                exchange.cors += self.cors.check(origin)
                exchange.origin = origin
            methods = self.routes.get(scope["path"])
            if methods is None:
                raise HTTPError(404, f"no such endpoint: {scope['path']}")
            if self.cors is not None and self.cors.is_preflight(scope["method"], exchange.headers):
                # No token: a browser never sends one with a preflight
                await exchange.start(204, self.cors.preflight(exchange.headers, methods))
                await exchange.body(b"")
                return
            handler = methods.get(scope["method"])
            if handler is None and scope["method"] == "HEAD" and "GET" in methods:
                # As GET, without the body (uptime checkers ask so)
                handler, exchange.head = methods["GET"], True
            if handler is None:
                allow = ", ".join([*methods, *(["HEAD"] if "GET" in methods else [])]).encode()
                raise HTTPError(405, f"method {scope['method']} not allowed: use {allow.decode()}",
                                headers=[(b"allow", allow)])
            if self.token is not None and handler != self.health and not (
                    self.public_post and handler == self.post_log):
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
        content_type = exchange.headers.get(b"content-type", b"")
        # text/plain (a beacon's) only from an allowed origin: without one, as before
        if not (is_json(content_type) or (exchange.origin and is_text(content_type))):
            raise HTTPError(415, "send the sessions as JSON, with Content-Type: application/json")
        encoding = exchange.headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"identity", b"gzip", b"x-gzip"):
            raise HTTPError(415, f"Content-Encoding {encoding.decode('latin-1')!r} is not supported:"
                                 " send the body plain, or gzip-compressed")
        body = await self.read_body(exchange, receive)
        if encoding != b"identity":
            body = self.gunzip(body)
        rows = validate_sessions(*parse_sessions(body))
        try:
            inserted, duplicates = await self.writer.write(rows)
        except (sqlite3.Error, OhlogError) as ex:
            error_log.error("Could not store a request: %s", ex)
            if getattr(ex, "unknown_outcome", False):
                message = ("the database did not confirm storing this request: send it again "
                           "(an action sent again is never stored twice)")
            else:
                message = "the database could not store this request, and nothing of it was stored: try again"
            raise HTTPError(503, message, headers=[(b"retry-after", b"1")]) from None
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

    def gunzip(self, body):
        """A gzip-compressed body, decompressed no further than the body limit
        (a small body can expand a thousandfold)."""
        import zlib

        parts, size = [], 0
        while body:  # gzip members may follow one another
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                part = inflater.decompress(body, self.max_body + 1 - size)
            except zlib.error as ex:
                raise HTTPError(400, f"the body is not valid gzip (Content-Encoding: gzip): {ex}") from None
            size += len(part)
            if size > self.max_body or inflater.unconsumed_tail:
                raise self.too_large(" once decompressed")
            if not inflater.eof:
                raise HTTPError(400, "the body is not valid gzip (Content-Encoding: gzip): it ends early")
            parts.append(part)
            body = inflater.unused_data
        return b"".join(parts)

    def too_large(self, how=""):
        return HTTPError(413, f"the body is larger{how} than the limit of {self.max_body:,} bytes: "
                              "send fewer sessions a request")

    async def get_log(self, exchange, receive):
        filters = parse_filters(exchange.scope["query_string"])
        after = None  # with max_rows: the place of the last action sent, if more match
        try:
            if self.max_rows is not None:
                (page, after), rest = await self.reader.capped(filters, self.max_rows), None
            elif self.reader.postgres:
                page, rest = await self.reader.pg_quick.small_result(filters, _reader.INLINE_ROWS), None
            else:
                page, rest = self.reader.quick(filters), None
            if page is None:
                page, rest = await self.reader.run(self.reader.first_page, filters)
        except OhlogError as ex:
            error_log.error("Query failed: %s", ex)
            raise HTTPError(503, "the database could not answer: try again",
                            headers=[(b"retry-after", b"1")]) from None
        if not page:
            await exchange.json(404, b'{"actions":[]}')
        elif after is not None:
            # The same request again, continuing after the last action sent
            limit = filters.get("limit")
            link = next_link(exchange.scope["path"], exchange.scope["query_string"], after,
                             None if limit is None else limit - len(page))
            body = b'{"actions":[%s],"next":%s}' % (",".join(page).encode(), orjson.dumps(link))
            await exchange.json(200, body, [(b"link", b'<%s>; rel="next"' % link.encode())])
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
            await self.reader.check()  # a trivial query
        except (sqlite3.Error, OhlogError) as ex:
            error_log.error("Health check failed: %s", ex)
            raise HTTPError(503, "the database cannot be read",
                            headers=[(b"retry-after", b"1")]) from None
        await exchange.json(200, b'{"status":"ok"}')

    async def openapi(self, exchange, receive):
        await exchange.json(200, self._openapi)


async def _disconnect(receive):
    """Return once the client has gone (any body not read yet is skipped)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class _Exchange:
    """One request's response side, and what its log line needs."""

    __slots__ = ("scope", "send", "headers", "status", "size", "body_read", "cors", "origin", "head")

    def __init__(self, scope, send):
        self.scope = scope
        self.send = send
        self.headers = dict(scope["headers"])
        self.status = 0
        self.size = 0
        self.cors = []  # headers every answer carries (CORS, when on)
        self.origin = None  # the request's Origin, once known to be allowed
        self.head = False  # a HEAD answered as its GET, headers only
        # Whether nothing of the body remains unread: when something does, an
        # error response closes the connection rather than read on.
        self.body_read = (self.headers.get(b"content-length", b"0") == b"0"
                          and b"transfer-encoding" not in self.headers)

    async def start(self, status, headers):
        self.status = status
        if self.cors:
            headers = [*headers, *self.cors]
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def body(self, data, more=False):
        if self.head:
            data = b""
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
