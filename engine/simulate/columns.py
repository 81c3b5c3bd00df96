"""Column helpers of the comparison: factorizing ids, joining two runs by (hospital, bill id)."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.columnar.inputs import Coded


def values(col: Any) -> np.ndarray:
    """The column as a plain array (a ``Coded`` column decoded)."""
    return col.values() if isinstance(col, Coded) else np.asarray(col)


def factorize(col: Any) -> tuple[np.ndarray, np.ndarray]:
    """(codes, labels) with unique labels; a ``Coded`` column keeps its codes when its labels
    are unique (no pass over the rows in Python)."""
    if isinstance(col, Coded):
        labels, inv = np.unique(col.labels, return_inverse=True)
        return inv.reshape(-1)[col.codes].astype(np.int64), labels
    arr = np.asarray(col)
    if arr.dtype != object:
        labels, inv = np.unique(arr, return_inverse=True)
        return inv.reshape(-1).astype(np.int64), labels
    seen: dict[Any, int] = {}
    codes = np.fromiter((seen.setdefault(x, len(seen)) for x in arr), np.int64, len(arr))
    labels = np.empty(len(seen), dtype=object)
    labels[:] = list(seen)
    return codes, labels


def shared_codes(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes of two columns over one label set: (codes of a, codes of b, labels)."""
    ca, la = factorize(a)
    cb, lb = factorize(b)
    labels = np.array(sorted(set(la.tolist()) | set(lb.tolist())), dtype=object)
    pos = {x: i for i, x in enumerate(labels.tolist())}
    ma = np.array([pos[x] for x in la.tolist()], dtype=np.int64)
    mb = np.array([pos[x] for x in lb.tolist()], dtype=np.int64)
    return (ma[ca] if len(ca) else ca), (mb[cb] if len(cb) else cb), labels


def match(h_a: Any, b_a: Any, h_b: Any, b_b: Any) -> tuple[np.ndarray, np.ndarray]:
    """Rows of run a and run b that are the same bill (hospital, bill id), in run a's order.
    A bill is (hospital, bill id), unique within each run (the batch refuses a repeated one)."""
    ha, hb, ba, bb = values(h_a), values(h_b), values(b_a), values(b_b)
    if len(ha) == len(hb) and np.array_equal(ha, hb) and np.array_equal(ba, bb):
        ix = np.arange(len(ha), dtype=np.int64)  # the usual case: the same bills in one order
        return ix, ix
    hosp_a, hosp_b, _hl = shared_codes(ha, hb)
    bill_a, bill_b, bl = shared_codes(ba, bb)
    ka = hosp_a * max(len(bl), 1) + bill_a
    kb = hosp_b * max(len(bl), 1) + bill_b
    _, ia, ib = np.intersect1d(ka, kb, assume_unique=True, return_indices=True)
    order = np.argsort(ia, kind="stable")
    return ia[order].astype(np.int64), ib[order].astype(np.int64)
