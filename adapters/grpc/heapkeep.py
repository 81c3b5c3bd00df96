"""A serving process keeps the heap memory it frees (glibc's ``mallopt``), so that a warm server
touches no fresh page for each large message.

With glibc's defaults, a block over the (dynamic) mmap threshold is its own mapping, unmapped
when freed, and the top of a heap is handed back to the kernel once more than twice that
threshold is free there. A packed stream message (3.1 MB) goes through grpc's receive slices,
the joined bytes of the message and the message's columns, each freed again once answered:
on the server, ~800 page faults a message, ~4 ms of system time of ~11 ms of CPU (perf: grpc's
``recvmsg`` into new slices, the bytes join, ``sysmalloc``). On a host whose fresh pages are
dear (benchmarks/README.md, the twelfth run: ~5 s of system time a GB) that is the stream's
largest cost after the settling. Here the mmap threshold is fixed at ``MMAP_THRESHOLD``
(blocks up to it come from the heaps and are reused) and the heap tops are trimmed only past
``TRIM_THRESHOLD``: the process keeps up to that much free memory at the top of each heap
(its resident size stays near its high-water mark) instead of faulting it in again.

Only on glibc (elsewhere nothing); ``ONESTOP_HEAP_KEEP=0`` leaves glibc's defaults."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys

log = logging.getLogger("onestop.grpc")

#: glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: blocks up to this size come from the heaps (glibc's largest: 32 MB on 64-bit)
MMAP_THRESHOLD = 32 << 20
#: free memory kept at the top of a heap before it is handed back
TRIM_THRESHOLD = 128 << 20


def keep_freed_memory() -> bool:
    """Set the thresholds in this process; True when they were set."""
    if os.environ.get("ONESTOP_HEAP_KEEP", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library (no ldconfig run)
        mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        mallopt.restype = ctypes.c_int
        ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
        ok = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
        if not ok:
            log.warning("mallopt refused the heap thresholds: glibc's defaults stay")
        return ok
    return False  # not glibc (musl has no mallopt)
