"""The heap a batch run will need, mapped ahead in a thread while the start-up leaves a core idle.

This host charges system time for each page of memory a process touches for the first time
(benchmarks/README.md, "The machine"). ``onestop batch`` runs with glibc's heap in one arena
that never ``mmap``s and is never trimmed (adapters/batch/memory.py): the heap grows to its
peak in the first parts (~700 MB for parts of 100 k bills and 4 M items) and is then reused
without a fault. That growth faulted in the reader's, the settling and the writer's threads,
on the run's critical path, much of it as transparent huge pages (numpy asks for them on its
large arrays; THP is ``madvise`` here), which cost more system time per MB than 4 kB pages:
~1.1 of a run's ~1.4-1.7 s of system time. The start-up (imports, the plan) meanwhile left a
core mostly idle.

``HeapAhead`` grows the heap once by about what the parts will need (``malloc`` and ``free`` of
one block: the heap's top moves up, nothing is touched) and has the kernel map those pages
(``madvise(MADV_POPULATE_WRITE)``, 2 MB a call) in a daemon thread beside the plan. The call
writes nothing: it maps each page as a first write would, so pages other threads took from the
heap meanwhile keep what they hold. The parts then find their pages mapped (as 4 kB pages).
A run touches no more memory than it would have, as long as ``size_for`` stays under the
run's peak heap (it aims at ~90 % of it on the benchmark's data: 160 bytes a part's item).

Only for a local run with the batch memory settings (``memory.MARK``) of Parquet inputs on
Linux; a failed call stops the thread and leaves the run as it was. Money is untouched: this
is where memory comes from, not what is in it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading

from adapters.batch import io, memory

MADV_POPULATE_WRITE = 23  # Linux 5.14
STEP = 2 << 20  # bytes mapped a call (a call holds the address space's lock for reading: a
#: thread growing the heap or mapping a file waits for at most one step)
#: heap bytes a run needs per item of its largest part (the item columns of the part read
#: and of the part settling, the checks' arrays, the outputs of three parts, the writer's
#: tables): ~175 measured at 100 k bills x 40 items a part, 160 aims below the peak
BYTES_PER_ITEM = 160
MIN_SIZE = 64 << 20  # below this, not worth a thread
MAX_SIZE = 4 << 30


def size_for(bills: str, items: str, chunk_bills: int) -> int:
    """Bytes to map ahead for a local run of these inputs in parts of ``chunk_bills`` bills:
    0 without the batch memory settings, for CSV inputs (their row counts are not known
    without reading them) or for a small run."""
    if not memory.in_force(os.environ):
        return 0  # large blocks mmapped and unmapped when freed, a trimmed heap, other arenas
    if io.is_csv(bills) or io.is_csv(items):
        return 0
    try:
        n_bills, n_items = io.n_rows(bills, "bills"), io.n_rows(items, "items")
    except Exception:  # refused where the plan reads it, with its message
        return 0
    if n_bills <= 0:
        return 0
    per_part = n_items * min(chunk_bills, n_bills) // n_bills
    size = min(BYTES_PER_ITEM * per_part, MAX_SIZE, _available() // 2)
    return size if size >= MIN_SIZE else 0


def _available() -> int:
    """The kernel's MemAvailable in bytes (a large number if it cannot be read)."""
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 1 << 62


class HeapAhead:
    """A daemon thread mapping ``size`` bytes of fresh heap; ``cancel`` stops it at its next
    step, ``close`` also waits for it (one step), ``join`` waits until all is mapped."""

    def __init__(self, size: int) -> None:
        self._stop = threading.Event()
        self.mapped = 0  # bytes mapped so far
        self._thread = threading.Thread(target=self._run, args=(size,), name="onestop-heap",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def _run(self, size: int) -> None:
        with contextlib.suppress(Exception):  # no libc, no such call: the run as it was
            libc = ctypes.CDLL(None, use_errno=True)
            libc.malloc.restype = ctypes.c_void_p
            libc.malloc.argtypes = [ctypes.c_size_t]
            libc.free.argtypes = [ctypes.c_void_p]
            libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            p = libc.malloc(size)
            if not p:
                return
            libc.free(p)  # back to the heap's top, which is never trimmed (memory.py)
            page = os.sysconf("SC_PAGE_SIZE")
            at, hi = -(-p // page) * page, (p + size) // page * page
            lo = at
            while at < hi and not self._stop.is_set():
                n = min(STEP, hi - at)
                if libc.madvise(at, n, MADV_POPULATE_WRITE) != 0:
                    return
                at += n
                self.mapped = at - lo

    def cancel(self) -> None:
        self._stop.set()

    def join(self) -> None:
        """Wait until all is mapped (or a call failed, or ``cancel``)."""
        self._thread.join()

    def close(self) -> None:
        self.cancel()
        self.join()
