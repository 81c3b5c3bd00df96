"""The kept bills' codes, years, ages and account slots in one compiled pass
(``engine.columnar.keptbills``): equal to the numpy form, value for value and dtype for dtype,
over any days (before year 0 too), few or many persons (the rank table or the sort)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.columnar.keptbills import kept_columns, kept_columns_plain
from engine.warm import _helpers


def _case(seed: int, nb: int, n_p: int, n_h: int, lo: int, hi: int, keep: float) -> tuple:
    rng = np.random.default_rng(seed)
    dis = rng.integers(lo, hi + 1, nb)
    adm = dis - rng.integers(0, 400, nb)
    pc = rng.integers(0, n_p, nb)
    hc = rng.integers(0, n_h, nb)
    birth = rng.integers(min(lo, -1000) - 40_000, hi, n_p)
    kept = rng.permutation(np.flatnonzero(rng.random(nb) < keep))  # any order
    return kept, dis, adm, pc, hc, birth, n_p, n_h


CASES = [
    (1, 2000, 64, 32, 19_000, 19_800, 1.0),  # the stream's message: a few years
    (2, 3000, 200, 90, 19_000, 19_800, 0.9),
    (3, 500, 40, 40, -719_468, 2_932_896, 0.8),  # 0000-01-01 .. 9999-12-31
    (4, 500, 40, 40, -(10**7), 10**7, 0.8),  # before year 0 (signed divisions)
    (5, 1000, 50_000, 40_000, 18_000, 20_000, 1.0),  # many persons: the sort
    (6, 10, 3, 2, 19_000, 19_001, 0.0),  # none kept
    (7, 1, 1, 1, 0, 0, 1.0),
]


@pytest.mark.parametrize("case", CASES)
def test_the_compiled_pass_is_the_numpy_one(case: tuple) -> None:
    args = _case(*case)
    got, want = kept_columns(*args), kept_columns_plain(*args)
    assert len(got) == len(want) == 10
    for k, (a, b) in enumerate(zip(got, want, strict=True)):
        if isinstance(b, np.ndarray):
            assert a.dtype == np.int64 and b.dtype == np.int64, k
            assert np.array_equal(a, b), k
        else:
            assert a == b, k


def test_ages_around_birthdays_and_leap_days() -> None:
    """Every birth day of a leap-year cycle against days around its anniversaries."""
    birth = np.arange(np.datetime64("2000-01-01"), np.datetime64("2004-01-01")).astype(np.int64)
    day = np.concatenate([birth + 365 * k + d for k in (1, 4, 17) for d in (-1, 0, 1)])
    n = len(day)
    pc = np.tile(np.arange(len(birth)), n // len(birth))
    args = (np.arange(n), day, day, pc, pc % 7, birth, len(birth), 7)
    got, want = kept_columns(*args), kept_columns_plain(*args)
    assert np.array_equal(got[3], want[3]) and got[3].min() >= 0


def test_the_pass_is_warmed() -> None:
    assert "warm_kept_columns" in [fn.__name__ for fn, _ in _helpers()]
