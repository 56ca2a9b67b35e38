"""Turning one session document into action rows, or a located error.

The rules (README "Validation"): ``userId`` and ``sessionId`` are non-empty
strings, ``actions`` a non-empty list; each action has an ISO 8601 ``time``,
a non-empty string ``type`` and an object ``properties``. The known types
have their properties checked; other types, and extra properties, are kept
as they are. Keys other than these are ignored.
"""

from hashlib import blake2b

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
    ``location`` and the offending field.
    """
    if not isinstance(doc, dict):
        raise InvalidInput(location, "", f"expected a session object, got {describe(doc)}")
    user = _non_empty_string(doc, "userId", location)
    session = _non_empty_string(doc, "sessionId", location)
    actions = doc.get("actions")
    if not isinstance(actions, list) or not actions:
        raise InvalidInput(
            location, "actions", f"expected a non-empty list of actions, got {_got(doc, 'actions')}"
        )
    rows = []
    seen = set()
    prefix = orjson.dumps([user, session])
    for index, action in enumerate(actions):
        row = _action_row(action, index, location, user, session, prefix)
        fingerprint = row[-1]
        if fingerprint in seen:
            # An identical action repeated inside one document is a real
            # repeat, not a retry: give each repeat a fingerprint of its own.
            row = row[:-1] + (_repeat_fingerprint(fingerprint, seen),)
        seen.add(row[-1])
        rows.append(row)
    return rows


def _got(obj, key):
    return describe(obj[key]) if key in obj else "nothing"


def _non_empty_string(doc, key, location):
    value = doc.get(key)
    if type(value) is not str or not value:
        raise InvalidInput(location, key, f"expected a non-empty string, got {_got(doc, key)}")
    return value


def _action_row(action, index, location, user, session, prefix):
    if type(action) is not dict:
        raise InvalidInput(location, f"actions[{index}]", f"expected an action object, got {describe(action)}")
    time = action.get("time")
    if type(time) is not str:
        raise InvalidInput(
            location, f"actions[{index}].time", f"expected an ISO 8601 time string, got {_got(action, 'time')}"
        )
    try:
        utc_us, local_us, offset_s = parse_action_time(time)
    except TimeError as ex:
        raise InvalidInput(location, f"actions[{index}].time", f"{ex}: {describe(time)}") from None
    kind = action.get("type")
    if type(kind) is not str or not kind:
        raise InvalidInput(
            location, f"actions[{index}].type", f"expected a non-empty string, got {_got(action, 'type')}"
        )
    properties = action.get("properties")
    if type(properties) is not dict:
        raise InvalidInput(
            location, f"actions[{index}].properties", f"expected an object, got {_got(action, 'properties')}"
        )
    required = KNOWN_TYPES.get(kind.upper())  # types match case-insensitively everywhere
    if required:
        for key, (expected, check) in required:
            if not check(properties.get(key)):
                raise InvalidInput(
                    location,
                    f"actions[{index}].properties.{key}",
                    f"expected {expected} for {kind}, got {_got(properties, key)}",
                )
    properties_json = _dumps(properties)
    # The fingerprint identifies the action across retries: same user,
    # session, time text, type and properties (key order ignored).
    canonical = _dumps(properties, orjson.OPT_SORT_KEYS) if len(properties) > 1 else properties_json
    digest = blake2b(prefix, digest_size=8)
    digest.update(orjson.dumps([time, kind]))
    digest.update(canonical)
    fingerprint = int.from_bytes(digest.digest(), "little", signed=True)
    return (user, session, time, utc_us, local_us, offset_s, kind, properties_json.decode(), fingerprint)


def _dumps(value, option=0):
    try:
        return orjson.dumps(value, option=option)
    except orjson.JSONEncodeError:
        # orjson refuses integers beyond 64 bits, which the stdlib parser keeps
        import json

        return json.dumps(value, sort_keys=bool(option), separators=(",", ":"), ensure_ascii=False).encode()


def _repeat_fingerprint(fingerprint, seen):
    counter = 1
    while True:
        digest = blake2b(fingerprint.to_bytes(8, "little", signed=True), digest_size=8)
        digest.update(counter.to_bytes(4, "little"))
        candidate = int.from_bytes(digest.digest(), "little", signed=True)
        if candidate not in seen:
            return candidate
        counter += 1
