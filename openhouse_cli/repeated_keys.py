"""A session whose ``actions`` key is written twice.

JSON readers keep the last value of a repeated key (RFC 8259 leaves it to
them), so ``{"actions": [A, B], "actions": [C]}`` would store C and drop A
and B without a word. ohlog refuses such a record instead: no input may
make it drop an action. Any other key given twice keeps its last value, as
every JSON reader (and jq) reads it; that changes no count of actions.

The parsed value no longer shows a repeat, so the check reads the record's
text (about two microseconds a record, some 2% of validating it). Only a
record where the name appears more often than its sessions, or that spells
a lower-case letter as a ``\\u`` escape (as a name may be spelled), is
scanned for its top-level keys to find out.
"""

import json
import re

_NAME = "actions"
_QUOTED, _QUOTED_BYTES = f'"{_NAME}"', f'"{_NAME}"'.encode()


def could_repeat(raw: str | bytes, sessions: int = 1) -> bool:
    """Whether the JSON text ``raw`` of ``sessions`` session documents may
    repeat a session's ``actions`` key: False is certain, True means look closer.
    About two microseconds a record: one count, and one search for a backslash
    (found, it looks for \\u0061 to \\u007a, any letter of the name as an escape)."""
    if isinstance(raw, bytes):
        return raw.count(_QUOTED_BYTES) > sessions or (
            b"\\" in raw and (b"\\u006" in raw or b"\\u007" in raw))
    return raw.count(_QUOTED) > sessions or ("\\" in raw and ("\\u006" in raw or "\\u007" in raw))


def repeated_actions(raw: str | bytes) -> bool:
    """Whether the JSON text ``raw`` of one session document (valid JSON: the
    reader parsed it) repeats its ``actions`` key."""
    if not could_repeat(raw):
        return False
    text = raw.decode("utf-8", "surrogatepass") if isinstance(raw, bytes) else raw
    return _top_level_keys(text).count(_NAME) > 1


# A JSON string, or one structural character (numbers and words are skipped)
_TOKEN = re.compile(r'"(?:[^"\\]+|\\.)*"|[{}\[\]:,]')


def _top_level_keys(text: str) -> list[str]:
    """The keys of the outermost object in ``text``, decoded, in order.

    A scan that counts brackets instead of a parse: no depth of nesting
    (an ignored key may hold a thousand levels) can make it give up, which
    a recursive parser does, and giving up must never pass for "no repeat".
    """
    keys: list[str] = []
    depth, before = 0, None  # before: the structural character before this token, if any
    for token in _TOKEN.finditer(text):
        found = token.group()
        if found[0] == '"':
            if depth == 1 and before in ("{", ","):
                keys.append(json.loads(found))
            before = None
            continue
        if found in "{[":
            depth += 1
        elif found in "}]":
            depth -= 1
            if depth == 0:
                break
        before = found
    return keys


MESSAGE = ("given twice in one session: a JSON reader keeps only the last list,"
           " which would drop the actions of the other without a word")
