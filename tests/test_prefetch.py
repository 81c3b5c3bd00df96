"""engine.prefetch: the cache-line hint the kernel gives for the next bill's account rows."""

from __future__ import annotations

import os

import numpy as np
import pytest
from numba import njit

from engine.prefetch import prefetch


@njit
def _rows_then_sum(acc: np.ndarray, rows: np.ndarray) -> int:
    total = 0
    for r in rows:
        prefetch(acc, r * acc.strides[0])
        prefetch(acc, (r + 1) * acc.strides[0] - 1)
        total += acc[r].sum()
    return total


def test_the_hint_changes_no_result() -> None:
    acc = np.arange(7 * 5 * 4, dtype=np.int64).reshape(7, 5, 4)
    rows = np.array([3, 0, 6, 6, 1])
    assert _rows_then_sum(acc, rows) == sum(int(acc[r].sum()) for r in rows)


@pytest.mark.skipif(
    os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="no machine code without the JIT"
)
def test_the_hint_is_a_prefetch_instruction() -> None:
    """Compiled, ``prefetch`` is an x86 ``prefetcht0`` (or the target's own prefetch), not
    dropped: the kernel's account rows rely on it."""
    acc = np.zeros((3, 5, 4), dtype=np.int64)
    _rows_then_sum(acc, np.array([1]))
    asm = _rows_then_sum.inspect_asm(_rows_then_sum.signatures[0])
    assert "prefetch" in asm


def test_the_kernel_prefetches_the_next_bills_rows() -> None:
    """The kernel's per-bill loop asks for the next bill's account rows (a person's and a
    household's), every cache line of each: ``_prefetch_row`` over a 160-byte row."""
    from engine import kernel

    seen: list[int] = []

    def spy(arr: np.ndarray, offset: int) -> None:
        seen.append(offset)

    acc = np.zeros((4, 5, 4), dtype=np.int64)  # rows of 160 bytes
    real = kernel.prefetch
    try:
        kernel.prefetch = spy
        getattr(kernel._prefetch_row, "py_func", kernel._prefetch_row)(acc, 2)
    finally:
        kernel.prefetch = real
    assert seen == [320, 384, 448, 479]  # lines at 0, 64, 128 and the row's last byte
