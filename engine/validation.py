"""Turning pydantic's validation errors into our Problem list (field path, value, rule)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from engine.errors import NO_VALUE, Problem

#: Strings that reach SQL never hold NUL (PostgreSQL refuses it); ids hold no C0 control
#: character or DEL at all. The patterns are checked natively by pydantic (``engine.bill``);
#: ``problems_from`` words their errors with the rules below.
ID_PATTERN = r"^[^\x00-\x1f\x7f]*$"
TEXT_PATTERN = r"^[^\x00]*$"
ID_RULE = "contains a control character (NUL, tab, newline, ...); ids are printable text"
TEXT_RULE = "contains a NUL character; text may not hold NUL"
_ID_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def bad_id_chars(value: str) -> bool:
    """True if ``value`` holds a character an id may not hold (see ID_PATTERN)."""
    return _ID_CHARS.search(value) is not None


def dotted(loc: Sequence[Any]) -> str:
    """('items', 3, 'amount') -> 'items[3].amount'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(root)"


_PREFIXES = ("Value error, ", "Assertion failed, ")

#: What a whole-number field holds, by its name: the end of its error messages.
UNITS = {
    "amount": "amounts are non-negative fen",
    "unit_price": "unit prices are non-negative fen",
    "unit_price_cap": "unit prices are non-negative fen",
    "qty_e4": "quantities are non-negative ten-thousandths",
    "selfpay_ratio": "ratios are basis points from 0 to 10000",
}
#: What a string pattern (``engine.bill``) forbids, in words.
RULES = {ID_PATTERN: ID_RULE, TEXT_PATTERN: TEXT_RULE}
_NUMBER_ERRORS = {"int_type", "int_parsing", "int_from_float", "greater_than_equal",
                  "less_than_equal"}  # fmt: skip


def _number_rule(kind: str, ctx: dict[str, Any], unit: str) -> str:
    if kind == "greater_than_equal":
        return f"is negative; {unit}" if ctx.get("ge") == 0 else f"is below {ctx.get('ge')}; {unit}"
    if kind == "less_than_equal":
        return f"is above the limit {ctx.get('le')}; {unit}"
    return f"is not a whole number; {unit}"


def problems_from(err: ValidationError, prefix: str = "") -> list[Problem]:
    problems = []
    errors = err.errors()
    locs = [tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            for e in errors]  # fmt: skip
    for e, loc in zip(errors, locs, strict=True):
        if e["type"] == "too_short" and any(
            len(o) > len(loc) and o[: len(loc)] == loc for o in locs
        ):
            continue  # a list emptied by its own bad items: the items' errors say it all
        msg = e["msg"]
        for p in _PREFIXES:
            if msg.startswith(p):
                msg = msg[len(p) :]
        field = dotted(loc)
        if prefix:
            field = f"{prefix}.{field}" if field != "(root)" else prefix
        value = e.get("input", NO_VALUE)
        name = loc[-1] if loc else ""
        if e["type"] in _NUMBER_ERRORS and name in UNITS:
            problems.append(
                Problem(field, value, _number_rule(e["type"], e.get("ctx", {}), UNITS[str(name)]))
            )
        elif e["type"] == "missing":
            problems.append(Problem(field, NO_VALUE, "is missing; it is required"))
        elif e["type"] == "string_pattern_mismatch" and e.get("ctx", {}).get("pattern") in RULES:
            problems.append(Problem(field, value, RULES[e["ctx"]["pattern"]]))
        elif e["type"] == "extra_forbidden":
            problems.append(Problem(field, NO_VALUE, "is not a known field; check its spelling"))
        elif isinstance(value, dict | list) and len(repr(value)) > 80:
            problems.append(Problem(field, NO_VALUE, msg))
        else:
            problems.append(Problem(field, value, _lower_first(msg)))
    return problems


def _lower_first(msg: str) -> str:
    return msg[:1].lower() + msg[1:] if msg and not msg[:2].isupper() else msg
