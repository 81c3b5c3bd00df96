"""The kept bills' derived columns in one compiled pass (``prepare_columns``, after the bills
are put in settlement order): each bill's person and household codes, accounting year (the
discharge date's) and age on admission, then the person-year and household-year account slots
(``np.unique(code * span + year - ymin, return_inverse=True)``: a rank in a table of every
(code, year) when that table is small, else the numpy sort). numpy took ~14 small calls for
these (gathers, two ``civil`` conversions of 2,000 days of ~10 passes each, two sorts):
~0.3 ms a 2,000-bill stream message. ``kept_columns_plain`` is the numpy form, the reference
the tests hold this one to."""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from engine import numbacache
from engine.columnar.inputs import age_on, year_of

numbacache.install()


@njit(cache=True, inline="always")
def _civil(days):
    # H. Hinnant's civil_from_days, as ``inputs.civil``; from year 0 on every term is
    # non-negative, so the floor divisions are unsigned ones (by constants: multiplications,
    # ~2x faster than the signed floor division's fix-ups); before it, ``_civil_signed``
    z = days + 719468
    if z < 0:
        return _civil_signed(days)
    u = np.uint64(z)
    era = u // np.uint64(146097)
    doe = u - era * np.uint64(146097)
    yoe = (doe - doe // np.uint64(1460) + doe // np.uint64(36524) - doe // np.uint64(146096)) // (
        np.uint64(365)
    )
    doy = doe - (np.uint64(365) * yoe + yoe // np.uint64(4) - yoe // np.uint64(100))
    mp = (np.uint64(5) * doy + np.uint64(2)) // np.uint64(153)
    d = doy - (np.uint64(153) * mp + np.uint64(2)) // np.uint64(5) + np.uint64(1)
    m = np.int64(mp) + 3 if mp < np.uint64(10) else np.int64(mp) - 9
    return np.int64(yoe) + np.int64(era) * 400 + (1 if m <= 2 else 0), m, np.int64(d)


@njit(cache=True, inline="always")
def _civil_signed(days):  # as ``inputs.civil``: floor divisions of signed values
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if m <= 2 else 0), m, d


@njit(cache=True, nogil=True)
def _bills(kept, dis, adm, pc, hc, birth, pk, hk, year, age):
    ymin, ymax = 0, -1  # the years' range (none: empty)
    for i in range(len(kept)):
        b = kept[i]
        p = pc[b]
        pk[i] = p
        hk[i] = hc[b]
        y = _civil(dis[b])[0]
        year[i] = y
        if ymax < ymin:
            ymin, ymax = y, y
        else:
            ymin, ymax = min(ymin, y), max(ymax, y)
        by, bm, bd = _civil(birth[p])
        ay, am, ad = _civil(adm[b])
        age[i] = ay - by - (1 if am * 32 + ad < bm * 32 + bd else 0)
    return ymin, ymax


@njit(cache=True, nogil=True)
def _ranks(code, year, ymin, span, size, inverse):
    # sorted distinct keys code * span + year - ymin (all in [0, size)) and each row's rank
    used = np.zeros(size, dtype=np.bool_)
    for i in range(len(code)):
        used[code[i] * span + year[i] - ymin] = True
    rank = np.empty(size, dtype=np.int64)
    k = 0
    for key in range(size):
        rank[key] = k
        k += used[key]
    keys = np.empty(k, dtype=np.int64)
    for key in range(size):
        if used[key]:
            keys[rank[key]] = key
    for i in range(len(code)):
        inverse[i] = rank[code[i] * span + year[i] - ymin]
    return keys


def _slots(
    code: np.ndarray, year: np.ndarray, ymin: int, span: int, n_codes: int
) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(code * span + (year - ymin), return_inverse=True)`` (codes in
    [0, n_codes)): by rank in a table of every key when it is at most a few times the rows."""
    n = len(code)
    size = n_codes * span
    if size > 8 * n + 4096:
        u, inv = np.unique(code * span + (year - ymin), return_inverse=True)
        return u, inv.astype(np.int64).reshape(-1)
    inverse = np.empty(n, dtype=np.int64)
    return _ranks(code, year, ymin, span, size, inverse), inverse


def kept_columns(
    kept: np.ndarray,
    dis: np.ndarray,
    adm: np.ndarray,
    pc: np.ndarray,
    hc: np.ndarray,
    birth: np.ndarray,
    n_persons: int,
    n_households: int,
) -> tuple[Any, ...]:
    """For the bills ``kept`` (indexes into the bills' int64 day and code columns: ``dis``,
    ``adm``, person code ``pc`` into ``birth`` (int64 days) of ``n_persons``, household code
    ``hc`` of ``n_households``): (pk, hk, year, age, ymin, span, pkey_u, pslot, hkey_u, hslot),
    as ``kept_columns_plain``."""
    n = len(kept)
    pk, hk, year, age = (np.empty(n, dtype=np.int64) for _ in range(4))
    kept, dis, adm, pc, hc, birth = (
        np.ascontiguousarray(a, dtype=np.int64) for a in (kept, dis, adm, pc, hc, birth)
    )
    lo, hi = _bills(kept, dis, adm, pc, hc, birth, pk, hk, year, age)
    ymin, span = (int(lo), int(hi) - int(lo) + 1) if n else (0, 1)
    pkey_u, pslot = _slots(pk, year, ymin, span, n_persons)
    hkey_u, hslot = _slots(hk, year, ymin, span, n_households)
    return pk, hk, year, age, ymin, span, pkey_u, pslot, hkey_u, hslot


def kept_columns_plain(
    kept: np.ndarray,
    dis: np.ndarray,
    adm: np.ndarray,
    pc: np.ndarray,
    hc: np.ndarray,
    birth: np.ndarray,
    n_persons: int,
    n_households: int,
) -> tuple[Any, ...]:
    """The numpy form (``prepare_columns``' before the compiled pass)."""
    n = len(kept)
    year = year_of(dis[kept])
    pk = pc[kept]
    hk = hc[kept]
    ymin = int(year.min()) if n else 0
    span = int(year.max()) - ymin + 1 if n else 1
    pkey_u, pslot = np.unique(pk * span + (year - ymin), return_inverse=True)
    hkey_u, hslot = np.unique(hk * span + (year - ymin), return_inverse=True)
    age = age_on(birth[pk], adm[kept]) if n else np.zeros(0, np.int64)
    return pk, hk, year, age, ymin, span, pkey_u, pslot.reshape(-1), hkey_u, hslot.reshape(-1)


def warm_kept_columns() -> None:
    """Compile (or load from the cache) the pass (one variant: int64 columns)."""
    one = np.zeros(1, dtype=np.int64)
    kept_columns(one, one + 19000, one + 18990, one, one, one, 1, 1)
