"""Reading requests: POST bodies into validated rows, query strings into filters.

What is wrong with a request is raised as HTTPError, which the application
turns into its response.
"""

import base64
import re
import struct
from urllib.parse import quote, unquote_to_bytes, urlencode, urlunsplit

import orjson

from ..errors import InvalidInput
from ..fields import may_hold_big_int
from ..repeated_keys import could_repeat
from ..times import TimeError, parse_time_spec, resolve_range
from ..validate import session_rows

MAX_DETAILS = 100
MAX_QUERY_FIELDS = 1000


class HTTPError(Exception):
    """A response other than 200, with a JSON body ``{"error": ..., "details": [...]}``."""

    def __init__(self, status, error, details=(), headers=()):
        super().__init__(error)
        self.status = status
        self.body = {"error": error, "details": list(details)}
        self.headers = list(headers)


def parse_sessions(body):
    """The session documents in a POST body, and whether it was an array.

    Valid JSON is parsed by orjson; anything else goes through ingest's
    reader, for its exact messages. So do bodies that may hold an integer
    beyond 64 bits, which orjson would turn into an inexact float.
    """
    if may_hold_big_int(body):
        return _parse_slowly(body)
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _parse_slowly(body)
    docs, is_array = (value, True) if isinstance(value, list) else ([value], False)
    if could_repeat(body, len(docs)):  # the reader names a session's repeated actions key
        return _parse_slowly(body)
    return docs, is_array


def _parse_slowly(body):
    import io

    from ..readers import read_records

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
            path = error.field if not is_array or not error.field else f"[{len(docs)}].{error.field}"
            raise HTTPError(400, f"{path}: {message}" if path else message, [{"path": path, "message": message}])
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


# sessionId as in the POST body; session as the original GET spelled it
_LISTS = {"userId": "users", "type": "types", "sessionId": "sessions", "session": "sessions"}
_SINGLE = ("date", "start", "end", "limit", "order", "after")
KNOWN_PARAMETERS = (*_LISTS, *_SINGLE)


def parse_filters(query_string):
    """The query_actions filters for GET /api/log/get; HTTPError 400 naming a bad parameter.

    Repeated ``userId``, ``type`` and ``sessionId`` (or ``session``) mean any
    of them; an empty value is as if the parameter were not given. An unknown
    parameter is refused rather than ignored: a misspelt filter would
    otherwise answer with every action.
    """
    lists = {name: [] for name in dict.fromkeys(_LISTS.values())}
    single = {}
    for name, value in _query_pairs(query_string):
        if name not in KNOWN_PARAMETERS:
            if not name and not value:
                continue  # an empty field, as in a&&b or a trailing &
            message = f"unknown parameter {name!r}: the known ones are {', '.join(KNOWN_PARAMETERS)}"
            raise HTTPError(400, message, [{"path": name, "message": message}])
        if not value:
            continue
        if name in _LISTS:
            lists[_LISTS[name]].append(value)
        else:
            if name in single:
                raise _bad(name, "give it at most once")
            single[name] = value
    filters = {name: tuple(values) for name, values in lists.items()}
    if "date" in single and ("start" in single or "end" in single):
        raise _bad("date", "use date alone, or start and end")
    specs = {}
    for name in ("date", "start", "end"):
        if name in single:
            try:
                specs[name] = parse_time_spec(single[name])
            except TimeError as ex:
                hint = ""
                if _PLUS_AS_SPACE.search(single[name]):
                    hint = " (a + in a URL's query string means a space: write the offset's + as %2B)"
                raise _bad(name, str(ex) + hint) from None
    if specs:
        first, last = ("date", "date") if "date" in specs else ("start", "end")
        try:
            span = resolve_range(specs.get(first), specs.get(last), names=(first, last))
        except TimeError as ex:
            raise _bad(first, str(ex)) from None
        filters["start"], filters["end"] = span.start, span.end
    if "limit" in single:
        text = single["limit"]
        if not (text.isascii() and text.isdigit()) or int(text) >= 1 << 63:
            raise _bad("limit", f"expected a whole number, 0 or more, got {text!r}")
        filters["limit"] = int(text)
    if "order" in single:
        if single["order"] not in ("asc", "desc"):
            raise _bad("order", f"expected asc or desc, got {single['order']!r}")
        filters["order"] = single["order"]
    if "after" in single:
        filters["after"] = _decode_cursor(single["after"])
    return filters


# A cursor is an action's place in the order, (utc_us, ns, id), packed and
# base64url-encoded: opaque to clients, so that its form may change.
_CURSOR = struct.Struct(">qHq")
_CURSOR_RE = re.compile(r"[A-Za-z0-9_-]{24}")  # 18 bytes, exactly


def encode_cursor(key):
    """The ``after`` value that continues after the action at ``key`` (utc_us, ns, id)."""
    return base64.urlsafe_b64encode(_CURSOR.pack(*key)).decode("ascii")


def _decode_cursor(text):
    if _CURSOR_RE.fullmatch(text):
        utc_us, ns, id_ = _CURSOR.unpack(base64.urlsafe_b64decode(text))
        if ns <= 999 and id_ >= 0:
            return utc_us, ns, id_
    raise _bad("after", f"not a cursor this server gave, got {text[:40]!r}: "
                        "follow the next link as it was given")


def next_link(path, query_string, key, limit):
    """The link to the page after the action at ``key``: the request's own
    parameters, with ``after`` its cursor and ``limit`` (if one was given)
    what remains of it. The filters give the same bounds on every page:
    GET's times are absolute (no "2h ago", whose bound would move)."""
    pairs = [(name, value) for name, value in _query_pairs(query_string)
             if value and name not in ("after", "limit")]
    if limit is not None:
        pairs.append(("limit", str(limit)))
    pairs.append(("after", encode_cursor(key)))
    return urlunsplit(("", "", path, urlencode(pairs, quote_via=quote, safe=":"), ""))


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


# A time whose offset's + came through as a space: 2018-10-18T21:37:28 06:00
_PLUS_AS_SPACE = re.compile(r"\d \d\d(:?\d\d)?$")


def _bad(name, message):
    return HTTPError(400, f"invalid parameter {name}: {message}" if name else message,
                     [{"path": name, "message": message}])


def is_json(content_type):
    """``application/json``, or any ``.../...+json``, whatever the parameters."""
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json"))
