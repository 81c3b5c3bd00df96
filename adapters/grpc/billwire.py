"""A bill's items read from the bill's wire bytes in one compiled pass (issue 13 target 6).

Reading 100 ``Item`` messages through upb costs an item wrapper, eight attribute reads and a
``HasField`` per optional field that reads 0 (~130-145 us a PreSettle, the largest part of
its handler). ``item_columns`` serializes the parsed ``pb.Bill`` once (upb's canonical bytes:
the strings already checked as UTF-8, every field in its declared wire type) and decodes its
repeated ``items`` field (7) with a numba loop: the five int fields into one (5, n) int64
matrix (``NULL`` for an optional one not on the wire: proto3 ``optional`` has presence, so
an explicit 0 is on the wire and a missing field is not), the three strings of every item
into one NUL-joined buffer decoded and split once.

It only ever answers what upb's accessors would, or None: bytes it does not take (a group, a
truncated field, a field of items in another wire type than declared, a string holding a
NUL, so that the split would not give one per item) give None, and the caller reads the items
through upb as before (``adapters.grpc.columns``), where a bad value is named as ever.
``item_columns_plain`` is that upb reading, the reference the tests compare with.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from engine import numbacache
from engine.bill import CATEGORY_NAMES
from engine.service.billcols import NULL, BillFacts, ItemTexts

numbacache.install()

#: Bill.items, and the Item fields: 1-3 strings, 4-8 varints (4, 7, 8 optional)
_ITEMS = 7
_ABSENT = np.array([NULL, 0, 0, NULL, NULL], dtype=np.int64)
#: the codes of categories A, B, C (as ``billcols.checked`` gives them to the kernel)
_CAT_CODES = np.array([int(CATEGORY_NAMES[k]) for k in "ABC"], dtype=np.int64)


@njit(cache=True, nogil=True)
def _varint(buf, i, end):
    """(value as int64, next index), or (0, -1) if the varint runs past ``end``."""
    v = np.uint64(0)
    shift = np.uint64(0)
    while i < end:
        b = buf[i]
        i += 1
        v |= np.uint64(b & 0x7F) << shift
        if b < 0x80:
            return np.int64(v), i
        shift += np.uint64(7)
        if shift >= np.uint64(70):
            return np.int64(0), -1
    return np.int64(0), -1


@njit(cache=True, nogil=True)
def _skip(buf, i, end, wt):
    """The index after a field of wire type ``wt`` whose value starts at ``i``; -1 if not."""
    if wt == 0:
        _, i = _varint(buf, i, end)
        return i
    if wt == 1:
        return i + 8 if i + 8 <= end else -1
    if wt == 5:
        return i + 4 if i + 4 <= end else -1
    if wt == 2:
        n, i = _varint(buf, i, end)
        if i < 0 or n < 0 or i + n > end:
            return -1
        return i + n
    return -1  # groups (3, 4) and unknown wire types: not taken


@njit(cache=True, nogil=True)
def _decode(buf, n, ints, text, facts, cat, cat_codes):
    """Fill ``ints`` (5, n) and ``text`` (codes, names, categories, each NUL-terminated, in
    that order) from the Bill bytes ``buf``; returns the length of ``text`` used, or -1.
    Also the facts the checks ask of the strings (``BillFacts``): ``facts`` = [a code holds
    a control character (1/0), the longest code, the longest name (in characters: the UTF-8
    bytes that do not continue one), every category known (1/0)], ``cat`` the category codes
    (``cat_codes`` of A, B, C; 0 for any other string)."""
    end = len(buf)
    i = 0
    k = 0
    # the strings' spans first (the three columns are written one after another)
    spans = np.zeros((3, n, 2), dtype=np.int64)
    while i < end:
        key, i = _varint(buf, i, end)
        if i < 0:
            return -1
        field, wt = key >> 3, key & 7
        if field != _ITEMS or wt != 2:
            i = _skip(buf, i, end, wt)
            if i < 0:
                return -1
            continue
        size, i = _varint(buf, i, end)
        if i < 0 or size < 0 or i + size > end or k >= n:
            return -1
        stop = i + size
        for f in range(5):
            ints[f, k] = _ABSENT[f]
        for f in range(3):
            spans[f, k, 0] = 0
            spans[f, k, 1] = 0
        while i < stop:
            key, i = _varint(buf, i, stop)
            if i < 0:
                return -1
            field, wt = key >> 3, key & 7
            if 1 <= field <= 3 and wt == 2:
                ln, i = _varint(buf, i, stop)
                if i < 0 or ln < 0 or i + ln > stop:
                    return -1
                spans[field - 1, k, 0] = i
                spans[field - 1, k, 1] = i + ln
                i += ln
            elif 4 <= field <= 8 and wt == 0:
                v, i = _varint(buf, i, stop)
                if i < 0:
                    return -1
                if field == 8:  # selfpay_ratio (int32): its low 32 bits, as upb reads it
                    v = ((v & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000
                ints[field - 4, k] = v
            elif field == 0:
                return -1  # not a field number: upb refuses the message
            else:
                i = _skip(buf, i, stop, wt)
                if i < 0:
                    return -1
        if i != stop:
            return -1
        k += 1
    if k != n:
        return -1
    t = 0
    bad = 0
    longest = np.zeros(2, dtype=np.int64)
    for f in range(3):
        for j in range(n):
            chars = 0
            for p in range(spans[f, j, 0], spans[f, j, 1]):
                c = buf[p]
                if c == 0:
                    return -1  # a NUL inside a string: the split would not give n parts
                if f == 0 and (c < 0x20 or c == 0x7F):
                    bad = 1
                chars += (c & 0xC0) != 0x80
                text[t] = c
                t += 1
            text[t] = 0
            t += 1
            if f < 2:
                longest[f] = max(longest[f], chars)
            else:
                cat[j] = _category(buf, spans[2, j, 0], spans[2, j, 1], cat_codes)
    facts[0], facts[1], facts[2] = bad, longest[0], longest[1]
    facts[3] = 1
    for j in range(n):
        if cat[j] == 0:
            facts[3] = 0
    return t


@njit(cache=True, nogil=True)
def _category(buf, start, stop, cat_codes):
    """The code of category "A", "B", "C" (or NHSA "01", "02", "03"); 0 for anything else."""
    k = -1
    if stop - start == 1:
        k = buf[start] - 0x41  # A
    elif stop - start == 2 and buf[start] == 0x30:  # 0
        k = buf[start + 1] - 0x31  # 1
    return cat_codes[k] if 0 <= k < 3 else 0


def item_columns(
    b: Any, n: int
) -> tuple[list[str], list[str], list[str], np.ndarray, BillFacts] | None:
    """(codes, names, categories, the (5, n) int64 matrix of qty_e4, unit_price, amount,
    unit_price_cap, selfpay_ratio, the strings' ``BillFacts``) of the ``n`` items of ``b`` (a
    ``pb.Bill``), or None when the compiled pass does not take its bytes (then read them with
    ``item_columns_plain``)."""
    return items_of(np.frombuffer(b.SerializeToString(), dtype=np.uint8), n)


def items_of(
    buf: np.ndarray, n: int
) -> tuple[list[str], list[str], list[str], np.ndarray, BillFacts] | None:
    """``item_columns`` of a Bill's bytes ``buf`` (read-only uint8), as upb would read them;
    None when the pass does not take them (invalid UTF-8 included)."""
    ints = np.empty((5, n), dtype=np.int64)
    text = np.empty(len(buf) + 3 * n, dtype=np.uint8)
    facts = np.empty(4, dtype=np.int64)
    cat = np.empty(n, dtype=np.int64)
    used = _decode(buf, n, ints, text, facts, cat, _CAT_CODES)
    if used < 0:
        return None
    try:  # 3n strings, each NUL-terminated (none holds a NUL: ``_decode`` refuses one)
        joined = text[: used - 1].tobytes().decode() if n else ""
    except UnicodeDecodeError:  # bytes upb did not check (``requestwire``)
        return None
    bad, longest_code, longest_name, known = facts.tolist()
    facts_of = BillFacts(bool(bad), longest_code, longest_name, cat if known else None)
    return (*ItemTexts.joined(joined, n).lists(), ints, facts_of)


def item_columns_plain(items: Any) -> tuple[list[str], list[str], list[str], np.ndarray]:
    """The same columns read through upb's accessors: one row of each item's fields (an
    optional int read as 0 is given only if ``HasField``), then one numpy call."""
    rows = [
        (
            it.code, it.name, it.category,
            q if (q := it.qty_e4) or it.HasField("qty_e4") else NULL,
            it.unit_price, it.amount,
            c if (c := it.unit_price_cap) or it.HasField("unit_price_cap") else NULL,
            r if (r := it.selfpay_ratio) or it.HasField("selfpay_ratio") else NULL,
        )
        for it in items
    ]  # fmt: skip
    if not rows:
        return [], [], [], np.zeros((5, 0), dtype=np.int64)
    code, name, category, *ints = zip(*rows, strict=True)
    return list(code), list(name), list(category), np.array(ints, dtype=np.int64)


def warm_bill_wire() -> None:
    """Compile ``_decode`` (or load it from numba's cache) on a one-item bill."""
    # items { category: "A" }, read-only as ``item_columns`` gives it (another numba type)
    buf = np.frombuffer(bytes([0x3A, 0x03, 0x1A, 0x01, 0x41]), dtype=np.uint8)
    _decode(
        buf, 1, np.empty((5, 1), dtype=np.int64), np.empty(len(buf) + 3, dtype=np.uint8),
        np.empty(4, dtype=np.int64), np.empty(1, dtype=np.int64), _CAT_CODES,
    )  # fmt: skip
