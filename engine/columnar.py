"""Batches straight from columns: numpy arrays in, a ``KernelBatch`` and result columns out.

No Bill objects: the three input tables (bills, items, persons with one row per tag) are plain
numpy arrays, checked and turned into the kernel's arrays with vectorized numpy (sorting by
household and date, CSR item offsets, person-year and household-year slots by ``np.unique``,
tag masks valid on the admission date, age in full years on the admission date, the table in
force by region and discharge date). Bad rows are not dropped silently: each one comes back as
a ``Reject`` (row, table or file, field, value, rule), and the bills they touch are left out of
the batch (a rejected bill changes no account and writes nothing). The caller decides whether
any reject fails the run.

Conventions of the input columns
- ids (bill, person, household, region, level, tag, layer): arrays of str (or int) without nulls;
- dates: ``datetime64[D]`` (NaT = missing) or int days since 1970-01-01;
- money, quantities, ratios: integer arrays; a nullable column comes with a boolean ``*_null``
  mask (True = null); where the mask is set the value is ignored;
- ``row``: the row number of each record in its source (default ``0..n-1``), used in rejects.

No file formats here: the adapters read and write the files.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from engine import kernel as K
from engine.accounts import ACCOUNT_FIELDS
from engine.batch import KernelBatch, chunks_at_households
from engine.bill import _CATEGORY_NAMES
from engine.money import BP, MAX_ACCOUNT, MAX_AMOUNT, MAX_BILL_TOTAL, MAX_QTY_E4, MAX_UNIT_PRICE
from engine.policy.compiled import MAX_BITS, CompiledPolicies, compile_tables
from engine.policy.policyset import PolicySet
from engine.result import CAPS, REASONS

EPOCH = date(1970, 1, 1)
DAY_MIN = np.iinfo(np.int64).min
DAY_MAX = np.iinfo(np.int64).max


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Coded:
    """A column of repeated strings: ``labels[codes]``. As an input column, ``sorted=True``
    promises that ``labels`` are unique and sorted (then no sort is needed here)."""

    codes: np.ndarray
    labels: np.ndarray
    sorted: bool = False

    def values(self) -> np.ndarray:
        return self.labels[self.codes]

    def __len__(self) -> int:
        return len(self.codes)


@dataclass
class BillCols:
    bill_id: np.ndarray
    person_id: np.ndarray
    hospital_level: np.ndarray
    admission_date: np.ndarray
    discharge_date: np.ndarray
    household_id: np.ndarray | None = None  # if given, must agree with the persons table
    region: np.ndarray | None = None  # None: the policy set must hold one region
    row: np.ndarray | None = None
    file: str = "bills"

    def __len__(self) -> int:
        return len(self.bill_id)


@dataclass
class ItemCols:
    category: np.ndarray  # 1/2/3 or 'A'/'B'/'C' (NHSA '01'/'02'/'03', 甲/乙/丙)
    amount: np.ndarray
    amount_null: np.ndarray | None = None
    bill_id: np.ndarray | None = None  # link by bill id ...
    bill_row: np.ndarray | None = None  # ... or by position in the bills table ...
    bill_start: np.ndarray | None = None  # ... or as runs: bill b's items are rows
    #   bill_start[b]:bill_start[b+1] (items grouped by bill in the bills' order; no copy)
    qty_e4: np.ndarray | None = None  # default 10000 (one unit)
    unit_price: np.ndarray | None = None
    unit_price_cap: np.ndarray | None = None
    unit_price_cap_null: np.ndarray | None = None
    selfpay_ratio: np.ndarray | None = None
    selfpay_ratio_null: np.ndarray | None = None
    row: np.ndarray | None = None
    file: str = "items"

    def __len__(self) -> int:
        return len(self.amount)


@dataclass
class PersonCols:
    """One row per person and tag; a person without tags has one row with an empty tag."""

    person_id: np.ndarray
    birth_date: np.ndarray
    household_id: np.ndarray
    tag: np.ndarray | None = None  # '' or None = no tag on this row
    tag_valid_from: np.ndarray | None = None  # NaT = open
    tag_valid_to: np.ndarray | None = None
    row: np.ndarray | None = None
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
    row: np.ndarray | None = None
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

    def __str__(self) -> str:
        bill = f" (bill {self.bill_id!r} not settled)" if self.bill_id is not None else ""
        return f"{self.file} row {self.row}: {self.field}: {self.value!r} {self.rule}{bill}"


class _Rejects:
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
        idx = np.flatnonzero(where)
        if len(idx):
            vals = _pick(values, where.shape, idx)
            rules = _pick(rule, where.shape, idx)
            b = None if bills is None else bills(idx) if callable(bills) else np.asarray(bills)[idx]
            self.items.append((rows[idx], file, field, vals, rules, b))
        return idx

    def build(self, bill_ids: np.ndarray) -> list[Reject]:
        out: list[Reject] = []
        for rows, file, fld, vals, rule, bills in self.items:
            for k in range(len(rows)):
                bid = None
                if bills is not None and bills[k] >= 0:
                    bid = _py(_plain_at(bill_ids, np.array([bills[k]]))[0])
                out.append(Reject(int(rows[k]), file, fld, _py(vals[k]), str(rule[k]), bid))
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


class _Offset:
    """Row numbers ``offset + i`` without an array of them."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def __getitem__(self, idx: Any) -> Any:
        return np.asarray(idx, dtype=np.int64) + self.offset


def _rows(rows: np.ndarray | int | None, n: int) -> Any:
    """Row numbers: an array, or an offset (the rows are ``offset + 0..n-1``)."""
    if rows is None:
        return _Offset(0)
    if isinstance(rows, int | np.integer):
        return _Offset(int(rows))
    return np.asarray(rows, dtype=np.int64)


def _days(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def _factor(a: Any) -> tuple[np.ndarray, np.ndarray]:
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
        u, inv = np.unique(a.labels[np.unique(codes)], return_inverse=True)
        remap = np.full(len(a.labels), -1, dtype=np.int64)
        remap[np.unique(codes)] = inv.reshape(-1)
        return u, remap[codes]
    a = np.asarray(a)
    if a.dtype == object and len(a) > 1000:
        with contextlib.suppress(TypeError, ValueError):
            a = a.astype(str)  # numpy sorts fixed-width strings much faster than objects
    u, inv = np.unique(a, return_inverse=True)
    return u, inv.astype(np.int64).reshape(-1)


def _take(a: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of a column, keeping ``Coded`` columns coded."""
    if isinstance(a, Coded):
        return Coded(a.codes[idx], a.labels)
    return np.asarray(a)[idx]


def _plain_at(a: Any, idx: np.ndarray) -> np.ndarray:
    if isinstance(a, Coded):
        return a.labels[a.codes[idx]]
    return np.asarray(a)[idx]


def _lookup(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of each value in sorted unique ``keys``, -1 where absent."""
    if isinstance(values, Coded):
        return _lookup(keys, values.labels)[values.codes]
    if len(keys) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    values = np.asarray(values)
    if keys.dtype.kind in "US" and values.dtype == object:
        values = values.astype(keys.dtype.kind)
    elif keys.dtype == object and values.dtype.kind in "US":
        values = values.astype(object)
    pos = np.searchsorted(keys, values)
    pos = np.minimum(pos, len(keys) - 1)
    hit = keys[pos] == values
    return np.where(hit, pos, -1).astype(np.int64)


def _empty_id(a: Any) -> np.ndarray:
    if isinstance(a, Coded):
        return _empty_id(a.labels)[a.codes]
    a = np.asarray(a)
    if a.dtype.kind in "US":
        return a == ""
    if a.dtype == object:
        return np.array([v is None or v == "" for v in a], dtype=bool)
    return np.zeros(len(a), dtype=bool)


def _year_of(days: np.ndarray) -> np.ndarray:
    return days.astype("M8[D]").astype("M8[Y]").astype(np.int64) + 1970


def age_on(birth: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Full years between int-day ``birth`` and ``day`` (vectorized ``Person.age_on``)."""
    b, d = birth.astype("M8[D]"), day.astype("M8[D]")
    by, dy = b.astype("M8[Y]"), d.astype("M8[Y]")
    bm, dm = b.astype("M8[M]"), d.astype("M8[M]")
    b_md = (bm - by).astype(np.int64) * 32 + (b - bm).astype(np.int64)
    d_md = (dm - dy).astype(np.int64) * 32 + (d - dm).astype(np.int64)
    return (dy - by).astype(np.int64) - (d_md < b_md)


_CAT_NAMES = {k: int(v) for k, v in _CATEGORY_NAMES.items()}


def category_codes(a: np.ndarray) -> np.ndarray:
    """Categories as int8 1/2/3; 0 where unknown."""
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
        [_CAT_NAMES.get(str(v).strip().upper(), 0) if v is not None else 0 for v in u],
        dtype=np.int8,
    )
    return m[inv.reshape(-1)]


# --------------------------------------------------------------------------- prepare


@dataclass
class Prepared:
    """A checked batch ready to run, and what is needed to read its results back."""

    kb: KernelBatch
    bills: BillCols
    kept: np.ndarray  # settlement position -> index in the bills table
    rejects: list[Reject]
    region: Coded  # per kept bill (settlement order): region code
    person: Coded  # per kept bill: person id
    household: Coded  # per kept bill: household id
    year: np.ndarray
    admission: np.ndarray  # int days
    discharge: np.ndarray
    pslot_keys: tuple[np.ndarray, np.ndarray] = field(default=(np.empty(0), np.empty(0)))
    hslot_keys: tuple[np.ndarray, np.ndarray] = field(default=(np.empty(0), np.empty(0)))


def prepare_columns(
    bills: BillCols,
    items: ItemCols,
    persons: PersonCols,
    policies: PolicySet,
    opening: OpeningCols | None = None,
    n_chunks: int = 1,
    compiled: CompiledPolicies | None = None,
    extra_rejects: list[tuple[int, str, Any, str]] | None = None,
) -> Prepared:
    """Check the three tables, leave out bad bills (as rejects) and build the kernel's arrays.

    ``extra_rejects``: (bill index, field, value, rule) found by the caller (e.g. a bill id
    already used in an earlier chunk). ``compiled`` defaults to all tables of ``policies``.
    """
    nb, ni, npr = len(bills), len(items), len(persons)
    rj = _Rejects()
    bad = np.zeros(nb, dtype=bool)
    brow = _rows(bills.row, nb)
    irow = _rows(items.row, ni)
    prow = _rows(persons.row, npr)
    bf, itf, pf = bills.file, items.file, persons.file
    bidx = np.arange(nb, dtype=np.int64)

    # ---- persons: one household and birth date per person, tags
    pu, pcode_rows = _factor(persons.person_id)
    p_birth_rows, p_birth_missing = _days(persons.birth_date)
    hu, hcode_rows = _factor(persons.household_id)
    n_p = len(pu)
    first = np.full(n_p, npr, dtype=np.int64)
    np.minimum.at(first, pcode_rows, np.arange(npr))
    p_house = hcode_rows[first] if npr else np.zeros(0, dtype=np.int64)
    p_birth = p_birth_rows[first] if npr else np.zeros(0, dtype=np.int64)
    p_bad = np.zeros(n_p, dtype=bool)
    empty_pid = _empty_id(persons.person_id)
    rj.add(empty_pid, prow, pf, "person_id", persons.person_id, "is empty; give an id", None)
    empty_hid = _empty_id(persons.household_id)
    rj.add(empty_hid, prow, pf, "household_id", persons.household_id, "is empty; give an id", None)
    p_bad[pcode_rows[empty_hid]] = True
    rj.add(p_birth_missing, prow, pf, "birth_date", None, "is missing; it is required", None)
    p_bad[pcode_rows[p_birth_missing]] = True
    other_house = hcode_rows != p_house[pcode_rows]
    rj.add(
        other_house, prow, pf, "household_id", persons.household_id,
        "differs from the household on an earlier row of this person; a person belongs to "
        "one household", None,
    )  # fmt: skip
    p_bad[pcode_rows[other_house]] = True
    other_birth = (p_birth_rows != p_birth[pcode_rows]) & ~p_birth_missing
    rj.add(
        other_birth, prow, pf, "birth_date", persons.birth_date,
        "differs from the birth date on an earlier row of this person", None,
    )  # fmt: skip
    p_bad[pcode_rows[other_birth]] = True

    # tag rows
    has_tag = ~_empty_id(persons.tag) if persons.tag is not None else np.zeros(npr, dtype=bool)
    t_idx = np.flatnonzero(has_tag)
    if persons.tag_valid_from is not None:
        t_from, t_from_na = _days(persons.tag_valid_from)
        t_from = np.where(t_from_na, DAY_MIN, t_from)
    else:
        t_from = np.full(npr, DAY_MIN, dtype=np.int64)
    if persons.tag_valid_to is not None:
        t_to, t_to_na = _days(persons.tag_valid_to)
        t_to = np.where(t_to_na, DAY_MAX, t_to)
    else:
        t_to = np.full(npr, DAY_MAX, dtype=np.int64)
    backwards = has_tag & (t_to < t_from)
    rj.add(
        backwards, prow, pf, "tag_valid_to", persons.tag_valid_to,
        "is before tag_valid_from; a tag's validity range runs forwards", None,
    )  # fmt: skip
    p_bad[pcode_rows[backwards]] = True
    if len(t_idx):
        gu, g_of = _factor(_take(persons.tag, t_idx))
    else:
        gu, g_of = np.array([], dtype=object), np.zeros(0, dtype=np.int64)
    if len(gu) > MAX_BITS:
        raise ValueError(f"{pf}: {len(gu)} distinct tags; at most {MAX_BITS} in one batch")
    t_order = np.argsort(pcode_rows[t_idx], kind="stable")
    t_rows = t_idx[t_order]  # tag rows sorted by person
    t_g = g_of[t_order]
    t_cnt = np.bincount(pcode_rows[t_rows], minlength=n_p)
    t_start = np.zeros(n_p + 1, dtype=np.int64)
    np.cumsum(t_cnt, out=t_start[1:])

    # ---- bills
    adm, adm_na = _days(bills.admission_date)
    dis, dis_na = _days(bills.discharge_date)
    for name, col in (("bill_id", bills.bill_id), ("person_id", bills.person_id)):
        e = _empty_id(col)
        rj.add(e, brow, bf, name, col, "is empty; give an id", bidx)
        bad |= e
    rj.add(adm_na, brow, bf, "admission_date", None, "is missing; it is required", bidx)
    rj.add(dis_na, brow, bf, "discharge_date", None, "is missing; it is required", bidx)
    bad |= adm_na | dis_na
    early = ~adm_na & ~dis_na & (dis < adm)
    rj.add(
        early, brow, bf, "discharge_date", bills.discharge_date,
        "is before admission_date; discharge must be on or after admission", bidx,
    )  # fmt: skip
    bad |= early

    bu, bcode = _factor(bills.bill_id)
    if nb:
        o = np.argsort(bcode, kind="stable")
        dup = np.zeros(nb, dtype=bool)
        dup[o[1:]] = bcode[o[1:]] == bcode[o[:-1]]
        first_of = np.full(len(bu), nb, dtype=np.int64)
        np.minimum.at(first_of, bcode, np.arange(nb))
        rj.add(
            dup, brow, bf, "bill_id", bills.bill_id,
            np.array([f"is used by {bf} row {brow[first_of[c]]} too; bill ids are unique in a "
                      "batch" for c in bcode], dtype=object) if dup.any() else "",
            bidx,
        )  # fmt: skip
        bad |= dup
    for b, fld, val, rule in extra_rejects or ():
        rj.add(bidx == b, brow, bf, fld, val, rule, bidx)
        bad[b] = True

    pc = _lookup(pu, bills.person_id)
    unknown = pc < 0
    rj.add(
        unknown, brow, bf, "person_id", bills.person_id,
        f"is not in the persons table ({pf}); every bill's person must be listed", bidx,
    )  # fmt: skip
    bad |= pc < 0
    pcs = np.maximum(pc, 0)
    pbad = (pc >= 0) & p_bad[pcs] if n_p else np.zeros(nb, dtype=bool)
    rj.add(
        pbad & ~bad, brow, bf, "person_id", bills.person_id,
        f"has a rejected row in the persons table ({pf})", bidx,
    )  # fmt: skip
    bad |= pbad
    hc = p_house[pcs] if n_p else np.zeros(nb, dtype=np.int64)
    if bills.household_id is not None and n_p:
        given = _lookup(hu, bills.household_id)
        wrong = (pc >= 0) & (given != hc)
        rj.add(
            wrong & ~bad, brow, bf, "household_id", bills.household_id,
            f"differs from the person's household in the persons table ({pf})", bidx,
        )  # fmt: skip
        bad |= wrong

    # ---- the table in force: region + discharge date
    tables = policies.tables
    regions = policies.regions
    if bills.region is None:
        if len(regions) != 1:
            raise ValueError(
                f"{bf}: the column region is missing; the policies cover several regions "
                f"({', '.join(regions)}): say which"
            )
        rcode = np.zeros(nb, dtype=np.int64)
        rnames = np.array(regions, dtype=object)
    else:
        rnames, rcode = _factor(bills.region)
        known_r = np.array([str(r) in regions for r in rnames], dtype=bool)
        unk = ~known_r[rcode] if nb else np.zeros(0, dtype=bool)
        rj.add(
            unk & ~bad, brow, bf, "region", bills.region,
            f"has no policy table; known regions are {', '.join(regions)}", bidx,
        )  # fmt: skip
        bad |= unk
    policy = np.full(nb, -1, dtype=np.int64)
    for p, t in enumerate(tables):
        ri = [i for i, r in enumerate(rnames) if str(r) == t.region.code]
        if not ri:
            continue
        lo = (t.effective_from - EPOCH).days
        hi = DAY_MAX
        if t.effective_to is not None:
            hi = (t.effective_to - EPOCH).days
        m = (rcode == ri[0]) & (dis >= lo) & (dis <= hi)
        policy[m] = p
    out_of = (policy < 0) & ~bad
    if out_of.any():
        labels = {
            str(r): ", ".join(t.label for t in tables if t.region.code == str(r)) for r in rnames
        }
        rj.add(
            out_of, brow, bf, "discharge_date", bills.discharge_date,
            np.array([f"is outside every policy table of region {rnames[c]} (tables: "
                      f"{labels[str(rnames[c])]})" for c in rcode], dtype=object),
            bidx,
        )  # fmt: skip
    bad |= policy < 0
    pol = np.maximum(policy, 0)

    # ---- hospital level, per table
    lu, lcode = _factor(bills.hospital_level)
    lv_of = np.full((len(tables), len(lu)), -1, dtype=np.int64)
    for p, t in enumerate(tables):
        for j, name in enumerate(lu):
            if str(name) in t.hospital_levels:
                lv_of[p, j] = t.hospital_levels.index(str(name))
    level = lv_of[pol, lcode] if nb else np.zeros(0, dtype=np.int64)
    nolevel = (level < 0) & (policy >= 0)
    if nolevel.any():
        rj.add(
            nolevel, brow, bf, "hospital_level", bills.hospital_level,
            np.array([f"is not a level of policy {tables[p].label}; levels are "
                      f"{', '.join(tables[p].hospital_levels)}" for p in pol], dtype=object),
            bidx,
        )  # fmt: skip
    bad |= level < 0

    # ---- items
    bs = None
    ib: Any = None
    if items.bill_start is not None:
        bs = np.asarray(items.bill_start, dtype=np.int64)
        if len(bs) != nb + 1 or bs[0] != 0 or bs[-1] != ni or np.any(bs[1:] < bs[:-1]):
            raise ValueError(f"{itf}: bill_start is not a run index of {nb} bills over {ni} items")
    elif items.bill_row is not None:
        ib = np.asarray(items.bill_row, dtype=np.int64)
        ib = np.where((ib >= 0) & (ib < nb), ib, -1)
        link_field, link_vals = "bill_row", items.bill_row
    else:
        if items.bill_id is None:
            raise ValueError(f"{itf}: give bill_id or bill_row to link items to bills")
        code = _lookup(bu, items.bill_id)
        first_b = np.full(len(bu), -1, dtype=np.int64)
        if nb:
            first_b[bcode[::-1]] = np.arange(nb)[::-1]  # the first bill with that id
        ib = np.where(code >= 0, first_b[np.maximum(code, 0)], -1) if ni else code
        link_field, link_vals = "bill_id", items.bill_id
    if bs is None:
        rj.add(
            ib < 0, irow, itf, link_field, link_vals,
            f"names no bill of the bills table ({bf}); every item belongs to a bill", None,
        )  # fmt: skip
        linked: Any = ib >= 0
        ibs = np.maximum(ib, 0)

        def ib_of(idx: np.ndarray) -> np.ndarray:
            return ib[idx]
    else:
        linked = True

        def ib_of(idx: np.ndarray) -> np.ndarray:
            return np.searchsorted(bs, idx, side="right") - 1

    cat = category_codes(items.category)
    item_bad = np.zeros(ni, dtype=bool)
    amount = np.asarray(items.amount)
    if items.amount_null is not None:
        amount = np.where(np.asarray(items.amount_null, dtype=bool), 0, amount)
    qty = np.full(ni, BP, dtype=np.int32) if items.qty_e4 is None else np.asarray(items.qty_e4)
    # item checks block by block, so that their temporary masks stay small
    for lo_ in range(0, ni, ITEM_BLOCK):
        hi_ = min(ni, lo_ + ITEM_BLOCK)
        _check_items(items, cat, amount, lo_, hi_, rj, irow, itf,
                     linked if linked is True else linked[lo_:hi_], ib_of, item_bad)  # fmt: skip
    price_cap = _nullable(items.unit_price_cap, items.unit_price_cap_null, ni, np.int32)
    sp_ratio = _nullable(items.selfpay_ratio, items.selfpay_ratio_null, ni, np.int16)
    bad_from_items = np.zeros(nb, dtype=bool)
    bad_from_items[ib_of(np.flatnonzero(item_bad))] = True
    del item_bad
    bad |= bad_from_items
    if bs is not None:
        n_items_of = np.diff(bs)
    else:
        n_items_of = np.bincount(ibs[linked], minlength=nb) if nb else np.zeros(0, np.int64)
    # a bill's items add up to at most MAX_BILL_TOTAL (year-to-date sums stay exact)
    totals = np.zeros(nb, dtype=np.int64)
    if bs is not None:
        has = n_items_of > 0
        if ni and has.any():
            totals[has] = np.add.reduceat(amount, bs[:-1][has], dtype=np.int64)
    elif ni:
        np.add.at(totals, ibs[linked], amount[linked])
    big = totals > MAX_BILL_TOTAL
    if big.any():
        rj.add(
            big, brow, bf, "items", totals,
            f"is the sum of the bill's item amounts in fen, above the limit {MAX_BILL_TOTAL} "
            "fen for one bill; split the bill", bidx,
        )  # fmt: skip
        bad |= big
    noitems = (n_items_of == 0) & ~bad
    rj.add(
        noitems,
        brow,
        bf,
        "bill_id",
        bills.bill_id,
        f"has no items in {itf}; a bill has at least one item",
        bidx,
    )
    bad |= n_items_of == 0

    # ---- tags per bill (on the admission date), unknown tags per table
    g_known = np.zeros((len(tables), max(len(gu), 1)), dtype=np.int64) - 1
    for p, t in enumerate(tables):
        for g, name in enumerate(gu):
            if str(name) in t.tags:
                g_known[p, g] = t.tags.index(str(name))
    cnt = t_cnt[pcs] if n_p else np.zeros(nb, dtype=np.int64)
    cnt = np.where(pc >= 0, cnt, 0)
    rep = np.repeat(bidx, cnt)
    off = np.zeros(nb + 1, dtype=np.int64)
    np.cumsum(cnt, out=off[1:])
    tr = t_start[pcs[rep]] + (np.arange(len(rep)) - off[rep])  # index into t_rows
    trow = t_rows[tr]
    tg = t_g[tr]
    tbit = g_known[pol[rep], tg] if len(rep) else np.zeros(0, dtype=np.int64)
    unknown_tag = (tbit < 0) & (policy[rep] >= 0)
    if unknown_tag.any():
        rj.add(
            unknown_tag, prow[trow], pf, "tag", _plain_at(persons.tag, trow),
            np.array([f"is not a tag of policy {tables[p].label}; tags are "
                      f"{', '.join(tables[p].tags) or '(none)'}" for p in pol[rep]], dtype=object),
            rep,
        )  # fmt: skip
        bad[rep[unknown_tag]] = True
    valid = (t_from[trow] <= adm[rep]) & (adm[rep] <= t_to[trow]) & (tbit >= 0)
    b_tags = np.zeros(nb, dtype=np.int64)
    np.bitwise_or.at(b_tags, rep[valid], np.left_shift(1, tbit[valid]).astype(np.int64))

    # ---- keep the good bills, in settlement order
    keep = np.flatnonzero(~bad)
    hu_code = hc[keep]
    order = np.lexsort((bcode[keep], adm[keep], dis[keep], hu_code))
    kept = keep[order]
    n = len(kept)
    sel: np.ndarray | None
    if bs is not None:
        cnt = n_items_of[kept]
        item_start = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(cnt, out=item_start[1:])
        if n == nb and np.array_equal(kept, np.arange(nb)):
            sel = None  # every bill kept, already in settlement order: no copies
        else:
            sel = np.repeat(bs[kept] - item_start[:-1], cnt) + np.arange(item_start[-1])
    else:
        pos_of = np.full(nb, -1, dtype=np.int64)
        pos_of[kept] = np.arange(n)
        ipos = np.where(linked, pos_of[ibs], -1)
        counts = np.bincount(ipos[ipos >= 0], minlength=n) if n else np.zeros(0, np.int64)
        item_start = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=item_start[1:])
        in_order = ni > 0 and bool(np.all(ipos >= 0)) and bool(np.all(ipos[1:] >= ipos[:-1]))
        if in_order:  # items already stored in settlement order: no copies
            sel = None
        else:
            mine = np.flatnonzero(ipos >= 0)
            sel = mine[np.argsort(ipos[mine], kind="stable")]

    def gather(a: np.ndarray) -> np.ndarray:
        return a if sel is None else a[sel]

    year = _year_of(dis[kept])
    pk = pc[kept]
    ymin = int(year.min()) if n else 0
    span = int(year.max()) - ymin + 1 if n else 1
    pkey_u, pslot = np.unique(pk * span + (year - ymin), return_inverse=True)
    hkey_u, hslot = np.unique(hc[kept] * span + (year - ymin), return_inverse=True)
    if compiled is None:
        compiled = compile_tables(tables)
    S = compiled.n_slots
    p_acc = np.zeros((len(pkey_u), S, 4), dtype=np.int64)
    p_adm = np.zeros(len(pkey_u), dtype=np.int64)
    h_acc = np.zeros((len(hkey_u), S, 4), dtype=np.int64)
    pslot_keys = (pu[pkey_u // span] if n else pu[:0], pkey_u % span + ymin)
    hslot_keys = (hu[hkey_u // span] if n else hu[:0], hkey_u % span + ymin)
    if opening is not None and len(opening):
        _open(opening, compiled, pslot_keys, hslot_keys, p_acc, p_adm, h_acc)

    tags_k = b_tags[kept]
    kb = KernelBatch(
        compiled=compiled, order=kept, item_start=item_start,
        cat=gather(cat), qty=gather(qty), amount=gather(amount), price_cap=gather(price_cap),
        sp_ratio=gather(sp_ratio), b_policy=policy[kept], b_level=level[kept],
        b_tags=tags_k, b_age=age_on(p_birth[pk], adm[kept]) if n else np.zeros(0, np.int64),
        b_pslot=pslot.astype(np.int64).reshape(-1), b_hslot=hslot.astype(np.int64).reshape(-1),
        p_acc=p_acc, p_adm=p_adm, h_acc=h_acc,
        out_bill=np.zeros((n, K.N_BILL), dtype=np.int64),
        out_layer=np.zeros((n, compiled.max_layers, K.N_FIELDS), dtype=np.int64),
        chunk_start=chunks_at_households(hu_code[order], n_chunks),
    )  # fmt: skip
    region = Coded(rcode[kept], np.asarray(rnames, dtype=object))
    return Prepared(
        kb=kb, bills=bills, kept=kept, rejects=rj.build(bills.bill_id),
        region=region, person=Coded(pk, pu), household=Coded(hc[kept], hu), year=year,
        admission=adm[kept], discharge=dis[kept], pslot_keys=pslot_keys, hslot_keys=hslot_keys,
    )  # fmt: skip


ITEM_BLOCK = 1 << 20


def _check_items(
    items: ItemCols, cat: np.ndarray, amount: np.ndarray, lo: int, hi: int, rj: _Rejects,
    irow: Any, itf: str, linked: Any, ib_of: Any, item_bad: np.ndarray,
) -> None:  # fmt: skip
    """The rules of one item (bill.Item) on rows [lo, hi): each bad value is a reject."""
    rows = irow[np.arange(lo, hi)] if isinstance(irow, _Offset) else irow[lo:hi]

    def sl(a: Any) -> Any:
        if a is None:
            return None
        if isinstance(a, Coded):
            return Coded(a.codes[lo:hi], a.labels)
        return np.asarray(a)[lo:hi]

    def rule(where: np.ndarray, fld: str, vals: Any, text: str) -> None:
        w = where if linked is True else where & linked
        if w.any():
            rj.add(w, rows, itf, fld, vals, text, lambda idx: ib_of(idx + lo))
            item_bad[lo:hi] |= w

    c = cat[lo:hi]
    rule(c == 0, "category", sl(items.category), "is not a category; use A/B/C (or NHSA 01/02/03)")
    if items.amount_null is not None:
        rule(sl(items.amount_null).astype(bool), "amount", None, "is missing; it is required")
    a = amount[lo:hi]
    rule(a < 0, "amount", a, "is negative; amounts are non-negative fen")
    rule(
        a > MAX_AMOUNT,
        "amount",
        a,
        f"is above the limit {MAX_AMOUNT}; amounts are non-negative fen",
    )
    unit = "quantities are non-negative ten-thousandths"
    if items.qty_e4 is not None:
        q = sl(items.qty_e4)
        rule(q < 0, "qty_e4", q, f"is negative; {unit}")
        rule(q > MAX_QTY_E4, "qty_e4", q, f"is above the limit {MAX_QTY_E4}; {unit}")
    unit = "unit prices are non-negative fen"
    for name in ("unit_price", "unit_price_cap"):
        v = sl(getattr(items, name))
        if v is None:
            continue
        null = sl(getattr(items, name + "_null", None))
        given = np.ones(hi - lo, dtype=bool) if null is None else ~null.astype(bool)
        rule(given & (v < 0), name, v, f"is negative; {unit}")
        rule(given & (v > MAX_UNIT_PRICE), name, v, f"is above the limit {MAX_UNIT_PRICE}; {unit}")
    r = sl(items.selfpay_ratio)
    if r is not None:
        null = sl(items.selfpay_ratio_null)
        given = np.ones(hi - lo, dtype=bool) if null is None else ~null.astype(bool)
        unit = "ratios are basis points from 0 to 10000"
        rule(given & (r < 0), "selfpay_ratio", r, f"is negative; {unit}")
        rule(given & (r > BP), "selfpay_ratio", r, f"is above 10000; {unit}")
        rule(
            given & (r >= 0) & (r <= BP) & (c != 2) & (c != 0), "selfpay_ratio", r,
            "is given for an item that is not category B; only category B items have a first "
            "self-pay ratio",
        )  # fmt: skip


def _nullable(a: np.ndarray | None, null: np.ndarray | None, n: int, dtype: Any) -> np.ndarray:
    """The kernel's form of a nullable column: -1 = not given. Values are kept as they are
    (no copy) when they already say -1 under the mask; bad (negative) values are rejected by
    the caller and also become -1 here, so that the array is always well formed."""
    if a is None:
        return np.full(n, -1, dtype=dtype)
    a = np.asarray(a)
    if null is None:
        if a.size and a.min() < -1:
            return np.where(a < 0, -1, a)
        return a
    null = np.asarray(null, dtype=bool)
    # nulls already say -1 (as the adapters fill them): no copy. A -1 that is not null is
    # rejected by the caller and its bill left out, so it never reaches the kernel.
    if (a.size == 0 or a.min() >= -1) and not np.any(null & (a != -1)):
        return a
    return np.where(null | (a < 0), -1, a)


def _open(
    op: OpeningCols,
    compiled: CompiledPolicies,
    pkeys: tuple[np.ndarray, np.ndarray],
    hkeys: tuple[np.ndarray, np.ndarray],
    p_acc: np.ndarray,
    p_adm: np.ndarray,
    h_acc: np.ndarray,
) -> None:
    """Fill the slots that have opening rows (rows of other persons are ignored here)."""
    scope = np.asarray(op.scope).astype(str)
    lid = np.asarray(op.layer_id).astype(str)
    ids = np.asarray(op.id)
    year = np.asarray(op.year, dtype=np.int64)
    vals = np.stack([np.asarray(getattr(op, f), dtype=np.int64) for f in ACCOUNT_FIELDS], axis=1)
    slot_of = {name: i for i, name in enumerate(compiled.layer_ids)}
    lslot = np.array([slot_of.get(x, -1) for x in lid], dtype=np.int64)
    for sc, (kid, kyear), acc in (("person", pkeys, p_acc), ("household", hkeys, h_acc)):
        if len(kid) == 0:
            continue
        m = scope == sc
        if not m.any():
            continue
        # slots are sorted by (id code, year): find each row's slot by id then year
        code = _lookup(np.asarray(kid), ids[m])
        span = 10000
        keys = np.asarray(_lookup(np.asarray(kid), kid)) * span + kyear
        rk = code * span + year[m]
        pos = np.searchsorted(keys, rk)
        pos = np.minimum(pos, len(keys) - 1)
        hit = (code >= 0) & (keys[pos] == rk)
        ls = lslot[m]
        use = hit & (ls >= 0)
        acc[pos[use], ls[use]] = vals[m][use]
        if sc == "person" and op.admissions is not None:
            adm = np.asarray(op.admissions, dtype=np.int64)[m]
            np.maximum.at(p_adm, pos[hit], adm[hit])


def check_opening(op: OpeningCols, compiled: CompiledPolicies) -> list[Reject]:
    """Rejects for bad opening rows (unknown scope or layer, negative values)."""
    rows = _rows(op.row, len(op))
    rj = _Rejects()
    scope = np.asarray(op.scope).astype(str)
    rj.add(~np.isin(scope, ["person", "household"]), rows, op.file, "scope", scope,
           "is not a scope; use person or household", None)  # fmt: skip
    lid = np.asarray(op.layer_id).astype(str)
    known = np.isin(lid, [*compiled.layer_ids, ""])
    rj.add(~known, rows, op.file, "layer_id", lid,
           f"is not a layer of the policies ({', '.join(compiled.layer_ids)})", None)  # fmt: skip
    for f in (*ACCOUNT_FIELDS, "admissions"):
        a = getattr(op, f)
        if a is None:
            continue
        a = np.asarray(a)
        rj.add(a < 0, rows, op.file, f, a, "is negative; accounts are non-negative whole fen",
               None)  # fmt: skip
        if f != "admissions":
            rj.add(a > MAX_ACCOUNT, rows, op.file, f, a, f"is above the limit {MAX_ACCOUNT} fen",
                   None)  # fmt: skip
    return rj.build(np.array([], dtype=object))


# --------------------------------------------------------------------------- results


def run(prep: Prepared, threads: int = 1) -> None:
    prep.kb.run(threads)


def bill_columns(prep: Prepared) -> dict[str, Any]:
    """One row per settled bill, in settlement order: buckets, pays per layer id, window and
    net shares, admission number (domain.md section 7)."""
    kb, c = prep.kb, prep.kb.compiled
    ob = kb.out_bill
    n = kb.n_bills
    labels = np.array([t.label for t in c.tables], dtype=object)
    bid = _take(prep.bills.bill_id, prep.kept)
    out: dict[str, Any] = {
        "row": _rows(prep.bills.row, len(prep.bills))[prep.kept],
        "bill_id": bid,
        "person_id": prep.person,
        "household_id": prep.household,
        "region": prep.region,
        "policy": Coded(kb.b_policy, labels),
        "year": prep.year,
        "admission_date": prep.admission.astype("M8[D]"),
        "discharge_date": prep.discharge.astype("M8[D]"),
        "admission_no": ob[:, K.B_ADMNO],
        "total": ob[:, K.B_TOTAL],
        "in_scope": ob[:, K.B_IN_SCOPE],
        "pre_selfpay": ob[:, K.B_PRE],
        "over_limit": ob[:, K.B_OVER],
        "out_of_catalogue": ob[:, K.B_OOC],
    }
    pays = kb.out_layer[:, :, K.F_PAY] if n else np.zeros((0, c.max_layers), dtype=np.int64)
    for s, lid in enumerate(c.layer_ids):
        li = np.where(c.slot[kb.b_policy] == s)  # (bill, layer index) where this slot sits
        col = np.zeros(n, dtype=np.int64)
        ok = li[1] < c.n_layers[kb.b_policy[li[0]]]
        col[li[0][ok]] = pays[li[0][ok], li[1][ok]]
        out[f"pay_{lid}"] = col
    out["funds_total"] = ob[:, K.B_TOTAL] - ob[:, K.B_NET]
    out["window_pay"] = ob[:, K.B_WINDOW]
    out["net_selfpay"] = ob[:, K.B_NET]
    return out


LAYER_FIELDS = (
    "base", "deductible", "eligible", "pay", "relief",
    *ACCOUNT_FIELDS,
)  # fmt: skip


def layer_columns(prep: Prepared) -> dict[str, Any]:
    """One row per settled bill and layer of its table (domain.md section 7)."""
    kb, c = prep.kb, prep.kb.compiled
    n, L = kb.n_bills, c.max_layers
    P = len(c.tables)
    nl = c.n_layers[kb.b_policy] if n else np.zeros(0, dtype=np.int64)
    m = np.arange(L)[None, :] < nl[:, None]
    if m.all():  # every bill has L layers: a view, no gather
        b, li = np.repeat(np.arange(n), L), np.tile(np.arange(L), n)
        o = kb.out_layer.reshape(n * L, K.N_FIELDS)
    else:
        b, li = np.nonzero(m)
        o = kb.out_layer[b, li]  # (rows, N_FIELDS)
    p = kb.b_policy[b]
    pl = p * L + li

    def per_layer(get: Any) -> np.ndarray:
        arr = np.empty(P * L, dtype=object)
        arr[:] = ""
        for pi, t in enumerate(c.tables):
            for lj, layer in enumerate(t.layers):
                arr[pi * L + lj] = get(layer)
        return arr

    V = c.w_tags_any.shape[2]
    vlabels = np.empty(P * L * V + 1, dtype=object)
    vlabels[:] = ""
    for pi, t in enumerate(c.tables):
        for lj, layer in enumerate(t.layers):
            for vk, v in enumerate(layer.variants):
                vlabels[(pi * L + lj) * V + vk] = v.label
    vi = o[:, K.F_VARIANT]
    vcode = np.where(vi >= 0, pl * V + vi, P * L * V)
    bid = _take(prep.bills.bill_id, prep.kept)
    return {
        "bill_id": _take(bid, b) if isinstance(bid, Coded) else Coded(b, bid),
        "year": prep.year[b],
        "layer_no": li,
        "layer_id": Coded(pl, per_layer(lambda la: la.id)),
        "layer_name": Coded(pl, per_layer(lambda la: la.name)),
        "kind": Coded(pl, per_layer(lambda la: la.kind)),
        "fund_code": Coded(pl, per_layer(lambda la: la.fund_code)),
        "settle_at": Coded(pl, per_layer(lambda la: la.settle_at)),
        "scope": Coded(pl, per_layer(lambda la: la.scope)),
        "applied": o[:, K.F_REASON] == 0,
        "reason": Coded(o[:, K.F_REASON], np.array(REASONS, dtype=object)),
        "variant": vi,
        "variant_label": Coded(vcode, vlabels),
        "base": o[:, K.F_BASE],
        "deductible": o[:, K.F_DED],
        "eligible": o[:, K.F_ELIGIBLE],
        "pay": o[:, K.F_PAY],
        "relief": o[:, K.F_RELIEF],
        "cap": Coded(o[:, K.F_CAP], np.array(CAPS, dtype=object)),
        "deductible_used": o[:, K.F_ACC + 0],
        "eligible_cum": o[:, K.F_ACC + 1],
        "paid": o[:, K.F_ACC + 2],
        "selfpay_cum": o[:, K.F_ACC + 3],
        "alert": o[:, K.F_ALERT] == 1,
    }


def alert_columns(prep: Prepared) -> dict[str, Any]:
    """One row per alert (an alert layer whose yearly self-pay passed its threshold)."""
    kb, c = prep.kb, prep.kb.compiled
    L = c.max_layers
    if kb.n_bills == 0:
        b, li = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    else:
        b, li = np.nonzero(kb.out_layer[:, :, K.F_ALERT] == 1)
    o = kb.out_layer[b, li]
    P = len(c.tables)
    ids = np.empty(P * L, dtype=object)
    ids[:] = ""
    for pi, t in enumerate(c.tables):
        for lj, layer in enumerate(t.layers):
            ids[pi * L + lj] = layer.id
    return {
        "bill_id": _plain_at(prep.bills.bill_id, prep.kept[b]),
        "person_id": _plain_at(prep.person, b),
        "household_id": _plain_at(prep.household, b),
        "layer_id": Coded(kb.b_policy[b] * L + li, ids),
        "year": prep.year[b],
        "selfpay_cum": o[:, K.F_ACC + 3],
        "relief": o[:, K.F_RELIEF],
    }


def closing_columns(prep: Prepared) -> dict[str, Any]:
    """The accounts after the batch, one row per slot (person-year or household-year) and
    layer that is not all zero; person rows carry the year's admission count."""
    kb, c = prep.kb, prep.kb.compiled
    parts = []
    for scope, (ids, years), acc, adm in (
        ("person", prep.pslot_keys, kb.p_acc, kb.p_adm),
        ("household", prep.hslot_keys, kb.h_acc, None),
    ):
        S = acc.shape[1]
        s, li = np.nonzero(np.any(acc != 0, axis=2) | (
            (adm[:, None] != 0) if adm is not None else np.zeros(acc.shape[:2], bool)
        ))  # fmt: skip
        parts.append({
            "scope": np.full(len(s), scope, dtype=object),
            "id": np.asarray(ids)[s],
            "year": np.asarray(years)[s],
            "layer_id": np.array(c.layer_ids, dtype=object)[li] if S else np.zeros(0, object),
            **{f: acc[s, li, k] for k, f in enumerate(ACCOUNT_FIELDS)},
            "admissions": adm[s] if adm is not None else np.zeros(len(s), dtype=np.int64),
        })  # fmt: skip
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def plain(col: Any) -> np.ndarray:
    """A column as a plain array (``Coded`` expanded)."""
    return col.values() if isinstance(col, Coded) else np.asarray(col)


def settle_columns(
    bills: BillCols,
    items: ItemCols,
    persons: PersonCols,
    policies: PolicySet,
    opening: OpeningCols | None = None,
    threads: int = 1,
) -> Prepared:
    """Check, prepare and settle; read results with ``bill_columns`` and friends."""
    prep = prepare_columns(bills, items, persons, policies, opening, n_chunks=max(1, threads * 4))
    prep.kb.run(threads)
    return prep


def columns_from_bills(
    bills: Any, opening: Any = None
) -> tuple[BillCols, ItemCols, PersonCols, OpeningCols | None]:
    """The column form of a list of ``Bill`` objects (and an ``Opening``): for tests and for
    comparing with the reference."""
    n = len(bills)
    ids = np.array([b.id for b in bills], dtype=object)
    region = [b.region for b in bills]
    bc = BillCols(
        bill_id=ids,
        person_id=np.array([b.person.id for b in bills], dtype=object),
        household_id=np.array([b.person.household for b in bills], dtype=object),
        region=None if all(r is None for r in region) else np.array(region, dtype=object),
        hospital_level=np.array([b.hospital_level for b in bills], dtype=object),
        admission_date=np.array([b.admission_date for b in bills], dtype="M8[D]"),
        discharge_date=np.array([b.discharge_date for b in bills], dtype="M8[D]"),
    )
    its = [(i, it) for i in range(n) for it in bills[i].items]
    cap = [it.unit_price_cap for _, it in its]
    ratio = [it.selfpay_ratio for _, it in its]
    ic = ItemCols(
        bill_row=np.array([i for i, _ in its], dtype=np.int64),
        category=np.array([int(it.category) for _, it in its], dtype=np.int8),
        amount=np.array([it.amount for _, it in its], dtype=np.int64),
        qty_e4=np.array([it.qty_e4 for _, it in its], dtype=np.int64),
        unit_price=np.array([it.unit_price for _, it in its], dtype=np.int64),
        unit_price_cap=np.array([-1 if c is None else c for c in cap], dtype=np.int64),
        unit_price_cap_null=np.array([c is None for c in cap], dtype=bool),
        selfpay_ratio=np.array([-1 if r is None else r for r in ratio], dtype=np.int64),
        selfpay_ratio_null=np.array([r is None for r in ratio], dtype=bool),
    )
    people: dict[str, Any] = {}
    for b in bills:
        people.setdefault(b.person.id, b.person)
    prow: list[tuple[Any, ...]] = []
    for p in people.values():
        if not p.tags:
            prow.append((p.id, p.birth_date, p.household, "", None, None))
        for t in p.tags:
            prow.append((p.id, p.birth_date, p.household, t.tag, t.valid_from, t.valid_to))
    pc = PersonCols(
        person_id=np.array([r[0] for r in prow], dtype=object),
        birth_date=np.array([r[1] for r in prow], dtype="M8[D]"),
        household_id=np.array([r[2] for r in prow], dtype=object),
        tag=np.array([r[3] for r in prow], dtype=object),
        tag_valid_from=np.array([r[4] if r[4] else "NaT" for r in prow], dtype="M8[D]"),
        tag_valid_to=np.array([r[5] if r[5] else "NaT" for r in prow], dtype="M8[D]"),
    )
    oc = None
    if opening is not None:
        orow: list[tuple[Any, ...]] = []
        for scope, d in (("person", opening.person), ("household", opening.household)):
            for (key, year), ya in d.items():
                orow.append((scope, key, year, "", 0, 0, 0, 0, ya.admissions))
                for lid, acc in ya.layers.items():
                    orow.append((scope, key, year, lid, *acc.as_tuple(), ya.admissions))
        cols = list(zip(*orow, strict=True)) if orow else [()] * 9
        oc = OpeningCols(
            scope=np.array(cols[0], dtype=object),
            id=np.array(cols[1], dtype=object),
            year=np.array(cols[2], dtype=np.int64),
            layer_id=np.array(cols[3], dtype=object),
            deductible_used=np.array(cols[4], dtype=np.int64),
            eligible_cum=np.array(cols[5], dtype=np.int64),
            paid=np.array(cols[6], dtype=np.int64),
            selfpay_cum=np.array(cols[7], dtype=np.int64),
            admissions=np.array(cols[8], dtype=np.int64),
        )
    return bc, ic, pc, oc
