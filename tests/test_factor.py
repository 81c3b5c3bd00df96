"""``inputs.factor`` by its shortcuts (a ``Coded`` column's used labels by a mask, a few Python
strings sorted by Python) equals numpy's ``np.unique(..., return_inverse=True)`` of the plain
values: the same sorted distinct values and the same code for every row."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.columnar.inputs import SMALL, Coded, Rejects, factor

words = st.text(st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=6)


def _want(values: list) -> tuple[list, list]:
    u, inv = np.unique(np.array(values, dtype=object), return_inverse=True)
    return u.tolist(), inv.reshape(-1).tolist()


@settings(max_examples=200)
@given(st.lists(words, max_size=SMALL + 20))
def test_strings_factor_as_numpy(values) -> None:
    u, codes = factor(np.array(values, dtype=object))
    assert (u.tolist(), codes.tolist()) == _want(values)
    assert u.dtype == object and codes.dtype == np.int64


@settings(max_examples=200)
@given(st.lists(words, min_size=1, max_size=12, unique=True), st.data())
def test_coded_factors_as_its_values(labels, data) -> None:
    codes = data.draw(st.lists(st.integers(0, len(labels) - 1), max_size=50))
    c = Coded(np.array(codes, dtype=np.int64), np.array(labels, dtype=object))
    u, got = factor(c)
    assert (u.tolist(), got.tolist()) == _want([labels[k] for k in codes])


def test_other_values_factor_as_numpy() -> None:
    for values in ([3, 1, 3], [b"b", b"a"], ["b", 1.5] * 0 + ["b", "a", "b"]):
        u, codes = factor(np.array(values, dtype=object))
        assert (u.tolist(), codes.tolist()) == _want(values)


def test_no_reject_recorded_for_an_empty_mask() -> None:
    rj = Rejects()
    assert len(rj.add(np.zeros(5, dtype=bool), np.arange(5), "f", "x", None, "r", None)) == 0
    assert rj.items == []
    idx = rj.add(np.array([False, True]), np.arange(2), "f", "x", None, "r", None)
    assert idx.tolist() == [1] and len(rj.items) == 1
