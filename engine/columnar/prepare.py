"""Checking the columns and building the kernel's arrays (``prepare_columns``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import kernel as K
from engine.accounts import ACCOUNT_FIELDS
from engine.batch import FundYearKey, KernelBatch, check_budgets, chunks_at_households
from engine.bill import (
    CATEGORY_RULE,
    HOSPITAL_RULE,
    MAX_ITEMS_PER_BILL,
    RANGE_RULE,
    is_hospital_code,
)
from engine.columnar.buffers import OutputBuffers
from engine.columnar.idcodes import factor_ids
from engine.columnar.inputs import (
    DAY_MAX,
    EPOCH,
    BillCols,
    Coded,
    ItemCols,
    Offset,
    OpeningCols,
    PersonCols,
    Reject,
    Rejects,
    Strings,
    category_codes,
    days_of,
    empty_id,
    factor,
    lookup,
    no_nulls,
    plain_at,
    rows_of,
)
from engine.columnar.itemcheck import items_clean_runs
from engine.columnar.keptbills import kept_columns
from engine.columnar.persontable import PersonTable, implausible, person_table
from engine.columnar.runs import read_only, take_runs
from engine.money import BP, MAX_ACCOUNT, MAX_AMOUNT, MAX_BILL_TOTAL, MAX_QTY_E4, MAX_UNIT_PRICE
from engine.policy.compiled import CompiledPolicies, compile_tables
from engine.policy.policyset import PolicySet

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
    #: the whole output buffers taken from ``prepare_columns(out=...)`` (``OutputBuffers``),
    #: until they are given back
    lent: tuple[np.ndarray, np.ndarray] | None = None
    #: the flat account buffer taken from ``prepare_columns(out=...)`` (``p_acc``, ``p_adm``
    #: and ``h_acc`` are views of it), until it is given back
    lent_acc: np.ndarray | None = None


def prepare_columns(
    bills: BillCols,
    items: ItemCols,
    persons: PersonCols | PersonTable,
    policies: PolicySet,
    opening: OpeningCols | None = None,
    n_chunks: int = 1,
    compiled: CompiledPolicies | None = None,
    extra_rejects: list[tuple[int, str, Any, str]] | None = None,
    budgets: Mapping[FundYearKey, int] | None = None,
    input_order: bool = False,
    out: OutputBuffers | None = None,
    in_place: bool = False,
) -> Prepared:
    """Check the three tables, leave out bad bills (as rejects) and build the kernel's arrays.

    ``persons``: the columns, or the table ``persontable.person_table`` checked them into
    (a caller settling many batches over one unchanged persons table checks it once).
    ``extra_rejects``: (bill index, field, value, rule) found by the caller (e.g. a bill id
    already used in an earlier chunk). ``compiled`` defaults to all tables of ``policies``.
    ``budgets``: opening balances of hard budgets (as for ``engine.batch.settle_batch``); with
    any, the bills are settled serially in the region-wide order of domain.md section 12.
    ``input_order`` (one chunk, no budgets): settle in the input order when it already is the
    settlement order within each household (e.g. bills sent in discharge order): households
    share no account, so every bill's figures are the same, and the items need no reordering
    copy. Checked in one pass over the sorted order; otherwise the bills are sorted as always.
    ``out``: a pool the kernel's output arrays are taken from (views of reused buffers, not
    zeroed: the kernel writes every field); give them back with ``out.give_back(prep)``.
    ``in_place`` (items given by run offsets, one chunk, no budgets): the kernel reads each
    bill's run where it is in the item columns (``KernelBatch.item_at``), not a copy of the
    runs in settlement order, when the columns have the dtypes of its in-place variant
    (``engine.kernel.IN_PLACE_DTYPES``); other dtypes are copied as without it.
    """
    check_budgets(budgets)
    nb, ni = len(bills), len(items)
    rj = Rejects()
    bad = np.zeros(nb, dtype=bool)
    brow = rows_of(bills.row, nb)
    irow = rows_of(items.row, ni)
    bf, itf = bills.file, items.file
    bidx = np.arange(nb, dtype=np.int64)

    # ---- persons: one household and birth date per person, tags (``persontable``; given
    # checked already, as the packed stream keeps it, it is not done again)
    pt = persons if isinstance(persons, PersonTable) else person_table(persons)
    persons = pt.cols
    rj.items.extend(pt.rejects)
    prow, pf = pt.prow, persons.file
    pu, hu, p_house, p_birth, p_bad = pt.pu, pt.hu, pt.p_house, pt.p_birth, pt.p_bad
    gu, t_cnt, t_start, t_rows, t_g = pt.gu, pt.t_cnt, pt.t_start, pt.t_rows, pt.t_g
    t_from, t_to = pt.t_from, pt.t_to
    n_p = len(pu)

    # ---- bills
    adm, adm_na = days_of(bills.admission_date)
    dis, dis_na = days_of(bills.discharge_date)
    for name, ids in (("bill_id", bills.bill_id), ("person_id", bills.person_id)):
        e = empty_id(ids)
        rj.add(e, brow, bf, name, ids, "is empty; give an id", bidx)
        bad |= e
    rj.add(adm_na, brow, bf, "admission_date", None, "is missing; it is required", bidx)
    rj.add(dis_na, brow, bf, "discharge_date", None, "is missing; it is required", bidx)
    bad |= adm_na | dis_na
    odd_day = np.zeros(nb, dtype=bool)
    for name, col, d, na in (("admission_date", bills.admission_date, adm, adm_na),
                             ("discharge_date", bills.discharge_date, dis, dis_na)):  # fmt: skip
        odd = ~na & implausible(d)
        rj.add(odd, brow, bf, name, col, RANGE_RULE, bidx)
        odd_day |= odd
    bad |= odd_day
    early = ~adm_na & ~dis_na & (dis < adm) & ~odd_day
    rj.add(
        early, brow, bf, "discharge_date", bills.discharge_date,
        "is before admission_date; discharge must be on or after admission", bidx,
    )  # fmt: skip
    bad |= early

    # a bill is (hospital, bill id): the same id at two hospitals is two bills
    hosp = no_nulls(bills.hospital)
    hosp_u, hosp_code = factor(hosp)
    hosp_ok = np.array([is_hospital_code(str(h)) for h in hosp_u], dtype=bool)
    bad_hosp = ~hosp_ok[hosp_code] if nb else np.zeros(0, dtype=bool)
    rj.add(bad_hosp, brow, bf, "hospital", hosp, HOSPITAL_RULE, bidx)
    bad |= bad_hosp
    bu, bcode = factor_ids(bills.bill_id)  # by integer keys when ASCII (``idcodes``)
    nh = max(len(hosp_u), 1)
    bkey = bcode * nh + hosp_code
    if nb:
        o = np.argsort(bkey, kind="stable")
        sk = bkey[o]
        dup = np.zeros(nb, dtype=bool)
        dup[o[1:]] = sk[1:] == sk[:-1]
        new_key = np.concatenate(([True], sk[1:] != sk[:-1]))
        key_u, key_first = sk[new_key], o[new_key]  # stable: a key's first row
        first_of = np.empty(nb, dtype=np.int64)
        first_of[o] = key_first[np.cumsum(new_key) - 1]
        rj.add(
            dup, brow, bf, "bill_id", bills.bill_id,
            np.array([f"is used by {bf} row {brow[first_of[i]]} too, at the same hospital "
                      f"{str(hosp_u[hosp_code[i]])!r}; a bill id is unique within its hospital"
                      for i in range(nb)], dtype=object) if dup.any() else "",
            bidx,
        )  # fmt: skip
        bad |= dup
    else:
        key_u, key_first = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    for b, fld, val, rule in extra_rejects or ():
        rj.add(bidx == b, brow, bf, fld, val, rule, bidx)
        bad[b] = True

    pc = lookup(pu, bills.person_id)
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
    unborn = (pc >= 0) & ~bad & (adm < (p_birth[pcs] if n_p else adm))
    if unborn.any():
        why = np.empty(nb, dtype=object)
        for bi in np.flatnonzero(unborn).tolist():
            born = np.datetime64(int(p_birth[pcs[bi]]), "D")
            why[bi] = (f"is before the patient's birth_date {born} (person {str(pu[pcs[bi]])!r}); "
                      "a patient is admitted on or after their birth")  # fmt: skip
        rj.add(unborn, brow, bf, "admission_date", bills.admission_date, why, bidx)
        bad |= unborn
    hc = p_house[pcs] if n_p else np.zeros(nb, dtype=np.int64)
    if bills.household_id is not None and n_p:
        given = lookup(hu, bills.household_id)
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
        rnames, rcode = factor(bills.region)
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
    lu, lcode = factor(bills.hospital_level)
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
    link_vals: Strings | None
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
        code = lookup(bu, items.bill_id)
        if items.hospital is not None:  # by (hospital, bill id)
            hc_i = lookup(hosp_u, no_nulls(items.hospital))
            ikey = np.where((code >= 0) & (hc_i >= 0), code * nh + hc_i, -1)
            kpos = lookup(key_u, ikey) if len(key_u) else np.full(ni, -1, dtype=np.int64)
            ib = np.where((ikey >= 0) & (kpos >= 0), key_first[np.maximum(kpos, 0)], -1)
            link_field, link_vals = "bill_id", items.bill_id
        else:  # by bill id alone: only where the id names the bills of one hospital
            first_b = np.full(len(bu), -1, dtype=np.int64)
            if nb:
                first_b[bcode[::-1]] = np.arange(nb)[::-1]  # the first bill with that id
            hospitals_of = np.bincount(key_u // nh, minlength=len(bu)) if nb else first_b
            ib = np.where(code >= 0, first_b[np.maximum(code, 0)], -1) if ni else code
            several = (code >= 0) & (hospitals_of[np.maximum(code, 0)] > 1) if ni else code < 0
            rj.add(
                several, irow, itf, "bill_id", items.bill_id,
                f"names bills of several hospitals in {bf}; give {itf} a hospital column "
                "(a bill is identified by hospital and bill id)", None,
            )  # fmt: skip
            ib = np.where(several, -2, ib)
            link_field, link_vals = "bill_id", items.bill_id
    if bs is None:
        rj.add(
            ib == -1, irow, itf, link_field, link_vals,
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
    # item checks block by block, so that their temporary masks stay small; items linked as
    # runs that one compiled pass finds clean (the usual case) need none of them. That pass
    # also sums each bill's amounts and widens int32 amounts (the packed stream's) to int64
    run_totals = None
    if bs is not None and ni > 0:
        checked = items_clean_runs(items, cat, amount, bs)
        if checked is not None:
            clean, amount, run_totals = checked
    if run_totals is None:
        clean = False
        if amount.dtype == np.int32:  # the kernel's amounts are int64
            amount = amount.astype(np.int64)
    for lo_ in range(0, 0 if clean else ni, ITEM_BLOCK):
        hi_ = min(ni, lo_ + ITEM_BLOCK)
        _check_items(items, cat, amount, lo_, hi_, rj, irow, itf,
                     linked if linked is True else linked[lo_:hi_], ib_of, item_bad)  # fmt: skip
    # an absent cap or ratio column is filled narrow (int32, int16), or as int64 beside int64
    # quantities and the other one given as int64: the widths of a variant ``onestop warm``
    # compiles (``engine.warm.ITEM_DTYPES``), not one a first message compiles (10-20 s)
    wide = qty.dtype == np.int64
    cap_fill = np.int64 if wide and _is_int64(items.selfpay_ratio) else np.int32
    ratio_fill = np.int64 if wide and _is_int64(items.unit_price_cap) else np.int16
    price_cap = _nullable(items.unit_price_cap, items.unit_price_cap_null, ni, cap_fill, clean)
    sp_ratio = _nullable(items.selfpay_ratio, items.selfpay_ratio_null, ni, ratio_fill, clean)
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
    if run_totals is not None:
        totals = run_totals
    elif bs is not None:
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
    many = n_items_of > MAX_ITEMS_PER_BILL
    if many.any():
        rj.add(
            many, brow, bf, "items", n_items_of,
            f"items exceed the limit MAX_ITEMS_PER_BILL = {MAX_ITEMS_PER_BILL}; split the bill",
            bidx,
        )  # fmt: skip
        bad |= many
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
            unknown_tag, prow[trow], pf, "tag", plain_at(persons.tag, trow),
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
    # settlement order: household, discharge, admission, bill id, hospital (domain.md 6, 12);
    # with hard budgets the same without household (a balance couples the households)
    sort_keys = (
        hosp_code[keep],
        bcode[keep],
        adm[keep],
        dis[keep],
        *(() if budgets else (hu_code,)),
    )
    # bills stored in settlement order (``onestop batch`` requires it): no sort
    if in_lex_order(sort_keys):
        order = np.arange(len(keep))
    else:
        order = np.lexsort(sort_keys)
        if input_order and not budgets and n_chunks <= 1 and _ordered_within(order, hu_code[order]):
            order = np.arange(len(keep))
    kept = keep[order]
    n = len(kept)
    sel: np.ndarray | None
    runs: np.ndarray | None = None  # with run offsets: each kept bill's first input item
    if bs is not None:
        cnt = n_items_of[kept]
        item_start = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(cnt, out=item_start[1:])
        if n == nb and np.array_equal(kept, np.arange(nb)):
            sel = None  # every bill kept, already in settlement order: no copies
        else:
            sel, runs = None, bs[kept]
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

    item_at: np.ndarray | None = None
    cols: tuple[np.ndarray, ...] = (cat, qty, amount, price_cap, sp_ratio)
    if in_place and bs is not None and not budgets and n_chunks <= 1 and _in_place_ok(cols):
        item_at = bs[kept]  # each kept bill's run, where it is
        cols = tuple(read_only(a) for a in cols)  # one variant, whichever were writable

    def gather(a: np.ndarray) -> np.ndarray:
        # the kernel's variants other than the in-place one take writable arrays: a read-only
        # column (a view of received bytes) kept in order is copied here, its only copy
        if item_at is not None:
            return a
        if runs is not None:
            return take_runs(a, runs, item_start)
        if sel is None:
            return a if a.flags.writeable else a.copy()
        return a[sel]

    # codes, year, age and account slots of the kept bills, in one compiled pass
    pk, hk, year, age, ymin, span, pkey_u, pslot, hkey_u, hslot = kept_columns(
        kept, dis, adm, pc, hc, p_birth, n_p, len(hu)
    )
    if compiled is None:
        compiled = compile_tables(tables)
    S = compiled.n_slots
    lent_acc = None
    if out is not None:  # reused, zeroed: no page to fault in inside the kernel
        lent_acc, (p_acc, p_adm, h_acc) = out.take_accounts(len(pkey_u), len(hkey_u), S)
    else:
        p_acc = np.zeros((len(pkey_u), S, 4), dtype=np.int64)
        p_adm = np.zeros(len(pkey_u), dtype=np.int64)
        h_acc = np.zeros((len(hkey_u), S, 4), dtype=np.int64)
    pslot_keys = (pu[pkey_u // span] if n else pu[:0], pkey_u % span + ymin)
    hslot_keys = (hu[hkey_u // span] if n else hu[:0], hkey_u % span + ymin)
    if opening is not None and len(opening):
        _open(opening, compiled, (pu, pkey_u), (hu, hkey_u), span, ymin, p_acc, p_adm, h_acc)

    tags_k = b_tags[kept]
    lent = out.take(n, compiled.max_layers) if out is not None else None
    kb = KernelBatch(
        compiled=compiled, order=kept, item_start=item_start,
        cat=gather(cols[0]), qty=gather(cols[1]), amount=gather(cols[2]),
        price_cap=gather(cols[3]), sp_ratio=gather(cols[4]), item_at=item_at,
        b_policy=policy[kept], b_level=level[kept],
        b_tags=tags_k, b_age=age, b_pslot=pslot, b_hslot=hslot,
        p_acc=p_acc, p_adm=p_adm, h_acc=h_acc,
        out_bill=lent[0][:n] if lent else np.zeros((n, K.N_BILL), dtype=np.int64),
        out_layer=(lent[1][:n] if lent
                   else np.zeros((n, compiled.max_layers, K.N_FIELDS), dtype=np.int64)),
        chunk_start=chunks_at_households(hu_code[order], 1 if budgets else n_chunks),
    )  # fmt: skip
    if budgets:
        kb.set_budgets(budgets, year)
    region = Coded(rcode[kept], np.asarray(rnames, dtype=object))
    return Prepared(
        kb=kb, bills=bills, kept=kept, rejects=rj.build(bills.bill_id, hosp),
        region=region, person=Coded(pk, pu), household=Coded(hk, hu), year=year,
        admission=adm[kept], discharge=dis[kept], pslot_keys=pslot_keys, hslot_keys=hslot_keys,
        lent=lent, lent_acc=lent_acc,
    )  # fmt: skip


ITEM_BLOCK = 1 << 20


def _check_items(
    items: ItemCols, cat: np.ndarray, amount: np.ndarray, lo: int, hi: int, rj: Rejects,
    irow: Any, itf: str, linked: Any, ib_of: Any, item_bad: np.ndarray,
) -> None:  # fmt: skip
    """The rules of one item (bill.Item) on rows [lo, hi): each bad value is a reject."""

    def rows() -> Any:  # the block's row numbers, built only when a rule finds a bad value
        return irow[np.arange(lo, hi)] if isinstance(irow, Offset) else irow[lo:hi]

    def sl(a: Any) -> Any:
        if a is None:
            return None
        if isinstance(a, Coded):
            return Coded(a.codes[lo:hi], a.labels)
        return np.asarray(a)[lo:hi]

    def rule(where: np.ndarray, fld: str, vals: Any, text: str) -> None:
        w = where if linked is True else where & linked
        if w.any():
            rj.add(w, rows(), itf, fld, vals, text, lambda idx: ib_of(idx + lo))
            item_bad[lo:hi] |= w

    c = cat[lo:hi]
    rule(c == 0, "category", sl(items.category), CATEGORY_RULE)
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


def _in_place_ok(cols: tuple[np.ndarray, ...]) -> bool:
    """Whether the item columns (cat, qty, amount, price cap, ratio) are what the kernel's
    in-place variant takes: its dtypes, contiguous (a read-only view of each is passed)."""
    return all(
        a.dtype == dt and a.ndim == 1 and a.flags.c_contiguous
        for a, dt in zip(cols, K.IN_PLACE_DTYPES, strict=True)
    )


def _ordered_within(order: np.ndarray, group: np.ndarray) -> bool:
    """Whether ``order`` (grouped by ``group``, which is per sorted position) keeps the input
    order inside every group: then the input order is that order within each group."""
    return bool(np.all((order[1:] > order[:-1]) | (group[1:] != group[:-1])))


def in_lex_order(keys: tuple[np.ndarray, ...]) -> bool:
    """Whether the rows are already in ``np.lexsort(keys)`` order (the last key primary), so
    that the stable sort would give ``arange``: one pass of comparisons of adjacent rows."""
    n = len(keys[0]) if keys else 0
    if n < 2:
        return True
    tied = np.ones(n - 1, dtype=bool)  # rows i, i+1 equal on the keys seen so far
    for k in reversed(keys):
        a, b = k[:-1], k[1:]
        if (tied & (b < a)).any():
            return False
        tied &= a == b
    return True


def _is_int64(a: np.ndarray | None) -> bool:
    return a is not None and np.asarray(a).dtype == np.int64


def _nullable(
    a: np.ndarray | None, null: np.ndarray | None, n: int, dtype: Any, clean: bool = False
) -> np.ndarray:
    """The kernel's form of a nullable column: -1 = not given. Values are kept as they are
    (no copy) when they already say -1 under the mask; bad (negative) values are rejected by
    the caller and also become -1 here, so that the array is always well formed. ``clean``:
    ``itemcheck.items_clean`` found every value given within its limits and every null -1,
    so the values are already that form (no pass over them)."""
    if a is None:
        return np.full(n, -1, dtype=dtype)
    a = np.asarray(a)
    if clean:
        return a
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
    span: int,
    ymin: int,
    p_acc: np.ndarray,
    p_adm: np.ndarray,
    h_acc: np.ndarray,
) -> None:
    """Fill the slots that have opening rows (rows of other persons or years are ignored).
    ``pkeys`` / ``hkeys``: the sorted distinct person / household ids and the slots' sorted keys
    ``code * span + year - ymin`` (a slot is its key's position), as ``kept_columns`` made
    them. A row's key is made the same way from its id's code and year: no string array made
    or searched per slot (numpy's casts and searches of objects: ~0.2 ms a 64-row opening)."""
    scope = np.asarray(op.scope)
    ids = np.asarray(op.id)
    year = np.asarray(op.year, dtype=np.int64)
    slot_of = {name: i for i, name in enumerate(compiled.layer_ids)}
    lslot = np.array(
        [
            slot_of.get(x if type(x) is str else str(x), -1)
            for x in np.asarray(op.layer_id).tolist()
        ],
        dtype=np.int64,
    )
    for sc, (u, key_u), acc in (("person", pkeys, p_acc), ("household", hkeys, h_acc)):
        if len(key_u) == 0:
            continue
        rows = np.flatnonzero(scope == sc)
        if len(rows) == 0:
            continue
        code = lookup(np.asarray(u), ids[rows])
        y = year[rows] - ymin
        key = code * span + y
        pos = np.minimum(np.searchsorted(key_u, key), len(key_u) - 1)
        hit = (code >= 0) & (y >= 0) & (y < span) & (key_u[pos] == key)
        ls = lslot[rows]
        use = hit & (ls >= 0)
        if use.any():
            r = rows[use]
            acc[pos[use], ls[use]] = np.stack(
                [np.asarray(getattr(op, f), dtype=np.int64)[r] for f in ACCOUNT_FIELDS], axis=1
            )
        if sc == "person" and op.admissions is not None:
            adm = np.asarray(op.admissions, dtype=np.int64)[rows[hit]]
            np.maximum.at(p_adm, pos[hit], adm)


def check_opening(op: OpeningCols, compiled: CompiledPolicies) -> list[Reject]:
    """Rejects for bad opening rows (unknown scope or layer, negative values)."""
    rows = rows_of(op.row, len(op))
    rj = Rejects()
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
