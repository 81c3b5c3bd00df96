"""Exact percentages, quantiles and histograms of integer figures (no float in a result)."""

from __future__ import annotations

import itertools
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

CENT = Decimal("0.01")


def pct(part: int, whole: int) -> str | None:
    """100 * part / whole with two decimals (ROUND_HALF_UP), exact; None when whole is 0."""
    if whole == 0:
        return None
    return str((Decimal(int(part)) * 100 / Decimal(int(whole))).quantize(CENT, ROUND_HALF_UP))


def rank_index(n: int, p: int) -> int:
    """Index of the p-th percentile of n sorted values, nearest rank: ceil(p n / 100) - 1."""
    return max(0, -(-p * n // 100) - 1)


def deciles(values: np.ndarray) -> list[int]:
    """p10..p90 of integer values (nearest rank: always one of the values); [] when empty."""
    if len(values) == 0:
        return []
    v = np.sort(values)
    return [int(v[rank_index(len(v), p)]) for p in range(10, 100, 10)]


def share_deciles(num: np.ndarray, den: np.ndarray) -> list[str]:
    """p10..p90 of num/den in percent (nearest rank over the shares ordered by value; each
    figure computed exactly from its own numerator and denominator); [] when empty."""
    if len(num) == 0:
        return []
    order = np.lexsort((num, num / den))
    out = []
    for p in range(10, 100, 10):
        i = order[rank_index(len(order), p)]
        out.append(pct(int(num[i]), int(den[i])) or "0.00")
    return out


def share_histogram(num: np.ndarray, den: np.ndarray, step: int = 5) -> list[dict[str, object]]:
    """Bills per share band [lo%, hi%) of num/den (the last band includes 100%), exact."""
    rows: list[dict[str, object]] = []
    for lo in range(0, 100, step):
        hi = lo + step
        above = 100 * num >= lo * den
        below = (100 * num < hi * den) if hi < 100 else np.ones(len(num), bool)
        rows.append({"lo_pct": str(lo), "hi_pct": str(hi), "bills": int((above & below).sum())})
    return rows


#: edges (fen) of the change histogram; the outer bands run to the smallest and largest change
CHANGE_EDGES = (-1_000_000, -100_000, -10_000, -1_000, -100, 0, 1, 100, 1_000, 10_000, 100_000,
                1_000_000)  # fmt: skip


def change_histogram(change: np.ndarray) -> list[dict[str, int]]:
    """Bills per band [lo, hi) of the change (fen) over changed bills (no band [0, 1): a
    changed bill's change is never 0); the outer bands only when a change falls there."""
    rows = []
    edges = list(CHANGE_EDGES)
    if len(change) and change.min() < edges[0]:
        edges.insert(0, int(change.min()))
    if len(change) and change.max() >= edges[-1]:
        edges.append(int(change.max()) + 1)
    for lo, hi in itertools.pairwise(edges):
        if lo == 0:
            continue
        rows.append({"lo": lo, "hi": hi, "bills": int(((change >= lo) & (change < hi)).sum())})
    return rows


def uniq(a: np.ndarray) -> np.ndarray:
    """The sorted distinct values of an integer array (by sorting: numpy's hash-based
    ``unique`` is slower on these arrays)."""
    s = np.sort(np.asarray(a), kind="stable")
    if len(s) < 2:
        return s
    return s[np.concatenate(([True], s[1:] != s[:-1]))]


def distinct(codes: np.ndarray) -> int:
    return len(uniq(codes))


def group_distinct(group: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group, the number of distinct codes among its rows."""
    if len(group) == 0:
        return np.zeros(n_groups, np.int64)
    m = int(codes.max()) + 1
    pairs = uniq(group.astype(np.int64) * m + codes)
    return np.bincount(pairs // m, minlength=n_groups)
