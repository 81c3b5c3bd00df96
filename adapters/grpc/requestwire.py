"""A PreSettle request read straight from its wire bytes (issue 13 target 6): the bill's
columns (``BillColumns``) without upb parsing the request into a message and serializing the
bill again for the compiled item reader (``adapters.grpc.billwire``).

``pre_settle_columns`` answers what upb's parse then ``columns.bill_columns`` would, or None,
and the caller parses with upb as before (a bad message is named as ever). None for anything
but the plain case: ``allocate`` set, no bill or more than one ``bill`` field (upb would merge
them), a known field in another wire type than declared, field number 0, a group, a truncated
field, more items than a bill may have, a string that is not UTF-8, a NUL inside a string.
A string field sent twice counts as its last (proto3, as upb); unknown fields are skipped (upb
keeps them aside; no value changes). Item fields are read by ``billwire`` (the int32
``selfpay_ratio`` as its low 32 bits, as upb reads it).

The scan, the item read and the item rules (``engine.service.itemrules``) run in one compiled
call (``_read``): the rules' kernel columns ride in the columns' ``BillFacts``, so ``checked``
does not run them again.

``settle_columns`` does the same for a ``SettleRequest`` (issue 13 target 7): its three fields
read here (the request id, the bill's span, ``allocate``), the bill then read as a PreSettle
request's; None, and upb parses it, for anything but each of them at most once in its declared
wire type with no other field, a request id that is UTF-8, and a bill ``_read`` takes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from adapters.grpc.billwire import _CAT_CODES, _decode, _skip, _varint
from adapters.grpc.columns import columns_of
from engine import numbacache
from engine.bill import MAX_ITEMS_PER_BILL
from engine.service.billcols import BillColumns, BillFacts, ItemTexts
from engine.service.itemrules import _LIMITS, _pass

numbacache.install()

#: PreSettleRequest.bill, .allocate; Bill.items
_BILL, _ALLOCATE, _ITEMS = 1, 2, 7


@njit(cache=True, nogil=True)
def _scan(buf, spans):
    """Fill ``spans`` (9, 2): row 0 the bill's bytes, rows 1-8 the spans of ``Bill`` fields
    1-8 (row 7: the number of items); True if the request is the plain case (see above)."""
    for r in range(9):
        spans[r, 0] = 0
        spans[r, 1] = 0
    end = len(buf)
    i = 0
    bills = 0
    while i < end:
        key, i = _varint(buf, i, end)
        if i < 0:
            return False
        field, wt = key >> 3, key & 7
        if field == _BILL:
            if wt != 2 or bills:
                return False
            n, i = _varint(buf, i, end)
            if i < 0 or n < 0 or i + n > end:
                return False
            spans[0, 0] = i
            spans[0, 1] = i + n
            i += n
            bills = 1
        elif field == _ALLOCATE:
            if wt != 0:
                return False
            v, i = _varint(buf, i, end)
            if i < 0 or v != 0:
                return False
        elif field == 0:
            return False
        else:
            i = _skip(buf, i, end, wt)
            if i < 0:
                return False
    if not bills:
        return False
    i, end = spans[0, 0], spans[0, 1]
    items = 0
    while i < end:
        key, i = _varint(buf, i, end)
        if i < 0:
            return False
        field, wt = key >> 3, key & 7
        if 1 <= field <= 8:
            if wt != 2:
                return False
            n, i = _varint(buf, i, end)
            if i < 0 or n < 0 or i + n > end:
                return False
            if field == _ITEMS:
                items += 1
            else:
                spans[field, 0] = i
                spans[field, 1] = i + n
            i += n
        elif field == 0:
            return False
        else:
            i = _skip(buf, i, end, wt)
            if i < 0:
                return False
    spans[_ITEMS, 0] = items
    return True


#: the head strings' fields (``Bill`` 1-6 and 8), in the order ``columns_of`` takes them
_HEAD = np.array([1, 2, 3, 4, 5, 6, 8], dtype=np.int64)


@njit(cache=True, nogil=True)
def _read(buf, cat_codes, limits):
    """The request in one pass: ``_scan``, then the bill's strings into one NUL-joined text
    (the seven head strings, then the items' as ``billwire._decode`` writes them), its items
    (``_decode``) and their rules (``itemrules._pass``). Returns (the number of items, or -1
    for anything but the plain case; the length of the text, the item rules' answer (1 kept,
    0 not), ``spans`` (rows 0-8 as ``_scan`` fills them, rows 9-10 ``_decode``'s facts),
    ``w`` (10, n): the five item ints, the three kernel columns, the categories' codes, and
    the text as int8, its last n bytes the categories' codes again: the kernel's form, taken
    by a slice, not a cast of ``w[8]``). A NUL inside a head string is not taken (the split
    would not give seven)."""
    spans = np.empty((11, 2), dtype=np.int64)
    w = np.empty((10, 0), dtype=np.int64)
    text = np.empty(0, dtype=np.uint8)
    if not _scan(buf, spans):
        return -1, 0, 0, spans, w, text.view(np.int8)
    n = spans[_ITEMS, 0]
    b0, b1 = spans[0, 0], spans[0, 1]
    if n < 1 or n > MAX_ITEMS_PER_BILL:
        return -1, 0, 0, spans, w, text.view(np.int8)
    # each string is at least two bytes on the wire (its tag and length) and one in the text
    # (its NUL): an absent one is none and one, so 3 a possibly empty item, 7 the head; the
    # last n bytes: the categories' codes for the kernel (int8, ``pre_settle_columns``)
    text = np.empty(b1 - b0 + 4 * n + 7, dtype=np.uint8)
    t = 0
    for f in _HEAD:
        for p in range(spans[f, 0], spans[f, 1]):
            c = buf[p]
            if c == 0:
                return -1, 0, 0, spans, w, text.view(np.int8)
            text[t] = c
            t += 1
        text[t] = 0
        t += 1
    w = np.empty((10, n), dtype=np.int64)
    facts = np.empty(4, dtype=np.int64)
    used = _decode(buf[b0:b1], n, w[0:5], text[t:], facts, w[8], cat_codes)
    if used < 0:
        return -1, 0, 0, spans, w, text.view(np.int8)
    spans[9, 0], spans[9, 1], spans[10, 0], spans[10, 1] = facts[0], facts[1], facts[2], facts[3]
    kept = _pass(w[0], w[1], w[2], w[3], w[4], w[8], limits, w[5], w[6], w[7])
    c0 = len(text) - n
    for i in range(n):
        text[c0 + i] = w[8, i]
    return n, t + used, kept, spans, w, text.view(np.int8)


def pre_settle_columns(data: bytes) -> BillColumns | None:
    """The bill of a ``PreSettleRequest``'s bytes as columns, or None (parse with upb); its
    facts carry the items in the kernel's form when they keep every item rule."""
    buf = np.frombuffer(data, dtype=np.uint8)
    n, used, kept, spans, w, text = _read(buf, _CAT_CODES, _LIMITS)
    if n < 0:
        return None
    try:  # 7 head strings, then 3n item strings, each NUL-terminated (none holds a NUL)
        parts = text[: used - 1].tobytes().decode().split("\x00", 7)
    except UnicodeDecodeError:  # bytes upb would refuse
        return None
    bad, longest_code, longest_name, known = spans[9:].ravel().tolist()
    if kept == 1 and known:  # the kernel's form: the categories as int8 (the text's tail)
        facts = BillFacts(bool(bad), longest_code, longest_name, text[-n:], (w[5], w[6], w[7]))
    else:  # ``checked`` refuses the bill (a category unknown) or runs the item rules on
        # int64 categories, as the other readers give them
        facts = BillFacts(bool(bad), longest_code, longest_name, w[8] if known else None)
    items = ItemTexts.joined(parts.pop(), n)  # split only if asked (Settle's are)
    return columns_of(parts, items, w, facts)


#: SettleRequest.request_id, .bill, .allocate
_S_ID, _S_BILL, _S_ALLOCATE = 1, 2, 3


def _uvarint(data: bytes, i: int) -> tuple[int, int]:
    """The varint at ``data[i:]`` and the offset after it; (-1, -1) if truncated or longer
    than ten bytes."""
    v = shift = 0
    for j in range(i, min(i + 10, len(data))):
        b = data[j]
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return v, j + 1
        shift += 7
    return -1, -1


def settle_columns(data: bytes) -> tuple[str, BillColumns, bool] | None:
    """(the request id, the bill as columns, ``allocate``) of a ``SettleRequest``'s bytes, as
    upb's parse then ``columns.bill_columns`` give them, or None (parse with upb)."""
    seen = [False, False, False, False]
    rid, bill, allocate = "", b"", False
    i, end = 0, len(data)
    while i < end:
        key, i = _uvarint(data, i)
        if i < 0:
            return None
        field, wt = key >> 3, key & 7
        if not _S_ID <= field <= _S_ALLOCATE or seen[field]:
            return None
        seen[field] = True
        if field == _S_ALLOCATE:
            if wt != 0:
                return None
            v, i = _uvarint(data, i)
            if i < 0:
                return None
            allocate = v != 0
            continue
        n, i = _uvarint(data, i) if wt == 2 else (-1, -1)
        if i < 0 or i + n > end:
            return None
        if field == _S_ID:
            try:
                rid = data[i : i + n].decode()
            except UnicodeDecodeError:  # upb refuses it
                return None
        else:
            bill = data[i : i + n]
        i += n
    if not seen[_S_BILL]:
        return None
    # the bill as PreSettleRequest's field 1 (its length as a varint after the key)
    head = bytearray([_BILL << 3 | 2])
    n = len(bill)
    while n > 0x7F:
        head.append(n & 0x7F | 0x80)
        n >>= 7
    head.append(n)
    cols = pre_settle_columns(bytes(head) + bill)
    return None if cols is None else (rid, cols, allocate)


def warm_request_wire() -> None:
    """Compile ``_read`` (or load it from numba's cache) on a one-item request."""
    # bill { items { category: "A" } }, read-only as the request's bytes are
    pre_settle_columns(bytes([0x0A, 0x05, 0x3A, 0x03, 0x1A, 0x01, 0x41]))
