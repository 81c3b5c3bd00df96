"""The stored request of a Settle as compact JSON, its items written in one compiled pass
(issue 13 target 7).

A Settle stores its request as ``Checked.stored()`` (``BillRequest.model_dump(mode="json")``)
in compact JSON (PostgreSQL: ``compact_bytes``, orjson's bytes). Building the 100 item dicts
and dumping them cost ~75 us of a Settle's CPU (46 us the dicts, 29 us orjson). Here the items'
text is written straight from the columns by one numba loop: the codes and names come from
orjson's JSON array of them (escaped by orjson as it escapes them in the dicts), the integers
are written in decimal, the categories by name; the head (ids, dates) is orjson's. The bytes
are the same as ``compact_bytes(checked.stored())`` (tests/test_storedjson.py).

A string that JSON escapes (a quote, a backslash; the rules forbid control characters) leaves
a backslash in orjson's array: then ``None``, and the caller dumps the dicts as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from engine.bill import CATEGORY_NAMES

if TYPE_CHECKING:
    from engine.service.billcols import Checked

#: the category names by code (1/2/3), as JSON strings' insides, and where each starts
_NAMES = {int(v): v.name for v in CATEGORY_NAMES.values()}
_CAT_TEXT = np.frombuffer(b"".join(_NAMES[k].encode() for k in sorted(_NAMES)), np.uint8)
_CAT_START = np.zeros(max(_NAMES) + 2, np.int64)
for _k in range(max(_NAMES) + 1):
    _CAT_START[_k + 1] = _CAT_START[_k] + (len(_NAMES[_k].encode()) if _k in _NAMES else 0)

_CAT_LO, _CAT_HI = min(_NAMES), max(_NAMES)
_K_CODE = np.frombuffer(b'{"code":', np.uint8)
_K_NAME = np.frombuffer(b',"name":', np.uint8)
_K_CAT = np.frombuffer(b',"category":"', np.uint8)
_K_QTY = np.frombuffer(b'","qty_e4":', np.uint8)
_K_PRICE = np.frombuffer(b',"unit_price":', np.uint8)
_K_AMOUNT = np.frombuffer(b',"amount":', np.uint8)
_K_CAP = np.frombuffer(b',"unit_price_cap":', np.uint8)
_K_RATIO = np.frombuffer(b',"selfpay_ratio":', np.uint8)
_NULL = np.frombuffer(b"null", np.uint8)
#: the bytes an item takes beyond its code and name (keys, 5 integers of at most 20 bytes)
_ITEM_MAX = sum(len(k) for k in (_K_CODE, _K_NAME, _K_CAT, _K_QTY, _K_PRICE, _K_AMOUNT,
                                 _K_CAP, _K_RATIO)) + 5 * 20 + 2 + int(_CAT_TEXT.size)  # fmt: skip


@njit(cache=True, inline="always")
def _put(out: np.ndarray, at: int, src: np.ndarray) -> int:
    for i in range(src.size):
        out[at + i] = src[i]
    return at + src.size


@njit(cache=True, inline="always")
def _int(out: np.ndarray, at: int, v: int) -> int:
    """``v`` in decimal, as ``str(v)`` (unsigned arithmetic: no floor division's sign steps)."""
    if v < 0:
        out[at] = 45  # -
        at += 1
    u = np.uint64(-v) if v < 0 else np.uint64(v)
    n = 1
    t = u
    ten = np.uint64(10)
    while t >= ten:
        t //= ten
        n += 1
    for i in range(n - 1, -1, -1):
        out[at + i] = np.uint8(48) + np.uint8(u % ten)
        u //= ten
    return at + n


@njit(cache=True)
def _items(
    strings: np.ndarray,
    cat: np.ndarray,
    qty: np.ndarray,
    price: np.ndarray,
    amount: np.ndarray,
    cap: np.ndarray,
    ratio: np.ndarray,
    out: np.ndarray,
) -> int:
    """The items' JSON objects, comma-separated, into ``out``; their length, or -1 if a string
    was escaped in ``strings`` (orjson's JSON array of the codes, then the names) or a
    category is not one of the names'. (The keys and names are the module's arrays, constants
    of the compiled code: arrays given as arguments cost ~1 us each a call to dispatch.)"""
    k_code, k_name, k_cat, k_qty, k_price, k_amount = (
        _K_CODE,
        _K_NAME,
        _K_CAT,
        _K_QTY,
        _K_PRICE,
        _K_AMOUNT,
    )
    k_cap, k_ratio, null, cat_text, cat_start = _K_CAP, _K_RATIO, _NULL, _CAT_TEXT, _CAT_START
    n = cat.size
    for i in range(n):
        if cat[i] < _CAT_LO or cat[i] > _CAT_HI:
            return -1
    # where each quoted string starts and ends in the array (no backslash: none escaped, so a
    # quote only opens or closes a string)
    starts = np.empty(2 * n, np.int64)
    ends = np.empty(2 * n, np.int64)
    j = 0
    inside = False
    for i in range(strings.size):
        b = strings[i]
        if b == 92:  # a backslash: something was escaped
            return -1
        if b == 34:
            if inside:
                ends[j] = i + 1
                j += 1
            else:
                if j >= 2 * n:
                    return -1
                starts[j] = i
            inside = not inside
    if j != 2 * n:
        return -1
    at = 0
    for i in range(n):
        if i:
            out[at] = 44  # ,
            at += 1
        at = _put(out, at, k_code)
        at = _put(out, at, strings[starts[i] : ends[i]])
        at = _put(out, at, k_name)
        at = _put(out, at, strings[starts[n + i] : ends[n + i]])
        at = _put(out, at, k_cat)
        c = cat[i]
        at = _put(out, at, cat_text[cat_start[c] : cat_start[c + 1]])
        at = _put(out, at, k_qty)
        at = _int(out, at, qty[i])
        at = _put(out, at, k_price)
        at = _int(out, at, price[i])
        at = _put(out, at, k_amount)
        at = _int(out, at, amount[i])
        at = _put(out, at, k_cap)
        at = _put(out, at, null) if cap[i] < 0 else _int(out, at, cap[i])
        at = _put(out, at, k_ratio)
        at = _put(out, at, null) if ratio[i] < 0 else _int(out, at, ratio[i])
        out[at] = 125  # }
        at += 1
    return at


def _i64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


def stored_json(ch: Checked) -> bytes | None:
    """``compact_bytes(ch.stored())``: the request as stored, compact JSON as UTF-8; None if
    a code or name is escaped in JSON (the caller then dumps ``ch.stored()``)."""
    import orjson

    c = ch.cols
    cat = _i64(ch.cat)
    try:
        strings = orjson.dumps([*c.code, *c.name])
    except TypeError:  # orjson.JSONEncodeError (a lone surrogate): as the dicts would fail
        return None
    arr = np.frombuffer(strings, np.uint8)
    out = np.empty(arr.size + cat.size * _ITEM_MAX, np.uint8)
    got = _items(
        arr, cat, _i64(ch.qty), _i64(c.unit_price), _i64(c.amount), _i64(ch.price_cap),
        _i64(ch.sp_ratio), out,
    )  # fmt: skip
    if got < 0:
        return None
    head = orjson.dumps({
        "id": c.id, "hospital": c.hospital, "region": ch.region,
        "hospital_level": c.hospital_level, "admission_date": ch.admission.isoformat(),
        "discharge_date": ch.discharge.isoformat(), "items": None,
    })  # fmt: skip
    tail = b'],"person_id":' + orjson.dumps(c.person_id) + b"}"
    return head[: -len(b"null}")] + b"[" + out[:got].tobytes() + tail


def warm_stored_json() -> None:
    """Compile (or load from numba's cache) the items' pass on one item."""
    one = np.ones(1, dtype=np.int64)
    strings = np.frombuffer(b'["c","n"]', np.uint8)
    _items(strings, one, one, one, one, one, one, np.empty(strings.size + _ITEM_MAX, np.uint8))
