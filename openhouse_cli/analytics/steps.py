"""Steps (``VIEW``, ``NAVIGATE:pageTo=checkout``) and durations (``30m``, ``14d``).

A step is a type, matched under Unicode case folding as ``--type`` is, and
optionally one property condition written as ``--where`` writes it. Each
step becomes a SQL condition; an analysis selects one number an action
whose bits say which steps it matches, so the steps are tested by the
database, with the same property rules as ``ohlog query --where``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ..errors import OhlogError
from ..query import FilterError, Where, parse_where
from ..schema import type_key

STEP_FORMS = ("TYPE or TYPE:KEY=VALUE (also !=, >, >=, <, <=), such as NAVIGATE:pageTo=checkout;"
              ' a type holding ":" in double quotes, "ns:view"')
DURATION_FORMS = "a duration such as 90s, 30m, 2h, 14d or 1w (or 1h30m)"
_DURATION_RE = re.compile(r"(?:\d+[smhdw])+")
# Longer than any two instants ohlog stores can be apart (years 1 to 9999),
# and a 64-bit number of microseconds in SQL, on both engines
_MAX_DURATION_S = 10_000 * 366 * 86400
_PART_RE = re.compile(r"(\d+)([smhdw])")
_UNIT_US = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class StepError(OhlogError, ValueError):
    """A STEP or duration that does not parse; the message names the form."""


class Step(NamedTuple):
    text: str  # as given, for display
    key: str  # the type's case-folded form
    where: Where | None
    kind: str  # the type as given


def parse_step(text: str) -> Step:
    """``TYPE`` or ``TYPE:KEY=VALUE`` as a Step; StepError naming the form if malformed.
    A type holding ``:`` is written as a JSON string: ``"ns:view"``, ``"ns:view":x=1``."""
    if not isinstance(text, str) or not text.strip():
        raise StepError(f"expected {STEP_FORMS}, got {text!r}")
    given = text.strip()
    if given.startswith('"'):
        kind, sep, condition = _quoted_type(given, text)
    else:
        kind, sep, condition = given.partition(":")
        kind = kind.strip()
    if not kind:
        what = "an empty type" if given.startswith('"') else "no type before ':'"
        raise StepError(f"{what}: expected {STEP_FORMS}, got {text!r}")
    where = None
    if sep:
        try:
            where = parse_where(condition)
        except FilterError as ex:
            raise StepError(_condition_error(given, condition, ex)) from None
    return Step(given, type_key(kind), where, kind)


def _condition_error(given: str, condition: str, error: FilterError) -> str:
    """What is wrong with the condition after a STEP's ':', said as --where says it."""
    quoted = given.startswith('"')
    if not condition.strip():
        return f"nothing after ':' in STEP {given!r}: write the type alone, or TYPE:KEY=VALUE"
    if _OPERATOR.search(condition):  # --where's own reason ("=> is not an operator", ...)
        return f"{error} (in STEP {given!r})"
    quote = "" if quoted else f"; a type holding ':' is written in double quotes, '\"{given}\"'"
    return (f"the condition in STEP {given!r} has no operator and value: write {given}=VALUE"
            f" (or !=, >, >=, <, <=){quote}")


_OPERATOR = re.compile(r"[=<>]")


def _quoted_type(given: str, text: str) -> tuple[str, str, str]:
    """The type a step gives as a JSON string, and what follows it, as ``str.partition`` would."""
    import json

    try:
        kind, end = json.JSONDecoder().raw_decode(given)
    except ValueError:
        kind, end = None, 0
    rest = given[end:]
    if not isinstance(kind, str) or (rest and not rest.startswith(":")):
        raise StepError(f"expected a type in double quotes as a JSON string, then nothing or"
                        f" :KEY=VALUE, got {text!r}")
    return kind, rest[:1], rest[1:]


def parse_duration(text: str) -> int:
    """Microseconds in ``30m``, ``2h``, ``14d``, ``1h30m``; StepError naming the form."""
    spec = (text or "").strip()
    if re.search(r"\dM(?![Oo])", spec):
        # Minutes or months? Other tools read a capital M either way
        raise StepError(f"'M' could be minutes or months: write m for minutes, got {text!r}")
    spec = spec.lower()
    if not _DURATION_RE.fullmatch(spec):
        raise StepError(f"expected {DURATION_FORMS}, got {text!r}")
    seconds = sum(int(n) * _UNIT_US[unit] for n, unit in _PART_RE.findall(spec))
    if seconds <= 0:
        raise StepError(f"a duration must be more than 0, got {text!r}")
    if seconds > _MAX_DURATION_S:
        raise StepError(f"a duration must be at most 10,000 years, got {text!r}")
    return seconds * 1_000_000


def step_sql(step: Step, engine: str) -> tuple[str, list]:
    """SQL (and its parameters) that is true for the actions matching ``step``."""
    key = step.key
    if engine == "postgresql":
        from ..store.postgres import escape

        key = escape(key)
    if step.where is None:
        return "type_key = ?", [key]
    if engine == "postgresql":
        from ..store.postgres import where_clause
    else:
        from ..query import _where_clause as where_clause
    clause, params = where_clause(step.where)
    return f"(type_key = ? AND {clause})", [key, *params]


def mask_sql(steps: list[Step], engine: str) -> tuple[str, list]:
    """SQL for an integer whose bit i is set when the action matches ``steps[i]``."""
    parts, params = [], []
    for i, step in enumerate(steps):
        sql, values = step_sql(step, engine)
        parts.append(f"CASE WHEN {sql} THEN {1 << i} ELSE 0 END")
        params += values
    return " + ".join(parts) or "0", params
