"""Browsers as clients: which origins may call the API, and the CORS headers they get.

With no origin allowed, nothing here applies and the API answers as it always
did. With origins allowed (``ohlog serve --allow-origin``), a browser request
carries an ``Origin`` header, and:

* one from an allowed origin gets ``Access-Control-Allow-Origin`` naming it,
  its preflight (``OPTIONS``) is answered for the route's methods and the
  headers the API reads, and its ``text/plain`` POST (what
  ``navigator.sendBeacon`` sends) is read as JSON;
* one from any other origin (``null`` included) is refused with 403 before
  anything is read or stored. This matters most for a ``text/plain`` POST,
  which a browser sends from any page without a preflight.

A request without ``Origin`` (curl, a server, a mobile app) is answered as
before. ``Access-Control-Allow-Credentials`` is never sent: the API uses no
cookies, and its token travels in ``Authorization``, which a page must set
itself (and which the preflight allows).
"""

from urllib.parse import urlsplit

from .requests import HTTPError

# Request headers a page may send: what the API reads, nothing more.
ALLOWED_HEADERS = (b"content-type", b"authorization")
# Response headers a page may read beyond the CORS-safelisted ones.
EXPOSED_HEADERS = b"retry-after, www-authenticate"
# How long a browser may reuse a preflight's answer: 10 minutes, so a changed
# list of origins takes effect soon (Chromium caps it at 2 hours anyway).
MAX_AGE = b"600"
_DEFAULT_PORTS = {"http": 80, "https": 443}
VARY = (b"vary", b"origin")


def normalize_origin(text: str) -> str:
    """``text`` as a browser writes it in ``Origin``: ``scheme://host[:port]``, lowercase,
    without a default port. ValueError, saying why, for anything that is not one origin."""
    value = text.strip()
    if value in ("*", "null"):
        raise ValueError(f"{value!r} would let any page in: name each origin, "
                         "such as https://www.example.com")
    if not value.isascii():
        raise ValueError(f"{text!r}: give the host in its ASCII (punycode) form, "
                         "as browsers send it")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as ex:
        raise ValueError(f"{text!r} is not an origin: {ex}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{text!r} is not an origin: expected http(s)://host[:port], "
                         "such as https://www.example.com")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "?" in value or "#" in value:
        raise ValueError(f"{text!r} is not an origin: an origin has no path, query or fragment")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{text!r} is not an origin: an origin has no user or password")
    host = parts.hostname.lower()  # urlsplit drops an IPv6 address's brackets
    if ":" in host:
        host = f"[{host}]"
    origin = f"{scheme}://{host}"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        origin += f":{port}"
    return origin


class Cors:
    """The allowed origins, and what a request from each gets."""

    def __init__(self, origins):
        self.origins = frozenset(normalize_origin(origin) for origin in origins)

    def check(self, origin):
        """The CORS headers for an answer to a request from ``origin`` (None: no Origin
        header, so none). HTTPError 403 for a request from an origin not allowed."""
        if origin is None:
            return []
        if origin.decode("latin-1") not in self.origins:
            raise HTTPError(403, f"origin {origin.decode('latin-1')} is not allowed: this server "
                                 "answers pages only from the origins given with --allow-origin")
        return [(b"access-control-allow-origin", origin),
                (b"access-control-expose-headers", EXPOSED_HEADERS)]

    @staticmethod
    def is_preflight(method, headers):
        return (method == "OPTIONS" and b"origin" in headers
                and b"access-control-request-method" in headers)

    @staticmethod
    def preflight(headers, methods):
        """The headers of a 204 answering a preflight for a route with ``methods``
        (the origin already checked); HTTPError 403 naming what is not allowed."""
        method = headers[b"access-control-request-method"].decode("latin-1")
        if method not in methods:
            raise HTTPError(403, f"method {method} is not allowed here: use {', '.join(methods)}")
        asked = headers.get(b"access-control-request-headers", b"").lower()
        for name in filter(None, (name.strip() for name in asked.split(b","))):
            if name not in ALLOWED_HEADERS:
                raise HTTPError(403, f"header {name.decode('latin-1')} is not allowed: send only "
                                     f"{', '.join(h.decode() for h in ALLOWED_HEADERS)}")
        return [(b"access-control-allow-methods", ", ".join(methods).encode()),
                (b"access-control-allow-headers", b", ".join(ALLOWED_HEADERS)),
                (b"access-control-max-age", MAX_AGE)]


def is_text(content_type):
    """``text/plain`` in UTF-8 (or with no charset): what ``navigator.sendBeacon`` sends
    for a string, and a page may POST without a preflight."""
    media, _, params = content_type.lower().partition(b";")
    if media.strip() != b"text/plain":
        return False
    for param in params.split(b";"):
        name, _, value = param.partition(b"=")
        if name.strip() == b"charset" and value.strip().strip(b'"') not in (b"utf-8", b"utf8"):
            return False
    return True
