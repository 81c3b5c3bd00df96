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

And it lends the buffer of ``results.layer_fields`` (``take_fields``: ``out_layer`` field by
field, 52 MB a 100 k-bill part of five layers), which a part's writer makes for its layers and
alerts: a fresh array each part met fresh heap pages about every other part (56-130 ms of
system time a call then, benchmarks/README.md, branch batch12w), a reused one pages already
mapped; it goes back with the part's other buffers (``give_back``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from engine import kernel as K

if TYPE_CHECKING:
    from engine.columnar.prepare import Prepared

T = TypeVar("T")


class OutputBuffers:
    """A small pool of (``out_bill``, ``out_layer``) buffers; thread-safe (a writer thread
    gives a part's buffers back while the next part takes some)."""

    def __init__(self, keep: int = 3) -> None:
        self.keep = keep  # free buffers kept at most (a pipelined run needs two)
        self._free: list[tuple[np.ndarray, np.ndarray]] = []
        self._free_acc: list[np.ndarray] = []  # flat int64 account buffers
        self._free_fields: list[np.ndarray] = []  # flat int64 buffers of ``layer_fields``
        self._lock = threading.Lock()
        self.allocated = 0  # buffers made so far (the rest were reused)

    def take(self, n_bills: int, max_layers: int) -> tuple[np.ndarray, np.ndarray]:
        """Whole buffers (``out_bill``, ``out_layer``) of at least ``n_bills`` rows: a free
        one that is large enough, or a new one. Their contents are whatever the last user
        left; the caller uses their first ``n_bills`` rows."""
        with self._lock:
            got = _pop_smallest(
                self._free,
                fits=lambda x: x[1].shape[0] >= n_bills and x[1].shape[1] == max_layers,
                size=lambda x: x[1].shape[0],
            )
            if got is None:
                self.allocated += 1
        if got is not None:
            return got
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
            buf = _pop_smallest(self._free_acc, fits=lambda x: len(x) >= size, size=len)
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

    def take_fields(self, prep: Prepared, size: int) -> np.ndarray:
        """A flat int64 buffer of at least ``size`` values (contents: whatever the last user
        left) for ``results.layer_fields``, lent to ``prep`` until ``give_back``: the one it
        holds already if large enough, else the smallest free one that is, else a new one."""
        have = prep.lent_fields
        if have is not None and len(have) >= size:
            return have
        with self._lock:
            buf = _pop_smallest(self._free_fields, fits=lambda x: len(x) >= size, size=len)
        if buf is None:
            buf = np.empty(size, dtype=np.int64)
        if have is not None:
            self._give_back_fields(have)
        prep.lent_fields = buf
        return buf

    def _give_back_fields(self, buf: np.ndarray) -> None:
        with self._lock:
            _keep_largest(self._free_fields, buf, self.keep, same=lambda x: x is buf, size=len)

    def give_back(self, prep: Prepared) -> None:
        """Return the buffers ``prep`` took (``prepare_columns(out=...)``: outputs and
        accounts) once nothing reads them any more: they are then taken from ``prep.kb``
        (empty arrays in their place), so a late reader fails instead of reading another
        batch's figures. The largest ``keep`` free buffers of each kind are kept. A buffer
        of ``layer_fields`` (``take_fields``) goes back too: nothing may read those fields
        after this."""
        fields, prep.lent_fields = prep.lent_fields, None
        if fields is not None:
            self._give_back_fields(fields)
        acc, prep.lent_acc = prep.lent_acc, None
        if acc is not None:
            prep.kb.p_acc, prep.kb.p_adm, prep.kb.h_acc = (
                prep.kb.p_acc[:0],
                prep.kb.p_adm[:0],
                prep.kb.h_acc[:0],
            )
            with self._lock:
                _keep_largest(self._free_acc, acc, self.keep, same=lambda x: x is acc, size=len)
        lent, prep.lent = prep.lent, None
        if lent is None:
            return
        prep.kb.out_bill = lent[0][:0]
        prep.kb.out_layer = lent[1][:0]
        with self._lock:
            _keep_largest(
                self._free, lent, self.keep, same=lambda x: x[1] is lent[1],
                size=lambda x: x[1].shape[0],
            )  # fmt: skip


def _pop_smallest(free: list[T], fits: Callable[[T], bool], size: Callable[[T], int]) -> T | None:
    """Take from ``free`` the smallest entry that ``fits`` (None if none does); the caller
    holds the pool's lock."""
    i = min((i for i, x in enumerate(free) if fits(x)), key=lambda i: size(free[i]), default=None)
    return None if i is None else free.pop(i)


def _keep_largest(
    free: list[T], entry: T, keep: int, same: Callable[[T], bool], size: Callable[[T], int]
) -> None:
    """Put ``entry`` back into ``free`` (unless it is there already: ``same``), keeping the
    ``keep`` largest entries; the caller holds the pool's lock."""
    if any(same(x) for x in free):
        return
    free.append(entry)
    free.sort(key=lambda x: -size(x))
    del free[keep:]
