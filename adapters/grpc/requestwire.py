"""A PreSettle request read straight from its wire bytes (issue 13 target 6): the bill's
columns (``BillColumns``) without upb parsing the request into a message and serializing the
bill again for the compiled item reader (``adapters.grpc.billwire``).

``pre_settle_columns`` answers what upb's parse then ``columns.bill_columns`` would, or None,
and the caller parses with upb as before (a bad message is named as ever). None for anything
but the plain case: ``allocate`` set, no bill or more than one ``bill`` field (upb would merge
them), a known field in another wire type than declared, field number 0, a group, a truncated
field, more items than a bill may have, a string that is not UTF-8, a NUL inside an item's
string. A string field sent twice counts as its last (proto3, as upb); unknown fields are
skipped (upb keeps them aside; no value changes). Item fields are read by ``billwire`` (the
int32 ``selfpay_ratio`` as its low 32 bits, as upb reads it).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from adapters.grpc.billwire import _skip, _varint, read_items
from adapters.grpc.columns import columns_of
from engine import numbacache
from engine.bill import MAX_ITEMS_PER_BILL
from engine.service.billcols import BillColumns

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


def pre_settle_columns(data: bytes) -> BillColumns | None:
    """The bill of a ``PreSettleRequest``'s bytes as columns, or None (parse with upb)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    spans = np.empty((9, 2), dtype=np.int64)
    if not _scan(buf, spans):
        return None
    (b0, b1), *fields = spans.tolist()
    n = fields[_ITEMS - 1][0]
    if not 1 <= n <= MAX_ITEMS_PER_BILL:
        return None
    cols = read_items(buf[b0:b1], n)  # the item strings split only if asked (Settle's are)
    if cols is None:
        return None
    try:
        head = [data[a:b].decode() for k, (a, b) in enumerate(fields, 1) if k != _ITEMS]
    except UnicodeDecodeError:
        return None
    return columns_of(head, *cols)


def warm_request_wire() -> None:
    """Compile ``_scan`` (or load it from numba's cache) on a one-item request."""
    # bill { items { category: "A" } }, read-only as the request's bytes are
    pre_settle_columns(bytes([0x0A, 0x05, 0x3A, 0x03, 0x1A, 0x01, 0x41]))
