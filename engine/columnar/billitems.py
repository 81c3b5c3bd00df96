"""The items of a batch: linked to their bills (as runs, by bill row, or by hospital and bill
id), each item's rules (bill.Item), the kernel's forms of the nullable columns, and the
per-bill limits (the bill's total, its number of items, at least one item)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.bill import CATEGORY_RULE, MAX_ITEMS_PER_BILL
from engine.columnar.billchecks import BillKeys, Marks
from engine.columnar.inputs import (
    BillCols,
    Coded,
    ItemCols,
    Offset,
    Rejects,
    Strings,
    category_codes,
    lookup,
    no_nulls,
    rows_of,
)
from engine.columnar.itemcheck import items_clean_runs
from engine.money import BP, MAX_AMOUNT, MAX_BILL_TOTAL, MAX_QTY_E4, MAX_UNIT_PRICE

#: the item rules run block by block, so that their temporary masks stay small
ITEM_BLOCK = 1 << 20


@dataclass
class BillItems:
    """The checked item columns in the kernel's forms, and how they link to the bills."""

    bs: np.ndarray | None  # run offsets (bill b's items are bs[b]:bs[b+1]), if given as runs
    linked: Any  # per item: linked to a bill (True: all, as runs)
    ibs: np.ndarray | None  # per item: its bill (0 where not linked); None as runs
    n_items_of: np.ndarray  # per bill: its number of items
    cols: tuple[np.ndarray, ...]  # cat, qty, amount, price_cap, sp_ratio


def bill_items(items: ItemCols, bills: BillCols, keys: BillKeys, m: Marks) -> BillItems:
    """Link the items to the bills, apply every item rule and the per-bill limits:
    a bad item is a reject and its bill is marked bad. Raises ``ValueError`` when the items
    give no link to the bills, or run offsets that are not a run index of the bills."""
    rj, bad, brow, bf, bidx = m.rj, m.bad, m.brow, m.bf, m.bidx
    nb, ni = len(bills), len(items)
    irow = rows_of(items.row, ni)
    itf = items.file
    bs = None
    ib: Any = None
    link_vals: Strings | None
    if items.bill_start is not None:
        bs = np.asarray(items.bill_start, dtype=np.int64)
        if len(bs) != nb + 1 or bs[0] != 0 or bs[-1] != ni or np.any(bs[1:] < bs[:-1]):
            raise ValueError(f"{itf}: bill_start is not a run index of {nb} bills over {ni} items")
    elif items.bill_row is not None:
        ib = np.asarray(items.bill_row, dtype=np.int64)
        ib = np.where((ib >= 0) & (ib < nb), ib, -1)
        link_field, link_vals = "bill_row", items.bill_row
    else:
        if items.bill_id is None:
            raise ValueError(f"{itf}: give bill_id or bill_row to link items to bills")
        bu, nh, key_u, key_first = keys.bu, keys.nh, keys.key_u, keys.key_first
        code = lookup(bu, items.bill_id)
        if items.hospital is not None:  # by (hospital, bill id)
            hc_i = lookup(keys.hosp_u, no_nulls(items.hospital))
            ikey = np.where((code >= 0) & (hc_i >= 0), code * nh + hc_i, -1)
            kpos = lookup(key_u, ikey) if len(key_u) else np.full(ni, -1, dtype=np.int64)
            ib = np.where((ikey >= 0) & (kpos >= 0), key_first[np.maximum(kpos, 0)], -1)
            link_field, link_vals = "bill_id", items.bill_id
        else:  # by bill id alone: only where the id names the bills of one hospital
            first_b = np.full(len(bu), -1, dtype=np.int64)
            if nb:
                first_b[keys.bcode[::-1]] = np.arange(nb)[::-1]  # the first bill with that id
            hospitals_of = np.bincount(key_u // nh, minlength=len(bu)) if nb else first_b
            ib = np.where(code >= 0, first_b[np.maximum(code, 0)], -1) if ni else code
            several = (code >= 0) & (hospitals_of[np.maximum(code, 0)] > 1) if ni else code < 0
            rj.add(
                several, irow, itf, "bill_id", items.bill_id,
                f"names bills of several hospitals in {bf}; give {itf} a hospital column "
                "(a bill is identified by hospital and bill id)", None,
            )  # fmt: skip
            ib = np.where(several, -2, ib)
            link_field, link_vals = "bill_id", items.bill_id
    ibs: np.ndarray | None = None
    if bs is None:
        rj.add(
            ib == -1, irow, itf, link_field, link_vals,
            f"names no bill of the bills table ({bf}); every item belongs to a bill", None,
        )  # fmt: skip
        linked: Any = ib >= 0
        ibs = np.maximum(ib, 0)

        def ib_of(idx: np.ndarray) -> np.ndarray:
            return ib[idx]
    else:
        linked = True

        def ib_of(idx: np.ndarray) -> np.ndarray:
            return np.searchsorted(bs, idx, side="right") - 1

    cat = category_codes(items.category)
    item_bad = np.zeros(ni, dtype=bool)
    amount = np.asarray(items.amount)
    if items.amount_null is not None:
        amount = np.where(np.asarray(items.amount_null, dtype=bool), 0, amount)
    qty = np.full(ni, BP, dtype=np.int32) if items.qty_e4 is None else np.asarray(items.qty_e4)
    # item checks block by block, so that their temporary masks stay small; items linked as
    # runs that one compiled pass finds clean (the usual case) need none of them. That pass
    # also sums each bill's amounts and widens int32 amounts (the packed stream's) to int64
    run_totals = None
    if bs is not None and ni > 0:
        checked = items_clean_runs(items, cat, amount, bs)
        if checked is not None:
            clean, amount, run_totals = checked
    if run_totals is None:
        clean = False
        if amount.dtype == np.int32:  # the kernel's amounts are int64
            amount = amount.astype(np.int64)
    for lo_ in range(0, 0 if clean else ni, ITEM_BLOCK):
        hi_ = min(ni, lo_ + ITEM_BLOCK)
        _check_items(items, cat, amount, lo_, hi_, rj, irow, itf,
                     linked if linked is True else linked[lo_:hi_], ib_of, item_bad)  # fmt: skip
    # an absent cap or ratio column is filled narrow (int32, int16), or as int64 beside int64
    # quantities and the other one given as int64: the widths of a variant ``onestop warm``
    # compiles (``engine.warm.ITEM_DTYPES``), not one a first message compiles (10-20 s)
    wide = qty.dtype == np.int64
    cap_fill = np.int64 if wide and _is_int64(items.selfpay_ratio) else np.int32
    ratio_fill = np.int64 if wide and _is_int64(items.unit_price_cap) else np.int16
    price_cap = _nullable(items.unit_price_cap, items.unit_price_cap_null, ni, cap_fill, clean)
    sp_ratio = _nullable(items.selfpay_ratio, items.selfpay_ratio_null, ni, ratio_fill, clean)
    bad_from_items = np.zeros(nb, dtype=bool)
    bad_from_items[ib_of(np.flatnonzero(item_bad))] = True
    del item_bad
    bad |= bad_from_items
    if bs is not None:
        n_items_of = np.diff(bs)
    else:
        assert ibs is not None
        n_items_of = np.bincount(ibs[linked], minlength=nb) if nb else np.zeros(0, np.int64)
    # a bill's items add up to at most MAX_BILL_TOTAL (year-to-date sums stay exact)
    totals = np.zeros(nb, dtype=np.int64)
    if run_totals is not None:
        totals = run_totals
    elif bs is not None:
        has = n_items_of > 0
        if ni and has.any():
            totals[has] = np.add.reduceat(amount, bs[:-1][has], dtype=np.int64)
    elif ni:
        assert ibs is not None
        np.add.at(totals, ibs[linked], amount[linked])
    big = totals > MAX_BILL_TOTAL
    if big.any():
        rj.add(
            big, brow, bf, "items", totals,
            f"is the sum of the bill's item amounts in fen, above the limit {MAX_BILL_TOTAL} "
            "fen for one bill; split the bill", bidx,
        )  # fmt: skip
        bad |= big
    many = n_items_of > MAX_ITEMS_PER_BILL
    if many.any():
        rj.add(
            many, brow, bf, "items", n_items_of,
            f"items exceed the limit MAX_ITEMS_PER_BILL = {MAX_ITEMS_PER_BILL}; split the bill",
            bidx,
        )  # fmt: skip
        bad |= many
    noitems = (n_items_of == 0) & ~bad
    rj.add(
        noitems, brow, bf, "bill_id", bills.bill_id,
        f"has no items in {itf}; a bill has at least one item", bidx,
    )  # fmt: skip
    bad |= n_items_of == 0
    return BillItems(bs, linked, ibs, n_items_of, (cat, qty, amount, price_cap, sp_ratio))


def _check_items(
    items: ItemCols, cat: np.ndarray, amount: np.ndarray, lo: int, hi: int, rj: Rejects,
    irow: Any, itf: str, linked: Any, ib_of: Any, item_bad: np.ndarray,
) -> None:  # fmt: skip
    """The rules of one item (bill.Item) on rows [lo, hi): each bad value is a reject."""

    def rows() -> Any:  # the block's row numbers, built only when a rule finds a bad value
        return irow[np.arange(lo, hi)] if isinstance(irow, Offset) else irow[lo:hi]

    def sl(a: Any) -> Any:
        if a is None:
            return None
        if isinstance(a, Coded):
            return Coded(a.codes[lo:hi], a.labels)
        return np.asarray(a)[lo:hi]

    def rule(where: np.ndarray, fld: str, vals: Any, text: str) -> None:
        w = where if linked is True else where & linked
        if w.any():
            rj.add(w, rows(), itf, fld, vals, text, lambda idx: ib_of(idx + lo))
            item_bad[lo:hi] |= w

    c = cat[lo:hi]
    rule(c == 0, "category", sl(items.category), CATEGORY_RULE)
    if items.amount_null is not None:
        rule(sl(items.amount_null).astype(bool), "amount", None, "is missing; it is required")
    a = amount[lo:hi]
    rule(a < 0, "amount", a, "is negative; amounts are non-negative fen")
    rule(
        a > MAX_AMOUNT,
        "amount",
        a,
        f"is above the limit {MAX_AMOUNT}; amounts are non-negative fen",
    )
    unit = "quantities are non-negative ten-thousandths"
    if items.qty_e4 is not None:
        q = sl(items.qty_e4)
        rule(q < 0, "qty_e4", q, f"is negative; {unit}")
        rule(q > MAX_QTY_E4, "qty_e4", q, f"is above the limit {MAX_QTY_E4}; {unit}")
    unit = "unit prices are non-negative fen"
    for name in ("unit_price", "unit_price_cap"):
        v = sl(getattr(items, name))
        if v is None:
            continue
        null = sl(getattr(items, name + "_null", None))
        given = np.ones(hi - lo, dtype=bool) if null is None else ~null.astype(bool)
        rule(given & (v < 0), name, v, f"is negative; {unit}")
        rule(given & (v > MAX_UNIT_PRICE), name, v, f"is above the limit {MAX_UNIT_PRICE}; {unit}")
    r = sl(items.selfpay_ratio)
    if r is not None:
        null = sl(items.selfpay_ratio_null)
        given = np.ones(hi - lo, dtype=bool) if null is None else ~null.astype(bool)
        unit = "ratios are basis points from 0 to 10000"
        rule(given & (r < 0), "selfpay_ratio", r, f"is negative; {unit}")
        rule(given & (r > BP), "selfpay_ratio", r, f"is above 10000; {unit}")
        rule(
            given & (r >= 0) & (r <= BP) & (c != 2) & (c != 0), "selfpay_ratio", r,
            "is given for an item that is not category B; only category B items have a first "
            "self-pay ratio",
        )  # fmt: skip


def _is_int64(a: np.ndarray | None) -> bool:
    return a is not None and np.asarray(a).dtype == np.int64


def _nullable(
    a: np.ndarray | None, null: np.ndarray | None, n: int, dtype: Any, clean: bool = False
) -> np.ndarray:
    """The kernel's form of a nullable column: -1 = not given. Values are kept as they are
    (no copy) when they already say -1 under the mask; bad (negative) values are rejected by
    the caller and also become -1 here, so that the array is always well formed. ``clean``:
    ``itemcheck.items_clean`` found every value given within its limits and every null -1,
    so the values are already that form (no pass over them)."""
    if a is None:
        return np.full(n, -1, dtype=dtype)
    a = np.asarray(a)
    if clean:
        return a
    if null is None:
        if a.size and a.min() < -1:
            return np.where(a < 0, -1, a)
        return a
    null = np.asarray(null, dtype=bool)
    # nulls already say -1 (as the adapters fill them): no copy. A -1 that is not null is
    # rejected by the caller and its bill left out, so it never reaches the kernel.
    if (a.size == 0 or a.min() >= -1) and not np.any(null & (a != -1)):
        return a
    return np.where(null | (a < 0), -1, a)
