"""The item rules ``billcols.checked`` applies to one bill's int columns, in one compiled pass.

``checked`` tested the five int columns of a bill with a dozen numpy calls on their (5, n)
matrix (~1 us each whatever the size: ~20 us of every PreSettle and Settle): each value given
within 0..its highest, unit price and amount required, the bill's total within its limit, a
self-pay ratio only on a category B item; then the absent optional values replaced by the
kernel's (one unit, -1 for no cap, -1 for no ratio). ``kernel_items`` does both in one loop.
It takes int64, one-dimensional, contiguous, writable columns (what the gRPC adapter makes);
for any other form it answers None and the numpy rules (``kernel_items_plain``) decide, so the
answer never depends on which ran.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from engine import numbacache
from engine.money import BP, MAX_AMOUNT, MAX_BILL_TOTAL, MAX_QTY_E4, MAX_UNIT_PRICE

numbacache.install()

#: an optional item field that is not given (``billcols.NULL``)
NULL = np.iinfo(np.int64).min
_LIMITS = np.array([MAX_QTY_E4, MAX_UNIT_PRICE, MAX_AMOUNT, BP, MAX_BILL_TOTAL], dtype=np.int64)
# the numpy rules' matrix: which must be given, the highest value, the value of an absent one
_REQUIRED = np.array([[False], [True], [True], [False], [False]])
_HIGHEST = np.array([[MAX_QTY_E4], [MAX_UNIT_PRICE], [MAX_AMOUNT], [MAX_UNIT_PRICE], [BP]])
_ABSENT = np.array([[BP], [0], [0], [-1], [-1]], dtype=np.int64)

Kernel = tuple[np.ndarray, np.ndarray, np.ndarray]


#: the one form ``_pass`` takes: int64, one-dimensional, C-contiguous, writable (the
#: dispatcher compiles no other: another form raises TypeError instead of a new compilation)
_I8 = "int64[::1]"
_SIGNATURE = f"int64({', '.join([_I8] * 10)})"


@njit(_SIGNATURE, cache=True, nogil=True)
def _pass(qty, price, amount, cap, ratio, cat, limits, qty_out, cap_out, ratio_out):
    """1: the items keep every rule (``*_out`` filled); 0: one does not; -1: the columns'
    lengths differ (the caller's numpy rules decide)."""
    max_qty, max_price, max_amount, bp, max_total = (
        limits[0], limits[1], limits[2], limits[3], limits[4],
    )  # fmt: skip
    n = len(amount)
    for a in (qty, price, cap, ratio, cat, qty_out, cap_out, ratio_out):
        if len(a) != n:
            return -1
    null = NULL
    total = 0
    for i in range(n):
        q = qty[i]
        if q == null:
            q = bp
        elif q < 0 or q > max_qty:
            return False
        p = price[i]  # required: an absent one (NULL) is below 0
        if p < 0 or p > max_price:
            return False
        a = amount[i]
        if a < 0 or a > max_amount:
            return False
        total += a
        c = cap[i]
        if c == null:
            c = -1
        elif c < 0 or c > max_price:
            return False
        r = ratio[i]
        if r == null:
            r = -1
        elif r < 0 or r > bp or cat[i] != 2:
            return 0
        qty_out[i] = q
        cap_out[i] = c
        ratio_out[i] = r
    return 1 if total <= max_total else 0


def kernel_items(cols: Any, cat: np.ndarray) -> Kernel | bool | None:
    """(qty, price_cap, sp_ratio) in the kernel's form if ``cols`` (a ``BillColumns``) keep
    every item rule, False if not; None if a column is in a form the pass does not take (its
    dispatcher's one signature: checked there, not by six Python calls here, ~3 us)."""
    n = len(cat)
    out = np.empty((3, n), dtype=np.int64)
    try:
        got = _pass(
            cols.qty_e4, cols.unit_price, cols.amount, cols.unit_price_cap, cols.selfpay_ratio,
            cat, _LIMITS, out[0], out[1], out[2],
        )  # fmt: skip
    except TypeError:  # another form
        return None
    if got < 0:
        return None
    return (out[0], out[1], out[2]) if got else False


def kernel_items_plain(cols: Any, cat: np.ndarray) -> Kernel | bool:
    """The same answer in numpy, for columns of any form."""
    m = np.stack((cols.qty_e4, cols.unit_price, cols.amount, cols.unit_price_cap,
                  cols.selfpay_ratio))  # fmt: skip
    given = m != NULL
    v = np.where(given | _REQUIRED, m, 0)  # a NULL where a value is required stays: < 0
    if v.min() < 0 or (v > _HIGHEST).any() or int(v[2].sum()) > MAX_BILL_TOTAL:
        return False
    if (given[4] & (cat != 2)).any():  # a self-pay ratio on an item not of category B
        return False
    k = np.where(given, m, _ABSENT)
    return k[0], k[3], k[4]


def warm_item_rules() -> None:
    """Compile (or load from numba's cache) the pass on a one-item column set."""
    one = np.ones(1, dtype=np.int64)
    _pass(one, one, one, one, one, one, _LIMITS, *np.empty((3, 1), dtype=np.int64))
