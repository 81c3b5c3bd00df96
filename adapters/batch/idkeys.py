"""Ids looked up among sorted ids by integer keys: the persons file's person ids, once per run,
as int64 keys in their byte order (``IdKeys``), each part's person ids then found by one
``searchsorted`` of int64 keys instead of fixed-width unicode strings (``C.lookup``; a part's
~15-30 k person ids among 333 k: ~7.2 -> ~4.8 ms, most of what is left converting the
labels to bytes; branch batch12r).

The key is ``arrowcols.Radix``, ``fixed_width_key``'s mixed radix, taken from the sorted ids: every id of one
width, each byte position a digit from its smallest to its largest value there. A value of
another width, or with a byte outside its position's range, is no id of the table (its key is
not looked at). Ids that are not ASCII of one width, or whose radix does not fit 63 bits: no
``IdKeys`` (``of`` gives None), the strings are compared as before."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adapters.batch.arrowcols import Radix


def _bytes(labels: np.ndarray) -> np.ndarray | None:
    """(n, width) uint8 of ASCII strings all of one width (1-16 bytes), else None."""
    if len(labels) == 0:
        return None
    try:
        s = np.asarray(labels).astype("S")
    except (UnicodeEncodeError, TypeError, ValueError):
        return None
    width = s.dtype.itemsize
    if not 0 < width <= 16:
        return None
    data = s.view(np.uint8).reshape(len(s), width)
    # a shorter string is padded with NUL bytes (and one ending in NUL is not told from it)
    return data if np.all(data[:, -1]) else None


@dataclass(frozen=True)
class IdKeys:
    """Sorted unique ids (``labels``' order) as int64 ``keys`` of one mixed radix."""

    keys: np.ndarray
    radix: Radix
    hi: np.ndarray  # per byte position: the largest byte (``radix.lo``: the smallest)

    @staticmethod
    def of(labels: np.ndarray) -> IdKeys | None:
        """The keys of sorted unique ``labels`` (Python strings), or None (see the module)."""
        data = _bytes(labels)
        if data is None:
            return None
        radix = Radix.of(data)
        if radix is None:
            return None
        keys = radix.key(data)
        if len(keys) > 1 and not np.all(keys[1:] > keys[:-1]):
            return None  # not sorted unique (the caller's promise broken): strings as before
        return IdKeys(keys, radix, data.max(axis=0))

    def lookup(self, values: np.ndarray) -> np.ndarray | None:
        """Index of each value among the ids, -1 where it is none of them; None when the values
        are not ASCII of one width (then compare them as strings)."""
        data = _bytes(values)
        if data is None:
            return None
        lo = self.radix.lo
        if data.shape[1] != len(lo):
            return np.full(len(values), -1, dtype=np.int64)
        ok = np.all((data >= lo) & (data <= self.hi), axis=1)
        key = self.radix.key(data)
        pos = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
        return np.where(ok & (self.keys[pos] == key), pos, -1).astype(np.int64)
