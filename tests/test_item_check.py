"""``engine.columnar.itemcheck``: the compiled pass says "clean" exactly when the numpy rules
of one item (``billitems._check_items``) find nothing, for every column form it takes (and
"run the rules" for the others); a prepare that skips the rules gives the same batch."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import DTypeLike

from engine.columnar import ItemCols
from engine.columnar import itemcheck as IC
from engine.columnar.billitems import _check_items
from engine.columnar.inputs import Offset, Rejects, category_codes
from engine.money import BP, MAX_AMOUNT, MAX_QTY_E4, MAX_UNIT_PRICE


def _edges(limit: int) -> st.SearchStrategy[int]:
    return st.sampled_from([-2, -1, 0, 1, 5000, limit - 1, limit, limit + 1])


LIMITS = {"category": 3, "amount": MAX_AMOUNT, "qty_e4": MAX_QTY_E4,
          "unit_price": MAX_UNIT_PRICE, "unit_price_cap": MAX_UNIT_PRICE, "selfpay_ratio": BP}  # fmt: skip


@st.composite
def item_cols(draw: st.DrawFn) -> ItemCols:
    """Clean columns (categories 2 where a ratio is given), then at most one value of one
    column set to an edge of its rule, so that every rule is reached on its own."""
    n = draw(st.integers(1, 6))
    # the widths of quantities, caps and ratios: int64, the narrow form (taken), or a mix
    forms: list[tuple[DTypeLike, ...]] = [(np.int64,) * 3, (np.int64,) * 3, IC.NARROW,
                                          (np.int32, np.int64, np.int64),
                                          (np.int64, np.int32, np.int16),
                                          (np.int32, np.int32, np.int64)]  # fmt: skip
    widths = draw(st.sampled_from(forms))
    names = ["category", "amount"] + [
        k
        for k in ("qty_e4", "unit_price", "unit_price_cap", "selfpay_ratio")
        if draw(st.booleans())
    ]
    cols: dict[str, Any] = {}  # ItemCols' keyword arguments
    for k in names:
        vals = st.integers(1, 3) if k == "category" else st.integers(0, min(LIMITS[k], 10**6))
        cols[k] = np.array(draw(st.lists(vals, min_size=n, max_size=n)), dtype=np.int64)
    if "selfpay_ratio" in cols:
        cols["category"][:] = 2
    spoil = draw(st.none() | st.tuples(st.sampled_from(names), st.integers(0, n - 1)))
    if spoil:
        k, i = spoil
        edge = [-2, -1, 0, 1, 4] if k == "category" else [-2, -1, LIMITS[k], LIMITS[k] + 1]
        cols[k][i] = draw(st.sampled_from(edge))
    for k in ("unit_price_cap", "selfpay_ratio"):
        if k in cols and draw(st.booleans()):
            nulls = draw(st.lists(st.booleans(), min_size=n, max_size=n))
            cols[k + "_null"] = np.array(nulls)
            cols[k][cols[k + "_null"]] = -1  # as the adapters fill them
    for k, w in zip(("qty_e4", "unit_price_cap", "selfpay_ratio"), widths, strict=True):
        if k in cols:
            cols[k] = cols[k].astype(w)
    if "unit_price" in cols and draw(st.booleans()):  # as the Parquet files store it
        cols["unit_price"] = cols["unit_price"].astype(np.int32)
    if draw(st.integers(0, 9)) == 0:
        cols["amount_null"] = np.zeros(n, dtype=bool)  # not taken: the rules decide
    for k in cols:  # read-only columns (views of received bytes) are taken as writable ones
        if draw(st.integers(0, 3)) == 0:
            cols[k].flags.writeable = False
    return ItemCols(**cols)


def _rules_find_nothing(items: ItemCols, cat: np.ndarray, amount: np.ndarray) -> bool:
    rj, bad = Rejects(), np.zeros(len(amount), dtype=bool)
    _check_items(items, cat, amount, 0, len(amount), rj, Offset(0), "items", True,
                 lambda idx: idx, bad)  # fmt: skip
    return not bad.any() and not rj.build(np.array(["b"] * len(amount), dtype=object))


@given(item_cols())
def test_clean_exactly_when_the_numpy_rules_find_nothing(items: ItemCols) -> None:
    cat, amount = category_codes(items.category), np.asarray(items.amount)
    want = _rules_find_nothing(items, cat, amount)
    assert IC.items_clean_plain(items, cat, amount) == want
    got = IC.items_clean(items, cat, amount)
    given = (items.qty_e4, items.unit_price_cap, items.selfpay_ratio)
    widths = [np.asarray(a).dtype for a in given if a is not None]
    narrow = [d for a, d in zip(given, IC.NARROW, strict=True) if a is not None]
    price = None if items.unit_price is None else np.asarray(items.unit_price).dtype
    is_narrow = widths == narrow and bool(widths)
    taken = (
        items.amount_null is None
        and (all(d == np.int64 for d in widths) or is_narrow)
        and (price in (None, np.int64) or (price == np.int32 and is_narrow))
    )
    assert got == (want and taken)  # never clean when a rule fires; clean when taken


@given(item_cols(), st.data())
def test_the_runs_pass_equals_numpy(items: ItemCols, data: st.DataObject) -> None:
    """``items_clean_runs`` (the check, each bill's total and the amounts widened, in one
    pass) gives what numpy gives (``items_runs_plain``: ``astype``, a sum a bill, the rules),
    for amounts int64 or int32 (the packed stream's), bills of no item included; a form it does
    not take is None, a bad value never clean."""
    n = len(items.amount)
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=4)))
    starts = np.array([0, *cuts, n], dtype=np.int64)
    if data.draw(st.booleans()):
        big = data.draw(st.sampled_from([2**31 - 1, -(2**31), 7]))
        a32 = np.asarray(items.amount).astype(np.int32)  # in int32 range
        a32[data.draw(st.integers(0, n - 1))] = big
        items = ItemCols(**{**vars(items), "amount": a32})
    cat, amount = category_codes(items.category), np.asarray(items.amount)
    got = IC.items_clean_runs(items, cat, amount, starts)
    want = IC.items_runs_plain(items, cat, amount, starts)
    if got is None:
        assert not IC.items_clean(items, cat, amount)
        return
    assert got[0] == want[0] == IC.items_clean(items, cat, amount)
    assert got[1].dtype == got[2].dtype == np.int64
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[2], want[2])
    assert got[0] <= _rules_find_nothing(items, cat, amount)


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="nothing compiled")
def test_warm_compiles_the_four_variants() -> None:
    IC.warm_item_check()
    assert len(IC._clean_runs.signatures) == 4
    # writable and read-only columns reach the same variants (all passed read-only); the
    # narrow form with int32 unit prices (the Parquet files) is taken
    one, cat = np.ones(2, dtype=np.int64), np.array([2, 2], dtype=np.int8)
    for write in (True, False):
        cols: list[np.ndarray] = [one.copy(), cat.copy(), one.astype(np.int32),
                                  *(one.astype(d) for d in IC.NARROW)]  # fmt: skip
        for a in cols:
            a.flags.writeable = write
        amount, c, price, qty, cap, ratio = cols
        items = ItemCols(category=c, amount=amount, qty_e4=qty, unit_price_cap=cap,
                         selfpay_ratio=ratio)  # fmt: skip
        assert IC.items_clean(items, c, amount)
        items = ItemCols(category=c, amount=amount, qty_e4=qty, unit_price=price,
                         unit_price_cap=cap, selfpay_ratio=ratio)  # fmt: skip
        assert IC.items_clean(items, c, amount)
        # the packed stream's int32 amounts, in its form (int64 unit prices or none)
        a32 = amount.astype(np.int32)
        a32.flags.writeable = write
        items = ItemCols(category=c, amount=a32, qty_e4=qty, unit_price_cap=cap,
                         selfpay_ratio=ratio)  # fmt: skip
        runs = IC.items_clean_runs(items, c, a32, np.array([0, 1, 2]))
        assert runs is not None and runs[0]
        items = ItemCols(category=c, amount=a32, qty_e4=qty, unit_price=one, unit_price_cap=cap,
                         selfpay_ratio=ratio)  # fmt: skip
        assert IC.items_clean(items, c, a32)
    assert len(IC._clean_runs.signatures) == 4


@pytest.mark.parametrize(
    ("column", "value"),
    [("category", 0), ("category", 4), ("amount", -1), ("amount", MAX_AMOUNT + 1),
     ("qty_e4", -1), ("qty_e4", MAX_QTY_E4 + 1), ("unit_price", -1),
     ("unit_price", MAX_UNIT_PRICE + 1), ("unit_price_cap", -2),
     ("unit_price_cap", MAX_UNIT_PRICE + 1), ("selfpay_ratio", -2), ("selfpay_ratio", BP + 1),
     ("category", 1)],  # a ratio on a category A item
)  # fmt: skip
def test_each_rule_alone_makes_a_batch_unclean(column: str, value: int) -> None:
    n = 3
    cols: dict[str, Any] = {k: np.full(n, 7, dtype=np.int64) for k in LIMITS}
    cols["category"][:] = 2
    cols["unit_price_cap_null"] = np.zeros(n, dtype=bool)
    cols["selfpay_ratio_null"] = np.zeros(n, dtype=bool)
    items = ItemCols(**cols)
    cat, amount = category_codes(items.category), np.asarray(items.amount)
    assert IC.items_clean(items, cat, amount) and _rules_find_nothing(items, cat, amount)
    cols[column][1] = value
    items = ItemCols(**cols)
    cat, amount = category_codes(items.category), np.asarray(items.amount)
    assert not IC.items_clean(items, cat, amount)
    assert not _rules_find_nothing(items, cat, amount)
    if column in ("unit_price_cap", "selfpay_ratio"):  # a null value is not checked...
        cols[column + "_null"][1] = True
        items = ItemCols(**cols)
        assert _rules_find_nothing(items, cat, amount)
        # ... but clean also says every null holds -1 (prepare then keeps the column as is)
        assert not IC.items_clean(items, cat, amount)
        assert not IC.items_clean_plain(items, cat, amount)
        cols[column][1] = -1
        items = ItemCols(**cols)
        assert IC.items_clean(items, cat, amount) and IC.items_clean_plain(items, cat, amount)


@given(st.lists(st.sampled_from([-2, -1, 0, 1, 7, 2**15 - 1, -(2**15)]), max_size=40),
       st.sampled_from([np.int16, np.int32, np.int64, np.int8]), st.integers(0, 3))  # fmt: skip
def test_nulls_of_is_the_minus_one_mask(vals: list[int], dtype: Any, offset: int) -> None:
    """``nulls_of`` is ``a == -1`` for every width, on the packed stream's views of received
    bytes at any offset (not aligned) as on arrays."""
    a = np.array(vals, dtype=np.int64).astype(dtype)  # (int8 wraps: any value)
    raw = bytes(offset) + a.tobytes()
    view = np.frombuffer(raw, dtype=dtype, offset=offset)  # read-only, maybe not aligned
    for x in (a, view):
        got = IC.nulls_of(x)
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got, x == -1)
