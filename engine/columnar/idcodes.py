"""The bill ids' codes (``prepare_columns``' ``factor`` of the bill id column) by integer keys:
an ASCII id of a fixed-width numpy string array (``<U``, as the packed stream's joined ids are
read) is packed, 7 bits a character from the first, into 64-bit words (9 characters a word),
so that the words compare as the strings do (code points, shorter first: the padding is 0);
the rows are sorted on the words (``np.argsort``, ``np.lexsort`` beyond 9 characters) and
ranked in one compiled pass. numpy's ``np.unique(..., return_inverse=True)`` sorted the strings
themselves: ~0.19 ms for 2,000 ids of 9 characters. Anything else (objects, ``Coded``, a
character past ASCII) goes to ``inputs.factor``, which is the reference the tests hold this to.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from engine import numbacache
from engine.columnar.inputs import factor

numbacache.install()

#: characters a 64-bit word holds (7 bits each, the word's top bit unused)
PER_WORD = 9
#: below this many rows numpy's sort of the strings is as quick
MIN_ROWS = 64


@njit(cache=True, nogil=True)
def _pack(chars, keys):
    # chars: (n, w) code points; keys: (n, k) zeroed words; False at the first non-ASCII one
    n, w = chars.shape
    for i in range(n):
        for j in range(w):
            c = chars[i, j]
            if c >= 128:
                return False
            keys[i, j // 9] |= np.uint64(c) << np.uint64(7 * (8 - j % 9))
    return True


@njit(cache=True, nogil=True)
def _rank(keys, order, inverse, first):
    # the rows in key order: each row's rank among the distinct keys, each rank's first row
    n, k = keys.shape
    g = -1
    for t in range(n):
        i = order[t]
        new = t == 0
        if not new:
            p = order[t - 1]
            for x in range(k):
                if keys[i, x] != keys[p, x]:
                    new = True
                    break
        if new:
            g += 1
            first[g] = i
        inverse[i] = g
    return g + 1


def factor_ids(a: Any) -> tuple[np.ndarray, np.ndarray]:
    """``inputs.factor(a)``: (sorted distinct values, each row's code), by integer keys for
    an ASCII ``<U`` array of at least ``MIN_ROWS`` rows."""
    if (
        not isinstance(a, np.ndarray)
        or a.dtype.kind != "U"
        or not a.dtype.isnative  # its code points read as native uint32 below
        or a.ndim != 1
        or len(a) < MIN_ROWS
    ):
        return factor(a)
    n, w = len(a), a.dtype.itemsize // 4
    if w == 0:
        return factor(a)
    chars = np.ascontiguousarray(a).view(np.uint32).reshape(n, w)
    k = -(-w // PER_WORD)
    keys = np.zeros((n, k), dtype=np.uint64)
    if not _pack(chars, keys):
        return factor(a)
    order = np.argsort(keys[:, 0]) if k == 1 else np.lexsort(keys.T[::-1])
    inverse = np.empty(n, dtype=np.int64)
    first = np.empty(n, dtype=np.int64)
    m = _rank(keys, order, inverse, first)
    return a[first[:m]], inverse


def warm_factor_ids() -> None:
    """Compile (or load from the cache) the two passes (one variant each)."""
    factor_ids(np.array([f"b{i}" for i in range(MIN_ROWS)]))
