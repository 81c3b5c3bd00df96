"""Output buffers the kernel writes into, reused from one prepared batch to the next.

A 1 M-bill part of five layers has ~520 MB of ``out_layer``: a fresh array costs its first
touch inside the kernel (the OS zeroing every page, system time), more than the settling
itself. ``onestop batch`` settles part after part, so it keeps a few buffers and lends them to
``prepare_columns`` (``out=``): a part's outputs are views of a buffer of at least its size,
and the buffer goes back once the part's files are written (``give_back``). The kernel writes
every output field of every bill (engine.kernel), so a reused buffer needs no zeroing.

The pool also lends the part's account arrays (``take_accounts``: ``p_acc``, ``p_adm``,
``h_acc``, views of one flat buffer, zeroed): a fresh ``np.zeros`` is pages the OS maps and
zeroes at their first write, which falls inside the kernel (1 M bills: ~95 MB, the kernel
30 ms slower on its CPU minimum, ~85 ms of system time at the median; benchmarks/README.md,
"Branch stores4"); a reused buffer is zeroed by one ``fill`` over pages already mapped.
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
        self._free_acc: list[np.ndarray] = []  # flat int64 account buffers
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

    def take_accounts(
        self, n_pslots: int, n_hslots: int, n_slots: int
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Zeroed account arrays (``p_acc`` (n_pslots, n_slots, 4), ``p_adm`` (n_pslots,),
        ``h_acc`` (n_hslots, n_slots, 4)) as views of one flat buffer, returned with it (give
        it back with ``give_back``): the smallest free one that is large enough, zeroed, or a
        new one (``np.zeros``)."""
        a, h = n_pslots * n_slots * 4, n_hslots * n_slots * 4
        size = a + h + n_pslots
        with self._lock:
            fits = [i for i, x in enumerate(self._free_acc) if len(x) >= size]
            buf = (
                self._free_acc.pop(min(fits, key=lambda i: len(self._free_acc[i])))
                if fits
                else None
            )
        if buf is None:
            buf = np.zeros(size, dtype=np.int64)
        else:
            buf[:size].fill(0)
        views = (
            buf[:a].reshape(n_pslots, n_slots, 4),
            buf[a + h : size],
            buf[a : a + h].reshape(n_hslots, n_slots, 4),
        )
        return buf, views

    def give_back(self, prep: Prepared) -> None:
        """Return the buffers ``prep`` took (``prepare_columns(out=...)``: outputs and
        accounts) once nothing reads them any more: they are then taken from ``prep.kb``
        (empty arrays in their place), so a late reader fails instead of reading another
        batch's figures. The largest ``keep`` free buffers of each kind are kept."""
        acc, prep.lent_acc = prep.lent_acc, None
        if acc is not None:
            prep.kb.p_acc, prep.kb.p_adm, prep.kb.h_acc = (
                prep.kb.p_acc[:0],
                prep.kb.p_adm[:0],
                prep.kb.h_acc[:0],
            )
            with self._lock:
                if not any(x is acc for x in self._free_acc):
                    self._free_acc.append(acc)
                    self._free_acc.sort(key=lambda x: -len(x))
                    del self._free_acc[self.keep :]
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
