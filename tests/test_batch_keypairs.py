"""The plan's one sort of the bill ids' keys (``plan._key_pairs``) gives what the two sorts
gave: each key's code (its rank, as ``arrowcols.key_codes`` gives it; checked against
``np.unique``) and ``plan._first_rows`` of the (id, hospital) pairs;
the keys themselves (``arrowcols.fixed_width_key``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.batch import arrowcols
from adapters.batch.plan import _first_rows, _key_pairs


def _two_sorts(key: np.ndarray, hosp: np.ndarray, nh: int) -> tuple[np.ndarray, ...]:
    """The reference: each key's rank among the distinct keys by ``np.unique`` (not the sort
    that ``key_codes`` and ``_key_pairs`` share), the pairs' first rows by ``_first_rows``."""
    uniq, inverse = np.unique(key, return_inverse=True)
    codes = inverse.astype(np.int64)
    id_row = np.empty(len(uniq), dtype=np.int64)
    id_row[codes] = np.arange(len(key))  # a row of each code (the last)
    first, pairs = _first_rows(codes * nh + hosp)
    return codes, id_row, first, pairs


def _check(key: np.ndarray, hosp: np.ndarray, nh: int) -> None:
    codes, id_row, first, pairs = _key_pairs(key, hosp, nh)
    want_codes, want_row, want_first, want_pairs = _two_sorts(key, hosp, nh)
    np.testing.assert_array_equal(codes, want_codes)
    np.testing.assert_array_equal(arrowcols.key_codes(key)[0], want_codes)
    assert len(id_row) == len(want_row)
    np.testing.assert_array_equal(codes[id_row], np.arange(len(id_row)))
    np.testing.assert_array_equal(first, want_first)
    np.testing.assert_array_equal(pairs, want_pairs)
    assert first.dtype == pairs.dtype == codes.dtype == np.int64


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 12), st.integers(0, 3)), min_size=2, max_size=60),
    st.booleans(),
)
def test_one_sort_gives_the_two_sorts(rows: list[tuple[int, int]], big: bool) -> None:
    key = np.array([k for k, _ in rows], dtype=np.int64) * (10**15 if big else 1)
    hosp = np.array([h for _, h in rows], dtype=np.int32)
    _check(key, hosp, 4)


def test_ids_used_once_and_large() -> None:
    rng = np.random.default_rng(0)
    key = rng.permutation(200_000).astype(np.int64) * 7919
    hosp = rng.integers(0, 40, len(key)).astype(np.int32)
    _check(key, hosp, 40)
    dup = key.copy()
    dup[rng.integers(0, len(key), 5_000)] = dup[rng.integers(0, len(key), 5_000)]
    _check(dup, hosp, 40)  # ids again, at the same or another hospital, in any order
    _check(dup, np.zeros(len(key), np.int32), 1)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 16), st.integers(2, 40), st.integers(0, 2**32 - 1), st.integers(1, 94))
def test_fixed_width_key_is_the_mixed_radix_number_of_the_varying_bytes(
    width: int, n: int, seed: int, spread: int
) -> None:
    """``arrowcols.fixed_width_key`` (one byte position at a time) is the number whose digits
    are the varying bytes, each from its smallest value, as Python's integers give it; None
    exactly when that number can pass 2**63 - 1 (keys near the limit included)."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(0x21, 0x21 + spread, size=(n, width), dtype=np.uint8)
    rows = [bytes(r).decode() for r in raw]
    lo, hi = raw.min(axis=0).astype(int), raw.max(axis=0).astype(int)
    total = 1
    for j in range(width):
        total *= int(hi[j] - lo[j] + 1)
    want = []
    for r in raw:
        k = 0
        for j in range(width):
            k = k * int(hi[j] - lo[j] + 1) + int(r[j]) - int(lo[j])
        want.append(k)
    key = arrowcols.fixed_width_key(pa.array(rows, pa.string()))
    if total > 2**63:
        assert key is None
    else:
        assert key is not None and key.dtype == np.int64 and key.tolist() == want


def test_plan_reports_a_bill_again_only_in_a_later_part(tmp_path: Path) -> None:
    """A (hospital, bill id) seen again: in a later part it is that part's reject (its row in
    the part, the first row named), in the same part left to the part's own check."""
    from adapters.batch.plan import plan
    from adapters.batch.run import Spec
    from tests.test_batch_helpers import POLICY, inputs, make_data

    tables, paths = make_data(tmp_path, n_bills=60, items=3, seed=6)
    b = tables[0].to_pydict()
    for again, first in ((50, 2), (55, 2), (3, 2), (41, 30)):
        b["bill_id"][again], b["hospital"][again] = b["bill_id"][first], b["hospital"][first]
    pq.write_table(pa.table(b), paths[0])
    parts, nb, _ = plan(Spec(*inputs(paths), policy=(POLICY,)), 10)
    assert nb == 60
    got = [(p.bill_lo + r, v, rule) for p in parts for r, _f, v, rule in p.extra]
    part_of = {r: p.k for p in parts for r in range(p.bill_lo, p.bill_hi)}
    want = [(r, b["bill_id"][f]) for r, f in ((3, 2), (41, 30), (50, 2), (55, 2))
            if part_of[r] != part_of[f]]  # fmt: skip
    assert [(r, v) for r, v, _ in got] == want and len(want) >= 2
    for r, _v, rule in got:
        first = {3: 2, 41: 30, 50: 2, 55: 2}[r]
        assert f"row {first} too" in rule
