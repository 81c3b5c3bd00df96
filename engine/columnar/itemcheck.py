"""One compiled pass that says whether every item of a batch keeps the rules of one item
(``billitems._check_items``: a known category, amount, quantity and prices within their limits,
a self-pay ratio only on a category B item and within 0..10000). When it does (the usual case:
a HIS sends clean bills), ``prepare_columns`` skips the dozen numpy passes of those rules over
the item columns; when it does not, the numpy rules run as before and name every bad value.
``items_clean`` answers False (run the rules) for any column form it does not take, so it can
only save work, never hide a bad value; ``items_clean_plain`` is its numpy reference. Clean
also says that every null cap and ratio already holds the kernel's -1 (as the adapters fill
them), so that ``billitems._nullable`` has nothing to replace; a null over another value is left
to the rules (which find nothing there) and ``_nullable`` (not clean).

The pass also reads the amounts for ``prepare_columns`` when the items come as the bills' runs
(``items_clean_runs``): each bill's total (for the bill's limit) and, for the packed stream's
int32 amounts, the int64 amounts the kernel reads: one read of the amounts, not three passes
(the check, numpy's ``add.reduceat`` and the widening ``astype``).

Every column is passed to the compiled pass read-only (``runs.read_only``: a view), so one
variant per form takes writable columns and views of received bytes alike (the packed stream's
columns are such views; they are not copied for the check). It takes four forms, one compiled
variant each (``warm_item_check``): every column int64, or the narrow form of the packed stream
and of the Parquet files (``NARROW``: int32 quantities and caps, int16 ratios, each given so or
absent; amounts int64, or int32 as the packed stream's ``amount_i32`` in the stream's form;
unit prices int64, or int32 as the Parquet files store them)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from numba import njit

from engine import numbacache
from engine.columnar.inputs import ItemCols
from engine.columnar.runs import read_only
from engine.money import BP, MAX_AMOUNT, MAX_QTY_E4, MAX_UNIT_PRICE

numbacache.install()

_NONE_B = read_only(np.zeros(0, dtype=np.bool_))
#: the narrow form: quantity, cap and ratio dtypes (amount int64 as in the other; unit price
#: int64, or int32 as the Parquet files the project writes store it: ``_price_dtype``)
NARROW = (np.dtype(np.int32), np.dtype(np.int32), np.dtype(np.int16))


@njit(cache=True, nogil=True)
def _clean_runs(cat, amount, qty, price, cap, cap_null, ratio, ratio_null, limits, starts, wide,
                totals):  # fmt: skip
    # each rule an OR of comparisons over a whole column, no branch an item, so that every
    # loop vectorizes: 0.1 ms for 200 k items against 0.6 ms for one loop returning at the
    # first bad value (benchmarks/README.md, branch stream4); a bad value is rare. On the same
    # read of the amounts: each bill's sum into ``totals`` (``starts``: the bills' runs, 0 to
    # n) and, when ``wide`` is not empty, each amount widened into it (int64)
    # (the runs' bounds as unsigned: a signed index is checked for a negative value, and the
    # loop does not vectorize: 107 against 24 us for the sums alone of 200 k items)
    max_amount = limits[0]
    widen = len(wide) > 0
    bad = False
    for b in range(len(starts) - 1):
        s = np.int64(0)
        for i in range(np.uint64(starts[b]), np.uint64(starts[b + 1])):
            a = np.int64(amount[i])
            if widen:
                wide[i] = a
            s += a
            bad |= (cat[i] == 0) | (a < 0) | (a > max_amount)
        totals[b] = s
    n = len(amount)
    return not (bad | _others_bad(cat, n, qty, price, cap, cap_null, ratio, ratio_null, limits))


@njit(cache=True, nogil=True)
def _others_bad(cat, n, qty, price, cap, cap_null, ratio, ratio_null, limits):
    # the rules of the columns other than category and amount
    max_qty, max_price, bp = limits[1], limits[2], limits[3]
    bad = False
    if len(qty) > 0:
        for i in range(n):
            bad |= (qty[i] < 0) | (qty[i] > max_qty)
    if len(price) > 0:
        for i in range(n):
            bad |= (price[i] < 0) | (price[i] > max_price)
    if len(cap) > 0:
        if len(cap_null) > 0:
            for i in range(n):
                v = cap[i]
                null = cap_null[i]
                bad |= ((not null) & ((v < 0) | (v > max_price))) | (null & (v != -1))
        else:
            for i in range(n):
                bad |= (cap[i] < 0) | (cap[i] > max_price)
    if len(ratio) > 0:
        if len(ratio_null) > 0:
            for i in range(n):
                r = ratio[i]
                null = ratio_null[i]
                bad |= ((not null) & ((r < 0) | (r > bp) | (cat[i] != 2))) | (null & (r != -1))
        else:
            for i in range(n):
                r = ratio[i]
                bad |= (r < 0) | (r > bp) | (cat[i] != 2)
    return bad


def _taken(a: Any, dtype: Any = np.int64) -> np.ndarray | None:
    """``a`` as the compiled pass takes it (a read-only view of a contiguous array of
    ``dtype``), else None."""
    a = np.asarray(a)
    ok = a.dtype == dtype and a.flags.c_contiguous
    return read_only(a) if ok else None


def _form(items: ItemCols) -> tuple[Any, Any, Any]:
    """The dtypes the pass takes quantities, caps and ratios in for ``items``: ``NARROW`` when
    one of them is given in its narrow dtype, else int64 (any other mix: not taken)."""
    given = (items.qty_e4, items.unit_price_cap, items.selfpay_ratio)
    if any(a is not None and np.asarray(a).dtype == d for a, d in zip(given, NARROW, strict=True)):
        return NARROW
    return (np.dtype(np.int64),) * 3


def _price_dtype(items: ItemCols, form: tuple[Any, Any, Any]) -> Any:
    """The unit price dtype the pass takes: int32 in the narrow form when the prices come so
    (``onestop batch`` on the project's Parquet files, read in their stored widths: before,
    such a batch was never taken and every part ran the numpy rules), else int64."""
    p = items.unit_price
    if form == NARROW and p is not None and np.asarray(p).dtype == np.int32:
        return np.dtype(np.int32)
    return np.dtype(np.int64)


def _mask(m: Any, n: int) -> np.ndarray | None:
    if m is None:
        return _NONE_B
    m = np.asarray(m)
    ok = m.dtype == np.bool_ and m.flags.c_contiguous and len(m) == n
    return read_only(m) if ok else None


def items_clean(items: ItemCols, cat: np.ndarray, amount: np.ndarray) -> bool:
    """True when no item of ``items`` breaks a rule of ``_check_items`` (``cat``: the int8
    category codes, 0 = unknown; ``amount``: the amounts as checked) and every null cap and
    ratio holds -1. False also when a column
    comes in a form the compiled pass does not take (then the numpy rules decide)."""
    got = items_clean_runs(items, cat, amount, np.array([0, len(amount)], dtype=np.int64))
    return got is not None and got[0]


def items_clean_runs(
    items: ItemCols, cat: np.ndarray, amount: np.ndarray, starts: np.ndarray
) -> tuple[bool, np.ndarray, np.ndarray] | None:
    """``items_clean`` of items grouped in the bills' runs (``starts``: int64, from 0 to n, not
    decreasing), with, from the same pass over the amounts, the amounts as int64 and each
    bill's sum of them (int64): (clean, amounts, totals); None when a column comes in a form
    the pass does not take. The amounts are ``amount`` itself when int64; int32 ones (the
    packed stream's ``amount_i32``) are widened in the pass in the stream's narrow form, before
    it in any other (the variants ``warm_item_check`` compiles). ``items_runs_plain`` is its
    numpy reference."""
    a = np.asarray(amount)
    narrow = a.dtype == np.int32 and _form(items) == NARROW and _price_dtype(items, NARROW) == _I64
    if a.dtype == np.int32 and not narrow:
        a = a.astype(np.int64)  # another form: widened first, then its int64 variant
    args = _args(items, cat, a, np.int32 if narrow else np.int64)
    if args is None or len(starts) < 1 or starts[0] != 0 or starts[-1] != len(a):
        return None
    wide = np.empty(len(a) if narrow else 0, dtype=np.int64)
    totals = np.empty(len(starts) - 1, dtype=np.int64)
    c, amount_, qty, price, cap, cap_null, ratio, ratio_null = args
    runs = read_only(np.asarray(starts, dtype=np.int64))
    clean = bool(_clean_runs(c, amount_, qty, price, cap, cap_null, ratio, ratio_null, _LIMITS,
                             runs, wide, totals))  # fmt: skip
    return clean, wide if narrow else a, totals


_I64 = np.dtype(np.int64)


def _args(items: ItemCols, cat: np.ndarray, amount: np.ndarray, amount_dtype: Any) -> Any:
    """The columns as the compiled pass takes them (category, amount, quantity, unit price, cap,
    its nulls, ratio, its nulls), or None when one comes in a form it does not take."""
    n = len(amount)
    if items.amount_null is not None or len(cat) != n:
        return None
    form = _form(items)
    qd, cd, rd = form
    cols: list[np.ndarray | None] = [_taken(amount, amount_dtype)]
    for a, d in (
        (items.qty_e4, qd),
        (items.unit_price, _price_dtype(items, form)),
        (items.unit_price_cap, cd),
        (items.selfpay_ratio, rd),
    ):
        cols.append(read_only(np.zeros(0, dtype=d)) if a is None else _taken(a, d))
    masks = [_mask(items.unit_price_cap_null, n), _mask(items.selfpay_ratio_null, n)]
    c = _taken(cat, np.int8)
    if c is None:
        return None
    given = [x for x in (*cols, *masks) if x is not None]
    if len(given) != len(cols) + len(masks) or any(len(x) not in (0, n) for x in given[1:5]):
        return None
    amount_, qty, price, cap, ratio, cap_null, ratio_null = given
    return c, amount_, qty, price, cap, cap_null, ratio, ratio_null


_LIMITS = read_only(np.array([MAX_AMOUNT, MAX_QTY_E4, MAX_UNIT_PRICE, BP], dtype=np.int64))


def items_clean_plain(items: ItemCols, cat: np.ndarray, amount: np.ndarray) -> bool:
    """The same answer in numpy (for the tests; any column form)."""
    n = len(amount)
    cat, amount = np.asarray(cat), np.asarray(amount)
    bad = (cat == 0) | (amount < 0) | (amount > MAX_AMOUNT)
    if items.amount_null is not None:
        bad |= np.asarray(items.amount_null, dtype=bool)
    if items.qty_e4 is not None:
        q = np.asarray(items.qty_e4)
        bad |= (q < 0) | (q > MAX_QTY_E4)
    for v, null in ((items.unit_price, None), (items.unit_price_cap, items.unit_price_cap_null)):
        if v is not None:
            v = np.asarray(v)
            given = np.ones(n, bool) if null is None else ~np.asarray(null, dtype=bool)
            bad |= given & ((v < 0) | (v > MAX_UNIT_PRICE))
            bad |= ~given & (v != -1)  # a null holds the kernel's -1
    if items.selfpay_ratio is not None:
        r = np.asarray(items.selfpay_ratio)
        null = items.selfpay_ratio_null
        given = np.ones(n, bool) if null is None else ~np.asarray(null, dtype=bool)
        bad |= given & ((r < 0) | (r > BP) | (cat != 2))
        bad |= ~given & (r != -1)
    return not bad.any()


@njit(cache=True, nogil=True)
def _minus_one(a, out):
    for i in range(len(a)):
        out[i] = a[i] == -1


def nulls_of(a: np.ndarray) -> np.ndarray:
    """``a == -1``: the null mask of a cap or ratio column whose nulls hold the kernel's -1 (as
    the packed stream sends them), in one compiled pass for the int16, int32 and int64 columns
    (numpy for any other): the packed stream's columns are views of the received bytes, most
    not aligned, where numpy's comparison takes its unaligned loop (~2x)."""
    a = np.asarray(a)
    if a.dtype not in _NULL_DTYPES or a.ndim != 1:
        return a == -1
    out = np.empty(len(a), dtype=np.bool_)
    _minus_one(read_only(a), out)
    return out


_NULL_DTYPES = (np.dtype(np.int16), np.dtype(np.int32), np.dtype(np.int64))


def items_runs_plain(
    items: ItemCols, cat: np.ndarray, amount: np.ndarray, starts: np.ndarray
) -> tuple[bool, np.ndarray, np.ndarray]:
    """``items_clean_runs``'s answer in numpy (for the tests)."""
    wide = np.asarray(amount).astype(np.int64)
    totals = np.array([wide[a:b].sum() for a, b in itertools.pairwise(starts)], np.int64)
    return items_clean_plain(items, cat, wide), wide, totals


def warm_item_check() -> None:
    """Compile (or load from the cache) the pass's four variants (int64; narrow with int64
    unit prices: the packed stream, its amounts int64 or int32; narrow with int32 unit prices:
    the Parquet files), with and without the optional columns; and ``nulls_of``'s three."""
    one = np.ones(1, dtype=np.int64)
    cat = np.array([2], dtype=np.int8)
    items_clean(ItemCols(category=cat, amount=one), cat, one)
    for d in _NULL_DTYPES:
        nulls_of(one.astype(d))
    for (qd, cd, rd), pd, ad in (
        ((np.int64,) * 3, np.int64, np.int64),
        (NARROW, np.int64, np.int64),
        (NARROW, np.int64, np.int32),
        (NARROW, np.int32, np.int64),
    ):
        amount = one.astype(ad)
        items_clean(
            ItemCols(category=cat, amount=amount, qty_e4=one.astype(qd),
                     unit_price=one.astype(pd), unit_price_cap=one.astype(cd),
                     unit_price_cap_null=np.zeros(1, bool), selfpay_ratio=one.astype(rd),
                     selfpay_ratio_null=np.zeros(1, bool)),
            cat, amount,
        )  # fmt: skip
