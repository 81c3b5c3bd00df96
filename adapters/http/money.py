"""Yuan on the wire, fen in the engine: exact both ways, never through float.

Requests are parsed with ``json.loads(..., parse_float=Decimal)`` (``adapters.http.nhsa``), so
a JSON number arrives here as ``int`` or ``Decimal`` built from its raw text; a numeric string
(``"12.30"``, as some HIS send) is parsed the same way. Answers are written with ``dumps``,
which prints a Decimal as its own digits (``12.30``): a JSON number, two decimals.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.errors import InputError

_YUAN = re.compile(r"-?[0-9]+(\.[0-9]+)?")


#: what a refused number should have looked like, by kind
YUAN_HINT, QTY_HINT, RATIO_HINT = (
    "send yuan such as 12.30",
    "send a quantity such as 2 or 0.5",
    "send a ratio such as 0.1",
)


def to_decimal(field: str, value: Any, hint: str = YUAN_HINT) -> Decimal:
    """A number given as a JSON number (int, Decimal) or a numeric string; InputError naming
    ``field`` otherwise (a float is refused: it has already lost its digits)."""
    if isinstance(value, bool) or value is None:
        raise InputError.one(field, value, f"is not a number; {hint}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, str) and _YUAN.fullmatch(value.strip()):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
            raise InputError.one(field, value, "is not a number") from None
    else:
        raise InputError.one(field, value, f"is not a number; {hint}")
    if not d.is_finite():
        raise InputError.one(field, value, "is not a finite number")
    return d


def decimals(d: Decimal) -> int:
    exp = d.as_tuple().exponent
    assert isinstance(exp, int)
    return max(0, -exp)


def yuan_to_fen(field: str, value: Any, *, negative: bool = False) -> int:
    """Yuan (at most 2 decimals) as integer fen, exactly; InputError naming ``field``."""
    d = to_decimal(field, value)
    if decimals(d) > 2:
        raise InputError.one(
            field, str(value), "has more than 2 decimals; amounts are yuan to the fen (0.01)"
        )
    if d < 0 and not negative:
        raise InputError.one(field, str(value), "is negative; amounts are 0 or more")
    return int(d * 100)


def scaled(field: str, value: Any, places: int, unit: str, hint: str = YUAN_HINT) -> int:
    """A decimal with at most ``places`` decimals as an integer of 10**-places units."""
    d = to_decimal(field, value, hint)
    if decimals(d) > places:
        raise InputError.one(field, str(value), f"has more than {places} decimals ({unit})")
    if d < 0:
        raise InputError.one(field, str(value), "is negative")
    return int(d.scaleb(places))


def fen_to_yuan(fen: int) -> Decimal:
    """Integer fen as yuan with exactly two decimals: 12345 -> Decimal('123.45')."""
    return Decimal(fen).scaleb(-2)


def loads(raw: bytes) -> Any:
    """JSON with every non-integer number a Decimal of its raw text (no float anywhere)."""
    return json.loads(raw, parse_float=Decimal, parse_constant=_no_constant)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def dumps(obj: Any) -> str:
    """JSON text; a Decimal is written as its digits (a JSON number)."""
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, dict):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{dumps(v)}"
                              for k, v in obj.items()) + "}"  # fmt: skip
    if isinstance(obj, list | tuple):
        return "[" + ",".join(dumps(v) for v in obj) + "]"
    return json.dumps(obj, ensure_ascii=False)
