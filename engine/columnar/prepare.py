"""Checking the columns and building the kernel's arrays (``prepare_columns``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import kernel as K
from engine.batch import FundYearKey, KernelBatch, check_budgets, chunks_at_households
from engine.columnar.billchecks import Marks, check_bills
from engine.columnar.billitems import bill_items
from engine.columnar.billtags import bill_tags
from engine.columnar.buffers import OutputBuffers
from engine.columnar.inputs import (
    BillCols,
    Coded,
    ItemCols,
    OpeningCols,
    PersonCols,
    Reject,
    Rejects,
)
from engine.columnar.keptbills import kept_columns
from engine.columnar.opening import open_slots
from engine.columnar.persontable import PersonTable, person_table
from engine.columnar.runs import read_only, take_runs
from engine.columnar.tableinforce import tables_in_force
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
    #: the flat buffer ``results.layer_fields(prep, out=...)`` took (``OutputBuffers.
    #: take_fields``), until it is given back
    lent_fields: np.ndarray | None = None


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
    rj = Rejects()
    m = Marks.of(bills, rj)
    bad = m.bad
    nb, ni = len(bills), len(items)
    # the persons: one household and birth date per person, tags (``persontable``; given
    # checked already, as the packed stream keeps it, it is not done again)
    pt = persons if isinstance(persons, PersonTable) else person_table(persons)
    rj.items.extend(pt.rejects)
    pu, hu, p_birth = pt.pu, pt.hu, pt.p_birth
    n_p = len(pu)
    keys = check_bills(bills, pt, m, extra_rejects)
    adm, dis, pc, hc = keys.adm, keys.dis, keys.pc, keys.hc
    force = tables_in_force(bills, policies, dis, m)
    policy, level = force.policy, force.level
    its = bill_items(items, bills, keys, m)
    bs, n_items_of = its.bs, its.n_items_of
    b_tags = bill_tags(pt, policies, keys, force, m)
    tables = policies.tables

    # ---- keep the good bills, in settlement order
    keep = np.flatnonzero(~bad)
    hu_code = hc[keep]
    # settlement order: household, discharge, admission, bill id, hospital (domain.md 6, 12);
    # with hard budgets the same without household (a balance couples the households)
    sort_keys = (
        keys.hosp_code[keep],
        keys.bcode[keep],
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
        assert its.ibs is not None
        ipos = np.where(its.linked, pos_of[its.ibs], -1)
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
    cols: tuple[np.ndarray, ...] = its.cols
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
        open_slots(opening, compiled, (pu, pkey_u), (hu, hkey_u), span, ymin, p_acc, p_adm, h_acc)

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
    region = Coded(force.rcode[kept], np.asarray(force.rnames, dtype=object))
    return Prepared(
        kb=kb, bills=bills, kept=kept, rejects=rj.build(bills.bill_id, keys.hosp),
        region=region, person=Coded(pk, pu), household=Coded(hk, hu), year=year,
        admission=adm[kept], discharge=dis[kept], pslot_keys=pslot_keys, hslot_keys=hslot_keys,
        lent=lent, lent_acc=lent_acc,
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
