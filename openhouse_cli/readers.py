"""Reading session records out of an input, whatever its shape.

An input is a binary file object: plain or gzip (detected by its magic
bytes, so a compressed stdin works too), holding one session object, a JSON
array of them, NDJSON, or concatenated (pretty-printed) objects. The shape is
detected, never declared.

``read_records(fp, name)`` yields ``Record``s, each with the line it starts
on. A JSON syntax error is yielded as a Record whose ``error`` is set; after
one in a multi-line document the reader cannot find the next record's start,
so it stops there.
"""

import codecs
import gzip
import io
import json
import math
import re
import sys
import zlib
from dataclasses import dataclass

import orjson

from .errors import InvalidInput
from .fields import may_hold_big_int
from .repeated_keys import MESSAGE as REPEATED_ACTIONS
from .repeated_keys import repeated_actions
from .validate import lone_surrogate_at

CHUNK = 1 << 20
# A single record (one session document) larger than this is refused rather
# than buffered without bound.
MAX_RECORD_CHARS = 256 << 20
_BOM = b"\xef\xbb\xbf"
# What the stream reader (arrays, pretty-printed objects) decodes at a time.
# Smaller than CHUNK: one non-ASCII character makes Python store the whole
# buffer at 4 bytes a character, and the buffer is copied as it is refilled.
STREAM_CHUNK = 1 << 18


@dataclass
class Record:
    line: int
    value: object = None
    raw: object = None  # the record's text (str or bytes), for --rejects
    error: InvalidInput | None = None
    # A syntax error outside NDJSON: nothing after it can be read, so even
    # --on-error skip cannot go on past it
    ends_input: bool = False
    # Its place in a top-level array, which an error names as POST does
    # (``[2].actions[0].time``): in an array on one line, the line alone
    # does not say which record it is
    index: int | None = None
    # Nested too deeply to be sent whole between processes: only its text is kept
    deep: bool = False


def open_input(fp, name="-"):
    """Wrap ``fp`` so that it can be peeked, decompressing gzip on the fly."""
    if not hasattr(fp, "peek"):
        fp = io.BufferedReader(fp, CHUNK)
    if fp.peek(2)[:2] == b"\x1f\x8b":
        fp = io.BufferedReader(_Gunzip(fp, name), CHUNK)
        _refuse_other_format(fp.peek(8)[:8], name, "gzip-compressed ")
    else:
        _refuse_other_format(fp.peek(8)[:8], name)
    return fp


def refuse_other_format(start: bytes, name) -> None:
    """InvalidInput if the input that begins with ``start`` (a file's first
    bytes, or what is buffered of a stream) is, by them, a format ohlog does
    not read, inside gzip too: said before a database is opened, so that
    nothing is created for it. Gzip data that is damaged is left to the
    reading itself to report."""
    if start[:2] != b"\x1f\x8b":
        return _refuse_other_format(start[:8], name)
    try:
        inner = zlib.decompressobj(31).decompress(start, 8)
    except zlib.error:
        return None
    return _refuse_other_format(inner, name, "gzip-compressed ")


def _refuse_other_format(start, name, wrapped=""):
    for magic, what, instead in _OTHER_FORMATS:
        if start.startswith(magic):
            shown = name if name != "-" else "FILE"
            if wrapped:  # each converter reads the decompressed stream from its stdin
                instead = "zcat {} | " + ("funzip" if instead.startswith("unzip") else instead.replace(" {}", ""))
            raise InvalidInput(f"{name}:1", "", f"{wrapped}{what}: ohlog reads UTF-8 JSON, plain or gzip"
                                                f" (convert it first: {instead.format(shown)} | ohlog ingest -)")


# Files that are not JSON text but are often taken for it: said by name
_OTHER_FORMATS = (
    (b"\xff\xfe\x00\x00", "UTF-32 text", "iconv -f UTF-32 -t UTF-8 {}"),
    (b"\xff\xfe", "UTF-16 text (as PowerShell writes it)", "iconv -f UTF-16 -t UTF-8 {}"),
    (b"\xfe\xff", "UTF-16 text", "iconv -f UTF-16 -t UTF-8 {}"),
    (b"BZh", "bzip2-compressed data", "bzcat {}"),
    (b"\xfd7zXZ\x00", "xz-compressed data", "xzcat {}"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data", "zstdcat {}"),
    (b"PK\x03\x04", "a zip archive", "unzip -p {}"),
)


class _Gunzip(io.RawIOBase):
    """gzip decompression whose failures (truncated or corrupt data) are located errors."""

    def __init__(self, fp, name):
        self.gzip = gzip.GzipFile(fileobj=fp, mode="rb")
        self.name = name
        self.lines = 0  # decompressed so far, to say where the damage starts

    def readable(self):
        return True

    def readinto(self, buffer):
        try:
            size = self.gzip.readinto(buffer)
        except (EOFError, zlib.error, gzip.BadGzipFile) as ex:
            reason = str(ex) or type(ex).__name__
            raise InvalidInput(
                f"{self.name}:{self.lines + 1}", "",
                f"not valid gzip data, the file is truncated or corrupt ({reason})",
            ) from None
        self.lines += bytes(buffer[:size]).count(b"\n")
        return size


def read_records(fp, name, first=None, blank_lines=0):
    """Yield the Records in the (already opened) binary input ``fp``.

    ``first`` and ``blank_lines``: what ``first_line(fp)`` returned, if the
    caller has called it already.
    """
    if first is None:
        if not hasattr(fp, "peek"):  # shape detection peeks at the second line
            fp = io.BufferedReader(fp, CHUNK)
        first, blank_lines = first_line(fp)
    if not first:
        return
    if is_ndjson(first, fp):
        yield from _read_ndjson(fp, name, first, blank_lines)
    else:
        yield from _JsonStream(fp, name, first, blank_lines).records()


def is_ndjson(first, fp=None):
    """Whether an input whose first non-blank line is ``first`` is NDJSON.

    An array (``[`` first) never is. Otherwise it is when its first line is
    one complete JSON value (``{"userId": }`` and other bad lines too: each
    line is then a record). A first line that is the start of a value, cut
    between two tokens (``{``, ``{"userId": "u", "actions": [``), begins a
    multi-line document: pretty-printed, with or without indentation. It is
    still a record cut short (by a log rotation, or a crash) when it ends
    inside a string or a word, which no JSON text can continue on the next
    line, or when the next line is a whole object that cannot continue it.
    ``fp`` is positioned just after ``first``; it is only peeked at.
    """
    if first is TOO_LONG:
        return True
    head = first.lstrip(b" \t\r\n")
    if head.startswith(b"["):
        return False
    if _is_json_value(first):
        return True
    shape = _line_shape(first)
    if shape is _SEVERAL:  # concatenated objects on one line
        return False
    if shape is _OPEN:
        return _next_line_cannot_continue(first, fp)
    return True


def first_line(fp):
    """The first non-blank line (BOM removed, b"" if none) and the blank lines before it.

    An array's first line is read at most CHUNK bytes of: a whole JSON array
    on one line can be gigabytes, and the stream reader carries on from where
    it stops. Any other first line may be an NDJSON record, so it is read
    whole, up to MAX_RECORD_CHARS; a longer one is TOO_LONG.
    """
    line = fp.readline(CHUNK)
    cut = len(line) == CHUNK and not line.endswith(b"\n")  # (before a BOM is taken off: found from outside)
    if line.startswith(_BOM):
        line = line[3:]
    blank_lines = 0
    while line and not line.strip():
        blank_lines += 1
        line = fp.readline(CHUNK)
        cut = len(line) == CHUNK and not line.endswith(b"\n")
    if cut and not line.lstrip().startswith(b"["):
        line += fp.readline(MAX_RECORD_CHARS - len(line))
        if len(line) == MAX_RECORD_CHARS and not line.endswith(b"\n"):
            _skip_rest_of_line(fp)
            line = TOO_LONG
    return line, blank_lines


def _is_json_value(line):
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


# What _line_shape finds: the start of a value that goes on past the line;
# a value followed by another object; anything else (a complete value, or
# text that is not JSON)
_OPEN, _SEVERAL, _OTHER = object(), object(), object()
# The stdlib's C scanner says where it stopped; NaN and the like are allowed
# here, to be reported by the reader. Numbers are not converted: the shape
# needs none of their values, and an integer longer than int() takes (4,300
# digits) would raise a ValueError of its own.
_SHAPE_DECODER = json.JSONDecoder(parse_int=len, parse_float=len)


def _line_shape(line):
    """_OPEN, _SEVERAL or _OTHER for one line of text (only the line is parsed)."""
    text = line.decode("utf-8", "replace")  # a bad byte is reported by the reader
    start = len(text) - len(text.lstrip(" \t\r\n"))
    text = text.rstrip(" \t\r\n")
    try:
        end = _SHAPE_DECODER.raw_decode(text, start)[1]
    except json.JSONDecodeError as ex:
        # Stopped at the very end: every token was good and more must follow.
        # An unfinished string or word stops where it starts, before the end.
        return _OPEN if ex.pos >= len(text) else _OTHER
    except RecursionError:
        return _OTHER
    return _SEVERAL if text[end:].lstrip(" \t\r\n").startswith("{") else _OTHER


def _next_line_cannot_continue(first, fp):
    """Whether the next non-blank lines (peeked, not read) are whole JSON objects
    that ``first``, an unfinished value, cannot go on into: then ``first`` is a
    record cut short between two tokens, in NDJSON. A first line cut after a
    key's colon can go on into the one object that follows (as its value), but
    not into a second: so the lines are taken while the text stays unfinished."""
    if fp is None or not hasattr(fp, "peek"):
        return False
    ahead = fp.peek(CHUNK)
    if not ahead:
        return True  # nothing follows: a one-line input is one record
    text = first.rstrip(b" \t\r\n")
    lines = [line for line in ahead.split(b"\n") if line.strip()]
    for line in lines[:8]:  # a line cut off by the peek is no whole object: then not NDJSON
        if not line.lstrip().startswith(b"{") or not _is_json_value(line):
            return False  # a line of a multi-line document
        text += b" " + line.rstrip(b" \t\r\n")
        if _line_shape(text) is not _OPEN:
            return True
    return False


def _read_ndjson(fp, name, first, blank_lines):
    """One record a line: the fast path, parsed by orjson."""
    for number, line in enumerate(_chain(first, ndjson_lines(fp)), blank_lines + 1):
        record = ndjson_record(line, number, name)
        if record is not None:
            yield record


def ndjson_lines(fp):
    """The lines of ``fp``; one longer than MAX_RECORD_CHARS is cut short
    (and so fails to parse) rather than read whole into memory."""
    limit = MAX_RECORD_CHARS
    while True:
        line = fp.readline(limit)
        if not line:
            return
        if len(line) == limit and not line.endswith(b"\n"):
            _skip_rest_of_line(fp)
            line = TOO_LONG
        yield line


def _skip_rest_of_line(fp):
    while True:
        rest = fp.readline(CHUNK)
        if not rest or rest.endswith(b"\n"):
            return


class _TooLong:
    """Stands for a line longer than MAX_RECORD_CHARS, which is never read whole.

    An object, not a marker value, so that no line of input can pass for it;
    unpickled (in the validating worker) it is the same object again.
    """

    def __reduce__(self):
        return "TOO_LONG"

    def __repr__(self):
        return "TOO_LONG"


TOO_LONG = _TooLong()


def ndjson_record(line, number, name):
    """The Record on NDJSON line ``number``; None for a blank line."""
    if line is TOO_LONG:
        return Record(number, error=InvalidInput(
            f"{name}:{number}", "", f"record larger than {MAX_RECORD_CHARS >> 20} MiB"))
    if may_hold_big_int(line):
        return _exact_ndjson_record(line, number, name)
    try:
        return _checked(Record(number, orjson.loads(line), line), name)
    except orjson.JSONDecodeError:
        if not line.strip():
            return None  # blank lines between records are allowed
        return Record(number, raw=line, error=_ndjson_error(line, number, name))


def _exact_ndjson_record(line, number, name):
    """ndjson_record through the stdlib parser, for lines with long integers."""
    if not line.strip():
        return None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return Record(number, raw=line, error=_ndjson_error(line, number, name))
    text = text.rstrip("\r\n")
    try:
        value = _EXACT.decode(text)
    except json.JSONDecodeError as ex:
        return Record(number, raw=line, error=_syntax_error(name, number, ex.colno, ex.msg))
    except BadNumber as ex:
        column = token_position(text, 0, ex.token) + 1
        return Record(number, raw=line, error=_syntax_error(name, number, column, str(ex)))
    except RecursionError:
        return Record(number, raw=line, error=_syntax_error(name, number, 1, "nested too deeply"))
    surrogate = _SURROGATE_ESCAPE.search(text)
    if surrogate and lone_surrogate_at(value) is not None:
        return Record(number, raw=line, error=_syntax_error(
            name, number, surrogate.start() + 1, "a lone surrogate escape is not valid Unicode"))
    return _checked(Record(number, value, line), name)


def _checked(record, name, text=None):
    """``record``, or the same record refused if its text (``text``, its raw
    text as bytes, if given: searched faster) gives a session's ``actions``
    twice (a JSON reader keeps the last list: the others' actions would be
    dropped without a word)."""
    if type(record.value) is dict and repeated_actions(record.raw if text is None else text):
        record.error = InvalidInput(f"{name}:{record.line}", "actions", REPEATED_ACTIONS)
        record.value = None
    return record


def _ndjson_error(line, number, name):
    """The error for a bad line, parsed without its line ending so that an
    unfinished record is located at the line's end, not on the next line."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as ex:  # said as the stream reader says it
        return InvalidInput(f"{name}:{number}", "", f"not valid UTF-8: {ex.reason}")
    try:
        orjson.loads(line.rstrip(b"\r\n"))
    except orjson.JSONDecodeError as ex:
        message = "nested too deeply" if ex.msg == "depth limit exceeded" else ex.msg
        return _syntax_error(name, number, ex.colno, message)


def _chain(first, fp):
    yield first
    yield from fp


# orjson's words for a BOM, which ohlog does read at an input's very start
_ORJSON_BOM = "UTF-8 byte order mark (BOM) is not supported"
_MISPLACED_BOM = ("a byte order mark (BOM) after the start of the input: one is read only as its"
                  " very first bytes (were files joined with cat?)")


# The standard library's messages that end in "at", its location following
# them in its own text; ohlog's location comes first instead
_STDLIB_AT = {"Unterminated string starting at": "unterminated string (it starts here)",
              "Invalid control character at": "a control character in a string"}


def _syntax_error(name, line, col, message):
    if message == _ORJSON_BOM:
        message = _MISPLACED_BOM
    message = _STDLIB_AT.get(message, message)
    return InvalidInput(f"{name}:{line}:{col}", "", f"invalid JSON: {message}")


class BadNumber(ValueError):
    """A number JSON allows but ohlog cannot store: NaN, Infinity, 1e400."""

    def __init__(self, token, message):
        super().__init__(message)
        self.token = token


def _reject_constant(token):
    raise BadNumber(token, f"{token} is not valid JSON")


def _parse_int(text):
    # Kept exactly, as Python's json keeps them, up to int()'s own limit on
    # digits (whose error would speak of sys.set_int_max_str_digits)
    limit = sys.get_int_max_str_digits()
    if limit and len(text) > limit:
        raise BadNumber(text, f"integer longer than {limit} digits: {text[:20]}…")
    return int(text)


def _parse_float(text):
    value = float(text)
    if math.isinf(value):
        raise BadNumber(text, f"number beyond the range of a double: {text[:20]}{'…' if len(text) > 20 else ''}")
    return value


_EXACT = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_parse_int, parse_float=_parse_float)

# JSON strings (skipped) and the tokens the parse hooks see
_TOKENS = re.compile(r'"(?:[^"\\]+|\\.)*"|(-?(?:Infinity|NaN)|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)')


def token_position(text, start, token):
    """Where the number or constant ``token`` first stands in the JSON ``text``
    from ``start`` on (outside strings); ``start`` if it cannot be found.

    The parse hooks are told the token but not its place. The first bad
    token stops the parse, so its first occurrence is the one."""
    for match in _TOKENS.finditer(text, start):
        if match.group(1) == token:
            return match.start(1)
    return start


# A \\u escape in the surrogate range: valid JSON, but only as half of a pair
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class _JsonStream:
    """Splits a stream of JSON values (objects, or arrays of objects) into records.

    Holds only the current record and at most a chunk of what follows, so a
    multi-gigabyte JSON array is read in bounded memory. Records are decoded
    by the stdlib's C scanner with ``raw_decode``; a record cut by the end of
    the buffer is retried once more text has been read.
    """

    def __init__(self, fp, name, first, blank_lines, by_line=True):
        self.fp = fp
        self.by_line = by_line  # whether _decode_line is still worth trying
        self.name = name
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.json = _EXACT
        self.buf = ""
        self.pos = 0
        self.line = 1 + blank_lines  # line number at self.line_pos
        self.line_pos = 0
        self.eof = False
        self.first = first  # fed in records(), where a decoding error is reported

    def _feed(self, data):
        try:
            text = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as ex:
            raise _BadBytes(ex) from None
        if self.pos > STREAM_CHUNK:  # drop what has been consumed
            self._line_at(self.pos)
            self.buf = self.buf[self.pos:]
            self.line_pos -= self.pos
            self.pos = 0
        self.buf += text

    def _read_more(self, size=STREAM_CHUNK):
        if self.eof:
            return False
        data = self.fp.read(size)
        if not data:
            self.eof = True
        self._feed(data)
        return bool(data)

    def _line_at(self, pos):
        """The line number of buf[pos], counting newlines incrementally."""
        self.line += self.buf.count("\n", self.line_pos, pos)
        self.line_pos = pos
        return self.line

    def _col_at(self, pos):
        return pos - self.buf.rfind("\n", 0, pos)

    def _skip_space(self):
        """Advance past whitespace; return the next character or '' at the end."""
        while True:
            buf, pos = self.buf, self.pos
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            self.pos = pos
            if pos < len(buf):
                return buf[pos]
            if not self._read_more():
                return ""

    def _error(self, pos, message):
        if self.buf.startswith("\ufeff", pos):
            message = _MISPLACED_BOM
        line = self._line_at(pos)
        return Record(line, raw=self.buf[pos:pos + 200], error=_syntax_error(
            self.name, line, self._col_at(pos), message), ends_input=True)

    def records(self):
        try:
            self._feed(self.first)
            yield from self._records()
        except _BadBytes as ex:
            # Locate the bad byte: count the lines in the text decoded so far
            line = self._line_at(len(self.buf))
            yield Record(line, error=InvalidInput(
                f"{self.name}:{line}", "", f"not valid UTF-8: {ex.reason.reason}"), ends_input=True)

    def _records(self):
        in_array = False
        expect_value = True  # inside an array: a value is due (after '[' or ',')
        while True:
            char = self._skip_space()
            if not char:
                if in_array:
                    yield self._error(self.pos, "unexpected end of input: the array is not closed")
                return
            if in_array and not expect_value:
                if char == ",":
                    self.pos += 1
                    expect_value = True
                    continue
                if char == "]":
                    self.pos += 1
                    in_array = False
                    continue
                yield self._error(self.pos, "expected ',' or ']' after an array element")
                return
            if char == "[" and not in_array:
                self.pos += 1
                in_array, expect_value, index = True, True, 0
                if self._skip_space() == "]":  # an empty array
                    self.pos += 1
                    in_array = False
                continue
            record = self._decode_one()
            if in_array:
                record.index = index
                index += 1
            yield record
            if record.ends_input:  # a syntax error: nothing after it can be read
                return
            expect_value = False

    def _decode_one(self):
        start = self.pos
        if self.by_line and self.buf.startswith("{", start):
            record = self._decode_line(start)
            if record is not None:
                return record
        size = STREAM_CHUNK
        while True:
            try:
                value, end = self.json.raw_decode(self.buf, start)
                break
            except json.JSONDecodeError as ex:
                truncated = ex.pos >= len(self.buf) - 16 or ex.msg.startswith("Unterminated string")
                if not (truncated and not self.eof):
                    return self._error(ex.pos, ex.msg)
                if len(self.buf) - start > MAX_RECORD_CHARS:
                    return self._error(start, f"record larger than {MAX_RECORD_CHARS >> 20} MiB")
                self._read_more(size)
                size = min(size * 2, MAX_RECORD_CHARS)  # keep re-parses of big records few
                start = self.pos  # _feed may have moved the buffer
            except BadNumber as ex:  # NaN, Infinity, 1e400
                pos = token_position(self.buf, start, ex.token)
                if pos + len(ex.token) >= len(self.buf) and not self.eof:
                    self._read_more(size)  # the number may go on in the next chunk
                    start = self.pos
                    continue
                return self._error(pos, str(ex))
            except RecursionError:
                return self._error(start, "nested too deeply")
        if end - start > MAX_RECORD_CHARS:
            return self._error(start, f"record larger than {MAX_RECORD_CHARS >> 20} MiB")
        raw = self.buf[start:end]
        surrogate = _SURROGATE_ESCAPE.search(raw)
        if surrogate and lone_surrogate_at(value) is not None:
            return self._error(start + surrogate.start(), "a lone surrogate escape is not valid Unicode")
        line = self._line_at(start)
        self.pos = end
        return _checked(Record(line, value, raw), self.name)


    def _decode_line(self, start):
        """The record at ``start`` if it ends on its own line (an array of one
        record a line, as most are), parsed by orjson, 2-3x faster than the
        stdlib's scanner; None for the full parse to take over.

        The text from ``start`` to the line's last ``}`` is the record exactly
        when orjson reads it whole as one object, and orjson then gives the
        value the stdlib gives, but for what it reads differently: integers
        beyond 64 bits (it makes them floats), NaN, Infinity and numbers past
        a double (it refuses them), lone surrogates (it refuses them) and
        nesting deeper than Python's recursion limit (it reads 1,024 levels).
        Text that may hold a long number or deep nesting is left to the full
        parse; anything orjson refuses, or an input not laid out one record a
        line, turns this off for the rest of the input.
        """
        buf = self.buf
        newline = buf.find("\n", start, start + _LINE_RECORD_CHARS)
        if newline < 0:
            if len(buf) - start >= _LINE_RECORD_CHARS:
                self.by_line = False  # not one record a line
            return None  # (or the line goes on in the next chunk)
        end = buf.rfind("}", start, newline) + 1
        if not end:
            self.by_line = False  # a record on several lines
            return None
        raw = buf[start:end]
        data = raw.encode()
        if may_hold_big_int(data) or (len(data) > 1000 and data.count(b"{") + data.count(b"[") > 500):
            return None
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.by_line = False
            return None
        if _SURROGATE_ESCAPE.search(raw) and lone_surrogate_at(value) is not None:
            return None  # (orjson refuses them today; the full parse locates the error)
        self.pos = end
        return _checked(Record(self._line_at(start), value, raw), self.name, data)


# The longest line _JsonStream._decode_line looks for a record's end in
_LINE_RECORD_CHARS = 1 << 16


class _BadBytes(Exception):
    def __init__(self, reason):
        self.reason = reason
