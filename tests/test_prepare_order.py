"""The shortcuts of ``prepare_columns`` for input already in settlement order (as ``onestop
batch`` requires it): ``in_lex_order`` says exactly when ``np.lexsort`` would be the identity,
and ``take`` keeps a sorted ``Coded`` sorted (no sort of the persons' labels per part)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from engine.columnar import Coded, take
from engine.columnar.inputs import empty_id
from engine.columnar.prepare import in_lex_order


def _columns(n: int) -> st.SearchStrategy[list[list[int]]]:
    return st.lists(st.lists(st.integers(-2, 2), min_size=n, max_size=n), min_size=1, max_size=5)


keys = st.integers(0, 12).flatmap(_columns)


@given(keys, st.booleans())
def test_in_lex_order_is_lexsort_giving_the_identity(ks, sort_first) -> None:
    arrays = tuple(np.array(k, dtype=np.int64) for k in ks)
    if sort_first:  # sorted input (the usual case) must be seen as sorted
        o = np.lexsort(arrays)
        arrays = tuple(a[o] for a in arrays)
    n = len(arrays[0])
    assert in_lex_order(arrays) == np.array_equal(np.lexsort(arrays), np.arange(n))
    if sort_first:
        assert in_lex_order(arrays)


def test_take_keeps_a_sorted_coded_sorted() -> None:
    c = Coded(np.array([2, 0, 1, 2]), np.array(["a", "b", "c"], dtype=object), sorted=True)
    t = take(c, np.array([0, 3]))
    assert t.sorted and t.labels is c.labels and t.codes.tolist() == [2, 2]
    assert not take(Coded(c.codes, c.labels), np.array([1])).sorted


def test_empty_ids_of_an_object_column() -> None:
    a = np.array(["a", "", None, "x", 0], dtype=object)
    assert empty_id(a).tolist() == [False, True, True, False, False]
