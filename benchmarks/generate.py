#!/usr/bin/env python3
"""Deterministic generator of realistic session logs, for benchmarks.

Usable as a module::

    from benchmarks.generate import generate_sessions, write
    for session in generate_sessions(1000, seed=0): ...
    write("log.ndjson", 1_000_000, "ndjson", seed=0)

or as a script::

    python benchmarks/generate.py OUT --actions N [--format ndjson|array|pretty]
                                      [--gzip] [--seed S]

OUT may be ``-`` for standard output. The output is exactly N actions, the
same bytes for the same (N, format, seed) on any machine, and is written as
it is generated (memory stays flat however large N is).

What the data looks like:

* ``max(10, N // 500)`` users (20,000 for 10M actions), each with a fixed UTC
  offset drawn from a weighted list (-08:00 .. +13:00, UTC written either as
  ``Z`` or ``+00:00``) and a fixed time style of its client (most write whole
  seconds, some milliseconds, a few microseconds). A few users are much more
  active than the rest.
* Sessions of 3-30 actions (mostly short), a second to a few minutes apart
  (at most a couple of actions share a second, and never two of the same
  type, so no two actions are identical). About 2% of actions are swapped
  with their predecessor, so they are out of order within their session.
* Action types: CLICK ~40% (``locationX``/``locationY`` ints, sometimes 0),
  VIEW ~35% (``viewedId`` from a pool of listings with popular ones),
  NAVIGATE ~20% (``pageFrom`` is the page the session is on, ``pageTo`` a
  different page), ~5% other types (SCROLL, SEARCH, HOVER, ...) with
  arbitrary properties: nested objects, lists, floats, booleans, nulls,
  non-ASCII text, and an empty object.
* Session start times run through 2018-03-01 .. 2018-10-31 (UTC) in roughly
  increasing order through the file, with some jitter, like a real log
  written as sessions end.

Session ids are distinct (a bijection of a counter), user ids are distinct.
Standard library only.
"""

import argparse
import gzip
import io
import json
import random
import sys
from datetime import datetime, timedelta, timezone

__all__ = ["generate_sessions", "write", "FORMATS", "OFFSETS", "VERSION"]

# Bumped whenever the output for a given (N, format, seed) changes, so that
# cached benchmark files are regenerated.
VERSION = 1

FORMATS = ("ndjson", "array", "pretty")

# (written suffix, offset in seconds, weight): a US-heavy user base.
OFFSETS = [
    ("-08:00", -8 * 3600, 18),
    ("-07:00", -7 * 3600, 7),
    ("-06:00", -6 * 3600, 20),
    ("-05:00", -5 * 3600, 20),
    ("Z", 0, 5),
    ("+00:00", 0, 5),
    ("+01:00", 1 * 3600, 9),
    ("+05:30", 5 * 3600 + 1800, 6),
    ("+09:00", 9 * 3600, 4),
    ("+10:00", 10 * 3600, 4),
    ("+13:00", 13 * 3600, 2),
]

PAGES = [
    "home", "communities", "inventory", "listing", "search", "map", "favorites",
    "tours", "schedule-tour", "mortgage", "account", "settings", "contact",
    "about", "help", "checkout",
]

# Rare action types and how to make their properties.
OTHER_TYPES = ["SCROLL", "SEARCH", "HOVER", "FORM_SUBMIT", "PAGE_LOAD", "SHARE", "ERROR", "IDLE"]
SEARCH_TERMS = [
    "3 bed", "austin tx", "pool", "new construction", "Café district",
    "Zürich", "São Paulo", "townhome under 400k", "ranch style", "東京",
    "lake view", "García Ranch", "2 bath", "open house this weekend",
]
FORM_IDS = ["tour-request", "contact-agent", "newsletter", "prequalify", "feedback"]
FIELDS = ["name", "email", "phone", "date", "message", "income", "zip"]
SHARE_VIA = ["email", "sms", "facebook", "copy-link", "twitter"]

START = datetime(2018, 3, 1, tzinfo=timezone.utc)
END = datetime(2018, 11, 1, tzinfo=timezone.utc)  # exclusive
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Session starts run from 08:00Z on the first day (midnight at -08:00) to
# 8h30 before 11:00Z on the last day (midnight at +13:00), leaving room for
# the jitter and the longest sessions (29 gaps of at most 15 minutes): so
# every time, as UTC and as written, falls within START .. END.
_START_S = int((START - _EPOCH).total_seconds()) + 8 * 3600
_END_S = int((END - _EPOCH).total_seconds()) - 13 * 3600 - 8 * 3600 - 1800
_SPAN_S = _END_S - _START_S

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_ALPHA = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ID_LEN = 9


def _encode(x, alphabet, length=_ID_LEN):
    base = len(alphabet)
    out = []
    for _ in range(length):
        x, d = divmod(x, base)
        out.append(alphabet[d])
    return "".join(out)


class _IdMaker:
    """A bijection from counters to random-looking fixed-length ids."""

    def __init__(self, rng, alphabet):
        self.alphabet = alphabet
        self.modulus = len(alphabet) ** _ID_LEN
        # A multiplier coprime with the modulus (whose prime factors are
        # those of the alphabet size: 2, 3 for 36; 2, 13 for 26).
        while True:
            a = rng.randrange(self.modulus // 3, self.modulus)
            if a % 2 and a % 3 and a % 13:
                break
        self.a = a
        self.b = rng.randrange(self.modulus)

    def __call__(self, i):
        return _encode((i * self.a + self.b) % self.modulus, self.alphabet)


def _day_prefix_cache():
    cache = {}

    def prefix(day):
        p = cache.get(day)
        if p is None:
            p = cache[day] = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")
        return p

    return prefix


def generate_sessions(n_actions, seed=0):
    """Yield session documents (dicts) holding exactly ``n_actions`` actions in all."""
    n_actions = int(n_actions)
    if n_actions < 0:
        raise ValueError("n_actions must be >= 0")
    rng = random.Random(seed)
    random_ = rng.random
    randrange = rng.randrange

    # Users: distinct ids, each with a fixed offset and time style.
    n_users = max(10, n_actions // 500)
    user_id = _IdMaker(rng, _ALNUM)
    suffixes = [o[0] for o in OFFSETS]
    offset_s = {o[0]: o[1] for o in OFFSETS}
    weights = [o[2] for o in OFFSETS]
    users = []
    for i in range(n_users):
        suffix = rng.choices(suffixes, weights)[0]
        r = random_()
        style = 0 if r < 0.85 else (3 if r < 0.97 else 6)  # digits of fraction
        users.append((user_id(i), suffix, offset_s[suffix], style))
    rng.shuffle(users)  # so that the busiest users (low indexes) are anywhere

    session_id = _IdMaker(rng, _ALNUM)
    n_listings = max(50, n_actions // 200)
    listing_id = _IdMaker(rng, _ALPHA)
    day_prefix = _day_prefix_cache()
    n_pages = len(PAGES)

    emitted = 0
    n_session = 0
    while emitted < n_actions:
        remaining = n_actions - emitted
        size = min(30, int(rng.triangular(3, 31, 6)))
        if remaining - size < 3:
            size = remaining
        uid, suffix, off, style = users[int(n_users * random_() ** 1.5)]

        # Start: proportional to progress through the file, with jitter.
        t = _START_S + int(_SPAN_S * emitted / n_actions) + randrange(0, 1800)
        micro = randrange(1_000_000) if style else 0
        page = PAGES[randrange(n_pages)]
        actions = []
        second_types = set()  # types of the actions so far in this second
        for k in range(size):
            if k:
                r = random_()
                if r < 0.06 and len(second_types) < 3:
                    gap = 0
                elif r < 0.85:
                    gap = 1 + int(rng.lognormvariate(2.3, 0.9))
                else:
                    gap = 30 + int(rng.lognormvariate(4.2, 0.8))
                gap = min(gap, 900)
                t += gap
                if gap:
                    second_types.clear()
                if style:
                    micro = randrange(micro if gap == 0 else 0, 1_000_000)
            # Type and properties.
            while True:
                r = random_()
                if r < 0.40:
                    typ = "CLICK"
                elif r < 0.75:
                    typ = "VIEW"
                elif r < 0.95:
                    typ = "NAVIGATE"
                else:
                    typ = OTHER_TYPES[randrange(len(OTHER_TYPES))]
                # Two actions in the same second are never of the same type
                # (so never identical).
                if typ not in second_types:
                    break
            if typ == "CLICK":
                x = 0 if random_() < 0.03 else randrange(1, 1920)
                y = 0 if random_() < 0.03 else randrange(1, 1080)
                props = {"locationX": x, "locationY": y}
            elif typ == "VIEW":
                props = {"viewedId": listing_id(int(n_listings * random_() ** 3))}
            elif typ == "NAVIGATE":
                to = PAGES[randrange(n_pages - 1)]
                if to == page:
                    to = PAGES[-1]
                props = {"pageFrom": page, "pageTo": to}
                page = to
            else:
                props = _other_properties(typ, rng, page)
            second_types.add(typ)

            # Time as written: the user's wall clock and offset.
            local = t + off
            day, sod = divmod(local, 86400)
            hh, rem = divmod(sod, 3600)
            mm, ss = divmod(rem, 60)
            if style == 0:
                frac = ""
            elif style == 3:
                frac = ".%03d" % (micro // 1000)
            else:
                frac = ".%06d" % micro
            text = "%s%02d:%02d:%02d%s%s" % (day_prefix(day), hh, mm, ss, frac, suffix)
            actions.append({"time": text, "type": typ, "properties": props})

        # ~2% of actions out of order: swapped with their predecessor.
        for k in range(1, size):
            if random_() < 0.0225:
                actions[k - 1], actions[k] = actions[k], actions[k - 1]

        yield {"userId": uid, "sessionId": session_id(n_session), "actions": actions}
        emitted += size
        n_session += 1


def _other_properties(typ, rng, page):
    r = rng.random
    if typ == "SCROLL":
        return {"scrollY": rng.randrange(0, 12000), "direction": "down" if r() < 0.8 else "up",
                "page": page}
    if typ == "SEARCH":
        return {"query": rng.choice(SEARCH_TERMS),
                "filters": {"bedsMin": rng.randrange(0, 6), "priceMax": rng.randrange(150, 2000) * 1000.0,
                            "types": rng.sample(["house", "condo", "townhome", "land"], rng.randrange(1, 4))},
                "results": rng.randrange(0, 500)}
    if typ == "HOVER":
        return {"elementId": "card-%d" % rng.randrange(1, 40), "durationMs": round(rng.expovariate(1 / 800), 1)}
    if typ == "FORM_SUBMIT":
        return {"formId": rng.choice(FORM_IDS), "fields": rng.sample(FIELDS, rng.randrange(1, 5)),
                "valid": r() < 0.9}
    if typ == "PAGE_LOAD":
        return {"page": page, "loadMs": round(rng.lognormvariate(6, 0.6), 3), "cached": r() < 0.3,
                "referrer": None if r() < 0.6 else "https://www.google.com/"}
    if typ == "SHARE":
        return {"via": rng.choice(SHARE_VIA), "page": page}
    if typ == "ERROR":
        return {"code": rng.choice([404, 500, 502, 503]), "message": None if r() < 0.5 else "Request failed",
                "retry": {"attempt": rng.randrange(1, 4), "backoffMs": 250 * rng.randrange(1, 8)}}
    return {}  # IDLE


def _open_out(path, gzip_):
    """A text stream to write to (and whether to close it)."""
    if str(path) == "-":
        raw = sys.stdout.buffer
        if gzip_:
            return io.TextIOWrapper(gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0),
                                    encoding="utf-8", newline="\n"), True
        return io.TextIOWrapper(raw, encoding="utf-8", newline="\n", write_through=False), False
    if gzip_:
        # mtime=0 and no file name: identical bytes every run.
        raw = open(path, "wb")
        gz = gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0)
        stream = io.TextIOWrapper(gz, encoding="utf-8", newline="\n")
        stream._raw_file = raw  # closed after the gzip stream, below
        return stream, True
    return open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 20), True


def write(path, n_actions, fmt="ndjson", seed=0, gzip=False):
    """Write ``n_actions`` actions to ``path`` (``"-"``: stdout) in ``fmt``; return the session count.

    ``fmt``: "ndjson" (one session a line), "array" (one JSON array of all
    sessions, written as it goes), "pretty" (concatenated indent=2 objects,
    like jq's output). ``gzip``: compress the output.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    out, close = _open_out(path, gzip)
    compact = json.JSONEncoder(ensure_ascii=False)  # default ", " / ": " separators
    pretty = json.JSONEncoder(ensure_ascii=False, indent=2)
    n = 0
    buf = []
    try:
        if fmt == "array":
            out.write("[")
        for session in generate_sessions(n_actions, seed):
            if fmt == "ndjson":
                buf.append(compact.encode(session))
                buf.append("\n")
            elif fmt == "array":
                buf.append("\n" if n == 0 else ",\n")
                buf.append(compact.encode(session))
            else:
                buf.append(pretty.encode(session))
                buf.append("\n")
            n += 1
            if len(buf) >= 2000:
                out.write("".join(buf))
                buf.clear()
        out.write("".join(buf))
        if fmt == "array":
            out.write("\n]\n" if n else "]\n")
    finally:
        if close:
            out.close()
            raw = getattr(out, "_raw_file", None)
            if raw is not None:
                raw.close()
        else:
            out.flush()
    return n


def main(argv=None):
    p = argparse.ArgumentParser(description="Write a deterministic, realistic session log.")
    p.add_argument("out", metavar="OUT", help="output file, or - for stdout")
    p.add_argument("--actions", type=int, required=True, metavar="N", help="number of actions in all")
    p.add_argument("--format", choices=FORMATS, default="ndjson")
    p.add_argument("--gzip", action="store_true", help="gzip the output")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    n = write(args.out, args.actions, args.format, args.seed, gzip=args.gzip)
    if args.out != "-":
        print(f"wrote {args.actions:,} actions in {n:,} sessions to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
