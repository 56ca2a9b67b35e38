"""Turning one session document into action rows, or a located error.

The rules (README "Validation"): ``userId`` and ``sessionId`` are non-empty
strings, ``actions`` a non-empty list; each action has an ISO 8601 ``time``,
a non-empty string ``type`` and an object ``properties``. The known types
have their properties checked; other types, and extra properties, are kept
(properties are stored with their keys sorted). Keys other than these are
ignored.
"""

import hashlib

import orjson

from .errors import InvalidInput
from .schema import COLUMNS  # noqa: F401  (the row layout session_rows builds)
from .times import TimeError, parse_action_time

# The properties each known type must have, and the check each must pass.
_NUMBER = ("a number", lambda v: type(v) in (int, float))
_STRING = ("a string", lambda v: type(v) is str)
KNOWN_TYPES = {
    "CLICK": (("locationX", _NUMBER), ("locationY", _NUMBER)),
    "VIEW": (("viewedId", _STRING),),
    "NAVIGATE": (("pageFrom", _STRING), ("pageTo", _STRING)),
}
# Matched under Unicode case folding (schema.type_key), as queries match types
_RULES = {name.casefold(): rules for name, rules in KNOWN_TYPES.items()}


def describe(value):
    """A short rendering of a JSON value for error messages."""
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "…")
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object" if value else "an empty object"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    return repr(value)


def session_rows(doc, location):
    """Validate the session document ``doc``; return its action rows.

    Each row is a tuple in ``COLUMNS`` order. Raises InvalidInput naming
    ``location`` and the offending field. The loop is ingest's hot path: it
    only tests; when a test fails, ``_explain`` works out the exact message.
    """
    try:
        return _session_rows(doc, location)
    except (TypeError, UnicodeEncodeError):
        # A lone surrogate cannot be written as UTF-8 (orjson raises a
        # TypeError). The readers refuse them in input text; documents
        # handed over by library callers and tests arrive here instead.
        field = lone_surrogate_at(doc)
        if field is None:
            raise
        raise InvalidInput(location, field, "a lone surrogate is not valid Unicode") from None


def lone_surrogate_at(value, path: str = "") -> str | None:
    """The path of the first string (a key too) in ``value`` holding a lone
    surrogate (``""``: ``value`` itself), or None. A walk with a stack of its
    own: a recursive one gave up, with a traceback, on a value nested nearly
    as deep as the parser takes."""
    stack = [(value, path)]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if _has_surrogate(value):
                return path
        elif isinstance(value, dict):
            for key in reversed(list(value)):
                if isinstance(key, str) and _has_surrogate(key):
                    return f"{path}.{key!a}".lstrip(".")
                stack.append((value[key], f"{path}.{key}".lstrip(".") if isinstance(key, str) else path))
        elif isinstance(value, list):
            for index in reversed(range(len(value))):
                stack.append((value[index], f"{path}[{index}]"))
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # only a lone surrogate cannot be encoded
        return True
    return False


def _session_rows(doc, location):
    if type(doc) is not dict:
        # A list of sessions on one NDJSON line (or in an array): one a line, as jq -c '.[]' writes them
        hint = ("; write one session a line (jq -c '.[]' splits a list)"
                if type(doc) is list and doc and location != "body" else "")
        raise InvalidInput(location, "", f"expected a session object, got {describe(doc)}{hint}")
    user = doc.get("userId")
    session = doc.get("sessionId")
    actions = doc.get("actions")
    if type(user) is not str or not user or type(session) is not str or not session \
            or type(actions) is not list or not actions:
        _explain_session(doc, location)
    # The fingerprint's key: [user, session], [time, type] and the sorted
    # properties, each self-delimiting JSON, so the encoding is unambiguous.
    # The session's part (and the "[" that opens [time, type]) is hashed
    # once; each action continues from a copy.
    session_hash = _ACTION_HASH.copy()
    session_hash.update(orjson.dumps([user, session]) + b"[")
    rows = []
    append = rows.append
    seen = set()  # the fingerprints so far
    repeats = None  # how often each repeated one was repeated
    parse_time, dumps, sort_keys = parse_action_time, orjson.dumps, orjson.OPT_SORT_KEYS
    types = _TYPES
    for action in actions:
        # (len(rows) is this action's index: one row an action)
        if type(action) is not dict:
            _explain_action(action, len(rows), location)
        time = action.get("time")
        kind = action.get("type")
        properties = action.get("properties")
        if type(time) is not str or type(kind) is not str or not kind or type(properties) is not dict:
            _explain_action(action, len(rows), location)
        try:
            utc_us, local_us, offset_s, ns = parse_time(time)
        except TimeError as ex:
            raise InvalidInput(location, f"actions[{len(rows)}].time", f"{ex}: {describe(time)}") from None
        known = types.get(kind)
        if known is None:
            known = _type_entry(kind)
        kind_key, kind_json, check = known
        if check is not None and not check(properties):
            _explain_action(action, len(rows), location)
        # Stored with sorted keys, so that the fingerprint below ignores key order
        try:
            properties_json = dumps(properties, option=sort_keys)
        except orjson.JSONEncodeError:
            properties_json = _dumps_big_ints(properties, location, len(rows))
        # orjson.dumps([time, kind]) after its "[", then the properties
        digest = session_hash.copy()
        digest.update(dumps(time))
        digest.update(kind_json)
        digest.update(properties_json)
        fingerprint = digest.digest()
        # An identical action repeated inside one document is a real repeat,
        # not a retry: the k-th repeat gets a fingerprint of its own.
        if fingerprint in seen:
            if repeats is None:
                repeats = {}
            k = repeats[fingerprint] = repeats.get(fingerprint, 0) + 1
            fingerprint = _repeat_fingerprint(fingerprint, k)
        else:
            seen.add(fingerprint)
        append((user, session, time, utc_us, ns, local_us, offset_s, kind, kind_key,
                properties_json.decode(), fingerprint))
    return rows


# What each type string seen maps to: (schema.type_key, its JSON text after
# the time's, with the comma before and the closing bracket, its fast check
# or None); cleared when it grows, so
# that hostile input with millions of types cannot grow it without bound.
_TYPES: dict[str, tuple] = {}
_TYPES_LIMIT = 10_000


def _type_entry(kind):
    kind_key = kind.casefold()  # schema.type_key: one notion of case everywhere
    entry = (kind_key, b"," + orjson.dumps(kind) + b"]", _FAST_CHECKS.get(kind_key))
    if len(_TYPES) >= _TYPES_LIMIT:
        _TYPES.clear()
    _TYPES[kind] = entry
    return entry


_NUMBERS = frozenset((int, float))  # (not bool: type(True) is bool)

# The same rules as KNOWN_TYPES, as one fast test a type
_FAST_CHECKS = {
    "click": lambda p: type(p.get("locationX")) in _NUMBERS and type(p.get("locationY")) in _NUMBERS,
    "view": lambda p: type(p.get("viewedId")) is str,
    "navigate": lambda p: type(p.get("pageFrom")) is str and type(p.get("pageTo")) is str,
}


# Keys people write for the ones ohlog wants (other log formats' names)
_OTHER_NAMES = {
    "userId": ("user", "user_id", "uid", "userid", "userID"),
    "sessionId": ("session", "session_id", "sid", "sessionid", "sessionID"),
    "actions": ("events", "event", "action", "activities", "activity", "items", "entries"),
    "time": ("timestamp", "ts", "date", "datetime", "created_at", "at", "when"),
    "type": ("event", "kind", "name", "action", "eventType", "event_type"),
    "properties": ("props", "data", "attributes", "params", "payload", "details", "fields"),
}


def _wrong(obj, key, expected):
    """The message for ``obj[key]``, which is not ``expected``: "missing" when
    the key is absent, with a hint when the object has a likely other name for it."""
    if key in obj:
        return f"expected {expected}, got {describe(obj[key])}"
    hint = _other_name(obj, key)
    return f"missing (expected {expected}){hint}"


def _other_name(obj, key):
    folded = {name.casefold(): name for name in obj if isinstance(name, str)}
    for other in (key, *_OTHER_NAMES.get(key, ())):
        if other.casefold() in folded:
            return f"; found {folded[other.casefold()]!r}: ohlog reads {key!r}"
    return ""


def _explain_session(doc, location):
    if "ohlog_raw" in doc and "ohlog_error" in doc and "userId" not in doc:
        exact = (" (its exact bytes, which were not UTF-8, are in ohlog_raw_base64)"
                 if "ohlog_raw_base64" in doc else "")
        raise InvalidInput(location, "", (
            f"a line --rejects wrote for {_raw_kind(doc['ohlog_raw'])}: replace the whole line "
            f"with its ohlog_raw text, fixed{exact}"))
    for key in ("userId", "sessionId"):
        value = doc.get(key)
        if type(value) is not str or not value:
            raise InvalidInput(location, key, _wrong(doc, key, "a non-empty string") + _which_shape(doc))
    raise InvalidInput(location, "actions", _wrong(doc, "actions", "a non-empty list of actions")
                       + _which_shape(doc))


def _raw_kind(raw):
    """What a rejected line that --rejects kept as text was: not JSON, or JSON
    but no object (a list of sessions on one NDJSON line, say)."""
    import orjson

    try:
        value = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        return "input that was not JSON"
    return f"a record that was JSON but not a session object ({describe(value)})"


def _which_shape(doc):
    """What a record that is not a session document is, when it is one of
    ohlog's own outputs or a bare action: users feed those back in."""
    if "actions" not in doc and "time" in doc and "type" in doc:
        return ("; this is one action, as ohlog query prints them, not a session document"
                " (ohlog copy moves actions between databases)")
    actions = doc.get("actions")
    if "userId" not in doc and type(actions) is list and actions and type(actions[0]) is dict \
            and "userId" in actions[0]:
        return ("; this is ohlog query --json output, not a session document"
                " (ohlog copy moves actions between databases)")
    if "userId" not in doc:
        for key, value in doc.items():
            if type(value) is list and value and type(value[0]) is dict and "userId" in value[0] \
                    and "actions" in value[0]:
                # An export that wraps the sessions: {"sessions": [...]}, or an array of such
                import shlex

                program = f"if type == \"array\" then .[] else . end | .[{orjson.dumps(key).decode()}][]"
                return (f"; the sessions are in this object's {key!r} list: feed them one a line,"
                        f" jq -c {shlex.quote(program)} FILE | ohlog ingest -")
    return ""


def _explain_action(action, index, location):
    """Raise the InvalidInput for an action that failed the fast checks."""
    if type(action) is not dict:
        raise InvalidInput(location, f"actions[{index}]", f"expected an action object, got {describe(action)}")
    if type(action.get("time")) is not str:
        raise InvalidInput(
            location, f"actions[{index}].time", _wrong(action, "time", "an ISO 8601 time string")
        )
    kind = action.get("type")
    if type(kind) is not str or not kind:
        raise InvalidInput(location, f"actions[{index}].type", _wrong(action, "type", "a non-empty string"))
    properties = action.get("properties")
    if type(properties) is not dict:
        raise InvalidInput(location, f"actions[{index}].properties", _wrong(action, "properties", "an object"))
    for key, (expected, check) in _RULES[kind.casefold()]:
        if not check(properties.get(key)):
            raise InvalidInput(
                location,
                f"actions[{index}].properties.{key}",
                _wrong(properties, key, f"{expected} for {kind}"),
            )
    raise AssertionError("unexplained invalid action")  # pragma: no cover


def _dumps_big_ints(value, location, index):
    # orjson refuses integers beyond 64 bits, which the stdlib parser keeps,
    # and nesting deeper than it writes (255 levels)
    import json

    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    except RecursionError:
        raise InvalidInput(location, f"actions[{index}].properties", "nested too deeply") from None


_ACTION = b"ohlog-action"
_REPEAT = b"ohlog-repeat"
_ACTION_HASH = hashlib.blake2b(digest_size=16, person=_ACTION)


def _repeat_fingerprint(fingerprint: bytes, k: int) -> bytes:
    """The fingerprint of the k-th repeat (k >= 1) of an action inside one document.

    BLAKE2b-128, personalised apart from action fingerprints: nobody can
    build two actions with one fingerprint, so no client can make another's
    action a "duplicate" (migration m003 keeps its own copy of this rule).
    """
    return hashlib.blake2b(b"%b%d" % (fingerprint, k), digest_size=16, person=_REPEAT).digest()
