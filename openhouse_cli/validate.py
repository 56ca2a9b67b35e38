"""Turning one session document into action rows, or a located error.

The rules (README "Validation"): ``userId`` and ``sessionId`` are non-empty
strings, ``actions`` a non-empty list; each action has an ISO 8601 ``time``,
a non-empty string ``type`` and an object ``properties``. The known types
have their properties checked; other types, and extra properties, are kept
(properties are stored with their keys sorted). Keys other than these are
ignored.
"""

import zlib

import orjson

from .errors import InvalidInput
from .times import TimeError, parse_action_time

# The properties each known type must have, and the check each must pass.
_NUMBER = ("a number", lambda v: type(v) in (int, float))
_STRING = ("a string", lambda v: type(v) is str)
KNOWN_TYPES = {
    "CLICK": (("locationX", _NUMBER), ("locationY", _NUMBER)),
    "VIEW": (("viewedId", _STRING),),
    "NAVIGATE": (("pageFrom", _STRING), ("pageTo", _STRING)),
}

COLUMNS = (
    "user_id", "session_id", "time", "utc_us", "local_us", "offset_s",
    "type", "properties", "fingerprint",
)


def describe(value):
    """A short rendering of a JSON value for error messages."""
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "…")
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def session_rows(doc, location):
    """Validate the session document ``doc``; return its action rows.

    Each row is a tuple in ``COLUMNS`` order. Raises InvalidInput naming
    ``location`` and the offending field. The loop is ingest's hot path: it
    only tests; when a test fails, ``_explain`` works out the exact message.
    """
    if type(doc) is not dict:
        raise InvalidInput(location, "", f"expected a session object, got {describe(doc)}")
    user = doc.get("userId")
    session = doc.get("sessionId")
    actions = doc.get("actions")
    if type(user) is not str or not user or type(session) is not str or not session \
            or type(actions) is not list or not actions:
        _explain_session(doc, location)
    key_prefix = f"{user}\x1f{session}\x1f"
    plain_ids = key_prefix.count("\x1f") == 2  # neither id holds \x1f itself
    rows = []
    append = rows.append
    seen = set()
    parse_time, known, dumps, sort_keys = parse_action_time, _FAST_CHECKS, orjson.dumps, orjson.OPT_SORT_KEYS
    for index, action in enumerate(actions):
        if type(action) is not dict:
            _explain_action(action, index, location)
        time = action.get("time")
        kind = action.get("type")
        properties = action.get("properties")
        if type(time) is not str or type(kind) is not str or not kind or type(properties) is not dict:
            _explain_action(action, index, location)
        try:
            utc_us, local_us, offset_s = parse_time(time)
        except TimeError as ex:
            raise InvalidInput(location, f"actions[{index}].time", f"{ex}: {describe(time)}") from None
        check = known.get(kind)
        if check is None and kind.upper() in known:  # types match case-insensitively
            check = known[kind.upper()]
        if check is not None and not check(properties):
            _explain_action(action, index, location)
        # Stored with sorted keys, so that the fingerprint below ignores key order
        try:
            properties_json = dumps(properties, option=sort_keys)
        except orjson.JSONEncodeError:
            properties_json = _dumps_big_ints(properties, location, index)
        if plain_ids and "\x1f" not in kind:
            key = (key_prefix + time + "\x1f" + kind + "\x1f").encode()
        else:
            key = _escaped_key(user, session, time, kind)
        fingerprint = _fingerprint(key + properties_json)
        if fingerprint in seen:
            # An identical action repeated inside one document is a real
            # repeat, not a retry: give each repeat a fingerprint of its own.
            fingerprint = _repeat_fingerprint(fingerprint, seen)
        seen.add(fingerprint)
        append((user, session, time, utc_us, local_us, offset_s, kind,
                properties_json.decode(), fingerprint))
    return rows


def _number(value):
    return type(value) is int or type(value) is float


# The same rules as KNOWN_TYPES, as one fast test a type
_FAST_CHECKS = {
    "CLICK": lambda p: _number(p.get("locationX")) and _number(p.get("locationY")),
    "VIEW": lambda p: type(p.get("viewedId")) is str,
    "NAVIGATE": lambda p: type(p.get("pageFrom")) is str and type(p.get("pageTo")) is str,
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
        raise InvalidInput(location, "", (
            "a line --rejects wrote for input that was not JSON: replace the whole line "
            "with its ohlog_raw text, fixed"))
    for key in ("userId", "sessionId"):
        value = doc.get(key)
        if type(value) is not str or not value:
            raise InvalidInput(location, key, _wrong(doc, key, "a non-empty string"))
    raise InvalidInput(location, "actions", _wrong(doc, "actions", "a non-empty list of actions"))


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
    for key, (expected, check) in KNOWN_TYPES[kind.upper()]:
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


def _escaped_key(user, session, time, kind):
    # Fields joined by \x1f are ambiguous when a field holds \x1f itself
    # ("a\x1fb" + "c" against "a" + "b\x1fc"). Such actions are keyed by
    # \x1e and their JSON list instead, which holds no raw \x1f: it can equal
    # neither another such key nor a joined one (those hold exactly four).
    return b"\x1e" + orjson.dumps([user, session, time, kind])


def _fingerprint(data):
    """64 bits that identify an action across retries (user, session, time
    text, type and properties), as a signed SQLite integer.

    CRC-32 and Adler-32 side by side: 2.5x cheaper than a 64-bit BLAKE2 on
    the hot path. Only actions at the same microsecond instant share the
    unique index's leading column, so a collision would need two different
    actions at one instant whose 64 bits also agree.
    """
    return ((zlib.adler32(data) << 32) | zlib.crc32(data)) - (1 << 63)


def _repeat_fingerprint(fingerprint, seen):
    counter = 1
    while True:
        candidate = _fingerprint(b"%d\x1f%d" % (fingerprint, counter))
        if candidate not in seen:
            return candidate
        counter += 1
