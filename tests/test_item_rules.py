"""The one-bill path's item rules in one compiled pass (``engine.service.itemrules``) answer
what the numpy rules answer for any int columns: values at and past every limit, absent
optional values, absent required ones, a self-pay ratio on an item not of category B, a
bill's total past its limit; and a column in another form goes to the numpy rules."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from engine.money import BP, MAX_AMOUNT, MAX_BILL_TOTAL, MAX_QTY_E4, MAX_UNIT_PRICE
from engine.service.itemrules import NULL, kernel_items, kernel_items_plain


def edge(highest: int) -> st.SearchStrategy[int]:
    """A value within the limit (most often: a bill must pass every rule to compare the
    kernel's values), absent, or at or past an end."""
    ends = st.sampled_from([NULL, -1, 0, 1, highest - 1, highest, highest + 1])
    return st.one_of(st.integers(0, highest), st.just(NULL), ends)


ITEM = st.tuples(
    edge(MAX_QTY_E4), edge(MAX_UNIT_PRICE), edge(MAX_AMOUNT), edge(MAX_UNIT_PRICE), edge(BP),
    st.sampled_from([2, 2, 1, 3]),
)  # fmt: skip


def columns(rows: Sequence[tuple[int, ...]]) -> tuple[SimpleNamespace, np.ndarray]:
    m = np.array([r[:5] for r in rows], dtype=np.int64).T.copy()
    cols = SimpleNamespace(qty_e4=m[0], unit_price=m[1], amount=m[2], unit_price_cap=m[3],
                           selfpay_ratio=m[4])  # fmt: skip
    return cols, np.array([r[5] for r in rows], dtype=np.int64)


def same(got: object, want: object) -> None:
    if isinstance(want, tuple):
        assert isinstance(got, tuple)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == np.int64 and g.tolist() == w.tolist()
    else:
        assert got is want


@given(st.lists(ITEM, min_size=1, max_size=6))
def test_the_compiled_rules_answer_what_numpy_answers(rows: list[tuple[int, ...]]) -> None:
    cols, cat = columns(rows)
    got = kernel_items(cols, cat)
    assert got is not None
    same(got, kernel_items_plain(cols, cat))


@given(st.lists(st.integers(0, MAX_AMOUNT), min_size=1, max_size=12))
def test_the_bills_total_limit(amounts: list[int]) -> None:
    rows = [(NULL, 0, a, NULL, NULL, 1) for a in amounts]
    cols, cat = columns(rows)
    want = kernel_items_plain(cols, cat)
    same(kernel_items(cols, cat), want)
    assert (want is False) == (sum(amounts) > MAX_BILL_TOTAL)


def test_a_clean_bill_gets_the_kernels_values_for_absent_fields() -> None:
    cols, cat = columns([(NULL, 5, 10, NULL, NULL, 2), (20000, 5, 10, 7, 300, 2)])
    got = kernel_items(cols, cat)
    assert isinstance(got, tuple)
    assert [a.tolist() for a in got] == [[BP, 20000], [-1, 7], [-1, 300]]


def test_columns_in_another_form_go_to_numpy() -> None:
    cols, cat = columns([(NULL, 5, 10, NULL, NULL, 2)])
    cols.amount = cols.amount.astype(np.int32)
    assert kernel_items(cols, cat) is None
    cols, cat = columns([(NULL, 5, 10, NULL, NULL, 2), (NULL, 5, 10, NULL, NULL, 2)])
    cols.qty_e4 = np.repeat(cols.qty_e4, 2)[::2]  # not contiguous
    assert kernel_items(cols, cat) is None
    cols, cat = columns([(NULL, 5, 10, NULL, NULL, 2)])
    cols.unit_price.flags.writeable = False
    assert kernel_items(cols, cat) is None


def test_columns_of_another_length_go_to_numpy() -> None:
    """The compiled pass reads every column up to the amounts' length: a shorter or longer
    one is not taken (numpy decides, and its stack refuses unequal rows)."""
    cols, cat = columns([(NULL, 5, 10, NULL, NULL, 2), (NULL, 5, 10, NULL, NULL, 2)])
    cols.selfpay_ratio = cols.selfpay_ratio[:1].copy()
    assert kernel_items(cols, cat) is None
    cols, cat = columns([(NULL, 5, 10, NULL, NULL, 2)])
    assert kernel_items(cols, np.array([2, 2], dtype=np.int64)) is None
