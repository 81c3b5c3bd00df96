"""The bill ids' codes by integer keys (``idcodes.factor_ids``) equal ``inputs.factor``'s (numpy's
sort of the strings): the same sorted distinct ids and the same code for every row, for ASCII
ids of any length (one word, several words, prefixes of each other, repeats) and for the forms
it hands to ``factor`` (short columns, characters past ASCII, objects)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.columnar.idcodes import MIN_ROWS, factor_ids
from engine.columnar.inputs import factor
from engine.warm import _helpers

ascii_ids = st.text(st.characters(min_codepoint=1, max_codepoint=127), min_size=1, max_size=30)
any_ids = st.text(st.characters(min_codepoint=1, max_codepoint=0x2FFFF, exclude_categories=["Cs"]),
                  min_size=1, max_size=12)  # fmt: skip


def _same(a: np.ndarray) -> None:
    u, codes = factor_ids(a)
    want_u, want_codes = factor(a)
    assert u.dtype == want_u.dtype and u.tolist() == want_u.tolist()
    assert codes.dtype == np.int64 and codes.tolist() == want_codes.tolist()


@settings(max_examples=200)
@given(st.lists(ascii_ids, min_size=1, max_size=40), st.integers(MIN_ROWS, 300), st.randoms())
def test_ascii_ids_code_as_numpy_sorts_them(pool, n, rnd) -> None:
    ids = [rnd.choice(pool) for _ in range(n)]  # repeats, and prefixes where the pool has them
    _same(np.array(ids, dtype=str))


@settings(max_examples=100)
@given(st.lists(any_ids, min_size=MIN_ROWS, max_size=200))
def test_other_characters_code_as_numpy_sorts_them(ids) -> None:
    _same(np.array(ids, dtype=str))


def test_word_edges_and_other_forms() -> None:
    base = ["a" * k for k in range(1, 28)] + ["a" * 8 + "b", "a" * 9 + "\x01", "~" * 18, "b"]
    ids = (base * 10)[: max(MIN_ROWS, 3 * len(base))]
    _same(np.array(ids, dtype=str))
    _same(np.array(ids[: MIN_ROWS - 1], dtype=str))  # short: numpy's sort
    _same(np.array(ids, dtype=object))
    _same(np.array(ids, dtype=">U30"))  # not native: numpy's sort
    _same(np.array(["x"] * MIN_ROWS, dtype=str))


def test_the_pass_is_warmed() -> None:
    assert "warm_factor_ids" in [fn.__name__ for fn, _ in _helpers()]
