"""A window's bill file (``onestop window settle BILL``, ``pre-settle``): read and checked for
what a request message needs, before anything heavier is imported, so that a file that cannot be
sent is told in one line at once. The service checks the rest and names every problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class BillFileError(ValueError):
    """A bill file that cannot be sent: unreadable, not JSON, not one bill object, or a field of
    the wrong JSON type. The message names the file and the field, in one line."""


#: integer fields of an item (fen, basis points, ten-thousandths) and of nothing else
_ITEM_INTS = ("qty_e4", "unit_price", "amount", "unit_price_cap", "selfpay_ratio")
_BILL_TEXTS = ("id", "hospital", "region", "person_id", "hospital_level", "admission_date",
               "discharge_date")  # fmt: skip


def _kind(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false"}.get(
        type(v), "a number" if isinstance(v, int | float) else "null" if v is None else "a value"
    )


def read_bill(path: Path) -> dict[str, Any]:
    """One JSON bill from ``path`` (``{"bill": {...}}`` too), checked for what the message needs:
    the service checks the rest and names every problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BillFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BillFileError(
            f"{path}: cannot be read: {getattr(e, 'strerror', None) or e}"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise BillFileError(
            f"{path}: not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})"
        ) from None
    if isinstance(data, dict) and "bill" in data and "items" not in data:
        data = data["bill"]
    if not isinstance(data, dict):
        raise BillFileError(f"{path}: {_kind(data)}, where one bill object is expected")
    for k in _BILL_TEXTS:
        v = data.get(k)
        if v is not None and not isinstance(v, str):
            raise BillFileError(f"{path}: {k}: {v!r} is {_kind(v)}; give it as a string")
    person = data.get("person")
    if person is not None and not (isinstance(person, dict) and isinstance(person.get("id"), str)):
        raise BillFileError(f"{path}: person: give an object with a string id (or person_id)")
    items = data.get("items", [])
    if not isinstance(items, list):
        raise BillFileError(f"{path}: items: {_kind(items)}, where a list of items is expected")
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            raise BillFileError(
                f"{path}: items[{i}]: {_kind(it)}, where an item object is expected"
            )
        for k in _ITEM_INTS:
            v = it.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise BillFileError(
                    f"{path}: items[{i}].{k}: {v!r} is {_kind(v)}; give a whole number "
                    "(fen, basis points, ten-thousandths), without quotes"
                )
            if isinstance(v, int) and not -(2**63) <= v < 2**63:
                raise BillFileError(f"{path}: items[{i}].{k}: {v} is out of range")
        for k in ("code", "name", "category"):
            v = it.get(k)
            if v is not None and not isinstance(v, str):
                raise BillFileError(f"{path}: items[{i}].{k}: {v!r} is {_kind(v)}; give a string")
    return data
