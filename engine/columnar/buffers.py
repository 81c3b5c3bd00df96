"""Output buffers the kernel writes into, reused from one prepared batch to the next.

A 1 M-bill part of five layers has ~520 MB of ``out_layer``: a fresh array costs its first
touch inside the kernel (the OS zeroing every page, system time), more than the settling
itself. ``onestop batch`` settles part after part, so it keeps a few buffers and lends them to
``prepare_columns`` (``out=``): a part's outputs are views of a buffer of at least its size,
and the buffer goes back once the part's files are written (``give_back``). The kernel writes
every output field of every bill (engine.kernel), so a reused buffer needs no zeroing.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from engine import kernel as K

if TYPE_CHECKING:
    from engine.columnar.prepare import Prepared


class OutputBuffers:
    """A small pool of (``out_bill``, ``out_layer``) buffers; thread-safe (a writer thread
    gives a part's buffers back while the next part takes some)."""

    def __init__(self, keep: int = 3) -> None:
        self.keep = keep  # free buffers kept at most (a pipelined run needs two)
        self._free: list[tuple[np.ndarray, np.ndarray]] = []
        self._lock = threading.Lock()
        self.allocated = 0  # buffers made so far (the rest were reused)

    def take(self, n_bills: int, max_layers: int) -> tuple[np.ndarray, np.ndarray]:
        """Whole buffers (``out_bill``, ``out_layer``) of at least ``n_bills`` rows: a free
        one that is large enough, or a new one. Their contents are whatever the last user
        left; the caller uses their first ``n_bills`` rows."""
        with self._lock:
            fits = [
                i for i, (_, ol) in enumerate(self._free)
                if ol.shape[0] >= n_bills and ol.shape[1] == max_layers
            ]  # fmt: skip
            if fits:
                ob, ol = self._free.pop(min(fits, key=lambda i: self._free[i][1].shape[0]))
            else:
                self.allocated += 1
                ob = np.empty((n_bills, K.N_BILL), dtype=np.int64)
                ol = np.empty((n_bills, max_layers, K.N_FIELDS), dtype=np.int64)
        return ob, ol

    def give_back(self, prep: Prepared) -> None:
        """Return the buffers ``prep`` took (``prepare_columns(out=...)``) once nothing reads
        its outputs any more: they are then taken from ``prep.kb`` (empty arrays in their
        place), so a late reader fails instead of reading another batch's figures. The
        largest ``keep`` free buffers are kept."""
        lent, prep.lent = prep.lent, None
        if lent is None:
            return
        prep.kb.out_bill = lent[0][:0]
        prep.kb.out_layer = lent[1][:0]
        with self._lock:
            if any(x[1] is lent[1] for x in self._free):
                return
            self._free.append(lent)
            self._free.sort(key=lambda x: -x[1].shape[0])
            del self._free[self.keep :]
