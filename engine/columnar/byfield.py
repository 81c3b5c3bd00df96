"""A (rows, fields) int64 array as (fields, rows), each field one contiguous row: the kernel's
``out_layer`` split field by field for the layers' and alerts' tables of a part
(``results.layer_fields``), by one compiled loop with the GIL released (the writer thread
does it while the next part settles).

The loop reads each row once and writes its fields to their rows: 4.5-4.9 ms of CPU for a
100 k-bill part of five layers (500 k rows, 52 MB) into a reused buffer, against 13.2-13.8 ms
for numpy's blocked copies (``results.by_field``'s other path) into the same buffer and
18.2-20.2 ms into a fresh one (interleaved, load ~4.8; benchmarks/README.md, branch batch13w).
It takes C-contiguous int64 arrays only (one variant, ``warm_by_field``); ``results.by_field``
gives any other array to numpy."""

from __future__ import annotations

import numpy as np
from numba import njit

from engine import numbacache

numbacache.install()


@njit(cache=True, nogil=True)
def _transpose(o, f):
    rows, fields = o.shape
    for i in range(rows):
        for k in range(fields):
            f[k, i] = o[i, k]


def compiled_takes(o: np.ndarray, f: np.ndarray) -> bool:
    """Whether ``transpose_into`` takes ``o`` and ``f`` (C-contiguous int64, shapes
    transposed)."""
    return (
        o.dtype == np.int64 and f.dtype == np.int64 and o.ndim == 2
        and o.flags.c_contiguous and f.flags.c_contiguous and f.flags.writeable
        and f.shape == (o.shape[1], o.shape[0])
    )  # fmt: skip


def transpose_into(o: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``f[:] = o.T`` by the compiled loop (``compiled_takes(o, f)`` must hold); ``f``."""
    _transpose(o, f)
    return f


def warm_by_field() -> None:
    """Compile (or load from the cache) ``_transpose``."""
    o = np.zeros((2, 3), np.int64)
    _transpose(o, np.zeros((3, 2), np.int64))
