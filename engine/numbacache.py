"""A file lock around numba's on-disk cache index, so that processes compiling variants of one
function at the same moment keep each other's.

numba keeps one index per cached function (``NAME.nbi``: signature -> data file) and adds a
variant by reading the index, picking the first free data-file number, writing the index and
then the data file, with no lock. Two processes adding variants of one function at once both
read the old index and pick the same number: the later index write drops the other's entry,
and the data files can even end up swapped (an entry naming the other variant's machine code).
``install()`` wraps that read-modify-write (``IndexDataCacheFile.save``) in an exclusive
``flock`` on ``NAME.nbi.lock`` beside the index, so that ``onestop warm --jobs 2`` can compile
on both cores and a test process may compile beside it. Loading is unchanged: index and data
files are replaced atomically, and an entry whose data file is not written yet reads as a miss
(that process compiles the variant itself).

Without ``fcntl`` (Windows), or if numba's class is not the one this was written against,
``install()`` returns False and callers compile one process at a time, as before.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    _HAVE_FCNTL = False
else:
    _HAVE_FCNTL = True

_MARK = "_onestop_locked_save"


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def install() -> bool:
    """Put the lock around numba's cache-index updates in this process (idempotent). True if
    the lock is in place."""
    if not _HAVE_FCNTL:  # pragma: no cover - not POSIX
        return False
    try:
        from numba.core.caching import IndexDataCacheFile
    except ImportError:  # pragma: no cover - another numba layout
        return False
    if getattr(IndexDataCacheFile, _MARK, False):
        return True
    save = getattr(IndexDataCacheFile, "save", None)
    if save is None:  # pragma: no cover - another numba layout
        return False

    def locked_save(self: Any, key: Any, data: Any) -> None:
        with _locked(self._index_path + ".lock"):
            save(self, key, data)

    # numba's class patched (the point of install): mypy refuses any assignment to a method
    IndexDataCacheFile.save = locked_save  # type: ignore[method-assign]
    setattr(IndexDataCacheFile, _MARK, True)
    return True


def installed() -> bool:
    """Whether ``install()`` put the lock in place in this process."""
    try:
        from numba.core.caching import IndexDataCacheFile
    except ImportError:  # pragma: no cover
        return False
    return bool(getattr(IndexDataCacheFile, _MARK, False))
