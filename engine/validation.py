"""Turning pydantic's validation errors into our Problem list (field path, value, rule)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from engine.errors import NO_VALUE, Problem


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


def problems_from(err: ValidationError, prefix: str = "") -> list[Problem]:
    problems = []
    for e in err.errors():
        loc = [p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        msg = e["msg"]
        for p in _PREFIXES:
            if msg.startswith(p):
                msg = msg[len(p) :]
        field = dotted(loc)
        if prefix:
            field = f"{prefix}.{field}" if field != "(root)" else prefix
        value = e.get("input", NO_VALUE)
        if e["type"] == "missing":
            problems.append(Problem(field, NO_VALUE, "is missing; it is required"))
        elif e["type"] == "extra_forbidden":
            problems.append(Problem(field, NO_VALUE, "is not a known field; check its spelling"))
        elif isinstance(value, dict | list) and len(repr(value)) > 80:
            problems.append(Problem(field, NO_VALUE, msg))
        else:
            problems.append(Problem(field, value, _lower_first(msg)))
    return problems


def _lower_first(msg: str) -> str:
    return msg[:1].lower() + msg[1:] if msg and not msg[:2].isupper() else msg
