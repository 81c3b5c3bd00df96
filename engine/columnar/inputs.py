"""The input columns of a batch, the rejected-row record, and the array helpers."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from engine.bill import CATEGORY_NAMES, DATE_MAX, DATE_MIN

EPOCH = date(1970, 1, 1)
DAY_MIN = np.iinfo(np.int64).min
DAY_MAX = np.iinfo(np.int64).max
#: The plausible dates (engine.bill.DATE_MIN..DATE_MAX) as int days since EPOCH.
PLAUSIBLE = ((DATE_MIN - EPOCH).days, (DATE_MAX - EPOCH).days)


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Coded:
    """A column of repeated strings: ``labels[codes]``. As an input column, ``sorted=True``
    promises that ``labels`` are unique and sorted (then no sort is needed here)."""

    codes: np.ndarray
    labels: np.ndarray
    sorted: bool = False
    #: the labels in an adapter's own form when it read them so (the batch reader: the Arrow
    #: strings it made ``labels`` from), the same strings in the same order, for its writer to
    #: use rather than build them again from ``labels``; carried by ``take``, never read here
    native: Any = field(default=None, compare=False, repr=False)

    def values(self) -> np.ndarray:
        return self.labels[self.codes]

    def __len__(self) -> int:
        return len(self.codes)


#: a string column: a plain array, or labels and codes (what the Parquet reader gives)
Strings = np.ndarray | Coded


@dataclass
class BillCols:
    bill_id: Strings
    hospital: Strings  # NHSA fixmedins_code: a bill is (hospital, bill_id)
    person_id: Strings
    hospital_level: Strings
    admission_date: np.ndarray
    discharge_date: np.ndarray
    household_id: Strings | None = None  # if given, must agree with the persons table
    region: Strings | None = None  # None: the policy set must hold one region
    row: np.ndarray | int | None = None  # row numbers, or the first's (rows_of)
    file: str = "bills"

    def __len__(self) -> int:
        return len(self.bill_id)


@dataclass
class ItemCols:
    category: np.ndarray  # int codes 1/2/3, or exactly 'A'/'B'/'C' (NHSA '01'/'02'/'03')
    amount: np.ndarray
    amount_null: np.ndarray | None = None
    bill_id: Strings | None = None  # link by bill id (and hospital, if given) ...
    hospital: Strings | None = None  # needed when one bill id is used by two hospitals
    bill_row: np.ndarray | None = None  # ... or by position in the bills table ...
    bill_start: np.ndarray | None = None  # ... or as runs: bill b's items are rows
    #   bill_start[b]:bill_start[b+1] (items grouped by bill in the bills' order; no copy)
    qty_e4: np.ndarray | None = None  # default 10000 (one unit)
    unit_price: np.ndarray | None = None
    unit_price_cap: np.ndarray | None = None
    unit_price_cap_null: np.ndarray | None = None
    selfpay_ratio: np.ndarray | None = None
    selfpay_ratio_null: np.ndarray | None = None
    row: np.ndarray | int | None = None  # row numbers, or the first's (rows_of)
    file: str = "items"

    def __len__(self) -> int:
        return len(self.amount)


@dataclass
class PersonCols:
    """One row per person and tag; a person without tags has one row with an empty tag."""

    person_id: Strings
    birth_date: np.ndarray
    household_id: Strings
    tag: Strings | None = None  # '' or None = no tag on this row
    tag_valid_from: np.ndarray | None = None  # NaT = open
    tag_valid_to: np.ndarray | None = None
    row: np.ndarray | int | None = None  # row numbers, or the first's (rows_of)
    file: str = "persons"

    def __len__(self) -> int:
        return len(self.person_id)


@dataclass
class OpeningCols:
    """Opening accounts, one row per (scope, id, year, layer); ``admissions`` counts the
    person's settled admissions that year (rows of one person-year must agree; a row with an
    empty layer carries the count alone)."""

    scope: np.ndarray  # 'person' or 'household'
    id: np.ndarray
    year: np.ndarray
    layer_id: np.ndarray
    deductible_used: np.ndarray
    eligible_cum: np.ndarray
    paid: np.ndarray
    selfpay_cum: np.ndarray
    admissions: np.ndarray | None = None
    row: np.ndarray | int | None = None  # row numbers, or the first's (rows_of)
    file: str = "opening"

    def __len__(self) -> int:
        return len(self.id)


@dataclass(frozen=True)
class Reject:
    """One bad row: where (row of which table or file), which field, which value, which rule."""

    row: int
    file: str
    field: str
    value: Any
    rule: str
    bill_id: str | None = None  # the bill left out because of it (None: no bill)
    hospital: str | None = None  # and its hospital

    def __str__(self) -> str:
        at = f" of hospital {self.hospital!r}" if self.hospital else ""
        bill = f" (bill {self.bill_id!r}{at} not settled)" if self.bill_id is not None else ""
        return f"{self.file} row {self.row}: {self.field}: {self.value!r} {self.rule}{bill}"


_NO_ROWS = np.zeros(0, dtype=np.int64)
_NO_ROWS.flags.writeable = False


class Rejects:
    def __init__(self) -> None:
        self.items: list[
            tuple[np.ndarray, str, str, np.ndarray, np.ndarray, np.ndarray | None]
        ] = []

    def add(
        self,
        where: np.ndarray,
        rows: Any,
        file: str,
        field: str,
        values: Any,
        rule: Any,
        bills: Any,
    ) -> np.ndarray:
        """Record the rows where ``where`` holds; ``bills`` = bill index per row (or -1);
        ``values`` and ``rule`` are one for all rows or one per row."""
        if type(where) is np.ndarray and where.dtype == np.bool_ and not np.count_nonzero(where):
            return _NO_ROWS  # the usual case, in a third of flatnonzero's time
        idx = np.flatnonzero(where)
        if len(idx):
            vals = _pick(values, where.shape, idx)
            rules = _pick(rule, where.shape, idx)
            b = None if bills is None else bills(idx) if callable(bills) else np.asarray(bills)[idx]
            self.items.append((rows[idx], file, field, vals, rules, b))
        return idx

    def build(self, bill_ids: Strings, hospitals: Any = None) -> list[Reject]:
        out: list[Reject] = []
        for rows, file, fld, vals, rule, bills in self.items:
            for k in range(len(rows)):
                bid = hosp = None
                if bills is not None and bills[k] >= 0:
                    at = np.array([bills[k]])
                    bid = _py(plain_at(bill_ids, at)[0])
                    if hospitals is not None:
                        hosp = _py(plain_at(hospitals, at)[0])
                out.append(Reject(int(rows[k]), file, fld, _py(vals[k]), str(rule[k]), bid, hosp))
        out.sort(key=lambda r: (r.file, r.row, r.field))
        return out


def _pick(v: Any, shape: tuple[int, ...], idx: np.ndarray) -> np.ndarray:
    if isinstance(v, Coded):
        return v.labels[v.codes[idx]]
    if isinstance(v, np.ndarray) and v.shape == shape:
        return v[idx]
    out = np.empty(len(idx), dtype=object)
    out[:] = [v] * len(idx) if isinstance(v, str) or v is None else v
    return out


def _py(v: Any) -> Any:
    if isinstance(v, np.generic):
        if isinstance(v, np.datetime64):
            return str(v.astype("M8[D]"))
        return v.item()
    return v


class Offset:
    """Row numbers ``offset + i`` without an array of them."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def __getitem__(self, idx: Any) -> Any:
        return np.asarray(idx, dtype=np.int64) + self.offset


def rows_of(rows: np.ndarray | int | None, n: int) -> Any:
    """Row numbers: an array, or an offset (the rows are ``offset + 0..n-1``)."""
    if rows is None:
        return Offset(0)
    if isinstance(rows, int | np.integer):
        return Offset(int(rows))
    return np.asarray(rows, dtype=np.int64)


def days_of(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int64 days since 1970-01-01, missing mask) from datetime64 or integer days."""
    a = np.asarray(a)
    if a.dtype.kind == "M":
        missing = np.isnat(a)
        d = a.astype("M8[D]").astype(np.int64)
        return d, missing
    if a.dtype.kind in "iu":
        return a.astype(np.int64, copy=False), np.zeros(len(a), dtype=bool)
    if a.dtype == object:
        missing = np.array([v is None for v in a], dtype=bool)
        fill = np.where(missing, np.datetime64("1970-01-01"), a)
        return fill.astype("M8[D]").astype(np.int64), missing
    raise TypeError(f"dates must be datetime64[D] or int days, not {a.dtype}")


def factor(a: Any) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique values, code of each value); codes keep the order of the values."""
    if isinstance(a, Coded):
        codes = a.codes.astype(np.int64, copy=False)
        if a.sorted:
            used = np.zeros(len(a.labels), dtype=bool)
            used[codes] = True
            if used.all():
                return a.labels, codes
            new = np.cumsum(used) - 1  # drop labels no row uses (order kept)
            return a.labels[used], new[codes]
        mark = np.zeros(len(a.labels), dtype=bool)
        mark[codes] = True  # the labels used (a sort of the codes did this: ~0.02 ms)
        used = np.flatnonzero(mark)
        u, inv = _distinct(a.labels[used])
        remap = np.full(len(a.labels), -1, dtype=np.int64)
        remap[used] = inv
        return u, remap[codes]
    a = np.asarray(a)
    if a.dtype == object and len(a) > 1000:
        with contextlib.suppress(TypeError, ValueError):
            a = a.astype(str)  # numpy sorts fixed-width strings much faster than objects
    return _distinct(a)


#: at most this many strings are sorted by Python (``_distinct``)
SMALL = 256


def _distinct(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(a, return_inverse=True)``; a few Python strings (a column's labels, a
    message's persons) sorted by Python: numpy 2's ``unique`` costs ~20-40 us even for one
    value, ``sorted`` of a set a few us (the same order: Python's, numpy's sort of objects)."""
    if a.dtype == object and len(a) <= SMALL:
        vals = a.tolist()
        if all(type(v) is str for v in vals):
            distinct = sorted(set(vals))
            at = {v: i for i, v in enumerate(distinct)}
            out = np.empty(len(distinct), dtype=object)
            out[:] = distinct
            return out, np.array([at[v] for v in vals], dtype=np.int64)
    u, inv = np.unique(a, return_inverse=True)
    return u, inv.astype(np.int64).reshape(-1)


def no_nulls(a: Any) -> Any:
    """A string column with None as ''."""
    if isinstance(a, Coded):
        return a if not any(v is None for v in a.labels) else Coded(a.codes, no_nulls(a.labels))
    a = np.asarray(a)
    if a.dtype == object and any(v is None for v in a):
        a = np.array(["" if v is None else v for v in a], dtype=object)
    return a


def unique(a: np.ndarray) -> np.ndarray:
    """``np.unique(a)`` by sorting: numpy 2.4's hash-based unique (taken when no inverse or
    index is asked for) is slow on some integer patterns, e.g. codes * k + small (9 s for one
    million values, against 0.1 s sorted)."""
    a = np.sort(np.asarray(a).reshape(-1))
    if len(a) < 2:
        return a
    return a[np.concatenate(([True], a[1:] != a[:-1]))]


def take(a: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of a column, keeping ``Coded`` columns coded."""
    if isinstance(a, Coded):
        return Coded(a.codes[idx], a.labels, a.sorted, a.native)
    return np.asarray(a)[idx]


def plain_at(a: Any, idx: np.ndarray) -> np.ndarray:
    if isinstance(a, Coded):
        return a.labels[a.codes[idx]]
    return np.asarray(a)[idx]


def lookup(keys: np.ndarray, values: Strings) -> np.ndarray:
    """Index of each value in sorted unique ``keys``, -1 where absent."""
    if isinstance(values, Coded):
        return lookup(keys, values.labels)[values.codes]
    if len(keys) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    values = np.asarray(values)
    if keys.dtype == object and values.dtype == object and len(keys) > 1000:
        # numpy compares fixed-width strings in C, objects one Python call at a time
        with contextlib.suppress(TypeError, ValueError):
            keys, values = keys.astype(str), values.astype(str)
    if keys.dtype.kind in "US" and values.dtype == object:
        values = values.astype(keys.dtype.kind)
    elif keys.dtype == object and values.dtype.kind in "US":
        values = values.astype(object)
    pos = np.searchsorted(keys, values)
    pos = np.minimum(pos, len(keys) - 1)
    hit = keys[pos] == values
    return np.where(hit, pos, -1).astype(np.int64)


def empty_id(a: Any) -> np.ndarray:
    if isinstance(a, Coded):
        if a.sorted and len(a.labels):  # unique sorted labels: only the first can be ''
            codes = np.asarray(a.codes)
            return codes == 0 if empty_id(a.labels[:1])[0] else np.zeros(len(codes), bool)
        return empty_id(a.labels)[a.codes]
    a = np.asarray(a)
    if a.dtype.kind in "US":
        return a == ""
    if a.dtype == object:  # elementwise in C (None == "" is False)
        return np.asarray(np.equal(a, "") | np.equal(a, np.array(None, dtype=object)), dtype=bool)
    return np.zeros(len(a), dtype=bool)


def civil(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year, month 1-12, day 1-31) of int days since 1970-01-01 (proleptic Gregorian), by
    integer arithmetic (H. Hinnant's ``civil_from_days``): numpy's datetime64 casts to years
    and months take ~10x as long."""
    z = np.asarray(days, dtype=np.int64) + 719468
    era = z // 146097
    doe = z - era * 146097  # day of the 400-year era, 0..146096
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)  # day of the March-based year
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = np.where(mp < 10, mp + 3, mp - 9)
    return yoe + era * 400 + (m <= 2), m, d


def year_of(days: np.ndarray) -> np.ndarray:
    return civil(days)[0]


def age_on(birth: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Full years between int-day ``birth`` and ``day`` (vectorized ``Person.age_on``)."""
    by, bm, bd = civil(birth)
    dy, dm, dd = civil(day)
    return dy - by - (dm * 32 + dd < bm * 32 + bd)


_CAT_NAMES = {k: int(v) for k, v in CATEGORY_NAMES.items()}


def category_codes(a: np.ndarray) -> np.ndarray:
    """Categories as int8 1/2/3; 0 where unknown. Integers are the kernel's codes 1/2/3;
    strings must be exactly a code of the contract (no case folding, padding or aliases)."""
    if isinstance(a, Coded):
        return category_codes(np.asarray(a.labels))[a.codes]
    a = np.asarray(a)
    if a.dtype.kind in "iu":
        if a.dtype == np.int8 and a.size and a.min() >= 1 and a.max() <= 3:
            return a  # already the kernel's codes: no copy
        ok = (a >= 1) & (a <= 3)
        return np.where(ok, a, 0).astype(np.int8)
    u, inv = np.unique(a.astype(object) if a.dtype == object else a, return_inverse=True)
    m = np.array(
        [_CAT_NAMES.get(v, 0) if isinstance(v, str) else 0 for v in u],
        dtype=np.int8,
    )
    return m[inv.reshape(-1)]
