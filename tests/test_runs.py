"""``engine.columnar.runs``: the compiled copy of item runs equals the numpy gather it replaced
(for every dtype and any runs), other arrays take the numpy form, and ``onestop warm``
compiles every variant (also with NUMBA_DISABLE_JIT=1, where the loop is plain Python)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import warm as W
from engine.columnar import runs as R


@st.composite
def column_and_runs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dtype = draw(st.sampled_from([*R.DTYPES, np.uint8, np.bool_, np.float64]))
    counts = draw(st.lists(st.integers(0, 5), max_size=12))
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    n = int(starts[-1])
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    lo, hi = (int(info.min), int(info.max)) if info else (0, 1)
    a: np.ndarray = np.array(
        draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n)), dtype=dtype
    )
    keep = draw(st.lists(st.sampled_from(range(len(counts))), unique=True)) if counts else []
    kept = np.array(keep, dtype=np.int64)
    cnt = (starts[1:] - starts[:-1])[kept]
    item_start = np.concatenate([[0], np.cumsum(cnt)]).astype(np.int64)
    return a, starts[:-1][kept], item_start


@given(column_and_runs(), st.sampled_from(["plain", "readonly", "strided"]))
def test_take_runs_is_the_numpy_gather(case, form: str) -> None:
    a, start, item_start = case
    if form == "readonly":
        a = a.copy()
        a.flags.writeable = False
    elif form == "strided":
        a = np.repeat(a, 2)[::2]
    got, want = R.take_runs(a, start, item_start), R.take_runs_plain(a, start, item_start)
    assert got.dtype == a.dtype and np.array_equal(got, want)
    # and each run is the bill's items, whole and in order
    for k in range(len(start)):
        run = a[start[k] : start[k] + item_start[k + 1] - item_start[k]]
        assert np.array_equal(got[item_start[k] : item_start[k + 1]], run)


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="nothing compiled")
def test_warm_runs_compiles_every_dtype_a_prepare_gathers() -> None:
    R.warm_runs()
    warmed = set(R._copy_runs.signatures)
    assert len(warmed) >= len(R.DTYPES)
    start, item_start = np.array([2, 0], np.int64), np.array([0, 1, 3], np.int64)
    for dt in R.DTYPES:
        R.take_runs(np.arange(4, dtype=dt), start, item_start)
        ro = np.arange(4, dtype=dt)
        ro.flags.writeable = False  # a view of received bytes: the same compiled variant
        got = R.take_runs(ro, start, item_start)
        assert got.flags.writeable and got.tolist() == [2, 0, 1]
    assert set(R._copy_runs.signatures) == warmed


def test_onestop_warm_warms_the_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    called = []
    monkeypatch.setattr(W, "warm_runs", lambda: called.append(1))
    monkeypatch.setattr(W, "variants", lambda uses: [])
    ps = type("P", (), {"tables": [object()]})()
    assert W.warm(ps) == [] and called == [1]
