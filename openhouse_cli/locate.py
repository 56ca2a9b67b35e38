"""Finding the line of a field inside a multi-line (pretty-printed) record.

Only used on the error path: validation names a field such as
``actions[2].time``; this walks the record's JSON text to the start of that
field's value, so that the error points at its own line rather than at the
line where the record began.
"""

import re
from json.decoder import scanstring  # type: ignore[attr-defined]

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_SPACE = re.compile(r"[ \t\r\n]*")
_SCALAR = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null")


def field_line_offset(text, field):
    """Lines between the start of the JSON ``text`` and the value at ``field``; 0 if not found."""
    path = [name if name else int(index) for name, index in _PART.findall(field)]
    try:
        pos = _find(text, _skip(text, 0), path)
    except (ValueError, IndexError, RecursionError):
        return 0
    return 0 if pos is None else text.count("\n", 0, pos)


def _skip(text, pos):
    return _SPACE.match(text, pos).end()


def _find(text, pos, path):
    """Position of the value at ``path`` inside the value starting at ``pos``."""
    if not path:
        return pos
    want, rest = path[0], path[1:]
    char = text[pos]
    if char == "{" and isinstance(want, str):
        pos = _skip(text, pos + 1)
        while text[pos] == '"':
            key, pos = scanstring(text, pos + 1)
            pos = _skip(text, pos)
            pos = _skip(text, pos + 1)  # the colon
            if key == want:
                return _find(text, pos, rest)
            pos = _skip(text, _end_of_value(text, pos))
            if text[pos] == ",":
                pos = _skip(text, pos + 1)
        return None
    if char == "[" and isinstance(want, int):
        pos = _skip(text, pos + 1)
        for _ in range(want):
            pos = _skip(text, _end_of_value(text, pos))
            if text[pos] != ",":
                return None
            pos = _skip(text, pos + 1)
        return _find(text, pos, rest)
    return None


def _end_of_value(text, pos):
    char = text[pos]
    if char == '"':
        return scanstring(text, pos + 1)[1]
    if char in "[{":
        close = "]" if char == "[" else "}"
        pos = _skip(text, pos + 1)
        while text[pos] != close:
            if char == "{":
                pos = _skip(text, scanstring(text, pos + 1)[1])
                pos = _skip(text, pos + 1)
            pos = _skip(text, _end_of_value(text, pos))
            if text[pos] == ",":
                pos = _skip(text, pos + 1)
        return pos + 1
    match = _SCALAR.match(text, pos)
    if not match:
        raise ValueError("not JSON")
    return match.end()
